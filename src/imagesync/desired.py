"""The desired model: typed, immutable objects per target and kind, built by the manifest loader.

A `DesiredState` holds the project settings and one `Resource` per (target, kind, name), with its
references resolved to other resources' addresses and a dependency order per target, and the
warnings the loader found. The planner compares it with live state; nothing here talks to AWS.
"""

from __future__ import annotations

import functools
import graphlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from imagesync.errors import Location
from imagesync.kinds import REGISTRY, Kind


@dataclass(frozen=True, order=True)
class Address:
    """`Kind/name`: a resource's identity within a target."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> Address:
        kind, _, name = text.partition("/")
        return cls(kind, name)


@dataclass(frozen=True)
class Target:
    """Where manifests are applied: one account and region."""

    name: str
    region: str
    account: str | None = None
    role_arn: str | None = None
    vars: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Project:
    """Settings from `imagesync.yaml`."""

    name: str
    targets: tuple[Target, ...]
    lock: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({"backend": "file"}))
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    allow_env: tuple[str, ...] = ()

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)


@dataclass(frozen=True)
class Reference:
    """One `{ref: NAME}` in a spec: where it stands and what it names."""

    path: tuple[str | int, ...]
    target: Address
    form: str
    location: Location
    version: str | None = None  # a pinned version (`1.2.3`, or `1.x.x` for the newest matching)
    # The target that manages what it names, when that is another target (`{ref: NAME, target: T}`):
    # the ARN is that target's, which must share it with this one's account.
    in_target: str | None = None


@dataclass(frozen=True)
class DocumentObject:
    """A document kept in S3: one imagesync uploads (`upload`, its key named by the content's
    SHA-256) because it is over the inline limit, or one the manifest's `uri` names, read at plan
    time. `location` is the manifest field it comes from."""

    bucket: str
    key: str
    location: Location
    upload: bool

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Resource:
    """One desired resource in one target. `spec` is deeply immutable (see `kinds.freeze`)."""

    target: str
    kind: str
    name: str
    spec: Mapping[str, Any]
    location: Location
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    references: tuple[Reference, ...] = ()
    document: str | None = None  # component/workflow document or Dockerfile template, as sent
    document_value: Any = None  # a YAML document as the loader parsed it (frozen); None for text
    document_object: DocumentObject | None = None  # where the document is in S3, if it is

    @functools.cached_property
    def address(self) -> Address:
        return Address(self.kind, self.name)

    @property
    def kind_info(self) -> Kind:
        return REGISTRY[self.kind]

    @property
    def depends_on(self) -> tuple[Address, ...]:
        """What must exist first in its own target: the resources it `{ref:}`s there and those its
        kind says it names."""
        named = self.kind_info.named_dependencies
        implied = {Address(kind, name) for kind, name in named(self.spec)} if named else set()
        return tuple(sorted({ref.target for ref in self.references if ref.in_target is None} | implied))

    @property
    def upstream(self) -> tuple[tuple[str, Address], ...]:
        """What it uses from other targets, as (target, address): applied there first."""
        return tuple(sorted({(ref.in_target, ref.target) for ref in self.references if ref.in_target is not None}))


@dataclass(frozen=True, order=True)
class ManifestWarning:
    """Something in the manifests that works but likely does not do what was meant: reported by
    `validate` and in the plan, never refused."""

    location: Location
    message: str
    target: str = ""  # the target whose resource it was found in ("" for none in particular)

    def __str__(self) -> str:
        return f"{self.location}: warning: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {**self.location.as_dict(), "message": self.message}


@dataclass(frozen=True)
class DesiredState:
    """Everything the manifests ask for, per target."""

    project: Project
    resources: Mapping[tuple[str, str, str], Resource]
    root: str
    digest: str
    warnings: tuple[ManifestWarning, ...] = ()  # sorted by place

    def warnings_for(self, target: str) -> tuple[ManifestWarning, ...]:
        """The warnings that concern `target`: those found in its resources, and general ones."""
        return tuple(w for w in self.warnings if w.target in ("", target))

    def distinct_warnings(self) -> tuple[ManifestWarning, ...]:
        """Each warning once, whichever targets it was found in."""
        return distinct_warnings(self.warnings)

    def for_target(self, target: str) -> list[Resource]:
        """The target's resources, dependencies first (a stable topological order)."""
        return list(self._orders[target]) if target in self._orders else []

    @functools.cached_property
    def _orders(self) -> dict[str, tuple[Resource, ...]]:
        """Every target's `for_target`, worked out once: planning asks for it more than once."""
        targets: dict[str, list[Resource]] = {}
        for r in self.resources.values():
            targets.setdefault(r.target, []).append(r)
        return {target: tuple(_ordered(rs)) for target, rs in targets.items()}

    def used_by(self, target: str, address: Address) -> tuple[str, ...]:
        """The other targets whose resources reference this one of `target` (`{ref:, target:}`)."""
        return tuple(sorted(self._users.get((target, address), ())))

    @functools.cached_property
    def _users(self) -> dict[tuple[str, Address], set[str]]:
        users: dict[tuple[str, Address], set[str]] = {}
        for res in self.resources.values():
            for used in res.upstream:
                if used[0] != res.target:
                    users.setdefault(used, set()).add(res.target)
        return users

    def get(self, target: str, address: Address) -> Resource | None:
        return self.resources.get((target, address.kind, address.name))

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources.values())


def distinct_warnings(warnings: Iterable[ManifestWarning]) -> tuple[ManifestWarning, ...]:
    """Each warning once, by place: one found in several targets' copies of a manifest is one."""
    seen: dict[tuple[Location, str], ManifestWarning] = {}
    for w in sorted(warnings):
        seen.setdefault((w.location, w.message), w)
    return tuple(seen.values())


def _ordered(resources: list[Resource]) -> list[Resource]:
    """One target's resources, dependencies first; among those ready together, by address."""
    mine = {r.address: r for r in resources}
    sorter: graphlib.TopologicalSorter[Address] = graphlib.TopologicalSorter()
    for address in sorted(mine, key=_by_address):
        sorter.add(address, *[d for d in mine[address].depends_on if d in mine])
    order: list[Resource] = []
    sorter.prepare()
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=_by_address)
        order.extend(mine[a] for a in ready)
        sorter.done(*ready)
    return order


def _by_address(address: Address) -> tuple[str, str]:
    return address.kind, address.name  # Address's own order, without its comparison methods
