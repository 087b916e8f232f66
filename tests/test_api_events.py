"""Every API call attempt is a debug event (`api call`): operation, target, attempt number,
duration in milliseconds and, on failure, the AWS error code; never its parameters. Shown with
-v (readable, or one JSON object a line with --log-format json), hidden by default. The CLI runs
as a subprocess against a sandbox served in this process, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesync.sandbox import RunningSandbox, running

REGION = "us-east-1"
SECRET = "s3cr3t-token-do-not-log"
ROLE_ARN = "arn:aws:iam::111111111111:role/deploy"


def write_project(root: Path, role_arn: str | None = None) -> Path:
    """One target, one component whose document holds a secret, one infrastructure configuration."""
    root.mkdir(parents=True)
    role = f"    roleArn: {role_arn}\n" if role_arn else ""
    (root / "imagesync.yaml").write_text(
        f'project: events\ntargets:\n  - name: prod\n    region: {REGION}\n    account: "111111111111"\n{role}'
    )
    (root / "resources.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
        "---\n"
        "apiVersion: imagesync/v1\nkind: Component\nmetadata: {name: agent}\n"
        "spec:\n  platform: Linux\n  version: 1.0.0\n  sensitive: [document]\n  document:\n"
        "    schemaVersion: 1.0\n    phases:\n      - name: build\n        steps:\n"
        "          - name: Fetch\n            action: ExecuteBash\n            inputs:\n"
        f"              commands: [\"curl -H 'Authorization: {SECRET}' https://example.com\"]\n"
    )
    return root


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )


def json_events(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line parsed as JSON: --log-format json must write nothing else."""
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


@pytest.fixture
def throttled() -> Iterator[RunningSandbox]:
    # Deterministic throttling: some calls are answered CallRateLimitExceededException and retried.
    with running(throttle_rate=0.3, seed=7) as served:
        yield served


def test_each_attempt_is_one_json_event_with_timing_and_error_code(throttled: RunningSandbox, tmp_path: Path) -> None:
    root = write_project(tmp_path / "m")
    args = ["apply", str(root), "--sandbox", throttled.endpoint_url, "--auto-approve", "-v", "--log-format", "json"]
    done = cli(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stderr and SECRET not in done.stdout
    calls = [e for e in json_events(done.stderr) if e["event"] == "api call"]
    assert all(e["level"] == "debug" for e in calls)
    assert all(set(e) >= {"operation", "target", "attempt", "duration_ms", "ok", "timestamp"} for e in calls)
    assert all(isinstance(e["duration_ms"], (int, float)) and e["duration_ms"] >= 0 for e in calls)
    # Nothing of a call but these fields: no parameters, no response.
    allowed = {"event", "level", "timestamp", "operation", "target", "attempt", "duration_ms", "ok", "code"}
    assert {key for e in calls for key in e} <= allowed
    operations = {e["operation"] for e in calls}
    assert {"ListComponents", "CreateComponent", "CreateInfrastructureConfiguration"} <= operations
    # Reads (the planner's) and writes (the executor's) alike name the target they are for.
    assert {e["target"] for e in calls if e["operation"].startswith(("List", "Get", "Create"))} == {"prod"}

    failed = [e for e in calls if not e["ok"]]
    assert failed and all(e["code"] == "CallRateLimitExceededException" for e in failed)
    assert all("code" not in e for e in calls if e["ok"])
    # A failed attempt is followed by the next attempt of the same operation.
    assert any(e["attempt"] > 1 and e["ok"] for e in calls)
    for e in calls:
        if e["attempt"] > 1:
            assert any(f["operation"] == e["operation"] and f["attempt"] == e["attempt"] - 1 and not f["ok"]
                       for f in failed)


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        pytest.param([], False, id="default-hides-debug"),
        pytest.param(["--log-format", "json"], False, id="json-without-v-hides-debug"),
        pytest.param(["-v"], True, id="v-shows-console-lines"),
    ],
)
def test_api_call_events_only_with_v(tmp_path: Path, flags: list[str], shown: bool) -> None:
    root = write_project(tmp_path / "m")
    done = cli(["plan", str(root), "--sandbox", str(tmp_path / "state.json"), *flags], tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("api call" in done.stderr) is shown
    assert "api call" not in done.stdout, "logs go to stderr only"
    if shown:
        line = next(line for line in done.stderr.splitlines() if "api call" in line)
        assert "operation=List" in line and "attempt=1" in line and "duration_ms=" in line


def test_sts_events_name_the_target(tmp_path: Path) -> None:
    """Against AWS (here the sandbox through AWS_ENDPOINT_URL), the role's AssumeRole and the
    account check are events for the target they serve."""
    root = write_project(tmp_path / "m", ROLE_ARN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with running() as served:
        env.update(
            AWS_ACCESS_KEY_ID="222222222222",
            AWS_SECRET_ACCESS_KEY="x",
            AWS_CONFIG_FILE=str(tmp_path / "no-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_ENDPOINT_URL=served.endpoint_url,
        )
        done = cli(["plan", str(root), "-v", "--log-format", "json"], tmp_path, env)
    assert done.returncode == 0, done.stderr
    calls = [e for e in json_events(done.stderr) if e["event"] == "api call"]
    sts = [(e["operation"], e["target"], e["attempt"], e["ok"]) for e in calls if e["operation"] in
           ("AssumeRole", "GetCallerIdentity")]
    assert sts == [("AssumeRole", "prod", 1, True), ("GetCallerIdentity", "prod", 1, True)]
    assert "SecretAccessKey" not in done.stderr and "SessionToken" not in done.stderr
