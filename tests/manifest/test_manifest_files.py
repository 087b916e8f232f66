"""Which YAML files are manifests: `.imagesyncignore` (gitignore syntax) and `include`/`exclude`
in imagesync.yaml. An ignored file is never read; a YAML file that is not a manifest and not
ignored is still an error, with the hint to ignore it. Through the CLI, as a user runs validate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError

PROJECT = 'project: files\ntargets:\n  - name: dev\n    region: us-east-1\n    account: "111111111111"\n'
INFRA = (
    "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
    "spec: {instanceProfileName: p}\n"
)
NOT_A_MANIFEST = "# a Helm-style values file kept beside the manifests\nreplicas: 3\nimage: {tag: latest}\n"


def estate(root: Path, files: dict[str, str], project_extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(PROJECT + project_extra)
    for name, text in {"infra.yaml": INFRA, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(root), "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("files", "project_extra"),
    [
        ({"ci/values.yaml": NOT_A_MANIFEST, ".imagesyncignore": "ci/\n"}, ""),
        ({"values.yaml": NOT_A_MANIFEST, ".imagesyncignore": "# not manifests\n*values.yaml\n"}, ""),
        ({"helm/values.yaml": NOT_A_MANIFEST}, "exclude: [helm/]\n"),
        ({"other/values.yaml": NOT_A_MANIFEST}, "include: ['infra.yaml', 'manifests/**']\n"),
    ],
    ids=["ignored-directory", "ignored-glob", "exclude", "include"],
)
def test_files_left_out_are_never_read(tmp_path: Path, files: dict[str, str], project_extra: str) -> None:
    root = estate(tmp_path / "m", files, project_extra)
    result = validate(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["resources"] == 1  # the infrastructure configuration alone


def test_a_non_manifest_that_is_not_ignored_is_an_error_with_the_hint(tmp_path: Path) -> None:
    root = estate(tmp_path / "m", {"values.yaml": NOT_A_MANIFEST})
    result = validate(root)
    assert result.returncode == 1
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["file"], problem["line"]) == ("values.yaml", 2)
    assert "not an imagesync manifest" in problem["message"] and ".imagesyncignore" in problem["message"]


def test_a_negated_pattern_keeps_a_manifest_in(tmp_path: Path) -> None:
    root = estate(
        tmp_path / "m",
        {"extra/a.yaml": NOT_A_MANIFEST, "extra/keep.yaml": INFRA.replace("build", "kept"),
         ".imagesyncignore": "extra/*\n!extra/keep.yaml\n"},
    )
    assert sorted(r.name for r in load(root)) == ["build", "kept"]


@pytest.mark.parametrize(
    ("files", "project_extra", "where"),
    [
        ({".imagesyncignore": "ok/\n!\n"}, "", (".imagesyncignore", 2, 1)),
        ({}, "exclude:\n  - fine/\n  - '!'\n", ("imagesync.yaml", 8, 5)),
    ],
    ids=["ignore-file", "exclude"],
)
def test_a_bad_pattern_is_reported_where_it_is_written(
    tmp_path: Path, files: dict[str, str], project_extra: str, where: tuple[str, int, int]
) -> None:
    root = estate(tmp_path / "m", files, project_extra)
    with pytest.raises(ManifestError) as caught:
        load(root)
    [problem] = caught.value.problems
    assert (problem.location.path, problem.location.line, problem.location.column) == where
    assert "'!' is not a gitignore pattern" in problem.message


def test_the_ignore_file_is_part_of_the_manifests_digest(tmp_path: Path) -> None:
    """A saved plan is refused when what decides which files are manifests changed."""
    root = estate(tmp_path / "m", {"values.yaml": NOT_A_MANIFEST, ".imagesyncignore": "values.yaml\n"})
    before = load(root).digest
    (root / ".imagesyncignore").write_text("values.yaml\n# reviewed\n")
    assert load(root).digest != before


def test_an_ignore_file_linking_outside_the_root_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.write_text("values.yaml\n")
    root = estate(tmp_path / "m", {"values.yaml": NOT_A_MANIFEST})
    (root / ".imagesyncignore").symlink_to(outside)
    with pytest.raises(ManifestError) as caught:
        load(root)
    messages = [str(p) for p in caught.value.problems]
    assert ".imagesyncignore: error: is a link that points outside the manifest root" in messages[0], messages
    assert any("values.yaml:2:1" in m and "not an imagesync manifest" in m for m in messages)  # so nothing ignored
