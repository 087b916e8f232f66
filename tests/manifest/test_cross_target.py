"""What `{ref: NAME, target: T}` and `spec.sharing` may say: every mistake is reported at its
place in the manifest by `imagesync validate`, offline, with exit 1 and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = """\
project: estate
targets:
  - name: hub
    region: us-east-1
    account: "111111111111"
  - name: spoke
    region: us-east-1
    account: "222222222222"
"""
COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: {name}, targets: [{target}]}}
spec:
  version: 1.0.0
  platform: Linux
{extra}  document:
    schemaVersion: 1.0
    phases: [{{name: build, steps: [{{name: A, action: ExecuteBash, inputs: {{commands: [echo]}}}}]}}]
"""
RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: {name}, targets: [{target}]}}
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - {ref}
"""
PIPELINE = """\
apiVersion: imagesync/v1
kind: ImagePipeline
metadata: {name: nightly, targets: [spoke]}
spec:
  imageRecipeArn: {ref: app}
  infrastructureConfigurationArn: {ref: build, target: hub}
---
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {name: build}
spec:
  instanceProfileName: image-build
"""


USES_HUB = RECIPE.format(name="app", target="spoke", ref="{ref: harden, target: hub}")


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(root)], capture_output=True, text=True, cwd=root, timeout=60
    )


def estate(tmp_path: Path, *docs: str) -> Path:
    root = tmp_path / "m"
    root.mkdir()
    (root / "imagesync.yaml").write_text(PROJECT)
    (root / "m.yaml").write_text("---\n".join(docs))
    return root


def shared_component(sharing: str = '  sharing: {accounts: ["222222222222"]}\n') -> str:
    return COMPONENT.format(name="harden", target="hub", extra=sharing)


def test_a_reference_to_a_shared_hub_component_validates(tmp_path: Path) -> None:
    root = estate(tmp_path, shared_component(), USES_HUB)
    result = validate(root)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("docs", "line", "message"),
    [
        pytest.param(
            [shared_component(), RECIPE.format(name="app", target="spoke", ref="{ref: harden, target: hbu}")],
            19,
            "names target 'hbu', which imagesync.yaml does not define; it defines: hub, spoke",
            id="unknown-target",
        ),
        pytest.param(
            [shared_component(), RECIPE.format(name="app", target="spoke", ref="{ref: hardening, target: hub}")],
            19,
            "references Component/hardening in target 'hub', which is not defined for that target; "
            "did you mean 'harden'?",
            id="not-in-that-target",
        ),
        pytest.param(
            [
                COMPONENT.format(name="tools", target="spoke", extra=""),
                RECIPE.format(name="app", target="spoke", ref="{ref: tools}"),
                PIPELINE,
            ],
            25,
            "spec.infrastructureConfigurationArn.target: unknown field 'target' (only references to what can be "
            "shared name another target: Component, ImageRecipe, ContainerRecipe, Image); allowed: ref",
            id="kind-not-shareable",
        ),
        pytest.param(
            [
                COMPONENT.format(name="tools", target="spoke", extra=""),
                RECIPE.format(name="app", target="spoke", ref="{ref: tools}"),
                RECIPE.format(name="base", target="hub", ref="{ref: tools, target: spoke}"),
                shared_component(),
                RECIPE.format(name="uses-hub", target="spoke", ref="{ref: harden, target: hub}"),
            ],
            47,  # the spoke's reference to the hub, one of the two that close the loop
            "targets reference each other's resources: hub -> spoke -> hub",
            id="targets-use-each-other",
        ),
        pytest.param(
            [shared_component('  sharing: {accounts: ["2222"]}\n')],
            7,
            "spec.sharing.accounts[0]: '2222' is not an AWS account ID",
            id="bad-account",
        ),
        pytest.param(
            [shared_component("  sharing: {}\n")],
            7,
            "spec.sharing: has 0 entries; it must have at least 1",
            id="empty-sharing",
        ),
        pytest.param(
            [shared_component('  sharing: {users: ["222222222222"]}\n')],
            7,
            "spec.sharing.users: unknown field 'users'; allowed: accounts, organizationalUnits, organizations",
            id="unknown-sharing-field",
        ),
    ],
)
def test_mistakes_are_located(tmp_path: Path, docs: list[str], line: int, message: str) -> None:
    root = estate(tmp_path, *docs)
    result = validate(root)
    assert result.returncode == 1, result.stdout
    out = result.stdout + result.stderr
    assert message in out, out
    assert "Traceback" not in out
    assert f"m.yaml:{line}:" in out, out


def test_a_target_in_another_region_is_refused_at_plan(tmp_path: Path) -> None:
    from imagesync.sandbox import running

    root = estate(tmp_path, shared_component(), USES_HUB)
    spoke_elsewhere = PROJECT.replace('region: us-east-1\n    account: "222', 'region: eu-west-1\n    account: "222')
    (root / "imagesync.yaml").write_text(spoke_elsewhere)
    with running() as sb:
        result = subprocess.run(
            [sys.executable, "-m", "imagesync", "plan", str(root), "--sandbox", sb.endpoint_url],
            capture_output=True, text=True, cwd=root, timeout=60,
        )
    assert result.returncode == 1
    assert "spoke:ImageRecipe/app (m.yaml:19:" in result.stderr
    assert "target hub is in us-east-1 and spoke in eu-west-1: Image Builder resources are regional" in result.stderr
    assert "Traceback" not in result.stderr
