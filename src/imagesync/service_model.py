"""botocore's own model of the Image Builder API, loaded once per process: a neutral module.

Both sides read it: the reconciler (`imagesync.live` keeps only the fields a Create call accepts)
and the sandbox (`imagesync.sandbox` routes, validates and serializes from it, so what it accepts
and returns is what real clients expect). It imports neither side, and holds no reading of the
service of its own: only what the installed botocore ships.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable
from typing import TypeVar

import botocore.session
from botocore.loaders import create_loader
from botocore.model import OperationModel, ServiceModel

SERVICE = "imagebuilder"

T = TypeVar("T")


def _once(load: Callable[[], T]) -> Callable[[], T]:
    """Cache what `load` returns, computed once even when many threads ask for it first.

    `functools.cache` lets every thread that arrives before the first answer compute its own: a
    plan's hundred readers would each parse botocore's model files, which takes seconds of CPU.
    """
    lock = threading.Lock()
    box: list[T] = []

    @functools.wraps(load)
    def cached() -> T:
        if not box:
            with lock:
                if not box:
                    box.append(load())
        return box[0]

    return cached


@_once
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


@_once
def partition_regions() -> dict[str, frozenset[str]]:
    """The regions of each AWS partition (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, ...), as
    botocore's endpoint data lists them."""
    data = create_loader().load_data("endpoints")
    return {p["partition"]: frozenset(p.get("regions", {})) for p in data["partitions"]}


@_once
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
