"""How the tantivy engine scores: global IDF over the shards, the bonuses on a window."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tantivy

# The best first-pass hits of all shards the bonuses (adjacency, subject) are scored on: the
# first two pages of 20. Each hit costs a term look-up per bonus clause and segment (100:
# term p95 x1.31 over no bonus at 1M documents; docs/search.md).
RESCORE_WINDOW = 50


@dataclass(frozen=True, slots=True)
class Scoring:
    """How one shard's query scores: `factor(field, terms)` scales a word or phrase query
    (global IDF, see GlobalIdf); `pairs=False` leaves the bonus clauses out, adjacency and
    subject (the search scores them afterwards on the top hits only, see
    TantivyIndex._rescore; `pairs=True` is the plan as one query, for comparisons)."""

    factor: Callable[[str, Sequence[str]], float] | None = None
    pairs: bool = True


Scale = Scoring | None


def scaled(q: tantivy.Query, sc: Scale, field: str, terms: Sequence[str]) -> tantivy.Query:
    """`q` (a term or phrase query on `field`) boosted by `sc`'s factor for its terms."""
    if sc is None or sc.factor is None:
        return q
    factor = sc.factor(field, terms)
    return q if factor == 1.0 else tantivy.Query.boost_query(q, factor)


def _bm25_idf(docs: int, df: int) -> float:
    """tantivy's BM25 IDF (tantivy::query::bm25::idf)."""
    return math.log(1.0 + max(docs - df + 0.5, 0.0) / (df + 0.5))


class GlobalIdf:
    """Shard-independent scores. Each shard scores a word with its own IDF (its document count
    and the word's document frequency in it), so two copies of a document in two shards
    score differently, and a document added to one shard moves the other's hits. Tantivy
    takes no outside statistics, but a word's BM25 score is its IDF times a term-frequency
    part, and a phrase's the sum of its words' IDF times its own: boosting a shard's word (or
    phrase) query by global IDF ÷ shard IDF gives the score one index over every shard would
    (as Elasticsearch's dfs_query_then_fetch does). The length normalization still uses the
    shard's average field length, which routing by id hash makes equal at any real size.
    One term dictionary look-up per word and shard."""

    def __init__(self, searchers: list[Any]) -> None:
        self.searchers = searchers
        self.docs = [int(s.num_docs) for s in searchers]
        self.total = sum(self.docs)
        self._df: dict[tuple[str, str], list[int]] = {}

    def _dfs(self, field: str, term: str) -> list[int]:
        key = (field, term)
        if key not in self._df:
            self._df[key] = [int(s.doc_freq(field, term)) for s in self.searchers]
        return self._df[key]

    def factor(self, shard: int, field: str, terms: Sequence[str]) -> float:
        dfs = [self._dfs(field, t) for t in terms]
        local = sum(_bm25_idf(self.docs[shard], d[shard]) for d in dfs)
        merged = sum(_bm25_idf(self.total, sum(d)) for d in dfs)
        return merged / local if local > 0 else 1.0


def with_bonus(shards: list[list[tuple[float, float, Any]]]) -> list[tuple[float, int, int, Any]]:
    """The shards' rescored hits as (score, shard, rank, address) rows, best first. Only the
    RESCORE_WINDOW best first-pass scores of all shards together keep their bonus: the same
    documents whatever the shard layout (a shard's window holds every one of them), so the
    order does not depend on it. Bonuses are never negative: a hit below the window has no
    better first-pass score than any hit in it, and the order below it is unchanged."""
    firsts = sorted((first for hits in shards for first, _, _ in hits), reverse=True)
    floor = firsts[RESCORE_WINDOW - 1] if len(firsts) >= RESCORE_WINDOW else float("-inf")
    rows = [
        (first + (bonus if first >= floor else 0.0), i, rank, addr)
        for i, hits in enumerate(shards)
        for rank, (first, bonus, addr) in enumerate(hits)
    ]
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    return rows
