"""Safety properties: what imagesync does not own stays, saved plans apply exactly, locks and scopes.

Each test builds a small manifest tree and drives `imagesync.api` against a real sandbox over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imagesync import api
from imagesync.aws import ConnectOptions, Connector
from imagesync.errors import UserError
from imagesync.lock import DynamoDBLock, LockInfo
from imagesync.planner import PlanOptions
from imagesync.sandbox import RunningSandbox, running

ACCOUNT = "111111111111"
BASE = "arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x"
UPDATE_LINUX = "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x"
PROJECT = f"project: p1\ntargets:\n  - name: t1\n    region: us-east-1\n    account: '{ACCOUNT}'\n"


def recipe(version: str = "1.0.0", component: str = UPDATE_LINUX, extra: str = "") -> str:
    return (
        "apiVersion: imagesync/v1\nkind: ImageRecipe\nmetadata: {name: rec1}\n"
        f"spec:\n  version: {version}\n  parentImage: {BASE}\n  components: [{{componentArn: '{component}'}}]\n" + extra
    )


INFRA = (
    "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: infra1}\n"
    "spec: {instanceProfileName: p}\n"
)
PIPELINE = (
    "apiVersion: imagesync/v1\nkind: ImagePipeline\nmetadata: {name: pipe1}\n"
    "spec: {imageRecipeArn: {ref: rec1}, infrastructureConfigurationArn: {ref: infra1}}\n"
)


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    monkeypatch.chdir(tmp_path)
    with running() as served:
        yield served


def tree(root: Path, *docs: str, project: str = PROJECT) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(project)
    (root / "m.yaml").write_text("---\n".join(docs))
    return root


def ib(sb: RunningSandbox) -> Any:
    return boto3.client(
        "imagebuilder",
        endpoint_url=sb.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="x",
    )


def apply(root: Path, sb: RunningSandbox, **options: Any) -> Any:
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        return api.apply(root, connector, PlanOptions(**options))


def plan(root: Path, sb: RunningSandbox, **options: Any) -> Any:
    with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        return api.plan(root, connector, PlanOptions(**options))[0]


def recipe_versions(sb: RunningSandbox) -> list[str]:
    rows = ib(sb).list_image_recipes()["imageRecipeSummaryList"]
    return sorted(r["arn"].rsplit("/", 1)[1] for r in rows if r["name"] == "rec1")


def hand_made_recipe(
    sb: RunningSandbox, version: str, tags: dict[str, str] | None = None, component: str = UPDATE_LINUX
) -> None:
    ib(sb).create_image_recipe(
        name="rec1",
        semanticVersion=version,
        parentImage=BASE,
        components=[{"componentArn": component}],
        **({"tags": tags} if tags else {}),
    )


def test_prune_never_deletes_recipe_versions_imagesync_did_not_publish(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe())
    apply(root, sb)
    hand_made_recipe(sb, "0.9.0")  # beside imagesync's own version, by hand
    assert recipe_versions(sb) == ["0.9.0", "1.0.0"]
    (root / "m.yaml").write_text(INFRA)  # rec1 leaves the manifests
    _, outcomes = apply(root, sb, prune=True)
    assert [o.status for o in outcomes if o.address == "ImageRecipe/rec1"] == ["deleted"]
    assert recipe_versions(sb) == ["0.9.0"]


def test_retention_keeps_versions_imagesync_did_not_publish(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe(extra="  retainVersions: 1\n"))
    apply(root, sb, prune=True)
    hand_made_recipe(sb, "0.1.0")
    hand_made_recipe(sb, "0.2.0")
    (root / "m.yaml").write_text(recipe(extra="  retainVersions: 1\n  description: second\n"))
    apply(root, sb, prune=True)
    assert recipe_versions(sb) == ["0.1.0", "0.2.0", "1.0.1"]


def test_a_hand_made_copy_with_copied_tags_is_drift_not_adopted(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe(), INFRA, PIPELINE)
    apply(root, sb)
    ours = ib(sb).get_image_recipe(imageRecipeArn=f"arn:aws:imagebuilder:us-east-1:{ACCOUNT}:image-recipe/rec1/1.0.0")
    copied = ours["imageRecipe"]["tags"]
    hand_made_recipe(
        sb, "1.0.1", tags=copied, component="arn:aws:imagebuilder:us-east-1:aws:component/python-3-linux/x.x.x"
    )
    fresh = plan(root, sb)
    pipeline = next(c for c in fresh.targets[0].changes if c.address == "ImagePipeline/pipe1")
    assert all("1.0.1" not in str(call.params) for call in pipeline.calls)  # never moved to the copy
    assert [(d.address, d.version.previous if d.version else None) for d in fresh.targets[0].drift] == [
        ("ImageRecipe/rec1", "1.0.1")
    ]
    published = next(c for c in fresh.targets[0].changes if c.address == "ImageRecipe/rec1")
    assert published.version is not None and published.version.next == "1.0.2"


def test_retention_is_skipped_when_the_new_version_failed(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe())
    apply(root, sb)
    (root / "m.yaml").write_text(recipe(extra="  description: two\n"))
    apply(root, sb)
    assert recipe_versions(sb) == ["1.0.0", "1.0.1"]
    missing = "arn:aws:imagebuilder:us-east-1:aws:component/no-such-component/x.x.x"
    (root / "m.yaml").write_text(recipe(component=missing, extra="  retainVersions: 1\n"))
    _, outcomes = apply(root, sb, prune=True)
    statuses = sorted((o.action, o.status) for o in outcomes)
    assert statuses == [("delete-versions", "skipped"), ("publish", "failed")]
    assert recipe_versions(sb) == ["1.0.0", "1.0.1"]


def test_two_targets_in_one_account_and_region_are_refused(tmp_path: Path, sb: RunningSandbox) -> None:
    project = PROJECT + f"  - name: t2\n    region: us-east-1\n    account: '{ACCOUNT}'\n"
    root = tree(tmp_path / "m", INFRA, project=project)
    with pytest.raises(UserError, match="both account 111111111111 in us-east-1"):
        plan(root, sb)
    assert sb.stats()["total"] == 0


def test_a_refresh_only_saved_plan_applies_nothing(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe(), INFRA, PIPELINE)
    saved = plan(root, sb, refresh_only=True)
    assert not saved.has_changes
    (tmp_path / "p.json").write_text(json.dumps(saved.to_json()))
    fresh, outcomes = apply(tmp_path / "p.json", sb)
    assert outcomes == [] and not fresh.has_changes
    assert recipe_versions(sb) == []


def test_a_saved_plan_is_refused_when_an_env_value_changed(
    tmp_path: Path, sb: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = PROJECT + "allowEnv: [PROFILE_NAME]\n"
    infra = (
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: infra1}\n"
        "spec:\n  instanceProfileName: ${env.PROFILE_NAME}\n"
    )
    root = tree(tmp_path / "m", infra, project=project)
    monkeypatch.setenv("PROFILE_NAME", "reviewed")
    saved = plan(root, sb)
    (tmp_path / "p.json").write_text(json.dumps(saved.to_json()))
    monkeypatch.setenv("PROFILE_NAME", "changed")
    with pytest.raises(api.StalePlan, match="t1:InfrastructureConfiguration/infra1"):
        apply(tmp_path / "p.json", sb)
    assert ib(sb).list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_region_override_moves_the_whole_plan(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", recipe().replace("us-east-1", "${target.region}"), INFRA, PIPELINE)
    with Connector(ConnectOptions(sandbox=sb.endpoint_url, region="us-west-2")) as connector:
        _, outcomes = api.apply(root, connector, PlanOptions())
        assert outcomes and all(o.ok for o in outcomes)
        again, _ = api.plan(root, connector, PlanOptions())
    assert not again.has_changes
    west = boto3.client(
        "imagebuilder",
        endpoint_url=sb.endpoint_url,
        region_name="us-west-2",
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="x",
    )
    pipe = west.list_image_pipelines()["imagePipelineList"][0]
    assert pipe["imageRecipeArn"] == f"arn:aws:imagebuilder:us-west-2:{ACCOUNT}:image-recipe/rec1/1.0.0"


def test_the_lock_is_the_targets_whatever_the_working_directory(tmp_path: Path, sb: RunningSandbox) -> None:
    root = tree(tmp_path / "m", INFRA)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from imagesync.lock import FileLock, default_lock_dir; "
            f"FileLock(default_lock_dir(), 'p1/{ACCOUNT}/us-east-1').acquire('apply'); "
            "print('held', flush=True); sys.stdin.read()",  # held until killed or stdin closes
        ],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        os.chdir(elsewhere)
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            apply(root, sb)
    finally:
        holder.kill()
        holder.wait()
        for pipe in (holder.stdin, holder.stdout):
            if pipe is not None:
                pipe.close()


def test_dynamodb_lock_in_sandbox_mode_contacts_no_aws(
    tmp_path: Path, sb: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any real AWS call would fail
    root = tree(tmp_path / "m", INFRA, project=PROJECT + "lock: {backend: dynamodb, table: locks}\n")
    _, outcomes = apply(root, sb)
    assert [o.status for o in outcomes] == ["created"]


@mock_aws
def test_dynamodb_lock_recognizes_its_own_item_after_a_lost_response(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("dynamodb")
    client.create_table(
        TableName="locks",
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    class LostFirstResponse:
        """The real (moto) client, except the first PutItem's response is lost after it committed,
        and the retry then meets its own item, as a botocore retry after a dropped connection does."""

        def __init__(self) -> None:
            self.puts = 0

        def put_item(self, **kwargs: Any) -> Any:
            self.puts += 1
            client.put_item(**{k: v for k, v in kwargs.items() if k != "ConditionExpression"})
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}}, "PutItem")

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

    lock = DynamoDBLock(LostFirstResponse(), "locks", "p1/t1")
    info = lock.acquire("apply")
    assert isinstance(info, LockInfo) and info.pid == os.getpid()
    lock.release()
    assert "Item" not in client.get_item(TableName="locks", Key={"LockID": {"S": "p1/t1"}})
