"""Credentials for targets: a roleArn's temporary credentials are refreshed before they expire,
assumed once per target, from whatever the base session's chain gives (a profile with its own
role included).

moto answers STS in-process, with its clock moved together with the one the credentials are
judged against, so an expiry can be brought near without waiting; the sandbox answers STS (and
Image Builder) over HTTP for the CLI runs, reached through AWS_ENDPOINT_URL as a user would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import moto.sts.models
import pytest
from moto import mock_aws
from moto.sts.exceptions import STSClientError

from imagesync.aws import ConnectOptions, Connector, call
from imagesync.desired import Target
from imagesync.errors import UserError
from imagesync.sandbox import RunningSandbox, running

REGION = "us-east-1"
ROLE_ACCOUNT = "111111111111"
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/deploy"
CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")


class Clock:
    """The time both moto's STS and the credentials see: real time until moved."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    shared = Clock()
    # moto stamps Expiration with this (naive UTC) function.
    monkeypatch.setattr(moto.sts.models, "utcnow", lambda: shared.now.replace(tzinfo=None))
    with mock_aws():
        yield shared


def assumed(account: str) -> list[Any]:
    """Every AssumeRole moto answered into `account`, oldest first."""
    return list(moto.sts.models.sts_backends[account]["aws"].assumed_roles)


def signing_keys(client: Any) -> list[str]:
    """The access key id of every request `client` sends from now on."""
    keys: list[str] = []

    def record(request: Any, **_: Any) -> None:
        match = CREDENTIAL.search(str(request.headers.get("Authorization", "")))
        keys.append(match.group(1) if match else "")

    client.meta.events.register("request-created", record)
    return keys


@pytest.mark.parametrize(
    ("later", "why"),
    [
        (timedelta(minutes=46), "inside botocore's advisory window: refreshed without blocking"),
        (timedelta(minutes=55), "inside the mandatory window: every caller waits for the refresh"),
        (timedelta(hours=3), "long past the expiry: refreshed before the call is signed"),
    ],
)
def test_role_credentials_are_assumed_again_before_they_expire(clock: Clock, later: timedelta, why: str) -> None:
    connector = Connector(ConnectOptions(), clock=clock)
    target = Target("prod", REGION, ROLE_ACCOUNT, ROLE_ARN)
    sts = connector.client(target, "sts")  # one client for the whole run, as an apply keeps its clients
    keys = signing_keys(sts)
    for _ in range(3):
        assert sts.get_caller_identity()["Account"] == ROLE_ACCOUNT
    assert len(assumed(ROLE_ACCOUNT)) == 1, "the session must last until its refresh is due"

    clock.now += later
    for _ in range(3):
        identity = sts.get_caller_identity()
        assert identity["Account"] == ROLE_ACCOUNT and identity["Arn"].endswith("role/deploy/imagesync-prod")
    roles = assumed(ROLE_ACCOUNT)
    assert len(roles) == 2, why
    # The same client signs with the new role session from the refresh on.
    assert keys == [roles[0].access_key_id] * 3 + [roles[1].access_key_id] * 3, why


def test_each_target_assumes_its_role_once_however_many_clients_and_threads(clock: Clock) -> None:
    connector = Connector(ConnectOptions(), clock=clock)
    targets = [
        Target("prod", REGION, ROLE_ACCOUNT, ROLE_ARN),
        Target("dev", "eu-west-1", "444444444444", "arn:aws:iam::444444444444:role/deploy"),
    ]
    threads = [threading.Thread(target=connector.verify, args=(t,)) for t in targets for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for target in targets:
        for _ in range(3):
            connector.imagebuilder(target)
            assert connector.client(target, "sts").get_caller_identity()["Account"] == target.account
    assert len(assumed(ROLE_ACCOUNT)) == 1
    assert len(assumed("444444444444")) == 1


@pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\):UserWarning")  # moto's own serialiser note
def test_a_role_that_cannot_be_assumed_on_refresh_is_a_user_error_naming_target_and_role(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = Connector(ConnectOptions(), clock=clock)
    target = Target("prod", REGION, ROLE_ACCOUNT, ROLE_ARN)
    sts = connector.client(target, "sts")

    def deny(*_args: Any, **_kwargs: Any) -> Any:
        raise STSClientError("AccessDenied", "User is not authorized to perform: sts:AssumeRole")

    monkeypatch.setattr(moto.sts.models.STSBackend, "assume_role", deny)  # the trust policy changed
    clock.now += timedelta(hours=2)
    with pytest.raises(UserError) as caught:
        call(sts, "GetCallerIdentity", {}, target="prod")
    message = str(caught.value)
    assert "target 'prod'" in message and ROLE_ARN in message and "AccessDenied" in message


# -- the CLI, with profiles from temporary AWS config files, against the sandbox's STS -----------

BASE_ACCOUNT = "222222222222"
APP_ACCOUNT = "333333333333"
CONFIG = f"""\
[profile base]
region = {REGION}

[profile deploy]
role_arn = arn:aws:iam::{ROLE_ACCOUNT}:role/deploy
source_profile = base
region = {REGION}
"""
CREDENTIALS = f"""\
[base]
aws_access_key_id = {BASE_ACCOUNT}
aws_secret_access_key = x
"""


@pytest.fixture
def served() -> Iterator[RunningSandbox]:
    with running() as sandbox:
        yield sandbox


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as resp:
        operations: dict[str, int] = json.loads(resp.read())["operations"]
    return operations


def project(root: Path, account: str, role_arn: str | None) -> Path:
    root.mkdir(parents=True)
    role = f"    roleArn: {role_arn}\n" if role_arn else ""
    (root / "imagesync.yaml").write_text(
        f'project: creds\ntargets:\n  - name: prod\n    region: {REGION}\n    account: "{account}"\n{role}'
    )
    (root / "infra.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
    )
    return root


@pytest.mark.parametrize(
    ("profile", "declared", "role_arn", "assumes", "outcome"),
    [
        pytest.param("deploy", ROLE_ACCOUNT, None, 1, "ok", id="profile-role-via-source-profile"),
        pytest.param(
            "deploy", APP_ACCOUNT, f"arn:aws:iam::{APP_ACCOUNT}:role/app", 2, "ok", id="target-role-from-profile-role"
        ),
        pytest.param("base", ROLE_ACCOUNT, None, 0, f"act in account {BASE_ACCOUNT}", id="source-profile-alone"),
    ],
)
def test_profiles_with_role_arn_and_source_profile_are_honoured(
    served: RunningSandbox,
    tmp_path: Path,
    profile: str,
    declared: str,
    role_arn: str | None,
    assumes: int,
    outcome: str,
) -> None:
    (tmp_path / "config").write_text(CONFIG)
    (tmp_path / "credentials").write_text(CREDENTIALS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL=served.endpoint_url,
    )
    root = project(tmp_path / "m", declared, role_arn)
    before = stats(served.endpoint_url)
    done = subprocess.run(
        [sys.executable, "-m", "imagesync", "plan", str(root), "--profile", profile],
        cwd=tmp_path, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )
    after = stats(served.endpoint_url)
    calls = {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)}
    assert calls.get("AssumeRole", 0) == assumes, (calls, done.stderr)
    if outcome == "ok":
        assert done.returncode == 0, done.stderr
        assert "InfrastructureConfiguration/build" in done.stdout
        assert calls["GetCallerIdentity"] == 1
    else:
        assert done.returncode == 1 and outcome in done.stderr and "Traceback" not in done.stderr
        assert set(calls) == {"GetCallerIdentity"}, "nothing but STS before the account is verified"


@pytest.mark.parametrize(
    ("profile", "needle"),
    [
        pytest.param("absent", "absent", id="unknown-profile"),
        pytest.param("orphan", "nowhere", id="role-profile-whose-source-profile-is-missing"),
    ],
)
def test_a_broken_profile_is_a_user_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, profile: str, needle: str
) -> None:
    (tmp_path / "config").write_text(f"[profile orphan]\nrole_arn = {ROLE_ARN}\nsource_profile = nowhere\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    connector = Connector(ConnectOptions(profile=profile))
    with pytest.raises(UserError, match=needle):
        connector.verify(Target("prod", REGION, ROLE_ACCOUNT))


def test_no_other_service_client_against_a_sandbox(served: RunningSandbox) -> None:
    connector = Connector(ConnectOptions(sandbox=served.endpoint_url))
    with pytest.raises(ValueError, match="against a sandbox"):
        connector.client(Target("prod", REGION, ROLE_ACCOUNT), "sts")


def test_an_undeclared_account_is_asked_of_sts_once_and_a_state_file_is_no_sandbox_url(clock: Clock) -> None:
    """A target without `account` learns it from STS (moto's account for these keys), once; the
    S3 client of a target is made like its Image Builder client, after that account is known."""
    connector = Connector(ConnectOptions())
    target = Target("prod", REGION, None)
    account = connector.account(target)
    assert account.isdigit() and len(account) == 12
    assert connector.account(target) == account
    assert connector.s3(target).meta.service_model.service_name == "s3"
    with pytest.raises(ValueError, match="must be a sandbox URL"):
        Connector(ConnectOptions(sandbox="sandbox.json"))
