"""A kind is one module, one line in the registry and its generated schema; nothing else names it.

The test takes a copy of the package, removes a kind the way it was added (its module, its line in
`imagesync.kinds.MODULES`, its schema), and checks that the rest of the code never mentions it and
still works without it. Then it adds the kind back with exactly those three things, the schema
produced by the unchanged generator, and checks that the kind validates and plans again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagesync.kinds import MODULES, REGISTRY

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "imagesync"

# (module, manifest) for kinds nothing else references: the newest one and a mutable one.
LEAF_KINDS = {
    "image": """\
apiVersion: imagesync/v1
kind: Image
metadata: {name: web-ami}
spec:
  imageRecipeArn: arn:aws:imagebuilder:us-east-1:aws:image-recipe/web/1.0.0
  infrastructureConfigurationArn: arn:aws:imagebuilder:us-east-1:111111111111:infrastructure-configuration/build
""",
    "lifecycle_policy": """\
apiVersion: imagesync/v1
kind: LifecyclePolicy
metadata: {name: keep-recent}
spec:
  executionRole: arn:aws:iam::111111111111:role/lifecycle
  resourceType: AMI_IMAGE
  policyDetails:
    - action: {type: DELETE}
      filter: {type: COUNT, value: 5}
  resourceSelection:
    tagMap: {team: web}
""",
}

PROJECT = """\
project: kinds
targets:
  - name: dev
    region: us-east-1
    account: "111111111111"
"""


def _kind_of(module: str) -> str:
    source = (PACKAGE / "kinds" / f"{module}.py").read_text()
    match = re.search(r'^NAME = "(\w+)"|name="(\w+)"', source, re.M)
    assert match, module
    return match.group(1) or match.group(2)


def _schema_of(module: str) -> str:
    return REGISTRY[_kind_of(module)].schema


def _run(copy: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin", "HOME": str(copy)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def _without(copy: Path, module: str) -> None:
    """Remove a kind exactly as it was added: module, registry line, schema."""
    (copy / "imagesync" / "kinds" / f"{module}.py").unlink()
    (copy / "imagesync" / "schemas" / f"{_schema_of(module)}.json").unlink()
    registry = copy / "imagesync" / "kinds" / "__init__.py"
    text = registry.read_text()
    line = f'    "{module}",\n'
    assert text.count(line) == 1
    registry.write_text(text.replace(line, ""))


@pytest.mark.parametrize("module", sorted(LEAF_KINDS))
def test_a_kind_is_added_by_its_module_one_registry_line_and_its_generated_schema(tmp_path: Path, module: str) -> None:
    assert module in MODULES
    kind = _kind_of(module)
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "imagesync", ignore=shutil.ignore_patterns("__pycache__"))
    _without(copy, module)

    # Nothing outside the sandbox (which models the whole service) names the kind or its module.
    quoted = re.compile(rf"""["']{kind}["']|kinds\.{module}\b|\b{module}\.KIND\b|import {module}\b""")
    mentions = [
        f"{path.relative_to(copy)}:{n}: {line.strip()}"
        for path in sorted((copy / "imagesync").rglob("*.py"))
        if "sandbox" not in path.relative_to(copy).parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if quoted.search(line)
    ]
    assert mentions == []

    estate = tmp_path / "estate"
    estate.mkdir()
    (estate / "imagesync.yaml").write_text(PROJECT)
    (estate / "kind.yaml").write_text(LEAF_KINDS[module])
    gone = _run(copy, "-m", "imagesync", "validate", str(estate))
    assert gone.returncode == 1 and f"unknown kind {kind!r}" in gone.stdout + gone.stderr, gone.stdout

    # Back with exactly the three things: the module, its registry line, the generator's schema.
    shutil.copy(PACKAGE / "kinds" / f"{module}.py", copy / "imagesync" / "kinds" / f"{module}.py")
    registry = copy / "imagesync" / "kinds" / "__init__.py"
    registry.write_text(registry.read_text().replace("MODULES = (\n", f'MODULES = (\n    "{module}",\n'))
    generated = _run(copy, str(REPO / "scripts" / "generate_schemas.py"), "--out", str(copy / "imagesync" / "schemas"))
    assert generated.returncode == 0, generated.stderr
    schema = f"{_schema_of(module)}.json"
    assert (copy / "imagesync" / "schemas" / schema).read_text() == (PACKAGE / "schemas" / schema).read_text()
    assert f"wrote {copy / 'imagesync' / 'schemas' / schema}" in generated.stdout  # the only file it wrote
    assert generated.stdout.count("wrote ") == 1

    back = _run(copy, "-m", "imagesync", "validate", str(estate))
    assert back.returncode == 0, back.stderr
    planned = _run(copy, "-m", "imagesync", "plan", str(estate), "--sandbox", str(tmp_path / "state.json"),
                   "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    changes = json.loads(planned.stdout)["resource_changes"]
    assert [(c["kind"], c["change"]["actions"]) for c in changes] == [(kind, ["create"])]
