"""LifecyclePolicy: rules that deprecate and delete old images; mutable.

Its `resourceSelection.recipes` items name recipes by name and semantic version, either as written
or as `{ref: NAME}` (optionally with `version:`), which names a managed recipe of the kind the
policy's resourceType selects and becomes `{name, semanticVersion}` of the version this plan
leaves live, so that a new recipe version updates the policy in the same plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagesync.kinds.base import Kind, RefField

# The recipe kind a policy's resource type selects by name.
_RECIPE_KIND = {"AMI_IMAGE": "ImageRecipe", "CONTAINER_IMAGE": "ContainerRecipe"}


def recipe_kind(spec: Mapping[str, Any]) -> str | None:
    """The recipe kind the policy's resourceType selects (None for a type without recipes)."""
    return _RECIPE_KIND.get(str(spec.get("resourceType")))


def selected_recipes(spec: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The recipes `resourceSelection.recipes` names, which the policy is created after: a selection
    naming a recipe not created yet was seen refused, and waiting for them is right either way."""
    kind = recipe_kind(spec)
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
    refs=(
        RefField(
            ("resourceSelection", "recipes", "*"),
            ("ImageRecipe", "ContainerRecipe"),
            name_keys=("name", "semanticVersion"),
            pinnable=True,
            kind_of=recipe_kind,
        ),
    ),
    named_dependencies=selected_recipes,
    named_kinds=tuple(sorted(_RECIPE_KIND.values())),
    server_defaults=((("status",), "ENABLED"),),  # a guess, as for pipelines
)
