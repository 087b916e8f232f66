"""The paths apply takes when something goes wrong or is not its own, against a real sandbox.

Each test writes a small manifest tree and drives either the CLI (as a subprocess, where the exit
code and the printed outcome matter) or `imagesync.api`, whose `confirm` hook runs after planning
and before any write: that is where a test changes the world "between plan and apply".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesync import api
from imagesync.aws import ConnectOptions, Connector
from imagesync.planner import PlanOptions
from imagesync.sandbox import RunningSandbox, running
from support import make_client, manifest_tree

ACCOUNT = "111111111111"
REGION = "us-east-1"
PREFIX = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}"
BASE = f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x"
UPDATE_LINUX = f"arn:aws:imagebuilder:{REGION}:aws:component/update-linux/x.x.x"
MISSING_COMPONENT = f"arn:aws:imagebuilder:{REGION}:aws:component/no-such-component/x.x.x"
PROJECT = f"project: p1\ntargets:\n  - name: t1\n    region: {REGION}\n    account: '{ACCOUNT}'\n"

DOCUMENT = (
    "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: Say\n        action: ExecuteBash\n"
    "        inputs:\n          commands: [echo {word}]\n"
)


def component(word: str = "ours", extra: str = "") -> str:
    document = DOCUMENT.format(word=word).replace("\n", "\n    ").rstrip()
    return (
        "apiVersion: imagesync/v1\nkind: Component\nmetadata: {name: comp1}\n"
        f"spec:\n  platform: Linux\n  version: 1.0.0\n{extra}  document:\n    {document}\n"
    )


def recipe(component_item: str = f"{{componentArn: '{UPDATE_LINUX}'}}", extra: str = "") -> str:
    return (
        "apiVersion: imagesync/v1\nkind: ImageRecipe\nmetadata: {name: rec1}\n"
        f"spec:\n  version: 1.0.0\n  parentImage: {BASE}\n  components: [{component_item}]\n" + extra
    )


INFRA = (
    "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: infra1}\n"
    "spec: {instanceProfileName: p}\n"
)
PIPELINE = (
    "apiVersion: imagesync/v1\nkind: ImagePipeline\nmetadata: {name: pipe1}\n"
    "spec: {imageRecipeArn: {ref: rec1}, infrastructureConfigurationArn: {ref: infra1}}\n"
)


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    monkeypatch.chdir(tmp_path)
    with running() as served:
        yield served


def tree(root: Path, *docs: str) -> Path:
    return manifest_tree(root, PROJECT, *docs)


def ib(sb: RunningSandbox) -> Any:
    return make_client(sb.endpoint_url, REGION, account=ACCOUNT)


def apply(root: Path, sb: RunningSandbox, confirm: Any = None, **options: Any) -> Any:
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        return api.apply(root, connector, PlanOptions(**options), confirm=confirm)


def plan(root: Path, sb: RunningSandbox, **options: Any) -> Any:
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        return api.plan(root, connector, PlanOptions(**options))[0]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd, env=dict(os.environ), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )


def statuses(outcomes: list[Any]) -> dict[str, tuple[str, str]]:
    return {o.address: (o.action, o.status) for o in outcomes}


def recipe_versions(sb: RunningSandbox) -> list[str]:
    rows = ib(sb).list_image_recipes()["imageRecipeSummaryList"]
    return sorted(r["arn"].rsplit("/", 1)[1] for r in rows if r["name"] == "rec1")


def component_builds(sb: RunningSandbox, version: str) -> list[str]:
    rows = ib(sb).list_component_build_versions(componentVersionArn=f"{PREFIX}:component/comp1/{version}")
    return sorted(r["arn"].rsplit("/", 2)[1] + "/" + r["arn"].rsplit("/", 1)[1] for r in rows["componentSummaryList"])


# --- a failed change: its dependents are skipped, naming it; independent branches go on ----------


def test_dependents_of_a_failed_change_are_skipped_naming_the_blocker(tmp_path: Path) -> None:
    root = tree(tmp_path / "m", recipe(f"{{componentArn: '{MISSING_COMPONENT}'}}"), INFRA, PIPELINE)
    state = tmp_path / "state.json"
    done = cli("apply", str(root), "--sandbox", str(state), "--auto-approve", "--format", "json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    outcomes = {o["address"]: o for o in json.loads(done.stdout)["outcomes"]}
    assert outcomes["ImageRecipe/rec1"]["status"] == "failed"
    assert outcomes["ImageRecipe/rec1"]["error_code"]  # the AWS error code, not a stack
    assert outcomes["ImagePipeline/pipe1"]["status"] == "skipped"
    assert "ImageRecipe/rec1" in outcomes["ImagePipeline/pipe1"]["detail"]
    # The infrastructure configuration depends on nothing that failed: it was created.
    assert outcomes["InfrastructureConfiguration/infra1"]["status"] == "created"

    # The text form says the same on one line per change.
    again = cli("apply", str(root), "--sandbox", str(state), "--auto-approve", cwd=tmp_path)
    assert again.returncode == 1
    progress = [line for line in again.stdout.splitlines() if "t1: ImagePipeline/pipe1" in line]
    assert len(progress) == 1 and "skipped because ImageRecipe/rec1 did not complete" in progress[0], again.stdout
    assert "1 failed, 1 skipped" in again.stdout


def test_a_failed_change_keeps_the_prune_deletions_that_follow_it(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe(), INFRA, PIPELINE)
    apply(root, sb)
    # The pipeline leaves the manifests, and the recipe's new version cannot be published: the
    # whole-resource delete waits for a re-run, since the failed change might have needed it.
    (root / "m.yaml").write_text("---\n".join([recipe(f"{{componentArn: '{MISSING_COMPONENT}'}}"), INFRA]))
    _, outcomes = apply(root, sb, prune=True)
    assert statuses(outcomes) == {
        "ImageRecipe/rec1": ("publish", "failed"),
        "ImagePipeline/pipe1": ("delete", "skipped"),
    }
    assert [p["name"] for p in ib(sb).list_image_pipelines()["imagePipelineList"]] == ["pipe1"]


# --- deleted out of band between plan and apply: the goal is met ----------------------------------


def test_deleting_what_was_already_deleted_out_of_band_succeeds(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe(), INFRA, PIPELINE)
    apply(root, sb)
    (root / "m.yaml").write_text(recipe())

    def delete_behind_its_back(planned: Any) -> bool:
        pending = {c.address: c.action for t in planned.targets for c in t.pending}
        assert pending == {"ImagePipeline/pipe1": "delete", "InfrastructureConfiguration/infra1": "delete"}
        client = ib(sb)
        client.delete_image_pipeline(imagePipelineArn=f"{PREFIX}:image-pipeline/pipe1")
        client.delete_infrastructure_configuration(
            infrastructureConfigurationArn=f"{PREFIX}:infrastructure-configuration/infra1"
        )
        return True

    _, outcomes = apply(root, sb, confirm=delete_behind_its_back, prune=True)
    assert statuses(outcomes) == {
        "ImagePipeline/pipe1": ("delete", "deleted"),
        "InfrastructureConfiguration/infra1": ("delete", "deleted"),
    }
    assert all(o.ok for o in outcomes)
    assert not plan(root, sb, prune=True).has_changes


def test_versions_deleted_out_of_band_before_retention_are_not_an_error(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe())
    for description in ("one", "two", "three"):
        (root / "m.yaml").write_text(recipe(extra=f"  description: {description}\n"))
        apply(root, sb)
    assert recipe_versions(sb) == ["1.0.0", "1.0.1", "1.0.2"]
    (root / "m.yaml").write_text(recipe(extra="  description: three\n  retainVersions: 1\n"))

    def delete_one(planned: Any) -> bool:
        ib(sb).delete_image_recipe(imageRecipeArn=f"{PREFIX}:image-recipe/rec1/1.0.0")
        return True

    _, outcomes = apply(root, sb, confirm=delete_one, prune=True)
    assert statuses(outcomes) == {"ImageRecipe/rec1": ("delete-versions", "deleted")}
    assert recipe_versions(sb) == ["1.0.2"]


# --- retention keeps what something still references ----------------------------------------------


def test_retention_keeps_a_version_something_references(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe(), INFRA)
    for description in ("one", "two", "three"):
        (root / "m.yaml").write_text("---\n".join([recipe(extra=f"  description: {description}\n"), INFRA]))
        apply(root, sb)
    assert recipe_versions(sb) == ["1.0.0", "1.0.1", "1.0.2"]
    (root / "m.yaml").write_text("---\n".join([recipe(extra="  description: three\n  retainVersions: 1\n"), INFRA]))

    def reference_the_oldest(planned: Any) -> bool:
        # Someone wires a pipeline of their own to 1.0.0 after the plan chose to delete it.
        (change,) = [c for t in planned.targets for c in t.pending]
        assert change.action == "delete-versions" and "1.0.0" in change.deleted_versions
        ib(sb).create_image_pipeline(
            name="theirs",
            imageRecipeArn=f"{PREFIX}:image-recipe/rec1/1.0.0",
            infrastructureConfigurationArn=f"{PREFIX}:infrastructure-configuration/infra1",
            clientToken="theirs-1",
        )
        return True

    _, outcomes = apply(root, sb, confirm=reference_the_oldest, prune=True)
    (outcome,) = outcomes
    assert (outcome.action, outcome.status) == ("delete-versions", "deleted")
    assert outcome.detail == "1 version(s) kept: still in use or not owned by imagesync"
    assert recipe_versions(sb) == ["1.0.0", "1.0.2"]
    pipelines = ib(sb).list_image_pipelines()["imagePipelineList"]
    assert [(p["name"], p["imageRecipeArn"]) for p in pipelines] == [("theirs", f"{PREFIX}:image-recipe/rec1/1.0.0")]


def test_retention_reports_kept_versions_through_the_cli(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    root = tree(tmp_path / "m", recipe(), INFRA)
    for description in ("one", "two"):
        (root / "m.yaml").write_text("---\n".join([recipe(extra=f"  description: {description}\n"), INFRA]))
        assert cli("apply", str(root), "--sandbox", str(state), "--auto-approve", cwd=tmp_path).returncode == 0
    # A pipeline outside the manifests references 1.0.0: the plan sees it and keeps the version.
    with running(state=str(state)) as served:
        ib(served).create_image_pipeline(
            name="theirs",
            imageRecipeArn=f"{PREFIX}:image-recipe/rec1/1.0.0",
            infrastructureConfigurationArn=f"{PREFIX}:infrastructure-configuration/infra1",
            clientToken="theirs-1",
        )
    (root / "m.yaml").write_text("---\n".join([recipe(extra="  description: two\n  retainVersions: 1\n"), INFRA]))
    planned = cli("plan", str(root), "--sandbox", str(state), "--prune", "--detailed-exitcode", cwd=tmp_path)
    assert planned.returncode == 2, planned.stderr
    assert "delete versions ImageRecipe/rec1" in planned.stdout, planned.stdout
    done = cli("apply", str(root), "--sandbox", str(state), "--prune", "--auto-approve", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 version(s) kept" in done.stdout, done.stdout
    with running(state=str(state)) as served:
        assert recipe_versions(served) == ["1.0.0", "1.0.1"]
    assert "Traceback" not in planned.stderr + done.stderr


# --- component builds imagesync did not publish ------------------------------------------------


def hand_made_build(sb: RunningSandbox, version: str) -> None:
    """Another build of a version imagesync published: same name and version, other content, no tags."""
    ib(sb).create_component(
        name="comp1", semanticVersion=version, platform="Linux", data=DOCUMENT.format(word="theirs"),
        clientToken=f"theirs-{version}",
    )


def test_prune_leaves_a_component_whose_newest_build_is_not_imagesyncs(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", component(), INFRA)
    apply(root, sb)
    hand_made_build(sb, "1.0.0")
    assert component_builds(sb, "1.0.0") == ["1.0.0/1", "1.0.0/2"]
    (root / "m.yaml").write_text(INFRA)
    planned = plan(root, sb, prune=True)
    assert not planned.errored and not planned.has_changes
    _, outcomes = apply(root, sb, prune=True)
    assert outcomes == []
    assert component_builds(sb, "1.0.0") == ["1.0.0/1", "1.0.0/2"]


def test_prune_keeps_component_builds_imagesync_did_not_publish(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", component("one"), INFRA)
    apply(root, sb)
    (root / "m.yaml").write_text("---\n".join([component("two"), INFRA]))
    apply(root, sb)
    hand_made_build(sb, "1.0.0")  # the newest version, 1.0.1, is still imagesync's own
    (root / "m.yaml").write_text(INFRA)
    planned = plan(root, sb, prune=True)
    assert {c.address: c.action for t in planned.targets for c in t.pending} == {"Component/comp1": "delete"}
    _, outcomes = apply(root, sb, prune=True)
    (outcome,) = outcomes
    assert (outcome.action, outcome.status) == ("delete", "deleted")
    assert outcome.detail == "1 version(s) kept: still in use or not owned by imagesync"
    assert component_builds(sb, "1.0.0") == ["1.0.0/2"]
    assert component_builds(sb, "1.0.1") == []


def test_retention_keeps_component_builds_imagesync_did_not_publish(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", component("one"))
    apply(root, sb)
    (root / "m.yaml").write_text(component("two"))
    apply(root, sb)
    hand_made_build(sb, "1.0.0")
    (root / "m.yaml").write_text(component("three"))
    apply(root, sb)
    (root / "m.yaml").write_text(component("three", extra="  retainVersions: 1\n"))
    _, outcomes = apply(root, sb, prune=True)
    (outcome,) = outcomes
    assert (outcome.action, outcome.status) == ("delete-versions", "deleted")
    assert outcome.detail == "1 version(s) kept: still in use or not owned by imagesync"
    # imagesync's build of 1.0.0 and all of 1.0.1 are gone; the hand-made build of 1.0.0 stays.
    assert component_builds(sb, "1.0.0") == ["1.0.0/2"]
    assert component_builds(sb, "1.0.1") == []
    assert component_builds(sb, "1.0.2") == ["1.0.2/1"]


def hand_made_recipe_pinning(sb: RunningSandbox, build_arn: str) -> None:
    ib(sb).create_image_recipe(
        name="theirs", semanticVersion="1.0.0", parentImage=BASE,
        components=[{"componentArn": build_arn}, {"componentArn": UPDATE_LINUX}], clientToken="theirs-1",
    )


@pytest.mark.parametrize("pin", ["build", "version"])
def test_retention_keeps_a_component_version_a_recipe_still_pins(tmp_path: Path, sb: RunningSandbox, pin: str) -> None:
    root = tree(tmp_path / "m", component("one"))
    for word in ("one", "two", "three"):
        (root / "m.yaml").write_text(component(word))
        apply(root, sb)
    assert [component_builds(sb, v) for v in ("1.0.0", "1.0.1", "1.0.2")] == [["1.0.0/1"], ["1.0.1/1"], ["1.0.2/1"]]
    (root / "m.yaml").write_text(component("three", extra="  retainVersions: 1\n"))

    def pin_the_oldest(planned: Any) -> bool:
        (change,) = [c for t in planned.targets for c in t.pending]
        assert change.action == "delete-versions" and set(change.deleted_versions) == {"1.0.0", "1.0.1"}
        arn = f"{PREFIX}:component/comp1/1.0.0" + ("/1" if pin == "build" else "")
        hand_made_recipe_pinning(sb, arn)
        return True

    _, outcomes = apply(root, sb, confirm=pin_the_oldest, prune=True)
    (outcome,) = outcomes
    assert (outcome.action, outcome.status) == ("delete-versions", "deleted")
    assert outcome.detail == "1 version(s) kept: still in use or not owned by imagesync"
    assert component_builds(sb, "1.0.0") == ["1.0.0/1"]
    assert component_builds(sb, "1.0.1") == []
    # Still pinned, so still planned for deletion next time, and kept again: the plan is honest
    # about it rather than hiding the version.
    again = plan(root, sb, prune=True)
    assert [(c.action, c.deleted_versions) for t in again.targets for c in t.pending] == [
        ("delete-versions", ("1.0.0",))
    ]
