"""Service-side rules of Image Builder requests beyond the API model: parent images, regions,
recipe component parameters and lifecycle policy recipe selections.

Called by `backend.Backend` (recipes, distribution configurations, lifecycle policies) and by
`server.Sandbox.call` (the request's signing region). Every refusal is a `SandboxError` with the
service's code and a message naming the member path. Readings the sandbox takes where the
service is undocumented:
- a recipe component parameter given twice is InvalidParameterValueException;
- a required component parameter (no default) left out is accepted: the service reports it
  when the build runs the component, not on CreateImageRecipe;
- a lifecycle policy's `resourceSelection.recipes[]` must name a recipe of the policy's kind
  that exists in the caller's account and region (a version or wildcard some version matches),
  as the service was seen to refuse one that does not: InvalidParameterValueException, and a
  message saying so when the name is a recipe of the other kind (a container recipe in an
  AMI_IMAGE policy, an image recipe in a CONTAINER_IMAGE one);
- the regions of a partition are botocore's endpoint data for that partition;
- a request signed for a region that is not a region of any partition answers
  InvalidSignatureException (HTTP 403), as an AWS endpoint does for a credential scope it
  does not serve.
"""

from __future__ import annotations

import re
from typing import Any

from imagesync.sandbox.errors import SandboxError
from imagesync.service_model import partition_regions as botocore_partition_regions
from imagesync.service_model import region_partition

Record = dict[str, Any]

AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
# `ssm:` then a Parameter Store name (`/a/b`, `name`) or a parameter ARN.
SSM_PARAMETER = re.compile(
    r"^ssm:(?:arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[A-Za-z0-9_.\-/]+|/?[A-Za-z0-9_.\-/]+)$"
)
MARKETPLACE_PRODUCT = re.compile(r"^prod-[a-z0-9]+$")
# Container parents: an ECR image URI, or a Docker Hub reference such as `amazonlinux:latest`.
ECR_IMAGE = re.compile(
    r"^[0-9]{12}\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?/"
    r"[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})?$"
)
DOCKER_IMAGE = re.compile(
    r"^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)


def _invalid(member: str, detail: str) -> SandboxError:
    return SandboxError(
        "InvalidParameterValueException", f"The value supplied for parameter '{member}' is not valid. {detail}"
    )


# --- parent images --------------------------------------------------------------------------


def image_parent_form(parent: str) -> str:
    """Which documented form an image recipe's parentImage takes: arn, ami, ssm or marketplace."""
    if parent.startswith("arn:"):
        return "arn"
    if AMI_ID.match(parent):
        return "ami"
    if SSM_PARAMETER.match(parent):
        return "ssm"
    if MARKETPLACE_PRODUCT.match(parent):
        return "marketplace"
    raise _invalid(
        "parentImage",
        f"'{parent}' is not an AMI ID (ami- and 8 or 17 hexadecimal digits), an Image Builder image ARN, "
        "an SSM parameter (ssm:NAME or ssm:ARN) or an AWS Marketplace product ID.",
    )


# The version of an image ARN (three nodes of digits or x's), and an optional build after it.
_ARN_VERSION = re.compile(r"/((?:[0-9]+|x+)\.(?:[0-9]+|x+)\.(?:[0-9]+|x+))(/[0-9]+)?$")


def parent_image_arn(parent: str) -> str:
    """A parent image ARN with each spelled-out wildcard node (`xxxx`) read as `x`.

    The AWS CLI's published create-image-recipe example pins a dated Amazon image family as
    `.../windows-server-2016-english-full-base-x86/xxxx.x.x` (a wildcard year), and the service
    answers it with the new recipe, so a node of several x's is a wildcard like `x`.
    """
    def wildcard(match: re.Match[str]) -> str:
        nodes = ("x" if set(node) == {"x"} else node for node in match.group(1).split("."))
        return "/" + ".".join(nodes) + (match.group(2) or "")

    return _ARN_VERSION.sub(wildcard, parent)


def container_parent_form(parent: str) -> str:
    """Which form a container recipe's parentImage takes: arn, ecr or docker."""
    if parent.startswith("arn:"):
        return "arn"
    if ".dkr.ecr" in parent:
        if ECR_IMAGE.match(parent):
            return "ecr"
        raise _invalid(
            "parentImage",
            f"'{parent}' is not a valid Amazon ECR image URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG]).",
        )
    if DOCKER_IMAGE.match(parent):
        return "docker"
    raise _invalid(
        "parentImage",
        f"'{parent}' is not an Image Builder image ARN, an Amazon ECR image URI or a Docker Hub image "
        "reference (lower-case repository, optional :tag).",
    )


# --- regions --------------------------------------------------------------------------------


def partition_regions() -> dict[str, frozenset[str]]:
    """Regions per partition, from botocore's endpoint data."""
    return botocore_partition_regions()


def partition_of(region: str) -> str | None:
    return region_partition(region)


def check_signing_region(region: str) -> None:
    """A request must be signed for a real region: no endpoint serves any other credential scope."""
    if partition_of(region) is None:
        raise SandboxError(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{region}'. "
            f"Image Builder has no endpoint in '{region}'.",
            status=403,
        )


def check_distribution_regions(distributions: list[Record], caller_region: str) -> None:
    """Every distributions[].region must be a region of the caller's partition."""
    partition = partition_of(caller_region)
    regions = partition_regions().get(partition or "", frozenset())
    for i, dist in enumerate(distributions):
        region = dist["region"]
        if region not in regions:
            raise _invalid(
                f"distributions[{i}].region",
                f"'{region}' is not a region of the {partition or 'aws'} partition.",
            )


# --- recipe component parameters ------------------------------------------------------------


def check_component_parameters(index: int, given: list[Record], component: Record) -> None:
    """Recipe `components[index].parameters` against the parameters the component's document defines."""
    if not given:
        return
    names = [p["name"] for p in given]
    for j, name in enumerate(names):
        if name in names[:j]:
            raise _invalid(
                f"components[{index}].parameters[{j}].name",
                f"The parameter '{name}' is given more than once.",
            )
    if component.get("data") is None and component.get("_uri") is not None:
        return  # a document in S3 is not read by the sandbox: its parameters are unknown
    defined = {p["name"] for p in component.get("parameters") or []}
    unknown = [name for name in names if name not in defined]
    if unknown:
        raise SandboxError(
            "InvalidParameterCombinationException",
            f"The value supplied for parameter 'components[{index}].parameters' is not valid. "
            f"The following parameters are not defined in the provided component: {', '.join(unknown)}",
        )


# --- lifecycle policies ---------------------------------------------------------------------

RECIPES_FOR = {
    "AMI_IMAGE": ("imageRecipes", "image recipe"),
    "CONTAINER_IMAGE": ("containerRecipes", "container recipe"),
}


def _version_matches(pattern: str, version: str) -> bool:
    return all(p in ("x", v) for p, v in zip(pattern.split("."), version.split("."), strict=True))


def check_lifecycle_selection(resource_type: str, selection: Record, own_recipes: dict[str, list[Record]]) -> None:
    """Every resourceSelection.recipes[] names an existing recipe of the policy's kind.

    `own_recipes` maps "imageRecipes"/"containerRecipes" to the caller's recipes in the region.
    """
    collection, label = RECIPES_FOR[resource_type]
    other, other_label = next(v for k, v in RECIPES_FOR.items() if k != resource_type)
    for i, ref in enumerate(selection.get("recipes") or []):
        name, version = ref["name"], ref["semanticVersion"]
        if any(r["name"] == name and _version_matches(version, r["version"]) for r in own_recipes[collection]):
            continue
        if any(r["name"] == name and _version_matches(version, r["version"]) for r in own_recipes[other]):
            raise _invalid(
                f"resourceSelection.recipes[{i}]",
                f"'{name}' {version} is {'an' if other_label[0] in 'aeiou' else 'a'} {other_label}, but a lifecycle "
                f"policy for {resource_type} selects "
                f"{label}s.",
            )
        raise _invalid(
            f"resourceSelection.recipes[{i}]",
            f"The {label} '{name}' with a version matching {version} does not exist.",
        )
