"""Counts how often a file is opened, through Linux inotify.

Every attempt of `FileLock.acquire` opens the lock file, so the lock tests use this to wait until
another process has tried a lock held elsewhere (and been refused, then tried again) instead of
sleeping and hoping it got that far. Importable as `file_opens` (tests/ is on sys.path).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import time
from pathlib import Path
from types import TracebackType

IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
# struct inotify_event: int wd; uint32_t mask, cookie, len; char name[len]
_EVENT = struct.Struct("iIII")


class FileOpens:
    """Opens of `path` from the moment this is created (the file must exist), by any process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        # Closes are watched too: the kernel merges identical events queued back to back, so two
        # opens with nothing in between would count as one.
        mask = IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE
        if libc.inotify_add_watch(self._fd, os.fsencode(path), mask) < 0:
            errno = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(errno, f"cannot watch {path}")

    def wait_for(self, count: int, what: str, timeout: float = 60.0) -> None:
        """Block until `path` has been opened `count` times; fail naming `what` after `timeout` s
        (a bound on a hang only)."""
        deadline = time.monotonic() + timeout
        while self.count < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = f"{self.path} opened {self.count} of {count} times"
                raise AssertionError(f"gave up after {timeout:g} s waiting until {what} ({seen})")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                self._drain()

    def _drain(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            _, mask, _, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size + length
            if mask & IN_OPEN:
                self.count += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileOpens:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
