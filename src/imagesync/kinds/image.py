"""Image: one image build (CreateImage) from a recipe, infrastructure and optional distribution.

An image is immutable and has no name or version of its own: it takes its recipe's. imagesync
finds the images it built by their address tag, builds a new one whenever the Create request
changes (a referenced recipe published a new version, so the cascade reaches it) or the last
build failed, waits for the build to end, and reports what it made: AMI IDs or container image
URIs per region. Earlier builds are kept (their AMIs are the images in use); prune deletes every
build the project made under a removed manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagesync.arns import arn_name, name_of
from imagesync.kinds.base import REBUILT, Api, Awaited, Instance, Kind, RefField
from imagesync.kinds.ownership import ADDRESS_TAG

NAME = "Image"
_RECIPES = ("imageRecipeArn", "containerRecipeArn")


def outputs(image: Mapping[str, Any]) -> dict[str, Any]:
    """What a build made, by region: AMI IDs, or container image URIs."""
    made: dict[str, list[str]] = {}
    resources = image.get("outputResources") or {}
    for ami in resources.get("amis") or []:
        made.setdefault(str(ami.get("region")), []).append(str(ami.get("image")))
    for container in resources.get("containers") or []:
        made.setdefault(str(container.get("region")), []).extend(str(u) for u in container.get("imageUris") or [])
    return made


def _recipe_name(spec: Mapping[str, Any]) -> str | None:
    """The name an image of this spec carries: its recipe's (from `{ref: NAME}` or the ARN)."""
    for member in _RECIPES:
        value = spec.get(member)
        if isinstance(value, Mapping) and isinstance(value.get("ref"), str):
            return arn_name(value["ref"])
        if isinstance(value, str) and name_of(value):
            return arn_name(name_of(value))
    return None


def read(
    api: Api, versions: list[dict[str, Any]], related: frozenset[str], specs: Mapping[str, Mapping[str, Any]]
) -> list[Instance]:
    """The builds imagesync made: every build of each image version named like a recipe that a
    desired image (or, when pruning, any recipe) uses, whose address tag names an Image."""
    names = set(related) | {n for n in map(_recipe_name, specs.values()) if n}
    found = []
    for version in versions:
        if arn_name(str(version.get("name", ""))) not in names:
            continue
        params: dict[str, Any] = {"imageVersionArn": version["arn"], "maxResults": 25}
        while True:
            page = api("ListImageBuildVersions", params)
            for build in page.get("imageSummaryList") or []:
                tags = dict(build.get("tags") or {})
                kind, _, name = str(tags.get(ADDRESS_TAG, "")).partition("/")
                if kind != NAME or not name:
                    continue
                found.append(
                    Instance(
                        name=name,
                        arn=str(build["arn"]),
                        tags=tags,
                        state=str((build.get("state") or {}).get("status", "")),
                        outputs=outputs(build),
                        created=str(build.get("dateCreated", "")),
                    )
                )
            if not page.get("nextToken"):
                break
            params = {**params, "nextToken": page["nextToken"]}
    return found


KIND = Kind(
    name=NAME,
    noun="Image",
    arn_type="image",
    arn_member="imageBuildVersionArn",
    create_arn_member="imageBuildVersionArn",
    get_key="image",
    list_key="imageVersionList",
    schema="image",
    lifecycle=REBUILT,
    refs=(
        RefField(("imageRecipeArn",), ("ImageRecipe",)),
        RefField(("containerRecipeArn",), ("ContainerRecipe",)),
        RefField(("infrastructureConfigurationArn",), ("InfrastructureConfiguration",)),
        RefField(("distributionConfigurationArn",), ("DistributionConfiguration",)),
        RefField(("workflows", "*", "workflowArn"), ("Workflow",)),
    ),
    list_params={"owner": "Self"},
    named=False,
    awaited=Awaited(
        state_path=("state", "status"),
        # Lifecycle policies may deprecate or disable a built image later: still built, not rebuilt.
        ready=frozenset({"AVAILABLE", "DEPRECATED", "DISABLED"}),
        failed=frozenset({"FAILED", "CANCELLED"}),
        reason_path=("state", "reason"),
        outputs=outputs,
    ),
    reader=read,
)
