"""The sandbox's state: an in-memory document, optionally persisted to a JSON file.

Every operation runs inside one `transaction()`: a thread lock plus, with a state file, an
exclusive `flock` on a sibling `.lock` file, so several processes can share one state file. The
file is re-read only when another process has replaced it, and a write transaction is persisted
atomically (write to a temporary file, fsync, rename, fsync the directory), so a crash or a kill
never leaves a torn file. An absent file is an empty state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = 1
TOUCHED = "_touched"
"""Key a read transaction sets in the state when it changed something that must be persisted."""


def empty_state() -> dict[str, Any]:
    return {"format": FORMAT, "resources": {}, "tokens": {}, "policies": {}}


class Store:
    """Serialized access to the state document."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._state = empty_state()
        self._stamp: tuple[int, int, int] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self._file_lock():
                self._refresh()  # a file that is not a state file is refused now, not on first use

    @contextlib.contextmanager
    def transaction(self, write: bool) -> Iterator[dict[str, Any]]:
        """Yield the current state; persist it afterwards when `write` and no error was raised.

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
            if (write or touched) and self.path is not None:
                self._persist()

    def reset(self) -> None:
        with self._lock, self._file_lock():
            self._state = empty_state()
            if self.path is not None:
                self._persist()

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

    def _file_stamp(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        if self.path is None:
            return
        stamp = self._file_stamp()
        if stamp is not None and stamp == self._stamp:
            return
        if stamp is None:
            self._state = empty_state()
        else:
            try:
                with open(self.path, encoding="utf-8") as fh:
                    loaded = json.load(fh)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{self.path} is not an imagesync sandbox state file: {exc}") from exc
            if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
                raise ValueError(f"{self.path} is not an imagesync sandbox state file")
            self._state = loaded
        self._stamp = stamp

    def _persist(self) -> None:
        assert self.path is not None
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self._state, fh, separators=(",", ":"), sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._stamp = self._file_stamp()
