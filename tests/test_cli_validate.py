"""`imagesync validate` as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "manifests"

PROBLEM_LINE = re.compile(r"^(?P<path>[^:\s][^:]*):(?P<line>[1-9]\d*):(?P<column>[1-9]\d*): error: (?P<message>\S.*)$")

PROJECT = """\
project: cli-test
targets:
  - name: prod
    region: us-east-1
    account: "111111111111"
    vars: {subnet: subnet-1}
  - name: dev
    region: eu-west-1
    account: "222222222222"
"""

INFRA = """\
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata:
  name: infra
spec:
  instanceProfileName: build-profile
  bogus: true
"""

PIPELINE = """\
apiVersion: imagesync/v1
kind: ImagePipeline
metadata:
  name: pipe
spec:
  imageRecipeArn: {ref: missing-recipe}
  infrastructureConfigurationArn: {ref: infra}
"""

BROKEN = """\
apiVersion: imagesync/v1
kind: Component
metadata: {name: comp
"""

# (file, line, column, message fragment) of the three problems in the bad tree
EXPECTED = {
    ("broken.yaml", 4, 1, "invalid YAML"),
    ("infra.yaml", 7, 3, "spec.bogus: unknown field 'bogus'"),
    ("pipeline.yaml", 6, 3, "references ImageRecipe/missing-recipe, which is not defined"),
}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def assert_no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stdout and "Traceback" not in done.stderr, done.stdout + done.stderr


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    root.mkdir()
    (root / "imagesync.yaml").write_text(PROJECT)
    (root / "infra.yaml").write_text(INFRA)
    (root / "pipeline.yaml").write_text(PIPELINE)
    (root / "broken.yaml").write_text(BROKEN)
    return root


def test_examples_are_valid() -> None:
    done = run("validate", EXAMPLES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^.*: valid \(\d+ resources across 2 targets\)$", done.stdout, re.MULTILINE), done.stdout
    assert_no_traceback(done)


def test_bad_tree_prints_one_located_line_per_problem(bad_tree: Path) -> None:
    done = run("validate", bad_tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert_no_traceback(done)
    lines = done.stdout.splitlines()
    assert len(lines) == 3, done.stdout
    matches = [PROBLEM_LINE.match(line) for line in lines]
    assert all(matches), done.stdout
    got = {(m["path"], int(m["line"]), int(m["column"])): m["message"] for m in matches if m}
    for path, line, column, fragment in EXPECTED:
        assert fragment in got.get((path, line, column), ""), done.stdout
    assert "3 problem(s) found" in done.stderr


def test_bad_tree_as_json(bad_tree: Path) -> None:
    done = run("validate", bad_tree, "--format", "json")
    assert done.returncode == 1, done.stdout + done.stderr
    assert_no_traceback(done)
    report = json.loads(done.stdout)
    assert report["valid"] is False
    assert report["resources"] == 0
    problems = report["problems"]
    assert len(problems) == 3
    for problem in problems:
        assert set(problem) >= {"file", "line", "column", "message"}
        assert isinstance(problem["line"], int) and isinstance(problem["column"], int)
    got = {(p["file"], p["line"], p["column"]): p["message"] for p in problems}
    for path, line, column, fragment in EXPECTED:
        assert fragment in got.get((path, line, column), ""), got


def test_valid_tree_as_json() -> None:
    done = run("validate", "--format", "json", cwd=EXAMPLES)  # DIR defaults to the current directory
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["valid"] is True
    assert report["problems"] == []
    assert report["resources"] > 0


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_nonexistent_dir(tmp_path: Path, fmt: str) -> None:
    missing = tmp_path / "no-such-dir"
    done = run("validate", missing, "--format", fmt)
    assert done.returncode == 1, done.stdout + done.stderr
    assert_no_traceback(done)
    output = done.stdout + done.stderr
    assert str(missing) in output
    assert "not a directory" in output
    if fmt == "json":
        assert json.loads(done.stdout)["valid"] is False


def test_verbose_flag_is_accepted(bad_tree: Path) -> None:
    done = run("-v", "validate", EXAMPLES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout
    done = run("--verbose", "validate", bad_tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(done.stdout.splitlines()) == 3
    assert_no_traceback(done)  # manifest problems are results, not crashes, even with -v


def test_validate_help_describes_the_command() -> None:
    done = run("validate", "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "usage: imagesync validate" in text
    assert "--format" in text and "json" in text and "text" in text
    assert "DIR" in text
    assert "path:line:col: error: message" in text


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    done = run("validate", tmp_path, "--format", "yaml")
    assert done.returncode == 1
    assert "invalid choice" in done.stderr
    assert_no_traceback(done)
