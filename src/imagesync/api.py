"""imagesync's operations as functions that return data and never print: the CLI renders them."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesync import __version__
from imagesync.aws import CallCounter, Connector
from imagesync.desired import DesiredState, ManifestWarning
from imagesync.errors import UserError
from imagesync.execute import DEFAULT_POLL_INTERVAL, Outcome, Progress, apply_plan
from imagesync.lock import lock_id, make_lock
from imagesync.manifest.loader import load, load_project
from imagesync.manifest.problems import ManifestError, Problem
from imagesync.plan_model import FORMAT_VERSION, Plan, qualified
from imagesync.planner import EarlyReads, PlanOptions, make_plan, selected_targets, with_upstream
from imagesync.render import json as render_json


@dataclass(frozen=True)
class ValidationResult:
    """What `validate` found: the desired model when valid, every problem otherwise."""

    desired: DesiredState | None
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    warnings: tuple[ManifestWarning, ...] = ()  # each once, by place; never make the manifests invalid

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(root: str | os.PathLike[str]) -> ValidationResult:
    """Check the manifests under `root` offline: YAML, schemas, documents, references, cycles."""
    try:
        desired = load(root)
    except ManifestError as err:
        return ValidationResult(None, tuple(err.problems), err.warnings)
    return ValidationResult(desired, warnings=desired.distinct_warnings())


# --- plan and apply -----------------------------------------------------------------------------


def lock_dir(desired: DesiredState) -> Path:
    """Where file locks live: the per-user state directory (`$XDG_STATE_HOME/imagesync/locks`),
    outside every checkout, so every clone on this machine meets the same lock and `git clean`
    cannot remove it; or `lock.path`, relative to the manifest root, when it is set."""
    from imagesync.lock import default_lock_dir

    path = desired.project.lock.get("path")
    return Path(desired.root).resolve() / str(path) if path else default_lock_dir()


class StalePlan(UserError):
    """A saved plan no longer matches the manifests or live state."""


class PlanErrored(UserError):
    """The plan has errors (resources it may not manage): nothing is applied."""

    def __init__(self, plan: Plan) -> None:
        lines = [f"{c.target}:{c.address}: {c.message}" for c in plan.conflicts]
        super().__init__("the plan has errors; nothing was applied:\n" + "\n".join(lines))
        self.plan = plan


def plan(
    root: str | os.PathLike[str], connector: Connector, options: PlanOptions, counter: CallCounter | None = None
) -> tuple[Plan, DesiredState]:
    """Load the manifests and plan every change for the selected targets.

    The selected targets' live state is read while the manifests load (see `EarlyReads`): only
    the project file is needed to start.
    """
    project = load_project(root, region=connector.options.region)
    early = EarlyReads(connector, project, options, counter) if project is not None else None
    try:
        desired = load(root, region=connector.options.region)
        if early is not None and early.project != desired.project:
            early.abandon()  # the project file changed under us: read it as it is now
            early = None
        made = make_plan(desired, connector, options, counter, early)
    except BaseException:
        if early is not None:
            early.abandon()
        raise
    if early is not None:
        early.close()
    return made, desired


def read_saved_plan(path: str | os.PathLike[str]) -> dict[str, object]:
    """A plan saved with `plan --out`, checked for the format imagesync writes."""
    try:
        with open(path, encoding="utf-8") as fh:
            saved = json.load(fh)
    except OSError as exc:
        raise UserError(f"cannot read plan file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}:{exc.colno}: not a saved imagesync plan: {exc.msg}") from exc
    if not isinstance(saved, dict) or saved.get("format_version") != FORMAT_VERSION or "manifest_root" not in saved:
        raise UserError(f"{path}: not a saved imagesync plan (format_version {FORMAT_VERSION} expected)")
    failure = saved.get("failure")
    if failure is not None:
        message = failure.get("message") if isinstance(failure, dict) else failure
        raise UserError(f"{path}: this plan failed, so there is nothing to apply; run plan again. It failed: {message}")
    if saved.get("errored"):
        errors = "; ".join(f"{e.get('address')}: {e.get('message')}" for e in _dicts(saved.get("errors")))
        raise UserError(f"{path}: this plan has errors, so nothing in it can be applied: {errors}")
    return saved


def saved_options(saved: dict[str, object]) -> PlanOptions:
    opts = saved.get("options") or {}
    assert isinstance(opts, dict)
    return PlanOptions(
        targets=tuple(opts.get("targets") or ()),
        prune=bool(opts.get("prune")),
        allow_empty=bool(opts.get("allow_empty")),
        refresh_only=bool(opts.get("refresh_only")),
        shard=_shard(opts.get("shard")),
    )


def _shard(value: object) -> tuple[int, int] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return value[0], value[1]
    return None


def check_fresh(saved: dict[str, object], desired: DesiredState, fresh: Plan) -> None:
    """Refuse a saved plan unless applying it now makes exactly the changes it shows.

    The manifests' files, every live object the plan read, and the saved file's own
    `resource_changes` (what a reviewer read, each with a digest of the exact calls it makes, which
    also covers masked values and `${env.*}`) must all equal what apply would do now. An edited
    file is refused as surely as a stale one.
    """
    if saved.get("imagesync_version") != __version__:
        raise StalePlan(
            f"the plan was made by imagesync {saved.get('imagesync_version')}, this is {__version__}; run plan again"
        )
    if saved.get("manifest_digest") != desired.digest:
        raise StalePlan(f"the manifests in {desired.root} changed since the plan was saved; run plan again")
    saved_targets = {t.get("name"): t for t in _dicts(saved.get("targets"))}
    changed: list[str] = []
    for target in fresh.targets:
        old = saved_targets.get(target.target, {}).get("live_fingerprints") or {}
        new = target.live_fingerprints
        for address in sorted(set(old) | set(new)):
            if old.get(address) != new.get(address):
                changed.append(qualified(target.target, address))
    if changed:
        raise StalePlan("live state changed since the plan was saved; run plan again. Changed: " + ", ".join(changed))
    now = json.loads(render_json.render_plan(fresh))
    differing = _differing(_dicts(saved.get("resource_changes")), now["resource_changes"])
    differing += _differing(_dicts(saved.get("errors")), now["errors"])
    if sorted(str(name) for name in saved_targets) != sorted(t.target for t in fresh.targets):
        differing.append("targets")
    if differing:
        raise StalePlan(
            "applying now would not make exactly the saved plan's changes (was the file edited?); "
            "nothing was applied. Run plan again. Different: " + ", ".join(differing)
        )


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _differing(saved: list[dict[str, Any]], now: list[dict[str, Any]]) -> list[str]:
    """Addresses whose change differs between two `resource_changes` lists (order included)."""
    by_address_saved = {str(c.get("address")): c for c in saved}
    by_address_now = {str(c.get("address")): c for c in now}
    names = sorted(set(by_address_saved) | set(by_address_now))
    differing = [a for a in names if by_address_saved.get(a) != by_address_now.get(a)]
    if not differing and [c.get("address") for c in saved] != [c.get("address") for c in now]:
        differing.append("the order of changes")
    if len(saved) != len(by_address_saved):
        differing.append("duplicate entries")
    return differing


def saved_root(saved: dict[str, object], plan_path: str | os.PathLike[str]) -> str:
    """Where a saved plan's manifests are: its recorded root, relative to the working directory
    (as `plan` recorded it) unless it is absolute."""
    root = str(saved.get("manifest_root") or "")
    if not os.path.isabs(root) and ".." in Path(root).parts:
        # `plan` records a relative root only for a directory inside the working directory.
        raise UserError(f"{plan_path}: not a saved imagesync plan: manifest_root {root!r} leaves the working directory")
    if not Path(root).is_dir():
        raise UserError(
            f"{plan_path}: the plan's manifests ({root}) are not in {os.getcwd()}; run apply from the "
            "directory plan ran in (the checkout's root, for a plan made there)"
        )
    return root


@contextmanager
def target_locks(
    desired: DesiredState, connector: Connector, options: PlanOptions, operation: str, timeout: float
) -> Iterator[None]:
    """Hold one writer lock per selected target for the duration of a `with` block.

    A lock is named after what it guards, `project/account/region`, so two checkouts (or two
    targets) writing the same account and region meet the same lock. Locks are taken in id order,
    so two applies over overlapping targets cannot each hold one and wait for the other. Against
    a sandbox the lock is always a file lock: nothing but the sandbox is contacted.
    """
    from imagesync.lock import warn_if_unshared

    config = {"backend": "file"} if connector.sandboxed else desired.project.lock
    warn_if_unshared(config, sandboxed=connector.sandboxed)
    session = None if connector.sandboxed else connector.boto_session()
    regions: dict[str, str] = {}
    # The targets a selected one uses are applied too, so they are locked too.
    for target in with_upstream(desired, selected_targets(desired, options.targets, options.shard)):
        # verify(): a target's credentials must act in its declared account before any lock (an
        # item in a DynamoDB table or S3 bucket of that account) is written.
        regions.setdefault(lock_id(desired.project.name, connector.verify(target), target.region), target.region)
    with ExitStack() as stack:
        for lock_name in sorted(regions):
            lock = make_lock(
                config, lock_name, directory=lock_dir(desired), session=session, region=regions[lock_name]
            )
            stack.enter_context(lock.held(operation, timeout=timeout))
        yield


def apply(
    source: str | os.PathLike[str],
    connector: Connector,
    options: PlanOptions,
    *,
    confirm: Callable[[Plan], bool] | None = None,
    lock_timeout: float = 0.0,
    parallelism: int = 4,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    on_progress: Progress | None = None,
    counter: CallCounter | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Plan, list[Outcome]]:
    """Plan (or re-check a saved plan) and execute it under the targets' locks; once `cancel` is
    set, changes in flight finish, the rest are `not-started`, and the locks are released as usual."""
    saved = None
    root = source
    if Path(source).is_file():
        saved = read_saved_plan(source)
        root = saved_root(saved, source)
        options = saved_options(saved)
    desired = load(root, region=connector.options.region)
    return apply_desired(
        desired,
        connector,
        options,
        saved=saved,
        confirm=confirm,
        lock_timeout=lock_timeout,
        parallelism=parallelism,
        poll_interval=poll_interval,
        on_progress=on_progress,
        counter=counter,
        cancel=cancel,
    )


def apply_desired(
    desired: DesiredState,
    connector: Connector,
    options: PlanOptions,
    *,
    saved: dict[str, object] | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    lock_timeout: float = 0.0,
    parallelism: int = 4,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    on_progress: Progress | None = None,
    counter: CallCounter | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Plan, list[Outcome]]:
    """`apply` of manifests already loaded (the reconcile loop loads them once per run)."""
    with target_locks(desired, connector, options, "apply", lock_timeout):
        fresh = make_plan(desired, connector, options, counter)
        if saved is not None:
            check_fresh(saved, desired, fresh)
            fresh = dataclasses.replace(fresh, plan_id=str(saved.get("plan_id") or fresh.plan_id))
        if fresh.errored:
            raise PlanErrored(fresh)
        if not fresh.has_changes:
            return fresh, []
        if confirm is not None and not confirm(fresh):
            return fresh, []
        return fresh, apply_plan(
            fresh,
            connector,
            desired,
            parallelism=parallelism,
            on_progress=on_progress,
            counter=counter,
            cancel=cancel,
            poll_interval=poll_interval,
        )
