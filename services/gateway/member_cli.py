"""`lgsp member` and `lgsp access`: the gateway's member registry and access rights from the
command line. Works on the gateway database directly (migrated first); every change is audited
and emits its event (lgsp.gateway.v1) like a change made through MemberService/AccessService.
A running gateway sees it within its registry refresh interval (5 s).

    lgsp member register 000.00.61.H27:motcua --name "Một cửa phường Thành Sen" \\
        --agency 000.00.61.H27 --kind provincial --client-id motcua-thanhsen
    lgsp member list
    lgsp member suspend 000.00.61.H27:motcua --reason "security incident"
    lgsp access grant 000.00.61.H27:motcua --service lgsp.api.dossiers.v1.DossierService \\
        --method GetDossier --method ListDossiers --legal-basis "QĐ 123/QĐ-UBND"
    lgsp access grant 000.00.61.H27:motcua --topic lgsp.dossiers.v1 --subscribe
    lgsp access revoke RIGHT_ID --reason "agreement ended"
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from lgsp.cli import Subparsers, config_option, settings_from_args

KINDS = {"platform": 1, "provincial": 2, "ministry": 3, "national": 4}


def _registry(args: argparse.Namespace) -> Any:
    from lgsp import db
    from services.gateway.registry import Registry
    from services.gateway.tables import MIGRATIONS

    settings = settings_from_args(args)
    engine = db.create_engine(settings.gateway.database_url)
    db.migrate(engine, MIGRATIONS)
    return Registry(engine)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _show_member(m: Any) -> str:
    from lgsp.api.gateway.v1 import gateway_pb2 as pb

    status = pb.MemberStatus.Name(m.status).removeprefix("MEMBER_STATUS_").lower()
    rate = m.rate_limit_per_minute or "default"
    return f"{m.code}\t{m.client_id}\t{status}\t{rate}/min\t{m.name}"


def _show_right(r: Any) -> str:
    from lgsp.api.gateway.v1 import gateway_pb2 as pb

    if r.WhichOneof("target") == "service":
        what = r.service.service + (
            f" [{', '.join(r.service.methods)}]" if r.service.methods else ""
        )
    else:
        access = pb.TopicAccess.Name(r.topic.access).removeprefix("TOPIC_ACCESS_").lower()
        what = f"topic {r.topic.topic} ({access})"
    return f"{r.id}\t{r.member_code}\t{what}"


def _member(args: argparse.Namespace) -> int:
    from google.protobuf.field_mask_pb2 import FieldMask  # noqa: F401 - documents the mask

    from lgsp.api.gateway.v1 import gateway_pb2 as pb
    from lgsp.grpc.errors import ServiceError

    reg = _registry(args)
    try:
        cmd = args.member_command
        if cmd == "register":
            m = reg.register_member(
                _actor(),
                pb.Member(
                    code=args.code,
                    name=args.name,
                    agency_code=args.agency,
                    kind=KINDS[args.kind],  # type: ignore[arg-type]
                    client_id=args.client_id,
                    endpoint=args.endpoint,
                    contact_email=args.email,
                    rate_limit_per_minute=args.rate,
                    certificate_sha256=args.certificate_sha256,
                    description=args.description,
                ),
            )
            print(f"member {m.code} registered")
        elif cmd == "list":
            token = ""
            while True:
                page = reg.list_members(pb.ListMembersRequest(page_size=500, page_token=token))
                for m in page.members:
                    print(_show_member(m))
                token = page.next_page_token
                if not token:
                    break
        elif cmd == "show":
            m = reg.get_member(args.code)
            print(m)
            for r in reg.list_rights(pb.ListAccessRightsRequest(member_code=args.code)).rights:
                print(_show_right(r))
        elif cmd == "update":
            fields = {
                "name": args.name,
                "endpoint": args.endpoint,
                "contact_email": args.email,
                "rate_limit_per_minute": args.rate,
                "description": args.description,
                "certificate_sha256": args.certificate_sha256,
            }
            given = {k: v for k, v in fields.items() if v is not None}
            m = reg.update_member(_actor(), pb.Member(code=args.code, **given), list(given))
            print(f"member {m.code} updated ({', '.join(given) or 'nothing'})")
        elif cmd == "suspend":
            reg.set_status(_actor(), args.code, "", pb.MEMBER_STATUS_SUSPENDED, args.reason)
            print(f"member {args.code} suspended")
        elif cmd == "reactivate":
            reg.set_status(_actor(), args.code, "", pb.MEMBER_STATUS_ACTIVE, "")
            print(f"member {args.code} reactivated")
    except ServiceError as exc:
        print(f"lgsp member: {exc.message}", file=sys.stderr)
        return 1
    finally:
        reg.engine.dispose()
    return 0


def _access(args: argparse.Namespace) -> int:
    from datetime import datetime

    from lgsp.api.gateway.v1 import gateway_pb2 as pb
    from lgsp.grpc.errors import ServiceError

    reg = _registry(args)
    try:
        cmd = args.access_command
        if cmd == "grant":
            right = pb.AccessRight(
                member_code=args.member,
                rate_limit_per_minute=args.rate,
                legal_basis=args.legal_basis,
            )
            if args.service:
                right.service.CopyFrom(pb.ServiceTarget(service=args.service, methods=args.method))
            elif args.topic:
                access = pb.TOPIC_ACCESS_PUBLISH if args.publish else pb.TOPIC_ACCESS_SUBSCRIBE
                right.topic.CopyFrom(
                    pb.TopicTarget(topic=args.topic, access=access, event_types=args.event_type)
                )
            if args.expires:
                right.expire_time.FromDatetime(datetime.fromisoformat(args.expires))
            stored = reg.grant(_actor(), right)
            print(f"granted {_show_right(stored)}")
        elif cmd == "revoke":
            reg.revoke(_actor(), args.id, args.reason)
            print(f"right {args.id} revoked")
        elif cmd == "list":
            req = pb.ListAccessRightsRequest(member_code=args.member or "", page_size=1000)
            for r in reg.list_rights(req).rights:
                print(_show_right(r))
    except ServiceError as exc:
        print(f"lgsp access: {exc.message}", file=sys.stderr)
        return 1
    finally:
        reg.engine.dispose()
    return 0


def register(sub: Subparsers) -> None:
    common = config_option()
    p = sub.add_parser(
        "member",
        parents=[common],
        help="the gateway's member systems",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="member_command", required=True, metavar="COMMAND")
    r = cmds.add_parser("register", parents=[common], help="add a member system")
    r.add_argument("code", help="<agency code>:<subsystem>, e.g. 000.00.61.H27:motcua")
    r.add_argument("--name", required=True)
    r.add_argument("--agency", required=True, help="operating agency code")
    r.add_argument("--kind", choices=sorted(KINDS), required=True)
    r.add_argument("--client-id", required=True, help="OAuth client id it authenticates with")
    r.add_argument("--endpoint", default="")
    r.add_argument("--email", default="", help="technical contact")
    r.add_argument("--rate", type=int, default=0, help="calls per minute (0: platform default)")
    r.add_argument("--certificate-sha256", default="", help="TLS client certificate (mTLS)")
    r.add_argument("--description", default="")
    cmds.add_parser("list", parents=[common], help="list members")
    s = cmds.add_parser("show", parents=[common], help="one member and its rights")
    s.add_argument("code")
    u = cmds.add_parser("update", parents=[common], help="change a member's details")
    u.add_argument("code")
    u.add_argument("--name")
    u.add_argument("--endpoint")
    u.add_argument("--email")
    u.add_argument("--rate", type=int)
    u.add_argument("--certificate-sha256")
    u.add_argument("--description")
    su = cmds.add_parser("suspend", parents=[common], help="refuse every call of a member")
    su.add_argument("code")
    su.add_argument("--reason", required=True)
    re_ = cmds.add_parser("reactivate", parents=[common], help="lift a suspension")
    re_.add_argument("code")
    p.set_defaults(handler=_member)

    a = sub.add_parser(
        "access",
        parents=[common],
        help="grant, revoke and list members' access rights",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    acmds = a.add_subparsers(dest="access_command", required=True, metavar="COMMAND")
    g = acmds.add_parser("grant", parents=[common], help="give a member a right")
    g.add_argument("member", help="member code")
    target = g.add_mutually_exclusive_group(required=True)
    target.add_argument("--service", help="proto service (or pattern lgsp.api.<area>.v1.*)")
    target.add_argument("--topic", help="event topic lgsp.<area>.v<N>")
    g.add_argument("--method", action="append", default=[], help="only this method (repeatable)")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--publish", action="store_true")
    mode.add_argument("--subscribe", action="store_true")
    g.add_argument("--event-type", action="append", default=[], help="only this event type")
    g.add_argument("--rate", type=int, default=0, help="calls per minute under this right")
    g.add_argument("--legal-basis", default="", help="agreement or decision granting it")
    g.add_argument("--expires", help="ISO time the right lapses")
    rv = acmds.add_parser("revoke", parents=[common], help="take a right away")
    rv.add_argument("id")
    rv.add_argument("--reason", required=True)
    ls = acmds.add_parser("list", parents=[common], help="list rights")
    ls.add_argument("--member")
    a.set_defaults(handler=_access)
