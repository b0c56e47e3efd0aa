"""The copies of one document (the sender's, each recipient's) are one hit for an official:
the first copy they may read (base.COPY_PREFIX), never one they may not; totals and facets
count documents. On both engines, and kept by the indexer as copies come and change."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp import events
from lgsp.api.documents.v1 import documents_pb2 as pb
from lgsp.api.documents.v1 import events_pb2 as ev
from lgsp.bus import Message
from services.search.adapters.state import StateStore
from services.search.index import (
    Caller,
    FacetRequest,
    Filter,
    IndexedDocument,
    SearchQuery,
    open_index,
)
from services.search.index.base import copy_key, hidden_by
from services.search.service_layer.copies import copies_of
from services.search.service_layer.indexer import TOPIC, Indexer
from services.search.service_layer.projection import OWN, DocState

UBND, STP, SNV = "000.00.00.H27", "000.01.30.H27", "000.02.30.H27"
DAY = date(2026, 3, 2)


def copy(doc_id: str, holder: str, readers: tuple[str, ...], incoming: bool) -> IndexedDocument:
    return IndexedDocument(
        id=doc_id,
        number_notation="5/QĐ-UBND",
        subject="Quyết định về chuyển đổi số",
        doc_type="QĐ",
        agency_code=holder,
        sender_agency_code=UBND,
        issued_date=DAY,
        direction="incoming" if incoming else "outgoing",
        reader_agency_codes=readers,
        version=1,
    )


def grouped(*docs: IndexedDocument) -> list[IndexedDocument]:
    hiders = hidden_by(docs)
    return [dataclasses.replace(d, hidden_by=hiders[d.id]) for d in docs]


def ids(index: object, caller: Caller, query: str = "chuyển đổi số") -> tuple[list[str], int]:
    res = index.search(SearchQuery(query), caller)  # type: ignore[attr-defined]
    return [h.id for h in res.hits], res.total


def test_each_official_finds_one_copy_and_only_one_they_may_read(index) -> None:
    sent = copy("out", UBND, (OWN + UBND, OWN + STP), incoming=False)  # sent to STP only
    at_stp = copy("in-stp", STP, (OWN + STP,), incoming=True)
    at_snv = copy("in-snv", SNV, (OWN + SNV,), incoming=True)  # arrived on paper
    other = dataclasses.replace(at_snv, id="other", number_notation="6/QĐ-UBND")
    keys = {copy_key(d) for d in (sent, at_stp, at_snv)}
    assert len(keys) == 1 and copy_key(other) not in keys
    index.upsert([*grouped(sent, at_stp, at_snv), other])
    index.commit()
    assert ids(index, Caller(OWN + UBND)) == (["out"], 1)  # the sender: its own copy
    assert ids(index, Caller(OWN + STP)) == (["out"], 1)  # sent to STP: one hit, not two
    # SNV was not sent the outgoing copy: its own copy, never the sender's.
    assert sorted(ids(index, Caller(OWN + SNV))[0]) == ["in-snv", "other"]
    # Above every holder: one hit for the three copies; facets count it once.
    above = Caller(OWN + UBND, agencies=(OWN + STP, OWN + SNV))
    res = index.search(SearchQuery("chuyển đổi số", facets=(FacetRequest("direction"),)), above)
    assert sorted(h.id for h in res.hits) == ["other", "out"] and res.total == 2
    counts = {v.value: v.count for v in res.facets[0].values}
    assert counts == {"outgoing": 1, "incoming": 1}
    # The same with filters (tantivy then matches rights × type × year as one compound key).
    typed = SearchQuery(
        "chuyển đổi số", filters=(Filter("doc_type", ("QĐ",)), Filter("year", ("2026",)))
    )
    assert [h.id for h in index.search(typed, Caller(OWN + STP)).hits] == ["out"]
    year = Filter("issued_date", gte="2026-01-01", lte="2026-12-31")
    dated = SearchQuery("", filters=(Filter("doc_type", ("QĐ",)), year))
    assert index.search(dated, above).total == 2
    # A copy's hiding terms are not rights: they let no one read anything.
    assert ids(index, Caller("~n:" + OWN + UBND)) == ([], 0)


def test_a_confidential_sender_copy_hides_nothing_from_who_may_not_read_it(index) -> None:
    sent = dataclasses.replace(
        copy("out", UBND, (OWN + UBND, OWN + STP), incoming=False), confidentiality="secret"
    )
    at_stp = copy("in-stp", STP, (OWN + STP,), incoming=True)
    index.upsert(grouped(sent, at_stp))
    index.commit()
    assert ids(index, Caller(OWN + STP, may_read_confidential=False), "5/QĐ-UBND")[0] == ["in-stp"]
    assert ids(index, Caller(OWN + STP, may_read_confidential=True), "5/QĐ-UBND")[0] == ["out"]


# --- the indexer keeps the copies' hiding terms as copies come and change ---------------------


def document(**kw: object) -> pb.Document:
    m = pb.Document(
        id="out",
        direction=pb.DIRECTION_OUTGOING,
        agency_code=UBND,
        outgoing_status=pb.OUTGOING_STATUS_ISSUED,
        document_type_code="QĐ",
        number_notation="5/QĐ-UBND",
        subject="Quyết định về chuyển đổi số",
        promulgation_date=DAY.isoformat(),
        confidentiality=pb.CONFIDENTIALITY_NORMAL,
        recipients=[pb.Recipient(agency_code=STP)],
    )
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def record(offset: int, payload: object, doc_id: str, partition: int) -> Message:
    env = events.make_envelope(payload, source="documents", subject=doc_id)  # type: ignore[arg-type]
    return Message(TOPIC, partition, offset, doc_id.encode(), events.encode(env))


def test_the_indexer_groups_copies_across_partitions_and_follows_changes(tmp_path) -> None:
    ix = open_index("tantivy", index_dir=tmp_path / "ix")
    store = StateStore(tmp_path / "state.db")
    indexer = Indexer(ix, store)
    incoming = document(
        id="in-stp",
        direction=pb.DIRECTION_INCOMING,
        agency_code=STP,
        sender_agency_code=UBND,
        incoming_status=pb.INCOMING_STATUS_ARRIVED,
    )
    stp = Caller(STP, agencies=(OWN + STP,))
    try:
        # The recipient's copy first, in a batch of its own: STP finds it.
        asyncio.run(indexer.apply([record(0, ev.DocumentReceived(document=incoming), "in-stp", 1)]))
        asyncio.run(indexer.apply([record(0, ev.DocumentIssued(document=document()), "out", 0)]))
        assert ids(ix, stp) == (["in-stp"], 1)  # issued, not yet sent: STP reads its own copy
        sent = ev.DocumentSent(
            document_id="out",
            agency_code=UBND,
            recipients=[pb.Recipient(agency_code=STP, send_time=Timestamp(seconds=1_772_000_000))],
            delivered_agency_codes=[STP],
        )
        asyncio.run(indexer.apply([record(1, sent, "out", 0)]))
        assert ids(ix, stp) == (["out"], 1)  # sent to STP: one hit, the sender's copy
        # A state store reopened (another batch, a restart) still knows the group.
        store.close()
        indexer.state = store = StateStore(tmp_path / "state.db")
        moved = ev.IncomingStatusChanged(
            document_id="in-stp",
            agency_code=STP,
            sender_agency_code=UBND,
            from_status=pb.INCOMING_STATUS_ARRIVED,
            to_status=pb.INCOMING_STATUS_ASSIGNED,
        )
        asyncio.run(indexer.apply([record(1, moved, "in-stp", 1)]))
        assert ids(ix, stp) == (["out"], 1)
        # The hit says where it was received, to whoever may read the recipient's copy only.
        listed = copies_of(store, ["out"], stp)["out"]
        assert [(c.id, c.agency_code, c.direction, c.status) for c in listed.others] == [
            ("in-stp", STP, "incoming", "assigned")
        ]
        assert listed.sent_to == (STP,)
        ubnd = Caller(UBND, agencies=(OWN + UBND,))
        assert copies_of(store, ["out"], ubnd)["out"].others == ()  # STP's copy is STP's
        assert copies_of(store, ["in-stp", "unknown"], Caller(SNV, agencies=(OWN + SNV,))) == {}
        # The sender corrects the number before sending again: two documents now.
        fixed = ev.DocumentIssued(document=document(number_notation="7/QĐ-UBND"))
        asyncio.run(indexer.apply([record(2, fixed, "out", 0)]))
        assert sorted(ids(ix, stp)[0]) == ["in-stp"]  # issued again, not sent: its own copy
        assert ids(ix, Caller(UBND, agencies=(OWN + UBND,))) == (["out"], 1)
    finally:
        store.close()
        ix.close()


def test_a_state_store_from_before_copies_gains_their_key(tmp_path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "state.db")
    old.executescript(
        "CREATE TABLE doc_state (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
        "CREATE TABLE attachment_text (document_id TEXT NOT NULL, attachment_id TEXT NOT NULL,"
        " text TEXT NOT NULL, PRIMARY KEY (document_id, attachment_id));"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    )
    old.close()
    store = StateStore(tmp_path / "state.db")
    try:
        sent = copy("out", UBND, (OWN + UBND,), incoming=False)
        store.put(DocState(sent, searchable=True, offset=3))
        store.commit()
        assert [s.doc.id for s in store.copies(copy_key(sent))] == ["out"]
    finally:
        store.close()
