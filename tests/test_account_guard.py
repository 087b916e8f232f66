"""A target's `account` is checked against the credentials before Image Builder is touched.

Everything runs as a user would: `imagesync sandbox serve` in a subprocess, and the imagesync CLI
in a subprocess WITHOUT --sandbox, reaching the sandbox only through AWS_ENDPOINT_URL (which
botocore uses for STS as well as Image Builder). The access key id selects the account, and the
sandbox's AssumeRole moves into the role's account. Resources are seeded where the credentials
act, so a missing guard would show up as Create/Delete calls in the sandbox's counters.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from support import read_line, stop_process

REGION = "us-east-1"
TARGET_ACCOUNT = "111111111111"
CREDS_ACCOUNT = "222222222222"
ROLE_ACCOUNT = "333333333333"
PROJECT = "guard"
WRITE_PREFIXES = ("Create", "Update", "Delete", "Tag", "Untag", "Put", "Start")
ENDPOINT_LINE = re.compile(r"endpoint=(http://127\.0\.0\.1:\d+)")


def infra(name: str) -> str:
    return (
        f"apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {{name: {name}}}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
    )


def write_manifests(root: Path, names: list[str], account: str | None, role_arn: str | None = None) -> Path:
    """A one-target project declaring `account` (and `roleArn`), with one infra config per name."""
    root.mkdir(parents=True, exist_ok=True)
    target = f"  - name: prod\n    region: {REGION}\n"
    if account:
        target += f'    account: "{account}"\n'
    if role_arn:
        target += f"    roleArn: {role_arn}\n"
    (root / "imagesync.yaml").write_text(f"project: {PROJECT}\ntargets:\n{target}")
    (root / "infra.yaml").write_text("---\n".join(infra(n) for n in names))
    return root


@dataclass
class Served:
    url: str

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_sandbox/stats", timeout=10) as resp:
            operations: dict[str, int] = json.loads(resp.read())["operations"]
        return operations

    def names(self, account: str) -> list[str]:
        client = boto3.client(
            "imagebuilder", endpoint_url=self.url, region_name=REGION,
            aws_access_key_id=account, aws_secret_access_key="x",
        )
        rows = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
        return sorted(row["name"] for row in rows)


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}


def writes(calls: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in calls.items() if op.startswith(WRITE_PREFIXES)}


def imagebuilder_calls(calls: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in calls.items() if op not in ("GetCallerIdentity", "AssumeRole")}


def env_for(url: str | None, cwd: Path, key: str | None = CREDS_ACCOUNT, **extra: str) -> dict[str, str]:
    """Credentials as a user would export them; nothing from the host's AWS configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(cwd / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(cwd / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    if url:
        env["AWS_ENDPOINT_URL"] = url
    if key:
        env.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY="x")
    env.update(extra)
    return env


def cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )


def seed(served: Served, work: Path, account: str, names: list[str]) -> None:
    """Apply `names` for project `guard` in `account` with imagesync itself (sandbox mode)."""
    root = write_manifests(work / f"seed-{account}", names, account)
    done = cli(["apply", str(root), "--sandbox", served.url, "--auto-approve"], work, env_for(None, work, None))
    assert done.returncode == 0, done.stderr
    assert served.names(account) == sorted(names)


@pytest.fixture(scope="module")
def serve_cmd() -> list[str]:
    return [sys.executable, "-m", "imagesync", "sandbox", "serve", "--port", "0"]


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], Served]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = read_line(proc, 30)
    except AssertionError:
        stop_process(proc)
        raise AssertionError("imagesync sandbox serve printed no endpoint") from None
    match = ENDPOINT_LINE.search(line)
    if not match:
        stop_process(proc)
        raise AssertionError(f"unexpected first line {line!r}")
    return proc, Served(match.group(1))


@pytest.fixture(scope="module")
def seeded(serve_cmd: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One sandbox shared by the refusal tests (they must not write): the project is already
    applied, plus an `orphan` that --prune would delete, in the credentials' and the role's account."""
    proc, served = start(serve_cmd)
    try:
        work = tmp_path_factory.mktemp("seed")
        for account in (CREDS_ACCOUNT, ROLE_ACCOUNT):
            seed(served, work, account, ["build", "orphan"])
        yield served
    finally:
        stop_process(proc)


@pytest.fixture
def fresh(serve_cmd: list[str]) -> Iterator[Served]:
    proc, served = start(serve_cmd)
    try:
        yield served
    finally:
        stop_process(proc)


# The manifests now want `build` and a new `extra`, and no longer `orphan`: without the guard,
# apply would create `extra` and --prune would delete `orphan`, in whichever account it reached.
COMMANDS = [
    pytest.param(["plan"], id="plan"),
    pytest.param(["plan", "--prune"], id="plan-prune"),
    pytest.param(["apply", "--auto-approve"], id="apply"),
    pytest.param(["apply", "--prune", "--auto-approve"], id="apply-prune"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("role_arn", "acting", "mentions"),
    [
        pytest.param(None, CREDS_ACCOUNT, [], id="direct"),
        pytest.param(
            f"arn:aws:iam::{ROLE_ACCOUNT}:role/deploy", ROLE_ACCOUNT, [f"arn:aws:iam::{ROLE_ACCOUNT}:role/deploy"],
            id="role-in-another-account",
        ),
    ],
)
def test_wrong_account_is_refused_before_any_image_builder_call(
    seeded: Served, tmp_path: Path, command: list[str], role_arn: str | None, acting: str, mentions: list[str]
) -> None:
    root = write_manifests(tmp_path / "manifests", ["build", "extra"], TARGET_ACCOUNT, role_arn)
    before = seeded.stats()
    done = cli([command[0], str(root), *command[1:]], tmp_path, env_for(seeded.url, tmp_path))
    calls = calls_between(before, seeded.stats())

    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    message = done.stderr
    for needle in ["'prod'", TARGET_ACCOUNT, acting, *mentions]:
        assert needle in message, message
    assert writes(calls) == {}
    assert imagebuilder_calls(calls) == {}
    assert calls.get("GetCallerIdentity") == 1
    assert calls.get("AssumeRole", 0) == (1 if role_arn else 0)
    assert seeded.names(acting) == ["build", "orphan"]
    assert seeded.names(TARGET_ACCOUNT) == []


@pytest.mark.parametrize(
    ("declared", "role_arn", "acting"),
    [
        pytest.param(CREDS_ACCOUNT, None, CREDS_ACCOUNT, id="declared-matches-credentials"),
        pytest.param(None, None, CREDS_ACCOUNT, id="no-account-declared"),
        pytest.param(TARGET_ACCOUNT, f"arn:aws:iam::{TARGET_ACCOUNT}:role/deploy", TARGET_ACCOUNT, id="via-role"),
    ],
)
def test_right_account_applies_and_then_plans_empty(
    fresh: Served, tmp_path: Path, declared: str | None, role_arn: str | None, acting: str
) -> None:
    seed(fresh, tmp_path, acting, ["build", "orphan"])
    root = write_manifests(tmp_path / "manifests", ["build", "extra"], declared, role_arn)
    env = env_for(fresh.url, tmp_path)

    before = fresh.stats()
    applied = cli(["apply", str(root), "--prune", "--auto-approve"], tmp_path, env)
    calls = calls_between(before, fresh.stats())
    assert applied.returncode == 0, applied.stderr
    assert writes(calls) == {"CreateInfrastructureConfiguration": 1, "DeleteInfrastructureConfiguration": 1}
    # asked once per target although both planning and applying need a client
    assert calls["GetCallerIdentity"] == 1
    assert calls.get("AssumeRole", 0) == (1 if role_arn else 0)
    assert fresh.names(acting) == ["build", "extra"]
    if acting != CREDS_ACCOUNT:
        assert fresh.names(CREDS_ACCOUNT) == []

    planned = cli(["plan", str(root), "--prune", "--detailed-exitcode", "--format", "json"], tmp_path, env)
    assert planned.returncode == 0, planned.stderr
    summary = json.loads(planned.stdout)["summary"]
    assert summary == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 0}


def test_only_selected_targets_are_checked(fresh: Served, tmp_path: Path) -> None:
    """Credentials for one account can plan that account's target in a two-account project."""
    root = write_manifests(tmp_path / "manifests", ["build"], CREDS_ACCOUNT)
    config = (root / "imagesync.yaml").read_text()
    other = f'  - name: other\n    region: {REGION}\n    account: "{TARGET_ACCOUNT}"\n'
    (root / "imagesync.yaml").write_text(config + other)
    env = env_for(fresh.url, tmp_path)
    selected = cli(["plan", str(root), "--target", "prod"], tmp_path, env)
    assert selected.returncode == 0, selected.stderr
    everything = cli(["plan", str(root)], tmp_path, env)
    assert everything.returncode == 1
    assert "'other'" in everything.stderr and TARGET_ACCOUNT in everything.stderr
    assert CREDS_ACCOUNT in everything.stderr


@pytest.mark.parametrize(
    ("role_arn", "key", "extra_env", "needles"),
    [
        pytest.param(
            f"arn:aws:iam::{TARGET_ACCOUNT}:role/denied-deploy", CREDS_ACCOUNT, {},
            ["AccessDenied", f"arn:aws:iam::{TARGET_ACCOUNT}:role/denied-deploy", "'prod'"],
            id="assume-role-denied",
        ),
        pytest.param(None, None, {}, ["credentials", "'prod'"], id="no-credentials"),
        pytest.param(
            None, CREDS_ACCOUNT, {"AWS_SESSION_TOKEN": "not-a-token-the-sandbox-issued"},
            ["InvalidClientTokenId", "'prod'"], id="invalid-session-token",
        ),
    ],
)
@pytest.mark.parametrize("command", [["plan"], ["apply", "--prune", "--auto-approve"]], ids=["plan", "apply-prune"])
def test_credential_errors_are_clean(
    fresh: Served,
    tmp_path: Path,
    role_arn: str | None,
    key: str | None,
    extra_env: dict[str, str],
    needles: list[str],
    command: list[str],
) -> None:
    root = write_manifests(tmp_path / "manifests", ["build"], TARGET_ACCOUNT, role_arn)
    before = fresh.stats()
    done = cli([command[0], str(root), *command[1:]], tmp_path, env_for(fresh.url, tmp_path, key, **extra_env))
    calls = calls_between(before, fresh.stats())
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr
    assert imagebuilder_calls(calls) == {}

