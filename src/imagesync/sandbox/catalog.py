"""The sandbox's catalog of resources it does not own: AWS-managed components, images and workflows.

Real Image Builder accounts can see resources that AWS publishes under the ARN account segment
``aws`` (``arn:aws:imagebuilder:us-east-1:aws:component/update-linux/1.0.2/1``), and, with the
``ThirdParty`` and ``AWSMarketplace`` ownership filters, resources that sellers publish
(``arn:aws:imagebuilder:us-east-1:aws-marketplace:component/NAME/1.0.0``). Recipes reference
them, usually through wildcards such as ``.../component/update-linux/x.x.x`` or
``.../image/amazon-linux-2023-x86/2025.x.x``, and pipelines reference the AWS-managed workflows
(``.../workflow/build/build-image/x.x.x``).

The built-in entries live in ``catalog_data/amazon.yaml``, written in the same format as a
``--catalog FILE`` (see :func:`parse`). Their names come from AWS's public material:

- components: the Image Builder user guide's component pages
  (https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-components.html,
  https://docs.aws.amazon.com/imagebuilder/latest/userguide/ib-stig.html), the AWS CDK
  Image Builder construct library's managed-component helpers
  (https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedComponent.html)
  and the component list of the cdklabs/cdk-proserve-lib Ec2ImagePipeline construct;
- images: the CDK library's managed-image helpers
  (https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedImage.html);
- workflows: the user guide's workflow page
  (https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-image-workflows.html) and the
  CDK helpers (https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedWorkflow.html).

Descriptions, version histories, dates and documents are the sandbox's own: documents are short,
generic AWSTOE (or workflow) documents that parse the way the service parses them, and every
version's document differs (a ``# Document version`` comment), like real builds do. Version
histories include cases where numeric and lexical order differ (``1.0.9`` < ``1.0.10``,
``2025.9.18`` < ``2025.10.16``), so wildcard resolution is exercised.

The catalog exists in every region, with the region's partition in its ARNs (``aws``,
``aws-cn``, ``aws-us-gov``); an entry with ``regions:`` exists only there.

:class:`Catalog` is what a sandbox backend holds: the built-in entries plus its
``--catalog`` files (a later entry of the same kind, owner and name replaces an earlier one).
Per region it expands once into records shaped like botocore's ``Component``, ``Image`` and
``Workflow`` outputs and memoizes them; the records are shared, so callers must copy before
mutating (the backend only reads them). :func:`components`, :func:`images` and
:func:`workflows` return deep copies of the built-in catalog for one region.

Where the real service and the botocore model disagree, the catalog follows the service:
``Image.version`` is ``"x.y.z/build"`` (as GetImage returns it), ``ComponentParameterDetail.type``
is ``"string"``, and ``tags`` is ``{}`` although ``TagMap`` has ``min: 1``.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from imagesync.sandbox.documents import component_parameters, component_type, workflow_parameters
from imagesync.sandbox.errors import SandboxError
from imagesync.service_model import region_partition

Record = dict[str, Any]

ACCOUNT = "aws"
"""ARN account segment of AWS-managed Image Builder resources."""

OWNER = "Amazon"
"""``owner`` value of AWS-managed resources (also the ``Ownership`` filter value)."""

OWNERS = {"Amazon": "aws", "ThirdParty": "third-party", "AWSMarketplace": "aws-marketplace"}
"""Ownership filter value -> ARN account segment of the entries listed under it.

``aws`` and ``aws-marketplace`` are the segments AWS documents; a third-party seller's segment
is not documented, so the sandbox uses ``third-party`` (a file entry may set ``account:``).
"""

BUILD_NUMBER = 1
"""Every catalog version has exactly one build."""

MAX_NODE = 1073741823
KINDS = ("components", "images", "workflows")
ARN_TYPES = {"components": "component", "images": "image"}

_VERSION_MARK = "@VERSION@"
_BUILTIN = "amazon.yaml"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_PLATFORMS = ("Linux", "Windows", "macOS")
_FIELDS = {
    "components": {
        "name", "platform", "versions", "type", "description", "supportedOsVersions", "document",
        "parameters", "owner", "account", "regions",
    },
    "images": {"name", "platform", "osVersion", "versions", "type", "description", "owner", "account", "regions"},
    "workflows": {"name", "type", "versions", "description", "document", "parameters", "owner", "account", "regions"},
}  # fmt: skip
_REQUIRED = {
    "components": ("name", "platform", "versions"),
    "images": ("name", "platform", "osVersion", "versions"),
    "workflows": ("name", "type", "versions"),
}


# The C loader and dumper, where PyYAML has them: the built-in catalog reads ~100 documents per process.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(doc: dict[str, Any]) -> str:
    return "# Document version: @VERSION@\n" + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120)


def partition(region: str) -> str:
    """ARN partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ...), from botocore's endpoint data."""
    return region_partition(region) or "aws"


# --- parsed entries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One catalog entry: a resource family (all its versions) of one kind, owner and name."""

    kind: str
    name: str
    owner: str
    account: str
    versions: tuple[tuple[str, str], ...]
    """(semantic version, dateCreated) in ascending version order."""
    fields: dict[str, Any]
    """Kind-specific fields: platform, type, description, document template, parameters, ..."""
    regions: frozenset[str] | None = None
    where: str = ""
    """``FILE:LINE:COL: KIND[i] 'name'`` for messages."""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.owner, self.name)


def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _version_key(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(n) for n in text.split("/")[0].split("."))
    return (major, minor, patch)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _default_date(name: str, version: str, index: int, count: int) -> str:
    """A plausible, deterministic dateCreated: from a dated version (2025.9.18), else spread by order."""
    jitter = int(hashlib.sha256(f"{name}|{version}".encode()).hexdigest()[:8], 16)
    match = _VERSION.match(version)
    assert match
    year, month, day = (int(g) for g in match.groups())
    try:
        base = dt.datetime(year, month, day, 5, tzinfo=dt.UTC) if 2000 <= year <= 2100 else None
    except ValueError:
        base = None
    if base is None:
        base = dt.datetime(2024, 1, 15, tzinfo=dt.UTC) + dt.timedelta(days=index * (600 // max(count, 1)))
    return _iso(base + dt.timedelta(seconds=jitter % 7200, milliseconds=jitter % 1000))


def _parse_versions(raw: Any, name: str, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "'versions' must be a non-empty list of x.y.z versions")
    items: list[tuple[str, str | None]] = []
    for item in raw:
        date: Any = None
        if isinstance(item, dict):
            unknown = set(item) - {"version", "date"}
            if unknown or "version" not in item:
                raise _fail(where, f"a versions item is 'x.y.z' or {{version, date}}, got {item!r}")
            version, date = item["version"], item.get("date")
        else:
            version = item
        if not isinstance(version, str) or not _VERSION.match(version):
            raise _fail(where, f"bad version {version!r}: use <major>.<minor>.<patch>, e.g. '1.0.0' (quote it)")
        if any(int(n) > MAX_NODE for n in version.split(".")):
            raise _fail(where, f"bad version {version!r}: each node must be at most {MAX_NODE}")
        if isinstance(date, dt.datetime):
            date = _iso(date if date.tzinfo else date.replace(tzinfo=dt.UTC))
        elif isinstance(date, dt.date):
            date = _iso(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC))
        elif date is not None:
            try:
                date = _iso(dt.datetime.fromisoformat(str(date).replace("Z", "+00:00")).replace(tzinfo=dt.UTC))
            except ValueError:
                raise _fail(where, f"bad date {date!r} for version {version}: use ISO 8601") from None
        items.append((version, date))
    seen = [v for v, _ in items]
    duplicates = sorted({v for v in seen if seen.count(v) > 1})
    if duplicates:
        raise _fail(where, f"duplicate versions {', '.join(duplicates)}")
    items.sort(key=lambda item: _version_key(item[0]))
    return tuple(
        (v, d or _default_date(name, v, i, len(items))) for i, (v, d) in enumerate(items)
    )


def _string_list(raw: Any, member: str, where: str) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(v, str) and v for v in raw):
        raise _fail(where, f"'{member}' must be a non-empty list of strings")
    return list(raw)


def _parameters(raw: Any, where: str) -> list[dict[str, Any]]:
    """`parameters:` of an entry without a document: [{name, type, default, description}]."""
    if not isinstance(raw, list):
        raise _fail(where, "'parameters' must be a list of {name, type, default, description}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _fail(where, f"a parameter needs a 'name', got {item!r}")
        unknown = set(item) - {"name", "type", "default", "description"}
        if unknown:
            raise _fail(where, f"unknown parameter fields {sorted(unknown)} in {item['name']!r}")
        out.append(item)
    return out


def _generic_component(name: str, platform: str, type_: str, description: str, parameters: list[Any]) -> str:
    """A short AWSTOE document for an entry that gives no document of its own."""
    action = "ExecutePowerShell" if platform == "Windows" else "ExecuteBash"
    doc: dict[str, Any] = {"name": name, "description": description, "schemaVersion": 1.0}
    if parameters:
        doc["parameters"] = [
            {p["name"]: {k: str(v) for k, v in p.items() if k != "name"} | {"type": str(p.get("type", "string"))}}
            for p in parameters
        ]

    def step(phase: str) -> dict[str, Any]:
        return {
            "name": phase.capitalize(),
            "action": action,
            "onFailure": "Abort",
            "inputs": {"commands": [f"echo '{name} @VERSION@: {phase}'"]},
        }

    phases = ["test"] if type_ == "TEST" else ["build", "validate"]
    doc["phases"] = [{"name": phase, "steps": [step(phase)]} for phase in phases]
    return _dump(doc)


_BUILD_ID = {"instanceId.$": "$.stepOutputs.LaunchBuildInstance.instanceId"}
_TEST_ID = {"instanceId.$": "$.stepOutputs.LaunchTestInstance.instanceId"}
_WORKFLOW_STEPS = {
    "BUILD": [
        ("LaunchBuildInstance", "LaunchInstance", {"waitFor": "ssmAgent"}),
        ("ApplyBuildComponents", "ExecuteComponents", _BUILD_ID),
        ("CreateOutputImage", "CreateImage", _BUILD_ID),
        ("TerminateBuildInstance", "TerminateInstance", _BUILD_ID),
    ],
    "TEST": [
        ("LaunchTestInstance", "LaunchInstance", {"waitFor": "ssmAgent"}),
        ("RunTestComponents", "ExecuteComponents", _TEST_ID),
        ("TerminateTestInstance", "TerminateInstance", _TEST_ID),
    ],
    "DISTRIBUTION": [
        ("DistributeImage", "DistributeImage", {"region.$": "$.parameters.region"}),
    ],
}  # fmt: skip


def _generic_workflow(name: str, type_: str, description: str, parameters: list[Any]) -> str:
    doc: dict[str, Any] = {"name": name, "description": description, "schemaVersion": 1.0}
    declared = [{k: str(v) for k, v in p.items()} | {"type": str(p.get("type", "string"))} for p in parameters]
    if type_ == "DISTRIBUTION" and not any(p["name"] == "region" for p in declared):
        declared.append({"name": "region", "type": "string", "default": "us-east-1"})
    if declared:
        doc["parameters"] = declared
    doc["steps"] = [
        {"name": step, "action": action, "onFailure": "Abort", "inputs": dict(inputs)}
        for step, action, inputs in _WORKFLOW_STEPS[type_]
    ]
    return _dump(doc)


def _entry(kind: str, raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise _fail(where, "an entry must be a mapping")
    name = raw.get("name")
    if isinstance(name, str):
        where = f"{where} '{name}'"
    unknown = sorted(set(raw) - _FIELDS[kind])
    if unknown:
        raise _fail(where, f"unknown fields {unknown}; {kind} entries take {sorted(_FIELDS[kind])}")
    missing = [k for k in _REQUIRED[kind] if k not in raw]
    if missing:
        raise _fail(where, f"missing required fields {missing}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(where, f"bad name {name!r}: lower case letters, digits, '-' and '_'")
    owner = raw.get("owner", OWNER)
    if owner not in OWNERS:
        raise _fail(where, f"bad owner {owner!r}: use one of {', '.join(OWNERS)}")
    account = raw.get("account", OWNERS[owner])
    if owner == OWNER and account != ACCOUNT:
        raise _fail(where, "Amazon entries always have the ARN account 'aws'")
    if not isinstance(account, str) or not _NAME.match(account) or account.isdigit() and len(account) != 12:
        raise _fail(where, f"bad account {account!r}")
    regions = None
    if "regions" in raw:
        regions = frozenset(_string_list(raw["regions"], "regions", where))
        bad = sorted(r for r in regions if not _REGION.match(r))
        if bad:
            raise _fail(where, f"bad regions {bad}")
    versions = _parse_versions(raw["versions"], name, where)
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "'description' must be a string")
    fields: dict[str, Any] = {"description": description}
    if kind in ("components", "images"):
        platform = raw["platform"]
        if platform not in _PLATFORMS:
            raise _fail(where, f"bad platform {platform!r}: use one of {', '.join(_PLATFORMS)}")
        fields["platform"] = platform
    if kind == "images":
        if not isinstance(raw["osVersion"], str) or not raw["osVersion"]:
            raise _fail(where, "'osVersion' must be a string")
        image_type = raw.get("type", "AMI")
        if image_type not in ("AMI", "DOCKER"):
            raise _fail(where, f"bad type {image_type!r}: use AMI or DOCKER")
        fields.update(osVersion=raw["osVersion"], type=image_type)
    else:
        fields.update(_document_fields(kind, raw, name, fields.get("platform", ""), description, versions, where))
    if kind == "components":
        default_os = {"Windows": ["Microsoft Windows Server 2022"], "macOS": ["macOS 14"]}
        fields["supportedOsVersions"] = (
            _string_list(raw["supportedOsVersions"], "supportedOsVersions", where)
            if "supportedOsVersions" in raw
            else default_os.get(fields["platform"], ["Amazon Linux 2023"])
        )
    return Entry(kind, name, owner, account, versions, fields, regions, where)


def _document_fields(
    kind: str, raw: dict[str, Any], name: str, platform: str, description: str, versions: Any, where: str
) -> dict[str, Any]:
    """Document template, type and parameters of a component or workflow entry (read once, not per region)."""
    types = ("BUILD", "TEST") if kind == "components" else ("BUILD", "TEST", "DISTRIBUTION")
    declared_type = raw.get("type")
    if declared_type is not None and declared_type not in types:
        raise _fail(where, f"bad type {declared_type!r}: use one of {', '.join(types)}")
    if "document" in raw and "parameters" in raw:
        raise _fail(where, "give either 'document' (its parameters are read from it) or 'parameters', not both")
    if "document" in raw:
        template = raw["document"]
        if not isinstance(template, str):
            raise _fail(where, "'document' must be a string holding the YAML document")
        if len(template) > 16000:
            raise _fail(where, "'document' is longer than 16000 characters")
    elif kind == "components":
        params = _parameters(raw.get("parameters", []), where)
        template = _generic_component(name, platform, declared_type or "BUILD", description or name, params)
    else:
        params = _parameters(raw.get("parameters", []), where)
        template = _generic_workflow(name, str(declared_type), description or name, params)
    try:
        doc = yaml.load(template.replace(_VERSION_MARK, versions[0][0]), Loader=_Loader)  # noqa: S506 - safe loader
    except yaml.YAMLError as exc:
        raise _fail(where, f"'document' is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or str(doc.get("schemaVersion")) != "1.0":
        raise _fail(where, "'document' must be a YAML mapping with schemaVersion 1.0")
    try:
        if kind == "components":
            type_ = component_type(doc)
            parameters = component_parameters(doc)
        else:
            if not isinstance(doc.get("steps"), list) or not doc["steps"]:
                raise _fail(where, "a workflow document needs a list of 'steps'")
            type_ = str(declared_type)
            parameters = workflow_parameters(doc)
    except SandboxError as exc:
        raise _fail(where, str(exc).split(" is not valid. ", 1)[-1]) from None
    if declared_type is not None and declared_type != type_:
        raise _fail(where, f"'type' is {declared_type} but the document makes it {type_}")
    return {"template": template, "type": type_, "parameters": parameters}


def _line_of(node: yaml.Node | None, path: str) -> str:
    if node is None:
        return path
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def parse(text: str, source: str) -> list[Entry]:
    """Entries of one catalog file (YAML or JSON): ``{components: [...], images: [...], workflows: [...]}``.

    Raises ValueError naming the file, the entry's line and column, its kind, index and name.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or exc
        raise ValueError(f"{at}: not valid YAML or JSON: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{_line_of(root, source)}: a catalog file is a mapping of components, images, workflows")
    unknown = sorted(str(k) for k in set(data) - set(KINDS))
    if unknown:
        raise ValueError(f"{_line_of(root, source)}: unknown sections {unknown}; use {', '.join(KINDS)}")
    nodes = {key.value: value for key, value in root.value} if isinstance(root, yaml.MappingNode) else {}
    entries = []
    for kind in KINDS:
        items = data.get(kind) or []
        if not isinstance(items, list):
            raise ValueError(f"{_line_of(nodes.get(kind), source)}: '{kind}' must be a list of entries")
        seq = nodes.get(kind)
        item_nodes = seq.value if isinstance(seq, yaml.SequenceNode) else []
        for i, raw in enumerate(items):
            node = item_nodes[i] if i < len(item_nodes) else None
            entries.append(_entry(kind, raw, f"{_line_of(node, source)}: {kind}[{i}]"))
    return entries


def load_file(path: str) -> list[Entry]:
    """Entries of a ``--catalog`` file; ValueError (naming the file) when it is missing or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"catalog file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"catalog file {path}: cannot be read: {exc}") from None
    return parse(text, path)


@functools.cache
def _builtin() -> tuple[Entry, ...]:
    text = resources.files("imagesync.sandbox").joinpath("catalog_data", _BUILTIN).read_text(encoding="utf-8")
    # The built-in file is trusted and large: read it once, without per-entry line marks.
    data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader
    return tuple(_entry(kind, raw, f"{_BUILTIN}: {kind}[{i}]") for kind in KINDS for i, raw in enumerate(data[kind]))


# --- expansion per region --------------------------------------------------------------------


def _arn(region: str, account: str, type_path: str, name: str, version: str) -> str:
    return f"arn:{partition(region)}:imagebuilder:{region}:{account}:{type_path}/{name}/{version}/{BUILD_NUMBER}"


def _type_path(entry: Entry) -> str:
    if entry.kind == "workflows":
        return f"workflow/{entry.fields['type'].lower()}"
    return ARN_TYPES[entry.kind]


def _image_id(name: str, version: str, region: str) -> str:
    return hashlib.sha256(f"{name}|{version}|{region}".encode()).hexdigest()


def _records(entry: Entry, region: str) -> list[Record]:
    f = entry.fields
    out: list[Record] = []
    for version, date in entry.versions:
        arn = _arn(region, entry.account, _type_path(entry), entry.name, version)
        if entry.kind == "components":
            record: Record = {
                "arn": arn,
                "name": entry.name,
                "version": version,
                "description": f["description"],
                "type": f["type"],
                "platform": f["platform"],
                "supportedOsVersions": list(f["supportedOsVersions"]),
                "state": {"status": "ACTIVE"},
            }
            if f["parameters"]:
                record["parameters"] = copy.deepcopy(f["parameters"])
            record.update(
                owner=entry.owner,
                data=f["template"].replace(_VERSION_MARK, version),
                encrypted=True,
                dateCreated=date,
                tags={},
            )
        elif entry.kind == "workflows":
            record = {
                "arn": arn,
                "name": entry.name,
                "version": version,
                "description": f["description"],
                "type": f["type"],
                "state": {"status": "ACTIVE"},
                "owner": entry.owner,
                "data": f["template"].replace(_VERSION_MARK, version),
                "dateCreated": date,
                "tags": {},
            }
            if f["parameters"]:
                record["parameters"] = copy.deepcopy(f["parameters"])
        else:
            digest = _image_id(entry.name, version, region)
            if f["type"] == "AMI":
                outputs: Record = {
                    "amis": [
                        {
                            "region": region,
                            "image": f"ami-{digest[:17]}",
                            "name": f"{entry.name} {version}",
                            "description": f["description"] or entry.name,
                        }
                    ]
                }
            else:
                host = f"{digest[:12]}.dkr.ecr.{region}.amazonaws.com"
                outputs = {"containers": [{"region": region, "imageUris": [f"{host}/{entry.name}:{version}"]}]}
            record = {
                "arn": arn,
                "type": f["type"],
                "name": entry.name,
                "version": f"{version}/{BUILD_NUMBER}",
                "platform": f["platform"],
                "osVersion": f["osVersion"],
                "state": {"status": "AVAILABLE"},
                "dateCreated": date,
                "outputResources": outputs,
                "tags": {},
                "buildType": "SCHEDULED",
                "imageSource": "AMAZON_MANAGED" if entry.owner == OWNER else "AWS_MARKETPLACE",
            }
        out.append(record)
    return out


@dataclass
class _Regional:
    """One region's catalog: records per kind and owner (listing order), and per ARN family."""

    listed: dict[tuple[str, str], list[Record]] = field(default_factory=dict)
    families: dict[str, list[Record]] = field(default_factory=dict)


class Catalog:
    """The built-in entries plus ``--catalog`` files, expanded lazily once per region."""

    def __init__(self, files: tuple[str, ...] = ()) -> None:
        merged: dict[tuple[str, str, str], Entry] = {e.key: e for e in _builtin()}
        for path in files:
            for entry in load_file(path):
                # A later entry of the same kind, owner and name replaces an earlier one entirely.
                merged.pop(entry.key, None)
                merged[entry.key] = entry
        self.entries: tuple[Entry, ...] = tuple(merged.values())
        self.accounts = frozenset(e.account for e in self.entries) | {ACCOUNT}
        """ARN account segments the catalog answers for (``aws`` and the file entries' owners)."""
        self._regions: dict[str, _Regional] = {}
        self._lock = threading.Lock()

    def _region(self, region: str) -> _Regional:
        cached = self._regions.get(region)
        if cached is not None:
            return cached
        with self._lock:
            if region not in self._regions:
                regional = _Regional()
                for entry in sorted(self.entries, key=lambda e: (e.kind, e.owner, e.name)):
                    if entry.regions is not None and region not in entry.regions:
                        continue
                    records = _records(entry, region)
                    regional.listed.setdefault((entry.kind, entry.owner), []).extend(records)
                    base = records[0]["arn"].rsplit("/", 2)[0] + "/"
                    regional.families[base] = records
                self._regions[region] = regional
            return self._regions[region]

    def owned(self, region: str, collection: str, owner: str) -> list[Record]:
        """What ListX with this ownership filter shows in ``region`` (shared records: do not mutate)."""
        return self._region(region).listed.get((collection, owner), [])

    def family(self, region: str, base: str) -> list[Record]:
        """Every version of the family whose ARN starts with ``base`` (``arn:...:aws:component/NAME/``)."""
        return self._region(region).families.get(base, [])


@functools.cache
def default() -> Catalog:
    """The built-in catalog, shared by every backend that has no ``--catalog`` files."""
    return Catalog()


def for_files(files: tuple[str, ...]) -> Catalog:
    """The catalog a backend with these ``--catalog`` files uses (the shared default when there are none)."""
    return Catalog(tuple(files)) if files else default()


def components(region: str) -> list[Record]:
    """Every built-in AWS-managed component build version in ``region`` (a deep copy), by name then version."""
    return copy.deepcopy(default().owned(region, "components", OWNER))


def images(region: str) -> list[Record]:
    """Every built-in AWS-managed image build version in ``region`` (a deep copy), by name then version."""
    return copy.deepcopy(default().owned(region, "images", OWNER))


def workflows(region: str) -> list[Record]:
    """Every built-in AWS-managed workflow build version in ``region`` (a deep copy), by name then version."""
    return copy.deepcopy(default().owned(region, "workflows", OWNER))

