"""Semantic versions, bump rules and content hashing for immutable (versioned) kinds.

Pure functions, used by the planner: `next_version(spec, latest, level)` is
`max(spec, bump(latest, level))`; `auto_level` derives the bump from what changed in a component
document's parameters and steps; `content_hash` hashes canonical JSON, so key order and YAML
comments never change a hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from imagesync.arns import without_build
from imagesync.manifest import awstoe

Version = tuple[int, int, int]
LEVELS = ("patch", "minor", "major")
_VERSION_RE = re.compile(r"^([0-9]+)\.([0-9]+)\.([0-9]+)$")
MAX_NODE = 1073741823


def parse(text: str) -> Version:
    """`1.4.2` -> (1, 4, 2); a build suffix (`1.4.2/3`) is ignored."""
    match = _VERSION_RE.match(without_build(text))
    if not match:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch = (int(n) for n in match.groups())
    return (major, minor, patch)


def fmt(version: Version) -> str:
    return ".".join(str(n) for n in version)


def bump(version: Version, level: str) -> Version:
    major, minor, patch = version
    if level == "major":
        return (major + 1, 0, 0)
    if level == "minor":
        return (major, minor + 1, 0)
    if level == "patch":
        return (major, minor, patch + 1)
    raise ValueError(f"unknown bump level {level!r}; expected patch, minor or major")


def next_version(spec: str, latest: str | None, level: str, existing: tuple[str, ...] = ()) -> str:
    """The version to publish: the spec's base version, or the bumped latest live one if higher.

    A recipe's `M.m.x` asks for the next patch in the `M.m` series, as the service assigns it:
    one above the newest of `existing` in that series, or `M.m.0` for the first.
    """
    if spec.endswith(".x") and spec.count(".") == 2:
        series = parse(spec[:-1] + "0")[:2]
        patches = [parse(v)[2] for v in existing if parse(v)[:2] == series]
        patch = max(patches) + 1 if patches else 0
        if patch > MAX_NODE:
            raise ValueError(f"no patch above {fmt((*series, patch - 1))} fits Image Builder's limit of {MAX_NODE}")
        return fmt((*series, patch))
    wanted = parse(spec)
    if latest is None:
        return fmt(wanted)
    candidate = max(wanted, bump(parse(latest), level))
    if max(candidate) > MAX_NODE:
        raise ValueError(f"no version above {latest} fits Image Builder's limit of {MAX_NODE} per node")
    return fmt(candidate)


def auto_level(old: Any, new: Any) -> str:
    """`auto` bump from two parsed documents (the live one, the desired one): a removed or retyped
    parameter is major, an added parameter or step minor, anything else patch."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return "patch"
    old_params, new_params = awstoe.parameter_types(old), awstoe.parameter_types(new)
    if any(name not in new_params or new_params[name] != kind for name, kind in old_params.items()):
        return "major"
    if set(new_params) - set(old_params):
        return "minor"
    if set(awstoe.step_index(new)) - set(awstoe.step_index(old)):
        return "minor"
    return "patch"


def matches(pattern: str, version: str) -> bool:
    """Does `version` (x.y.z) match `pattern`: the same version, or `x` standing for any node?"""
    wanted, have = pattern.split("."), version.split(".")
    return len(wanted) == len(have) == 3 and all(w in ("x", h) for w, h in zip(wanted, have, strict=True))


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace; the input to every content hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def content_hash(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()[:32]
