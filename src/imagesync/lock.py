"""One writer per target: the locks `apply` takes and `imagesync unlock` breaks.

Two backends share one shape (`acquire`, `release`, `held`):

- `FileLock` (default) uses `flock(2)` on a file under a local directory. The kernel drops the lock
  when the holding process dies, however it dies, so a crash or SIGKILL never leaves a stuck lock;
  the JSON written into the file only says *who* holds it, it is not the lock itself.
- `DynamoDBLock` is for shared use (CI runners, several machines): a conditional `PutItem` that only
  succeeds when no item exists for the lock id. Nothing releases it if the holder dies, which is
  what `imagesync unlock LOCK_ID` is for.

A lock that is taken fails fast with `LockHeld` naming the holder, unless a timeout is given, in
which case acquiring polls until the lock frees up or the timeout runs out.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from imagesync.errors import PermanentError, TransientError, UserError

__all__ = [
    "DynamoDBLock",
    "FileLock",
    "LockHeld",
    "LockInfo",
    "lock_id",
    "make_lock",
    "unlock",
]

# How long a fail-fast acquire keeps re-reading an empty lock file: the holder takes the flock
# before it writes its details, so a reader can land in between and would otherwise report an
# anonymous holder.
_HOLDER_READ_GRACE = 0.5

_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock: recorded when it is taken, shown when someone else wants it."""

    id: str
    who: str  # user@host
    pid: int
    operation: str
    created: str  # ISO-8601, UTC

    @classmethod
    def current(cls, lock_id: str, operation: str) -> LockInfo:
        """The details of this process taking `lock_id` for `operation` now."""
        return cls(
            id=lock_id,
            who=f"{_user()}@{socket.gethostname()}",
            pid=os.getpid(),
            operation=operation,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

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
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"lock info is missing or has a bad field: {err}") from err

    def describe(self) -> str:
        return f"{self.who} (pid {self.pid}) running {self.operation!r} since {self.created}"


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


def lock_id(project: str, target: str) -> str:
    """The id of the lock guarding `target` of `project`; what `imagesync unlock` takes."""
    return f"{project}/{target}"


class _Lock:
    """What both backends share: the `held()` context manager over `acquire`/`release`."""

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

    def __init__(self, directory: Path, lock_id: str):
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


class DynamoDBLock(_Lock):
    """A conditional-write lock: one item per lock id in a table whose hash key is `LockID` (S)."""

    def __init__(self, client: Any, table: str, lock_id: str):
        if not lock_id:
            raise UserError("a lock id must not be empty")
        self.client = client
        self.table = table
        self.lock_id = lock_id
        self.info: LockInfo | None = None

    def acquire(self, operation: str, timeout: float = 0.0, poll: float = 0.1) -> LockInfo:
        if self.info is not None:
            raise RuntimeError(f"lock {self.lock_id!r} is already held by this DynamoDBLock")
        info = LockInfo.current(self.lock_id, operation)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=_to_item(info),
                    ConditionExpression="attribute_not_exists(LockID)",
                )
            except ClientError as err:
                if _code(err) != "ConditionalCheckFailedException":
                    raise _aws_error(err, self.table, "PutItem") from err
            else:
                self.info = info
                return info
            holder = self._holder()
            if holder is None:
                # Released between our put and our read: try again straight away.
                continue
            if holder == info:
                # Our own put: it was committed, its response lost, and the retry saw our item.
                self.info = info
                return info
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(self.lock_id, holder, waited=timeout)
            time.sleep(min(max(poll, 0.01), remaining))

    def release(self) -> None:
        info, self.info = self.info, None
        if info is None:
            return
        try:
            # Only delete our own item: if the lock was broken with `unlock` and someone else took
            # it since, deleting blindly would let two writers in.
            self.client.delete_item(
                TableName=self.table,
                Key={"LockID": {"S": self.lock_id}},
                ConditionExpression="#who = :who AND #pid = :pid AND #created = :created",
                ExpressionAttributeNames={"#who": "who", "#pid": "pid", "#created": "created"},
                ExpressionAttributeValues={
                    ":who": {"S": info.who},
                    ":pid": {"N": str(info.pid)},
                    ":created": {"S": info.created},
                },
            )
        except ClientError as err:
            if _code(err) != "ConditionalCheckFailedException":  # gone or not ours: nothing to do
                raise _aws_error(err, self.table, "DeleteItem") from err

    def _holder(self) -> LockInfo | None:
        try:
            response = self.client.get_item(
                TableName=self.table, Key={"LockID": {"S": self.lock_id}}, ConsistentRead=True
            )
        except ClientError as err:
            raise _aws_error(err, self.table, "GetItem") from err
        item = response.get("Item")
        return _from_item(item) if item else None


def unlock(
    lock_id: str,
    *,
    directory: Path | None = None,
    dynamodb_client: Any = None,
    table: str | None = None,
) -> LockInfo | None:
    """Break a stuck lock; returns who held it (None when nothing was held).

    With `dynamodb_client` and `table` the DynamoDB item is deleted whoever holds it: the holder
    may be on another machine, so there is no way to tell whether it is alive and the user asking
    is the judge. With `directory` the file lock is only removed when no live process holds it.
    """
    if dynamodb_client is not None:
        if not table:
            raise UserError("unlocking a DynamoDB lock needs the lock table name")
        try:
            response = dynamodb_client.delete_item(
                TableName=table, Key={"LockID": {"S": lock_id}}, ReturnValues="ALL_OLD"
            )
        except ClientError as err:
            raise _aws_error(err, table, "DeleteItem") from err
        old = response.get("Attributes")
        return _from_item(old) if old else None
    if directory is None:
        raise UserError("unlock needs a lock directory or a DynamoDB table")
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
    config: Mapping[str, Any], lock_id: str, *, directory: Path, session: Any = None, region: str | None = None
) -> FileLock | DynamoDBLock:
    """The lock `config` asks for: `backend: file` (default) or `backend: dynamodb` with `table`.

    The DynamoDB client comes from `session` (the caller's profile and credentials) in `region`
    (the lock's own `region` setting, else the target's).
    """
    backend = config.get("backend") or "file"
    if backend == "file":
        return FileLock(directory, lock_id)
    if backend == "dynamodb":
        table = config.get("table")
        if not table:
            raise UserError("the dynamodb lock backend needs a table: set lock.table")
        if session is None:
            import boto3  # only the DynamoDB backend needs boto3 at this point

            client = boto3.client("dynamodb", region_name=config.get("region") or region)
        else:
            client = session.client("dynamodb", region_name=config.get("region") or region)
        return DynamoDBLock(client, str(table), lock_id)
    if backend == "s3":
        raise UserError("the s3 lock backend is not supported yet; use file or dynamodb")
    raise UserError(f"unknown lock backend {backend!r}; use file or dynamodb")


def lock_path(directory: Path, lock_id: str) -> Path:
    """Where the file lock for `lock_id` lives: ids contain '/', file names cannot."""
    return directory / (lock_id.replace("/", "--") + ".lock")


# -- helpers -----------------------------------------------------------------------------------


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
    return {
        "LockID": {"S": info.id},
        "who": {"S": info.who},
        "pid": {"N": str(info.pid)},
        "operation": {"S": info.operation},
        "created": {"S": info.created},
    }


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
    )


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _aws_error(err: ClientError, table: str, operation: str) -> Exception:
    """Turn a DynamoDB failure into imagesync's error tree, naming the table and AWS error code."""
    code = _code(err)
    message = str(err.response.get("Error", {}).get("Message", "")) or str(err)
    if code == "ResourceNotFoundException":
        return UserError(
            f"lock table {table!r} does not exist ({operation}: {code}); create it with hash key LockID (S)"
        )
    if code in _THROTTLING_CODES:
        return TransientError(f"lock table {table!r}: {operation} failed with {code}: {message}")
    return PermanentError(f"lock table {table!r}: {operation} failed with {code}: {message}")
