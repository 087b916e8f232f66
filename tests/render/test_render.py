"""The text and JSON plan renderers: golden output, schema validity, masking, colour, imports.

Golden files live in tests/render/golden/; rewrite them with `scripts/update_golden.sh`
(or `IMAGESYNC_UPDATE_GOLDEN=1 python -m pytest tests/render`) and review the diff.
"""

from __future__ import annotations

import ast
import importlib.resources
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from imagesync.plan_model import (
    CREATE,
    DELETE,
    DELETE_VERSIONS,
    NO_OP,
    PUBLISH,
    UPDATE,
    Conflict,
    DiffItem,
    Plan,
    ResourceChange,
    TargetPlan,
    VersionChange,
)
from imagesync.render import json as json_render
from imagesync.render import mask, text

GOLDEN = Path(__file__).resolve().parent / "golden"
RENDER_DIR = Path(text.__file__).resolve().parent
UPDATE_GOLDEN = os.environ.get("IMAGESYNC_UPDATE_GOLDEN") == "1"

SECRET = "s3cr3t-Xy9-token"
OLD_SECRET = "0ld-s3cr3t-Ab1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

TARGET = "prod-use1"
ARN = "arn:aws:imagebuilder:us-east-1:111111111111"
SENSITIVE_PARAM = "spec.components[1].parameters[0].value"

HARDEN_STEP_OLD = {
    "name": "HardenSshd",
    "action": "ExecuteBash",
    "inputs": {"commands": ["sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config"]},
}
HARDEN_STEP_NEW = {
    "name": "HardenSshd",
    "action": "ExecuteBash",
    "inputs": {
        "commands": [
            "sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config",
            "sed -i 's/^#\\?PasswordAuthentication.*/PasswordAuthentication no/' /etc/ssh/sshd_config",
        ]
    },
}


def _recipe(harden_version: str, secret: str) -> dict[str, Any]:
    return {
        "spec": {
            "parentImage": f"{ARN.replace('111111111111', 'aws')}:image/amazon-linux-2023-x86/x.x.x",
            "components": [
                {"componentArn": f"{ARN}:component/harden-cis/{harden_version}/1"},
                {
                    "componentArn": f"{ARN}:component/install-agent/2.0.0/1",
                    "parameters": [{"name": "apiToken", "value": [secret]}],
                },
            ],
        }
    }


def mixed_plan() -> Plan:
    component = ResourceChange(
        target=TARGET,
        kind="Component",
        name="harden-cis",
        action=PUBLISH,
        before={"spec": {"platform": "Linux", "version": "1.0.0", "data": {"build": [HARDEN_STEP_OLD]}}},
        after={"spec": {"platform": "Linux", "version": "1.0.1", "data": {"build": [HARDEN_STEP_NEW]}}},
        diff=(DiffItem("change", "spec.document.build.HardenSshd", HARDEN_STEP_OLD, HARDEN_STEP_NEW),),
        version=VersionChange("1.0.0", "1.0.1", "document changed"),
    )
    recipe = ResourceChange(
        target=TARGET,
        kind="ImageRecipe",
        name="base",
        action=PUBLISH,
        before=_recipe("1.0.0", OLD_SECRET),
        after=_recipe("1.0.1", SECRET),
        diff=(
            DiffItem(
                "change",
                "spec.components[0].componentArn",
                f"{ARN}:component/harden-cis/1.0.0/1",
                f"{ARN}:component/harden-cis/1.0.1/1",
            ),
            DiffItem("change", SENSITIVE_PARAM, [OLD_SECRET], [SECRET]),
        ),
        version=VersionChange("1.0.0", "1.0.1", "component harden-cis changed"),
        depends_on=("Component/harden-cis",),
        reason="a component it uses gets a new version",
        sensitive_paths=(SENSITIVE_PARAM,),
    )
    pipeline = ResourceChange(
        target=TARGET,
        kind="ImagePipeline",
        name="base",
        action=UPDATE,
        before={
            "spec": {
                "imageRecipeArn": f"{ARN}:image-recipe/base/1.0.0",
                "schedule": {"scheduleExpression": "cron(0 3 ? * sun *)"},
                "description": "weekly base image",
            }
        },
        after={
            "spec": {
                "imageRecipeArn": f"{ARN}:image-recipe/base/1.0.1",
                "schedule": {"scheduleExpression": "cron(0 4 ? * mon *)"},
            }
        },
        diff=(
            DiffItem(
                "change", "spec.imageRecipeArn", f"{ARN}:image-recipe/base/1.0.0", f"{ARN}:image-recipe/base/1.0.1"
            ),
            DiffItem("change", "spec.schedule.scheduleExpression", "cron(0 3 ? * sun *)", "cron(0 4 ? * mon *)"),
            DiffItem("remove", "spec.description", "weekly base image", None),
        ),
        depends_on=("ImageRecipe/base", "InfrastructureConfiguration/build"),
    )
    infra = ResourceChange(
        target=TARGET,
        kind="InfrastructureConfiguration",
        name="build",
        action=CREATE,
        after={
            "spec": {"instanceProfileName": "imagebuilder-build", "instanceTypes": ["m7i.large"]},
            "tags": {"team": "platform", "imagesync:project": "estate"},
        },
        reason="new resource",
    )
    noop = ResourceChange(
        target=TARGET,
        kind="Component",
        name="install-agent",
        action=NO_OP,
        before={"spec": {"version": "2.0.0"}},
        after={"spec": {"version": "2.0.0"}},
    )
    delete = ResourceChange(
        target=TARGET,
        kind="DistributionConfiguration",
        name="old",
        action=DELETE,
        before={"spec": {"distributions": [{"region": "us-east-1"}]}},
        reason="no longer in the manifests (--prune)",
    )
    drift = ResourceChange(
        target=TARGET,
        kind="InfrastructureConfiguration",
        name="shared",
        action=UPDATE,
        before={"spec": {"terminateInstanceOnFailure": False}},
        after={"spec": {"terminateInstanceOnFailure": True}},
        diff=(DiffItem("change", "spec.terminateInstanceOnFailure", True, False),),
        reason="changed outside imagesync since the last apply",
    )
    target = TargetPlan(
        target=TARGET,
        region="us-east-1",
        account="111111111111",
        changes=(component, noop, recipe, infra, pipeline, delete),
        drift=(drift,),
        fingerprint="sha256:6f1c",
        live_fingerprints={"Component/harden-cis": "sha256:aa01", "ImageRecipe/base": "sha256:bb02"},
        warnings=("DistributionConfiguration/old is deleted: pipelines outside imagesync may still use it",),
    )
    return Plan(
        targets=(target,),
        imagesync_version="0.1.0",
        manifest_digest="sha256:0123abcd",
        manifest_root="manifests",
        options={"prune": True, "targets": [TARGET]},
    )


def _plan(*changes: ResourceChange, target: str = TARGET, **kw: Any) -> Plan:
    drift = kw.pop("drift", ())
    conflicts = kw.pop("conflicts", ())
    options = kw.pop("options", {})
    target_plan = TargetPlan(
        target=target,
        region="us-east-1",
        account="111111111111",
        changes=changes,
        drift=drift,
        conflicts=conflicts,
        **kw,
    )
    return Plan(
        targets=(target_plan,),
        imagesync_version="0.1.0",
        manifest_digest="sha256:0123abcd",
        manifest_root="manifests",
        options=options,
    )


def empty_plan() -> Plan:
    unchanged = ResourceChange(target="dev", kind="Component", name="harden-cis", action=NO_OP)
    return Plan(
        targets=(TargetPlan(target="dev", region="eu-west-1", account="222222222222", changes=(unchanged,)),),
        imagesync_version="0.1.0",
        manifest_digest="sha256:0123abcd",
        manifest_root="manifests",
    )


def _script(changed: bool) -> str:
    """A 20-line build script; the changed one differs in line 11 only."""
    lines = ["#!/bin/bash", "set -euo pipefail"]
    lines += [f"install -m 0644 /tmp/conf/{n}.conf /etc/agent/{n}.conf" for n in range(1, 9)]
    lines.append("systemctl enable --now agent.service" if not changed else "systemctl enable agent.service")
    lines += [f"echo 'check {n}' && /usr/local/bin/agent-check --stage {n}" for n in range(1, 10)]
    return "\n".join(lines) + "\n"


DOCKERFILE_OLD = (
    "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:environments }}}\n{{{ imagebuilder:components }}}\n"
    "USER app\n"
)
DOCKERFILE_NEW = (
    "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:environments }}}\n{{{ imagebuilder:components }}}\n"
    "RUN rm -rf /var/cache/dnf\nUSER app\n"
)


def multiline_plan() -> Plan:
    new_step = {
        "name": "Verify",
        "action": "ExecuteBash",
        "inputs": {"commands": ["set -e\n/usr/local/bin/agent-check --all\ntest -f /etc/agent/1.conf\n"]},
    }
    component = ResourceChange(
        target=TARGET,
        kind="Component",
        name="install-agent",
        action=PUBLISH,
        diff=(
            DiffItem("change", "spec.document.build.Install.inputs.commands[0]", _script(False), _script(True)),
            DiffItem("add", "spec.document.validate.Verify", None, new_step),
        ),
        version=VersionChange("2.0.0", "2.0.1", "content changed"),
        reason="content changed",
    )
    container = ResourceChange(
        target=TARGET,
        kind="ContainerRecipe",
        name="app",
        action=PUBLISH,
        diff=(DiffItem("change", "spec.dockerfileTemplateData", DOCKERFILE_OLD, DOCKERFILE_NEW),),
        version=VersionChange("1.2.0", "1.2.1", "content changed"),
        reason="content changed",
    )
    return _plan(component, container)


LONG_OLD = (
    "curl -fsSL https://artifacts.example.com/agent/install.sh | sh -s -- --channel stable --region us-east-1 "
    "--log-level info --retries 5 --proxy http://proxy.internal:3128 --no-telemetry --enable-feature=scan"
)
LONG_NEW = LONG_OLD.replace("--retries 5", "--retries 7")


def long_line_plan() -> Plan:
    change = ResourceChange(
        target=TARGET,
        kind="Component",
        name="install-agent",
        action=PUBLISH,
        diff=(DiffItem("change", "spec.document.build.Install.inputs.commands[0]", LONG_OLD, LONG_NEW),),
        version=VersionChange("2.0.0", "2.0.1", "content changed"),
        reason="content changed",
    )
    return _plan(change)


COMPONENT_DOCUMENT = (
    "name: harden-cis\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: HardenSshd\n"
    "        action: ExecuteBash\n        inputs:\n          commands:\n"
    "            - sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config\n"
)


def create_plan() -> Plan:
    component = ResourceChange(
        target=TARGET,
        kind="Component",
        name="harden-cis",
        action=CREATE,
        after={
            "version": "1.0.0",
            "spec": {"platform": "Linux", "description": "CIS level 1 hardening", "document": COMPONENT_DOCUMENT},
            "tags": {"imagesync:project": "estate", "imagesync:version": "1.0.0", "owner": "platform"},
        },
        version=VersionChange(None, "1.0.0", "new resource"),
        reason="new resource",
    )
    infra = ResourceChange(
        target=TARGET,
        kind="InfrastructureConfiguration",
        name="build",
        action=CREATE,
        after={
            "spec": {
                "instanceProfileName": "imagebuilder-build",
                "instanceTypes": ["m7i.large", "m6i.large"],
                "instanceMetadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
            },
            "tags": {"imagesync:project": "estate"},
        },
        reason="new resource",
    )
    return _plan(component, infra)


def delete_plan() -> Plan:
    change = ResourceChange(
        target=TARGET,
        kind="Component",
        name="legacy-agent",
        action=DELETE,
        before={"version": "1.1.0", "spec": {}, "tags": {"imagesync:project": "estate"}},
        deleted_versions=("1.0.0", "1.0.1", "1.1.0"),
        reason="no longer in the manifests (--prune)",
    )
    return _plan(change, options={"prune": True})


def delete_versions_plan() -> Plan:
    change = ResourceChange(
        target=TARGET,
        kind="ImageRecipe",
        name="base",
        action=DELETE_VERSIONS,
        before={"version": "1.0.4", "spec": {}, "tags": {}},
        after={"version": "1.0.4", "spec": {}, "tags": {}},
        deleted_versions=("1.0.0", "1.0.1"),
        reason="beyond retainVersions: 3, and nothing uses them",
    )
    return _plan(change, options={"prune": True})


def _secret_document(token: str) -> str:
    return (
        "name: fetch\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: Fetch\n"
        "        action: ExecuteBash\n        inputs:\n          commands:\n            - |\n"
        f'              export TOKEN={token}\n              curl -H "Authorization: $TOKEN" https://example.com\n'
    )


def _secret_command(token: str) -> str:
    return f'export TOKEN={token}\ncurl -H "Authorization: $TOKEN" https://example.com\n'


def masked_document_plan() -> Plan:
    publish = ResourceChange(
        target=TARGET,
        kind="Component",
        name="fetch",
        action=PUBLISH,
        before={"version": "1.0.0", "spec": {"document": _secret_document(OLD_SECRET)}, "tags": {}},
        after={"version": "1.0.1", "spec": {"platform": "Linux", "document": _secret_document(SECRET)}, "tags": {}},
        diff=(
            DiffItem(
                "change",
                "spec.document.build.Fetch.inputs.commands[0]",
                _secret_command(OLD_SECRET),
                _secret_command(SECRET),
            ),
            DiffItem("add", "spec.document.build.Check", None, {"name": "Check", "inputs": {"token": SECRET}}),
            DiffItem("remove", "spec.document.build.Old", {"name": "Old", "inputs": {"token": OLD_SECRET}}, None),
        ),
        version=VersionChange("1.0.0", "1.0.1", "content changed"),
        reason="content changed",
        sensitive_paths=("spec.document",),
    )
    create = ResourceChange(
        target=TARGET,
        kind="Component",
        name="fetch-2",
        action=CREATE,
        after={"version": "1.0.0", "spec": {"platform": "Linux", "document": _secret_document(SECRET)}, "tags": {}},
        version=VersionChange(None, "1.0.0", "new resource"),
        reason="new resource",
        sensitive_paths=("spec.document",),
    )
    return _plan(publish, create)


def refresh_only_plan() -> Plan:
    drift = ResourceChange(
        target=TARGET,
        kind="InfrastructureConfiguration",
        name="build",
        action=UPDATE,
        before={"spec": {"instanceTypes": ["m7i.large", "m7i.xlarge"]}},
        after={"spec": {"instanceTypes": ["m7i.large"]}},
        diff=(DiffItem("add", "spec.instanceTypes[1]", None, "m7i.xlarge"),),
        reason="changed outside imagesync since the last apply",
    )
    return _plan(drift=(drift,), options={"refresh_only": True})


def errored_plan() -> Plan:
    conflict = Conflict(
        TARGET,
        "Component/harden-cis",
        "a Component named harden-cis exists that imagesync does not manage; tag it imagesync:project=estate "
        "and imagesync:address=Component/harden-cis to adopt it, or rename the manifest",
    )
    update = ResourceChange(
        target=TARGET,
        kind="ImagePipeline",
        name="base",
        action=UPDATE,
        diff=(DiffItem("change", "spec.status", "DISABLED", "ENABLED"),),
    )
    return _plan(update, conflicts=(conflict,))


CASES = {
    "plan_mixed": mixed_plan,
    "plan_multiline_diff": multiline_plan,
    "plan_long_line": long_line_plan,
    "plan_create": create_plan,
    "plan_delete": delete_plan,
    "plan_delete_versions": delete_versions_plan,
    "plan_masked_document": masked_document_plan,
    "plan_refresh_only": refresh_only_plan,
    "plan_errored": errored_plan,
    "plan_empty": empty_plan,
}
JSON_CASES = ("plan_mixed", "plan_masked_document", "plan_delete")


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run scripts/update_golden.sh"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from the golden file: review, then run scripts/update_golden.sh"


def _plan_schema() -> dict[str, Any]:
    resource = importlib.resources.files("imagesync") / "schemas" / "plan.json"
    return json.loads(resource.read_text(encoding="utf-8"))


def _lines(plan: Plan) -> list[str]:
    return text.render_plan(plan).splitlines()


def _block(out: str, path: str) -> list[str]:
    """The lines of one diff item: its `path:` line and the more-indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip()[2:].startswith(f"{path}:"))
    indent = len(lines[start]) - len(lines[start].lstrip())
    body = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip() or len(line) - len(line.lstrip()) <= indent:
            break
        body.append(line)
    return body


# --- golden files -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_text_golden(name: str) -> None:
    _golden(f"{name}.txt", text.render_plan(CASES[name]()))


@pytest.mark.parametrize("name", JSON_CASES)
def test_json_golden(name: str) -> None:
    _golden(f"{name}.json", json_render.render_plan(CASES[name]()))


def test_every_golden_file_belongs_to_a_case() -> None:
    expected = {f"{n}.txt" for n in CASES} | {f"{n}.json" for n in JSON_CASES}
    assert {p.name for p in GOLDEN.iterdir() if p.suffix in (".txt", ".json")} == expected  # .md: test_markdown


# --- text: blocks and headers -------------------------------------------------------------------


def test_text_blocks_and_summary() -> None:
    out = text.render_plan(mixed_plan())
    lines = out.splitlines()
    assert lines[0] == "Target prod-use1 (us-east-1, account 111111111111)"
    assert "  ^ publish Component/harden-cis 1.0.0 -> 1.0.1 (document changed)" in lines
    assert "  ^ publish ImageRecipe/base 1.0.0 -> 1.0.1 (component harden-cis changed)" in lines
    assert "  ~ update ImagePipeline/base" in lines
    assert "  + create InfrastructureConfiguration/build" in lines
    assert "  - delete DistributionConfiguration/old" in lines
    assert "install-agent" not in out  # the no-op is not shown
    assert '      ~ spec.schedule.scheduleExpression: "cron(0 3 ? * sun *)" -> "cron(0 4 ? * mon *)"' in lines
    assert '      + spec.instanceProfileName: "imagebuilder-build"' in lines
    assert "      depends on: ImageRecipe/base, InfrastructureConfiguration/build" in lines
    assert "      # a component it uses gets a new version" in lines
    assert "  Drift detected:" in lines
    assert "        # changed outside imagesync since the last apply" in lines
    assert any(line.startswith("  ! DistributionConfiguration/old is deleted") for line in lines)
    assert lines[-1] == "Plan: 2 to publish, 1 to create, 1 to update, 1 to delete."
    assert out.endswith("\n")


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_written_change_by_change_is_the_whole_document(name: str) -> None:
    plan = CASES[name]()
    out = json_render.render_plan(plan)
    document = json_render.plan_document(plan)
    assert json.loads(out) == document
    assert out.endswith("}\n")
    # Each change is one line of its own, so a plan's JSON diffs and greps change by change.
    lines = [line.removesuffix(",") for line in out.splitlines()]
    for key in ("resource_changes", "resource_drift"):
        for change in document[key]:
            assert "    " + json.dumps(change) in lines


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_replace_symbols(name: str) -> None:
    """`-/+` and `+/-` mean replace to a Terraform user; nothing here is replaced."""
    for color in (False, True):
        out = ANSI.sub("", text.render_plan(CASES[name](), color=color))
        assert "-/+" not in out and "+/-" not in out


def test_create_shows_its_version_and_every_field_it_sends() -> None:
    lines = _lines(create_plan())
    assert "  + create Component/harden-cis 1.0.0 (new resource)" in lines
    assert '      + spec.platform: "Linux"' in lines
    assert '      + spec.description: "CIS level 1 hardening"' in lines
    assert "      + spec.document: |" in lines
    assert "          phases:" in lines  # the document, line by line
    assert "                      - sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config" in lines
    assert '      + tags.owner: "platform"' in lines
    assert not [line for line in lines if "imagesync:" in line]  # imagesync's bookkeeping tags
    assert "  + create InfrastructureConfiguration/build" in lines
    assert '      + spec.instanceTypes: ["m7i.large", "m6i.large"]' in lines
    assert '      + spec.instanceMetadataOptions: {"httpTokens": "required", "httpPutResponseHopLimit": 2}' in lines
    assert lines[-1] == "Plan: 0 to publish, 2 to create, 0 to update, 0 to delete."


@pytest.mark.parametrize(
    ("build", "head", "summary"),
    [
        (
            delete_plan,
            "  - delete Component/legacy-agent (versions 1.0.0, 1.0.1, 1.1.0)",
            "Plan: 0 to publish, 0 to create, 0 to update, 1 to delete.",
        ),
        (
            delete_versions_plan,
            "  - delete versions ImageRecipe/base: 1.0.0, 1.0.1",
            "Plan: 0 to publish, 0 to create, 0 to update, 1 to delete.",
        ),
    ],
)
def test_deletes_list_each_version(build: Any, head: str, summary: str) -> None:
    lines = _lines(build())
    assert head in lines
    assert lines[-1] == summary


def test_retention_is_not_a_whole_delete() -> None:
    whole = [ln for ln in _lines(delete_plan()) if ln.startswith("  - ")]
    retention = [ln for ln in _lines(delete_versions_plan()) if ln.startswith("  - ")]
    assert whole[0].startswith("  - delete Component/") and "delete versions" not in whole[0]
    assert retention[0].startswith("  - delete versions ImageRecipe/base")
    assert json.loads(json_render.render_plan(delete_versions_plan()))["resource_changes"][0]["change"]["actions"] == [
        "delete-versions"
    ]


def test_first_version_is_a_create_with_its_version() -> None:
    change = ResourceChange(
        target="dev", kind="Component", name="harden-cis", action=CREATE, version=VersionChange(None, "1.0.0", "")
    )
    lines = _lines(_plan(change, target="dev"))
    assert "  + create Component/harden-cis 1.0.0" in lines
    assert lines[-1] == "Plan: 0 to publish, 1 to create, 0 to update, 0 to delete."


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            DiffItem("remove", "spec.description", "weekly base image", None),
            '      - spec.description: "weekly base image"',
        ),
        (DiffItem("remove", "spec.schedule", {"scheduleExpression": "rate(1 day)"}, None), "      - spec.schedule: "),
        (DiffItem("remove", SENSITIVE_PARAM, [SECRET], None), f"      - {SENSITIVE_PARAM}: (sensitive)"),
    ],
)
def test_removed_fields_say_what_takes_their_place(item: DiffItem, expected: str) -> None:
    change = ResourceChange(
        target=TARGET,
        kind="ImagePipeline",
        name="base",
        action=UPDATE,
        diff=(item,),
        sensitive_paths=(SENSITIVE_PARAM,),
    )
    (line,) = [ln for ln in _lines(_plan(change)) if ln.startswith(expected)]
    assert line.endswith("  (removed: Image Builder's default applies)")
    assert SECRET not in line


# --- text: nothing hidden -----------------------------------------------------------------------


def test_a_changed_line_inside_a_long_script_is_shown() -> None:
    body = _block(text.render_plan(multiline_plan()), "spec.document.build.Install.inputs.commands[0]")
    assert body[0] == "      ~ spec.document.build.Install.inputs.commands[0]:"
    assert "          - systemctl enable --now agent.service" in body
    assert "          + systemctl enable agent.service" in body
    # three lines of context either side, the rest folded
    assert body[1] == "            # (7 unchanged lines hidden)"
    assert "            install -m 0644 /tmp/conf/8.conf /etc/agent/8.conf" in body
    assert "            echo 'check 3' && /usr/local/bin/agent-check --stage 3" in body
    assert "echo 'check 4'" not in "\n".join(body)
    assert body[-1] == "            # (6 unchanged lines hidden)"


def test_a_dockerfile_is_a_line_diff() -> None:
    body = _block(text.render_plan(multiline_plan()), "spec.dockerfileTemplateData")
    assert body[1:] == [
        "            FROM {{{ imagebuilder:parentImage }}}",
        "            {{{ imagebuilder:environments }}}",
        "            {{{ imagebuilder:components }}}",
        "          + RUN rm -rf /var/cache/dnf",
        "            USER app",
    ]


def test_a_multi_line_string_inside_a_new_step_is_a_block() -> None:
    body = _block(text.render_plan(multiline_plan()), "spec.document.validate.Verify")
    assert body == [
        "      + spec.document.validate.Verify:",
        '          name: "Verify"',
        '          action: "ExecuteBash"',
        "          inputs:",
        "            commands:",
        "              - |",
        "                set -e",
        "                /usr/local/bin/agent-check --all",
        "                test -f /etc/agent/1.conf",
    ]


def test_a_long_one_line_value_shows_the_changed_span_in_full() -> None:
    body = _block(text.render_plan(long_line_plan()), "spec.document.build.Install.inputs.commands[0]")
    assert len(body) == 3
    old, new = body[1].strip(), body[2].strip()
    assert old.startswith("- ...") and new.startswith("+ ...")
    assert "--retries 5" in old and "--retries 7" in new
    assert old.replace("--retries 5", "--retries 7")[1:] == new[1:]
    assert LONG_OLD not in body[1]  # cut to the span, with context
    assert len(new) < len(LONG_NEW)


def test_a_changed_step_object_is_diffed_line_by_line() -> None:
    body = _block(text.render_plan(mixed_plan()), "spec.document.build.HardenSshd")
    added = [line.strip() for line in body if line.strip().startswith("+ ")]
    assert added == [
        "+     - \"sed -i 's/^#\\\\?PasswordAuthentication.*/PasswordAuthentication no/' /etc/ssh/sshd_config\""
    ]
    assert not [line for line in body if line.startswith("          - ")]  # nothing removed


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("a\nb\n", "a\nc\n", ["  a", "- b", "+ c"]),
        ("a\nb\n", "a\nb", ["  a", "- b", "+ b", "\\ no newline at end"]),
        ("a\nb", "a\nb\n", ["  a", "- b", "\\ no newline at end", "+ b"]),
        ("a\r\nb\n", "a\nb\n", ['- "a\\r"', "+ a", "  b"]),
        ("a \nb\n", "a\nb\n", ['- "a "', "+ a", "  b"]),
        ("x\ty\n", "x y\n", ["- x\ty", "+ x y"]),
        ("ok\n\x1b[2Jgone\n", "ok\ngone\n", ["  ok", '- "\\u001b[2Jgone"', "+ gone"]),
        ('"a "\n', "a \n", ['- "\\"a \\""', '+ "a "']),  # shown as-is, the two would read the same
        (
            "1\n2\n3\n4\n5\n6\n7\n8\n9\n",
            "1\n2\n3\n4\nX\n6\n7\n8\n9\n",
            [
                "  # (1 unchanged line hidden)",
                "  2",
                "  3",
                "  4",
                "- 5",
                "+ X",
                "  6",
                "  7",
                "  8",
                "  # (1 unchanged line hidden)",
            ],
        ),
    ],
)
def test_unified(old: str, new: str, expected: list[str]) -> None:
    assert text.unified(old, new) == expected


def _sides(body: list[str]) -> tuple[list[str], list[str]]:
    """What the rendered lines under a diff item say the old and the new value are."""
    head = body[0].split(": ", 1)
    if len(head) == 2 and head[1]:  # `path: OLD -> NEW`, both JSON
        decoder = json.JSONDecoder()
        old, end = decoder.raw_decode(head[1])
        assert head[1][end : end + 4] == " -> "
        new, end = decoder.raw_decode(head[1], end + 4)
        assert end == len(head[1])
        return [json.dumps(old)], [json.dumps(new)]
    old_side: list[str] = []
    new_side: list[str] = []
    last: list[list[str]] = []
    for line in body[1:]:
        content = line[len(text._DETAIL_INDENT) + len(text._BLOCK_INDENT) :]
        if content.startswith("\\"):
            for side in last:
                side.append(content)
            continue
        last = {"-": [old_side], "+": [new_side]}.get(content[:1], [old_side, new_side])
        for side in last:
            side.append(content[2:])
    return old_side, new_side


_TEXT = st.text(alphabet=st.sampled_from('ab \t\n\r"\\\x1b\u2028é') | st.characters(), max_size=300)


@settings(max_examples=300, deadline=None)
@given(old=_TEXT, new=_TEXT)
def test_no_change_is_ever_invisible(old: str, new: str) -> None:
    if old == new:
        return
    change = ResourceChange(
        target=TARGET, kind="Component", name="c", action=UPDATE, diff=(DiffItem("change", "spec.v", old, new),)
    )
    out = text.render_plan(_plan(change))
    old_side, new_side = _sides(_block(out, "spec.v"))
    assert old_side != new_side
    assert "\x1b" not in out and "\r" not in out and "\u2028" not in out  # nothing a terminal would act on


@settings(max_examples=100, deadline=None)
@given(
    old=st.dictionaries(st.sampled_from(["a", "b", "c d"]), _TEXT | st.integers() | st.lists(_TEXT, max_size=3)),
    new=st.dictionaries(st.sampled_from(["a", "b", "c d"]), _TEXT | st.integers() | st.lists(_TEXT, max_size=3)),
)
def test_no_change_to_a_structure_is_invisible(old: dict[str, Any], new: dict[str, Any]) -> None:
    if old == new:
        return
    change = ResourceChange(
        target=TARGET, kind="Component", name="c", action=UPDATE, diff=(DiffItem("change", "spec.v", old, new),)
    )
    old_side, new_side = _sides(_block(text.render_plan(_plan(change)), "spec.v"))
    assert old_side != new_side


# --- summary lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "summary"),
    [
        (empty_plan, "No changes. Image Builder matches the manifests."),
        (refresh_only_plan, "Refresh only: 1 drifted resource found; nothing will be changed."),
        (lambda: _plan(options={"refresh_only": True}), "No drift. Image Builder matches what imagesync last applied."),
        (errored_plan, "Plan failed: 1 error; nothing can be applied until they are resolved."),
        (mixed_plan, "Plan: 2 to publish, 1 to create, 1 to update, 1 to delete."),
    ],
)
def test_summary_lines(build: Any, summary: str) -> None:
    plan = build()
    out = text.render_plan(plan)
    assert out.splitlines()[-1] == summary == text.summary_line(plan)


def test_refresh_only_shows_drift_and_no_changes_line() -> None:
    lines = _lines(refresh_only_plan())
    assert "  Drift detected:" in lines
    assert '        + spec.instanceTypes[1]: "m7i.xlarge"' in lines
    assert "  No changes for this target." not in lines


def test_errors_are_listed_with_their_address() -> None:
    lines = _lines(errored_plan())
    (error,) = [ln for ln in lines if "error:" in ln]
    assert error.startswith("  x error: Component/harden-cis: a Component named harden-cis exists")
    document = json.loads(json_render.render_plan(errored_plan()))
    assert document["errored"] is True and document["applyable"] is False and document["complete"] is False
    assert document["errors"][0]["address"] == "prod-use1:Component/harden-cis"


def test_empty_plan_ends_with_no_changes() -> None:
    out = text.render_plan(empty_plan())
    assert out.endswith("No changes. Image Builder matches the manifests.\n")
    assert "Plan:" not in out
    no_targets = Plan(targets=(), imagesync_version="0.1.0", manifest_digest="d", manifest_root="m")
    assert text.render_plan(no_targets) == "No changes. Image Builder matches the manifests.\n"


def test_colour_only_when_asked() -> None:
    plan = mixed_plan()
    plain = text.render_plan(plan)
    coloured = text.render_plan(plan, color=True)
    assert "\x1b[" not in plain
    assert "\x1b[" not in json_render.render_plan(plan)
    assert "\x1b[32m+\x1b[0m create" in coloured
    assert "\x1b[33m~\x1b[0m update" in coloured
    assert "\x1b[31m-\x1b[0m delete" in coloured
    assert "\x1b[36m^\x1b[0m publish" in coloured
    assert ANSI.sub("", coloured) == plain
    multi = text.render_plan(multiline_plan(), color=True)
    assert "\x1b[31m-\x1b[0m systemctl enable --now agent.service" in multi
    assert ANSI.sub("", multi) == text.render_plan(multiline_plan())


# --- JSON ---------------------------------------------------------------------------------------


def test_plan_schema_is_valid_draft_2020_12() -> None:
    schema = _plan_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("name", sorted(CASES))
def test_json_validates_against_schema(name: str) -> None:
    document = json.loads(json_render.render_plan(CASES[name]()))
    errors = sorted(Draft202012Validator(_plan_schema()).iter_errors(document), key=str)
    assert not errors, "\n".join(str(e) for e in errors)


@pytest.mark.parametrize("name", JSON_CASES)
def test_json_golden_files_validate(name: str) -> None:
    document = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    errors = sorted(Draft202012Validator(_plan_schema()).iter_errors(document), key=str)
    assert not errors, "\n".join(str(e) for e in errors)


def test_json_shape() -> None:
    document = json.loads(json_render.render_plan(mixed_plan()))
    assert document["format_version"] == "2"
    assert (document["applyable"], document["errored"], document["complete"]) == (True, False, False)  # --target
    assert document["errors"] == []
    component = document["resource_changes"][0]
    assert component["address"] == "prod-use1:Component/harden-cis"
    assert component["resource"] == "Component/harden-cis"
    assert component["change"]["actions"] == ["publish"]
    assert component["version"] == {"from": "1.0.0", "to": "1.0.1", "reason": "document changed"}
    assert document["resource_changes"][2]["depends_on"] == ["prod-use1:Component/harden-cis"]
    deleted = json.loads(json_render.render_plan(delete_plan()))["resource_changes"][0]
    assert deleted["change"]["actions"] == ["delete"]
    assert deleted["deleted_versions"] == ["1.0.0", "1.0.1", "1.1.0"]
    assert json.loads(json_render.render_plan(refresh_only_plan()))["applyable"] is False


def test_json_is_plan_to_json_apart_from_masking() -> None:
    plan = mixed_plan()
    out = json_render.render_plan(plan)
    assert out.endswith("}\n")
    document = json.loads(out)
    raw = json.loads(json.dumps(plan.to_json()))
    assert len(document["resource_changes"]) == 6  # the no-op is kept
    recipe = document["resource_changes"][2]
    assert recipe["address"] == "prod-use1:ImageRecipe/base"
    for side in ("before", "after"):
        assert recipe["change"][side]["spec"]["components"][1]["parameters"][0]["value"] == "(sensitive)"
        assert recipe["change"][side]["spec"]["components"][1]["parameters"][0]["name"] == "apiToken"
    assert recipe["diff"][1] == {"op": "change", "path": SENSITIVE_PARAM, "old": "(sensitive)", "new": "(sensitive)"}
    # Everything else is exactly Plan.to_json().
    for masked_doc in (document, raw):
        masked_doc["resource_changes"][2]["change"].pop("before")
        masked_doc["resource_changes"][2]["change"].pop("after")
        masked_doc["resource_changes"][2]["diff"].pop(1)
    assert document == raw


def test_json_schema_rejects_bad_documents() -> None:
    validator = Draft202012Validator(_plan_schema())
    good = json.loads(json_render.render_plan(mixed_plan()))
    assert validator.is_valid(good)
    bad: list[dict[str, Any]] = []
    for mutate in (
        lambda d: d["resource_changes"][0]["change"].__setitem__("actions", ["create", "delete"]),
        lambda d: d["resource_changes"][0]["change"].__setitem__("actions", ["replace"]),
        lambda d: d["summary"].__setitem__("extra", 1),
        lambda d: d["resource_drift"][0].pop("reason"),
        lambda d: d.pop("errored"),
        lambda d: d.__setitem__("format_version", "1"),
        lambda d: d["resource_changes"][0].__setitem__("deleted_versions", "1.0.0"),
        lambda d: d["errors"].append({"address": "x"}),
    ):
        copy = json.loads(json.dumps(good))
        mutate(copy)
        bad.append(copy)
    assert [validator.is_valid(d) for d in bad] == [False] * len(bad)


# --- sensitive values ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plan_mixed", "plan_masked_document"])
def test_sensitive_values_never_appear(name: str) -> None:
    plan = CASES[name]()
    assert SECRET in json.dumps(plan.to_json())  # the fixture really holds it
    outputs = [text.render_plan(plan), text.render_plan(plan, color=True), json_render.render_plan(plan)]
    for out in outputs:
        assert SECRET not in out and OLD_SECRET not in out
        assert "(sensitive)" in out


def test_a_sensitive_document_is_masked_in_diffs_and_creates() -> None:
    plan = masked_document_plan()
    lines = _lines(plan)
    assert "      ~ spec.document.build.Fetch.inputs.commands[0]: (sensitive) -> (sensitive)" in lines
    assert "      + spec.document.build.Check: (sensitive)" in lines
    assert "      - spec.document.build.Old: (sensitive)  (removed: Image Builder's default applies)" in lines
    assert "      + spec.document: (sensitive)" in lines  # the create's listing
    assert '      + spec.platform: "Linux"' in lines
    document = json.loads(json_render.render_plan(plan))
    publish, create = document["resource_changes"]
    assert publish["change"]["before"]["spec"]["document"] == "(sensitive)"
    assert publish["change"]["after"]["spec"] == {"platform": "Linux", "document": "(sensitive)"}
    assert create["change"]["after"]["spec"]["document"] == "(sensitive)"
    assert [(d["old"], d["new"]) for d in publish["diff"]] == [
        ("(sensitive)", "(sensitive)"),
        (None, "(sensitive)"),
        ("(sensitive)", None),
    ]


def test_sensitive_values_inside_a_broader_diff_are_masked_leaf_by_leaf() -> None:
    before = _recipe("1.0.0", OLD_SECRET)
    after = _recipe("1.0.1", SECRET)
    change = ResourceChange(
        target="dev",
        kind="ImageRecipe",
        name="base",
        action=PUBLISH,
        before=before,
        after=after,
        diff=(
            DiffItem("change", "spec.components", before["spec"]["components"], after["spec"]["components"]),
            DiffItem("add", SENSITIVE_PARAM + "[0]", None, SECRET),
        ),
        version=VersionChange("1.0.0", "1.0.1", "changed"),
        sensitive_paths=(SENSITIVE_PARAM,),
    )
    plan = _plan(change, target="dev")
    out_text = text.render_plan(plan)
    out_json = json_render.render_plan(plan)
    for out in (out_text, out_json):
        assert SECRET not in out and OLD_SECRET not in out
    body = _block(out_text, "spec.components")  # the broader value is still shown, line by line
    assert (
        '          - - componentArn: "arn:aws:imagebuilder:us-east-1:111111111111:component/harden-cis/1.0.0/1"' in body
    )
    assert (
        '          + - componentArn: "arn:aws:imagebuilder:us-east-1:111111111111:component/harden-cis/1.0.1/1"' in body
    )
    assert body[-1] == "            # (1 unchanged line hidden)"  # the masked parameter value, unchanged
    assert f"      + {SENSITIVE_PARAM}[0]: (sensitive)" in out_text.splitlines()
    diff = json.loads(out_json)["resource_changes"][0]["diff"]
    assert diff[0]["new"][1]["parameters"] == [{"name": "apiToken", "value": "(sensitive)"}]
    assert diff[0]["new"][0] == after["spec"]["components"][0]
    assert diff[1]["new"] == "(sensitive)"
    assert before["spec"]["components"][1]["parameters"][0]["value"] == [OLD_SECRET]  # input untouched


def test_mask_helpers() -> None:
    assert mask.parse_path("spec.components[1].parameters[0].value") == (
        "spec",
        "components",
        1,
        "parameters",
        0,
        "value",
    )
    assert mask.parse_path("document.build.HardenSshd") == ("document", "build", "HardenSshd")
    with pytest.raises(ValueError):
        mask.parse_path("spec..x")
    assert mask.is_under("spec.a[0].b", "spec.a")
    assert mask.is_under("spec.a", "spec.a")
    assert not mask.is_under("spec.ab", "spec.a")
    doc = {"spec": {"a": [{"k": "v"}, {"k": "w"}], "b": None}}
    assert mask.mask_document(doc, ["spec.a[1].k", "spec.b", "spec.missing[3]", "spec.a[9]"]) == {
        "spec": {"a": [{"k": "v"}, {"k": "(sensitive)"}], "b": None}
    }
    assert doc["spec"]["a"][1]["k"] == "w"
    assert mask.mask_diff_value("spec.a[1]", {"k": "w"}, ["spec.a[1].k"]) == {"k": "(sensitive)"}
    assert mask.mask_diff_value("spec.a[1].k", "w", ["spec.a[1]"]) == "(sensitive)"
    assert mask.mask_diff_value("spec.c", "x", ["spec.a[1]"]) == "x"


# --- imports ------------------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    package = "imagesync.render"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
                if not node.module:  # `from . import mask`
                    found.update(f"{base}.{alias.name}" for alias in node.names)
                    continue
            else:
                module = node.module or ""
            found.add(module)
    return found


def test_renderers_import_only_the_plan_model() -> None:
    files = sorted(RENDER_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "text.py", "json.py", "mask.py"}
    # The plan model, and each other (markdown reuses the text renderer's diffs).
    allowed_own = {"imagesync.plan_model", "imagesync.render"} | {f"imagesync.render.{f.stem}" for f in files}
    for path in files:
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "imagesync":
                assert module in allowed_own, f"{path.name} imports {module}"
            else:
                assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {module}"
    assert {m for m in _imports(RENDER_DIR / "mask.py") if m.startswith("imagesync")} <= {"imagesync.plan_model"}
    init = ast.parse((RENDER_DIR / "__init__.py").read_text(encoding="utf-8"))
    assert len(init.body) == 1 and isinstance(init.body[0], ast.Expr)  # docstring only
