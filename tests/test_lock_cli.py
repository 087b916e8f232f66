"""The lock as a user meets it: real `imagesync apply` / `imagesync unlock` processes against one
`imagesync sandbox serve`, from two clones of the same manifests, and the unlock command itself.

The lock is per project + account + region and lives in the per-user state directory (here the
test's own XDG_STATE_HOME, see conftest.py), so where the manifests are checked out, and what is
deleted inside the checkout, does not matter.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from file_opens import FileOpens
from imagesync.cli import main as cli_main
from imagesync.lock import DynamoDBLock, FileLock, LockInfo, S3Lock, default_lock_dir
from support import stop_heartbeats, stop_process, wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "manifests"
PROD_LOCK = "golden-images/111111111111/us-east-1"
WRITE_PREFIXES = ("Create", "Update", "Delete", "Tag", "Untag", "Put", "Start", "Cancel", "Import")

# Holds a file lock in the default state directory, the way apply holds it, until killed or its
# stdin closes (so it never outlives the test).
HOLDER = """
import sys
from imagesync.lock import FileLock, default_lock_dir
FileLock(default_lock_dir(), sys.argv[1]).acquire("apply")
print("held", flush=True)
sys.stdin.read()
"""


class Server:
    """`imagesync sandbox serve` in a subprocess: its URL and call counters."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imagesync", "sandbox", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().strip()
        assert first.startswith("endpoint=http://"), (first, self.proc.stderr.read() if self.proc.stderr else "")
        self.url = first.removeprefix("endpoint=")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=30) as response:
            return json.loads(response.read())

    def writes(self) -> dict[str, int]:
        return {op: n for op, n in self.stats()["operations"].items() if op.startswith(WRITE_PREFIXES)}

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): the kernel still accepts connections, but no call is
        answered, so an apply that has taken its lock keeps it for as long as the test needs."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        stop_process(proc)


@pytest.fixture
def paused_server(procs: list[subprocess.Popen[str]]) -> Iterator[Server]:
    """A sandbox that answers nothing until the test calls `resume()`."""
    server = Server()
    procs.append(server.proc)
    server.pause()
    try:
        yield server
    finally:
        server.resume()  # a stopped process would not act on the SIGTERM that stops it


def clone(dest: Path) -> Path:
    shutil.copytree(EXAMPLES, dest)
    return dest


def imagesync(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def apply_args(root: Path, url: str, *extra: str) -> tuple[str, ...]:
    return ("apply", str(root), "--sandbox", url, "--auto-approve", "--target", "prod-use1", "--parallelism", "1",
            *extra)


def lock_file() -> Path:
    return FileLock(default_lock_dir(), PROD_LOCK).path


def holder_pid() -> int | None:
    """The pid the prod-use1 lock file names, None while it names nobody."""
    try:
        text = lock_file().read_text().strip()
        return LockInfo.from_json(text).pid if text else None
    except (FileNotFoundError, ValueError):
        return None


def start_writer(root: Path, server: Server, procs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """An apply that has provably taken the lock (the lock file names it) against a paused server,
    so it holds the lock, stuck at its first call, until the server resumes."""
    writer = imagesync(*apply_args(root, server.url), cwd=root.parent)
    procs.append(writer)

    def holds_the_lock() -> bool:
        assert writer.poll() is None, writer.communicate()
        return holder_pid() == writer.pid

    wait_until(holds_the_lock, "the first apply holds the lock")
    return writer


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# -- two clones, one account and region ----------------------------------------------------------


def test_two_clones_applying_at_once_meet_one_lock(
    tmp_path: Path, paused_server: Server, procs: list[subprocess.Popen[str]]
) -> None:
    first, second = clone(tmp_path / "alice" / "manifests"), clone(tmp_path / "bob" / "checkout")
    writer = start_writer(first, paused_server, procs)

    rc, out, err = finish(imagesync(*apply_args(second, paused_server.url), cwd=second.parent))
    assert writer.poll() is None, "the second apply ended only because the first one had finished"
    assert rc == 1, (out, err)
    assert f"lock '{PROD_LOCK}' is held by" in err and f"pid {writer.pid}" in err and "'apply'" in err, err
    assert "--lock-timeout" in err and "Traceback" not in err

    paused_server.resume()
    rc, out, err = finish(writer)
    assert rc == 0 and "Apply complete: 17 created." in out, (out, err)
    assert sum(paused_server.writes().values()) == 17  # exactly one apply wrote, once
    assert (default_lock_dir() / "golden-images--111111111111--us-east-1.lock").exists()
    assert not (first / ".imagesync").exists() and not (second / ".imagesync").exists()


def test_the_second_clone_waits_with_lock_timeout(
    tmp_path: Path, paused_server: Server, procs: list[subprocess.Popen[str]]
) -> None:
    first, second = clone(tmp_path / "a"), clone(tmp_path / "b")
    writer = start_writer(first, paused_server, procs)
    with FileOpens(lock_file()) as opens:
        waiter = imagesync(*apply_args(second, paused_server.url, "--lock-timeout", "120"), cwd=tmp_path)
        procs.append(waiter)
        # Each attempt opens the lock file: a second open means the first one was refused.
        opens.wait_for(2, "the second apply has tried the held lock twice")
    assert waiter.poll() is None and writer.poll() is None

    paused_server.resume()
    rc, out, err = finish(writer)
    assert rc == 0 and "Apply complete: 17 created." in out, (out, err)
    rc, out, err = finish(waiter)
    assert rc == 0, (out, err)
    assert "No changes" in out, out  # it planned only after the first apply had finished
    assert sum(paused_server.writes().values()) == 17


def test_deleting_the_checkouts_state_does_not_let_a_second_writer_in(
    tmp_path: Path, paused_server: Server, procs: list[subprocess.Popen[str]]
) -> None:
    root = clone(tmp_path / "manifests")
    (root / ".imagesync" / "locks").mkdir(parents=True)  # whatever an older imagesync left there
    writer = start_writer(root, paused_server, procs)
    shutil.rmtree(root / ".imagesync")  # `git clean -fdx` mid-apply

    rc, out, err = finish(imagesync(*apply_args(root, paused_server.url), cwd=root))
    assert writer.poll() is None, "the second apply ended only because the first one had finished"
    assert rc == 1 and f"pid {writer.pid}" in err, (out, err)
    paused_server.resume()
    rc, out, err = finish(writer)
    assert rc == 0, (out, err)
    assert sum(paused_server.writes().values()) == 17


# -- imagesync unlock --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["golden-images/prod-use1", "golden-images", "golden-images/1111/us-east-1", "a/111111111111/us-east-1/x", ""],
)
def test_unlock_of_a_malformed_id_exits_1_naming_the_form(tmp_path: Path, bad: str) -> None:
    root = clone(tmp_path / "m")
    # Were anything contacted, this lock table would be: the id is refused before that.
    (root / "imagesync.yaml").write_text(
        (root / "imagesync.yaml").read_text().replace("backend: file", "backend: dynamodb\n  table: locks")
    )
    env = {**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "imagesync", "unlock", bad, "--dir", str(root)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"malformed lock id {bad!r}" in done.stderr and "PROJECT/ACCOUNT/REGION" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_unlock_keeps_a_live_file_lock_and_releases_it_once_the_holder_is_gone(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, PROD_LOCK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    procs.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

    def unlock_cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imagesync", "unlock", PROD_LOCK],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )

    refused = unlock_cli()
    assert refused.returncode == 1 and "still running" in refused.stderr, (refused.stdout, refused.stderr)
    assert f"pid {holder.pid}" in refused.stderr
    assert holder.poll() is None

    holder.kill()
    holder.wait(timeout=10)
    assert holder.stdin is not None
    holder.stdin.close()
    released = unlock_cli()
    assert released.returncode == 0, released.stderr
    assert f"released {PROD_LOCK}" in released.stdout and f"pid {holder.pid}" in released.stdout
    with FileLock(default_lock_dir(), PROD_LOCK).held("test") as info:  # free now
        assert info.pid == os.getpid()


def test_unlock_with_dir_uses_the_manifests_lock_path(tmp_path: Path) -> None:
    root = clone(tmp_path / "m")
    (root / "imagesync.yaml").write_text(
        (root / "imagesync.yaml").read_text().replace("backend: file", "backend: file\n  path: state/locks")
    )
    lock = FileLock(root / "state" / "locks", PROD_LOCK)
    lock.acquire("apply")
    lock.release()
    lock.path.write_text('{"id": "x", "who": "gone@box", "pid": 1, "operation": "apply", "created": "t"}')
    rc, out, err = _run_cli(["unlock", PROD_LOCK, "--dir", str(root)])
    assert rc == 0 and "held by gone@box" in out, (out, err)
    assert not lock.path.exists()


# -- unlock of the remote backends, through the CLI (in-process: moto lives in this process) -----


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli_main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def remote_root(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, Path, Any]]:
    backend = request.param
    root = clone(tmp_path / "m")
    settings = {
        "dynamodb": "backend: dynamodb\n  table: locks\n  region: us-east-1",
        "s3": "backend: s3\n  bucket: lock-bucket\n  key: team/locks\n  region: us-east-1",
    }[backend]
    (root / "imagesync.yaml").write_text((root / "imagesync.yaml").read_text().replace("backend: file", settings))
    with mock_aws():
        if backend == "dynamodb":
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="locks",
                KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        else:
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket="lock-bucket")
        yield backend, root, client
        stop_heartbeats()


def _remote_lock(backend: str, client: Any, **timing: Any) -> DynamoDBLock | S3Lock:
    if backend == "dynamodb":
        return DynamoDBLock(client, "locks", PROD_LOCK, **timing)
    return S3Lock(client, "lock-bucket", PROD_LOCK, "team/locks", **timing)


@pytest.mark.parametrize("remote_root", ["dynamodb", "s3"], indirect=True)
def test_unlock_cli_refuses_a_live_remote_holder_and_releases_a_stale_one(remote_root: tuple[str, Path, Any]) -> None:
    backend, root, client = remote_root
    # A heartbeat now and then, not every few milliseconds: moto's in-process S3 can hand a reader a
    # closed body when a write replaces the object mid-read, which real S3 never does.
    live = _remote_lock(backend, client, heartbeat_interval=2.0)
    live.acquire("apply")
    try:
        rc, out, err = _run_cli(["unlock", PROD_LOCK, "--dir", str(root)])
        assert rc == 1 and "still running" in err and f"pid {os.getpid()}" in err, (out, err)
        assert _remote_lock(backend, client)._read() is not None
    finally:
        live.release()

    # A holder that died: its heartbeat stopped long ago (the clock says so, 5 minutes on).
    dead = _remote_lock(backend, client, clock=lambda: time.time() - 300, heartbeat_interval=3600)
    dead.acquire("apply")
    dead._heartbeat.stop()  # type: ignore[union-attr]  # as if the process was SIGKILLed
    rc, out, err = _run_cli(["unlock", PROD_LOCK, "--dir", str(root)])
    assert rc == 0 and f"released {PROD_LOCK}" in out, (out, err)
    assert _remote_lock(backend, client)._read() is None


# -- CI with a file lock against real AWS ------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "sandboxed", "warned"),
    [("true", False, True), ("", False, False), ("true", True, False)],
)
def test_file_lock_in_ci_against_aws_warns(
    tmp_path: Path, procs: list[subprocess.Popen[str]], ci: str, sandboxed: bool, warned: bool
) -> None:
    server = Server()
    procs.append(server.proc)
    root = clone(tmp_path / "m")
    # --endpoint-url is how imagesync talks to "real AWS" here: the full credential path, not sandbox mode.
    where = ["--sandbox", server.url] if sandboxed else ["--endpoint-url", server.url, "--region", "us-east-1"]
    # STS is the sandbox's too (it answers GetCallerIdentity for the access key's account): nothing
    # reaches real AWS.
    env = {**os.environ, "CI": ci, "AWS_ACCESS_KEY_ID": "111111111111", "AWS_ENDPOINT_URL_STS": server.url}
    done = subprocess.run(
        [sys.executable, "-m", "imagesync", "apply", str(root), *where, "--auto-approve", "--target", "prod-use1",
         "--log-format", "json"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    hits = [e for e in events if e.get("event") == "file lock in CI"]
    assert done.returncode == 0 and "Apply complete: 17 created." in done.stdout, (done.stdout, done.stderr)
    assert bool(hits) == warned, done.stderr
    if warned:
        assert hits[0]["level"] == "warning" and "dynamodb" in hits[0]["hint"] and "s3" in hits[0]["hint"]
