"""SIGTERM and SIGINT during `imagesync apply` and `imagesync plan`, with real signals.

Every test runs `python -m imagesync ...` as a subprocess against an `imagesync sandbox serve
--latency-ms 300` subprocess, so an apply is slow enough to be interrupted after its first progress
line. An interrupted apply must finish the calls in flight, start nothing new, say what it did and
what it left, release its locks and exit 128 + the signal number; the state it leaves must be
exactly "the done changes, and none of the rest", which a second apply finishes.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import read_line, stop_process, wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "manifests"
IMAGESYNC = [sys.executable, "-m", "imagesync"]
PROGRESS = re.compile(r"^  \[[+x-]\] (\S+): (\S+) (\S+)")
NOT_STARTED = re.compile(r"^  \[ \] (\S+): (\S+) not started$")
SUMMARY = re.compile(r"^Interrupted by (SIG\w+): (\d+) changes? done, (\d+) not started; run apply again to finish\.$")
WRITE_PREFIXES = ("Create", "Update", "Delete", "Tag", "Untag", "Put", "Start", "Cancel", "Import")
DONE = ("created", "published", "updated", "deleted")
CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Sandbox:
    """A running `imagesync sandbox serve --latency-ms 300`, and its call counters."""

    def __init__(self, proc: subprocess.Popen[str], endpoint: str) -> None:
        self.proc = proc
        self.endpoint = endpoint

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_sandbox/stats", timeout=10) as resp:
            return dict(json.loads(resp.read()))

    def writes(self) -> int:
        return sum(n for op, n in self.stats()["operations"].items() if op.startswith(WRITE_PREFIXES))


@contextlib.contextmanager
def _serving(latency_ms: int) -> Iterator[Sandbox]:
    proc = subprocess.Popen(
        [*IMAGESYNC, "sandbox", "serve", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc, 30)
        match = re.fullmatch(r"endpoint=(http://\S+)", line.strip())
        assert match, line
        yield Sandbox(proc, match.group(1))
    finally:
        stop_process(proc)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with _serving(300) as served:
        yield served


@pytest.fixture
def slow_sandbox() -> Iterator[Sandbox]:
    """Each call answered after 3 s (counted on arrival): a plan cannot end before the signal
    that follows its first call, however loaded the machine."""
    with _serving(3000) as served:
        yield served


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, root)
    return root




def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IMAGESYNC, *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300
    )


@contextlib.contextmanager
def _started(cwd: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [*IMAGESYNC, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        stop_process(proc)


class _Output:
    """A process's stdout line by line and its stderr whole, read on threads: no line is lost
    between reading the first ones and the rest, and neither pipe can fill up."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.err_lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        stdout, stderr = proc.stdout, proc.stderr
        self._threads = [
            threading.Thread(target=self._read_lines, args=(stdout,), daemon=True),
            threading.Thread(target=self._read_errors, args=(stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_lines(self, stream: Any) -> None:
        for line in stream:
            self.out.append(line)
            self.lines.put(line)
        self.lines.put("")

    def _read_errors(self, stream: Any) -> None:
        for line in stream:
            self.err.append(line)
            self.err_lines.put(line)
        self.err_lines.put("")

    def next_line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no stdout line within {timeout} s") from None

    def finish(self, timeout: float) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=timeout)
        return code, "".join(self.out), "".join(self.err)


def _interrupt_apply(
    cwd: Path, root: Path, sb: Sandbox, signum: int, *extra: str, again: bool = False
) -> tuple[int, str, str]:
    """Start an apply, send `signum` once its first change is done (and again at once if `again`);
    return the exit code, the whole stdout and the stderr."""
    with _started(cwd, "apply", str(root), "--sandbox", sb.endpoint, "--auto-approve", *extra) as proc:
        output = _Output(proc)
        if "json" in extra:
            # JSON output has no progress lines: interrupt once the first write has been served.
            def first_write() -> bool:
                assert proc.poll() is None, "apply ended before its first write"
                return sb.writes() > 0

            wait_until(first_write, "the apply's first write is served", timeout=120)
        else:
            while not PROGRESS.match(line := output.next_line(120)):
                assert line, f"apply ended before its first progress line: {output.out}"
        proc.send_signal(signum)
        if again:
            # Once the first signal is taken (apply says so), the second one comes while it winds down.
            name = signal.Signals(signum).name
            while not (line := output.err_lines.get(timeout=120)).startswith(f"{name} received"):
                assert line, f"apply ended without taking {name}: {output.err}"
            proc.send_signal(signum)
        return output.finish(120)


def _pending(cwd: Path, root: Path, sb: Sandbox) -> set[tuple[str, str]]:
    result = _cli(cwd, "plan", str(root), "--sandbox", sb.endpoint, "--format", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    return {(c["target"], c["resource"]) for c in plan["resource_changes"] if c["change"]["actions"] != ["no-op"]}


def _finish(cwd: Path, root: Path, sb: Sandbox) -> None:
    """A second apply completes, the plan after it is empty, and the lock was free for both."""
    second = _cli(cwd, "apply", str(root), "--sandbox", sb.endpoint, "--auto-approve")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Apply complete" in second.stdout
    final = _cli(cwd, "plan", str(root), "--sandbox", sb.endpoint, "--detailed-exitcode")
    assert final.returncode == 0, final.stdout + final.stderr
    third = _cli(cwd, "apply", str(root), "--sandbox", sb.endpoint, "--auto-approve")
    assert third.returncode == 0 and "No changes" in third.stdout, third.stdout + third.stderr
    for result in (second, third):
        assert "is held by" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_apply_finishes_in_flight_calls_and_reports(
    signum: int, tmp_path: Path, manifests: Path, sandbox: Sandbox
) -> None:
    code, out, err = _interrupt_apply(tmp_path, manifests, sandbox, signum)

    assert code == CODES[signum], out + err
    assert "Traceback" not in err and "Traceback" not in out
    lines = out.splitlines()
    summary = [m for m in map(SUMMARY.match, lines) if m]
    assert len(summary) == 1, out
    name, done_count, left_count = summary[0].group(1), int(summary[0].group(2)), int(summary[0].group(3))
    assert name == signal.Signals(signum).name
    done = {(m.group(1), m.group(2)) for m in map(PROGRESS.match, lines) if m and m.group(3) in DONE}
    left = {(m.group(1), m.group(2)) for m in map(NOT_STARTED.match, lines) if m}
    assert len(done) == done_count >= 1, out
    assert len(left) == left_count >= 1
    assert not done & left

    # Each done change is one write and nothing else was written: no call started after the signal
    # that was not waited for, and none of the changes left behind was begun.
    assert sandbox.writes() == done_count
    # The state is exactly "done, and none of the rest": the next plan is the changes not started.
    assert _pending(tmp_path, manifests, sandbox) == left
    _finish(tmp_path, manifests, sandbox)


def test_json_output_reports_changes_not_started(tmp_path: Path, manifests: Path, sandbox: Sandbox) -> None:
    code, out, err = _interrupt_apply(tmp_path, manifests, sandbox, signal.SIGTERM, "--format", "json")

    assert code == 143, out + err
    assert "Traceback" not in err
    report = json.loads(out)
    statuses = [o["status"] for o in report["outcomes"]]
    left = {(o["target"], o["address"]) for o in report["outcomes"] if o["status"] == "not-started"}
    assert report["interrupted"] == "SIGTERM"
    assert report["not_started"] == len(left) >= 1
    assert set(statuses) <= {*DONE, "not-started"}, statuses
    assert sandbox.writes() == len(statuses) - len(left)
    assert _pending(tmp_path, manifests, sandbox) == left
    _finish(tmp_path, manifests, sandbox)


def test_second_signal_exits_at_once_and_the_lock_is_free(tmp_path: Path, manifests: Path, sandbox: Sandbox) -> None:
    # One change at a time: the one after the first progress line is still in flight at the second signal.
    code, out, err = _interrupt_apply(tmp_path, manifests, sandbox, signal.SIGINT, "--parallelism", "1", again=True)

    assert code == 130, out + err
    assert "Traceback" not in err
    assert "Interrupted again by SIGINT" in err
    # Whatever the first apply left, the kernel released its flock: the next apply takes the lock.
    _finish(tmp_path, manifests, sandbox)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_plan_stops_cleanly(
    signum: int, tmp_path: Path, manifests: Path, slow_sandbox: Sandbox
) -> None:
    sandbox = slow_sandbox
    with _started(tmp_path, "plan", str(manifests), "--sandbox", sandbox.endpoint) as proc:
        def reading() -> bool:
            assert proc.poll() is None, "plan ended before reading anything"
            return sandbox.stats()["total"] > 0

        wait_until(reading, "the plan is reading live state")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)

    assert proc.returncode == CODES[signum], out + err
    assert out == ""
    assert err.strip().splitlines() == [f"Interrupted by {signal.Signals(signum).name}: nothing was changed."]
    assert sandbox.writes() == 0


def test_signals_are_documented() -> None:
    result = subprocess.run([*IMAGESYNC, "apply", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "130" in text and "143" in text and "SIGTERM" in text
    readme = " ".join((EXAMPLES.parents[1] / "README.md").read_text().split())
    assert "`130`" in readme and "`143`" in readme
