"""The plan model's own rules: typed deletions, qualified addresses, scrubbing, parameters by name."""

from __future__ import annotations

import pytest

from imagesync.diff import document_diff
from imagesync.manifest.awstoe import load_document
from imagesync.plan_model import (
    DELETE,
    DELETE_VERSIONS,
    PUBLISH,
    Conflict,
    Plan,
    ResourceChange,
    TargetPlan,
    VersionChange,
    parse_path,
)

TOKEN = "ghp_0123456789abcdefSECRET"


def _plan(*changes: ResourceChange, conflicts: tuple[Conflict, ...] = (), **options: object) -> Plan:
    target = TargetPlan("t1", "us-east-1", "111111111111", changes=changes, conflicts=conflicts)
    return Plan((target,), "0", "d", "m", options=options)


def test_whole_deletes_and_version_deletes_are_distinct_in_json() -> None:
    whole = ResourceChange("t1", "Component", "old", DELETE, deleted_versions=("1.0.1", "1.0.0"))
    retained = ResourceChange("t1", "ImageRecipe", "r", DELETE_VERSIONS, deleted_versions=("1.0.0",))
    doc = _plan(whole, retained).to_json()
    assert [c["change"]["actions"] for c in doc["resource_changes"]] == [["delete"], ["delete-versions"]]
    assert [c["deleted_versions"] for c in doc["resource_changes"]] == [["1.0.1", "1.0.0"], ["1.0.0"]]
    assert [c["address"] for c in doc["resource_changes"]] == ["t1:Component/old", "t1:ImageRecipe/r"]
    assert doc["summary"]["delete"] == 2


@pytest.mark.parametrize(
    ("changes", "conflicts", "options", "expected"),
    [
        ((), (), {}, (False, False, True)),
        ((ResourceChange("t1", "Component", "c", PUBLISH, version=VersionChange("1.0.0", "1.0.1", "x")),), (), {},
         (True, False, True)),
        ((), (Conflict("t1", "Component/c", "not ours"),), {}, (False, True, False)),
        ((), (), {"refresh_only": True}, (False, False, False)),
        ((), (), {"targets": ["t1"]}, (False, False, False)),
    ],
)
def test_applyable_errored_complete(
    changes: tuple[ResourceChange, ...], conflicts: tuple[Conflict, ...], options: dict[str, object],
    expected: tuple[bool, bool, bool],
) -> None:
    doc = _plan(*changes, conflicts=conflicts, **options).to_json()
    assert (doc["applyable"], doc["errored"], doc["complete"]) == expected


def test_scrub_masks_every_sensitive_value_and_its_lines() -> None:
    document = f"name: x\nphases:\n  - steps:\n      - commands: [curl -H 'Authorization: {TOKEN}']\n"
    change = ResourceChange(
        "t1", "Component", "c", PUBLISH,
        after={"spec": {"document": document, "platform": "Linux"}},
        sensitive_paths=("spec.document",),
    )
    echoed = f"CreateComponent failed: InvalidParameterValueException: bad value in: curl -H 'Authorization: {TOKEN}']"
    scrubbed = change.scrub(echoed)
    assert TOKEN not in scrubbed and "(sensitive)" in scrubbed
    assert change.scrub("nothing to hide") == "nothing to hide"
    plain = ResourceChange("t1", "Component", "c", PUBLISH, after={"spec": {"document": document}})
    assert plain.scrub(echoed) == echoed  # only what is marked sensitive is scrubbed


def test_parse_path() -> None:
    assert parse_path("spec.components[1].parameters[0].value") == ("spec", "components", 1, "parameters", 0, "value")
    with pytest.raises(ValueError):
        parse_path("spec..x[")


def test_component_parameters_are_compared_by_name_not_position() -> None:
    old = (
        "schemaVersion: 1.0\nparameters:\n  - A: {type: string, default: a}\n  - B: {type: string, default: b}\n"
        "phases:\n  - name: build\n    steps:\n      - name: S\n        action: ExecuteBash\n"
        "        inputs: {commands: [echo]}\n"
    )
    first = "  - A: {type: string, default: a}\n"
    new = old.replace(first, first + "  - New: {type: string}\n")
    items = document_diff(old, new, load_document(old), load_document(new))
    assert [(i.op, i.path) for i in items] == [("add", "spec.document.parameters.New")]
