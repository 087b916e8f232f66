"""Fault injection for tests and benchmarks: latency, throttling, 5xx errors, connection resets.

Decisions come from one seeded random stream, drawn once per API call in arrival order, so a run
with the same `seed` and the same sequence of calls sees the same faults. A fault either happens
before the operation touches state (throttling, 5xx, a reset before handling) or after its write
was committed (a reset that loses the response): never in between, so no write is half-applied.
"""

from __future__ import annotations

import enum
import random
import threading
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

    def __post_init__(self) -> None:
        for name in ("throttle_rate", "error_rate", "reset_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1, got {rate}")
        if self.throttle_rate + self.error_rate + self.reset_rate > 1.0:
            raise ValueError("throttle-rate + error-rate + reset-rate must not exceed 1")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError(f"rate-limit must be positive, got {self.rate_limit}")
        if self.latency_ms < 0:
            raise ValueError(f"latency-ms must not be negative, got {self.latency_ms}")


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()

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
