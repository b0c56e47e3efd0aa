"""The compound rights key (READER_KEYS) and the hoisted exclusions: the plan that uses them
returns exactly what the plain plan (rights, doc_type and date filters as separate clauses,
exclusions inside the words' intersection) returns — hits, scores to the bit, order, totals,
facets, pages — and an index built before the field is still searched (plainly)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import tantivy

from bench.corpus import AGENCY_CODES, documents
from services.search.index import (
    Caller,
    FacetRequest,
    Filter,
    IndexedDocument,
    IndexLayoutError,
    SearchQuery,
    Sort,
)
from services.search.index.base import Plan, _validate_filters
from services.search.index.query import parse
from services.search.index.tantivy_index import TantivyIndex
from services.search.index.tantivy_schema import SEP, build_schema, reader_keys

DOCS = list(documents(3_000))
TEXTS = [
    '(cai cach) OR (chuyen doi so) -"du lich"', "cai cach", '"chuyen doi so"', "", "-dat",
    'cai cach -"hanh chinh" -thue', '(dat dai -"quan ly") OR (so -ngan) OR "du lich"',
]  # fmt: skip
BENCH = (
    Filter("doc_type", ("CV", "QĐ", "KH")),
    Filter("issued_date", gte="2022-01-01", lte="2025-12-31"),
)
FILTER_SETS: list[tuple[Filter, ...]] = [
    BENCH,
    (Filter("doc_type", ("CV",)),),
    (Filter("issued_date", gte="2021-01-01", lte="2021-12-31"),),
    (Filter("issued_date", gte="2020-03-15", lte="2023-07-02"),),  # not whole years: kept too
    (Filter("doc_type", ("QĐ", "TB")), Filter("issued_date", gte="2024-02-29", lte="2024-03-01")),
    (Filter("issued_date", gte="2023-01-01"),),  # open-ended: plain
    (Filter("doc_type", ("CV", "KH")), Filter("doc_type", ("KH", "BC"))),  # the second stays
    (Filter("doc_type", ("CV",), negate=True),
     Filter("issued_date", gte="2022-01-01", lte="2022-12-31")),
    (Filter("issued_date", gte="2024-01-01", lte="2023-12-31"),),  # empty range
    (Filter("doc_type", ("XX",)),),  # a type no document has
    (Filter("doc_type", ("CV",)), Filter("agency_code", (AGENCY_CODES[3],)),
     Filter("public", ("true",))),
    (Filter("issued_date", gte="1000-01-01", lte="2900-12-31"),),  # too many years: plain
]  # fmt: skip
CALLERS = [
    Caller(AGENCY_CODES[0]),
    Caller(AGENCY_CODES[7], may_read_confidential=True),
    Caller(""),
    Caller("000.99.99.H27"),
]


@pytest.fixture(scope="module")
def ix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TantivyIndex]:
    index = TantivyIndex(tmp_path_factory.mktemp("compound") / "ix", shards=2)
    index.upsert(DOCS)
    index.commit()
    yield index
    index.close()


def plain(ix: TantivyIndex) -> TantivyIndex:
    """The same index searched with the plan before READER_KEYS and hoisted exclusions."""
    twin = object.__new__(TantivyIndex)
    twin.__dict__.update(ix.__dict__)
    twin.plain_plan = True
    return twin


def outcome(ix: TantivyIndex, q: SearchQuery, caller: Caller) -> tuple[object, ...]:
    res = ix.search(q, caller)
    pages = [[(h.id, h.score) for h in res.hits]]
    cursor = res.next_cursor
    while cursor and len(pages) < 3:
        nxt = ix.search(replace(q, cursor=cursor), caller)
        pages.append([(h.id, h.score) for h in nxt.hits])
        cursor = nxt.next_cursor
    return res.total, pages, ix.facets(q, caller)


def test_documents_get_a_key_per_reader_type_and_year() -> None:
    keys = reader_keys(["n:A", "n:*public*"], "CV", "2024")
    assert sorted(keys) == sorted(
        f"{r}{SEP}{k}"
        for r in ("n:A", "n:*public*")
        for k in (f"t{SEP}CV", f"y{SEP}2024", f"ty{SEP}CV{SEP}2024")
    )
    assert reader_keys(["n:A"], "", "") == []
    assert reader_keys(["n:A"], f"C{SEP}V", "2024") == [f"n:A{SEP}y{SEP}2024"]
    assert reader_keys([f"n:A{SEP}t"], "CV", "2024") == []


def test_compound_plan_is_used_where_it_applies(ix: TantivyIndex) -> None:
    def uses(filters: tuple[Filter, ...]) -> bool:
        plan = Plan(
            parse("cai cach"), _validate_filters(filters), CALLERS[0], None, True, None, 0, 20,
            True, (),
        )  # fmt: skip
        # a compound key's separators, as Rust prints them
        return re.search(r"\\u\{1f\}(t|y|ty)\\u\{1f\}", repr(ix.build_query(plan))) is not None

    assert uses(FILTER_SETS[0]) and uses(FILTER_SETS[1]) and uses(FILTER_SETS[3])
    assert not uses(()) and not uses(FILTER_SETS[5]) and not uses(FILTER_SETS[11])
    assert not uses((Filter("doc_type", (f"C{SEP}V",)),))


@pytest.mark.parametrize("filters", FILTER_SETS, ids=range(len(FILTER_SETS)))
def test_same_hits_scores_order_totals_facets_as_the_plain_plan(
    ix: TantivyIndex, filters: tuple[Filter, ...]
) -> None:
    twin = plain(ix)
    facets = (FacetRequest("doc_type"), FacetRequest("year"), FacetRequest("agency_code", 40))
    for text in TEXTS:
        for caller in CALLERS:
            for sort in (Sort(), Sort("issued_date"), Sort("updated_time", descending=False)):
                q = SearchQuery(text, filters, facets, sort, page_size=50, highlight=False)
                got, want = outcome(ix, q, caller), outcome(twin, q, caller)
                assert got == want, (text, caller, sort)
    # Not vacuous: the benchmark's query finds documents under the compound plan.
    q = SearchQuery(TEXTS[0], FILTER_SETS[0], highlight=False)
    assert filters != FILTER_SETS[0] or ix.search(q, CALLERS[0]).total > 20


def test_index_built_before_the_field_is_searched_with_the_plain_plan(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    legacy = build_schema(reader_keys=False)
    for i in range(2):
        (old / f"shard-{i}").mkdir()
        tantivy.Index(legacy, path=str(old / f"shard-{i}"))
    layout = {"engine": "tantivy", "layout": 1, "shards": 2, "routing": "id_hash(id) % shards"}
    (old / "layout.json").write_text(json.dumps(layout))
    then = TantivyIndex(old)
    assert not then.reader_keys
    docs = DOCS[:400]
    then.upsert(docs)
    then.upsert([IndexedDocument(docs[0].id, subject="cải cách", doc_type="CV", version=9)])
    then.commit()
    now = TantivyIndex(tmp_path / "new")
    assert now.reader_keys
    now.upsert(docs)
    now.upsert([IndexedDocument(docs[0].id, subject="cải cách", doc_type="CV", version=9)])
    now.commit()
    for filters in FILTER_SETS[:5]:
        q = SearchQuery(TEXTS[0], filters, page_size=100, highlight=False)
        for caller in CALLERS[:2]:
            a, b = then.search(q, caller), now.search(q, caller)
            assert [h.id for h in a.hits] == [h.id for h in b.hits] and a.total == b.total
    then.close()
    assert not TantivyIndex(old).reader_keys  # reopened: still the plain plan


def test_index_of_another_schema_is_still_refused_with_a_rebuild_hint(tmp_path: Path) -> None:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True)
    other = sb.build()
    for i in range(2):
        (tmp_path / f"shard-{i}").mkdir()
        tantivy.Index(other, path=str(tmp_path / f"shard-{i}"))
    layout = {"engine": "tantivy", "layout": 1, "shards": 2, "routing": "id_hash(id) % shards"}
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    with pytest.raises(IndexLayoutError, match=r"another version of the schema.*rebuild it"):
        TantivyIndex(tmp_path)
