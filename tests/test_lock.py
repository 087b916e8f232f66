"""Locking: one writer per account and region, with file (flock), DynamoDB and S3 backends, and `unlock`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imagesync import lock as lock_module
from imagesync.errors import UserError
from imagesync.lock import (
    DynamoDBLock,
    FileLock,
    LockHeld,
    LockInfo,
    S3Lock,
    default_lock_dir,
    lock_id,
    make_lock,
    parse_lock_id,
    unlock,
)
from support import moto_lock_store, stop_heartbeats, wait_until

LOCK_ID = lock_id("shop", "111111111111", "us-east-1")
LOCK_FILE = "shop--111111111111--us-east-1.lock"
TABLE = "imagesync-locks"

# Runs in a separate process: takes the lock, says so, then holds it until its stdin closes and
# exits without releasing (process exit is what drops an flock).
HOLDER = """
import sys
from pathlib import Path
from imagesync.lock import FileLock
FileLock(Path(sys.argv[1]), sys.argv[2]).acquire(sys.argv[3])
print("held", flush=True)
sys.stdin.read()
"""


class FakeTime:
    """Stands in for the `time` module inside imagesync.lock: monotonic time moves only by the
    sleeps the lock asks for, which are recorded, and `on_sleep` runs at each one (to release a
    holder exactly while the acquirer waits). The wall clock stays real: lock records carry it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.on_sleep()


@pytest.fixture
def lock_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(lock_module, "time", fake)
    return fake


@pytest.fixture
def spawn_holder(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def spawn(operation: str = "apply") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "locks"), LOCK_ID, operation],
            stdin=subprocess.PIPE,
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
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()


# -- file lock ---------------------------------------------------------------------------------


def test_lock_id_and_info_round_trip() -> None:
    assert LOCK_ID == "shop/111111111111/us-east-1"
    info = LockInfo(id=LOCK_ID, who="ann@box", pid=42, operation="apply", created="2024-05-01T10:00:00Z")
    assert LockInfo.from_json(info.to_json()) == info
    with pytest.raises(ValueError):
        LockInfo.from_json('{"id": "x"}')


def test_file_lock_acquire_and_release(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "locks"
    lock = FileLock(directory, LOCK_ID)
    info = lock.acquire("apply")
    assert directory.is_dir() and (directory.stat().st_mode & 0o777) == 0o700
    assert lock.path == directory / LOCK_FILE
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


def test_second_process_fails_fast_naming_the_holder(tmp_path: Path, spawn_holder: Any, lock_time: FakeTime) -> None:
    holder = spawn_holder("apply")
    with pytest.raises(LockHeld) as caught:
        FileLock(tmp_path / "locks", LOCK_ID).acquire("apply")
    assert lock_time.sleeps == []  # one attempt, no waiting
    message = str(caught.value)
    assert f"pid {holder.pid}" in message and "'apply'" in message
    assert f"imagesync unlock {LOCK_ID}" in message
    assert caught.value.holder is not None and caught.value.holder.pid == holder.pid
    assert caught.value.exit_code == 1


def test_timeout_waits_for_the_holder_to_exit(tmp_path: Path, spawn_holder: Any, lock_time: FakeTime) -> None:
    holder = spawn_holder("apply")

    def holder_exits() -> None:  # while the acquirer waits after its first refusal
        if holder.poll() is None:
            holder.stdin.close()
            holder.wait(timeout=30)

    lock_time.on_sleep = holder_exits
    with FileLock(tmp_path / "locks", LOCK_ID).held("apply", timeout=10, poll=0.05) as info:
        assert info.pid == os.getpid()
    assert lock_time.sleeps == [0.05]  # refused once while the holder ran, taken once it had exited
    assert holder.returncode == 0


def test_timeout_runs_out(tmp_path: Path, spawn_holder: Any, lock_time: FakeTime) -> None:
    holder = spawn_holder("apply")
    with pytest.raises(LockHeld, match=f"pid {holder.pid}") as caught:
        FileLock(tmp_path / "locks", LOCK_ID).acquire("apply", timeout=0.3, poll=0.05)
    # It polled every `poll` seconds for the whole timeout, then gave up naming the holder.
    assert len(lock_time.sleeps) >= 6 and max(lock_time.sleeps) <= 0.05
    assert sum(lock_time.sleeps) == pytest.approx(0.3)
    assert "waiting 0.3s" in str(caught.value)
    assert holder.poll() is None


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
    path = tmp_path / "locks" / LOCK_FILE
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
    assert (tmp_path / "locks" / LOCK_FILE).exists()
    with pytest.raises(LockHeld):
        FileLock(tmp_path / "locks", LOCK_ID).acquire("apply")


def test_acquire_after_unlock_removed_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    first = FileLock(directory, LOCK_ID)
    first.acquire("apply")
    first.release()
    assert unlock(LOCK_ID, directory=directory) is None  # released file is empty: no holder
    with FileLock(directory, LOCK_ID).held("apply"):
        assert (directory / LOCK_FILE).exists()


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
        stop_heartbeats()


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


def test_dynamodb_timeout_polls_then_fails(dynamodb: Any, lock_time: FakeTime) -> None:
    _foreign_holder(dynamodb)
    with pytest.raises(LockHeld, match="pid 4242") as caught:
        DynamoDBLock(dynamodb, TABLE, LOCK_ID).acquire("apply", timeout=0.3, poll=0.05)
    assert len(lock_time.sleeps) >= 6 and max(lock_time.sleeps) <= 0.05
    assert sum(lock_time.sleeps) == pytest.approx(0.3)
    assert "waiting 0.3s" in str(caught.value)
    assert _item(dynamodb)["who"]["S"] == "bob@ci-runner"  # type: ignore[index]


def test_dynamodb_timeout_succeeds_once_released(dynamodb: Any, lock_time: FakeTime) -> None:
    _foreign_holder(dynamodb)
    lock_time.on_sleep = lambda: dynamodb.delete_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}})
    info = DynamoDBLock(dynamodb, TABLE, LOCK_ID).acquire("apply", timeout=5, poll=0.05)
    assert lock_time.sleeps == [0.05]  # refused once, taken on the attempt after the release
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
    dynamodb.delete_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}})  # someone breaks our lock...
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
    with pytest.raises(UserError, match="table"):
        make_lock({"backend": "dynamodb"}, LOCK_ID, directory=tmp_path)
    with pytest.raises(UserError, match="bucket"):
        make_lock({"backend": "s3"}, LOCK_ID, directory=tmp_path)
    with pytest.raises(UserError, match="unknown lock backend 'redis'; use file, dynamodb or s3"):
        make_lock({"backend": "redis"}, LOCK_ID, directory=tmp_path)


# -- lock ids and where file locks live --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("golden-images/111111111111/us-east-1", ("golden-images", "111111111111", "us-east-1")),
        ("p1/000000000000/us-gov-west-1", ("p1", "000000000000", "us-gov-west-1")),
        ("a--b/123456789012/eu-west-1", ("a--b", "123456789012", "eu-west-1")),
    ],
)
def test_parse_lock_id_accepts_project_account_region(text: str, parts: tuple[str, str, str]) -> None:
    assert parse_lock_id(text) == parts
    assert lock_id(*parts) == text


@pytest.mark.parametrize(
    "text",
    [
        "golden-images/prod-use1",  # the old project/target form
        "golden-images/11111111111/us-east-1",  # 11 digits
        "golden-images/111111111111/US-EAST-1",
        "golden-images/111111111111/us-east-1/extra",
        "/111111111111/us-east-1",
        "Golden/111111111111/us-east-1",
        "../../etc/111111111111/us-east-1",
        "",
    ],
)
def test_parse_lock_id_rejects_anything_else(text: str) -> None:
    with pytest.raises(UserError, match=r"expected PROJECT/ACCOUNT/REGION.*golden-images/111111111111/us-east-1"):
        parse_lock_id(text)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"XDG_STATE_HOME": "/srv/state", "HOME": "/home/ann"}, "/srv/state/imagesync/locks"),
        ({"HOME": "/home/ann"}, "/home/ann/.local/state/imagesync/locks"),
        ({"XDG_STATE_HOME": "", "HOME": "/home/ann"}, "/home/ann/.local/state/imagesync/locks"),
        ({"XDG_STATE_HOME": "relative/state", "HOME": "/home/ann"}, "/home/ann/.local/state/imagesync/locks"),
    ],
)
def test_default_lock_dir_follows_xdg_state_home(environ: dict[str, str], expected: str) -> None:
    assert default_lock_dir(environ) == Path(expected)


def test_the_suite_keeps_locks_out_of_the_real_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert Path(os.environ["XDG_STATE_HOME"]).is_relative_to(tmp_path_factory.getbasetemp())
    assert default_lock_dir().is_relative_to(tmp_path_factory.getbasetemp())


# -- DynamoDB and S3: heartbeats, contention and unlock, one table for both -------------------

BUCKET = "imagesync-locks"
PREFIX = "state/locks"
FAST = {"heartbeat_interval": 0.05, "expiry": 60.0}


class Remote:
    """One remote backend under moto: build locks, plant a foreign holder, read the raw record."""

    def __init__(self, backend: str, client: Any):
        self.backend = backend
        self.client = client

    def lock(self, **timing: Any) -> DynamoDBLock | S3Lock:
        if self.backend == "dynamodb":
            return DynamoDBLock(self.client, TABLE, LOCK_ID, **timing)
        return S3Lock(self.client, BUCKET, LOCK_ID, PREFIX, **timing)

    def unlock(self, **kwargs: Any) -> LockInfo | None:
        if self.backend == "dynamodb":
            return unlock(LOCK_ID, dynamodb_client=self.client, table=TABLE, **kwargs)
        return unlock(LOCK_ID, s3_client=self.client, bucket=BUCKET, prefix=PREFIX, **kwargs)

    def record(self) -> dict[str, Any] | None:
        """The stored record as plain strings, read behind imagesync's back."""
        if self.backend == "dynamodb":
            item = self.client.get_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}}, ConsistentRead=True)
            found = item.get("Item")
            return {k: next(iter(v.values())) for k, v in found.items()} if found else None
        try:
            body = self.client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{LOCK_ID}.json")["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return {k: str(v) for k, v in json.loads(body).items()}

    def plant(self, heartbeat_age: float | None, who: str = "bob@ci-runner", pid: int = 4242) -> None:
        """A holder on another machine whose last heartbeat was `heartbeat_age` seconds ago."""
        fields = {"who": who, "pid": str(pid), "operation": "apply", "created": "2024-05-01T10:00:00Z"}
        if heartbeat_age is not None:
            beat = datetime.now(UTC) - timedelta(seconds=heartbeat_age)
            fields["heartbeat"] = beat.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self.backend == "dynamodb":
            item: dict[str, Any] = {k: {"S": v} for k, v in fields.items()}
            item["pid"] = {"N": str(pid)}
            self.client.put_item(TableName=TABLE, Item={"LockID": {"S": LOCK_ID}, **item})
        else:
            data = {"id": LOCK_ID, **fields, "pid": pid}
            self.client.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{LOCK_ID}.json", Body=json.dumps(data).encode())


@contextlib.contextmanager
def _moto_remote(backend: str) -> Iterator[Remote]:
    with moto_lock_store(backend) as client:
        yield Remote(backend, client)


@pytest.fixture(params=["dynamodb", "s3"])
def remote(request: pytest.FixtureRequest) -> Iterator[Remote]:
    with _moto_remote(request.param) as backend:
        yield backend


@pytest.fixture
def s3() -> Iterator[Remote]:
    with _moto_remote("s3") as backend:
        yield backend


def test_remote_acquire_records_the_holder_and_release_removes_it(remote: Remote) -> None:
    with remote.lock(**FAST).held("apply") as info:
        record = remote.record()
        assert record is not None
        assert record["who"] == info.who and record["pid"] == str(info.pid) and record["operation"] == "apply"
        assert record["created"] == info.created and record["heartbeat"].endswith("Z")
    assert remote.record() is None


def test_remote_second_acquire_fails_fast_naming_a_live_holder(remote: Remote) -> None:
    first = remote.lock(**FAST)
    first.acquire("apply")
    try:
        with pytest.raises(LockHeld) as caught:
            remote.lock(**FAST).acquire("plan")
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message and "'apply'" in message
        assert "alive" in message and "--lock-timeout" in message
        assert caught.value.exit_code == 1
    finally:
        first.release()


def test_remote_timeout_waits_for_the_holder(remote: Remote, lock_time: FakeTime) -> None:
    first = remote.lock(**FAST)
    # Another operation: a record that matches ours in every field (same process, same second) is
    # taken for our own put whose response was lost, and adopted without waiting.
    first.acquire("plan")
    lock_time.on_sleep = first.release
    with remote.lock(**FAST).held("apply", timeout=10, poll=0.05) as info:
        assert remote.record()["created"] == info.created  # type: ignore[index]
    assert lock_time.sleeps == [0.05]  # refused once while `first` held it, taken after its release
    assert remote.record() is None


def test_remote_lock_of_the_same_process_second_and_operation_is_still_someone_elses(
    remote: Remote, lock_time: FakeTime
) -> None:
    """Two acquisitions alike in holder, pid, operation and second differ by their token: the
    second waits for the first instead of adopting its record as its own lost write."""
    first = remote.lock(**FAST)
    first_info = first.acquire("apply")
    lock_time.on_sleep = first.release
    with remote.lock(**FAST).held("apply", timeout=10, poll=0.05) as info:
        assert (info.who, info.pid, info.operation, info.created) == (
            first_info.who, first_info.pid, first_info.operation, first_info.created
        )
        assert info.token != first_info.token and remote.record()["token"] == info.token  # type: ignore[index]
    assert lock_time.sleeps == [0.05]  # refused while `first` held it
    assert remote.record() is None


def test_remote_heartbeat_is_refreshed_while_held_and_stops_on_release(remote: Remote) -> None:
    lock = remote.lock(**FAST)
    beating = f"imagesync-lock-heartbeat {LOCK_ID}"
    with lock.held("apply"):
        first = remote.record()["heartbeat"]  # type: ignore[index]
        wait_until(lambda: remote.record()["heartbeat"] != first, "the heartbeat is refreshed")  # type: ignore[index]
        seen = {remote.record()["heartbeat"]}  # type: ignore[index]
        wait_until(lambda: remote.record()["heartbeat"] not in seen, "the heartbeat is refreshed again")  # type: ignore[index]
        assert [t for t in threading.enumerate() if t.name == beating]
    assert remote.record() is None
    # Release joined the heartbeat thread: no beat can come later and bring the record back.
    assert [t for t in threading.enumerate() if t.name == beating] == []
    assert lock._heartbeat is None


@pytest.mark.parametrize("age", [0.0, 30.0, 59.0])
def test_remote_unlock_refuses_a_live_holder(remote: Remote, age: float) -> None:
    remote.plant(heartbeat_age=age)
    with pytest.raises(LockHeld, match="still running") as caught:
        remote.unlock()
    assert "bob@ci-runner (pid 4242)" in str(caught.value) and "60s" in str(caught.value)
    assert remote.record() is not None and remote.record()["who"] == "bob@ci-runner"  # type: ignore[index]


def test_remote_unlock_refuses_while_this_process_holds_it(remote: Remote) -> None:
    with remote.lock(**FAST).held("apply") as info:
        with pytest.raises(LockHeld, match="still running"):
            remote.unlock()
        assert remote.record()["created"] == info.created  # type: ignore[index]


@pytest.mark.parametrize("age", [61.0, 3600.0, None])
def test_remote_unlock_releases_a_stale_lock(remote: Remote, age: float | None) -> None:
    remote.plant(heartbeat_age=age)
    old = remote.unlock()
    assert old is not None and old.who == "bob@ci-runner" and old.pid == 4242 and old.operation == "apply"
    assert remote.record() is None
    assert remote.unlock() is None  # nothing left
    with remote.lock(**FAST).held("apply"):
        assert remote.record() is not None


def test_remote_unlock_uses_the_injected_expiry_and_clock(remote: Remote) -> None:
    remote.plant(heartbeat_age=5.0)
    with pytest.raises(LockHeld):
        remote.unlock(expiry=10.0)
    assert remote.unlock(expiry=10.0, clock=lambda: time.time() + 20.0) is not None
    assert remote.record() is None


def test_remote_fail_fast_on_a_stale_lock_says_it_is_stale(remote: Remote) -> None:
    remote.plant(heartbeat_age=600.0)
    with pytest.raises(LockHeld) as caught:
        remote.lock(**FAST).acquire("apply")
    message = str(caught.value)
    assert "last heartbeat was 600s ago" in message and "stale" in message
    assert f"`imagesync unlock {LOCK_ID}`" in message
    assert remote.record()["who"] == "bob@ci-runner"  # type: ignore[index]  # acquire never steals


def test_remote_release_after_a_broken_lock_leaves_the_new_holder(remote: Remote) -> None:
    mine = remote.lock(**FAST)
    mine.acquire("apply")
    remote.plant(heartbeat_age=0.0)  # broken behind our back, and another runner took it
    wait_until(lambda: mine._heartbeat is not None and mine._heartbeat.lost, "the heartbeat finds the lock lost")
    mine.release()
    record = remote.record()
    assert record is not None and record["who"] == "bob@ci-runner"


def test_s3_lock_key_and_bad_bucket(s3: Remote) -> None:
    remote = s3
    with remote.lock(**FAST).held("apply"):
        keys = [o["Key"] for o in remote.client.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert keys == [f"{PREFIX}/{LOCK_ID}.json"]
    with pytest.raises(UserError, match="lock bucket 'nope'.*does not exist.*NoSuchBucket"):
        S3Lock(remote.client, "nope", LOCK_ID).acquire("apply")


def test_make_lock_builds_an_s3_lock_from_config(s3: Remote, tmp_path: Path) -> None:
    remote = s3
    session = boto3.Session(region_name="us-east-1")
    config = {"backend": "s3", "bucket": BUCKET, "key": PREFIX, "region": "us-east-1"}
    lock = make_lock(config, LOCK_ID, directory=tmp_path, session=session, **FAST)
    assert isinstance(lock, S3Lock) and lock.key == f"{PREFIX}/{LOCK_ID}.json"
    with lock.held("apply"):
        assert remote.record() is not None
    default = make_lock({"backend": "s3", "bucket": BUCKET}, LOCK_ID, directory=tmp_path, session=session)
    assert isinstance(default, S3Lock) and default.key == f"imagesync/locks/{LOCK_ID}.json"
