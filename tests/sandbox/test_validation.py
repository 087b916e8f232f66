"""Tests for `validate_input` against realistic Image Builder requests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.validation import validate_input
from support import MAX_RESULTS

ACCOUNT = "123456789012"
REGION = "eu-west-1"
TOKEN = "6f1c2d4e-8a9b-4c3d-9e0f-1a2b3c4d5e6f"
THIRD_PARTY_ARN = (
    "arn:aws:imagebuilder:eu-west-1:third-party:component/"
    "cis-benchmark-level-1-amazon-linux/1.0.0/1"
)
IMAGE_BUILD_ARN = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/golden-al2023/1.0.0/1"

CREATE_COMPONENT: dict[str, Any] = {
    "name": "install-nginx",
    "semanticVersion": "1.2.3",
    "description": "Installs and enables nginx",
    "changeDescription": "Initial version",
    "platform": "Linux",
    "supportedOsVersions": ["Amazon Linux 2023"],
    "data": "name: install-nginx\nschemaVersion: 1.0\nphases:\n  - name: build\n    steps: []\n",
    "tags": {"team": "platform", "cost-center": "1234"},
    "clientToken": TOKEN,
    "dryRun": False,
}

CREATE_IMAGE_RECIPE: dict[str, Any] = {
    "name": "golden-al2023",
    "description": "Golden Amazon Linux 2023 image",
    "semanticVersion": "1.0.x",
    "components": [
        {"componentArn": f"arn:aws:imagebuilder:{REGION}:aws:component/update-linux/x.x.x"},
        {
            "componentArn": (
                f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/install-nginx/1.2.3/1"
            ),
            "parameters": [
                {"name": "Port", "value": ["8080"]},
                {"name": "Modules", "value": ["ssl", "gzip"]},
            ],
        },
        {
            "componentArn": "arn:aws:imagebuilder:eu-central-1:aws-marketplace:component/"
            "crowdstrike-falcon-install-linux-prod-nhzsem4gwwfja/1.2.2/1"
        },
        {"componentArn": THIRD_PARTY_ARN},
    ],
    "parentImage": f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x",
    "blockDeviceMappings": [
        {
            "deviceName": "/dev/xvda",
            "ebs": {
                "encrypted": True,
                "deleteOnTermination": True,
                "iops": 3000,
                "volumeSize": 30,
                "volumeType": "gp3",
                "throughput": 125,
            },
        }
    ],
    "tags": {"team": "platform"},
    "workingDirectory": "/tmp",
    "additionalInstanceConfiguration": {
        "systemsManagerAgent": {"uninstallAfterBuild": False},
        "userDataOverride": "IyEvYmluL2Jhc2gKZWNobyBoaQo=",
    },
    "clientToken": TOKEN,
}

CREATE_DISTRIBUTION_CONFIGURATION: dict[str, Any] = {
    "name": "golden-distribution",
    "description": "Copies golden AMIs to two regions",
    "distributions": [
        {
            "region": "eu-west-1",
            "amiDistributionConfiguration": {
                "name": "golden-al2023-{{ imagebuilder:buildDate }}",
                "description": "Golden AMI",
                "targetAccountIds": ["210987654321"],
                "amiTags": {"Name": "golden-al2023"},
                "launchPermission": {"userIds": ["210987654321"]},
            },
            "launchTemplateConfigurations": [
                {
                    "launchTemplateId": "lt-0123456789abcdef0",
                    "accountId": ACCOUNT,
                    "setDefaultVersion": True,
                }
            ],
            "ssmParameterConfigurations": [
                {"parameterName": "/golden/al2023/latest", "dataType": "aws:ec2:image"}
            ],
        },
        {
            "region": "us-east-1",
            "fastLaunchConfigurations": [
                {
                    "enabled": True,
                    "snapshotConfiguration": {"targetResourceCount": 5},
                    "maxParallelLaunches": 6,
                }
            ],
            "s3ExportConfiguration": {
                "roleName": "vmimport",
                "diskImageFormat": "VMDK",
                "s3Bucket": "golden-exports",
            },
        },
    ],
    "tags": {"team": "platform"},
    "clientToken": TOKEN,
}

UPDATE_IMAGE_PIPELINE: dict[str, Any] = {
    "imagePipelineArn": f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-pipeline/golden-pipeline",
    "description": "Nightly golden AMI",
    "imageRecipeArn": f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-recipe/golden-al2023/1.0.x",
    "infrastructureConfigurationArn": (
        f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:infrastructure-configuration/golden-infra"
    ),
    "distributionConfigurationArn": (
        f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:distribution-configuration/golden-distribution"
    ),
    "imageTestsConfiguration": {"imageTestsEnabled": True, "timeoutMinutes": 720},
    "enhancedImageMetadataEnabled": True,
    "schedule": {
        "scheduleExpression": "cron(0 3 * * ? *)",
        "timezone": "Europe/Dublin",
        "pipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
        "autoDisablePolicy": {"failureCount": 3},
    },
    "status": "ENABLED",
    "imageScanningConfiguration": {"imageScanningEnabled": False},
    "workflows": [
        {
            "workflowArn": f"arn:aws:imagebuilder:{REGION}:aws:workflow/build/build-image/x.x.x",
            "parameters": [{"name": "waitForAction", "value": ["false"]}],
            "onFailure": "ABORT",
            "parallelGroup": "build-1",
        }
    ],
    "loggingConfiguration": {"imageLogGroupName": "/aws/imagebuilder/golden"},
    "executionRole": "arn:aws:iam::123456789012:role/ImageBuilderExecution",
    "imageTags": {"purpose": "golden"},
    "clientToken": TOKEN,
}

LIST_COMPONENTS: dict[str, Any] = {
    "owner": "Self",
    "filters": [{"name": "platform", "values": ["Linux"]}],
    "byName": False,
    "maxResults": 25,
    "nextToken": "eyJvZmZzZXQiOjI1fQ==",
}

VALID_REQUESTS: dict[str, dict[str, Any]] = {
    "CreateComponent": CREATE_COMPONENT,
    "CreateImageRecipe": CREATE_IMAGE_RECIPE,
    "CreateDistributionConfiguration": CREATE_DISTRIBUTION_CONFIGURATION,
    "UpdateImagePipeline": UPDATE_IMAGE_PIPELINE,
    "ListComponents": LIST_COMPONENTS,
}


_DELETE = object()


def _with(base: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `base` with the member at `path` replaced (or, for `_DELETE`, removed)."""
    request = copy.deepcopy(base)
    target: Any = request
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return request


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        *VALID_REQUESTS.items(),
        ("ListComponents", {}),
        ("ListComponents", {"maxResults": 1, "owner": "ThirdParty"}),
        ("GetComponent", {"componentBuildVersionArn": THIRD_PARTY_ARN}),
        (
            "GetComponent",
            {
                "componentBuildVersionArn": (
                    f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/x/1.0.0"
                ),
            },
        ),
        # Unknown members are ignored: botocore never sends them.
        ("CreateComponent", {**CREATE_COMPONENT, "futureMember": {"anything": [1, 2]}}),
        # Null optional members count as absent.
        ("CreateComponent", {**CREATE_COMPONENT, "description": None}),
        # Timestamps arrive as epoch seconds (JSON body) or ISO 8601.
        (
            "StartResourceStateUpdate",
            {
                "resourceArn": IMAGE_BUILD_ARN,
                "state": {"status": "DEPRECATED"},
                "updateAt": 1767225600,
                "clientToken": TOKEN,
            },
        ),
        (
            "StartResourceStateUpdate",
            {
                "resourceArn": IMAGE_BUILD_ARN,
                "state": {"status": "DISABLED"},
                "updateAt": "2026-01-01T00:00:00Z",
                "clientToken": TOKEN,
            },
        ),
    ],
)
def test_valid_requests_pass(operation: str, params: dict[str, Any]) -> None:
    assert validate_input(operation, params) is None


def test_third_party_component_arn_is_accepted_in_recipe() -> None:
    params = _with(CREATE_IMAGE_RECIPE, ("components",), [{"componentArn": THIRD_PARTY_ARN}])
    assert validate_input("CreateImageRecipe", params) is None


INVALID: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (id, operation, params, expected code, parameter path named in the message)
    (
        "missing-nested-region",
        "CreateDistributionConfiguration",
        _with(CREATE_DISTRIBUTION_CONFIGURATION, ("distributions", 0, "region"), _DELETE),
        "InvalidRequestException",
        "distributions[0].region",
    ),
    (
        "missing-top-level-name",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("name",), _DELETE),
        "InvalidRequestException",
        "name",
    ),
    (
        "null-required-client-token",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("clientToken",), None),
        "InvalidRequestException",
        "clientToken",
    ),
    (
        "missing-component-parameter-value",
        "CreateImageRecipe",
        _with(CREATE_IMAGE_RECIPE, ("components", 1, "parameters", 0, "value"), _DELETE),
        "InvalidRequestException",
        "components[1].parameters[0].value",
    ),
    (
        "missing-auto-disable-failure-count",
        "UpdateImagePipeline",
        _with(UPDATE_IMAGE_PIPELINE, ("schedule", "autoDisablePolicy"), {}),
        "InvalidRequestException",
        "schedule.autoDisablePolicy.failureCount",
    ),
    (
        "missing-s3-export-bucket",
        "CreateDistributionConfiguration",
        _with(
            CREATE_DISTRIBUTION_CONFIGURATION,
            ("distributions", 1, "s3ExportConfiguration", "s3Bucket"),
            _DELETE,
        ),
        "InvalidRequestException",
        "distributions[1].s3ExportConfiguration.s3Bucket",
    ),
    (
        "string-for-int",
        "ListComponents",
        _with(LIST_COMPONENTS, ("maxResults",), "10"),
        "InvalidRequestException",
        "maxResults",
    ),
    (
        "bool-for-int",
        "ListComponents",
        _with(LIST_COMPONENTS, ("maxResults",), True),
        "InvalidRequestException",
        "maxResults",
    ),
    (
        "string-for-bool",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("dryRun",), "yes"),
        "InvalidRequestException",
        "dryRun",
    ),
    (
        "dict-for-list",
        "CreateDistributionConfiguration",
        _with(CREATE_DISTRIBUTION_CONFIGURATION, ("distributions",), {"region": "eu-west-1"}),
        "InvalidRequestException",
        "distributions",
    ),
    (
        "string-for-nested-int",
        "CreateImageRecipe",
        _with(CREATE_IMAGE_RECIPE, ("blockDeviceMappings", 0, "ebs", "iops"), "fast"),
        "InvalidRequestException",
        "blockDeviceMappings[0].ebs.iops",
    ),
    (
        "int-for-tag-value",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("tags", "cost-center"), 1234),
        "InvalidRequestException",
        "tags.cost-center",
    ),
    (
        "unparseable-timestamp",
        "StartResourceStateUpdate",
        {
            "resourceArn": IMAGE_BUILD_ARN,
            "state": {"status": "DEPRECATED"},
            "updateAt": "next tuesday",
            "clientToken": TOKEN,
        },
        "InvalidRequestException",
        "updateAt",
    ),
    (
        "max-results-over-limit",
        "ListComponents",
        _with(LIST_COMPONENTS, ("maxResults",), MAX_RESULTS + 1),
        "InvalidParameterValueException",
        "maxResults",
    ),
    (
        "max-results-0",
        "ListComponents",
        _with(LIST_COMPONENTS, ("maxResults",), 0),
        "InvalidParameterValueException",
        "maxResults",
    ),
    (
        "bad-owner-enum",
        "ListComponents",
        _with(LIST_COMPONENTS, ("owner",), "Bogus"),
        "InvalidParameterValueException",
        "owner",
    ),
    (
        "bad-platform-enum",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("platform",), "Ubuntu"),
        "InvalidParameterValueException",
        "platform",
    ),
    (
        "bad-pipeline-status-enum",
        "UpdateImagePipeline",
        _with(UPDATE_IMAGE_PIPELINE, ("status",), "PAUSED"),
        "InvalidParameterValueException",
        "status",
    ),
    (
        "bad-nested-volume-type-enum",
        "CreateImageRecipe",
        _with(CREATE_IMAGE_RECIPE, ("blockDeviceMappings", 0, "ebs", "volumeType"), "gp4"),
        "InvalidParameterValueException",
        "blockDeviceMappings[0].ebs.volumeType",
    ),
    (
        "name-pattern",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("name",), "a"),
        "InvalidParameterValueException",
        "name",
    ),
    (
        "tag-key-aws-prefix",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("tags",), {"aws:owner": "platform"}),
        "InvalidParameterValueException",
        "tags (key: aws:owner)",
    ),
    (
        "tags-51-entries",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("tags",), {f"key-{i}": "v" for i in range(51)}),
        "InvalidParameterValueException",
        "tags",
    ),
    (
        "empty-tags",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("tags",), {}),
        "InvalidParameterValueException",
        "tags",
    ),
    (
        "tag-value-too-long",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("tags", "team"), "x" * 257),
        "InvalidParameterValueException",
        "tags.team",
    ),
    (
        "semantic-version-two-nodes",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("semanticVersion",), "1.0"),
        "InvalidVersionNumberException",
        "semanticVersion",
    ),
    (
        "component-semantic-version-wildcard",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("semanticVersion",), "1.0.x"),
        "InvalidVersionNumberException",
        "semanticVersion",
    ),
    (
        "recipe-semantic-version-two-nodes",
        "CreateImageRecipe",
        _with(CREATE_IMAGE_RECIPE, ("semanticVersion",), "1.0"),
        "InvalidVersionNumberException",
        "semanticVersion",
    ),
    (
        "client-token-65-chars",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("clientToken",), "t" * 65),
        "InvalidParameterValueException",
        "clientToken",
    ),
    (
        "client-token-empty",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("clientToken",), ""),
        "InvalidParameterValueException",
        "clientToken",
    ),
    (
        "invalid-component-arn",
        "CreateImageRecipe",
        _with(
            CREATE_IMAGE_RECIPE,
            ("components", 1, "componentArn"),
            f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/Install-Nginx/1.2.3/1",
        ),
        "InvalidParameterValueException",
        "components[1].componentArn",
    ),
    (
        # Widening applies only to the `aws(?:-[a-z-]+)?` alternation, not to ARNs whose
        # account must be numeric or exactly `aws`.
        "third-party-pipeline-arn",
        "UpdateImagePipeline",
        _with(
            UPDATE_IMAGE_PIPELINE,
            ("imagePipelineArn",),
            f"arn:aws:imagebuilder:{REGION}:third-party:image-pipeline/golden-pipeline",
        ),
        "InvalidParameterValueException",
        "imagePipelineArn",
    ),
    (
        "build-version-arn-as-query-member",
        "GetComponent",
        {"componentBuildVersionArn": f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/x/1.0"},
        "InvalidParameterValueException",
        "componentBuildVersionArn",
    ),
    (
        "description-too-long",
        "CreateComponent",
        _with(CREATE_COMPONENT, ("description",), "d" * 1025),
        "InvalidParameterValueException",
        "description",
    ),
    (
        "filters-11-entries",
        "ListComponents",
        _with(
            LIST_COMPONENTS,
            ("filters",),
            [{"name": "platform", "values": ["Linux"]} for _ in range(11)],
        ),
        "InvalidParameterValueException",
        "filters",
    ),
    (
        "filter-values-empty",
        "ListComponents",
        _with(LIST_COMPONENTS, ("filters", 0, "values"), []),
        "InvalidParameterValueException",
        "filters[0].values",
    ),
    (
        "filter-name-pattern",
        "ListComponents",
        _with(LIST_COMPONENTS, ("filters", 0, "name"), "os-version"),
        "InvalidParameterValueException",
        "filters[0].name",
    ),
    (
        "tests-timeout-below-min",
        "UpdateImagePipeline",
        _with(UPDATE_IMAGE_PIPELINE, ("imageTestsConfiguration", "timeoutMinutes"), 30),
        "InvalidParameterValueException",
        "imageTestsConfiguration.timeoutMinutes",
    ),
    (
        "failure-count-above-max",
        "UpdateImagePipeline",
        _with(UPDATE_IMAGE_PIPELINE, ("schedule", "autoDisablePolicy", "failureCount"), 11),
        "InvalidParameterValueException",
        "schedule.autoDisablePolicy.failureCount",
    ),
    (
        "workflow-on-failure-enum",
        "UpdateImagePipeline",
        _with(UPDATE_IMAGE_PIPELINE, ("workflows", 0, "onFailure"), "RETRY"),
        "InvalidParameterValueException",
        "workflows[0].onFailure",
    ),
    (
        "target-account-id-pattern",
        "CreateDistributionConfiguration",
        _with(
            CREATE_DISTRIBUTION_CONFIGURATION,
            ("distributions", 0, "amiDistributionConfiguration", "targetAccountIds"),
            ["210987654321", "12345"],
        ),
        "InvalidParameterValueException",
        "distributions[0].amiDistributionConfiguration.targetAccountIds[1]",
    ),
    (
        "launch-template-id-pattern",
        "CreateDistributionConfiguration",
        _with(
            CREATE_DISTRIBUTION_CONFIGURATION,
            ("distributions", 0, "launchTemplateConfigurations", 0, "launchTemplateId"),
            "lt-123",
        ),
        "InvalidParameterValueException",
        "distributions[0].launchTemplateConfigurations[0].launchTemplateId",
    ),
    (
        "disk-image-format-enum",
        "CreateDistributionConfiguration",
        _with(
            CREATE_DISTRIBUTION_CONFIGURATION,
            ("distributions", 1, "s3ExportConfiguration", "diskImageFormat"),
            "QCOW2",
        ),
        "InvalidParameterValueException",
        "distributions[1].s3ExportConfiguration.diskImageFormat",
    ),
    (
        "user-data-not-base64",
        "CreateImageRecipe",
        _with(
            CREATE_IMAGE_RECIPE,
            ("additionalInstanceConfiguration", "userDataOverride"),
            "#!/bin/bash",
        ),
        "InvalidParameterValueException",
        "additionalInstanceConfiguration.userDataOverride",
    ),
]


@pytest.mark.parametrize(
    ("operation", "params", "code", "path"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
def test_invalid_requests_are_rejected(
    operation: str, params: dict[str, Any], code: str, path: str
) -> None:
    with pytest.raises(SandboxError) as caught:
        validate_input(operation, params)
    assert caught.value.code == code
    assert caught.value.status == 400
    assert f"'{path}'" in caught.value.message


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        (
            "CreateDistributionConfiguration",
            _with(CREATE_DISTRIBUTION_CONFIGURATION, ("distributions", 0, "region"), _DELETE),
            "Missing required parameter 'distributions[0].region'.",
        ),
        (
            "ListComponents",
            {"maxResults": "10"},
            "Invalid type for parameter 'maxResults': expected integer, got str.",
        ),
        (
            "ListComponents",
            {"maxResults": MAX_RESULTS + 1},
            "The value supplied for parameter 'maxResults' is not valid. "
            f"'maxResults' must have value less than or equal to {MAX_RESULTS}",
        ),
        (
            "ListComponents",
            {"owner": "Bogus"},
            "The value supplied for parameter 'owner' is not valid. "
            "'owner' must be one of: Self, Shared, Amazon, ThirdParty, AWSMarketplace",
        ),
        (
            "CreateComponent",
            _with(CREATE_COMPONENT, ("description",), "d" * 1025),
            "The value supplied for parameter 'description' is not valid. "
            "'description' must have length less than or equal to 1024",
        ),
        (
            "CreateComponent",
            _with(CREATE_COMPONENT, ("semanticVersion",), "1.0"),
            "The value supplied for parameter 'semanticVersion' is not valid. "
            r"'semanticVersion' must match pattern ^[0-9]+\.[0-9]+\.[0-9]+$",
        ),
    ],
)
def test_exact_messages(operation: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(SandboxError) as caught:
        validate_input(operation, params)
    assert caught.value.message == message


def test_first_problem_in_model_order_wins() -> None:
    # `name` precedes `platform` in the model, so its error is the one reported.
    params = {**CREATE_COMPONENT, "name": "a", "platform": "Ubuntu"}
    with pytest.raises(SandboxError) as caught:
        validate_input("CreateComponent", params)
    assert "'name'" in caught.value.message


def test_unknown_operation() -> None:
    with pytest.raises(SandboxError) as caught:
        validate_input("CreateSpaceship", {})
    assert caught.value.code == "UnknownOperationException"
    assert caught.value.status == 404


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every member, list item and map value position inside a request."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        items: list[tuple[str | int, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        items = []
    for key, item in items:
        found.append((*prefix, key))
        found.extend(_paths(item, (*prefix, key)))
    return found


_TARGETS = [
    (operation, path) for operation, request in VALID_REQUESTS.items() for path in _paths(request)
]

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, database=None)
@given(target=st.sampled_from(_TARGETS), value=_JSON)
def test_random_values_only_ever_raise_sandbox_error(
    target: tuple[str, tuple[str | int, ...]], value: Any
) -> None:
    operation, path = target
    params = _with(VALID_REQUESTS[operation], path, value)
    try:
        result = validate_input(operation, params)
    except SandboxError as error:
        assert error.code in {
            "InvalidRequestException",
            "InvalidParameterValueException",
            "InvalidVersionNumberException",
        }
    else:
        assert result is None
