"""Every filter and facet the contract lists, on both engines and through the gRPC servicer:
direction, priority, arrival_date beside the older ones; labels on facet values; the
dossier-only fields (no document has them)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import tantivy

from lgsp.agencies import Agency, AgencyDirectory
from lgsp.api.search.v1 import search_pb2 as pb
from lgsp.auth import Principal, principal_scope
from lgsp.grpc.errors import InvalidArgument
from services.search.entrypoints.grpc import SearchServicer
from services.search.index import (
    Caller,
    FacetRequest,
    Filter,
    IndexedDocument,
    SearchIndex,
    SearchInputError,
    SearchQuery,
)
from services.search.index.tantivy_index import TantivyIndex
from services.search.index.tantivy_schema import build_schema

A, B = "000.00.02.H27", "000.00.03.H27"
D = IndexedDocument
DOCS = [
    D("out-flash", "1/QĐ-SNV", "Quyết định khẩn về phòng chống lụt bão", doc_type="QĐ",
      agency_code=A, status="sent", direction="outgoing", priority="flash",
      issued_date=date(2026, 3, 1), version=1),
    D("in-urgent", "7/CV-STC", "Công văn về phòng chống lụt bão", doc_type="CV",
      agency_code=A, sender_agency_code=B, status="arrived", direction="incoming",
      priority="urgent", issued_date=date(2026, 2, 27), arrival_date=date(2026, 3, 2),
      version=1),
    D("in-normal", "9/BC-STC", "Báo cáo tình hình lụt bão", doc_type="BC", agency_code=A,
      sender_agency_code=B, status="done", direction="incoming", priority="normal",
      issued_date=date(2026, 1, 5), arrival_date=date(2026, 1, 6), version=1),
]  # fmt: skip


@pytest.fixture
def ix(index: SearchIndex) -> SearchIndex:
    index.upsert(DOCS)
    index.commit()
    return index


def _ids(ix: SearchIndex, *filters: Filter, text: str = "lut bao") -> set[str]:
    res = ix.search(SearchQuery(text, filters=filters, page_size=100), Caller(A))
    return {h.id for h in res.hits}


def test_direction_priority_and_arrival_date_filter(ix: SearchIndex) -> None:
    assert _ids(ix, Filter("direction", ("incoming",))) == {"in-urgent", "in-normal"}
    assert _ids(ix, Filter("direction", ("incoming",), negate=True)) == {"out-flash"}
    assert _ids(ix, Filter("priority", ("flash", "urgent"))) == {"out-flash", "in-urgent"}
    assert _ids(ix, Filter("arrival_date", gte="2026-03-01")) == {"in-urgent"}
    assert _ids(ix, Filter("arrival_date", lte="2026-03-01")) == {"in-normal"}
    hit = ix.search(SearchQuery("cong van", page_size=1), Caller(A)).hits[0]
    assert (hit.direction, hit.priority, hit.arrival_date) == ("incoming", "urgent", "2026-03-02")


def test_direction_and_priority_facets(ix: SearchIndex) -> None:
    res = ix.search(
        SearchQuery("lut bao", facets=(FacetRequest("direction"), FacetRequest("priority"))),
        Caller(A),
    )
    counts = [{v.value: v.count for v in f.values} for f in res.facets]
    assert counts == [{"incoming": 2, "outgoing": 1}, {"flash": 1, "urgent": 1, "normal": 1}]


def test_unknown_values_of_closed_fields_are_refused(ix: SearchIndex) -> None:
    for bad in (Filter("direction", ("sideways",)), Filter("priority", ("URGENT!",)),
                Filter("arrival_date", gte="soon")):  # fmt: skip
        with pytest.raises(SearchInputError, match="filters"):
            ix.search(SearchQuery("lut", filters=(bad,)), Caller(A))


# --- through the servicer: proto names, labels, dossier-only fields ---------------------------


@pytest.fixture
def servicer(ix: SearchIndex) -> SearchServicer:
    directory = AgencyDirectory([Agency(A, "Sở Nội vụ", "SNV"), Agency(B, "Sở Tài chính", "STC")])
    return SearchServicer(lambda: ix, directory)


def _call(servicer: SearchServicer, method: str, request: object) -> object:
    import asyncio

    official = Principal("u1", "user", agency_code=A, roles=frozenset({"specialist"}))
    with principal_scope(official):
        return asyncio.run(getattr(servicer, method)(request, None))


def _terms(field: str, *values: str, negate: bool = False) -> pb.Filter:
    return pb.Filter(field=field, terms=pb.TermsFilter(values=values), negate=negate)


def test_facet_values_carry_labels(servicer: SearchServicer) -> None:
    fields = ["document_type_code", "agency_code", "priority", "direction", "status"]
    res = _call(
        servicer,
        "Search",
        pb.SearchRequest(query="lut bao", facets=[pb.FacetRequest(field=f) for f in fields]),
    )
    labels = {f.field: {v.value: v.label for v in f.values} for f in res.facets}  # type: ignore[attr-defined]
    assert [f.field for f in res.facets] == fields  # type: ignore[attr-defined]
    assert labels["document_type_code"] == {"QĐ": "Quyết định", "CV": "Công văn", "BC": "Báo cáo"}
    assert labels["agency_code"] == {A: "Sở Nội vụ"}
    assert (
        labels["priority"]["flash"] == "Hỏa tốc"
        and labels["direction"]["incoming"] == "Văn bản đến"
    )
    assert labels["status"]["arrived"] == "01 Đã đến"


def test_proto_spellings_and_dossier_fields(servicer: SearchServicer) -> None:
    def ids(*filters: pb.Filter) -> set[str]:
        res = _call(servicer, "Search", pb.SearchRequest(query="lut bao", filters=filters))
        return {h.id for h in res.hits}  # type: ignore[attr-defined]

    assert ids(
        _terms("direction", "DIRECTION_INCOMING"), _terms("priority", "PRIORITY_URGENT")
    ) == {"in-urgent"}
    date_range = pb.RangeFilter(gte="2026-03-01")
    assert ids(pb.Filter(field="arrival_date", range=date_range)) == {"in-urgent"}
    # Dossier fields: no document has a procedure; its negation keeps every document.
    assert ids(_terms("procedure_code", "1.000001")) == set()
    assert ids(_terms("procedure_code", "1.000001", negate=True)) == {d.id for d in DOCS}
    assert ids(pb.Filter(field="submit_date", range=pb.RangeFilter(lte="2026-12-31"))) == set()
    res = _call(
        servicer,
        "GetFacets",
        pb.GetFacetsRequest(facets=[pb.FacetRequest(field="field_code")]),
    )
    assert [(f.field, len(f.values)) for f in res.facets] == [("field_code", 0)]  # type: ignore[attr-defined]
    assert res.total_size == 3  # type: ignore[attr-defined]
    for bad in (
        pb.Filter(field="submit_date", range=pb.RangeFilter(gte="tomorrow")),
        _terms("procedure_code"),
        _terms("priority", "PRIORITY_WHENEVER"),
        _terms("no_such_field", "x"),
    ):
        with pytest.raises(InvalidArgument, match="invalid filters"):
            _call(servicer, "Search", pb.SearchRequest(query="lut", filters=[bad]))


def test_an_index_built_before_the_fields_is_searched_and_says_why_it_cannot_filter(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old"
    older = build_schema(later=False)
    for i in range(2):
        (old / f"shard-{i}").mkdir(parents=True)
        tantivy.Index(older, path=str(old / f"shard-{i}"))
    layout = {"engine": "tantivy", "layout": 1, "shards": 2, "routing": "id_hash(id) % shards"}
    (old / "layout.json").write_text(json.dumps(layout))
    then = TantivyIndex(old)
    assert then.reader_keys and not then.later
    then.upsert(DOCS)
    then.commit()
    assert _ids(then) == {d.id for d in DOCS}
    with pytest.raises(SearchInputError, match="rebuild"):
        _ids(then, Filter("priority", ("flash",)))
    with pytest.raises(SearchInputError, match="facets"):
        then.search(SearchQuery("lut", facets=(FacetRequest("direction"),)), Caller(A))
    then.close()
