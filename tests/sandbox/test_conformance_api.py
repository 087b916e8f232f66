"""Conformance of the sandbox's Image Builder API, seen through real boto3 clients over HTTP.

Every test talks to a sandbox served on loopback (`imagesync.sandbox.running`, the `sandbox` /
`client` fixtures, or `imagesync sandbox serve` subprocesses): nothing in the sandbox is mocked.
The expected behaviour comes from shared/reference/imagebuilder-api-semantics.md.

Sections:
  1. server-side validation (what botocore's client does not check)
  2. full-replacement updates of the mutable resource kinds
  3. server-filled defaults and read-only fields
  4. images built by pipeline executions
  5. tags
  6. resource policies
  7. unsupported operations
  8. malformed HTTP requests never crash the server
  9. /_sandbox/stats and /_sandbox/reset
 10. fault injection
 11. persistence to a state file

Tests whose docstring starts with "Regression:" cover sandbox bugs found while writing this module.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import pytest
from botocore.exceptions import ClientError

from imagesync.sandbox import RunningSandbox, running
from support import ACCOUNT, MAX_RESULTS, REGION, SIMPLE_DOCUMENT, make_client, read_line, stop_process

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
AMI = "ami-0123456789abcdef0"
WINDOWS_PARENT = f"arn:aws:imagebuilder:{REGION}:aws:image/windows-server-2022-english-full-base-x86/x.x.x"
AMAZON_COMPONENT = f"arn:aws:imagebuilder:{REGION}:aws:component/update-linux/x.x.x"
PROFILE = "EC2InstanceProfileForImageBuilder"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ImageBuilderLifecycle"
POLICY = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam::210987654321:root"]},
        "Action": ["imagebuilder:GetComponent"],
        "Resource": ["*"],
    }],
})


def policy_for(kind: str) -> str:
    """A valid sharing policy for `kind` (Component, Image, ImageRecipe, ContainerRecipe): the
    service accepts only that kind's read and list actions."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::210987654321:root"]},
            "Action": [f"imagebuilder:Get{kind}", f"imagebuilder:List{kind}s"],
            "Resource": ["*"],
        }],
    })
# One attempt per call, no SDK retries: fault tests count every outcome. (botocore's
# `max_attempts` counts retries *after* the first attempt; `total_max_attempts` counts all.)
ONE_ATTEMPT = {"total_max_attempts": 1, "mode": "standard"}

PARAMETERIZED_DOCUMENT = """\
name: greeter
description: Says something configurable.
schemaVersion: 1.0
parameters:
  - Greeting:
      type: string
      default: hello
      description: What to say.
  - Target:
      type: string
phases:
  - name: build
    steps:
      - name: Say
        action: ExecuteBash
        inputs:
          commands:
            - echo "{{ Greeting }} {{ Target }}"
"""

TEST_ONLY_DOCUMENT = """\
schemaVersion: 1.0
phases:
  - name: test
    steps:
      - name: Check
        action: ExecuteBash
        inputs:
          commands:
            - test -f /etc/os-release
"""

BUILD_AND_TEST_DOCUMENT = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Touch
        action: ExecuteBash
        inputs:
          commands: ["touch /tmp/x"]
  - name: test
    steps:
      - name: Check
        action: ExecuteBash
        inputs:
          commands: ["test -f /tmp/x"]
"""


# --- helpers ----------------------------------------------------------------------------------


def error_of(err: ClientError) -> tuple[str, int, str | None, str]:
    """(error code, HTTP status, x-amzn-errortype header, message) of a botocore ClientError."""
    response = err.response
    meta = response["ResponseMetadata"]
    header = meta.get("HTTPHeaders", {}).get("x-amzn-errortype")
    return response["Error"]["Code"], meta["HTTPStatusCode"], header, response["Error"].get("Message", "")


def assert_error(excinfo: pytest.ExceptionInfo[Any], code: str, status: int, *mentions: str) -> str:
    """The raised ClientError has this code, status and header, and its message names `mentions`."""
    got_code, got_status, header, message = error_of(excinfo.value)
    assert (got_code, got_status) == (code, status), message
    assert header is not None and header.split(":")[0] == code
    for text in mentions:
        assert text in message, f"{text!r} not in {message!r}"
    return message


def strip_meta(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k not in ("ResponseMetadata", "requestId")}


def create_component(client: Any, name: str, version: str = "1.0.0", data: str = SIMPLE_DOCUMENT, **extra: Any) -> str:
    return client.create_component(name=name, semanticVersion=version, platform="Linux", data=data, **extra)[
        "componentBuildVersionArn"
    ]


def create_recipe(
    client: Any, name: str, components: list[str], parent: str = AMI, version: str = "1.0.0", **extra: Any
) -> str:
    return client.create_image_recipe(
        name=name,
        semanticVersion=version,
        parentImage=parent,
        components=[{"componentArn": arn} for arn in components],
        **extra,
    )["imageRecipeArn"]


def create_container_recipe(client: Any, name: str, components: list[str]) -> str:
    return client.create_container_recipe(
        containerType="DOCKER",
        name=name,
        semanticVersion="1.0.0",
        parentImage="amazonlinux:2023",
        components=[{"componentArn": arn} for arn in components],
        dockerfileTemplateData="FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:environments }}}\n"
        "{{{ imagebuilder:components }}}\n",
        targetRepository={"service": "ECR", "repositoryName": "golden"},
    )["containerRecipeArn"]


def create_infra(client: Any, name: str, **extra: Any) -> str:
    return client.create_infrastructure_configuration(name=name, instanceProfileName=PROFILE, **extra)[
        "infrastructureConfigurationArn"
    ]


def create_distribution(client: Any, name: str, regions: list[str], **extra: Any) -> str:
    return client.create_distribution_configuration(
        name=name,
        distributions=[{"region": r, "amiDistributionConfiguration": {"name": "golden-{{imagebuilder:buildDate}}"}}
                       for r in regions],
        **extra,
    )["distributionConfigurationArn"]


def create_pipeline(client: Any, name: str, recipe: str, infra: str, **extra: Any) -> str:
    return client.create_image_pipeline(
        name=name, imageRecipeArn=recipe, infrastructureConfigurationArn=infra, **extra
    )["imagePipelineArn"]


def lifecycle_details(count: int) -> list[dict[str, Any]]:
    return [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": count}}]


def create_lifecycle(client: Any, name: str, **extra: Any) -> str:
    # The policy selects the "golden" recipe, which must exist in the account.
    listed = client.list_image_recipes(filters=[{"name": "name", "values": ["golden"]}])["imageRecipeSummaryList"]
    if not listed:
        create_recipe(client, "golden", [create_component(client, "golden-setup")])
    return client.create_lifecycle_policy(
        name=name,
        executionRole=ROLE,
        resourceType="AMI_IMAGE",
        policyDetails=lifecycle_details(5),
        resourceSelection={"recipes": [{"name": "golden", "semanticVersion": "1.x.x"}]},
        **extra,
    )["lifecyclePolicyArn"]


def image_stack(client: Any, prefix: str = "golden", parent: str = AMI) -> dict[str, str]:
    """A component, a recipe using it, an infrastructure configuration and a pipeline."""
    component = create_component(client, f"{prefix}-setup")
    recipe = create_recipe(client, prefix, [component], parent=parent)
    infra = create_infra(client, f"{prefix}-infra")
    pipeline = create_pipeline(client, f"{prefix}-pipeline", recipe, infra)
    return {"component": component, "recipe": recipe, "infra": infra, "pipeline": pipeline}


def all_component_names(client: Any) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_components").paginate():
        names.extend(row["name"] for row in page["componentVersionList"])
    return names


def stats(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/_sandbox/stats", timeout=5) as response:
        return json.loads(response.read())


def post_reset(endpoint: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{endpoint}/_sandbox/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def raw_request(
    endpoint: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with full control of method, path, body and headers (no boto3)."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        for key, value in all_headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def outcome(call: Callable[[], Any]) -> str:
    """'ok', the error code, or 'connection' when the connection was lost."""
    try:
        call()
    except ClientError as err:
        return err.response["Error"]["Code"]
    except (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError):
        return "connection"
    return "ok"


TRANSIENT = ("ServiceException", "ServiceUnavailableException", "CallRateLimitExceededException")


def until_ok(call: Callable[[], Any], attempts: int = 60) -> Any:
    """Retry a call through injected 5xx/429 answers and lost connections."""
    for _ in range(attempts):
        try:
            return call()
        except ClientError as err:
            if err.response["Error"]["Code"] not in TRANSIENT:
                raise
        except (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError):
            pass
    raise AssertionError(f"no success after {attempts} attempts")


@contextlib.contextmanager
def serve_process(*args: str, timeout: float = 20.0) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`imagesync sandbox serve ARGS` as a subprocess; yields it and its endpoint URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        try:
            first = read_line(proc, timeout)
        except AssertionError:
            raise AssertionError("the sandbox printed no endpoint line") from None
        match = re.fullmatch(r"endpoint=(http://127\.0\.0\.1:\d+)\n", first)
        assert match, f"unexpected first line {first!r}"
        yield proc, match.group(1)
    finally:
        stop_process(proc)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _module_sandbox() -> Iterator[RunningSandbox]:
    with running() as served:
        yield served


@pytest.fixture
def sandbox(_module_sandbox: RunningSandbox) -> RunningSandbox:
    """Overrides conftest's `sandbox`: one server per module, reset (state and counters) per test.

    Stopping a server costs up to half a second (serve_forever's poll interval), so sharing one
    keeps this module fast; `client` and `client_factory` from conftest pick this fixture up.
    """
    _module_sandbox.reset()
    return _module_sandbox


# --- 1. server-side validation ------------------------------------------------------------------

COMPONENT_OK: dict[str, Any] = {"name": "valid-name", "semanticVersion": "1.0.0", "platform": "Linux",
                                "data": SIMPLE_DOCUMENT}

# (label, operation, arguments, error code, text the message must contain)
VALIDATION_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    ("owner-enum", "list_components", {"owner": "Bogus"}, "InvalidParameterValueException", "owner"),
    ("owner-enum-images", "list_images", {"owner": "Everyone"}, "InvalidParameterValueException", "owner"),
    ("platform-enum", "create_component", {**COMPONENT_OK, "platform": "Solaris"},
     "InvalidParameterValueException", "platform"),
    ("name-pattern", "create_component", {**COMPONENT_OK, "name": "bad/name!"},
     "InvalidParameterValueException", "name"),
    ("name-too-short", "create_infrastructure_configuration", {"name": "ab", "instanceProfileName": PROFILE},
     "InvalidParameterValueException", "name"),
    ("tag-key-aws-prefix", "create_component", {**COMPONENT_OK, "tags": {"aws:x": "y"}},
     "InvalidParameterValueException", "tags"),
    ("semver-pattern", "create_component", {**COMPONENT_OK, "semanticVersion": "1.0"},
     "InvalidVersionNumberException", "semanticVersion"),
    ("semver-wildcard-on-component", "create_component", {**COMPONENT_OK, "semanticVersion": "1.0.x"},
     "InvalidVersionNumberException", "semanticVersion"),
    ("max-results-over-limit", "list_components", {"maxResults": MAX_RESULTS + 1}, "InvalidParameterValueException",
     "maxResults"),
    ("description-too-long", "create_component", {**COMPONENT_OK, "description": "d" * 1025},
     "InvalidParameterValueException", "description"),
    ("eleven-filters", "list_components", {"filters": [{"name": "name", "values": [f"n{i}"]} for i in range(11)]},
     "InvalidParameterValueException", "filters"),
    ("eleven-filter-values", "list_components", {"filters": [{"name": "name", "values": [f"n{i}" for i in range(11)]}]},
     "InvalidParameterValueException", "values"),
]


@pytest.mark.parametrize(
    ("operation", "kwargs", "code", "mention"),
    [case[1:] for case in VALIDATION_CASES],
    ids=[case[0] for case in VALIDATION_CASES],
)
def test_server_rejects_what_botocore_lets_through(client: Any, operation: str, kwargs: dict[str, Any],
                                                   code: str, mention: str) -> None:
    exception = getattr(client.exceptions, code)
    with pytest.raises(exception) as excinfo:
        getattr(client, operation)(**kwargs)
    assert_error(excinfo, code, 400, mention)
    # Nothing was created by the rejected request.
    assert client.list_components()["componentVersionList"] == []
    assert client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_tag_resource_rejects_an_aws_prefixed_key(client: Any) -> None:
    arn = create_component(client, "tag-target")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.tag_resource(resourceArn=arn, tags={"aws:owner": "me"})
    assert_error(excinfo, "InvalidParameterValueException", 400, "aws:owner")
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {}


def test_wildcard_recipe_version_must_be_right_aligned(client: Any) -> None:
    component = create_component(client, "wild")
    with pytest.raises(client.exceptions.InvalidVersionNumberException) as excinfo:
        create_recipe(client, "wild-recipe", [component], version="x.2.x")
    assert_error(excinfo, "InvalidVersionNumberException", 400, "x.2.x")


# Requests botocore's own validator would block, sent with parameter_validation=False.
UNVALIDATED_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("missing-name", "create_component", {k: v for k, v in COMPONENT_OK.items() if k != "name"}, "name"),
    ("missing-platform", "create_component", {k: v for k, v in COMPONENT_OK.items() if k != "platform"}, "platform"),
    ("missing-instance-profile", "create_infrastructure_configuration", {"name": "infra-one"}, "instanceProfileName"),
    ("missing-pipeline-arn", "list_image_pipeline_images", {}, "imagePipelineArn"),
    ("name-is-int", "create_component", {**COMPONENT_OK, "name": 123}, "name"),
    ("max-results-is-string", "list_components", {"maxResults": "5"}, "maxResults"),
    ("boolean-is-string", "create_infrastructure_configuration",
     {"name": "infra-two", "instanceProfileName": PROFILE, "terminateInstanceOnFailure": "yes"},
     "terminateInstanceOnFailure"),
    ("tag-value-is-int", "create_component", {**COMPONENT_OK, "tags": {"team": 5}}, "tags.team"),
]


@pytest.mark.parametrize(
    ("operation", "kwargs", "member"),
    [case[1:] for case in UNVALIDATED_CASES],
    ids=[case[0] for case in UNVALIDATED_CASES],
)
def test_server_rejects_what_only_botocore_would_have_blocked(
    sandbox: RunningSandbox, client: Any, operation: str, kwargs: dict[str, Any], member: str
) -> None:
    raw = make_client(sandbox.endpoint_url, parameter_validation=False, **{"retries": ONE_ATTEMPT})
    with pytest.raises(raw.exceptions.InvalidRequestException) as excinfo:
        getattr(raw, operation)(**kwargs)
    assert_error(excinfo, "InvalidRequestException", 400, f"'{member}'")
    assert client.list_components()["componentVersionList"] == []


# --- 2. full-replacement updates ----------------------------------------------------------------


def test_update_infrastructure_configuration_replaces_the_whole_configuration(client: Any) -> None:
    arn = create_infra(
        client, "build-infra",
        description="first", subnetId="subnet-0123456789abcdef0", keyPair="ops-key",
        securityGroupIds=["sg-0123456789abcdef0"], instanceTypes=["t3.large"],
        terminateInstanceOnFailure=False, tags={"team": "platform"},
    )
    before = client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    assert before["subnetId"] == "subnet-0123456789abcdef0" and before["keyPair"] == "ops-key"
    assert "dateUpdated" not in before

    client.update_infrastructure_configuration(
        infrastructureConfigurationArn=arn, instanceProfileName="OtherProfile", instanceTypes=["m5.large"],
    )
    after = client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    for cleared in ("subnetId", "keyPair", "description", "securityGroupIds"):
        assert cleared not in after, cleared
    assert after["instanceProfileName"] == "OtherProfile"
    assert after["instanceTypes"] == ["m5.large"]
    assert after["terminateInstanceOnFailure"] is True  # omitted: back to the default
    assert after["name"] == "build-infra" and after["arn"] == arn
    assert after["tags"] == {"team": "platform"}
    assert after["dateCreated"] == before["dateCreated"]
    assert ISO_DATE.match(after["dateUpdated"])


def test_update_image_pipeline_replaces_the_whole_pipeline(client: Any) -> None:
    stack = image_stack(client)
    distribution = create_distribution(client, "golden-dist", ["us-east-1"])
    arn = create_pipeline(
        client, "nightly", stack["recipe"], stack["infra"],
        description="nightly build", distributionConfigurationArn=distribution,
        schedule={"scheduleExpression": "cron(0 3 * * ? *)"}, enhancedImageMetadataEnabled=False,
        tags={"owner": "platform"},
    )
    before = client.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    assert before["enhancedImageMetadataEnabled"] is False and before["schedule"]["scheduleExpression"]

    client.update_image_pipeline(
        imagePipelineArn=arn, imageRecipeArn=stack["recipe"], infrastructureConfigurationArn=stack["infra"],
    )
    after = client.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    for cleared in ("schedule", "distributionConfigurationArn", "description"):
        assert cleared not in after, cleared
    assert after["enhancedImageMetadataEnabled"] is True
    assert after["status"] == "ENABLED"
    assert after["name"] == "nightly" and after["tags"] == {"owner": "platform"}
    assert after["dateCreated"] == before["dateCreated"]
    # A new pipeline's dateUpdated is its dateCreated (AWS CLI example get-image-pipeline.rst).
    assert before["dateUpdated"] == before["dateCreated"] and ISO_DATE.match(after["dateUpdated"])
    # The distribution configuration is no longer referenced, so it can now be deleted.
    client.delete_distribution_configuration(distributionConfigurationArn=distribution)


def test_update_distribution_configuration_replaces_distributions(client: Any) -> None:
    arn = create_distribution(client, "multi-region", ["us-east-1", "eu-west-1"], description="two regions",
                              tags={"k": "v"})
    before = client.get_distribution_configuration(distributionConfigurationArn=arn)["distributionConfiguration"]
    client.update_distribution_configuration(
        distributionConfigurationArn=arn, distributions=[{"region": "eu-central-1"}],
    )
    after = client.get_distribution_configuration(distributionConfigurationArn=arn)["distributionConfiguration"]
    assert [d["region"] for d in after["distributions"]] == ["eu-central-1"]
    assert "amiDistributionConfiguration" not in after["distributions"][0]
    assert "description" not in after
    assert after["name"] == "multi-region" and after["tags"] == {"k": "v"}
    assert after["dateCreated"] == before["dateCreated"] and ISO_DATE.match(after["dateUpdated"])
    summary = client.list_distribution_configurations()["distributionConfigurationSummaryList"]
    assert [row["regions"] for row in summary] == [["eu-central-1"]]


def test_update_lifecycle_policy_replaces_policy_details(client: Any) -> None:
    arn = create_lifecycle(client, "keep-five", description="keep five", tags={"t": "1"})
    before = client.get_lifecycle_policy(lifecyclePolicyArn=arn)["lifecyclePolicy"]
    new_details = [
        {"action": {"type": "DEPRECATE"}, "filter": {"type": "AGE", "value": 30, "unit": "DAYS"}},
        {"action": {"type": "DELETE"}, "filter": {"type": "AGE", "value": 90, "unit": "DAYS"}},
    ]
    client.update_lifecycle_policy(
        lifecyclePolicyArn=arn, executionRole=ROLE, resourceType="AMI_IMAGE", policyDetails=new_details,
        resourceSelection={"tagMap": {"lifecycle": "managed"}},
    )
    after = client.get_lifecycle_policy(lifecyclePolicyArn=arn)["lifecyclePolicy"]
    assert after["policyDetails"] == new_details
    assert after["resourceSelection"] == {"tagMap": {"lifecycle": "managed"}}
    assert "description" not in after
    assert after["name"] == "keep-five" and after["tags"] == {"t": "1"}
    assert after["dateCreated"] == before["dateCreated"]
    assert "dateUpdated" not in before
    assert isinstance(after["dateUpdated"], dt.datetime) and after["dateUpdated"] >= after["dateCreated"]


def test_update_of_a_missing_resource_is_not_found(client: Any) -> None:
    missing = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:infrastructure-configuration/nope"
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.update_infrastructure_configuration(infrastructureConfigurationArn=missing, instanceProfileName=PROFILE)
    assert_error(excinfo, "ResourceNotFoundException", 404)


# --- 3. server-filled defaults and read-only fields ---------------------------------------------


def test_pipeline_defaults(client: Any) -> None:
    stack = image_stack(client)
    arn = create_pipeline(client, "scheduled", stack["recipe"], stack["infra"],
                          schedule={"scheduleExpression": "cron(0 0 * * ? *)"})
    pipeline = client.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    assert pipeline["schedule"] == {
        "scheduleExpression": "cron(0 0 * * ? *)",
        "timezone": "UTC",
        "pipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
    }
    assert pipeline["enhancedImageMetadataEnabled"] is True
    assert pipeline["status"] == "ENABLED"
    assert pipeline["platform"] == "Linux"
    assert ISO_DATE.match(pipeline["dateCreated"])
    assert pipeline["dateUpdated"] == pipeline["dateCreated"]  # AWS CLI example get-image-pipeline.rst


def test_pipeline_keeps_explicit_schedule_settings(client: Any) -> None:
    stack = image_stack(client)
    schedule = {"scheduleExpression": "cron(0 0 * * ? *)", "timezone": "Europe/Paris",
                "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"}
    arn = create_pipeline(client, "paris", stack["recipe"], stack["infra"], schedule=schedule, status="DISABLED")
    pipeline = client.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    assert pipeline["schedule"] == schedule
    assert pipeline["status"] == "DISABLED"


def test_pipeline_platform_is_derived_from_a_windows_recipe(client: Any) -> None:
    component = create_component(client, "win-setup")
    recipe = create_recipe(client, "win-golden", [component], parent=WINDOWS_PARENT)
    assert client.get_image_recipe(imageRecipeArn=recipe)["imageRecipe"]["platform"] == "Windows"
    infra = create_infra(client, "win-infra")
    arn = create_pipeline(client, "win-pipeline", recipe, infra)
    assert client.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["platform"] == "Windows"


def test_infrastructure_defaults(client: Any) -> None:
    arn = create_infra(client, "defaults-infra")
    infra = client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    assert infra["terminateInstanceOnFailure"] is True
    assert infra["arn"] == f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:infrastructure-configuration/defaults-infra"
    assert ISO_DATE.match(infra["dateCreated"])


def test_arn_normalizes_the_name_but_the_name_is_kept(client: Any) -> None:
    arn = create_infra(client, "My Build_Infra")
    assert arn.endswith(":infrastructure-configuration/my-build-infra")
    infra = client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    assert infra["name"] == "My Build_Infra"


@pytest.mark.parametrize(
    ("document", "expected_type"),
    [(SIMPLE_DOCUMENT, "BUILD"), (TEST_ONLY_DOCUMENT, "TEST"), (BUILD_AND_TEST_DOCUMENT, "BUILD")],
    ids=["build-only", "test-only", "build-and-test"],
)
def test_component_type_is_derived_from_the_document(client: Any, document: str, expected_type: str) -> None:
    arn = create_component(client, "typed", data=document)
    component = client.get_component(componentBuildVersionArn=arn)["component"]
    assert component["type"] == expected_type
    assert [row["type"] for row in client.list_components()["componentVersionList"]] == [expected_type]


def test_component_server_filled_fields(client: Any) -> None:
    arn = create_component(client, "greeter", data=PARAMETERIZED_DOCUMENT)
    assert arn == f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/greeter/1.0.0/1"
    component = client.get_component(componentBuildVersionArn=arn)["component"]
    assert component["parameters"] == [
        {"name": "Greeting", "type": "string", "defaultValue": ["hello"], "description": "What to say."},
        {"name": "Target", "type": "string"},
    ]
    assert component["encrypted"] is True
    assert "kmsKeyId" not in component
    assert component["data"] == PARAMETERIZED_DOCUMENT
    assert component["owner"] == ACCOUNT
    assert component["state"] == {"status": "ACTIVE"}
    assert component["version"] == "1.0.0"
    assert isinstance(component["dateCreated"], str) and ISO_DATE.match(component["dateCreated"])


def test_create_returns_latest_version_references(client: Any) -> None:
    response = client.create_component(name="refs", semanticVersion="1.2.3", platform="Linux", data=SIMPLE_DOCUMENT)
    base = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/refs"
    assert response["componentBuildVersionArn"] == f"{base}/1.2.3/1"
    assert response["latestVersionReferences"] == {
        "latestVersionArn": f"{base}/x.x.x",
        "latestMajorVersionArn": f"{base}/1.x.x",
        "latestMinorVersionArn": f"{base}/1.2.x",
        "latestPatchVersionArn": f"{base}/1.2.3",
    }
    assert response["clientToken"]  # echoed (botocore filled it in)


def test_dates_are_iso_strings_except_lifecycle_policy_timestamps(client: Any) -> None:
    stack = image_stack(client)
    recipe = client.get_image_recipe(imageRecipeArn=stack["recipe"])["imageRecipe"]
    assert isinstance(recipe["dateCreated"], str) and ISO_DATE.match(recipe["dateCreated"])
    arn = create_lifecycle(client, "dated")
    policy = client.get_lifecycle_policy(lifecyclePolicyArn=arn)["lifecyclePolicy"]
    assert isinstance(policy["dateCreated"], dt.datetime)
    assert policy["dateCreated"].tzinfo is not None
    assert abs((dt.datetime.now(dt.UTC) - policy["dateCreated"]).total_seconds()) < 300
    assert policy["status"] == "ENABLED"
    summary = client.list_lifecycle_policies()["lifecyclePolicySummaryList"]
    assert isinstance(summary[0]["dateCreated"], dt.datetime)


# --- 4. images ----------------------------------------------------------------------------------


def test_pipeline_executions_build_numbered_images(sandbox: RunningSandbox, client: Any) -> None:
    stack = image_stack(client)
    first = client.start_image_pipeline_execution(imagePipelineArn=stack["pipeline"])["imageBuildVersionArn"]
    assert first == f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/golden/1.0.0/1"
    # A build takes 30 simulated minutes by default: move the sandbox clock past it.
    urllib.request.urlopen(urllib.request.Request(
        f"{sandbox.endpoint_url}/_sandbox/clock", data=b'{"advance": 3600}', method="POST"), timeout=10).close()
    image = client.get_image(imageBuildVersionArn=first)["image"]
    assert image["state"]["status"] == "AVAILABLE"
    assert image["version"] == "1.0.0/1"
    assert image["sourcePipelineArn"] == stack["pipeline"]
    assert image["imageRecipe"]["arn"] == stack["recipe"]
    assert image["outputResources"]["amis"][0]["image"].startswith("ami-")

    second = client.start_image_pipeline_execution(imagePipelineArn=stack["pipeline"])["imageBuildVersionArn"]
    assert second == first[:-1] + "2"

    versions = client.list_images()["imageVersionList"]
    assert [row["arn"] for row in versions] == [f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/golden/1.0.0"]
    builds = client.list_image_build_versions(imageVersionArn=versions[0]["arn"])["imageSummaryList"]
    assert [row["arn"] for row in builds] == [first, second]

    pipeline_images = client.list_image_pipeline_images(imagePipelineArn=stack["pipeline"])["imageSummaryList"]
    assert [row["arn"] for row in pipeline_images] == [first, second]
    by_name = client.list_image_pipeline_images(
        imagePipelineArn=stack["pipeline"], filters=[{"name": "name", "values": ["golden"]}]
    )["imageSummaryList"]
    assert len(by_name) == 2
    by_version = client.list_image_pipeline_images(
        imagePipelineArn=stack["pipeline"], filters=[{"name": "version", "values": ["1.0.0"]}]
    )["imageSummaryList"]
    assert len(by_version) == 2
    for values in (["9.9.9"], ["1.0.0/1"]):  # a build suffix matches nothing, as on the service
        none = client.list_image_pipeline_images(
            imagePipelineArn=stack["pipeline"], filters=[{"name": "version", "values": values}]
        )["imageSummaryList"]
        assert none == [], values

    client.delete_image(imageBuildVersionArn=first)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_image(imageBuildVersionArn=first)
    builds = client.list_image_build_versions(imageVersionArn=versions[0]["arn"])["imageSummaryList"]
    assert [row["arn"] for row in builds] == [second]
    remaining = client.list_image_pipeline_images(imagePipelineArn=stack["pipeline"])["imageSummaryList"]
    assert [row["arn"] for row in remaining] == [second]


def test_list_image_pipeline_images_of_a_missing_pipeline(client: Any) -> None:
    missing = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-pipeline/ghost"
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.list_image_pipeline_images(imagePipelineArn=missing)
    assert_error(excinfo, "ResourceNotFoundException", 404)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.start_image_pipeline_execution(imagePipelineArn=missing)


def test_image_list_rows_carry_the_owner(client: Any) -> None:
    """Regression: ListImages/ListImagePipelineImages rows once lacked `owner` (the account id)."""
    stack = image_stack(client)
    client.start_image_pipeline_execution(imagePipelineArn=stack["pipeline"])
    rows = client.list_images()["imageVersionList"]
    assert rows and rows[0].get("owner") == ACCOUNT
    summaries = client.list_image_pipeline_images(imagePipelineArn=stack["pipeline"])["imageSummaryList"]
    assert summaries[0].get("owner") == ACCOUNT


# --- 5. tags ------------------------------------------------------------------------------------


def test_tags_on_a_component_build_are_its_only_mutable_part(client: Any) -> None:
    arn = create_component(client, "tagged", tags={"team": "platform"})
    before = strip_meta(client.get_component(componentBuildVersionArn=arn))
    client.tag_resource(resourceArn=arn, tags={"env": "prod", "team": "security"})
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "security", "env": "prod"}
    client.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod"}

    after = strip_meta(client.get_component(componentBuildVersionArn=arn))
    assert after["component"].pop("tags") == {"env": "prod"}
    before["component"].pop("tags")
    assert after == before
    # Tags are not content: re-creating the same content is still a duplicate, not a new build.
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        create_component(client, "tagged")


def test_tags_on_a_recipe_and_an_infrastructure_configuration(client: Any) -> None:
    component = create_component(client, "recipe-part")
    recipe = create_recipe(client, "tag-recipe", [component], tags={"a": "1"})
    infra = create_infra(client, "tag-infra")
    client.tag_resource(resourceArn=recipe, tags={"b": "2"})
    client.tag_resource(resourceArn=infra, tags={"c": "3"})
    assert client.list_tags_for_resource(resourceArn=recipe)["tags"] == {"a": "1", "b": "2"}
    assert client.list_tags_for_resource(resourceArn=infra)["tags"] == {"c": "3"}
    assert client.get_image_recipe(imageRecipeArn=recipe)["imageRecipe"]["tags"] == {"a": "1", "b": "2"}
    assert client.get_infrastructure_configuration(
        infrastructureConfigurationArn=infra)["infrastructureConfiguration"]["tags"] == {"c": "3"}
    client.untag_resource(resourceArn=infra, tagKeys=["c", "not-there"])
    assert client.list_tags_for_resource(resourceArn=infra)["tags"] == {}


def test_tagging_an_amazon_owned_arn_is_refused(client: Any) -> None:
    amazon = f"arn:aws:imagebuilder:{REGION}:aws:component/update-linux/1.0.2/1"
    with pytest.raises(client.exceptions.InvalidParameterException) as excinfo:
        client.tag_resource(resourceArn=amazon, tags={"mine": "yes"})
    assert_error(excinfo, "InvalidParameterException", 400)


def test_tagging_a_missing_resource_is_not_found(client: Any) -> None:
    missing = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-recipe/ghost/1.0.0"
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        client.tag_resource(resourceArn=missing, tags={"k": "v"})
    assert_error(excinfo, "ResourceNotFoundException", 404)


# --- 6. resource policies -----------------------------------------------------------------------


def test_resource_policies_round_trip(client: Any) -> None:
    stack = image_stack(client)
    container = create_container_recipe(client, "golden-container", [stack["component"]])
    image = client.start_image_pipeline_execution(imagePipelineArn=stack["pipeline"])["imageBuildVersionArn"]

    assert client.put_component_policy(componentArn=stack["component"], policy=POLICY)["componentArn"] \
        == stack["component"]
    assert client.get_component_policy(componentArn=stack["component"])["policy"] == POLICY
    client.put_image_recipe_policy(imageRecipeArn=stack["recipe"], policy=policy_for("ImageRecipe"))
    assert client.get_image_recipe_policy(imageRecipeArn=stack["recipe"])["policy"] == policy_for("ImageRecipe")
    client.put_container_recipe_policy(containerRecipeArn=container, policy=policy_for("ContainerRecipe"))
    assert client.get_container_recipe_policy(containerRecipeArn=container)["policy"] == policy_for("ContainerRecipe")
    client.put_image_policy(imageArn=image, policy=policy_for("Image"))
    assert client.get_image_policy(imageArn=image)["policy"] == policy_for("Image")


def test_resource_policy_must_be_json(client: Any) -> None:
    arn = create_component(client, "policy-target")
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        client.put_component_policy(componentArn=arn, policy="{not json")
    assert_error(excinfo, "InvalidParameterValueException", 400, "policy")
    assert client.get_component_policy(componentArn=arn).get("policy") is None


@pytest.mark.parametrize(
    ("put", "member", "arn"),
    [
        ("put_component_policy", "componentArn", f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/ghost/1.0.0/1"),
        ("put_image_recipe_policy", "imageRecipeArn",
         f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image-recipe/ghost/1.0.0"),
        ("put_container_recipe_policy", "containerRecipeArn",
         f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:container-recipe/ghost/1.0.0"),
        ("put_image_policy", "imageArn", f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/ghost/1.0.0/1"),
    ],
    ids=["component", "image-recipe", "container-recipe", "image"],
)
def test_resource_policy_on_a_missing_resource(client: Any, put: str, member: str, arn: str) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as excinfo:
        getattr(client, put)(**{member: arn, "policy": POLICY})
    assert_error(excinfo, "ResourceNotFoundException", 404)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        getattr(client, put.replace("put_", "get_"))(**{member: arn})


# --- 7. unsupported operations ------------------------------------------------------------------

UNSUPPORTED: list[tuple[str, dict[str, Any]]] = [
    ("import_vm_image", {"name": "imported", "semanticVersion": "1.0.0", "platform": "Linux",
                         "vmImportTaskId": "import-ami-0123456789abcdef0"}),
    ("list_image_scan_findings", {}),
]  # every other unimplemented operation: tests/sandbox/test_unimplemented.py


@pytest.mark.parametrize(("operation", "kwargs"), UNSUPPORTED, ids=[op for op, _ in UNSUPPORTED])
def test_unsupported_operations_say_so(client: Any, operation: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as excinfo:
        getattr(client, operation)(**kwargs)
    message = assert_error(excinfo, "NotImplementedException", 501, "does not implement")
    assert client.meta.method_to_api_mapping[operation] in message
    create_component(client, "still-serving")
    assert all_component_names(client) == ["still-serving"]


# --- 8. malformed HTTP requests -----------------------------------------------------------------


def assert_still_serving(client: Any, name: str) -> None:
    create_component(client, name)
    assert name in all_component_names(client)


def assert_json_error(status: int, headers: dict[str, str], body: bytes, want_status: int, want_code: str) -> None:
    assert status == want_status
    assert headers.get("x-amzn-errortype") == want_code
    assert isinstance(json.loads(body)["message"], str)


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{not json", "SerializationException"), (b"[1, 2, 3]", "SerializationException"),
     (b"\xff\xfe\x00garbage", "SerializationException"), (b'"just a string"', "SerializationException")],
    ids=["malformed", "array", "not-utf8", "string"],
)
def test_bad_json_bodies_are_client_errors(sandbox: RunningSandbox, client: Any, body: bytes, code: str) -> None:
    status, headers, data = raw_request(sandbox.endpoint_url, "PUT", "/CreateComponent", body)
    assert_json_error(status, headers, data, 400, code)
    assert_still_serving(client, "after-bad-body")


def test_unknown_path_is_unknown_operation(sandbox: RunningSandbox, client: Any) -> None:
    status, headers, data = raw_request(sandbox.endpoint_url, "POST", "/NoSuchOperation", b"{}")
    assert_json_error(status, headers, data, 404, "UnknownOperationException")
    assert_still_serving(client, "after-unknown-path")


@pytest.mark.parametrize(("method", "path"), [("GET", "/CreateComponent"), ("DELETE", "/ListComponents"),
                                              ("PATCH", "/GetComponent")])
def test_wrong_method_on_a_known_path(sandbox: RunningSandbox, client: Any, method: str, path: str) -> None:
    status, headers, data = raw_request(sandbox.endpoint_url, method, path)
    assert 400 <= status < 500
    assert headers.get("x-amzn-errortype") == "UnknownOperationException"
    assert json.loads(data)["message"]
    assert_still_serving(client, "after-wrong-method")


@pytest.mark.parametrize("length", [str(10**12), "-5", "lots"])
def test_absurd_content_length(sandbox: RunningSandbox, client: Any, length: str) -> None:
    status, headers, data = raw_request(sandbox.endpoint_url, "PUT", "/CreateComponent",
                                        headers={"Content-Length": length})
    assert_json_error(status, headers, data, 400, "SerializationException")
    assert_still_serving(client, "after-huge-length")


def test_structurally_wrong_json_is_a_client_error(sandbox: RunningSandbox, client: Any) -> None:
    for body in (b'{"filters": ["name"]}', b'{"filters": {"name": "x"}}', b'{"owner": ["Self"]}',
                 b'{"maxResults": 2.5}', b'{"maxResults": true}', b'{"nextToken": "not-a-token"}'):
        status, headers, data = raw_request(sandbox.endpoint_url, "POST", "/ListComponents", body)
        assert status == 400, body
        assert headers.get("x-amzn-errortype") in ("InvalidRequestException", "InvalidPaginationTokenException"), body
    assert_still_serving(client, "after-wrong-shapes")


@pytest.mark.parametrize("bad_filter", [{"name": "name"}, {"values": ["x"]}], ids=["no-values", "no-name"])
def test_filter_missing_a_member_is_a_client_error(client: Any, bad_filter: dict[str, Any]) -> None:
    """Regression: a filter without `name` or `values` (neither is required by the model) once
    crashed backend.paginate with a KeyError, answered as a retryable 500 ServiceException."""
    # botocore's model does not require either Filter member, so it sends this as is.
    with pytest.raises(ClientError) as excinfo:
        client.list_components(filters=[bad_filter])
    code, status, _header, _message = error_of(excinfo.value)
    assert status == 400, (code, status)


def test_component_document_with_scalar_parameters_is_invalid(client: Any) -> None:
    """Regression: `parameters: 7` once crashed backend._component_parameters (TypeError -> 500)."""
    document = TEST_ONLY_DOCUMENT + "parameters: 7\n"
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        create_component(client, "scalar-params", data=document)
    assert_error(excinfo, "InvalidParameterValueException", 400, "data")


def test_invalid_yaml_document_is_invalid_parameter(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException) as excinfo:
        create_component(client, "bad-yaml", data="phases: [unclosed")
    assert_error(excinfo, "InvalidParameterValueException", 400, "data")


# --- 9. /_sandbox/stats and /_sandbox/reset ----------------------------------------------------


def test_stats_count_calls_per_operation_and_reset_clears_everything(sandbox: RunningSandbox, client: Any) -> None:
    assert stats(sandbox.endpoint_url) == {"total": 0, "operations": {}, "throttled": {}}
    for _ in range(3):
        client.list_components()
    create_component(client, "counted")
    assert stats(sandbox.endpoint_url) == {"total": 4, "operations": {"CreateComponent": 1, "ListComponents": 3},
                                          "throttled": {}}
    assert sandbox.stats() == stats(sandbox.endpoint_url)  # the endpoints themselves are not counted

    # Rejected and unknown requests: the former count, the latter name no operation.
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.list_components(owner="Bogus")
    raw_request(sandbox.endpoint_url, "POST", "/NoSuchOperation", b"{}")
    assert stats(sandbox.endpoint_url)["operations"]["ListComponents"] == 4

    assert post_reset(sandbox.endpoint_url) == {"reset": True}
    assert stats(sandbox.endpoint_url) == {"total": 0, "operations": {}, "throttled": {}}
    assert client.list_components()["componentVersionList"] == []
    assert stats(sandbox.endpoint_url) == {"total": 1, "operations": {"ListComponents": 1}, "throttled": {}}
    # A name freed by the reset can be created again as build 1.
    assert create_component(client, "counted").endswith("/1.0.0/1")


def test_unknown_sandbox_endpoint(sandbox: RunningSandbox) -> None:
    status, headers, _ = raw_request(sandbox.endpoint_url, "GET", "/_sandbox/nothing")
    assert status == 404 and headers.get("x-amzn-errortype") == "UnknownOperationException"
    status, _, _ = raw_request(sandbox.endpoint_url, "GET", "/_sandbox/reset")
    assert status == 404  # reset is POST only


# --- 10. fault injection ------------------------------------------------------------------------


def test_throttling_answers_429_call_rate_limit_exceeded() -> None:
    with running(throttle_rate=1.0, seed=3) as served:
        client = make_client(served.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        with pytest.raises(client.exceptions.CallRateLimitExceededException) as excinfo:
            client.list_components()
        assert_error(excinfo, "CallRateLimitExceededException", 429, "ListComponents")
        # botocore's standard mode does not retry this code: exactly one request reached the server.
        assert served.stats()["total"] == 1
        assert served.stats()["throttled"] == {"ListComponents": 1}


def test_error_rate_answers_500_or_503() -> None:
    seen: set[tuple[str, int]] = set()
    with running(error_rate=1.0, seed=11) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        for _ in range(8):
            with pytest.raises((client.exceptions.ServiceException, client.exceptions.ServiceUnavailableException)) \
                    as excinfo:
                client.list_components()
            code, status, header, _ = error_of(excinfo.value)
            assert header == code
            seen.add((code, status))
    assert seen <= {("ServiceException", 500), ("ServiceUnavailableException", 503)}
    assert seen == {("ServiceException", 500), ("ServiceUnavailableException", 503)}  # both kinds in 8 calls
    assert served.stats()["total"] == 8


def test_reset_rate_loses_the_connection() -> None:
    with running(reset_rate=1.0, seed=5) as served:
        client = make_client(served.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        for _ in range(3):
            with pytest.raises(Exception) as excinfo:
                client.list_components()
            lost = (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)
            assert isinstance(excinfo.value, lost), repr(excinfo.value)
        assert served.stats()["total"] >= 3  # every attempt reached the server before it was reset


def test_latency_delays_every_call() -> None:
    with running(latency_ms=200) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        client.list_components()  # warm the connection
        started = time.monotonic()
        client.list_components()
        assert time.monotonic() - started >= 0.19


def test_kept_alive_connections_are_not_delayed_by_nagle(sandbox: RunningSandbox) -> None:
    """Regression: headers and body went out as two segments without TCP_NODELAY, so Nagle's
    algorithm plus the client's delayed ACK made every kept-alive call take ~40 ms. Checked where
    it is decided, not on the clock: the server's end of a kept-alive connection has TCP_NODELAY."""
    url = urlsplit(sandbox.endpoint_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        for _ in range(2):  # the second request reuses the connection
            conn.request("GET", "/_sandbox/stats")
            response = conn.getresponse()
            assert response.status == 200 and not response.will_close
            response.read()
        assert conn.sock is not None
        ours = conn.sock.getsockname()
        # The sandbox runs in this process: its end of the connection is a socket here, whose peer is ours.
        server_ends = [sock for sock in gc.get_objects() if isinstance(sock, socket.socket) and _peer(sock) == ours]
        assert len(server_ends) == 1, server_ends
        assert server_ends[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        conn.close()


def _peer(sock: socket.socket) -> Any:
    try:
        return sock.getpeername()
    except OSError:  # closed, listening or never connected
        return None


def fault_sequence(seed: int, calls: int = 40) -> list[str]:
    with running(throttle_rate=0.2, error_rate=0.2, reset_rate=0.2, seed=seed) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        return [outcome(client.list_components) for _ in range(calls)]


def test_faults_are_deterministic_for_a_seed() -> None:
    # Three independent sandboxes; each sequence is sequential within its own sandbox.
    with ThreadPoolExecutor(max_workers=3) as pool:
        first, again, other = pool.map(fault_sequence, (1234, 1234, 4321))
    assert first == again
    assert first != other
    assert {"ok", "CallRateLimitExceededException", "connection"} <= set(first)
    assert {"ServiceException", "ServiceUnavailableException"} & set(first)


def test_retried_writes_are_applied_exactly_once(tmp_path: Path) -> None:
    """Lost responses (reset after the write) plus clientToken replays never duplicate a write."""
    state = tmp_path / "state.json"
    arns: list[str] = []
    with running(str(state), error_rate=0.3, reset_rate=0.3, seed=99) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        for i in range(40):
            arns.append(until_ok(lambda i=i: create_component(
                client, f"comp-{i:02d}", data=SIMPLE_DOCUMENT + f"# {i}\n", clientToken=f"token-{i:02d}"
            )))
        creates = served.stats()["operations"]["CreateComponent"]
    assert creates > 40  # faults forced retries
    assert arns == [f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/comp-{i:02d}/1.0.0/1" for i in range(40)]

    with running(str(state)) as calm:  # verify without faults, from the persisted state
        client = make_client(calm.endpoint_url, retries=ONE_ATTEMPT)
        assert sorted(all_component_names(client)) == [f"comp-{i:02d}" for i in range(40)]
        for i in range(40):
            version_arn = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:component/comp-{i:02d}/1.0.0"
            builds = client.list_component_build_versions(componentVersionArn=version_arn)["componentSummaryList"]
            assert [b["arn"] for b in builds] == [version_arn + "/1"]


def test_client_token_replay_returns_the_first_answer_and_mismatch_is_refused(client: Any) -> None:
    first = client.create_component(name="idem", semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT,
                                    clientToken="same-token")
    again = client.create_component(name="idem", semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT,
                                    clientToken="same-token")
    assert again["componentBuildVersionArn"] == first["componentBuildVersionArn"]
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException) as excinfo:
        client.create_component(name="idem", semanticVersion="1.0.1", platform="Linux", data=SIMPLE_DOCUMENT,
                                clientToken="same-token")
    assert_error(excinfo, "IdempotentParameterMismatchException", 400)
    assert all_component_names(client) == ["idem"]


# --- 11. persistence ----------------------------------------------------------------------------


def tmp_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_state_file_persists_across_sandboxes(tmp_path: Path) -> None:
    state = tmp_path / "nested" / "state.json"
    with running(str(state)) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        arn = create_component(client, "persisted", tags={"k": "v"})
        infra = create_infra(client, "persisted-infra")
    document = json.loads(state.read_text())
    assert document["format"] == 1
    assert arn in json.dumps(document["resources"])

    with running(str(state)) as again:
        client = make_client(again.endpoint_url, retries=ONE_ATTEMPT)
        assert client.get_component(componentBuildVersionArn=arn)["component"]["tags"] == {"k": "v"}
        assert client.get_infrastructure_configuration(
            infrastructureConfigurationArn=infra)["infrastructureConfiguration"]["name"] == "persisted-infra"
        # A second identical create is a duplicate: the content digest was persisted too.
        with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
            create_component(client, "persisted")
    assert tmp_leftovers(state.parent) == []


def test_absent_state_file_is_an_empty_state(tmp_path: Path) -> None:
    state = tmp_path / "absent.json"
    with running(str(state)) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        assert client.list_components()["componentVersionList"] == []
        assert client.list_image_pipelines()["imagePipelineList"] == []


def test_state_file_is_replaced_atomically(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with running(str(state)) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        create_component(client, "first")
        inode = os.stat(state).st_ino
        snapshot = state.read_text()
        create_component(client, "second")
        # Later writes go to the journal: the snapshot is not rewritten per write.
        assert os.stat(state).st_ino == inode and state.read_text() == snapshot
        served.sandbox.close()  # compaction: a new snapshot is renamed over the old one
        assert os.stat(state).st_ino != inode
        assert "component/second/" in state.read_text()
        assert tmp_leftovers(tmp_path) == []
        post_reset(served.endpoint_url)
        assert json.loads(state.read_text())["resources"] == {}
    assert tmp_leftovers(tmp_path) == []


def test_two_in_process_sandboxes_share_one_state_file(tmp_path: Path) -> None:
    state = str(tmp_path / "shared.json")
    with running(state) as one, running(state) as two:
        clients = [make_client(s.endpoint_url, retries=ONE_ATTEMPT) for s in (one, two)]
        for i in range(20):
            create_component(clients[i % 2], f"shared-{i:02d}")
        expected = [f"shared-{i:02d}" for i in range(20)]
        for client in clients:
            assert sorted(all_component_names(client)) == expected


def test_two_serve_processes_share_one_state_file(tmp_path: Path) -> None:
    state = str(tmp_path / "shared.json")
    with serve_process("--state", state) as (_, first), serve_process("--state", state) as (_, second):
        clients = [make_client(ep, retries=ONE_ATTEMPT) for ep in (first, second)]

        def create(i: int) -> str:
            return create_component(clients[i % 2], f"proc-{i:02d}")

        with ThreadPoolExecutor(max_workers=6) as pool:  # concurrent writers in both processes
            arns = list(pool.map(create, range(20)))
        assert len(set(arns)) == 20 and all(a.endswith("/1.0.0/1") for a in arns)
        expected = [f"proc-{i:02d}" for i in range(20)]
        for client in clients:
            assert sorted(all_component_names(client)) == expected
    assert len(json.loads(Path(state).read_text())["resources"]["components"]) == 20
    assert tmp_leftovers(tmp_path) == []
