"""Workflow: a build, test or distribution workflow document, immutable and versioned with builds."""

from __future__ import annotations

from imagesync.kinds.base import Kind

KIND = Kind(
    name="Workflow",
    noun="Workflow",
    arn_type="workflow",  # the ARN adds the workflow type: workflow/build/NAME/...
    arn_member="workflowBuildVersionArn",
    create_arn_member="workflowBuildVersionArn",
    get_key="workflow",
    list_key="workflowVersionList",
    schema="workflow",
    versioned=True,
    built=True,
    document_member="data",
)
