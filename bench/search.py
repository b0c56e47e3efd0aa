"""The search engine over a generated corpus: index rate, size on disk, query latency.

Indexes N generated documents (bench/corpus.py: Vietnamese administrative text, ~3.6 KB
bodies) into tantivy through the SearchIndex interface (upsert batches, version checks,
one commit at the end; `--shards`, default 2, each query searches them in parallel), then
times three query kinds through `search()` — the full call a servicer makes: parse, rights
filter inside the engine, total, stored fields, and highlighting (also shown without it):
  term       1–3 plain words, ANDed, ranked
  phrase     a quoted 3–6 word phrase
  filtered   '(cai cach) OR (chuyen doi so) -"du lich"' + doc_type and date-range filters
Every query runs as one of the corpus's agencies, so the rights filter always applies.

Reference: at 100k documents (or N if smaller) the same queries also run against SQLite FTS5
(unicode61, text folded by us, rights and filters in SQL, bm25 with the same field weights,
total counted), and against tantivy at that same size, so the ratio compares equals.

Also printed: how common each benchmark word is (share of documents containing it, and
matching each query), the process's CPU time per query (both shard threads: what 2 cores
must supply) and the segments per shard, and freshness — upsert one document, commit, find
it — on the full index while it is otherwise idle (the platform's issue-to-findable time
adds the bus and the consumer's commit interval to this).

Goals on 2 cores: ≥ 5,000 docs/s indexing; p95 < 30 ms term and filtered; p95 < 100 ms phrase.

Queries run on the index reopened as the search service opens it: with `--memory-lock`
(default: the service's search.memory_lock) its hot files are locked in memory first.

    python -m bench.search [--quick] [--docs N] [--dir PATH] [--queries N] [--shards N]
                           [--memory-lock none|postings|all]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bench.corpus import AGENCY_CODES, documents
from services.search.index import Caller, Filter, IndexedDocument, SearchQuery
from services.search.index import text as tx
from services.search.index.query import parse
from services.search.index.resident import LEVELS
from services.search.index.tantivy_index import TantivyIndex
from services.search.index.tantivy_layout import DEFAULT_SHARDS
from services.search.index.tantivy_schema import ALL_TEXT
from services.search.settings import SearchSettings

GOAL_RATE = 5_000
GOAL_P95 = {"term": 30.0, "phrase": 100.0, "filtered": 30.0}
REFERENCE_DOCS = 100_000

TERMS = ["thu ngan sach", "ngan sach", "chuyen doi so", "dat dai", "du lich", "giao duc",
         "moi truong",
         "thien tai", "tham nhung", "dan cu", "xu ly trach nhiem", "duong giao thong", "cong an",
         "nong thon moi", "ho so dung han", "kinh phi", "dich vu cong", "van thu"]  # fmt: skip
PHRASES = ['"cai cach hanh chinh"', '"dich vu cong truc tuyen toan trinh"',
           '"an toan thong tin mang"', '"xay dung nong thon moi"', '"so hoa ho so"',
           '"phong chong thien tai"', '"chuyen doi so"', '"kho du lieu dung chung"',
           '"quan ly dat dai"', '"giam ngheo ben vung"']  # fmt: skip
FILTERED_TEXT = '(cai cach) OR (chuyen doi so) -"du lich"'
FILTERS = (
    Filter("doc_type", ("CV", "QĐ", "KH")),
    Filter("issued_date", gte="2022-01-01", lte="2025-12-31"),
)

FTS_TERMS = {t: t for t in TERMS}
FTS_PHRASES = {p: p for p in PHRASES}
FTS_FILTERED = '((cai cach) OR (chuyen doi so)) NOT "du lich"'


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def timed(fn: Callable[[], object], n: int) -> list[float]:
    fn()  # warm
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def query_sets(n: int, seed: int = 1) -> dict[str, list[tuple[str, str]]]:
    """(query text, caller agency) per kind, the same for every engine."""
    rng = random.Random(seed)
    return {
        "term": [(rng.choice(TERMS), rng.choice(AGENCY_CODES)) for _ in range(n)],
        "phrase": [(rng.choice(PHRASES), rng.choice(AGENCY_CODES)) for _ in range(n)],
        "filtered": [(FILTERED_TEXT, rng.choice(AGENCY_CODES)) for _ in range(n)],
    }


def run_tantivy(
    ix: TantivyIndex,
    sets: dict[str, list[tuple[str, str]]],
    highlight: bool,
    lower_bounds: dict[str, int] | None = None,
    cpu: dict[str, float] | None = None,
) -> dict[str, list[float]]:
    """Wall ms per query of each kind; `cpu` gets the process's CPU ms per query (all
    threads: the shards' searches included)."""
    out: dict[str, list[float]] = {}
    for kind, items in sets.items():
        filters = FILTERS if kind == "filtered" else ()
        times = []
        started = time.process_time()
        for text, agency in items:
            t = time.perf_counter()
            res = ix.search(SearchQuery(text, filters=filters, highlight=highlight), Caller(agency))
            times.append((time.perf_counter() - t) * 1000)
            if lower_bounds is not None and res.total_is_lower_bound:
                lower_bounds[kind] = lower_bounds.get(kind, 0) + 1
        if cpu is not None:
            cpu[kind] = (time.process_time() - started) * 1000 / len(items)
        out[kind] = times
    return out


def word_frequencies(ix: TantivyIndex, n: int) -> None:
    """How common the benchmark's words are: share of documents holding each word (or word
    pair, for phrases) and matching each query (all documents, no rights filter)."""
    searchers = [shard.index.searcher() for shard in ix._shards]

    def share(count: int) -> str:
        return f"{count / n:6.1%}"

    def matches(text: str) -> int:
        node = parse(text)
        assert node is not None
        query = ix._text(node)
        results: list[Any] = [s.search(query, 1, count=True) for s in searchers]
        return sum(int(r.count or 0) for r in results)  # tantivy-py's stubs lack .count

    def doc_freq(word: str) -> int:
        return sum(s.doc_freq(ALL_TEXT, word) for s in searchers)

    print("\nhow common the benchmark words are (share of all documents):")
    words = sorted({w for q in TERMS for w in tx.tokens(q)})
    print("  words:  " + ", ".join(f"{w} {share(doc_freq(w)).strip()}"
                                   for w in words))  # fmt: skip
    print("  term queries (all words):  " + ", ".join(
        f"{q!r} {share(matches(q)).strip()}" for q in TERMS))  # fmt: skip
    print("  phrases:  " + ", ".join(
        f"{q} {share(matches(q)).strip()}" for q in PHRASES))  # fmt: skip
    print(f"  filtered text {FILTERED_TEXT!r}: {share(matches(FILTERED_TEXT)).strip()}")


def freshness(ix: TantivyIndex, n: int, rounds: int = 40) -> list[float]:
    """Upsert one new document, commit, and search until it is found: ms per round."""
    out = []
    for r in range(rounds):
        word = f"freshness{r}x"
        doc = IndexedDocument(f"fresh-{r}", subject=f"Văn bản mới {word}",
                              agency_code=AGENCY_CODES[0], version=1)  # fmt: skip
        t = time.perf_counter()
        ix.upsert([doc])
        ix.commit()
        while not ix.search(SearchQuery(word), Caller(AGENCY_CODES[0])).hits:
            time.sleep(0.001)
        out.append((time.perf_counter() - t) * 1000)
    ix.delete([f"fresh-{r}" for r in range(rounds)])
    ix.close()
    return out


# --- SQLite FTS5 reference ----------------------------------------------------------------


class Fts5:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
            CREATE VIRTUAL TABLE f USING fts5(subject, number, summary, body,
                tokenize='unicode61 remove_diacritics 2');
            CREATE TABLE m(rowid INTEGER PRIMARY KEY, agency TEXT, sender TEXT, public INT,
                conf TEXT, doc_type TEXT, day INT);
            CREATE TABLE r(agency TEXT, doc INT);
            """
        )

    def add(self, docs: list) -> None:
        rows, meta, rec = [], [], []
        for d in docs:
            rowid = int(d.id.split("-")[1]) + 1
            rows.append((rowid, tx.fold(d.subject), tx.fold(d.number_notation),
                         tx.fold(d.summary), tx.fold(d.body_text)))  # fmt: skip
            meta.append((rowid, d.agency_code, d.sender_agency_code, int(d.public),
                         d.confidentiality, d.doc_type,
                         (d.issued_date - date(1970, 1, 1)).days))  # fmt: skip
            rec += [(a, rowid) for a in d.recipient_agency_codes]
        self.db.executemany(
            "INSERT INTO f(rowid, subject, number, summary, body) VALUES (?,?,?,?,?)", rows
        )
        self.db.executemany("INSERT INTO m VALUES (?,?,?,?,?,?,?)", meta)
        self.db.executemany("INSERT INTO r VALUES (?,?)", rec)

    def finish(self) -> None:
        self.db.execute("CREATE INDEX r_agency ON r(agency, doc)")
        self.db.commit()

    def search(self, match: str, agency: str, filtered: bool) -> tuple[list, int]:
        where = """f MATCH ? AND (m.agency = ? OR m.sender = ? OR m.public = 1
                   OR m.rowid IN (SELECT doc FROM r WHERE agency = ?)) AND m.conf = 'normal'"""
        args: list = [match, agency, agency, agency]
        if filtered:
            where += " AND m.doc_type IN ('CV','QĐ','KH') AND m.day BETWEEN ? AND ?"
            args += [
                (date(2022, 1, 1) - date(1970, 1, 1)).days,
                (date(2025, 12, 31) - date(1970, 1, 1)).days,
            ]
        base = f"FROM f JOIN m ON m.rowid = f.rowid WHERE {where}"
        hits = self.db.execute(
            f"SELECT f.rowid, bm25(f, 3.0, 4.0, 1.5, 1.0) AS s {base} ORDER BY s LIMIT 20", args
        ).fetchall()
        total = self.db.execute(f"SELECT count(*) {base}", args).fetchone()[0]
        return hits, total

    def run(self, sets: dict[str, list[tuple[str, str]]]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for kind, items in sets.items():
            times = []
            for text, agency in items:
                match = FTS_FILTERED if kind == "filtered" else text
                t = time.perf_counter()
                self.search(match, agency, kind == "filtered")
                times.append((time.perf_counter() - t) * 1000)
            out[kind] = times
        return out


def summary(times: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    return {k: (statistics.median(v), pct(v, 0.95)) for k, v in times.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__)
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50,000 documents")
    parser.add_argument("--dir", help="where to build the index (default: a temporary dir)")
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="tantivy writer threads per shard (1 measured best on 2 cores)",
    )
    parser.add_argument(
        "--shards", type=int, default=DEFAULT_SHARDS, help="tantivy shards (searched in parallel)"
    )
    parser.add_argument(
        "--memory-lock",
        choices=sorted(LEVELS),
        default=SearchSettings.memory_lock,
        help="what the query phase locks in memory, as search.memory_lock (default: %(default)s,"
        " the service's default)",
    )
    args = parser.parse_args(argv)
    n = 50_000 if args.quick else args.docs
    nq = min(args.queries, 100) if args.quick else args.queries
    ref_docs = min(n, REFERENCE_DOCS)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="lgsp-bench-search-"))
    shutil.rmtree(workdir / "tantivy", ignore_errors=True)
    (workdir / "fts5.db").unlink(missing_ok=True)
    sets = query_sets(nq)
    ok = True
    try:
        ix = TantivyIndex(
            workdir / "tantivy",
            writer_heap_bytes=1_000_000_000,
            writer_threads=args.threads,
            shards=args.shards,
        )
        fts = Fts5(workdir / "fts5.db")
        print(
            f"indexing {n:,} documents into {workdir}, tantivy in {ix.shards} shard(s)"
            f" (reference: FTS5 over the first {ref_docs:,})",
            flush=True,
        )
        indexed, index_secs, fts_secs = 0, 0.0, 0.0
        ref: dict[str, dict[str, tuple[float, float]]] = {}
        batch: list = []
        gen = documents(n)
        t_last = time.perf_counter()
        while True:
            batch = [d for _, d in zip(range(5_000), gen, strict=False)]
            if not batch:
                break
            t = time.perf_counter()
            ix.upsert(batch)
            index_secs += time.perf_counter() - t
            if indexed < ref_docs:
                t = time.perf_counter()
                fts.add(batch[: ref_docs - indexed])
                fts_secs += time.perf_counter() - t
            indexed += len(batch)
            if indexed == ref_docs:
                t = time.perf_counter()
                ix.close()  # commit and let merges finish, so they do not skew the timings
                index_secs += time.perf_counter() - t
                fts.finish()
                print(
                    f"  at {ref_docs:,}: timing tantivy and FTS5 on the same documents…", flush=True
                )
                ref["tantivy"] = summary(run_tantivy(ix, sets, highlight=False))
                ref["fts5"] = summary(fts.run(sets))
            if indexed % 50_000 == 0 or time.perf_counter() - t_last > 30:
                t_last = time.perf_counter()
                print(
                    f"  {indexed:>9,} docs  {indexed / index_secs:>7,.0f} docs/s"
                    " (indexing time only)",
                    flush=True,
                )
        t = time.perf_counter()
        ix.commit()
        index_secs += time.perf_counter() - t
        rate = n / index_secs
        t = time.perf_counter()
        ix.close()  # merges finish before the queries are timed
        merge_secs = time.perf_counter() - t
        size = ix.disk_bytes()
        print(f"\nindexed {n:,} docs in {index_secs:.1f} s: {rate:,.0f} docs/s"
              f" (goal ≥ {GOAL_RATE:,}) "
              f"{'OK' if rate >= GOAL_RATE else 'MISSED'}")  # fmt: skip
        print(
            f"index on disk: {size / 2**20:,.0f} MiB ({size / n:,.0f} B/doc;"
            " the text is stored for highlights)"
        )
        print(
            f"then merges finished in {merge_secs:.1f} s"
            f" ({n / (index_secs + merge_secs):,.0f} docs/s counting them)"
        )
        print(f"FTS5 reference indexed {ref_docs:,} docs at {ref_docs / fts_secs:,.0f} docs/s")
        # Queries run on the index reopened as the service opens it, memory lock included.
        ix = TantivyIndex(workdir / "tantivy", memory_lock=args.memory_lock)
        if ix.resident is not None:
            t = time.perf_counter()
            ix.resident.refresh()
            print(f"memory_lock={args.memory_lock}: {ix.resident.locked_bytes / 2**20:,.0f} MiB"
                  f" locked in {time.perf_counter() - t:.1f} s")  # fmt: skip
        word_frequencies(ix, n)
        lower: dict[str, int] = {}
        cpu: dict[str, float] = {}
        full = summary(run_tantivy(ix, sets, highlight=True, lower_bounds=lower))
        bare = summary(run_tantivy(ix, sets, highlight=False, cpu=cpu))
        # Reference in this process: the same index and queries with issue 18's ranking
        # options off (adjacency and subject bonuses, exact words, global IDF).
        options = ("adjacency", "subject_phrases", "exact_words", "global_idf")
        for name in options:
            setattr(ix, name, False)
        plain = summary(run_tantivy(ix, sets, highlight=False))
        for name in options:
            setattr(ix, name, True)
        print(
            f"\nquery latency, ms, {nq} queries per kind, rights-filtered, top 20 and total"
            f" (tantivy: always exact; {ix.shards} shard(s) searched in parallel):"
        )
        print(f"{'kind':<9} {'p50':>7} {'p95':>7} {'p95 no-hl':>10} {'goal p95':>9}   "
              f"| at {ref_docs // 1000}k, no highlights: tantivy p50/p95"
              "   FTS5 p50/p95   FTS5÷tantivy (p95)")  # fmt: skip
        for kind in sets:
            p50, p95 = full[kind]
            t50, t95 = ref["tantivy"][kind]
            f50, f95 = ref["fts5"][kind]
            met = p95 < GOAL_P95[kind]
            ok &= met
            print(f"{kind:<9} {p50:7.2f} {p95:7.2f} {bare[kind][1]:10.2f} {GOAL_P95[kind]:>7.0f}"
                  f" {'OK' if met else 'MISSED':<6}| {t50:7.2f}/{t95:<7.2f}"
                  f"      {f50:7.2f}/{f95:<7.2f}"
                  f"  {f95 / t95:6.1f}×")  # fmt: skip
        print(
            "ranking options off (same index, no highlights), p50/p95 ms, and the p95 ratio"
            " on ÷ off: "
            + ", ".join(
                f"{k} {plain[k][0]:.2f}/{plain[k][1]:.2f} ×{bare[k][1] / plain[k][1]:.2f}"
                for k in sets
            )
        )
        segments = [shard.index.searcher().num_segments for shard in ix._shards]
        print(
            "process CPU per query, no highlights (all threads): "
            + ", ".join(f"{k} {v:.1f} ms" for k, v in cpu.items())
            + f"; segments per shard: {segments}"
        )
        print("totals given as a lower bound: " + ", ".join(
            f"{k} {lower.get(k, 0)}/{nq}" for k in sets))  # fmt: skip
        fresh = freshness(ix, n)
        print(f"freshness (upsert 1 + commit + found), ms: p50 {statistics.median(fresh):.0f},"
              f" p99 {pct(fresh, 0.99):.0f}, max {max(fresh):.0f}")  # fmt: skip
        ok &= rate >= GOAL_RATE
        fts.db.close()
    finally:
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
