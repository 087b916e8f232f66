"""Adaptive client-side rate limiting: how fast imagesync lets itself call one account and region.

`aws.call` asks the `RateLimiter` of its client's account and region for a token before every
attempt and tells it how the attempt went. One limiter per account and region (and endpoint) is
shared by every thread of the process (`limiter_for`): the live reader's pool, the executor's
workers and the lock's calls draw from the same buckets, since the service counts their calls
together. Inside a limiter each operation has its own bucket, because Image Builder throttles
per operation ("the permitted request rate for the specific operation").

A bucket starts unlimited: nothing is paced until the service says it is throttling, once the
bucket has had a few answers (one throttle among the very first says nothing of a rate). Then
its rate is cut to half of what was being sent (multiplicative decrease, as TCP does on loss) and
grows back on successes along a cubic curve (as TCP CUBIC and botocore's adaptive mode do): fast
at first, flat near the rate that was last throttled, then probing beyond it. Throttling answers
to attempts sent before the last cut are not cut for again: they were sent at the old rate.

Throttling that does not follow the rate (a service shedding a share of calls whatever their
pace) would drive a plain decrease to its floor and make an apply crawl. So once a bucket has a
second of history, each cut is judged by the first answers to calls sent after it. Were the
service limiting the rate, it would go on accepting what it accepted before the cut, so the share
throttled would fall to `1 - accepted / new rate` (none, when the cut lands below the limit);
were it refusing a share whatever the pace, the share would stay what it was. When what is seen is
nearer the second, the throttling is not ours to fix by going slower: the bucket goes back to
unlimited and makes no cut for SUSPEND seconds (the retries take care of such answers). The cuts
of the first second are not judged: a first burst makes what was accepted look larger than it is.

Waiting happens outside the limiter's lock: a caller reserves the next free slot and sleeps until
it, so threads are served in order and never spin. `clock` and `sleep` are injectable, so tests
drive a limiter through simulated time.
"""

from __future__ import annotations

import collections
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BETA = 0.5  # the rate kept on a cut
SCALE = 0.4  # how fast the cubic recovery grows, in calls/s per s^3 (botocore's choice)
MIN_RATE = 1.0  # calls per second a bucket is never cut below
BURST_SECONDS = 0.25  # tokens a bucket holds, as seconds of its rate (at least one token)
WINDOW = 1.0  # seconds over which the sending rate is measured
MIN_SPAN = 0.25  # the shortest span a sending rate is measured over, so a first burst is not infinite
EPOCH_OUTCOMES = 8  # answers to calls sent at a new rate before it is judged (and cut again)
JUDGE_SECONDS = 0.5  # or this long after the cut, once JUDGE_LEAST answers are in: a slow rate is
JUDGE_LEAST = 3  # judged without waiting seconds for its answers
SUSPEND = 30.0  # seconds without cuts once a cut was judged not to help


@dataclass(frozen=True)
class Ticket:
    """One attempt's token: which bucket it came from, and the cut it was sent after."""

    key: str
    epoch: int
    sent_at: float


class _Bucket:
    """One operation's pace: a token bucket whose rate adapts; every method runs under the limiter's lock."""

    def __init__(self, now: float) -> None:
        self.rate: float | None = None  # None: not limited (never throttled yet)
        self.tokens = 0.0
        self.as_of = now
        self.sends: collections.deque[float] = collections.deque()
        self.accepts: collections.deque[float] = collections.deque()
        self.first_send: float | None = None
        self.epoch = 0  # cuts so far
        self.cut_at = now
        self.w_max = 0.0  # the rate at the last cut
        self.k = 0.0  # seconds the cubic takes to climb back to w_max
        self.epoch_start = now
        self.epoch_answers = 0
        self.recent: collections.deque[bool] = collections.deque(maxlen=4 * EPOCH_OUTCOMES)  # throttled?
        self.expected: tuple[float, float] | None = None  # (share if rate-blind, share if limited)
        self.after: list[bool] = []  # answers to calls sent after the last cut, while it is judged
        self.suspended_until = now
        self.throttled = 0
        self.held = 0  # throttles for which a cut was refused
        self.floor = MIN_RATE  # the slowest a cut paces to

    def capacity(self) -> float:
        return max(1.0, (self.rate or 0.0) * BURST_SECONDS)

    def refill(self, now: float) -> None:
        if self.rate is not None:
            # max(0, ...): a clock that steps back must not drain the bucket.
            self.tokens = min(self.capacity(), self.tokens + max(0.0, now - self.as_of) * self.rate)
        self.as_of = max(self.as_of, now)

    def reserve(self, now: float) -> float:
        """Take the next token; the seconds to wait before using it."""
        self.refill(now)
        self.record_send(now)
        if self.rate is None:
            return 0.0
        self.tokens -= 1.0
        # The tolerance absorbs float rounding: a caller arriving exactly on time does not wait.
        return -self.tokens / self.rate if self.tokens < -1e-9 else 0.0

    def record_send(self, now: float) -> None:
        if self.first_send is None:
            self.first_send = now
        self.sends.append(now)
        while self.sends and self.sends[0] < now - WINDOW:
            self.sends.popleft()

    def _per_second(self, stamps: collections.deque[float], now: float) -> float:
        while stamps and stamps[0] < now - WINDOW:
            stamps.popleft()
        first = self.first_send if self.first_send is not None else now
        return len(stamps) / min(WINDOW, max(MIN_SPAN, now - first))

    def sending_rate(self, now: float) -> float:
        return self._per_second(self.sends, now)

    def cubic(self, now: float) -> float:
        return SCALE * (now - self.cut_at - self.k) ** 3 + self.w_max

    def _answer(self, ticket: Ticket, throttled: bool, now: float) -> None:
        """Note an answer; judge the last cut once enough calls sent after it are answered."""
        self.recent.append(throttled)
        if ticket.epoch != self.epoch or self.expected is None:
            return
        self.after.append(throttled)
        if len(self.after) < EPOCH_OUTCOMES and (len(self.after) < JUDGE_LEAST or now - self.cut_at < JUDGE_SECONDS):
            return
        blind, limited = self.expected
        self.expected = None
        seen = sum(self.after) / len(self.after)
        if abs(seen - blind) < abs(seen - limited):
            # Going slower did not make the service refuse less: not a rate this client exceeds.
            self.held += 1
            self.rate = None
            self.tokens = 0.0
            self.suspended_until = now + SUSPEND

    def success(self, ticket: Ticket, now: float) -> None:
        self._answer(ticket, False, now)
        if ticket.epoch == self.epoch:
            self.epoch_answers += 1
        self.accepts.append(now)
        if self.rate is None:
            return
        # Grow along the cubic, never past twice what is being sent (a quiet spell must not earn
        # a burst) unless that is still below the rate last throttled.
        ceiling = max(self.w_max, 2.0 * self.sending_rate(now))
        self.refill(now)
        self.rate = max(self.rate, min(self.cubic(now), ceiling))

    def throttle(self, ticket: Ticket, now: float) -> None:
        self.throttled += 1
        self._answer(ticket, True, now)
        if ticket.epoch != self.epoch:
            return  # sent before the last cut: that cut already answered it
        self.epoch_answers += 1
        if now < self.suspended_until or self.expected is not None:
            return  # cuts do not help now, or the last one is still being judged
        if len(self.recent) < EPOCH_OUTCOMES:
            return  # a throttle among a bucket's first few answers says nothing of a rate yet
        if self.rate is not None and self.epoch_answers < EPOCH_OUTCOMES:
            return  # too few answers at this rate to judge it yet
        # What the service accepted over the last second is the best guess at its limit: the
        # rate to come back to, and to probe beyond.
        sending = self.sending_rate(now)
        # Over few answers the accepted count is mostly noise: never guess below half the sending rate.
        current = min(sending, max(BETA * sending, self._per_second(self.accepts, now)))
        current = current if self.rate is None else min(self.rate, current)
        self.refill(now)
        share = sum(self.recent) / len(self.recent)
        before = self.rate if self.rate is not None else sending
        self.w_max = current
        self.rate = max(self.floor, BETA * current)
        if self.first_send is not None and now - self.first_send >= WINDOW:
            # What each kind of throttling would make of the answers to come (see the module notes).
            accepted = before * (1.0 - share)
            self.expected = (share, max(0.0, 1.0 - accepted / self.rate))
            self.after = []
        self.k = (self.w_max * (1.0 - BETA) / SCALE) ** (1.0 / 3.0)
        self.cut_at = now
        # Neither what was saved up nor what was promised at the old rate is spent at the new one:
        # callers waiting for a slot reserve again (see RateLimiter.acquire).
        self.tokens = 0.0
        self.epoch += 1
        self.epoch_start = now
        self.epoch_answers = 0


class RateLimiter:
    """The adaptive buckets of one account and region, one per operation; thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(now)
        return bucket

    def acquire(self, key: str) -> Ticket:
        """Wait for `key`'s next token (an operation, e.g. "imagebuilder:GetComponent")."""
        reserved: int | None = None  # the cut a slot was reserved after
        while True:
            with self._lock:
                now = self._clock()
                bucket = self._bucket(key, now)
                if reserved == bucket.epoch:
                    return Ticket(key, bucket.epoch, now)
                # No slot yet, or one reserved at a rate cut since: a slot at today's rate.
                wait = bucket.reserve(now)
                reserved = bucket.epoch
                if wait <= 0:
                    return Ticket(key, bucket.epoch, now)
            self._sleep(wait)

    def succeeded(self, ticket: Ticket) -> None:
        with self._lock:
            now = self._clock()
            self._bucket(ticket.key, now).success(ticket, now)

    def throttled(self, ticket: Ticket) -> None:
        with self._lock:
            now = self._clock()
            self._bucket(ticket.key, now).throttle(ticket, now)

    def rate(self, key: str) -> float | None:
        """The calls per second `key` is paced to now; None while it has never been throttled."""
        with self._lock:
            bucket = self._buckets.get(key)
            return None if bucket is None else bucket.rate

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per bucket: its rate, the throttling answers seen, and the cuts made and refused."""
        with self._lock:
            return {
                key: {"rate": b.rate, "throttled": b.throttled, "cuts": b.epoch, "held": b.held}
                for key, b in sorted(self._buckets.items())
            }


# -- one limiter per account and region, found from the client --------------------------------

_registry_lock = threading.Lock()
_limiters: dict[tuple[str, str, str], RateLimiter] = {}
_attached: weakref.WeakKeyDictionary[Any, RateLimiter] = weakref.WeakKeyDictionary()


def limiter_for(account: str, region: str, endpoint: str | None = None) -> RateLimiter:
    """The process's limiter for `account` in `region` (at `endpoint`: two sandboxes are two services)."""
    key = (account, region, endpoint or "")
    with _registry_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter()
        return limiter


def attach(client: Any, account: str) -> Any:
    """Make `client`'s calls draw from `account`'s limiter in the client's region; returns the client."""
    limiter = limiter_for(account, str(client.meta.region_name or ""), _endpoint(client))
    with _registry_lock:
        _attached[client] = limiter
    return client


def limiter_of(client: Any) -> RateLimiter:
    """The limiter `client` was attached to; for a client made elsewhere (the lock's, say), the one
    of its region and endpoint, whose account the caller did not name."""
    with _registry_lock:
        try:
            limiter = _attached.get(client)
        except TypeError:  # not weakly referable, so never attached
            limiter = None
    if limiter is not None:
        return limiter
    meta = getattr(client, "meta", None)
    return limiter_for("", str(getattr(meta, "region_name", "") or ""), _endpoint(client))


def _endpoint(client: Any) -> str:
    return str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "")
