"""`--sandbox STATE_FILE`: the CLI serves the state file in-process; a file it cannot use is a user error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MANIFEST = (
    "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
    "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
)


def imagesync(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "imagesync.yaml").write_text("project: st\ntargets:\n  - name: solo\n    region: eu-west-1\n")
    (manifests / "m.yaml").write_text(MANIFEST)
    return tmp_path


@pytest.mark.parametrize(
    ("state", "content", "message"),
    [
        ("bad.json", "{bad", "bad.json: bad.json is not an imagesync sandbox state file: Expecting property name"),
        ("list.json", "[]", "list.json: list.json is not an imagesync sandbox state file"),
        ("dir.json", None, "dir.json: [Errno 21] Is a directory"),
    ],
)
@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"]])
def test_an_unusable_state_file_is_a_user_error(
    workdir: Path, state: str, content: str | None, message: str, command: list[str]
) -> None:
    if content is None:
        (workdir / state).mkdir()
    else:
        (workdir / state).write_text(content)
    result = imagesync([*command, "manifests", "--sandbox", state], workdir)
    assert result.returncode == 1, result.stderr
    assert f"error: cannot use sandbox state file {message}" in result.stderr
    assert "Traceback" not in result.stderr
    if content is not None:
        assert (workdir / state).read_text() == content  # nothing was written over it


def test_a_state_file_keeps_what_apply_made_for_the_next_run(workdir: Path) -> None:
    applied = imagesync(["apply", "manifests", "--sandbox", "state.json", "--auto-approve"], workdir)
    assert applied.returncode == 0, applied.stderr
    state = json.loads((workdir / "state.json").read_text())
    assert [arn for table in state["resources"].values() for arn in table] == [
        "arn:aws:imagebuilder:eu-west-1:123456789012:infrastructure-configuration/build"
    ]
    planned = imagesync(["plan", "manifests", "--sandbox", "state.json", "--detailed-exitcode"], workdir)
    assert planned.returncode == 0, planned.stdout + planned.stderr
