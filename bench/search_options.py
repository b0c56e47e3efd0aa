"""What the ranking options cost, each beside the same index without it, in one process.

Over N generated documents (bench/corpus.py), in tantivy as the service builds it (2 shards):
- indexing with the exact-word field (all_exact: the words as typed, freq only) against
  without it;
- query p50/p95 of the benchmark's term queries (bench/search.py TERMS: 1–3 words) and its
  filtered query with every option, and with each one switched off: adjacency bonus (an
  optional phrase per adjacent pair and run), subject bonus (a phrase per run on the
  subject), global IDF (shard-independent scores), exact-word
  bonus (the same words typed with diacritics);
- the other way to reward adjacency that issue 18 names: a syllable-bigram field ("chuyen
  doi", "doi so" as terms; tantivy-py has no shingle filter, so a regex tokenizer over the
  text and the text without its first word). Measured on a bare tantivy index of all_text
  alone against the same index with the bigram field: indexing rate, and a term query's
  bonus as bigram terms against phrase pairs.

    python -m bench.search_options [--docs N] [--queries N]
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import tantivy

from bench.corpus import AGENCY_CODES, documents
from bench.search import FILTERED_TEXT, FILTERS, TERMS, pct
from services.search.index import Caller, IndexedDocument, SearchQuery
from services.search.index.tantivy_index import TantivyIndex
from services.search.index.tantivy_schema import ALL_TEXT_REPEATS, analyzer

# The bench's term queries as an official types them, with diacritics.
TYPED = {
    "thu ngan sach": "thu ngân sách", "ngan sach": "ngân sách", "chuyen doi so": "chuyển đổi số",
    "dat dai": "đất đai", "du lich": "du lịch", "giao duc": "giáo dục",
    "moi truong": "môi trường", "thien tai": "thiên tai", "tham nhung": "tham nhũng",
    "dan cu": "dân cư", "xu ly trach nhiem": "xử lý trách nhiệm",
    "duong giao thong": "đường giao thông", "cong an": "công an", "nong thon moi": "nông thôn mới",
    "ho so dung han": "hồ sơ đúng hạn", "kinh phi": "kinh phí", "dich vu cong": "dịch vụ công",
    "van thu": "văn thư",
}  # fmt: skip


def _build(n: int, where: Path, exact: bool) -> tuple[TantivyIndex, float]:
    ix = TantivyIndex(where, writer_heap_bytes=1_000_000_000)
    ix.exact_words = exact
    started = time.perf_counter()
    for batch in _batches(documents(n), 5_000):
        ix.upsert(batch)
    ix.commit()
    return ix, n / (time.perf_counter() - started)


def _batches(docs: Iterator[IndexedDocument], size: int) -> Iterator[list[IndexedDocument]]:
    while batch := [d for _, d in zip(range(size), docs, strict=False)]:
        yield batch


OPTIONS = ("adjacency", "subject_phrases", "global_idf", "exact_words")
# Each option alone, none (as before issue 18), and all of them (as the service runs).
VARIANTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("no option (before issue 18)", frozenset()),
    *((f"only {name}", frozenset({name})) for name in OPTIONS),
    ("all (the service)", frozenset(OPTIONS)),
)


def _times(
    ix: TantivyIndex, texts: list[tuple[str, str]], filtered: bool
) -> dict[str, list[float]]:
    """Wall ms per query of each variant, interleaved query by query (a shared machine's load
    then weighs on every variant alike)."""
    out: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    for text, agency in texts:
        q = SearchQuery(text, filters=FILTERS if filtered else (), highlight=False)
        for name, on in VARIANTS:
            for option in OPTIONS:
                setattr(ix, option, option in on)
            t = time.perf_counter()
            ix.search(q, Caller(agency))
            out[name].append((time.perf_counter() - t) * 1000)
    for option in OPTIONS:
        setattr(ix, option, True)
    return out


def _row(name: str, times: list[float], ref: list[float] | None) -> str:
    p50, p95 = pct(times, 0.5), pct(times, 0.95)
    ratio = f"  ×{p95 / pct(ref, 0.95):.2f} p95" if ref else ""
    return f"  {name:<34} p50 {p50:6.1f}  p95 {p95:6.1f} ms{ratio}"


# --- the syllable-bigram alternative, on bare tantivy --------------------------------------

_FIRST_WORD = re.compile(r"^[\W_]*[^\W_]+")


def _bigram_schema(bigrams: bool) -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("all_text", tokenizer_name="vi_fold", index_option="position")
    if bigrams:
        sb.add_text_field("bigrams", tokenizer_name="vi_pairs", index_option="freq")
    return sb.build()


def _pairs_analyzer() -> tantivy.TextAnalyzer:
    # Non-overlapping "word word" matches; the same over the text shifted by one word gives
    # the other half of the pairs.
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"[^\W_]+ [^\W_]+"))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def _bare(n: int, bigrams: bool) -> tuple[tantivy.Index, float]:
    index = tantivy.Index(_bigram_schema(bigrams))
    index.register_tokenizer("vi_fold", analyzer())
    index.register_tokenizer("vi_pairs", _pairs_analyzer())
    writer = index.writer(heap_size=500_000_000, num_threads=1)
    started = time.perf_counter()
    for d in documents(n):
        values = {"subject": d.subject, "number_notation": d.number_notation,
                  "summary": d.summary, "body_text": d.body_text}  # fmt: skip
        text = [values[f] for f, k in ALL_TEXT_REPEATS if values[f] for _ in range(k)]
        fields: dict[str, object] = {"all_text": text}
        if bigrams:
            fields["bigrams"] = text + [_FIRST_WORD.sub("", v, count=1) for v in text]
        writer.add_document(tantivy.Document(**fields))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index, n / (time.perf_counter() - started)


def _bare_times(index: tantivy.Index, build: Callable[[list[str]], tantivy.Query]) -> list[float]:
    searcher = index.searcher()
    out = []
    for text in TERMS * 5:
        q = build(text.split())
        t = time.perf_counter()
        searcher.search(q, 20)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _bigram_queries(index: tantivy.Index) -> dict[str, list[float]]:
    s, Q, Occur = index.schema, tantivy.Query, tantivy.Occur

    def words(ws: list[str]) -> list[tuple[object, tantivy.Query]]:
        return [(Occur.Must, Q.term_query(s, "all_text", w)) for w in ws]

    def pairs(ws: list[str]) -> list[tuple[str, str]]:
        return list(pairwise(ws))

    return {  # (not interleaved: three short runs, one after the other)
        "words only": _bare_times(index, lambda ws: Q.boolean_query(words(ws))),
        "+ phrase pairs": _bare_times(
            index,
            lambda ws: Q.boolean_query(
                words(ws)
                + [(Occur.Should, Q.phrase_query(s, "all_text", list(p))) for p in pairs(ws)]
            ),
        ),
        "+ bigram terms": _bare_times(
            index,
            lambda ws: Q.boolean_query(
                words(ws)
                + [(Occur.Should, Q.term_query(s, "bigrams", " ".join(p))) for p in pairs(ws)]
            ),
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_options", description=__doc__)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument("--bare-docs", type=int, default=20_000, help="for the bigram field")
    args = parser.parse_args(argv)
    rng = random.Random(1)
    terms = [(rng.choice(TERMS), rng.choice(AGENCY_CODES)) for _ in range(args.queries)]
    typed = [(TYPED[t], a) for t, a in terms]
    filtered = [(FILTERED_TEXT, rng.choice(AGENCY_CODES)) for _ in range(args.queries)]
    with tempfile.TemporaryDirectory(prefix="lgsp-bench-options-") as tmp:
        print(f"indexing {args.docs:,} documents twice (2 shards)", flush=True)
        plain, plain_rate = _build(args.docs, Path(tmp) / "plain", exact=False)
        plain.close()
        ix, rate = _build(args.docs, Path(tmp) / "exact", exact=True)
        print(f"  without all_exact  {plain_rate:8,.0f} docs/s  {_size(Path(tmp) / 'plain')}")
        print(
            f"  with all_exact     {rate:8,.0f} docs/s  {_size(Path(tmp) / 'exact')}"
            f"  (×{rate / plain_rate:.2f})"
        )
        ix.close()
        ix = TantivyIndex(Path(tmp) / "exact")
        _times(ix, terms[:20], False)  # warm
        print(f"queries at {args.docs:,} documents, {args.queries} of each, no highlights")
        kinds = (("term", terms, False), ("term, typed with diacritics", typed, False),
                 ("filtered", filtered, True))  # fmt: skip
        for label, texts, filt in kinds:
            print(f" {label}")
            times = _times(ix, texts, filt)
            ref = times[VARIANTS[0][0]]
            for name, _ in VARIANTS:
                print(_row(name, times[name], ref if name != VARIANTS[0][0] else None))
        ix.close()
    print(f"syllable-bigram field, bare tantivy, {args.bare_docs:,} documents, 1 writer thread")
    _, bare_rate = _bare(args.bare_docs, bigrams=False)
    big, big_rate = _bare(args.bare_docs, bigrams=True)
    print(f"  all_text only      {bare_rate:8,.0f} docs/s")
    print(f"  + bigram field     {big_rate:8,.0f} docs/s  (×{big_rate / bare_rate:.2f})")
    times = _bigram_queries(big)
    for name, ts in times.items():
        print(_row(name, ts, times["words only"] if name != "words only" else None))
    return 0


def _size(path: Path) -> str:
    return f"{sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 2**20:,.0f} MiB"


if __name__ == "__main__":
    raise SystemExit(main())
