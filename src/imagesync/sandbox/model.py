"""The sandbox's access to botocore's Image Builder service model: the neutral `imagesync.service_model`.

The sandbox routes, validates and serializes from this model, so what it accepts and returns is
what the real service's clients expect. Kept as a name inside the sandbox package so its modules
import the model from one place.
"""

from __future__ import annotations

from imagesync.service_model import operation_model, service_model

__all__ = ["operation_model", "service_model"]
