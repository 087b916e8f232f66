"""Component: an AWSTOE document, immutable and versioned with build numbers."""

from __future__ import annotations

from imagesync.kinds.base import Kind

KIND = Kind(
    name="Component",
    noun="Component",
    arn_type="component",
    arn_member="componentBuildVersionArn",
    create_arn_member="componentBuildVersionArn",
    get_key="component",
    list_key="componentVersionList",
    schema="component",
    versioned=True,
    built=True,
    document_member="data",
)
