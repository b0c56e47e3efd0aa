"""The search service end to end, in process: the documents service and the search service
on one embedded bus, stand-in issuer tokens, real gRPC servers on free ports.

Issue → findable within a second; recall → marked; another agency cannot find, count or
facet it; attachment text (DOCX, PDF) is searchable and a malformed file does not stop the
indexer; a rebuild gives the same results while the old index keeps answering; bad inputs
get clear INVALID_ARGUMENT errors."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.documents.v1 import documents_pb2_grpc
from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.api.search.v1 import search_pb2 as spb
from lgsp.api.search.v1 import search_pb2_grpc
from lgsp.app import ServiceRuntime
from lgsp.authn import JwtAuthenticator
from lgsp.blobs import open_store
from lgsp.bus import Bus, open_bus
from lgsp.config import Settings, load_settings
from lgsp.grpc.client import channel
from services.documents.plugin import PLUGIN as DOCUMENTS
from services.search.adapters.generations import Generations
from services.search.plugin import PLUGIN as SEARCH
from services.search.service_layer.reindex import rebuild
from services.search.service_layer.serving import Serving
from tests.services.documents.workflow_support import (
    AGENCIES,
    OFFICIALS,
    SNV,
    STP,
    Env,
    draft,
    to_signed,
)
from tests.support.issuer import FakeIssuer

TOPIC = "lgsp.documents.v1"


@dataclass
class Platform:
    settings: Settings
    bus: Bus
    issuer: FakeIssuer
    docs: Env
    search_stub: search_pb2_grpc.SearchServiceStub
    serving: Serving
    search_address: str = ""

    def md(self, user: str, roles: list[str] | None = None) -> tuple[tuple[str, str], ...]:
        if user in OFFICIALS:
            return self.docs.md(user)
        agency = {"snv-ld": SNV, "stp-secret": STP}.get(user, SNV)
        roles = roles or ["leader"]
        token = self.issuer.token(
            sub=user, preferred_username=user, agency_code=agency, agency_roles={agency: roles}
        )
        return (("authorization", f"Bearer {token}"),)

    async def search(self, user: str, req: spb.SearchRequest) -> spb.SearchResponse:
        return await self.search_stub.Search(req, metadata=self.md(user), timeout=10)

    async def ids(self, user: str, query: str, **kw: Any) -> list[str]:
        res = await self.search(user, spb.SearchRequest(query=query, page_size=100, **kw))
        return [h.id for h in res.hits]

    async def issue(self, doc: dpb.Document | None = None) -> dpb.Document:
        signed = await to_signed(self.docs, doc)
        return (
            await self.docs.as_("ubnd-vt").IssueDocument(
                dpb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
            )
        ).document

    async def attach(self, doc_id: str, data: bytes, name: str, content_type: str) -> None:
        """What the documents service emits when a file is uploaded (AttachmentAdded)."""
        store = open_store(self.settings.attachments)
        stored = await store.put_bytes(data, declared_type=content_type)
        env = events.make_envelope(
            ev.AttachmentAdded(
                document_id=doc_id,
                attachment=dpb.Attachment(
                    id=str(uuid.uuid4()),
                    file_name=name,
                    content_type=stored.content_type,
                    size_bytes=stored.size,
                    sha256=stored.sha256,
                ),
            ),
            source="documents",
            subject=doc_id,
        )
        headers = {k: v.encode() for k, v in events.envelope_headers(env).items()}
        await self.bus.publish(TOPIC, doc_id, events.encode(env), headers)


async def eventually(check: Any, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def search_platform(
    tmp_path: Path, commit_interval: float = 0.1, settings_env: Mapping[str, str] | None = None
) -> AsyncIterator[Platform]:
    """Documents and search on one embedded bus; `settings_env` adds LGSP_* settings (e.g.
    the search backend)."""
    issuer = FakeIssuer()
    await issuer.start()
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_DOCUMENTS_NATIONAL_AXIS": "false",
            **(settings_env or {}),
        }
    )
    bus = open_bus(f"sqlite:///{tmp_path}/bus.db")
    authn = [JwtAuthenticator(issuer.issuer), JwtAuthenticator(issuer.issuer)]
    docs_rt = ServiceRuntime(
        DOCUMENTS.with_options(agencies=AGENCIES, authenticator=authn[0]),
        settings,
        port=0,
        bus=bus,
    )
    search_rt = ServiceRuntime(
        SEARCH.with_options(
            authenticator=authn[1], commit_interval=commit_interval, agencies=AGENCIES
        ),
        settings,
        port=0,
        bus=bus,
    )
    await docs_rt.start()
    await search_rt.start()
    dch = channel(docs_rt.server.address, service_name="search-test")
    sch = channel(search_rt.server.address, service_name="search-test")
    try:
        docs_env = Env(
            issuer,
            documents_pb2_grpc.DocumentServiceStub(dch),
            docs_rt,
            docs_rt.app.app,
            docs_rt.app.files,
            tmp_path,
        )
        yield Platform(
            settings,
            bus,
            issuer,
            docs_env,
            search_pb2_grpc.SearchServiceStub(sch),
            search_rt.app,
            search_rt.server.address,
        )
    finally:
        await dch.close()
        await sch.close()
        await search_rt.stop(0)
        await docs_rt.stop(0)
        await bus.close()
        for a in authn:
            await a.aclose()
        await issuer.stop()


@pytest.fixture(name="p")
async def platform_fixture(tmp_path: Path) -> AsyncIterator[Platform]:
    async with search_platform(tmp_path) as p:
        yield p


# --- files made in the test ------------------------------------------------------------------


def docx_bytes(*paragraphs: str) -> bytes:
    import docx

    d = docx.Document()
    for text in paragraphs:
        d.add_paragraph(text)
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def pdf_bytes(text: str) -> bytes:
    """A one-page PDF showing `text` (ASCII) in Helvetica, with a correct xref table."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


# --- tests ----------------------------------------------------------------------------------


async def test_issued_document_is_findable_within_a_second_and_recall_marks_it(
    p: Platform,
) -> None:
    doc = await p.issue()
    issued_at = time.monotonic()

    async def issued_hit() -> Any:
        # The draft was indexed before: wait for the issued version (its number), not any.
        res = await p.search(
            "ubnd-cv", spb.SearchRequest(query="cai cach hanh chinh", highlight=True)
        )
        return next(
            (h for h in res.hits if h.id == doc.id and h.fields["status"] == "issued"), None
        )

    hit = await eventually(issued_hit, within=5)
    # The goal (findable within a second) is measured by bench/search_freshness; here only a
    # bound a loaded CI machine keeps: the index follows by events, not by a periodic rebuild.
    assert time.monotonic() - issued_at < 3.0, "issued → findable took over 3 seconds"
    assert hit.reference == doc.number_notation
    assert any("<em>cải" in f for h in hit.highlights for f in h.fragments)

    # Listed for STP but not sent yet: STP does not find it (GetDocument says NOT_FOUND too).
    assert doc.id not in await p.ids("stp-cv", "cai cach hanh chinh")
    # Sent to STP: STP now sees the sender's copy (and its own incoming copy); SNV does not.
    sent = (
        await p.docs.as_("ubnd-vt").SendDocument(
            dpb.SendDocumentRequest(document_id=doc.id, etag=doc.etag)
        )
    ).document
    await eventually(lambda: _has(p, "stp-cv", doc.id))
    # STP's incoming copy is indexed too, grouped with the sender's as one hit.
    incoming = await eventually(lambda: _incoming_ids(p, "stp-cv", doc.id))
    assert doc.id in await p.ids("stp-cv", "cai cach hanh chinh")
    assert not set(incoming) & set(await p.ids("stp-cv", "cai cach hanh chinh"))
    assert doc.id not in await p.ids("snv-cv", "cai cach hanh chinh")

    # Status reports from STP change the sender's copy: recall with its current etag.
    sent = (await p.docs.as_("ubnd-vt").GetDocument(dpb.GetDocumentRequest(id=sent.id))).document
    await p.docs.as_("ubnd-vt").RecallDocument(
        dpb.RecallDocumentRequest(document_id=sent.id, etag=sent.etag, reason="sai sót")
    )

    async def recalled() -> bool:
        res = await p.search("ubnd-cv", spb.SearchRequest(query="cai cach hanh chinh"))
        return any(h.id == doc.id and h.fields["status"] == "recalled" for h in res.hits)

    await eventually(recalled)

    # Withdrawn from STP: STP still reads what it was sent, as GetDocument lets it, marked
    # recalled; its own copy is marked 13.
    async def stp_copy_recalled() -> bool:
        res = await p.search("stp-cv", spb.SearchRequest(query="cai cach hanh chinh"))
        status = {h.id: h.fields["status"] for h in res.hits}
        status.update({c.id: c.status for h in res.hits for c in h.copies})
        return status.get(doc.id) == "recalled" and all(
            status.get(i) == "recalled" for i in incoming
        )

    await eventually(stp_copy_recalled)
    assert doc.id not in await p.ids("snv-cv", "cai cach hanh chinh")


async def _has(p: Platform, user: str, doc_id: str) -> bool:
    return doc_id in await p.ids(user, "cai cach hanh chinh")


async def _incoming_ids(p: Platform, user: str, sender_doc: str) -> list[str]:
    """The recipients' copies `user` may read of the sender's document, as its hit lists them."""
    res = await p.search(user, spb.SearchRequest(query="cai cach hanh chinh"))
    return [
        c.id
        for h in res.hits
        if h.id == sender_doc
        for c in h.copies
        if c.direction == "incoming" and c.agency_code == STP
    ]


async def test_other_agencies_cannot_find_count_facet_or_complete_it(p: Platform) -> None:
    doc = await p.issue(draft(subject="Kế hoạch chuyển đổi số Hà Tĩnh năm 2026", recipients=[]))
    secret = await p.issue(
        draft(confidentiality=dpb.CONFIDENTIALITY_SECRET, recipients=[])
    )  # its events carry no subject: found by number only
    await eventually(lambda: p.ids("ubnd-cv", "chuyen doi so"))
    await eventually(lambda: p.ids("ubnd-ld", secret.number_notation))

    for user in ("snv-cv", "stp-ld"):
        assert await p.ids(user, "chuyen doi so") == []
        facets = await p.search_stub.GetFacets(
            spb.GetFacetsRequest(query=""), metadata=p.md(user), timeout=10
        )
        assert facets.total_size == 0
        assert all(not f.values for f in facets.facets)
        sug = await p.search_stub.Suggest(
            spb.SuggestRequest(prefix="chuyen doi"), metadata=p.md(user), timeout=10
        )
        assert list(sug.suggestions) == []
    # In its own agency: found, counted, faceted, completed.
    facets = await p.search_stub.GetFacets(
        spb.GetFacetsRequest(query="chuyen doi so"), metadata=p.md("ubnd-cv"), timeout=10
    )
    assert facets.total_size == 1
    by_field = {f.field: {v.value: v.count for v in f.values} for f in facets.facets}
    assert by_field["document_type_code"] == {"QĐ": 1}
    sug = await p.search_stub.Suggest(
        spb.SuggestRequest(prefix="ke hoach chuyen d"), metadata=p.md("ubnd-cv"), timeout=10
    )
    assert [s.id for s in sug.suggestions] == [doc.id]
    assert "<em>" in sug.suggestions[0].highlighted
    # The confidential one: its agency's officials find it, as GetDocument shows it to them
    # (by number: its events carry no subject); other agencies do not.
    assert await p.ids("ubnd-ld", secret.number_notation) == [secret.id]
    assert await p.ids("ubnd-cv", secret.number_notation) == [secret.id]
    assert secret.id not in await p.ids("stp-ld", "")


async def test_attachment_text_is_searchable_and_a_bad_file_does_not_stop_indexing(
    p: Platform,
) -> None:
    doc = await p.issue(draft(recipients=[]))
    await p.attach(
        doc.id,
        docx_bytes("Phụ lục: danh mục thủ tục hành chính về đất đai và khoáng sản."),
        "phu-luc.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    await p.attach(
        doc.id, b"%PDF-1.4\n\x00garbage that is not a PDF", "hong.pdf", "application/pdf"
    )
    await p.attach(
        doc.id, pdf_bytes("Bao cao tong ket thuy loi nam 2025"), "bc.pdf", "application/pdf"
    )
    assert await eventually(lambda: p.ids("ubnd-cv", "khoang san")) == [doc.id]
    assert await eventually(lambda: p.ids("ubnd-cv", '"thuy loi"')) == [doc.id]
    res = await p.search("ubnd-cv", spb.SearchRequest(query="khoáng sản", highlight=True))
    content = [f for h in res.hits[0].highlights if h.field == "content" for f in h.fragments]
    assert content and "<em>khoáng</em> <em>sản</em>" in content[0]
    # The indexer carried on after the malformed file: a later document is indexed.
    later = await p.issue(draft(subject="Về công tác phòng chống thiên tai", recipients=[]))
    assert await eventually(lambda: p.ids("ubnd-cv", "thien tai")) == [later.id]
    assert p.serving.indexer is not None
    assert p.serving.indexer.counts["attachment-malformed"] == 1


async def test_reindex_rebuilds_the_same_results_while_the_old_index_answers(
    p: Platform,
) -> None:
    docs = [
        await p.issue(draft(subject=f"Kế hoạch cải cách hành chính đợt {i}", recipients=[]))
        for i in range(3)
    ]
    await p.attach(
        docs[0].id, docx_bytes("Nội dung về xây dựng nông thôn mới."), "a.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )  # fmt: skip
    want = {d.id for d in docs}
    await eventually(lambda: _all_found(p, want))
    await eventually(lambda: p.ids("ubnd-cv", "nong thon moi"))
    before = await p.search("ubnd-cv", spb.SearchRequest(query="cai cach", page_size=50))
    old_name = p.serving.name

    # A search loop keeps asking during the rebuild and the switch: it must never fail or
    # see fewer documents.
    stop = asyncio.Event()
    seen: list[int] = []

    async def keep_searching() -> None:
        while not stop.is_set():
            seen.append(len(await p.ids("ubnd-cv", "cai cach hanh chinh")))
            await asyncio.sleep(0.01)

    searcher = asyncio.create_task(keep_searching())
    progress: list[tuple[int, int | None]] = []
    built = await rebuild(
        Generations(p.settings), p.bus, attachments=open_store(p.settings.attachments),
        progress=lambda done, left: progress.append((done, left)),
    )  # fmt: skip
    # An event published after the rebuild finished, before the service switched: the
    # service drains the rebuild's group into the new generation, so it is not lost.
    extra = await p.issue(draft(subject="Kế hoạch cải cách hành chính bổ sung", recipients=[]))
    await eventually(lambda: _switched(p, built.generation))
    stop.set()
    await searcher
    assert p.serving.name == built.generation != old_name
    assert min(seen) >= 3 and progress[-1] == (progress[-1][0], 0) and progress[-1][0] > 0
    after = await p.search("ubnd-cv", spb.SearchRequest(query="cai cach", page_size=50))
    assert {h.id for h in after.hits} >= {h.id for h in before.hits}
    await eventually(lambda: _all_found(p, want | {extra.id}))
    assert await p.ids("ubnd-cv", "nong thon moi") == [docs[0].id]
    assert built.documents >= 3


async def _all_found(p: Platform, want: set[str]) -> bool:
    return want <= set(await p.ids("ubnd-cv", "cai cach hanh chinh"))


async def _switched(p: Platform, name: str) -> bool:
    return p.serving.name == name


async def test_bad_inputs_get_clear_errors(p: Platform) -> None:
    await p.issue(draft(recipients=[]))
    await eventually(lambda: p.ids("ubnd-cv", "cai cach"))

    async def code_of(req: Any, method: str = "Search") -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await getattr(p.search_stub, method)(req, metadata=p.md("ubnd-cv"), timeout=10)
        return e.value.code(), e.value.details() or ""

    # A huge page size is capped (the proto's contract), a negative one refused.
    res = await p.search("ubnd-cv", spb.SearchRequest(query="", page_size=2_000_000_000))
    assert len(res.hits) <= 100
    code, details = await code_of(spb.SearchRequest(query="x", page_size=-1))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in details

    for i in range(3):
        await p.issue(draft(subject=f"Cải cách thủ tục số {i}", recipients=[]))
    await eventually(lambda: _count_at_least(p, "cai cach", 4))
    first = await p.search("ubnd-cv", spb.SearchRequest(query="cai cach", page_size=1))
    assert first.next_page_token
    tampered = first.next_page_token[:-2] + ("A" if first.next_page_token[-2] != "A" else "B")
    tampered += first.next_page_token[-1]
    code, details = await code_of(
        spb.SearchRequest(query="cai cach", page_size=1, page_token=tampered)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "cursor" in details
    # Another agency cannot reuse the cursor.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await p.search_stub.Search(
            spb.SearchRequest(query="cai cach", page_size=1, page_token=first.next_page_token),
            metadata=p.md("stp-cv"), timeout=10,
        )  # fmt: skip
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # Control characters: in the query they are spaces; in a filter value an error.
    ok = await p.search("ubnd-cv", spb.SearchRequest(query="cai\x00cach\u202ehanh\x07chinh"))
    assert ok.total_size >= 1
    code, details = await code_of(
        spb.SearchRequest(
            query="x",
            filters=[spb.Filter(field="agency_code", terms=spb.TermsFilter(values=["a\x00"]))],
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "filters" in details
    code, details = await code_of(
        spb.SearchRequest(
            query="x", filters=[spb.Filter(field="salary", terms=spb.TermsFilter(values=["1"]))]
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "salary" in details
    code, _ = await code_of(spb.SearchRequest(query="x" * 1001))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await code_of(spb.SearchRequest(query="x", sort=[spb.SortOrder(field="salary")]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await code_of(spb.SuggestRequest(prefix="x" * 300), "Suggest")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # No token: UNAUTHENTICATED.
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await p.search_stub.Search(spb.SearchRequest(query="x"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def _count_at_least(p: Platform, query: str, n: int) -> bool:
    res = await p.search("ubnd-cv", spb.SearchRequest(query=query))
    return res.total_size >= n
