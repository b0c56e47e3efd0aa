"""Rate limits shared by the services: a token bucket (the gateway's per-member limits, the
dossiers' public lookup per client), a set of buckets keyed by caller, and a window of
failures per key (identity's sign-in throttle per address, the dossiers' wrong verifications
per receipt code).

All are process-local: behind several replicas each one limits on its own, which loosens a
limit by the replica count and never tightens it."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["FailureWindow", "KeyedBuckets", "TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float = field(default=-1.0)
    stamp: float = 0.0

    def take(self, now: float) -> float:
        """0.0 if a token was taken, else the seconds until one is available."""
        if self.tokens < 0:  # first use: full
            self.tokens, self.stamp = self.burst, now
        else:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class KeyedBuckets:
    """One token bucket per key (a client address, a peer): `per_minute` calls with a burst of
    `burst`. The least recently used keys are forgotten past `max_keys` (a forgotten key comes
    back with a full bucket, which only loosens the limit), so a spray of addresses cannot
    grow memory without bound."""

    def __init__(
        self,
        per_minute: float,
        burst: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1.0, burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if the call may go ahead, else the seconds to wait."""
        with self._lock:
            bucket = self._buckets.pop(key, None) or TokenBucket(self.rate, self.burst)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return bucket.take(self._clock())


class FailureWindow:
    """At most `limit` failures per `window` seconds for one key: past it the key is blocked
    until its oldest failure in the window ages out."""

    def __init__(self, limit: int = 20, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def retry_after(self, key: str, now: float | None = None) -> float:
        """0.0 when `key` may try, else the seconds until it may."""
        now = time.time() if now is None else now
        with self._lock:
            q = self._failures.get(key)
            if not q:
                return 0.0
            self._trim(q, now)
            if len(q) < self.limit:
                return 0.0
            return max(0.001, q[len(q) - self.limit] + self.window - now)

    def blocked(self, key: str, now: float | None = None) -> bool:
        return self.retry_after(key, now) > 0

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self._lock:
            q = self._failures.setdefault(key, deque())
            self._trim(q, now)
            q.append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of keys
                stale = now - self.window
                for k in [k for k, v in self._failures.items() if not v or v[-1] <= stale]:
                    del self._failures[k]
