"""Image builds on the sandbox clock: states, failures, cancellation, outputs, workflow executions.

Real boto3 clients over HTTP; the clock is frozen (`clock_speed=0`) and moved with
`POST /_sandbox/clock`, so every state of a build can be observed. Where a test expects a status at
a given minute it relies on the sandbox's split of a build (README: 5 % pending, building 50 %, or
70 % without tests, testing 25 %, then distributing); that split is the sandbox's documented reading,
the service documents only the order of the statuses.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from imagesync.sandbox import RunningSandbox, running
from support import ACCOUNT, REGION, SIMPLE_DOCUMENT, advance_clock, make_client, sandbox_now

BUILD_AND_TEST_DOCUMENT = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Install
        action: ExecuteBash
        inputs:
          commands: ["echo build"]
  - name: test
    steps:
      - name: Check
        action: ExecuteBash
        inputs:
          commands: ["echo test"]
"""
WORKFLOW_DOCUMENT = """\
name: custom-build
schemaVersion: 1.0
steps:
  - name: LaunchBuildInstance
    action: LaunchInstance
    onFailure: Abort
  - name: ApplyBuildComponents
    action: ExecuteComponents
    onFailure: Abort
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
  - name: CreateOutputAMI
    action: CreateImage
    onFailure: Abort
    inputs:
      instanceId.$: "$.stepOutputs.LaunchBuildInstance.instanceId"
"""
ROLE = f"arn:aws:iam::{ACCOUNT}:role/imagebuilder-execution"


def advance(sb: RunningSandbox, minutes: float) -> None:
    advance_clock(sb.endpoint_url, minutes * 60)


def clock_now(sb: RunningSandbox) -> dt.datetime:
    return sandbox_now(sb.endpoint_url)


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with running(clock_speed=0, build_minutes=60) as served:
        yield served


@pytest.fixture
def ib(sb: RunningSandbox) -> Any:
    return make_client(sb.endpoint_url)


def stack(ib: Any, *, document: str = BUILD_AND_TEST_DOCUMENT, distributions: list[dict[str, Any]] | None = None,
          **pipeline: Any) -> dict[str, str]:
    component = ib.create_component(name="setup", semanticVersion="1.0.0", platform="Linux",
                                    data=document)["componentBuildVersionArn"]
    recipe = ib.create_image_recipe(
        name="golden", semanticVersion="1.0.0", description="The golden image",
        parentImage=f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x",
        components=[{"componentArn": component}], amiTags={"source": "recipe", "team": "platform"},
    )["imageRecipeArn"]
    infra = ib.create_infrastructure_configuration(name="infra", instanceProfileName="builder")[
        "infrastructureConfigurationArn"]
    out = {"component": component, "recipe": recipe, "infra": infra}
    if distributions is not None:
        out["distribution"] = ib.create_distribution_configuration(
            name="dist", distributions=distributions)["distributionConfigurationArn"]
        pipeline["distributionConfigurationArn"] = out["distribution"]
    out["pipeline"] = ib.create_image_pipeline(
        name="golden-pipeline", imageRecipeArn=recipe, infrastructureConfigurationArn=infra, **pipeline
    )["imagePipelineArn"]
    return out


def status(ib: Any, arn: str) -> str:
    return ib.get_image(imageBuildVersionArn=arn)["image"]["state"]["status"]


def test_a_pipeline_build_goes_through_each_state(sb: RunningSandbox, ib: Any) -> None:
    """A new image moves through build, test and distribution statuses and ends AVAILABLE (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ImageState.html);
    the pipeline's lastRunStatus is the status of the last image it built
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ImagePipeline.html).
    The minutes at which each status is seen pin the sandbox's documented reading of how a build's time
    is split (README: 5 % pending, building 50 %, testing 25 %, then distributing); the service documents
    only the order of the statuses."""
    s = stack(ib, imageTags={"built-by": "pipeline", "env": "dev"}, executionRole=ROLE,
              imageScanningConfiguration={"imageScanningEnabled": True})
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"], tags={"env": "prod"})[
        "imageBuildVersionArn"]
    seen = []
    for minutes in (0, 5, 30, 15, 5, 10):  # t = 0, 5, 35, 50, 55, 65 minutes
        advance(sb, minutes)
        image = ib.get_image(imageBuildVersionArn=arn)["image"]
        seen.append(image["state"]["status"])
        pipeline = ib.get_image_pipeline(imagePipelineArn=s["pipeline"])["imagePipeline"]
        assert pipeline["lastRunStatus"] == image["state"]["status"]
        assert ("outputResources" in image) == (image["state"]["status"] == "AVAILABLE")
    assert seen == ["PENDING", "BUILDING", "TESTING", "DISTRIBUTING", "DISTRIBUTING", "AVAILABLE"]
    assert image["buildType"] == "USER_INITIATED"
    assert image["tags"] == {"built-by": "pipeline", "env": "prod"}
    assert image["executionRole"] == ROLE
    assert image["imageScanningConfiguration"] == {"imageScanningEnabled": True}
    assert image["sourcePipelineArn"] == s["pipeline"]
    assert pipeline["dateLastRun"] == image["dateCreated"]
    assert pipeline["consecutiveFailures"] == 0
    listed = ib.list_image_pipeline_images(imagePipelineArn=s["pipeline"])["imageSummaryList"]
    assert [(r["arn"], r["state"]["status"]) for r in listed] == [(arn, "AVAILABLE")]


@pytest.mark.parametrize(
    ("document", "tests", "expected"),
    [
        (BUILD_AND_TEST_DOCUMENT, {"imageTestsEnabled": False}, ["PENDING", "BUILDING", "BUILDING", "AVAILABLE"]),
        (SIMPLE_DOCUMENT, {"imageTestsEnabled": True}, ["PENDING", "BUILDING", "BUILDING", "AVAILABLE"]),
        (BUILD_AND_TEST_DOCUMENT, {"imageTestsEnabled": True}, ["PENDING", "BUILDING", "TESTING", "AVAILABLE"]),
    ],
    ids=["tests-disabled", "nothing-to-test", "tests-run"],
)
def test_testing_happens_only_with_tests_enabled_and_something_to_test(
    sb: RunningSandbox, ib: Any, document: str, tests: dict[str, Any], expected: list[str]
) -> None:
    """TESTING is one of the statuses a build passes through (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ImageState.html);
    disabled image tests, or nothing to test, skip it (building then takes its time).
    The minutes at which each status is seen pin the sandbox's documented reading of how a build's time
    is split (README: 5 % pending, building 50 %, testing 25 %, then distributing); the service documents
    only the order of the statuses."""
    s = stack(ib, document=document, imageTestsConfiguration=tests)
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    seen = [status(ib, arn)]
    for minutes in (10, 30, 30):  # t = 10, 40, 70 minutes: the sandbox tests in minutes 33-48 when it tests
        advance(sb, minutes)
        seen.append(status(ib, arn))
    assert seen == expected


def test_an_injected_failure_fails_the_build_and_counts_scheduled_failures() -> None:
    """A failed build ends FAILED with a reason (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/
    API_ImageState.html); scheduled failures increment consecutiveFailures, a manual failure leaves it, and
    the auto-disable policy disables the pipeline at its count
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ImagePipeline.html)."""
    with running(clock_speed=0, build_minutes=30, build_failure_rate=1.0, seed=7) as served:
        ib = make_client(served.endpoint_url)
        s = stack(ib, schedule={"scheduleExpression": "cron(0 * * * ? *)",
                                "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY",
                                "autoDisablePolicy": {"failureCount": 2}})
        manual = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
        advance(served, 40)  # the manual build fails; the hourly schedule may have fired once meanwhile
        image = ib.get_image(imageBuildVersionArn=manual)["image"]
        assert image["state"]["status"] == "FAILED"
        assert "failed" in image["state"]["reason"]
        assert "outputResources" not in image
        pipeline = ib.get_image_pipeline(imagePipelineArn=s["pipeline"])["imagePipeline"]
        scheduled = [r for r in ib.list_image_pipeline_images(imagePipelineArn=s["pipeline"])["imageSummaryList"]
                     if r["buildType"] == "SCHEDULED"]
        assert pipeline["consecutiveFailures"] == sum(r["state"]["status"] == "FAILED" for r in scheduled)
        advance(served, 180)
        pipeline = ib.get_image_pipeline(imagePipelineArn=s["pipeline"])["imagePipeline"]
        assert pipeline["lastRunStatus"] == "FAILED"
        assert pipeline["consecutiveFailures"] == 2
        assert pipeline["status"] == "DISABLED"
        images = ib.list_image_pipeline_images(imagePipelineArn=s["pipeline"])["imageSummaryList"]
        assert sum(r["buildType"] == "SCHEDULED" for r in images) == 2  # a disabled pipeline does not fire


def test_failures_follow_the_rate_and_the_seed() -> None:
    """Failure injection is deterministic per image ARN and seed: the same builds fail on every run."""
    outcomes = []
    for _ in range(2):
        with running(clock_speed=0, build_minutes=0, build_failure_rate=0.5, seed=3) as served:
            ib = make_client(served.endpoint_url)
            s = stack(ib)
            arns = [ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
                    for _ in range(12)]
            outcomes.append([status(ib, a) for a in arns])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {"AVAILABLE", "FAILED"}


def test_cancelling_a_build(sb: RunningSandbox, ib: Any) -> None:
    """CancelImageCreation only works on images in a non-terminal state
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_CancelImageCreation.html)."""
    s = stack(ib)
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    advance(sb, 10)
    assert status(ib, arn) == "BUILDING"
    assert ib.cancel_image_creation(imageBuildVersionArn=arn)["imageBuildVersionArn"] == arn
    advance(sb, 120)
    image = ib.get_image(imageBuildVersionArn=arn)["image"]
    assert image["state"]["status"] == "CANCELLED" and "outputResources" not in image
    assert ib.get_image_pipeline(imagePipelineArn=s["pipeline"])["imagePipeline"]["lastRunStatus"] == "CANCELLED"
    with pytest.raises(ib.exceptions.ResourceInUseException):
        ib.cancel_image_creation(imageBuildVersionArn=arn)
    done = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    advance(sb, 61)
    assert status(ib, done) == "AVAILABLE"
    with pytest.raises(ib.exceptions.ResourceInUseException):
        ib.cancel_image_creation(imageBuildVersionArn=done)
    with pytest.raises(ib.exceptions.ResourceNotFoundException):
        ib.cancel_image_creation(imageBuildVersionArn=arn[:-1] + "9")


def test_ami_names_come_from_the_template_per_region_and_account(sb: RunningSandbox, ib: Any) -> None:
    """AMI names expand `{{imagebuilder:buildDate}}` (https://www.pulumi.com/registry/packages/aws/api-docs/
    imagebuilder/distributionconfiguration), one AMI per region and target account; without a description
    the build region's AMI takes the recipe's
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_AmiDistributionConfiguration.html)."""
    s = stack(ib, distributions=[
        {"region": REGION, "amiDistributionConfiguration": {
            "name": "golden-{{ imagebuilder:buildDate }}-{{imagebuilder:buildVersion}}",
            "amiTags": {"team": "images"}}},
        {"region": "eu-west-1", "amiDistributionConfiguration": {
            "name": "golden-eu-{{imagebuilder:buildDate}}", "description": "Copied",
            "targetAccountIds": ["111111111111", "222222222222"]}},
        {"region": "us-west-2"},
    ])
    started = clock_now(sb)
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    advance(sb, 61)
    amis = ib.get_image(imageBuildVersionArn=arn)["image"]["outputResources"]["amis"]
    date = started.strftime("%Y-%m-%dT%H-%M-%S.") + f"{started.microsecond // 1000:03d}Z"
    got = sorted((a["region"], a["accountId"], a["name"], a.get("description")) for a in amis)
    assert got == [
        ("eu-west-1", "111111111111", f"golden-eu-{date}", "Copied"),
        ("eu-west-1", "222222222222", f"golden-eu-{date}", "Copied"),
        (REGION, ACCOUNT, f"golden-{date}-1", "The golden image"),
        # the default name (recipe name, a space, the build date) is the sandbox's reading: no source shows it
        ("us-west-2", ACCOUNT, f"golden {date}", None),
    ]
    assert len({a["image"] for a in amis}) == 4 and all(a["image"].startswith("ami-") for a in amis)


def test_create_image_builds_without_a_pipeline(sb: RunningSandbox, ib: Any) -> None:
    """CreateImage builds from a recipe and an infrastructure configuration
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_CreateImage.html)."""
    s = stack(ib)
    arn = ib.create_image(imageRecipeArn=s["recipe"], infrastructureConfigurationArn=s["infra"],
                          tags={"k": "v"})["imageBuildVersionArn"]
    assert arn == f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}:image/golden/1.0.0/1"
    assert status(ib, arn) == "PENDING"
    advance(sb, 61)
    image = ib.get_image(imageBuildVersionArn=arn)["image"]
    assert image["state"]["status"] == "AVAILABLE" and image["tags"] == {"k": "v"}
    assert "sourcePipelineArn" not in image and image["outputResources"]["amis"][0]["region"] == REGION
    with pytest.raises(ib.exceptions.InvalidRequestException):
        ib.create_image(infrastructureConfigurationArn=s["infra"])


def test_workflow_executions_follow_the_build(sb: RunningSandbox, ib: Any) -> None:
    """Each build records a workflow execution per workflow with its steps
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ListWorkflowExecutions.html)."""
    workflow = ib.create_workflow(name="custom-build", semanticVersion="1.0.0", type="BUILD",
                                  data=WORKFLOW_DOCUMENT)["workflowBuildVersionArn"]
    s = stack(ib, workflows=[{"workflowArn": workflow}], executionRole=ROLE)
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    assert ib.list_workflow_executions(imageBuildVersionArn=arn)["workflowExecutions"] == []
    advance(sb, 10)
    running_now = ib.list_workflow_executions(imageBuildVersionArn=arn)["workflowExecutions"]
    assert [(e["type"], e["status"], e["workflowBuildVersionArn"]) for e in running_now] == [
        ("BUILD", "RUNNING", workflow)]
    steps = ib.list_workflow_step_executions(workflowExecutionId=running_now[0]["workflowExecutionId"])["steps"]
    assert [(st["name"], st["status"]) for st in steps] == [
        ("LaunchBuildInstance", "RUNNING"), ("ApplyBuildComponents", "PENDING"), ("CreateOutputAMI", "PENDING")]
    advance(sb, 60)
    done = ib.list_workflow_executions(imageBuildVersionArn=arn)["workflowExecutions"]
    assert [(e["type"], e["status"]) for e in done] == [("BUILD", "COMPLETED"), ("TEST", "COMPLETED")]
    assert done[0]["totalStepCount"] == done[0]["totalStepsSucceeded"] == 3
    got = ib.get_workflow_execution(workflowExecutionId=done[1]["workflowExecutionId"])
    assert got["imageBuildVersionArn"] == arn and got["type"] == "TEST" and got["status"] == "COMPLETED"
    step = ib.list_workflow_step_executions(workflowExecutionId=done[0]["workflowExecutionId"])["steps"][2]
    detail = ib.get_workflow_step_execution(stepExecutionId=step["stepExecutionId"])
    assert (detail["name"], detail["action"], detail["status"]) == ("CreateOutputAMI", "CreateImage", "COMPLETED")
    assert detail["workflowExecutionId"] == done[0]["workflowExecutionId"]
    # The step's document inputs and onFailure, and what the completed step produced.
    assert json.loads(detail["inputs"]) == {"instanceId.$": "$.stepOutputs.LaunchBuildInstance.instanceId"}
    assert detail["onFailure"] == "Abort"
    assert json.loads(detail["outputs"])["imageId"].startswith("ami-")
    launch = ib.list_workflow_step_executions(workflowExecutionId=done[0]["workflowExecutionId"])["steps"][0]
    assert json.loads(launch["inputs"]) == {} and json.loads(launch["outputs"])["instanceId"].startswith("i-")


def test_scan_state_follows_a_build_with_scanning_enabled(sb: RunningSandbox, ib: Any) -> None:
    """An image whose pipeline enables image scanning carries a scanState
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ImageScanState.html): pending while
    it builds, scanning while tested, collecting while distributed, COMPLETED once AVAILABLE, and
    ABANDONED when the build is cancelled; an image built without scanning has none.
    The minutes at which each status is seen pin the sandbox's documented reading of how a build's time
    is split (README: 5 % pending, building 50 %, testing 25 %, then distributing); the service documents
    only the order of the statuses."""
    s = stack(ib, imageScanningConfiguration={"imageScanningEnabled": True})
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    seen = []
    for minutes in (0, 5, 30, 15, 15):  # t = 0, 5, 35, 50, 65 minutes of a 60-minute build
        advance(sb, minutes)
        image = ib.get_image(imageBuildVersionArn=arn)["image"]
        seen.append((image["state"]["status"], image["scanState"]["status"]))
    assert seen == [
        ("PENDING", "PENDING"),
        ("BUILDING", "PENDING"),
        ("TESTING", "SCANNING"),
        ("DISTRIBUTING", "COLLECTING"),
        ("AVAILABLE", "COMPLETED"),
    ]
    cancelled = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    ib.cancel_image_creation(imageBuildVersionArn=cancelled)
    assert ib.get_image(imageBuildVersionArn=cancelled)["image"]["scanState"] == {"status": "ABANDONED"}
    plain = stack_without_scanning(ib)
    unscanned = ib.start_image_pipeline_execution(imagePipelineArn=plain)["imageBuildVersionArn"]
    assert "scanState" not in ib.get_image(imageBuildVersionArn=unscanned)["image"]


def stack_without_scanning(ib: Any) -> str:
    recipe = ib.create_image_recipe(name="plain", semanticVersion="1.0.0", parentImage="ami-0123456789abcdef0")[
        "imageRecipeArn"]
    infra = ib.create_infrastructure_configuration(name="plain-infra", instanceProfileName="builder")[
        "infrastructureConfigurationArn"]
    return ib.create_image_pipeline(name="plain", imageRecipeArn=recipe, infrastructureConfigurationArn=infra)[
        "imagePipelineArn"]


def test_state_update_deprecates_an_image(sb: RunningSandbox, ib: Any) -> None:
    """StartResourceStateUpdate changes an image's lifecycle state
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_StartResourceStateUpdate.html);
    ListImages leaves deprecated images out unless includeDeprecated."""
    s = stack(ib)
    arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
    with pytest.raises(ib.exceptions.ResourceInUseException):
        ib.start_resource_state_update(resourceArn=arn, state={"status": "DEPRECATED"})
    advance(sb, 61)
    response = ib.start_resource_state_update(resourceArn=arn, state={"status": "DEPRECATED"})
    assert response["resourceArn"] == arn and response["lifecycleExecutionId"]
    assert status(ib, arn) == "DEPRECATED"
    assert ib.list_images()["imageVersionList"] == []
    assert len(ib.list_images(includeDeprecated=True)["imageVersionList"]) == 1


def test_zero_build_minutes_is_available_at_once() -> None:
    """With build-minutes 0 a build is AVAILABLE in the response's first read."""
    with running(clock_speed=0, build_minutes=0) as served:
        ib = make_client(served.endpoint_url)
        s = stack(ib)
        arn = ib.start_image_pipeline_execution(imagePipelineArn=s["pipeline"])["imageBuildVersionArn"]
        assert status(ib, arn) == "AVAILABLE"
