"""Documents in S3, end to end: a component document over the 16,000-character inline limit is
uploaded to moto's S3 and created with `uri`, a sandbox reading it from the same moto endpoint;
a manifest's own `uri` is read at plan time. Real boto3 over HTTP everywhere, the CLI as a
subprocess where a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from imagesync import api
from imagesync.aws import ConnectOptions, Connector
from imagesync.desired import Address
from imagesync.manifest.loader import load
from imagesync.planner import PlanOptions
from imagesync.sandbox import RunningSandbox, running
from support import s3_client

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kernel-mainline-update.yaml"
DOCUMENT = FIXTURE.read_text()
ACCOUNT = "111111111111"
NAME = "kernel-mainline-update"
ONE_LINE = ('echo "prerequisites installed for $OS"', 'echo "prerequisites installed for $OS, kernel next"')

PROJECT = """\
project: docs-test
targets:
  - {{name: prod, region: us-east-1, account: "{account}"}}
{defaults}"""

COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: {name}}}
spec:
  platform: Linux
  version: 1.0.0
{source}"""

RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {name: base}
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - ref: kernel-mainline-update
"""


@pytest.fixture
def sandbox(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSandbox]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    with running(s3_endpoint=moto_url) as sb:
        yield sb


def write_tree(root: Path, source: str, defaults: str = "", recipe: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(PROJECT.format(account=ACCOUNT, defaults=defaults))
    docs = [COMPONENT.format(name=NAME, source=source)] + ([RECIPE] if recipe else [])
    (root / "m.yaml").write_text("---\n".join(docs))
    return root


def cli(sb: RunningSandbox, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args, "--sandbox", sb.endpoint_url],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, env=env,
    )


def calls(stderr: str) -> list[tuple[str, bool]]:
    """(operation, ok) of every API call attempt in a `-v --log-format json` run's stderr."""
    out = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "api call":
            out.append((event["operation"], event["ok"]))
    return out


def imagebuilder(sb: RunningSandbox) -> Any:
    return boto3.client(
        "imagebuilder", endpoint_url=sb.endpoint_url, region_name="us-east-1",
        aws_access_key_id=ACCOUNT, aws_secret_access_key="x",
    )


def live_document(sb: RunningSandbox, version: str) -> str:
    client = imagebuilder(sb)
    arn = f"arn:aws:imagebuilder:us-east-1:{ACCOUNT}:component/{NAME}/{version}/1"
    return str(client.get_component(componentBuildVersionArn=arn)["component"]["data"])


def objects(moto_url: str, bucket: str) -> dict[str, Any]:
    listed = s3_client(moto_url).list_objects_v2(Bucket=bucket).get("Contents") or []
    return {o["Key"]: o["LastModified"] for o in listed}


def key_of(text: str, prefix: str = "imagesync/") -> str:
    import hashlib

    return f"{prefix}{NAME}/{hashlib.sha256(text.encode()).hexdigest()}.yaml"


def test_the_fixture_is_over_the_inline_limit() -> None:
    assert len(DOCUMENT) > 16000


def test_a_large_document_applies_through_s3_and_a_one_line_change_publishes(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str
) -> None:
    root = write_tree(
        tmp_path / "m", "  documentFile: kernel.yaml\n", f"defaults:\n  documentBucket: {{bucket: {bucket}}}\n"
    )
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    key = key_of(DOCUMENT)

    planned = cli(sandbox, "plan", str(root))
    assert planned.returncode == 0, planned.stderr
    size = len(DOCUMENT.encode())
    assert f"uploads the document ({size:,} bytes) to s3://{bucket}/{key}" in planned.stdout
    assert f"+ spec.uri: |-\n          s3://{bucket}/{key}" in planned.stdout
    assert objects(moto_url, bucket) == {}  # the plan uploads nothing

    applied = cli(sandbox, "apply", str(root), "--auto-approve", "-v", "--log-format", "json")
    assert applied.returncode == 0, applied.stderr
    made = calls(applied.stderr)
    # The upload comes first, then the Create call that names it.
    assert made.index(("HeadObject", False)) < made.index(("PutObject", True)) < made.index(("CreateComponent", True))
    assert s3_client(moto_url).get_object(Bucket=bucket, Key=key)["Body"].read().decode() == DOCUMENT
    assert live_document(sandbox, "1.0.0") == DOCUMENT  # the sandbox read it from the same S3

    again = cli(sandbox, "plan", str(root), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes" in again.stdout
    before = objects(moto_url, bucket)
    rerun = cli(sandbox, "apply", str(root), "--auto-approve", "-v", "--log-format", "json")
    assert rerun.returncode == 0, rerun.stderr
    assert not [op for op, _ in calls(rerun.stderr) if op in ("PutObject", "HeadObject") or op.startswith("Create")]
    assert objects(moto_url, bucket) == before  # nothing new written

    text = (root / "kernel.yaml").read_text()
    assert text.count(ONE_LINE[0]) == 1
    changed = text.replace(*ONE_LINE)
    (root / "kernel.yaml").write_text(changed)
    planned = cli(sandbox, "plan", str(root))
    assert planned.returncode == 0, planned.stderr
    assert f"^ publish Component/{NAME} 1.0.0 -> 1.0.1 (content changed)" in planned.stdout
    assert "~ spec.document.build.InstallPrerequisites.inputs.commands[0]:" in planned.stdout
    assert f"- {ONE_LINE[0]}" in planned.stdout and f"+ {ONE_LINE[1]}" in planned.stdout
    assert "^ publish ImageRecipe/base 1.0.0 -> 1.0.1 (dependency changed" in planned.stdout
    assert f"s3://{bucket}/{key_of(changed)}" in planned.stdout

    applied = cli(sandbox, "apply", str(root), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert live_document(sandbox, "1.0.1") == changed
    assert set(objects(moto_url, bucket)) == {key, key_of(changed)}
    final = cli(sandbox, "plan", str(root), "--detailed-exitcode")
    assert final.returncode == 0 and "No changes" in final.stdout, final.stdout


def test_an_upload_already_there_is_not_written_again(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str
) -> None:
    """A component deleted after its document was uploaded is created again from the same object."""
    defaults = f"defaults:\n  documentBucket: {{bucket: {bucket}}}\n"
    root = write_tree(tmp_path / "m", "  documentFile: kernel.yaml\n", defaults, recipe=False)
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    assert cli(sandbox, "apply", str(root), "--auto-approve").returncode == 0
    written = objects(moto_url, bucket)
    imagebuilder(sandbox).delete_component(
        componentBuildVersionArn=f"arn:aws:imagebuilder:us-east-1:{ACCOUNT}:component/{NAME}/1.0.0/1"
    )
    rerun = cli(sandbox, "apply", str(root), "--auto-approve", "-v", "--log-format", "json")
    assert rerun.returncode == 0, rerun.stderr
    made = calls(rerun.stderr)
    assert ("HeadObject", True) in made and "PutObject" not in [op for op, _ in made]
    assert ("CreateComponent", True) in made
    assert objects(moto_url, bucket) == written


def test_a_failed_upload_fails_its_change_and_skips_dependents(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str
) -> None:
    """spec.documentUpload wins over the default bucket; a bucket that does not exist fails the
    component with the S3 URL and code, its recipe is skipped, and nothing is created."""
    source = "  documentFile: kernel.yaml\n  documentUpload: {bucket: no-such-docs-bucket, prefix: big/}\n"
    root = write_tree(tmp_path / "m", source, f"defaults:\n  documentBucket: {{bucket: {bucket}}}\n")
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    applied = cli(sandbox, "apply", str(root), "--auto-approve")
    assert applied.returncode == 1
    out = applied.stdout + applied.stderr
    assert f"uploading the document to s3://no-such-docs-bucket/{key_of(DOCUMENT, 'big/')}" in out
    assert "NoSuchBucket" in out
    assert "ImageRecipe/base skipped skipped because Component/kernel-mainline-update did not complete" in out
    assert "Traceback" not in out
    assert not imagebuilder(sandbox).list_components(owner="Self")["componentVersionList"]
    assert objects(moto_url, bucket) == {}


@pytest.mark.parametrize("inline", [False, True])
def test_over_the_limit_without_a_bucket_is_a_located_error(tmp_path: Path, inline: bool) -> None:
    if inline:
        body = "".join(f"    {line}\n" if line else "\n" for line in DOCUMENT.splitlines())
        source = "  document:\n" + body
    else:
        source = "  documentFile: kernel.yaml\n"
    root = write_tree(tmp_path / "m", source, recipe=False)
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(root)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    line = 7
    assert f"m.yaml:{line}:3: error: the inline document is " in result.stdout
    assert "but inline data is limited to 16,000 characters; name a bucket to upload it to: " in result.stdout
    assert "'documentBucket: {bucket: NAME}' under defaults in imagesync.yaml" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_upload_settings_are_located(tmp_path: Path) -> None:
    source = "  uri: s3://b/k.yaml\n  documentUpload: {bucket: docs}\n"
    root = write_tree(tmp_path / "m", source, "defaults:\n  documentBucket: {bucket: Not_A_Bucket}\n")
    (root / "m.yaml").write_text(
        (root / "m.yaml").read_text()
        + "---\n"
        + COMPONENT.format(name="other", source="  documentFile: kernel.yaml\n")
    )
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(root)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "m.yaml:8:3: error: documentUpload uploads a document or documentFile; this Component's document is " \
        "already in S3 at 'uri'" in result.stdout
    assert "imagesync.yaml:5:3: error: bucket 'Not_A_Bucket' is not an S3 bucket name" in result.stdout


def test_a_uri_document_is_read_at_plan_time_hashed_as_if_inline(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str
) -> None:
    s3 = s3_client(moto_url)
    s3.put_object(Bucket=bucket, Key="own/kernel.yaml", Body=DOCUMENT.encode())
    root = write_tree(tmp_path / "m", f"  uri: s3://{bucket}/own/kernel.yaml\n")
    connector = Connector(ConnectOptions(sandbox=sandbox.endpoint_url))
    plan, outcomes = api.apply(root, connector, PlanOptions())
    assert [o.status for o in outcomes] == ["created", "created"], outcomes
    component = plan.targets[0].changes[0]
    assert component.after is not None and component.after["spec"]["document"] == DOCUMENT
    assert [c.operation for c in component.calls] == ["CreateComponent"]  # already in S3: no upload
    assert live_document(sandbox, "1.0.0") == DOCUMENT
    assert not api.plan(root, connector, PlanOptions())[0].has_changes

    # A one-line change to the object is a publish with a step-level diff, and cascades.
    s3.put_object(Bucket=bucket, Key="own/kernel.yaml", Body=DOCUMENT.replace(*ONE_LINE).encode())
    plan, _ = api.plan(root, connector, PlanOptions())
    changes = {c.address: c for c in plan.targets[0].pending}
    publish = changes[f"Component/{NAME}"]
    assert publish.action == "publish" and publish.version is not None and publish.version.next == "1.0.1"
    assert [d.path for d in publish.diff] == ["spec.document.build.InstallPrerequisites.inputs.commands[0]"]
    assert changes["ImageRecipe/base"].action == "publish"

    # The same document kept inline (from a file, uploaded because of its size) is no content change.
    s3.put_object(Bucket=bucket, Key="own/kernel.yaml", Body=DOCUMENT.encode())
    write_tree(root, "  documentFile: kernel.yaml\n", f"defaults:\n  documentBucket: {{bucket: {bucket}}}\n")
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    assert not api.plan(root, connector, PlanOptions())[0].has_changes


def test_a_missing_uri_object_is_a_located_error(tmp_path: Path, sandbox: RunningSandbox, bucket: str) -> None:
    root = write_tree(tmp_path / "m", f"  uri: s3://{bucket}/missing.yaml\n", recipe=False)
    result = cli(sandbox, "plan", str(root))
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert f"m.yaml:7:3: error: uri s3://{bucket}/missing.yaml cannot be read in target prod: NoSuchKey" in out
    assert "Traceback" not in out


def test_an_invalid_uri_document_is_located_in_the_object(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str
) -> None:
    bad = DOCUMENT.replace("action: Reboot", "action: Rebot")
    s3_client(moto_url).put_object(Bucket=bucket, Key="bad.yaml", Body=bad.encode())
    root = write_tree(tmp_path / "m", f"  uri: s3://{bucket}/bad.yaml\n", recipe=False)
    result = cli(sandbox, "plan", str(root))
    assert result.returncode == 1
    line = bad.splitlines().index("        action: Rebot") + 1
    assert f"s3://{bucket}/bad.yaml:{line}:9: error: unknown action 'Rebot'; did you mean 'Reboot'?" in result.stderr
    assert not imagebuilder(sandbox).list_components(owner="Self")["componentVersionList"]


def test_against_a_sandbox_s3_needs_an_endpoint(tmp_path: Path, sandbox: RunningSandbox) -> None:
    root = write_tree(tmp_path / "m", "  uri: s3://docs/k.yaml\n", recipe=False)
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")}
    result = cli(sandbox, "plan", str(root), env=env)
    assert result.returncode == 1
    assert "no S3 endpoint is contacted unless one is named: set AWS_ENDPOINT_URL_S3" in result.stderr


def test_the_default_bucket_takes_target_placeholders(tmp_path: Path) -> None:
    defaults = "defaults:\n  documentBucket: {bucket: 'docs-${target.name}', prefix: 'big/${target.region}/'}\n"
    root = write_tree(tmp_path / "m", "  documentFile: kernel.yaml\n", defaults, recipe=False)
    shutil.copyfile(FIXTURE, root / "kernel.yaml")
    resource = load(root).get("prod", Address("Component", NAME))
    assert resource is not None and resource.document_object is not None
    assert resource.document_object.uri == f"s3://docs-prod/{key_of(DOCUMENT, 'big/us-east-1/')}"


# The hash imagesync 0.1 gave this manifest's component (its `uri` named, its document unread).
LEGACY_HASH = "533a01bf5353bd107141161f54a5834d"
LEGACY_URI = "s3://legacy-docs/own/kernel.yaml"


def test_a_uri_component_published_before_documents_were_read_is_not_published_again(
    tmp_path: Path, sandbox: RunningSandbox, moto_url: str
) -> None:
    s3 = s3_client(moto_url)
    s3.create_bucket(Bucket="legacy-docs")
    s3.put_object(Bucket="legacy-docs", Key="own/kernel.yaml", Body=DOCUMENT.encode())
    tags = {
        "imagesync:project": "docs-test",
        "imagesync:address": f"Component/{NAME}",
        "imagesync:content-hash": LEGACY_HASH,
        "imagesync:version": "1.0.0",
    }
    imagebuilder(sandbox).create_component(
        name=NAME, semanticVersion="1.0.0", platform="Linux", uri=LEGACY_URI, tags=tags, clientToken="legacy"
    )
    root = write_tree(tmp_path / "m", f"  uri: {LEGACY_URI}\n", recipe=False)
    connector = Connector(ConnectOptions(sandbox=sandbox.endpoint_url))
    plan, _ = api.plan(root, connector, PlanOptions())
    [change] = plan.targets[0].pending
    assert change.action == "update" and change.reason == "tags changed"  # the hash tag brought up to date
    api.apply(root, connector, PlanOptions())
    assert not api.plan(root, connector, PlanOptions())[0].has_changes

    # A different object under the same URI is a content change, as it always was meant to be.
    s3.put_object(Bucket="legacy-docs", Key="own/kernel.yaml", Body=DOCUMENT.replace(*ONE_LINE).encode())
    [change] = api.plan(root, connector, PlanOptions())[0].targets[0].pending
    assert change.action == "publish"


@pytest.mark.parametrize("marked", ["uri", "document"])
def test_a_sensitive_uri_document_is_never_shown(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str, marked: str
) -> None:
    secret = DOCUMENT.replace(*ONE_LINE).replace("kernel next", "token-s3cr3t-4711")
    s3_client(moto_url).put_object(Bucket=bucket, Key="own/secret.yaml", Body=secret.encode())
    source = f"  uri: s3://{bucket}/own/secret.yaml\n  sensitive: [{marked}]\n"
    root = write_tree(tmp_path / "m", source, recipe=False)
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": moto_url}
    out = tmp_path / "plan.json"
    shown = cli(sandbox, "plan", str(root), "--out", str(out), env=env)
    assert shown.returncode == 0, shown.stderr
    as_json = cli(sandbox, "plan", str(root), "--format", "json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    for text in (shown.stdout, shown.stderr, as_json.stdout, out.read_text()):
        assert "token-s3cr3t-4711" not in text
    assert "schemaVersion" not in as_json.stdout  # the whole document is masked, not only the URL


def test_a_spoke_selected_alone_reads_the_hubs_uri_documents(
    tmp_path: Path, sandbox: RunningSandbox, bucket: str, moto_url: str
) -> None:
    """`--target spoke` plans the hub it uses too, with the hub's S3 documents read as plan reads them."""
    s3_client(moto_url).put_object(Bucket=bucket, Key="own/kernel.yaml", Body=DOCUMENT.encode())
    root = tmp_path / "m"
    root.mkdir()
    (root / "imagesync.yaml").write_text(
        "project: docs-test\ntargets:\n"
        f'  - {{name: hub, region: us-east-1, account: "{ACCOUNT}"}}\n'
        '  - {name: spoke, region: us-east-1, account: "222222222222"}\n'
    )
    component = COMPONENT.format(name=NAME, source=f"  uri: s3://{bucket}/own/kernel.yaml\n")
    component = component.replace(f"metadata: {{name: {NAME}}}", f"metadata: {{name: {NAME}, targets: [hub]}}")
    component += '  sharing: {accounts: ["222222222222"]}\n'
    recipe = RECIPE.replace("metadata: {name: base}", "metadata: {name: base, targets: [spoke]}").replace(
        "- ref: kernel-mainline-update", "- {ref: kernel-mainline-update, target: hub}"
    )
    (root / "m.yaml").write_text(component + "---\n" + recipe)
    connector = Connector(ConnectOptions(sandbox=sandbox.endpoint_url))
    _, outcomes = api.apply(root, connector, PlanOptions())
    assert [o.status for o in outcomes] == ["created", "created"], outcomes
    plan, _ = api.plan(root, connector, PlanOptions(targets=("spoke",)))
    assert [t.target for t in plan.targets] == ["hub", "spoke"]
    assert not plan.has_changes, [c.address for t in plan.targets for c in t.pending]
