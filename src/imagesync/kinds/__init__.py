"""The resource kinds imagesync manages, in an explicit registry that rejects duplicates."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

from imagesync.arns import arn_name
from imagesync.kinds.base import Kind, RefField, Resolver, freeze, thaw


class Registry:
    """Kinds by name: the one list of kinds. Refuses a kind registered twice or one that references
    a kind not registered; the order kinds are created and deleted in is derived from what they
    reference (`creation_order`, `deletion_order`), not from the order they are registered in."""

    def __init__(self, kinds: list[Kind]) -> None:
        self._kinds: dict[str, Kind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"kind {kind.name} is registered twice")
            self._kinds[kind.name] = kind
        for kind in kinds:
            unknown = sorted(kind.depends_on_kinds - set(self._kinds))
            if unknown:
                raise ValueError(f"kind {kind.name} references unregistered kind(s): {', '.join(unknown)}")
        self._creation = self._order()

    def __getitem__(self, name: str) -> Kind:
        return self._kinds[name]

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def names(self) -> list[str]:
        return list(self._kinds)

    def creation_order(self) -> tuple[str, ...]:
        """Kind names, every kind after the kinds it references (ties in registration order)."""
        return self._creation

    def deletion_order(self) -> tuple[str, ...]:
        """Kind names, dependents first: what references a resource is deleted before it."""
        return tuple(reversed(self._creation))

    def _order(self) -> tuple[str, ...]:
        position = {name: i for i, name in enumerate(self._kinds)}
        waiting = {name: set(kind.depends_on_kinds) for name, kind in self._kinds.items()}
        order: list[str] = []
        while waiting:
            ready = [name for name, deps in waiting.items() if not deps]
            if not ready:
                raise ValueError(f"kinds reference each other in a cycle: {', '.join(sorted(waiting))}")
            first = min(ready, key=position.__getitem__)
            order.append(first)
            del waiting[first]
            for deps in waiting.values():
                deps.discard(first)
        return tuple(order)


# The one list of kinds: each module under imagesync.kinds that defines a `KIND`. Adding a kind is
# a module and a line here (plus its generated schema); nothing else names kinds. See
# docs/architecture.md, "Adding a kind".
MODULES = (
    "component",
    "workflow",
    "infrastructure_configuration",
    "distribution_configuration",
    "image_recipe",
    "container_recipe",
    "image_pipeline",
    "lifecycle_policy",
    "image",
)

REGISTRY = Registry([importlib.import_module(f"{__name__}.{module}").KIND for module in MODULES])

__all__ = ["MODULES", "REGISTRY", "Kind", "RefField", "Registry", "Resolver", "arn_name", "freeze", "thaw"]
