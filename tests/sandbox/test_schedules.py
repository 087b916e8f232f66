"""Pipeline schedules: what CreateImagePipeline/UpdateImagePipeline refuse, dateNextRun, and schedules
that fire on the sandbox clock, with and without the dependency-update start condition.

Real boto3 clients over HTTP; the clock is frozen (`clock_speed=0`) and moved with
`POST /_sandbox/clock`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from typing import Any

import pytest

from imagesync.sandbox import RunningSandbox, running
from support import REGION, SIMPLE_DOCUMENT, advance_clock, make_client, sandbox_now

CRON_DOCS = "https://docs.aws.amazon.com/imagebuilder/latest/userguide/cron-expressions.html"


def advance(sb: RunningSandbox, minutes: float) -> None:
    advance_clock(sb.endpoint_url, minutes * 60)


def clock_now(sb: RunningSandbox) -> dt.datetime:
    return sandbox_now(sb.endpoint_url)


@pytest.fixture
def sb() -> Iterator[RunningSandbox]:
    with running(clock_speed=0, build_minutes=30) as served:
        yield served


@pytest.fixture
def ib(sb: RunningSandbox) -> Any:
    return make_client(sb.endpoint_url)


def recipe_stack(ib: Any) -> dict[str, str]:
    component = ib.create_component(name="setup", semanticVersion="1.0.0", platform="Linux",
                                    data=SIMPLE_DOCUMENT)["componentBuildVersionArn"]
    wildcard = component.rsplit("/", 2)[0] + "/x.x.x"
    recipe = ib.create_image_recipe(
        name="golden", semanticVersion="1.0.0", components=[{"componentArn": wildcard}],
        parentImage=f"arn:aws:imagebuilder:{REGION}:aws:image/amazon-linux-2023-x86/x.x.x",
    )["imageRecipeArn"]
    infra = ib.create_infrastructure_configuration(name="infra", instanceProfileName="builder")[
        "infrastructureConfigurationArn"]
    return {"recipe": recipe, "infra": infra}


def create_pipeline(ib: Any, stack: dict[str, str], schedule: dict[str, Any], name: str = "scheduled") -> str:
    return ib.create_image_pipeline(name=name, imageRecipeArn=stack["recipe"],
                                    infrastructureConfigurationArn=stack["infra"],
                                    schedule=schedule)["imagePipelineArn"]


def pipeline_images(ib: Any, arn: str) -> list[dict[str, Any]]:
    rows, token = [], None
    while True:
        page = ib.list_image_pipeline_images(imagePipelineArn=arn, **({"nextToken": token} if token else {}))
        rows += page["imageSummaryList"]
        token = page.get("nextToken")
        if not token:
            return rows


BAD = [
    # (id, schedule, member, source)
    ("five-field-cron", {"scheduleExpression": "cron(0 0 * * SUN)"}, "schedule.scheduleExpression",
     "https://github.com/buildkite/image-builder/issues/7"),
    ("day-fields-both-set", {"scheduleExpression": "cron(0 4 * * MON *)"}, "schedule.scheduleExpression",
     "https://github.com/hashicorp/terraform-provider-aws/issues/17665"),
    ("day-fields-both-question", {"scheduleExpression": "cron(0 4 ? * ? *)"}, "schedule.scheduleExpression",
     CRON_DOCS),
    ("minute-out-of-range", {"scheduleExpression": "cron(60 4 ? * MON *)"}, "schedule.scheduleExpression",
     CRON_DOCS),
    ("hash-past-five", {"scheduleExpression": "cron(0 4 ? * FRI#6 *)"}, "schedule.scheduleExpression", CRON_DOCS),
    ("year-out-of-range", {"scheduleExpression": "cron(0 4 ? * MON 2200)"}, "schedule.scheduleExpression",
     CRON_DOCS),
    ("not-an-expression", {"scheduleExpression": "every monday"}, "schedule.scheduleExpression", CRON_DOCS),
    ("unknown-timezone", {"scheduleExpression": "cron(0 4 ? * MON *)", "timezone": "Mars/Olympus"},
     "schedule.timezone", "https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_Schedule.html"),
]


@pytest.mark.parametrize(("schedule", "member", "source"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_schedules_are_refused_on_create_and_update(
    ib: Any, schedule: dict[str, Any], member: str, source: str
) -> None:
    """Image Builder's cron has six fields with `?` in exactly one day field, and the time zone is an
    IANA name; anything else is InvalidParameterValueException naming the member. The source of each
    case is in the table above (service documentation or a public issue where the service refused it)."""
    stack = recipe_stack(ib)
    with pytest.raises(ib.exceptions.InvalidParameterValueException) as err:
        create_pipeline(ib, stack, schedule)
    assert f"'{member}'" in err.value.response["Error"]["Message"]
    assert ib.list_image_pipelines()["imagePipelineList"] == []
    arn = create_pipeline(ib, stack, {"scheduleExpression": "cron(0 4 ? * MON *)"})
    with pytest.raises(ib.exceptions.InvalidParameterValueException):
        ib.update_image_pipeline(imagePipelineArn=arn, imageRecipeArn=stack["recipe"],
                                 infrastructureConfigurationArn=stack["infra"], schedule=schedule)
    kept = ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["schedule"]
    assert kept["scheduleExpression"] == "cron(0 4 ? * MON *)"


@pytest.mark.parametrize(
    "expression",
    ["cron(0 4 ? * MON *)", "cron(0/15 * * * ? *)", "cron(0 9 L * ? *)", "cron(0 9 LW * ? *)", "cron(0 9 15W * ? *)",
     "cron(0 9 ? * FRI#2 *)", "cron(0 9 ? * 6L *)", "cron(0 9 ? JAN-MAR,JUL MON-FRI 2026-2030)", "cron(0 0 1 * ? *)"],
)
def test_documented_cron_forms_are_accepted(ib: Any, expression: str) -> None:
    """Ranges, lists, steps, L, W, # and names as documented at
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/cron-expressions.html ."""
    arn = create_pipeline(ib, recipe_stack(ib), {"scheduleExpression": expression})
    pipeline = ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    assert pipeline["schedule"]["scheduleExpression"] == expression
    assert pipeline["dateNextRun"]


def test_date_next_run_is_computed_in_the_schedule_timezone(sb: RunningSandbox, ib: Any) -> None:
    """The time zone applies to the schedule expression
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_Schedule.html)."""
    now = clock_now(sb)
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    local = now.astimezone(paris)
    day = local.date() if local.hour < 9 else local.date() + dt.timedelta(days=1)
    expected = dt.datetime(day.year, day.month, day.day, 9, tzinfo=paris).astimezone(dt.UTC)
    arn = create_pipeline(ib, recipe_stack(ib), {"scheduleExpression": "cron(0 9 * * ? *)", "timezone": "Europe/Paris"})
    got = ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["dateNextRun"]
    assert dt.datetime.fromisoformat(got.replace("Z", "+00:00")) == expected


def test_a_cron_pipeline_builds_when_its_cron_fires(sb: RunningSandbox, ib: Any) -> None:
    """EXPRESSION_MATCH_ONLY builds every time the cron expression matches
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_Schedule.html); such images are SCHEDULED
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_ImageVersion.html)."""
    arn = create_pipeline(ib, recipe_stack(ib), {"scheduleExpression": "cron(0 * * * ? *)",
                                                 "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"})
    first = dt.datetime.fromisoformat(
        ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["dateNextRun"].replace("Z", "+00:00"))
    assert first.minute == 0 and first > clock_now(sb)
    assert pipeline_images(ib, arn) == []
    advance(sb, (first - clock_now(sb)).total_seconds() / 60 - 1)
    assert pipeline_images(ib, arn) == []
    advance(sb, 2)
    images = pipeline_images(ib, arn)
    assert [(r["buildType"], r["state"]["status"]) for r in images] == [("SCHEDULED", "PENDING")]
    assert images[0]["dateCreated"] == first.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    pipeline = ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    assert pipeline["dateNextRun"] == (first + dt.timedelta(hours=1)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    advance(sb, 60)
    assert [r["buildType"] for r in pipeline_images(ib, arn)] == ["SCHEDULED", "SCHEDULED"]


def test_dependency_updates_condition_builds_only_when_something_is_new(sb: RunningSandbox, ib: Any) -> None:
    """With EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE (the default) a new image is built only when a
    newer component or base image matches the recipe's version filter
    (https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_Schedule.html)."""
    arn = create_pipeline(ib, recipe_stack(ib), {"scheduleExpression": "cron(0 * * * ? *)"})
    advance(sb, 61)  # never built: the first fire builds
    assert len(pipeline_images(ib, arn)) == 1
    advance(sb, 120)  # two more fires, nothing new
    images = pipeline_images(ib, arn)
    assert len(images) == 1 and images[0]["state"]["status"] == "AVAILABLE"
    ib.create_component(name="setup", semanticVersion="1.0.1", platform="Linux", data=SIMPLE_DOCUMENT + "# v2\n")
    advance(sb, 60)
    assert len(pipeline_images(ib, arn)) == 2
    advance(sb, 120)
    assert len(pipeline_images(ib, arn)) == 2


def test_missed_fires_are_caught_up_in_order_at_most_100_per_call() -> None:
    """Fire times missed while nobody called the sandbox are processed in order, at most 100 per call;
    dateNextRun then names the next one still to process."""
    with running(clock_speed=0, build_minutes=0) as served:
        ib = make_client(served.endpoint_url)
        arn = create_pipeline(ib, recipe_stack(ib), {"scheduleExpression": "cron(* * * * ? *)",
                                                     "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"})

        def next_run() -> dt.datetime:
            text = ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["dateNextRun"]
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))

        first = next_run()
        advance(served, 250)
        now = clock_now(served)
        due = int((now - first).total_seconds() // 60) + 1
        assert due > 200
        assert next_run() == first + dt.timedelta(minutes=100)
        assert next_run() == first + dt.timedelta(minutes=200)
        assert next_run() == first + dt.timedelta(minutes=due)
        dates = [r["dateCreated"] for r in pipeline_images(ib, arn)]
        assert len(dates) == due
        assert sorted(dates) == [
            (first + dt.timedelta(minutes=m)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for m in range(due)
        ]


def test_reads_do_not_rescan_schedules_until_something_can_fire(sb: RunningSandbox, ib: Any) -> None:
    """Every call brings schedules up to the clock, but a read between fires looks at no pipeline:
    the schedule hook runs again only once the earliest `dateNextRun` has come, or after a write.
    Scanning every pipeline on every call made a 10,000-resource plan quadratic in the sandbox."""
    backend = sb.sandbox.backend
    runs: list[float] = []
    position = next(i for i, tick in enumerate(backend.ticks) if tick.__name__ == "tick_schedules")
    real = backend.ticks[position]

    def tick_schedules(req: Any) -> Any:
        runs.append(req.now.timestamp())
        return real(req)

    backend.ticks[position] = tick_schedules
    stack = recipe_stack(ib)
    arn = create_pipeline(ib, stack, {"scheduleExpression": "cron(0 * * * ? *)",
                                      "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"})
    runs.clear()
    for _ in range(20):
        ib.get_image_pipeline(imagePipelineArn=arn)
    assert len(runs) == 1  # the first read after the write; the other nineteen skip it

    first = dt.datetime.fromisoformat(
        ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["dateNextRun"].replace("Z", "+00:00"))
    advance(sb, (first - clock_now(sb)).total_seconds() / 60 + 1)
    runs.clear()
    assert [r["buildType"] for r in pipeline_images(ib, arn)] == ["SCHEDULED"]  # it still fires on time
    assert len(runs) == 1

    runs.clear()
    ib.update_image_pipeline(imagePipelineArn=arn, imageRecipeArn=stack["recipe"],
                             infrastructureConfigurationArn=stack["infra"],
                             schedule={"scheduleExpression": "cron(30 * * * ? *)",
                                       "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"})
    ib.get_image_pipeline(imagePipelineArn=arn)
    ib.get_image_pipeline(imagePipelineArn=arn)
    assert len(runs) == 1  # the first read after the write looks again (nothing was due before it)
    moved = dt.datetime.fromisoformat(
        ib.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]["dateNextRun"].replace("Z", "+00:00"))
    assert moved.minute == 30
    advance(sb, (moved - clock_now(sb)).total_seconds() / 60 + 1)
    assert [r["buildType"] for r in pipeline_images(ib, arn)] == ["SCHEDULED", "SCHEDULED"]
