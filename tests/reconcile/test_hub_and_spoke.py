"""Hub and spoke: one account builds and shares, two others build on what it shares.

The estate is examples/hub-and-spoke: the hub publishes a hardening component, a hardened base
recipe and an application recipe on top of it, builds both images and shares the component and
the images with the spokes' accounts (`spec.sharing`). Each spoke's recipe uses the hub's base
image as its parent and the hub's component (`{ref: NAME, target: hub}`) beside one of its own.
Everything goes through the CLI against one sandbox holding all three accounts; the sandbox
refuses a spoke's recipe that names anything the hub has not shared with it, so the order of the
apply is checked by the service itself, not only by reading imagesync's output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from imagesync.sandbox import RunningSandbox, running

REGION = "us-east-1"
HUB, SPOKE_A, SPOKE_B, STRANGER = "111111111111", "222222222222", "333333333333", "444444444444"
POLL = ["--poll-interval", "0.05"]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hub-and-spoke"
SHARED = f'accounts: ["{SPOKE_A}", "{SPOKE_B}"]'


def write(root: Path, word: str = "one", shared_with: tuple[str, ...] = (SPOKE_A, SPOKE_B)) -> Path:
    """The example estate (README's hub and spoke), with the hub's hardening step saying `word`
    and the hub sharing with `shared_with`."""
    if not root.exists():
        shutil.copytree(EXAMPLE, root)
    hub = (EXAMPLE / "hub.yaml").read_text()
    assert hub.count(SHARED) == 3 and "echo hardening level one" in hub
    sharing = "accounts: [" + ", ".join(f'"{a}"' for a in shared_with) + "]"
    (root / "hub.yaml").write_text(hub.replace(SHARED, sharing).replace("level one", f"level {word}"))
    return root


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running(build_minutes=1, clock_speed=600) as sb:
        yield sb


def cli(sb: RunningSandbox, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args, str(root), "--sandbox", sb.endpoint_url],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=180,
    )


def plan(sb: RunningSandbox, root: Path, *args: str) -> dict[str, Any]:
    result = cli(sb, root, "plan", "--format", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def changes(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["address"]: c for c in doc["resource_changes"]}


def pending(doc: dict[str, Any]) -> dict[str, str]:
    return {a: c["change"]["actions"][0] for a, c in changes(doc).items() if c["change"]["actions"] != ["no-op"]}


def apply(sb: RunningSandbox, root: Path, *args: str) -> list[dict[str, Any]]:
    result = cli(sb, root, "apply", "--auto-approve", "--format", "json", *POLL, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)["outcomes"]


def client(sb: RunningSandbox, account: str) -> Any:
    return boto3.client(
        "imagebuilder",
        region_name=REGION,
        endpoint_url=sb.endpoint_url,
        aws_access_key_id=account,
        aws_secret_access_key="x",
    )


def test_the_estate_applies_hub_first_then_plans_empty(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m")
    first = plan(sandbox, root)
    assert [t["name"] for t in first["targets"]] == ["hub", "spoke-a", "spoke-b"]
    recipe = changes(first)["spoke-a:ImageRecipe/team-app"]
    assert "hub:Component/hardening" in recipe["depends_on"]
    assert "hub:Image/hardened-base" in recipe["depends_on"]  # the image that shares the parent

    outcomes = apply(sandbox, root)
    assert all(o["status"] in ("created", "published") for o in outcomes), outcomes
    order = [f"{o['target']}:{o['address']}" for o in outcomes]
    last_hub = max(i for i, a in enumerate(order) if a.startswith("hub:"))
    assert min(i for i, a in enumerate(order) if not a.startswith("hub:")) > last_hub

    # The spokes' recipes use what the hub published and shared, by the hub's ARNs.
    for account in (SPOKE_A, SPOKE_B):
        live = client(sandbox, account).get_image_recipe(
            imageRecipeArn=f"arn:aws:imagebuilder:{REGION}:{account}:image-recipe/team-app/1.0.0"
        )["imageRecipe"]
        arns = [c["componentArn"] for c in live["components"]]
        assert arns[0] == f"arn:aws:imagebuilder:{REGION}:{HUB}:component/hardening/1.0.0"
        assert live["parentImage"] == f"arn:aws:imagebuilder:{REGION}:{HUB}:image/hardened-base/x.x.x"
    hub = client(sandbox, HUB)
    policy = json.loads(
        hub.get_component_policy(componentArn=f"arn:aws:imagebuilder:{REGION}:{HUB}:component/hardening/1.0.0/1")[
            "policy"
        ]
    )
    assert sorted(policy["Statement"][0]["Principal"]["AWS"]) == [SPOKE_A, SPOKE_B]
    # Not shared with anyone else: another account cannot read it.
    with pytest.raises(hub.exceptions.ClientError):
        client(sandbox, STRANGER).get_component(
            componentBuildVersionArn=f"arn:aws:imagebuilder:{REGION}:{HUB}:component/hardening/1.0.0/1"
        )

    again = plan(sandbox, root)
    assert pending(again) == {}


def test_a_hub_component_change_cascades_into_the_spokes_in_one_plan(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m")
    apply(sandbox, root)
    write(root, word="two")
    doc = plan(sandbox, root)
    assert pending(doc) == {
        "hub:Component/hardening": "publish",
        "hub:ImageRecipe/hardened-base": "publish",
        "hub:ImageRecipe/app": "publish",
        "hub:Image/hardened-base": "create",
        "hub:Image/app": "create",
        "spoke-a:ImageRecipe/team-app": "publish",
        "spoke-a:Image/team-app": "create",
        "spoke-b:ImageRecipe/team-app": "publish",
        "spoke-b:Image/team-app": "create",
    }
    for spoke in ("spoke-a", "spoke-b"):
        reason = changes(doc)[f"{spoke}:ImageRecipe/team-app"]["reason"]
        assert "hub:Component/hardening -> 1.0.1 (from target hub)" in reason
    text = cli(sandbox, root, "plan")
    assert "hub:Component/hardening -> 1.0.1 (from target hub)" in text.stdout

    apply(sandbox, root)
    live = client(sandbox, SPOKE_B).get_image_recipe(
        imageRecipeArn=f"arn:aws:imagebuilder:{REGION}:{SPOKE_B}:image-recipe/team-app/1.0.1"
    )["imageRecipe"]
    assert live["components"][0]["componentArn"].endswith(f"{HUB}:component/hardening/1.0.1")
    # The new version is shared too: the spoke could only have used it if it were.
    policy = client(sandbox, HUB).get_component_policy(
        componentArn=f"arn:aws:imagebuilder:{REGION}:{HUB}:component/hardening/1.0.1/1"
    )["policy"]
    assert SPOKE_B in policy
    assert pending(plan(sandbox, root)) == {}


def test_selecting_a_spoke_plans_the_hub_it_uses(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m")
    doc = plan(sandbox, root, "--target", "spoke-a")
    assert [t["name"] for t in doc["targets"]] == ["hub", "spoke-a"]
    apply(sandbox, root, "--target", "spoke-a")
    assert set(pending(plan(sandbox, root))) == {
        "spoke-b:Component/team-tools",
        "spoke-b:InfrastructureConfiguration/build",
        "spoke-b:ImageRecipe/team-app",
        "spoke-b:Image/team-app",
    }


def test_a_spoke_the_hub_does_not_share_with_is_refused_before_any_write(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = write(tmp_path / "m", shared_with=(SPOKE_A,))
    result = cli(sandbox, root, "apply", "--auto-approve", *POLL)
    assert result.returncode == 1
    assert "spoke-b:ImageRecipe/team-app (spokes.yaml:" in result.stderr
    assert f"with account {SPOKE_B}" in result.stderr
    assert "Traceback" not in result.stderr
    writes = {op for op, n in sandbox.stats()["operations"].items() if n and op.startswith(("Create", "Put", "Tag"))}
    assert writes == set()


def test_a_failed_hub_build_skips_the_spokes_that_build_on_it(tmp_path: Path) -> None:
    with running(build_minutes=1, clock_speed=600, build_failure_rate=1.0) as sb:
        root = write(tmp_path / "m")
        result = cli(sb, root, "apply", "--auto-approve", "--format", "json", *POLL)
        assert result.returncode == 1
        outcomes = {f"{o['target']}:{o['address']}": o for o in json.loads(result.stdout)["outcomes"]}
        assert outcomes["hub:Image/hardened-base"]["status"] == "failed"
        for spoke in ("spoke-a", "spoke-b"):
            recipe = outcomes[f"{spoke}:ImageRecipe/team-app"]
            assert recipe["status"] == "skipped"
            assert "hub:Image/hardened-base did not complete" in recipe["detail"]
            assert outcomes[f"{spoke}:Component/team-tools"]["status"] == "created"  # independent


def test_sharing_is_diffed_put_again_on_drift_and_never_silently_withdrawn(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = tmp_path / "solo"
    root.mkdir()
    solo = f'project: solo\ntargets:\n  - {{name: hub, region: {REGION}, account: "{HUB}"}}\n'
    (root / "imagesync.yaml").write_text(solo)
    component = (
        "apiVersion: imagesync/v1\nkind: Component\nmetadata: {{name: shared}}\nspec:\n  version: 1.0.0\n"
        "  platform: Linux\n{sharing}  document:\n    schemaVersion: 1.0\n"
        "    phases: [{{name: build, steps: [{{name: A, action: ExecuteBash, inputs: {{commands: [echo]}}}}]}}]\n"
    )
    path = root / "c.yaml"
    path.write_text(component.format(sharing=f'  sharing: {{accounts: ["{SPOKE_A}"]}}\n'))
    apply(sandbox, root)
    build = f"arn:aws:imagebuilder:{REGION}:{HUB}:component/shared/1.0.0/1"
    hub = client(sandbox, HUB)

    path.write_text(component.format(sharing=f'  sharing: {{accounts: ["{SPOKE_B}", "{SPOKE_A}"]}}\n'))
    doc = plan(sandbox, root)
    change = changes(doc)["hub:Component/shared"]
    assert change["change"]["actions"] == ["update"] and change["reason"] == "tags changed, sharing changed"
    wider = {"op": "change", "path": "spec.sharing.accounts", "old": [SPOKE_A], "new": [SPOKE_A, SPOKE_B]}
    assert wider in change["diff"]
    apply(sandbox, root)
    live = json.loads(hub.get_component_policy(componentArn=build)["policy"])
    assert sorted(live["Statement"][0]["Principal"]["AWS"]) == [SPOKE_A, SPOKE_B]
    assert pending(plan(sandbox, root)) == {}

    # Someone replaces the policy by hand: the plan puts imagesync's back.
    hub.put_component_policy(
        componentArn=build,
        policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": [STRANGER]},
                        "Action": ["imagebuilder:GetComponent", "imagebuilder:ListComponents"],
                    }
                ],
            }
        ),
    )
    drift = changes(plan(sandbox, root))["hub:Component/shared"]
    assert drift["change"]["actions"] == ["update"] and drift["reason"] == "sharing changed"
    apply(sandbox, root)
    assert STRANGER not in hub.get_component_policy(componentArn=build)["policy"]

    # Taken out of the manifest: there is no call that withdraws a policy, so the plan says so.
    path.write_text(component.format(sharing=""))
    doc = plan(sandbox, root)
    assert pending(doc) == {}
    warnings = " ".join(w for t in doc["targets"] for w in t["warnings"])
    assert f"{build} stays shared with {SPOKE_A}, {SPOKE_B}" in warnings


def test_applying_a_spoke_takes_the_hub_lock_too(sandbox: RunningSandbox, tmp_path: Path) -> None:
    from imagesync.lock import FileLock, default_lock_dir

    root = write(tmp_path / "m")
    with FileLock(default_lock_dir(), f"estate--{HUB}--{REGION}").held("apply"):
        result = cli(sandbox, root, "apply", "--auto-approve", "--target", "spoke-a", "--lock-timeout", "0", *POLL)
    assert result.returncode == 1, result.stdout
    assert f"estate/{HUB}/{REGION}" in result.stderr or f"estate--{HUB}--{REGION}" in result.stderr, result.stderr
    assert sum(n for op, n in sandbox.stats()["operations"].items() if op.startswith(("Create", "Put"))) == 0


def test_one_manifest_for_every_target_may_name_the_hub_itself(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """`target: hub` in a manifest the hub also gets is a plain reference there."""
    root = write(tmp_path / "m")
    (root / "everywhere.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: ImageRecipe\nmetadata: {name: everywhere}\nspec:\n  version: 1.0.0\n"
        f"  parentImage: arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x\n"
        "  components: [{ref: hardening, target: hub}]\n"
    )
    doc = plan(sandbox, root)
    assert changes(doc)["hub:ImageRecipe/everywhere"]["depends_on"] == ["hub:Component/hardening"]
    assert changes(doc)["spoke-a:ImageRecipe/everywhere"]["depends_on"] == ["hub:Component/hardening"]
    apply(sandbox, root)
    for account in (HUB, SPOKE_A):
        live = client(sandbox, account).get_image_recipe(
            imageRecipeArn=f"arn:aws:imagebuilder:{REGION}:{account}:image-recipe/everywhere/1.0.0"
        )["imageRecipe"]
        assert live["components"][0]["componentArn"] == f"arn:aws:imagebuilder:{REGION}:{HUB}:component/hardening/1.0.0"


EXTRA = """\
apiVersion: imagesync/v1
kind: Component
metadata: {name: extra, targets: [hub]}
spec:
  version: 1.0.0
  platform: Linux
  document:
    schemaVersion: 1.0
    phases: [{name: build, steps: [{name: Extra, action: ExecuteBash, inputs: {commands: ["echo extra"]}}]}]
"""


def test_a_spoke_selected_with_prune_never_prunes_the_hub(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m")
    (root / "extra.yaml").write_text(EXTRA)
    apply(sandbox, root)
    (root / "extra.yaml").unlink()
    doc = plan(sandbox, root, "--target", "spoke-a", "--prune")
    assert "hub:Component/extra" not in pending(doc)
    hub = next(t for t in doc["targets"] if t["name"] == "hub")
    assert any("Component/extra" in w and "--prune" in w for w in hub["warnings"]), hub["warnings"]
    assert "delete" in pending(plan(sandbox, root, "--target", "hub", "--prune")).values()


def test_deletions_come_after_every_targets_changes_and_wait_for_the_users(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    root = write(tmp_path / "m")
    (root / "extra.yaml").write_text(EXTRA)
    apply(sandbox, root)
    (root / "extra.yaml").unlink()
    write(root, word="two")
    result = cli(sandbox, root, "apply", "--auto-approve", "--prune", *POLL)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    deleted = next(i for i, line in enumerate(lines) if "hub: Component/extra deleted" in line)
    spoke = [i for i, line in enumerate(lines) if "spoke-b: ImageRecipe/team-app published" in line]
    assert spoke and spoke[0] < deleted, result.stdout


def test_a_hub_version_the_spokes_use_is_never_deleted_by_retention(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m")
    apply(sandbox, root)
    for word in ("two", "three"):
        write(root, word=word)
        hub = (root / "hub.yaml").read_text()
        (root / "hub.yaml").write_text(
            hub.replace(
                "  version: 1.0.0\n  platform: Linux\n", "  version: 1.0.0\n  platform: Linux\n  retainVersions: 1\n", 1
            )
        )
        doc = plan(sandbox, root, "--prune")
        assert "delete-versions" not in pending(doc).values()
        warnings = " ".join(w for t in doc["targets"] for w in t["warnings"])
        assert (
            "Component/hardening: retainVersions 1 deletes nothing, since target(s) spoke-a, spoke-b use it" in warnings
        )
        apply(sandbox, root, "--prune")
    versions = client(sandbox, HUB).list_component_build_versions(
        componentVersionArn=f"arn:aws:imagebuilder:{REGION}:{HUB}:component/hardening/1.0.0"
    )["componentSummaryList"]
    assert versions  # 1.0.0 is still there


def test_a_hub_delete_waits_when_a_spoke_change_failed(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """Sharing with an organization is trusted by the plan, but the sandbox knows no organizations,
    so the spokes' recipes are refused: the hub's pruning must then keep what they may still need."""
    root = write(tmp_path / "m")
    (root / "extra.yaml").write_text(EXTRA)
    hub = (root / "hub.yaml").read_text()
    org = "organizations: [arn:aws:organizations::111111111111:organization/o-abc123def4]"
    (root / "hub.yaml").write_text(hub.replace(SHARED, org, 1))  # the component only
    result = cli(sandbox, root, "apply", "--auto-approve", "--format", "json", *POLL)
    assert result.returncode == 1
    (root / "extra.yaml").unlink()
    result = cli(sandbox, root, "apply", "--auto-approve", "--prune", "--format", "json", *POLL)
    assert result.returncode == 1
    outcomes = {f"{o['target']}:{o['address']}": o for o in json.loads(result.stdout)["outcomes"]}
    assert outcomes["spoke-a:ImageRecipe/team-app"]["status"] == "failed"
    assert outcomes["hub:Component/extra"]["status"] == "skipped"


def test_the_hub_alone_may_not_stop_sharing_what_a_spoke_uses(sandbox: RunningSandbox, tmp_path: Path) -> None:
    root = write(tmp_path / "m")
    apply(sandbox, root)
    write(root, shared_with=(SPOKE_A,))
    result = cli(sandbox, root, "plan", "--target", "hub")
    assert result.returncode == 1
    assert "spoke-b:ImageRecipe/team-app (spokes.yaml:" in result.stderr
    assert f"is not shared with account {SPOKE_B}" in result.stderr
