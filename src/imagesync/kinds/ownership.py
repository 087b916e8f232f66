"""The tags by which imagesync knows what it made: one home for their names and for `owns`.

Every resource (every published version, every image build) imagesync creates carries the
project and its address; that, not a state file, is how a later run tells its own resources from
anyone else's. The live reader, the planner, the executor and kinds that find their resources by
tag (images) read them from here.
"""

from __future__ import annotations

from collections.abc import Mapping

PROJECT_TAG = "imagesync:project"
ADDRESS_TAG = "imagesync:address"
HASH_TAG = "imagesync:content-hash"
PRUNE_TAG = "imagesync:prune"
VERSION_TAG = "imagesync:version"  # on each published version: a copy's tags name the wrong version
# Whom imagesync shared a resource with (a digest): its policy is read back while the tag is there.
SHARING_TAG = "imagesync:sharing"


def owns(tags: Mapping[str, str] | None, project: str, address: str, version: str | None = None) -> bool:
    """Do these tags say that `project` made the resource at `address` (and this `version`)?"""
    if not tags or tags.get(PROJECT_TAG) != project or tags.get(ADDRESS_TAG) != address:
        return False
    return version is None or tags.get(VERSION_TAG) == version
