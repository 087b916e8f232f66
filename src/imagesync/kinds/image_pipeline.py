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
    refs=(
        RefField(("imageRecipeArn",), ("ImageRecipe",)),
        RefField(("containerRecipeArn",), ("ContainerRecipe",)),
        RefField(("infrastructureConfigurationArn",), ("InfrastructureConfiguration",)),
        RefField(("distributionConfigurationArn",), ("DistributionConfiguration",)),
        RefField(("workflows", "*", "workflowArn"), ("Workflow",)),
    ),
    update_member="imagePipelineArn",
    listed_whole=True,  # the list holds the whole pipeline
    # Documented in the API reference unless marked as a guess.
    server_defaults=(
        (("enhancedImageMetadataEnabled",), True),
        (("status",), "ENABLED"),  # a guess: what the service returns for a pipeline created without one
        (("schedule", "timezone"), "UTC"),
        (("schedule", "pipelineExecutionStartCondition"), "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE"),
        (("imageTestsConfiguration", "imageTestsEnabled"), True),
        (("imageTestsConfiguration", "timeoutMinutes"), 720),  # stored and returned, though ignored
    ),
)
