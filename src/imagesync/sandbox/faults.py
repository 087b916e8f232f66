"""Fault injection for tests and benchmarks: latency, throttling, 5xx errors, connection resets.

Decisions come from one seeded random stream, drawn once per API call in arrival order, so a run
with the same `seed` and the same sequence of calls sees the same faults. A fault either happens
before the operation touches state (throttling, 5xx, a reset before handling) or after its write
was committed (a reset that loses the response): never in between, so no write is half-applied.

Rate limiting (`rate_limit`) is not random: a token bucket per account, region and operation, the
algorithm AWS documents for its API throttling, refilled at `rate_limit` tokens per second up to
`rate_burst` tokens (default: the rate, at least 1). It runs on a monotonic real clock, not the
sandbox's simulated clock, since it paces real clients; tests inject their own time source.
Used by `server._Handler._dispatch`.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class Fault(enum.Enum):
    NONE = "none"
    THROTTLE = "throttle"
    SERVICE_ERROR = "service-error"
    UNAVAILABLE = "unavailable"
    RESET_BEFORE = "reset-before"
    RESET_AFTER = "reset-after"


@dataclass
class FaultConfig:
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    seed: int | None = None
    rate_limit: float | None = None
    """Requests per second allowed per account, region and operation (a token bucket); None: no limit."""
    rate_burst: int | None = None
    """Token bucket size: calls accepted at once after a quiet spell; None: max(1, rate_limit)."""

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate", "reset_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1, got {rate}")
        if self.throttle_rate + self.error_rate + self.reset_rate > 1.0:
            raise ValueError("throttle-rate + error-rate + reset-rate must not exceed 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError(f"rate-limit must be positive, got {self.rate_limit}")
        if self.rate_burst is not None:
            if self.rate_limit is None:
                raise ValueError("rate-burst needs rate-limit")
            if self.rate_burst < 1:
                raise ValueError(f"rate-burst must be at least 1, got {self.rate_burst}")
        if self.latency_ms < 0:
            raise ValueError(f"latency-ms must not be negative, got {self.latency_ms}")


class RateLimiter:
    """Token buckets keyed by (account, region, operation), filled lazily from a monotonic clock.

    A bucket starts full with `burst` tokens; each accepted call takes one; it regains `rate`
    tokens a second, never above `burst`. A call that finds less than one token is refused and
    takes nothing, so a client that keeps calling while throttled does not starve itself further.
    """

    def __init__(self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1, math.floor(rate)))
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], tuple[float, float]] = {}  # key -> (tokens, as of)
        self._lock = threading.Lock()

    def acquire(self, account: str, region: str, operation: str) -> bool:
        """Take a token for this call: True if the call may proceed, False if it is throttled."""
        key = (account, region, operation)
        with self._lock:
            now = self._clock()
            tokens, as_of = self._buckets.get(key, (self.burst, now))
            # max(0, ...): a clock that steps back (an injected one) must not drain the bucket.
            tokens = min(self.burst, tokens + max(0.0, now - as_of) * self.rate)
            # The tolerance absorbs float rounding: a client calling exactly every 1/rate seconds
            # earns exactly one token per call.
            allowed = tokens >= 1.0 - 1e-9
            self._buckets[key] = (max(0.0, tokens - 1.0) if allowed else tokens, now)
            return allowed

    def reset(self) -> None:
        """Every bucket full again (a sandbox reset starts a fresh service)."""
        with self._lock:
            self._buckets.clear()


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)
    clock: Callable[[], float] = time.monotonic
    """The rate limiter's time source, in seconds; tests pass a fake one."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        c = self.config
        self.limiter = RateLimiter(c.rate_limit, c.rate_burst, self.clock) if c.rate_limit is not None else None

    def admit(self, account: str, region: str, operation: str) -> bool:
        """False when the rate limit refuses this call (no limit set: always True)."""
        return self.limiter is None or self.limiter.acquire(account, region, operation)

    def draw(self) -> Fault:
        """The fault for the next call (two draws a call, whatever the outcome)."""
        c = self.config
        with self._lock:
            roll, pick = self._rng.random(), self._rng.random()
        if roll < c.throttle_rate:
            return Fault.THROTTLE
        roll -= c.throttle_rate
        if roll < c.error_rate:
            return Fault.SERVICE_ERROR if pick < 0.5 else Fault.UNAVAILABLE
        roll -= c.error_rate
        if roll < c.reset_rate:
            return Fault.RESET_BEFORE if pick < 0.5 else Fault.RESET_AFTER
        return Fault.NONE
