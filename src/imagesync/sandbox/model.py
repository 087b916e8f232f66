"""The sandbox's access to botocore's Image Builder service model: the neutral `imagesync.botomodel`.

The sandbox routes, validates and serializes from this model, so what it accepts and returns is
what the real service's clients expect. Kept as a name inside the sandbox package so its modules
import the model from one place.
"""

from __future__ import annotations

from imagesync.botomodel import operation_model, service_model

__all__ = ["operation_model", "service_model"]
