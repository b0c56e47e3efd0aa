"""Per-member rate and concurrency limits: a token bucket per member (and per right that sets
its own rate) and a count of calls in flight. Both answer at once, never queue: a caller past
its limit gets RESOURCE_EXHAUSTED naming the limit, with a retry hint (google.rpc.RetryInfo
and the `retry-after-ms` trailer)."""

from __future__ import annotations

import time
from collections.abc import Callable

from lgsp.grpc.errors import ResourceExhausted
from lgsp.ratelimit import TokenBucket

__all__ = ["LimitExceeded", "Limiter", "TokenBucket"]


class LimitExceeded(ResourceExhausted):
    """RESOURCE_EXHAUSTED with the delay after which a retry may succeed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class Limiter:
    """Admission per member: `admit()` raises LimitExceeded or returns a release callable."""

    def __init__(
        self,
        *,
        default_per_minute: int = 60_000,
        burst_seconds: float = 1.0,
        max_concurrent: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_per_minute = default_per_minute
        self.burst_seconds = burst_seconds
        self.max_concurrent = max_concurrent
        self._clock = clock
        self._buckets: dict[tuple[str, int], TokenBucket] = {}
        self._in_flight: dict[str, int] = {}

    def _bucket(self, key: str, per_minute: int) -> TokenBucket:
        bucket = self._buckets.get((key, per_minute))
        if bucket is None:
            rate = per_minute / 60.0
            # A burst of `burst_seconds` worth of calls, at least one.
            bucket = TokenBucket(rate, max(1.0, rate * self.burst_seconds))
            self._buckets[(key, per_minute)] = bucket
        return bucket

    def admit(
        self, member: str, per_minute: int = 0, right_id: str = "", right_per_minute: int = 0
    ) -> Callable[[], None]:
        in_flight = self._in_flight.get(member, 0)
        if in_flight >= self.max_concurrent:
            raise LimitExceeded(
                f"concurrency limit of member {member} reached: "
                f"{self.max_concurrent} calls in flight; retry when one finishes",
                0.05,
            )
        limit = per_minute or self.default_per_minute
        now = self._clock()
        wait = self._bucket(member, limit).take(now)
        if wait:
            raise LimitExceeded(
                f"rate limit of member {member} exceeded: {limit} calls per minute; "
                f"retry in {wait * 1000:.0f} ms",
                wait,
            )
        if right_per_minute:
            wait = self._bucket(f"right:{right_id}", right_per_minute).take(now)
            if wait:
                raise LimitExceeded(
                    f"rate limit of right {right_id} of member {member} exceeded: "
                    f"{right_per_minute} calls per minute; retry in {wait * 1000:.0f} ms",
                    wait,
                )
        self._in_flight[member] = in_flight + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._in_flight[member] -= 1

        return release

    def in_flight(self, member: str) -> int:
        return self._in_flight.get(member, 0)
