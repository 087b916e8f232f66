"""The JSON plan: `Plan.to_json()` with sensitive values masked.

This is the `--format json` output and the saved plan; it validates against `schemas/plan.json`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from imagesync.plan_model import Plan, ResourceChange
from imagesync.render.mask import mask_diff_value, mask_document


def render_plan(plan: Plan) -> str:
    """The plan as JSON with a trailing newline; sensitive values read "(sensitive)"."""
    return "".join(plan_chunks(plan))


def plan_chunks(plan: Plan) -> Iterator[str]:
    """`render_plan`'s text, a piece at a time, for writing out as it is made.

    The document is indented, except that each resource change is written on one line of its own:
    json's C encoder writes only unindented JSON, and indenting every change in Python took most of
    the time of rendering a large plan. Changes are rendered one at a time, so a plan of thousands
    of changes is never held as JSON data, nor as text, all at once unless the caller joins it.
    """
    marks = {key: f"\x00{key}:{uuid.uuid4().hex}\x00" for key in _CHANGE_LISTS}
    lists = {
        "resource_changes": [c for t in plan.targets for c in t.changes],
        "resource_drift": [c for t in plan.targets for c in t.drift],
    }
    document = plan.to_json(change_json=_nothing)
    document.update(marks)
    head = json.dumps(document, indent=2, sort_keys=False)
    for key in _CHANGE_LISTS:
        before, head = head.split(json.dumps(marks[key]), 1)
        yield before
        yield from _json_list(lists[key])
    yield head
    yield "\n"


_CHANGE_LISTS = ("resource_changes", "resource_drift")  # both at the top level of the plan document


def _nothing(_change: ResourceChange) -> dict[str, Any]:
    return {}


def _json_list(changes: list[ResourceChange]) -> Iterator[str]:
    """A top-level member's list of changes, one change per line, indented as the list's members."""
    if not changes:
        yield "[]"
        return
    separator = "[\n    "
    for change in changes:
        yield separator + json.dumps(_masked(change), sort_keys=False)
        separator = ",\n    "
    yield "\n  ]"


def plan_document(plan: Plan) -> dict[str, Any]:
    """`plan.to_json()` with every resource change's sensitive values masked."""
    return plan.to_json(change_json=_masked)


def _masked(change: ResourceChange) -> dict[str, Any]:
    data = change.to_json()
    sensitive = change.sensitive_paths
    if not sensitive:
        return data
    data["change"]["before"] = mask_document(data["change"]["before"], sensitive)
    data["change"]["after"] = mask_document(data["change"]["after"], sensitive)
    data["diff"] = [
        {
            **item,
            "old": mask_diff_value(item["path"], item["old"], sensitive),
            "new": mask_diff_value(item["path"], item["new"], sensitive),
        }
        for item in data["diff"]
    ]
    return data
