"""Retry timing, a circuit breaker and a TTL cache: the small parts of a resilient call.

Written here rather than taken from a library: tenacity (not otherwise a dependency) knows
nothing of a per-call deadline shared by attempts, of Retry-After, or of a breaker, and the
three together are ~150 lines. pybreaker has no asyncio support.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits U(0, min(cap, base·2^(n-1)))."""

    max_attempts: int = 4
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0

    def delay(self, retry: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)))


class CircuitBreaker:
    """closed → open after `failure_threshold` failures within `window_s`; after `open_s`
    one probe call is let through (half-open): success closes, failure opens again."""

    def __init__(
        self,
        failure_threshold: int = 5,
        window_s: float = 30.0,
        open_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.open_s = open_s
        self.clock = clock
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._probing or self.clock() >= self._opened_at + self.open_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """May a call go out now? In half-open, only the one probe may."""
        if self._opened_at is None:
            return True
        if self._probing or self.clock() < self._opened_at + self.open_s:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        if self._opened_at is not None:
            self._opened_at = None
            self._failures.clear()
        self._probing = False

    def record_failure(self) -> None:
        now = self.clock()
        if self._opened_at is not None:  # the probe failed
            self._opened_at = now
            self._probing = False
            return
        self._failures.append(now)
        while self._failures and self._failures[0] < now - self.window_s:
            self._failures.popleft()
        if len(self._failures) >= self.failure_threshold:
            self._opened_at = now

    def release(self) -> None:
        """A probe ended with no verdict (cancelled): let another one try."""
        self._probing = False


class TTLCache:
    """A bounded mapping whose entries expire `ttl` seconds after they were put."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self.clock() >= expires:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any, ttl: float) -> None:
        self._data[key] = (self.clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
