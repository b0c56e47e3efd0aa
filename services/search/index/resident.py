"""Keeping an index's hot files in memory (`search.memory_lock`), like Elasticsearch's
`bootstrap.memory_lock` with `index.store.preload`.

A query reads term dictionaries, postings, positions, norms and fast fields all over the
index; if the kernel has evicted those pages (memory pressure, or proactive reclaim, which
pages out anything not touched for a few seconds), a query waits on the disk and its latency
jumps. Measured at 1M documents on a machine with proactive reclaim: 6% of the index stayed
resident, and the filtered query's p50 swung between 21 and 30 ms from run to run; with the
postings locked it held at 21 ms.

`ResidentFiles` maps the files of each shard's committed segments and mlock()s them. A
background thread keeps that set current every `REFRESH_SECS`, and at once when `kick()`ed
after a commit: it maps new segments and releases merged-away ones (locking faults pages in
from disk, which must not happen on a search's time). mlock needs the memlock limit to allow it
(root, CAP_IPC_LOCK, or systemd's LimitMEMLOCK=infinity): past the limit, the rest is left
to the page cache, and one warning says so. Linux only; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# What each memory_lock setting keeps: everything but the document store (read for the
# page's 20 hits only), or everything.
LEVELS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "postings": frozenset({"term", "idx", "pos", "fieldnorm", "fast"}),
    "all": frozenset({"term", "idx", "pos", "fieldnorm", "fast", "store"}),
}
REFRESH_SECS = 2.0

_PROT_READ, _MAP_SHARED = 0x1, 0x01
_MAP_FAILED = ctypes.c_void_p(-1).value


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]  # fmt: skip
    for name in ("munmap", "mlock", "munlock"):
        fn = getattr(libc, name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        fn.restype = ctypes.c_int
    return libc


class ResidentFiles:
    """The hot files of the tantivy indexes in `dirs`, mapped and locked in memory."""

    def __init__(self, dirs: list[Path], level: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"memory_lock must be one of {sorted(LEVELS)}, not {level!r}")
        self._dirs = dirs
        self._kinds = LEVELS[level]
        self._libc = _libc() if self._kinds else None
        self._maps: dict[Path, tuple[int, int]] = {}  # path -> (address, length)
        self._lock = threading.Lock()
        self._warned = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self._kinds and self._libc is None:
            log.warning("search.memory_lock=%s: only supported on Linux; ignored", level)

    def start(self) -> None:
        """Lock what is there, then follow changes, in a background thread (locking reads
        the files from disk: an opening index does not wait for it)."""
        if self._libc is None or self._thread is not None:
            return
        self._wake.set()
        self._thread = threading.Thread(target=self._follow, name="search-resident", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """The index changed (a commit): refresh soon."""
        self._wake.set()

    def _follow(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(REFRESH_SECS)
            self._wake.clear()
            if not self._stop.is_set():
                try:
                    self.refresh()
                except Exception:  # never let the thread die: log and try again later
                    log.exception("search.memory_lock: refresh failed")

    @property
    def locked_bytes(self) -> int:
        return sum(n for _, n in self._maps.values())

    def refresh(self) -> None:
        """Lock the files of newly committed segments, release those gone."""
        if self._libc is None:
            return
        with self._lock:
            wanted = {p for d in self._dirs for p in self._segment_files(d)}
            for path in [p for p in self._maps if p not in wanted]:
                self._release(path)
            for path in sorted(wanted - self._maps.keys()):
                if not self._map(path):
                    break  # over the memlock limit: the rest stays in the page cache

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            for path in list(self._maps):
                self._release(path)

    def _segment_files(self, shard_dir: Path) -> list[Path]:
        """The wanted files of the segments meta.json lists (a segment still being written
        or already merged away is not in it)."""
        try:
            meta = json.loads((shard_dir / "meta.json").read_text())
            ids = {s["segment_id"].replace("-", "") for s in meta["segments"]}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []
        return [shard_dir / f"{i}.{kind}" for i in ids for kind in self._kinds]

    def _map(self, path: Path) -> bool:
        """Map and lock `path`; False when the memlock limit refuses it."""
        assert self._libc is not None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return True  # merged away since meta.json was read
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return True
            addr = self._libc.mmap(None, size, _PROT_READ, _MAP_SHARED, fd, 0)
        finally:
            os.close(fd)
        if addr in (None, _MAP_FAILED):
            why = os.strerror(ctypes.get_errno())
            log.warning("search.memory_lock: cannot map %s: %s", path, why)
            return True
        if self._libc.mlock(addr, size) != 0:
            err = ctypes.get_errno()
            self._libc.munmap(addr, size)
            if not self._warned:
                self._warned = True
                log.warning(
                    "search.memory_lock: mlock refused after %d MiB (%s); the rest of the index is"
                    " left to the page cache. Raise the memlock limit (ulimit -l, systemd"
                    ' LimitMEMLOCK=infinity) or set search.memory_lock = "none".',
                    self.locked_bytes >> 20,
                    os.strerror(err),
                )
            return False
        self._maps[path] = (addr, size)
        return True

    def _release(self, path: Path) -> None:
        assert self._libc is not None
        addr, size = self._maps.pop(path)
        self._libc.munlock(addr, size)
        self._libc.munmap(addr, size)
