"""A lifecycle policy names the recipes it selects by plain name. A selection naming a recipe not
created yet was seen refused (the sandbox refuses it; no public page states the error), and
creating the policy after the recipes the same target defines is right either way. Driven through
the planner and executor against the sandbox.
"""

from __future__ import annotations

from typing import Any

import pytest

from imagesync.kinds.lifecycle_policy import selected_recipes

from .conftest import PROD, Estate

RECIPES = ("ImageRecipe/app-web", "ImageRecipe/app-worker", "ImageRecipe/hardened-al2023")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"resourceType": "AMI_IMAGE", "resourceSelection": {"recipes": [{"name": "b"}, {"name": "a"}]}},
            (("ImageRecipe", "a"), ("ImageRecipe", "b")),
            id="ami-policy-selects-image-recipes",
        ),
        pytest.param(
            {"resourceType": "CONTAINER_IMAGE", "resourceSelection": {"recipes": [{"name": "c"}, {"name": "c"}]}},
            (("ContainerRecipe", "c"),),
            id="container-policy-selects-container-recipes-once",
        ),
        pytest.param(
            {"resourceType": "AMI_IMAGE", "resourceSelection": {"tagMap": {"team": "web"}}},
            (),
            id="tag-selection-names-nothing",
        ),
        pytest.param({"resourceType": "SOMETHING_NEW", "resourceSelection": {"recipes": [{"name": "a"}]}}, (),
                     id="unknown-resource-type"),
    ],
)
def test_the_recipes_a_policy_selects(spec: dict[str, Any], expected: tuple[tuple[str, str], ...]) -> None:
    assert selected_recipes(spec) == expected


def test_the_policy_is_created_after_the_recipes_it_selects(estate: Estate) -> None:
    """The plan says the example retention policy depends on the three recipes it selects, and
    applying the example estate to empty accounts succeeds although the sandbox refuses a
    selection of a recipe that does not exist (so the executor waited for them)."""
    plan = estate.plan()
    prod = next(t for t in plan.targets if t.target == PROD)
    change = next(c for c in prod.changes if c.address == "LifecyclePolicy/golden-image-retention")
    assert change.action == "create"
    assert set(RECIPES) <= set(change.depends_on)
    estate.apply_ok()
    policies = estate.client(PROD).list_lifecycle_policies()["lifecyclePolicySummaryList"]
    assert [p["name"] for p in policies] == ["golden-image-retention"]
