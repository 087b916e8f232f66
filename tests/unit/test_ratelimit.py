"""The adaptive rate limiter, driven through simulated time: an injected clock and a sleep that
moves it, so each test asserts rates and counts, never how long anything took."""

from __future__ import annotations

import threading

import pytest

from imagesync import ratelimit
from imagesync.aws import Backoff, ConnectOptions, Connector
from imagesync.desired import Target
from imagesync.errors import UserError
from imagesync.ratelimit import BETA, RateLimiter

KEY = "imagebuilder:CreateComponent"


class SimulatedTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(time: SimulatedTime) -> RateLimiter:
    return RateLimiter(clock=time.clock, sleep=time.sleep)


def send(lim: RateLimiter, time: SimulatedTime, calls: int, every: float, *, throttled: bool = False) -> None:
    for _ in range(calls):
        ticket = lim.acquire(KEY)
        (lim.throttled if throttled else lim.succeeded)(ticket)
        time.now += every


def test_unthrottled_calls_are_never_paced() -> None:
    time = SimulatedTime()
    lim = limiter(time)
    send(lim, time, 500, 0.0)
    assert lim.rate(KEY) is None and time.slept == []


def test_a_throttle_halves_the_sending_rate_and_only_once_per_cut() -> None:
    time = SimulatedTime()
    lim = limiter(time)
    send(lim, time, 40, 0.025)  # 40 calls a second, all accepted
    in_flight = [lim.acquire(KEY) for _ in range(5)]  # sent together, answered after the cut
    lim.throttled(in_flight[0])
    rate = lim.rate(KEY)
    assert rate == pytest.approx(BETA * 40, rel=0.1)  # half of what was sent and accepted
    for ticket in in_flight[1:]:  # sent at the old rate: the cut already answered them
        lim.throttled(ticket)
    assert lim.rate(KEY) == rate
    assert lim.stats()[KEY]["cuts"] == 1 and lim.stats()[KEY]["throttled"] == 5


def test_the_rate_recovers_step_by_step_after_successes() -> None:
    time = SimulatedTime()
    lim = limiter(time)
    send(lim, time, 40, 0.025)
    lim.throttled(lim.acquire(KEY))
    cut = lim.rate(KEY)
    assert cut is not None
    rates = []
    for _ in range(8):  # one second at a time, as fast as the limiter lets calls go
        until = time.now + 1.0
        while time.now < until:
            lim.succeeded(lim.acquire(KEY))
        rates.append(lim.rate(KEY))
    assert all(b >= a for a, b in zip([cut, *rates], rates, strict=False))  # never down on success
    assert rates[0] < 2 * cut  # slowly: not back at once
    assert rates[-1] >= 40 * 0.9  # and back near where it was throttled within seconds


@pytest.mark.parametrize("rate_before", [10.0, 40.0, 200.0])
def test_calls_never_exceed_the_current_rate_over_a_window(rate_before: float) -> None:
    time = SimulatedTime()
    lim = limiter(time)
    send(lim, time, int(rate_before), 1 / rate_before)
    lim.throttled(lim.acquire(KEY))
    rate = lim.rate(KEY)
    assert rate is not None
    # Four threads' worth of demand: every call is asked for at once; only the limiter spaces them.
    started = time.now
    stamps = [lim.acquire(KEY).sent_at for _ in range(200)]
    assert all(s >= started for s in stamps)
    capacity = max(1.0, rate * ratelimit.BURST_SECONDS)
    for i, first in enumerate(stamps):
        inside = sum(1 for s in stamps[i:] if s < first + 1.0)
        assert inside <= rate + capacity + 1e-6


def test_a_true_limit_is_found_and_throttling_stops() -> None:
    """A simulated service accepting 20 calls a second (a token bucket of 20), a client that would
    send 100 a second: the client settles under the limit with few throttled answers."""
    time = SimulatedTime()
    lim = limiter(time)
    tokens, as_of = 20.0, time.now
    accepted = throttled = 0
    while time.now < 160.0:
        ticket = lim.acquire(KEY)
        tokens = min(20.0, tokens + (time.now - as_of) * 20.0)
        as_of = time.now
        if tokens >= 1.0:
            tokens -= 1.0
            accepted += 1
            lim.succeeded(ticket)
        else:
            throttled += 1
            lim.throttled(ticket)
        time.now += 0.01
    seconds = 60.0
    assert accepted / seconds >= 20 * 0.8  # within 20% of the limit
    assert throttled <= 0.05 * accepted


def test_throttling_that_ignores_the_rate_does_not_drive_it_down() -> None:
    """Half of all calls refused whatever their pace: once a cut is seen not to help, the limiter
    stops cutting, rather than pacing down to its floor."""
    time = SimulatedTime()
    lim = limiter(time)
    flip = False
    while time.now < 160.0:
        ticket = lim.acquire(KEY)
        flip = not flip
        (lim.throttled if flip else lim.succeeded)(ticket)
        time.now += 0.01
    stats = lim.stats()[KEY]
    assert stats["held"] > 0
    assert lim.rate(KEY) is None or (lim.rate(KEY) or 0.0) > 4 * ratelimit.MIN_RATE
    assert len(time.slept) == 0 or sum(time.slept) < 0.25 * (time.now - 100.0)  # mostly not paced


def test_each_operation_has_its_own_bucket() -> None:
    time = SimulatedTime()
    lim = limiter(time)
    send(lim, time, 40, 0.025)
    lim.throttled(lim.acquire(KEY))
    assert lim.rate(KEY) is not None and lim.rate("imagebuilder:GetComponent") is None


def test_threads_share_one_limiter_per_account_and_region() -> None:
    connector = Connector(ConnectOptions(sandbox="http://127.0.0.1:9"))
    first = Target(name="a", region="us-east-1", account="111111111111")
    same = Target(name="b", region="us-east-1", account="111111111111")
    other_region = Target(name="c", region="eu-west-1", account="111111111111")
    other_account = Target(name="d", region="us-east-1", account="222222222222")
    limiters: list[RateLimiter] = []
    lock = threading.Lock()

    def client_limiter(target: Target) -> None:
        found = ratelimit.limiter_of(connector.imagebuilder(target))
        with lock:
            limiters.append(found)

    threads = [threading.Thread(target=client_limiter, args=(first,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(found is limiters[0] for found in limiters)
    mine = ratelimit.limiter_of(connector.imagebuilder(first))
    assert ratelimit.limiter_of(connector.imagebuilder(same)) is mine
    assert ratelimit.limiter_of(connector.imagebuilder(other_region)) is not mine
    assert ratelimit.limiter_of(connector.imagebuilder(other_account)) is not mine


def test_backoff_retries_until_the_deadline_not_a_count() -> None:
    time = SimulatedTime()
    backoff = Backoff(deadline=60.0, sleep=time.sleep, clock=time.clock)
    for delay in backoff.delays():
        backoff.sleep(delay)
    assert len(time.slept) > 20  # far more than a fixed handful of attempts
    assert sum(time.slept) == pytest.approx(60.0)
    assert max(time.slept) <= backoff.cap


def test_the_deadline_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESYNC_RETRY_DEADLINE", "42")
    assert Backoff().deadline == 42.0
    monkeypatch.setenv("IMAGESYNC_RETRY_DEADLINE", "soon")
    with pytest.raises(UserError, match="IMAGESYNC_RETRY_DEADLINE must be a positive number of seconds"):
        Connector(ConnectOptions(sandbox="http://127.0.0.1:9"))
