"""ImageRecipe: a parent image plus components, immutable and versioned (no build numbers)."""

from __future__ import annotations

from imagesync.kinds.base import VERSIONED, Kind, RefField
from imagesync.kinds.sharing import Sharing

KIND = Kind(
    name="ImageRecipe",
    noun="ImageRecipe",
    arn_type="image-recipe",
    arn_member="imageRecipeArn",
    create_arn_member="imageRecipeArn",
    get_key="imageRecipe",
    list_key="imageRecipeSummaryList",
    schema="image-recipe",
    lifecycle=VERSIONED,
    list_params={"owner": "Self"},
    version_wildcard=True,
    refs=(
        RefField(("components", "*"), ("Component",), arn_key="componentArn", pinnable=True),
        # A managed parent recipe is layered through its newest image, so base rebuilds flow down
        # through the child pipeline's dependency-update start condition.
        RefField(("parentImage",), ("ImageRecipe",), form="image"),
    ),
    sharing=Sharing(
        "ImageRecipePolicy", "imageRecipeArn", ("imagebuilder:GetImageRecipe", "imagebuilder:ListImageRecipes")
    ),
)
