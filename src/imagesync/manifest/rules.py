"""Service rules: what Image Builder refuses at apply time, caught offline with the manifest's location.

The JSON Schemas check shapes and the botocore patterns; these checks cover what the service
enforces beyond them: schedule expressions and time zones, recipe component parameters against
the component's own document, the shape of literal component and parent image references, one
recipe per pipeline, one distribution per region, empty Dockerfile templates, version node limits
and resource names. Each kind's own warnings (`Kind.advice`: what the service takes but is likely
not meant) are reported here too. `imagesync.manifest.loader` calls `check` once with every
desired resource (after substitution) and the manifest documents they came from; everything here
is pure.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeGuard

from imagesync.desired import Resource
from imagesync.errors import Location
from imagesync.kinds import thaw
from imagesync.manifest.problems import Problems
from imagesync.manifest.yamlloc import Located
from imagesync.versioning import MAX_NODE

# botocore's ResourceName pattern, which every kind's `name` member uses.
NAME_PATTERN = re.compile(r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$")
_ARN_NAME = re.compile(r"^[a-z0-9-_]+$")
_REGION = re.compile(r"^[a-z0-9-]+$")
_PARTITION = re.compile(r"^aws(?:-[a-z]+)*$")
_ACCOUNT = re.compile(r"^(?:[0-9]{12}|aws(?:-[a-z-]+)?|third-party)$")
_AMI = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_PRODUCT_ID = re.compile(r"^(?:prod-[a-z0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
# An imagesync placeholder left after substitution was already reported where it could not be
# resolved; a value holding one is not judged again.
_UNRESOLVED = re.compile(r"\$\{(?:target|vars|env)\.[A-Za-z0-9_-]+\}")

CRON_EXAMPLE = "cron(0 4 ? * MON *)"
SCHEDULE_HELP = (
    "Image Builder takes cron(minutes hours day-of-month month day-of-week year), e.g. "
    f"{CRON_EXAMPLE} for 04:00 every Monday, or rate(N minutes|hours|days), e.g. rate(12 hours)"
)


def check(resources: Mapping[tuple[str, str, str], Resource], manifests: Iterable[Located], problems: Problems) -> None:
    """Add a located problem for everything in `resources` that Image Builder would refuse.

    `manifests` are the manifest documents as read (before substitution); each resource is
    matched to its document by the location of its `metadata.name`, and problems point there.
    """
    by_location = {doc.at(("metadata", "name")): doc for doc in manifests}
    for resource in resources.values():
        doc = by_location.get(resource.location)
        if doc is None:
            continue
        ctx = _Context(resource, doc, resources, problems)
        _name(ctx)
        if resource.kind_info.versioned:
            _version(ctx)
        for rule in (*_EVERY_KIND_RULES, *_SERVICE_RULES.get(resource.kind, ())):
            rule(ctx)
        _advice(ctx)


@dataclass
class _Context:
    resource: Resource
    doc: Located  # the manifest as written: locations, and the raw text of substituted values
    resources: Mapping[tuple[str, str, str], Resource]
    problems: Problems

    def at(self, *path: str | int) -> Location:
        return self.doc.at(("spec", *path))

    def add(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.add(self.at(*path), message)

    def warn(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.warn(self.at(*path), message, self.resource.target)

    def raw(self, path: tuple[str | int, ...]) -> Any:
        """The value at spec `path` as the file writes it (before substitution), or None."""
        raw: Any = self.doc.value
        for key in ("spec", *path):
            try:
                raw = raw[key]
            except (KeyError, IndexError, TypeError):
                return None
        return raw

    def per_target(self, path: tuple[str | int, ...], value: Any) -> str:
        """' (for target T)' when substitution made the value differ from what the file says."""
        raw = self.raw(path)
        return f" (for target {self.resource.target})" if raw is not None and raw != value else ""


def _advice(ctx: _Context) -> None:
    """The kind's own warnings (see `Kind.advice`), at their places."""
    advice = ctx.resource.kind_info.advice
    if advice is None:
        return
    target = ctx.resource.target

    def managed(kind: str, name: str) -> bool:
        return (target, kind, name) in ctx.resources

    for path, message in advice(ctx.resource.spec, managed):
        ctx.warn(path, message)


def _judged(value: Any) -> TypeGuard[str]:
    """A string these rules can judge: one with no unresolved imagesync placeholder."""
    return isinstance(value, str) and not _UNRESOLVED.search(value)


def _int(digits: str) -> int:
    """ASCII digits as a number; very long ones are only "too big" (int() refuses over 4300 digits)."""
    return int(digits) if len(digits) <= 18 else 10**18


# --- names and versions --------------------------------------------------------------------------


def _name(ctx: _Context) -> None:
    """The name after substitution (${target.*} and ${vars.*} may build it) is the service's."""
    name = ctx.resource.name
    if NAME_PATTERN.match(name) or not _judged(name):
        return
    ctx.problems.add(
        ctx.doc.at(("metadata", "name")),
        f"metadata.name {name!r}{ctx.per_target(('metadata', 'name'), name)} is not a valid Image Builder name: "
        "names are 3 to 128 letters, digits, hyphens, underscores and inner spaces, e.g. 'golden-base'",
    )


def _version(ctx: _Context) -> None:
    version = ctx.resource.spec.get("version")
    if not isinstance(version, str):
        return
    checked = version
    if ctx.resource.kind_info.version_wildcard and version.endswith(".x"):
        checked = version[:-1] + "0"  # a recipe's `1.0.x`: the service assigns the next patch
    problem = version_problem(checked, wildcards=False, build=False)
    if problem:
        ctx.add(("version",), f"version {version!r} {problem}")


def version_problem(text: str, *, wildcards: bool, build: bool) -> str | None:
    """Why `text` is not a version Image Builder takes, or None.

    `wildcards`: `x` nodes are allowed, right-aligned (`x.x.x`, `1.x.x`, `1.2.x`); `build`: a
    concrete version may carry a build number (`1.2.3/1`).
    """
    allowed = "1.2.3" + (", 1.2.x, 1.x.x or x.x.x" if wildcards else "") + (" or a build 1.2.3/1" if build else "")
    head, slash, tail = text.partition("/")
    nodes = head.split(".")
    if len(nodes) != 3 or not all(n.isdigit() and n.isascii() or (wildcards and n == "x") for n in nodes):
        return f"is not a version; use major.minor.patch such as {allowed}"
    first_wildcard = next((i for i, n in enumerate(nodes) if n == "x"), None)
    if first_wildcard is not None and any(n != "x" for n in nodes[first_wildcard:]):
        return f"has wildcards that are not right-aligned: every node after the first 'x' must be 'x' ({allowed})"
    for label, node in zip(("major", "minor", "patch"), nodes, strict=True):
        if node != "x" and _int(node) > MAX_NODE:
            return f"has {label} node {node}, above Image Builder's limit of {MAX_NODE} per node"
    if slash:
        if not build:
            return f"takes no build number; use {allowed}"
        if first_wildcard is not None:
            return "has a build number after a wildcard; a build goes only after a concrete version, e.g. 1.2.3/1"
        if not (tail.isdigit() and tail.isascii()):
            return f"has build number {tail!r}, which is not a whole number, e.g. 1.2.3/1"
    return None


# --- ARNs and parent images ----------------------------------------------------------------------


def arn_problem(text: str, resource_type: str, example: str) -> str | None:
    """Why `text` is not an Image Builder ARN of `resource_type` with a version, or None."""
    shape = f"arn:<partition>:imagebuilder:<region>:<account or aws>:{resource_type}/<name>/<version>, e.g. {example}"
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return f"is not an ARN; expected {shape}"
    _, partition, service, region, account, rest = parts
    if not _PARTITION.match(partition):
        return f"partition {partition!r} is not an AWS partition (aws, aws-cn, aws-us-gov); expected {shape}"
    if service != "imagebuilder":
        return f"is an ARN of service {service!r}, not imagebuilder; expected {shape}"
    if not _REGION.match(region):
        return f"region {region!r} is not a region name such as us-east-1; expected {shape}"
    if not _ACCOUNT.match(account):
        return f"account {account!r} is not a 12-digit account id, 'aws' or 'third-party'; expected {shape}"
    kind, _, path = rest.partition("/")
    if kind != resource_type:
        return f"names a {kind!r}, not a {resource_type!r}; expected {shape}"
    name, _, version = path.partition("/")
    if not _ARN_NAME.match(name):
        return f"name {name!r} may hold only lower-case letters, digits, hyphens and underscores; expected {shape}"
    if not version:
        return f"has no version; expected {shape}"
    problem = version_problem(version, wildcards=True, build=True)
    return f"has version {version!r}, which {problem}" if problem else None


def _image_parent(text: str) -> str | None:
    if text.startswith("arn:"):
        return arn_problem(text, "image", "arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x")
    if text.startswith("ami-"):
        return None if _AMI.match(text) else "is not an AMI id: ami- followed by 8 or 17 hex digits"
    if text.startswith("ssm:"):
        return None if len(text) > 4 else "names no SSM parameter after 'ssm:'"
    if _PRODUCT_ID.match(text):
        return None
    return (
        "is not a parent image an image recipe takes: use an Image Builder image ARN "
        "(arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x), an AMI id (ami-0abcdef1234567890), "
        "ssm:<parameter> or a Marketplace product id"
    )


def _container_parent(text: str) -> str | None:
    if text.startswith("arn:"):
        return arn_problem(text, "image", "arn:aws:imagebuilder:us-east-1:123456789012:image/base-container/x.x.x")
    if _AMI.match(text):
        return "is an AMI id; a container recipe builds from a container image such as amazonlinux:latest"
    problem = registry_image_problem(text)
    if problem:
        return (
            f"{problem}; a container recipe takes a registry image such as amazonlinux:latest or "
            "public.ecr.aws/amazonlinux/amazonlinux:2023, or an Image Builder image ARN"
        )
    return None


def registry_image_problem(text: str) -> str | None:
    """Why `text` is not a container image reference `[registry/]path[:tag][@digest]`, or None."""
    rest, at, digest = text.partition("@")
    if at:
        algorithm, colon, encoded = digest.partition(":")
        if not colon or not re.fullmatch(r"[a-z0-9]+", algorithm) or not re.fullmatch(r"[a-fA-F0-9]{32,}", encoded):
            return f"digest {digest!r} is not algorithm:hex, e.g. sha256:<64 hex digits>"
    components = rest.split("/")
    if len(components) > 1 and ("." in components[0] or ":" in components[0] or components[0] == "localhost"):
        registry, components = components[0], components[1:]
        host, colon, port = registry.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9.-]+", host) or (colon and not port.isdigit()):
            return f"registry {registry!r} is not host[:port]"
    last = components[-1]
    name_part, colon, tag = last.partition(":")
    components[-1] = name_part
    if colon and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        return f"tag {tag!r} is not 1 to 128 letters, digits, '_', '.' or '-'"
    for component in components:
        # Repository path components: lower-case alphanumerics joined by '.', '_', '__' or '-'s.
        if not re.fullmatch(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*", component):
            return f"repository path part {component!r} is not lower-case letters and digits joined by '.', '_' or '-'"
    return None


# --- pipelines and schedules ---------------------------------------------------------------------


def _one_recipe(ctx: _Context) -> None:
    """Whatever builds images (a pipeline, an image) builds from exactly one recipe, image or
    container: the service refuses both or none. It applies to every kind that takes both."""
    if not {"imageRecipeArn", "containerRecipeArn"} <= {ref.path[0] for ref in ctx.resource.kind_info.refs}:
        return
    spec = ctx.resource.spec
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", ctx.resource.kind).lower()
    what = f"{'an' if words[0] in 'aeiou' else 'a'} {words}"
    image, container = "imageRecipeArn" in spec, "containerRecipeArn" in spec
    if image and container:
        ctx.add(
            ("containerRecipeArn",),
            f"{what} builds from exactly one recipe: set imageRecipeArn or containerRecipeArn, not both",
        )
    elif not image and not container:
        ctx.add((), f"{what} needs exactly one recipe: set imageRecipeArn (e.g. {{ref: base}}) or containerRecipeArn")


def _pipeline(ctx: _Context) -> None:
    spec = ctx.resource.spec
    schedule = spec.get("schedule")
    if not isinstance(schedule, Mapping):
        return
    expression = schedule.get("scheduleExpression")
    if _judged(expression):
        problem = schedule_problem(expression)
        if problem:
            where = ("schedule", "scheduleExpression")
            ctx.add(where, f"schedule.scheduleExpression {expression!r}{ctx.per_target(where, expression)} {problem}")
    timezone = schedule.get("timezone")
    if _judged(timezone):
        problem = timezone_problem(timezone)
        if problem:
            where = ("schedule", "timezone")
            ctx.add(where, f"schedule.timezone {timezone!r}{ctx.per_target(where, timezone)} {problem}")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: str) -> str | None:
    """Why `name` is not an IANA time zone, or None (also None when this machine knows no zones)."""
    zones = _zones()
    if not zones or name in zones:
        return None
    close = difflib.get_close_matches(name, sorted(zones), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"is not an IANA time zone; {hint}use a name such as 'America/New_York', 'Europe/Berlin' or 'UTC'"


def schedule_problem(expression: str) -> str | None:
    """Why Image Builder would refuse `expression` as a pipeline schedule, or None."""
    if expression != expression.strip():
        return f"has leading or trailing spaces; {SCHEDULE_HELP}"
    if expression.startswith("rate(") and expression.endswith(")"):
        return _rate_problem(expression[5:-1])
    if expression.startswith("cron(") and expression.endswith(")"):
        return _cron_problem(expression[5:-1])
    return f"is neither cron(...) nor rate(...); {SCHEDULE_HELP}"


_RATE_UNITS = {"minute": "minutes", "hour": "hours", "day": "days"}


def _rate_problem(body: str) -> str | None:
    parts = body.split(" ")
    if len(parts) != 2:
        return "is not rate(N unit), a whole number and a unit separated by one space, e.g. rate(12 hours)"
    count, unit = parts
    if not (count.isdigit() and count.isascii()) or _int(count) < 1:
        return f"has rate value {count!r}, which is not a whole number of at least 1, e.g. rate(12 hours)"
    n = _int(count)
    singular = set(_RATE_UNITS)
    plural = set(_RATE_UNITS.values())
    if unit not in singular | plural:
        return f"has rate unit {unit!r}; the unit is minute(s), hour(s) or day(s), e.g. rate(1 day) or rate(12 hours)"
    if n == 1 and unit in plural:
        return f"needs the singular unit for a rate of 1: rate(1 {unit[:-1]})"
    if n > 1 and unit in singular:
        return f"needs the plural unit for a rate above 1: rate({n} {_RATE_UNITS[unit]})"
    return None


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    wildcards: str  # the special characters the field allows, beside digits
    names: tuple[str, ...] = ()  # names for low, low + 1, ...

    @property
    def values(self) -> str:
        named = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{named}"


_CRON_FIELDS = (
    _CronField("minutes", 0, 59, ",-*/"),
    _CronField("hours", 0, 23, ",-*/"),
    _CronField("day-of-month", 1, 31, ",-*?/LW"),
    _CronField(
        "month", 1, 12, ",-*/", ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    ),
    _CronField("day-of-week", 1, 7, ",-*?L#", ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
    _CronField("year", 1970, 2199, ",-*/"),
)


class _CronError(Exception):
    pass


def _cron_problem(body: str) -> str | None:
    fields = body.split(" ")
    if "" in fields:
        return f"does not separate its fields with single spaces; {SCHEDULE_HELP}"
    if len(fields) != len(_CRON_FIELDS):
        extra = " (a five-field Unix cron lacks the year: add ' *' at the end)" if len(fields) == 5 else ""
        return f"has {len(fields)} fields, but Image Builder's cron has six{extra}; {SCHEDULE_HELP}"
    for field, text in zip(_CRON_FIELDS, fields, strict=True):
        try:
            _cron_field(field, text)
        except _CronError as exc:
            return (
                f"has an invalid {field.name} field {text!r}: it {exc}; the {field.name} field takes "
                f"{field.values} and the wildcards {_wildcards(field)}"
            )
    day, weekday = fields[2] == "?", fields[4] == "?"
    if day and weekday:
        return (
            "has '?' in both day-of-month and day-of-week; only one may be '?', "
            f"e.g. {CRON_EXAMPLE} or cron(0 0 1 * ? *)"
        )
    if not day and not weekday:
        return (
            "needs '?' in day-of-month or day-of-week (Image Builder cannot match both), "
            f"e.g. {CRON_EXAMPLE} or cron(0 0 1 * ? *)"
        )
    return None


def _wildcards(field: _CronField) -> str:
    return " ".join(field.wildcards)


def _cron_field(field: _CronField, text: str) -> None:
    """Raise `_CronError` saying what is wrong with one field's text."""
    if text == "?":
        if "?" not in field.wildcards:
            raise _CronError("cannot be '?' (only day-of-month and day-of-week can)")
        return
    items = text.split(",")
    if "" in items:
        raise _CronError("has an empty list item")
    special = [item for item in items if _is_special(field, item)]
    if special and len(items) > 1:
        raise _CronError(f"uses {special[0]!r} in a list; L, W and # stand alone in their field")
    for item in items:
        if _is_special(field, item):
            _special_item(field, item)
        else:
            _plain_item(field, item)


def _is_special(field: _CronField, item: str) -> bool:
    if field.name == "day-of-month":
        return item.upper().endswith(("L", "W"))
    if field.name == "day-of-week":
        return "#" in item or (item.upper().endswith("L") and item.upper() not in field.names)
    return False


def _special_item(field: _CronField, item: str) -> None:
    upper = item.upper()
    if field.name == "day-of-month":
        if upper in ("L", "LW"):
            return
        if upper.endswith("W") and upper[:-1].isdigit():
            _number(field, upper[:-1])
            return
        raise _CronError("is not L (last day), LW (last weekday) or NW (the weekday nearest day N, e.g. 15W)")
    if "#" in upper:
        day, _, nth = upper.partition("#")
        _number(field, day)
        if not (nth.isdigit() and nth.isascii() and 1 <= _int(nth) <= 5):
            raise _CronError(f"has #{nth}; the week of the month after '#' is 1 to 5, e.g. FRI#2")
        return
    if upper == "L":
        return
    _number(field, upper[:-1])  # NL: the last weekday N of the month, e.g. 6L or FRIL


def _plain_item(field: _CronField, item: str) -> None:
    base, slash, step = item.partition("/")
    if slash:
        if "/" not in field.wildcards:
            raise _CronError("cannot use a '/' step")
        span = field.high - field.low + 1
        if not (step.isdigit() and step.isascii()) or not 1 <= _int(step) <= span:
            raise _CronError(f"has step {step!r}; a step after '/' is a whole number from 1 to {span}")
    if base == "*":
        return
    if not base:
        raise _CronError("has nothing before '/'; write */N or START/N")
    start, dash, end = base.partition("-")
    low = _number(field, start)
    if dash:
        if not end:
            raise _CronError("has an open range; write START-END")
        _number(field, end)
    elif slash and low is None:
        raise _CronError("has an unreadable start")


def _number(field: _CronField, text: str) -> int:
    """The value of one number or name in a cron field; out-of-range or unknown raises."""
    if text.isdigit() and text.isascii():
        value = _int(text)
        if not field.low <= value <= field.high:
            raise _CronError(f"has {value}, which is out of range")
        return value
    if field.names and text.upper() in field.names:
        return field.low + field.names.index(text.upper())
    if not text:
        raise _CronError("has an empty value")
    raise _CronError(f"has {text!r}, which is not a valid value")


# --- recipes ---------------------------------------------------------------------------------------


def _recipe(ctx: _Context) -> None:
    spec = ctx.resource.spec
    parent = spec.get("parentImage")
    if _judged(parent):
        problem = _image_parent(parent) if ctx.resource.kind == "ImageRecipe" else _container_parent(parent)
        if problem:
            ctx.add(("parentImage",), f"parentImage {parent!r}{ctx.per_target(('parentImage',), parent)} {problem}")
    components = spec.get("components")
    for i, item in enumerate(components if isinstance(components, (list, tuple)) else ()):
        if not isinstance(item, Mapping):
            continue
        arn = item.get("componentArn")
        if _judged(arn):
            example = "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x"
            problem = arn_problem(arn, "component", example)
            if problem:
                where = ("components", i, "componentArn")
                ctx.add(where, f"componentArn {arn!r}{ctx.per_target(where, arn)} {problem}")
        _parameters(ctx, i, item)
    if ctx.resource.kind == "ContainerRecipe":
        _dockerfile(ctx)


def _parameters(ctx: _Context, index: int, item: Mapping[str, Any]) -> None:
    params = item.get("parameters")
    given: dict[str, int] = {}
    for j, param in enumerate(params if isinstance(params, (list, tuple)) else ()):
        name = param.get("name") if isinstance(param, Mapping) else None
        if not _judged(name):
            continue
        if name in given:
            first = ctx.at("components", index, "parameters", given[name], "name")
            ctx.add(
                ("components", index, "parameters", j, "name"),
                f"parameter {name!r} is set twice for this component (first at line {first.line}); set it once",
            )
            continue
        given[name] = j
    ref = item.get("ref")
    if not isinstance(ref, str):
        return  # a componentArn: its document is not in these manifests
    component = ctx.resources.get((ctx.resource.target, "Component", ref))
    document = thaw(component.document_value) if component is not None else None
    if not isinstance(document, dict):
        return  # not defined (reported elsewhere), or a document in S3
    declared = _declared_parameters(document)
    listing = "declares " + ", ".join(repr(n) for n in declared) if declared else "declares no parameters"
    for name, j in given.items():
        if name not in declared:
            ctx.add(
                ("components", index, "parameters", j, "name"),
                f"the following parameters are not defined in the provided component Component/{ref}: {name!r}; "
                f"its document {listing}",
            )
    missing = [n for n, has_default in declared.items() if not has_default and n not in given]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        ctx.add(
            ("components", index, "ref"),
            f"Component/{ref} declares {names} without a default, so the recipe must set "
            f"{'it' if len(missing) == 1 else 'them'}, e.g. parameters: [{{name: {missing[0]}, value: ['...']}}]",
        )


def _declared_parameters(document: Mapping[str, Any]) -> dict[str, bool]:
    """Each parameter the AWSTOE document declares, and whether it has a default."""
    declared: dict[str, bool] = {}
    items = document.get("parameters")
    for entry in items if isinstance(items, list) else ():
        if isinstance(entry, Mapping) and len(entry) == 1:
            ((name, body),) = entry.items()
            if isinstance(name, str):
                declared.setdefault(name, isinstance(body, Mapping) and "default" in body)
    return declared


def _dockerfile(ctx: _Context) -> None:
    spec = ctx.resource.spec
    text = ctx.resource.document
    for key in ("dockerfileTemplateData", "dockerfileTemplateFile"):
        if key in spec and isinstance(text, str) and not text.strip():
            what = f"the file {spec[key]!r} is empty" if key == "dockerfileTemplateFile" else "it is empty"
            ctx.add(
                (key,),
                f"{key}: {what}; a Dockerfile template needs at least a FROM line, e.g. "
                "'FROM {{{ imagebuilder:parentImage }}}' followed by '{{{ imagebuilder:components }}}'",
            )


# --- distributions ---------------------------------------------------------------------------------


def _distributions(ctx: _Context) -> None:
    distributions = ctx.resource.spec.get("distributions")
    seen: dict[str, int] = {}
    for i, dist in enumerate(distributions if isinstance(distributions, (list, tuple)) else ()):
        region = dist.get("region") if isinstance(dist, Mapping) else None
        if not _judged(region):
            continue
        if region in seen:
            first = ctx.at("distributions", seen[region], "region")
            where = ("distributions", i, "region")
            first_path = ("distributions", seen[region], "region")
            raw = ctx.raw(where)
            if isinstance(raw, str) and raw == ctx.raw(first_path):
                shown = repr(raw)  # written the same way twice: wrong in every target, so say it once
            else:
                shown = repr(region) + (ctx.per_target(where, region) or ctx.per_target(first_path, region))
            ctx.add(
                where,
                f"region {shown} already has a distribution "
                f"(distributions[{seen[region]}], line {first.line}); Image Builder takes one distribution per "
                "region: merge their settings into one entry",
            )
            continue
        seen[region] = i


# Rules that apply to every kind whose fields they concern.
_EVERY_KIND_RULES: tuple[Callable[[_Context], None], ...] = (_one_recipe,)

# The service's field rules that go beyond the schema, per kind that has any (a kind without an
# entry has none).
_SERVICE_RULES: dict[str, tuple[Callable[[_Context], None], ...]] = {
    "ImagePipeline": (_pipeline,),
    "ImageRecipe": (_recipe,),
    "ContainerRecipe": (_recipe,),
    "DistributionConfiguration": (_distributions,),
}
