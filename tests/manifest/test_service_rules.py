"""Service rules, table-driven: what Image Builder refuses at apply time, `imagesync validate` refuses first.

Each case writes a small manifest tree (targets `prod` in us-east-1 and `dev` in eu-west-1) with one
file changed, runs `imagesync.api.validate`, and checks the exact file:line:col and a fragment of
the message; every rule also has valid counterparts that must pass. A CLI test runs
`python -m imagesync validate` as a user would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from imagesync.api import ValidationResult, validate

ROOT = Path(__file__).resolve().parents[2]

PROJECT = """\
project: service-rules
targets:
  - name: prod
    region: us-east-1
    account: "111111111111"
    vars:
      suffix: blue
  - name: dev
    region: eu-west-1
    account: "222222222222"
"""

COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata:
  name: greet
spec:
  platform: Linux
  version: {version}
  documentFile: greet.yml
"""

GREET_DOC = """\
schemaVersion: 1.0
parameters:
  - Greeting:
      type: string
      default: hello
  - Audience:
      type: string
phases:
  - name: build
    steps:
      - name: Greet
        action: ExecuteBash
        inputs:
          commands:
            - echo "{{ Greeting }} {{ Audience }}"
"""

RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata:
  name: base
spec:
  version: {version}
  parentImage: {parent}
  components:
    - componentArn: {arn}
    - ref: greet
      parameters:
{parameters}
"""
AUDIENCE = "        - {name: Audience, value: [world]}"

CONTAINER = """\
apiVersion: imagesync/v1
kind: ContainerRecipe
metadata:
  name: api
spec:
  version: {version}
  containerType: DOCKER
  parentImage: {parent}
  components:
    - ref: greet
      parameters:
        - {{name: Audience, value: [api]}}
  targetRepository:
    service: ECR
    repositoryName: golden/api
  {dockerfile}
"""
DOCKERFILE = "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\n"

INFRA = """\
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata:
  name: {name}
spec:
  instanceProfileName: build-profile
"""

DIST = """\
apiVersion: imagesync/v1
kind: DistributionConfiguration
metadata:
  name: dist
spec:
  distributions:
{distributions}
"""

PIPELINE = """\
apiVersion: imagesync/v1
kind: ImagePipeline
metadata:
  name: pipe
spec:
{recipe}
  infrastructureConfigurationArn: {{ref: infra}}
  distributionConfigurationArn: {{ref: dist}}
  schedule:
    scheduleExpression: {expression}
{timezone}
"""

WORKFLOW = """\
apiVersion: imagesync/v1
kind: Workflow
metadata:
  name: flow
spec:
  type: BUILD
  version: {version}
  documentFile: flow.yml
"""

WORKFLOW_DOC = """\
schemaVersion: 1.0
steps:
  - name: Launch
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
"""

AL2023 = "arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x"
UPDATE_LINUX = "arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x"


def component(version: str = "1.0.0") -> str:
    return COMPONENT.format(version=version)


def recipe(parent: str = AL2023, arn: str = UPDATE_LINUX, parameters: str = AUDIENCE, version: str = "1.0.0") -> str:
    return RECIPE.format(parent=json.dumps(parent), arn=json.dumps(arn), parameters=parameters, version=version)


def container(
    parent: str = "public.ecr.aws/amazonlinux/amazonlinux:2023",
    dockerfile: str = "dockerfileTemplateFile: api.Dockerfile",
    version: str = "1.0.0",
) -> str:
    return CONTAINER.format(parent=json.dumps(parent), dockerfile=dockerfile, version=version)


def dist(*regions: str) -> str:
    lines = []
    for region in regions or ("${target.region}",):
        lines += [
            f"    - region: {region}",
            "      amiDistributionConfiguration:",
            "        name: golden-{{ imagebuilder:buildDate }}",
        ]
    return DIST.format(distributions="\n".join(lines))


def pipeline(
    expression: str = "cron(0 4 ? * MON *)", timezone: str | None = None, recipe: str = "  imageRecipeArn: {ref: base}"
) -> str:
    tz = f"    timezone: {json.dumps(timezone)}" if timezone is not None else ""
    return PIPELINE.format(recipe=recipe, expression=json.dumps(expression), timezone=tz)


def base_tree() -> dict[str, str]:
    return {
        "components.yaml": component(),
        "greet.yml": GREET_DOC,
        "recipes.yaml": recipe(),
        "container.yaml": container(),
        "api.Dockerfile": DOCKERFILE,
        "infra.yaml": INFRA.format(name="infra"),
        "dist.yaml": dist(),
        "pipelines.yaml": pipeline(),
    }


def run(tmp_path: Path, files: dict[str, str]) -> ValidationResult:
    (tmp_path / "imagesync.yaml").write_text(PROJECT, encoding="utf-8")
    for name, text in {**base_tree(), **files}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return validate(tmp_path)


def describe(result: ValidationResult) -> str:
    return "\n".join(str(p) for p in result.problems) or "(no problems)"


@dataclass(frozen=True)
class Bad:
    id: str
    files: dict[str, str]
    where: str  # file:line:col
    message: str
    count: int = 1  # problems in the whole tree; names also break the references to them


def check_bad(case: Bad, tmp_path: Path) -> None:
    result = run(tmp_path, case.files)
    assert not result.ok
    found = [p for p in result.problems if str(p.location) == case.where and case.message in p.message]
    assert found, f"expected {case.where}: ...{case.message}... in\n{describe(result)}"
    assert len(result.problems) == case.count, describe(result)


def check_good(files: dict[str, str], tmp_path: Path) -> None:
    result = run(tmp_path, files)
    assert result.ok, describe(result)


def bad(cases: list[Bad]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


def test_base_tree_is_valid(tmp_path: Path) -> None:
    check_good({}, tmp_path)


# --- 1. schedule expressions ---------------------------------------------------------------------

SCHEDULE_AT = "pipelines.yaml:10:5"
BAD_SCHEDULES = [
    ("unix-five-fields", "cron(0 4 * * MON)", "has 5 fields, but Image Builder's cron has six"),
    ("seven-fields", "cron(0 0 4 ? * MON *)", "has 7 fields"),
    ("minutes-out-of-range", "cron(60 4 ? * MON *)", "invalid minutes field '60': it has 60, which is out of range"),
    ("hours-out-of-range", "cron(0 25 ? * MON *)", "invalid hours field '25'"),
    ("day-of-month-out-of-range", "cron(0 4 32 * ? *)", "invalid day-of-month field '32'"),
    ("day-of-month-zero", "cron(0 4 0 * ? *)", "invalid day-of-month field '0'"),
    ("month-out-of-range", "cron(0 4 ? 13 MON *)", "invalid month field '13'"),
    (
        "month-name",
        "cron(0 4 ? JANUARY MON *)",
        "invalid month field 'JANUARY': it has 'JANUARY', which is not a valid",
    ),
    ("weekday-name", "cron(0 4 ? * MOX *)", "invalid day-of-week field 'MOX'"),
    ("weekday-eight", "cron(0 4 ? * 8 *)", "invalid day-of-week field '8'"),
    ("weekday-step", "cron(0 4 ? * MON/2 *)", "cannot use a '/' step"),
    ("year-before-1970", "cron(0 4 ? * MON 1969)", "invalid year field '1969'"),
    ("year-after-2199", "cron(0 4 ? * MON 2200)", "invalid year field '2200'"),
    ("no-question-mark", "cron(0 4 * * MON *)", "needs '?' in day-of-month or day-of-week"),
    ("both-stars", "cron(0 4 * * * *)", "needs '?' in day-of-month or day-of-week"),
    ("two-question-marks", "cron(0 4 ? * ? *)", "has '?' in both day-of-month and day-of-week"),
    ("question-in-hours", "cron(0 ? ? * MON *)", "cannot be '?'"),
    ("zero-step", "cron(0/0 4 ? * MON *)", "a step after '/' is a whole number from 1 to 60"),
    ("step-without-start", "cron(/5 4 ? * MON *)", "has nothing before '/'"),
    ("open-range", "cron(0 4- ? * MON *)", "has an open range"),
    ("range-out-of-range", "cron(0 8-24 ? * MON *)", "invalid hours field '8-24'"),
    ("empty-list-item", "cron(0 4,,6 ? * MON *)", "has an empty list item"),
    ("letters", "cron(a 4 ? * MON *)", "invalid minutes field 'a'"),
    ("hash-week-six", "cron(0 4 ? * FRI#6 *)", "the week of the month after '#' is 1 to 5"),
    ("hash-bad-day", "cron(0 4 ? * FUN#2 *)", "invalid day-of-week field 'FUN#2'"),
    ("w-in-weekday", "cron(0 4 ? * 3W *)", "invalid day-of-week field '3W'"),
    ("w-out-of-range", "cron(0 4 40W * ? *)", "invalid day-of-month field '40W'"),
    ("l-in-list", "cron(0 4 L,15 * ? *)", "L, W and # stand alone"),
    ("l-in-hours", "cron(0 L ? * MON *)", "invalid hours field 'L'"),
    ("double-space", "cron(0  4 ? * MON *)", "does not separate its fields with single spaces"),
    ("leading-space", " cron(0 4 ? * MON *)", "has leading or trailing spaces"),
    ("unclosed", "cron(0 4 ? * MON *", "is neither cron(...) nor rate(...)"),
    ("plain-unix", "0 4 * * 1", "is neither cron(...) nor rate(...)"),
    ("capital-cron", "CRON(0 4 ? * MON *)", "is neither cron(...) nor rate(...)"),
    ("rate-plural-for-one", "rate(1 days)", "needs the singular unit for a rate of 1: rate(1 day)"),
    ("rate-singular-for-many", "rate(12 hour)", "needs the plural unit for a rate above 1: rate(12 hours)"),
    ("rate-zero", "rate(0 days)", "which is not a whole number of at least 1"),
    ("rate-negative", "rate(-1 days)", "which is not a whole number of at least 1"),
    ("rate-weeks", "rate(2 weeks)", "has rate unit 'weeks'; the unit is minute(s), hour(s) or day(s)"),
    ("rate-seconds", "rate(30 seconds)", "has rate unit 'seconds'"),
    ("rate-no-space", "rate(12hours)", "is not rate(N unit)"),
    ("rate-empty", "rate()", "is not rate(N unit)"),
]


@pytest.mark.parametrize(
    ("expression", "message"), [(e, m) for _, e, m in BAD_SCHEDULES], ids=[i for i, _, _ in BAD_SCHEDULES]
)
def test_bad_schedule_expression(expression: str, message: str, tmp_path: Path) -> None:
    check_bad(Bad("", {"pipelines.yaml": pipeline(expression)}, SCHEDULE_AT, message), tmp_path)


GOOD_SCHEDULES = [
    "cron(0 4 ? * MON *)",
    "cron(0 0 1 * ? *)",
    "cron(0/15 8-17 ? * MON-FRI *)",
    "cron(*/30 * ? * * *)",
    "cron(0 4 L * ? *)",
    "cron(0 4 LW * ? *)",
    "cron(0 4 15W * ? *)",
    "cron(0 4 ? * FRI#2 *)",
    "cron(0 4 ? * 6L *)",
    "cron(0 4 ? * L *)",
    "cron(0 4 ? jan,jul * 2030-2035)",
    "cron(0 4 ? JAN-MAR mon,wed,fri 2030/2)",
    "cron(5,35 0-6/2 1-15 * ? *)",
    "cron(0 0 ? * 1-7 *)",
    "rate(1 day)",
    "rate(12 hours)",
    "rate(1 minute)",
    "rate(90 minutes)",
    "rate(1 hour)",
    "rate(7 days)",
]


@pytest.mark.parametrize("expression", GOOD_SCHEDULES)
def test_good_schedule_expression(expression: str, tmp_path: Path) -> None:
    check_good({"pipelines.yaml": pipeline(expression)}, tmp_path)


# --- 2. time zones -------------------------------------------------------------------------------

TIMEZONE_AT = "pipelines.yaml:11:5"


@bad(
    [
        Bad("unknown", {"pipelines.yaml": pipeline(timezone="Mars/Olympus")}, TIMEZONE_AT, "is not an IANA time zone"),
        Bad("typo", {"pipelines.yaml": pipeline(timezone="America/NewYork")}, TIMEZONE_AT, "'America/New_York'?"),
        Bad("abbreviation", {"pipelines.yaml": pipeline(timezone="PDT")}, TIMEZONE_AT, "is not an IANA time zone"),
        Bad(
            "offset",
            {"pipelines.yaml": pipeline(timezone="UTC+2")},
            TIMEZONE_AT,
            "use a name such as 'America/New_York'",
        ),
    ]
)
def test_bad_timezone(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


@pytest.mark.parametrize("timezone", ["America/New_York", "UTC", "Etc/UTC", "Europe/Berlin", "Asia/Kolkata"])
def test_good_timezone(timezone: str, tmp_path: Path) -> None:
    check_good({"pipelines.yaml": pipeline(timezone=timezone)}, tmp_path)


# --- 3. recipe component parameters ----------------------------------------------------------------


@bad(
    [
        Bad(
            "undefined",
            {"recipes.yaml": recipe(parameters=AUDIENCE + "\n        - {name: Colour, value: [red]}")},
            "recipes.yaml:13:12",
            "parameters are not defined in the provided component Component/greet: 'Colour'; "
            "its document declares 'Greeting', 'Audience'",
        ),
        Bad(
            "case-matters",
            {"recipes.yaml": recipe(parameters="        - {name: audience, value: [world]}")},
            "recipes.yaml:12:12",
            "not defined in the provided component Component/greet: 'audience'",
            count=2,  # and Audience itself is then missing
        ),
        Bad(
            "required-missing",
            {"recipes.yaml": recipe(parameters="        - {name: Greeting, value: [hi]}")},
            "recipes.yaml:10:7",
            "Component/greet declares 'Audience' without a default, so the recipe must set it",
        ),
        Bad(
            "duplicate",
            {"recipes.yaml": recipe(parameters=AUDIENCE + "\n        - {name: Audience, value: [moon]}")},
            "recipes.yaml:13:12",
            "parameter 'Audience' is set twice for this component (first at line 12)",
        ),
        Bad(
            "container-undefined",
            {
                "container.yaml": container().replace(
                    "{name: Audience, value: [api]}",
                    "{name: Audience, value: [a]}\n        - {name: Port, value: ['80']}",
                )
            },
            "container.yaml:13:12",
            "not defined in the provided component Component/greet: 'Port'",
        ),
    ]
)
def test_bad_component_parameters(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


def test_parameters_missing_entirely_names_the_component(tmp_path: Path) -> None:
    text = recipe().replace("      parameters:\n" + AUDIENCE + "\n", "")
    check_bad(Bad("", {"recipes.yaml": text}, "recipes.yaml:10:7", "declares 'Audience' without a default"), tmp_path)


@pytest.mark.parametrize(
    "parameters",
    [
        AUDIENCE,
        AUDIENCE + "\n        - {name: Greeting, value: [hi]}",
        "        - {name: Audience, value: ['${target.name}']}",
    ],
    ids=["required-only", "both", "substituted-value"],
)
def test_good_component_parameters(parameters: str, tmp_path: Path) -> None:
    check_good({"recipes.yaml": recipe(parameters=parameters)}, tmp_path)


# --- 4. component ARNs and parent images -----------------------------------------------------------

ARN_AT = "recipes.yaml:9:7"
PARENT_AT = "recipes.yaml:7:3"
CONTAINER_PARENT_AT = "container.yaml:8:3"
COMPONENT_ARN = "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/"


@bad(
    [
        Bad("arn-wildcard-middle", {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1.x.2")}, ARN_AT, "not right-aligned"),
        Bad("arn-wildcard-first", {"recipes.yaml": recipe(arn=COMPONENT_ARN + "x.2.x")}, ARN_AT, "not right-aligned"),
        Bad(
            "arn-node-too-big",
            {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1073741824.0.0")},
            ARN_AT,
            "has major node 1073741824, above Image Builder's limit of 1073741823",
        ),
        Bad(
            "arn-build-node-too-big",
            {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1.1073741824.0/1")},
            ARN_AT,
            "has minor node 1073741824",
        ),
        Bad("parent-name-only", {"recipes.yaml": recipe(parent="amazon-linux-2023")}, PARENT_AT, "an AMI id"),
        Bad("parent-short-ami", {"recipes.yaml": recipe(parent="ami-123")}, PARENT_AT, "8 or 17 hex digits"),
        Bad("parent-upper-ami", {"recipes.yaml": recipe(parent="ami-0ABCDEF1234567890")}, PARENT_AT, "hex digits"),
        Bad(
            "parent-registry-image",
            {"recipes.yaml": recipe(parent="amazonlinux:latest")},
            PARENT_AT,
            "is not a parent image an image recipe takes",
        ),
        Bad(
            "parent-arn-no-version",
            {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86")},
            PARENT_AT,
            "has no version",
        ),
        Bad(
            "parent-arn-recipe",
            {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:aws:image-recipe/base/1.0.0")},
            PARENT_AT,
            "names a 'image-recipe', not a 'image'",
        ),
        Bad(
            "parent-arn-other-service",
            {"recipes.yaml": recipe(parent="arn:aws:ec2:us-east-1::image/ami-0abcdef1234567890")},
            PARENT_AT,
            "is an ARN of service 'ec2', not imagebuilder",
        ),
        Bad(
            "parent-arn-bad-account",
            {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:1234:image/al2023/x.x.x")},
            PARENT_AT,
            "account '1234' is not a 12-digit account id",
        ),
        Bad(
            "parent-arn-upper-name",
            {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:aws:image/AL2023/x.x.x")},
            PARENT_AT,
            "name 'AL2023' may hold only lower-case letters",
        ),
        Bad(
            "parent-arn-wildcard-build",
            {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:aws:image/al2023/1.x.x/1")},
            PARENT_AT,
            "has a build number after a wildcard",
        ),
        Bad(
            "parent-per-target",
            {
                "recipes.yaml": recipe(
                    parent="arn:aws:imagebuilder:${target.region}:aws:image/al2023/x.${vars.suffix}.x"
                )
            },
            PARENT_AT,
            "(for target prod) has version 'x.blue.x', which is not a version",
            count=2,  # dev has no ${vars.suffix} either
        ),
        Bad(
            "container-upper-case",
            {"container.yaml": container(parent="Amazon/Linux:latest")},
            CONTAINER_PARENT_AT,
            "repository path part 'Amazon' is not lower-case",
        ),
        Bad("container-empty-tag", {"container.yaml": container(parent="amazonlinux:")}, CONTAINER_PARENT_AT, "tag ''"),
        Bad(
            "container-space",
            {"container.yaml": container(parent="amazon linux:latest")},
            CONTAINER_PARENT_AT,
            "a container recipe takes a registry image such as amazonlinux:latest",
        ),
        Bad(
            "container-bad-digest",
            {"container.yaml": container(parent="amazonlinux@sha256:xyz")},
            CONTAINER_PARENT_AT,
            "digest 'sha256:xyz' is not algorithm:hex",
        ),
        Bad(
            "container-ami",
            {"container.yaml": container(parent="ami-0abcdef1234567890")},
            CONTAINER_PARENT_AT,
            "is an AMI id; a container recipe builds from a container image",
        ),
    ]
)
def test_bad_component_arn_or_parent_image(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


@pytest.mark.parametrize(
    "files",
    [
        {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1.x.x")},
        {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1.2.x")},
        {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1.2.3")},
        {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1.2.3/1")},
        {"recipes.yaml": recipe(arn=COMPONENT_ARN + "1073741823.0.0")},
        {"recipes.yaml": recipe(arn="arn:aws:imagebuilder:eu-west-1:third-party:component/cis-level-1/1.0.0/1")},
        {"recipes.yaml": recipe(arn="arn:aws:imagebuilder:eu-central-1:aws-marketplace:component/falcon-abc/1.2.2/1")},
        {"recipes.yaml": recipe(arn="arn:aws-cn:imagebuilder:cn-north-1:aws:component/update-linux/x.x.x")},
        {"recipes.yaml": recipe(parent="ami-0abcdef1234567890")},
        {"recipes.yaml": recipe(parent="ami-0abcdef1")},
        {"recipes.yaml": recipe(parent="ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")},
        {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:111111111111:image/base/1.0.0/2")},
        {"recipes.yaml": recipe(parent="arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/2025.1.x")},
        {"container.yaml": container(parent="amazonlinux:latest")},
        {"container.yaml": container(parent="amazonlinux")},
        {"container.yaml": container(parent="localhost:5000/team/base:1.0")},
        {"container.yaml": container(parent="111111111111.dkr.ecr.us-east-1.amazonaws.com/golden/base:v1_2")},
        {"container.yaml": container(parent="library/ubuntu@sha256:" + "a" * 64)},
        {"container.yaml": container(parent="arn:aws:imagebuilder:us-east-1:111111111111:image/base-container/x.x.x")},
    ],
)
def test_good_component_arn_and_parent_image(files: dict[str, str], tmp_path: Path) -> None:
    check_good(files, tmp_path)


# --- 5. one recipe per pipeline ------------------------------------------------------------------


@bad(
    [
        Bad(
            "both",
            {"pipelines.yaml": pipeline(recipe="  imageRecipeArn: {ref: base}\n  containerRecipeArn: {ref: api}")},
            "pipelines.yaml:7:3",
            "set imageRecipeArn or containerRecipeArn, not both",
        ),
        Bad(
            "neither",
            {"pipelines.yaml": pipeline(recipe="  description: no recipe")},
            "pipelines.yaml:5:1",
            "an image pipeline needs exactly one recipe",
        ),
    ]
)
def test_pipeline_recipe_count(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


@pytest.mark.parametrize("recipe_line", ["  imageRecipeArn: {ref: base}", "  containerRecipeArn: {ref: api}"])
def test_pipeline_with_one_recipe(recipe_line: str, tmp_path: Path) -> None:
    check_good({"pipelines.yaml": pipeline(recipe=recipe_line)}, tmp_path)


# --- 6. one distribution per region --------------------------------------------------------------


@bad(
    [
        Bad(
            "same-literal",
            {"dist.yaml": dist("us-east-1", "us-west-2", "us-east-1")},
            "dist.yaml:13:7",
            "region 'us-east-1' already has a distribution (distributions[0], line 7)",
        ),
        Bad(
            "same-placeholder",
            {"dist.yaml": dist("${target.region}", "${target.region}")},
            "dist.yaml:10:7",
            "region '${target.region}' already has a distribution",
        ),
        Bad(
            "only-after-substitution",
            {"dist.yaml": dist("${target.region}", "us-east-1")},
            "dist.yaml:10:7",
            "region 'us-east-1' (for target prod) already has a distribution",
        ),
    ]
)
def test_duplicate_distribution_region(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


def test_distinct_regions_are_valid(tmp_path: Path) -> None:
    check_good({"dist.yaml": dist("us-east-1", "us-west-2", "eu-west-1")}, tmp_path)


# --- 7. empty Dockerfile templates ---------------------------------------------------------------


@bad(
    [
        Bad("empty-file", {"api.Dockerfile": ""}, "container.yaml:16:3", "the file 'api.Dockerfile' is empty"),
        Bad("blank-file", {"api.Dockerfile": "\n  \n\t\n"}, "container.yaml:16:3", "is empty; a Dockerfile template"),
        Bad(
            "blank-data",
            {"container.yaml": container(dockerfile="dockerfileTemplateData: '   '")},
            "container.yaml:16:3",
            "dockerfileTemplateData: it is empty",
        ),
        Bad(
            "newlines-data",
            {"container.yaml": container(dockerfile='dockerfileTemplateData: "\\n\\n"')},
            "container.yaml:16:3",
            "dockerfileTemplateData: it is empty",
        ),
    ]
)
def test_empty_dockerfile_template(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


def test_inline_dockerfile_template_is_valid(tmp_path: Path) -> None:
    check_good({"container.yaml": container(dockerfile=f"dockerfileTemplateData: {json.dumps(DOCKERFILE)}")}, tmp_path)


# --- 8. version node limits ----------------------------------------------------------------------

LIMIT = "above Image Builder's limit of 1073741823 per node"


@bad(
    [
        Bad(
            "component",
            {"components.yaml": component("1073741824.0.0")},
            "components.yaml:7:3",
            f"major node 1073741824, {LIMIT}",
        ),
        Bad(
            "image-recipe",
            {"recipes.yaml": recipe(version="1.1073741824.0")},
            "recipes.yaml:6:3",
            f"minor node 1073741824, {LIMIT}",
        ),
        Bad(
            "container-recipe",
            {"container.yaml": container(version="1.0.99999999999999999999")},
            "container.yaml:6:3",
            f"patch node 99999999999999999999, {LIMIT}",
        ),
        Bad(
            "workflow",
            {"workflow.yaml": WORKFLOW.format(version="2147483648.0.0"), "flow.yml": WORKFLOW_DOC},
            "workflow.yaml:7:3",
            f"major node 2147483648, {LIMIT}",
        ),
    ]
)
def test_version_node_limit(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


def test_version_at_the_limit_is_valid(tmp_path: Path) -> None:
    files = {
        "components.yaml": component("1073741823.1073741823.1073741823"),
        "recipes.yaml": recipe(version="1073741823.0.0"),
        "workflow.yaml": WORKFLOW.format(version="0.0.1073741823"),
        "flow.yml": WORKFLOW_DOC,
    }
    check_good(files, tmp_path)


# --- 9. resource names ---------------------------------------------------------------------------

NAME_AT = "infra.yaml:4:3"
UNDEFINED = "references InfrastructureConfiguration/infra, which is not defined"


@bad(
    [
        Bad(
            "undefined-variable",
            {"infra.yaml": INFRA.format(name="${vars.suffix}-infra"), "pipelines.yaml": pipeline()},
            NAME_AT,
            "unknown variable ${vars.suffix} for target 'dev'",  # prod defines it; dev does not
            count=2,  # and the pipeline's {ref: infra} names neither blue-infra nor dev's
        ),
        Bad(
            "reference-to-the-unsubstituted-name",
            {"infra.yaml": INFRA.format(name="infra-${target.name}"), "pipelines.yaml": pipeline()},
            "pipelines.yaml:7:3",
            UNDEFINED + "; did you mean 'infra-",
            count=2,  # once per target: the pipeline names 'infra', the targets have infra-prod, infra-dev
        ),
    ]
)
def test_placeholder_in_name(case: Bad, tmp_path: Path) -> None:
    check_bad(case, tmp_path)


def test_names_built_from_target_and_vars_are_substituted(tmp_path: Path) -> None:
    text = pipeline().replace("{ref: infra}", '{ref: "infra-${target.name}"}')
    check_good({"infra.yaml": INFRA.format(name='"infra-${target.name}"'), "pipelines.yaml": text}, tmp_path)


@pytest.mark.parametrize("name", ["infra", "Golden Base", "build_infra-2"])
def test_good_names(name: str, tmp_path: Path) -> None:
    text = pipeline().replace("{ref: infra}", "{ref: " + json.dumps(name) + "}")
    check_good({"infra.yaml": INFRA.format(name=json.dumps(name)), "pipelines.yaml": text}, tmp_path)


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_validate_reports_located_errors_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "imagesync.yaml").write_text(PROJECT, encoding="utf-8")
    files = {**base_tree(), "pipelines.yaml": pipeline("cron(0 4 * * MON)", timezone="Mars/Olympus")}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert f"{SCHEDULE_AT}: error: schedule.scheduleExpression 'cron(0 4 * * MON)' has 5 fields" in output
    assert f"{TIMEZONE_AT}: error: schedule.timezone 'Mars/Olympus' is not an IANA time zone" in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_cli_validates_the_examples() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(ROOT / "examples" / "manifests")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_enormous_numbers_are_problems_not_crashes(tmp_path: Path) -> None:
    huge = "9" * 5000  # beyond what int() converts from text
    result = run(tmp_path, {"components.yaml": component(f"1.0.{huge}")})
    assert [str(p) for p in result.problems] == [
        f"components.yaml:7:3: error: version '1.0.{huge}' has patch node {huge}, {LIMIT}"
    ]
