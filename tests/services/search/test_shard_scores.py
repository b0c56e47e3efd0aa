"""Scores do not depend on the shard layout: each shard's words are scaled to global IDF
(tantivy_scoring.GlobalIdf), so a sharded index scores as one index over the same documents."""

from __future__ import annotations

import dataclasses

from bench.corpus import AGENCY_CODES, documents
from services.search.index import Caller, SearchQuery
from services.search.index.tantivy_index import TantivyIndex

QUERIES = ["chuyen doi so", "cai cach hanh chinh", "ngân sách", '"dat dai"', "du lich -bien", "so"]
EVERYONE = Caller("", agencies=AGENCY_CODES)


def _scores(ix: TantivyIndex, text: str) -> dict[str, float]:
    res = ix.search(SearchQuery(text, page_size=100, highlight=False), EVERYONE)
    return {h.id: h.score for h in res.hits if h.score is not None}


def test_sharded_scores_equal_one_index_and_copies_score_alike() -> None:
    docs = list(documents(600))  # the seed other tests use: its pools are built once
    sharded, one = TantivyIndex(None, shards=2), TantivyIndex(None, shards=1)
    # The same document under two ids, one in each shard.
    ids = {sharded.shard_of(f"copy-{n}"): f"copy-{n}" for n in range(20)}
    copies = [dataclasses.replace(docs[0], id=i) for i in ids.values()]
    assert len(copies) == 2
    for ix in (sharded, one):
        ix.upsert(docs + copies)
        ix.commit()
    # With the adjacency bonus: the top ten, up to near-ties (the shards' average lengths move
    # scores by ~0.2 % at this size), with the same scores.
    for text in QUERIES:
        got = dict(list(_scores(sharded, text).items())[:10])
        want = dict(list(_scores(one, text).items())[:10])
        assert len(got.keys() & want.keys()) >= 8
        assert all(abs(got[i] - want[i]) < 0.01 * want[i] for i in got.keys() & want.keys())
    # Without it (scored on a window of top hits, whose edge a near-tie can move), every score.
    sharded.adjacency = one.adjacency = False
    worst = 0.0
    for text in QUERIES:
        got, want = _scores(sharded, text), _scores(one, text)
        common = got.keys() & want.keys()
        assert len(common) >= 0.95 * len(want)  # the 100th place may be a near-tie
        worst = max(worst, *(abs(got[i] - want[i]) / want[i] for i in common))
    assert worst < 0.01  # only the shards' average field lengths differ
    by_number = _scores(sharded, docs[0].number_notation)
    a, b = (by_number[c.id] for c in copies)
    assert abs(a - b) < 1e-3 * a
    sharded.global_idf = False  # each shard's own statistics: what it was
    before = max(
        abs(got - want) / want
        for text in QUERIES
        for i, want in _scores(one, text).items()
        if (got := _scores(sharded, text).get(i)) is not None
    )
    assert before > 10 * max(worst, 1e-4)
