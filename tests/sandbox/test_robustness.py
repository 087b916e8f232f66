"""What no request may do to the sandbox: crash a call, poison every later call, or reach another
account's resources. Each case came from trying to break it; all run with real boto3 over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from imagesync.sandbox import RunningSandbox, running
from support import REGION, SIMPLE_DOCUMENT, advance_clock

A, B = "111111111111", "222222222222"
PARENT = f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x"
RECURSIVE_WORKFLOW = "schemaVersion: 1.0\nsteps:\n  - name: Launch\n    action: LaunchInstance\n    inputs: &a [*a]\n"


def alias_bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "schemaVersion: 1.0\n" + "\n".join(lines) + "\nsteps:\n  - name: Launch\n    action: LaunchInstance\n"


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with running(clock_speed=0, build_minutes=0) as served:
        yield served


def client(sb: RunningSandbox, account: str = A) -> Any:
    return boto3.client(
        "imagebuilder", endpoint_url=sb.endpoint_url, region_name=REGION, aws_access_key_id=account,
        aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}),
    )




def basics(ib: Any, name: str) -> dict[str, str]:
    component = ib.create_component(name=f"{name}-c", semanticVersion="1.0.0", platform="Linux",
                                    data=SIMPLE_DOCUMENT)["componentBuildVersionArn"]
    recipe = ib.create_image_recipe(name=f"{name}-r", semanticVersion="1.0.0", parentImage=PARENT,
                                    components=[{"componentArn": component}])["imageRecipeArn"]
    infra = ib.create_infrastructure_configuration(name=f"{name}-i", instanceProfileName="builder")[
        "infrastructureConfigurationArn"]
    dist = ib.create_distribution_configuration(name=f"{name}-d", distributions=[{"region": REGION}])[
        "distributionConfigurationArn"]
    return {"recipe": recipe, "infra": infra, "dist": dist}


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        pytest.param(RECURSIVE_WORKFLOW, "Circular reference", id="recursive-alias"),
        pytest.param(alias_bomb(6), "more than 32 aliases", id="alias-bomb"),
    ],
)
def test_documents_that_expand_without_bound_are_refused_at_create(sb: RunningSandbox, document: str,
                                                                    fragment: str) -> None:
    """Regression: a workflow whose inputs were a recursive alias was accepted, and the first
    scheduled build that read it made every later call of every account answer 500; an alias bomb
    of a few hundred bytes took minutes under the store's lock."""
    ib = client(sb)
    with pytest.raises(ClientError) as err:
        ib.create_workflow(name="loopy", semanticVersion="1.0.0", type="BUILD", data=document)
    assert code(err) == "InvalidParameterValueException" and fragment in str(err.value)
    with pytest.raises(ClientError) as err:
        ib.create_component(name="loopy", semanticVersion="1.0.0", platform="Linux",
                            data=document.replace("steps:", "phases:"))
    assert code(err) == "InvalidParameterValueException"
    assert ib.list_workflows()["workflowVersionList"] == []


def test_a_document_with_a_few_aliases_is_accepted(sb: RunningSandbox) -> None:
    document = (
        "schemaVersion: 1.0\nphases:\n  - name: build\n    steps:\n"
        "      - name: One\n        action: ExecuteBash\n        inputs: &cmd {commands: [echo hi]}\n"
        "      - name: Two\n        action: ExecuteBash\n        inputs: *cmd\n"
    )
    arn = client(sb).create_component(name="aliased", semanticVersion="1.0.0", platform="Linux", data=document)
    assert arn["componentBuildVersionArn"].endswith("/aliased/1.0.0/1")


@pytest.mark.parametrize("member", ["infrastructureConfigurationArn", "distributionConfigurationArn"])
def test_another_accounts_configurations_cannot_be_used(sb: RunningSandbox, member: str) -> None:
    """Regression: CreateImage and CreateImagePipeline took another account's infrastructure or
    distribution configuration, which then showed in the caller's images. Resources are per
    account (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_CreateImage.html)."""
    a, b = client(sb, A), client(sb, B)
    theirs, mine = basics(a, "alpha"), basics(b, "bravo")
    wanted = {"infrastructureConfigurationArn": mine["infra"], "distributionConfigurationArn": mine["dist"]}
    wanted[member] = theirs["infra" if member.startswith("infra") else "dist"]
    with pytest.raises(ClientError) as err:
        b.create_image(imageRecipeArn=mine["recipe"], **wanted)
    assert code(err) == "InvalidParameterValueException" and member in str(err.value)
    with pytest.raises(ClientError) as err:
        b.create_image_pipeline(name="bravo-p", imageRecipeArn=mine["recipe"], **wanted)
    assert code(err) == "InvalidParameterValueException" and member in str(err.value)
    assert b.list_images()["imageVersionList"] == [] and b.list_image_pipelines()["imagePipelineList"] == []


def test_a_build_uses_only_the_parent_builds_its_account_may_see(sb: RunningSandbox) -> None:
    """Regression: a build pinned the owner's newest parent image build even though only an older
    build was shared with the account building on it."""
    a, b = client(sb, A), client(sb, B)
    base = basics(a, "alpha")
    first = a.create_image(imageRecipeArn=base["recipe"], infrastructureConfigurationArn=base["infra"])[
        "imageBuildVersionArn"]
    a.put_image_policy(imageArn=first, policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": [B]},
                       "Action": ["imagebuilder:GetImage", "imagebuilder:ListImages"], "Resource": [first]}],
    }))
    second = a.create_image(imageRecipeArn=base["recipe"], infrastructureConfigurationArn=base["infra"])[
        "imageBuildVersionArn"]
    assert second.endswith("/2")
    recipe = b.create_image_recipe(name="app", semanticVersion="1.0.0", parentImage=first.rsplit("/", 2)[0] + "/x.x.x")
    infra = b.create_infrastructure_configuration(name="app-i", instanceProfileName="builder")[
        "infrastructureConfigurationArn"]
    image = b.create_image(imageRecipeArn=recipe["imageRecipeArn"], infrastructureConfigurationArn=infra)
    built = b.get_image(imageBuildVersionArn=image["imageBuildVersionArn"])["image"]
    assert built["imageRecipe"]["parentImage"] == first


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(lambda ib, arn: ib.start_resource_state_update(resourceArn=arn, state={}),
                     "InvalidParameterValueException", id="state-update-without-status"),
        pytest.param(lambda ib, arn: ib.list_images(byName=True, filters=[{"values": ["x"]}]),
                     "InvalidParameterValueException", id="filter-without-name"),
        pytest.param(lambda ib, arn: ib.create_image_pipeline(
            name="p", imageRecipeArn=arn, infrastructureConfigurationArn=arn,
            schedule={"scheduleExpression": "cron(0 0 * * ? *)", "timezone": "America"}),
            "InvalidParameterValueException", id="timezone-that-is-a-directory"),
        pytest.param(lambda ib, arn: ib.create_infrastructure_configuration(name="ends-in-newline\n",
                                                                            instanceProfileName="builder"),
                     "InvalidParameterValueException", id="name-with-a-trailing-newline"),
        pytest.param(lambda ib, arn: ib.get_marketplace_resource(resourceType="COMPONENT_DATA", resourceArn="nope"),
                     "NotImplementedException", id="unimplemented-before-validation"),
    ],
)
def test_requests_the_model_allows_get_an_error_not_a_crash(sb: RunningSandbox, call: Any, expected: str) -> None:
    """Regression: each of these answered 500 "Internal sandbox error" (or, for an operation the
    sandbox lacks, a validation error that hid that it is not implemented)."""
    ib = client(sb)
    base = basics(ib, "alpha")
    image = ib.create_image(imageRecipeArn=base["recipe"], infrastructureConfigurationArn=base["infra"])
    arn = image["imageBuildVersionArn"] if "state" in repr(call) else base["recipe"]
    with pytest.raises(ClientError) as err:
        call(ib, arn)
    assert code(err) == expected, err.value
    assert ib.list_components()["componentVersionList"]  # and the sandbox still answers


def surviving_images_after(days: int, step_days: int) -> list[str]:
    with running(clock_speed=0, build_minutes=0) as served:
        ib = client(served)
        base = basics(ib, "alpha")
        ib.create_image_pipeline(
            name="nightly", imageRecipeArn=base["recipe"], infrastructureConfigurationArn=base["infra"],
            schedule={"scheduleExpression": "cron(0 0 * * ? *)",
                      "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"},
        )
        ib.create_lifecycle_policy(
            name="keep-one", executionRole=f"arn:aws:iam::{A}:role/lifecycle", resourceType="AMI_IMAGE",
            policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 1}}],
            resourceSelection={"recipes": [{"name": "alpha-r", "semanticVersion": "x.x.x"}]},
        )
        for _ in range(days // step_days):
            advance_clock(served.endpoint_url, step_days * 86400)
            ib.list_images()
        return sorted(r["version"] for r in ib.list_image_build_versions(
            imageVersionArn=base["recipe"].replace(":image-recipe/", ":image/"))["imageSummaryList"])


def test_moving_the_clock_at_once_ends_where_moving_it_day_by_day_does() -> None:
    """Regression: a six-day jump ran all six lifecycle days before any of the six nightly builds,
    so the policy judged images that did not exist yet and kept all six, where six one-day steps
    deleted the older ones as they went (lifecycle policies run once a day:
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/lifecycle-policy-execution.html)."""
    day_by_day = surviving_images_after(6, 1)
    assert surviving_images_after(6, 6) == day_by_day
    assert 1 <= len(day_by_day) < 6  # six nightly builds, and the policy deleted some


@pytest.mark.parametrize(
    ("region", "wrong"),
    [
        pytest.param("cn-north-1", "aws", id="china-named-as-aws"),
        pytest.param("us-gov-west-1", "aws-cn", id="govcloud-named-as-china"),
        pytest.param("us-east-1", "aws-us-gov", id="commercial-named-as-govcloud"),
    ],
)
def test_an_arn_whose_partition_is_not_its_regions_names_nothing(sb: RunningSandbox, region: str, wrong: str) -> None:
    """An ARN's partition is its region's (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html):
    a reference that names the right region under another partition resolves to nothing, so a
    reconciler that writes `arn:aws:` in China cannot pass against the sandbox."""
    ib = boto3.client("imagebuilder", endpoint_url=sb.endpoint_url, region_name=region, aws_access_key_id=A,
                      aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}))
    right = ib.create_component(name="setup", semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT)[
        "componentBuildVersionArn"]
    assert ib.get_component(componentBuildVersionArn=right)["component"]["arn"] == right
    mislabelled = f"arn:{wrong}:" + right.split(":", 2)[2]
    with pytest.raises(ClientError) as err:
        ib.get_component(componentBuildVersionArn=mislabelled)
    assert code(err) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        ib.create_image_recipe(name="app", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0",
                               components=[{"componentArn": mislabelled}])
    assert code(err) == "InvalidParameterValueException"
    managed = f"arn:{wrong}:imagebuilder:{region}:aws:component/update-linux/x.x.x"
    with pytest.raises(ClientError):
        ib.get_component(componentBuildVersionArn=managed)
