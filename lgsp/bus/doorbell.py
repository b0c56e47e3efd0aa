"""A doorbell between the processes sharing an embedded bus: publishers ring, consumers wake.

Without it an idle consumer re-reads the SQLite file every few milliseconds to notice records
written by another process: about 2% of a core per consumer, a quarter of a core for an idle
platform. Here a publisher touches `<bus file>-bell` after each committed batch, and each
process watches that file with Linux inotify (through libc, no extra package); the kernel wakes
the event loop only when the bell rings. Idle, a consumer then wakes only for its group
heartbeat. The file is watched, not its folder: every write to any database of the data
directory (each group heartbeat, every service's commits) would otherwise wake every process.

Where inotify is missing (not Linux, or the limit of watches is reached) `Watcher.start`
returns None and consumers fall back to polling the file (EmbeddedBus.poll_backoff_max_ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_CREATE = 0x100
_IN_MOVED_TO = 0x080
_IN_DELETE_SELF = 0x400
_IN_MOVE_SELF = 0x800
_IN_IGNORED = 0x8000  # the watch is gone (its file was deleted or replaced)
_GONE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_MASK = _IN_ATTRIB | _IN_MODIFY | _IN_CLOSE_WRITE | _IN_DELETE_SELF | _IN_MOVE_SELF
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name


def bell_path(bus_file: str) -> Path:
    return Path(f"{bus_file}-bell")


def ring(bell: Path) -> None:
    """Tell every watching process that records were appended (touch the bell file)."""
    try:
        os.utime(bell)
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            bell.touch()
    except OSError as exc:  # a read-only file: consumers still poll at heartbeats
        log.debug("cannot ring %s: %s", bell, exc)


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.inotify_init1  # noqa: B018 - raises AttributeError without inotify
    except (OSError, AttributeError):
        return None
    return libc


class Watcher:
    """Calls `on_ring` in the event loop each time the bell file is touched."""

    def __init__(self, fd: int, bell: Path, libc: ctypes.CDLL, loop: asyncio.AbstractEventLoop):
        self._fd = fd
        self._bell = bell
        self._libc = libc
        self._loop = loop
        self.callbacks: set[Callable[[], None]] = set()

    @classmethod
    def start(cls, bell: Path) -> Watcher | None:
        libc = _libc()
        if libc is None:
            return None
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        watcher = cls(fd, bell, libc, asyncio.get_running_loop())
        if not watcher._watch():
            os.close(fd)
            return None
        watcher._loop.add_reader(fd, watcher._read)
        return watcher

    def _watch(self) -> bool:
        """Watch the bell file, made first if missing (a publisher may not have rung yet)."""
        with contextlib.suppress(OSError):  # read-only: not a ring for the others
            os.close(os.open(self._bell, os.O_RDONLY | os.O_CREAT, 0o644))
        return self._libc.inotify_add_watch(self._fd, os.fsencode(self._bell), _MASK) >= 0

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        gone = False
        pos = 0
        while pos + _EVENT.size <= len(data):
            _wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
            pos += _EVENT.size + length
            gone = gone or bool(mask & _GONE)
        if gone and not self._watch():  # the bell was deleted or replaced: watch the new one
            log.debug("cannot watch %s again; consumers poll", self._bell)
            self.close()
        for callback in list(self.callbacks):  # a ring, or a new bell: look once either way
            callback()

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def close(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
