"""Access to botocore's own Image Builder service model, loaded once per process.

The sandbox routes, validates and serializes from this model, so what it accepts and returns is
what the real service's clients expect.
"""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import ServiceModel


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """The `imagebuilder` service model that the installed botocore ships."""
    return botocore.session.get_session().get_service_model("imagebuilder")
