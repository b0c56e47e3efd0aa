"""Fault injection for the national mocks: latency, errors, time-outs, down, rate limit.

Set at start (CLI flags, NATIONAL_FAULTS / NATIONAL_<NAME>_FAULTS as JSON) and changed at
run time with POST /_faults. Faults apply to the API routes only; /_faults, /_stats and (except
when down) /healthz always answer, so a test can steer a mock and see that it is alive.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Faults:
    latency_ms: int = 0  # added before every API answer
    error_rate: float = 0.0  # share of calls answered with error_status
    error_status: int = 503
    timeout_rate: float = 0.0  # share of calls held for timeout_s, then answered 504
    timeout_s: float = 30.0  # "longer than any sane deadline"
    down: bool = False  # 503 SERVICE_DOWN on every API call (and on /healthz)
    fail_next: int = 0  # the next N API calls fail with error_status (deterministic tests)
    rate_limit: float = 0.0  # API calls per second allowed; 0 = no limit
    rate_burst: int = 10
    seed: int | None = None  # seeds the draws of error_rate / timeout_rate

    @classmethod
    def from_mapping(cls, data: Any) -> Faults:
        """Build from JSON; ValueError names an unknown key or a bad value."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r} (known: {', '.join(known)})")
            values[key] = _coerce(key, value)
        faults = cls(**values)
        for key in ("error_rate", "timeout_rate"):
            if not 0.0 <= getattr(faults, key) <= 1.0:
                raise ValueError(f"{key} must be between 0 and 1")
        if not 400 <= faults.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status (400-599)")
        if min(faults.latency_ms, faults.fail_next, faults.rate_burst) < 0:
            raise ValueError("latency_ms, fail_next and rate_burst must not be negative")
        if faults.timeout_s < 0 or faults.rate_limit < 0:
            raise ValueError("timeout_s and rate_limit must not be negative")
        return faults

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(key: str, value: Any) -> Any:
    if key == "down":
        if not isinstance(value, bool):
            raise ValueError("down must be true or false")
        return value
    if key == "seed":
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError("seed must be an integer or null")
        return value
    if key in {"latency_ms", "error_status", "fail_next", "rate_burst"}:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{key} must be an integer")
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key} must be a number")
    return float(value)


class FaultState:
    """The live faults of one mock plus the random draws and the token bucket they need."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.set(faults or Faults())

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._tokens = float(faults.rate_burst)
        self._refilled = time.monotonic()

    def take_token(self) -> float:
        """0 if the call may proceed, else seconds until a token is free (for Retry-After)."""
        rate = self.faults.rate_limit
        if rate <= 0:
            return 0.0
        now = time.monotonic()
        burst = max(1, self.faults.rate_burst)
        self._tokens = min(burst, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / rate

    def draw(self) -> str | None:
        """ "timeout", "error" or None for this call (one draw per call keeps seeds stable)."""
        f = self.faults
        if f.fail_next > 0:
            f.fail_next -= 1
            return "error"
        x = self._rng.random()
        if x < f.timeout_rate:
            return "timeout"
        if x < f.timeout_rate + f.error_rate:
            return "error"
        return None


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds; never 0 for a caller that must wait."""
    return str(max(1, math.ceil(seconds)))
