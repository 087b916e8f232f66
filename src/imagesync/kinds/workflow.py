"""Workflow: a build, test or distribution workflow document, immutable and versioned with builds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagesync.arns import workflow_arn_type
from imagesync.kinds.base import VERSIONED, BuildVersions, Document, Kind


def arn_type(spec: Mapping[str, Any]) -> str:
    """A workflow's ARN names its type: `workflow/build/NAME/...`."""
    return workflow_arn_type(str(spec.get("type", "BUILD")))


KIND = Kind(
    name="Workflow",
    noun="Workflow",
    arn_type="workflow",  # the ARN adds the workflow type: workflow/build/NAME/...
    arn_member="workflowBuildVersionArn",
    create_arn_member="workflowBuildVersionArn",
    get_key="workflow",
    list_key="workflowVersionList",
    schema="workflow",
    lifecycle=VERSIONED,
    builds=BuildVersions("ListWorkflowBuildVersions", "workflowVersionArn", "workflowSummaryList"),
    document=Document("data", "uri", "documentFile", "document", "workflow"),
    list_params={"owner": "Self"},
    arn_type_of=arn_type,
)
