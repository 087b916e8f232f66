"""Lock paths that only races and failing stores reach: an unlock removing the lock file between an
acquirer's open and its flock, a flock or a holder-details write that fails, a reader landing
between a holder's flock and its write, a remote record released between our put and our read,
our own put committed with its response lost, releasing what was never taken, and an S3 store
that answers without ETags.

File races are staged at the exact system call with a Python audit hook (`fcntl.flock`,
`os.truncate` and `open` raise audit events before the call is made), which runs the other party
(a real `unlock`, a real rival `FileLock`, a holder writing its details) in that instant, or
fails the call as the kernel would; no thread or sleep decides the order. DynamoDB and S3 are
moto's; their races are botocore event handlers on the lock's own client.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from structlog.testing import capture_logs

from imagesync import lock as lock_module
from imagesync.aws import Backoff
from imagesync.errors import UserError
from imagesync.lock import DynamoDBLock, FileLock, LockHeld, LockInfo, S3Lock, lock_id, lock_path, unlock
from support import moto_lock_store, wait_until

LOCK_ID = lock_id("shop", "111111111111", "us-east-1")
TABLE = "imagesync-locks"
BUCKET = "imagesync-locks"
S3_KEY = f"imagesync/locks/{LOCK_ID}.json"
NO_WAIT = Backoff(attempts=3, sleep=lambda _seconds: None)
TRY_LOCK = fcntl.LOCK_EX | fcntl.LOCK_NB


# -- staging a race at one system call --------------------------------------------------------------

# Audit hooks cannot be removed, so one dispatcher is installed for the session and does nothing
# unless a test has armed it: (event, predicate on the event's arguments, what happens then).
_ARMED: list[tuple[str, Callable[[tuple[Any, ...]], bool], Callable[[tuple[Any, ...]], None]]] = []
_WATCHED: list[tuple[str, Callable[[tuple[Any, ...]], bool], list[tuple[Any, ...]]]] = []
_INSTALLED = False


def _dispatch(event: str, args: tuple[Any, ...]) -> None:
    if not (_ARMED or _WATCHED) or event not in ("fcntl.flock", "os.truncate", "open"):
        return
    for wanted, matches, seen in _WATCHED:
        if wanted == event and matches(args):
            seen.append(args)
    for i, (wanted, matches, action) in enumerate(_ARMED):
        if wanted == event and matches(args):
            del _ARMED[i]  # one shot, and disarmed before acting: the action may make the same call
            action(args)
            return


@pytest.fixture
def at_call() -> Iterator[Callable[..., None]]:
    """`at_call(event, matches, action)`: run `action` once, just before the first call whose audit
    event and arguments match; an exception it raises is what that call raises."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_dispatch)
        _INSTALLED = True

    def arm(event: str, matches: Callable[[tuple[Any, ...]], bool], action: Callable[[tuple[Any, ...]], None]) -> None:
        _ARMED.append((event, matches, action))

    try:
        yield arm
    finally:
        left = list(_ARMED)
        _ARMED.clear()
    assert not left, f"staged calls never happened: {[event for event, _, _ in left]}"


@pytest.fixture
def watch() -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    """`watch(event, matches)`: the arguments of every matching call from now on, in order."""
    global _INSTALLED
    if not _INSTALLED:
        sys.addaudithook(_dispatch)
        _INSTALLED = True

    def start(event: str, matches: Callable[[tuple[Any, ...]], bool]) -> list[tuple[Any, ...]]:
        seen: list[tuple[Any, ...]] = []
        _WATCHED.append((event, matches, seen))
        return seen

    try:
        yield start
    finally:
        _WATCHED.clear()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def raise_errno(code: int) -> Callable[[tuple[Any, ...]], None]:
    def action(_args: tuple[Any, ...]) -> None:
        raise OSError(code, os.strerror(code))

    return action


# -- file locks ---------------------------------------------------------------------------------------


def test_a_file_lock_needs_an_id(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="a lock id must not be empty"):
        FileLock(tmp_path / "locks", "")
    assert not (tmp_path / "locks").exists()


def test_an_unlock_between_open_and_flock_sends_the_acquirer_to_the_fresh_file(
    tmp_path: Path, at_call: Callable[..., None], watch: Callable[..., list[tuple[Any, ...]]]
) -> None:
    directory = tmp_path / "locks"
    path = lock_path(directory, LOCK_ID)
    # What a holder that crashed leaves: its details, and no flock (the kernel dropped it).
    directory.mkdir()
    path.write_text(LockInfo(LOCK_ID, "bob@ci", 999, "crashed run", "2024-05-01T10:00:00Z").to_json())
    unlocked: list[LockInfo | None] = []

    def stale_lock_is_unlocked(_args: tuple[Any, ...]) -> None:
        unlocked.append(unlock(LOCK_ID, directory=directory))

    # Our open has happened; before our flock, someone runs `imagesync unlock` on the stale lock.
    at_call("fcntl.flock", lambda args: args[1] == TRY_LOCK, stale_lock_is_unlocked)
    flocks = watch("fcntl.flock", lambda args: args[1] == TRY_LOCK)

    acquirer = FileLock(directory, LOCK_ID)
    info = acquirer.acquire("apply")
    try:
        [gone] = unlocked
        assert gone is not None and gone.operation == "crashed run"
        # Three flocks: ours on the removed file, unlock's, ours on the fresh file. The first was
        # dropped; the lock is held on the file everyone else opens.
        assert len(flocks) == 3
        assert LockInfo.from_json(path.read_text()) == info
        with pytest.raises(LockHeld, match="running 'apply'"):
            FileLock(directory, LOCK_ID).acquire("second")
    finally:
        acquirer.release()


def test_a_rival_that_takes_the_fresh_file_first_holds_the_lock(tmp_path: Path, at_call: Callable[..., None]) -> None:
    directory = tmp_path / "locks"
    first = FileLock(directory, LOCK_ID)
    first.acquire("finished run")
    first.release()
    rival = FileLock(directory, LOCK_ID)

    def unlock_then_rival_acquires(_args: tuple[Any, ...]) -> None:
        unlock(LOCK_ID, directory=directory)
        rival.acquire("rival")

    at_call("fcntl.flock", lambda args: args[1] == TRY_LOCK, unlock_then_rival_acquires)
    try:
        # Our flock lands on the removed inode and would exclude nobody: we start over on the
        # rival's file, find it held, and say who holds it.
        with pytest.raises(LockHeld, match="running 'rival'"):
            FileLock(directory, LOCK_ID).acquire("apply")
        assert rival.info is not None
        assert LockInfo.from_json(lock_path(directory, LOCK_ID).read_text()) == rival.info
    finally:
        rival.release()


@pytest.mark.parametrize(
    ("event", "code", "where"),
    [
        ("fcntl.flock", errno.ENOLCK, "taking the flock (no locks available, as on some NFS mounts)"),
        ("os.truncate", errno.ENOSPC, "writing the holder's details (disk full)"),
    ],
    ids=["flock-fails", "write-fails"],
)
def test_a_failing_lock_file_call_raises_and_leaves_nothing_held(
    tmp_path: Path, at_call: Callable[..., None], event: str, code: int, where: str
) -> None:
    directory = tmp_path / "locks"
    before = open_fds()
    at_call(event, lambda args: event != "fcntl.flock" or args[1] == TRY_LOCK, raise_errno(code))

    failing = FileLock(directory, LOCK_ID)
    with pytest.raises(OSError) as caught:
        failing.acquire("apply")
    assert caught.value.errno == code, where
    assert open_fds() == before  # the lock file's descriptor was closed
    assert failing.info is None
    # Nothing is left holding the flock: the next run takes the lock.
    with FileLock(directory, LOCK_ID).held("next") as info:
        assert info.operation == "next"


def test_a_reader_between_the_holders_flock_and_its_write_still_names_the_holder(
    tmp_path: Path, at_call: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The grace only bounds a hang here: the holder writes on the reader's second look.
    monkeypatch.setattr(lock_module, "_HOLDER_READ_GRACE", 60.0)
    directory = tmp_path / "locks"
    directory.mkdir()
    path = lock_path(directory, LOCK_ID)
    holder_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder_fd, fcntl.LOCK_EX)  # the holder has the flock, its details not yet written
        holder = LockInfo("shop", "alice@laptop", 4242, "apply", "2024-05-01T10:00:00Z")
        reads = []

        def read_look(args: tuple[Any, ...]) -> bool:
            return os.fspath(args[0]) == str(path) and args[1] == "r"  # open(path, "rb")

        def second_look(_args: tuple[Any, ...]) -> None:
            reads.append("second")
            os.pwrite(holder_fd, holder.to_json().encode() + b"\n", 0)

        at_call("open", read_look, lambda _args: reads.append("first"))
        at_call("open", read_look, second_look)
        with pytest.raises(LockHeld) as caught:
            FileLock(directory, LOCK_ID).acquire("apply")
        assert reads == ["first", "second"]  # it looked, found nothing, waited, looked again
        assert caught.value.holder == holder
        assert "alice@laptop (pid 4242)" in str(caught.value)
    finally:
        os.close(holder_fd)


def test_a_held_lock_whose_file_was_removed_by_hand_is_still_refused_without_a_holder(
    tmp_path: Path, at_call: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock_module, "_HOLDER_READ_GRACE", 0.0)  # one look at the details, no waiting
    directory = tmp_path / "locks"
    path = lock_path(directory, LOCK_ID)
    holder = FileLock(directory, LOCK_ID)
    holder.acquire("apply")
    try:
        # Refused by the flock; then, before the refusal reads who holds it, someone `rm`s the file.
        at_call("open", lambda args: os.fspath(args[0]) == str(path) and args[1] == "r", lambda _: path.unlink())
        with pytest.raises(LockHeld, match="another process \\(its details are not recorded\\)") as caught:
            FileLock(directory, LOCK_ID).acquire("second")
        assert caught.value.holder is None
    finally:
        holder.release()


def test_unlock_of_a_foreign_lock_file_removes_it_and_names_nobody(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    directory.mkdir()
    path = lock_path(directory, LOCK_ID)
    path.write_text("not json at all\n")
    assert unlock(LOCK_ID, directory=directory) is None
    assert not path.exists()


# -- DynamoDB and S3 ------------------------------------------------------------------------------------


store = moto_lock_store  # a moto table or bucket named TABLE / BUCKET


def other_client(backend: str) -> Any:
    """Another party's client on the same (moto) store, without our hooks."""
    return boto3.client(backend, region_name="us-east-1")


def make(backend: str, client: Any, **timing: Any) -> DynamoDBLock | S3Lock:
    if backend == "dynamodb":
        return DynamoDBLock(client, TABLE, LOCK_ID, backoff=NO_WAIT, **timing)
    return S3Lock(client, BUCKET, LOCK_ID, backoff=NO_WAIT, **timing)


def record(backend: str, client: Any) -> dict[str, Any] | None:
    if backend == "dynamodb":
        item = client.get_item(TableName=TABLE, Key={"LockID": {"S": LOCK_ID}}, ConsistentRead=True).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None
    try:
        return dict(json.loads(client.get_object(Bucket=BUCKET, Key=S3_KEY)["Body"].read()))
    except client.exceptions.NoSuchKey:
        return None


def count_calls(client: Any) -> dict[str, int]:
    calls: dict[str, int] = {}

    def seen(model: Any, **_: Any) -> None:
        calls[model.name] = calls.get(model.name, 0) + 1

    client.meta.events.register("before-call", seen)
    return calls


PUT = {"dynamodb": "PutItem", "s3": "PutObject"}
READ = {"dynamodb": "GetItem", "s3": "GetObject"}
SERVICE = {"dynamodb": "dynamodb", "s3": "s3"}


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_a_lock_released_between_our_put_and_our_read_is_taken(backend: str) -> None:
    with store(backend) as client:
        holder = make(backend, other_client(backend))
        holder.acquire("the other run")
        released: list[str] = []

        def release_after_refusal(http_response: Any, **_: Any) -> None:
            if http_response.status_code >= 300 and not released:
                holder.release()  # the other run ends right after refusing our put
                released.append("released")

        client.meta.events.register(f"after-call.{SERVICE[backend]}.{PUT[backend]}", release_after_refusal)
        calls = count_calls(client)
        ours = make(backend, client)
        info = ours.acquire("apply")
        try:
            assert released == ["released"]
            assert calls[PUT[backend]] == 2 and calls[READ[backend]] == 1  # refused, read nothing, put again
            stored = record(backend, client)
            assert stored is not None and stored["operation"] == "apply" and stored["created"] == info.created
        finally:
            ours.release()
        assert record(backend, client) is None


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_our_put_committed_with_its_response_lost_is_our_lock(backend: str) -> None:
    with store(backend) as client:
        lost: list[str] = []

        def drop_first_response(**_: Any) -> None:
            if not lost:
                lost.append("dropped")
                raise botocore.exceptions.ConnectionClosedError(endpoint_url="https://lock-store.example")

        client.meta.events.register(f"after-call.{SERVICE[backend]}.{PUT[backend]}", drop_first_response)
        calls = count_calls(client)
        lock = make(backend, client)
        info = lock.acquire("apply")
        assert lost == ["dropped"]
        # The retry met our own record (a failed condition), and the read showed it was ours.
        assert calls[PUT[backend]] == 2 and calls[READ[backend]] == 1
        stored = record(backend, client)
        assert stored is not None and stored["created"] == info.created and int(stored["pid"]) == os.getpid()
        # Adopted fully: release deletes it (S3 needs the ETag it read to do so).
        lock.release()
        assert record(backend, client) is None


@pytest.mark.parametrize("backend", ["dynamodb", "s3"])
def test_releasing_a_lock_never_taken_touches_nothing(backend: str) -> None:
    with store(backend) as client:
        someone = make(backend, other_client(backend))
        someone.acquire("the other run")
        calls = count_calls(client)
        make(backend, client).release()
        assert calls == {}
        stored = record(backend, client)
        assert stored is not None and stored["operation"] == "the other run"
        someone.release()


def test_an_s3_store_without_etags_never_gets_an_unconditional_write() -> None:
    with store("s3") as client, capture_logs() as events:

        def strip_etag(parsed: dict[str, Any], **_: Any) -> None:
            parsed.pop("ETag", None)  # a store that does not say which version it stored

        client.meta.events.register("after-call.s3.PutObject", strip_etag)
        calls = count_calls(client)
        lock = make("s3", client, heartbeat_interval=0.01)
        lock.acquire("apply")
        assert calls == {"PutObject": 1}
        # Without the ETag there is no If-Match to refresh with: the first beat gives the lock up
        # rather than overwrite a record it cannot prove is still its own.
        wait_until(lambda: any(e["event"] == "lock lost" for e in events), "the heartbeat gives the lock up")
        assert calls == {"PutObject": 1}
        lock.release()
        assert "DeleteObject" not in calls  # nor a blind delete: the record stays...
        stored = record("s3", client)
        assert stored is not None and stored["operation"] == "apply"
        # ...until it is stale, when `unlock` (which reads the ETag) breaks it.
        later = lock.clock() + 3600
        broken = unlock(LOCK_ID, s3_client=other_client("s3"), bucket=BUCKET, clock=lambda: later)
        assert broken is not None and broken.operation == "apply"
        assert record("s3", client) is None
