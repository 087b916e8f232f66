"""The resource kinds imagesync manages, in an explicit registry that rejects duplicates."""

from __future__ import annotations

from collections.abc import Iterator

from imagesync.arns import arn_name
from imagesync.kinds import (
    component,
    container_recipe,
    distribution_configuration,
    image_pipeline,
    image_recipe,
    infrastructure_configuration,
    lifecycle_policy,
    workflow,
)
from imagesync.kinds.base import Kind, RefField, Resolver, freeze, thaw


class Registry:
    """Kinds by name, in the order given (dependencies before dependents)."""

    def __init__(self, kinds: list[Kind]) -> None:
        self._kinds: dict[str, Kind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"kind {kind.name} is registered twice")
            self._kinds[kind.name] = kind

    def __getitem__(self, name: str) -> Kind:
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def names(self) -> list[str]:
        return list(self._kinds)


REGISTRY = Registry(
    [
        component.KIND,
        workflow.KIND,
        infrastructure_configuration.KIND,
        distribution_configuration.KIND,
        image_recipe.KIND,
        container_recipe.KIND,
        image_pipeline.KIND,
        lifecycle_policy.KIND,
    ]
)

__all__ = ["REGISTRY", "Kind", "RefField", "Registry", "Resolver", "arn_name", "freeze", "thaw"]
