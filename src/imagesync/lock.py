"""One writer per target: the locks `apply` takes (through `api.target_locks`) and `imagesync unlock`
breaks (through `cli`).

A lock is named after what it protects, not after a checkout: `PROJECT/ACCOUNT/REGION`, e.g.
`golden-images/111111111111/us-east-1`. Two clones of the same manifests, or two targets writing the
same account and region, meet the same lock.

Three backends share one shape (`acquire`, `release`, `held`):

- `FileLock` (default) uses `flock(2)` on a file in a per-user state directory
  (`$XDG_STATE_HOME/imagesync/locks`, default `~/.local/state/imagesync/locks`), outside any checkout
  so `git clean` cannot remove it. The kernel drops the lock when the holder dies, however it dies;
  the JSON in the file only says *who* holds it.
- `DynamoDBLock` and `S3Lock` are for shared use (CI runners, several machines): a conditional write
  that only succeeds when no lock record exists. Nothing releases it if the holder dies, so a held
  lock carries a heartbeat that the holder refreshes every `HEARTBEAT_INTERVAL` seconds from a daemon
  thread. A heartbeat older than `HEARTBEAT_EXPIRY` seconds marks the lock as stale: `unlock` only
  releases stale locks, and a contended acquire says so. Heartbeats compare the holder's clock with
  the reader's, so machines sharing a lock need roughly synchronised clocks (NTP).

A lock that is taken fails fast with `LockHeld` naming the holder, unless a timeout is given, in
which case acquiring polls until the lock frees up or the timeout runs out.

The remote backends call DynamoDB and S3 through `aws.call`, like every Image Builder call: one
classification of errors, throttling and 5xx retried with backoff, one debug event per attempt.
A failed condition is an answer (someone else holds the lock, or it is no longer ours), never
retried; anything else is an error naming the table or bucket and the AWS error code.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imagesync.aws import CLIENT_CONFIG, ApiError, ApiUnavailable, Backoff, call
from imagesync.errors import TransientError, UserError
from imagesync.logs import get_logger

__all__ = [
    "HEARTBEAT_EXPIRY",
    "HEARTBEAT_INTERVAL",
    "LOCK_ID_FORM",
    "DynamoDBLock",
    "FileLock",
    "LockHeld",
    "LockInfo",
    "S3Lock",
    "default_lock_dir",
    "lock_id",
    "make_lock",
    "parse_lock_id",
    "unlock",
    "unlock_configured",
    "warn_if_unshared",
]

log = get_logger(__name__)

# A holder refreshes its heartbeat this often (seconds)...
HEARTBEAT_INTERVAL = 10.0
# ...and a heartbeat older than this means the holder is gone: six missed beats, so a slow network
# or a paused laptop does not get a live apply's lock broken.
HEARTBEAT_EXPIRY = 60.0

LOCK_ID_FORM = "PROJECT/ACCOUNT/REGION"
_LOCK_ID_EXAMPLE = "golden-images/111111111111/us-east-1"
_LOCK_ID = re.compile(r"([a-z0-9][a-z0-9-]{0,62})/([0-9]{12})/([a-z]{2}(?:-[a-z]+)+-[0-9]+)")
DEFAULT_S3_PREFIX = "imagesync/locks"

# How long a fail-fast acquire keeps re-reading an empty lock file: the holder takes the flock
# before it writes its details, so a reader can land in between and would otherwise report an
# anonymous holder.
_HOLDER_READ_GRACE = 0.5

# S3: two conditional writes to one key at once. Not retried by `aws.call` (it is an answer to a
# put racing ours), but a heartbeat or release that meets it may simply try again later.
_CONFLICT_CODES = frozenset({"ConditionalRequestConflict", "409"})


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock: recorded when it is taken, shown when someone else wants it.

    `heartbeat` (remote backends only) is when the holder last said it is alive; it changes while
    the lock is held, so it takes no part in comparing two LockInfos.
    """

    id: str
    who: str  # user@host
    pid: int
    operation: str
    created: str  # ISO-8601, UTC
    heartbeat: str = field(default="", compare=False)  # ISO-8601 with milliseconds, UTC
    # Random per acquisition: two acquisitions by one process within one second are still told
    # apart (without it, a second one took the first one's record for its own lost write).
    token: str = ""

    @classmethod
    def current(cls, lock_id: str, operation: str, now: float | None = None) -> LockInfo:
        """The details of this process taking `lock_id` for `operation` now."""
        moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
        return cls(
            id=lock_id,
            who=f"{_user()}@{socket.gethostname()}",
            pid=os.getpid(),
            operation=operation,
            created=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            token=uuid.uuid4().hex,
        )

    def to_json(self) -> str:
        data = asdict(self)
        if not self.heartbeat:
            del data["heartbeat"]
        if not self.token:
            del data["token"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """Parse what `to_json` wrote; ValueError when it is not that."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("lock info is not a JSON object")
        try:
            return cls(
                id=str(data["id"]),
                who=str(data["who"]),
                pid=int(data["pid"]),
                operation=str(data["operation"]),
                created=str(data["created"]),
                heartbeat=str(data.get("heartbeat") or ""),
                token=str(data.get("token") or ""),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"lock info is missing or has a bad field: {err}") from err

    def describe(self) -> str:
        return f"{self.who} (pid {self.pid}) running {self.operation!r} since {self.created}"

    def heartbeat_age(self, now: float) -> float | None:
        """Seconds since the last heartbeat; None when none is recorded (or it is unreadable)."""
        if not self.heartbeat:
            return None
        try:
            beat = datetime.fromisoformat(self.heartbeat)
        except ValueError:
            return None
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=UTC)
        return max(0.0, now - beat.timestamp())


class LockHeld(UserError):
    """Someone else holds the lock. Exit code 1, like every user-facing problem."""

    def __init__(self, lock_id: str, holder: LockInfo | None, *, waited: float = 0.0, hint: str | None = None):
        self.lock_id = lock_id
        self.holder = holder
        holder_text = holder.describe() if holder else "another process (its details are not recorded)"
        message = f"lock {lock_id!r} is held by {holder_text}"
        if waited > 0:
            message += f"; gave up after waiting {waited:g}s"
        if hint is None:
            hint = (
                "if that run is gone and the lock is stuck, release it with "
                f"`imagesync unlock {lock_id}`; to wait for it instead, pass --lock-timeout SECONDS"
            )
        super().__init__(f"{message}. {hint}")


class MalformedLockId(UserError):
    """`imagesync unlock` was given something that is not a lock id."""


def lock_id(project: str, account: str, region: str) -> str:
    """The id of the lock guarding `account` + `region` for `project`; what `imagesync unlock` takes."""
    text = f"{project}/{account}/{region}"
    parse_lock_id(text)
    return text


def parse_lock_id(text: str) -> tuple[str, str, str]:
    """(project, account, region) of a lock id; `MalformedLockId` naming the expected form otherwise."""
    match = _LOCK_ID.fullmatch(text)
    if match is None:
        raise MalformedLockId(
            f"malformed lock id {text!r}: expected {LOCK_ID_FORM} (a project name, a 12-digit account id "
            f"and a region), e.g. {_LOCK_ID_EXAMPLE}"
        )
    project, account, region = match.groups()
    return project, account, region


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/imagesync/locks`, or `~/.local/state/imagesync/locks`.

    Per user and outside every checkout: all clones on this machine meet the same lock, and
    `git clean -fdx` or `rm -rf .imagesync` cannot remove it. A relative XDG_STATE_HOME is ignored,
    as the XDG base directory specification asks.
    """
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME") or ""
    base = Path(state) if state and os.path.isabs(state) else Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "imagesync" / "locks"


class _Heartbeat:
    """Calls `beat` every `interval` seconds from a daemon thread until stopped or the lock is lost.

    `beat` returns False when the lock is no longer ours (someone ran `unlock` on a lock they
    judged stale): nothing can undo what happens next, but the user is told at once.
    """

    def __init__(self, lock_id: str, interval: float, beat: Callable[[], bool]):
        self.lock_id = lock_id
        self.interval = interval
        self.beat = beat
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"imagesync-lock-heartbeat {lock_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                alive = self.beat()
            except Exception as err:  # noqa: BLE001 - a missed beat is retried; expiry allows several
                log.warning("lock heartbeat failed", lock=self.lock_id, error=str(err))
                continue
            if not alive:
                self.lost = True
                log.error(
                    "lock lost",
                    lock=self.lock_id,
                    hint="someone released this lock while it was held; another writer may be running",
                )
                return

    def stop(self) -> None:
        # Join so no beat is in flight when the caller releases: a late beat must not re-create or
        # overwrite a record that release is about to delete.
        self._stop.set()
        self._thread.join()


class _Lock:
    """What every backend shares: the `held()` context manager over `acquire`/`release`."""

    lock_id: str

    def acquire(self, operation: str, timeout: float = 0.0, poll: float = 0.1) -> LockInfo:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def held(self, operation: str, timeout: float = 0.0, poll: float = 0.1) -> Iterator[LockInfo]:
        info = self.acquire(operation, timeout=timeout, poll=poll)
        try:
            yield info
        finally:
            self.release()


class FileLock(_Lock):
    """An flock(2) lock on `directory/<lock id with '/' as '--'>.lock`."""

    def __init__(self, directory: Path | str, lock_id: str):
        if not lock_id:
            raise UserError("a lock id must not be empty")
        self.directory = Path(directory)
        self.lock_id = lock_id
        self.path = lock_path(self.directory, lock_id)
        self._fd: int | None = None
        self.info: LockInfo | None = None

    def acquire(self, operation: str, timeout: float = 0.0, poll: float = 0.1) -> LockInfo:
        if self._fd is not None:
            raise RuntimeError(f"lock {self.lock_id!r} is already held by this FileLock")
        _ensure_directory(self.directory)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                taken = _try_flock(fd)
                # `unlock` may have removed the file between our open and our flock; a lock on an
                # unlinked inode excludes nobody, so start over on whatever file is there now.
                if taken and not _same_file(fd, self.path):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                    continue
            except BaseException:
                os.close(fd)
                raise
            if taken:
                info = LockInfo.current(self.lock_id, operation)
                try:
                    _write_info(fd, info)
                except BaseException:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                    raise
                self._fd, self.info = fd, info
                return info
            os.close(fd)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self.lock_id, _read_holder(self.path, wait=True), waited=timeout)
            time.sleep(min(max(poll, 0.01), remaining))

    def release(self) -> None:
        fd, self._fd, self.info = self._fd, None, None
        if fd is None:
            return
        try:
            # Truncate before unlocking so the next reader never sees a holder that is gone. The
            # file itself stays: removing it would race with processes already waiting on it.
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class _RemoteLock(_Lock):
    """The heartbeat and contention logic DynamoDB and S3 share; subclasses do the I/O."""

    def __init__(
        self,
        lock_id: str,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        expiry: float = HEARTBEAT_EXPIRY,
        clock: Callable[[], float] = time.time,
        backoff: Backoff | None = None,
    ):
        if not lock_id:
            raise UserError("a lock id must not be empty")
        self.lock_id = lock_id
        self.heartbeat_interval = heartbeat_interval
        self.expiry = expiry
        self.clock = clock
        self.backoff = backoff
        self.info: LockInfo | None = None
        self._heartbeat: _Heartbeat | None = None

    client: Any

    @property
    def _what(self) -> str:
        raise NotImplementedError

    def _call(self, operation: str, params: dict[str, Any], answers: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """`operation` through `aws.call` (throttling and 5xx retried with backoff); None when it
        fails with a code in `answers`, which the lock reads as an answer (a failed condition, a
        missing record), not an error. Any other failure names the table or bucket and the code."""
        try:
            return call(self.client, operation, params, backoff=self.backoff, target=f"lock {self.lock_id}")
        except (ApiError, ApiUnavailable) as err:
            if err.code in answers:
                return None
            raise _aws_error(err, self._what) from err

    # -- what each backend provides --

    def _put_new(self, info: LockInfo) -> bool:
        """Write `info` only if no record exists; False when one does."""
        raise NotImplementedError

    def _read(self) -> LockInfo | None:
        raise NotImplementedError

    def _refresh(self, info: LockInfo) -> bool:
        """Overwrite our record with `info` (a new heartbeat) only if it is still ours."""
        raise NotImplementedError

    def _delete_own(self, info: LockInfo) -> None:
        """Delete the record only if it is still ours."""
        raise NotImplementedError

    def _adopt(self, holder: LockInfo) -> None:
        """Our own write whose response was lost: take over whatever bookkeeping the backend needs."""

    # -- shared --

    def _stamp(self, info: LockInfo) -> LockInfo:
        return replace(info, heartbeat=_iso_ms(self.clock()))

    def acquire(self, operation: str, timeout: float = 0.0, poll: float = 0.1) -> LockInfo:
        if self.info is not None:
            raise RuntimeError(f"lock {self.lock_id!r} is already held by this {type(self).__name__}")
        info = self._stamp(LockInfo.current(self.lock_id, operation, now=self.clock()))
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if self._put_new(info):
                return self._start(info)
            holder = self._read()
            if holder is None:
                continue  # released between our put and our read: try again straight away
            if holder == info:
                # Our own put: it was committed, its response lost, and the retry saw our record.
                self._adopt(holder)
                return self._start(info)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self.lock_id, holder, waited=timeout, hint=self._contended_hint(holder))
            time.sleep(min(max(poll, 0.01), remaining))

    def _start(self, info: LockInfo) -> LockInfo:
        self.info = info
        self._heartbeat = _Heartbeat(self.lock_id, self.heartbeat_interval, self._beat)
        return info

    def _beat(self) -> bool:
        info = self.info
        if info is None:
            return False
        fresh = self._stamp(info)
        if not self._refresh(fresh):
            return False
        self.info = fresh
        return True

    def release(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.stop()
        info, self.info = self.info, None
        if info is not None:
            self._delete_own(info)

    def _contended_hint(self, holder: LockInfo) -> str:
        age = holder.heartbeat_age(self.clock())
        if age is not None and age < self.expiry:
            return (
                f"its heartbeat is {age:.0f}s old, so that run is alive; to wait for it, pass "
                "--lock-timeout SECONDS"
            )
        beat = "it records no heartbeat" if age is None else f"its last heartbeat was {age:.0f}s ago"
        return (
            f"{beat} (a live holder refreshes it every {self.heartbeat_interval:g}s), so that run is "
            f"probably gone and the lock is stale: release it with `imagesync unlock {self.lock_id}`"
        )

    def break_stale(self) -> LockInfo | None:
        """What `unlock` does: release a stale lock, refuse one whose holder's heartbeat is fresh."""
        for _ in range(5):
            holder = self._read()
            if holder is None:
                return None
            age = holder.heartbeat_age(self.clock())
            if age is not None and age < self.expiry:
                raise LockHeld(
                    self.lock_id,
                    holder,
                    hint=(
                        f"that process is still running: its heartbeat is {age:.0f}s old, younger than the "
                        f"{self.expiry:g}s after which a lock counts as stale, so the lock is not stuck; "
                        "it is released when that run ends"
                    ),
                )
            if self._delete_exact(holder):
                return holder
            # The record changed between our read and our delete (a beat, or a new holder): judge again.
        raise TransientError(f"lock {self.lock_id!r} keeps changing while being unlocked; try again")

    def _delete_exact(self, holder: LockInfo) -> bool:
        """Delete the record only if it is exactly `holder` (heartbeat included); False otherwise."""
        raise NotImplementedError


class DynamoDBLock(_RemoteLock):
    """A conditional-write lock: one item per lock id in a table whose hash key is `LockID` (S)."""

    def __init__(self, client: Any, table: str, lock_id: str, **timing: Any):
        super().__init__(lock_id, **timing)
        self.client = client
        self.table = table

    @property
    def _what(self) -> str:
        return f"lock table {self.table!r}"

    def _key(self) -> dict[str, dict[str, str]]:
        return {"LockID": {"S": self.lock_id}}

    def _put_new(self, info: LockInfo) -> bool:
        condition = "attribute_not_exists(LockID)"
        params = {"TableName": self.table, "Item": _to_item(info), "ConditionExpression": condition}
        return self._call("PutItem", params, _CONDITION_FAILED) is not None

    def _read(self) -> LockInfo | None:
        response = self._call("GetItem", {"TableName": self.table, "Key": self._key(), "ConsistentRead": True})
        item = (response or {}).get("Item")
        return _from_item(item) if item else None

    def _refresh(self, info: LockInfo) -> bool:
        names, values, condition = _owner_condition(info)
        params = {
            "TableName": self.table,
            "Key": self._key(),
            "UpdateExpression": "SET #hb = :hb",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {**names, "#hb": "heartbeat"},
            "ExpressionAttributeValues": {**values, ":hb": {"S": info.heartbeat}},
        }
        return self._call("UpdateItem", params, _CONDITION_FAILED) is not None

    def _delete_own(self, info: LockInfo) -> None:
        # Only delete our own item: if the lock was broken with `unlock` and someone else took it
        # since, deleting blindly would let two writers in.
        self._conditional_delete(*_owner_condition(info))

    def _delete_exact(self, holder: LockInfo) -> bool:
        names, values, condition = _owner_condition(holder)
        if holder.heartbeat:
            condition += " AND #hb = :hb"
            names, values = {**names, "#hb": "heartbeat"}, {**values, ":hb": {"S": holder.heartbeat}}
        else:
            condition += " AND attribute_not_exists(#hb)"
            names = {**names, "#hb": "heartbeat"}
        return self._conditional_delete(names, values, condition)

    def _conditional_delete(self, names: dict[str, str], values: dict[str, Any], condition: str) -> bool:
        params = {
            "TableName": self.table,
            "Key": self._key(),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        # A failed condition: the item is gone or not ours, so there is nothing to delete.
        return self._call("DeleteItem", params, _CONDITION_FAILED) is not None


class S3Lock(_RemoteLock):
    """A conditional-write lock: one JSON object per lock id at `PREFIX/<lock id>.json`.

    Acquiring is PutObject with If-None-Match: *; heartbeats overwrite it with If-Match on our last
    ETag, and releasing deletes it with If-Match, so nobody ever overwrites or deletes a record
    they did not read.
    """

    def __init__(self, client: Any, bucket: str, lock_id: str, prefix: str = DEFAULT_S3_PREFIX, **timing: Any):
        super().__init__(lock_id, **timing)
        self.client = client
        self.bucket = bucket
        self.key = s3_key(prefix, lock_id)
        self._etag: str | None = None
        self._read_etag: str | None = None

    @property
    def _what(self) -> str:
        return f"lock bucket {self.bucket!r} (key {self.key!r})"

    def _put(self, info: LockInfo, *, lost: tuple[str, ...] = (), **condition: str) -> str | None:
        """Write `info` under `condition`; None when the condition failed (or an error in `lost`)."""
        params = {
            "Bucket": self.bucket,
            "Key": self.key,
            "Body": info.to_json().encode(),
            "ContentType": "application/json",
            **condition,
        }
        response = self._call("PutObject", params, (*_PRECONDITION_FAILED, *lost))
        return None if response is None else str(response.get("ETag") or "")

    def _put_new(self, info: LockInfo) -> bool:
        # A conflict is another writer's put racing ours: read who won, like any taken lock.
        etag = self._put(info, lost=tuple(_CONFLICT_CODES), IfNoneMatch="*")
        if etag is None:
            return False
        self._etag = etag
        return True

    def _read(self) -> LockInfo | None:
        response = self._call("GetObject", {"Bucket": self.bucket, "Key": self.key}, ("NoSuchKey", "404"))
        if response is None:
            return None
        body = response["Body"].read()
        self._read_etag = str(response.get("ETag") or "")
        try:
            return LockInfo.from_json(body.decode("utf-8", "replace"))
        except ValueError:
            # Not ours to parse, but it still holds the key: show an anonymous, heartbeat-less holder.
            return LockInfo(id=self.lock_id, who="unknown", pid=0, operation="unknown", created="unknown")

    def _adopt(self, holder: LockInfo) -> None:
        self._etag = self._read_etag

    def _refresh(self, info: LockInfo) -> bool:
        if not self._etag:
            return False
        etag = self._put(info, IfMatch=self._etag)
        if etag is None:
            return False
        self._etag = etag
        return True

    def _delete_if(self, etag: str | None) -> bool:
        if not etag:
            return False
        # A failed precondition: the object is gone or not ours, so there is nothing to delete.
        params = {"Bucket": self.bucket, "Key": self.key, "IfMatch": etag}
        return self._call("DeleteObject", params, _PRECONDITION_FAILED) is not None

    def _delete_own(self, info: LockInfo) -> None:
        etag, self._etag = self._etag, None
        self._delete_if(etag)

    def _delete_exact(self, holder: LockInfo) -> bool:
        return self._delete_if(self._read_etag)


def unlock(
    lock_id: str,
    *,
    directory: Path | None = None,
    dynamodb_client: Any = None,
    table: str | None = None,
    s3_client: Any = None,
    bucket: str | None = None,
    prefix: str = DEFAULT_S3_PREFIX,
    expiry: float = HEARTBEAT_EXPIRY,
    clock: Callable[[], float] = time.time,
) -> LockInfo | None:
    """Break a stuck lock; returns who held it (None when nothing was held).

    A lock held by a live process is never released: `LockHeld` says so instead. For a file lock
    that is the flock (held exactly while the holder runs); for DynamoDB and S3, whose holder may be
    on another machine, it is a heartbeat younger than `expiry` seconds.
    """
    if dynamodb_client is not None:
        if not table:
            raise UserError("unlocking a DynamoDB lock needs the lock table name")
        return DynamoDBLock(dynamodb_client, table, lock_id, expiry=expiry, clock=clock).break_stale()
    if s3_client is not None:
        if not bucket:
            raise UserError("unlocking an S3 lock needs the lock bucket name")
        return S3Lock(s3_client, bucket, lock_id, prefix, expiry=expiry, clock=clock).break_stale()
    if directory is None:
        raise UserError("unlock needs a lock directory, a DynamoDB table or an S3 bucket")
    path = lock_path(Path(directory), lock_id)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        holder = _read_fd(fd)
        if not _try_flock(fd):
            raise LockHeld(
                lock_id,
                _read_holder(path, wait=True),
                hint=(
                    "that process is still running, so the lock is not stuck; it is released when "
                    "the process exits (stop it first if it must not finish)"
                ),
            )
        # Removing the file while holding the flock: anyone who opened it before is turned away
        # by the inode check in `FileLock.acquire` and retries on a fresh file.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return holder
    finally:
        os.close(fd)  # closing drops the flock too


def make_lock(
    config: Mapping[str, Any],
    lock_id: str,
    *,
    directory: Path,
    session: Any = None,
    region: str | None = None,
    **timing: Any,
) -> FileLock | DynamoDBLock | S3Lock:
    """The lock `config` asks for: `backend: file` (default, in `directory`), `backend: dynamodb`
    with `table`, or `backend: s3` with `bucket` and an optional key prefix `key`.

    Remote clients come from `session` (the caller's profile and credentials) in `region` (the
    lock's own `region` setting, else the target's). `timing` (heartbeat_interval, expiry, clock)
    goes to the remote backends.
    """
    backend = config.get("backend") or "file"
    if backend == "file":
        return FileLock(directory, lock_id)
    if backend == "dynamodb":
        table = config.get("table")
        if not table:
            raise UserError("the dynamodb lock backend needs a table: set lock.table")
        return DynamoDBLock(_client(session, "dynamodb", config.get("region") or region), str(table), lock_id, **timing)
    if backend == "s3":
        bucket = config.get("bucket")
        if not bucket:
            raise UserError("the s3 lock backend needs a bucket: set lock.bucket")
        client = _client(session, "s3", config.get("region") or region)
        return S3Lock(client, str(bucket), lock_id, str(config.get("key") or DEFAULT_S3_PREFIX), **timing)
    raise UserError(f"unknown lock backend {backend!r}; use file, dynamodb or s3")


def unlock_configured(
    config: Mapping[str, Any], lock_id: str, *, directory: Path, session: Any = None
) -> LockInfo | None:
    """`unlock` for the backend `config` names: what `imagesync unlock LOCK_ID` runs."""
    _, _, region = parse_lock_id(lock_id)
    lock = make_lock(config, lock_id, directory=directory, session=session, region=region)
    if isinstance(lock, FileLock):
        return unlock(lock_id, directory=lock.directory)
    return lock.break_stale()


def warn_if_unshared(config: Mapping[str, Any], *, sandboxed: bool, environ: Mapping[str, str] | None = None) -> None:
    """In CI, a file lock against real AWS only excludes runs on the same runner: say so, once per apply."""
    env = os.environ if environ is None else environ
    backend = config.get("backend") or "file"
    if sandboxed or backend != "file" or env.get("CI", "").strip().lower() != "true":
        return
    log.warning(
        "file lock in CI",
        backend=backend,
        hint=(
            "a file lock only stops applies on this machine; CI runners do not share it. Set "
            "lock: {backend: dynamodb, table: T} or lock: {backend: s3, bucket: B} in imagesync.yaml "
            "so every runner meets the same lock"
        ),
    )


def lock_path(directory: Path, lock_id: str) -> Path:
    """Where the file lock for `lock_id` lives: ids contain '/', file names cannot."""
    return directory / (lock_id.replace("/", "--") + ".lock")


def s3_key(prefix: str, lock_id: str) -> str:
    """The object holding the S3 lock for `lock_id` under `prefix`."""
    prefix = prefix.strip("/")
    return f"{prefix}/{lock_id}.json" if prefix else f"{lock_id}.json"


# -- helpers -----------------------------------------------------------------------------------


def _client(session: Any, service: str, region: str | None) -> Any:
    # One attempt per call: the retries are aws.call's, so botocore's would multiply them.
    if session is None:
        import boto3  # only the remote backends need boto3 at this point

        return boto3.client(service, region_name=region, config=CLIENT_CONFIG)
    return session.client(service, region_name=region, config=CLIENT_CONFIG)


def _iso_ms(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _user() -> str:
    # getpass fails in containers whose uid has no passwd entry; the uid still identifies someone.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"


def _ensure_directory(directory: Path) -> None:
    # 0o700: lock files name users, hosts and pids, which other local users need not see.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _write_info(fd: int, info: LockInfo) -> None:
    # fsync so the holder's details survive a machine crash along with the half-done apply.
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    data = info.to_json().encode() + b"\n"
    while data:
        data = data[os.write(fd, data) :]
    os.fsync(fd)


def _read_fd(fd: int) -> LockInfo | None:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return LockInfo.from_json(text)
    except ValueError:
        return None  # a torn or foreign file: the flock still decides who holds the lock


def _read_holder(path: Path, *, wait: bool) -> LockInfo | None:
    """The details recorded in `path`, allowing a fresh holder a moment to write them."""
    deadline = time.monotonic() + (_HOLDER_READ_GRACE if wait else 0.0)
    while True:
        try:
            with open(path, "rb") as handle:
                info = _read_fd(handle.fileno())
        except FileNotFoundError:
            info = None
        if info is not None or time.monotonic() >= deadline:
            return info
        time.sleep(0.02)


def _to_item(info: LockInfo) -> dict[str, dict[str, str]]:
    item = {
        "LockID": {"S": info.id},
        "who": {"S": info.who},
        "pid": {"N": str(info.pid)},
        "operation": {"S": info.operation},
        "created": {"S": info.created},
    }
    if info.heartbeat:
        item["heartbeat"] = {"S": info.heartbeat}
    if info.token:
        item["token"] = {"S": info.token}
    return item


def _from_item(item: Mapping[str, Mapping[str, str]]) -> LockInfo:
    def text(name: str) -> str:
        value = item.get(name) or {}
        return str(value.get("S") or value.get("N") or "")

    pid_text = text("pid")
    return LockInfo(
        id=text("LockID"),
        who=text("who") or "unknown",
        pid=int(pid_text) if pid_text.isdigit() else 0,
        operation=text("operation") or "unknown",
        created=text("created") or "unknown",
        heartbeat=text("heartbeat"),
        token=text("token"),
    )


def _owner_condition(info: LockInfo) -> tuple[dict[str, str], dict[str, Any], str]:
    """A DynamoDB condition that holds only while the item is still `info`'s holder's."""
    names = {"#who": "who", "#pid": "pid", "#created": "created"}
    values: dict[str, Any] = {":who": {"S": info.who}, ":pid": {"N": str(info.pid)}, ":created": {"S": info.created}}
    expression = "#who = :who AND #pid = :pid AND #created = :created"
    if info.token:
        names["#token"] = "token"
        values[":token"] = {"S": info.token}
        expression += " AND #token = :token"
    return names, values, expression


_CONDITION_FAILED = ("ConditionalCheckFailedException",)
_PRECONDITION_FAILED = ("PreconditionFailed", "NoSuchKey", "412", "404")


def _aws_error(err: ApiError | ApiUnavailable, what: str) -> Exception:
    """A DynamoDB or S3 failure that is not an answer: an error naming the resource and AWS error code."""
    if err.code == "ResourceNotFoundException":
        return UserError(f"{what} does not exist ({err.operation}: {err.code}); create it with hash key LockID (S)")
    if err.code == "NoSuchBucket":
        return UserError(f"{what} does not exist ({err.operation}: {err.code}); create the bucket or fix lock.bucket")
    if isinstance(err, ApiUnavailable) or err.code in _CONFLICT_CODES:
        # Retried already (or a racing write): a heartbeat or a later run may get through.
        return TransientError(f"{what}: {err}")
    return UserError(f"{what}: {err}")
