"""ImagePipeline: a recipe, infrastructure and distribution on a schedule; mutable."""

from __future__ import annotations

from imagesync.kinds.base import Kind, RefField

KIND = Kind(
    name="ImagePipeline",
    noun="ImagePipeline",
    arn_type="image-pipeline",
    arn_member="imagePipelineArn",
    create_arn_member="imagePipelineArn",
    get_key="imagePipeline",
    list_key="imagePipelineList",
    schema="image-pipeline",
    versioned=False,
    refs=(
        RefField(("imageRecipeArn",), ("ImageRecipe",)),
        RefField(("containerRecipeArn",), ("ContainerRecipe",)),
        RefField(("infrastructureConfigurationArn",), ("InfrastructureConfiguration",)),
        RefField(("distributionConfigurationArn",), ("DistributionConfiguration",)),
        RefField(("workflows", "*", "workflowArn"), ("Workflow",)),
    ),
    update_member="imagePipelineArn",
)
