"""The plan model: what will change, per target and resource, as plain immutable values.

Built by the planner, executed by `execute`, displayed by `render`. Renderers read only this
module. Every kind of change is its own action, so nothing downstream reads the human `reason`:

- `create`: the first version of a versioned resource, a new mutable resource, or a new build of
  a rebuilt one (an image);
- `publish`: a new version of an existing versioned resource (`version` says which);
- `update`: a mutable resource changed in place, or tags changed;
- `delete`: a whole resource, with each version it removes listed in `deleted_versions`;
- `delete-versions`: older versions beyond `retainVersions`, each listed; the resource stays.

The JSON form (`Plan.to_json`) is the saved plan and the `--format json` output; it follows the
shape of `terraform show -json` where that fits (`resource_changes[].change.{actions, before,
after}`, top-level `applyable`, `errored`, `complete`). Its schema is `schemas/plan.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imagesync.kinds.base import thaw as plain

FORMAT_VERSION = "2"

NO_OP, CREATE, UPDATE, PUBLISH, DELETE, DELETE_VERSIONS = (
    "no-op",
    "create",
    "update",
    "publish",
    "delete",
    "delete-versions",
)
ACTIONS = (NO_OP, CREATE, UPDATE, PUBLISH, DELETE, DELETE_VERSIONS)
DELETIONS = frozenset({DELETE, DELETE_VERSIONS})


_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> tuple[str | int, ...]:
    """`spec.components[1].value` -> `("spec", "components", 1, "value")`; ValueError if malformed."""
    segments: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if match is None:
            raise ValueError(f"malformed path {path!r} at offset {pos}")
        key, index = match.groups()
        segments.append(key if key is not None else int(index))
        pos = match.end()
    return tuple(segments)


def dotted(path: Iterable[Any]) -> str:
    """`spec.components[1].ref` for ("spec", "components", 1, "ref"): the inverse of `parse_path`,
    and imagesync's one way of writing a path into a spec."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def is_under(path: str, prefix: str) -> bool:
    """True when `path` is `prefix` or lies inside it (`a.b[0]` is under `a.b`, `a.bc` is not)."""
    if not prefix:
        return False
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def qualified(target: str, address: str) -> str:
    """An address unique across targets: `prod-use1:Component/harden-cis`."""
    return f"{target}:{address}"


@dataclass(frozen=True)
class DiffItem:
    """One field-level (or document step-level) difference: `op` is add, remove or change."""

    op: str
    path: str
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class VersionChange:
    """A new semantic version for an immutable resource, and why."""

    previous: str | None
    next: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"from": self.previous, "to": self.next, "reason": self.reason}


@dataclass(frozen=True)
class ApiCall:
    """One Image Builder call the executor makes for a change (clientToken added at run time)."""

    operation: str
    params: Mapping[str, Any]
    idempotent_token: bool = False  # the operation takes a clientToken
    # The member that takes the ARN this change's Create call returns (known only then), e.g. the
    # policy call that shares a version being published.
    created_arn_into: str | None = None


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one resource in one target."""

    target: str
    kind: str
    name: str
    action: str
    before: Mapping[str, Any] | None = None  # {"spec": ..., "tags": ..., "version": ...}, as live
    after: Mapping[str, Any] | None = None  # the same shape, as desired
    diff: tuple[DiffItem, ...] = ()
    version: VersionChange | None = None
    deleted_versions: tuple[str, ...] = ()  # delete / delete-versions: every version removed
    depends_on: tuple[str, ...] = ()
    reason: str = ""
    calls: tuple[ApiCall, ...] = ()
    sensitive_paths: tuple[str, ...] = ()
    # Kinds that make something (an image build's AMIs): what the live one made, or None while
    # only the apply will know. `makes_outputs` says whether the kind has outputs at all.
    outputs: Mapping[str, Any] | None = None
    makes_outputs: bool = False

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def qualified_address(self) -> str:
        return qualified(self.target, self.address)

    def secrets(self) -> tuple[str, ...]:
        """The text of every sensitive value this change carries, longest first, for scrubbing
        messages that might echo one (an API error quoting a parameter, say)."""
        found: list[str] = []
        for path in self.sensitive_paths:
            try:
                segments = parse_path(path)
            except ValueError:
                continue
            for document in (self.before, self.after):
                found.extend(_strings(_at(document, segments)))
        return tuple(sorted({s for s in found if len(s) >= 4}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """`text` with every sensitive value masked: whole, line by line, and each long word of it
        (a message may quote only part of a document; over-masking an error is the safe side)."""
        for secret in self.secrets():
            lines = [line.strip() for line in secret.splitlines() if len(line.strip()) >= 8]
            words = [word for word in secret.split() if len(word) >= 12]
            for piece in sorted({secret, *lines, *words}, key=len, reverse=True):
                text = text.replace(piece, "(sensitive)")
        return text

    def calls_digest(self) -> str:
        """A hash of exactly the calls this change makes (parameters included)."""
        calls = [[c.operation, plain(c.params)] for c in self.calls]
        for entry, c in zip(calls, self.calls, strict=True):
            if c.created_arn_into:
                entry.append(c.created_arn_into)
        material = [self.action, calls]
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        extra = {"outputs": plain(self.outputs)} if self.makes_outputs else {}
        return {
            "address": self.qualified_address,
            "target": self.target,
            "kind": self.kind,
            "name": self.name,
            "resource": self.address,
            "change": {
                "actions": [self.action],
                "before": plain(self.before),
                "after": plain(self.after),
            },
            "diff": [d.to_json() for d in self.diff],
            "version": self.version.to_json() if self.version else None,
            "deleted_versions": list(self.deleted_versions),
            # Another target's resource is named with its target already.
            "depends_on": [d if ":" in d else qualified(self.target, d) for d in self.depends_on],
            "reason": self.reason,
            "calls_digest": self.calls_digest(),
            **extra,
        }


@dataclass(frozen=True)
class Conflict:
    """A resource the plan cannot manage: a same-named resource exists that imagesync does not own."""

    target: str
    address: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"address": qualified(self.target, self.address), "target": self.target, "message": self.message}


@dataclass(frozen=True)
class TargetPlan:
    """The changes for one target, dependencies first (deletions last, dependents first)."""

    target: str
    region: str
    account: str
    changes: tuple[ResourceChange, ...] = ()
    drift: tuple[ResourceChange, ...] = ()
    fingerprint: str = ""
    live_fingerprints: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    conflicts: tuple[Conflict, ...] = ()

    @property
    def pending(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.changes if c.action != NO_OP)


@dataclass(frozen=True)
class Plan:
    """Everything `apply` would do, for every selected target."""

    targets: tuple[TargetPlan, ...]
    imagesync_version: str
    manifest_digest: str
    manifest_root: str
    options: Mapping[str, Any] = field(default_factory=dict)
    # Random per plan: clientTokens derive from it, so retries within an apply reuse their token
    # while a later plan (which re-reads live state first) never replays an old request.
    plan_id: str = ""
    project: str = ""
    # Why planning failed (bad manifests, an API error), for a plan saved only to report that:
    # it has no targets' changes and can never be applied.
    failure: str | None = None

    @classmethod
    def failed(
        cls, message: str, *, project: str, imagesync_version: str, manifest_root: str, options: Mapping[str, Any]
    ) -> Plan:
        """The record of a plan that could not be made: rendered and commented like any plan."""
        return cls(
            targets=(),
            imagesync_version=imagesync_version,
            manifest_digest="",
            manifest_root=manifest_root,
            options=options,
            project=project,
            failure=message,
        )

    def summary(self) -> dict[str, int]:
        counts = {PUBLISH: 0, CREATE: 0, UPDATE: 0, DELETE: 0}
        for target in self.targets:
            for change in target.pending:
                counts[DELETE if change.action in DELETIONS else change.action] += 1
        return {
            "publish": counts[PUBLISH],
            "create": counts[CREATE],
            "update": counts[UPDATE],
            "delete": counts[DELETE],
            "drift": sum(len(t.drift) for t in self.targets),
        }

    @property
    def has_changes(self) -> bool:
        return any(t.pending for t in self.targets)

    @property
    def has_drift(self) -> bool:
        return any(t.drift for t in self.targets)

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        return tuple(c for t in self.targets for c in t.conflicts)

    @property
    def errored(self) -> bool:
        return bool(self.conflicts) or self.failure is not None

    @property
    def refresh_only(self) -> bool:
        return bool(self.options.get("refresh_only"))

    @property
    def applyable(self) -> bool:
        return self.has_changes and not self.errored and not self.refresh_only

    @property
    def complete(self) -> bool:
        """Applying this plan converges every target (no errors, no target filter, not refresh-only)."""
        return not self.errored and not self.refresh_only and not self.options.get("targets")

    def changes_digest(self) -> str:
        """A hash of exactly what apply would send: every pending change's calls and parameters."""
        material = [[t.target, c.address, c.calls_digest()] for t in self.targets for c in t.pending]
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()

    def to_json(self, change_json: Callable[[ResourceChange], dict[str, Any]] | None = None) -> dict[str, Any]:
        """The plan as JSON data; `change_json` writes each change and drift (default: its `to_json`)."""
        write = change_json or ResourceChange.to_json
        return {
            "format_version": FORMAT_VERSION,
            "plan_id": self.plan_id,
            "project": self.project,
            "failure": None if self.failure is None else {"message": self.failure},
            "imagesync_version": self.imagesync_version,
            "manifest_digest": self.manifest_digest,
            "changes_digest": self.changes_digest(),
            "manifest_root": self.manifest_root,
            "options": dict(self.options),
            "applyable": self.applyable,
            "errored": self.errored,
            "complete": self.complete,
            "targets": [
                {
                    "name": t.target,
                    "region": t.region,
                    "account": t.account,
                    "fingerprint": t.fingerprint,
                    "live_fingerprints": dict(t.live_fingerprints),
                    "warnings": list(t.warnings),
                }
                for t in self.targets
            ],
            "resource_changes": [write(c) for t in self.targets for c in t.changes],
            "resource_drift": [write(c) for t in self.targets for c in t.drift],
            "errors": [c.to_json() for c in self.conflicts],
            "summary": self.summary(),
        }


def _at(document: Any, segments: tuple[str | int, ...]) -> Any:
    node = document
    for segment in segments:
        if isinstance(node, Mapping) and segment in node:
            node = node[segment]
        elif isinstance(node, (list, tuple)) and isinstance(segment, int) and 0 <= segment < len(node):
            node = node[segment]
        else:
            return None
    return node


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    if value is not None and not isinstance(value, bool):
        return [str(value)]
    return []



