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
from jsonschema import Draft202012Validator

from imagesync.changes import (
    CREATE,
    DELETE,
    NO_OP,
    PUBLISH,
    UPDATE,
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
        diff=(DiffItem("change", "document.build.HardenSshd", HARDEN_STEP_OLD, HARDEN_STEP_NEW),),
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
        after={"spec": {"instanceProfileName": "imagebuilder-build", "instanceTypes": ["m7i.large"]}},
        diff=(
            DiffItem("add", "spec.instanceProfileName", None, "imagebuilder-build"),
            DiffItem("add", "spec.instanceTypes", None, ["m7i.large"]),
        ),
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


def empty_plan() -> Plan:
    unchanged = ResourceChange(target="dev", kind="Component", name="harden-cis", action=NO_OP)
    return Plan(
        targets=(TargetPlan(target="dev", region="eu-west-1", account="222222222222", changes=(unchanged,)),),
        imagesync_version="0.1.0",
        manifest_digest="sha256:0123abcd",
        manifest_root="manifests",
    )


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


# --- golden files -------------------------------------------------------------------------------


def test_text_mixed_golden() -> None:
    _golden("plan_mixed.txt", text.render_plan(mixed_plan()))


def test_json_mixed_golden() -> None:
    _golden("plan_mixed.json", json_render.render_plan(mixed_plan()))


def test_text_empty_golden() -> None:
    _golden("plan_empty.txt", text.render_plan(empty_plan()))


# --- text ---------------------------------------------------------------------------------------


def test_text_blocks_and_summary() -> None:
    out = text.render_plan(mixed_plan())
    lines = out.splitlines()
    assert lines[0] == "Target prod-use1 (us-east-1, account 111111111111)"
    assert "  -/+ new version Component/harden-cis 1.0.0 -> 1.0.1 (document changed)" in lines
    assert "  -/+ new version ImageRecipe/base 1.0.0 -> 1.0.1 (component harden-cis changed)" in lines
    assert "  ~ update ImagePipeline/base" in lines
    assert "  + create InfrastructureConfiguration/build" in lines
    assert "  - delete DistributionConfiguration/old" in lines
    assert "install-agent" not in out  # the no-op is not shown
    assert '      ~ spec.schedule.scheduleExpression: "cron(0 3 ? * sun *)" -> "cron(0 4 ? * mon *)"' in lines
    assert '      - spec.description: "weekly base image"' in lines
    assert '      + spec.instanceProfileName: "imagebuilder-build"' in lines
    assert "      depends on: ImageRecipe/base, InfrastructureConfiguration/build" in lines
    assert "      # a component it uses gets a new version" in lines
    assert "  Drift detected:" in lines
    assert "        # changed outside imagesync since the last apply" in lines
    assert any(line.startswith("  ! DistributionConfiguration/old is deleted") for line in lines)
    assert lines[-1] == "Plan: 2 to publish, 1 to create, 1 to update, 1 to delete."
    assert out.endswith("\n")


def test_text_long_values_are_elided_in_the_middle() -> None:
    out = text.render_plan(mixed_plan())
    (line,) = [ln for ln in out.splitlines() if "document.build.HardenSshd" in ln]
    old, new = line.split(": ", 1)[1].split(" -> ")
    assert len(old) <= text.MAX_VALUE_CHARS and len(new) <= text.MAX_VALUE_CHARS
    assert "..." in new and new.startswith('{"name": "HardenSshd"') and new.endswith("]}}")


def test_text_first_version_is_a_publish() -> None:
    change = ResourceChange(
        target="dev",
        kind="Component",
        name="harden-cis",
        action=PUBLISH,
        version=VersionChange(None, "1.0.0", "new component"),
    )
    plan = Plan(
        targets=(TargetPlan(target="dev", region="eu-west-1", account="222222222222", changes=(change,)),),
        imagesync_version="0.1.0",
        manifest_digest="d",
        manifest_root="m",
    )
    out = text.render_plan(plan)
    assert "  + publish Component/harden-cis 1.0.0 (new component)" in out.splitlines()
    assert out.splitlines()[-1] == "Plan: 1 to publish, 0 to create, 0 to update, 0 to delete."


def test_text_empty_plan_ends_with_no_changes() -> None:
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
    assert "\x1b[" not in text.render_plan(plan, color=False)
    assert "\x1b[" not in json_render.render_plan(plan)
    assert "\x1b[32m+\x1b[0m create" in coloured
    assert "\x1b[33m~\x1b[0m update" in coloured
    assert "\x1b[31m-\x1b[0m delete" in coloured
    assert "\x1b[36m-/+\x1b[0m new version" in coloured
    assert ANSI.sub("", coloured) == plain


# --- JSON ---------------------------------------------------------------------------------------


def test_plan_schema_is_valid_draft_2020_12() -> None:
    schema = _plan_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("build", [mixed_plan, empty_plan])
def test_json_validates_against_schema(build: Any) -> None:
    document = json.loads(json_render.render_plan(build()))
    errors = sorted(Draft202012Validator(_plan_schema()).iter_errors(document), key=str)
    assert not errors, "\n".join(str(e) for e in errors)


def test_json_is_plan_to_json_apart_from_masking() -> None:
    plan = mixed_plan()
    out = json_render.render_plan(plan)
    assert out.endswith("}\n")
    document = json.loads(out)
    raw = json.loads(json.dumps(plan.to_json()))
    assert len(document["resource_changes"]) == 6  # the no-op is kept
    recipe = document["resource_changes"][2]
    assert recipe["address"] == "ImageRecipe/base"
    assert recipe["after"]["spec"]["components"][1]["parameters"][0]["value"] == "(sensitive)"
    assert recipe["before"]["spec"]["components"][1]["parameters"][0]["value"] == "(sensitive)"
    assert recipe["after"]["spec"]["components"][1]["parameters"][0]["name"] == "apiToken"
    assert recipe["diff"][1] == {"op": "change", "path": SENSITIVE_PARAM, "old": "(sensitive)", "new": "(sensitive)"}
    # Everything else is exactly Plan.to_json().
    for masked_doc in (document, raw):
        masked_doc["resource_changes"][2].pop("before")
        masked_doc["resource_changes"][2].pop("after")
        masked_doc["resource_changes"][2]["diff"].pop(1)
    assert document == raw


def test_json_schema_rejects_bad_documents() -> None:
    validator = Draft202012Validator(_plan_schema())
    good = json.loads(json_render.render_plan(mixed_plan()))
    assert validator.is_valid(good)
    bad_action = json.loads(json.dumps(good))
    bad_action["resource_changes"][0]["actions"] = ["create", "delete"]
    assert not validator.is_valid(bad_action)
    extra = json.loads(json.dumps(good))
    extra["summary"]["extra"] = 1
    assert not validator.is_valid(extra)
    missing = json.loads(json.dumps(good))
    del missing["resource_drift"][0]["reason"]
    assert not validator.is_valid(missing)


# --- sensitive values ---------------------------------------------------------------------------


def test_sensitive_values_never_appear() -> None:
    plan = mixed_plan()
    assert SECRET in json.dumps(plan.to_json())  # the fixture really holds it
    outputs = [text.render_plan(plan), text.render_plan(plan, color=True), json_render.render_plan(plan)]
    for out in outputs:
        assert SECRET not in out and OLD_SECRET not in out
        assert "(sensitive)" in out
    assert f"      ~ {SENSITIVE_PARAM}: (sensitive) -> (sensitive)" in outputs[0].splitlines()


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
    plan = Plan(
        targets=(TargetPlan(target="dev", region="eu-west-1", account="222222222222", changes=(change,)),),
        imagesync_version="0.1.0",
        manifest_digest="d",
        manifest_root="m",
    )
    out_text = text.render_plan(plan)
    out_json = json_render.render_plan(plan)
    for out in (out_text, out_json):
        assert SECRET not in out and OLD_SECRET not in out
    assert '~ spec.components: [{"componentArn": ' in out_text  # the broader value is still shown
    assert f"+ {SENSITIVE_PARAM}[0]: (sensitive)" in out_text
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
    allowed_own = {"imagesync.changes", "imagesync.render.mask"}
    for path in files:
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "imagesync":
                assert module in allowed_own, f"{path.name} imports {module}"
            else:
                assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {module}"
    assert not [m for m in _imports(RENDER_DIR / "mask.py") if m.startswith("imagesync")]
    init = ast.parse((RENDER_DIR / "__init__.py").read_text(encoding="utf-8"))
    assert len(init.body) == 1 and isinstance(init.body[0], ast.Expr)  # docstring only
