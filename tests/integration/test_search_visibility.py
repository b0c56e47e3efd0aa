"""Search shows a document to exactly those officials GetDocument answers OK (issue 13, 9).

The documents and search services on one bus (tests/integration/test_search_service.py's
Platform), the demo-like province of the documents tests (UBND tỉnh with two Sở below it,
STP and SNV) and its officials. A scripted history — drafts, issue without sending, send to
one of two listed recipients and then the other, recall, a legal (published) document, an
incoming document updated and replaced by its sender, confidential ones — and after each step,
once documents has settled and the indexer has read everything published, for EVERY official:
the ids Search returns (an empty query, every page) and Suggest returns (each title) equal
the ids GetDocument answers OK, and GetFacets counts as many. Then a rebuild (`lgsp search
reindex`) must give the same. On tantivy and on Elasticsearch (osmem)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from lgsp.api.documents.v1 import documents_pb2 as dpb
from lgsp.api.search.v1 import search_pb2 as spb
from lgsp.blobs import open_store
from lgsp.db import UnitOfWork
from lgsp.inbox import publish_barrier
from lgsp.outbox import pending_count
from services.documents import edxml
from services.documents.adapters.repository import Repository
from services.documents.transport import BusTransport, Delivery
from services.search.adapters.generations import Generations
from services.search.service_layer.reindex import rebuild
from tests.integration.test_search_service import TOPIC, Platform, search_platform
from tests.services.documents.workflow_support import (
    OFFICIALS,
    SNV,
    STP,
    UBND,
    draft,
    to_signed,
)

MAIN = dpb.RECIPIENT_KIND_MAIN


@pytest.fixture(name="p", params=["tantivy", "elasticsearch"])
async def platform_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Platform]:
    extra = {}
    if request.param == "elasticsearch":
        url = request.getfixturevalue("osmem")
        extra = {"LGSP_SEARCH_BACKEND": "elasticsearch", "LGSP_SEARCH_URL": url}
    async with search_platform(tmp_path, settings_env=extra) as p:
        yield p


def to(*codes: str) -> list[dpb.Recipient]:
    names = {STP: "Sở Tư pháp", SNV: "Sở Nội vụ", UBND: "UBND tỉnh"}
    return [
        *(dpb.Recipient(agency_code=c, name=names[c], kind=MAIN) for c in codes),
        dpb.Recipient(name="Lưu: VT", kind=dpb.RECIPIENT_KIND_ARCHIVE),
    ]


# --- the two sides ----------------------------------------------------------------------------


async def all_documents(p: Platform) -> dict[str, dpb.Document]:
    """Every document of the province: each agency's are listed by one of its own officials
    (an agency's list is its own officials' only)."""
    out: dict[str, dpb.Document] = {}
    for agency, official in ((UBND, "ubnd-admin"), (STP, "stp-vt"), (SNV, "snv-cv")):
        token = ""
        while True:
            page = await p.docs.as_(official).ListDocuments(
                dpb.ListDocumentsRequest(agency_code=agency, page_size=100, page_token=token)
            )
            out.update((d.id, d) for d in page.documents)
            token = page.next_page_token
            if not token:
                break
    return out


async def readable(p: Platform, user: str, ids: list[str]) -> set[str]:
    async def ok(doc_id: str) -> bool:
        try:
            await p.docs.as_(user).GetDocument(dpb.GetDocumentRequest(id=doc_id))
        except grpc.aio.AioRpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, (user, doc_id, e.details())
            return False
        return True

    found = await asyncio.gather(*(ok(i) for i in ids))
    return {i for i, yes in zip(ids, found, strict=True) if yes}


async def searched(p: Platform, user: str) -> dict[str, set[str]]:
    """Each hit's id -> the ids of the other copies it lists."""
    out: dict[str, set[str]] = {}
    token = ""
    while True:
        res = await p.search(user, spb.SearchRequest(query="", page_size=100, page_token=token))
        out.update((h.id, {c.id for c in h.copies}) for h in res.hits)
        token = res.next_page_token
        if not token:
            return out


def copy_of(d: dpb.Document) -> tuple[str, str, str]:
    """What the copies of one document share (search's base.copy_key, from the documents
    service's side): its sender, number and date."""
    incoming = d.direction == dpb.DIRECTION_INCOMING
    sender = d.sender_agency_code if incoming else d.agency_code
    if not (d.number_notation and d.promulgation_date and sender):
        return (d.id, "", "")  # no copies
    return (sender, d.number_notation.casefold(), d.promulgation_date)


def one_per_document(ids: set[str], docs: dict[str, dpb.Document]) -> dict[str, set[str]]:
    """The first copy (the sender's, then by id) of each document among `ids` -> the others."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for i in sorted(ids, key=lambda i: (docs[i].direction == dpb.DIRECTION_INCOMING, i)):
        groups.setdefault(copy_of(docs[i]), []).append(i)
    return {g[0]: set(g[1:]) for g in groups.values()}


async def suggested(p: Platform, user: str, titles: set[str]) -> set[str]:
    async def one(title: str) -> set[str]:
        res = await p.search_stub.Suggest(
            spb.SuggestRequest(prefix=title, limit=50), metadata=p.md(user), timeout=10
        )
        return {s.id for s in res.suggestions}

    return set().union(*await asyncio.gather(*(one(t) for t in titles)))


async def faceted(p: Platform, user: str) -> int:
    """How many documents GetFacets counts for `user` (every value of `status` adds up)."""
    res = await p.search_stub.GetFacets(
        spb.GetFacetsRequest(query="", facets=[spb.FacetRequest(field="status", size=50)]),
        metadata=p.md(user),
        timeout=10,
    )
    by_status = sum(v.count for f in res.facets for v in f.values)
    assert by_status == res.total_size, (user, by_status, res.total_size)
    return res.total_size


async def settle(p: Platform) -> None:
    """Wait until documents has published every event it committed, and the indexer has read
    the topic up to a barrier written after that."""
    engine = p.docs.runtime.engine
    deadline = time.monotonic() + 15
    while pending_count(engine) > 0:
        assert time.monotonic() < deadline, "the documents outbox does not drain"
        await asyncio.sleep(0.02)
    barrier = f"visibility/{uuid.uuid4().hex}"
    partitions = await publish_barrier(p.bus, TOPIC, barrier, source="test")
    while True:
        indexer = p.serving.indexer
        if indexer is not None and len(indexer.barriers.get(barrier, ())) >= partitions:
            return
        assert time.monotonic() < deadline, "the search indexer does not catch up"
        await asyncio.sleep(0.02)


async def check(p: Platform, step: str) -> None:
    """For every official: Search's ids and Suggest's ids equal GetDocument's."""
    await settle(p)
    docs = await all_documents(p)
    ids = sorted(docs)
    # Confidential documents travel without a subject: nothing to complete.
    titled = {i for i, d in docs.items() if d.confidentiality == dpb.CONFIDENTIALITY_NORMAL}
    # Suggest reads the first ten words and the one being typed: six are plenty here.
    titles = {" ".join(docs[i].subject.split()[:6]) for i in titled}
    may = {u: await readable(p, u, ids) for u in OFFICIALS}
    # The copies of one document (sent and received) are one hit listing the others.
    grouped = {u: one_per_document(may[u], docs) for u in OFFICIALS}
    want = {u: set(grouped[u]) for u in OFFICIALS}
    problems: list[str] = []
    # The indexer's last batch may still be committing when its barrier was seen: a short
    # grace, never a way around a real difference.
    deadline = time.monotonic() + 3
    while True:
        problems = []
        for user in OFFICIALS:
            got, hints, counted = await asyncio.gather(
                searched(p, user), suggested(p, user, titles), faceted(p, user)
            )
            if counted != len(want[user]):
                problems.append(f"{user} GetFacets: {counted} documents, not {len(want[user])}")
            if set(got) != want[user]:
                problems.append(
                    f"{user} Search: extra {_names(set(got) - want[user], docs)}, "
                    f"missing {_names(want[user] - set(got), docs)}"
                )
            elif got != grouped[user]:
                problems.append(f"{user} Search: copies listed {got}, not {grouped[user]}")
            if hints != want[user] & titled:
                problems.append(
                    f"{user} Suggest: extra {_names(hints - want[user], docs)}, "
                    f"missing {_names((want[user] & titled) - hints, docs)}"
                )
        if not problems or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert not problems, f"after {step}:\n" + "\n".join(problems)


def _names(ids: set[str], docs: dict[str, dpb.Document]) -> list[str]:
    def name(i: str) -> str:
        d = docs.get(i)
        if d is None:
            return f"{i} (unknown to documents)"
        status = (
            dpb.OutgoingStatus.Name(d.outgoing_status)
            if d.direction == dpb.DIRECTION_OUTGOING
            else dpb.IncomingStatus.Name(d.incoming_status)
        )
        return f"{d.agency_code}:{(d.subject or d.number_notation)[:30]}:{status}"

    return sorted(name(i) for i in ids)


# --- steps ------------------------------------------------------------------------------------


async def get(p: Platform, doc_id: str) -> dpb.Document:
    return (await p.docs.as_("ubnd-admin").GetDocument(dpb.GetDocumentRequest(id=doc_id))).document


async def issue(p: Platform, doc: dpb.Document) -> dpb.Document:
    signed = await to_signed(p.docs, doc)
    return (
        await p.docs.as_("ubnd-vt").IssueDocument(
            dpb.IssueDocumentRequest(document_id=signed.id, etag=signed.etag)
        )
    ).document


async def send(p: Platform, doc_id: str, *codes: str) -> None:
    d = await get(p, doc_id)
    await p.docs.as_("ubnd-vt").SendDocument(
        dpb.SendDocumentRequest(document_id=d.id, etag=d.etag, agency_codes=list(codes))
    )


async def incoming(p: Platform, agency: str) -> list[dpb.Document]:
    docs = await all_documents(p)
    return [
        d
        for d in docs.values()
        if d.agency_code == agency and d.direction == dpb.DIRECTION_INCOMING
    ]


async def until(cond: object, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def deliver(p: Platform, pkg: edxml.Package, to_agency: str) -> None:
    """A package from the sender's system straight onto the exchange (as the axis would)."""
    with UnitOfWork(p.docs.runtime.engine, source="documents") as uow:
        BusTransport().send(
            uow,
            Delivery(str(uuid.uuid4()), pkg.header.from_.organ_id, to_agency,
                     edxml.build_package(pkg)),
        )  # fmt: skip
        uow.commit()
    p.docs.runtime.after_commit()


async def test_search_shows_each_official_what_get_document_shows(p: Platform) -> None:
    # 1. Drafts: one of UBND listing both Sở, one of STP listing UBND, then SNV too.
    await p.docs.as_("ubnd-cv").CreateDraft(
        dpb.CreateDraftRequest(
            document=draft(
                subject="Dự thảo kế hoạch phòng chống thiên tai", recipients=to(STP, SNV)
            )
        )
    )
    stp_draft = (
        await p.docs.as_("stp-cv").CreateDraft(
            dpb.CreateDraftRequest(
                document=draft(agency_code=STP, document_type_code="BC",
                               subject="Dự thảo báo cáo công tác tư pháp quý I",
                               recipients=to(UBND))
            )
        )
    ).document  # fmt: skip
    changed = dpb.Document(id=stp_draft.id, etag=stp_draft.etag, recipients=to(UBND, SNV))
    await p.docs.as_("stp-cv").UpdateDocument(
        dpb.UpdateDocumentRequest(document=changed, update_mask={"paths": ["recipients"]})
    )
    await check(p, "drafts")

    # 2. Issued, not sent: listed recipients must not see it; a legal document is published.
    a = await issue(p, draft(subject="Quyết định về cải cách hành chính năm 2026",
                              recipients=to(STP, SNV)))  # fmt: skip
    legal = await issue(p, draft(document_type_code="QĐ-QPPL",
                                  subject="Quy định quản lý văn bản điện tử trên địa bàn tỉnh",
                                  recipients=to(STP)))  # fmt: skip
    await check(p, "issue without sending")

    # 3. Sent to one of the two listed recipients.
    await send(p, a.id, STP)
    await until(lambda: _count(p, STP, 1))
    await check(p, "send to STP only")

    # 4. … then to the other; the legal document to its recipient.
    await send(p, a.id, SNV)
    await send(p, legal.id, STP)
    await until(lambda: _count(p, SNV, 1))
    await until(lambda: _count(p, STP, 2))
    await check(p, "send to SNV")

    # 5. Recalled: recipients keep reading what they were sent (marked recalled); the legal
    # document is no longer published.
    for doc_id in (a.id, legal.id):
        d = await get(p, doc_id)
        await p.docs.as_("ubnd-vt").RecallDocument(
            dpb.RecallDocumentRequest(document_id=d.id, etag=d.etag, reason="Sai sót")
        )
    await until(lambda: _recalled(p, 3))
    await check(p, "recall")

    # 6. A document sent to STP, then updated and replaced by its sender (edXML 2 and 3).
    b = await issue(p, draft(subject="Công văn về tổng kết công tác năm", recipients=to(STP)))
    await send(p, b.id, STP)
    await until(lambda: _count(p, STP, 3))
    with p.docs.app._read() as conn:
        outgoing = Repository(conn).get(b.id)
    assert outgoing is not None
    base = p.docs.app.exchange.package(
        outgoing, [r for r in outgoing.recipients if r.agency_code], p.docs.app.now()
    )
    update = replace(
        base,
        header=replace(base.header, subject="Công văn về tổng kết công tác năm (đính chính)"),
        business=edxml.Business(doc_type=edxml.BusinessDocType.UPDATE, reason="Đính chính"),
    )
    deliver(p, update, STP)
    new_header = replace(
        base.header,
        code=edxml.Code("99", "CV-UBND"),
        subject="Công văn thay thế về tổng kết công tác năm",
        response_for=(
            edxml.ResponseFor(
                organ_id=UBND,
                code=b.number_notation,
                promulgation_date=base.header.promulgation_info.promulgation_date,
            ),
        ),
    )
    deliver(
        p,
        replace(base, header=new_header,
                business=edxml.Business(doc_type=edxml.BusinessDocType.REPLACE, reason="Thay")),
        STP,
    )  # fmt: skip
    await until(lambda: _count(p, STP, 4))
    await until(lambda: _recalled(p, 4))
    # STP's clerk corrects its registration of the replacement.
    new = next(d for d in await incoming(p, STP) if d.number_notation == "99/CV-UBND")
    fixed = dpb.Document(id=new.id, etag=new.etag, subject="Công văn thay thế (đã vào sổ)")
    await p.docs.as_("stp-vt").UpdateDocument(
        dpb.UpdateDocumentRequest(document=fixed, update_mask={"paths": ["subject"]})
    )
    await check(p, "update and replace")

    # 7. Confidential: issued by UBND (never sent electronically), and one STP registers from
    # paper.
    await issue(p, draft(confidentiality=dpb.CONFIDENTIALITY_SECRET, recipients=to(STP)))
    await p.docs.as_("stp-vt").RegisterIncoming(
        dpb.RegisterIncomingRequest(
            document=dpb.Document(
                agency_code=STP, document_type_code="CV", number_notation="12/CV-CA",
                subject="Về công tác bảo vệ bí mật nhà nước", sender_agency_name="Công an tỉnh",
                confidentiality=dpb.CONFIDENTIALITY_CONFIDENTIAL,
            )
        )
    )  # fmt: skip
    await check(p, "confidential")

    # 8. A rebuilt index shows the same.
    old = p.serving.name
    built = await rebuild(
        Generations(p.settings), p.bus, attachments=open_store(p.settings.attachments)
    )
    await until(lambda: _switched(p, built.generation, old))
    await check(p, "reindex")


async def _count(p: Platform, agency: str, n: int) -> bool:
    return len(await incoming(p, agency)) >= n


async def _recalled(p: Platform, n: int) -> bool:
    docs = await all_documents(p)
    return sum(1 for d in docs.values() if d.incoming_status == dpb.INCOMING_STATUS_RECALLED) >= n


async def _switched(p: Platform, name: str, old: str | None) -> bool:
    return p.serving.name == name != old
