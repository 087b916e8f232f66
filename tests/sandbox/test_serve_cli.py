"""`imagesync sandbox serve` as a real subprocess: startup line, boto3 traffic, state, faults, signals, flags.

Every test starts `python -m imagesync sandbox serve ...` and always stops it in a `finally`
(SIGTERM, then SIGKILL if it does not stop).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import SIMPLE_DOCUMENT, make_client, read_line, stop_process

SERVE = [sys.executable, "-m", "imagesync", "sandbox", "serve"]
ENDPOINT_LINE = re.compile(r"endpoint=(http://127\.0\.0\.1:(\d+))")
ONE_ATTEMPT = {"total_max_attempts": 1, "mode": "standard"}
FLAGS = ("--state", "--host", "--port", "--latency-ms", "--throttle-rate", "--error-rate", "--reset-rate",
         "--seed", "--versioning")


# --- helpers ----------------------------------------------------------------------------------


def first_line(proc: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The first stdout line of `proc`; a hang fails the test instead of blocking it."""
    return read_line(proc, timeout)


@contextlib.contextmanager
def serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running `imagesync sandbox serve ARGS`; yields the process and its endpoint URL."""
    proc = subprocess.Popen([*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = first_line(proc)
        match = ENDPOINT_LINE.fullmatch(line.rstrip("\n"))
        assert match, f"first stdout line {line!r}"
        yield proc, match.group(1)
    finally:
        stop_process(proc)


def run_cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=timeout)


def create_component(client: Any, name: str) -> str:
    return client.create_component(name=name, semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT)[
        "componentBuildVersionArn"
    ]


def component_names(client: Any) -> list[str]:
    return [row["name"] for row in client.list_components()["componentVersionList"]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- startup and traffic ----------------------------------------------------------------------


def test_first_line_is_the_endpoint_and_boto3_talks_to_it() -> None:
    with serve() as (proc, endpoint):
        port = int(endpoint.rsplit(":", 1)[1])
        assert 0 < port <= 65535
        client = make_client(endpoint, retries=ONE_ATTEMPT)
        arn = create_component(client, "served")
        assert arn.endswith(":component/served/1.0.0/1")
        assert component_names(client) == ["served"]
        with urllib.request.urlopen(f"{endpoint}/_sandbox/stats", timeout=5) as response:
            assert json.loads(response.read())["operations"] == {"CreateComponent": 1, "ListComponents": 1}
        assert proc.poll() is None


def test_explicit_port_is_used() -> None:
    port = free_port()
    with serve("--port", str(port)) as (_, endpoint):
        assert endpoint == f"http://127.0.0.1:{port}"
        assert component_names(make_client(endpoint, retries=ONE_ATTEMPT)) == []


def test_port_already_in_use_is_a_clean_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_cli("--port", str(busy.getsockname()[1]))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- state ------------------------------------------------------------------------------------


def test_state_file_persists_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve("--state", str(state)) as (proc, endpoint):
        arn = create_component(make_client(endpoint, retries=ONE_ATTEMPT), "survivor")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    assert state.exists()
    with serve("--state", str(state)) as (_, endpoint):
        client = make_client(endpoint, retries=ONE_ATTEMPT)
        assert component_names(client) == ["survivor"]
        assert client.get_component(componentBuildVersionArn=arn)["component"]["name"] == "survivor"


def test_without_state_nothing_survives_a_restart() -> None:
    with serve() as (_, endpoint):
        create_component(make_client(endpoint, retries=ONE_ATTEMPT), "ephemeral")
    with serve() as (_, endpoint):
        assert component_names(make_client(endpoint, retries=ONE_ATTEMPT)) == []


def test_a_file_that_is_not_a_state_file_is_refused_at_startup(tmp_path: Path) -> None:
    """Regression: serve once started with a file that is not a state file and then answered every
    call with a retryable 500; it must refuse to start instead."""
    bogus = tmp_path / "not-state.json"
    bogus.write_text(json.dumps({"hello": "world"}))
    proc = subprocess.Popen([*SERVE, "--state", str(bogus)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = first_line(proc)  # '' when it exits without starting
        assert not line.startswith("endpoint="), "the server started with an invalid state file"
        assert proc.wait(timeout=10) != 0
        assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")
    finally:
        stop_process(proc)


# --- faults -----------------------------------------------------------------------------------


def test_throttle_rate_one_answers_429() -> None:
    with serve("--throttle-rate", "1", "--seed", "3") as (_, endpoint):
        client = make_client(endpoint, retries={"max_attempts": 1, "mode": "standard"})
        with pytest.raises(client.exceptions.CallRateLimitExceededException) as excinfo:
            client.list_components()
        meta = excinfo.value.response["ResponseMetadata"]
        assert meta["HTTPStatusCode"] == 429
        assert meta["HTTPHeaders"]["x-amzn-errortype"] == "CallRateLimitExceededException"


def test_latency_flag_delays_calls() -> None:
    with serve("--latency-ms", "150") as (_, endpoint):
        client = make_client(endpoint, retries=ONE_ATTEMPT)
        started = time.monotonic()
        client.list_components()
        assert time.monotonic() - started >= 0.14


# --- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_with_exit_code_zero(signum: int) -> None:
    with serve() as (proc, endpoint):
        client = make_client(endpoint, retries=ONE_ATTEMPT)
        client.list_components()  # a kept-alive connection is open while it stops
        proc.send_signal(signum)
        # The client keeps its connection open: a server waiting for it to close would never exit.
        assert proc.wait(timeout=60) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        with pytest.raises(OSError):  # nothing listens any more
            urllib.request.urlopen(f"{endpoint}/_sandbox/stats", timeout=2)


# --- flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (("--throttle-rate", "2"), "--throttle-rate"),
        (("--error-rate", "-0.1"), "--error-rate"),
        (("--reset-rate", "abc"), "--reset-rate"),
        (("--port", "abc"), "--port"),
        (("--port", "70000"), "--port"),
        (("--latency-ms", "-1"), "--latency-ms"),
        (("--seed", "1.5"), "--seed"),
        (("--versioning", "bogus"), "--versioning"),
        (("--no-such-flag",), "--no-such-flag"),
    ],
    ids=["throttle-2", "error-negative", "reset-abc", "port-abc", "port-70000", "latency-negative", "seed-float",
         "versioning-bogus", "unknown-flag"],
)
def test_bad_flags_exit_1_with_a_message(args: tuple[str, ...], mentions: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 1, result  # 2 means "changes present" for plan --detailed-exitcode
    assert "usage:" in result.stderr
    assert mentions in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_rates_adding_up_to_more_than_one_are_refused() -> None:
    result = run_cli("--throttle-rate", "0.6", "--error-rate", "0.6")
    assert result.returncode != 0
    assert "must not exceed 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert "endpoint=" not in result.stdout


def test_help_mentions_every_flag() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout, flag
    assert "endpoint=" in result.stdout  # documents the startup line
    assert "/_sandbox/stats" in result.stdout and "/_sandbox/reset" in result.stdout
