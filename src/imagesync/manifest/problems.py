"""Problems found in manifests, each with the place it was found; collected, then raised at once.

Warnings (what works but likely is not meant) are collected beside them and carried on the
desired model, or on the error when there are problems too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from imagesync.desired import ManifestWarning, distinct_warnings
from imagesync.errors import Location, UserError


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in the user's files."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: error: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {**self.location.as_dict(), "message": self.message}


class ManifestError(UserError):
    """The manifests have problems; `problems` lists all of them, sorted by place."""

    def __init__(self, problems: list[Problem], warnings: list[ManifestWarning] | None = None) -> None:
        self.problems = sorted(set(problems))
        self.warnings = distinct_warnings(warnings or [])
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Problems:
    """A collector that checks append to, so one pass reports every problem."""

    items: list[Problem] = field(default_factory=list)
    warnings: list[ManifestWarning] = field(default_factory=list)

    def add(self, location: Location, message: str) -> None:
        self.items.append(Problem(location, message))

    def warn(self, location: Location, message: str, target: str = "") -> None:
        """Report something that is allowed but likely not meant: never makes the manifests invalid."""
        self.warnings.append(ManifestWarning(location, message, target))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ManifestError(self.items, self.warnings)


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """`; did you mean 'X'?` when `value` is a near miss of one of `choices` (any case), else ''."""
    if not isinstance(value, str) or not value:
        return ""
    folded = {c.lower(): c for c in sorted(choices)}
    if value.lower() in folded and folded[value.lower()] != value:
        return f"; did you mean '{folded[value.lower()]}'?"
    close = difflib.get_close_matches(value.lower(), [c for c in folded if c != value.lower()], n=1, cutoff=0.7)
    return f"; did you mean '{folded[close[0]]}'?" if close else ""

