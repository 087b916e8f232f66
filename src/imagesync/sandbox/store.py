"""The sandbox's state: an in-memory document, optionally persisted to a state file and its journal.

Every operation runs inside one `transaction()`: a thread lock plus, with a state file, an
exclusive `flock` on a sibling `.lock` file, so several processes can share one state file. The
HTTP server sends a response only after its transaction returned, so a write is on disk before
it is acknowledged.

On disk, state file `F` is two files:

- `F`, the snapshot: the whole state as one JSON object,
  `{"format": 1, "resources": {COLLECTION: {ARN: RECORD}}, "tokens": {...}, "policies": {...}, ...}`
  (keys sorted), replaced atomically (write a temporary file, fsync, rename, fsync the
  directory). A state file written before the journal existed is a snapshot with no journal.
- `F.journal`, the journal: one line per write transaction since the snapshot, appended and
  fsynced before the transaction returns. A line is `CRC BODY\\n`: `CRC` the 8 hex digits of the
  CRC-32 of `BODY`, and `BODY` a JSON array of changes, applied in order:
  `["set", PATH, KEY, VALUE]` (the container at PATH maps KEY to VALUE), `["del", PATH, KEY]`,
  `["put", PATH, VALUE]` (PATH itself is VALUE) and `["drop", PATH]`, where PATH is a list of
  keys from the top of the state (`["tokens"]`, `["resources", "components"]`, `["ticked"]`).
  Replaying a change twice gives what replaying it once does.

Loading reads the snapshot and replays the journal. A last line that is incomplete or whose CRC
does not match is a write that was never acknowledged (the process died while appending it): it
is ignored and cut off; a bad line before the last one means the file was damaged, and loading
fails. The journal is folded into the snapshot (compaction) when it outgrows the snapshot, when
the sandbox stops and on `reset()`: the new snapshot is renamed into place before the journal is
emptied, so a crash in between replays changes the snapshot already holds, which is harmless.

What a transaction changed is found without serializing the whole state: the state's containers
(each resource table, the tokens, the policies, and every other top-level object) are
`index.Tracked` dicts that remember the keys written or read, and only those are compared (by
digest) and journaled. The file is re-read only when another process changed it. An absent
file is an empty state.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imagesync.sandbox.index import Table, Tracked

FORMAT = 1
TOUCHED = "_touched"
"""Key a read transaction sets in the state when it changed something that must be persisted."""
RESOURCES = "resources"
COMPACT_BYTES = 8 * 1024 * 1024
"""A journal is folded into the snapshot once it is larger than this and than the snapshot."""

Path_ = tuple[str, ...]


def empty_state() -> dict[str, Any]:
    return {"format": FORMAT, "resources": {}, "tokens": {}, "policies": {}}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class Store:
    """Serialized access to the state document."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.journal = self.path.with_name(f"{self.path.name}.journal") if self.path is not None else None
        self._lock = threading.RLock()
        self._state = empty_state()
        self._stamp: tuple[Any, ...] | None = None
        self._journal_size = 0
        self._snapshot_size = 0
        self._containers: dict[Path_, Tracked] = {}
        self._scalars: dict[str, str] = {}  # top-level values that are not containers, as last saved
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self._file_lock():
                self._refresh()  # a file that is not a state file is refused now, not on first use

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[dict[str, Any]]:
        """Yield the current state; persist what changed afterwards when `write` and no error was raised.

        Handlers check everything before they mutate, so an error leaves the state as it was;
        with a file, an error also drops the in-memory copy so it is re-read from disk.
        """
        with self._lock, self._file_lock():
            self._refresh()
            try:
                yield self._state
            except BaseException:
                if self.path is not None and write:
                    self._stamp = None
                raise
            # A read can change state too: time-driven work (a build finishing, a schedule firing)
            # marks the state touched, and is kept like any write.
            touched = self._state.pop(TOUCHED, False)
            if self.path is None:
                _forget(self._state)
            elif write or touched:
                if self._stamp is not None and self._stamp[0] is None:
                    self._compact()  # the first write makes the state file; later ones go to the journal
                else:
                    self._append()
                if self._journal_size > max(COMPACT_BYTES, self._snapshot_size):
                    self._compact()

    def reset(self) -> None:
        with self._lock, self._file_lock():
            self._state = empty_state()
            if self.path is not None:
                self._compact()

    def close(self) -> None:
        """Fold the journal into the snapshot (the sandbox is stopping); the store stays usable."""
        if self.path is None:
            return
        with self._lock, self._file_lock():
            self._refresh()
            if self._journal_size or not self.path.exists():
                self._compact()
            assert self.journal is not None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.journal)
            self._stamp = self._file_stamp()

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if self.path is None:
            yield
            return
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _file_stamp(self) -> tuple[Any, ...]:
        assert self.path is not None and self.journal is not None
        stamps: list[Any] = []
        for path in (self.path, self.journal):
            try:
                st = path.stat()
            except FileNotFoundError:
                stamps.append(None)
                continue
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    # --- loading ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        if self.path is None:
            return
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        state = self._read_snapshot()
        self._snapshot_size = stamp[0][2] if stamp[0] is not None else 0
        self._journal_size = self._replay(state)
        self._adopt(state)
        self._stamp = self._file_stamp()

    def _read_snapshot(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            with open(self.path, encoding="utf-8") as fh:
                loaded = json.load(fh)
        except FileNotFoundError:
            return empty_state()
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path} is not an imagesync sandbox state file: {exc}") from exc
        if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
            raise ValueError(f"{self.path} is not an imagesync sandbox state file")
        return loaded

    def _replay(self, state: dict[str, Any]) -> int:
        """Apply the journal to `state`; cut off a torn last line. Returns the journal's size."""
        assert self.journal is not None
        try:
            data = self.journal.read_bytes()
        except FileNotFoundError:
            return 0
        good = 0
        while good < len(data):
            end = data.find(b"\n", good)
            changes = _parse_line(data[good:end]) if end >= 0 else None
            if changes is None:
                if end >= 0 and data.find(b"\n", end + 1) >= 0:
                    line = data.count(b"\n", 0, good) + 1
                    raise ValueError(f"{self.journal} is damaged at line {line}")
                break  # the last line, torn: a write that was never acknowledged
            for change in changes:
                _apply(state, change)
            good = end + 1
        if good < len(data):
            os.truncate(self.journal, good)
            _fsync_path(self.journal)
        return good

    def _adopt(self, state: dict[str, Any]) -> None:
        """Make `state` the current state: containers tracked, every key in sorted order (as a
        snapshot written and read back would have them)."""
        adopted: dict[str, Any] = {}
        self._containers = {}
        self._scalars = {}
        for key in sorted(state):
            value = state[key]
            if key == RESOURCES and isinstance(value, dict):
                tables = {}
                for collection in sorted(value):
                    table = Table(sorted(value[collection].items()))
                    tables[collection] = self._containers[(RESOURCES, collection)] = table
                adopted[key] = tables
            elif isinstance(value, dict):
                adopted[key] = self._containers[(key,)] = Tracked(sorted(value.items()))
            else:
                adopted[key] = value
                self._scalars[key] = _dumps(value)
        self._state = adopted

    # --- saving -------------------------------------------------------------------------------

    def _changes(self) -> list[str]:
        """The journal changes (as JSON texts) that bring the saved state to the current one."""
        changes: list[str] = []
        seen: set[Path_] = set()
        for key, value in list(self._state.items()):
            if key == RESOURCES and isinstance(value, dict):
                for collection, table in list(value.items()):
                    if not isinstance(table, Table):
                        table = value[collection] = Table(table)
                    self._container_changes((RESOURCES, collection), table, changes)
                    seen.add((RESOURCES, collection))
            elif isinstance(value, dict):
                if not isinstance(value, Tracked):
                    value = self._state[key] = Tracked(value)
                self._container_changes((key,), value, changes)
                seen.add((key,))
            else:
                text = _dumps(value)
                if self._scalars.get(key) != text:
                    changes.append(f'["put",{_dumps([key])},{text}]')
                    self._scalars[key] = text
        for path in [p for p in self._containers if p not in seen]:
            changes.append(f'["drop",{_dumps(list(path))}]')
            del self._containers[path]
        for key in [k for k in self._scalars if k not in self._state]:
            changes.append(f'["drop",{_dumps([key])}]')
            del self._scalars[key]
        return changes

    def _container_changes(self, path: Path_, container: Tracked, changes: list[str]) -> None:
        where = _dumps(list(path))
        if self._containers.get(path) is not container:
            # New (or replaced as a whole): saved whole, then tracked key by key.
            container.touched.clear()
            container.digests.clear()
            items = dict.items(container)
            texts = {key: _dumps(value) for key, value in items}
            container.digests.update((key, _digest(text)) for key, text in texts.items())
            body = ",".join(f"{_dumps(key)}:{text}" for key, text in sorted(texts.items()))
            changes.append(f'["put",{where},{{{body}}}]')
            self._containers[path] = container
            return
        for key in sorted(container.touched):
            if dict.__contains__(container, key):
                text = _dumps(dict.__getitem__(container, key))
                digest = _digest(text)
                if container.digests.get(key) != digest:
                    changes.append(f'["set",{where},{_dumps(key)},{text}]')
                    container.digests[key] = digest
            else:
                changes.append(f'["del",{where},{_dumps(key)}]')
                container.digests.pop(key, None)
        container.touched.clear()

    def _append(self) -> None:
        """Journal what this transaction changed, durably, before it is acknowledged."""
        assert self.journal is not None
        changes = self._changes()
        if not changes:
            return
        body = ("[" + ",".join(changes) + "]").encode()
        line = b"%08x %s\n" % (zlib.crc32(body), body)
        created = not self.journal.exists()
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_path(self.journal.parent)
        self._journal_size += len(line)
        self._stamp = self._file_stamp()

    def _compact(self) -> None:
        """Write the whole state as the snapshot, then empty the journal."""
        assert self.path is not None and self.journal is not None
        self._changes()  # bring the tracking up to date: the snapshot holds everything
        text = _dumps(self._state)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_path(self.path.parent)
        if self.journal.exists():
            os.truncate(self.journal, 0)
            _fsync_path(self.journal)
        _forget(self._state)  # serializing read every key; nothing changed
        self._snapshot_size = len(text.encode())
        self._journal_size = 0
        self._stamp = self._file_stamp()


def _forget(state: dict[str, Any]) -> None:
    """Clear what the containers remember as read or written."""
    for key, value in state.items():
        if key == RESOURCES and isinstance(value, dict):
            for table in value.values():
                if isinstance(table, Tracked):
                    table.touched.clear()
        elif isinstance(value, Tracked):
            value.touched.clear()


def _parse_line(line: bytes) -> list[Any] | None:
    """The changes of one journal line, or None when it is not a whole, intact line."""
    crc, _, body = line.partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(body):
            return None
        changes = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return changes if isinstance(changes, list) else None


def _apply(state: dict[str, Any], change: list[Any]) -> None:
    verb, path = change[0], change[1]
    parent = state
    for key in path[:-1]:
        parent = parent.setdefault(key, {})
    last = path[-1]
    if verb == "put":
        parent[last] = change[2]
    elif verb == "drop":
        parent.pop(last, None)
    elif verb == "set":
        parent.setdefault(last, {})[change[2]] = change[3]
    elif verb == "del":
        parent.setdefault(last, {}).pop(change[2], None)
    else:
        raise ValueError(f"unknown journal change {verb!r}")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
