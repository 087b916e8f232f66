"""The sandbox clock over HTTP: GET and POST /_sandbox/clock, refusals, and one timeline per state file.

Builds, schedules and lifecycle runs are measured on this clock, so a test freezes it
(`clock_speed=0`) and moves it; these tests pin the endpoint and the clock's own rules.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from imagesync.sandbox import RunningSandbox, running
from imagesync.sandbox.clock import Clock
from support import make_client


def clock(sb: RunningSandbox, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{sb.endpoint_url}/_sandbox/clock", data=body, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_frozen_clock_moves_only_when_advanced() -> None:
    with running(clock_speed=0) as sb:
        status, first = clock(sb)
        assert status == 200 and first["speed"] == 0
        assert clock(sb)[1]["now"] == first["now"]
        status, moved = clock(sb, json.dumps({"advance": 90061.5}).encode())
        assert status == 200
        assert moment(moved["now"]) - moment(first["now"]) == dt.timedelta(days=1, hours=1, minutes=1, seconds=1.5)
        # What the API stamps comes from the same clock.
        ib = make_client(sb.endpoint_url)
        arn = ib.create_infrastructure_configuration(name="infra", instanceProfileName="builder")[
            "infrastructureConfigurationArn"]
        created = ib.get_infrastructure_configuration(infrastructureConfigurationArn=arn)[
            "infrastructureConfiguration"]["dateCreated"]
        assert moment(created) == moment(moved["now"])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        pytest.param(b'{"advance": -1}', "non-negative", id="negative"),
        pytest.param(b'{"advance": NaN}', "NaN is not a number", id="nan"),
        pytest.param(b'{"advance": Infinity}', "Infinity is not a number", id="infinity"),
        pytest.param(b'{"advance": 1e20}', "at most", id="beyond-the-calendar"),
        pytest.param(b'{"advance": true}', "non-negative number of seconds, got True", id="boolean"),
        pytest.param(b'{"advance": "60"}', "non-negative number of seconds, got '60'", id="string"),
        pytest.param(b"[60]", "non-negative number of seconds", id="not-an-object"),
        pytest.param(b"soon", "must be JSON", id="not-json"),
    ],
)
def test_a_bad_advance_is_refused_and_the_clock_stays_usable(body: bytes, fragment: str) -> None:
    """Regression: NaN once poisoned the clock, and every later call answered 500."""
    with running(clock_speed=0) as sb:
        before = clock(sb)[1]["now"]
        status, answer = clock(sb, body)
        assert status == 400 and fragment in answer["message"], answer
        assert clock(sb)[1]["now"] == before
        assert make_client(sb.endpoint_url).list_components(owner="Amazon")["componentVersionList"]


def test_a_state_file_keeps_one_timeline_across_restarts_and_speeds(tmp_path: Path) -> None:
    state = str(tmp_path / "state.json")
    with running(state, clock_speed=0) as sb:
        start = moment(clock(sb, b'{"advance": 86400}')[1]["now"])
    with running(state, clock_speed=0) as sb:
        assert moment(clock(sb)[1]["now"]) == start  # frozen, and not reset by the restart
    before = time.time()  # the sandbox clock runs on the real wall clock, which this brackets
    with running(state, clock_speed=60) as sb:
        now = moment(clock(sb)[1]["now"])
        after = time.time()
        # A faster clock carries on from where the frozen one stood (not from the real time, a day
        # behind it), at 60 simulated seconds for each real second it has run; `now` is rounded.
        ran = dt.timedelta(seconds=(after - before) * 60)
        assert dt.timedelta(0) <= now - start <= ran + dt.timedelta(milliseconds=1)
        assert clock(sb)[1]["speed"] == 60


def test_the_clock_runs_at_its_speed_on_an_injected_time_source() -> None:
    real = [1000.0]
    fast = Clock(speed=60, real=lambda: real[0])
    state: dict[str, Any] = {}
    start = fast.now(state)
    real[0] += 30
    assert fast.now(state) - start == dt.timedelta(minutes=30)
    for speed in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="must not be negative"):
            Clock(speed=speed)
    for settings in ({"clock_speed": float("nan")}, {"build_minutes": float("inf")}, {"build_minutes": -1}):
        with pytest.raises(ValueError, match="must be a non-negative number"), running(**settings):
            pass
