"""A doorbell between the processes sharing an embedded bus: publishers ring, consumers wake.

Without it an idle consumer re-reads the SQLite file every few milliseconds to notice records
written by another process: about 2% of a core per consumer, a quarter of a core for an idle
platform. Here a publisher touches `<bus file>-bell` after each committed batch, and each
process watches the bus's directory with Linux inotify (through libc, no extra package); the
kernel wakes the event loop only when the bell rings. Idle, a consumer then wakes only for its
group heartbeat.

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

    def __init__(self, fd: int, name: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._name = name
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
        mask = _IN_ATTRIB | _IN_MODIFY | _IN_CLOSE_WRITE | _IN_CREATE | _IN_MOVED_TO
        directory = os.fsencode(bell.parent.resolve())
        if libc.inotify_add_watch(fd, directory, mask) < 0:
            os.close(fd)
            return None
        loop = asyncio.get_running_loop()
        watcher = cls(fd, os.fsencode(bell.name), loop)
        loop.add_reader(fd, watcher._read)
        return watcher

    def _read(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        rang = False
        pos = 0
        while pos + _EVENT.size <= len(data):
            _wd, _mask, _cookie, length = _EVENT.unpack_from(data, pos)
            name = data[pos + _EVENT.size : pos + _EVENT.size + length].rstrip(b"\0")
            pos += _EVENT.size + length
            rang = rang or name == self._name
        if rang:
            for callback in list(self.callbacks):
                callback()

    def close(self) -> None:
        if self._fd < 0:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = -1
