"""Which mailboxes changed, told in-process after each commit: IMAP sessions (IDLE, and the
updates after every command) learn of a delivery, a flag set over gRPC or another IMAP
session without polling the database.

`notify` is called from worker threads (the use cases run in asyncio.to_thread); waiters are
woken on their own event loop with call_soon_threadsafe. Process-local: with several mail
processes on one database, a session also rechecks on a timer (docs/mail.md, "IMAP").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable


class Changes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: dict[str, int] = {}
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, Callable[[], None]]]] = {}

    def generation(self, address: str) -> int:
        """A counter that moves on with every change of the mailbox at `address`."""
        with self._lock:
            return self._generation.get(address, 0)

    def notify(self, addresses: Iterable[str]) -> None:
        wake: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
        with self._lock:
            for address in set(addresses):
                self._generation[address] = self._generation.get(address, 0) + 1
                wake.extend(self._waiters.get(address, ()))
        for loop, callback in wake:
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback)

    def subscribe(self, address: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` on the running loop at each change of `address`; returns the
        unsubscribe function."""
        entry = (asyncio.get_running_loop(), callback)
        with self._lock:
            self._waiters.setdefault(address, set()).add(entry)

        def unsubscribe() -> None:
            with self._lock:
                waiters = self._waiters.get(address)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._waiters[address]

        return unsubscribe
