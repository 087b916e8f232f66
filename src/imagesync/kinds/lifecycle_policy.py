"""LifecyclePolicy: rules that deprecate and delete old images; mutable.

Its `resourceSelection.recipes` items name recipes by name and semantic version, either as written
or as `{ref: NAME}` (optionally with `version:`), which names a managed recipe of the kind the
policy's resourceType selects and becomes `{name, semanticVersion}` of the version this plan
leaves live, so that a new recipe version updates the policy in the same plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from imagesync.kinds.base import Kind, RefField

# The recipe kind a policy's resource type selects by name.
_RECIPE_KIND = {"AMI_IMAGE": "ImageRecipe", "CONTAINER_IMAGE": "ContainerRecipe"}
# A version without wildcards (and without an unexpanded placeholder).
_EXACT = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


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


def selection_advice(
    spec: Mapping[str, Any], managed: Callable[[str, str], bool]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """A literal, exact version of a recipe these manifests publish stops covering its images once
    imagesync publishes the next one: allowed (the older images may be what is meant), but said."""
    kind = recipe_kind(spec)
    selection = spec.get("resourceSelection")
    recipes = selection.get("recipes") if isinstance(selection, Mapping) else None
    if kind is None or not isinstance(recipes, list | tuple):
        return
    for i, item in enumerate(recipes):
        name = item.get("name") if isinstance(item, Mapping) else None
        version = item.get("semanticVersion") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not isinstance(version, str) or not _EXACT.match(version):
            continue
        if managed(kind, name):
            yield (
                ("resourceSelection", "recipes", i),
                f"imagesync publishes new versions of {kind}/{name}; this selection keeps naming {version}, so "
                f"images of later versions are not covered: use {{ref: {name}}} (the version the plan leaves live), "
                f"or {{ref: {name}, version: x.x.x}} to keep covering the images of every version",
            )


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
    advice=selection_advice,
    named_kinds=tuple(sorted(_RECIPE_KIND.values())),
    server_defaults=((("status",), "ENABLED"),),  # a guess, as for pipelines
)
