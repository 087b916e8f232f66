"""The executor's less travelled paths, against a real sandbox over HTTP: waiting for a build
(without a progress callback, with an interrupt, with the image deleted under it), cancellation
that lands before the deletions or between scheduling a change and starting it, a plan whose
dependencies can never be met, and deleting component builds that vanish or are refused.

The sandbox's clock is frozen for the build tests and moved by the `sleep` the executor is
given, so a build passes through its states exactly when a test says so and nothing sleeps.
Concurrent actors (someone else deleting a build between our list and our delete, an IAM policy
refusing one delete) are botocore event handlers on the executor's own client: everything else
(the executor, `aws.call`, botocore, HTTP, the sandbox) runs for real.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesync import api
from imagesync.aws import ConnectOptions, Connector
from imagesync.desired import DesiredState
from imagesync.execute import NOT_STARTED, WAITING, Outcome, apply_plan
from imagesync.plan_model import Plan
from imagesync.planner import PlanOptions
from imagesync.sandbox import RunningSandbox, running
from support import HookedConnector, advance_clock, make_client, manifest_tree

ACCOUNT = "111111111111"
REGION = "us-east-1"
PROJECT = f"project: p9\ntargets:\n  - name: t1\n    region: {REGION}\n    account: '{ACCOUNT}'\n"
BASE = f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x"

COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: comp1}}
spec:
  platform: Linux
  version: 1.0.0
  document:
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Say
            action: ExecuteBash
            inputs:
              commands: ["echo {word}"]
"""
INFRA = """\
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {name: infra1}
spec: {instanceProfileName: build}
"""
RECIPE = f"""\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: rec1}}
spec:
  version: 1.0.0
  parentImage: {BASE}
  components: [{{ref: comp1}}]
"""
IMAGE = """\
apiVersion: imagesync/v1
kind: Image
metadata: {name: img1}
spec:
  imageRecipeArn: {ref: rec1}
  infrastructureConfigurationArn: {ref: infra1}
  imageTestsConfiguration: {imageTestsEnabled: false}
"""

WRITES = ("Create", "Update", "Delete", "Tag", "Untag", "Start", "Cancel", "Put", "Import")


# -- helpers ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with running() as served:
        yield served


@pytest.fixture
def frozen() -> Iterator[RunningSandbox]:
    """Builds of one simulated minute on a clock that only moves when a test moves it."""
    with running(build_minutes=1, clock_speed=0) as served:
        yield served


def tree(root: Path, *docs: str) -> Path:
    return manifest_tree(root, PROJECT, *docs)


def ib(sb: RunningSandbox) -> Any:
    return make_client(sb.endpoint_url, REGION, account=ACCOUNT)


def served(sb: RunningSandbox) -> dict[str, int]:
    with urllib.request.urlopen(f"{sb.endpoint_url}/_sandbox/stats", timeout=10) as resp:
        return dict(json.loads(resp.read())["operations"])


def since(sb: RunningSandbox, mark: dict[str, int]) -> dict[str, int]:
    now = served(sb)
    return {op: n - mark.get(op, 0) for op, n in now.items() if n - mark.get(op, 0)}


def writes(calls: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in calls.items() if op.startswith(WRITES)}


def planned(root: Path, connector: Connector, **options: Any) -> tuple[Plan, DesiredState]:
    return api.plan(root, connector, PlanOptions(**options))


def by_address(outcomes: list[Outcome]) -> dict[str, Outcome]:
    return {o.address: o for o in outcomes}


# -- waiting for a build ------------------------------------------------------------------------------


def test_a_build_is_read_once_per_poll_interval_until_it_is_available(frozen: RunningSandbox, tmp_path: Path) -> None:
    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA, RECIPE, IMAGE)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        advance_clock(frozen.endpoint_url, 20)  # a third of the build per poll

    with Connector(ConnectOptions(sandbox=frozen.endpoint_url)) as connector:
        plan, desired = planned(root, connector)
        mark = served(frozen)
        # No progress callback: the wait still happens, it just reports to nobody.
        outcomes = apply_plan(plan, connector, desired, poll_interval=7.5, sleep=sleep)

    image = by_address(outcomes)["Image/img1"]
    assert image.status == "created", image
    assert image.detail.endswith("AVAILABLE")
    assert image.outputs and set(image.outputs) == {REGION}
    calls = since(frozen, mark)
    # One read straight after CreateImage, then one after each interval, none after it ended.
    assert len(naps) >= 2 and set(naps) == {7.5}
    assert calls["GetImage"] == len(naps) + 1
    assert calls["CreateImage"] == 1


def test_an_interrupt_during_a_build_stops_waiting_and_leaves_the_build_running(
    frozen: RunningSandbox, tmp_path: Path
) -> None:
    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA, RECIPE, IMAGE)
    cancel = threading.Event()
    seen: list[Outcome] = []
    naps: list[float] = []

    def progress(outcome: Outcome) -> None:
        seen.append(outcome)
        if outcome.status == WAITING:
            cancel.set()  # Ctrl-C while the first state is on screen

    with Connector(ConnectOptions(sandbox=frozen.endpoint_url)) as connector:
        plan, desired = planned(root, connector)
        mark = served(frozen)
        outcomes = apply_plan(
            plan, connector, desired, on_progress=progress, cancel=cancel, poll_interval=30, sleep=naps.append
        )

    image = by_address(outcomes)["Image/img1"]
    assert image.status == "created" and image.ok
    assert image.detail.endswith("no longer waiting (interrupted)"), image.detail
    assert [o.status for o in seen if o.address == "Image/img1"] == [WAITING, "created"]
    assert naps == []  # it did not sleep once it knew
    calls = since(frozen, mark)
    assert calls["GetImage"] == 1
    assert "CancelImageCreation" not in calls and "DeleteImage" not in calls
    [version] = ib(frozen).list_images(owner="Self")["imageVersionList"]
    [build] = ib(frozen).list_image_build_versions(imageVersionArn=version["arn"])["imageSummaryList"]
    assert build["state"]["status"] not in ("AVAILABLE", "FAILED", "CANCELLED")  # the build goes on

    # The next plan reads how it ended: finished, nothing to build again.
    advance_clock(frozen.endpoint_url, 120)
    with Connector(ConnectOptions(sandbox=frozen.endpoint_url)) as connector:
        again, _ = planned(root, connector)
    assert not again.has_changes


def test_an_interrupt_ends_a_long_poll_interval_at_once(frozen: RunningSandbox, tmp_path: Path) -> None:
    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA, RECIPE, IMAGE)
    cancel = threading.Event()
    waiting = threading.Event()
    result: list[list[Outcome]] = []

    def progress(outcome: Outcome) -> None:
        if outcome.status == WAITING:
            waiting.set()

    with Connector(ConnectOptions(sandbox=frozen.endpoint_url)) as connector:
        plan, desired = planned(root, connector)
        # No `sleep` given: between reads the executor waits on the cancel event itself.
        worker = threading.Thread(
            target=lambda: result.append(
                apply_plan(plan, connector, desired, on_progress=progress, cancel=cancel, poll_interval=3600)
            ),
            daemon=True,
        )
        worker.start()
        assert waiting.wait(60), "the build never reported a waiting state"
        cancel.set()
        worker.join(60)  # bounds a hang only: an hour's interval must not be waited out
        assert not worker.is_alive(), "the wait did not end when the run was interrupted"

    image = by_address(result[0])["Image/img1"]
    assert image.status == "created"
    assert "no longer waiting (interrupted)" in image.detail


def test_an_image_deleted_while_it_builds_is_a_failed_change(frozen: RunningSandbox, tmp_path: Path) -> None:
    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA, RECIPE, IMAGE)
    other = ib(frozen)

    def sleep(_seconds: float) -> None:
        # Someone deletes the build while imagesync waits for it (the sandbox stops the build).
        for version in other.list_images(owner="Self")["imageVersionList"]:
            for build in other.list_image_build_versions(imageVersionArn=version["arn"])["imageSummaryList"]:
                other.delete_image(imageBuildVersionArn=build["arn"])

    with Connector(ConnectOptions(sandbox=frozen.endpoint_url)) as connector:
        plan, desired = planned(root, connector)
        outcomes = apply_plan(plan, connector, desired, poll_interval=5, sleep=sleep)

    image = by_address(outcomes)["Image/img1"]
    assert image.status == "failed" and not image.ok
    assert image.error_code == "ResourceNotFoundException"
    assert "reading its state failed" in image.detail and "GetImage" in image.detail
    # What it depended on was made and stays made.
    assert by_address(outcomes)["ImageRecipe/rec1"].status == "created"


# -- cancellation ---------------------------------------------------------------------------------------


def test_an_interrupt_after_the_forward_changes_leaves_the_deletions_not_started(
    sb: RunningSandbox, tmp_path: Path
) -> None:
    root = tree(tmp_path / "m", COMPONENT.format(word="one"), INFRA)
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        api.apply(root, connector, PlanOptions())
    tree(root, COMPONENT.format(word="two"))  # a new component version; the infrastructure leaves
    cancel = threading.Event()

    def progress(outcome: Outcome) -> None:
        if outcome.address == "Component/comp1":
            cancel.set()  # the signal lands as the last forward change ends

    mark = served(sb)
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        plan, outcomes = api.apply(root, connector, PlanOptions(prune=True), on_progress=progress, cancel=cancel)

    assert [(c.address, c.action) for c in plan.targets[0].pending] == [
        ("Component/comp1", "publish"),
        ("InfrastructureConfiguration/infra1", "delete"),
    ]
    done = by_address(outcomes)
    assert done["Component/comp1"].status == "published"
    assert (done["InfrastructureConfiguration/infra1"].status, done["InfrastructureConfiguration/infra1"].detail) == (
        NOT_STARTED,
        "interrupted",
    )
    assert "DeleteInfrastructureConfiguration" not in since(sb, mark)
    names = [i["name"] for i in ib(sb).list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]]
    assert names == ["infra1"]


class SignalAfterScheduling(threading.Event):
    """Set by a "signal" that arrives just after the scheduler's first look at the event: the
    change it was looking at is then handed to a worker, which must not begin it."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduler = threading.get_ident()
        self.looks = 0

    def is_set(self) -> bool:
        answer = super().is_set()
        if threading.get_ident() == self.scheduler:
            self.looks += 1
            if self.looks == 1:
                self.set()
        return answer


def test_a_change_handed_to_a_worker_after_the_signal_is_not_begun(sb: RunningSandbox, tmp_path: Path) -> None:
    root = tree(tmp_path / "m", INFRA)
    cancel = SignalAfterScheduling()
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        plan, desired = planned(root, connector)
        mark = served(sb)
        outcomes = apply_plan(plan, connector, desired, cancel=cancel)

    assert [(o.address, o.status, o.detail) for o in outcomes] == [
        ("InfrastructureConfiguration/infra1", NOT_STARTED, "interrupted")
    ]
    assert cancel.looks >= 1
    assert writes(since(sb, mark)) == {}
    assert ib(sb).list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


# -- a plan that cannot be ordered --------------------------------------------------------------------


def test_a_plan_whose_dependencies_form_a_cycle_is_refused_before_any_write(sb: RunningSandbox, tmp_path: Path) -> None:
    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA)
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        plan, desired = planned(root, connector)
        [target] = plan.targets
        comp, infra = target.pending
        # A corrupted plan: each change waits for the other, so neither could ever start.
        looped = (
            dataclasses.replace(comp, depends_on=(infra.address,)),
            dataclasses.replace(infra, depends_on=(comp.address,)),
        )
        broken = dataclasses.replace(plan, targets=(dataclasses.replace(target, changes=looped),))
        mark = served(sb)
        with pytest.raises(RuntimeError, match="plan for t1 has unsatisfiable dependencies"):
            apply_plan(broken, connector, desired)
    assert writes(since(sb, mark)) == {}


# -- deleting component builds ----------------------------------------------------------------------------


def _applied_then_removed(sb: RunningSandbox, tmp_path: Path) -> Path:
    """comp1 and infra1 applied, then comp1 removed from the manifests."""
    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA)
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        _, outcomes = api.apply(root, connector, PlanOptions())
    assert all(o.ok for o in outcomes), outcomes
    return tree(root, INFRA)


def _builds(sb: RunningSandbox) -> list[str]:
    client = ib(sb)
    arns = []
    for version in client.list_components(owner="Self")["componentVersionList"]:
        rows = client.list_component_build_versions(componentVersionArn=version["arn"])["componentSummaryList"]
        arns += [row["arn"] for row in rows]
    return sorted(arns)


def test_a_build_deleted_by_someone_else_between_list_and_delete_is_deleted(
    sb: RunningSandbox, tmp_path: Path
) -> None:
    root = _applied_then_removed(sb, tmp_path)
    [build] = _builds(sb)
    other = ib(sb)
    raced: list[str] = []

    def delete_behind_our_back(parsed: dict[str, Any], **_: Any) -> None:
        for row in parsed.get("componentSummaryList") or []:
            other.delete_component(componentBuildVersionArn=row["arn"])
            raced.append(row["arn"])

    hooks = {"after-call.imagebuilder.ListComponentBuildVersions": delete_behind_our_back}
    mark = served(sb)
    with HookedConnector(sb, hooks) as connector:
        _, outcomes = api.apply(root, connector, PlanOptions(prune=True))

    assert raced == [build]
    comp = by_address(outcomes)["Component/comp1"]
    assert (comp.action, comp.status, comp.error_code) == ("delete", "deleted", None)
    # The other party's delete and ours, which found it gone: the goal is met either way.
    assert since(sb, mark)["DeleteComponent"] == 2
    assert _builds(sb) == []


def test_a_refused_build_delete_fails_the_change_and_keeps_the_component(sb: RunningSandbox, tmp_path: Path) -> None:
    root = _applied_then_removed(sb, tmp_path)
    [build] = _builds(sb)
    refused: list[str] = []

    def deny_builds(params: dict[str, Any], **_: Any) -> Any:
        # An IAM policy that allows deleting component versions but not their builds.
        arn = (params.get("query_string") or {}).get("componentBuildVersionArn", "")
        if arn.count("/") < 3:
            return None
        refused.append(arn)
        error = {"Code": "AccessDeniedException", "Message": f"not authorized to delete {arn}"}
        return _Answer(403), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}

    with HookedConnector(sb, {"before-call.imagebuilder.DeleteComponent": deny_builds}) as connector:
        _, outcomes = api.apply(root, connector, PlanOptions(prune=True))

    assert refused == [build]
    comp = by_address(outcomes)["Component/comp1"]
    assert (comp.action, comp.status, comp.error_code) == ("delete", "failed", "AccessDeniedException")
    assert "DeleteComponent failed" in comp.detail
    assert _builds(sb) == [build]


@dataclasses.dataclass
class _Answer:
    """The HTTP side of an answer a before-call handler gives botocore: only the status is read."""

    status_code: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def test_credentials_that_cannot_be_refreshed_fail_the_change_not_the_apply(sb: RunningSandbox, tmp_path: Path) -> None:
    """A role whose refresh is refused mid-apply (the trust policy changed, say) surfaces from the
    signing step as imagesync's UserError: the change it struck fails with that message, its
    dependents are skipped, and the apply still reports every outcome."""
    from imagesync.errors import UserError

    root = tree(tmp_path / "m", COMPONENT.format(word="hi"), INFRA, RECIPE)

    def refused(**_: Any) -> None:
        raise UserError("target 'prod': cannot assume role arn:aws:iam::111111111111:role/deploy: AccessDenied")

    with HookedConnector(sb, {"before-call.imagebuilder.CreateComponent": refused}) as connector:
        plan, desired = planned(root, connector)
        outcomes = by_address(apply_plan(plan, connector, desired))
    component, recipe = outcomes["Component/comp1"], outcomes["ImageRecipe/rec1"]
    assert component.status == "failed" and "cannot assume role" in component.detail
    assert recipe.status == "skipped" and "Component/comp1" in recipe.detail
    assert outcomes["InfrastructureConfiguration/infra1"].status == "created"  # an independent branch goes on
