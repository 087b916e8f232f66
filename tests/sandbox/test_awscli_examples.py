"""The AWS CLI's published Image Builder examples, run with the real CLI against the sandbox.

Source: the examples awscli installs as `awscli/examples/imagebuilder/<command>.rst` (read from the
installed package by `awscli_examples`). For each example the resources its ARNs name are created
first (with boto3, fully specified, in the example's account and region); then the example's own
command line runs through `awscli.clidriver` with `--endpoint-url` pointing at the sandbox, and
what it prints is compared with the example's `Output::`:

- the example shows success, so the command must succeed;
- every member the example's output shows must be in the sandbox's output, recursively, with the
  same JSON type; for lists, the members every shown item has must be in every returned item;
- an ARN must have the same form: partition, service, owner kind (`aws` or an account), resource
  type and number of path segments (`.../component/NAME/1.0.0/1` is a build, `.../1.0.0` a version).

Values (names, ids, dates) differ by nature and are not compared. Where an example itself cannot
be what the service printed, the comparison says so (computed from the API model: a member the
output shape does not define, an ARN that breaks its member's pattern, a file or output that is
not JSON) and the example is an expected failure with that reason, after everything else in it
has been checked. An example whose operation the sandbox does not implement is an expected
failure too, from `Backend.supports`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from awscli.clidriver import create_clidriver
from botocore.config import Config
from botocore.model import Shape

from awscli_examples import Example, load_examples
from imagebuilder_full import FullEstate
from imagesync.sandbox import RunningSandbox, running
from imagesync.sandbox.backend import Backend
from imagesync.sandbox.model import service_model

EXAMPLES = load_examples()
DEFAULT_REGION = "us-west-2"
DEFAULT_ACCOUNT = "123456789012"
ARN_PARTS = re.compile(
    r"^arn:(?P<partition>[^:]+):(?P<service>[^:]+):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$"
)

# Examples written before a change in the service, which the service now refuses: example ->
# (the error code it answers today, what changed and where that is recorded).
SUPERSEDED: dict[str, tuple[str, str]] = {
    name: (
        "InvalidParameterValueException",
        "the example's five-field cron(0 0 * * SUN|MON) predates the six-field schedule syntax Image Builder "
        "has required since early 2021 (https://github.com/hashicorp/terraform-provider-aws/issues/17396, "
        "https://github.com/hashicorp/terraform-provider-aws/issues/17665, "
        "https://docs.aws.amazon.com/imagebuilder/latest/userguide/cron-expressions.html)",
    )
    for name in ("create-image-pipeline", "update-image-pipeline")
}

# Examples where the sandbox still differs from what the example shows, each with its reason.
# They run as strict expected failures: when the sandbox changes, the XPASS says to revisit the entry.
KNOWN_DISCREPANCIES: dict[str, str] = {}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    # A frozen clock: builds finish when the prerequisites move it on, never in the middle of a test.
    with running(clock_speed=0) as served:
        yield served


# --- setting up what an example's ARNs name -----------------------------------------------------

_ORDER = (
    "component",
    "workflow",
    "image-recipe",
    "container-recipe",
    "infrastructure-configuration",
    "distribution-configuration",
    "image-pipeline",
    "lifecycle-policy",
    "image",
)


def _arn_fields(arn: str) -> tuple[str, str, str, list[str]]:
    """(region, account, resource type, [name, version?, build?]) of an Image Builder ARN."""
    m = ARN_PARTS.match(arn)
    assert m, arn
    type_, *rest = m["resource"].split("/")
    if type_ == "workflow":
        type_ = f"workflow/{rest.pop(0)}"
    return m["region"], m["account"], type_, rest


class Prerequisites:
    """Creates each self-owned resource an example names, once, in the ARN's own account and region."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.done: set[tuple[str, ...]] = set()
        self.estates: dict[tuple[str, str], FullEstate] = {}

    def estate(self, region: str, account: str) -> FullEstate:
        key = (region, account)
        if key not in self.estates:
            client = boto3.client(
                "imagebuilder",
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id=account,
                aws_secret_access_key="x",
                config=Config(retries={"total_max_attempts": 1}),
            )
            self.estates[key] = FullEstate(client, account, self.endpoint_url)
        return self.estates[key]

    def create_all(self, arns: list[str]) -> None:
        own = [a for a in arns if _arn_fields(a)[1] != "aws"]
        for arn in sorted(own, key=lambda a: _ORDER.index(_arn_fields(a)[2].split("/")[0])):
            self.create(arn)

    def create(self, arn: str) -> None:
        region, account, type_, rest = _arn_fields(arn)
        name, version = rest[0], (rest[1] if len(rest) > 1 else "1.0.0")
        key = (region, account, type_, name, version)
        if key in self.done:
            return
        self.done.add(key)
        full = self.estate(region, account)
        if type_ == "component":
            full.component(name, version)
        elif type_.startswith("workflow"):
            full.workflow(name, version)
        elif type_ == "image-recipe":
            full.image_recipe(name, version)
        elif type_ == "container-recipe":
            full.container_recipe(name, version)
        elif type_ == "infrastructure-configuration":
            full.infrastructure(name)
        elif type_ == "distribution-configuration":
            full.distribution(name)
        elif type_ == "image-pipeline":
            recipe = self._recipe(full, f"{name}-recipe", "1.0.0")
            full.pipeline(name, recipe, self._infrastructure(full, f"{name}-infrastructure"))
        elif type_ == "image":
            recipe = self._recipe(full, name, version)
            pipeline = full.pipeline(f"{name}-pipeline", recipe, self._infrastructure(full, f"{name}-infrastructure"))
            builds = int(rest[2]) if len(rest) > 2 else 1
            for _ in range(builds):
                full.build(pipeline)
        elif type_ == "lifecycle-policy":
            full.lifecycle_policy(name)
        else:
            raise AssertionError(f"no way to set up {arn}")

    def _recipe(self, full: FullEstate, name: str, version: str) -> str:
        arn = f"arn:aws:imagebuilder:{full.region}:{full.account}:image-recipe/{name}/{version}"
        self.create(arn)
        return arn

    def _infrastructure(self, full: FullEstate, name: str) -> str:
        arn = f"arn:aws:imagebuilder:{full.region}:{full.account}:infrastructure-configuration/{name}"
        self.create(arn)
        return arn


# --- running the real CLI ------------------------------------------------------------------------


def run_cli(example: Example, endpoint_url: str, region: str, workdir: Path) -> tuple[int, str, str]:
    """The example's command line, in-process through the CLI driver, with its files written out."""
    argv = []
    for arg in example.argv:
        shown = example.file_argument(arg)
        if shown is not None:
            path = workdir / shown
            path.write_text(example.files[shown])
            arg = f"file://{path}"
        argv.append(arg)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = create_clidriver().main(
            [*argv, "--endpoint-url", endpoint_url, "--region", region, "--output", "json"]
        )
    return code, out.getvalue(), err.getvalue()


# --- comparing shapes ------------------------------------------------------------------------------


def arn_form(value: str) -> tuple[str, ...] | None:
    m = ARN_PARTS.match(value)
    if not m:
        return None
    owner = "aws" if m["account"] == "aws" else ("account" if m["account"] else "")
    if m["service"] != "imagebuilder":  # another service's resource naming is its own
        return (m["partition"], m["service"], owner)
    type_, *rest = m["resource"].split("/")
    return (m["partition"], m["service"], owner, type_, str(len(rest)))


def skeleton(items: list[Any]) -> Any:
    """What every one of several shown values has: the keys common to all dicts, recursively."""
    dicts = [i for i in items if isinstance(i, dict)]
    if dicts and len(dicts) == len(items):
        common = set(dicts[0]).intersection(*dicts[1:])
        return {k: skeleton([d[k] for d in dicts]) for k in dicts[0] if k in common}
    lists = [i for i in items if isinstance(i, list)]
    if lists and len(lists) == len(items):
        return [skeleton([e for lst in lists for e in lst])] if any(lists) else []
    return items[0]


class Comparison:
    def __init__(self) -> None:
        self.problems: list[str] = []
        """Where the sandbox's output lacks or differs from what the example shows."""
        self.errata: list[str] = []
        """Where the example shows what the service cannot have printed."""

    def compare(self, shown: Any, got: Any, shape: Shape | None, path: str) -> None:
        if isinstance(shown, dict):
            if not isinstance(got, dict):
                self.problems.append(f"{path}: expected an object, got {type(got).__name__}")
                return
            for key, value in shown.items():
                where = f"{path}.{key}" if path else key
                member = None
                if shape is not None and shape.type_name == "structure":
                    member = shape.members.get(key)
                    if member is None:
                        self.errata.append(f"{where}: the API model's output has no member '{key}'")
                        continue
                elif shape is not None and shape.type_name == "map":
                    member = shape.value
                    key_present = bool(got)  # map keys are data (tag names), not members
                    if not key_present:
                        self.problems.append(f"{where}: expected a non-empty map")
                    continue
                if key not in got:
                    self.problems.append(f"{where}: missing")
                    continue
                self.compare(value, got[key], member, where)
        elif isinstance(shown, list):
            if not isinstance(got, list):
                self.problems.append(f"{path}: expected a list, got {type(got).__name__}")
                return
            if not shown:
                return
            if not got:
                self.problems.append(f"{path}: expected items, got an empty list")
                return
            item_shape = shape.member if shape is not None and shape.type_name == "list" else None
            common = skeleton(shown)
            for i, item in enumerate(got):
                self.compare(common, item, item_shape, f"{path}[{i}]")
        else:
            if type(shown) is not type(got) and not (isinstance(shown, int | float) and isinstance(got, int | float)):
                self.problems.append(f"{path}: expected {type(shown).__name__}, got {type(got).__name__} {got!r}")
                return
            if isinstance(shown, str) and arn_form(shown) is not None:
                pattern = shape.metadata.get("pattern") if shape is not None else None
                if pattern and not re.match(pattern, shown):
                    self.errata.append(f"{path}: the example's ARN {shown} breaks the model's pattern {pattern}")
                elif arn_form(got) != arn_form(shown):
                    self.problems.append(f"{path}: expected an ARN like {shown}, got {got!r}")


# --- the tests -------------------------------------------------------------------------------------


def pattern_breaks(example: Example) -> list[str]:
    """Top-level string parameters of the example's command that break their member's pattern."""
    members = service_model().operation_model(example.operation).input_shape.members
    return [
        name
        for name, value in example.parameters().items()
        if isinstance(value, str)
        and name in members
        and (pattern := members[name].metadata.get("pattern"))
        and not re.match(pattern, value)
    ]


def _region_and_account(example: Example) -> tuple[str, str]:
    arns = example.input_arns() or example.output_arns()
    if not arns:
        return DEFAULT_REGION, DEFAULT_ACCOUNT
    region, account, _, _ = _arn_fields(arns[0])
    return region, account if account != "aws" else DEFAULT_ACCOUNT


def _prerequisite_arns(example: Example) -> list[str]:
    arns = example.input_arns()
    # An operation that creates something answers the ARN of what it made: that must not exist yet.
    if not example.operation.startswith(("Create", "Import", "Start")):
        arns += example.output_arns()
    return arns


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(
            e,
            id=e.name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DISCREPANCIES[e.name])]
            if e.name in KNOWN_DISCREPANCIES
            else [],
        )
        for e in EXAMPLES
    ],
)
def test_awscli_example(
    example: Example, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS CLI example awscli/examples/imagebuilder/<command>.rst (the id names the file): the sandbox
    accepts the command as the example shows and answers every member its output shows, in form."""
    if not Backend().supports(example.operation):
        pytest.xfail(f"the sandbox does not implement {example.operation}")
    for filename, text in example.files.items():
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            pytest.xfail(f"{example.source}: the shown {filename} is not JSON ({exc}); the CLI itself refuses it")
    broken = pattern_breaks(example)
    sandbox.reset()
    region, account = _region_and_account(example)
    Prerequisites(sandbox.endpoint_url).create_all(_prerequisite_arns(example))

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", account)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # a sandbox error is a finding, not something to retry
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    code, stdout, stderr = run_cli(example, sandbox.endpoint_url, region, tmp_path)
    if example.name in SUPERSEDED:
        error_code, why = SUPERSEDED[example.name]
        assert code != 0 and f"({error_code})" in stderr, f"{example.source}: {why}; got {code}: {stdout}{stderr}"
        return
    if broken:
        # The model's patterns are the service's contract: an example that breaks one was never accepted.
        assert code != 0 and all(f"'{m}'" in stderr for m in broken), f"{example.source}: {stdout}{stderr}"
        pytest.xfail(f"{example.source}: its {', '.join(broken)} breaks the API model's pattern")
    assert code == 0, f"{example.source}: the example succeeds, the sandbox refused it: {stderr.strip()}"

    if example.no_output:
        assert stdout.strip() == "", stdout
        return
    if example.output_error is not None:
        pytest.xfail(f"{example.source}: the shown output is not JSON ({example.output_error})")
    got = json.loads(stdout)
    comparison = Comparison()
    comparison.compare(example.output, got, service_model().operation_model(example.operation).output_shape, "")
    assert not comparison.problems, f"{example.source}:\n" + "\n".join(comparison.problems)
    if comparison.errata:
        pytest.xfail(f"{example.source}: " + "; ".join(comparison.errata))
