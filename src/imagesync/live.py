"""Read live Image Builder state for one target with the fewest calls.

Every List call is followed to its last `nextToken` (pages can be short or empty while more
follow). A resource gets one Get only where its list item cannot describe it: the newest version
of each component and workflow (documents and tags are not listed), and each infrastructure,
distribution and lifecycle configuration whose name the manifests use (lists carry tags but not
every field). Recipes and pipelines are fully described by their lists. Gets run concurrently,
bounded by `concurrency`. Called by the planner; returns plain data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from imagesync import arns, service_model, versioning
from imagesync.arns import arn_name
from imagesync.aws import ApiError, Backoff, CallCounter, call
from imagesync.kinds import REGISTRY, Kind
from imagesync.kinds.ownership import (
    ADDRESS_TAG,
    HASH_TAG,
    PROJECT_TAG,
    PRUNE_TAG,
    SHARING_TAG,
    VERSION_TAG,
    owns,
)

__all__ = [
    "ADDRESS_TAG",
    "DEFAULT_CONCURRENCY",
    "HASH_TAG",
    "PROJECT_TAG",
    "PRUNE_TAG",
    "SHARING_TAG",
    "VERSION_TAG",
    "LiveResource",
    "LiveState",
    "LiveVersion",
    "ReadAbandoned",
    "Specs",
    "owns",
    "read_live",
]

DEFAULT_CONCURRENCY = 64  # measured (benchmarks/compare.py, 1,000 resources at 50 ms): 32 left reads waiting on
# latency (1.96 s against 1.72 s), 96 and 128 were no faster, and 64 costs 1 MiB more
OLDER_READS = 3

# Fields of Get responses that the service owns; never compared with the manifests.
READ_ONLY = frozenset(
    {
        "arn",
        "name",
        "dateCreated",
        "dateUpdated",
        "dateLastRun",
        "dateNextRun",
        "tags",
        "platform",
        "consecutiveFailures",
        "lastRunStatus",
        "owner",
        "timeoutMinutes",
    }
)


@dataclass(frozen=True)
class LiveVersion:
    """One published version of a versioned resource (its newest build)."""

    arn: str  # version ARN without build: .../component/NAME/1.2.3
    version: str
    tags: dict[str, str] | None = None  # None: not read (only the newest version is)
    build_arn: str | None = None
    document: str | None = None


@dataclass
class LiveResource:
    """What exists under one kind and name in a target."""

    kind: str
    name: str
    arn: str | None = None  # mutable kinds
    tags: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # mutable kinds: fields as the Create call names them
    versions: list[LiveVersion] = field(default_factory=list)  # versioned kinds, oldest first
    # Rebuilt kinds (images): every instance this project made under the name, oldest first; the
    # newest one is `arn`, with its `tags`, `state` and `outputs`.
    instances: list[str] = field(default_factory=list)
    state: str = ""
    outputs: Mapping[str, Any] | None = None
    # Shareable kinds: the resource policy of the newest version (or instance), when it was read
    # (`policy_read`): for resources the manifests share, or that imagesync shared before.
    policy: str | None = None
    policy_read: bool = False

    @property
    def newest(self) -> LiveVersion | None:
        return self.versions[-1] if self.versions else None

    def managed_by(self, project: str) -> bool:
        """Ours only when the address tag names this very resource and the project tag matches.

        For a versioned resource that is a statement about its newest version, whose version tag
        must also name that version (a hand-made copy keeps the tags of the version it copied).
        """
        address = f"{self.kind}/{self.name}"
        if REGISTRY[self.kind].versioned:
            newest = self.newest
            return newest is not None and owns(newest.tags, project, address, newest.version)
        return owns(self.tags, project, address)

    def known_to(self, project: str) -> bool:
        """Did `project` ever make this resource? A versioned one counts when any version read
        carries its project and address tags (a console edit on top of ours is drift, not a
        stranger's resource); a mutable one when it is managed."""
        address = f"{self.kind}/{self.name}"
        if REGISTRY[self.kind].versioned:
            return any(owns(v.tags, project, address) for v in self.versions if v.tags is not None)
        return owns(self.tags, project, address)


@dataclass
class LiveState:
    """Everything read for one target, by (kind, arn name)."""

    resources: dict[tuple[str, str], LiveResource] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> LiveResource | None:
        return self.resources.get((kind, arn_name(name)))


Specs = Mapping[str, Mapping[str, Mapping[str, Any]]]  # kind -> name -> spec, as the manifests give them


class ReadAbandoned(Exception):
    """A reading stopped because nothing will use it (the manifests it was for failed to load)."""


def read_live(
    client: Any,
    *,
    wanted: dict[str, set[str]] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    counter: CallCounter | None = None,
    backoff: Backoff | None = None,
    project: str | None = None,
    specs: Specs | None = None,
    thorough: bool = False,
    target: str | None = None,
    later: Callable[[], tuple[dict[str, set[str]], Specs]] | None = None,
    cancelled: threading.Event | None = None,
) -> LiveState:
    """Read every kind. `wanted` maps kind -> names the manifests use (these get full reads).

    Every kind is listed at once, each on its own thread, and a resource's read starts as soon as
    it can: a configuration's Get as soon as a list page names it, a component's or workflow's as
    soon as its kind's list has ended (only then is its newest version known). Reads share one
    pool of `concurrency` threads; the calls made are the same as reading in phases would make.

    A kind with its own reader (images, found by their address tag) is listed only when `specs`
    holds some of its kind or with `thorough` (pruning); its reader reads what those specs use, or
    with `thorough` everything listed, so instances whose manifest is gone are found too.

    With `project`, a component or workflow whose newest version that project did not publish also
    gets its older versions' tags read, newest first, until one of the project's own turns up (at
    most OLDER_READS more reads): that tells drift on a managed resource from a stranger's.

    A shareable resource's policy is read after its newest version's tags, when a manifest shares
    it or its tags say imagesync shared it.

    With `later` instead of `wanted` and `specs`, reading starts before the manifests are known:
    lists go ahead, and the first step that needs the manifests calls `later()`, which returns
    them once they have loaded (or raises, and the reading ends there). Once `cancelled` is set,
    no further call is made: the reading ends with `ReadAbandoned`.
    """
    state = LiveState()
    lock = threading.Lock()
    # Its own lock: a thread waiting here for the manifests must not hold up others recording what
    # they have found.
    asking = threading.Lock()
    given: list[tuple[dict[str, set[str]], Specs, set[tuple[str, str]]]] = []

    def manifests() -> tuple[dict[str, set[str]], Specs, set[tuple[str, str]]]:
        """What the manifests use and share; asked of `later` once, by whichever thread needs it first."""
        with asking:
            if not given:
                names, desired = later() if later is not None else (wanted or {}, specs or {})
                shared = {
                    (k, arn_name(n))
                    for k, by_name in desired.items()
                    for n, spec in by_name.items()
                    if "sharing" in spec
                }
                given.append((names, desired, shared))
            return given[0]

    def api(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if cancelled is not None and cancelled.is_set():
            raise ReadAbandoned(f"reading {target or 'live state'} was abandoned")
        return call(client, operation, params, counter=counter, backoff=backoff, target=target)

    def found(res: LiveResource) -> None:
        with lock:
            state.resources[(res.kind, arn_name(res.name))] = res

    def finish(res: LiveResource, kind: Kind, arn: str | None) -> None:
        """What a resource's reading takes after its list item: its Get, older tags, policy."""
        if arn is not None:
            _read_one(api, res, kind, arn)
        if project is not None and kind.builds is not None and len(res.versions) > 1 and not res.known_to(project):
            _read_older(api, res, kind, project)
        policy = _policy_to_read(res, kind, manifests()[2])
        if policy is not None:
            _read_policy(api, res, kind, policy)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as reads:
        jobs: list[Future[None]] = []

        def read(res: LiveResource, kind: Kind, arn: str | None) -> None:
            if arn is None and _policy_to_read(res, kind, manifests()[2]) is None:
                return  # the list item said everything
            with lock:
                jobs.append(reads.submit(finish, res, kind, arn))

        def list_kind(kind: Kind) -> None:
            # A kind with its own reader is listed only when there is something for it to find.
            if kind.reader is not None and not thorough and not manifests()[1].get(kind.name):
                return
            wanted_names: set[str] | None = None  # known once the first page needs it
            items: list[dict[str, Any]] = []
            params = _list_params(kind)
            while True:
                page = api(kind.list_op, params)
                rows = page.get(kind.list_key) or []
                if kind.versioned or kind.reader is not None:
                    items.extend(rows)  # complete only once the list has ended
                else:
                    if wanted_names is None and rows:
                        wanted_names = {arn_name(n) for n in manifests()[0].get(kind.name, set())}
                    for item in rows:
                        assert wanted_names is not None
                        res = LiveResource(kind.name, item["name"], arn=item["arn"], tags=dict(item.get("tags") or {}))
                        found(res)
                        if kind.listed_whole:
                            res.body = _create_fields(kind, item)
                            read(res, kind, None)
                        elif arn_name(item["name"]) in wanted_names:
                            read(res, kind, item["arn"])
                        else:
                            read(res, kind, None)
                token = page.get("nextToken")
                if not token:
                    break
                params = {**params, "nextToken": token}
            if kind.reader is not None:
                for res in _read_instances(api, kind, items, thorough, manifests()[1].get(kind.name, {}), project):
                    found(res)
                    read(res, kind, None)
            elif kind.versioned:
                grouped = LiveState()
                _group_versions(grouped, kind, items)
                for res in grouped.resources.values():
                    found(res)
                    newest = res.newest
                    read(res, kind, newest.arn if newest is not None and kind.builds is not None else None)

        kinds = list(REGISTRY)
        with ThreadPoolExecutor(max_workers=len(kinds)) as lists:
            for future in [lists.submit(list_kind, kind) for kind in kinds]:
                future.result()
        for job in list(jobs):  # every read was submitted by the time the lists ended
            job.result()
    return state


def _policy_to_read(res: LiveResource, kind: Kind, shared: set[tuple[str, str]]) -> str | None:
    """The ARN whose policy matters, for a shareable resource a manifest shares or that imagesync
    shared before (its tag says so), whose sharing may have been taken out of the manifest."""
    if kind.sharing is None:
        return None
    newest = res.newest
    arn = (newest.build_arn or newest.arn) if newest is not None else res.arn
    tags = (newest.tags if newest is not None else res.tags) or {}
    if arn and ((res.kind, arn_name(res.name)) in shared or SHARING_TAG in tags):
        return arn
    return None


def _read_policy(api: Any, res: LiveResource, kind: Kind, arn: str) -> None:
    assert kind.sharing is not None
    try:
        res.policy = api(kind.sharing.get_op, {kind.sharing.arn_member: arn}).get("policy")
    except ApiError as err:
        if err.code != "ResourceNotFoundException":  # no policy: nothing is shared
            raise
    res.policy_read = True


def _read_instances(
    api: Any,
    kind: Kind,
    items: list[dict[str, Any]],
    every: bool,
    specs: Mapping[str, Mapping[str, Any]],
    project: str | None,
) -> list[LiveResource]:
    """A rebuilt kind's instances by the name their address tag gives (only `project`'s own, when
    given: the same address in another project is not ours), each name's newest last."""
    assert kind.reader is not None
    by_name: dict[str, list[Any]] = {}
    for instance in kind.reader(api, items, every, specs):
        if project is None or owns(instance.tags, project, f"{kind.name}/{instance.name}"):
            by_name.setdefault(instance.name, []).append(instance)
    found = []
    for name, instances in sorted(by_name.items()):
        instances.sort(key=lambda i: (i.created, i.arn))
        newest = instances[-1]
        found.append(
            LiveResource(
                kind.name,
                name,
                arn=newest.arn,
                tags=dict(newest.tags),
                instances=[i.arn for i in instances],
                state=newest.state,
                outputs=newest.outputs,
            )
        )
    return found


def _read_older(api: Any, res: LiveResource, kind: Kind, project: str) -> None:
    for index in range(len(res.versions) - 2, max(-1, len(res.versions) - 2 - OLDER_READS), -1):
        version = res.versions[index]
        item = api(kind.get_op, {kind.arn_member: version.arn})[kind.get_key]
        res.versions[index] = LiveVersion(
            arn=version.arn, version=version.version, tags=dict(item.get("tags") or {}), build_arn=item["arn"]
        )
        if res.known_to(project):
            return


def _list_params(kind: Kind) -> dict[str, Any]:
    return {"maxResults": 25, **kind.list_params}


def _group_versions(state: LiveState, kind: Kind, items: Iterable[dict[str, Any]]) -> None:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_name.setdefault(arn_name(item["name"]), []).append(item)
    for key, rows in by_name.items():
        rows.sort(key=lambda r: versioning.parse(_version_of(kind, r)))
        res = LiveResource(kind.name, rows[0]["name"])
        for row in rows:
            # Recipe summaries carry tags, so every recipe version's ownership is known from the list.
            res.versions.append(
                LiveVersion(
                    arn=row["arn"],
                    version=_version_of(kind, row),
                    tags=dict(row["tags"]) if "tags" in row and kind.builds is None else None,
                )
            )
        state.resources[(kind.name, key)] = res


def _version_of(kind: Kind, row: dict[str, Any]) -> str:
    if "version" in row:
        return arns.without_build(str(row["version"]))
    return arns.version_of(row["arn"])  # recipe summaries name the version only in the ARN


def _read_one(api: Any, res: LiveResource, kind: Kind, arn: str) -> None:
    item = api(kind.get_op, {kind.arn_member: arn})[kind.get_key]
    if kind.versioned:
        newest = res.newest
        assert newest is not None
        res.versions[-1] = LiveVersion(
            arn=newest.arn,
            version=newest.version,
            tags=dict(item.get("tags") or {}),
            build_arn=item["arn"],
            document=item.get(kind.document.member) if kind.document is not None else None,
        )
    else:
        res.tags = dict(item.get("tags") or {})
        res.body = _create_fields(kind, item)


def _create_fields(kind: Kind, item: dict[str, Any]) -> dict[str, Any]:
    """The live object restricted to what its Create call accepts, minus service-owned fields."""
    members = service_model.input_members(kind.create_op)
    return {k: v for k, v in item.items() if k in members and k not in READ_ONLY and k != "clientToken"}
