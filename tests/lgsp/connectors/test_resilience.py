"""The breaker, cache and backoff on their own, with a fake clock."""

from __future__ import annotations

import random

from lgsp.connectors.resilience import CircuitBreaker, RetryPolicy, TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_failures_in_window_then_probes() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, window_s=10, open_s=5, clock=clock)
    b.record_failure()
    clock.now = 11  # the first failure left the window
    b.record_failure()
    b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now = 16.1
    assert b.allow()  # the one probe
    assert not b.allow()  # no second probe while it runs
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now = 22
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()


def test_cancelled_probe_lets_another_probe_through() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=1, window_s=10, open_s=1, clock=clock)
    b.record_failure()
    clock.now = 2
    assert b.allow() and not b.allow()
    b.release()
    assert b.allow()


def test_ttl_cache_expires_and_is_bounded() -> None:
    clock = Clock()
    c = TTLCache(max_entries=2, clock=clock)
    c.put("a", 1, ttl=10)
    c.put("b", 2, ttl=1)
    assert c.get("a") == 1
    clock.now = 1
    assert c.get("b") is None
    c.put("c", 3, ttl=10)
    c.put("d", 4, ttl=10)
    assert len(c) == 2 and c.get("a") is None


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.1, max_delay_s=0.5)
    rng = random.Random(1)
    for retry, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # jitter spreads over the whole range
