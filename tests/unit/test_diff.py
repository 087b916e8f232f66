"""Normalization and diffing: idempotent normalization, imagesync's own diff items, step diffs."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagesync.diff import _deep_diff, diff, document_diff, normalize
from imagesync.manifest.awstoe import load_document
from imagesync.plan_model import DiffItem

PIPELINE = {
    "imageRecipeArn": "arn:aws:imagebuilder:us-east-1:111111111111:image-recipe/base/1.0.0",
    "infrastructureConfigurationArn": "arn:aws:imagebuilder:us-east-1:111111111111:infrastructure-configuration/b",
    "schedule": {"scheduleExpression": "cron(0 4 ? * MON *)"},
}


@pytest.mark.parametrize(
    ("kind", "with_defaults", "without"),
    [
        (
            "ImagePipeline",
            {
                **PIPELINE,
                "enhancedImageMetadataEnabled": True,
                "status": "ENABLED",
                "imageTestsConfiguration": {"imageTestsEnabled": True, "timeoutMinutes": 720},
                "schedule": {
                    **PIPELINE["schedule"],
                    "timezone": "UTC",
                    "pipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
                },
            },
            PIPELINE,
        ),
        (
            "InfrastructureConfiguration",
            {"instanceProfileName": "p", "terminateInstanceOnFailure": True, "instanceTypes": ["b", "a"]},
            {"instanceProfileName": "p", "instanceTypes": ["a", "b"]},
        ),
        ("LifecyclePolicy", {"executionRole": "r", "status": "ENABLED"}, {"executionRole": "r"}),
    ],
    ids=["pipeline", "infrastructure", "lifecycle"],
)
def test_server_defaults_and_set_order_never_differ(kind: str, with_defaults: dict, without: dict) -> None:
    assert normalize(kind, with_defaults) == normalize(kind, without)
    assert diff(normalize(kind, with_defaults), normalize(kind, without)) == []


def test_a_non_default_value_still_differs() -> None:
    changed = {**PIPELINE, "enhancedImageMetadataEnabled": False}
    assert diff(normalize("ImagePipeline", PIPELINE), normalize("ImagePipeline", changed), "spec") == [
        DiffItem("add", "spec.enhancedImageMetadataEnabled", None, False)
    ]


json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
bodies = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["schedule", "timezone", "status", "instanceTypes", "enhancedImageMetadataEnabled", "x", "y"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@given(
    st.sampled_from(["ImagePipeline", "InfrastructureConfiguration", "DistributionConfiguration", "LifecyclePolicy"]),
    st.dictionaries(st.text(max_size=5), bodies, max_size=5),
)
def test_normalize_is_idempotent_and_does_not_mutate(kind: str, body: dict) -> None:
    original = copy.deepcopy(body)
    once = normalize(kind, body)
    assert normalize(kind, once) == once
    assert body == original


# Leaves Python calls equal across types (1 == 1.0 == True, 0 == False), which DeepDiff reports as
# type changes: the equality shortcut in `diff` must not hide them.
close_leaf = st.sampled_from([0, 1, 0.0, 1.0, True, False, -0.0, "1", "", None])
close_bodies = st.recursive(
    close_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),
    max_leaves=8,
)


@given(close_bodies, close_bodies)
def test_diff_reports_what_deepdiff_reports(old: object, new: object) -> None:
    assert diff(old, new, "spec") == _deep_diff(old, new, "spec")
    assert diff(old, copy.deepcopy(old), "spec") == []


def test_equal_values_of_other_types_still_differ() -> None:
    assert [(d.op, d.path, d.old, d.new) for d in diff({"a": 1.0}, {"a": 1})] == [("change", "a", 1.0, 1)]
    assert [(d.op, d.path) for d in diff({"a": 1}, {"a": True})] == [("change", "a")]


def test_diff_items_name_paths_with_indexes() -> None:
    old = {"distributions": [{"region": "us-east-1", "x": 1}], "description": "a"}
    new = {"distributions": [{"region": "us-east-1", "x": 2}], "keyPair": "k"}
    assert diff(old, new, "spec") == [
        DiffItem("remove", "spec.description", "a", None),
        DiffItem("change", "spec.distributions[0].x", 1, 2),
        DiffItem("add", "spec.keyPair", None, "k"),
    ]


COMPONENT = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: A
        action: ExecuteBash
        inputs: {commands: [echo a]}
      - name: B
        action: ExecuteBash
        inputs: {commands: [echo b]}
"""


def test_document_diff_is_step_level() -> None:
    new = COMPONENT.replace("echo a", "echo A").replace(
        "      - name: B\n        action: ExecuteBash\n        inputs: {commands: [echo b]}\n",
        "      - name: C\n        action: Reboot\n",
    )
    items = document_diff(COMPONENT, new, load_document(COMPONENT), load_document(new))
    assert [(i.op, i.path) for i in items] == [
        ("change", "spec.document.build.A.inputs.commands[0]"),
        ("remove", "spec.document.build.B"),
        ("add", "spec.document.build.C"),
    ]


def test_document_diff_ignores_comments_and_key_order() -> None:
    reordered = "# comment\n" + COMPONENT.replace("schemaVersion: 1.0\n", "") + "schemaVersion: 1.0\n"
    assert document_diff(COMPONENT, reordered, load_document(COMPONENT), load_document(reordered)) == []


def test_workflow_document_diff_is_by_step_name() -> None:
    old = "schemaVersion: 1.0\nsteps:\n  - name: Launch\n    action: LaunchInstance\n    onFailure: Abort\n"
    new = old.replace("Abort", "Continue")
    items = document_diff(old, new, load_document(old), load_document(new))
    assert [(i.op, i.path) for i in items] == [("change", "spec.document.Launch.onFailure")]


def test_a_live_document_is_read_with_the_loaders_limits() -> None:
    """A component document another account published is parsed with the same alias limits as a
    manifest: an alias bomb reads as no document (compared as text), not as a hang."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(12)
    )
    assert load_document(bomb) is None
    assert load_document(COMPONENT) is not None
    [item] = document_diff(bomb, COMPONENT, load_document(bomb), load_document(COMPONENT))
    assert (item.op, item.path) == ("change", "spec.document")
