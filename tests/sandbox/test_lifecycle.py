"""Lifecycle policies run on the sandbox clock: daily executions that deprecate, disable and delete images.

Real boto3 clients over HTTP to a sandbox whose clock is frozen (`clock_speed=0`) and moved with
`POST /_sandbox/clock`. Images are built by pipeline executions and waited for until AVAILABLE.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imagesync.sandbox import RunningSandbox, running
from support import ACCOUNT, REGION, SIMPLE_DOCUMENT, advance_clock, make_client

ROLE = f"arn:aws:iam::{ACCOUNT}:role/ImageBuilderLifecycle"
PROFILE = "EC2InstanceProfileForImageBuilder"
DAY = 86400
EXECUTION = 300  # simulated seconds an execution takes before its actions are applied
LCE = r"^lce-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"

EXECUTION_DOCS = "https://docs.aws.amazon.com/imagebuilder/latest/userguide/lifecycle-policy-execution.html"
RULES_DOCS = "https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html"
FILTER_DOCS = "https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyDetailFilter.html"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running(clock_speed=0, build_minutes=1) as served:
        yield served


@pytest.fixture
def client(sandbox: RunningSandbox) -> Any:
    return make_client(sandbox.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})


def advance(sandbox: RunningSandbox, seconds: float) -> None:
    advance_clock(sandbox.endpoint_url, seconds)


def pipeline(client: Any, name: str = "golden", version: str = "1.0.0") -> str:
    component = client.create_component(
        name=f"{name}-setup", semanticVersion=version, platform="Linux", data=SIMPLE_DOCUMENT
    )["componentBuildVersionArn"]
    recipe = client.create_image_recipe(
        name=name, semanticVersion=version, parentImage="ami-0123456789abcdef0",
        components=[{"componentArn": component}],
    )["imageRecipeArn"]
    suffix = version.replace(".", "-")
    infra = client.create_infrastructure_configuration(name=f"{name}-{suffix}-infra", instanceProfileName=PROFILE)[
        "infrastructureConfigurationArn"
    ]
    return client.create_image_pipeline(name=f"{name}-{suffix}-pipeline", imageRecipeArn=recipe,
                                        infrastructureConfigurationArn=infra)["imagePipelineArn"]


def build(client: Any, sandbox: RunningSandbox, pipeline_arn: str, **tags: str) -> str:
    """One image from the pipeline, waited for (by moving the clock) until AVAILABLE."""
    extra = {"tags": tags} if tags else {}
    arn: str = client.start_image_pipeline_execution(imagePipelineArn=pipeline_arn, **extra)["imageBuildVersionArn"]
    for _ in range(30):
        if status(client, arn) == "AVAILABLE":
            return arn
        advance(sandbox, 30)
    raise AssertionError(f"{arn} never became AVAILABLE: {status(client, arn)}")


def status(client: Any, arn: str) -> str:
    try:
        return str(client.get_image(imageBuildVersionArn=arn)["image"]["state"]["status"])
    except ClientError as err:
        if err.response["Error"]["Code"] == "ResourceNotFoundException":
            return "GONE"
        raise


def builds(client: Any, sandbox: RunningSandbox, pipeline_arn: str, count: int, gap: float = 3600) -> list[str]:
    """`count` images, oldest first, `gap` simulated seconds apart."""
    arns = []
    for i in range(count):
        if i:
            advance(sandbox, gap)
        arns.append(build(client, sandbox, pipeline_arn))
    return arns


def policy(client: Any, rules: list[dict[str, Any]], name: str = "retire", **extra: Any) -> str:
    extra.setdefault("resourceSelection", {"recipes": [{"name": "golden", "semanticVersion": "1.x.x"}]})
    arn: str = client.create_lifecycle_policy(
        name=name, executionRole=ROLE, resourceType="AMI_IMAGE", policyDetails=rules, **extra
    )["lifecyclePolicyArn"]
    return arn


def executions(client: Any, policy_arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_lifecycle_executions").paginate(resourceArn=policy_arn):
        found.extend(page["lifecycleExecutions"])
    return found


def run_day(client: Any, sandbox: RunningSandbox, days: int = 1) -> None:
    """Move the clock `days` simulated days and past the execution time, then let the sandbox see it."""
    advance(sandbox, days * DAY + EXECUTION + 1)
    client.list_lifecycle_policies()


def statuses(client: Any, arns: list[str]) -> list[str]:
    return [status(client, arn) for arn in arns]


def count_rule(action: str, keep: int, **extra: Any) -> dict[str, Any]:
    return {"action": {"type": action, **extra}, "filter": {"type": "COUNT", "value": keep}}


def age_rule(action: str, value: int, unit: str = "DAYS", **filter_extra: Any) -> dict[str, Any]:
    return {"action": {"type": action}, "filter": {"type": "AGE", "value": value, "unit": unit, **filter_extra}}


# --- rules ------------------------------------------------------------------------------------


def test_age_rule_deprecates_images_once_they_are_old_enough(client: Any, sandbox: RunningSandbox) -> None:
    """An AGE rule acts on images older than its value, evaluated by the daily execution; before
    that age they are left alone. Sources: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyDetailFilter.html
    and https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html (the
    deprecate rule sets the image status to Deprecated)."""
    arns = builds(client, sandbox, pipeline(client), 2)
    policy(client, [age_rule("DEPRECATE", 3)])
    run_day(client, sandbox, 2)
    assert statuses(client, arns) == ["AVAILABLE", "AVAILABLE"]
    run_day(client, sandbox)
    assert statuses(client, arns) == ["DEPRECATED", "DEPRECATED"]
    image = client.get_image(imageBuildVersionArn=arns[0])["image"]
    assert "lifecycle policy" in image["state"]["reason"]
    # A deprecated image leaves the default image list, as deprecated images do.
    assert client.list_images()["imageVersionList"] == []
    assert len(client.list_images(includeDeprecated=True)["imageVersionList"]) == 1


@pytest.mark.parametrize(
    ("unit", "value", "days_until_old"),
    [("DAYS", 10, 10), ("WEEKS", 2, 14), ("MONTHS", 1, 31), ("YEARS", 1, 366)],
    ids=["days", "weeks", "months", "years"],
)
def test_age_units(client: Any, sandbox: RunningSandbox, unit: str, value: int, days_until_old: int) -> None:
    """AGE counts in DAYS, WEEKS, MONTHS or YEARS; the image is untouched the day before it is that
    old and acted on once it is. Source: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyDetailFilter.html"""
    [arn] = builds(client, sandbox, pipeline(client), 1)
    policy(client, [age_rule("DISABLE", value, unit)])
    run_day(client, sandbox, days_until_old - 2)  # a month or a year is 28 to 31 or 365 to 366 days long
    assert status(client, arn) == "AVAILABLE"
    run_day(client, sandbox, 2)
    assert status(client, arn) == "DISABLED"


def test_count_rule_deletes_all_but_the_newest(client: Any, sandbox: RunningSandbox) -> None:
    """A COUNT rule keeps the newest N images and acts on the rest; DELETE removes the image.
    Sources: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyDetailFilter.html
    and https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html (delete rule)."""
    arns = builds(client, sandbox, pipeline(client), 4)
    policy_arn = policy(client, [count_rule("DELETE", 2)])
    run_day(client, sandbox)
    assert statuses(client, arns) == ["GONE", "GONE", "AVAILABLE", "AVAILABLE"]
    [execution] = executions(client, policy_arn)
    assert execution["state"]["status"] == "SUCCESS"
    resources = client.list_lifecycle_execution_resources(lifecycleExecutionId=execution["lifecycleExecutionId"])
    assert sorted(r["resourceId"] for r in resources["resources"]) == sorted(arns[:2])
    assert {r["action"]["name"] for r in resources["resources"]} == {"DELETE"}
    assert {r["state"]["status"] for r in resources["resources"]} == {"SUCCESS"}
    # The next day there is nothing more to delete.
    run_day(client, sandbox)
    newest = executions(client, policy_arn)[0]
    assert newest["resourcesImpactedSummary"]["hasImpactedResources"] is False
    assert statuses(client, arns[2:]) == ["AVAILABLE", "AVAILABLE"]


@pytest.mark.parametrize(("retain", "expected"), [
    (None, ["GONE", "GONE", "GONE"]),
    (1, ["GONE", "GONE", "AVAILABLE"]),
    (2, ["GONE", "AVAILABLE", "AVAILABLE"]),
    (5, ["AVAILABLE", "AVAILABLE", "AVAILABLE"]),
], ids=["none", "one", "two", "more-than-there-are"])
def test_retain_at_least_keeps_the_newest_old_images(
    client: Any, sandbox: RunningSandbox, retain: int | None, expected: list[str]
) -> None:
    """With retainAtLeast, an AGE rule only acts while more images than that are on hand, sparing
    the newest. Source: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyDetailFilter.html
    ("Impacted resources are only deleted if you have more than this number of resources")."""
    arns = builds(client, sandbox, pipeline(client), 3)
    rule = age_rule("DELETE", 1)
    if retain:
        rule["filter"]["retainAtLeast"] = retain
    policy(client, [rule])
    run_day(client, sandbox, 2)
    assert statuses(client, arns) == expected


def test_exclusion_tag_keeps_a_tagged_image(client: Any, sandbox: RunningSandbox) -> None:
    """Images carrying an exclusionRules.tagMap tag are skipped by the rule; the others are not.
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html
    (lifecycle exclusion rules)."""
    pipe = pipeline(client)
    keep = build(client, sandbox, pipe, keep="forever")
    advance(sandbox, 3600)
    drop = build(client, sandbox, pipe, keep="no")
    advance(sandbox, 3600)
    newest = build(client, sandbox, pipe)
    rule = {**count_rule("DELETE", 1), "exclusionRules": {"tagMap": {"keep": "forever"}}}
    policy(client, [rule])
    run_day(client, sandbox)
    assert statuses(client, [keep, drop, newest]) == ["AVAILABLE", "GONE", "AVAILABLE"]


def test_ami_exclusion_by_region_and_shared_account(client: Any, sandbox: RunningSandbox) -> None:
    """exclusionRules.amis spares images whose AMIs are in one of `regions` or shared with one of
    `sharedAccounts`. Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html"""
    pipe = pipeline(client)
    plain = build(client, sandbox, pipe)
    distribution = client.create_distribution_configuration(name="shared", distributions=[
        {"region": REGION, "amiDistributionConfiguration": {"launchPermission": {"userIds": ["210987654321"]}}},
    ])["distributionConfigurationArn"]
    current = client.get_image_pipeline(imagePipelineArn=pipe)["imagePipeline"]
    client.update_image_pipeline(imagePipelineArn=pipe, imageRecipeArn=current["imageRecipeArn"],
                                 infrastructureConfigurationArn=current["infrastructureConfigurationArn"],
                                 distributionConfigurationArn=distribution)
    advance(sandbox, 3600)
    shared = build(client, sandbox, pipe)
    advance(sandbox, 3600)
    newest = build(client, sandbox, pipe)
    rules = [
        {**age_rule("DEPRECATE", 1), "exclusionRules": {"amis": {"regions": ["eu-west-1"]}}},
        {**count_rule("DELETE", 1), "exclusionRules": {"amis": {"sharedAccounts": ["210987654321"]}}},
    ]
    policy(client, rules)
    run_day(client, sandbox, 2)
    # Rule 1 deprecates all three (none is in eu-west-1); rule 2 deletes all but the newest, except
    # the image shared with 210987654321.
    assert statuses(client, [plain, shared, newest]) == ["GONE", "DEPRECATED", "DEPRECATED"]


def test_tag_map_selection_and_wildcard_recipe_versions(client: Any, sandbox: RunningSandbox) -> None:
    """resourceSelection picks images by recipe name and a version that may hold `x` wildcards, or by
    tags; images of other recipes and versions are never considered. Sources:
    https://pub.dev/documentation/pulumi_aws/latest/imagebuilder/LifecyclePolicyResourceSelectionRecipe-class.html
    (wildcard semantic versions such as 1.0.x, 1.x.x, x.x.x) and
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_LifecyclePolicyResourceSelectionRecipe.html"""
    golden_one = build(client, sandbox, pipeline(client, "golden", "1.0.0"))
    golden_two = build(client, sandbox, pipeline(client, "golden", "2.0.0"))
    other_pipe = pipeline(client, "other")
    other = build(client, sandbox, other_pipe)
    tagged = build(client, sandbox, other_pipe, team="web")
    policy(client, [count_rule("DISABLE", 1)], name="by-version",
           resourceSelection={"recipes": [{"name": "golden", "semanticVersion": "1.x.x"}]})
    policy(client, [age_rule("DEPRECATE", 1)], name="by-tag", resourceSelection={"tagMap": {"team": "web"}})
    run_day(client, sandbox, 2)
    # Only one golden 1.x.x image exists, and COUNT 1 keeps it; 2.0.0 is outside the selection.
    assert statuses(client, [golden_one, golden_two, other, tagged]) == ["AVAILABLE", "AVAILABLE", "AVAILABLE",
                                                                         "DEPRECATED"]


def test_rules_apply_in_order_and_an_image_is_one_resource(client: Any, sandbox: RunningSandbox) -> None:
    """Deprecate, disable and delete rules apply in order within one execution; an image several
    rules reach is listed once, with the last action. Source:
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html"""
    arns = builds(client, sandbox, pipeline(client), 4)
    policy_arn = policy(client, [count_rule("DEPRECATE", 3), count_rule("DISABLE", 2), count_rule("DELETE", 1)])
    run_day(client, sandbox)
    # The counts rank what is left: DEPRECATE spares 3, DISABLE the newest 2, DELETE the newest.
    assert statuses(client, arns) == ["GONE", "GONE", "GONE", "AVAILABLE"]
    [execution] = executions(client, policy_arn)
    rows = client.list_lifecycle_execution_resources(lifecycleExecutionId=execution["lifecycleExecutionId"])
    assert sorted((r["resourceId"], r["action"]["name"]) for r in rows["resources"]) == sorted(
        (arn, "DELETE") for arn in arns[:3]
    )


def test_deprecate_then_disable_over_days(client: Any, sandbox: RunningSandbox) -> None:
    """A DISABLE rule also acts on images an earlier run deprecated; a DEPRECATE rule leaves a
    disabled image disabled. Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html"""
    [arn] = builds(client, sandbox, pipeline(client), 1)
    policy(client, [age_rule("DEPRECATE", 2), age_rule("DISABLE", 4)])
    run_day(client, sandbox, 3)
    assert status(client, arn) == "DEPRECATED"
    run_day(client, sandbox, 2)
    assert status(client, arn) == "DISABLED"
    run_day(client, sandbox)
    assert status(client, arn) == "DISABLED"


# --- policies that do not run -------------------------------------------------------------------


def test_disabled_policy_never_runs(client: Any, sandbox: RunningSandbox) -> None:
    """A DISABLED policy has no executions and acts on nothing; enabled again, it runs the next day
    without catching up the days it was disabled. Source:
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/lifecycle-policy-execution.html
    ("Disabled policies do not run")."""
    arns = builds(client, sandbox, pipeline(client), 2)
    rules = [count_rule("DELETE", 1)]
    selection = {"recipes": [{"name": "golden", "semanticVersion": "x.x.x"}]}
    policy_arn = policy(client, rules, status="DISABLED", resourceSelection=selection)
    run_day(client, sandbox, 5)
    assert statuses(client, arns) == ["AVAILABLE", "AVAILABLE"]
    assert executions(client, policy_arn) == []
    assert "dateLastRun" not in client.get_lifecycle_policy(lifecyclePolicyArn=policy_arn)["lifecyclePolicy"]
    client.update_lifecycle_policy(lifecyclePolicyArn=policy_arn, executionRole=ROLE, resourceType="AMI_IMAGE",
                                   policyDetails=rules, resourceSelection=selection, status="ENABLED")
    run_day(client, sandbox)
    assert statuses(client, arns) == ["GONE", "AVAILABLE"]
    assert len(executions(client, policy_arn)) == 1


def test_disabling_a_policy_stops_its_running_execution(client: Any, sandbox: RunningSandbox) -> None:
    """Disabling a policy stops its pending execution from acting. Source:
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/lifecycle-policy-execution.html ("disabling
    a policy stops any pending execution from processing new resources"). That the stopped execution then
    ends CANCELLED is the sandbox's reading: the page does not say which status it ends in."""
    arns = builds(client, sandbox, pipeline(client), 2)
    rules = [count_rule("DELETE", 1)]
    selection = {"recipes": [{"name": "golden", "semanticVersion": "1.0.0"}]}
    policy_arn = policy(client, rules, resourceSelection=selection)
    advance(sandbox, DAY)
    client.update_lifecycle_policy(lifecyclePolicyArn=policy_arn, executionRole=ROLE, resourceType="AMI_IMAGE",
                                   policyDetails=rules, resourceSelection=selection, status="DISABLED")
    [running_one] = executions(client, policy_arn)
    assert running_one["state"]["status"] == "IN_PROGRESS"
    run_day(client, sandbox)
    [ended] = executions(client, policy_arn)
    assert ended["state"]["status"] == "CANCELLED"
    assert statuses(client, arns) == ["AVAILABLE", "AVAILABLE"]


# --- executions and their resources -------------------------------------------------------------


def test_executions_are_listed_newest_first_and_paginated(client: Any, sandbox: RunningSandbox) -> None:
    """One execution per enabled policy per day, listed by the policy ARN newest first with
    pagination; GetLifecycleExecution returns each, and the policy's dateLastRun is the newest start.
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/lifecycle-policy-execution.html
    ("Image Builder runs enabled lifecycle policies once per day")."""
    build(client, sandbox, pipeline(client))
    policy_arn = policy(client, [age_rule("DEPRECATE", 30)])
    other_arn = policy(client, [age_rule("DEPRECATE", 30)], name="other")
    run_day(client, sandbox, 5)
    listed = executions(client, policy_arn)
    assert len(listed) == 5
    starts = [e["startTime"] for e in listed]
    assert starts == sorted(starts, reverse=True)
    assert all(isinstance(s, dt.datetime) for s in starts)
    assert [(b - a).total_seconds() for a, b in zip(starts[1:], starts, strict=False)] == [DAY] * 4
    assert {e["lifecyclePolicyArn"] for e in listed} == {policy_arn}
    assert {e["state"]["status"] for e in listed} == {"SUCCESS"}
    assert all(e["endTime"] - e["startTime"] == dt.timedelta(seconds=EXECUTION) for e in listed)
    assert len({e["lifecycleExecutionId"] for e in listed + executions(client, other_arn)}) == 10
    first = client.list_lifecycle_executions(resourceArn=policy_arn, maxResults=2)
    assert [e["lifecycleExecutionId"] for e in first["lifecycleExecutions"]] == [
        e["lifecycleExecutionId"] for e in listed[:2]
    ]
    assert first["nextToken"]
    for execution in listed:
        assert re.match(LCE, execution["lifecycleExecutionId"])
        got = client.get_lifecycle_execution(lifecycleExecutionId=execution["lifecycleExecutionId"])
        assert got["lifecycleExecution"] == execution
    policy_record = client.get_lifecycle_policy(lifecyclePolicyArn=policy_arn)["lifecyclePolicy"]
    assert policy_record["dateLastRun"] == listed[0]["startTime"]


def test_execution_resources_name_the_amis_and_snapshots(client: Any, sandbox: RunningSandbox) -> None:
    """The execution's resources are the images it acted on; with parentResourceId set to an image
    ARN, the AMIs distributed from it, with their snapshots when the DELETE rule includes them.
    Source: https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ListLifecycleExecutionResources.html"""
    distribution = client.create_distribution_configuration(name="two-regions", distributions=[
        {"region": REGION, "amiDistributionConfiguration": {}},
        {"region": "eu-west-1", "amiDistributionConfiguration": {}},
    ])["distributionConfigurationArn"]
    pipe = pipeline(client)
    current = client.get_image_pipeline(imagePipelineArn=pipe)["imagePipeline"]
    client.update_image_pipeline(imagePipelineArn=pipe, imageRecipeArn=current["imageRecipeArn"],
                                 infrastructureConfigurationArn=current["infrastructureConfigurationArn"],
                                 distributionConfigurationArn=distribution)
    old, _ = builds(client, sandbox, pipe, 2)
    amis = {a["region"]: a["image"] for a in
            client.get_image(imageBuildVersionArn=old)["image"]["outputResources"]["amis"]}
    rule = count_rule("DELETE", 1, includeResources={"amis": True, "snapshots": True})
    policy_arn = policy(client, [rule])
    run_day(client, sandbox)
    [execution] = executions(client, policy_arn)
    lce = execution["lifecycleExecutionId"]
    top = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce)
    assert top["lifecycleExecutionState"]["status"] == "SUCCESS"
    [image_row] = top["resources"]
    assert (image_row["resourceId"], image_row["accountId"], image_row["region"]) == (old, ACCOUNT, REGION)
    assert "deregistered" in image_row["state"]["reason"] and "snapshots were deleted" in image_row["state"]["reason"]
    children = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce, parentResourceId=old)["resources"]
    assert {c["region"]: c["resourceId"] for c in children} == amis
    for child in children:
        assert child["action"]["name"] == "DELETE" and child["state"]["status"] == "SUCCESS"
        [snapshot] = child["snapshots"]
        assert snapshot["snapshotId"].startswith("snap-") and snapshot["state"]["status"] == "SUCCESS"
    paged = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce, parentResourceId=old, maxResults=1)
    assert len(paged["resources"]) == 1 and paged["nextToken"]


def test_delete_without_amis_keeps_them_and_says_so(client: Any, sandbox: RunningSandbox) -> None:
    """DELETE without includeResources.amis removes the image resource only; the execution says the
    AMIs were kept and lists no distributed resources. Source:
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html ("You can
    optionally deregister associated AMIs or delete the snapshots for those AMIs")."""
    old, _ = builds(client, sandbox, pipeline(client), 2)
    policy_arn = policy(client, [count_rule("DELETE", 1)])
    run_day(client, sandbox)
    lce = executions(client, policy_arn)[0]["lifecycleExecutionId"]
    [row] = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce)["resources"]
    assert "AMIs were left as they were" in row["state"]["reason"]
    assert client.list_lifecycle_execution_resources(lifecycleExecutionId=lce, parentResourceId=old)["resources"] == []
    # Executions are also found by the ARN of an image they acted on.
    assert [e["lifecycleExecutionId"] for e in client.list_lifecycle_executions(resourceArn=old)[
        "lifecycleExecutions"]] == [lce]


# --- cancellation -----------------------------------------------------------------------------


def test_cancel_a_running_execution(client: Any, sandbox: RunningSandbox) -> None:
    """An execution that has not ended can be cancelled: it is CANCELLING, then CANCELLED, and its
    actions never run; an ended execution cannot be cancelled. Source:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_CancelLifecycleExecution.html
    ("You can only cancel an execution that hasn't reached a terminal state. Cancellation is
    asynchronous")."""
    arns = builds(client, sandbox, pipeline(client), 2)
    policy_arn = policy(client, [count_rule("DELETE", 1)])
    advance(sandbox, DAY)
    [execution] = executions(client, policy_arn)
    lce = execution["lifecycleExecutionId"]
    assert execution["state"]["status"] == "IN_PROGRESS" and "endTime" not in execution
    rows = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce)["resources"]
    assert [(r["resourceId"], r["state"]["status"]) for r in rows] == [(arns[0], "IN_PROGRESS")]
    assert client.cancel_lifecycle_execution(lifecycleExecutionId=lce)["lifecycleExecutionId"] == lce
    got = client.get_lifecycle_execution(lifecycleExecutionId=lce)["lifecycleExecution"]
    assert got["state"]["status"] == "CANCELLING"
    advance(sandbox, EXECUTION + 1)
    got = client.get_lifecycle_execution(lifecycleExecutionId=lce)["lifecycleExecution"]
    assert got["state"]["status"] == "CANCELLED" and got["endTime"]
    rows = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce)["resources"]
    assert [r["state"]["status"] for r in rows] == ["SKIPPED"]
    assert statuses(client, arns) == ["AVAILABLE", "AVAILABLE"]
    with pytest.raises(ClientError) as excinfo:
        client.cancel_lifecycle_execution(lifecycleExecutionId=lce)
    assert excinfo.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "CANCELLED" in excinfo.value.response["Error"]["Message"]
    # The next day's execution runs as usual.
    run_day(client, sandbox)
    assert statuses(client, arns) == ["GONE", "AVAILABLE"]


def test_unknown_execution_is_not_found(client: Any) -> None:
    """An execution id of the service's form that no execution has is not found. This is the sandbox's
    reading, not a documented refusal: the API reference lists no ResourceNotFoundException for
    GetLifecycleExecution, ListLifecycleExecutionResources or CancelLifecycleExecution, and the sandbox
    answers it as it does for every other missing resource."""
    missing = "lce-01234567-89ab-cdef-0123-456789abcdef"
    for call in (client.get_lifecycle_execution, client.list_lifecycle_execution_resources,
                 client.cancel_lifecycle_execution):
        with pytest.raises(ClientError) as excinfo:
            call(lifecycleExecutionId=missing)
        assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
        assert missing in excinfo.value.response["Error"]["Message"]


def test_executions_are_per_account_and_region(client: Any, sandbox: RunningSandbox) -> None:
    """Another region does not see this region's executions. The sandbox's reading: Image Builder
    resources live in the region whose endpoint created them, and an execution is read like a missing
    resource elsewhere (ResourceNotFoundException, which the API reference does not list for
    GetLifecycleExecution)."""
    build(client, sandbox, pipeline(client))
    policy_arn = policy(client, [age_rule("DEPRECATE", 30)])
    run_day(client, sandbox)
    [execution] = executions(client, policy_arn)
    elsewhere = make_client(sandbox.endpoint_url, "eu-west-1")
    with pytest.raises(ClientError) as excinfo:
        elsewhere.get_lifecycle_execution(lifecycleExecutionId=execution["lifecycleExecutionId"])
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert elsewhere.list_lifecycle_executions(resourceArn=policy_arn)["lifecycleExecutions"] == []


def test_container_images_and_their_ecr_images_are_deleted(client: Any, sandbox: RunningSandbox) -> None:
    """A CONTAINER_IMAGE policy deletes container image resources; with includeResources.containers
    the images distributed to ECR are listed (by their URIs) as deleted too. Source:
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/image-lifecycle-rules.html ("For
    container images, this rule deletes the Image Builder container image resource. You can
    optionally delete the container images that are distributed to your ECR repository")."""
    component = client.create_component(name="app-setup", semanticVersion="1.0.0", platform="Linux",
                                        data=SIMPLE_DOCUMENT)["componentBuildVersionArn"]
    recipe = client.create_container_recipe(
        containerType="DOCKER", name="app", semanticVersion="1.0.0", parentImage="amazonlinux:2023",
        components=[{"componentArn": component}],
        dockerfileTemplateData="FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\n",
        targetRepository={"service": "ECR", "repositoryName": "app"},
    )["containerRecipeArn"]
    infra = client.create_infrastructure_configuration(name="app-infra", instanceProfileName=PROFILE)[
        "infrastructureConfigurationArn"
    ]
    pipe = client.create_image_pipeline(name="app-pipeline", containerRecipeArn=recipe,
                                        infrastructureConfigurationArn=infra)["imagePipelineArn"]
    old, new = builds(client, sandbox, pipe, 2)
    uris = client.get_image(imageBuildVersionArn=old)["image"]["outputResources"]["containers"][0]["imageUris"]
    policy_arn = client.create_lifecycle_policy(
        name="containers", executionRole=ROLE, resourceType="CONTAINER_IMAGE",
        policyDetails=[count_rule("DELETE", 1, includeResources={"containers": True})],
        resourceSelection={"recipes": [{"name": "app", "semanticVersion": "1.0.x"}]},
    )["lifecyclePolicyArn"]
    run_day(client, sandbox)
    assert statuses(client, [old, new]) == ["GONE", "AVAILABLE"]
    lce = executions(client, policy_arn)[0]["lifecycleExecutionId"]
    [row] = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce)["resources"]
    assert row["resourceId"] == old and "container images in ECR were deleted" in row["state"]["reason"]
    [child] = client.list_lifecycle_execution_resources(lifecycleExecutionId=lce, parentResourceId=old)["resources"]
    assert child["imageUris"] == uris and child["action"]["name"] == "DELETE"


def test_executions_survive_a_restart_on_the_state_file(tmp_path: Any) -> None:
    """An execution a read call started (the clock moved, then a List call) is kept in the state
    file, so a sandbox restarted on it lists the execution and the image it deleted stays gone."""
    state = tmp_path / "state.json"
    with running(state=state, clock_speed=0, build_minutes=1) as first:
        c = make_client(first.endpoint_url)
        arns = builds(c, first, pipeline(c), 2)
        policy_arn = policy(c, [count_rule("DELETE", 1)])
        run_day(c, first)
        before = executions(c, policy_arn)
    with running(state=state, clock_speed=0, build_minutes=1) as second:
        c = make_client(second.endpoint_url)
        assert executions(c, policy_arn) == before and len(before) == 1
        assert statuses(c, arns) == ["GONE", "AVAILABLE"]


def test_an_execution_of_a_deleted_policy_ends_cancelled(client: Any, sandbox: RunningSandbox) -> None:
    """Deleting a policy while its execution runs stops the execution from acting; the execution
    stays listed by the policy ARN (the sandbox's reading: a policy's history outlives it)."""
    arns = builds(client, sandbox, pipeline(client), 2)
    policy_arn = policy(client, [count_rule("DELETE", 1)])
    advance(sandbox, DAY)
    assert executions(client, policy_arn)[0]["state"]["status"] == "IN_PROGRESS"
    client.delete_lifecycle_policy(lifecyclePolicyArn=policy_arn)
    run_day(client, sandbox)
    [ended] = executions(client, policy_arn)
    assert ended["state"]["status"] == "CANCELLED" and "deleted" in ended["state"]["reason"]
    assert statuses(client, arns) == ["AVAILABLE", "AVAILABLE"]
