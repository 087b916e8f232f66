"""The JSON plan: `Plan.to_json()` with sensitive values masked.

This is the `--format json` output and the saved plan; it validates against `schemas/plan.json`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from imagesync.plan_model import Plan, ResourceChange
from imagesync.render.mask import mask_diff_value, mask_document


def render_plan(plan: Plan) -> str:
    """The plan as JSON with a trailing newline; sensitive values read "(sensitive)".

    The document is indented, except that each resource change is written on one line of its own:
    json's C encoder writes only unindented JSON, and indenting every change in Python took most of
    the time of rendering a large plan. Changes are written one at a time, so a plan of thousands
    of changes never holds all their JSON data at once.
    """
    marks = {key: f"\x00{key}:{uuid.uuid4().hex}\x00" for key in _CHANGE_LISTS}
    lists = {
        "resource_changes": [c for t in plan.targets for c in t.changes],
        "resource_drift": [c for t in plan.targets for c in t.drift],
    }
    document = plan.to_json(change_json=_nothing)
    document.update(marks)
    head = json.dumps(document, indent=2, sort_keys=False)
    pieces: list[str] = []
    for key in _CHANGE_LISTS:
        mark = json.dumps(marks[key])
        before, head = head.split(mark, 1)
        pieces.append(before)
        pieces.append(_json_list(lists[key]))
    pieces.append(head)
    pieces.append("\n")
    return "".join(pieces)


_CHANGE_LISTS = ("resource_changes", "resource_drift")  # both at the top level of the plan document


def _nothing(_change: ResourceChange) -> dict[str, Any]:
    return {}


def _json_list(changes: list[ResourceChange]) -> str:
    """A top-level member's list of changes, one change per line, indented as the list's members."""
    if not changes:
        return "[]"
    items = ("    " + json.dumps(_masked(c), sort_keys=False) for c in changes)
    return "[\n" + ",\n".join(items) + "\n  ]"


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
