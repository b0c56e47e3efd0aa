"""`lgsp search`: search the document archive from a terminal, and rebuild the index.

    lgsp search "cai cach hanh chinh" --agency 000.00.00.H27 --type QĐ --from 2026-01-01
    lgsp search "28/2018/QĐ-TTg" --json
    lgsp search reindex                 # rebuild from lgsp.documents.v1, then switch

Searching calls the running search service over gRPC with an access token: `--token`, else
the SEARCH_ACCESS_TOKEN environment variable (not LGSP_*: unknown LGSP_* variables are
configuration errors), else `--username` with the password prompted for (or read from stdin
with --password-stdin) and exchanged at the identity provider's token endpoint (password
grant, client `--client-id`, default admin-cli). The results are what that user may see.
`reindex` works on the index directory and the bus directly (no token): run it on the
search service's machine, as its user.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import html
import json
import os
import re
import sys
from typing import Any

from lgsp.cli import Subparsers, config_option, settings_from_args

TOKEN_ENV = "SEARCH_ACCESS_TOKEN"
MAX_LIMIT = 100
# Facets printed under the hits: (field, heading).
FACETS = (
    ("document_type_code", "Loại văn bản"),
    ("agency_code", "Cơ quan ban hành"),
    ("direction", "Văn bản đi/đến"),
    ("year", "Năm"),
)
_EM = re.compile(r"</?em>")


def register(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        parents=[config_option()],
        help="search documents, or `lgsp search reindex` to rebuild the index",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("words", nargs="*", help='the query ("quoted phrase", -exclude, OR), or reindex')
    p.add_argument("--query", help="the query, when it is the single word 'reindex'")
    p.add_argument("--agency", action="append", default=[], help="issuing agency code")
    p.add_argument("--type", action="append", default=[], help="document type code (QĐ, CV…)")
    p.add_argument("--from", dest="date_from", help="issued on or after YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", help="issued on or before YYYY-MM-DD")
    p.add_argument("--sort", choices=["relevance", "date"], default="relevance")
    p.add_argument("--limit", type=_limit, default=10, help="hits to show (1-100)")
    p.add_argument("--direction", choices=["outgoing", "incoming"], help="văn bản đi / đến")
    p.add_argument(
        "--priority",
        action="append",
        default=[],
        choices=["normal", "urgent", "very_urgent", "flash"],
    )
    p.add_argument("--no-facets", action="store_true", help="do not count and print facets")
    p.add_argument("--json", action="store_true", help="print the response as JSON")
    p.add_argument("--token", help=f"access token (default: ${TOKEN_ENV})")
    p.add_argument("--username", help="sign in as this user (password prompted)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--client-id", default="admin-cli", help="OAuth client for --username")
    p.add_argument("--address", help="search service host:port (default: from the settings)")
    p.add_argument("--keep", type=int, default=2, help="reindex: generations to keep")
    p.set_defaults(handler=_run)


def _limit(text: str) -> int:
    """--limit: a whole number from 1 to 100, refused otherwise (not silently clamped)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{n} is outside 1-{MAX_LIMIT}")
    return n


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.words == ["reindex"] and args.query is None:
        return asyncio.run(_reindex(settings, args.keep))
    query = args.query if args.query is not None else " ".join(args.words)
    try:
        token = _token(settings, args)
    except RuntimeError as e:
        print(f"lgsp search: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_search(settings, args, query, token))


# --- search ---------------------------------------------------------------------------------


def _token(settings: Any, args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    if not args.username and os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    if not args.username:
        raise RuntimeError(f"give --token, set {TOKEN_ENV}, or sign in with --username")
    import httpx

    from lgsp.authn import issuer_from_settings
    from lgsp.tls import https_verify

    password = (
        sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Mật khẩu: ")
    )
    url = f"{issuer_from_settings(settings)}/protocol/openid-connect/token"
    r = httpx.post(
        url,
        data={
            "grant_type": "password",
            "client_id": args.client_id,
            "username": args.username,
            "password": password,
            "scope": "openid",
        },
        timeout=10,
        verify=https_verify(settings),
    )
    if r.status_code != 200:
        raise RuntimeError(f"sign-in refused: {r.json().get('error_description', r.text)[:200]}")
    return str(r.json()["access_token"])


def _request(args: argparse.Namespace, query: str) -> Any:
    from lgsp.api.search.v1 import search_pb2 as pb

    filters = []
    if args.agency:
        filters.append(pb.Filter(field="agency_code", terms=pb.TermsFilter(values=args.agency)))
    if args.type:
        filters.append(
            pb.Filter(field="document_type_code", terms=pb.TermsFilter(values=args.type))
        )
    if args.date_from or args.date_to:
        filters.append(
            pb.Filter(
                field="promulgation_date",
                range=pb.RangeFilter(gte=args.date_from or "", lte=args.date_to or ""),
            )
        )
    if args.direction:
        filters.append(pb.Filter(field="direction", terms=pb.TermsFilter(values=[args.direction])))
    if args.priority:
        filters.append(pb.Filter(field="priority", terms=pb.TermsFilter(values=args.priority)))
    sort = []
    if args.sort == "date":
        sort = [pb.SortOrder(field="promulgation_date", direction=pb.SORT_DIRECTION_DESCENDING)]
    return pb.SearchRequest(
        query=query,
        filters=filters,
        sort=sort,
        page_size=args.limit,
        highlight=True,
        facets=[] if args.no_facets else [pb.FacetRequest(field=f, size=5) for f, _ in FACETS],
    )


async def _search(settings: Any, args: argparse.Namespace, query: str, token: str) -> int:
    import grpc
    from google.protobuf.json_format import MessageToDict

    from lgsp.api.search.v1 import search_pb2_grpc
    from lgsp.config import peer
    from lgsp.grpc.client import channel, channel_credentials

    address = args.address or peer(settings, "search").address
    ch = channel(address, service_name="lgsp-cli", credentials=channel_credentials(settings))
    try:
        stub = search_pb2_grpc.SearchServiceStub(ch)
        res = await stub.Search(
            _request(args, query), metadata=(("authorization", f"Bearer {token}"),), timeout=15
        )
    except grpc.aio.AioRpcError as e:
        print(f"lgsp search: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        await ch.close()
    if args.json:
        print(json.dumps(MessageToDict(res), ensure_ascii=False, indent=2))
        return 0
    print(format_results(res, color=sys.stdout.isatty()))
    return 0


def render(fragment: str, color: bool) -> str:
    """A highlighted fragment for a terminal: <em> as bold yellow, or as-is without colour
    (tags dropped); the rest was HTML-escaped by the service."""
    if color:
        text = fragment.replace("<em>", "\x1b[1;33m").replace("</em>", "\x1b[0m")
    else:
        text = _EM.sub("", fragment)
    return " ".join(html.unescape(text).split())


def _sent_and_received(h: Any) -> str:
    """Where the document went, from its other copies the caller may read (one hit for the
    sender's and the recipients' copies)."""
    parts = []
    if h.sent_to_agency_codes:
        parts.append("Gửi đến: " + ", ".join(h.sent_to_agency_codes))
    received = [c for c in h.copies if c.direction == "incoming"]
    if received:
        parts.append(
            "Bản đến tại: "
            + ", ".join(
                f"{c.agency_code} ({c.arrival_date})" if c.arrival_date else c.agency_code
                for c in received
            )
        )
    sender = next((c for c in h.copies if c.direction == "outgoing"), None)
    if sender is not None:
        parts.append(f"Bản gửi đi: {sender.agency_code}")
    return " · ".join(parts)


def format_results(res: Any, color: bool = False) -> str:
    bold = (lambda s: f"\x1b[1m{s}\x1b[0m") if color else (lambda s: s)
    more = "+" if res.total_size_is_lower_bound else ""
    lines = [f"{res.total_size}{more} văn bản ({res.took_ms} ms)"]
    if res.suggested_query:
        lines.append(f"Có phải bạn muốn tìm: {bold(res.suggested_query)}?")
    for i, h in enumerate(res.hits, 1):
        date = h.fields.get("issued_date", "")
        meta = " · ".join(
            x
            for x in (
                h.reference or "(chưa có số)",
                date,
                h.fields.get("document_type_code", ""),
                h.agency_code,
                h.fields.get("status", ""),
            )
            if x
        )
        lines.append(f"{i:>3}. {bold(meta)}")
        lines.append(f"     {h.title or '(trích yếu không hiển thị: văn bản mật)'}")
        snippet = next(
            (f for hl in h.highlights if hl.field in ("summary", "content") for f in hl.fragments),
            "",
        )
        if snippet:
            lines.append(f"     … {render(snippet, color)} …")
        if where := _sent_and_received(h):
            lines.append(f"     {where}")
        lines.append(f"     id {h.id}")
    if res.next_page_token:
        lines.append("(còn nữa: thu hẹp truy vấn hoặc tăng --limit)")
    headings = dict(FACETS)
    for facet in res.facets:
        if facet.values:
            counts = ", ".join(f"{v.label or v.value} ({v.count})" for v in facet.values)
            lines.append(f"{bold(headings.get(facet.field, facet.field))}: {counts}")
    return "\n".join(lines)


# --- reindex --------------------------------------------------------------------------------


async def _reindex(settings: Any, keep: int) -> int:
    from tqdm import tqdm

    from lgsp.bus import open_bus
    from services.search.adapters.generations import Generations
    from services.search.bootstrap import attachment_reader
    from services.search.service_layer.reindex import ReindexBusy, rebuild

    bus = open_bus(settings.bus.url, client_id="lgsp-search-reindex")
    bar = tqdm(desc="reindex", unit="ev", dynamic_ncols=True)

    def progress(done: int, left: int | None) -> None:
        if left is not None:
            bar.total = done + left
        bar.n = done
        bar.refresh()

    try:
        built = await rebuild(
            Generations(settings),
            bus,
            attachments=attachment_reader(settings),
            progress=progress,
            keep=keep,
        )
    except ReindexBusy as e:
        print(f"lgsp search reindex: {e}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        await bus.close()
    print(
        f"index {built.generation}: {built.documents} documents from {built.events} events; "
        "it serves now (a running search service switches within a second)"
    )
    if built.pruned:
        print(f"removed old generations: {', '.join(built.pruned)}")
    return 0
