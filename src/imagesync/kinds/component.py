"""Component: an AWSTOE document, immutable and versioned with build numbers."""

from __future__ import annotations

from imagesync.kinds.base import VERSIONED, BuildVersions, Document, Kind
from imagesync.kinds.sharing import Sharing

KIND = Kind(
    name="Component",
    noun="Component",
    arn_type="component",
    arn_member="componentBuildVersionArn",
    create_arn_member="componentBuildVersionArn",
    get_key="component",
    list_key="componentVersionList",
    schema="component",
    lifecycle=VERSIONED,
    builds=BuildVersions("ListComponentBuildVersions", "componentVersionArn", "componentSummaryList"),
    document=Document("data", "uri", "documentFile", "document", "component"),
    list_params={"owner": "Self"},
    sharing=Sharing("ComponentPolicy", "componentArn", ("imagebuilder:GetComponent", "imagebuilder:ListComponents")),
)
