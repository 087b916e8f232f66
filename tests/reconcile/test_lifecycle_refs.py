"""Lifecycle policies select managed recipes with `{ref: RECIPE}`: the item becomes the recipe's
name and the version the plan leaves live, so a new recipe version updates the policy in the same
plan; `version:` selects a fixed version or a wildcard. A literal exact version of a managed
recipe is a located warning, not an error. Through the CLI against the sandbox, with the policy
read back with boto3."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from imagesync.sandbox import RunningSandbox, running

ACCOUNT = "111111111111"
PROJECT = f'project: lc\ntargets:\n  - name: dev\n    region: us-east-1\n    account: "{ACCOUNT}"\n'
TWO_TARGETS = PROJECT + f'  - name: qa\n    region: us-west-2\n    account: "{ACCOUNT}"\n'
# The name folds in its ARN (web-app); the selection must carry it as written.
IMAGE_RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {name: Web_App}
spec:
  version: 1.0.0
  description: DESCRIPTION
  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - componentArn: arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x
"""
CONTAINER_RECIPE = """\
apiVersion: imagesync/v1
kind: ContainerRecipe
metadata: {name: api}
spec:
  version: 2.0.0
  containerType: DOCKER
  parentImage: amazonlinux:2023
  components:
    - componentArn: arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x
  dockerfileTemplateData: "FROM {{{ imagebuilder:parentImage }}}\\n{{{ imagebuilder:components }}}\\n"
  targetRepository: {service: ECR, repositoryName: api}
"""
# The item is on line 12: `      - ITEM`, so the item's mapping starts at column 9.
POLICY = """\
apiVersion: imagesync/v1
kind: LifecyclePolicy
metadata: {name: retention}
spec:
  executionRole: arn:aws:iam::111111111111:role/lifecycle
  resourceType: RESOURCE_TYPE
  policyDetails:
    - action: {type: DELETE}
      filter: {type: COUNT, value: 3}
  resourceSelection:
    recipes:
      - ITEM
"""


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running() as sb:
        yield sb


def write(
    root: Path, item: str, *, description: str = "one", resource_type: str = "AMI_IMAGE", project: str = PROJECT
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(project)
    (root / "recipe.yaml").write_text(IMAGE_RECIPE.replace("DESCRIPTION", description))
    (root / "container.yaml").write_text(CONTAINER_RECIPE)
    (root / "policy.yaml").write_text(POLICY.replace("RESOURCE_TYPE", resource_type).replace("ITEM", item))
    return root


def cli(root: Path, *args: str, sb: RunningSandbox | None = None) -> subprocess.CompletedProcess[str]:
    connect = ["--sandbox", sb.endpoint_url] if sb is not None else []
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args, str(root), *connect],
        capture_output=True, text=True, cwd=root, timeout=120, stdin=subprocess.DEVNULL,
    )


def plan(sb: RunningSandbox, root: Path) -> dict[str, dict[str, Any]]:
    result = cli(root, "plan", "--format", "json", sb=sb)
    assert result.returncode == 0, result.stderr
    return {c["resource"]: c for c in json.loads(result.stdout)["resource_changes"]}


def applied(sb: RunningSandbox, root: Path) -> None:
    result = cli(root, "apply", "--auto-approve", sb=sb)
    assert result.returncode == 0, result.stderr
    after = plan(sb, root)
    assert {c["change"]["actions"][0] for c in after.values()} == {"no-op"}, after


def live_selection(sb: RunningSandbox) -> list[dict[str, str]]:
    client = boto3.client(
        "imagebuilder", endpoint_url=sb.endpoint_url, region_name="us-east-1",
        aws_access_key_id=ACCOUNT, aws_secret_access_key="x",
    )
    arn = f"arn:aws:imagebuilder:us-east-1:{ACCOUNT}:lifecycle-policy/retention"
    recipes: list[dict[str, str]] = client.get_lifecycle_policy(lifecyclePolicyArn=arn)["lifecyclePolicy"][
        "resourceSelection"
    ]["recipes"]
    return recipes


def writes(sb: RunningSandbox) -> int:
    ops = sb.stats()["operations"]
    return sum(n for op, n in ops.items() if op.startswith(("Create", "Update", "Delete", "Tag", "Untag")))


def test_a_ref_selects_the_version_the_plan_leaves_live_and_moves_with_the_recipe(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = write(tmp_path / "m", "{ref: Web_App}")
    first = plan(sandbox, root)
    policy = first["LifecyclePolicy/retention"]
    assert policy["change"]["actions"] == ["create"]
    assert policy["depends_on"] == ["dev:ImageRecipe/Web_App"]
    assert policy["change"]["after"]["spec"]["resourceSelection"] == {
        "recipes": [{"name": "Web_App", "semanticVersion": "1.0.0"}]
    }
    applied(sandbox, root)
    assert live_selection(sandbox) == [{"name": "Web_App", "semanticVersion": "1.0.0"}]

    write(root, "{ref: Web_App}", description="two")
    changes = plan(sandbox, root)
    version = changes["ImageRecipe/Web_App"]["version"]
    assert (version["from"], version["to"]) == ("1.0.0", "1.0.1")
    policy = changes["LifecyclePolicy/retention"]
    assert policy["change"]["actions"] == ["update"]
    assert policy["reason"] == "dependency changed: ImageRecipe/Web_App -> 1.0.1"
    text = cli(root, "plan", sb=sandbox).stdout
    assert '~ spec.resourceSelection.recipes[0].semanticVersion: "1.0.0" -> "1.0.1"' in text, text
    assert text.index("ImageRecipe/Web_App 1.0.0 -> 1.0.1") < text.index("update LifecyclePolicy/retention")
    applied(sandbox, root)
    assert live_selection(sandbox) == [{"name": "Web_App", "semanticVersion": "1.0.1"}]


def test_a_container_policy_refs_a_container_recipe(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "{ref: api}", resource_type="CONTAINER_IMAGE")
    changes = plan(sandbox, root)
    assert changes["LifecyclePolicy/retention"]["depends_on"] == ["dev:ContainerRecipe/api"]
    applied(sandbox, root)
    assert live_selection(sandbox) == [{"name": "api", "semanticVersion": "2.0.0"}]


def test_a_selected_version_or_wildcard_does_not_move_with_the_recipe(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "{ref: Web_App, version: 1.x.x}")
    applied(sandbox, root)
    assert live_selection(sandbox) == [{"name": "Web_App", "semanticVersion": "1.x.x"}]
    write(root, "{ref: Web_App, version: 1.x.x}", description="two")
    changes = plan(sandbox, root)
    assert changes["ImageRecipe/Web_App"]["change"]["actions"] == ["publish"]
    assert changes["LifecyclePolicy/retention"]["change"]["actions"] == ["no-op"]
    applied(sandbox, root)
    write(root, "{ref: Web_App, version: 1.0.0}", description="two")
    changes = plan(sandbox, root)
    assert changes["LifecyclePolicy/retention"]["reason"] == "manifest changed"
    applied(sandbox, root)
    assert live_selection(sandbox) == [{"name": "Web_App", "semanticVersion": "1.0.0"}]


def test_a_selected_version_nothing_published_matches_stops_the_plan_at_the_item(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = write(tmp_path / "m", "{ref: Web_App}")
    applied(sandbox, root)
    before = writes(sandbox)
    write(root, "{ref: Web_App, version: 2.x.x}")
    result = cli(root, "apply", "--auto-approve", sb=sandbox)
    assert result.returncode == 1
    assert "dev:LifecyclePolicy/retention (policy.yaml:12:10): pins ImageRecipe/Web_App 2.x.x" in result.stderr
    assert "published: 1.0.0" in result.stderr and "Traceback" not in result.stderr
    assert writes(sandbox) == before


@pytest.mark.parametrize(
    ("item", "resource_type", "message"),
    [
        pytest.param(
            "{ref: Web_Ap}", "AMI_IMAGE",
            "policy.yaml:12:10: error: LifecyclePolicy/retention spec.resourceSelection.recipes[0].ref references "
            "ImageRecipe/Web_Ap, which is not defined; did you mean 'Web_App'?",
            id="unknown-recipe",
        ),
        pytest.param(
            "{ref: Web_App}", "CONTAINER_IMAGE",
            "policy.yaml:12:10: error: LifecyclePolicy/retention spec.resourceSelection.recipes[0].ref references "
            "'Web_App', which is a ImageRecipe (defined at recipe.yaml:3:12), not a ContainerRecipe",
            id="image-recipe-in-a-container-policy",
        ),
        pytest.param(
            "{ref: api}", "AMI_IMAGE",
            "policy.yaml:12:10: error: LifecyclePolicy/retention spec.resourceSelection.recipes[0].ref references "
            "'api', which is a ContainerRecipe (defined at container.yaml:3:12), not a ImageRecipe",
            id="container-recipe-in-an-ami-policy",
        ),
        pytest.param(
            "{ref: Web_App, semanticVersion: 1.0.0}", "AMI_IMAGE",
            "policy.yaml:12:24: error: spec.resourceSelection.recipes[0].semanticVersion: unknown field "
            "'semanticVersion'; allowed: ref, version",
            id="ref-with-the-literal-version-key",
        ),
        pytest.param(
            "{ref: Web_App, version: x.1.x}", "AMI_IMAGE",
            "policy.yaml:12:24: error: spec.resourceSelection.recipes[0].version: 'x.1.x' is not a version to pin",
            id="wildcards-not-right-aligned",
        ),
        pytest.param(
            "{name: Web_App}", "AMI_IMAGE",
            "policy.yaml:12:9: error: spec.resourceSelection.recipes[0]: 'semanticVersion' is a required property",
            id="literal-without-version",
        ),
    ],
)
def test_a_bad_selection_is_refused_at_the_item_before_any_call(
    sandbox: RunningSandbox, tmp_path: Path, item: str, resource_type: str, message: str
) -> None:
    root = write(tmp_path / "m", item, resource_type=resource_type)
    validated = cli(root, "validate")
    assert validated.returncode == 1
    assert message in validated.stdout, validated.stdout
    planned = cli(root, "plan", sb=sandbox)
    assert planned.returncode == 1 and message in planned.stderr, planned.stderr
    assert "Traceback" not in planned.stderr
    assert sandbox.stats()["operations"] == {}  # refused before reading anything


WARNING = (
    "policy.yaml:12:9: warning: imagesync publishes new versions of ImageRecipe/Web_App; this selection keeps "
    "naming 1.0.0, so images of later versions are not covered: use {ref: Web_App} (the version the plan leaves "
    "live), or {ref: Web_App, version: x.x.x} to keep covering the images of every version"
)


def test_a_literal_version_of_a_managed_recipe_is_a_warning_in_validate_and_plan(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = write(tmp_path / "m", "{name: Web_App, semanticVersion: 1.0.0}", project=TWO_TARGETS)
    validated = cli(root, "validate")
    assert validated.returncode == 0, validated.stdout
    assert validated.stdout.count(WARNING) == 1, validated.stdout  # once, though both targets have it
    assert "valid (6 resources across 2 targets, 1 warning(s))" in validated.stdout
    as_json = json.loads(cli(root, "validate", "--format", "json").stdout)
    assert as_json["valid"] is True and as_json["problems"] == []
    assert as_json["warnings"] == [
        {"file": "policy.yaml", "line": 12, "column": 9, "message": WARNING.split(": warning: ", 1)[1]}
    ]

    planned = cli(root, "plan", sb=sandbox)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.count(f"! {WARNING}") == 2, planned.stdout  # among each target's warnings
    data = json.loads(cli(root, "plan", "--format", "json", sb=sandbox).stdout)
    assert [t["warnings"] for t in data["targets"]] == [[WARNING], [WARNING]]
    applied(sandbox, root)  # a warning never stops an apply
    assert live_selection(sandbox) == [{"name": "Web_App", "semanticVersion": "1.0.0"}]


@pytest.mark.parametrize(
    "item",
    [
        pytest.param("{name: Web_App, semanticVersion: x.x.x}", id="literal-wildcard"),
        pytest.param("{name: Web_App, semanticVersion: 1.x.x}", id="literal-major-wildcard"),
        pytest.param("{name: unmanaged, semanticVersion: 1.0.0}", id="recipe-not-in-the-manifests"),
        pytest.param("{ref: Web_App}", id="ref"),
    ],
)
def test_no_warning_when_the_selection_keeps_covering_or_is_not_ours(tmp_path: Path, item: str) -> None:
    root = write(tmp_path / "m", item)
    validated = cli(root, "validate", "--format", "json")
    assert validated.returncode == 0, validated.stdout
    assert json.loads(validated.stdout)["warnings"] == []


def test_warnings_are_shown_beside_errors(tmp_path: Path) -> None:
    root = write(tmp_path / "m", "{name: Web_App, semanticVersion: 1.0.0}")
    (root / "other.yaml").write_text("apiVersion: imagesync/v1\nkind: Nope\nmetadata: {name: x}\nspec: {}\n")
    validated = cli(root, "validate")
    assert validated.returncode == 1
    assert "other.yaml:2:1: error: unknown kind 'Nope'" in validated.stdout, validated.stdout
    assert WARNING in validated.stdout
    as_json = json.loads(cli(root, "validate", "--format", "json").stdout)
    assert as_json["valid"] is False and len(as_json["problems"]) == 1 and len(as_json["warnings"]) == 1
