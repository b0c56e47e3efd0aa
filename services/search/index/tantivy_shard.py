"""One shard of the tantivy index: its index, writer and the versions written."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import tantivy

from .base import (
    IndexedDocument,
)

BATCH = 1000


def chunks(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


class Shard:
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


def write_part(
    parts: list[list[IndexedDocument]], build: Any, heap: int, threads: int, i: int, shard: Shard
) -> int:
    return shard.write(parts[i], build, heap, threads)
