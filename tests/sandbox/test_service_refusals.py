"""What the sandbox refuses and accepts the way Image Builder does, through real boto3 clients over HTTP.

Component and workflow documents on Create, recipe component parameters, parent images,
distribution regions, the signing region and lifecycle policy recipe selections. Each test's
docstring names the public source of the rule it checks.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imagesync.sandbox import RunningSandbox
from support import ACCOUNT, REGION, SIMPLE_DOCUMENT, make_client

AMAZON = f"arn:aws:imagebuilder:{REGION}:aws"
AL2023 = f"{AMAZON}:image/amazon-linux-2023-x86/x.x.x"
AMI = "ami-0123456789abcdef0"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ImageBuilderLifecycle"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def bash_step(name: str = "Hello") -> str:
    return f"      - name: {name}\n        action: ExecuteBash\n        inputs:\n          commands: [echo hi]\n"


def one_step(step: str, phase: str = "build") -> str:
    """A document whose only phase holds `step` (YAML lines indented for a steps list)."""
    return f"schemaVersion: 1.0\nphases:\n  - name: {phase}\n    steps:\n{step}"


def create_component(client: Any, data: str, platform: str = "Linux", name: str = "comp", **extra: Any) -> str:
    return client.create_component(name=name, semanticVersion="1.0.0", platform=platform, data=data, **extra)[
        "componentBuildVersionArn"
    ]


def refused(err: pytest.ExceptionInfo[ClientError], code: str, *fragments: str) -> None:
    error = err.value.response["Error"]
    assert error["Code"] == code, error
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    for fragment in fragments:
        assert fragment in error["Message"], error["Message"]


# --- component documents --------------------------------------------------------------------

DOCUMENT_REFUSALS = [
    pytest.param(doc("phases:\n  - name: build\n    steps: []\n"), "Linux", "'schemaVersion'", id="no-schema-version"),
    pytest.param(SIMPLE_DOCUMENT.replace("1.0", "2.0", 1), "Linux", "Unsupported schemaVersion '2.0'", id="schema-2.0"),
    pytest.param("schemaVersion: 1.0\n", "Linux", "'phases' must be a non-empty list", id="no-phases"),
    pytest.param("schemaVersion: 1.0\nphases: []\n", "Linux", "'phases' must be a non-empty list", id="empty-phases"),
    pytest.param("schemaVersion: 1.0\nphases: {build: {}}\n", "Linux", "'phases' must be a non-empty", id="phases-map"),
    pytest.param(one_step(bash_step(), phase="cleanup"), "Linux", "Unknown phase 'cleanup'", id="unknown-phase"),
    pytest.param(
        one_step(bash_step()) + "  - name: build\n    steps:\n" + bash_step("Again"),
        "Linux",
        "The phase 'build' appears more than once",
        id="duplicate-phase",
    ),
    pytest.param(
        "schemaVersion: 1.0\nphases:\n  - name: build\n", "Linux", "'build' must have a non-empty list", id="no-steps"
    ),
    pytest.param(
        "schemaVersion: 1.0\nphases:\n  - name: build\n    steps: []\n",
        "Linux",
        "'build' must have a non-empty list of 'steps'",
        id="empty-steps",
    ),
    pytest.param(
        one_step(bash_step("Loading ssh keys")),
        "Linux",
        "Invalid step name 'Loading ssh keys' in phase 'build'. Allowed characters are combinations of numbers [0-9], "
        "english letters [a-z,A-Z] and special characters [-_].",
        id="step-name-with-spaces",
    ),
    pytest.param(
        one_step(bash_step("Same") + bash_step("Same")), "Linux", "Duplicate step name 'Same'", id="duplicate-step"
    ),
    pytest.param(
        one_step("      - name: Go\n        action: RunScript\n        inputs: {commands: [x]}\n"),
        "Linux",
        "Parsing step 'Go' in phase 'build' failed. Error: Unknown action 'RunScript'.",
        id="unknown-action",
    ),
    pytest.param(
        one_step("      - name: Ps\n        action: ExecutePowerShell\n        inputs: {commands: [Write-Host hi]}\n"),
        "Linux",
        "Action ExecutePowerShell is only supported on Windows",
        id="powershell-on-linux",
    ),
    pytest.param(
        one_step(
            "      - name: Reg\n        action: SetRegistry\n        inputs:\n          - {path: 'HKLM:\\x', name: n,"
            " value: v, type: SZ}\n"
        ),
        "Linux",
        "Action SetRegistry is only supported on Windows",
        id="registry-on-linux",
    ),
    pytest.param(
        one_step(bash_step()), "Windows", "Action ExecuteBash is not supported on Windows", id="bash-on-windows"
    ),
    pytest.param(
        one_step(
            "      - name: Link\n        action: CreateSymlink\n        inputs:\n          - {path: a, target: b}\n"
        ),
        "Windows",
        "Action CreateSymlink is not supported on Windows",
        id="symlink-on-windows",
    ),
    pytest.param(
        one_step(
            "      - name: Mk\n        action: CreateFile\n        inputs:\n          - {path: 'C:\\a', owner: me}\n"
        ),
        "Windows",
        "does not support 'owner' on Windows",
        id="create-file-owner-on-windows",
    ),
    pytest.param(
        one_step("      - name: Up\n        action: UpdateOS\n"),
        "macOS",
        "UpdateOS is not supported on macOS",
        id="updateos-mac",
    ),
    pytest.param(
        one_step("      - name: Download\n        action: S3Download\n        inputs: []\n"),
        "Linux",
        "Parsing step 'Download' in phase 'build' failed. "
        "Error: Action S3Download has no inputs; it requires an 'inputs'",
        id="s3download-empty-inputs",
    ),
    pytest.param(
        one_step("      - name: Download\n        action: S3Download\n"),
        "Linux",
        "Action S3Download has no inputs",
        id="s3download-no-inputs",
    ),
    pytest.param(
        one_step(
            "      - name: Download\n        action: S3Download\n        inputs:\n          - {source: 's3://b/k'}\n"
        ),
        "Linux",
        "Action S3Download requires 'destination' in inputs[0]",
        id="s3download-no-destination",
    ),
    pytest.param(
        one_step(
            "      - name: Download\n        action: S3Download\n"
            "        inputs: {source: 's3://b/k', destination: /tmp}\n"
        ),
        "Linux",
        "takes its 'inputs' as a list of maps",
        id="s3download-map-inputs",
    ),
    pytest.param(
        one_step("      - name: Run\n        action: ExecuteBash\n        inputs: {file: run.sh}\n"),
        "Linux",
        "Action ExecuteBash requires 'commands' in inputs",
        id="bash-without-commands",
    ),
    pytest.param(
        one_step(
            "      - name: Run\n        action: ExecutePowerShell\n        inputs: {commands: [a], file: b.ps1}\n"
        ),
        "Windows",
        "exactly one of 'commands' and 'file'",
        id="powershell-commands-and-file",
    ),
    pytest.param(
        one_step(bash_step() + "        onFailure: Retry\n"),
        "Linux",
        "onFailure must be one of Abort, Continue, Ignore",
        id="on-failure",
    ),
    pytest.param(
        one_step(bash_step() + "        maxAttempts: three\n"),
        "Linux",
        "maxAttempts must be a positive integer",
        id="max-attempts-text",
    ),
    pytest.param(
        one_step(bash_step() + "        timeoutSeconds: 1.5\n"),
        "Linux",
        "timeoutSeconds must be a positive integer",
        id="timeout-float",
    ),
    pytest.param(
        one_step(bash_step() + "        timeoutSeconds: 0\n"),
        "Linux",
        "timeoutSeconds must be a positive integer or -1",
        id="timeout-zero",
    ),
    pytest.param(
        "schemaVersion: 1.0\nparameters:\n  - ab: {type: string}\n" + one_step(bash_step()).split("\n", 1)[1],
        "Linux",
        "Invalid name 'ab' in parameters[0]",
        id="parameter-name-too-short",
    ),
    pytest.param(
        "schemaVersion: 1.0\nparameters:\n  - Name1: {type: string}\nconstants:\n  - Name1: {type: string, value: v}\n"
        + one_step(bash_step()).split("\n", 1)[1],
        "Linux",
        "The name 'Name1' in constants[0] is already defined",
        id="parameter-and-constant-same-name",
    ),
]


@pytest.mark.parametrize(("data", "platform", "fragment"), DOCUMENT_REFUSALS)
def test_component_document_refused(client: Any, data: str, platform: str, fragment: str) -> None:
    """CreateComponent refuses a document that breaks the AWSTOE document schema with
    InvalidParameterValueException on 'data', before anything is stored.

    Sources: the document schema (schemaVersion 1.0, phases and steps required, unique phase and
    step names, onFailure Abort|Continue|Ignore, integer maxAttempts and timeoutSeconds, -1 or
    positive) https://docs.aws.amazon.com/imagebuilder/latest/userguide/toe-use-documents.html;
    the action modules, their inputs and platforms (ExecuteBash supports Linux; ExecutePowerShell,
    SetRegistry, InstallMSI Windows; CreateSymlink, Set*Owner, Set*Permissions not Windows;
    CreateFile/CreateFolder refuse owner, group, permissions on Windows; UpdateOS not macOS)
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/toe-action-modules.html;
    parameter and constant names
    https://github.com/awsdocs/ec2-image-builder-user-guide/blob/9687bbd2b71556953af98c9823ee9db24717d0bf/doc_source/toe-user-defined-variables.md;
    the service's step-name message https://github.com/aws/aws-cdk/issues/19909; the S3Download
    inputs message https://github.com/CloudSnorkel/cdk-github-runners/issues/964.
    """
    with pytest.raises(ClientError) as err:
        create_component(client, data, platform)
    refused(err, "InvalidParameterValueException", "The value supplied for parameter 'data' is not valid.", fragment)
    assert client.list_components()["componentVersionList"] == []


DOCUMENT_ACCEPTANCES = [
    pytest.param(SIMPLE_DOCUMENT, "Linux", id="simple"),
    pytest.param(SIMPLE_DOCUMENT.replace("schemaVersion: 1.0", 'schemaVersion: "1.0"'), "Linux", id="quoted-1.0"),
    pytest.param(
        one_step(
            "      - name: Ps\n        action: ExecutePowerShell\n"
            "        inputs:\n          commands: [Write-Host hi]\n"
        ),
        "Windows",
        id="powershell-on-windows",
    ),
    pytest.param(one_step("      - name: Reboot\n        action: Reboot\n"), "Linux", id="reboot-without-inputs"),
    pytest.param(one_step("      - name: Up\n        action: UpdateOS\n"), "Linux", id="updateos-without-inputs"),
    pytest.param(
        one_step(bash_step() + "        onFailure: Ignore\n        maxAttempts: 3\n        timeoutSeconds: -1\n"),
        "Linux",
        id="step-options",
    ),
    pytest.param(one_step(bash_step(), phase="test"), "Linux", id="test-phase"),
    pytest.param(
        "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
        + bash_step("Build-1_a")
        + "  - name: validate\n    steps:\n"
        + bash_step("Check")
        + "  - name: test\n    steps:\n"
        + bash_step("Check"),
        "Linux",
        id="three-phases-same-step-name",
    ),
    pytest.param(
        one_step(
            "      - name: Get\n        action: S3Download\n        inputs:\n"
            "          - {source: 's3://b/k', destination: /tmp/k}\n"
        ),
        "macOS",
        id="s3download",
    ),
    pytest.param(
        "schemaVersion: 1.0\nparameters:\n  - Version: {type: string, default: '1'}\n"
        + one_step(
            "      - name: Run\n        action: ExecuteBash\n        inputs:\n"
            "          commands: ['echo {{ Version }}']\n        loop:\n          forEach: [a, b]\n"
        ).split("\n", 1)[1],
        "Linux",
        id="parameter-and-loop",
    ),
]


@pytest.mark.parametrize(("data", "platform"), DOCUMENT_ACCEPTANCES)
def test_component_document_accepted(client: Any, data: str, platform: str) -> None:
    """Valid AWSTOE documents are accepted: unquoted `schemaVersion: 1.0` (as every AWS example
    writes it), modules with only optional inputs written without `inputs`, the step options,
    the same step name in different phases, and the per-platform modules on their platform.

    Sources: https://docs.aws.amazon.com/imagebuilder/latest/userguide/toe-use-documents.html and
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/toe-action-modules.html.
    """
    arn = create_component(client, data, platform)
    assert client.get_component(componentBuildVersionArn=arn)["component"]["platform"] == platform


def test_component_document_in_s3_is_not_read(client: Any) -> None:
    """A component given by `uri` is accepted without the sandbox reading the document: only
    inline `data` is parsed on Create.

    Source: CreateComponent takes `data` or `uri`
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/toe-use-documents.html.
    """
    arn = client.create_component(name="in-s3", semanticVersion="1.0.0", platform="Linux", uri="s3://bucket/doc.yaml")[
        "componentBuildVersionArn"
    ]
    assert arn.endswith("component/in-s3/1.0.0/1")


# --- workflow documents ---------------------------------------------------------------------


def workflow(steps: str, head: str = "schemaVersion: 1.0\n") -> str:
    return head + "steps:\n" + steps


LAUNCH = "  - name: Launch\n    action: LaunchInstance\n    onFailure: Abort\n    inputs: {waitFor: ssmAgent}\n"

WORKFLOW_REFUSALS = [
    pytest.param("steps:\n" + LAUNCH, "'schemaVersion'", id="no-schema-version"),
    pytest.param(workflow(LAUNCH, "schemaVersion: 2.0\n"), "Unsupported schemaVersion", id="schema-2.0"),
    pytest.param("schemaVersion: 1.0\n", "needs a non-empty list of 'steps'", id="no-steps"),
    pytest.param("schemaVersion: 1.0\nsteps: []\n", "needs a non-empty list of 'steps'", id="empty-steps"),
    pytest.param(workflow("  - action: LaunchInstance\n"), "steps[0] must have a 'name'", id="step-without-name"),
    pytest.param(workflow(LAUNCH + LAUNCH), "Duplicate step name 'Launch'", id="duplicate-step"),
    pytest.param(
        workflow("  - name: Build\n    action: BuildImage\n"),
        "Parsing step 'Build' failed. Error: Unknown workflow step action 'BuildImage'.",
        id="unknown-action",
    ),
    pytest.param(
        workflow(LAUNCH.replace("Abort", "Ignore")), "onFailure must be one of Abort, Continue", id="on-failure"
    ),
    pytest.param(
        workflow("".join(LAUNCH.replace("Launch", f"Launch{i}") for i in range(16))),
        "at most 15 steps, got 16",
        id="sixteen-steps",
    ),
    pytest.param(
        workflow(LAUNCH, "schemaVersion: 1.0\nparameters:\n  - name: wait\n    type: bool\n"),
        "parameters[0].type must be one of string, integer, boolean, stringList",
        id="parameter-type",
    ),
]


@pytest.mark.parametrize(("data", "fragment"), WORKFLOW_REFUSALS)
def test_workflow_document_refused(client: Any, data: str, fragment: str) -> None:
    """CreateWorkflow refuses a document outside the workflow document format with
    InvalidParameterValueException on 'data'.

    Sources: the document structure (schemaVersion 1.0, up to 15 steps, parameter types string,
    integer, boolean, stringList)
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-workflow-create-document.html and
    https://docs.amazonaws.cn/imagebuilder/latest/userguide/image-workflow-create-document.html;
    the step actions https://docs.aws.amazon.com/zh_cn/imagebuilder/latest/userguide/wfdoc-step-actions.html
    and https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.WorkflowAction.html
    (with onFailure Abort or Continue).
    """
    with pytest.raises(ClientError) as err:
        client.create_workflow(name="wflow", semanticVersion="1.0.0", type="BUILD", data=data)
    refused(err, "InvalidParameterValueException", "The value supplied for parameter 'data' is not valid.", fragment)
    assert client.list_workflows()["workflowVersionList"] == []


def test_workflow_document_with_documented_actions_accepted(client: Any) -> None:
    """A build workflow using documented step actions, parameters and outputs is accepted.

    Sources: https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.WorkflowAction.html
    (its example: LaunchInstance, ExecuteComponents, CreateImage, TerminateInstance) and
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-workflow-create-document.html.
    """
    data = doc(
        """
        name: build-image
        schemaVersion: 1.0
        parameters:
          - name: waitForActionAtEnd
            type: boolean
            default: true
        steps:
          - name: LaunchBuildInstance
            action: LaunchInstance
            onFailure: Abort
            inputs: {waitFor: ssmAgent}
          - name: ExecuteComponents
            action: ExecuteComponents
            onFailure: Abort
            inputs: {instanceId.$: $.stepOutputs.LaunchBuildInstance.instanceId}
          - name: CreateImage
            action: CreateImage
            onFailure: Abort
            inputs: {instanceId.$: $.stepOutputs.LaunchBuildInstance.instanceId}
          - name: TerminateInstance
            action: TerminateInstance
            onFailure: Continue
            inputs: {instanceId.$: $.stepOutputs.LaunchBuildInstance.instanceId}
        outputs:
          - name: ImageId
            value: $.stepOutputs.CreateImage.imageId
        """
    )
    created = client.create_workflow(name="wflow", semanticVersion="1.0.0", type="BUILD", data=data)
    arn = created["workflowBuildVersionArn"]
    assert arn.endswith("workflow/build/wflow/1.0.0/1")


# --- recipe component parameters ------------------------------------------------------------

PARAMETERIZED = doc(
    """
    schemaVersion: 1.0
    parameters:
      - Greeting:
          type: string
          default: hello
      - Target:
          type: string
    phases:
      - name: build
        steps:
          - name: Say
            action: ExecuteBash
            inputs:
              commands: ['echo "{{ Greeting }} {{ Target }}"']
    """
)


def recipe_with(client: Any, parameters: list[dict[str, Any]], name: str = "rcp") -> str:
    component = create_component(client, PARAMETERIZED, name="greet")
    plain = create_component(client, SIMPLE_DOCUMENT, name="plain")
    return client.create_image_recipe(
        name=name,
        semanticVersion="1.0.0",
        parentImage=AMI,
        components=[{"componentArn": plain}, {"componentArn": component, "parameters": parameters}],
    )["imageRecipeArn"]


def test_recipe_parameter_the_component_does_not_define(client: Any) -> None:
    """A recipe passing a parameter the component's document does not define is refused with
    InvalidParameterCombinationException, naming the component's index and the parameter.

    Source: the service's answer to CreateImageRecipe in
    https://github.com/aws-ia/terraform-aws-ec2-image-builder/issues/106 ("The value supplied for
    parameter 'components[0].parameters' is not valid. The following parameters are not defined
    in the provided component: S3BucketName").
    """
    with pytest.raises(ClientError) as err:
        recipe_with(client, [{"name": "Target", "value": ["x"]}, {"name": "S3BucketName", "value": ["b"]}])
    refused(
        err,
        "InvalidParameterCombinationException",
        "The value supplied for parameter 'components[1].parameters' is not valid. "
        "The following parameters are not defined in the provided component: S3BucketName",
    )
    assert client.list_image_recipes()["imageRecipeSummaryList"] == []


def test_recipe_parameter_given_twice(client: Any) -> None:
    """The same parameter twice in one component's parameters is refused, naming the member path.

    Source: parameters are set once per name (a name identifies a parameter in the document)
    https://github.com/awsdocs/ec2-image-builder-user-guide/blob/9687bbd2b71556953af98c9823ee9db24717d0bf/doc_source/toe-user-defined-variables.md.
    """
    with pytest.raises(ClientError) as err:
        recipe_with(client, [{"name": "Target", "value": ["a"]}, {"name": "Target", "value": ["b"]}])
    refused(
        err, "InvalidParameterValueException", "'components[1].parameters[1].name'", "'Target' is given more than once"
    )


def test_recipe_may_leave_out_a_required_parameter(client: Any) -> None:
    """A parameter without a default left out of the recipe is accepted on Create: the service
    reports it when the build runs the component.

    Source: an AWS engineer's construct documentation in https://github.com/aws/aws-cdk/pull/36092
    ("any required parameters that are not included will result in a build failure").
    """
    arn = recipe_with(client, [{"name": "Greeting", "value": ["hi"]}])
    recipe = client.get_image_recipe(imageRecipeArn=arn)["imageRecipe"]
    assert recipe["components"][1]["parameters"] == [{"name": "Greeting", "value": ["hi"]}]


# --- parent images --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parent",
    [
        pytest.param("ami-0a01b234c5de6fabc", id="ami-17-hex"),
        pytest.param("ami-0a01b234", id="ami-8-hex"),
        pytest.param("ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64", id="ssm-path"),
        pytest.param(f"ssm:arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/golden/ami", id="ssm-arn"),
        pytest.param("prod-hjrfo3wfy7m2u", id="marketplace-product"),
        pytest.param(AL2023, id="amazon-latest"),
        pytest.param(f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/base/2024.11.15", id="own-date-version"),
        pytest.param(f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/base/2024.x.x", id="own-date-wildcard"),
    ],
)
def test_image_recipe_parent_forms_accepted(client: Any, parent: str) -> None:
    """parentImage may be an AMI ID, an Image Builder image ARN (wildcards allowed), an SSM
    parameter prefixed `ssm:` (name or ARN), or a Marketplace product ID; versions may be
    date-style (2024.11.15) with right-aligned wildcards.

    Source: CreateImageRecipe parentImage
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_CreateImageRecipe.html; the
    AMI example `ami-0a01b234c5de6fabc`
    https://github.com/awsdocs/ec2-image-builder-user-guide/blob/9687bbd2b71556953af98c9823ee9db24717d0bf/doc_source/create-image-recipes.md;
    wildcards to the right of numbers
    https://github.com/awsdocs/ec2-image-builder-user-guide/blob/9687bbd2b71556953af98c9823ee9db24717d0bf/doc_source/ibhow-semantic-versioning.md.
    """
    # An own base recipe with a date-style version, for the layered parents.
    client.create_image_recipe(name="base", semanticVersion="2024.11.15", parentImage=AMI)
    arn = client.create_image_recipe(name="rcp", semanticVersion="1.0.0", parentImage=parent)["imageRecipeArn"]
    assert client.get_image_recipe(imageRecipeArn=arn)["imageRecipe"]["parentImage"] == parent


@pytest.mark.parametrize(
    ("parent", "code", "fragment"),
    [
        pytest.param("ami-xyz", "InvalidParameterValueException", "'ami-xyz' is not an AMI ID", id="ami-not-hex"),
        pytest.param("ami-0123456789", "InvalidParameterValueException", "is not an AMI ID", id="ami-10-hex"),
        pytest.param("foo", "InvalidParameterValueException", "'foo' is not an AMI ID", id="word"),
        pytest.param("ssm:", "InvalidParameterValueException", "is not an AMI ID", id="ssm-empty"),
        pytest.param(
            f"{AMAZON}:component/update-linux/x.x.x",
            "InvalidParameterValueException",
            "is not an image ARN",
            id="component-arn",
        ),
        pytest.param(
            f"{AMAZON}:image/no-such-image/x.x.x",
            "InvalidParameterValueException",
            "does not exist",
            id="unknown-image",
        ),
    ],
)
def test_image_recipe_parent_malformed_refused(client: Any, parent: str, code: str, fragment: str) -> None:
    """A parentImage in none of the documented forms is refused with InvalidParameterValueException
    naming parentImage.

    Source: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_CreateImageRecipe.html
    (AMI ID, Image Builder image ARN, `ssm:` parameter, Marketplace product ID).
    """
    with pytest.raises(ClientError) as err:
        client.create_image_recipe(name="rcp", semanticVersion="1.0.0", parentImage=parent)
    refused(err, code, "parentImage", fragment)


def container_recipe(client: Any, parent: str, **extra: Any) -> dict[str, Any]:
    arn = client.create_container_recipe(
        containerType="DOCKER",
        name="ctr",
        semanticVersion="1.0.0",
        parentImage=parent,
        components=[{"componentArn": create_component(client, SIMPLE_DOCUMENT)}],
        dockerfileTemplateData="FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}",
        targetRepository={"service": "ECR", "repositoryName": "golden"},
        **extra,
    )["containerRecipeArn"]
    return client.get_container_recipe(containerRecipeArn=arn)["containerRecipe"]


@pytest.mark.parametrize(
    ("parent", "extra", "platform"),
    [
        pytest.param("amazonlinux:latest", {"platformOverride": "Linux"}, "Linux", id="docker-hub"),
        pytest.param("library/ubuntu:22.04", {}, "Linux", id="docker-hub-namespace"),
        pytest.param(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/custom-parent-image", {}, "Linux", id="ecr"),
        pytest.param(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/team/base:1.2", {}, "Linux", id="ecr-tag"),
        pytest.param(
            "mcr.microsoft.com/windows/servercore:ltsc2022",
            {"platformOverride": "Windows"},
            "Windows",
            id="other-registry-windows",
        ),
        pytest.param(AL2023, {}, "Linux", id="amazon-image-arn"),
    ],
)
def test_container_recipe_parent_forms_accepted(client: Any, parent: str, extra: dict[str, Any], platform: str) -> None:
    """A container recipe's parent may be an Image Builder image ARN, an ECR image URI or a Docker
    Hub reference such as `amazonlinux:latest`; platformOverride sets the platform of a custom
    base image.

    Sources: the create-container-recipe example (`amazonlinux:latest` with platformOverride Linux)
    https://github.com/awsdocs/ec2-image-builder-user-guide/blob/9687bbd2b71556953af98c9823ee9db24717d0bf/doc_source/create-container-recipes.md;
    an ECR parent sent by the console https://github.com/aws/aws-cdk/issues/20831.
    """
    recipe = container_recipe(client, parent, **extra)
    assert recipe["parentImage"] == parent and recipe["platform"] == platform


@pytest.mark.parametrize(
    ("parent", "fragment"),
    [
        pytest.param("Amazon Linux:latest", "is not an Image Builder image ARN", id="space-and-capitals"),
        pytest.param(
            f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/", "is not a valid Amazon ECR image URI", id="ecr-no-repo"
        ),
        pytest.param(f"{AMAZON}:component/update-linux/x.x.x", "is not an image ARN", id="component-arn"),
    ],
)
def test_container_recipe_parent_malformed_refused(client: Any, parent: str, fragment: str) -> None:
    """A container parent that is neither an image ARN, an ECR URI nor a Docker Hub reference is
    refused with InvalidParameterValueException naming parentImage.

    Sources: https://github.com/awsdocs/ec2-image-builder-user-guide/blob/9687bbd2b71556953af98c9823ee9db24717d0bf/doc_source/create-container-recipes.md
    (the base image is an image ARN or a registry image) and
    https://github.com/aws/aws-cdk/issues/20831 (an ECR image URI).
    """
    with pytest.raises(ClientError) as err:
        container_recipe(client, parent)
    refused(err, "InvalidParameterValueException", "parentImage", fragment)
    assert client.list_container_recipes()["containerRecipeSummaryList"] == []


# --- regions --------------------------------------------------------------------------------


def distribution(client: Any, regions: list[str]) -> str:
    return client.create_distribution_configuration(
        name="dist",
        distributions=[
            {"region": r, "amiDistributionConfiguration": {"name": "x-{{imagebuilder:buildDate}}"}} for r in regions
        ],
    )["distributionConfigurationArn"]


@pytest.mark.parametrize(
    ("regions", "member", "fragment"),
    [
        pytest.param(["us-east-1", "us-east-7"], "distributions[1].region", "'us-east-7'", id="unknown-region"),
        pytest.param(["useast1"], "distributions[0].region", "'useast1'", id="no-hyphens"),
        pytest.param(
            ["cn-north-1"], "distributions[0].region", "not a region of the aws partition", id="other-partition"
        ),
    ],
)
def test_distribution_region_outside_the_partition_refused(
    client: Any, regions: list[str], member: str, fragment: str
) -> None:
    """A distribution to a region the caller's partition does not have is refused with
    InvalidParameterValueException naming the distribution's region.

    Source: distributions[].region names an AWS Region of the partition
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-distribution-settings.html and
    the partition's regions in botocore's endpoint data.
    """
    with pytest.raises(ClientError) as err:
        distribution(client, regions)
    refused(err, "InvalidParameterValueException", f"'{member}'", fragment)
    assert client.list_distribution_configurations()["distributionConfigurationSummaryList"] == []


def test_distribution_regions_of_the_partition_accepted(client: Any) -> None:
    """Real commercial regions are accepted, on create and on update.

    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-distribution-settings.html.
    """
    arn = distribution(client, ["us-east-1", "eu-central-1", "ap-southeast-2"])
    client.update_distribution_configuration(
        distributionConfigurationArn=arn, distributions=[{"region": "sa-east-1"}, {"region": "il-central-1"}]
    )
    got = client.get_distribution_configuration(distributionConfigurationArn=arn)["distributionConfiguration"]
    assert [d["region"] for d in got["distributions"]] == ["sa-east-1", "il-central-1"]
    with pytest.raises(ClientError) as err:
        client.update_distribution_configuration(distributionConfigurationArn=arn, distributions=[{"region": "mars-1"}])
    refused(err, "InvalidParameterValueException", "'distributions[0].region'")


def test_request_signed_for_no_real_region_refused(sandbox: RunningSandbox) -> None:
    """A call signed for a region no AWS partition has answers 403 InvalidSignatureException naming
    the region, and does nothing; a China-region call is served in its own partition.

    Source: AWS endpoints answer a SigV4 credential scope they do not serve with
    "InvalidSignatureException: Credential should be scoped to a valid region" (HTTP 403)
    https://github.com/aws/aws-sdk-js-v3/issues/5576 and https://github.com/aws/aws-sdk-ruby/issues/508.
    """
    bogus = make_client(sandbox.endpoint_url, region="xx-fake-1", retries={"max_attempts": 1})
    with pytest.raises(ClientError) as err:
        bogus.create_component(name="comp", semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT)
    refused(err, "InvalidSignatureException", "Credential should be scoped to a valid region, not 'xx-fake-1'.")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert make_client(sandbox.endpoint_url).list_components()["componentVersionList"] == []
    china = make_client(sandbox.endpoint_url, region="cn-north-1")
    arn = china.create_component(name="comp", semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT)[
        "componentBuildVersionArn"
    ]
    assert arn.startswith("arn:aws-cn:imagebuilder:cn-north-1:")


# --- lifecycle policies ---------------------------------------------------------------------


def lifecycle(client: Any, resource_type: str, recipes: list[dict[str, str]]) -> str:
    return client.create_lifecycle_policy(
        name="keep",
        executionRole=ROLE,
        resourceType=resource_type,
        policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 3}}],
        resourceSelection={"recipes": recipes},
    )["lifecyclePolicyArn"]


@pytest.mark.parametrize(
    ("resource_type", "selected", "fragment"),
    [
        pytest.param(
            "CONTAINER_IMAGE",
            {"name": "rcp", "semanticVersion": "1.0.0"},
            "'rcp' 1.0.0 is an image recipe, but a lifecycle policy for CONTAINER_IMAGE selects container recipes",
            id="image-recipe-in-container-policy",
        ),
        pytest.param(
            "AMI_IMAGE",
            {"name": "ctr", "semanticVersion": "1.x.x"},
            "'ctr' 1.x.x is a container recipe, but a lifecycle policy for AMI_IMAGE selects image recipes",
            id="container-recipe-in-ami-policy",
        ),
    ],
)
def test_lifecycle_selection_of_the_other_recipe_kind_refused(
    client: Any, resource_type: str, selected: dict[str, str], fragment: str
) -> None:
    """A recipe selection naming a recipe of the other kind than the policy's resource type
    (image recipes are AMI_IMAGE, container recipes CONTAINER_IMAGE) is refused with
    InvalidParameterValueException naming the selection's index, on create and on update.

    Sources: a selection names "an Image Builder recipe" by name and semantic version
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyResourceSelectionRecipe.html;
    the selection lists "image recipes or container recipes"
    https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.LifecyclePolicyResourceSelection.html.
    """
    client.create_image_recipe(name="rcp", semanticVersion="1.0.0", parentImage=AMI)
    container_recipe(client, "amazonlinux:latest")
    with pytest.raises(ClientError) as err:
        lifecycle(client, resource_type, [selected])
    refused(err, "InvalidParameterValueException", "'resourceSelection.recipes[0]'", fragment)
    assert client.list_lifecycle_policies()["lifecyclePolicySummaryList"] == []
    arn = lifecycle(client, "AMI_IMAGE", [{"name": "rcp", "semanticVersion": "1.0.0"}])
    with pytest.raises(ClientError) as err:
        client.update_lifecycle_policy(
            lifecyclePolicyArn=arn,
            executionRole=ROLE,
            resourceType="CONTAINER_IMAGE",
            policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 3}}],
            resourceSelection={
                "recipes": [{"name": "ctr", "semanticVersion": "1.0.0"}, {"name": "rcp", "semanticVersion": "1.0.0"}]
            },
        )
    refused(err, "InvalidParameterValueException", "'resourceSelection.recipes[1]'", "'rcp' 1.0.0 is an image recipe")


@pytest.mark.parametrize(
    ("resource_type", "selected", "fragment"),
    [
        pytest.param(
            "AMI_IMAGE",
            {"name": "never-made", "semanticVersion": "x.x.x"},
            "The image recipe 'never-made' with a version matching x.x.x does not exist.",
            id="unknown-name",
        ),
        pytest.param(
            "AMI_IMAGE",
            {"name": "rcp", "semanticVersion": "2.x.x"},
            "The image recipe 'rcp' with a version matching 2.x.x does not exist.",
            id="no-matching-version",
        ),
        pytest.param(
            "CONTAINER_IMAGE",
            {"name": "ctr", "semanticVersion": "1.0.1"},
            "The container recipe 'ctr' with a version matching 1.0.1 does not exist.",
            id="no-such-container-version",
        ),
    ],
)
def test_lifecycle_selection_of_a_recipe_that_does_not_exist_refused(
    client: Any, resource_type: str, selected: dict[str, str], fragment: str
) -> None:
    """A recipe selection must name a recipe (and a version some version of it matches) that
    exists in the account and region; otherwise InvalidParameterValueException names the
    selection's index and nothing is created.

    Source: the selection names "an Image Builder recipe" by name and semantic version
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyResourceSelectionRecipe.html,
    and the service was seen refusing a policy that selects a recipe not created yet (no public
    page states the error; the sandbox answers InvalidParameterValueException like its other
    references to resources that do not exist).
    """
    client.create_image_recipe(name="rcp", semanticVersion="1.2.3", parentImage=AMI)
    container_recipe(client, "amazonlinux:latest")
    with pytest.raises(ClientError) as err:
        lifecycle(client, resource_type, [selected])
    refused(err, "InvalidParameterValueException", "'resourceSelection.recipes[0]'", fragment)
    assert client.list_lifecycle_policies()["lifecyclePolicySummaryList"] == []


def test_lifecycle_selection_of_existing_recipes_accepted(client: Any) -> None:
    """Existing recipes with exact or wildcard versions, and tag selections, are accepted.

    Sources: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyResourceSelectionRecipe.html
    (the semanticVersion pattern takes x wildcards).
    """
    client.create_image_recipe(name="rcp", semanticVersion="1.2.3", parentImage=AMI)
    container_recipe(client, "amazonlinux:latest")
    lifecycle(
        client,
        "AMI_IMAGE",
        [{"name": "rcp", "semanticVersion": v} for v in ("1.2.3", "1.x.x", "x.x.x")],
    )
    arn = client.create_lifecycle_policy(
        name="containers",
        executionRole=ROLE,
        resourceType="CONTAINER_IMAGE",
        policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 3}}],
        resourceSelection={"recipes": [{"name": "ctr", "semanticVersion": "1.0.0"}]},
    )["lifecyclePolicyArn"]
    assert arn.endswith("lifecycle-policy/containers")
    lifecycle_tags = client.create_lifecycle_policy(
        name="tagged",
        executionRole=ROLE,
        resourceType="AMI_IMAGE",
        policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 3}}],
        resourceSelection={"tagMap": {"lifecycle": "managed"}},
    )["lifecyclePolicyArn"]
    assert lifecycle_tags.endswith("lifecycle-policy/tagged")
