"""`lgsp documents …`: the documents service's commands. `lgsp documents ca …` runs the
development CA the service signs and verifies with.

The CA lives in <data_dir>/ca (root, intermediate, issued certificates, CRLs); the running
documents service sees every change at once (it reads the CRLs before each verification).

    lgsp documents ca issue --user nguyenvanan.stp     # an official (name, agency from identity)
    lgsp documents ca issue --agency 000.00.12.H27     # an agency's own certificate (seal)
    lgsp documents ca issue --user nguyenvanan.stp --name "Nguyễn Văn An" \\
        --agency-code 000.00.12.H27 --agency-name "Sở Tư pháp"   # identity not asked
    lgsp documents ca revoke 3f2a… --reason key_compromise
    lgsp documents ca list [--all]

Who an official is (user id, full name, mail, agency) is the identity service's to say, so
`issue` asks identity's gRPC API (IdentityService.GetUser and GetAgency) with the documents
service's own client-credentials token, as the running service does for the agency tree. It
does not open identity's database: that would tie documents to identity's tables and
migrations (and run them), and in scale-out the database is identity's alone, on another
host. The price is that identity must be running; when it is not (a first installation, a
recovery), --name, --agency-code, --agency-name and --user-id give everything on the command
line and no call is made.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

EPILOG = __doc__


def _ca(args: argparse.Namespace) -> Any:
    from lgsp.cli import settings_from_args
    from services.documents.signing import DevCA

    settings = settings_from_args(args)
    directory = settings.data_dir / "ca"
    print(f"CA: {directory}", file=sys.stderr)
    return DevCA.open_or_create(directory), settings


def _identity_lookup(settings: Any, username: str, agency: str) -> dict[str, str]:
    """The user's id, name, mail and agency (or the agency's name), from identity's gRPC API."""
    return asyncio.run(_ask_identity(settings, username, agency))


async def _ask_identity(settings: Any, username: str, agency: str) -> dict[str, str]:
    import grpc

    from lgsp.agencies import identity_address, identity_credentials
    from lgsp.api.identity.v1 import identity_pb2 as pb
    from lgsp.api.identity.v1 import identity_pb2_grpc
    from lgsp.grpc.client import channel, channel_credentials

    credentials = identity_credentials(
        settings, settings.documents.client_id, settings.documents.client_secret
    )
    address = identity_address(settings)
    found: dict[str, str] = {"agency_code": agency}
    what = f"user {username}" if username else f"agency {agency}"
    try:
        tls = channel_credentials(settings)
        async with channel(address, service_name="documents-cli", credentials=tls) as ch:
            stub = identity_pb2_grpc.IdentityServiceStub(ch)
            metadata = tuple(await credentials.metadata()) if credentials else ()
            if username:
                user = (
                    await stub.GetUser(
                        pb.GetUserRequest(username=username), metadata=metadata, timeout=10
                    )
                ).user
                found = {
                    "user_id": user.id,
                    "full_name": user.display_name or username,
                    "email": user.email,
                    "agency_code": user.agency_code,
                }
            if found["agency_code"]:
                what = f"agency {found['agency_code']}"
                reply = await stub.GetAgency(
                    pb.GetAgencyRequest(code=found["agency_code"]), metadata=metadata, timeout=10
                )
                found["agency_name"] = reply.agency.name
    except grpc.aio.AioRpcError as e:
        if e.code() == grpc.StatusCode.NOT_FOUND:
            raise LookupError(f"no {what} in the identity directory") from None
        raise LookupError(
            f"cannot ask identity at {address} ({e.code().name}: {e.details()}); start it, or "
            "give --name, --agency-code, --agency-name and --user-id"
        ) from None
    except OSError as e:  # the token endpoint is down
        raise LookupError(f"cannot get a token for identity: {e}") from None
    finally:
        if credentials is not None:
            await credentials.aclose()
    return found


def _run(args: argparse.Namespace) -> int:
    from services.documents.signing import CAError

    ca, settings = _ca(args)
    try:
        if args.ca_command == "issue":
            return _issue(ca, settings, args)
        if args.ca_command == "revoke":
            print(f"revoking {args.serial} ({args.reason}) …", file=sys.stderr)
            ca.revoke(args.serial, args.reason)
            print(f"certificate {args.serial.lower()} revoked ({args.reason}); CRL republished")
            return 0
        rows = sorted(ca.certificates().items(), key=lambda kv: str(kv[1].get("not_after")))
        shown = 0
        for serial, e in rows:
            if e.get("revoked_at") and not args.all:
                continue
            state = f"REVOKED {e['revoked_at']} ({e['reason']})" if e.get("revoked_at") else "valid"
            print(
                f"{serial}  {e.get('kind', ''):8}  {e.get('agency_code', '')}  "
                f"until {str(e.get('not_after', ''))[:10]}  {state}  {e.get('subject', '')}"
            )
            shown += 1
        print(f"{shown} certificate(s)", file=sys.stderr)
        return 0
    except (CAError, LookupError) as exc:
        print(f"lgsp documents ca: {exc}", file=sys.stderr)
        return 1


def _issue(ca: Any, settings: Any, args: argparse.Namespace) -> int:
    who: dict[str, str] = {}
    if not (args.name and (args.agency or args.agency_code)):
        print("looking up identity …", file=sys.stderr)
        who = _identity_lookup(settings, args.user or "", args.agency or "")
    agency_code = args.agency_code or args.agency or who.get("agency_code", "")
    if not agency_code:
        raise LookupError("the agency is unknown: give --agency-code")
    agency_name = args.agency_name or who.get("agency_name", "") or agency_code
    print(f"issuing a certificate for {args.user or agency_code} …", file=sys.stderr)
    if args.user:
        credential = ca.issue_official(
            full_name=args.name or who.get("full_name", args.user),
            agency_name=agency_name,
            agency_code=agency_code,
            email=args.email or who.get("email", ""),
            user_id=args.user_id or who.get("user_id", args.user),
            valid_days=args.days,
        )
    else:
        credential = ca.issue_agency(
            agency_name=args.name or agency_name, agency_code=agency_code, valid_days=args.days
        )
    print(f"issued {credential.serial}  {credential.certificate.subject.rfc4514_string()}")
    print(f"  valid until {credential.certificate.not_valid_after_utc:%Y-%m-%d}")
    print(f"  certificate and key: {ca.directory / 'issued' / credential.serial}.pem / .p12")
    return 0


def register(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add the `documents` command group (`lgsp documents ca …`)."""
    from lgsp.cli import config_option

    common = common or config_option()
    p = subparsers.add_parser(
        "documents",
        parents=[common],
        help="documents service: the development CA for digital signatures",
        description=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="documents_command", required=True, metavar="COMMAND")
    _register_ca(cmds, common)


def _register_ca(cmds: Any, common: argparse.ArgumentParser) -> None:
    from services.documents.signing import REVOCATION_REASONS

    p = cmds.add_parser(
        "ca",
        parents=[common],
        help="development CA for digital signatures: issue, revoke, list certificates",
        description=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="ca_command", required=True, metavar="COMMAND")
    i = sub.add_parser(
        "issue",
        parents=[common],
        help="issue a signing certificate to an official or an agency",
        description="Issue a certificate. --user: an official's signing certificate (its name, "
        "agency and user id come from the identity directory unless given); --agency: the "
        "agency's own certificate.",
    )
    who = i.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="USERNAME", help="the official's username")
    who.add_argument("--agency", metavar="CODE", help="agency identifier code, e.g. 000.00.12.H27")
    i.add_argument("--name", default="", help="full name (official) or agency name")
    i.add_argument("--agency-code", default="", help="the official's agency (default: identity's)")
    i.add_argument("--agency-name", default="", help="printed agency name (O=)")
    i.add_argument("--user-id", default="", help="token subject (default: identity's user id)")
    i.add_argument("--email", default="")
    i.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    r = sub.add_parser(
        "revoke",
        parents=[common],
        help="revoke a certificate and republish the CRL",
        description="Revoke a certificate: signatures made with it are refused from now on.",
    )
    r.add_argument("serial", help="serial in hex, as `lgsp documents ca list` shows it")
    r.add_argument(
        "--reason", default="unspecified", choices=sorted(REVOCATION_REASONS), help="RFC 5280"
    )
    ls = sub.add_parser("list", parents=[common], help="list issued certificates")
    ls.add_argument("--all", action="store_true", help="include revoked certificates")
    p.set_defaults(handler=_run)
