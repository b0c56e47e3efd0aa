"""Where a sharded tantivy index lives: its layout file, cursor key and shard directories."""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

import tantivy

from .errors import IndexLayoutError
from .tantivy_schema import READER_KEYS, build_schema

DEFAULT_SHARDS = 2
MAX_SHARDS = 64
LAYOUT_FILE = "layout.json"
LAYOUT_VERSION = 1

log = logging.getLogger(__name__)


class ShardDirectory:
    """The directory of a sharded index, and the schema its shards were built with:

    <directory>/layout.json   engine, layout version, shard count, routing
    <directory>/cursor.key    page-cursor key (one per index, unless one is passed in)
    <directory>/shard-<i>/    one tantivy index per shard
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self.schema = build_schema()
        # False for an index built before READER_KEYS: searched with the plain filters.
        self.reader_keys = True
        # False for an index built before LATER_FIELDS and ALL_EXACT.
        self.later = True

    def open_shards(self, wanted: int) -> list[tantivy.Index]:
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
            missing = [i for i in range(count) if not (self.shard_dir(i) / "meta.json").exists()]
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

    def shard_dir(self, i: int) -> Path:
        assert self._dir is not None
        return self._dir / f"shard-{i}"

    def _open_shard(self, i: int) -> tantivy.Index:
        path = self.shard_dir(i)
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

    def stored_key(self) -> bytes:
        assert self._dir is not None
        path = self._dir / "cursor.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return path.read_bytes()
