"""The registry of kinds: the only list of kinds, with orders derived from what kinds reference."""

from __future__ import annotations

import dataclasses

import pytest

from imagesync.kinds import REGISTRY, RefField, Registry
from imagesync.kinds.base import Kind


def _kind(name: str, *refs: str) -> Kind:
    base = REGISTRY["InfrastructureConfiguration"]
    return dataclasses.replace(base, name=name, refs=tuple(RefField((f"{r}Arn",), (r,)) for r in refs))


def test_deletion_order_is_dependents_first_and_derived_from_references() -> None:
    order = REGISTRY.deletion_order()
    assert order[:9] == (
        "Image",
        "LifecyclePolicy",
        "ImagePipeline",
        "ContainerRecipe",
        "ImageRecipe",
        "DistributionConfiguration",
        "InfrastructureConfiguration",
        "Workflow",
        "Component",
    )
    assert REGISTRY.creation_order() == tuple(reversed(order))
    for kind in REGISTRY:
        for dependency in kind.depends_on_kinds:  # what a kind references is created before it
            assert order.index(kind.name) < order.index(dependency), (kind.name, dependency)


def test_registration_order_does_not_decide_the_order() -> None:
    registry = Registry([_kind("Top", "Middle"), _kind("Middle", "Bottom"), _kind("Bottom")])
    assert registry.creation_order() == ("Bottom", "Middle", "Top")
    assert registry.names() == ["Top", "Middle", "Bottom"]


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ([_kind("A"), _kind("A")], "kind A is registered twice"),
        ([_kind("A", "Nowhere")], "kind A references unregistered kind(s): Nowhere"),
        ([_kind("A", "B"), _kind("B", "A")], "kinds reference each other in a cycle: A, B"),
    ],
    ids=["duplicate", "unregistered", "cycle"],
)
def test_a_registry_that_cannot_order_its_kinds_is_refused(kinds: list[Kind], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Registry(kinds)
