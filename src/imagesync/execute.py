"""Apply a plan: make its API calls in dependency order, safely, and report every outcome.

Each create, publish and update carries a `clientToken` derived from the plan's id, the target,
the resource and the request, so a retried call (after throttling, a 5xx or a dropped
connection) is answered with the original result instead of publishing twice. A resumed apply
plans again first, and its fresh live reading shows what the interrupted one already did.
Changes run concurrently where the dependency graph allows (bounded by `parallelism`); when one
fails, its dependents are skipped and independent branches go on. Targets run in the plan's order
(each after the targets whose resources it uses); deletions run after every target's other
changes, one at a time, dependents first and the using targets' before the used ones'.

Cancellation (the CLI sets a `threading.Event` on SIGINT/SIGTERM): a change that has started runs
all its calls to the end, since its calls together are one consistent step (an update and its tag
calls); no change starts once the event is set, and each one left gets the outcome `not-started`.
A resumed apply plans again and picks those up.
"""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from imagesync import arns, versioning
from imagesync.aws import ApiError, Backoff, CallCounter, Connector, call, list_all
from imagesync.desired import Address, DesiredState
from imagesync.documents import UPLOAD, upload
from imagesync.errors import ImagesyncError
from imagesync.kinds import REGISTRY, Kind
from imagesync.kinds.base import Awaited
from imagesync.live import owns
from imagesync.logs import get_logger
from imagesync.plan_model import (
    CREATE,
    DELETE,
    DELETE_VERSIONS,
    DELETIONS,
    PUBLISH,
    UPDATE,
    ApiCall,
    Plan,
    ResourceChange,
    TargetPlan,
    qualified,
)

log = get_logger(__name__)

CREATED, PUBLISHED, UPDATED, DELETED = "created", "published", "updated", "deleted"
FAILED, SKIPPED, KEPT, NOT_STARTED = "failed", "skipped", "kept", "not-started"
WAITING = "waiting"  # progress only: a created resource whose work (a build) is under way
DEFAULT_POLL_INTERVAL = 30.0  # seconds between reads of a build in progress
_DONE_STATUS = {CREATE: CREATED, PUBLISH: PUBLISHED, UPDATE: UPDATED, DELETE: DELETED, DELETE_VERSIONS: DELETED}


@dataclass(frozen=True)
class Outcome:
    """What happened to one resource."""

    target: str
    address: str
    action: str
    status: str
    detail: str = ""
    error_code: str | None = None
    elapsed: float = 0.0
    outputs: dict[str, Any] | None = None  # what the resource made (an image's AMIs), once known

    @property
    def ok(self) -> bool:
        return self.status not in (FAILED, SKIPPED, NOT_STARTED)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "target": self.target,
            "address": self.address,
            "action": self.action,
            "status": self.status,
            "detail": self.detail,
            "error_code": self.error_code,
            "elapsed": round(self.elapsed, 3),
        }
        if self.outputs is not None:
            out["outputs"] = self.outputs
        return out


Progress = Callable[[Outcome], None]


def client_token(plan_id: str, target: str, change: ResourceChange, index: int, api_call: ApiCall) -> str:
    """Deterministic within a plan: the same plan, target, resource and request give the same token."""
    material = versioning.canonical([plan_id, target, change.address, index, api_call.operation, api_call.params])
    return hashlib.sha256(material.encode()).hexdigest()[:64]


def apply_plan(
    plan: Plan,
    connector: Connector,
    desired: DesiredState,
    *,
    parallelism: int = 4,
    on_progress: Progress | None = None,
    counter: CallCounter | None = None,
    backoff: Backoff | None = None,
    cancel: threading.Event | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    sleep: Callable[[float], None] | None = None,
) -> list[Outcome]:
    """Execute every pending change of every target; return one outcome per change.

    Once `cancel` is set, the changes in flight finish and every change not yet begun (in this
    target and the ones after it) is reported `not-started` without a call being made. A
    resource whose creation starts work that ends later (an image build) is read every
    `poll_interval` seconds until it is ready or failed; each state it passes through is
    reported to `on_progress` as a `waiting` outcome.
    """
    forward: dict[str, Outcome] = {}  # by `target:address`, for the targets that use them
    runners: list[_TargetRunner] = []
    # Creates, publishes and updates of every target first, each target after the targets whose
    # resources it uses; then deletions, the users' targets first, so nothing is deleted that a
    # later target's change still needs.
    for target_plan in plan.targets:
        target = desired.project.target(target_plan.target)
        runner = _TargetRunner(
            plan.plan_id,
            target_plan,
            connector.imagebuilder(target),
            desired.project.name,
            parallelism=parallelism,
            on_progress=on_progress,
            counter=counter,
            backoff=backoff,
            cancel=cancel,
            poll_interval=poll_interval,
            sleep=sleep,
            upstream=dict(forward),
        )
        runner.documents = _Documents(desired, connector, target)
        runner.run_forward()
        forward.update((qualified(o.target, o.address), o) for o in runner.outcomes.values())
        runners.append(runner)
    for runner in reversed(runners):
        users_unfinished = any(
            not o.ok and o.target != runner.plan.target and _uses(plan, o.target, runner.plan.target)
            for o in forward.values()
        )
        runner.run_deletions(users_unfinished)
    return [o for runner in runners for o in runner.results()]


def _uses(plan: Plan, user: str, target: str) -> bool:
    """Does a change of target `user` name a resource of `target` among what it waits for?"""
    prefix = f"{target}:"
    return any(d.startswith(prefix) for t in plan.targets if t.target == user for c in t.changes for d in c.depends_on)


class _TargetRunner:
    def __init__(
        self,
        plan_id: str,
        plan: TargetPlan,
        client: Any,
        project: str,
        *,
        parallelism: int,
        on_progress: Progress | None,
        counter: CallCounter | None,
        backoff: Backoff | None,
        cancel: threading.Event | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        sleep: Callable[[float], None] | None = None,
        upstream: dict[str, Outcome] | None = None,
    ) -> None:
        self.plan_id = plan_id
        self.upstream = upstream or {}  # outcomes in the targets applied before, by `target:address`
        self.plan = plan
        self.client = client
        self.project = project
        self.parallelism = max(1, parallelism)
        self.on_progress = on_progress
        self.counter = counter
        self.backoff = backoff
        self.cancel = cancel
        self.poll_interval = max(0.0, poll_interval)
        self.sleep = sleep
        self.outcomes: dict[int, Outcome] = {}
        self.documents: _Documents | None = None  # documents to upload, and the S3 client for them
        self._lock = threading.Lock()
        # Changes waiting for work they started (a build) hold a worker but not a parallelism
        # slot; one starting to wait completes `_wake`, so the scheduler fills its slot at once.
        self._awaiting = 0
        self._wake: Future[None] = Future()

    def results(self) -> list[Outcome]:
        return [self.outcomes[i] for i in sorted(self.outcomes)]

    def run_forward(self) -> None:
        pending = list(self.plan.pending)
        forward = [i for i, c in enumerate(pending) if c.action not in DELETIONS]
        by_address = {pending[i].address: i for i in forward}
        self._run_graph(pending, forward, by_address)

    def run_deletions(self, users_unfinished: bool) -> None:
        """Deletions, one at a time; `users_unfinished`: a change in a target that uses this one's
        resources did not complete, and may still need any of them."""
        pending = list(self.plan.pending)
        # Kept up to date below rather than gathered again for each deletion: only this loop adds outcomes now.
        unfinished = {o.address for o in self.outcomes.values() if not o.ok}
        for i in [i for i, c in enumerate(pending) if c.action in DELETIONS]:
            if self._cancelled(i, pending[i]):
                unfinished.add(pending[i].address)
                continue
            whole_resource = pending[i].action == DELETE
            if pending[i].address in unfinished or ((unfinished or users_unfinished) and whole_resource):
                # An unfinished forward change may still need what we would delete (its resource's
                # older versions, or a resource it references): keep it for a re-run.
                self._record(
                    i,
                    Outcome(
                        self.plan.target,
                        pending[i].address,
                        pending[i].action,
                        SKIPPED,
                        "skipped because an earlier change failed",
                    ),
                )
                unfinished.add(pending[i].address)
                continue
            self._execute(i, pending[i])
            if not self.outcomes[i].ok:
                unfinished.add(pending[i].address)

    def _run_graph(self, pending: list[ResourceChange], order: list[int], by_address: dict[str, int]) -> None:
        """Run `order`'s changes, each once its dependencies here are done, lowest index first.

        A ready queue: a change is looked at again only when one of its dependencies ends (or, once
        ready, when a slot frees), never by scanning every waiting change, so a large apply costs
        time in proportion to its changes and their dependencies.
        """
        deps = {i: [by_address[d] for d in pending[i].depends_on if d in by_address] for i in order}
        dependents: dict[int, list[int]] = {i: [] for i in order}
        for i in order:
            for d in dict.fromkeys(deps[i]):
                dependents[d].append(i)
        waiting = set(order)  # not begun
        dirty = sorted(order)  # waiting changes to look at (a heap): a dependency of theirs ended since
        ready: list[int] = []  # waiting changes whose dependencies all completed: only a slot is missing
        queued: set[int] = set()  # what `ready` holds
        running: dict[Future[None], int] = {}
        awaited = sum(1 for i in order if REGISTRY[pending[i].kind].awaited is not None)
        with ThreadPoolExecutor(max_workers=self.parallelism + awaited) as pool:
            while waiting or running:
                progressed = False
                # The one look at cancellation per pass; a change submitted after it looks again.
                if self._cancel_waiting(pending, waiting):
                    dirty, ready, progressed = [], [], True
                    queued.clear()
                while dirty:
                    i = heapq.heappop(dirty)
                    if i not in waiting or i in queued:
                        continue
                    blocker = self._blocker(pending, i, deps[i])
                    if blocker is not None:
                        waiting.discard(i)
                        self._record(
                            i,
                            Outcome(
                                self.plan.target,
                                pending[i].address,
                                pending[i].action,
                                SKIPPED,
                                f"skipped because {blocker} did not complete",
                            ),
                        )
                        for j in dependents[i]:
                            heapq.heappush(dirty, j)
                        progressed = True
                    elif all(d in self.outcomes for d in deps[i]):
                        queued.add(i)
                        heapq.heappush(ready, i)
                while ready and len(running) - self._awaiting < self.parallelism:
                    i = heapq.heappop(ready)
                    queued.discard(i)
                    waiting.discard(i)
                    progressed = True
                    # Cancelled since this pass began: the worker records it `not-started` unbegun.
                    running[pool.submit(self._execute, i, pending[i])] = i
                if not running:
                    if not progressed:  # unreachable for an acyclic plan; never spin
                        raise RuntimeError(f"plan for {self.plan.target} has unsatisfiable dependencies")
                    continue
                done, _ = wait([*running, self._wake], return_when=FIRST_COMPLETED)
                with self._lock:
                    if self._wake.done():
                        self._wake = Future()
                for future in done:
                    if future in running:
                        finished = running.pop(future)
                        future.result()
                        for j in dependents[finished]:
                            heapq.heappush(dirty, j)

    def _cancel_waiting(self, pending: list[ResourceChange], waiting: set[int]) -> bool:
        """Once cancellation is asked for, every change not begun is `not-started`, in plan order."""
        if self.cancel is None or not self.cancel.is_set() or not waiting:
            return False
        for i in sorted(waiting):
            self._cancelled(i, pending[i])
        waiting.clear()
        return True

    def _blocker(self, pending: list[ResourceChange], index: int, deps: list[int]) -> str | None:
        """The dependency that did not complete and stops change `index`, if any: one here first
        (in the order the change names them), else one in the targets applied before."""
        for d in deps:
            outcome = self.outcomes.get(d)
            if outcome is not None and not outcome.ok:
                return pending[d].address
        for name in pending[index].depends_on:
            if ":" in name:
                upstream = self.upstream.get(name)
                if upstream is not None and not upstream.ok:
                    return qualified(upstream.target, upstream.address)
        return None

    def _cancelled(self, index: int, change: ResourceChange) -> bool:
        """True, with a `not-started` outcome recorded, when cancellation came before `change` began."""
        if self.cancel is None or not self.cancel.is_set():
            return False
        self._record(index, Outcome(self.plan.target, change.address, change.action, NOT_STARTED, "interrupted"))
        return True

    def _record(self, index: int, outcome: Outcome) -> None:
        if outcome.status == FAILED:
            log.warning("change failed", target=outcome.target, address=outcome.address, code=outcome.error_code)
        with self._lock:
            self.outcomes[index] = outcome
        if self.on_progress is not None:
            self.on_progress(outcome)

    def _execute(self, index: int, change: ResourceChange) -> None:
        # Submitted changes start at once (the pool has a free worker for each), but a worker can
        # still pick one up after the signal: it is not begun then either.
        if self._cancelled(index, change):
            return
        started = time.monotonic()
        kept = 0
        kind = REGISTRY[change.kind]
        awaited: Awaited | None = None
        made: dict[str, Any] = {}
        created = ""  # the ARN the Create call returned, for the calls that act on what it made
        after_wait: list[tuple[int, ApiCall]] = []  # calls for a resource whose build must end first
        try:
            for n, api_call in enumerate(change.calls):
                if awaited is not None:
                    after_wait.append((n, api_call))
                    continue
                if api_call.operation == UPLOAD:
                    self._upload(change, dict(api_call.params))
                    continue
                response, gone = self._make(change, kind, n, api_call, created)
                kept += gone
                if api_call.operation == kind.create_op:
                    created = str((response or {}).get(kind.create_arn_member) or "")
                    if kind.awaited is not None:
                        awaited, made = kind.awaited, response or {}
        except ImagesyncError as err:  # API errors, and credentials that could not be refreshed
            # An API error may quote a parameter, secrets included.
            self._failed(index, change, change.scrub(str(err)), getattr(err, "code", None), started)
            return
        detail = change.version.next if change.version else ""
        if kept:
            detail = f"{kept} version(s) kept: still in use or not owned by imagesync"
        outputs = None
        if awaited is not None:
            arn = str(made.get(kind.create_arn_member, ""))
            try:
                finished = self._await(change, kind, awaited, arn, started)
            except ImagesyncError as err:
                detail = f"{arn}: reading its state failed: {change.scrub(str(err))}"
                finished = _Finished(FAILED, detail, None, code=getattr(err, "code", None))
            if finished.status == FAILED:
                self._failed(index, change, finished.detail, finished.code, started)
                return
            detail, outputs = finished.detail, finished.outputs
            if after_wait and not finished.interrupted:
                try:
                    for n, api_call in after_wait:
                        self._make(change, kind, n, api_call, created)
                except ImagesyncError as err:
                    detail = f"{arn} {finished.state}, then: {change.scrub(str(err))}"
                    self._failed(index, change, detail, getattr(err, "code", None), started)
                    return
        self._record(
            index,
            Outcome(
                self.plan.target,
                change.address,
                change.action,
                _DONE_STATUS.get(change.action, UPDATED),
                detail,
                elapsed=time.monotonic() - started,
                outputs=outputs,
            ),
        )

    def _make(
        self, change: ResourceChange, kind: Kind, n: int, api_call: ApiCall, created: str
    ) -> tuple[dict[str, Any] | None, int]:
        """Make one of a change's calls: (its response, or None when it needed none; the versions
        it kept because they are in use or not imagesync's)."""
        params = dict(api_call.params)
        if api_call.created_arn_into is not None:
            params[api_call.created_arn_into] = created
        if api_call.idempotent_token:
            params["clientToken"] = client_token(self.plan_id, self.plan.target, change, n, api_call)
        if kind.builds is not None and api_call.operation == kind.delete_op and not _names_build(kind, params):
            return None, self._delete_builds(kind, params, change.address)
        try:
            return self._call(api_call.operation, params), 0
        except ApiError as err:
            if err.code == "ResourceNotFoundException" and change.action in DELETIONS:
                return None, 0  # already gone: the goal is met
            if err.code == "ResourceDependencyException" and change.action == DELETE_VERSIONS:
                return None, 1  # still referenced: retention keeps it
            raise

    def _failed(self, index: int, change: ResourceChange, detail: str, code: str | None, started: float) -> None:
        elapsed = time.monotonic() - started
        self._record(index, Outcome(self.plan.target, change.address, change.action, FAILED, detail, code, elapsed))

    def _await(self, change: ResourceChange, kind: Kind, awaited: Awaited, arn: str, started: float) -> _Finished:
        """Read a newly created resource until its work ends; report each state it reaches.

        On cancellation the wait stops (the work goes on in the service): the change is done as
        far as imagesync is concerned, and the next plan reads how it ended.
        """
        sleep = self.sleep or (self.cancel.wait if self.cancel is not None else time.sleep)
        with self._lock:  # under the lock: two changes starting to wait at once complete it once
            self._awaiting += 1
            if not self._wake.done():
                self._wake.set_result(None)
        try:
            return self._poll(change, kind, awaited, arn, started, sleep)
        finally:
            with self._lock:
                self._awaiting -= 1

    def _poll(
        self,
        change: ResourceChange,
        kind: Kind,
        awaited: Awaited,
        arn: str,
        started: float,
        sleep: Callable[[float], Any],
    ) -> _Finished:
        seen = ""
        while True:
            resource = self._call(kind.get_op, {kind.arn_member: arn}).get(kind.get_key) or {}
            state = str(_at(resource, awaited.state_path) or "")
            if state in awaited.ready:
                outputs = awaited.outputs(resource) if awaited.outputs is not None else None
                return _Finished(CREATED, f"{arn} {state}", outputs, state=state)
            if state in awaited.failed:
                reason = str(_at(resource, awaited.reason_path) or "no reason given")
                return _Finished(FAILED, f"{arn} ended {state}: {change.scrub(reason)}", None, code=state)
            if state != seen:
                seen = state
                outcome = Outcome(
                    self.plan.target, change.address, change.action, WAITING, f"{arn} {state}",
                    elapsed=time.monotonic() - started,
                )
                log.info("waiting", target=self.plan.target, address=change.address, state=state)
                if self.on_progress is not None:
                    self.on_progress(outcome)
            if self._stop_waiting():
                return _interrupted(arn, state)
            sleep(self.poll_interval)
            if self._stop_waiting():  # woken by the interrupt: no further read
                return _interrupted(arn, state)

    def _stop_waiting(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return call(
            self.client, operation, params, counter=self.counter, backoff=self.backoff, target=self.plan.target
        )

    def _upload(self, change: ResourceChange, params: dict[str, Any]) -> None:
        """Put the change's document in S3 where the plan says, before the Create call names it."""
        if self.documents is None:
            raise ApiError(UPLOAD, "NoDocument", f"no document to upload for {change.address}")
        text = self.documents.text(change.address)
        client = self.documents.client()
        upload(client, params, text, target=self.plan.target, counter=self.counter, backoff=self.backoff)

    def _delete_builds(self, kind: Kind, params: dict[str, Any], address: str) -> int:
        """Delete every build of one component or workflow version that imagesync owns."""
        assert kind.builds is not None
        version_arn = params[kind.arn_member]
        builds = list_all(
            self.client,
            kind.builds.list_op,
            {kind.builds.version_member: version_arn},
            kind.builds.list_key,
            counter=self.counter,
            backoff=self.backoff,
            target=self.plan.target,
        )
        kept = 0
        for build in builds:
            if not owns(build.get("tags"), self.project, address, arns.without_build(str(build.get("version", "")))):
                kept += 1  # not published by this project for this very resource: never deleted
                continue
            try:
                self._call(kind.delete_op, {kind.arn_member: build["arn"]})
            except ApiError as err:
                if err.code == "ResourceNotFoundException":
                    continue
                if err.code == "ResourceDependencyException":
                    kept += 1
                    continue
                raise
        return kept


class _Documents:
    """One target's documents as the manifests give them, and its S3 client, made when first needed."""

    def __init__(self, desired: DesiredState, connector: Connector, target: Any) -> None:
        self._desired, self._connector, self._target = desired, connector, target
        self._client: Any = None
        self._lock = threading.Lock()

    def text(self, address: str) -> str:
        res = self._desired.get(self._target.name, Address.parse(address))
        if res is None or res.document is None:
            raise ApiError(UPLOAD, "NoDocument", f"no document to upload for {address}")
        return res.document

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connector.s3(self._target)
            return self._client


@dataclass(frozen=True)
class _Finished:
    """How the wait for a created resource ended."""

    status: str
    detail: str
    outputs: dict[str, Any] | None
    code: str | None = None
    state: str = ""  # the state it reached
    interrupted: bool = False  # the wait stopped before the work ended


def _interrupted(arn: str, state: str) -> _Finished:
    # What was to follow the build (sharing it) is left for the next plan, which reads how it ended.
    detail = f"{arn} still {state}: no longer waiting (interrupted)"
    return _Finished(CREATED, detail, None, state=state, interrupted=True)


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _names_build(kind: Kind, params: dict[str, Any]) -> bool:
    """Does the delete call name one build (`.../1.2.3/1`) rather than a whole version?"""
    return arns.is_build_arn(str(params.get(kind.arn_member) or ""))
