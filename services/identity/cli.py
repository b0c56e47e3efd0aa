"""`lgsp admin`: manage the built-in identity provider's directory from the command line.

Works on the identity database directly (migrated first), as the system actor; every change is
audited and emits its event like a change made through AdminService. Examples:

    lgsp admin seed-demo
    lgsp admin users list --agency 000.00.12.H27 --role clerk    who to sign in as
    lgsp admin agencies list --query "tư pháp"
    lgsp admin create-agency 000.00.31.H27 "Sở Khoa học và Công nghệ" --level department \\
        --parent 000.00.00.H27 --short-name SKHCN --mail-domain skhcn.hatinh.gov.vn
    lgsp admin create-user lethihoa.stp --name "Lê Thị Hoa" --agency 000.00.12.H27
    lgsp admin grant-role lethihoa.stp clerk --agency 000.00.12.H27
    lgsp admin reset-password lethihoa.stp
    lgsp admin create-client qlvb-thachha --name "Quản lý văn bản xã Thạch Hà" \\
        --agency 000.00.63.H27 --role clerk
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lgsp.cli import Subparsers, config_option, settings_from_args

LEVELS = ("province", "department", "commune", "unit", "district", "central")
ROLES = (
    "clerk",
    "specialist",
    "leader",
    "one_stop_officer",
    "agency_admin",
    "admin",
    "operator",
    "auditor",
)
STATUSES = ("active", "disabled", "locked")  # UserStatus 1, 2, 3


def _identity(args: argparse.Namespace) -> Any:
    from lgsp import db
    from services.identity.bootstrap import MIGRATIONS, public_base_url, wire

    settings = settings_from_args(args)
    engine = db.create_engine(settings.identity.database_url)
    db.migrate(engine, MIGRATIONS)
    return wire(engine, public_base_url(settings)), settings


def _run(args: argparse.Namespace) -> int:
    from lgsp.api.identity.v1 import identity_pb2 as pb
    from services.identity.domain.access import SYSTEM
    from services.identity.domain.errors import DomainError
    from services.identity.domain.model import AgencyLevel

    identity, settings = _identity(args)
    try:
        if args.admin_command == "seed-demo":
            from services.identity.seed import RemoteSeedRefused, check_may_seed, seed_demo

            try:
                check_may_seed(settings.platform.host, settings.identity.demo_seed_allow_remote)
            except RemoteSeedRefused as e:
                print(f"lgsp admin seed-demo: {e}", file=sys.stderr)
                return 1
            created = seed_demo(
                identity, settings.platform.data_dir, console_url=settings.console_url
            )
            print(
                f"demo province: {created}; passwords and client secrets in "
                f"{settings.platform.data_dir}/identity-demo.json"
            )
        elif args.admin_command == "create-agency":
            agency = identity.agencies.create(
                SYSTEM,
                pb.Agency(
                    code=args.code,
                    name=args.name,
                    short_name=args.short_name,
                    level=int(AgencyLevel[args.level.upper()]),  # type: ignore[arg-type]
                    parent_code=args.parent or "",
                    mail_domain=args.mail_domain,
                    place_name=args.place_name,
                ),
            )
            print(f"agency {agency.code} created")
        elif args.admin_command == "create-user":
            user, otp = identity.users.create(
                SYSTEM,
                pb.User(
                    username=args.username,
                    display_name=args.name,
                    agency_code=args.agency,
                    email=args.email,
                    position=args.position,
                ),
                password=args.password or "",
            )
            print(f"user {user.username} created, id {user.id}")
            if otp:
                print(f"one-time password (change at first sign-in): {otp}")
        elif args.admin_command == "create-client":
            client, secret, _ = identity.clients.create(
                SYSTEM,
                pb.ClientSystem(
                    client_id=args.client_id,
                    display_name=args.name or args.client_id,
                    owner_agency_code=args.agency,
                ),
                secret=None if args.public else "",
                redirect_uris=args.redirect_uri or [],
                service_accounts=not args.public,
                roles=args.role or [],
            )
            print(f"client {client.client_id} created")
            if secret:
                print(f"client secret (shown once): {secret}")
        elif args.admin_command == "reset-password":
            uid = identity.users.id_of(args.realm, args.username)
            otp = identity.users.reset_password(
                SYSTEM, uid, args.password or "", temporary=not args.password, realm=args.realm
            )
            print(f"password of {args.username} reset")
            if otp:
                print(f"one-time password (change at first sign-in): {otp}")
        elif args.admin_command == "grant-role":
            uid = identity.users.id_of("lgsp", args.username)
            identity.roles.grant(SYSTEM, uid, args.role, args.agency, args.include_sub)
            print(f"{args.username} is {args.role} in {args.agency}")
        elif args.admin_command == "enable-totp":
            uid = identity.users.id_of(args.realm, args.username)
            secret = identity.users.set_totp(SYSTEM, uid, True)
            import pyotp

            uri = pyotp.TOTP(secret).provisioning_uri(name=args.username, issuer_name="LGSP")
            print(f"TOTP enabled for {args.username}; add to an authenticator app: {uri}")
        elif args.admin_command == "users":
            _list_users(identity, args)
        elif args.admin_command == "agencies":
            _list_agencies(identity, args)
        elif args.admin_command == "rotate-keys":
            print(f"new signing key {identity.keys.rotate()}")
    except DomainError as exc:
        print(f"lgsp admin: {exc.message}", file=sys.stderr)
        return 1
    finally:
        identity.storage.engine.dispose()
    return 0


def _table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _list_users(identity: Any, args: argparse.Namespace) -> None:
    from lgsp.api.identity.v1 import identity_pb2 as pb
    from services.identity.domain.model import ROLE_NAMES, ROLE_NUMBERS

    req = pb.ListUsersRequest(
        page_size=min(args.limit, 500),
        agency_code=args.agency or "",
        include_sub_agencies=args.include_sub,
        role=ROLE_NUMBERS[args.role] if args.role else 0,  # type: ignore[arg-type]
        status=STATUSES.index(args.status) + 1 if args.status else 0,  # type: ignore[arg-type]
        query=args.query or "",
    )
    users: list[Any] = []
    while True:
        page = identity.users.list(req, realm=args.realm)
        users += page.users
        if not page.next_page_token or len(users) >= args.limit:
            break
        req.page_token = page.next_page_token
    rows = [
        [
            u.username,
            u.display_name,
            u.agency_code,
            u.id,
            u.position,
            ",".join(
                sorted(
                    ROLE_NAMES.get(int(g.role), "?")
                    + ("" if g.agency_code == u.agency_code else f"@{g.agency_code}")
                    for g in u.role_grants
                )
            ),
            STATUSES[int(u.status) - 1] if u.status else "",
        ]
        for u in users[: args.limit]
    ]
    if args.json:
        keys = ["username", "display_name", "agency_code", "id", "position", "roles", "status"]
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], ensure_ascii=False))
        return
    # ID: the token's subject, what reviewer_user_id / handler_user_id name.
    _table(rows, ["USERNAME", "NAME", "AGENCY", "ID", "POSITION", "ROLES", "STATUS"])
    print(
        f"({page.total_size} matching; passwords of the demo officials are in "
        "<data_dir>/identity-demo.json)"
        if page.total_size
        else "(no account matches)"
    )


def _list_agencies(identity: Any, args: argparse.Namespace) -> None:
    from lgsp.api.identity.v1 import identity_pb2 as pb
    from services.identity.domain.model import AgencyLevel

    req = pb.ListAgenciesRequest(
        page_size=1000,
        parent_code=args.parent or "",
        level=int(AgencyLevel[args.level.upper()]) if args.level else 0,  # type: ignore[arg-type]
        include_disabled=args.include_disabled,
        query=args.query or "",
    )
    agencies: list[Any] = []
    while True:
        page = identity.agencies.list(req)
        agencies += page.agencies
        if not page.next_page_token:
            break
        req.page_token = page.next_page_token
    names = {int(v): k.lower() for k, v in AgencyLevel.__members__.items()}
    rows = [
        [
            a.code,
            a.name,
            a.short_name,
            names.get(int(a.level), ""),
            a.parent_code,
            a.mail_domain,
            "disabled" if a.status == pb.AGENCY_STATUS_DISABLED else "",
        ]
        for a in agencies
    ]
    if args.json:
        keys = ["code", "name", "short_name", "level", "parent_code", "mail_domain", "status"]
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], ensure_ascii=False))
        return
    _table(rows, ["CODE", "NAME", "SHORT", "LEVEL", "PARENT", "MAIL DOMAIN", "STATUS"])
    print(f"({len(rows)} agencies)" if rows else "(no agency matches)")


def register(sub: Subparsers) -> None:
    common = config_option()
    p = sub.add_parser(
        "admin",
        parents=[common],
        help="manage identity: agencies, users, roles, clients, demo data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    cmds.add_parser("seed-demo", parents=[common], help="create the demo province (idempotent)")

    a = cmds.add_parser("create-agency", parents=[common], help="add an agency to the tree")
    a.add_argument("code", help="identifier code (mã định danh), e.g. 000.00.31.H27")
    a.add_argument("name")
    a.add_argument("--level", choices=LEVELS, required=True)
    a.add_argument("--parent", help="parent agency code (omit for a root)")
    a.add_argument("--short-name", default="")
    a.add_argument("--mail-domain", default="")
    a.add_argument("--place-name", default="")

    u = cmds.add_parser("create-user", parents=[common], help="create an official's account")
    u.add_argument("username")
    u.add_argument("--name", required=True, help="full name, e.g. 'Lê Thị Hoa'")
    u.add_argument("--agency", required=True)
    u.add_argument("--email", default="")
    u.add_argument("--position", default="")
    u.add_argument("--password", help="initial password (default: a one-time one is printed)")

    c = cmds.add_parser("create-client", parents=[common], help="register a client system")
    c.add_argument("client_id")
    c.add_argument("--name", default="")
    c.add_argument("--agency", default="", help="owner agency code")
    c.add_argument("--role", action="append", help="role of its service account (repeatable)")
    c.add_argument("--public", action="store_true", help="browser client: no secret, PKCE")
    c.add_argument("--redirect-uri", action="append", help="allowed redirect URI (repeatable)")

    r = cmds.add_parser("reset-password", parents=[common], help="set or generate a password")
    r.add_argument("username")
    r.add_argument("--password", help="new password (default: a one-time one is printed)")
    r.add_argument("--realm", default="lgsp", choices=("lgsp", "master"))

    g = cmds.add_parser("grant-role", parents=[common], help="grant a role in an agency")
    g.add_argument("username")
    g.add_argument("role", help="admin, clerk, specialist, leader, one_stop_officer, …")
    g.add_argument("--agency", required=True)
    g.add_argument("--include-sub", action="store_true", help="also in agencies below it")

    tp = cmds.add_parser("enable-totp", parents=[common], help="require a TOTP second factor")
    tp.add_argument("username")
    tp.add_argument("--realm", default="lgsp", choices=("lgsp", "master"))

    cmds.add_parser("rotate-keys", parents=[common], help="start signing with a new key")

    us = cmds.add_parser(
        "users",
        parents=[common],
        help="list accounts (who to sign in as)",
        description="Officials' accounts with their agency, position and roles. A role held "
        "in another agency shows as role@code. The demo officials' passwords are in "
        "<data_dir>/identity-demo.json.",
    )
    us_cmd = us.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    ul = us_cmd.add_parser(
        "list",
        parents=[common],
        help="list accounts, filtered",
        epilog="e.g. lgsp admin users list --agency 000.00.00.H27 --include-sub --role clerk",
    )
    ul.add_argument("--agency", help="only accounts of this agency code")
    ul.add_argument("--include-sub", action="store_true", help="with --agency: and below it")
    ul.add_argument("--role", choices=ROLES, help="only accounts holding this role")
    ul.add_argument("--status", choices=STATUSES, help="only accounts in this status")
    ul.add_argument("--query", help="accent-insensitive part of the username, name or email")
    ul.add_argument("--limit", type=_positive, default=200, help="at most N (default 200)")
    ul.add_argument("--realm", default="lgsp", choices=("lgsp", "master"))
    ul.add_argument("--json", action="store_true", help="JSON instead of a table")

    ag = cmds.add_parser(
        "agencies",
        parents=[common],
        help="list agencies of the tree",
        description="The province's agencies with their identifier codes (mã định danh).",
    )
    ag_cmd = ag.add_subparsers(dest="agencies_command", required=True, metavar="COMMAND")
    al = ag_cmd.add_parser(
        "list",
        parents=[common],
        help="list agencies, filtered",
        epilog='e.g. lgsp admin agencies list --level commune --query "thanh sen"',
    )
    al.add_argument("--parent", help="only agencies directly below this code")
    al.add_argument("--level", choices=LEVELS, help="only agencies at this level")
    al.add_argument("--query", help="accent-insensitive part of the name, short name or code")
    al.add_argument("--include-disabled", action="store_true", help="also merged/dissolved ones")
    al.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(handler=_run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
