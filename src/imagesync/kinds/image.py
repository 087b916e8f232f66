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
from imagesync.kinds.sharing import Sharing

NAME = "Image"
_RECIPES = ("imageRecipeArn", "containerRecipeArn")
# Built: lifecycle policies may deprecate or disable an image later; it is not built again for that.
_READY = frozenset({"AVAILABLE", "DEPRECATED", "DISABLED"})


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
    api: Api, versions: list[dict[str, Any]], every: bool, specs: Mapping[str, Mapping[str, Any]]
) -> list[Instance]:
    """The builds imagesync made, by their address tag: every build of each image version named
    like a recipe a desired image uses, or (`every`, when pruning) of every image version, so
    builds of a removed manifest are found whatever recipe they came from."""
    names = {n for n in map(_recipe_name, specs.values()) if n}
    found = []
    for version in versions:
        if not every and arn_name(str(version.get("name", ""))) not in names:
            continue
        params: dict[str, Any] = {"imageVersionArn": version["arn"], "maxResults": 25}
        while True:
            page = api("ListImageBuildVersions", params)
            for build in page.get("imageSummaryList") or []:
                tags = dict(build.get("tags") or {})
                kind, _, name = str(tags.get(ADDRESS_TAG, "")).partition("/")
                if kind != NAME or not name:
                    continue
                state = str((build.get("state") or {}).get("status", ""))
                found.append(
                    Instance(
                        name=name,
                        arn=str(build["arn"]),
                        tags=tags,
                        state=state,
                        outputs=outputs(build) if state in _READY else None,  # none until it is built
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
    # Deprecated images are listed too: a lifecycle policy deprecating a build does not unbuild it.
    list_params={"owner": "Self", "includeDeprecated": True},
    named=False,
    awaited=Awaited(
        state_path=("state", "status"),
        ready=_READY,
        # A build that failed, was cancelled or was deleted (by a lifecycle policy, say) is built again.
        failed=frozenset({"FAILED", "CANCELLED", "DELETED"}),
        reason_path=("state", "reason"),
        outputs=outputs,
    ),
    reader=read,
    sharing=Sharing("ImagePolicy", "imageArn", ("imagebuilder:GetImage", "imagebuilder:ListImages")),
)
