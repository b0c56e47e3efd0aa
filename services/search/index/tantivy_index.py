"""The embedded engine: tantivy on local disk (the default, one machine)."""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import tantivy

from .base import (
    KEYWORD_FIELDS,
    READERS,
    Caller,
    EngineIndex,
    Facet,
    FacetValue,
    IndexedDocument,
    Plan,
    RawHit,
    RawResult,
    ValidFilter,
    engine_fields,
    rights_terms,
)
from .query import And, Node, Not, Notation, Or, Phrase, Term

# Every word is matched in one combined field (subject, number, summary and body: one posting
# list per word, not four); subject and number add a boosted score on top when they match.
ALL_TEXT = "all_text"
BOOSTED = (("subject", 2.0), ("number_notation", 3.0))
NOTATION_BOOST = 10.0
# Stored only (not indexed on their own: the combined field finds their words).
STORED_TEXT = ("summary", "body_text")
# The fields a hit's words are counted in, and their weights, for engines that score several
# fields (Elasticsearch: dis_max over them).
TEXT_FIELDS = (("subject", 3.0), ("number_notation", 4.0), ("summary", 1.5), ("body_text", 1.0))
TIE_BREAKER = 0.3
STORED = (
    "id", "number_notation", "subject", "summary", "body_text", "doc_type", "agency_code",
    "status", "signer_name", "issued_date", "confidentiality",
)  # fmt: skip
INT_FIELDS = ("issued_day", "updated_ts", "version", "id_hash", "k_issued", "k_updated")
BATCH = 1000
ANALYZER = "vi_fold"


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", fast=True)
    for name, _ in BOOSTED:
        sb.add_text_field(name, stored=True, tokenizer_name=ANALYZER, index_option="position")
    for name in STORED_TEXT:  # UTF-8 bytes, stored for hits and highlights, not indexed
        sb.add_bytes_field(name, stored=True, indexed=False, fast=False)
    sb.add_text_field(ALL_TEXT, stored=False, tokenizer_name=ANALYZER, index_option="position")
    # Who may read: one term per reading agency, see rights_terms().
    sb.add_text_field(READERS, stored=False, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("number_key", stored=False, tokenizer_name="raw")
    for name in KEYWORD_FIELDS:
        sb.add_text_field(name, stored=name in STORED, tokenizer_name="raw", fast=True)
    sb.add_text_field("issued_date", stored=True, tokenizer_name="raw")
    sb.add_text_field("updated_time", stored=True, tokenizer_name="raw")
    sb.add_boolean_field("public", stored=False, indexed=True, fast=True)
    for name in INT_FIELDS:
        sb.add_integer_field(name, stored=False, indexed=True, fast=True)
    return sb.build()


def analyzer() -> tantivy.TextAnalyzer:
    """simple tokenizer + lowercase + ascii_fold: "Đường" is indexed as "duong".

    Folding runs in tantivy's indexing thread (Rust), beside the Python thread that builds
    documents: with one writer thread this pipelines best on 2 cores (measured; folding in
    Python first was slower: str.translate costs ~180 µs per 3.6 KB body).
    """
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def _chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


class TantivyIndex(EngineIndex):
    """tantivy in `directory` (None: in memory, for tests).

    One writer per index directory (tantivy locks it); searches use the last committed state.
    The cursor key is kept in the directory so cursors outlive a restart.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        cursor_key: bytes | None = None,
        writer_heap_bytes: int = 256_000_000,
        writer_threads: int = 1,
    ) -> None:
        self.schema = build_schema()
        self._dir = Path(directory) if directory is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            try:
                self._index = tantivy.Index(self.schema, path=str(self._dir), reuse=True)
            except ValueError as e:
                if "schema does not match" not in str(e):
                    raise
                raise RuntimeError(
                    f"the search index in {self._dir} was built by another version of the"
                    " schema; move it away and rebuild it (re-index the documents)"
                ) from e
            cursor_key = cursor_key or self._stored_key()
        else:
            self._index = tantivy.Index(self.schema)
            cursor_key = cursor_key or secrets.token_bytes(32)
        super().__init__(cursor_key)
        self._index.register_tokenizer(ANALYZER, analyzer())
        self._heap = writer_heap_bytes
        self._threads = writer_threads
        self._writer: Any = None
        self._lock = threading.Lock()  # one writer, several threads may call upsert/commit
        self._pending: dict[
            str, int | None
        ] = {}  # id -> version written since commit (None: deleted)
        self._index.reload()

    def _stored_key(self) -> bytes:
        assert self._dir is not None
        path = self._dir / "cursor.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return path.read_bytes()

    @property
    def writer(self) -> Any:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=self._heap, num_threads=self._threads)
        return self._writer

    # --- writes ---

    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        written = 0
        with self._lock:
            writer = self.writer
            for batch in _chunks(docs, BATCH):
                known = self._versions([d.id for d in batch])
                for d in batch:
                    current = known.get(d.id)
                    if current is not None and d.version < current:
                        continue  # an older event arrived late
                    if current is not None:
                        writer.delete_documents_by_term("id", d.id)
                    writer.add_document(self._document(d))
                    known[d.id] = self._pending[d.id] = d.version
                    written += 1
        return written

    def _document(self, d: IndexedDocument) -> tantivy.Document:
        fields = engine_fields(d)
        # Each part a value of its own: tantivy leaves a position gap between values, so a
        # phrase does not run from the subject into the body.
        parts = [
            v
            for v in (fields[f] for f in ("subject", "number_notation", "summary", "body_text"))
            if v
        ]
        fields[ALL_TEXT] = parts
        for name in STORED_TEXT:
            fields[name] = fields[name].encode() if fields[name] else None
        return tantivy.Document(
            **{k: v for k, v in fields.items() if v is not None and v != "" and v != []}
        )

    def _versions(self, ids: list[str]) -> dict[str, int | None]:
        """Version of each id as written: pending changes first, then the committed index."""
        out: dict[str, int | None] = {}
        lookup = []
        for i in ids:
            if i in self._pending:
                out[i] = self._pending[i]
            else:
                lookup.append(i)
        if lookup:
            searcher = self._index.searcher()
            if searcher.num_docs:
                q = tantivy.Query.term_set_query(self.schema, "id", lookup)
                res = searcher.search(q, len(lookup), count=False, order_by_field="id")
                addrs = [a for _, a in res.hits]
                versions = searcher.fast_field_values("version", addrs)
                out.update({doc_id: v for (doc_id, _), v in zip(res.hits, versions, strict=True)})
        return {k: v for k, v in out.items() if v is not None}

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            writer = self.writer
            for doc_id in ids:
                writer.delete_documents_by_term("id", doc_id)
                self._pending[doc_id] = None

    def commit(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
            self._pending.clear()
            self._index.reload()

    def count(self) -> int:
        return int(self._index.searcher().num_docs)

    def close(self) -> None:
        """Commits what was written, then lets merges finish and releases the lock."""
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
                self._writer.wait_merging_threads()
                self._writer = None
            self._pending.clear()
            self._index.reload()  # the index stays searchable (read-only until the next write)

    def disk_bytes(self) -> int:
        if self._dir is None:
            return 0
        return sum(p.stat().st_size for p in self._dir.rglob("*") if p.is_file())

    # --- queries ---

    def _scored(self, required: tantivy.Query, field_query: Any) -> tantivy.Query:
        """`required` (all text); subject and number add their boosted score if they match."""
        Q, Occur = tantivy.Query, tantivy.Occur
        clauses = [(Occur.Must, required)]
        clauses += [(Occur.Should, Q.boost_query(field_query(f), w)) for f, w in BOOSTED]
        return Q.boolean_query(clauses)

    def _phrase(self, words: tuple[str, ...]) -> tantivy.Query:
        """The words in this order, anywhere in the text (tantivy intersects the words'
        postings, rarest first, and reads positions only where all of them occur)."""
        return tantivy.Query.phrase_query(self.schema, ALL_TEXT, list(words))

    def _text(self, node: Node) -> tantivy.Query:
        Q, s = tantivy.Query, self.schema
        if isinstance(node, Term):
            return self._scored(
                Q.term_query(s, ALL_TEXT, node.token), lambda f: Q.term_query(s, f, node.token)
            )
        if isinstance(node, Phrase):
            return self._scored(
                self._phrase(node.tokens), lambda f: Q.phrase_query(s, f, list(node.tokens))
            )
        if isinstance(node, Notation):
            exact = Q.boost_query(Q.term_query(s, "number_key", node.key), NOTATION_BOOST)
            cited = (
                self._text(Phrase(node.tokens))
                if len(node.tokens) > 1
                else self._text(Term(node.tokens[0]))
            )
            return Q.boolean_query([(tantivy.Occur.Should, exact), (tantivy.Occur.Should, cited)])
        if isinstance(node, And):
            # Plain words flat: one intersection of their postings in all_text, and their
            # subject/number boosts as one optional union (not one nested boolean per word).
            clauses = []
            for i in node.items:
                if isinstance(i, Not):
                    clauses.append((tantivy.Occur.MustNot, self._match(i.item)))
                elif isinstance(i, Term):
                    clauses.append((tantivy.Occur.Must, Q.term_query(s, ALL_TEXT, i.token)))
                    clauses += [
                        (tantivy.Occur.Should, Q.boost_query(Q.term_query(s, f, i.token), w))
                        for f, w in BOOSTED
                    ]
                else:
                    clauses.append((tantivy.Occur.Must, self._text(i)))
            if all(o == tantivy.Occur.MustNot for o, _ in clauses):
                clauses.append((tantivy.Occur.Must, Q.all_query()))
            return Q.boolean_query(clauses)
        if isinstance(node, Or):
            return Q.boolean_query([(tantivy.Occur.Should, self._text(i)) for i in node.items])
        assert isinstance(node, Not)
        return Q.boolean_query(
            [(tantivy.Occur.Must, Q.all_query()), (tantivy.Occur.MustNot, self._match(node.item))]
        )

    def _match(self, node: Node) -> tantivy.Query:
        """`node` for matching only (under NOT): the combined field, nothing to score."""
        Q, s = tantivy.Query, self.schema
        if isinstance(node, Term):
            return Q.term_query(s, ALL_TEXT, node.token)
        if isinstance(node, Phrase):
            return self._phrase(node.tokens)
        return self._text(node)

    def _rights(self, caller: Caller) -> list[tuple[Any, tantivy.Query]]:
        """One term set on the readers field: (the caller's agency or public) at the
        confidentiality levels the caller may read."""
        Q = tantivy.Query
        terms = Q.term_set_query(self.schema, READERS, rights_terms(caller))
        return [(tantivy.Occur.Must, Q.const_score_query(terms, 0.0))]

    def _filter(self, f: ValidFilter) -> tuple[Any, tantivy.Query]:
        Q, s = tantivy.Query, self.schema
        if f.boolean is not None:
            q = Q.term_query(s, f.field, f.boolean)
        elif f.values:
            q = Q.term_set_query(s, f.field, list(f.values))
        else:
            q = Q.range_query(s, f.field, tantivy.FieldType.Integer, f.lo, f.hi)
        if f.negate:
            return (tantivy.Occur.MustNot, q)
        return (tantivy.Occur.Must, Q.const_score_query(q, 0.0))

    def build_query(self, plan: Plan) -> tantivy.Query:
        Q = tantivy.Query
        filters = [*self._rights(plan.caller), *(self._filter(f) for f in plan.filters)]
        if plan.key_bound is not None and plan.sort_key is not None:
            lo, hi = (None, plan.key_bound) if plan.descending else (plan.key_bound, None)
            rng = Q.range_query(self.schema, plan.sort_key, tantivy.FieldType.Integer, lo, hi)
            filters.append((tantivy.Occur.Must, Q.const_score_query(rng, 0.0)))
        if isinstance(plan.node, Or):
            # (A or B) and F as (A and F) or (B and F): tantivy's union walks every posting of
            # its branches whatever follows, while each branch's intersection skips to the
            # filtered documents. Same matches, same scores (filters score 0); measured at
            # 1M documents: 73 -> 41 ms for the benchmark's filtered query.
            return Q.boolean_query(
                [
                    (
                        tantivy.Occur.Should,
                        Q.boolean_query([(tantivy.Occur.Must, self._text(b)), *filters]),
                    )
                    for b in plan.node.items
                ]
            )
        main = self._text(plan.node) if plan.node is not None else Q.all_query()
        return Q.boolean_query([(tantivy.Occur.Must, main), *filters])

    def _execute(self, plan: Plan) -> RawResult:
        """Top hits and the total in one pass. Tantivy cannot skip blocks here anyway: the
        rights filter makes every query an intersection, and tantivy prunes (block-max WAND)
        only pure disjunctions of terms, so counting costs next to nothing and stays exact.
        With facets, the aggregation scans every match: the total comes from it instead."""
        searcher = self._index.searcher()
        query = self.build_query(plan)
        count_here = plan.count and not plan.facets
        scored: list[tuple[float, int, Any]] = []
        total = 0
        if plan.limit > 0 or count_here:
            limit = max(plan.limit, 1)  # tantivy's top-k needs k >= 1
            if plan.sort_key is None:
                res = searcher.search(query, limit, count=count_here, offset=plan.start)
                addrs = [a for _, a in res.hits]
                orders = searcher.fast_field_values("id_hash", addrs) if addrs else []
                scored = [
                    (float(sc), int(o or 0), a) for (sc, a), o in zip(res.hits, orders, strict=True)
                ]
            else:
                order = tantivy.Order.Desc if plan.descending else tantivy.Order.Asc
                res = searcher.search(
                    query, limit, count=count_here, order_by_field=plan.sort_key, order=order
                )
                scored = [(0.0, int(k), a) for k, a in res.hits]
            if count_here:
                total = int(res.count or 0)  # type: ignore[attr-defined]  # tantivy-py stubs lack it
        hits = [RawHit(sc, o, self._load(searcher, a)) for sc, o, a in scored] if plan.limit else []
        facets: tuple[Facet, ...] = ()
        if plan.facets:
            aggs: dict[str, Any] = {
                f.field: {
                    "terms": {
                        "field": f.field,
                        "size": f.size,
                        "segment_size": max(10 * f.size, 200),
                    }
                }
                for f in plan.facets
            }
            aggs["_total"] = {"value_count": {"field": "version"}}  # every document has one
            out = searcher.aggregate(query, aggs) if searcher.num_docs else {}
            facets = tuple(
                Facet(
                    f.field,
                    tuple(
                        FacetValue(str(b["key"]), int(b["doc_count"]))
                        for b in out.get(f.field, {}).get("buckets", [])
                    ),
                )
                for f in plan.facets
            )
            if plan.count:
                total = int((out.get("_total") or {}).get("value") or 0)
        return RawResult(hits, total, facets)

    @staticmethod
    def _load(searcher: Any, addr: Any) -> dict[str, Any]:
        d = searcher.doc(addr).to_dict()
        out = {k: (v[0] if len(v) == 1 else v) for k, v in d.items()}
        for name in STORED_TEXT:
            if isinstance(value := out.get(name), bytes):
                out[name] = value.decode()
        return out

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
        searcher = self._index.searcher()
        res = searcher.search(query, limit, count=False)
        return [self._load(searcher, a) for _, a in res.hits]
