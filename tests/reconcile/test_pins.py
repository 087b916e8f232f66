"""Pinned component versions in recipes: `{ref: NAME, version: 1.2.3}` pins a published version,
`{ref: NAME, version: 1.x.x}` follows the newest matching one; neither cascades a new recipe
version when the component publishes. Through the CLI against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesync.sandbox import RunningSandbox, running

PROJECT = 'project: pins\ntargets:\n  - name: dev\n    region: us-east-1\n    account: "111111111111"\n'
COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: hello}}
spec:
  version: 1.0.0
  platform: Linux
  document:
    schemaVersion: 1.0
    phases: [{{name: build, steps: [{{name: Hi, action: ExecuteBash, inputs: {{commands: ["echo {word}"]}}}}]}}]
"""
RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: web}}
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - {{ref: hello{pin}}}
"""
BASE = "arn:aws:imagebuilder:us-east-1:111111111111:component/hello"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running() as sb:
        yield sb


def write(root: Path, word: str, pin: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(PROJECT)
    (root / "component.yaml").write_text(COMPONENT.format(word=word))
    (root / "recipe.yaml").write_text(RECIPE.format(pin=f", version: {pin}" if pin else ""))
    return root


def cli(sb: RunningSandbox, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args, str(root), "--sandbox", sb.endpoint_url],
        capture_output=True, text=True, cwd=root, timeout=120,
    )


def plan(sb: RunningSandbox, root: Path) -> dict[str, dict[str, Any]]:
    result = cli(sb, root, "plan", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {c["resource"]: c for c in json.loads(result.stdout)["resource_changes"]}


def applied(sb: RunningSandbox, root: Path) -> None:
    result = cli(sb, root, "apply", "--auto-approve")
    assert result.returncode == 0, result.stderr


def test_an_exact_pin_keeps_the_recipe_on_that_version(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m", "one")
    applied(sandbox, root)
    write(root, "two")
    applied(sandbox, root)  # Component/hello 1.0.1, and the recipe follows it to 1.0.1
    write(root, "three", pin="1.0.0")
    changes = plan(sandbox, root)
    assert changes["Component/hello"]["version"]["to"] == "1.0.2"
    recipe = changes["ImageRecipe/web"]
    assert recipe["change"]["actions"] == ["publish"]  # moving from 1.0.1 back to the pinned 1.0.0
    assert recipe["change"]["after"]["spec"]["components"] == [{"componentArn": f"{BASE}/1.0.0"}]
    assert not recipe["reason"].startswith("dependency changed")  # the component's move is not why
    applied(sandbox, root)
    write(root, "four", pin="1.0.0")
    again = plan(sandbox, root)
    assert again["Component/hello"]["change"]["actions"] == ["publish"]
    assert again["ImageRecipe/web"]["change"]["actions"] == ["no-op"]  # no cascade through a pin


def test_a_wildcard_pin_follows_the_newest_match_without_a_new_recipe_version(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = write(tmp_path / "m", "one", pin="1.x.x")
    first = plan(sandbox, root)
    assert first["ImageRecipe/web"]["change"]["after"]["spec"]["components"] == [{"componentArn": f"{BASE}/1.x.x"}]
    applied(sandbox, root)
    write(root, "two", pin="1.x.x")
    changes = plan(sandbox, root)
    assert changes["Component/hello"]["change"]["actions"] == ["publish"]
    assert changes["ImageRecipe/web"]["change"]["actions"] == ["no-op"]


@pytest.mark.parametrize("pin", ["1.0.7", "2.x.x"])
def test_a_pin_nothing_published_matches_is_refused(sandbox: RunningSandbox, tmp_path: Path, pin: str) -> None:
    root = write(tmp_path / "m", "one")
    applied(sandbox, root)
    writes = sandbox.stats()["operations"].get("CreateImageRecipe", 0)
    write(root, "one", pin=pin)
    result = cli(sandbox, root, "apply", "--auto-approve")
    assert result.returncode == 1
    assert f"dev:ImageRecipe/web (recipe.yaml:8:8): pins Component/hello {pin}" in result.stderr, result.stderr
    assert "published: 1.0.0" in result.stderr and "Traceback" not in result.stderr
    assert sandbox.stats()["operations"].get("CreateImageRecipe", 0) == writes


def test_a_malformed_pin_is_refused_at_its_place(tmp_path: Path) -> None:
    root = write(tmp_path / "m", "one", pin="1.2")
    result = subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(root)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "recipe.yaml:8:" in result.stdout and "1.2" in result.stdout, result.stdout
