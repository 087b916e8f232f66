"""imagesync's one exception tree. Each error knows its exit code; the CLI alone turns them into exits.

`UserError` and its children are problems with what the user gave (manifests, flags, plans):
exit 1 with a clear message and no traceback unless `-v`. `TransientError` marks failures worth
retrying with backoff; `PermanentError` marks the ones that are not.
"""

from __future__ import annotations

from dataclasses import dataclass


class ImagesyncError(Exception):
    """Base of every error imagesync raises on purpose."""

    exit_code = 1


class UserError(ImagesyncError):
    """Bad input: flags, files, manifests, saved plans."""


@dataclass(frozen=True, order=True)
class Location:
    """Where in a file a problem is: 1-based line and column."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path

    def as_dict(self) -> dict[str, object]:
        return {"file": self.path, "line": self.line, "column": self.column}


class TransientError(ImagesyncError):
    """A failure that may go away on retry (throttling, 5xx, connection trouble)."""


class PermanentError(ImagesyncError):
    """A failure that will not go away on retry."""
