"""LifecyclePolicy: rules that deprecate and delete old images; mutable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagesync.kinds.base import Kind

# The recipe kind a policy's resource type selects by name.
_RECIPE_KIND = {"AMI_IMAGE": "ImageRecipe", "CONTAINER_IMAGE": "ContainerRecipe"}


def selected_recipes(spec: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The recipes `resourceSelection.recipes` names, which the policy is created after: a selection
    naming a recipe not created yet was seen refused, and waiting for them is right either way."""
    kind = _RECIPE_KIND.get(str(spec.get("resourceType")))
    selection = spec.get("resourceSelection")
    if kind is None or not isinstance(selection, Mapping):
        return ()
    recipes = selection.get("recipes")
    if not isinstance(recipes, list | tuple):
        return ()
    names = {str(r["name"]) for r in recipes if isinstance(r, Mapping) and isinstance(r.get("name"), str)}
    return tuple((kind, name) for name in sorted(names))


KIND = Kind(
    name="LifecyclePolicy",
    noun="LifecyclePolicy",
    arn_type="lifecycle-policy",
    arn_member="lifecyclePolicyArn",
    create_arn_member="lifecyclePolicyArn",
    get_key="lifecyclePolicy",
    list_key="lifecyclePolicySummaryList",
    schema="lifecycle-policy",
    update_member="lifecyclePolicyArn",
    named_dependencies=selected_recipes,
    named_kinds=tuple(sorted(_RECIPE_KIND.values())),
    server_defaults=((("status",), "ENABLED"),),  # a guess, as for pipelines
)
