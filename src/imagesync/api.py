"""imagesync's operations as functions that return data and never print: the CLI renders them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError, Problem
from imagesync.model import DesiredState


@dataclass(frozen=True)
class ValidationResult:
    """What `validate` found: the desired model when valid, every problem otherwise."""

    desired: DesiredState | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(root: str | os.PathLike[str]) -> ValidationResult:
    """Check the manifests under `root` offline: YAML, schemas, documents, references, cycles."""
    try:
        desired = load(root)
    except ManifestError as err:
        return ValidationResult(None, tuple(err.problems))
    return ValidationResult(desired)
