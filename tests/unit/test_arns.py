"""The reconciler's own naming of Image Builder resources (imagesync.arns), and that the ARNs it
computes before a resource exists are the ones the sandbox gives the resource, in every partition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from imagesync import arns

WORKFLOW = (Path(__file__).resolve().parents[2] / "examples" / "manifests" / "workflows" / "build-and-verify.yml")


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", "aws"),
        ("eu-west-1", "aws"),
        ("cn-north-1", "aws-cn"),
        ("cn-northwest-1", "aws-cn"),
        ("us-gov-west-1", "aws-us-gov"),
        ("us-gov-east-1", "aws-us-gov"),
    ],
)
def test_partition(region: str, expected: str) -> None:
    assert arns.partition(region) == expected


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: arns.arn_name("Base_Image two"), "base-image-two"),
        (
            lambda: arns.resource_arn("cn-north-1", "111111111111", "image-recipe", "Base_Image"),
            "arn:aws-cn:imagebuilder:cn-north-1:111111111111:image-recipe/base-image",
        ),
        (
            lambda: arns.resource_arn("us-east-1", "111111111111", arns.workflow_arn_type("BUILD"), "verify"),
            "arn:aws:imagebuilder:us-east-1:111111111111:workflow/build/verify",
        ),
        (
            lambda: arns.newest_image_arn("us-gov-west-1", "111111111111", "base"),
            "arn:aws-us-gov:imagebuilder:us-gov-west-1:111111111111:image/base/x.x.x",
        ),
        (lambda: arns.without_build("1.2.3/4"), "1.2.3"),
        (lambda: arns.without_build("1.2.3"), "1.2.3"),
        (lambda: arns.version_of("arn:aws:imagebuilder:us-east-1:1:component/x/1.2.3"), "1.2.3"),
        (lambda: arns.is_build_arn("arn:aws:imagebuilder:us-east-1:1:component/x/1.2.3/1"), True),
        (lambda: arns.is_build_arn("arn:aws:imagebuilder:us-east-1:1:component/x/1.2.3"), False),
    ],
)
def test_naming(call: Callable[[], object], expected: object) -> None:
    assert call() == expected


ESTATE = """\
apiVersion: imagesync/v1
kind: Component
metadata: {name: check}
spec:
  platform: Linux
  version: 1.0.0
  document:
    name: check
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Hello
            action: ExecuteBash
            inputs:
              commands: [echo hello]
---
apiVersion: imagesync/v1
kind: Workflow
metadata: {name: verify}
spec: {type: BUILD, version: 1.0.0, documentFile: build-and-verify.yml}
---
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {name: base}
spec:
  version: 1.0.0
  parentImage: ami-0abcdef1234567890
  components: [{ref: check}]
---
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {name: layered}
spec:
  version: 1.0.0
  parentImage: {ref: base}
  components: [{ref: check}]
---
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {name: build}
spec: {instanceProfileName: build, instanceTypes: [m7i.large]}
---
apiVersion: imagesync/v1
kind: ImagePipeline
metadata: {name: base}
spec:
  imageRecipeArn: {ref: base}
  infrastructureConfigurationArn: {ref: build}
  workflows: [{workflowArn: {ref: verify}}]
  executionRole: ${vars.role}
---
apiVersion: imagesync/v1
kind: ImagePipeline
metadata: {name: layered}
spec:
  imageRecipeArn: {ref: layered}
  infrastructureConfigurationArn: {ref: build}
"""


@pytest.mark.parametrize("region", ["eu-west-1", "cn-north-1", "us-gov-west-1"])
def test_computed_arns_are_the_sandboxes_in_every_partition(tmp_path: Path, region: str) -> None:
    """Recipes pin components, pipelines name recipes, workflows and configurations by the ARNs the
    planner computes before they exist; in a China or GovCloud region those carry that partition."""
    root = tmp_path / "manifests"
    root.mkdir()
    role = f"arn:{arns.partition(region)}:iam::111111111111:role/workflow-execution"
    (root / "imagesync.yaml").write_text(
        f"project: parts\ntargets:\n  - name: one\n    region: {region}\n    account: '111111111111'\n"
        f"    vars: {{role: '{role}'}}\n"
    )
    (root / "estate.yaml").write_text(ESTATE)
    (root / "build-and-verify.yml").write_text(WORKFLOW.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    def imagesync(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imagesync", *args, "manifests", "--sandbox", "state.json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
        )

    applied = imagesync("apply", "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 7 created." in applied.stdout
    state = json.loads((tmp_path / "state.json").read_text())
    made = sorted(arn for table in state["resources"].values() for arn in table)
    assert made and all(a.startswith(f"arn:{arns.partition(region)}:imagebuilder:{region}:") for a in made), made
    planned = imagesync("plan", "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:imagebuilder:us-east-1:111111111111:image-recipe/web/1.0.0", "web"),
        ("arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x", "update-linux"),
        ("arn:aws:imagebuilder:us-east-1:111111111111:workflow/build/verify/1.0.0/1", "verify"),
        ("arn:aws:imagebuilder:us-east-1:111111111111:infrastructure-configuration/build", "build"),
        ("arn:aws:imagebuilder:us-east-1:111111111111:image-recipe", ""),
    ],
)
def test_name_of(arn: str, name: str) -> None:
    assert arns.name_of(arn) == name
