"""Every member the API model's output defines comes back from the sandbox's Get*/List* calls.

One sandbox for the module holds a representative resource of every kind, each created with every
optional member its create call takes (`imagebuilder_full.FullEstate`), plus a finished image build,
resource policies, and what a build and a lifecycle run leave behind. For each implemented Get*/List*
operation (from `Backend.supports`), the expected members are botocore's output shape for it
(`service_model().operation_model(op).output_shape`), recursively two levels into the resource
structures it returns, minus `CONDITIONAL`: members the service returns only in conditions these
resources do not set up, each with its reason. A member missing from a real boto3 response over
HTTP is a sandbox bug.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore import xform_name
from botocore.model import Shape

from imagebuilder_full import FullEstate
from imagesync.sandbox import running
from imagesync.sandbox.backend import Backend
from imagesync.sandbox.model import service_model
from support import ACCOUNT, make_client

SHARED_WITH = "210987654321"

# Members the service returns only under conditions the representative resources do not create:
# "Shape.member" -> why it is absent here.
CONDITIONAL: dict[str, str] = {
    # Pagination: these resources fit on one page.
    "*.nextToken": "only when another page follows",
    # Alternatives: a resource has one of each pair, and these resources hold the first.
    "ImagePipeline.containerRecipeArn": "the representative pipeline builds an image recipe",
    "Image.containerRecipe": "the representative image is built from an image recipe",
    # State details that exist only for failures or deprecation.
    "ComponentState.reason": "only for a deprecated or failed component",
    "WorkflowState.reason": "only for a deprecated or failed workflow",
    "ImageState.reason": "only for a failed or cancelled image",
    "LifecycleExecutionState.reason": "only for a failed or cancelled lifecycle execution",
    "Image.deprecationTime": "only once the image is deprecated",
    "ImageSummary.deprecationTime": "only once the image is deprecated",
    "InfrastructureConfiguration.dateUpdated": "only after an update",
    "DistributionConfiguration.dateUpdated": "only after an update",
    "LifecyclePolicy.dateUpdated": "only after an update",
    "LifecyclePolicy.dateLastRun": "only after the policy has run",
    "LifecyclePolicySummary.dateUpdated": "only after an update",
    "LifecyclePolicySummary.dateLastRun": "only after the policy has run",
    "InfrastructureConfigurationSummary.dateUpdated": "only after an update",
    "DistributionConfigurationSummary.dateUpdated": "only after an update",
    "OutputResources.containers": "only for container images; the representative image is an AMI",
    # Members that exclude the ones the representative resources give.
    "InstanceBlockDeviceMapping.virtualName": "an instance-store mapping; these mappings give ebs",
    "InstanceBlockDeviceMapping.noDevice": "a mapping that suppresses a device; these mappings give ebs",
    "Placement.hostId": "only with tenancy 'host' on a dedicated host; the placement gives an availability zone",
    "Placement.hostResourceGroupArn": "only with tenancy 'host' in a host resource group",
    "LifecyclePolicyResourceSelection.tagMap": "the policy selects by recipes, the alternative to tags",
    "Distribution.fastLaunchConfigurations": "EC2 Fast Launch is for Windows AMIs; the distribution is Linux",
    "WorkflowExecutionMetadata.retried": "only for a workflow execution that was retried",
    "ListLifecycleExecutionResourcesResponse.resources": "only when the rules act on an image; the "
    "representative image is younger than the policy's 30-day age rule",
    # Marketplace and third-party products.
    "Component.productCodes": "only for AWS Marketplace components",
    "ComponentVersion.productCodes": "only for AWS Marketplace components",
    "Component.publisher": "only for AWS Marketplace components",
    "ComponentSummary.publisher": "only for AWS Marketplace components",
    "Component.obfuscate": "only for AWS Marketplace components",
    "ComponentSummary.obfuscate": "only for AWS Marketplace components",
    # Messages that accompany a failure or a skipped step.
    "*.message": "only when the execution has something to report",
    "*.rollbackStatus": "only for a step that has a rollback",
    "*.lastLaunched": "only after an instance was launched from the image",
    "Image.lifecycleExecutionId": "only once a lifecycle action touched the image",
    "ImageScanState.reason": "only for a scan that did not complete (abandoned, failed or timed out)",
    "ImageSummary.lifecycleExecutionId": "only once a lifecycle action touched the image",
}


# Members the sandbox does not return yet although the service does: operation -> what is missing.
# Each runs as a strict expected failure, so returning the member turns it into an XPASS to remove here.
KNOWN_GAPS: dict[str, str] = {}


def _share(kind: str, arn: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": [SHARED_WITH]},
            "Action": [f"imagebuilder:Get{kind}", f"imagebuilder:List{kind}s"],
            "Resource": [arn],
        }],
    })


@pytest.fixture(scope="module")
def estate() -> Iterator[dict[str, Any]]:
    """A sandbox with a fully specified resource of every kind, and the ARNs and ids to read them by."""
    with running(clock_speed=0) as sb:
        client = make_client(sb.endpoint_url, retries={"total_max_attempts": 1})
        full = FullEstate(client, ACCOUNT, sb.endpoint_url)
        arns: dict[str, Any] = {"client": client, "sandbox": sb}
        arns["component"] = full.component("output-members-setup")
        arns["workflow"] = full.workflow("output-members-build")
        arns["imageRecipe"] = full.image_recipe("output-members", component_arn=arns["component"])
        arns["containerRecipe"] = full.container_recipe("output-members-container", component_arn=arns["component"])
        arns["infrastructure"] = full.infrastructure("output-members-infrastructure")
        arns["distribution"] = full.distribution("output-members-distribution")
        arns["pipeline"] = full.pipeline(
            "output-members-pipeline", arns["imageRecipe"], arns["infrastructure"], arns["distribution"],
            workflow_arn=arns["workflow"],
        )
        arns["lifecycle"] = full.lifecycle_policy("output-members-lifecycle", recipe="output-members")
        arns["image"] = full.build(arns["pipeline"])
        full.advance(3600)  # the lifecycle run the build's day started has ended by now
        for kind, key, put in (
            ("Component", "component", client.put_component_policy),
            ("ImageRecipe", "imageRecipe", client.put_image_recipe_policy),
            ("ContainerRecipe", "containerRecipe", client.put_container_recipe_policy),
            ("Image", "image", client.put_image_policy),
        ):
            member = {"Component": "componentArn", "ImageRecipe": "imageRecipeArn",
                      "ContainerRecipe": "containerRecipeArn", "Image": "imageArn"}[kind]
            put(**{member: arns[key], "policy": _share(kind, arns[key])})
        yield arns


def _version_arn(build_arn: str) -> str:
    return build_arn.rsplit("/", 1)[0]


# How to call each operation against the estate: op -> estate -> kwargs.
CALLS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "GetComponent": lambda e: {"componentBuildVersionArn": e["component"]},
    "GetComponentPolicy": lambda e: {"componentArn": e["component"]},
    "GetContainerRecipe": lambda e: {"containerRecipeArn": e["containerRecipe"]},
    "GetContainerRecipePolicy": lambda e: {"containerRecipeArn": e["containerRecipe"]},
    "GetDistributionConfiguration": lambda e: {"distributionConfigurationArn": e["distribution"]},
    "GetImage": lambda e: {"imageBuildVersionArn": e["image"]},
    "GetImagePipeline": lambda e: {"imagePipelineArn": e["pipeline"]},
    "GetImagePolicy": lambda e: {"imageArn": e["image"]},
    "GetImageRecipe": lambda e: {"imageRecipeArn": e["imageRecipe"]},
    "GetImageRecipePolicy": lambda e: {"imageRecipeArn": e["imageRecipe"]},
    "GetInfrastructureConfiguration": lambda e: {"infrastructureConfigurationArn": e["infrastructure"]},
    "GetLifecyclePolicy": lambda e: {"lifecyclePolicyArn": e["lifecycle"]},
    "GetWorkflow": lambda e: {"workflowBuildVersionArn": e["workflow"]},
    "ListComponentBuildVersions": lambda e: {"componentVersionArn": _version_arn(e["component"])},
    "ListComponents": lambda e: {},
    "ListContainerRecipes": lambda e: {},
    "ListDistributionConfigurations": lambda e: {},
    "ListImageBuildVersions": lambda e: {"imageVersionArn": _version_arn(e["image"])},
    "ListImagePipelineImages": lambda e: {"imagePipelineArn": e["pipeline"]},
    "ListImagePipelines": lambda e: {},
    "ListImageRecipes": lambda e: {},
    "ListImages": lambda e: {},
    "ListInfrastructureConfigurations": lambda e: {},
    "ListLifecyclePolicies": lambda e: {},
    "ListTagsForResource": lambda e: {"resourceArn": e["pipeline"]},
    "ListWorkflowBuildVersions": lambda e: {"workflowVersionArn": _version_arn(e["workflow"])},
    "ListWorkflows": lambda e: {},
    "ListWorkflowExecutions": lambda e: {"imageBuildVersionArn": e["image"]},
    "GetWorkflowExecution": lambda e: {"workflowExecutionId": _first_workflow_execution(e)},
    "ListWorkflowStepExecutions": lambda e: {"workflowExecutionId": _first_workflow_execution(e)},
    "GetWorkflowStepExecution": lambda e: {"stepExecutionId": _first_step_execution(e)},
    "ListLifecycleExecutions": lambda e: {"resourceArn": e["lifecycle"]},
    "GetLifecycleExecution": lambda e: {"lifecycleExecutionId": _first_lifecycle_execution(e)},
    "ListLifecycleExecutionResources": lambda e: {"lifecycleExecutionId": _first_lifecycle_execution(e)},
}


def _first_lifecycle_execution(e: dict[str, Any]) -> str:
    executions = e["client"].list_lifecycle_executions(resourceArn=e["lifecycle"])["lifecycleExecutions"]
    assert executions, "the lifecycle policy has not run"
    return str(executions[0]["lifecycleExecutionId"])


def _first_workflow_execution(e: dict[str, Any]) -> str:
    executions = e["client"].list_workflow_executions(imageBuildVersionArn=e["image"])["workflowExecutions"]
    assert executions, "the representative build ran no workflow"
    return str(executions[0]["workflowExecutionId"])


def _first_step_execution(e: dict[str, Any]) -> str:
    steps = e["client"].list_workflow_step_executions(workflowExecutionId=_first_workflow_execution(e))["steps"]
    assert steps, "the representative workflow execution has no steps"
    return str(steps[0]["stepExecutionId"])


def _excluded(shape: Shape, member: str) -> bool:
    return f"{shape.name}.{member}" in CONDITIONAL or f"*.{member}" in CONDITIONAL


def missing_members(shape: Shape, value: Any, path: str, depth: int) -> list[str]:
    """Paths of the members `shape` defines that `value` lacks, `depth` more levels down."""
    missing: list[str] = []
    for member, member_shape in shape.members.items():
        if _excluded(shape, member):
            continue
        where = f"{path}.{member}" if path else member
        if member not in value:
            missing.append(f"{where} ({shape.name}.{member})")
            continue
        if depth == 0:
            continue
        child = value[member]
        if member_shape.type_name == "structure":
            missing += missing_members(member_shape, child, where, depth - 1)
        elif member_shape.type_name == "list" and member_shape.member.type_name == "structure":
            if not child:
                missing.append(f"{where}[] (an empty list: no item to check)")
            for i, item in enumerate(child):
                missing += missing_members(member_shape.member, item, f"{where}[{i}]", depth - 1)
    return missing


def _operations() -> list[str]:
    model = service_model()
    backend = Backend()
    return sorted(op for op in model.operation_names if op.startswith(("Get", "List")) and backend.supports(op))


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(op, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[op])] if op in KNOWN_GAPS else [])
        for op in _operations()
    ],
)
def test_every_output_member_is_returned(operation: str, estate: dict[str, Any]) -> None:
    """Output members from botocore's Image Builder model, for resources created with every optional member."""
    if operation not in CALLS:
        pytest.fail(f"{operation} is implemented but has no representative call: add one to CALLS")
    client = estate["client"]
    response = getattr(client, _snake(operation))(**CALLS[operation](estate))
    response.pop("ResponseMetadata", None)
    shape = service_model().operation_model(operation).output_shape
    # The response, then the resource structure (or list items) it holds, then one level inside those.
    missing = missing_members(shape, response, "", depth=3)
    assert not missing, f"{operation} lacks:\n" + "\n".join(missing)


def _snake(operation: str) -> str:
    return xform_name(operation)


def test_exclusions_name_members_the_model_defines() -> None:
    """Every `Shape.member` exclusion names a real output member, so a typo cannot hide a missing one."""
    model = service_model()
    unknown = [
        key
        for key in CONDITIONAL
        if not key.startswith("*.") and key.split(".")[1] not in model.shape_for(key.split(".")[0]).members
    ]
    assert not unknown
