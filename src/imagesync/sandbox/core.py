"""The core of the emulated Image Builder: ARNs, versions, pagination, and the shared lookups.

`Core` dispatches operations to the `op_*` handlers its subclasses define (`backend.Backend` and
the operation families in their own modules) and answers `clientToken` idempotency for all of
them. It also holds what every handler needs: resolving an ARN (exact, build or wildcard) against
the caller's resources and the Amazon catalog, finding what references a resource, and deleting.

Where the service's behaviour is undocumented the sandbox picks one reading and says so here:
- a reference (component ARN in a recipe, recipe/configuration/workflow ARN in a pipeline) pins
  whatever it resolves to at delete time; wildcards resolve to the newest match;
- component and workflow builds compare "content" as everything the resource stores except tags
  and changeDescription;
- a wildcard recipe version increments the first wildcard node above the newest version with the
  same fixed prefix (no such version: the wildcards become 0);
- a self-owned image ARN with wildcards is a valid parent image once a recipe of that name exists,
  even before its first build, so layered recipes can be created in one pass.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json
import math
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from imagesync.sandbox import catalog, sharing
from imagesync.sandbox.clock import Clock
from imagesync.sandbox.errors import SandboxError, not_implemented
from imagesync.sandbox.index import Table
from imagesync.sandbox.model import service_model
from imagesync.sandbox.store import TOUCHED
from imagesync.service_model import region_partition

ACCOUNT = "123456789012"
MAX_NODE = 1073741823
MAX_RESULTS = 25
MAX_COMPONENTS_PER_RECIPE = 20

Record = dict[str, Any]
Params = dict[str, Any]


def iso(moment: dt.datetime) -> str:
    """The service's timestamp form: ISO 8601 in UTC with milliseconds and a Z."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def arn_name(name: str) -> str:
    """The ARN segment of a resource name: lower case, spaces and underscores as hyphens."""
    return re.sub(r"[ _]", "-", name.lower())


def partition(region: str) -> str:
    """The ARN partition of a region, from botocore's endpoint data (requests signed for a region
    of no partition are refused before they get here)."""
    return region_partition(region) or "aws"


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# --- versions -------------------------------------------------------------------------------

Version = tuple[int, int, int]


def parse_version(text: str, *, wildcards: bool = False, member: str = "semanticVersion") -> list[int | None]:
    """Parse `x.y.z` (numbers, or `x` where allowed, right-aligned) within the service limits."""
    nodes = text.split(".")
    parsed: list[int | None] = []
    seen_wildcard = False
    for node in nodes:
        if node == "x" and wildcards:
            seen_wildcard = True
            parsed.append(None)
        elif node.isdigit() and not seen_wildcard:
            value = int(node)
            if value > MAX_NODE:
                raise SandboxError(
                    "InvalidVersionNumberException",
                    f"The value supplied for parameter '{member}' is not valid. Each node of a "
                    f"semantic version must be at most {MAX_NODE}, got '{text}'.",
                )
            parsed.append(value)
        else:
            raise SandboxError(
                "InvalidVersionNumberException",
                f"The value supplied for parameter '{member}' is not valid. '{text}' is not a valid "
                "semantic version: use <major>.<minor>.<patch>"
                + (", where wildcards ('x') may only stand to the right of numbers." if wildcards else "."),
            )
    if len(parsed) != 3:
        raise SandboxError(
            "InvalidVersionNumberException",
            f"The value supplied for parameter '{member}' is not valid. '{text}' must have three nodes.",
        )
    return parsed


def version_key(text: str) -> Version:
    major, minor, patch = (int(n) for n in text.split("/")[0].split("."))
    return (major, minor, patch)


def matches(pattern: list[int | None], version: Version) -> bool:
    return all(p is None or p == v for p, v in zip(pattern, version, strict=True))


def latest_references(base: str, version: str) -> dict[str, str]:
    """`latestVersionReferences` for a versioned resource whose ARN without version is `base`."""
    major, minor, patch = version.split("/")[0].split(".")
    return {
        "latestVersionArn": f"{base}/x.x.x",
        "latestMajorVersionArn": f"{base}/{major}.x.x",
        "latestMinorVersionArn": f"{base}/{major}.{minor}.x",
        "latestPatchVersionArn": f"{base}/{major}.{minor}.{patch}",
    }


# ARN anatomy: prefix, resource path, optional version and build.
ARN_RE = re.compile(
    r"^arn:(?P<partition>aws[^:]*):imagebuilder:(?P<region>[^:]+):(?P<account>[^:]+):"
    r"(?P<type>[a-z-]+(?:/(?:build|test|distribution))?)/(?P<name>[a-z0-9-_]+)"
    r"(?:/(?P<version>(?:[0-9]+|x)\.(?:[0-9]+|x)\.(?:[0-9]+|x))(?:/(?P<build>[0-9]+))?)?$"
)


@dataclass(frozen=True)
class ParsedArn:
    region: str
    account: str
    type: str
    name: str
    version: str | None
    build: int | None
    partition: str = "aws"

    @property
    def base(self) -> str:
        return f"arn:{partition(self.region)}:imagebuilder:{self.region}:{self.account}:{self.type}/{self.name}"


def parse_arn(arn: str, member: str) -> ParsedArn:
    match = ARN_RE.match(arn)
    if not match:
        raise SandboxError(
            "InvalidParameterValueException",
            f"The value supplied for parameter '{member}' is not valid. '{arn}' is not an Image Builder ARN.",
        )
    build = match["build"]
    return ParsedArn(
        match["region"],
        match["account"],
        match["type"],
        match["name"],
        match["version"],
        int(build) if build else None,
        match["partition"],
    )


# --- pagination -----------------------------------------------------------------------------

_TOKEN_SALT = "imagesync-sandbox"


def _encode_token(operation: str, offset: int) -> str:
    check = zlib.crc32(f"{_TOKEN_SALT}:{operation}:{offset}".encode())
    raw = json.dumps([operation, offset, check]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(operation: str, token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        op, offset, check = json.loads(raw)
        valid = op == operation and isinstance(offset, int) and offset >= 0
        valid = valid and check == zlib.crc32(f"{_TOKEN_SALT}:{operation}:{offset}".encode())
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise SandboxError("InvalidPaginationTokenException", "The nextToken is not valid for this request.")
    return offset


def paginate(
    operation: str,
    params: Params,
    items: list[Record],
    filters: dict[str, Callable[[Record], Any]] | None = None,
    row: Callable[[Record], Record] | None = None,
) -> tuple[list[Record], str | None]:
    """Slice a page, then filter it: like the service, pages may be short while nextToken goes on.

    `row` turns an item into what the operation returns; it is applied to the page alone, so a
    page of a long list costs the page.
    """
    size = params.get("maxResults") or MAX_RESULTS
    token = params.get("nextToken")
    offset = _decode_token(operation, token) if token else 0
    page = items[offset : offset + size]
    if row is not None:
        page = [row(item) for item in page]
    for flt in params.get("filters") or []:
        if "name" not in flt or "values" not in flt:
            raise SandboxError(
                "InvalidParameterValueException",
                "The value supplied for parameter 'filters' is not valid. Each filter needs a 'name' and 'values'.",
            )
        getter = (filters or {}).get(flt["name"])
        if getter is None:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'filters' is not valid. '{flt['name']}' is not a "
                f"supported filter name; supported: {', '.join(sorted(filters or {})) or 'none'}.",
            )
        wanted = set(flt["values"])
        page = [item for item in page if _filter_hit(getter(item), wanted)]
    next_offset = offset + size
    return page, (_encode_token(operation, next_offset) if next_offset < len(items) else None)


def _filter_hit(value: Any, wanted: set[str]) -> bool:
    if isinstance(value, list):
        return any(str(v) in wanted for v in value)
    return value is not None and str(value) in wanted


# --- the service ----------------------------------------------------------------------------

RESOURCE_COLLECTIONS = (
    "components",
    "workflows",
    "imageRecipes",
    "containerRecipes",
    "infrastructureConfigurations",
    "distributionConfigurations",
    "imagePipelines",
    "lifecyclePolicies",
    "images",
)

# Labels the service uses in messages such as "The following resource 'ImageRecipe' already exists".
LABELS = {
    "components": "Component",
    "workflows": "Workflow",
    "imageRecipes": "ImageRecipe",
    "containerRecipes": "ContainerRecipe",
    "infrastructureConfigurations": "InfrastructureConfiguration",
    "distributionConfigurations": "DistributionConfiguration",
    "imagePipelines": "ImagePipeline",
    "lifecyclePolicies": "LifecyclePolicy",
    "images": "Image",
}

ARN_TYPES = {
    "components": "component",
    "imageRecipes": "image-recipe",
    "containerRecipes": "container-recipe",
    "infrastructureConfigurations": "infrastructure-configuration",
    "distributionConfigurations": "distribution-configuration",
    "imagePipelines": "image-pipeline",
    "lifecyclePolicies": "lifecycle-policy",
    "images": "image",
}


@dataclass(frozen=True)
class Settings:
    """How the sandbox behaves beyond the API contract: build timing, failures, extra catalog entries."""

    build_minutes: float = 30.0
    """Simulated minutes from a build's start to AVAILABLE."""
    clock_speed: float = 60.0
    """Simulated seconds per real second; 0 freezes the clock (move it with POST /_sandbox/clock)."""
    build_failure_rate: float = 0.0
    """Fraction of builds that end FAILED."""
    seed: int | None = None
    """Seed that makes build failures repeatable."""
    catalog_files: tuple[str, ...] = ()
    """YAML/JSON files that add to or override the Amazon-owned catalog."""
    s3_endpoint: str | None = None
    """S3 endpoint (a moto server, say) that `uri` documents are read from; None: not read."""

    def __post_init__(self) -> None:
        if not math.isfinite(self.build_minutes) or self.build_minutes < 0:
            raise ValueError(f"build-minutes must be a non-negative number, got {self.build_minutes}")
        if not math.isfinite(self.clock_speed) or self.clock_speed < 0:
            raise ValueError(f"clock-speed must be a non-negative number, got {self.clock_speed}")
        if not 0.0 <= self.build_failure_rate <= 1.0:
            raise ValueError(f"build-failure-rate must be between 0 and 1, got {self.build_failure_rate}")


class Request:
    """One call: the state, the caller's region and account, and the validated parameters."""

    def __init__(self, state: dict[str, Any], region: str, operation: str, params: Params, account: str) -> None:
        self.state = state
        self.region = region
        self.operation = operation
        self.params = params
        self.account = account
        self.now = dt.datetime.now(dt.UTC)
        """Simulated time of this call (the sandbox clock), set by `Core.handle`."""

    def timestamp(self) -> str:
        """This call's simulated time in the service's timestamp form."""
        return iso(self.now)

    def arn(self, collection: str, name: str, *rest: str) -> str:
        tail = "/".join((arn_name(name), *rest))
        return f"{self.prefix}{ARN_TYPES[collection]}/{tail}"

    @property
    def prefix(self) -> str:
        """`arn:PARTITION:imagebuilder:REGION:ACCOUNT:` of the caller's own resources."""
        return f"arn:{partition(self.region)}:imagebuilder:{self.region}:{self.account}:"

    def table(self, collection: str) -> Table:
        resources = self.state["resources"]
        table = resources.get(collection)
        if not isinstance(table, Table):  # a table read from a state file, or a new one
            table = resources[collection] = Table(table or {})
        return table

    def own(self, collection: str) -> list[Record]:
        return self.table(collection).scope(self.prefix)


TICK_STEP = dt.timedelta(days=1)
MAX_TICK_STEPS = 400


class Core:
    """Dispatches operations to the `op_*` handlers of subclasses; answers `clientToken` idempotency."""

    def __init__(self, versioning: str = "auto", account: str = ACCOUNT, settings: Settings | None = None) -> None:
        if versioning not in ("auto", "legacy"):
            raise ValueError(f"versioning must be 'auto' or 'legacy', got {versioning!r}")
        self.versioning = versioning
        self.settings = settings or Settings()
        self.clock = Clock(self.settings.clock_speed)
        # Resources the caller does not own (AWS-managed, third-party, Marketplace): the built-in
        # catalog plus --catalog files, read once here so a bad file fails at startup.
        self.catalog = catalog.for_files(self.settings.catalog_files)
        # `tick_*` methods bring time-driven state (builds, schedules, lifecycle rules) up to the
        # clock before every call, in name order, so what a call sees is what that time implies.
        # A tick may return the time (epoch seconds) before which it has nothing to do; it is not
        # run again before then unless the state changes under it (a write, another tick's work, a
        # state file read afresh). Scanning every pipeline on every call made reads quadratic.
        self.ticks = [getattr(self, attr) for attr in sorted(dir(self)) if attr.startswith("tick_")]
        self._quiet: dict[str, float] = {}
        self._quiet_for: object | None = None  # the state the marks were taken on
        self._wrote = False  # the last call was a write: the marks may be stale
        self.account = account
        self.handlers: dict[str, Callable[[Request], Record]] = {}
        for attr in dir(self):
            if attr.startswith("op_"):
                self.handlers[_camel(attr[3:])] = getattr(self, attr)
        unknown = set(self.handlers) - set(service_model().operation_names)
        if unknown:
            raise RuntimeError(f"handlers for operations the model does not define: {sorted(unknown)}")

    def _catch_up(self, req: Request, now: dt.datetime) -> None:
        """Run the `tick_*` hooks up to `now`, a day at a time when the clock jumped further.

        Each hook catches up on its own (builds, schedule fires, daily lifecycle runs), but one
        jump would run all of one hook's work before any of the next's; stepping by days keeps a
        lifecycle run from judging images that schedules had not built yet, so moving the clock six
        days at once ends where moving it a day at a time does. Past `MAX_TICK_STEPS` days the rest
        is one step.
        """
        last = req.state.get("ticked")
        if isinstance(last, int | float) and math.isfinite(last):
            moment = dt.datetime.fromtimestamp(last, dt.UTC)
            for _ in range(MAX_TICK_STEPS):
                moment += TICK_STEP
                if moment >= now:
                    break
                req.now = moment
                self._tick(req)
        req.now = now
        self._tick(req)
        if req.state.get("ticked") != now.timestamp():
            req.state["ticked"] = now.timestamp()

    def _tick(self, req: Request) -> None:
        moment = req.now.timestamp()
        for tick in self.ticks:
            name = tick.__name__
            if moment < self._quiet.get(name, -math.inf):
                continue
            touched = req.state.pop(TOUCHED, False)
            quiet = tick(req)
            if req.state.get(TOUCHED):
                self._quiet.clear()  # it changed something: every tick looks again
            if touched:
                req.state[TOUCHED] = True
            if quiet is not None:
                self._quiet[name] = quiet

    def supports(self, operation: str) -> bool:
        return operation in self.handlers

    def handle(
        self, state: dict[str, Any], region: str, operation: str, params: Params, account: str | None = None
    ) -> Record:
        handler = self.handlers.get(operation)
        if handler is None:
            raise not_implemented(operation)
        req = Request(state, region, operation, params, account or self.account)
        now = self.clock.now(state)
        if state is not self._quiet_for or self._wrote:
            self._quiet, self._quiet_for = {}, state
        self._wrote = not operation.startswith(("Get", "List"))
        self._catch_up(req, now)
        req.now = now
        token = params.get("clientToken")
        if token is None:
            return handler(req)
        key = f"{req.account}|{region}|{operation}|{token}"
        request_digest = digest({k: v for k, v in params.items() if k != "clientToken"})
        seen = state["tokens"].get(key)
        if seen is not None:
            if seen["digest"] != request_digest:
                raise SandboxError(
                    "IdempotentParameterMismatchException",
                    f"The client token '{token}' was used before with different parameters.",
                )
            return copy.deepcopy(seen["response"])
        result = handler(req)
        result.setdefault("clientToken", token)
        state["tokens"][key] = {"digest": request_digest, "response": copy.deepcopy(result)}
        return result

    # --- shared lookups -----------------------------------------------------------------------

    def _own_record(self, req: Request, collection: str, arn: str) -> Record | None:
        """The caller's own resource `arn` names; resources are regional and per account, so
        another region's or account's ARN names none (even though the table holds them all)."""
        return req.table(collection).get(arn) if arn.startswith(req.prefix) else None

    def _get(self, req: Request, collection: str, arn: str) -> Record:
        record = self._own_record(req, collection, arn)
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        return record

    def _versions(
        self, req: Request, collection: str, region: str, account: str, name: str, type_: str
    ) -> list[Record]:
        """Every version (and build) of one versioned resource family, own or the catalog's."""
        base = f"arn:{partition(region)}:imagebuilder:{region}:{account}:{type_}/{name}"
        if account in self.catalog.accounts:
            return self.catalog.family(region, base + "/")
        return req.table(collection).family(base)

    def _visible_versions(self, req: Request, collection: str, ref: ParsedArn) -> list[Record]:
        """`_versions` as the caller may see them: its own region, and another account's resource
        only where its owner's policy shares it."""
        if ref.region != req.region or ref.partition != partition(req.region):
            return []  # another region's resource, or an ARN whose partition is not its region's
        family = self._versions(req, collection, ref.region, ref.account, ref.name, ref.type)
        if ref.account != req.account and ref.account not in self.catalog.accounts:
            family = [r for r in family if sharing.granted(req.state, collection, r["arn"], req.account, sharing.GET)]
        return family

    def _resolve(self, req: Request, collection: str, arn: str, member: str) -> Record | None:
        """The newest record an ARN names: exact build, latest build of a version, or a wildcard."""
        ref = parse_arn(arn, member)
        if ref.version is not None and ref.build is None and self._own_family(req, ref):
            # The caller's own family: the newest match by bisection instead of a scan.
            return req.table(collection).newest(ref.base, parse_version(ref.version, wildcards=True, member=member))
        family = self._visible_versions(req, collection, ref)
        if ref.version is None:
            return family[0] if family and family[0]["arn"] == arn else None
        pattern = parse_version(ref.version, wildcards=True, member=member)
        candidates = [
            r
            for r in family
            if matches(pattern, version_key(r["version"])) and (ref.build is None or build_of(r) == ref.build)
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (version_key(r["version"]), build_of(r)))

    def _own_family(self, req: Request, ref: ParsedArn) -> bool:
        """Whether `ref` names a family of the caller's own, which `_visible_versions` shows whole."""
        return (
            ref.account == req.account
            and ref.account not in self.catalog.accounts
            and ref.region == req.region
            and ref.partition == partition(req.region)
        )

    def _family_builds(self, req: Request, collection: str, version_arn: str, member: str) -> list[Record]:
        """The builds of one version, oldest first (a List of one version's builds)."""
        ref = parse_arn(version_arn, member)
        if self._own_family(req, ref):
            return sorted(req.table(collection).builds(version_arn), key=build_of)
        family = self._visible_versions(req, collection, ref)
        return sorted((r for r in family if version_arn_of(r["arn"]) == version_arn), key=build_of)

    def _must_resolve(self, req: Request, collection: str, arn: str, member: str) -> Record:
        record = self._resolve(req, collection, arn, member)
        if record is None:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter '{member}' is not valid. The resource '{arn}' does not exist.",
            )
        return record

    def _referrers(self, req: Request, collection: str, arn: str) -> list[str]:
        """ARNs of the resources whose references resolve to `arn` (what blocks its deletion)."""
        found = []
        if collection == "components":
            for table in ("imageRecipes", "containerRecipes"):
                for recipe in req.own(table):
                    for comp in recipe.get("components") or []:
                        hit = self._resolve_quiet(req, "components", comp["componentArn"])
                        if hit is not None and hit["arn"] == arn:
                            found.append(recipe["arn"])
        elif collection in ("imageRecipes", "containerRecipes"):
            field = "imageRecipeArn" if collection == "imageRecipes" else "containerRecipeArn"
            for pipe in req.own("imagePipelines"):
                ref = pipe.get(field)
                if ref and (ref == arn or (self._resolve_quiet(req, collection, ref) or {}).get("arn") == arn):
                    found.append(pipe["arn"])
        elif collection in ("infrastructureConfigurations", "distributionConfigurations"):
            field = (
                "infrastructureConfigurationArn" if collection.startswith("infra") else "distributionConfigurationArn"
            )
            found = [p["arn"] for p in req.own("imagePipelines") if p.get(field) == arn]
        elif collection == "workflows":
            for pipe in req.own("imagePipelines"):
                for wf in pipe.get("workflows") or []:
                    hit = self._resolve_quiet(req, "workflows", wf["workflowArn"])
                    if hit is not None and hit["arn"] == arn:
                        found.append(pipe["arn"])
        return found

    def _check_build_inputs(self, req: Request) -> Record:
        """What a pipeline or CreateImage builds from, checked: exactly one recipe (returned), and
        the caller's own configurations and workflows."""
        p = req.params
        image_recipe, container_recipe = p.get("imageRecipeArn"), p.get("containerRecipeArn")
        if (image_recipe is None) == (container_recipe is None):
            raise SandboxError(
                "InvalidParameterCombinationException" if image_recipe else "InvalidRequestException",
                "You must specify exactly one recipe for your image, using either a containerRecipeArn "
                "or an imageRecipeArn.",
            )
        if image_recipe is not None:
            recipe = self._must_resolve(req, "imageRecipes", image_recipe, "imageRecipeArn")
        else:
            assert container_recipe is not None  # exactly one of the two, checked above
            recipe = self._must_resolve(req, "containerRecipes", container_recipe, "containerRecipeArn")
        for member, collection in (
            ("infrastructureConfigurationArn", "infrastructureConfigurations"),
            ("distributionConfigurationArn", "distributionConfigurations"),
        ):
            if p.get(member) is not None and self._own_record(req, collection, p[member]) is None:
                raise SandboxError(
                    "InvalidParameterValueException",
                    f"The value supplied for parameter '{member}' is not valid. "
                    f"The resource '{p[member]}' does not exist.",
                )
        for i, wf in enumerate(p.get("workflows") or []):
            self._must_resolve(req, "workflows", wf["workflowArn"], f"workflows[{i}].workflowArn")
        return recipe

    def _resolve_quiet(self, req: Request, collection: str, arn: str) -> Record | None:
        try:
            return self._resolve(req, collection, arn, "arn")
        except SandboxError:
            return None

    def _delete(self, req: Request, collection: str, arn: str) -> None:
        self._get(req, collection, arn)
        users = self._referrers(req, collection, arn)
        if users:
            raise SandboxError(
                "ResourceDependencyException",
                f"Resource dependency error: The resource ARN '{arn}' has other resources depended on it: "
                + ", ".join(sorted(set(users)))
                + ".",
            )
        del req.table(collection)[arn]
        req.state["policies"].pop(arn, None)

    def _ensure_new(self, req: Request, collection: str, arn: str) -> None:
        if arn in req.table(collection):
            raise SandboxError(
                "ResourceAlreadyExistsException",
                f"The following resource '{LABELS[collection]}' already exists: '{arn}'.",
            )

    def _listing(
        self,
        req: Request,
        collection: str,
        owner: str | None,
        key: Any,
        make: Callable[[list[Record]], list[Record]],
    ) -> list[Record]:
        """`make` of what `_owned_list` gives; for the caller's own resources it is computed once per
        change of the table, so each page of a List costs the page, not a sort of the table."""
        if (owner or "Self") == "Self":
            return req.table(collection).view((key, req.prefix), lambda: make(req.own(collection)))
        return make(self._owned_list(req, collection, owner))

    def _owned_list(self, req: Request, collection: str, owner: str | None) -> list[Record]:
        owner = owner or "Self"
        if owner == "Self":
            return req.own(collection)
        if owner == "Shared":
            return sharing.shared_with(req.state, collection, req.region, req.account)
        if owner in catalog.OWNERS:  # Amazon, ThirdParty, AWSMarketplace
            rows = self.catalog.owned(req.region, collection, owner)
            # The Image shape has no owner member; ListImages rows (ImageVersion) do.
            return [dict(r, owner=owner) for r in rows] if collection == "images" else list(rows)
        return []


# --- helpers ----------------------------------------------------------------------------------


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def build_of(record: Record) -> int:
    """The build number of a component, workflow or image ARN (0 for recipes, which have none)."""
    last = record["arn"].rsplit("/", 1)[1]
    return int(last) if last.isdigit() else 0


def version_arn_of(build_arn: str) -> str:
    return build_arn.rsplit("/", 1)[0]


def by_name_and_version(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r["name"], version_key(r["version"]) if "version" in r else (0, 0, 0)))


def latest_per_version(records: Iterable[Record]) -> list[Record]:
    """One row per name and x.y.z: its newest build, ordered by name then version."""
    newest: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r["name"], r["version"].split("/")[0])
        if key not in newest or build_of(r) > build_of(newest[key]):
            newest[key] = r
    return by_name_and_version(newest.values())


def latest_per_name(records: list[Record]) -> list[Record]:
    newest: dict[str, Record] = {}
    for r in records:
        if r["name"] not in newest or version_key(r["version"]) > version_key(newest[r["name"]]["version"]):
            newest[r["name"]] = r
    return by_name_and_version(newest.values())
