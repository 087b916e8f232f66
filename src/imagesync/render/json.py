"""The JSON plan: `Plan.to_json()` with sensitive values masked.

This is the `--format json` output and the saved plan; it validates against `schemas/plan.json`.
"""

from __future__ import annotations

import json
from typing import Any

from imagesync.plan_model import Plan, ResourceChange
from imagesync.render.mask import mask_diff_value, mask_document


def render_plan(plan: Plan) -> str:
    """The plan as indented JSON with a trailing newline; sensitive values read "(sensitive)"."""
    return json.dumps(plan_document(plan), indent=2, sort_keys=False) + "\n"


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
