"""Names from variables: `metadata.name` may use `${target.*}` and `${vars.*}`; identity, references,
collisions and the name rules all see the name after substitution, and problems point at the name."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError

PROJECT = """\
project: names
targets:
  - name: dev
    region: us-east-1
    account: "111111111111"
    vars: {team: web, bad: "no/slashes"}
  - name: prod
    region: eu-west-1
    account: "222222222222"
    vars: {team: web, bad: "no/slashes"}
"""
BASE = "arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x"


def estate(root: Path, manifests: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(PROJECT)
    (root / "m.yaml").write_text(manifests)
    return root


def component(name: str) -> str:
    return f"""\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: "{name}"}}
spec:
  version: 1.0.0
  platform: Linux
  document:
    schemaVersion: 1.0
    phases: [{{name: build, steps: [{{name: Hi, action: ExecuteBash, inputs: {{commands: [echo hi]}}}}]}}]
"""


def test_names_and_references_are_substituted_per_target(tmp_path: Path) -> None:
    root = estate(
        tmp_path / "m",
        component("${vars.team}-harden-${target.name}")
        + f"""---
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: "${{vars.team}}-${{target.name}}"}}
spec:
  version: 1.0.0
  parentImage: {BASE}
  components: [{{ref: "${{vars.team}}-harden-${{target.name}}"}}]
""",
    )
    desired = load(root)
    assert sorted((r.target, r.kind, r.name) for r in desired) == [
        ("dev", "Component", "web-harden-dev"),
        ("dev", "ImageRecipe", "web-dev"),
        ("prod", "Component", "web-harden-prod"),
        ("prod", "ImageRecipe", "web-prod"),
    ]
    [recipe] = [r for r in desired if r.kind == "ImageRecipe" and r.target == "prod"]
    assert [str(ref.target) for ref in recipe.references] == ["Component/web-harden-prod"]
    assert recipe.location.line == 13  # the recipe's metadata.name


@pytest.mark.parametrize(
    ("manifests", "line", "message"),
    [
        (component("web-${target.name}") + "---\n" + component("web-dev"), 13, "Component 'web-dev' is defined twice"),
        (component("x-${vars.bad}"), 3, "'x-no/slashes' is not a valid name"),
        (component("x-${vars.missing}"), 3, "vars.missing"),
    ],
    ids=["collision", "pattern", "undefined-variable"],
)
def test_name_problems_are_reported_at_the_name(tmp_path: Path, manifests: str, line: int, message: str) -> None:
    root = estate(tmp_path / "m", manifests)
    with pytest.raises(ManifestError) as caught:
        load(root)
    found = [p for p in caught.value.problems if message in p.message]
    assert found, [str(p) for p in caught.value.problems]
    assert {(p.location.path, p.location.line) for p in found} == {("m.yaml", line)}


def test_a_name_from_the_environment_is_refused(tmp_path: Path) -> None:
    root = estate(tmp_path / "m", component("x-${env.USER}"))
    with pytest.raises(ManifestError) as caught:
        load(root)
    [problem] = caught.value.problems
    assert (problem.location.line, problem.location.column) == (3, 12)
    assert "not ${env.*}" in problem.message
