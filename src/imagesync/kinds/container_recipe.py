"""ContainerRecipe: a Dockerfile template plus components, immutable and versioned."""

from __future__ import annotations

from imagesync.kinds.base import VERSIONED, Document, Kind, RefField
from imagesync.kinds.sharing import Sharing

KIND = Kind(
    name="ContainerRecipe",
    noun="ContainerRecipe",
    arn_type="container-recipe",
    arn_member="containerRecipeArn",
    create_arn_member="containerRecipeArn",
    get_key="containerRecipe",
    list_key="containerRecipeSummaryList",
    schema="container-recipe",
    lifecycle=VERSIONED,
    document=Document(
        member="dockerfileTemplateData",
        uri_member="dockerfileTemplateUri",
        file_field="dockerfileTemplateFile",
        inline_field="dockerfileTemplateData",  # the template text itself
        language="dockerfile",
    ),
    list_params={"owner": "Self"},
    version_wildcard=True,
    refs=(
        RefField(("components", "*"), ("Component",), arn_key="componentArn", pinnable=True),
        RefField(("parentImage",), ("ContainerRecipe",), form="image"),
    ),
    sharing=Sharing(
        "ContainerRecipePolicy",
        "containerRecipeArn",
        ("imagebuilder:GetContainerRecipe", "imagebuilder:ListContainerRecipes"),
    ),
)
