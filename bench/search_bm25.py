"""Which engine's BM25 is Lucene's: tantivy and the Elasticsearch emulator beside the formula.

The relevance harness (bench/search_relevance.py) finds the two engines 0.03–0.08 nDCG@10
apart with the same query trees over the same combined field. This isolates the scorer:
a handful of documents in one text field — one value or several (the combined field repeats
the subject as values of its own), word counts and lengths varied — scored for a word and
for a two-word phrase by

- Lucene's BM25 (Elasticsearch's default similarity): idf = ln(1 + (N − df + 0.5)/(df + 0.5)),
  score = idf · tf / (tf + k1 · (1 − b + b · len/avglen)), k1 1.2, b 0.75, a field's length
  summed over its values, a phrase scored as a word whose idf is the sum of its words' and
  whose tf is the phrase's count (computed here, without Lucene's one-byte length rounding);
- tantivy (the same formula, with that rounding);
- the server at --es, or osmem (started here).

A ratio of 1 means the engine scores as Lucene does; a ratio that varies from document to
document reorders hits.

    python -m bench.search_bm25 [--es URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import urllib.request
import uuid
from collections.abc import Sequence

import tantivy

K1, B = 1.2, 0.75
DOCS: dict[str, list[str]] = {
    "one value, tf 1, len 4": ["alpha beta gamma delta"],
    "two values, tf 1, len 4": ["alpha beta", "gamma delta"],
    "three values, tf 3, len 6": ["alpha x", "alpha x", "alpha x"],
    "one value, tf 3, len 6": ["alpha x alpha x alpha x"],
    "one value, tf 1, len 20": ["alpha " + " ".join(f"w{i}" for i in range(19))],
    "one value, tf 2, len 12": ["alpha x " + " ".join(f"v{i}" for i in range(8)) + " alpha y"],
    "no match, len 2": ["zeta eta"],
    "no match, len 4": ["zeta eta theta iota"],
}
QUERIES = (("word", ["alpha"]), ("phrase", ["alpha", "x"]))


def _tokens(values: list[str]) -> list[list[str]]:
    return [v.split() for v in values]


def lucene(words: list[str]) -> dict[str, float]:
    """Lucene's BM25 of `words` (one word, or a phrase) for every document that matches."""
    lens = {d: sum(len(t) for t in _tokens(v)) for d, v in DOCS.items()}
    avg = sum(lens.values()) / len(DOCS)

    def freq(doc: list[str]) -> int:
        toks = _tokens(doc)
        n = len(words)
        return sum(
            1 for value in toks for i in range(len(value) - n + 1) if value[i : i + n] == words
        )

    def idf(word: str) -> float:
        df = sum(1 for v in DOCS.values() if any(word in t for t in _tokens(v)))
        return math.log(1 + (len(DOCS) - df + 0.5) / (df + 0.5))

    weight = sum(idf(w) for w in words)
    out = {}
    for d, v in DOCS.items():
        if tf := freq(v):
            out[d] = weight * tf / (tf + K1 * (1 - B + B * lens[d] / avg))
    return out


def tantivy_scores(words: list[str]) -> dict[str, float]:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("name", stored=True, tokenizer_name="raw")
    sb.add_text_field("f", stored=False, tokenizer_name="whitespace", index_option="position")
    schema = sb.build()
    index = tantivy.Index(schema)
    writer = index.writer(15_000_000, 1)
    for d, values in DOCS.items():
        writer.add_document(tantivy.Document(name=d, f=values))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()
    Q = tantivy.Query
    if len(words) == 1:
        q = Q.term_query(schema, "f", words[0])
    else:
        phrase: list[str | tuple[int, str]] = [*words]
        q = Q.phrase_query(schema, "f", phrase)
    return {searcher.doc(a).to_dict()["name"][0]: s for s, a in searcher.search(q, len(DOCS)).hits}


def _call(url: str, method: str, path: str, body: object | None = None) -> dict:
    req = urllib.request.Request(
        url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")


def server_scores(url: str, words: list[str]) -> dict[str, float]:
    index = f"bm25-{uuid.uuid4().hex[:8]}"
    _call(url, "PUT", f"/{index}", {
        "settings": {"number_of_shards": 1},
        "mappings": {"properties": {
            "name": {"type": "keyword"},
            "f": {"type": "text", "analyzer": "whitespace", "position_increment_gap": 100},
        }},
    })  # fmt: skip
    try:
        for i, (d, values) in enumerate(DOCS.items()):
            _call(url, "PUT", f"/{index}/_doc/{i}?refresh=true", {"name": d, "f": values})
        kind = "match" if len(words) == 1 else "match_phrase"
        res = _call(url, "POST", f"/{index}/_search", {
            "query": {kind: {"f": " ".join(words)}}, "size": len(DOCS),
        })  # fmt: skip
        return {h["_source"]["name"]: h["_score"] for h in res["hits"]["hits"]}
    finally:
        _call(url, "DELETE", f"/{index}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_bm25", description=__doc__)
    parser.add_argument("--es", help="Elasticsearch/OpenSearch URL (default: start osmem)")
    args = parser.parse_args(argv)
    from tests.fixtures.osmem import osmem_server  # only when no --es: pytest comes with it

    with contextlib.ExitStack() as stack:
        url = args.es or stack.enter_context(osmem_server())
        name = "server" if args.es else "osmem"
        for kind, words in QUERIES:
            ref, tv, es = lucene(words), tantivy_scores(words), server_scores(url, words)
            print(f"\n{kind} {' '.join(words)!r}")
            print(f"  {'document':28} {'Lucene':>8} {'tantivy':>8} {name:>8}   ratios to Lucene")
            for d, want in ref.items():
                t, e = tv.get(d, math.nan), es.get(d, math.nan)
                print(f"  {d:28} {want:8.4f} {t:8.4f} {e:8.4f}   {t / want:5.3f} {e / want:5.3f}")
            for label, got in (("tantivy", tv), (name, es)):
                ratios = [got.get(d, math.nan) / v for d, v in ref.items()]
                print(f"  {label}: ratio {min(ratios):.3f}–{max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
