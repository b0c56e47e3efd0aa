"""The relevance harness (bench/search_relevance.py) on a small corpus, on both engines: the
judged queries keep at least this nDCG@10 and top-1. The floors sit a little under what both
engines reach now (docs/search.md "Relevance"), so a change that costs relevance fails here;
the full figures, side by side, come from `python -m bench.search_relevance`."""

from __future__ import annotations

import pytest

from bench.search_relevance import QUERIES, corpus, evaluate
from services.search.index import SearchIndex

DOCS = 250
SAMPLE = QUERIES[::2]  # 32 of the 64: every other, diacritics and none alike
# (nDCG@10, top-1). Measured on this sample: tantivy 0.975 / 0.94, Elasticsearch (osmem) 0.947 /
# 0.88; tantivy without the adjacency, global-IDF and exact-word options 0.80 / 0.72.
FLOOR = {"tantivy": (0.94, 0.88), "elasticsearch": (0.90, 0.80)}


def test_judged_queries_stay_above_the_floor(
    index: SearchIndex, request: pytest.FixtureRequest
) -> None:
    docs = corpus(DOCS)
    index.upsert(docs)
    index.commit()
    scores = evaluate(index, docs, SAMPLE)
    engine = request.node.callspec.params["index"]
    print(f"{engine}: nDCG@10 {scores.ndcg:.3f}, top-1 {scores.top1:.3f}")
    ndcg_floor, top1_floor = FLOOR[engine]
    assert scores.ndcg >= ndcg_floor and scores.top1 >= top1_floor
