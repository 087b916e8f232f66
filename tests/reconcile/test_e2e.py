"""End-to-end reconcile: the example estate planned and applied against the sandbox.

Every test drives imagesync through its programmatic API or its CLI (a subprocess), and changes
the accounts behind imagesync's back with plain boto3; the sandbox is a real HTTP endpoint.
Fixtures (`estate`: empty accounts, `applied`: the examples already applied) are in conftest.py.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import botocore.exceptions
import jsonschema
import pytest

from imagesync.aws import CallCounter
from imagesync.execute import client_token
from imagesync.plan_model import Plan
from imagesync.sandbox.validation import validate_input

from .conftest import (
    ACCOUNTS,
    PLAN_SCHEMA,
    PROD,
    REGIONS,
    STAGING,
    TARGETS,
    Estate,
    change,
    manifest_resources,
    pending,
    warnings,
)

LIST_OPS = {
    "Component": "ListComponents",
    "Workflow": "ListWorkflows",
    "ImageRecipe": "ListImageRecipes",
    "ContainerRecipe": "ListContainerRecipes",
    "InfrastructureConfiguration": "ListInfrastructureConfigurations",
    "DistributionConfiguration": "ListDistributionConfigurations",
    "ImagePipeline": "ListImagePipelines",
    "LifecyclePolicy": "ListLifecyclePolicies",
}
GET_OPS = {  # kinds whose list cannot describe them: one Get each
    "Component": "GetComponent",
    "Workflow": "GetWorkflow",
    "InfrastructureConfiguration": "GetInfrastructureConfiguration",
    "DistributionConfiguration": "GetDistributionConfiguration",
    "LifecyclePolicy": "GetLifecyclePolicy",
}
PIPELINES = {PROD: ["api-container", "app-web", "app-worker", "hardened-al2023"],
             STAGING: ["app-web", "app-worker", "hardened-al2023"]}


def arn(target: str, kind: str, name: str, version: str | None = None) -> str:
    base = f"arn:aws:imagebuilder:{REGIONS[target]}:{ACCOUNTS[target]}:{kind}/{name}"
    return f"{base}/{version}" if version else base


def summary_is_empty(plan: Plan) -> bool:
    return plan.summary() == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 0}


def recipe_versions(estate: Estate, target: str, name: str) -> list[str]:
    """All live versions of one image recipe (the summary names the version only in its ARN)."""
    items = _all_pages(estate.client(target).list_image_recipes, "imageRecipeSummaryList", owner="Self")
    return sorted(i["arn"].rsplit("/", 1)[1] for i in items if i["name"] == name)


def component_versions(estate: Estate, target: str, name: str) -> list[str]:
    """All live versions of one component (ListComponents has one row per version)."""
    client = estate.client(target)
    out = []
    for item in _all_pages(client.list_components, "componentVersionList", owner="Self"):
        if item["name"] == name:
            out.append(item["version"])
    return sorted(out)


def _all_pages(method: Any, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = method(**kwargs)
        items.extend(page.get(key) or [])
        if not page.get("nextToken"):
            return items
        kwargs["nextToken"] = page["nextToken"]


def exists(fn: Any, **kwargs: Any) -> bool:
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException", exc
        return False
    return True


def infra(estate: Estate, target: str, name: str = "build-private") -> dict[str, Any]:
    return estate.client(target).get_infrastructure_configuration(
        infrastructureConfigurationArn=arn(target, "infrastructure-configuration", name)
    )["infrastructureConfiguration"]


def pipeline(estate: Estate, target: str, name: str) -> dict[str, Any]:
    return estate.client(target).get_image_pipeline(
        imagePipelineArn=arn(target, "image-pipeline", name))["imagePipeline"]


def update_infra_out_of_band(estate: Estate, target: str, **changes: Any) -> None:
    """What a console user does: re-send the live configuration with some fields changed."""
    live = infra(estate, target)
    model = estate.client(target).meta.service_model  # botocore's own model of the API
    members = model.operation_model("UpdateInfrastructureConfiguration").input_shape.members
    request = {k: v for k, v in live.items() if k in members}
    request.update(changes, infrastructureConfigurationArn=live["arn"], clientToken=str(uuid.uuid4()))
    estate.client(target).update_infrastructure_configuration(**request)


def diff_paths(plan: Plan, target: str, address: str) -> list[str]:
    return [d.path for d in change(plan, target, address).diff]


def operations(plan: Plan, target: str, address: str) -> list[str]:
    return [c.operation for c in change(plan, target, address).calls]


# --- 1. from empty accounts ----------------------------------------------------------------------


def test_apply_examples_to_empty_accounts_then_plan_is_empty(estate: Estate) -> None:
    wanted = manifest_resources(estate.root)
    first = estate.plan()
    assert [t.target for t in first.targets] == list(TARGETS)
    assert first.summary() == {"publish": 0, "create": sum(len(v) for v in wanted.values()), "update": 0,
                               "delete": 0, "drift": 0}
    for target in TARGETS:
        assert sorted(c.address for c in next(t for t in first.targets if t.target == target).pending) == sorted(
            f"{k}/{n}" for k, n in wanted[target])

    plan, outcomes = estate.apply()
    assert outcomes and all(o.ok and o.status == "created" for o in outcomes), outcomes
    assert len(outcomes) == sum(len(v) for v in wanted.values())

    after = estate.plan()
    assert not after.has_changes
    assert summary_is_empty(after)
    assert all(c.action == "no-op" for t in after.targets for c in t.changes)
    assert warnings(after) == []
    for target in TARGETS:
        tp = next(t for t in after.targets if t.target == target)
        assert not tp.drift and not tp.pending
        assert sorted(c.address for c in tp.changes) == sorted(f"{k}/{n}" for k, n in wanted[target])
        live = _all_pages(estate.client(target).list_image_pipelines, "imagePipelineList")
        assert sorted(p["name"] for p in live) == PIPELINES[target]


# --- 2. cascade -----------------------------------------------------------------------------------


def test_component_document_edit_cascades_to_recipe_and_pipeline_only(applied: Estate) -> None:
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    plan = applied.plan()
    for target in TARGETS:
        assert pending(plan, target) == [
            (target, "Component/harden-cis", "publish"),
            (target, "ImageRecipe/hardened-al2023", "publish"),
            (target, "ImagePipeline/hardened-al2023", "update"),
        ]
        comp = change(plan, target, "Component/harden-cis")
        assert (comp.version.previous, comp.version.next) == ("1.0.0", "1.0.1")
        paths = diff_paths(plan, target, "Component/harden-cis")
        assert any(p.startswith("spec.document.build.HardenSshd") for p in paths)
        recipe = change(plan, target, "ImageRecipe/hardened-al2023")
        assert (recipe.version.previous, recipe.version.next) == ("1.0.0", "1.0.1")
        assert "Component/harden-cis" in recipe.version.reason
        # app recipes take the base's image ARN (x.x.x), so they do not cascade
        for name in ("app-web", "app-worker"):
            assert change(plan, target, f"ImageRecipe/{name}").action == "no-op"
            assert change(plan, target, f"ImagePipeline/{name}").action == "no-op"
        pipe = change(plan, target, "ImagePipeline/hardened-al2023")
        assert "spec.imageRecipeArn" in [d.path for d in pipe.diff]
    assert plan.summary() == {"publish": 4, "create": 0, "update": 2, "delete": 0, "drift": 0}

    applied.apply_ok()

    for target in TARGETS:
        client = applied.client(target)
        recipe = client.get_image_recipe(imageRecipeArn=arn(target, "image-recipe", "hardened-al2023", "1.0.1"))
        pinned = [c["componentArn"] for c in recipe["imageRecipe"]["components"]]
        assert arn(target, "component", "harden-cis", "1.0.1") in pinned
        assert pipeline(applied, target, "hardened-al2023")["imageRecipeArn"] == arn(
            target, "image-recipe", "hardened-al2023", "1.0.1")
        # no --prune: the old versions are still there
        assert exists(client.get_image_recipe, imageRecipeArn=arn(target, "image-recipe", "hardened-al2023", "1.0.0"))
        assert exists(client.get_component, componentBuildVersionArn=arn(target, "component", "harden-cis", "1.0.0/1"))
        assert component_versions(applied, target, "harden-cis") == ["1.0.0", "1.0.1"]
        assert recipe_versions(applied, target, "app-web") == ["2.1.0"]
        assert recipe_versions(applied, target, "app-worker") == ["1.0.0"]


def test_shared_component_cascades_to_image_and_container_recipes(applied: Estate) -> None:
    applied.replace_text("components.yaml", "python3.11 python3.11-pip", "python3.12 python3.12-pip")
    plan = applied.plan()
    expected = {
        PROD: {("Component/install-worker-runtime", "publish"), ("ImageRecipe/app-worker", "publish"),
               ("ImagePipeline/app-worker", "update"), ("ContainerRecipe/api-container", "publish"),
               ("ImagePipeline/api-container", "update")},
        STAGING: {("Component/install-worker-runtime", "publish"), ("ImageRecipe/app-worker", "publish"),
                  ("ImagePipeline/app-worker", "update")},
    }
    for target in TARGETS:
        steps = [(a, act) for _, a, act in pending(plan, target)]
        assert set(steps) == expected[target] and len(steps) == len(expected[target])
        assert steps[0] == ("Component/install-worker-runtime", "publish")
        # dependencies first: each pipeline comes after the recipe it moves to
        assert steps.index(("ImagePipeline/app-worker", "update")) > steps.index(("ImageRecipe/app-worker", "publish"))
    assert change(plan, PROD, "ContainerRecipe/api-container").version.next == "1.0.1"
    applied.apply_ok()
    assert pipeline(applied, PROD, "api-container")["containerRecipeArn"] == arn(
        PROD, "container-recipe", "api-container", "1.0.1")


def test_workflow_document_change_moves_its_pipeline(applied: Estate) -> None:
    applied.replace_text("workflows/build-and-verify.yml", "waitFor: ssmAgent",
                         "waitFor: ssmAgent\n    timeoutSeconds: 900")
    plan = applied.plan()
    for target in TARGETS:
        assert pending(plan, target) == [
            (target, "Workflow/build-and-verify", "publish"),
            (target, "ImagePipeline/hardened-al2023", "update"),
        ]
    applied.apply_ok()
    workflows = pipeline(applied, STAGING, "hardened-al2023")["workflows"]
    assert [w["workflowArn"] for w in workflows] == [arn(STAGING, "workflow/build", "build-and-verify", "1.0.1")]


def test_formatting_order_and_explicit_defaults_are_not_changes(applied: Estate) -> None:
    """Normalization: comments, key order, set order and server defaults never diff."""
    applied.replace_text("infrastructure.yaml", "instanceTypes: [m7i.large, m6i.large]",
                         "instanceTypes: [m6i.large, m7i.large]")
    applied.replace_text("infrastructure.yaml", 'targetAccountIds: ["333333333333", "444444444444"]',
                         'targetAccountIds: ["444444444444", "333333333333"]')
    applied.replace_text("pipelines.yaml", "    scheduleExpression: cron(0 6 ? * * *)\n",
                         "    scheduleExpression: cron(0 6 ? * * *)\n    timezone: UTC\n")
    applied.replace_text("pipelines.yaml", "  status: ENABLED\n",
                         "  status: ENABLED\n  enhancedImageMetadataEnabled: true\n")
    applied.replace_text("components/harden-cis.yml",
                         "name: harden-cis\ndescription: CIS-style hardening for Amazon Linux 2023.\n",
                         "# reordered, with a comment\ndescription: CIS-style hardening for Amazon Linux 2023.\n"
                         "name: harden-cis\n")
    plan = applied.plan()
    assert not plan.has_changes, pending(plan)
    assert summary_is_empty(plan)


# --- 3. bump rules --------------------------------------------------------------------------------


def test_bump_minor(applied: Estate) -> None:
    applied.edit("components.yaml", "Component", "smoke-test", lambda d: d["spec"].update(bump="minor"))
    applied.replace_text("components/smoke-test.yml", "timeoutSeconds: 300", "timeoutSeconds: 600")
    plan = applied.plan()
    for target in TARGETS:
        comp = change(plan, target, "Component/smoke-test")
        assert comp.action == "publish"
        assert (comp.version.previous, comp.version.next) == ("1.0.0", "1.1.0")
        assert "minor" in comp.version.reason
    applied.apply_ok()
    assert component_versions(applied, PROD, "smoke-test") == ["1.0.0", "1.1.0"]


def test_bump_auto_removed_parameter_is_major(applied: Estate) -> None:
    def drop_parameter(doc: dict[str, Any]) -> None:
        for comp in doc["spec"]["components"]:
            if comp.get("ref") == "harden-cis":
                comp.pop("parameters")

    path = applied.root / "components" / "harden-cis.yml"
    text = path.read_text()
    start, end = text.index("parameters:\n"), text.index("constants:\n")
    path.write_text(text[:start] + text[end:].replace("{{ AllowedSshUsers }}", "ec2-user"))
    applied.edit("recipes.yaml", "ImageRecipe", "hardened-al2023", drop_parameter)

    plan = applied.plan()
    for target in TARGETS:
        comp = change(plan, target, "Component/harden-cis")
        assert (comp.action, comp.version.previous, comp.version.next) == ("publish", "1.0.0", "2.0.0")
        assert "major" in comp.version.reason
        assert pending(plan, target) == [
            (target, "Component/harden-cis", "publish"),
            (target, "ImageRecipe/hardened-al2023", "publish"),
            (target, "ImagePipeline/hardened-al2023", "update"),
        ]
    applied.apply_ok()
    assert component_versions(applied, STAGING, "harden-cis") == ["1.0.0", "2.0.0"]


def test_bump_auto_added_step_is_minor(applied: Estate) -> None:
    applied.replace_text("components/harden-cis.yml", "  - name: validate\n    steps:\n",
                         "  - name: validate\n    steps:\n      - name: Extra\n        action: ExecuteBash\n"
                         "        inputs:\n          commands: [echo hi]\n")
    plan = applied.plan(targets=[STAGING])
    comp = change(plan, STAGING, "Component/harden-cis")
    assert (comp.action, comp.version.next) == ("publish", "1.1.0")
    assert [(d.op, d.path) for d in comp.diff] == [("add", "spec.document.validate.Extra")]


def test_raising_spec_version_publishes_it(applied: Estate) -> None:
    applied.edit("components.yaml", "Component", "harden-cis", lambda d: d["spec"].update(version="3.0.0"))
    plan = applied.plan()
    for target in TARGETS:
        comp = change(plan, target, "Component/harden-cis")
        assert (comp.action, comp.version.previous, comp.version.next) == ("publish", "1.0.0", "3.0.0")
    applied.apply_ok()
    for target in TARGETS:
        assert component_versions(applied, target, "harden-cis") == ["1.0.0", "3.0.0"]
        recipe = applied.client(target).get_image_recipe(
            imageRecipeArn=arn(target, "image-recipe", "hardened-al2023", "1.0.1"))["imageRecipe"]
        assert arn(target, "component", "harden-cis", "3.0.0") in [c["componentArn"] for c in recipe["components"]]


def test_inline_document_change_cascades_to_app_web(applied: Estate) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["spec"]["document"]["phases"][0]["steps"][0]["inputs"]["commands"].append("systemctl start nginx")

    applied.edit("components.yaml", "Component", "install-nginx", edit)
    plan = applied.plan()
    for target in TARGETS:
        assert pending(plan, target) == [
            (target, "Component/install-nginx", "publish"),
            (target, "ImageRecipe/app-web", "publish"),
            (target, "ImagePipeline/app-web", "update"),
        ]
        assert change(plan, target, "Component/install-nginx").version.next == "1.2.1"
        assert change(plan, target, "ImageRecipe/app-web").version.next == "2.1.1"
    applied.apply_ok()
    for target in TARGETS:
        assert pipeline(applied, target, "app-web")["imageRecipeArn"] == arn(target, "image-recipe", "app-web", "2.1.1")
        assert pipeline(applied, target, "app-worker")["imageRecipeArn"] == arn(
            target, "image-recipe", "app-worker", "1.0.0")


# --- 4. mutable kinds -----------------------------------------------------------------------------


def _set(path: tuple[str, ...], value: Any) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        node = doc["spec"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


MUTABLE_EDITS = [
    pytest.param("infrastructure.yaml", "InfrastructureConfiguration", "build-private",
                 ("instanceTypes",), ["m7i.xlarge", "m6i.large"], id="infra-instanceTypes"),
    pytest.param("infrastructure.yaml", "DistributionConfiguration", "org-wide",
                 ("description",), "AMIs in two regions.", id="distribution-description"),
    pytest.param("pipelines.yaml", "ImagePipeline", "hardened-al2023",
                 ("schedule", "scheduleExpression"), "cron(0 5 ? * MON *)", id="pipeline-schedule"),
    pytest.param("lifecycle.yaml", "LifecyclePolicy", "golden-image-retention",
                 ("description",), "Deprecate after 90 days.", id="lifecycle-description"),
]


@pytest.mark.parametrize(("filename", "kind", "name", "path", "value"), MUTABLE_EDITS)
def test_mutable_field_change_is_one_update(
    applied: Estate, filename: str, kind: str, name: str, path: tuple[str, ...], value: Any
) -> None:
    applied.edit(filename, kind, name, _set(path, value))
    plan = applied.plan()
    address = f"{kind}/{name}"
    dotted = "spec." + ".".join(path)
    for target in TARGETS:
        assert pending(plan, target) == [(target, address, "update")]
        paths = diff_paths(plan, target, address)
        assert paths and all(p.startswith(dotted) for p in paths), paths
        assert operations(plan, target, address)[0] == f"Update{kind}"
        assert change(plan, target, address).version is None
    applied.apply_ok()
    if kind == "InfrastructureConfiguration":
        assert sorted(infra(applied, STAGING)["instanceTypes"]) == sorted(value)
    elif kind == "ImagePipeline":
        assert pipeline(applied, PROD, name)["schedule"]["scheduleExpression"] == value


def test_removing_optional_field_clears_it_live(applied: Estate) -> None:
    applied.edit("pipelines.yaml", "ImagePipeline", "app-web", lambda d: d["spec"].pop("description"))
    plan = applied.plan()
    for target in TARGETS:
        assert pending(plan, target) == [(target, "ImagePipeline/app-web", "update")]
        items = change(plan, target, "ImagePipeline/app-web").diff
        assert [(d.op, d.path) for d in items] == [("remove", "spec.description")]
    applied.apply_ok()
    for target in TARGETS:
        assert not pipeline(applied, target, "app-web").get("description")
        assert pipeline(applied, target, "app-worker")["description"]


# --- 5. tags --------------------------------------------------------------------------------------


def test_tag_only_change_updates_tags_without_new_version(applied: Estate) -> None:
    add_tag = lambda d: d["spec"].update(tags={"team": "platform"})  # noqa: E731
    applied.edit("components.yaml", "Component", "harden-cis", add_tag)
    applied.edit("infrastructure.yaml", "InfrastructureConfiguration", "build-private", add_tag)
    plan = applied.plan()
    for target in TARGETS:
        assert pending(plan, target) == [
            (target, "Component/harden-cis", "update"),
            (target, "InfrastructureConfiguration/build-private", "update"),
        ]
        for address in ("Component/harden-cis", "InfrastructureConfiguration/build-private"):
            c = change(plan, target, address)
            assert c.version is None
            assert [(d.op, d.path, d.new) for d in c.diff] == [("add", "tags.team", "platform")]
            assert operations(plan, target, address) == ["TagResource"]
    applied.apply_ok()
    for target in TARGETS:
        client = applied.client(target)
        comp = client.get_component(componentBuildVersionArn=arn(target, "component", "harden-cis", "1.0.0/1"))
        assert comp["component"]["tags"]["team"] == "platform"
        assert infra(applied, target)["tags"]["team"] == "platform"
        assert component_versions(applied, target, "harden-cis") == ["1.0.0"]

    # and back: removing the tag from the manifest untags it
    drop_tags = lambda d: d["spec"].pop("tags")  # noqa: E731
    applied.edit("components.yaml", "Component", "harden-cis", drop_tags)
    applied.edit("infrastructure.yaml", "InfrastructureConfiguration", "build-private", drop_tags)
    plan = applied.plan()
    for target in TARGETS:
        for address in ("Component/harden-cis", "InfrastructureConfiguration/build-private"):
            assert [(d.op, d.path) for d in change(plan, target, address).diff] == [("remove", "tags.team")]
            assert operations(plan, target, address) == ["UntagResource"]
    applied.apply_ok()
    assert "team" not in infra(applied, PROD)["tags"]


# --- 6. rename ------------------------------------------------------------------------------------


def _rename_infra(estate: Estate) -> None:
    estate.replace_text("infrastructure.yaml", "  name: build-private\n", "  name: build-private-v2\n")
    estate.replace_text("pipelines.yaml", "{ref: build-private}", "{ref: build-private-v2}")


def test_rename_without_prune_keeps_the_old_one(applied: Estate) -> None:
    _rename_infra(applied)
    plan = applied.plan()
    for target in TARGETS:
        steps = pending(plan, target)
        assert steps[0] == (target, "InfrastructureConfiguration/build-private-v2", "create")
        assert sorted(steps[1:]) == [(target, f"ImagePipeline/{p}", "update") for p in PIPELINES[target]]
        (warning,) = warnings(plan, target)
        assert "--prune" in warning and "InfrastructureConfiguration/build-private" in warning
    plan, outcomes = applied.apply()
    assert all(o.ok for o in outcomes)
    after = applied.plan()
    assert not after.has_changes
    for target in TARGETS:
        assert infra(applied, target)["name"] == "build-private"
        assert pipeline(applied, target, "app-web")["infrastructureConfigurationArn"] == arn(
            target, "infrastructure-configuration", "build-private-v2")
        assert any("--prune" in w for w in warnings(after, target))


def test_rename_with_prune_deletes_the_old_one_after_pipelines_move(applied: Estate) -> None:
    _rename_infra(applied)
    plan = applied.plan(prune=True)
    for target in TARGETS:
        assert pending(plan, target)[-1] == (target, "InfrastructureConfiguration/build-private", "delete")
        assert [a for _, _, a in pending(plan, target)].count("delete") == 1
    _, outcomes = applied.apply(prune=True)
    assert all(o.ok for o in outcomes), outcomes
    for target in TARGETS:
        mine = [(o.address, o.status) for o in outcomes if o.target == target]
        assert mine[-1] == ("InfrastructureConfiguration/build-private", "deleted")
        assert {a for a, s in mine[:-1] if s == "updated"} == {f"ImagePipeline/{p}" for p in PIPELINES[target]}
        assert not exists(applied.client(target).get_infrastructure_configuration,
                          infrastructureConfigurationArn=arn(target, "infrastructure-configuration", "build-private"))
        assert infra(applied, target, "build-private-v2")["instanceTypes"]
    after = applied.plan(prune=True)
    assert not after.has_changes and warnings(after) == []


# --- 7. removal and pruning -----------------------------------------------------------------------


def test_removed_pipeline_is_deleted_only_with_prune(applied: Estate) -> None:
    applied.remove("pipelines.yaml", "ImagePipeline", "app-worker")
    plan = applied.plan()
    assert not plan.has_changes
    for target in TARGETS:
        assert any("--prune" in w and "ImagePipeline/app-worker" in w for w in warnings(plan, target))
    applied.apply()
    assert pipeline(applied, PROD, "app-worker")

    pruning = applied.plan(prune=True)
    for target in TARGETS:
        assert pending(pruning, target) == [(target, "ImagePipeline/app-worker", "delete")]
    assert pruning.summary()["delete"] == 2
    applied.apply_ok(prune=True)
    for target in TARGETS:
        assert not exists(applied.client(target).get_image_pipeline,
                          imagePipelineArn=arn(target, "image-pipeline", "app-worker"))
        assert pipeline(applied, target, "app-web")


def test_prune_disabled_annotation_keeps_a_removed_pipeline(applied: Estate) -> None:
    applied.edit("pipelines.yaml", "ImagePipeline", "app-worker",
                 lambda d: d["metadata"].update(annotations={"imagesync/prune": "disabled"}))
    plan = applied.plan()
    for target in TARGETS:
        assert pending(plan, target) == [(target, "ImagePipeline/app-worker", "update")]
    applied.apply_ok()
    assert pipeline(applied, STAGING, "app-worker")["tags"]["imagesync:prune"] == "disabled"

    applied.remove("pipelines.yaml", "ImagePipeline", "app-worker")
    pruning = applied.plan(prune=True)
    assert not pruning.has_changes
    for target in TARGETS:
        assert any("ImagePipeline/app-worker" in w and "prune: disabled" in w for w in warnings(pruning, target))
    _, outcomes = applied.apply(prune=True)
    assert outcomes == []
    for target in TARGETS:
        assert pipeline(applied, target, "app-worker")


@pytest.mark.parametrize("how", ["pruned", "deleted-out-of-band"])
def test_deleted_pipeline_is_recreated(applied: Estate, how: str) -> None:
    if how == "pruned":
        original = (applied.root / "pipelines.yaml").read_text()
        applied.remove("pipelines.yaml", "ImagePipeline", "app-worker")
        applied.apply_ok(prune=True)
        (applied.root / "pipelines.yaml").write_text(original)
    else:
        applied.client(STAGING).delete_image_pipeline(imagePipelineArn=arn(STAGING, "image-pipeline", "app-worker"))
    assert (STAGING, "ImagePipeline/app-worker", "create") in pending(applied.plan())
    _, outcomes = applied.apply()
    assert all(o.ok for o in outcomes)
    assert exists(applied.client(STAGING).get_image_pipeline,
                  imagePipelineArn=arn(STAGING, "image-pipeline", "app-worker"))
    assert not applied.plan().has_changes


def test_retention_deletes_old_versions_dependents_first(applied: Estate) -> None:
    applied.replace_text("imagesync.yaml", "retainVersions: 3", "retainVersions: 1")
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    plan = applied.plan(prune=True)
    assert (PROD, "ImageRecipe/hardened-al2023", "delete-versions") in pending(plan)
    _, outcomes = applied.apply(prune=True)
    assert all(o.ok for o in outcomes)
    for target in TARGETS:
        assert recipe_versions(applied, target, "hardened-al2023") == ["1.0.1"]
        assert component_versions(applied, target, "harden-cis") == ["1.0.1"]
    assert not applied.plan(prune=True).has_changes


def _remove_all_manifests(estate: Estate) -> None:
    """Leave only imagesync.yaml: every target's manifests are gone (documents and all)."""
    for path in list(estate.root.iterdir()):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.name != "imagesync.yaml":
            path.unlink()


def test_emptied_target_is_not_pruned_without_allow_empty(applied: Estate) -> None:
    _remove_all_manifests(applied)
    plan = applied.plan(prune=True)
    assert not plan.has_changes
    for target in TARGETS:
        (warning,) = warnings(plan, target)
        assert "--allow-empty" in warning and target in warning
    applied.mark()
    _, outcomes = applied.apply(prune=True)
    assert outcomes == [] and applied.writes() == {}

    allowed = applied.plan(prune=True, allow_empty=True)
    assert allowed.summary()["delete"] > 0
    assert {a for _, _, a in pending(allowed)} == {"delete"}


def test_unmanaged_resources_are_never_deleted(applied: Estate) -> None:
    for target in TARGETS:
        client = applied.client(target)
        live = infra(applied, target)
        base = {"instanceProfileName": live["instanceProfileName"], "clientToken": str(uuid.uuid4())}
        client.create_infrastructure_configuration(name="hand-made", **base)
        client.create_infrastructure_configuration(  # carries our tags, copied from another resource
            name="copied-tags", tags=dict(live["tags"]), **{**base, "clientToken": str(uuid.uuid4())})
        comp = client.get_component(
            componentBuildVersionArn=arn(target, "component", "harden-cis", "1.0.0/1"))["component"]
        client.create_component(name="copied-component", semanticVersion="1.0.0", platform="Linux",
                                data=comp["data"], tags=dict(comp["tags"]), clientToken=str(uuid.uuid4()))
    expected = manifest_resources(applied.root)
    _remove_all_manifests(applied)

    plan = applied.plan(prune=True, allow_empty=True)
    for target in TARGETS:
        deleted = sorted(c.address for c in next(t for t in plan.targets if t.target == target).pending)
        assert all(c.action == "delete" for c in next(t for t in plan.targets if t.target == target).pending)
        assert deleted == sorted(f"{k}/{n}" for k, n in expected[target])
    _, outcomes = applied.apply(prune=True, allow_empty=True)
    assert outcomes and all(o.ok and o.status == "deleted" for o in outcomes), [o for o in outcomes if not o.ok]
    for target in TARGETS:
        client = applied.client(target)
        names = sorted(i["name"] for i in _all_pages(client.list_infrastructure_configurations,
                                                     "infrastructureConfigurationSummaryList"))
        assert names == ["copied-tags", "hand-made"]
        assert [c["name"] for c in _all_pages(client.list_components, "componentVersionList", owner="Self")] == [
            "copied-component"]
        assert _all_pages(client.list_image_pipelines, "imagePipelineList") == []
    assert not applied.plan(prune=True, allow_empty=True).has_changes


# --- 8. drift -------------------------------------------------------------------------------------


def test_out_of_band_field_change_is_drift_and_restored(applied: Estate) -> None:
    update_infra_out_of_band(applied, PROD, instanceTypes=["t3.micro"])
    plan = applied.plan()
    assert pending(plan) == [(PROD, "InfrastructureConfiguration/build-private", "update")]
    drift = next(t for t in plan.targets if t.target == PROD).drift
    assert [(d.address, d.action) for d in drift] == [("InfrastructureConfiguration/build-private", "update")]
    assert any(d.path.startswith("spec.instanceTypes") for d in drift[0].diff)
    assert plan.summary()["drift"] == 1
    assert not next(t for t in plan.targets if t.target == STAGING).drift
    applied.apply_ok()
    assert sorted(infra(applied, PROD)["instanceTypes"]) == ["m6i.large", "m7i.large"]
    assert applied.plan().summary()["drift"] == 0


def test_out_of_band_pipeline_replacement_is_drift_and_restored(applied: Estate) -> None:
    live = pipeline(applied, PROD, "app-web")
    applied.client(PROD).update_image_pipeline(  # a full replacement that drops and changes fields
        imagePipelineArn=live["arn"], imageRecipeArn=live["imageRecipeArn"],
        infrastructureConfigurationArn=live["infrastructureConfigurationArn"],
        distributionConfigurationArn=live["distributionConfigurationArn"],
        enhancedImageMetadataEnabled=False, schedule={"scheduleExpression": "cron(0 1 ? * * *)"},
        clientToken=str(uuid.uuid4()))
    plan = applied.plan()
    assert pending(plan) == [(PROD, "ImagePipeline/app-web", "update")]
    (drift,) = next(t for t in plan.targets if t.target == PROD).drift
    assert {d.path for d in drift.diff} >= {"spec.description", "spec.schedule.scheduleExpression",
                                           "spec.enhancedImageMetadataEnabled"}
    applied.apply_ok()
    restored = pipeline(applied, PROD, "app-web")
    for key in ("description", "schedule", "imageScanningConfiguration", "enhancedImageMetadataEnabled"):
        assert restored.get(key) == live.get(key), key


def test_component_version_published_outside_imagesync_is_drift(applied: Estate) -> None:
    client = applied.client(STAGING)
    client.create_component(name="harden-cis", semanticVersion="1.5.0", platform="Linux",
                            data=(applied.root / "components" / "harden-cis.yml").read_text().replace("4", "5"),
                            clientToken=str(uuid.uuid4()))
    plan = applied.plan()
    assert pending(plan, PROD) == []
    assert pending(plan, STAGING) == [
        (STAGING, "Component/harden-cis", "publish"),
        (STAGING, "ImageRecipe/hardened-al2023", "publish"),
        (STAGING, "ImagePipeline/hardened-al2023", "update"),
    ]
    comp = change(plan, STAGING, "Component/harden-cis")
    assert (comp.version.previous, comp.version.next) == ("1.5.0", "1.5.1")
    assert "outside imagesync" in comp.version.reason
    (drift,) = next(t for t in plan.targets if t.target == STAGING).drift
    assert drift.address == "Component/harden-cis" and drift.version.next == "1.5.1"
    applied.apply_ok()
    assert component_versions(applied, STAGING, "harden-cis") == ["1.0.0", "1.5.0", "1.5.1"]
    recipe = client.get_image_recipe(
        imageRecipeArn=arn(STAGING, "image-recipe", "hardened-al2023", "1.0.1"))["imageRecipe"]
    assert arn(STAGING, "component", "harden-cis", "1.5.1") in [c["componentArn"] for c in recipe["components"]]
    assert applied.plan().summary()["drift"] == 0


def test_untagged_imagesync_tag_is_restored(applied: Estate) -> None:
    target_arn = arn(STAGING, "infrastructure-configuration", "build-private")
    before = infra(applied, STAGING)["tags"]
    applied.client(STAGING).untag_resource(resourceArn=target_arn, tagKeys=["imagesync:content-hash"])
    plan = applied.plan()
    assert pending(plan) == [(STAGING, "InfrastructureConfiguration/build-private", "update")]
    assert operations(plan, STAGING, "InfrastructureConfiguration/build-private") == ["TagResource"]
    applied.apply_ok()
    assert infra(applied, STAGING)["tags"] == before


# --- 9. target selection and refresh-only ----------------------------------------------------------


def test_target_selection_plans_only_that_target(applied: Estate) -> None:
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    counter = CallCounter()
    plan = applied.plan(counter=counter, targets=[STAGING])
    assert [t.target for t in plan.targets] == [STAGING]
    assert {t for t, _, _ in pending(plan)} == {STAGING} and len(pending(plan)) == 3
    assert all(counter.counts[op] == 1 for op in LIST_OPS.values())
    applied.apply_ok(targets=[STAGING])
    assert component_versions(applied, PROD, "harden-cis") == ["1.0.0"]
    assert component_versions(applied, STAGING, "harden-cis") == ["1.0.0", "1.0.1"]


def test_refresh_only_reports_drift_and_plans_nothing(applied: Estate) -> None:
    update_infra_out_of_band(applied, STAGING, instanceTypes=["t3.micro"])
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    plan = applied.plan(refresh_only=True)
    assert not plan.has_changes and pending(plan) == []
    assert [(t.target, d.address) for t in plan.targets for d in t.drift] == [
        (STAGING, "InfrastructureConfiguration/build-private")]
    assert plan.summary() == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 1}


# --- 10. saved plans ------------------------------------------------------------------------------


def _save_plan(estate: Estate, *extra: str) -> Path:
    out = estate.workdir / "p.json"
    result = estate.run("plan", str(estate.root), "--sandbox", estate.sb.endpoint_url, "--out", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return out


def test_saved_plan_applies(applied: Estate) -> None:
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    saved = _save_plan(applied)
    assert json.loads(saved.read_text())["summary"]["publish"] == 4
    result = applied.run("apply", str(saved), "--sandbox", applied.sb.endpoint_url, "--auto-approve")
    assert result.returncode == 0, result.stderr
    assert "Apply complete" in result.stdout
    assert not applied.plan().has_changes
    assert component_versions(applied, PROD, "harden-cis") == ["1.0.0", "1.0.1"]


def test_saved_plan_refused_when_live_state_changed(applied: Estate) -> None:
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    saved = _save_plan(applied)
    update_infra_out_of_band(applied, PROD, instanceTypes=["t3.micro"])
    applied.mark()
    result = applied.cli("apply", str(saved), "--sandbox", applied.sb.endpoint_url, "--auto-approve")
    assert result.returncode == 1
    assert "prod-use1:InfrastructureConfiguration/build-private" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert applied.writes() == {}


def test_saved_plan_refused_when_manifests_changed(applied: Estate) -> None:
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    saved = _save_plan(applied)
    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 3", "MaxAuthTries 2")
    applied.mark()
    result = applied.run("apply", str(saved), "--sandbox", applied.sb.endpoint_url, "--auto-approve")
    assert result.returncode == 1
    assert "manifests" in result.stderr and str(applied.root) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert applied.writes() == {}


@pytest.mark.parametrize("content", ["this is { not json", '{"format_version": "1"}', "[]"])
def test_garbage_plan_file_is_refused(applied: Estate, content: str) -> None:
    bad = applied.workdir / "garbage.json"
    bad.write_text(content)
    run = applied.cli if content.startswith("this") else applied.run  # one of them as a real process
    result = run("apply", str(bad), "--sandbox", applied.sb.endpoint_url, "--auto-approve")
    assert result.returncode == 1
    assert "not a saved imagesync plan" in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert applied.stats()["total"] == 0


# --- 11. CLI --------------------------------------------------------------------------------------


def test_plan_json_matches_schema_and_detailed_exitcode(applied: Estate) -> None:
    url = applied.sb.endpoint_url
    quiet = applied.run("plan", str(applied.root), "--sandbox", url, "--detailed-exitcode")
    assert quiet.returncode == 0, quiet.stderr

    applied.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    applied.edit("pipelines.yaml", "ImagePipeline", "app-web", lambda d: d["spec"].pop("description"))
    update_infra_out_of_band(applied, PROD, instanceTypes=["t3.micro"])
    result = applied.cli("plan", str(applied.root), "--sandbox", url, "--format", "json", "--detailed-exitcode")
    assert result.returncode == 2, result.stderr
    document = json.loads(result.stdout)
    schema = json.loads(PLAN_SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(document)
    assert document["summary"] == {"publish": 4, "create": 0, "update": 5, "delete": 0, "drift": 1}
    assert [d["address"] for d in document["resource_drift"]] == [f"{PROD}:InfrastructureConfiguration/build-private"]
    assert document["applyable"] is True and document["errored"] is False and document["complete"] is True
    actions = Counter(c["change"]["actions"][0] for c in document["resource_changes"])
    assert actions["publish"] == 4 and actions["update"] == 5

    staging = applied.run("plan", str(applied.root), "--sandbox", url, "--format", "json", "--target", STAGING)
    assert staging.returncode == 0, staging.stderr
    staging_doc = json.loads(staging.stdout)
    jsonschema.validators.validator_for(schema)(schema).validate(staging_doc)
    assert [t["name"] for t in staging_doc["targets"]] == [STAGING]
    assert {c["target"] for c in staging_doc["resource_changes"]} == {STAGING}


PROBLEM = re.compile(r"(?P<path>\S*infrastructure\.yaml):(?P<line>\d+):(?P<col>\d+): error: .*bogus")


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_bad_manifests_exit_1_with_location_and_no_writes(estate: Estate, command: str) -> None:
    estate.replace_text("infrastructure.yaml", "  terminateInstanceOnFailure: true\n",
                        "  terminateInstanceOnFailure: true\n  bogus: true\n")
    extra = ["--auto-approve"] if command == "apply" else []
    run = estate.cli if command == "plan" else estate.run
    result = run(command, str(estate.root), "--sandbox", estate.sb.endpoint_url, *extra)
    assert result.returncode == 1
    match = PROBLEM.search(result.stderr)
    assert match, result.stderr
    line = (estate.root / "infrastructure.yaml").read_text().splitlines()[int(match["line"]) - 1]
    assert "bogus" in line
    assert "Traceback" not in result.stderr + result.stdout
    assert estate.writes() == {}
    # plan starts listing while the manifests load (apply reads only under its locks): at most some
    # list calls were made before the manifests failed, and never a read they would have asked for.
    made = set(estate.calls())
    assert all(op.startswith("List") for op in made) if command == "plan" else not made, made


def test_apply_without_auto_approve_and_no_tty_refuses(estate: Estate) -> None:
    result = estate.cli("apply", str(estate.root), "--sandbox", estate.sb.endpoint_url)
    assert result.returncode == 1
    assert "--auto-approve" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert estate.writes() == {}
    assert estate.plan().summary()["create"] == sum(len(v) for v in manifest_resources(estate.root).values())


# --- 12. call budget ------------------------------------------------------------------------------


def _expected_noop_calls(root: Path, extra_components: dict[str, int] | None = None) -> dict[str, int]:
    """One page per kind per target, plus a Get per describable resource the manifests use."""
    extra_components = extra_components or {}
    wanted = manifest_resources(root)
    expected: Counter[str] = Counter()
    for target in TARGETS:
        kinds = Counter(kind for kind, _ in wanted[target])
        for kind, op in LIST_OPS.items():
            live = kinds[kind] + (extra_components.get(target, 0) if kind == "Component" else 0)
            expected[op] += max(1, math.ceil(live / 25))
        for kind, op in GET_OPS.items():
            expected[op] += kinds[kind] + (extra_components.get(target, 0) if kind == "Component" else 0)
    return {op: n for op, n in expected.items() if n}


def test_noop_plan_call_budget(applied: Estate) -> None:
    expected = _expected_noop_calls(applied.root)
    assert sum(n for op, n in expected.items() if op.startswith("List")) == 16
    counter = CallCounter()
    plan = applied.plan(counter=counter)
    assert not plan.has_changes
    assert counter.counts == expected
    assert applied.calls() == expected
    assert counter.retries == 0


def test_call_budget_grows_by_extra_pages_and_gets(applied: Estate) -> None:
    client = applied.client(PROD)
    data = "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n      - name: Hi\n        action: ExecuteBash\n" \
           "        inputs:\n          commands: [echo hi]\n"
    for i in range(30):
        client.create_component(name=f"extra-{i:02d}", semanticVersion="1.0.0", platform="Linux", data=data,
                                clientToken=str(uuid.uuid4()))
    baseline = _expected_noop_calls(applied.root)
    expected = _expected_noop_calls(applied.root, {PROD: 30})
    assert expected["ListComponents"] == baseline["ListComponents"] + 1
    assert expected["GetComponent"] == baseline["GetComponent"] + 30
    applied.mark()
    counter = CallCounter()
    plan = applied.plan(counter=counter)
    assert not plan.has_changes and warnings(plan) == []
    assert counter.counts == expected
    assert applied.calls() == expected


# --- 13. every call is valid against the service model --------------------------------------------


BUILD_LISTS = {
    "DeleteComponent": ("ListComponentBuildVersions", "componentBuildVersionArn", "componentVersionArn"),
    "DeleteWorkflow": ("ListWorkflowBuildVersions", "workflowBuildVersionArn", "workflowVersionArn"),
}


def _validate_every_call(plan: Plan) -> int:
    checked = 0
    for tp in plan.targets:
        for ch in tp.pending:
            for n, api_call in enumerate(ch.calls):
                params = dict(api_call.params)
                if api_call.idempotent_token:
                    params["clientToken"] = client_token(plan.plan_id, tp.target, ch, n, api_call)
                if api_call.operation in BUILD_LISTS and not params[BUILD_LISTS[api_call.operation][1]].rsplit(
                        "/", 1)[-1].isdigit():
                    # The executor deletes a version through its builds: it lists them first, then
                    # deletes each build (build ARNs come from the service, so they are valid).
                    list_op, arn_member, version_member = BUILD_LISTS[api_call.operation]
                    validate_input(list_op, {version_member: params[arn_member]})
                else:
                    validate_input(api_call.operation, params)
                checked += 1
    return checked


def test_every_planned_call_is_valid_against_the_model(estate: Estate) -> None:
    creates = estate.plan()
    assert _validate_every_call(creates) == creates.summary()["create"]
    _, outcomes = estate.apply()
    assert outcomes and all(o.ok for o in outcomes)

    # updates, tag changes, publishes and deletes, too
    estate.replace_text("components/harden-cis.yml", "MaxAuthTries 4", "MaxAuthTries 3")
    estate.edit("pipelines.yaml", "ImagePipeline", "app-web", lambda d: d["spec"].pop("description"))
    estate.edit("infrastructure.yaml", "InfrastructureConfiguration", "build-private",
                lambda d: d["spec"].update(tags={"team": "platform"}))
    estate.remove("pipelines.yaml", "ImagePipeline", "app-worker")
    mixed = estate.plan(prune=True)
    assert {c.action for t in mixed.targets for c in t.pending} == {"publish", "update", "delete"}
    assert _validate_every_call(mixed) >= len(pending(mixed))
    _, outcomes = estate.apply(prune=True)
    assert outcomes and all(o.ok for o in outcomes), [o for o in outcomes if not o.ok]

    _remove_all_manifests(estate)
    everything = estate.plan(prune=True, allow_empty=True)
    assert _validate_every_call(everything) >= everything.summary()["delete"] > 0
