"""Locking: one writer per target, with file (flock) and DynamoDB backends, and `unlock`."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imagesync.errors import UserError
from imagesync.lock import (
    DynamoDBLock,
    FileLock,
    LockHeld,
    LockInfo,
    lock_id,
    make_lock,
    unlock,
)

LOCK_ID = lock_id("shop", "prod")
TABLE = "imagesync-locks"

# Runs in a separate process: takes the lock, says so, then holds it for argv[4] seconds and exits
# without releasing (process exit is what drops an flock).
HOLDER = """
import sys, time
from pathlib import Path
from imagesync.lock import FileLock
FileLock(Path(sys.argv[1]), sys.argv[2]).acquire(sys.argv[3])
print("held", flush=True)
time.sleep(float(sys.argv[4]))
"""


@pytest.fixture
def spawn_holder(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def spawn(operation: str = "apply", hold: float = 30.0) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "locks"), LOCK_ID, operation, str(hold)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "held", proc.stderr.read() if proc.stderr else line
        return proc

    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


# -- file lock ---------------------------------------------------------------------------------


def test_lock_id_and_info_round_trip() -> None:
    assert LOCK_ID == "shop/prod"
    info = LockInfo(id=LOCK_ID, who="ann@box", pid=42, operation="apply", created="2024-05-01T10:00:00Z")
    assert LockInfo.from_json(info.to_json()) == info
    with pytest.raises(ValueError):
        LockInfo.from_json('{"id": "x"}')


def test_file_lock_acquire_and_release(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "locks"
    lock = FileLock(directory, LOCK_ID)
    info = lock.acquire("apply")
    assert directory.is_dir() and (directory.stat().st_mode & 0o777) == 0o700
    assert lock.path == directory / "shop--prod.lock"
    assert LockInfo.from_json(lock.path.read_text()) == info
    assert info.id == LOCK_ID and info.operation == "apply" and "@" in info.who
    assert info.created.endswith("Z")

    # A second FileLock on the same file is refused even in this process (flock is per open file).
    with pytest.raises(LockHeld):
        FileLock(directory, LOCK_ID).acquire("plan")

    lock.release()
    assert lock.path.read_text() == ""
    with FileLock(directory, LOCK_ID).held("plan") as again:
        assert again.operation == "plan"
    lock.release()  # releasing twice is harmless


def test_second_process_fails_fast_naming_the_holder(tmp_path: Path, spawn_holder: Any) -> None:
    holder = spawn_holder("apply")
    started = time.monotonic()
    with pytest.raises(LockHeld) as caught:
        FileLock(tmp_path / "locks", LOCK_ID).acquire("apply")
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert f"pid {holder.pid}" in message and "'apply'" in message
    assert f"imagesync unlock {LOCK_ID}" in message
    assert caught.value.holder is not None and caught.value.holder.pid == holder.pid
    assert caught.value.exit_code == 1


def test_timeout_waits_for_the_holder_to_exit(tmp_path: Path, spawn_holder: Any) -> None:
    spawn_holder("apply", hold=0.5)
    started = time.monotonic()
    with FileLock(tmp_path / "locks", LOCK_ID).held("apply", timeout=10, poll=0.05) as info:
        assert info.pid != 0
    assert 0.2 < time.monotonic() - started < 5


def test_timeout_runs_out(tmp_path: Path, spawn_holder: Any) -> None:
    holder = spawn_holder("apply")
    started = time.monotonic()
    with pytest.raises(LockHeld, match=f"pid {holder.pid}") as caught:
        FileLock(tmp_path / "locks", LOCK_ID).acquire("apply", timeout=0.3, poll=0.05)
    assert time.monotonic() - started >= 0.3
    assert "waiting 0.3s" in str(caught.value)


def test_sigkilled_holder_leaves_no_stuck_lock(tmp_path: Path, spawn_holder: Any) -> None:
    holder = spawn_holder("apply")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=5)
    info = FileLock(tmp_path / "locks", LOCK_ID).acquire("apply")  # fail-fast: no timeout
    assert info.pid != holder.pid


def test_unlock_of_a_dead_holder_returns_its_info(tmp_path: Path, spawn_holder: Any) -> None:
    holder = spawn_holder("apply")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=5)
    path = tmp_path / "locks" / "shop--prod.lock"
    assert path.exists()
    old = unlock(LOCK_ID, directory=tmp_path / "locks")
    assert old is not None and old.pid == holder.pid and old.operation == "apply"
    assert not path.exists()
    assert unlock(LOCK_ID, directory=tmp_path / "locks") is None  # nothing left to unlock
    FileLock(tmp_path / "locks", LOCK_ID).acquire("apply")


def test_unlock_refuses_while_the_holder_runs(tmp_path: Path, spawn_holder: Any) -> None:
    holder = spawn_holder("apply")
    with pytest.raises(LockHeld, match="still running") as caught:
        unlock(LOCK_ID, directory=tmp_path / "locks")
    assert f"pid {holder.pid}" in str(caught.value)
    assert (tmp_path / "locks" / "shop--prod.lock").exists()
    with pytest.raises(LockHeld):
        FileLock(tmp_path / "locks", LOCK_ID).acquire("apply")


def test_acquire_after_unlock_removed_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    first = FileLock(directory, LOCK_ID)
    first.acquire("apply")
    first.release()
    assert unlock(LOCK_ID, directory=directory) is None  # released file is empty: no holder
    with FileLock(directory, LOCK_ID).held("apply"):
        assert (directory / "shop--prod.lock").exists()


# -- DynamoDB lock -----------------------------------------------------------------------------


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def _item(client: Any) -> dict[str, Any] | None:
    return client.get_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}}).get("Item")


def _foreign_holder(client: Any, pid: int = 4242) -> None:
    client.put_item(
        TableName=TABLE,
        Item={
            "LockID": {"S": LOCK_ID},
            "who": {"S": "bob@ci-runner"},
            "pid": {"N": str(pid)},
            "operation": {"S": "apply"},
            "created": {"S": "2024-05-01T10:00:00Z"},
        },
    )


def test_dynamodb_acquire_and_release(dynamodb: Any) -> None:
    lock = DynamoDBLock(dynamodb, TABLE, LOCK_ID)
    info = lock.acquire("apply")
    item = _item(dynamodb)
    assert item is not None
    assert item["who"]["S"] == info.who and item["pid"]["N"] == str(info.pid)
    assert item["operation"]["S"] == "apply" and item["created"]["S"] == info.created
    lock.release()
    assert _item(dynamodb) is None
    with DynamoDBLock(dynamodb, TABLE, LOCK_ID).held("plan"):
        assert _item(dynamodb) is not None
    assert _item(dynamodb) is None


def test_dynamodb_second_acquire_fails_fast(dynamodb: Any) -> None:
    _foreign_holder(dynamodb)
    with pytest.raises(LockHeld) as caught:
        DynamoDBLock(dynamodb, TABLE, LOCK_ID).acquire("apply")
    message = str(caught.value)
    assert "bob@ci-runner" in message and "pid 4242" in message and "'apply'" in message
    assert "2024-05-01T10:00:00Z" in message and f"imagesync unlock {LOCK_ID}" in message


def test_dynamodb_timeout_polls_then_fails(dynamodb: Any) -> None:
    _foreign_holder(dynamodb)
    started = time.monotonic()
    with pytest.raises(LockHeld, match="pid 4242"):
        DynamoDBLock(dynamodb, TABLE, LOCK_ID).acquire("apply", timeout=0.3, poll=0.05)
    assert time.monotonic() - started >= 0.3


def test_dynamodb_timeout_succeeds_once_released(dynamodb: Any) -> None:
    _foreign_holder(dynamodb)
    releaser = threading.Timer(
        0.3, lambda: dynamodb.delete_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}})
    )
    releaser.start()
    try:
        info = DynamoDBLock(dynamodb, TABLE, LOCK_ID).acquire("apply", timeout=5, poll=0.05)
    finally:
        releaser.join()
    assert _item(dynamodb)["who"]["S"] == info.who  # type: ignore[index]


def test_dynamodb_unlock_returns_the_old_holder(dynamodb: Any) -> None:
    _foreign_holder(dynamodb)
    old = unlock(LOCK_ID, dynamodb_client=dynamodb, table=TABLE)
    assert old == LockInfo(
        id=LOCK_ID, who="bob@ci-runner", pid=4242, operation="apply", created="2024-05-01T10:00:00Z"
    )
    assert _item(dynamodb) is None
    assert unlock(LOCK_ID, dynamodb_client=dynamodb, table=TABLE) is None
    DynamoDBLock(dynamodb, TABLE, LOCK_ID).acquire("apply")


def test_dynamodb_release_leaves_someone_elses_lock(dynamodb: Any) -> None:
    mine = DynamoDBLock(dynamodb, TABLE, LOCK_ID)
    mine.acquire("apply")
    unlock(LOCK_ID, dynamodb_client=dynamodb, table=TABLE)  # someone breaks our lock...
    _foreign_holder(dynamodb)  # ...and another runner takes it
    mine.release()
    item = _item(dynamodb)
    assert item is not None and item["who"]["S"] == "bob@ci-runner"


def test_dynamodb_missing_table_is_a_user_error(dynamodb: Any) -> None:
    with pytest.raises(UserError, match="does not exist"):
        DynamoDBLock(dynamodb, "no-such-table", LOCK_ID).acquire("apply")


# -- make_lock ---------------------------------------------------------------------------------


def test_make_lock_picks_the_backend(tmp_path: Path, dynamodb: Any) -> None:
    assert isinstance(make_lock({}, LOCK_ID, directory=tmp_path), FileLock)
    assert isinstance(make_lock({"backend": "file"}, LOCK_ID, directory=tmp_path), FileLock)
    session = boto3.Session(region_name="us-east-1")
    lock = make_lock({"backend": "dynamodb", "table": TABLE}, LOCK_ID, directory=tmp_path, session=session)
    assert isinstance(lock, DynamoDBLock) and lock.table == TABLE
    with lock.held("apply"):
        assert _item(dynamodb) is not None
    assert isinstance(make_lock({"backend": "dynamodb", "table": TABLE}, LOCK_ID, directory=tmp_path), DynamoDBLock)


def test_make_lock_rejects_bad_configs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="s3 lock backend is not supported yet; use file or dynamodb"):
        make_lock({"backend": "s3"}, LOCK_ID, directory=tmp_path)
    with pytest.raises(UserError, match="table"):
        make_lock({"backend": "dynamodb"}, LOCK_ID, directory=tmp_path)
    with pytest.raises(UserError, match="unknown lock backend"):
        make_lock({"backend": "redis"}, LOCK_ID, directory=tmp_path)
