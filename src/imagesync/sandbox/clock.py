"""The sandbox clock: simulated time that runs at a chosen speed and can be moved forward.

Builds, schedules and lifecycle rules are measured against this clock, never the wall clock, so a
test can freeze it (`speed=0`) and step it with `advance()`, and a user can run a 30-minute build
in 30 seconds (`speed=60`). The clock's anchor lives in the state document (`state["clock"]`), so
several processes sharing one state file, and a sandbox restarted on it, see one timeline.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

from imagesync.sandbox.store import TOUCHED

MAX_ADVANCE = 100 * 365 * 24 * 3600
"""The furthest one advance moves the clock: far beyond any schedule or lifecycle rule, and far from
the end of the calendar the timestamps can express."""


class Clock:
    """Simulated now = anchor + (real seconds since the anchor) x speed."""

    def __init__(self, speed: float = 1.0, real: Callable[[], float] = time.time) -> None:
        if not math.isfinite(speed) or speed < 0:
            raise ValueError(f"clock-speed must not be negative, got {speed}")
        self.speed = speed
        self._real = real

    def _anchor(self, state: dict[str, Any]) -> dict[str, float]:
        anchor: dict[str, float] | None = state.get("clock")
        real_now = self._real()
        if anchor is None:
            anchor = {"real": real_now, "simulated": real_now, "speed": self.speed}
            state["clock"] = anchor
            state[TOUCHED] = True
        elif anchor.get("speed") != self.speed:
            # Another speed ran this timeline before: continue it from where that speed left it.
            simulated = anchor["simulated"] + (real_now - anchor["real"]) * anchor.get("speed", 1.0)
            anchor = {"real": real_now, "simulated": simulated, "speed": self.speed}
            state["clock"] = anchor
            state[TOUCHED] = True
        return anchor

    def now(self, state: dict[str, Any]) -> dt.datetime:
        anchor = self._anchor(state)
        simulated = anchor["simulated"] + (self._real() - anchor["real"]) * self.speed
        return dt.datetime.fromtimestamp(simulated, dt.UTC)

    def advance(self, state: dict[str, Any], seconds: float) -> dt.datetime:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the clock only moves forward; advance must be a non-negative number, got {seconds}")
        if seconds > MAX_ADVANCE:
            raise ValueError(f"advance at most {MAX_ADVANCE} seconds (100 years) at a time, got {seconds:g}")
        anchor = self._anchor(state)
        anchor["simulated"] += seconds
        return self.now(state)
