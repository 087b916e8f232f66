"""Plan: compare the desired model with live state and decide every change, in order.

For each target, resources are visited dependencies first. A versioned resource (component,
workflow, recipe) is hashed over its canonical Create request, with references resolved to the
exact versions this plan will leave live; so a new component version changes its recipes' hash,
which publishes new recipe versions, which moves their pipelines: the cascade falls out of
ordinary hashing. Mutable kinds are diffed field by field after normalization and updated with
their full-replacement Update call. Deletions (only with `--prune`) come last, dependents first.
`plan_target` is pure; `make_plan` reads live state and calls it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from imagesync import __version__, arns, versioning
from imagesync.aws import Backoff, CallCounter, Connector
from imagesync.desired import Address, DesiredState, Project, Reference, Resource, Target
from imagesync.diff import diff, document_diff, normalize
from imagesync.documents import UPLOAD, upload_call_params, with_s3_documents
from imagesync.errors import UserError
from imagesync.kinds import REGISTRY, Kind, arn_name, thaw
from imagesync.kinds import sharing as shares
from imagesync.live import (
    ADDRESS_TAG,
    DEFAULT_CONCURRENCY,
    HASH_TAG,
    PROJECT_TAG,
    PRUNE_TAG,
    SHARING_TAG,
    VERSION_TAG,
    LiveResource,
    LiveState,
    LiveVersion,
    ReadAbandoned,
    Specs,
    owns,
    read_live,
)
from imagesync.logs import get_logger
from imagesync.manifest.awstoe import load_document
from imagesync.manifest.loader import sensitive_paths
from imagesync.plan_model import (
    CREATE,
    DELETE,
    DELETE_VERSIONS,
    NO_OP,
    PUBLISH,
    UPDATE,
    ApiCall,
    Conflict,
    DiffItem,
    Plan,
    ResourceChange,
    TargetPlan,
    VersionChange,
    qualified,
)

log = get_logger(__name__)

# Dependents first, derived from what each kind references.
DELETE_ORDER = REGISTRY.deletion_order()


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()  # empty: every target
    prune: bool = False
    allow_empty: bool = False
    refresh_only: bool = False
    concurrency: int = DEFAULT_CONCURRENCY  # reads in flight per target
    # (INDEX, COUNT): only the targets whose name hashes to shard INDEX of COUNT (`--shard`).
    shard: tuple[int, int] | None = None


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Is target `name` in `shard`? Decided by a hash of the name alone, so every process that
    splits a project the same way agrees, whatever order or machine it runs in."""
    if shard is None:
        return True
    index, count = shard
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % count == index


def selected_targets(
    desired: DesiredState, names: tuple[str, ...], shard: tuple[int, int] | None = None
) -> list[Target]:
    known = {t.name: t for t in desired.project.targets}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown target(s): {', '.join(unknown)}; imagesync.yaml defines: {', '.join(known)}")
    chosen = [known[n] for n in names] if names else list(desired.project.targets)
    return [t for t in chosen if in_shard(t.name, shard)]


class EarlyReads:
    """Live reads of the selected targets, started before the manifests have loaded.

    Made from the project file alone: one thread makes the targets' clients (in order, as
    `make_plan` would, verifying each account first) and starts each target's reading, whose
    lists go ahead while the loader parses; the first read that needs the manifests waits for
    `provide()`. `abandon()` (the manifests failed) ends them at their next step, a retry's wait
    included, and `make_plan` takes over what they read. Errors are kept and raised by `make_plan`
    where it would have met them itself, so a bad manifest is still the error a user sees first.
    """

    def __init__(
        self, connector: Connector, project: Project, options: PlanOptions, counter: CallCounter | None = None
    ) -> None:
        known = {t.name: t for t in project.targets}
        self.project = project
        self.options = options
        chosen = [known[n] for n in options.targets if n in known] if options.targets else list(known.values())
        self.targets = [t for t in chosen if in_shard(t.name, options.shard)]
        self._manifests: Future[DesiredState] = Future()
        self._stop = threading.Event()
        self._clients: dict[str, Any] = {}
        self._client_error: BaseException | None = None
        self._readings: dict[str, Future[LiveState]] = {}
        self._pool = ThreadPoolExecutor(max_workers=len(self.targets) + 1, thread_name_prefix="imagesync-early")
        self._started = self._pool.submit(self._start, connector, counter)

    def _start(self, connector: Connector, counter: CallCounter | None) -> None:
        for target in self.targets:
            try:
                self._clients[target.name] = connector.imagebuilder(target)
            except BaseException as exc:  # kept for make_plan, which raises it where it makes clients
                self._client_error = exc
                return
        for target in self.targets:
            client = self._clients[target.name]
            self._readings[target.name] = self._pool.submit(self._read, client, target, counter)

    def _read(self, client: Any, target: Target, counter: CallCounter | None) -> LiveState:
        def later() -> tuple[dict[str, set[str]], Specs]:
            return _wanted(self._manifests.result(), target)

        def sleep(seconds: float) -> None:  # a retry's wait ends when the reads are abandoned
            if self._stop.wait(seconds):
                raise ReadAbandoned(f"reading {target.name} was abandoned")

        return read_live(
            client,
            later=later,
            concurrency=self.options.concurrency,
            counter=counter,
            backoff=Backoff(sleep=sleep),
            project=self.project.name,
            thorough=self.options.prune,
            target=target.name,
            cancelled=self._stop,
        )

    def provide(self, desired: DesiredState) -> None:
        """The manifests have loaded: reads waiting for them go on."""
        self._manifests.set_result(desired)

    def abandon(self) -> None:
        """The manifests failed to load: stop reading, without waiting for calls in flight."""
        self._stop.set()
        if not self._manifests.done():
            self._manifests.set_exception(ReadAbandoned("the manifests did not load"))
        self._pool.shutdown(wait=False)

    def close(self) -> None:
        """The plan is made: let the idle threads go."""
        self._pool.shutdown(wait=False)

    def clients_made(self) -> None:
        """Wait until the clients are made (the connector is not used by two threads at once)."""
        self._started.result()

    def client(self, target: Target) -> Any | None:
        """The target's client, or None if these reads did not make one; raises what making
        the clients raised when this is the target it failed for."""
        if self._client_error is not None and target.name not in self._clients and self._covers(target):
            raise self._client_error
        return self._clients.get(target.name) if self._covers(target) else None

    def reading(self, target: Target, options: PlanOptions) -> Future[LiveState] | None:
        """The target's reading if it was started for these very options, else None."""
        if options != self.options or not self._covers(target):
            return None
        return self._readings.get(target.name)

    def _covers(self, target: Target) -> bool:
        return any(t == target for t in self.targets)


def _wanted(desired: DesiredState, target: Target) -> tuple[dict[str, set[str]], Specs]:
    """The names the target's manifests use, per kind, and their specs: what its reading needs."""
    wanted: dict[str, set[str]] = {}
    specs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for res in desired.for_target(target.name):
        wanted.setdefault(res.kind, set()).add(res.name)
        specs.setdefault(res.kind, {})[res.name] = res.spec
    return wanted, specs


def make_plan(
    desired: DesiredState,
    connector: Connector,
    options: PlanOptions,
    counter: CallCounter | None = None,
    early: EarlyReads | None = None,
) -> Plan:
    """Read live state for the selected targets and plan every change.

    `early` holds reads started before the manifests loaded (see `EarlyReads`); the targets they
    cover are not read again. The caller abandons or closes it.
    """
    if early is not None:
        early.provide(desired)
        early.clients_made()
    _refuse_shared_scopes(desired, connector)
    selected = selected_targets(desired, options.targets, options.shard)
    planned = with_upstream(desired, selected)  # the selected targets, after the ones they use
    desired = with_s3_documents(desired, connector, planned, counter)
    targets = []
    planners: dict[str, _TargetPlanner] = {}
    # A target planned only because a selected one uses it is never pruned by that plan.
    opts = {t.name: options if t in selected else dataclasses.replace(options, prune=False) for t in planned}
    for target in planned:
        if target not in selected:
            log.info("planning an upstream target too", target=target.name, why="a selected target uses its resources")
    # Every target's live state is read at once (reading one needs nothing of another); the
    # targets are then planned in order, each after the targets whose resources it uses.
    # Clients are made one at a time: boto3 does not promise that making them at once is safe.
    clients = {t.name: _early_client(early, t) or connector.imagebuilder(t) for t in planned}
    with ThreadPoolExecutor(max_workers=max(1, len(planned))) as pool:
        readings = {
            t.name: (early and early.reading(t, opts[t.name]))
            or pool.submit(_read_target, desired, clients[t.name], t, opts[t.name], counter)
            for t in planned
        }
        lives = {name: future.result() for name, future in readings.items()}
    for target in planned:
        own, live = opts[target.name], lives[target.name]
        planner = _TargetPlanner(desired, target, connector.account(target), live, own, planners)
        target_plan = planner.run()
        planners[target.name] = planner
        log.info(
            "planned",
            target=target.name,
            read=len(live.resources),
            pending=len(target_plan.pending),
            drift=len(target_plan.drift),
        )
        targets.append(target_plan)
    return Plan(
        targets=tuple(targets),
        project=desired.project.name,
        plan_id=uuid.uuid4().hex,
        imagesync_version=__version__,
        manifest_digest=desired.digest,
        manifest_root=portable_root(desired.root),
        options={
            "prune": options.prune,
            "allow_empty": options.allow_empty,
            "refresh_only": options.refresh_only,
            "targets": list(options.targets),
            **({"shard": list(options.shard)} if options.shard is not None else {}),
        },
    )


def _early_client(early: EarlyReads | None, target: Target) -> Any | None:
    return early.client(target) if early is not None else None


def _read_target(
    desired: DesiredState, client: Any, target: Target, options: PlanOptions, counter: CallCounter | None
) -> LiveState:
    wanted, specs = _wanted(desired, target)
    return read_live(
        client,
        wanted=wanted,
        concurrency=options.concurrency,
        counter=counter,
        project=desired.project.name,
        specs=specs,
        thorough=options.prune,
        target=target.name,
    )


def with_upstream(desired: DesiredState, selected: list[Target]) -> list[Target]:
    """The selected targets and every target they use resources of (`{ref: NAME, target: T}`),
    each after the targets it uses: a spoke's recipe can only move to what the hub has published
    and shared, so the hub is planned (and applied) first, as Terraform includes a target's
    dependencies. The loader has refused targets that use each other."""
    uses: dict[str, set[str]] = {t.name: set() for t in desired.project.targets}
    for res in desired:
        uses[res.target].update(t for t, _ in res.upstream)
    wanted: set[str] = set()
    todo = [t.name for t in selected]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(uses[name])
    order: list[Target] = []
    placed: set[str] = set()
    while len(order) < len(wanted):
        for target in desired.project.targets:  # project order among the targets that are ready
            if target.name in wanted and target.name not in placed and uses[target.name] <= placed:
                order.append(target)
                placed.add(target.name)
                break
        else:
            raise UserError("targets use each other's resources: " + ", ".join(sorted(wanted - placed)))
    return order


def portable_root(root: str) -> str:
    """The manifest root as a saved plan records it: relative to the working directory when it lies
    inside it, so a plan saved in one checkout applies in another checkout of the same commit."""
    real, cwd = os.path.realpath(root), os.path.realpath(os.getcwd())
    if real == cwd or real.startswith(cwd + os.sep):
        return os.path.relpath(real, cwd)
    return real


def _refuse_shared_scopes(desired: DesiredState, connector: Connector) -> None:
    """Two targets in one account and region would each see the other's resources as theirs."""
    seen: dict[tuple[str, str], str] = {}
    for target in desired.project.targets:
        scope = (connector.account(target), target.region)
        if scope in seen:
            raise UserError(
                f"targets '{seen[scope]}' and '{target.name}' are both account {scope[0]} in {scope[1]}; "
                "ownership is per project, account and region, so each would prune the other's resources: "
                "use one target (restrict manifests with metadata.targets) or separate projects"
            )
        seen[scope] = target.name


def plan_target(
    desired: DesiredState, target: Target, account: str, live: LiveState, options: PlanOptions
) -> TargetPlan:
    """The changes for one target that uses no other target's resources (pure: no API calls)."""
    planner = _TargetPlanner(desired, target, account, live, options, {})
    return planner.run()


class _TargetPlanner:
    def __init__(
        self,
        desired: DesiredState,
        target: Target,
        account: str,
        live: LiveState,
        options: PlanOptions,
        upstream: Mapping[str, _TargetPlanner],
    ) -> None:
        self.desired = desired
        self.upstream = upstream  # the planners of the targets this one uses, already run
        self.project = desired.project.name
        self.target = target
        self.account = account
        self.live = live
        self.options = options
        self.planned: dict[Address, str] = {}  # address -> ARN the plan leaves live
        self.moved: dict[Address, str] = {}  # address -> what changes (for cascade reasons)
        self.changes: list[ResourceChange] = []
        self.drift: list[ResourceChange] = []
        self.warnings: list[str] = []
        self.conflicts: list[Conflict] = []

    def run(self) -> TargetPlan:
        resources = self.desired.for_target(self.target.name)
        self._check_users()
        for res in resources:
            self._check_upstream(res)
            if res.kind_info.versioned:
                self._versioned(res)
            elif res.kind_info.rebuilt:
                self._rebuilt(res)
            else:
                self._mutable(res)
        self._prune(resources)
        changes = [c for c in self.changes if not self.options.refresh_only]
        fingerprints = {f"{k}/{r.name}": _fingerprint(r) for (k, _), r in sorted(self.live.resources.items())}
        return TargetPlan(
            target=self.target.name,
            region=self.target.region,
            account=self.account,
            changes=tuple(changes),
            drift=tuple(self.drift),
            fingerprint=versioning.content_hash(fingerprints),
            live_fingerprints=fingerprints,
            warnings=tuple(str(w) for w in self.desired.warnings_for(self.target.name)) + tuple(self.warnings),
            conflicts=tuple(self.conflicts),
        )

    # --- helpers --------------------------------------------------------------------------------

    def resolve(self, kind: str, name: str, form: str, in_target: str | None = None) -> str:
        if in_target is not None and in_target != self.target.name:  # what that target's plan leaves live there
            return self.upstream[in_target].resolve(kind, name, form)
        if form == "image":
            return arns.newest_image_arn(self.target.region, self.account, name)
        return self.planned[Address(kind, name)]

    def _base_arn(self, res: Resource) -> str:
        return res.kind_info.arn_base(self.target.region, self.account, res.name, res.spec)

    def _desired_tags(self, res: Resource) -> dict[str, str]:
        tags = dict(thaw(res.spec.get("tags") or {}))
        tags[PROJECT_TAG] = self.project
        tags[ADDRESS_TAG] = str(res.address)
        if res.annotations.get("imagesync/prune") == "disabled":
            tags[PRUNE_TAG] = "disabled"
        return tags

    def _cascade_reason(self, res: Resource) -> str | None:
        # A dependency referenced only with a pinned version moves nothing here.
        followed = {(ref.in_target, ref.target) for ref in res.references if ref.version is None}
        pinned = {(ref.in_target, ref.target) for ref in res.references if ref.version is not None} - followed
        moved = [f"{a} -> {self.moved[a]}" for a in res.depends_on if a in self.moved and (None, a) not in pinned]
        for target, address in res.upstream:  # what this target picks up from another one
            there = self.upstream[target].moved
            if address in there and (target, address) not in pinned:
                moved.append(f"{qualified(target, str(address))} -> {there[address]} (from target {target})")
        return ("dependency changed: " + ", ".join(moved)) if moved else None

    def _owner(self, ref: Reference) -> _TargetPlanner:
        """The planner of the target that manages what `ref` names."""
        return self.upstream[ref.in_target] if ref.in_target is not None else self

    def _check_pins(self, res: Resource) -> None:
        """A pinned version must be published (or be published by this plan): refused otherwise."""
        for ref in res.references:
            if ref.version is None:
                continue
            owner = self._owner(ref)
            live = owner.live.get(ref.target.kind, ref.target.name)
            published = [v.version for v in live.versions] if live is not None else []
            if ref.target in owner.moved and ref.target in owner.planned:
                published.append(arns.version_of(owner.planned[ref.target]))
            if not any(versioning.matches(ref.version, v) for v in published):
                have = ", ".join(published) or "none"
                raise UserError(
                    f"{self.target.name}:{res.address} ({ref.location}): pins {ref.target} {ref.version}, but no such "
                    f"version is published in target {owner.target.name} (published: {have}); pin a published "
                    "version, a wildcard such as 1.x.x, or leave the version out to follow the one this plan publishes"
                )

    def _check_upstream(self, res: Resource) -> None:
        """What this target uses from another must be in its region and shared with its account."""
        for ref in res.references:
            if ref.in_target is None:
                continue
            owner = self.upstream[ref.in_target]
            used = qualified(owner.target.name, str(ref.target))
            where = f"{self.target.name}:{res.address} ({ref.location}) uses {used}"
            if owner.target.region != self.target.region:
                raise UserError(
                    f"{where}, but target {owner.target.name} is in {owner.target.region} and {self.target.name} in "
                    f"{self.target.region}: Image Builder resources are regional, so a target can only use those of "
                    "a target in its own region"
                )
            if owner.account != self.account:
                self._refuse_unshared(where, ref, self.account)

    def _check_users(self) -> None:
        """What other targets use from this one stays shared with them: a plan of this target
        alone (`--target hub`) may not take a user's account (when declared) out of `sharing`."""
        for user in self.desired.project.targets:
            if user.name == self.target.name or user.account is None or user.account == self.account:
                continue
            for res in self.desired.for_target(user.name):
                for ref in res.references:
                    if ref.in_target == self.target.name:
                        used = qualified(self.target.name, str(ref.target))
                        where = f"{user.name}:{res.address} ({ref.location}) uses {used}"
                        self._refuse_unshared(where, ref, user.account)

    def _refuse_unshared(self, where: str, ref: Reference, account: str) -> None:
        owner = ref.in_target
        if ref.form == "image":
            what = f"no image built from {ref.target} in target {owner} is shared"
        else:
            what = f"{ref.target} in target {owner} is not shared"
        if not any(shares.grants(shares.wanted(r.spec), account) is not False for r in self._sharers(ref)):
            raise UserError(
                f"{where}, but {what} with account {account}: add {account} to its spec.sharing.accounts "
                "(or an organization or organizational unit the account is in)"
            )

    def _sharers(self, ref: Reference) -> list[Resource]:
        """What another target shares for `ref` to work here: a component or recipe is shared
        itself; a parent image (`form: image`) through the images built there from the recipe."""
        assert ref.in_target is not None
        if ref.form != "image":
            found = self.desired.get(ref.in_target, ref.target)
            return [found] if found is not None else []
        return [
            r
            for r in self.desired.for_target(ref.in_target)
            if r.kind_info.rebuilt
            and r.kind_info.sharing is not None
            and any(x.target == ref.target and x.in_target is None for x in r.references)
        ]

    def _upstream_deps(self, res: Resource) -> tuple[str, ...]:
        """The other targets' changes this one waits for, as `target:Kind/name`: what it references
        there, and the images that share a parent image it uses (so a failed build stops it)."""
        found = {qualified(t, str(a)) for t, a in res.upstream}
        for ref in res.references:
            if ref.in_target is not None and ref.form == "image":
                found.update(qualified(ref.in_target, str(r.address)) for r in self._sharers(ref))
        return tuple(sorted(found))

    def _sharing(
        self,
        res: Resource,
        live_res: LiveResource | None,
        arn: str | None,
        live_tags: Mapping[str, str],
        tags: dict[str, str],
    ) -> tuple[list[ApiCall], list[DiffItem]]:
        """The policy call that makes the live sharing what the spec says, and its diff; `arn` is
        the existing version or instance it applies to (with `live_tags`), None for one this change
        creates: the call then takes the ARN the Create returns. Sets the sharing tag in `tags`."""
        sharing = res.kind_info.sharing
        if sharing is None:
            return [], []
        want = shares.wanted(res.spec)
        have: shares.Principals | None = {}
        if arn is not None and live_res is not None and live_res.policy_read:
            have = shares.principals(sharing, live_res.policy)
        if want:
            tags[SHARING_TAG] = shares.marker(want)
        if have == want:
            return [], []
        if not want:
            if have is None or have:  # still shared: the tag stays, so later plans read it and say so again
                if SHARING_TAG in live_tags:
                    tags[SHARING_TAG] = live_tags[SHARING_TAG]
                who = ", ".join(p for c in shares.CATEGORIES for p in (have or {}).get(c, ())) or "other accounts"
                self.warnings.append(
                    f"{res.address}: spec.sharing was removed, but Image Builder has no call that withdraws a "
                    f"resource policy: {arn} stays shared with {who} until it is deleted or its AWS RAM resource "
                    "share is removed"
                )
            return [], []
        before = have or {}
        items = [
            DiffItem(
                "add" if c not in before else "remove" if c not in want else "change",
                f"spec.sharing.{c}",
                before.get(c),
                want.get(c),
            )
            for c in shares.CATEGORIES
            if before.get(c) != want.get(c)
        ]
        if have is None:
            items.append(DiffItem("change", "spec.sharing", "(a policy imagesync did not write)", want))
        params: dict[str, Any] = {"policy": shares.policy(sharing, want)}
        if arn is not None:
            params[sharing.arn_member] = arn
        return [ApiCall(sharing.put_op, params, created_arn_into=None if arn else sharing.arn_member)], items

    def _tag_calls(
        self, arn: str, live_tags: Mapping[str, str], wanted: Mapping[str, str]
    ) -> tuple[list[ApiCall], list[DiffItem]]:
        to_set = {k: v for k, v in wanted.items() if live_tags.get(k) != v}
        to_remove = sorted(k for k in live_tags if k not in wanted and not k.startswith("aws:"))
        calls, items = [], []
        if to_set:
            calls.append(ApiCall("TagResource", {"resourceArn": arn, "tags": to_set}))
        if to_remove:
            calls.append(ApiCall("UntagResource", {"resourceArn": arn, "tagKeys": to_remove}))
        for k in sorted(to_set):
            items.append(DiffItem("change" if k in live_tags else "add", f"tags.{k}", live_tags.get(k), to_set[k]))
        for k in to_remove:
            items.append(DiffItem("remove", f"tags.{k}", live_tags[k], None))
        return calls, items

    def _change(self, res: Resource, action: str, **kw: Any) -> ResourceChange:
        return ResourceChange(
            target=self.target.name,
            kind=res.kind,
            name=res.name,
            action=action,
            depends_on=tuple(str(a) for a in res.depends_on) + self._upstream_deps(res),
            sensitive_paths=_sensitive_paths(res),
            makes_outputs=res.kind_info.awaited is not None and res.kind_info.awaited.outputs is not None,
            **kw,
        )

    # --- conflicts ------------------------------------------------------------------------------

    def _conflict(self, res: Resource, arn: str, tag_hint: str) -> None:
        """A same-named resource exists that this project does not own: never used, never changed."""
        self.conflicts.append(
            Conflict(
                self.target.name,
                str(res.address),
                f"{res.address} ({res.location}) names {arn}, which exists in target {self.target.name} but is "
                f"not managed by project '{self.project}'. imagesync will not use or change it. To manage it "
                f"with these manifests, adopt it by tagging it: aws imagebuilder tag-resource --resource-arn "
                f"{arn} --tags {tag_hint} (then plan shows what applying the manifest changes); or rename the "
                "manifest's resource.",
            )
        )

    # --- versioned kinds ------------------------------------------------------------------------

    def _versioned(self, res: Resource) -> None:
        kind = res.kind_info
        self._check_pins(res)
        body = kind.create_request(res.spec, res.name, self.resolve, version="0.0.0", document=res.document)
        uploads = _s3_document(kind, res, body)
        content = _canonical_content(kind, body, str(res.spec["version"]), res.document_value)
        content_hash = versioning.content_hash(content)
        live_res = self.live.get(res.kind, res.name)
        versions = live_res.versions if live_res else []
        newest = versions[-1] if versions else None
        wanted_tags = {**self._desired_tags(res), HASH_TAG: content_hash}
        base = self._base_arn(res)
        managed = live_res is not None and live_res.managed_by(self.project)
        shown = {**_shown_content(kind, body, res.document), **_shown_sharing(res)}

        if live_res is not None and newest is not None and not live_res.known_to(self.project):
            tags = f"{PROJECT_TAG}={self.project},{ADDRESS_TAG}={res.address},{VERSION_TAG}={newest.version}"
            self._conflict(res, newest.build_arn or newest.arn, tags)
            self.planned[res.address] = newest.arn
            return

        live_hash = (newest.tags or {}).get(HASH_TAG) if newest is not None else None
        if newest is not None and managed and (live_hash == content_hash or self._same_uri_document(res, body, newest)):
            self.planned[res.address] = newest.arn
            tag_target = newest.build_arn or newest.arn
            wanted_tags[VERSION_TAG] = newest.version
            share_calls, share_items = self._sharing(res, live_res, tag_target, newest.tags or {}, wanted_tags)
            tag_calls, tag_items = self._tag_calls(tag_target, newest.tags or {}, wanted_tags)
            calls = tag_calls + share_calls
            self.changes.append(
                self._change(
                    res,
                    UPDATE if calls else NO_OP,
                    before=_versioned_view(newest.version, _live_content(kind, newest), newest.tags or {}),
                    after=_versioned_view(newest.version, shown, wanted_tags),
                    diff=tuple(tag_items + share_items),
                    calls=tuple(calls),
                    reason=_update_reason(tag_calls, share_calls),
                )
            )
            return

        level = str(res.spec.get("bump") or self.desired.project.defaults.get("bump") or "patch")
        latest = newest.version if newest else None
        # The live document parsed once (with the loader's limits), the desired one as loaded.
        live_document = load_document(newest.document) if kind.builds is not None and newest is not None else None
        desired_document = thaw(res.document_value)
        if level == "auto":
            level = versioning.auto_level(live_document, desired_document) if live_document else "patch"
        spec_version = str(res.spec["version"])
        try:
            next_version = versioning.next_version(spec_version, latest, level, tuple(v.version for v in versions))
        except ValueError as exc:
            raise UserError(f"{self.target.name}:{res.address} ({res.location}): {exc}") from exc
        items: list[DiffItem] = []
        if kind.builds is not None and newest is not None:
            items = document_diff(newest.document, res.document, live_document, desired_document)
        if newest is None:
            reason, action = "new resource", CREATE
        elif not managed:
            reason = f"version {newest.version} was published outside imagesync; publishing above it"
            action = PUBLISH
            self.drift.append(
                self._change(
                    res,
                    PUBLISH,
                    reason=f"version {newest.version} of {res.address} was not published by imagesync",
                    version=VersionChange(newest.version, next_version, "drift"),
                )
            )
        else:
            action = PUBLISH
            reason = self._cascade_reason(res) or self._publish_reason(res, newest, spec_version, next_version, items)
            if level != "patch":
                reason += f" ({level} bump)"
        version_tags = {**wanted_tags, VERSION_TAG: next_version}
        # The new version is shared as the spec says, whatever the one before it was shared with.
        share_calls, share_items = self._sharing(res, None, None, {}, version_tags)
        if newest is not None and (newest.tags or {}).get(SHARING_TAG) != version_tags.get(SHARING_TAG):
            items += share_items
        request = {**body, "semanticVersion": next_version, "tags": version_tags}
        self.planned[res.address] = f"{base}/{next_version}"
        self.moved[res.address] = next_version
        self.changes.append(
            self._change(
                res,
                action,
                before=_versioned_view(newest.version, _live_content(kind, newest), newest.tags or {})
                if newest is not None
                else None,
                after=_versioned_view(next_version, shown, version_tags),
                diff=tuple(items),
                version=VersionChange(latest, next_version, reason),
                reason=reason,
                calls=(*uploads, ApiCall(kind.create_op, request, idempotent_token=True), *share_calls),
            )
        )

    def _same_uri_document(self, res: Resource, body: dict[str, Any], newest: LiveVersion) -> bool:
        """A version published from the manifest's own `uri` before imagesync read S3 documents
        carries a hash of the request naming the URI: it is the same content when its live
        document is the one the object holds now (the hash tag is then brought up to date)."""
        obj = res.document_object
        if obj is None or obj.upload or newest.document is None or res.document_value is None:
            return False
        kind = res.kind_info
        legacy = versioning.content_hash(_canonical_content(kind, body, str(res.spec["version"]), None))
        return (newest.tags or {}).get(HASH_TAG) == legacy and load_document(newest.document) == thaw(
            res.document_value
        )

    def _publish_reason(
        self, res: Resource, newest: LiveVersion, spec_version: str, next_version: str, items: list[DiffItem]
    ) -> str:
        """Why a managed resource gets a new version, without claiming more than is known."""
        raised = (
            next_version == spec_version
            and not spec_version.endswith(".x")
            and versioning.parse(spec_version) > versioning.parse(newest.version)
        )
        if raised and res.kind_info.builds is not None and not items:
            return f"version raised to {spec_version} in the manifest"
        if raised:
            return f"version raised to {spec_version} in the manifest, content changed"
        return "content changed"

    # --- mutable kinds --------------------------------------------------------------------------

    def _mutable(self, res: Resource) -> None:
        kind = res.kind_info
        self._check_pins(res)  # a lifecycle policy may select a pinned recipe version
        body = kind.create_request(res.spec, res.name, self.resolve)
        body.pop("tags", None)
        desired_fields = normalize(res.kind, {k: v for k, v in body.items() if k != "name"})
        content_hash = versioning.content_hash(desired_fields)
        wanted_tags = {**self._desired_tags(res), HASH_TAG: content_hash}
        live_res = self.live.get(res.kind, res.name)
        after = {"spec": desired_fields, "tags": wanted_tags}
        if live_res is None:
            self.planned[res.address] = kind.arn_base(self.target.region, self.account, res.name)
            self.moved[res.address] = "created"
            self.changes.append(
                self._change(
                    res,
                    CREATE,
                    after=after,
                    reason="new resource",
                    calls=(ApiCall(kind.create_op, {**body, "tags": wanted_tags}, idempotent_token=True),),
                )
            )
            return
        assert live_res.arn is not None
        self.planned[res.address] = live_res.arn
        if not live_res.managed_by(self.project):
            self._conflict(res, live_res.arn, f"{PROJECT_TAG}={self.project},{ADDRESS_TAG}={res.address}")
            return
        live_fields = normalize(res.kind, live_res.body or {})
        items = diff(live_fields, desired_fields, "spec")
        calls: list[ApiCall] = []
        reason = ""
        if items:
            calls.append(
                ApiCall(
                    kind.update_op or "",
                    kind.update_request(res.spec, res.name, live_res.arn, self.resolve),
                    idempotent_token=True,
                )
            )
            self.moved[res.address] = "updated"
            if live_res.tags.get(HASH_TAG) == content_hash:
                reason = "changed outside imagesync; restoring the manifest's values"
                self.drift.append(self._change(res, UPDATE, diff=tuple(items), reason=reason))
            else:
                reason = self._cascade_reason(res) or "manifest changed"
        tag_calls, tag_items = self._tag_calls(live_res.arn, live_res.tags, wanted_tags)
        calls.extend(tag_calls)
        if not items and tag_items:
            reason = "tags changed"
        self.changes.append(
            self._change(
                res,
                UPDATE if calls else NO_OP,
                before={"spec": live_fields, "tags": dict(live_res.tags)},
                after=after,
                diff=tuple(items + [t for t in tag_items if t.path != f"tags.{HASH_TAG}"]),
                reason=reason,
                calls=tuple(calls),
            )
        )

    # --- rebuilt kinds (images) -------------------------------------------------------------------

    def _rebuilt(self, res: Resource) -> None:
        """An immutable, unversioned resource: built again whenever its Create request changes
        (a referenced recipe published a new version, say) or its newest instance failed."""
        kind = res.kind_info
        body = kind.create_request(res.spec, res.name, self.resolve)
        body.pop("tags", None)
        content_hash = versioning.content_hash(body)
        wanted_tags = {**self._desired_tags(res), HASH_TAG: content_hash}
        live_res = self.live.get(res.kind, res.name)
        after = {"spec": {**body, **_shown_sharing(res)}, "tags": wanted_tags}
        awaited = kind.awaited
        failed = live_res is not None and awaited is not None and live_res.state in awaited.failed
        if live_res is not None and live_res.arn and not failed and live_res.tags.get(HASH_TAG) == content_hash:
            self.planned[res.address] = live_res.arn
            share_calls, share_items = self._sharing(res, live_res, live_res.arn, live_res.tags, wanted_tags)
            tag_calls, tag_items = self._tag_calls(live_res.arn, live_res.tags, wanted_tags)
            calls = tag_calls + share_calls
            self.changes.append(
                self._change(
                    res,
                    UPDATE if calls else NO_OP,
                    before={"spec": body, "tags": dict(live_res.tags)},
                    after=after,
                    diff=tuple(tag_items + share_items),
                    reason=_update_reason(tag_calls, share_calls),
                    calls=tuple(calls),
                    outputs=live_res.outputs,
                )
            )
            return
        if live_res is None:
            reason = "new resource"
        elif failed:
            reason = f"the last build ({live_res.arn}) ended {live_res.state}; building again"
        else:
            reason = self._cascade_reason(res) or "manifest changed"
        # Its ARN is the service's to choose (the recipe's name, version and a build number): known
        # after apply. Nothing references an image today; a reference would read this marker.
        self.planned[res.address] = f"(the {res.address} built by this apply)"
        self.moved[res.address] = "rebuilt"
        # Shared once it is built: the executor puts the policy when the build has ended well.
        share_calls, _ = self._sharing(res, None, None, {}, wanted_tags)
        self.changes.append(
            self._change(
                res,
                CREATE,
                after=after,
                reason=reason,
                calls=(ApiCall(kind.create_op, {**body, "tags": wanted_tags}, idempotent_token=True), *share_calls),
            )
        )

    # --- pruning --------------------------------------------------------------------------------

    def _prune(self, resources: list[Resource]) -> None:
        wanted = {(r.kind, arn_name(r.name)) for r in resources}
        doomed = [
            r
            for (kind, key), r in self.live.resources.items()
            if (kind, key) not in wanted and r.managed_by(self.project)
        ]
        doomed.sort(key=lambda r: (DELETE_ORDER.index(r.kind), r.name))
        if doomed and not self.options.prune:
            names = ", ".join(f"{r.kind}/{r.name}" for r in doomed)
            self.warnings.append(f"managed but no longer in the manifests (run with --prune to delete): {names}")
            return
        if doomed and not resources and not self.options.allow_empty:
            self.warnings.append(
                f"the manifests define nothing for target {self.target.name}; refusing to delete "
                f"{len(doomed)} managed resource(s) without --allow-empty"
            )
            return
        for live_res in doomed:
            self._delete(live_res)
        if self.options.prune:
            self._retention(resources)

    def _delete(self, live_res: LiveResource) -> None:
        tags = live_res.tags if live_res.arn else ((live_res.newest.tags if live_res.newest else None) or {})
        if tags.get(PRUNE_TAG) == "disabled":
            self.warnings.append(f"{live_res.kind}/{live_res.name} is annotated imagesync/prune: disabled; kept")
            return
        kind = REGISTRY[live_res.kind]
        deleted: tuple[str, ...] = ()
        calls: tuple[ApiCall, ...]
        before: dict[str, Any]
        if kind.rebuilt:
            calls = tuple(ApiCall(kind.delete_op, {kind.arn_member: arn}) for arn in reversed(live_res.instances))
            before = {"spec": {}, "tags": dict(tags)}
        elif live_res.arn:
            calls = (ApiCall(kind.delete_op, {kind.arn_member: live_res.arn}),)
            before = {"spec": normalize(live_res.kind, live_res.body or {}), "tags": dict(tags)}
        else:
            versions = list(reversed(self._ours(live_res)))
            calls = tuple(ApiCall(kind.delete_op, {kind.arn_member: v.arn}) for v in versions)
            deleted = tuple(v.version for v in versions)
            newest = live_res.newest
            before = _versioned_view(newest.version if newest else None, {}, tags)
        self.changes.append(
            ResourceChange(
                target=self.target.name,
                kind=live_res.kind,
                name=live_res.name,
                action=DELETE,
                before=before,
                deleted_versions=deleted,
                reason="no longer in the manifests",
                calls=calls,
            )
        )

    def _ours(self, live_res: LiveResource) -> list[LiveVersion]:
        """Versions this project may delete: its own by their tags; for components and workflows,
        whose older versions' tags are not read, the executor checks each build before deleting."""
        address = f"{live_res.kind}/{live_res.name}"
        return [v for v in live_res.versions if v.tags is None or owns(v.tags, self.project, address, v.version)]

    def _retention(self, resources: list[Resource]) -> None:
        default_keep = int(self.desired.project.defaults.get("retainVersions") or 0)
        # Dependents first: a recipe version goes before the component versions it pins.
        for res in sorted(resources, key=lambda r: (DELETE_ORDER.index(r.kind), r.name)):
            keep = int(res.spec.get("retainVersions", default_keep) or 0)
            live_res = self.live.get(res.kind, res.name)
            if not res.kind_info.versioned or keep <= 0 or live_res is None:
                continue
            if res.annotations.get("imagesync/prune") == "disabled" or not live_res.known_to(self.project):
                continue
            users = self.desired.used_by(self.target.name, res.address)
            if users:
                # Image Builder refuses to delete a version its own account still uses, not one
                # another account's recipes use: what the users' recipes name is unknown here.
                self.warnings.append(
                    f"{res.address}: retainVersions {keep} deletes nothing, since target(s) {', '.join(users)} "
                    "use it and may still name older versions"
                )
                continue
            live_keep = keep - (1 if res.address in self.moved else 0)  # the new version counts
            ours = self._ours(live_res)
            old = ours[: max(0, len(ours) - max(live_keep, 0))]
            if not old:
                continue
            kind = res.kind_info
            self.changes.append(
                self._change(
                    res,
                    DELETE_VERSIONS,
                    deleted_versions=tuple(v.version for v in old),
                    reason=f"retainVersions {keep}: older versions are deleted unless something still references them",
                    calls=tuple(ApiCall(kind.delete_op, {kind.arn_member: v.arn}) for v in old),
                )
            )


def _shown_sharing(res: Resource) -> dict[str, Any]:
    """`sharing` as the plan shows it among the fields (it is sent with its own call)."""
    wanted = shares.wanted(res.spec) if res.kind_info.sharing is not None else {}
    return {"sharing": wanted} if wanted else {}


def _update_reason(tag_calls: list[ApiCall], share_calls: list[ApiCall]) -> str:
    return ", ".join(([] if not tag_calls else ["tags changed"]) + ([] if not share_calls else ["sharing changed"]))


def _shown_content(kind: Kind, body: dict[str, Any], document: str | None = None) -> dict[str, Any]:
    """A versioned resource's content as the plan shows it: the Create request without its
    identity, tags and version, the document under the manifest's name for it (`document`),
    also when the request names it in S3 (`uri`)."""
    shown = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("name", "semanticVersion", "tags")}
    doc = kind.document
    if doc is not None and doc.member in shown:
        shown[doc.inline_field] = shown.pop(doc.member)
    elif doc is not None and doc.uri_member in shown and document is not None:
        shown[doc.inline_field] = document
    return shown


def _s3_document(kind: Kind, res: Resource, body: dict[str, Any]) -> tuple[ApiCall, ...]:
    """A document imagesync uploads goes to S3 first, and the Create call names it by `uri`
    instead of sending it: returns the upload call (none for a document already in S3)."""
    obj, doc = res.document_object, kind.document
    if obj is None or doc is None or not obj.upload or res.document is None:
        return ()
    body.pop(doc.member, None)
    body[doc.uri_member] = obj.uri
    return (ApiCall(UPLOAD, upload_call_params(obj, res.document)),)


def _live_content(kind: Kind, version: LiveVersion) -> dict[str, Any]:
    """What the live reading knows of a version's content (components and workflows: the document)."""
    if kind.builds is None or kind.document is None or version.document is None:
        return {}
    return {kind.document.inline_field: version.document}


def _versioned_view(version: str | None, spec: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    return {"version": version, "spec": dict(spec), "tags": dict(tags)}


def _canonical_content(kind: Kind, body: dict[str, Any], spec_version: str, parsed: Any) -> dict[str, Any]:
    """What a versioned resource's hash covers: the Create request, its YAML document as the
    loader parsed it (so formatting alone changes nothing), no tags."""
    content = copy.deepcopy(body)
    content.pop("semanticVersion", None)
    content.pop("tags", None)
    content["version"] = spec_version
    doc = kind.document
    if doc is not None and doc.parsed and parsed is not None and doc.uri_member in content:
        # The same document in S3 is the same content: where it is kept is not hashed.
        del content[doc.uri_member]
        content[doc.member] = None
    if doc is not None and doc.parsed and parsed is not None and doc.member in content:
        content[doc.member] = thaw(parsed)
    return content


def _fingerprint(live_res: LiveResource) -> str:
    seen: dict[str, Any] = {
        "arn": live_res.arn,
        "tags": live_res.tags,
        "body": live_res.body,
        "versions": [(v.version, v.tags, v.document) for v in live_res.versions],
    }
    if live_res.instances:  # rebuilt kinds: a build that ends (or a new one) is a change in live state
        seen.update(instances=live_res.instances, state=live_res.state, outputs=live_res.outputs)
    return versioning.content_hash(seen)


def _sensitive_paths(res: Resource) -> tuple[str, ...]:
    """Where the plan's `before`/`after` and diffs hold a value the manifest marks sensitive."""
    return tuple(sensitive_paths(res.spec))
