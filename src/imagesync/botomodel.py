"""botocore's own model of the Image Builder API, loaded once per process: a neutral module.

Both sides read it: the reconciler (`imagesync.live` keeps only the fields a Create call accepts)
and the sandbox (`imagesync.sandbox` routes, validates and serializes from it, so what it accepts
and returns is what real clients expect). It imports neither side, and holds no reading of the
service of its own: only what the installed botocore ships.
"""

from __future__ import annotations

import functools

import botocore.session
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
