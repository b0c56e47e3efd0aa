"""The embedded engine: tantivy on local disk (the default, one machine)."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import tantivy

from .base import (
    COPY_PREFIX,
    KEYWORD_FIELDS,
    LATER_FIELDS,
    LATER_KEYWORD_FIELDS,
    READERS,
    Caller,
    EngineIndex,
    Facet,
    FacetRequest,
    FacetValue,
    IndexedDocument,
    Plan,
    RawHit,
    RawResult,
    ValidFilter,
    engine_fields,
    hiding_terms,
    id_hash,
    rights_terms,
)
from .errors import IndexLayoutError, SearchInputError
from .query import And, Node, Not, Notation, Or, Phrase, Term, adjacent_pairs
from .resident import ResidentFiles

# Every word is matched and scored in one combined field (subject, number, summary and body:
# one posting list per word, not four). Fields are weighted BM25F-style by repeating a value:
# a subject word counts three times, a number-and-notation word four, so they outrank the
# body without a second query per word on the subject and number fields (those cost a
# quarter of a filtered query's time at 1M documents).
ALL_TEXT = "all_text"
ALL_TEXT_REPEATS = (("subject", 3), ("number_notation", 4), ("summary", 1), ("body_text", 1))
# Indexed on their own for autocomplete (subject) and kept in the schema layout.
OWN_TEXT_FIELDS = ("subject", "number_notation")
NOTATION_BOOST = 10.0
# Bonuses, relative to a word's own BM25 score: two words typed together that stand together
# (an optional phrase of the two), and a word typed with diacritics found as typed.
ADJACENCY_BOOST = 2.0
EXACT_BOOST = 1.0
# Stored only (not indexed on their own: the combined field finds their words).
STORED_TEXT = ("summary", "body_text")
# The fields a hit's words are counted in, and their weights, for engines that score several
# fields (Elasticsearch: dis_max over them).
TEXT_FIELDS = (("subject", 3.0), ("number_notation", 4.0), ("summary", 1.5), ("body_text", 1.0))
TIE_BREAKER = 0.3
STORED = (
    "id", "number_notation", "subject", "summary", "body_text", "doc_type", "agency_code",
    "status", "signer_name", "issued_date", "confidentiality", "direction", "priority",
    "arrival_date",
)  # fmt: skip
INT_FIELDS = ("issued_day", "updated_ts", "version", "id_hash", "k_issued", "k_updated")
# (arrival_day, an integer field too, comes with LATER_FIELDS at the end of the schema.)
BATCH = 1000
ANALYZER = "vi_fold"
EXACT_ANALYZER = "vi_lower"
ALL_EXACT = "all_exact"
# Shards: separate tantivy indexes searched in parallel (see TantivyIndex).
DEFAULT_SHARDS = 2
MAX_SHARDS = 64
LAYOUT_FILE = "layout.json"
LAYOUT_VERSION = 1
_EPOCH = date(1970, 1, 1)  # issued_day counts days from it (base.engine_fields)
# The rights rule and the common filters as one posting list, as a compound database index
# does: for each readers term r of a document (see READERS) the terms
#   r SEP "t" SEP doc_type,  r SEP "y" SEP year,  r SEP "ty" SEP doc_type SEP year
# so "rights AND doc_type IN (…) AND issued_date in whole years" is one term set over the
# documents that pass all three, instead of three filters each walking its own (much longer)
# postings. Tantivy-only, internal: the query a caller sees is unchanged, and an index built
# before this field is searched with the plain filters (see TantivyIndex._access).
READER_KEYS = "reader_keys"
SEP = "\x1f"  # never in a key's parts: a part holding it gets no key (and no compound query)
MAX_COMPOUND_TERMS = 1024  # more terms than this: the plain filters
RESCORE_WINDOW = 100  # the best first-pass hits of all shards the adjacency bonus is scored on
VOCABULARY_LIMIT = 5000  # did you mean: the most frequent words of a prefix looked at

log = logging.getLogger(__name__)
T = TypeVar("T")


def build_schema(reader_keys: bool = True, later: bool = True) -> tantivy.Schema:
    """The schema; `later=False` is the schema of an index built before LATER_FIELDS and
    ALL_EXACT, `reader_keys=False` (implies `later=False`) of one built before READER_KEYS:
    each time the same fields in the same order, without the last ones."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", fast=True)
    for name in OWN_TEXT_FIELDS:
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
    if reader_keys:
        sb.add_text_field(READER_KEYS, stored=False, tokenizer_name="raw", index_option="basic")
    if reader_keys and later:
        for name in LATER_KEYWORD_FIELDS:
            sb.add_text_field(name, stored=True, tokenizer_name="raw", fast=True)
        sb.add_text_field("arrival_date", stored=True, tokenizer_name="raw")
        sb.add_integer_field("arrival_day", stored=False, indexed=True, fast=True)
        # The words as typed, diacritics kept (lowercased only): a query typed with
        # diacritics ranks the exact word above its folded look-alikes (số above sở, sơ).
        # Frequencies, no positions: a term boost needs no phrase.
        sb.add_text_field(
            ALL_EXACT, stored=False, tokenizer_name=EXACT_ANALYZER, index_option="freq"
        )
    return sb.build()


def reader_keys(readers: Iterable[str], doc_type: str, year: str) -> list[str]:
    """The READER_KEYS terms of a document with these readers terms, type and year."""
    out: list[str] = []
    for r in readers:
        if SEP in r:
            continue
        if doc_type and SEP not in doc_type:
            out.append(f"{r}{SEP}t{SEP}{doc_type}")
            if year:
                out.append(f"{r}{SEP}ty{SEP}{doc_type}{SEP}{year}")
        if year:
            out.append(f"{r}{SEP}y{SEP}{year}")
    return out


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


def exact_analyzer() -> tantivy.TextAnalyzer:
    """simple tokenizer + lowercase, no folding: "Số" is indexed as "số" (NFC, as stored)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .build()
    )


def _chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


class _Shard:
    """One tantivy index of a sharded `TantivyIndex`: its writer (opened lazily) and the
    versions written to it since its last commit. Only the owning index's write lock (held
    around every write) serializes access; different shards are written in parallel."""

    def __init__(self, index: tantivy.Index, schema: tantivy.Schema) -> None:
        self.index = index
        self.schema = schema
        self.writer: Any = None
        self.pending: dict[str, int | None] = {}  # id -> version since commit (None: deleted)

    def open_writer(self, heap: int, threads: int) -> Any:
        if self.writer is None:
            self.writer = self.index.writer(heap_size=heap, num_threads=threads)
        return self.writer

    def versions(self, ids: list[str]) -> dict[str, int]:
        """Version of each id as written: pending changes first, then the committed index."""
        out: dict[str, int | None] = {}
        lookup = []
        for i in ids:
            if i in self.pending:
                out[i] = self.pending[i]
            else:
                lookup.append(i)
        if lookup:
            searcher = self.index.searcher()
            if searcher.num_docs:
                q = tantivy.Query.term_set_query(self.schema, "id", lookup)
                res = searcher.search(q, len(lookup), count=False, order_by_field="id")
                addrs = [a for _, a in res.hits]
                versions = searcher.fast_field_values("version", addrs)
                out.update({doc_id: v for (doc_id, _), v in zip(res.hits, versions, strict=True)})
        return {k: v for k, v in out.items() if v is not None}

    def write(self, docs: list[IndexedDocument], build: Any, heap: int, threads: int) -> int:
        """Add or replace `docs` (all routed here, in order); an older version is skipped."""
        if not docs:
            return 0
        writer = self.open_writer(heap, threads)
        known = self.versions([d.id for d in docs])
        written = 0
        for d in docs:
            current = known.get(d.id)
            if current is not None and d.version < current:
                continue  # an older event arrived late
            if current is not None:
                writer.delete_documents_by_term("id", d.id)
            writer.add_document(build(d))
            known[d.id] = self.pending[d.id] = d.version
            written += 1
        return written

    def delete(self, ids: list[str], heap: int, threads: int) -> None:
        writer = self.open_writer(heap, threads)
        for doc_id in ids:
            writer.delete_documents_by_term("id", doc_id)
            self.pending[doc_id] = None

    def commit(self, close: bool = False) -> None:
        """Commits if anything was written since the last commit (a shard a batch did not
        touch is left alone: no fsync for nothing); `close` also waits for merges."""
        if self.writer is not None and (self.pending or close):
            self.writer.commit()
            if close:
                self.writer.wait_merging_threads()
                self.writer = None
        self.pending.clear()
        self.index.reload()


class TantivyIndex(EngineIndex):
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
        self.exact_words = True  # False: all_exact left empty, no typed-diacritics bonus
        self._dir = Path(directory) if directory is not None else None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            indexes = self._open_shards(shards)
            cursor_key = cursor_key or self._stored_key()
        else:
            indexes = [tantivy.Index(self.schema) for _ in range(shards)]
            cursor_key = cursor_key or secrets.token_bytes(32)
        super().__init__(cursor_key)
        for ix in indexes:
            ix.register_tokenizer(ANALYZER, analyzer())
            ix.register_tokenizer(EXACT_ANALYZER, exact_analyzer())
            ix.reload()
        self._shards = [_Shard(ix, self.schema) for ix in indexes]
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
                [self._shard_dir(i) for i in range(len(self._shards))], memory_lock
            )
            self.resident.start()

    @property
    def shards(self) -> int:
        return len(self._shards)

    def _open_shards(self, wanted: int) -> list[tantivy.Index]:
        """The shards in the directory, created (`wanted` of them) if the directory is new.
        An index written by the single-index engine (tantivy files in the directory itself)
        is refused: its documents are not where the routing looks for them."""
        assert self._dir is not None
        path = self._dir / LAYOUT_FILE
        if path.exists():
            count = self._read_layout(path)
            if count != wanted:
                log.info(
                    "the search index in %s has %d shards (%d asked: the count is fixed when an"
                    " index is created; `lgsp search reindex` builds one with the new count)",
                    self._dir, count, wanted,
                )  # fmt: skip
            missing = [i for i in range(count) if not (self._shard_dir(i) / "meta.json").exists()]
            if missing:
                raise IndexLayoutError(
                    f"the search index in {self._dir} lacks shard(s) {missing} of {count}; its"
                    " documents are incomplete: move it away and rebuild it (`lgsp search"
                    " reindex`)"
                )
            return [self._open_shard(i) for i in range(count)]
        if (self._dir / "meta.json").exists():
            raise IndexLayoutError(
                f"the search index in {self._dir} was written by the single-index engine"
                " (before shards); this version reads sharded indexes only. Rebuild it:"
                " `lgsp search reindex` builds a new generation and switches to it (or move"
                " the directory away and re-index the documents)"
            )
        # New: the shards first, then the layout that names them (atomically), so a crash in
        # between leaves a directory that is simply new again.
        indexes = [self._open_shard(i) for i in range(wanted)]
        layout = {
            "engine": "tantivy",
            "layout": LAYOUT_VERSION,
            "shards": wanted,
            "routing": "id_hash(id) % shards",
        }
        tmp = self._dir / f".{LAYOUT_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(layout) + "\n")
        os.replace(tmp, path)
        return indexes

    def _read_layout(self, path: Path) -> int:
        try:
            layout = json.loads(path.read_text())
            ok = layout.get("engine") == "tantivy" and layout.get("layout") == LAYOUT_VERSION
            count = int(layout["shards"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise IndexLayoutError(
                f"{path} is not a search index layout ({e}); move the directory away and"
                " rebuild the index (`lgsp search reindex`)"
            ) from e
        if not ok or not 1 <= count <= MAX_SHARDS:
            raise IndexLayoutError(
                f"the search index in {self._dir} has a layout this version cannot read"
                f" ({layout!r}); move it away and rebuild it (`lgsp search reindex`)"
            )
        return count

    def _shard_dir(self, i: int) -> Path:
        assert self._dir is not None
        return self._dir / f"shard-{i}"

    def _open_shard(self, i: int) -> tantivy.Index:
        path = self._shard_dir(i)
        path.mkdir(exist_ok=True)
        try:
            return tantivy.Index(self.schema, path=str(path), reuse=True)
        except ValueError as e:
            if "schema does not match" not in str(e):
                raise
            if i == 0 and self.later:  # shard 0 decides; the others must agree
                for keys, what in ((True, "direction, priority, arrival date and exact-word"),
                                   (False, f"{READER_KEYS} (and later)")):  # fmt: skip
                    legacy = build_schema(reader_keys=keys, later=False)
                    try:
                        index = tantivy.Index(legacy, path=str(path), reuse=True)
                    except ValueError as e2:
                        if "schema does not match" not in str(e2):
                            raise
                        continue
                    log.warning(
                        "the search index in %s was built before the %s fields: it is searched"
                        " without them; `lgsp search reindex` rebuilds it with them",
                        self._dir, what,
                    )  # fmt: skip
                    self.schema, self.reader_keys, self.later = legacy, keys, False
                    return index
            raise IndexLayoutError(
                f"the search index in {self._dir} was built by another version of the"
                " schema; move it away and rebuild it (`lgsp search reindex`, or re-index the"
                " documents)"
            ) from e

    def _stored_key(self) -> bytes:
        assert self._dir is not None
        path = self._dir / "cursor.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return path.read_bytes()

    def shard_of(self, doc_id: str) -> int:
        return id_hash(doc_id) % len(self._shards)

    def _map(self, fn: Callable[[int, _Shard], T]) -> list[T]:
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
            for batch in _chunks(docs, BATCH):
                parts: list[list[IndexedDocument]] = [[] for _ in self._shards]
                for d in batch:
                    parts[self.shard_of(d.id)].append(d)
                written += sum(self._map(partial(_write, parts, self._document, heap, threads)))
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
            fields[ALL_EXACT] = fields[ALL_TEXT]
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

    # --- queries ---

    def _phrase(self, words: tuple[str, ...], sc: Scale = None) -> tantivy.Query:
        """The words in this order, anywhere in the text (tantivy intersects the words'
        postings, rarest first, and reads positions only where all of them occur)."""
        q = tantivy.Query.phrase_query(self.schema, ALL_TEXT, list(words))
        return _scaled(q, sc, ALL_TEXT, words)

    def _text(self, node: Node, sc: Scale = None) -> tantivy.Query:
        Q, s, Occur = tantivy.Query, self.schema, tantivy.Occur
        if isinstance(node, Term):
            word = _scaled(Q.term_query(s, ALL_TEXT, node.token), sc, ALL_TEXT, (node.token,))
            if not (node.exact and self.later and self.exact_words):
                return word
            exact = _scaled(Q.term_query(s, ALL_EXACT, node.exact), sc, ALL_EXACT, (node.exact,))
            return Q.boolean_query(
                [(Occur.Must, word), (Occur.Should, Q.boost_query(exact, EXACT_BOOST))]
            )
        if isinstance(node, Phrase):
            return self._phrase(node.tokens, sc)
        if isinstance(node, Notation):
            key = _scaled(Q.term_query(s, "number_key", node.key), sc, "number_key", (node.key,))
            exact = Q.boost_query(key, NOTATION_BOOST)
            cited = (
                self._text(Phrase(node.tokens), sc)
                if len(node.tokens) > 1
                else self._text(Term(node.tokens[0]), sc)
            )
            return Q.boolean_query([(Occur.Should, exact), (Occur.Should, cited)])
        if isinstance(node, And):
            return self._all_of(node.items, adjacent_pairs(node.items), sc)
        if isinstance(node, Or):
            return Q.boolean_query([(Occur.Should, self._text(i, sc)) for i in node.items])
        assert isinstance(node, Not)
        return Q.boolean_query(
            [(Occur.Must, Q.all_query()), (Occur.MustNot, self._text(node.item, sc))]
        )

    def _all_of(
        self, items: tuple[Node, ...], pairs: list[tuple[str, str]], sc: Scale = None
    ) -> tantivy.Query:
        """Every item, and a bonus for each pair of words typed together that stands together
        in the text (an optional phrase of two: scores, never filters)."""
        Q, Occur = tantivy.Query, tantivy.Occur
        clauses = [
            (Occur.MustNot, self._text(i.item, sc)) if isinstance(i, Not)
            else (Occur.Must, self._text(i, sc))
            for i in items
        ]  # fmt: skip
        if all(o == Occur.MustNot for o, _ in clauses):
            clauses.append((Occur.Must, Q.all_query()))
        clauses += [
            (Occur.Should, Q.boost_query(self._phrase(p, sc), ADJACENCY_BOOST))
            for p in (pairs if self.adjacency and (sc is None or sc.pairs) else ())
        ]
        return Q.boolean_query(clauses)

    def _rights(self, caller: Caller) -> list[tuple[Any, tantivy.Query]]:
        """One term set on the readers field: (the caller's agency or public) at the
        confidentiality levels the caller may read."""
        Q = tantivy.Query
        terms = Q.term_set_query(self.schema, READERS, rights_terms(caller))
        return [(tantivy.Occur.Must, Q.const_score_query(terms, 0.0)), self._copies(caller)]

    def _copies(self, caller: Caller) -> tuple[Any, tantivy.Query]:
        """Leaves out the copies the caller finds as another copy (base.COPY_PREFIX)."""
        hidden = tantivy.Query.term_set_query(self.schema, READERS, hiding_terms(caller))
        return (tantivy.Occur.MustNot, hidden)

    def _access(
        self, caller: Caller, filters: tuple[ValidFilter, ...], compound: bool = True
    ) -> list[tuple[Any, tantivy.Query]]:
        """The rights rule and the filters as clauses to intersect with the query.

        With READER_KEYS (and `compound`), the rights, the first doc_type filter and the
        first bounded issued_date range become one term set of compound keys: the caller's
        readers terms × the types × the years the range touches — one short posting list of
        the documents passing all three. The range is kept as well unless it covers whole
        years (the years are then exact). Negated filters and the others stay as they are.
        Same matches as the plain clauses (they score 0 either way)."""
        Q, Must = tantivy.Query, tantivy.Occur.Must
        rights = rights_terms(caller)

        def plain() -> list[tuple[Any, tantivy.Query]]:
            return [*self._rights(caller), *(self._filter(f) for f in filters)]

        if not (compound and self.reader_keys):
            return plain()
        types = next((f for f in filters if f.field == "doc_type" and not f.negate), None)
        days = next(
            (f for f in filters if f.field == "issued_day" and not f.negate
             and f.lo is not None and f.hi is not None),
            None,
        )  # fmt: skip
        span = (days.lo or 0, days.hi or 0) if days is not None else None
        years = _years(*span) if span is not None else None
        if types is None and years is None:
            return plain()
        values = types.values if types is not None else ()
        if any(SEP in v for v in (*rights, *values)):
            return plain()
        if len(rights) * max(len(values), 1) * len(years or [""]) > MAX_COMPOUND_TERMS:
            return plain()
        if types is not None and years is not None:
            keys = [f"{r}{SEP}ty{SEP}{t}{SEP}{y}" for r in rights for t in values for y in years]
        elif types is not None:
            keys = [f"{r}{SEP}t{SEP}{t}" for r in rights for t in values]
        else:
            keys = [f"{r}{SEP}y{SEP}{y}" for r in rights for y in years or ()]
        exact_years = span is not None and years is not None and _whole_years(*span)
        rest = [f for f in filters if f is not types and not (f is days and exact_years)]
        keyed = Q.const_score_query(Q.term_set_query(self.schema, READER_KEYS, keys), 0.0)
        return [(Must, keyed), self._copies(caller), *(self._filter(f) for f in rest)]

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

    def build_query(self, plan: Plan, plain: bool = False, sc: Scale = None) -> tantivy.Query:
        """`plan` as one tantivy query. `plain=True`: the plan before the compound keys and
        the hoisted exclusions (same matches, scores and order; the tests compare them)."""
        Q = tantivy.Query
        if not self.later:
            asked = [f.field for f in plan.filters] + [f.field for f in plan.facets]
            if late := next((f for f in asked if f in LATER_FIELDS), None):
                raise SearchInputError(
                    "filters" if late not in (f.field for f in plan.facets) else "facets",
                    f"{late}: this index was built before the field; an operator must rebuild"
                    " it (lgsp search reindex)",
                )
        filters = self._access(plan.caller, plan.filters, compound=not plain)
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
                [(tantivy.Occur.Should, self._and(b, filters, plain, sc)) for b in plan.node.items]
            )
        return self._and(plan.node, filters, plain, sc)

    def _and(
        self,
        node: Node | None,
        filters: list[tuple[Any, tantivy.Query]],
        plain: bool,
        sc: Scale = None,
    ) -> tantivy.Query:
        """`node` AND the filters. The words' own exclusions (`a b -"c d"`) are moved out
        beside the filters, so that they are tested only on documents that pass the filters
        too, not on every document holding the positive words (an excluded phrase reads
        positions at each: 12 -> 9 ms for `chuyen doi so -"du lich"` at 1M). The positive
        words stay one nested intersection, so every score is summed in the same order as
        before, to the bit."""
        Q, Must, MustNot = tantivy.Query, tantivy.Occur.Must, tantivy.Occur.MustNot
        if node is None:
            return Q.boolean_query([(Must, Q.all_query()), *filters])
        if not plain and isinstance(node, And):
            positive = tuple(i for i in node.items if not isinstance(i, Not))
            excluded = [i.item for i in node.items if isinstance(i, Not)]
            if positive and excluded:
                # The pairs as typed: `a -b c` has none, though a and c are now neighbours.
                words = self._all_of(positive, adjacent_pairs(node.items), sc)
                return Q.boolean_query(
                    [
                        (Must, words),
                        *((MustNot, self._text(e, sc)) for e in excluded),
                        *filters,
                    ]
                )
        return Q.boolean_query([(Must, self._text(node, sc)), *filters])

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
        pairs = all_pairs(plan.node) if self.adjacency and plan.sort_key is None else []
        rescore = bool(pairs) and plan.limit > 0
        scorings = [Scoring(None, pairs=not rescore)] * len(searchers)
        if self.global_idf and plan.sort_key is None and plan.node and len(searchers) > 1:
            # Scores as one index would give them: each shard's query scales every word by
            # its global IDF over the shard's own (see _GlobalIdf).
            idf = _GlobalIdf(searchers)
            scorings = [
                Scoring(partial(idf.factor, i), pairs=not rescore) for i in range(len(searchers))
            ]
        queries = [self.build_query(plan, self.plain_plan, sc) for sc in scorings]
        count_here = plan.count and not plan.facets
        want_hits = plan.limit > 0 or count_here
        k = max(plan.start + plan.limit, 1)  # tantivy's top-k needs k >= 1
        first_k = max(k, RESCORE_WINDOW) if rescore else k
        order = tantivy.Order.Desc if plan.descending else tantivy.Order.Asc
        aggs = _facet_aggs(plan.facets) if plan.facets else None

        def run(i: int, shard: _Shard) -> tuple[Any, list[Any], int, dict[str, Any]]:
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
                if rescore and hits:  # (first-pass score, bonus, address)
                    hits = self._rescore(searcher, hits, pairs, scorings[i])
                if count_here:
                    total = int(res.count or 0)  # type: ignore[attr-defined]  # stubs lack it
            out: dict[str, Any] = {}
            if aggs is not None and searcher.num_docs:
                out = searcher.aggregate(query, aggs)
            return searcher, hits, total, out

        per_shard = self._map(run)
        searchers = [p[0] for p in per_shard]
        if rescore:
            rows = _with_bonus([p[1] for p in per_shard])
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
            facets = tuple(_merge_buckets(f, outs) for f in plan.facets)
            if plan.count:
                total = sum(int((o.get("_total") or {}).get("value") or 0) for o in outs)
        return RawResult(hits, total, facets)

    def _rescore(
        self, searcher: Any, hits: list[Any], pairs: list[tuple[str, str]], sc: Scoring
    ) -> list[Any]:
        """The adjacency bonus of a shard's top hits, (first-pass score, bonus, address) each:
        a rescoring window, as Elasticsearch's `rescore`. An optional two-word phrase reads
        positions at every document it is tested on, which over every match tripled the
        filtered query's time; here it is tested on the window only (_with_bonus merges).
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
        clauses = [
            (
                Occur.Should,
                Q.boolean_query(
                    [
                        (Occur.Must, only),
                        (Occur.Must, Q.boost_query(self._phrase(p, sc), ADJACENCY_BOOST)),
                    ]
                ),
            )
            for p in pairs
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
        return _merge_counts(
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

        def run(i: int, shard: _Shard) -> tuple[Any, list[Any]]:
            searcher = shard.index.searcher()
            return searcher, searcher.search(query, limit, count=False).hits

        per_shard = self._map(run)
        rows = sorted(
            ((sc, i, rank, a) for i, (_, hits) in enumerate(per_shard)
             for rank, (sc, a) in enumerate(hits)),
            key=lambda r: (-r[0], r[1], r[2]),
        )[:limit]  # fmt: skip
        return [self._load(per_shard[i][0], a) for _, i, _, a in rows]


@dataclass(frozen=True, slots=True)
class Scoring:
    """How one shard's query scores: `factor(field, terms)` scales a word or phrase query
    (global IDF, see _GlobalIdf); `pairs=False` leaves the adjacency clauses out (they are
    scored afterwards on the top hits only, see TantivyIndex._rescore)."""

    factor: Callable[[str, Sequence[str]], float] | None = None
    pairs: bool = True


Scale = Scoring | None


def _scaled(q: tantivy.Query, sc: Scale, field: str, terms: Sequence[str]) -> tantivy.Query:
    """`q` (a term or phrase query on `field`) boosted by `sc`'s factor for its terms."""
    if sc is None or sc.factor is None:
        return q
    factor = sc.factor(field, terms)
    return q if factor == 1.0 else tantivy.Query.boost_query(q, factor)


def all_pairs(node: Node | None) -> list[tuple[str, str]]:
    """Every adjacent pair (query.adjacent_pairs) of the ANDs a hit may match (not under NOT)."""
    out: dict[tuple[str, str], None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, And):
            out.update(dict.fromkeys(adjacent_pairs(n.items)))
        if isinstance(n, And | Or):
            for item in n.items:
                walk(item)

    if node is not None:
        walk(node)
    return list(out)


def _bm25_idf(docs: int, df: int) -> float:
    """tantivy's BM25 IDF (tantivy::query::bm25::idf)."""
    return math.log(1.0 + max(docs - df + 0.5, 0.0) / (df + 0.5))


class _GlobalIdf:
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


def _with_bonus(shards: list[list[tuple[float, float, Any]]]) -> list[tuple[float, int, int, Any]]:
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


def _merge_counts(lists: Iterable[list[tuple[str, int]]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for pairs in lists:
        for term, n in pairs:
            counts[term] = counts.get(term, 0) + int(n)
    return list(counts.items())


def _years(lo: int, hi: int) -> list[str] | None:
    """The years (as the `year` field writes them) that the issued_day range [lo, hi] touches;
    None if the range is empty, outside the calendar or too long to list."""
    try:
        a, b = _EPOCH + timedelta(days=lo), _EPOCH + timedelta(days=hi)
    except OverflowError:
        return None
    if a > b or b.year - a.year >= MAX_COMPOUND_TERMS:
        return None
    return [str(y) for y in range(a.year, b.year + 1)]


def _whole_years(lo: int, hi: int) -> bool:
    """Whether [lo, hi] (issued_day, within the calendar) runs from a 1 January to a 31
    December: then the years alone are the range."""
    a, b = _EPOCH + timedelta(days=lo), _EPOCH + timedelta(days=hi)
    return (a.month, a.day, b.month, b.day) == (1, 1, 12, 31)


def _write(
    parts: list[list[IndexedDocument]], build: Any, heap: int, threads: int, i: int, shard: _Shard
) -> int:
    return shard.write(parts[i], build, heap, threads)


def _facet_aggs(facets: tuple[FacetRequest, ...]) -> dict[str, Any]:
    """Each shard counts `shard_size` buckets per field (10× the size asked, at least 200;
    also per segment): the merged counts are exact unless a field has more distinct values
    than that among one shard's matches, as with one index and its segments."""
    aggs: dict[str, Any] = {}
    for f in facets:
        shard_size = max(10 * f.size, 200)
        aggs[f.field] = {
            "terms": {"field": f.field, "size": shard_size, "segment_size": shard_size}
        }
    aggs["_total"] = {"value_count": {"field": "version"}}  # every document has one
    return aggs


def _merge_buckets(f: FacetRequest, outs: list[dict[str, Any]]) -> Facet:
    """One field's buckets from every shard: counts summed per value, most first (ties by
    value), cut to the size asked."""
    counts: dict[str, int] = {}
    for out in outs:
        for b in out.get(f.field, {}).get("buckets", []):
            key = str(b["key"])
            counts[key] = counts.get(key, 0) + int(b["doc_count"])
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: f.size]
    return Facet(f.field, tuple(FacetValue(v, n) for v, n in ranked))
