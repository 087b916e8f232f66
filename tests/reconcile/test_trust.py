"""What is reviewed is what is applied: saved plans across clones, tampered plans, conflicts with
resources imagesync does not own, drift alerts, masking and the plan's own words.

Every test drives the CLI as a subprocess (`python -m imagesync`) against a sandbox, as CI would,
and checks the sandbox's own call counters for what was (not) written.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from reconcile.conftest import ACCOUNTS, PROD, STAGING, Estate
from reconcile.test_e2e import update_infra_out_of_band

SECRET = "tok-9f8e7d6c5b4a-SECRET"
OTHER_SECRET = "tok-1a2b3c4d5e6f-ROTATED"


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def clone(estate: Estate, where: Path) -> Path:
    """A checkout of the same commit at another path: `<where>/examples/manifests`."""
    root = where / "examples" / "manifests"
    shutil.copytree(estate.root, root)
    return where


def edit_component_document(root: Path) -> None:
    path = root / "components" / "harden-cis.yml"
    path.write_text(path.read_text().replace("MaxAuthTries 4", "MaxAuthTries 3"))


# --- saved plans ---------------------------------------------------------------------------------


def test_a_saved_plan_made_in_one_clone_applies_in_another_without_a_prompt(applied: Estate, tmp_path: Path) -> None:
    url = applied.sb.endpoint_url
    first, second = clone(applied, tmp_path / "ci-plan"), clone(applied, tmp_path / "ci-apply")
    for checkout in (first, second):  # the same commit, checked out twice
        edit_component_document(checkout / "examples" / "manifests")
    made = cli(first, "plan", "examples/manifests", "--sandbox", url, "--out", "p.json")
    assert made.returncode == 0, made.stderr
    saved = json.loads((first / "p.json").read_text())
    assert saved["manifest_root"] == "examples/manifests"
    assert saved["applyable"] is True
    shutil.copyfile(first / "p.json", second / "p.json")
    shutil.rmtree(first)  # the planning checkout is gone, as on a CI runner

    applied.mark()
    result = cli(second, "apply", "p.json", "--sandbox", url)  # no --auto-approve: the plan is the approval
    assert result.returncode == 0, result.stderr
    assert "Apply complete" in result.stdout
    assert applied.writes().get("CreateComponent") == 2  # one new harden-cis version per target
    again = cli(second, "plan", "examples/manifests", "--sandbox", url, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_saved_plan_is_refused_outside_the_directory_it_names(applied: Estate, tmp_path: Path) -> None:
    url = applied.sb.endpoint_url
    checkout = clone(applied, tmp_path / "c")
    edit_component_document(checkout / "examples" / "manifests")
    assert cli(checkout, "plan", "examples/manifests", "--sandbox", url, "--out", "p.json").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    applied.mark()
    result = cli(elsewhere, "apply", str(checkout / "p.json"), "--sandbox", url)
    assert result.returncode == 1
    assert "examples/manifests" in result.stderr and "Traceback" not in result.stderr
    assert applied.writes() == {}


def _tamper_drop_delete(doc: dict[str, Any]) -> str:
    drop = next(c for c in doc["resource_changes"] if c["change"]["actions"] == ["delete"])
    doc["resource_changes"].remove(drop)
    return str(drop["address"])


def _tamper_version(doc: dict[str, Any]) -> str:
    publish = next(c for c in doc["resource_changes"] if c["change"]["actions"] == ["publish"])
    publish["version"]["to"] = "9.9.9"
    return str(publish["address"])


def _tamper_action(doc: dict[str, Any]) -> str:
    change = next(c for c in doc["resource_changes"] if c["change"]["actions"] == ["delete"])
    change["change"]["actions"] = ["no-op"]
    return str(change["address"])


def _tamper_calls(doc: dict[str, Any]) -> str:
    change = next(c for c in doc["resource_changes"] if c["change"]["actions"] == ["publish"])
    change["calls_digest"] = "0" * 64
    return str(change["address"])


def test_a_hand_edited_saved_plan_is_refused_and_nothing_is_written(applied: Estate, tmp_path: Path) -> None:
    url = applied.sb.endpoint_url
    checkout = clone(applied, tmp_path / "c")
    root = checkout / "examples" / "manifests"
    edit_component_document(root)
    pipelines = [d for d in yaml.safe_load_all((root / "pipelines.yaml").read_text()) if d]
    kept = [d for d in pipelines if d["metadata"]["name"] != "app-worker"]
    assert len(kept) == len(pipelines) - 1
    (root / "pipelines.yaml").write_text(yaml.safe_dump_all(kept, sort_keys=False))
    made = cli(checkout, "plan", "examples/manifests", "--sandbox", url, "--prune", "--out", "p.json")
    assert made.returncode == 0, made.stderr
    original = json.loads((checkout / "p.json").read_text())
    for tamper in (_tamper_drop_delete, _tamper_version, _tamper_action, _tamper_calls):
        doc = json.loads(json.dumps(original))
        address = tamper(doc)
        (checkout / "edited.json").write_text(json.dumps(doc))
        applied.mark()
        result = cli(checkout, "apply", "edited.json", "--sandbox", url)
        assert result.returncode == 1, (tamper.__name__, result.stdout)
        assert "would not make exactly the saved plan's changes" in result.stderr, result.stderr
        assert address in result.stderr, (tamper.__name__, result.stderr)
        assert "Traceback" not in result.stderr
        assert applied.writes() == {}, tamper.__name__
    untouched = cli(checkout, "apply", "p.json", "--sandbox", url)
    assert untouched.returncode == 0, untouched.stderr


# --- conflicts -----------------------------------------------------------------------------------


def _hand_made_infra(estate: Estate, target: str) -> str:
    response = estate.client(target).create_infrastructure_configuration(
        name="build-private",
        instanceProfileName="hand-made-profile",
        instanceMetadataOptions={"httpTokens": "optional"},
    )
    return str(response["infrastructureConfigurationArn"])


def test_a_same_named_resource_imagesync_does_not_own_is_an_error(estate: Estate) -> None:
    url = estate.sb.endpoint_url
    arn = _hand_made_infra(estate, PROD)
    estate.mark()
    plan = estate.cli("plan", str(estate.root), "--sandbox", url)
    assert plan.returncode == 1, plan.stdout
    assert "No changes" not in plan.stdout
    assert f"{PROD}:InfrastructureConfiguration/build-private" in plan.stderr
    assert "not managed by project 'golden-images'" in plan.stderr
    assert f"tag-resource --resource-arn {arn}" in plan.stderr
    assert "imagesync:project=golden-images,imagesync:address=InfrastructureConfiguration/build-private" in plan.stderr
    document = json.loads(estate.cli("plan", str(estate.root), "--sandbox", url, "--format", "json").stdout)
    assert document["errored"] is True and document["applyable"] is False
    assert [e["address"] for e in document["errors"]] == [f"{PROD}:InfrastructureConfiguration/build-private"]

    apply = estate.cli("apply", str(estate.root), "--sandbox", url, "--auto-approve")
    assert apply.returncode == 1
    assert "nothing was applied" in apply.stderr and "Traceback" not in apply.stderr
    assert estate.writes() == {}  # not in the other target either: the plan is refused whole

    # Adopting it the way the error says makes the manifest's values (IMDSv2) apply.
    estate.client(PROD).tag_resource(
        resourceArn=arn,
        tags={"imagesync:project": "golden-images", "imagesync:address": "InfrastructureConfiguration/build-private"},
    )
    adopted = estate.cli("plan", str(estate.root), "--sandbox", url)
    assert adopted.returncode == 0, adopted.stderr
    assert '~ spec.instanceMetadataOptions.httpTokens: "optional" -> "required"' in adopted.stdout
    assert estate.cli("apply", str(estate.root), "--sandbox", url, "--auto-approve").returncode == 0
    live = estate.client(PROD).get_infrastructure_configuration(infrastructureConfigurationArn=arn)
    assert live["infrastructureConfiguration"]["instanceMetadataOptions"]["httpTokens"] == "required"


def test_a_same_named_component_of_someone_else_is_an_error(estate: Estate) -> None:
    url = estate.sb.endpoint_url
    estate.client(STAGING).create_component(
        name="harden-cis",
        semanticVersion="3.0.0",
        platform="Linux",
        data="name: theirs\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
        "      - name: Theirs\n        action: ExecuteBash\n        inputs:\n          commands: [echo theirs]\n",
    )
    estate.mark()
    plan = estate.cli("plan", str(estate.root), "--sandbox", url)
    assert plan.returncode == 1
    assert f"{STAGING}:Component/harden-cis" in plan.stderr and "imagesync:version=3.0.0" in plan.stderr
    assert estate.writes() == {}


# --- drift alerts --------------------------------------------------------------------------------


def test_refresh_only_with_detailed_exitcode_exits_2_on_drift(applied: Estate) -> None:
    url = applied.sb.endpoint_url
    clean = applied.cli("plan", str(applied.root), "--sandbox", url, "--refresh-only", "--detailed-exitcode")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    update_infra_out_of_band(applied, PROD, instanceTypes=["t3.micro"])
    drifted = applied.cli("plan", str(applied.root), "--sandbox", url, "--refresh-only", "--detailed-exitcode")
    assert drifted.returncode == 2, drifted.stdout + drifted.stderr
    assert "No changes" not in drifted.stdout
    assert "InfrastructureConfiguration/build-private" in drifted.stdout
    assert "Refresh only: 1 drifted resource" in drifted.stdout


# --- secrets -------------------------------------------------------------------------------------


def test_a_sensitive_document_never_appears_in_any_output(applied: Estate, tmp_path: Path) -> None:
    url = applied.sb.endpoint_url
    document = applied.root / "components" / "harden-cis.yml"
    text = document.read_text()
    applied.edit("components.yaml", "Component", "harden-cis", lambda d: d["spec"].update(sensitive=["document"]))
    marker = "MaxAuthTries 4"
    assert marker in text
    document.write_text(text.replace(marker, f"{marker} # {SECRET}"))
    assert applied.cli("apply", str(applied.root), "--sandbox", url, "--auto-approve").returncode == 0
    document.write_text(text.replace(marker, f"{marker} # {OTHER_SECRET}"))
    outputs = [
        applied.cli("plan", str(applied.root), "--sandbox", url),
        applied.cli("plan", str(applied.root), "--sandbox", url, "--format", "json", "--out", str(tmp_path / "p.json")),
        applied.cli("apply", str(applied.root), "--sandbox", url, "--auto-approve", "-v"),
    ]
    assert "(sensitive)" in outputs[0].stdout and "publish Component/harden-cis" in outputs[0].stdout
    for result in outputs:
        assert result.returncode == 0, result.stderr
        for secret in (SECRET, OTHER_SECRET):
            assert secret not in result.stdout and secret not in result.stderr
    saved = (tmp_path / "p.json").read_text()
    assert SECRET not in saved and OTHER_SECRET not in saved


# --- the plan's own words ------------------------------------------------------------------------


def test_raising_only_the_version_says_so(applied: Estate) -> None:
    applied.edit("components.yaml", "Component", "harden-cis", lambda d: d["spec"].update(version="2.0.0"))
    result = applied.cli("plan", str(applied.root), "--sandbox", applied.sb.endpoint_url)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "publish Component/harden-cis" in ln)
    assert "1.0.0 -> 2.0.0" in line and "version raised to 2.0.0 in the manifest" in line
    assert "content changed" not in line
    assert "-/+" not in result.stdout


def test_account_of_each_target_is_shown(applied: Estate) -> None:
    result = applied.cli("plan", str(applied.root), "--sandbox", applied.sb.endpoint_url)
    for target, account in ACCOUNTS.items():
        assert f"Target {target} " in result.stdout and f"account {account}" in result.stdout


def test_a_recipe_version_with_a_wildcard_patch_publishes_the_next_patch(applied: Estate) -> None:
    url = applied.sb.endpoint_url
    applied.edit("recipes.yaml", "ImageRecipe", "hardened-al2023", lambda d: d["spec"].update(version="1.0.x"))
    result = applied.cli("plan", str(applied.root), "--sandbox", url)
    assert result.returncode == 0, result.stderr
    assert "^ publish ImageRecipe/hardened-al2023 1.0.0 -> 1.0.1" in result.stdout
    assert applied.cli("apply", str(applied.root), "--sandbox", url, "--auto-approve").returncode == 0
    again = applied.cli("plan", str(applied.root), "--sandbox", url, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout


def test_a_saved_plan_whose_root_climbs_out_of_the_working_directory_is_refused(applied: Estate) -> None:
    url = applied.sb.endpoint_url
    checkout = applied.workdir
    made = cli(checkout, "plan", "manifests", "--sandbox", url, "--out", "p.json")
    assert made.returncode == 0, made.stderr
    doc = json.loads((checkout / "p.json").read_text())
    doc["manifest_root"] = "../" + checkout.name + "/manifests"
    (checkout / "p.json").write_text(json.dumps(doc))
    result = cli(checkout, "apply", "p.json", "--sandbox", url)
    assert result.returncode == 1 and "leaves the working directory" in result.stderr
