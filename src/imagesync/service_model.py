"""botocore's own model of the Image Builder API, loaded once per process: a neutral module.

Both sides read it: the reconciler (`imagesync.live` keeps only the fields a Create call accepts)
and the sandbox (`imagesync.sandbox` routes, validates and serializes from it, so what it accepts
and returns is what real clients expect). It imports neither side, and holds no reading of the
service of its own: only what the installed botocore ships.
"""

from __future__ import annotations

import functools
import re

import botocore.session
from botocore.loaders import create_loader
from botocore.model import OperationModel, ServiceModel

SERVICE = "imagebuilder"


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """The `imagebuilder` service model that the installed botocore ships."""
    return botocore.session.get_session().get_service_model(SERVICE)


def operation_model(operation: str) -> OperationModel:
    """One operation's model, by its API name (e.g. "CreateComponent")."""
    return service_model().operation_model(operation)


@functools.cache
def input_members(operation: str) -> frozenset[str]:
    """The names of the members an operation's request takes."""
    shape = operation_model(operation).input_shape
    return frozenset(shape.members) if shape is not None else frozenset()


@functools.cache
def partition_regions() -> dict[str, frozenset[str]]:
    """The regions of each AWS partition (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, ...), as
    botocore's endpoint data lists them."""
    data = create_loader().load_data("endpoints")
    return {p["partition"]: frozenset(p.get("regions", {})) for p in data["partitions"]}


@functools.cache
def _region_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    data = create_loader().load_data("endpoints")
    return tuple((p["partition"], re.compile(p["regionRegex"])) for p in data["partitions"] if p.get("regionRegex"))


@functools.cache
def region_partition(region: str) -> str | None:
    """The partition a region belongs to: listed by botocore, or named like that partition's
    regions (a region newer than the installed botocore); None for no partition at all."""
    listed = next((name for name, regions in partition_regions().items() if region in regions), None)
    if listed is not None:
        return listed
    return next((name for name, pattern in _region_patterns() if pattern.match(region)), None)
