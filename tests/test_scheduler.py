"""The executor's scheduling, against the sandbox: the order changes start in, the parallelism
bound, skips that name the change they wait for, and cancellation part-way through an apply.

Calls are observed with botocore event handlers on the real clients; nothing here measures time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imagesync import api
from imagesync.execute import CREATED, NOT_STARTED, SKIPPED, Outcome, apply_plan
from imagesync.planner import PlanOptions
from imagesync.sandbox import RunningSandbox, running
from support import HookedConnector, manifest_tree

REGION = "us-east-1"
PROJECT = f"project: sched\ntargets:\n  - name: t1\n    region: {REGION}\n    account: '111111111111'\n"
BASE = f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x"


def group(n: int) -> list[str]:
    """A component, a recipe on it, an infrastructure configuration and a pipeline using both."""
    return [
        f"apiVersion: imagesync/v1\nkind: Component\nmetadata: {{name: comp{n}}}\nspec:\n  platform: Linux\n"
        "  version: 1.0.0\n  document:\n    schemaVersion: 1.0\n    phases:\n      - name: build\n        steps:\n"
        f"          - name: Say\n            action: ExecuteBash\n            inputs: {{commands: ['echo {n}']}}\n",
        f"apiVersion: imagesync/v1\nkind: ImageRecipe\nmetadata: {{name: rec{n}}}\nspec:\n  version: 1.0.0\n"
        f"  parentImage: {BASE}\n  components: [{{ref: comp{n}}}]\n",
        f"apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {{name: infra{n}}}\n"
        "spec: {instanceProfileName: build}\n",
        f"apiVersion: imagesync/v1\nkind: ImagePipeline\nmetadata: {{name: pipe{n}}}\n"
        f"spec: {{imageRecipeArn: {{ref: rec{n}}}, infrastructureConfigurationArn: {{ref: infra{n}}}}}\n",
    ]


def infra(n: int) -> str:
    return (
        f"apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {{name: solo{n}}}\n"
        "spec: {instanceProfileName: build}\n"
    )


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with running() as served:
        yield served


def created_name(params: dict[str, Any]) -> str:
    return str(params.get("name"))


def test_with_one_slot_changes_start_in_plan_order_each_after_its_dependencies(
    sb: RunningSandbox, tmp_path: Path
) -> None:
    root = manifest_tree(tmp_path / "m", PROJECT, *group(1), *group(2), infra(1))
    started: list[str] = []

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name.startswith("Create"):
            started.append(created_name(params))

    with HookedConnector(sb, {"provide-client-params.imagebuilder": before}) as connector:
        plan, desired = api.plan(root, connector, PlanOptions())
        outcomes = apply_plan(plan, connector, desired, parallelism=1)

    [target] = plan.targets
    assert started == [c.name for c in target.pending]
    position = {name: i for i, name in enumerate(started)}
    for change in target.pending:
        for dep in change.depends_on:
            assert position[dep.split("/", 1)[1]] < position[change.name], (dep, change.address)
    assert {o.status for o in outcomes} == {CREATED}


def test_no_more_changes_run_at_once_than_the_parallelism_allows(sb: RunningSandbox, tmp_path: Path) -> None:
    root = manifest_tree(tmp_path / "m", PROJECT, *(infra(n) for n in range(6)))
    # Each call waits until three are in flight: with a bound of 3 the calls go in threes; a
    # scheduler that ran fewer would break the barrier, one that ran more is seen in `most`.
    barrier = threading.Barrier(3, timeout=60)
    lock = threading.Lock()
    in_flight = most = 0

    def before(model: Any, **_: Any) -> None:
        nonlocal in_flight, most
        if not model.name.startswith("Create"):
            return
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        barrier.wait()

    def after(model: Any, **_: Any) -> None:
        nonlocal in_flight
        if model.name.startswith("Create"):
            with lock:
                in_flight -= 1

    hooks = {"before-call.imagebuilder": before, "after-call.imagebuilder": after}
    with HookedConnector(sb, hooks) as connector:
        plan, desired = api.plan(root, connector, PlanOptions())
        outcomes = apply_plan(plan, connector, desired, parallelism=3)

    assert [o.status for o in outcomes] == [CREATED] * 6
    assert most == 3


def refuse(operation: str) -> Callable[..., None]:
    """A handler that answers `operation` with the service's refusal, before it is sent."""

    def handler(model: Any, **_: Any) -> None:
        if model.name == operation:
            raise ClientError({"Error": {"Code": "InvalidParameterValueException", "Message": "no"}}, operation)

    return handler


def statuses(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    return [(o.address, o.status, o.detail) for o in outcomes]


def test_a_failure_skips_its_dependents_each_naming_what_it_waited_for(sb: RunningSandbox, tmp_path: Path) -> None:
    root = manifest_tree(tmp_path / "m", PROJECT, *group(1), infra(1))
    with HookedConnector(sb, {"before-call.imagebuilder": refuse("CreateComponent")}) as connector:
        plan, desired = api.plan(root, connector, PlanOptions())
        outcomes = apply_plan(plan, connector, desired, parallelism=4)

    by_address = {o.address: o for o in outcomes}
    assert [o.address for o in outcomes] == [c.address for c in plan.targets[0].pending]  # plan order
    assert by_address["Component/comp1"].status == "failed"
    assert by_address["Component/comp1"].error_code == "InvalidParameterValueException"
    # The recipe waits for the component; the pipeline for the recipe, which it names.
    assert (by_address["ImageRecipe/rec1"].status, by_address["ImageRecipe/rec1"].detail) == (
        SKIPPED,
        "skipped because Component/comp1 did not complete",
    )
    assert (by_address["ImagePipeline/pipe1"].status, by_address["ImagePipeline/pipe1"].detail) == (
        SKIPPED,
        "skipped because ImageRecipe/rec1 did not complete",
    )
    # What depends on nothing that failed went on.
    assert by_address["InfrastructureConfiguration/infra1"].status == CREATED
    assert by_address["InfrastructureConfiguration/solo1"].status == CREATED


def test_a_cancellation_mid_apply_leaves_every_change_not_begun_not_started(sb: RunningSandbox, tmp_path: Path) -> None:
    root = manifest_tree(tmp_path / "m", PROJECT, *group(1), *(infra(n) for n in range(3)))
    cancel = threading.Event()
    creates: list[str] = []

    def after(model: Any, **_: Any) -> None:
        if model.name.startswith("Create"):
            creates.append(model.name)
            if len(creates) == 2:
                cancel.set()  # the signal arrives as the second change ends

    with HookedConnector(sb, {"after-call.imagebuilder": after}) as connector:
        plan, desired = api.plan(root, connector, PlanOptions())
        outcomes = apply_plan(plan, connector, desired, parallelism=1, cancel=cancel)

    pending = plan.targets[0].pending
    assert [o.address for o in outcomes] == [c.address for c in pending]
    assert [o.status for o in outcomes[:2]] == [CREATED, CREATED]
    assert {(o.status, o.detail) for o in outcomes[2:]} == {(NOT_STARTED, "interrupted")}
    assert len(creates) == 2  # nothing began after the signal
