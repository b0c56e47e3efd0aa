"""The tantivy engine's shards: routing by id hash, results merged across shards (order,
pages, totals, facets, suggestions), the on-disk layout and the old single-index layout."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import tantivy

from lgsp.bus import open_bus
from lgsp.config import load_settings
from lgsp.grpc.errors import FailedPrecondition
from services.search.adapters.generations import Generations
from services.search.bootstrap import wire_service as wire_search
from services.search.index import (
    Caller,
    FacetRequest,
    Filter,
    IndexedDocument,
    IndexLayoutError,
    SearchQuery,
    Sort,
    open_index,
)
from services.search.index.base import Plan, id_hash
from services.search.index.query import parse
from services.search.index.tantivy_index import TantivyIndex
from services.search.index.tantivy_schema import build_schema
from services.search.service_layer.reindex import rebuild

A, B = "000.00.02.H27", "000.00.03.H27"
D = IndexedDocument
TYPES = ("CV", "QĐ", "KH", "TB", "BC")


def corpus(n: int = 90) -> list[IndexedDocument]:
    """Documents with a few distinct texts (so many scores tie), dates that repeat, types
    and agencies in known proportions."""
    return [
        D(f"doc-{i:03d}", f"{i}/CV-X",
          "Kế hoạch " + "cải cách " * (1 + i % 4) + ("hành chính" if i % 3 else "thuế"),
          body_text="Nội dung về cải cách hành chính và chuyển đổi số." if i % 2 else "",
          doc_type=TYPES[i % len(TYPES)], agency_code=B if i % 4 == 0 else A,
          recipient_agency_codes=(B,) if i % 8 == 1 else (),
          issued_date=date(2025, 1, 1) + timedelta(days=i % 7), version=1)
        for i in range(n)
    ]  # fmt: skip


VISIBLE = [d for d in corpus() if d.agency_code == A]  # what A may see: 67 of 90


def shard_ids(ix: TantivyIndex, shard: int) -> set[str]:
    """Ids stored in one shard (read directly from that shard's index)."""
    searcher = ix._shards[shard].index.searcher()
    res = searcher.search(tantivy.Query.all_query(), max(searcher.num_docs, 1), count=False)
    return {searcher.doc(a).to_dict()["id"][0] for _, a in res.hits}


def built(path: Path, shards: int) -> TantivyIndex:
    ix = TantivyIndex(path, shards=shards)
    ix.upsert(corpus())
    ix.commit()
    return ix


@pytest.fixture
def three(tmp_path: Path) -> TantivyIndex:
    return built(tmp_path / "three", 3)


@pytest.fixture
def one(tmp_path: Path) -> TantivyIndex:
    return built(tmp_path / "one", 1)


# --- routing ----------------------------------------------------------------------------------


def test_documents_live_in_the_shard_their_id_hash_names(three: TantivyIndex) -> None:
    assert three.shards == 3 and three.count() == 90
    for shard in range(3):
        ids = shard_ids(three, shard)
        assert ids and all(id_hash(i) % 3 == shard for i in ids)  # every shard holds some
    assert sum(len(shard_ids(three, s)) for s in range(3)) == 90


def test_versions_and_deletes_go_to_the_owning_shard(tmp_path: Path) -> None:
    ix = TantivyIndex(tmp_path / "ix", shards=2)
    docs = corpus(20)
    ix.upsert(docs)
    ix.commit()
    # One document of each shard gets a newer version, then a late older one.
    targets = [
        next(d for d in docs if d.agency_code == A and ix.shard_of(d.id) == s) for s in (0, 1)
    ]
    before = [len(shard_ids(ix, s)) for s in (0, 1)]
    newer = [replace(d, subject=f"Bản mới số {i} chuyển giao", version=5) for i, d in
             enumerate(targets)]  # fmt: skip
    assert ix.upsert(newer) == 2
    ix.commit()
    assert [len(shard_ids(ix, s)) for s in (0, 1)] == before  # replaced, not added
    assert ix._versions([d.id for d in targets]) == {d.id: 5 for d in targets}
    older = [replace(d, subject="Bản cũ quay lại", version=4) for d in targets]
    assert ix.upsert(older) == 0
    ix.commit()
    hits = ix.search(SearchQuery("ban moi chuyen giao"), Caller(A)).hits
    assert sorted(h.id for h in hits) == sorted(d.id for d in targets)
    assert ix.search(SearchQuery("ban cu quay lai"), Caller(A)).hits == ()
    # Within one uncommitted batch, per shard: the later, lower version is skipped.
    assert ix.upsert([replace(targets[1], version=7), replace(targets[1], version=6)]) == 1
    ix.delete([targets[0].id, "no-such-id"])
    ix.commit()
    assert targets[0].id not in shard_ids(ix, 0) | shard_ids(ix, 1)
    assert ix._versions([targets[1].id]) == {targets[1].id: 7}
    assert ix.count() == 19


# --- merging ----------------------------------------------------------------------------------


def test_relevance_merge_orders_by_score_and_start_windows_are_consistent(
    three: TantivyIndex, one: TantivyIndex
) -> None:
    node = parse("cai cach")
    full = three._execute(Plan(node, (), Caller(A), None, True, None, 0, 200, True, ()))
    assert full.total == len(full.hits) == len(VISIBLE) == 67
    assert {h.doc["id"] for h in full.hits} == {
        h.doc["id"] for h in one._execute(
            Plan(node, (), Caller(A), None, True, None, 0, 200, True, ())).hits
    }  # fmt: skip
    scores = [h.score for h in full.hits]
    assert scores == sorted(scores, reverse=True)
    assert len({h.doc["id"] for h in full.hits}) == 67
    # Any window (start, limit) is exactly that slice of the full order.
    for start, limit in ((0, 5), (5, 7), (31, 10), (60, 10)):
        page = three._execute(Plan(node, (), Caller(A), None, True, None, start, limit, True, ()))
        assert [h.doc["id"] for h in page.hits] == [
            h.doc["id"] for h in full.hits[start : start + limit]
        ]
        assert [h.order for h in page.hits] == [id_hash(h.doc["id"]) for h in page.hits]
        assert page.total == 67


@pytest.mark.parametrize("page_size", [1, 7, 20])
def test_relevance_cursor_pages_have_no_gaps_or_repeats(
    three: TantivyIndex, page_size: int
) -> None:
    seen: list[str] = []
    scores: list[float] = []
    cursor = ""
    while True:
        res = three.search(SearchQuery("cai cach", page_size=page_size, cursor=cursor), Caller(A))
        assert res.total == 67
        seen += [h.id for h in res.hits]
        scores += [h.score or 0.0 for h in res.hits]
        if not (cursor := res.next_cursor):
            break
    assert len(seen) == len(set(seen)) == 67
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("descending", [True, False])
def test_date_sorts_merge_to_the_single_index_order(
    three: TantivyIndex, one: TantivyIndex, descending: bool
) -> None:
    def pages(ix: TantivyIndex) -> list[str]:
        out: list[str] = []
        cursor = ""
        while True:
            q = SearchQuery("", sort=Sort("issued_date", descending), page_size=8, cursor=cursor)
            res = ix.search(q, Caller(A))
            assert res.total == 67
            out += [h.id for h in res.hits]
            if not (cursor := res.next_cursor):
                return out

    got = pages(three)
    assert len(got) == len(set(got)) == 67
    assert got == pages(one)  # the sort key (date, id hash) is global: the same order


def test_totals_and_facets_are_summed_across_shards(three: TantivyIndex, one: TantivyIndex) -> None:
    want_types = Counter(d.doc_type for d in VISIBLE if "hanh chinh" in _words(d))
    q = SearchQuery(
        '"hanh chinh"',
        facets=(FacetRequest("doc_type"), FacetRequest("agency_code"), FacetRequest("year")),
    )
    res = three.search(q, Caller(A))
    assert res.total == sum(want_types.values()) == one.search(q, Caller(A)).total
    assert {v.value: v.count for v in res.facets[0].values} == dict(want_types)
    assert res.facets == one.search(q, Caller(A)).facets
    # B sees its own documents and the ones sent to it, spread over the shards.
    facets, total = three.facets(SearchQuery("cai cach"), Caller(B))
    mine = [d for d in corpus() if B in (d.agency_code, *d.recipient_agency_codes)]
    assert total == len(mine) == 35
    assert {v.value: v.count for v in facets[0].values} == dict(
        Counter(d.agency_code for d in mine)
    )
    assert {v.value: v.count for v in facets[1].values} == dict(Counter(d.doc_type for d in mine))
    # Cut to the size asked after merging: the biggest counts, ties by value.
    small = three.search(
        SearchQuery("", filters=(Filter("doc_type", ("CV",), negate=True),),
                    facets=(FacetRequest("doc_type", size=2),)), Caller(A),
    ).facets[0]  # fmt: skip
    counts = Counter(d.doc_type for d in VISIBLE if d.doc_type != "CV")
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    assert [(v.value, v.count) for v in small.values] == want


def _words(d: IndexedDocument) -> str:
    from services.search.index import text as tx

    return " ".join(tx.tokens(d.subject)) + " | " + " ".join(tx.tokens(d.body_text))


def test_suggestions_come_from_every_shard(three: TantivyIndex) -> None:
    got = three.suggest("ke hoach cai", Caller(A), limit=50)
    assert len(got) == 50  # of 67
    assert len({s.id for s in got}) == len(got)
    assert {three.shard_of(s.id) for s in got} == {0, 1, 2}
    assert len(three.suggest("ke hoach cai", Caller(A), limit=5)) == 5


# --- layout -----------------------------------------------------------------------------------


def test_layout_is_written_once_and_an_index_keeps_its_shard_count(tmp_path: Path) -> None:
    ix = TantivyIndex(tmp_path / "ix", shards=3)
    ix.upsert(corpus(10))
    ix.close()
    layout = json.loads((tmp_path / "ix" / "layout.json").read_text())
    assert layout["shards"] == 3 and layout["engine"] == "tantivy"
    assert sorted(p.name for p in (tmp_path / "ix").iterdir() if p.is_dir()) == [
        "shard-0", "shard-1", "shard-2",
    ]  # fmt: skip
    assert (tmp_path / "ix" / "cursor.key").exists()  # one per index, not per shard
    assert not any((tmp_path / "ix" / f"shard-{i}" / "cursor.key").exists() for i in range(3))
    q = SearchQuery("", sort=Sort("issued_date"), page_size=3)
    cursor = ix.search(q, Caller(A)).next_cursor
    again = TantivyIndex(tmp_path / "ix", shards=2)  # the count asked applies to new indexes
    assert again.shards == 3 and again.count() == 10
    assert again.search(replace(q, cursor=cursor), Caller(A)).hits  # the cursor key survived


def test_single_index_layout_is_refused_with_a_rebuild_hint(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    index = tantivy.Index(build_schema(), path=str(old))  # what the engine wrote before shards
    writer = index.writer(heap_size=20_000_000, num_threads=1)
    writer.commit()
    writer.wait_merging_threads()
    with pytest.raises(IndexLayoutError, match=r"single-index engine.*lgsp search reindex"):
        TantivyIndex(old)
    assert not (old / "layout.json").exists()  # nothing was changed
    gone = TantivyIndex(tmp_path / "gone", shards=2)
    gone.close()
    shutil.rmtree(tmp_path / "gone" / "shard-1")  # half the documents would vanish silently
    with pytest.raises(IndexLayoutError, match=r"lacks shard\(s\) \[1\] of 2"):
        TantivyIndex(tmp_path / "gone")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "layout.json").write_text('{"engine": "tantivy", "layout": 99, "shards": 2}')
    with pytest.raises(IndexLayoutError, match="rebuild"):
        TantivyIndex(bad)


async def test_reindex_replaces_a_single_index_generation(tmp_path: Path) -> None:
    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_SEARCH_SHARDS": "3"}
    )
    gens = Generations(settings)
    name = gens.ensure_current()
    tantivy.Index(build_schema(), path=str(_mkdir(gens.root / name / "index")))
    with pytest.raises(IndexLayoutError, match="lgsp search reindex"):
        gens.open(name)
    # The service does not serve it: callers get FAILED_PRECONDITION, the log has the why.
    # Wired without a running runtime: only the settings are read before serving.
    wiring = wire_search(
        SimpleNamespace(settings=settings),  # type: ignore[arg-type]
        authenticator=object(),  # type: ignore[arg-type]
        attachments=None,
    )
    _, servicer = wiring.servicers[0]
    with pytest.raises(FailedPrecondition, match="rebuilt"):
        servicer._index()
    bus = open_bus(f"sqlite:///{tmp_path}/bus.db")
    try:
        built = await rebuild(gens, bus)
    finally:
        await bus.close()
    assert gens.current() == built.generation != name
    # The service's next attempt serves the rebuilt generation, with the configured shards.
    index = servicer._index()
    try:
        assert isinstance(index, TantivyIndex) and index.shards == 3
        assert index.search(SearchQuery("x"), Caller(A)).total == 0
    finally:
        await wiring.app.close()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_open_index_passes_the_shard_count(tmp_path: Path) -> None:
    ix = open_index("tantivy", index_dir=tmp_path / "ix", shards=4)
    assert isinstance(ix, TantivyIndex) and ix.shards == 4
    ix.close()
    memory = open_index("tantivy")
    assert isinstance(memory, TantivyIndex) and memory.shards == 2
    with pytest.raises(ValueError, match="shards"):
        TantivyIndex(None, shards=0)
