"""The sandbox's rate limit: a token bucket per account, region and operation.

The bucket's arithmetic is checked against an injected time source, so no test here depends on
how fast the machine is: each asserts counts of accepted and refused calls. Over HTTP, real boto3
clients with one attempt per call see 429 CallRateLimitExceededException and `/_sandbox/stats`
reports it under `throttled`.

The model follows the token bucket AWS documents for API request throttling: a bucket of a given
size per API, one token per request, refilled at a fixed rate up to its size
(https://docs.amazonaws.cn/ec2/latest/devguide/ec2-api-throttling.html); Image Builder's own
throttling error is CallRateLimitExceededException, "You have exceeded the permitted request rate
for the specific operation"
(https://docs.aws.amazon.com/botocore/latest/reference/services/imagebuilder/client/exceptions/CallRateLimitExceededException.html).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from imagesync.sandbox.faults import FaultConfig, FaultInjector, RateLimiter
from imagesync.sandbox.server import RunningSandbox, Sandbox, running
from support import REGION, SIMPLE_DOCUMENT, make_client, read_line, stop_process

ONE_ATTEMPT = {"retries": {"total_max_attempts": 1, "mode": "standard"}}


class FakeClock:
    """A monotonic time source that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- the bucket ---------------------------------------------------------------------------------

# (label, rate, burst, steps): each step is (seconds to advance, calls made at that instant,
# how many of them are accepted).
BUCKET_CASES: list[tuple[str, float, int | None, list[tuple[float, int, int]]]] = [
    ("burst defaults to the rate", 5, None, [(0, 6, 5)]),
    ("N+1 calls in one instant: exactly one refused", 3, None, [(0, 4, 3)]),
    ("a refill of one token admits one call", 5, None, [(0, 5, 5), (0.2, 2, 1)]),
    ("refill never overfills the bucket", 5, None, [(0, 5, 5), (3600, 7, 5)]),
    ("a partial token is not a token", 4, None, [(0, 4, 4), (0.2, 1, 0), (0.05, 1, 1)]),
    ("refused calls take no token", 1, None, [(0, 1, 1), (0.5, 3, 0), (0.5, 1, 1)]),
    ("explicit burst above the rate", 2, 10, [(0, 11, 10), (0.5, 2, 1)]),
    ("explicit burst of one paces to the rate", 10, 1, [(0, 2, 1), (0.1, 2, 1), (0.1, 1, 1)]),
    ("a rate below one still allows one call", 0.5, None, [(0, 2, 1), (1, 1, 0), (1, 1, 1)]),
    ("a fractional rate rounds the bucket down", 2.5, None, [(0, 3, 2), (0.4, 1, 1)]),
]


@pytest.mark.parametrize(("label", "rate", "burst", "steps"), BUCKET_CASES, ids=[c[0] for c in BUCKET_CASES])
def test_token_bucket(label: str, rate: float, burst: int | None, steps: list[tuple[float, int, int]]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, burst, clock)
    for number, (advance, calls, accepted) in enumerate(steps):
        clock.advance(advance)
        outcomes = [limiter.acquire("123456789012", REGION, "GetComponent") for _ in range(calls)]
        assert outcomes == [True] * accepted + [False] * (calls - accepted), f"step {number} of {label}"


def test_each_account_region_and_operation_has_its_own_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, None, clock)
    keys = [
        ("123456789012", "us-east-1", "GetComponent"),
        ("123456789012", "us-east-1", "ListComponents"),
        ("123456789012", "eu-west-1", "GetComponent"),
        ("222222222222", "us-east-1", "GetComponent"),
    ]
    assert [limiter.acquire(*key) for key in keys] == [True] * 4
    assert [limiter.acquire(*key) for key in keys] == [False] * 4
    clock.advance(1)
    assert [limiter.acquire(*key) for key in keys] == [True] * 4


def test_reset_fills_every_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, None, clock)
    assert limiter.acquire("a", "r", "Op") and not limiter.acquire("a", "r", "Op")
    limiter.reset()
    assert limiter.acquire("a", "r", "Op")


def test_a_clock_that_steps_back_does_not_drain_the_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, None, clock)
    assert limiter.acquire("a", "r", "Op")
    clock.advance(-50)
    assert limiter.acquire("a", "r", "Op")
    assert not limiter.acquire("a", "r", "Op")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_burst": 5}, "rate-burst needs rate-limit"),
        ({"rate_limit": 10, "rate_burst": 0}, "rate-burst must be at least 1"),
        ({"rate_limit": 0}, "rate-limit must be positive"),
    ],
)
def test_fault_config_refuses_bad_rate_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultConfig(**kwargs)


def test_no_rate_limit_admits_everything() -> None:
    injector = FaultInjector(FaultConfig())
    assert injector.limiter is None
    assert all(injector.admit("a", "r", "Op") for _ in range(1000))


# --- over HTTP, with an injected clock ------------------------------------------------------------


@pytest.fixture
def limited() -> Iterator[tuple[RunningSandbox, FakeClock]]:
    """A sandbox limited to 2 requests per second (bucket of 2) whose limiter reads a fake clock."""
    clock = FakeClock()
    config = FaultConfig(rate_limit=2)
    sandbox = Sandbox(faults=config)
    sandbox.faults = FaultInjector(config, clock=clock)
    served = RunningSandbox(sandbox).start()
    try:
        yield served, clock
    finally:
        served.stop()


def outcome(call: Any) -> str:
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"]
    return "ok"


def http_stats(endpoint_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint_url}/_sandbox/stats", timeout=10) as response:
        return json.loads(response.read())


def account_client(endpoint_url: str, account: str, region: str = REGION) -> Any:
    """A client acting in `account`: the sandbox maps a 12-digit access key id to that account."""
    return boto3.client("imagebuilder", endpoint_url=endpoint_url, region_name=region,
                        aws_access_key_id=account, aws_secret_access_key="x", config=Config(**ONE_ATTEMPT))


def test_over_the_limit_answers_429_and_stats_count_it(limited: tuple[RunningSandbox, FakeClock]) -> None:
    served, clock = limited
    client = make_client(served.endpoint_url, **ONE_ATTEMPT)
    assert [outcome(client.list_components) for _ in range(3)] == ["ok", "ok", "CallRateLimitExceededException"]
    with pytest.raises(client.exceptions.CallRateLimitExceededException) as excinfo:
        client.list_components()
    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "CallRateLimitExceededException"
    assert error["Error"]["Message"] == (
        "You have exceeded the permitted request rate for the specific operation ListComponents."
    )
    # Every request is counted, and the refused ones again under `throttled`.
    assert http_stats(served.endpoint_url) == {
        "total": 4, "operations": {"ListComponents": 4}, "throttled": {"ListComponents": 2},
    }
    clock.advance(0.5)  # one token back
    assert [outcome(client.list_components) for _ in range(2)] == ["ok", "CallRateLimitExceededException"]


def test_buckets_are_per_operation_account_and_region_over_http(limited: tuple[RunningSandbox, FakeClock]) -> None:
    served, _ = limited
    client = make_client(served.endpoint_url, **ONE_ATTEMPT)
    assert [outcome(client.list_components) for _ in range(3)] == ["ok", "ok", "CallRateLimitExceededException"]
    # The same instant, other buckets: another operation, another account, another region.
    assert outcome(client.list_image_recipes) == "ok"
    assert outcome(account_client(served.endpoint_url, "222222222222").list_components) == "ok"
    assert outcome(make_client(served.endpoint_url, region="eu-west-1", **ONE_ATTEMPT).list_components) == "ok"
    assert http_stats(served.endpoint_url)["throttled"] == {"ListComponents": 1}


def test_a_throttled_write_changes_nothing(limited: tuple[RunningSandbox, FakeClock]) -> None:
    served, clock = limited
    client = make_client(served.endpoint_url, **ONE_ATTEMPT)

    def create(name: str) -> None:
        client.create_component(name=name, semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT)

    outcomes = [outcome(lambda n=n: create(n)) for n in ("one", "two", "three")]
    assert outcomes == ["ok", "ok", "CallRateLimitExceededException"]
    names = [c["name"] for c in client.list_components()["componentVersionList"]]
    assert sorted(names) == ["one", "two"]
    clock.advance(0.5)
    assert outcome(lambda: create("three")) == "ok"  # the refused name was never taken


def test_sts_and_sandbox_endpoints_are_never_limited(limited: tuple[RunningSandbox, FakeClock]) -> None:
    served, _ = limited
    sts = boto3.client("sts", endpoint_url=served.endpoint_url, region_name=REGION,
                       aws_access_key_id="testing", aws_secret_access_key="testing", config=Config(**ONE_ATTEMPT))
    for _ in range(6):
        assert sts.get_caller_identity()["Account"] == "123456789012"
    for _ in range(6):
        http_stats(served.endpoint_url)
    stats = http_stats(served.endpoint_url)
    assert stats["operations"] == {"GetCallerIdentity": 6}
    assert stats["throttled"] == {}


def test_sandbox_reset_refills_the_buckets(limited: tuple[RunningSandbox, FakeClock]) -> None:
    served, _ = limited
    client = make_client(served.endpoint_url, **ONE_ATTEMPT)
    assert [outcome(client.list_components) for _ in range(3)] == ["ok", "ok", "CallRateLimitExceededException"]
    request = urllib.request.Request(f"{served.endpoint_url}/_sandbox/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    assert http_stats(served.endpoint_url) == {"total": 0, "operations": {}, "throttled": {}}
    assert [outcome(client.list_components) for _ in range(3)] == ["ok", "ok", "CallRateLimitExceededException"]


# --- over HTTP, with the real monotonic clock -------------------------------------------------------


def test_a_burst_over_the_limit_is_throttled_end_to_end() -> None:
    # One token every 10 s and a bucket of 1: the second call is refused unless 10 s pass between
    # two back-to-back calls, so the outcome does not depend on the machine's speed.
    with running(rate_limit=0.1) as served:
        client = make_client(served.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        outcomes = [outcome(client.list_components) for _ in range(4)]
        stats = http_stats(served.endpoint_url)
    assert outcomes == ["ok"] + ["CallRateLimitExceededException"] * 3
    # botocore's standard mode does not retry CallRateLimitExceededException: one request per call.
    assert stats == {"total": 4, "operations": {"ListComponents": 4}, "throttled": {"ListComponents": 3}}


def test_a_client_pacing_itself_under_the_limit_is_never_throttled() -> None:
    # A bucket of one token and 1000 tokens a second: a client that waits 2 ms (two tokens'
    # worth) between calls always finds a token, however slow each call is.
    rate = 1000.0
    with running(rate_limit=rate, rate_burst=1) as served:
        client = make_client(served.endpoint_url, **ONE_ATTEMPT)
        outcomes = []
        for _ in range(20):
            outcomes.append(outcome(client.list_components))
            time.sleep(2 / rate)
        stats = http_stats(served.endpoint_url)
    assert outcomes == ["ok"] * 20
    assert stats["operations"] == {"ListComponents": 20}
    assert stats["throttled"] == {}


def write_estate(root: Path, components: int) -> None:
    """A project of `components` components and one recipe that uses them all."""
    root.mkdir()
    (root / "imagesync.yaml").write_text("project: paced\ntargets:\n  - name: only\n    region: us-east-1\n")
    docs = []
    for i in range(components):
        docs.append(f"""\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: step-{i}}}
spec:
  platform: Linux
  version: 1.0.0
  document:
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Step{i}
            action: ExecuteBash
            inputs: {{commands: ["echo {i}"]}}
""")
    refs = "".join(f"    - ref: step-{i}\n" for i in range(components))
    docs.append(f"""\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: paced}}
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x
  components:
{refs}""")
    (root / "estate.yaml").write_text("---\n".join(docs))


def test_apply_backs_off_when_throttled_and_writes_each_change_once(tmp_path: Path) -> None:
    """imagesync apply, as a user runs it, against a limit its parallel creates exceed: every
    throttled call is retried until accepted, and each resource is created exactly once."""
    root = tmp_path / "manifests"
    write_estate(root, components=8)
    # A bucket of one and 10 tokens a second: apply's four parallel CreateComponent calls start
    # together, so some are refused however fast the machine is.
    with running(rate_limit=10, rate_burst=1) as served:
        command = [sys.executable, "-m", "imagesync", "apply", str(root), "--sandbox", served.endpoint_url,
                   "--auto-approve"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        stats = http_stats(served.endpoint_url)
        plan = subprocess.run(
            [sys.executable, "-m", "imagesync", "plan", str(root), "--sandbox", served.endpoint_url,
             "--detailed-exitcode"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )
    throttled, calls = stats["throttled"], stats["operations"]
    assert throttled.get("CreateComponent", 0) > 0, stats
    # Accepted calls: exactly one create per resource, however many were refused on the way.
    assert calls["CreateComponent"] - throttled["CreateComponent"] == 8
    assert calls["CreateImageRecipe"] - throttled.get("CreateImageRecipe", 0) == 1
    assert plan.returncode == 0, plan.stdout + plan.stderr  # nothing left to do


def test_serve_accepts_rate_limit_and_burst_flags() -> None:
    """`imagesync sandbox serve --rate-limit RPS --rate-burst N` as a user starts it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", "--rate-limit", "0.1", "--rate-burst", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = read_line(proc, timeout=30)
        assert first.startswith("endpoint="), first
        endpoint = first.strip().split("=", 1)[1]
        client = make_client(endpoint, **ONE_ATTEMPT)
        outcomes = [outcome(client.list_components) for _ in range(4)]
        assert outcomes == ["ok", "ok", "ok", "CallRateLimitExceededException"]
        assert http_stats(endpoint)["throttled"] == {"ListComponents": 1}
    finally:
        stop_process(proc)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rate-burst", "3"], "rate-burst needs rate-limit"),
        (["--rate-limit", "5", "--rate-burst", "0"], "--rate-burst"),
        (["--rate-limit", "5", "--rate-burst", "1.5"], "--rate-burst"),
    ],
)
def test_serve_refuses_bad_rate_flags(flags: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "imagesync", "sandbox", "serve", *flags],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
