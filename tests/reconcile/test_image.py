"""The Image kind end to end: a one-off build applied to the sandbox, waited for, reported, rebuilt
through the cascade, failing with its reason, and pruned.

The sandbox runs builds on its clock: one simulated minute per build at 600x, so a build takes a
tenth of a second and the CLI reads it every 0.05 s. Everything goes through the CLI as a user runs
it, over HTTP to the sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from imagesync.sandbox import RunningSandbox, running

ACCOUNT = "111111111111"
REGION = "us-east-1"
POLL = ["--poll-interval", "0.05"]

PROJECT = f"""\
project: images
targets:
  - name: dev
    region: {REGION}
    account: "{ACCOUNT}"
"""

COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata: {{name: hello}}
spec:
  version: 1.0.0
  platform: Linux
  document:
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Hello
            action: ExecuteBash
            inputs:
              commands: ["echo {greeting}"]
"""

REST = f"""\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: web}}
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - ref: hello
---
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {{name: build}}
spec:
  instanceProfileName: image-build
---
apiVersion: imagesync/v1
kind: DistributionConfiguration
metadata: {{name: two-regions}}
spec:
  distributions:
    - region: {REGION}
      amiDistributionConfiguration: {{name: "web-{{{{imagebuilder:buildDate}}}}"}}
    - region: us-west-2
      amiDistributionConfiguration: {{name: "web-{{{{imagebuilder:buildDate}}}}"}}
"""

IMAGE = """\
apiVersion: imagesync/v1
kind: Image
metadata: {name: web-ami}
spec:
  imageRecipeArn: {ref: web}
  infrastructureConfigurationArn: {ref: build}
  distributionConfigurationArn: {ref: two-regions}
  imageTestsConfiguration: {imageTestsEnabled: true, timeoutMinutes: 60}
  imageScanningConfiguration: {imageScanningEnabled: false}
  tags: {team: web}
"""


def write_estate(root: Path, greeting: str = "hello", image: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(PROJECT)
    (root / "component.yaml").write_text(COMPONENT.format(greeting=greeting))
    (root / "rest.yaml").write_text(REST)
    if image:
        (root / "image.yaml").write_text(IMAGE)
    elif (root / "image.yaml").exists():
        (root / "image.yaml").unlink()
    return root


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running(build_minutes=1, clock_speed=600) as sb:
        yield sb


@pytest.fixture
def failing_sandbox() -> Iterator[RunningSandbox]:
    with running(build_minutes=1, clock_speed=600, build_failure_rate=1.0, seed=7) as sb:
        yield sb


def cli(sb: RunningSandbox, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args, "--sandbox", sb.endpoint_url],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def client(sb: RunningSandbox) -> Any:
    return boto3.client(
        "imagebuilder",
        endpoint_url=sb.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCOUNT,
        aws_secret_access_key="sandbox",
    )


def image_builds(sb: RunningSandbox) -> list[dict[str, Any]]:
    ib = client(sb)
    builds = []
    for version in ib.list_images(owner="Self")["imageVersionList"]:
        builds += ib.list_image_build_versions(imageVersionArn=version["arn"])["imageSummaryList"]
    return sorted(builds, key=lambda b: b["arn"])


def plan_json(sb: RunningSandbox, root: Path, *extra: str) -> dict[str, Any]:
    result = cli(sb, "plan", str(root), "--format", "json", *extra, cwd=root)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def change_of(plan: dict[str, Any], address: str) -> dict[str, Any]:
    return next(c for c in plan["resource_changes"] if c["resource"] == address)


def test_an_image_is_built_waited_for_and_its_amis_reported(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate")
    before = plan_json(sandbox, root)
    planned = change_of(before, "Image/web-ami")
    assert planned["change"]["actions"] == ["create"]
    assert planned["outputs"] is None  # only the build will know
    assert planned["depends_on"] == [
        "dev:DistributionConfiguration/two-regions",
        "dev:ImageRecipe/web",
        "dev:InfrastructureConfiguration/build",
    ]

    applied = cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root)
    assert applied.returncode == 0, applied.stderr
    assert "[~] dev: Image/web-ami waiting" in applied.stdout  # progress while it builds
    [build] = image_builds(sandbox)
    assert build["state"]["status"] == "AVAILABLE"
    amis = {a["region"]: a["image"] for a in build["outputResources"]["amis"]}
    assert set(amis) == {REGION, "us-west-2"}
    assert "Outputs:" in applied.stdout
    for region, ami in amis.items():
        assert f"dev: Image/web-ami: {region}: {ami}" in applied.stdout

    after = plan_json(sandbox, root)
    assert after["summary"] == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 0}
    current = change_of(after, "Image/web-ami")
    assert current["change"]["actions"] == ["no-op"]
    assert current["outputs"] == {region: [ami] for region, ami in amis.items()}
    assert build["tags"]["team"] == "web" and build["tags"]["imagesync:address"] == "Image/web-ami"


def test_the_apply_json_outcome_carries_the_outputs(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate")
    applied = cli(sandbox, "apply", str(root), "--auto-approve", "--format", "json", *POLL, cwd=root)
    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    [outcome] = [o for o in report["outcomes"] if o["address"] == "Image/web-ami"]
    [build] = image_builds(sandbox)
    assert outcome["status"] == "created"
    assert build["arn"] in outcome["detail"] and "AVAILABLE" in outcome["detail"]
    assert outcome["outputs"] == {a["region"]: [a["image"]] for a in build["outputResources"]["amis"]}


def test_a_component_change_rebuilds_the_image_through_the_cascade(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate")
    assert cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root).returncode == 0
    [first] = image_builds(sandbox)

    write_estate(root, greeting="hello again")
    plan = plan_json(sandbox, root)
    moving = {c["resource"]: c["change"]["actions"] for c in plan["resource_changes"]}
    assert {address: actions for address, actions in moving.items() if actions != ["no-op"]} == {
        "Component/hello": ["publish"],
        "ImageRecipe/web": ["publish"],
        "Image/web-ami": ["create"],
    }
    assert change_of(plan, "Image/web-ami")["reason"] == "dependency changed: ImageRecipe/web -> 1.0.1"

    applied = cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root)
    assert applied.returncode == 0, applied.stderr
    builds = image_builds(sandbox)
    assert [b["arn"] for b in builds] == [first["arn"], first["arn"].replace("/web/1.0.0/1", "/web/1.0.1/1")]
    assert all(b["state"]["status"] == "AVAILABLE" for b in builds)  # the earlier build (its AMIs) is kept
    assert plan_json(sandbox, root)["summary"]["create"] == 0


def test_a_failed_build_is_reported_with_its_reason_and_exit_1(failing_sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate")
    applied = cli(failing_sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root)
    assert applied.returncode == 1, applied.stdout + applied.stderr
    [build] = image_builds(failing_sandbox)
    reason = build["state"]["reason"]
    assert build["state"]["status"] == "FAILED" and reason
    assert f"error: dev: Image/web-ami: {build['arn']} ended FAILED: {reason}" in applied.stderr
    assert "Traceback" not in applied.stderr

    again = plan_json(failing_sandbox, root)
    rebuild = change_of(again, "Image/web-ami")
    assert rebuild["change"]["actions"] == ["create"]
    assert rebuild["reason"] == f"the last build ({build['arn']}) ended FAILED; building again"
    as_json = cli(failing_sandbox, "apply", str(root), "--auto-approve", "--format", "json", *POLL, cwd=root)
    assert as_json.returncode == 1
    [outcome] = [o for o in json.loads(as_json.stdout)["outcomes"] if o["address"] == "Image/web-ami"]
    assert (outcome["status"], outcome["error_code"]) == ("failed", "FAILED")


def test_prune_deletes_the_builds_of_a_removed_image(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate")
    assert cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root).returncode == 0
    [build] = image_builds(sandbox)

    write_estate(root, image=False)
    quiet = plan_json(sandbox, root)
    assert quiet["summary"]["delete"] == 0  # without --prune an image whose manifest is gone is left alone
    pruning = plan_json(sandbox, root, "--prune")
    gone = change_of(pruning, "Image/web-ami")
    assert gone["change"]["actions"] == ["delete"]
    applied = cli(sandbox, "apply", str(root), "--auto-approve", "--prune", *POLL, cwd=root)
    assert applied.returncode == 0, applied.stderr
    assert image_builds(sandbox) == []
    assert build["arn"] not in json.dumps(plan_json(sandbox, root, "--prune"))


def test_an_estate_without_images_reads_no_images(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """The kind costs nothing where it is not used: no ListImages call in a plan without images."""
    root = write_estate(tmp_path / "estate", image=False)
    assert cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root).returncode == 0
    before = sandbox.stats()["operations"]
    plan_json(sandbox, root)
    after = sandbox.stats()["operations"]
    assert after.get("ListImages", 0) == before.get("ListImages", 0) == 0
    assert after["ListImageRecipes"] > before["ListImageRecipes"]


def test_an_image_naming_a_missing_recipe_is_refused_with_its_location(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate")
    (root / "image.yaml").write_text(IMAGE.replace("{ref: web}", "{ref: nowhere}"))
    result = cli(sandbox, "plan", str(root), cwd=root)
    assert result.returncode == 1
    assert "image.yaml:5:" in result.stderr and "nowhere" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda text: text.replace("  infrastructureConfigurationArn:", "  containerRecipeArn: {ref: web}\n"
                                      "  infrastructureConfigurationArn:"),
            "an image builds from exactly one recipe: set imageRecipeArn or containerRecipeArn, not both",
        ),
        (
            lambda text: text.replace("  imageRecipeArn: {ref: web}\n", ""),
            "an image needs exactly one recipe",
        ),
    ],
    ids=["both-recipes", "no-recipe"],
)
def test_an_image_needs_exactly_one_recipe(sandbox: RunningSandbox, tmp_path: Path, edit: Any, message: str) -> None:
    root = write_estate(tmp_path / "estate")
    (root / "image.yaml").write_text(edit(IMAGE))
    result = cli(sandbox, "plan", str(root), cwd=root)
    assert result.returncode == 1
    assert "image.yaml:" in result.stdout + result.stderr and message in result.stdout + result.stderr
    assert sandbox.stats()["operations"] == {}  # refused before anything is read


CONTAINER = """\
apiVersion: imagesync/v1
kind: ContainerRecipe
metadata: {name: api}
spec:
  version: 1.0.0
  containerType: DOCKER
  parentImage: public.ecr.aws/amazonlinux/amazonlinux:2023
  components:
    - ref: hello
  dockerfileTemplateData: |
    FROM {{{ imagebuilder:parentImage }}}
    {{{ imagebuilder:environments }}}
    {{{ imagebuilder:components }}}
  targetRepository: {service: ECR, repositoryName: golden/api}
---
apiVersion: imagesync/v1
kind: Image
metadata: {name: api-image}
spec:
  containerRecipeArn: {ref: api}
  infrastructureConfigurationArn: {ref: build}
"""


def test_a_container_image_reports_its_image_uris(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write_estate(tmp_path / "estate", image=False)
    (root / "container.yaml").write_text(CONTAINER)
    applied = cli(sandbox, "apply", str(root), "--auto-approve", "--format", "json", *POLL, cwd=root)
    assert applied.returncode == 0, applied.stderr
    [outcome] = [o for o in json.loads(applied.stdout)["outcomes"] if o["address"] == "Image/api-image"]
    [build] = image_builds(sandbox)
    [container] = build["outputResources"]["containers"]
    assert container["region"] == REGION and container["imageUris"]
    assert outcome["outputs"] == {REGION: container["imageUris"]}
    assert all(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/golden/api:" in uri for uri in container["imageUris"])
    assert change_of(plan_json(sandbox, root), "Image/api-image")["outputs"] == {REGION: container["imageUris"]}


def test_builds_waited_for_do_not_hold_parallelism_slots(tmp_path: Path) -> None:
    """With --parallelism 2, three images all start building at once: a change waiting for its
    build leaves its slot to the next change. The sandbox clock stands still, so no build can end
    before the test moves it."""
    from support import advance_clock, wait_until

    root = write_estate(tmp_path / "estate", image=False)
    (root / "images.yaml").write_text(
        "\n---\n".join(IMAGE.replace("web-ami", f"web-ami-{n}") for n in range(3))
    )
    with running(build_minutes=1, clock_speed=0) as sb:
        args = ["apply", str(root), "--auto-approve", "--parallelism", "2", *POLL, "--sandbox", sb.endpoint_url]
        proc = subprocess.Popen([sys.executable, "-m", "imagesync", *args], cwd=root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: sb.stats()["operations"].get("CreateImage", 0) == 3 or proc.poll() is not None,
                       "all three builds are started")
            assert proc.poll() is None  # none has finished: every build is still running
            assert {b["state"]["status"] for b in image_builds(sb)} <= {"PENDING", "BUILDING"}
            advance_clock(sb.endpoint_url, 3600)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert len(image_builds(sb)) == 3 and out.count("[+] dev: Image/web-ami-") == 3


def test_a_deprecated_image_is_still_built(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """A lifecycle policy deprecating the build does not make imagesync build it again."""
    root = write_estate(tmp_path / "estate")
    assert cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root).returncode == 0
    [build] = image_builds(sandbox)
    client(sandbox).start_resource_state_update(resourceArn=build["arn"], state={"status": "DEPRECATED"})
    plan = plan_json(sandbox, root)
    assert change_of(plan, "Image/web-ami")["change"]["actions"] == ["no-op"]
    assert plan["summary"]["create"] == 0


def test_prune_finds_builds_of_a_recipe_imagesync_does_not_manage(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """An image built from a recipe given by ARN (made by hand here) is found and deleted by --prune
    once its manifest is gone, although no managed recipe carries its name."""
    root = write_estate(tmp_path / "estate")
    ib = client(sandbox)
    handmade = ib.create_image_recipe(
        name="handmade", semanticVersion="1.0.0",
        parentImage=f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x",
        components=[{"componentArn": f"arn:aws:imagebuilder:{REGION}:aws:component/update-linux/x.x.x"}],
    )["imageRecipeArn"]
    (root / "image.yaml").write_text(IMAGE.replace("{ref: web}", handmade))
    assert cli(sandbox, "apply", str(root), "--auto-approve", *POLL, cwd=root).returncode == 0
    [build] = image_builds(sandbox)
    assert "/handmade/1.0.0/1" in build["arn"]
    assert change_of(plan_json(sandbox, root), "Image/web-ami")["change"]["actions"] == ["no-op"]

    write_estate(root, image=False)
    assert change_of(plan_json(sandbox, root, "--prune"), "Image/web-ami")["change"]["actions"] == ["delete"]
    assert cli(sandbox, "apply", str(root), "--auto-approve", "--prune", *POLL, cwd=root).returncode == 0
    assert image_builds(sandbox) == []
    assert ib.get_image_recipe(imageRecipeArn=handmade)["imageRecipe"]["name"] == "handmade"  # not ours: kept


def test_a_saved_plan_is_refused_once_a_build_it_read_has_ended(tmp_path: Path) -> None:
    """A build that ends between plan and apply is live state changing, and said so."""
    import signal

    from support import advance_clock, wait_until

    root = write_estate(tmp_path / "estate")
    with running(build_minutes=1, clock_speed=0) as sb:
        args = ["apply", str(root), "--auto-approve", *POLL, "--sandbox", sb.endpoint_url]
        proc = subprocess.Popen([sys.executable, "-m", "imagesync", *args], cwd=root, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        stdout = proc.stdout
        wait_until(lambda: "waiting" in stdout.readline() or proc.poll() is not None, "the apply waits for the build")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err
        [build] = image_builds(sb)
        assert build["state"]["status"] in ("PENDING", "BUILDING")  # the build goes on

        saved = root / "plan.json"
        planned = cli(sb, "plan", str(root), "--out", str(saved), cwd=root)
        assert planned.returncode == 0, planned.stderr
        assert json.loads(saved.read_text())["applyable"] is False  # nothing to do while it builds
        write_estate(root, greeting="changed")  # something to apply, so the plan file is applyable
        assert cli(sb, "plan", str(root), "--out", str(saved), cwd=root).returncode == 0
        advance_clock(sb.endpoint_url, 3600)
        refused = cli(sb, "apply", str(saved), cwd=root)
        assert refused.returncode == 1
        assert "live state changed since the plan was saved" in refused.stderr and "Image/web-ami" in refused.stderr
