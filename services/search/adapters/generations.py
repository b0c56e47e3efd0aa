"""Index generations on disk: the serving one is named by a pointer file, switched atomically.

    <root>/CURRENT              the serving generation's name (replaced with os.replace)
    <root>/cursor.key           page-cursor key shared by all generations (cursors survive a switch)
    <root>/reindex.lock         held by `lgsp search reindex` while it builds
    <root>/<gen>/index/         tantivy: layout.json and shard-<i>/ (search.shards, fixed when
                                the generation is built); Elasticsearch: "lgsp-documents-<gen>"
    <root>/<gen>/state.db       the indexer's state for that generation

`<root>` is `search.index_dir`, default `<data_dir>/search-index`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from lgsp.config import Settings
from services.search.adapters.state import StateStore
from services.search.index import SearchIndex, open_index

POINTER = "CURRENT"
# The generations that have served, one name a line (prune keeps the last of them).
SERVED = "SERVED"


def root_of(settings: Settings) -> Path:
    return Path(settings.search.index_dir or settings.data_dir / "search-index")


class Generations:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = root_of(settings)
        self.root.mkdir(parents=True, exist_ok=True)

    def current(self) -> str | None:
        try:
            name = (self.root / POINTER).read_text().strip()
        except FileNotFoundError:
            return None
        return name or None

    def new_name(self) -> str:
        # Lower case only: the name is also an Elasticsearch index name.
        return time.strftime("g%Y%m%dt%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)

    def served(self) -> list[str]:
        """Every generation that has been the serving one, oldest first."""
        try:
            return (self.root / SERVED).read_text().split()
        except FileNotFoundError:
            return []

    def switch(self, name: str) -> None:
        """Make `name` the serving generation: one atomic rename, seen by the next reader."""
        if not self.served() or self.served()[-1] != name:
            with open(self.root / SERVED, "a") as fh:  # before the switch: prune trusts it
                fh.write(name + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        tmp = self.root / f".{POINTER}.{os.getpid()}"
        tmp.write_text(name + "\n")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)

    def ensure_current(self) -> str:
        name = self.current()
        if name is None:
            name = self.new_name()
            (self.root / name).mkdir()
            self.switch(name)
        return name

    def cursor_key(self) -> bytes:
        path = self.root / "cursor.key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        return path.read_bytes()

    def open(self, name: str, *, serving: bool = True) -> tuple[SearchIndex, StateStore]:
        """Generation `name`'s index and state; `serving=False` (a rebuild) locks nothing in
        memory: only the serving index needs to stay resident."""
        gen = self.root / name
        gen.mkdir(parents=True, exist_ok=True)
        s = self.settings.search
        index = open_index(
            s.backend,
            index_dir=gen / "index",
            url=s.url,
            username=s.username,
            password=s.password,
            index_name=f"lgsp-documents-{name}",
            cursor_key=self.cursor_key(),
            shards=s.shards,
            memory_lock=s.memory_lock if serving else "none",
        )
        return index, StateStore(gen / "state.db")

    def prune(self, keep: int = 2) -> list[str]:
        """Remove old generations, keeping the serving one and the `keep - 1` that served
        before it (the last one is kept for a manual roll-back: write its name into CURRENT).
        A generation that never served (a rebuild interrupted or failed) is removed, never
        one that served last."""
        current = self.current()
        served = [n for n in self.served() if n != current]
        kept = {current, *served[len(served) - max(0, keep - 1) :]} if keep > 1 else {current}
        removed = []
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and p.name.startswith("g") and p.name not in kept:
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
        return removed
