"""How the reconciler names Image Builder resources: ARNs, their name segment, partition and versions.

The one home on the reconciler's side for these readings of the service; the planner computes the
ARNs it references before the resources exist (`kinds`, `planner`), live reading groups list items by
name and version (`live`), and apply tells version ARNs from build ARNs (`execute`). The sandbox
has its own reading in its own package, on purpose: the two are compared by the tests, never
shared.
"""

from __future__ import annotations

import re

from imagesync.service_model import region_partition

SERVICE = "imagebuilder"


def partition(region: str) -> str:
    """The ARN partition of a region (`aws-cn` for China, `aws-us-gov` for GovCloud, ...), from
    botocore's endpoint data; `aws` for a region botocore places in no partition."""
    return region_partition(region) or "aws"


def arn_name(name: str) -> str:
    """The ARN segment of a resource name: lower case, spaces and underscores as hyphens.

    A reading of the service from the ARNs it returns; the service does not document the rule.
    It is also what makes two manifest names the same resource (`Base_Image` and `base-image`).
    """
    return re.sub(r"[ _]", "-", name.lower())


def resource_arn(region: str, account: str, arn_type: str, name: str) -> str:
    """A resource's ARN without a version: `arn:aws:imagebuilder:REGION:ACCOUNT:TYPE/NAME`.

    `arn_type` is the kind's ARN type (`image-recipe`), or `workflow/build` style for a workflow,
    whose ARN also names its type (see `workflow_arn_type`).
    """
    return f"arn:{partition(region)}:{SERVICE}:{region}:{account}:{arn_type}/{arn_name(name)}"


def workflow_arn_type(workflow_type: str) -> str:
    """The ARN type of a workflow of `workflow_type` (BUILD, TEST, DISTRIBUTION): `workflow/build`."""
    return f"workflow/{workflow_type.lower()}"


def newest_image_arn(region: str, account: str, recipe_name: str) -> str:
    """The ARN that stands for the newest image a recipe builds: its images' name with `x.x.x`.

    Images take their recipe's name; `x.x.x` is the service's wildcard for the newest version.
    """
    return f"{resource_arn(region, account, 'image', recipe_name)}/x.x.x"


def without_build(version: str) -> str:
    """`1.2.3/4` -> `1.2.3`: a build version's semantic version (a version without one is kept)."""
    return version.split("/", 1)[0]


def with_version(arn: str, version: str) -> str:
    """A version ARN with its version replaced (`.../component/x/1.0.3`, `1.x.x` -> `.../x/1.x.x`)."""
    return f"{arn.rsplit('/', 1)[0]}/{version}"


def name_of(arn: str) -> str:
    """The resource name an ARN holds (`.../image-recipe/web/1.0.0` -> `web`; a workflow's
    `.../workflow/build/NAME/...` -> `NAME`), or "" when it holds none."""
    parts = arn.split(":", 5)[-1].split("/")
    if parts[0] == "workflow" and len(parts) > 2:
        return parts[2]
    return parts[1] if len(parts) > 1 else ""


def version_of(arn: str) -> str:
    """The last segment of a version ARN (`.../component/x/1.2.3` -> `1.2.3`)."""
    return arn.rsplit("/", 1)[-1]


def is_build_arn(arn: str) -> bool:
    """Does a component or workflow ARN name one build (`.../1.2.3/4`) rather than a version?"""
    return version_of(arn).isdigit()
