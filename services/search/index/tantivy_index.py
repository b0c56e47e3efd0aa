"""The embedded engine: tantivy on local disk (the default, one machine)."""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import tantivy

from .base import (
    COPY_PREFIX,
    LATER_FIELDS,
    READERS,
    Caller,
    EngineIndex,
    Facet,
    IndexedDocument,
    Plan,
    RawHit,
    RawResult,
    engine_fields,
    id_hash,
    rights_terms,
)
from .query import all_adjacent_phrases, subject_runs
from .resident import ResidentFiles
from .tantivy_facets import facet_aggs, merge_buckets, merge_counts
from .tantivy_layout import DEFAULT_SHARDS, MAX_SHARDS, ShardDirectory
from .tantivy_query import TantivyQueries
from .tantivy_schema import (
    ADJACENCY_BOOST,
    ALL_EXACT,
    ALL_TEXT,
    ALL_TEXT_REPEATS,
    ANALYZER,
    EXACT_ANALYZER,
    READER_KEYS,
    STORED_TEXT,
    analyzer,
    build_schema,
    exact_analyzer,
    reader_keys,
)
from .tantivy_scoring import RESCORE_WINDOW, GlobalIdf, Scoring, with_bonus
from .tantivy_shard import BATCH, Shard, chunks, write_part

VOCABULARY_LIMIT = 5000  # did you mean: the most frequent words of a prefix looked at

log = logging.getLogger(__name__)
T = TypeVar("T")


class TantivyIndex(TantivyQueries, EngineIndex):
    """tantivy in `directory` (None: in memory, for tests), split into `shards` indexes.

    A document lives in shard `id_hash(id) % shards`; a search runs on every shard at once
    (one thread each: tantivy releases the GIL while it searches) and the per-shard results
    are merged (query-then-fetch, per-shard term statistics, as Elasticsearch does). The
    shard count is fixed when the index is created (written in `layout.json`); an index
    opened later keeps its own count whatever `shards` says.

        <directory>/layout.json   engine, layout version, shard count, routing
        <directory>/cursor.key    page-cursor key (one per index, unless one is passed in)
        <directory>/shard-<i>/    one tantivy index per shard

    One writer per shard directory (tantivy locks it); searches use the last committed state.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        cursor_key: bytes | None = None,
        writer_heap_bytes: int = 256_000_000,
        writer_threads: int = 1,
        shards: int = DEFAULT_SHARDS,
        memory_lock: str = "none",
    ) -> None:
        if not 1 <= shards <= MAX_SHARDS:
            raise ValueError(f"shards must be between 1 and {MAX_SHARDS}, not {shards}")
        self.schema = build_schema()
        # False for an index built before READER_KEYS: searched with the plain filters.
        self.reader_keys = True
        # False for an index built before LATER_FIELDS and ALL_EXACT: filters on those fields
        # are refused with a rebuild hint, and typed diacritics earn no boost.
        self.later = True
        self.plain_plan = False  # True: the plan before READER_KEYS (tests compare the two)
        # The ranking options, each on by default; benchmarks switch them off to measure them.
        self.global_idf = True  # False: each shard's own statistics
        self.adjacency = True  # False: no bonus for adjacent words
        self.subject_phrases = True  # False: no bonus for words together in the subject
        self.exact_words = True  # False: all_exact left empty, no typed-diacritics bonus
        self._dir = Path(directory) if directory is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            layout = ShardDirectory(self._dir)
            indexes = layout.open_shards(shards)
            # An index built by an older schema is opened with it (see ShardDirectory).
            self.schema, self.reader_keys, self.later = (
                layout.schema, layout.reader_keys, layout.later
            )  # fmt: skip
            cursor_key = cursor_key or layout.stored_key()
        else:
            indexes = [tantivy.Index(self.schema) for _ in range(shards)]
            cursor_key = cursor_key or secrets.token_bytes(32)
        super().__init__(cursor_key)
        for ix in indexes:
            ix.register_tokenizer(ANALYZER, analyzer())
            ix.register_tokenizer(EXACT_ANALYZER, exact_analyzer())
            ix.reload()
        self._shards = [Shard(ix, self.schema) for ix in indexes]
        # Each shard's writer gets its part of the heap (tantivy wants >= 15 MB per thread).
        self._heap = max(writer_heap_bytes // shards, 16_000_000 * writer_threads)
        self._threads = writer_threads
        self._lock = threading.Lock()  # writes: several threads may call upsert/commit
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # The hot files locked in memory (see resident.py), followed in a background thread.
        self.resident: ResidentFiles | None = None
        if self._dir is not None and memory_lock != "none":
            self.resident = ResidentFiles(
                [layout.shard_dir(i) for i in range(len(self._shards))], memory_lock
            )
            self.resident.start()

    @property
    def shards(self) -> int:
        return len(self._shards)

    def shard_of(self, doc_id: str) -> int:
        return id_hash(doc_id) % len(self._shards)

    def _map(self, fn: Callable[[int, Shard], T]) -> list[T]:
        """`fn(i, shard)` on every shard at once: the first in this thread, the others in the
        pool (tantivy releases the GIL while it searches, commits and indexes)."""
        shards = self._shards
        if len(shards) == 1:
            return [fn(0, shards[0])]
        pool = self._pool or self._start_pool()
        futures = [pool.submit(fn, i, s) for i, s in enumerate(shards) if i]
        first = fn(0, shards[0])
        return [first, *(f.result() for f in futures)]

    def _start_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=len(self._shards), thread_name_prefix="tantivy-shard"
                )
            return self._pool

    # --- writes ---

    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        """Each batch split by shard; the shards look their ids up and write in parallel
        (one Python thread per shard builds documents and hands them to its writer)."""
        written = 0
        heap, threads = self._heap, self._threads
        with self._lock:
            for batch in chunks(docs, BATCH):
                parts: list[list[IndexedDocument]] = [[] for _ in self._shards]
                for d in batch:
                    parts[self.shard_of(d.id)].append(d)
                written += sum(self._map(partial(write_part, parts, self._document, heap, threads)))
        return written

    def _document(self, d: IndexedDocument) -> tantivy.Document:
        fields = engine_fields(d)
        # Each part (and each repeat) a value of its own: tantivy leaves a position gap between
        # values, so a phrase does not run from the subject into the body or into itself.
        fields[ALL_TEXT] = [fields[f] for f, n in ALL_TEXT_REPEATS if fields[f] for _ in range(n)]
        for name in STORED_TEXT:
            fields[name] = fields[name].encode() if fields[name] else None
        if self.reader_keys:
            own = [r for r in fields[READERS] if not r.startswith(COPY_PREFIX)]
            fields[READER_KEYS] = reader_keys(own, fields["doc_type"], fields["year"])
        if self.later and self.exact_words:
            # Each part once: the bonus only tells look-alikes apart (all_text weighs the
            # parts), and the repeats cost a quarter of the indexing rate (docs/search.md).
            fields[ALL_EXACT] = [fields[f] for f, _ in ALL_TEXT_REPEATS if fields[f]]
        else:
            for name in LATER_FIELDS:
                fields.pop(name, None)
        return tantivy.Document(
            **{k: v for k, v in fields.items() if v is not None and v != "" and v != []}
        )

    def _versions(self, ids: list[str]) -> dict[str, int]:
        """Version of each id as written (pending or committed), asked of its shard."""
        parts: list[list[str]] = [[] for _ in self._shards]
        for i in ids:
            parts[self.shard_of(i)].append(i)
        out: dict[str, int] = {}
        for shard, part in zip(self._shards, parts, strict=True):
            if part:
                out.update(shard.versions(part))
        return out

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for doc_id in ids:
                self._shards[self.shard_of(doc_id)].delete([doc_id], self._heap, self._threads)

    def commit(self) -> None:
        """Commits every shard (in parallel). Not atomic across shards: after a crash some
        shards may hold a batch the others lack — the indexer redelivers the batch then,
        and rewriting a version already written is harmless."""
        with self._lock:
            self._map(lambda i, s: s.commit())
        if self.resident is not None:
            self.resident.kick()

    def count(self) -> int:
        return sum(int(s.index.searcher().num_docs) for s in self._shards)

    def close(self) -> None:
        """Commits what was written, then lets merges finish and releases the locks and the
        memory lock."""
        with self._lock:
            # The index stays searchable (read-only until the next write).
            self._map(lambda i, s: s.commit(close=True))
        if self.resident is not None:
            self.resident.close()
            self.resident = None

    def disk_bytes(self) -> int:
        if self._dir is None:
            return 0
        return sum(p.stat().st_size for p in self._dir.rglob("*") if p.is_file())

    def _execute(self, plan: Plan) -> RawResult:
        """Top hits and the total in one pass per shard, all shards at once, then merged.

        Tantivy cannot skip blocks here anyway: the rights filter makes every query an
        intersection, and tantivy prunes (block-max WAND) only pure disjunctions of terms, so
        counting costs next to nothing and stays exact. With facets, the aggregation scans
        every match: the total comes from it instead.

        Each shard returns its top `start + limit` (relevance) or `limit` (sorted: the cursor
        is a range filter, start is 0); the merged order is score (or sort key), then shard,
        then the shard's own order — a total order that stays the same for every page of one
        index state, so pages neither repeat nor skip a hit. Only the page's documents are
        loaded."""
        searchers = [s.index.searcher() for s in self._shards]
        # The adjacency bonus is scored on each shard's top hits only (see _rescore).
        relevance = plan.sort_key is None
        pairs = all_adjacent_phrases(plan.node) if self.adjacency and relevance else []
        runs = subject_runs(plan.node) if self.subject_phrases and relevance else []
        rescore = bool(pairs or runs) and plan.limit > 0
        # The bonuses are never in the first pass: they are scored on the window, and a
        # count, a facet or a date sort has no use for them.
        scorings = [Scoring(None, pairs=False)] * len(searchers)
        if self.global_idf and plan.sort_key is None and plan.node and len(searchers) > 1:
            # Scores as one index would give them: each shard's query scales every word by
            # its global IDF over the shard's own (see GlobalIdf).
            idf = GlobalIdf(searchers)
            scorings = [Scoring(partial(idf.factor, i), pairs=False) for i in range(len(searchers))]
        queries = [self.build_query(plan, self.plain_plan, sc) for sc in scorings]
        count_here = plan.count and not plan.facets
        want_hits = plan.limit > 0 or count_here
        k = max(plan.start + plan.limit, 1)  # tantivy's top-k needs k >= 1
        first_k = max(k, RESCORE_WINDOW) if rescore else k
        order = tantivy.Order.Desc if plan.descending else tantivy.Order.Asc
        aggs = facet_aggs(plan.facets) if plan.facets else None

        def run(i: int, shard: Shard) -> tuple[Any, list[Any], int, dict[str, Any]]:
            searcher, query = searchers[i], queries[i]
            hits: list[Any] = []
            total = 0
            if want_hits:
                if plan.sort_key is None:
                    res = searcher.search(query, first_k, count=count_here)
                else:
                    res = searcher.search(
                        query, k, count=count_here, order_by_field=plan.sort_key, order=order
                    )
                hits = res.hits
                if count_here:
                    total = int(res.count or 0)  # type: ignore[attr-defined]  # stubs lack it
            out: dict[str, Any] = {}
            if aggs is not None and searcher.num_docs:
                out = searcher.aggregate(query, aggs)
            return searcher, hits, total, out

        per_shard = self._map(run)
        searchers = [p[0] for p in per_shard]
        if rescore:
            # Only the RESCORE_WINDOW best first-pass hits of all shards keep a bonus
            # (with_bonus), so only they are rescored: about 1/shards of each shard's window
            # (a shard's share of the best 100 rather than its own best 100: 0.85 -> ~0.45 ms
            # per shard at 60k documents). The rest keep bonus 0, as with_bonus would give.
            firsts = sorted((score for p in per_shard for score, _ in p[1]), reverse=True)
            floor = firsts[RESCORE_WINDOW - 1] if len(firsts) >= RESCORE_WINDOW else -math.inf

            def second(i: int, shard: Shard) -> list[tuple[float, float, Any]]:
                hits = per_shard[i][1]  # best first: the window's part is a prefix
                inside = [h for h in hits if h[0] >= floor]
                rest = [(score, 0.0, a) for score, a in hits[len(inside) :]]
                if not inside:
                    return rest
                return self._rescore(searchers[i], inside, pairs, runs, scorings[i]) + rest

            rows = with_bonus(self._map(second))
        else:
            rows = [
                (value, i, rank, addr)
                for i, (_, hits, _, _) in enumerate(per_shard)
                for rank, (value, addr) in enumerate(hits)
            ]
        if plan.sort_key is None or plan.descending:
            rows.sort(key=lambda r: (-r[0], r[1], r[2]))
        else:
            rows.sort(key=lambda r: (r[0], r[1], r[2]))
        window = rows[plan.start : plan.start + plan.limit] if plan.limit else []
        hits: list[RawHit] = []
        if window:
            if plan.sort_key is None:  # the tie-break cursors remember: the id hash
                ids = self._fast_values(searchers, window, "id_hash")
                hits = [
                    RawHit(float(v), int(ids[(i, r)] or 0), self._load(searchers[i], a))
                    for v, i, r, a in window
                ]
            else:
                hits = [RawHit(0.0, int(v), self._load(searchers[i], a)) for v, i, _, a in window]
        total = sum(p[2] for p in per_shard)
        facets: tuple[Facet, ...] = ()
        if plan.facets:
            outs = [p[3] for p in per_shard]
            facets = tuple(merge_buckets(f, outs) for f in plan.facets)
            if plan.count:
                total = sum(int((o.get("_total") or {}).get("value") or 0) for o in outs)
        return RawResult(hits, total, facets)

    def _rescore(
        self,
        searcher: Any,
        hits: list[Any],
        pairs: list[tuple[str, ...]],
        runs: list[tuple[str, ...]],
        sc: Scoring,
    ) -> list[Any]:
        """The adjacency bonus of a shard's top hits, (first-pass score, bonus, address) each:
        a rescoring window, as Elasticsearch's `rescore`. An optional two-word phrase reads
        positions at every document it is tested on, which over every match tripled the
        filtered query's time; here it is tested on the window only (with_bonus merges).
        Pairs of every AND in the query are tested on every hit (an OR branch's pair can
        reward a hit of the other branch)."""
        Q, Occur = tantivy.Query, tantivy.Occur
        hashes = searcher.fast_field_values("id_hash", [a for _, a in hits])
        # One term query per hit (a direct look-up each): a term set over an integer field
        # walks its whole term dictionary (1.2 against 0.3 ms at 20k documents, and growing).
        window = Q.boolean_query(
            [(Occur.Should, Q.term_query(self.schema, "id_hash", h)) for h in hashes]
        )
        only = Q.const_score_query(window, 0.0)
        # Each pair intersected with the window, then the union: a union of bare phrase
        # scorers seeks by walking every phrase match between two window hits (19 ms at 1M
        # documents against under 1 ms this way).
        bonuses = [Q.boost_query(self._phrase(p, sc), ADJACENCY_BOOST) for p in pairs]
        bonuses += [self._subject_bonus(r, sc)[1] for r in runs]
        clauses = [
            (Occur.Should, Q.boolean_query([(Occur.Must, only), (Occur.Must, b)])) for b in bonuses
        ]
        bonus = {
            (a.segment_ord, a.doc): score
            for score, a in searcher.search(Q.boolean_query(clauses), len(hits)).hits
        }
        return [(score, bonus.get((a.segment_ord, a.doc), 0.0), a) for score, a in hits]

    @staticmethod
    def _fast_values(
        searchers: list[Any], rows: list[tuple[Any, int, int, Any]], field: str
    ) -> dict[tuple[int, int], Any]:
        """`field` of each row's document, one call per shard: (shard, rank) -> value."""
        out: dict[tuple[int, int], Any] = {}
        for shard in {r[1] for r in rows}:
            mine = [r for r in rows if r[1] == shard]
            values = searchers[shard].fast_field_values(field, [r[3] for r in mine])
            out.update({(shard, r[2]): v for r, v in zip(mine, values, strict=True)})
        return out

    @staticmethod
    def _load(searcher: Any, addr: Any) -> dict[str, Any]:
        d = searcher.doc(addr).to_dict()
        out = {k: (v[0] if len(v) == 1 else v) for k, v in d.items()}
        for name in STORED_TEXT:
            if isinstance(value := out.get(name), bytes):
                out[name] = value.decode()
        return out

    def _vocabulary(self, word: str, caller: Caller) -> list[tuple[str, int]]:
        """The indexed words sharing `word`'s first two letters (one letter for a short word),
        counted in the documents the caller may read only. A typo in the first two letters is
        not corrected: the term dictionary is walked by prefix."""
        Q = tantivy.Query
        readable = Q.term_set_query(self.schema, READERS, rights_terms(caller))
        prefix = word[:2] if len(word) > 3 else word[:1]
        return merge_counts(
            self._map(
                lambda i, shard: shard.index.searcher().terms_with_prefix(
                    ALL_TEXT, prefix, filter_query=readable, limit=VOCABULARY_LIMIT
                )
            )
        )

    def _suggest(
        self, words: list[str], prefix: str, notation: str | None, caller: Caller, limit: int
    ) -> list[dict[str, Any]]:
        Q, s = tantivy.Query, self.schema
        if notation is not None:
            main = Q.regex_query(s, "number_key", re.escape(notation) + ".*")
        elif prefix:
            main = Q.phrase_prefix_query(s, "subject", [*words, prefix])
        elif len(words) > 1:
            phrase: list[str | tuple[int, str]] = [*words]
            main = Q.phrase_query(s, "subject", phrase)
        else:
            main = Q.term_query(s, "subject", words[0])
        query = Q.boolean_query([(tantivy.Occur.Must, main), *self._rights(caller)])

        def run(i: int, shard: Shard) -> tuple[Any, list[Any]]:
            searcher = shard.index.searcher()
            return searcher, searcher.search(query, limit, count=False).hits

        per_shard = self._map(run)
        rows = sorted(
            ((sc, i, rank, a) for i, (_, hits) in enumerate(per_shard)
             for rank, (sc, a) in enumerate(hits)),
            key=lambda r: (-r[0], r[1], r[2]),
        )[:limit]  # fmt: skip
        return [self._load(per_shard[i][0], a) for _, i, _, a in rows]
