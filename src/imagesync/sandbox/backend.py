"""The emulated Image Builder service: what each operation does to the sandbox state.

Called by the HTTP server with a validated parameter dict, inside one store transaction. Every
handler checks all it needs before it mutates anything, so an error never leaves a half-applied
write. Results are plain dicts in the API's output shapes; the protocol layer drops anything the
output shape does not define.

Behaviour follows `shared/reference/imagebuilder-api-semantics.md`. Where the service's behaviour
is undocumented the sandbox picks one reading and says so here:
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
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from imagesync.sandbox import catalog
from imagesync.sandbox.documents import (
    component_parameters,
    component_type,
    parse_document,
    workflow_parameters,
)
from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.model import service_model

ACCOUNT = "123456789012"
MAX_NODE = 1073741823
MAX_RESULTS = 25
MAX_COMPONENTS_PER_RECIPE = 20

Record = dict[str, Any]
Params = dict[str, Any]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def arn_name(name: str) -> str:
    """The ARN segment of a resource name: lower case, spaces and underscores as hyphens."""
    return re.sub(r"[ _]", "-", name.lower())


def partition(region: str) -> str:
    """The ARN partition of a region: aws-cn for China, aws-us-gov for GovCloud, else aws."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


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
        match["region"], match["account"], match["type"], match["name"], match["version"], int(build) if build else None
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
) -> tuple[list[Record], str | None]:
    """Slice a page, then filter it: like the service, pages may be short while nextToken goes on."""
    size = params.get("maxResults") or MAX_RESULTS
    token = params.get("nextToken")
    offset = _decode_token(operation, token) if token else 0
    page = items[offset : offset + size]
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


class Request:
    """One call: the state, the caller's region and account, and the validated parameters."""

    def __init__(self, state: dict[str, Any], region: str, operation: str, params: Params, account: str) -> None:
        self.state = state
        self.region = region
        self.operation = operation
        self.params = params
        self.account = account

    def arn(self, collection: str, name: str, *rest: str) -> str:
        tail = "/".join((arn_name(name), *rest))
        return f"{self.prefix}{ARN_TYPES[collection]}/{tail}"

    @property
    def prefix(self) -> str:
        """`arn:PARTITION:imagebuilder:REGION:ACCOUNT:` of the caller's own resources."""
        return f"arn:{partition(self.region)}:imagebuilder:{self.region}:{self.account}:"

    def table(self, collection: str) -> dict[str, Record]:
        return self.state["resources"].setdefault(collection, {})

    def own(self, collection: str) -> list[Record]:
        return [r for arn, r in self.table(collection).items() if arn.startswith(self.prefix)]


class Backend:
    """Dispatches operations to handlers; handles `clientToken` idempotency for all of them."""

    def __init__(self, versioning: str = "auto", account: str = ACCOUNT) -> None:
        if versioning not in ("auto", "legacy"):
            raise ValueError(f"versioning must be 'auto' or 'legacy', got {versioning!r}")
        self.versioning = versioning
        self.account = account
        self.handlers: dict[str, Callable[[Request], Record]] = {}
        for attr in dir(self):
            if attr.startswith("op_"):
                self.handlers[_camel(attr[3:])] = getattr(self, attr)
        unknown = set(self.handlers) - set(service_model().operation_names)
        if unknown:
            raise RuntimeError(f"handlers for operations the model does not define: {sorted(unknown)}")

    def supports(self, operation: str) -> bool:
        return operation in self.handlers

    def handle(
        self, state: dict[str, Any], region: str, operation: str, params: Params, account: str | None = None
    ) -> Record:
        handler = self.handlers.get(operation)
        if handler is None:
            raise SandboxError(
                "InvalidRequestException",
                f"The imagesync sandbox does not support the operation {operation}.",
            )
        req = Request(state, region, operation, params, account or self.account)
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

    def _get(self, req: Request, collection: str, arn: str) -> Record:
        # Resources are regional and per account: another region's or account's ARN is not found.
        record = req.table(collection).get(arn) if arn.startswith(req.prefix) else None
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        return record

    def _versions(
        self, req: Request, collection: str, region: str, account: str, name: str, type_: str
    ) -> list[Record]:
        """Every version (and build) of one versioned resource family, own or Amazon's."""
        if account == "aws":
            pool: Iterable[Record] = {
                "components": catalog.components,
                "images": catalog.images,
            }.get(collection, lambda _region: [])(region)
        else:
            pool = req.table(collection).values()
        base = f"arn:{partition(region)}:imagebuilder:{region}:{account}:{type_}/{name}/"
        return [r for r in pool if r["arn"].startswith(base)]

    def _resolve(self, req: Request, collection: str, arn: str, member: str) -> Record | None:
        """The newest record an ARN names: exact build, latest build of a version, or a wildcard."""
        ref = parse_arn(arn, member)
        if ref.region != req.region or (ref.account != "aws" and ref.account != req.account):
            return None
        family = self._versions(req, collection, ref.region, ref.account, ref.name, ref.type)
        if ref.version is None:
            return family[0] if family and family[0]["arn"] == arn else None
        pattern = parse_version(ref.version, wildcards=True, member=member)
        candidates = [
            r
            for r in family
            if matches(pattern, version_key(r["version"])) and (ref.build is None or _build_of(r) == ref.build)
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda r: (version_key(r["version"]), _build_of(r)))

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

    def _owned_list(self, req: Request, collection: str, owner: str | None) -> list[Record]:
        owner = owner or "Self"
        if owner == "Self":
            return req.own(collection)
        if owner == "Amazon":
            if collection == "images":
                return [dict(r, owner=catalog.OWNER) for r in catalog.images(req.region)]
            return catalog.components(req.region) if collection == "components" else []
        return []  # Shared, ThirdParty and AWSMarketplace hold nothing in the sandbox

    # --- components and workflows (versions with build numbers) -------------------------------

    def _create_built(self, req: Request, collection: str, type_path: str, record: Record, content: Record) -> Record:
        p = req.params
        parse_version(p["semanticVersion"])
        if p.get("data") is not None and p.get("uri") is not None:
            raise SandboxError(
                "InvalidParameterCombinationException",
                "You cannot specify both 'data' and 'uri'; specify exactly one.",
            )
        if p.get("data") is None and p.get("uri") is None:
            raise SandboxError("InvalidRequestException", "You must specify either 'data' or 'uri'.")
        if p.get("dryRun"):
            raise SandboxError(
                "DryRunOperationException", "The request would have succeeded, but the dryRun flag is set."
            )
        base = f"{req.prefix}{type_path}/{arn_name(p['name'])}"
        version_arn = f"{base}/{p['semanticVersion']}"
        builds = [r for r in req.table(collection).values() if r["arn"].startswith(version_arn + "/")]
        content_digest = digest(content)
        if builds:
            newest = max(builds, key=_build_of)
            if self.versioning == "legacy" or newest["_contentDigest"] == content_digest:
                raise SandboxError(
                    "ResourceAlreadyExistsException",
                    f"The following resource '{LABELS[collection]}' already exists: '{newest['arn']}'.",
                )
        build = max((_build_of(r) for r in builds), default=0) + 1
        arn = f"{version_arn}/{build}"
        record.update(
            arn=arn,
            name=p["name"],
            version=p["semanticVersion"],
            owner=req.account,
            dateCreated=now_iso(),
            tags=dict(p.get("tags") or {}),
            _contentDigest=content_digest,
        )
        req.table(collection)[arn] = record
        return {"arn": arn, "latestVersionReferences": latest_references(base, p["semanticVersion"])}

    def op_create_component(self, req: Request) -> Record:
        p = req.params
        content = {k: p.get(k) for k in ("data", "uri", "platform", "description", "supportedOsVersions", "kmsKeyId")}
        doc = parse_document(p.get("data"), "data") if p.get("data") is not None else None
        record: Record = {
            "description": p.get("description"),
            "changeDescription": p.get("changeDescription"),
            "type": component_type(doc) if doc is not None else "BUILD",
            "platform": p["platform"],
            "supportedOsVersions": p.get("supportedOsVersions"),
            "state": {"status": "ACTIVE"},
            "parameters": component_parameters(doc) if doc is not None else None,
            "data": p.get("data"),
            "_uri": p.get("uri"),
            "kmsKeyId": p.get("kmsKeyId"),
            "encrypted": True,
        }
        created = self._create_built(req, "components", "component", record, content)
        return {
            "componentBuildVersionArn": created["arn"],
            "latestVersionReferences": created["latestVersionReferences"],
        }

    def op_get_component(self, req: Request) -> Record:
        arn = req.params["componentBuildVersionArn"]
        record = self._resolve(req, "components", arn, "componentBuildVersionArn")
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 2)[0]
        return {"component": record, "latestVersionReferences": latest_references(base, record["version"])}

    def op_list_components(self, req: Request) -> Record:
        rows = _latest_per_version(self._owned_list(req, "components", req.params.get("owner")))
        if req.params.get("byName"):
            rows = _latest_per_name(rows)
        items = [dict(r, arn=_version_arn(r["arn"]), status=r["state"]["status"]) for r in rows]
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {
                "name": lambda r: r["name"],
                "platform": lambda r: r.get("platform"),
                "type": lambda r: r.get("type"),
                "version": lambda r: r["version"],
                "description": lambda r: r.get("description"),
                "supportedOsVersion": lambda r: r.get("supportedOsVersions"),
            },
        )
        return {"componentVersionList": page, "nextToken": token}

    def op_list_component_build_versions(self, req: Request) -> Record:
        version_arn = req.params["componentVersionArn"]
        pool = self._family_builds(req, "components", version_arn, "componentVersionArn")
        page, token = paginate(req.operation, req.params, pool)
        return {"componentSummaryList": page, "nextToken": token}

    def _family_builds(self, req: Request, collection: str, version_arn: str, member: str) -> list[Record]:
        ref = parse_arn(version_arn, member)
        family = self._versions(req, collection, ref.region, ref.account, ref.name, ref.type)
        return sorted((r for r in family if _version_arn(r["arn"]) == version_arn), key=_build_of)

    def op_delete_component(self, req: Request) -> Record:
        arn = req.params["componentBuildVersionArn"]
        self._delete(req, "components", arn)
        return {"componentBuildVersionArn": arn}

    def op_create_workflow(self, req: Request) -> Record:
        p = req.params
        content = {k: p.get(k) for k in ("data", "uri", "type", "description", "kmsKeyId")}
        doc = parse_document(p.get("data"), "data") if p.get("data") is not None else None
        if doc is not None and not isinstance(doc.get("steps"), list):
            raise SandboxError(
                "InvalidParameterValueException",
                "The value supplied for parameter 'data' is not valid. A workflow document needs a list of 'steps'.",
            )
        record: Record = {
            "description": p.get("description"),
            "changeDescription": p.get("changeDescription"),
            "type": p["type"],
            "state": {"status": "ACTIVE"},
            "data": p.get("data"),
            "_uri": p.get("uri"),
            "kmsKeyId": p.get("kmsKeyId"),
            "parameters": workflow_parameters(doc) if doc is not None else None,
        }
        type_path = f"workflow/{p['type'].lower()}"
        created = self._create_built(req, "workflows", type_path, record, content)
        return {
            "workflowBuildVersionArn": created["arn"],
            "latestVersionReferences": created["latestVersionReferences"],
        }

    def op_get_workflow(self, req: Request) -> Record:
        arn = req.params["workflowBuildVersionArn"]
        record = self._resolve(req, "workflows", arn, "workflowBuildVersionArn")
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 2)[0]
        return {"workflow": record, "latestVersionReferences": latest_references(base, record["version"])}

    def op_list_workflows(self, req: Request) -> Record:
        rows = _latest_per_version(self._owned_list(req, "workflows", req.params.get("owner")))
        if req.params.get("byName"):
            rows = _latest_per_name(rows)
        items = [dict(r, arn=_version_arn(r["arn"])) for r in rows]
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {
                "name": lambda r: r["name"],
                "type": lambda r: r["type"],
                "version": lambda r: r["version"],
            },
        )
        return {"workflowVersionList": page, "nextToken": token}

    def op_list_workflow_build_versions(self, req: Request) -> Record:
        pool = self._family_builds(req, "workflows", req.params["workflowVersionArn"], "workflowVersionArn")
        page, token = paginate(req.operation, req.params, pool)
        return {"workflowSummaryList": page, "nextToken": token}

    def op_delete_workflow(self, req: Request) -> Record:
        arn = req.params["workflowBuildVersionArn"]
        self._delete(req, "workflows", arn)
        return {"workflowBuildVersionArn": arn}

    # --- recipes (versions without build numbers) ---------------------------------------------

    def _recipe_version(self, req: Request, collection: str) -> tuple[str, str]:
        p = req.params
        pattern = parse_version(p["semanticVersion"], wildcards=True)
        base = req.arn(collection, p["name"])
        existing = [
            version_key(r["version"]) for r in req.table(collection).values() if r["arn"].startswith(base + "/")
        ]
        if None not in pattern:
            version = p["semanticVersion"]
            self._ensure_new(req, collection, f"{base}/{version}")
            return base, version
        first = pattern.index(None)
        same_prefix = [v for v in existing if list(v[:first]) == pattern[:first]]
        nodes = [n for n in pattern[:first] if n is not None]
        nodes.append(max((v[first] for v in same_prefix), default=-1) + 1)
        nodes.extend([0] * (3 - len(nodes)))
        if nodes[first] > MAX_NODE:
            raise SandboxError("InvalidVersionNumberException", f"No version above {p['semanticVersion']} is left.")
        return base, ".".join(str(n) for n in nodes)

    def _recipe_components(self, req: Request) -> list[Record]:
        comps = req.params.get("components") or []
        if len(comps) > MAX_COMPONENTS_PER_RECIPE:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'components' is not valid. A recipe can have at most "
                f"{MAX_COMPONENTS_PER_RECIPE} components, got {len(comps)}.",
            )
        for i, comp in enumerate(comps):
            self._must_resolve(req, "components", comp["componentArn"], f"components[{i}].componentArn")
        return copy.deepcopy(comps)

    def _parent(self, req: Request, parent: str) -> Record:
        """What a parent image reference resolves to: platform and OS version of the base."""
        if not parent.startswith("arn:"):
            return {"platform": "Linux", "osVersion": None}  # AMI id, ssm: parameter, or product id
        ref = parse_arn(parent, "parentImage")
        if ref.type != "image":
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'parentImage' is not valid. '{parent}' is not an image ARN.",
            )
        image = self._resolve_quiet(req, "images", parent)
        if image is not None:
            return image
        if ref.account == req.account:
            recipe = next((r for r in req.own("imageRecipes") if arn_name(r["name"]) == ref.name), None)
            if recipe is not None:
                return {"platform": recipe["platform"], "osVersion": None}
        raise SandboxError(
            "InvalidParameterValueException",
            f"The value supplied for parameter 'parentImage' is not valid. The image '{parent}' does not exist.",
        )

    def op_create_image_recipe(self, req: Request) -> Record:
        p = req.params
        base, version = self._recipe_version(req, "imageRecipes")
        components = self._recipe_components(req)
        parent = self._parent(req, p["parentImage"])
        arn = f"{base}/{version}"
        req.table("imageRecipes")[arn] = {
            "arn": arn,
            "type": "AMI",
            "name": p["name"],
            "description": p.get("description"),
            "platform": parent["platform"],
            "owner": req.account,
            "version": version,
            "components": components,
            "parentImage": p["parentImage"],
            "blockDeviceMappings": p.get("blockDeviceMappings"),
            "dateCreated": now_iso(),
            "tags": dict(p.get("tags") or {}),
            "workingDirectory": p.get("workingDirectory"),
            "additionalInstanceConfiguration": p.get("additionalInstanceConfiguration"),
            "amiTags": p.get("amiTags"),
            "_osVersion": parent.get("osVersion"),
        }
        return {"imageRecipeArn": arn, "latestVersionReferences": latest_references(base, version)}

    def op_create_container_recipe(self, req: Request) -> Record:
        p = req.params
        has_data, has_uri = p.get("dockerfileTemplateData") is not None, p.get("dockerfileTemplateUri") is not None
        if has_data == has_uri:
            raise SandboxError(
                "InvalidParameterCombinationException" if has_data else "InvalidRequestException",
                "Specify exactly one of 'dockerfileTemplateData' and 'dockerfileTemplateUri'.",
            )
        base, version = self._recipe_version(req, "containerRecipes")
        components = self._recipe_components(req)
        arn = f"{base}/{version}"
        req.table("containerRecipes")[arn] = {
            "arn": arn,
            "containerType": p["containerType"],
            "name": p["name"],
            "description": p.get("description"),
            "platform": p.get("platformOverride") or "Linux",
            "owner": req.account,
            "version": version,
            "components": components,
            "instanceConfiguration": p.get("instanceConfiguration"),
            "dockerfileTemplateData": p.get("dockerfileTemplateData"),
            "_dockerfileTemplateUri": p.get("dockerfileTemplateUri"),
            "kmsKeyId": p.get("kmsKeyId"),
            "encrypted": True,
            "parentImage": p["parentImage"],
            "dateCreated": now_iso(),
            "tags": dict(p.get("tags") or {}),
            "workingDirectory": p.get("workingDirectory"),
            "targetRepository": p["targetRepository"],
            "imageOsVersionOverride": p.get("imageOsVersionOverride"),
        }
        return {"containerRecipeArn": arn, "latestVersionReferences": latest_references(base, version)}

    def _get_recipe(self, req: Request, collection: str, member: str, key: str) -> Record:
        arn = req.params[member]
        record = self._resolve(req, collection, arn, member)
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 1)[0]
        return {key: record, "latestVersionReferences": latest_references(base, record["version"])}

    def op_get_image_recipe(self, req: Request) -> Record:
        return self._get_recipe(req, "imageRecipes", "imageRecipeArn", "imageRecipe")

    def op_get_container_recipe(self, req: Request) -> Record:
        return self._get_recipe(req, "containerRecipes", "containerRecipeArn", "containerRecipe")

    def op_list_image_recipes(self, req: Request) -> Record:
        items = _sorted(self._owned_list(req, "imageRecipes", req.params.get("owner")))
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {
                "name": lambda r: r["name"],
                "parentImage": lambda r: r["parentImage"],
                "platform": lambda r: r["platform"],
            },
        )
        return {"imageRecipeSummaryList": page, "nextToken": token}

    def op_list_container_recipes(self, req: Request) -> Record:
        items = _sorted(self._owned_list(req, "containerRecipes", req.params.get("owner")))
        page, token = paginate(
            req.operation,
            req.params,
            items,
            {
                "name": lambda r: r["name"],
                "parentImage": lambda r: r["parentImage"],
                "platform": lambda r: r["platform"],
                "containerType": lambda r: r["containerType"],
            },
        )
        return {"containerRecipeSummaryList": page, "nextToken": token}

    def op_delete_image_recipe(self, req: Request) -> Record:
        self._delete(req, "imageRecipes", req.params["imageRecipeArn"])
        return {"imageRecipeArn": req.params["imageRecipeArn"]}

    def op_delete_container_recipe(self, req: Request) -> Record:
        self._delete(req, "containerRecipes", req.params["containerRecipeArn"])
        return {"containerRecipeArn": req.params["containerRecipeArn"]}

    # --- mutable kinds --------------------------------------------------------------------------

    def _infrastructure_fields(self, p: Params) -> Record:
        return {
            "description": p.get("description"),
            "instanceTypes": p.get("instanceTypes"),
            "instanceProfileName": p["instanceProfileName"],
            "securityGroupIds": p.get("securityGroupIds"),
            "subnetId": p.get("subnetId"),
            "logging": p.get("logging"),
            "keyPair": p.get("keyPair"),
            "terminateInstanceOnFailure": p.get("terminateInstanceOnFailure", True),
            "snsTopicArn": p.get("snsTopicArn"),
            "resourceTags": p.get("resourceTags"),
            "instanceMetadataOptions": p.get("instanceMetadataOptions"),
            "placement": p.get("placement"),
        }

    def _create_mutable(self, req: Request, collection: str, fields: Record, timestamps: bool = False) -> str:
        p = req.params
        arn = req.arn(collection, p["name"])
        self._ensure_new(req, collection, arn)
        now: Any = now_iso()
        req.table(collection)[arn] = {
            "arn": arn,
            "name": p["name"],
            **fields,
            "dateCreated": now,
            "tags": dict(p.get("tags") or {}),
        }
        return arn

    def _update_mutable(self, req: Request, collection: str, member: str, fields: Record) -> str:
        arn = req.params[member]
        record = self._get(req, collection, arn)
        keep = {k: record[k] for k in ("arn", "name", "dateCreated", "tags") if k in record}
        keep.update({k: v for k, v in record.items() if k.startswith("_")})
        req.table(collection)[arn] = {**keep, **fields, "dateUpdated": now_iso()}
        return arn

    def op_create_infrastructure_configuration(self, req: Request) -> Record:
        arn = self._create_mutable(req, "infrastructureConfigurations", self._infrastructure_fields(req.params))
        return {"infrastructureConfigurationArn": arn}

    def op_update_infrastructure_configuration(self, req: Request) -> Record:
        fields = self._infrastructure_fields(req.params)
        arn = self._update_mutable(req, "infrastructureConfigurations", "infrastructureConfigurationArn", fields)
        return {"infrastructureConfigurationArn": arn}

    def op_get_infrastructure_configuration(self, req: Request) -> Record:
        record = self._get(req, "infrastructureConfigurations", req.params["infrastructureConfigurationArn"])
        return {"infrastructureConfiguration": record}

    def op_list_infrastructure_configurations(self, req: Request) -> Record:
        page, token = paginate(
            req.operation,
            req.params,
            _sorted(req.own("infrastructureConfigurations")),
            {
                "name": lambda r: r["name"],
            },
        )
        return {"infrastructureConfigurationSummaryList": page, "nextToken": token}

    def op_delete_infrastructure_configuration(self, req: Request) -> Record:
        self._delete(req, "infrastructureConfigurations", req.params["infrastructureConfigurationArn"])
        return {"infrastructureConfigurationArn": req.params["infrastructureConfigurationArn"]}

    def _distribution_fields(self, p: Params) -> Record:
        regions = [d["region"] for d in p["distributions"]]
        duplicates = sorted({r for r in regions if regions.count(r) > 1})
        if duplicates:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'distributions' is not valid. Each region may appear "
                f"once; repeated: {', '.join(duplicates)}.",
            )
        return {"description": p.get("description"), "distributions": p["distributions"], "timeoutMinutes": 720}

    def op_create_distribution_configuration(self, req: Request) -> Record:
        arn = self._create_mutable(req, "distributionConfigurations", self._distribution_fields(req.params))
        return {"distributionConfigurationArn": arn}

    def op_update_distribution_configuration(self, req: Request) -> Record:
        fields = self._distribution_fields(req.params)
        arn = self._update_mutable(req, "distributionConfigurations", "distributionConfigurationArn", fields)
        return {"distributionConfigurationArn": arn}

    def op_get_distribution_configuration(self, req: Request) -> Record:
        record = self._get(req, "distributionConfigurations", req.params["distributionConfigurationArn"])
        return {"distributionConfiguration": record}

    def op_list_distribution_configurations(self, req: Request) -> Record:
        items = [
            dict(r, regions=[d["region"] for d in r["distributions"]])
            for r in _sorted(req.own("distributionConfigurations"))
        ]
        page, token = paginate(req.operation, req.params, items, {"name": lambda r: r["name"]})
        return {"distributionConfigurationSummaryList": page, "nextToken": token}

    def op_delete_distribution_configuration(self, req: Request) -> Record:
        self._delete(req, "distributionConfigurations", req.params["distributionConfigurationArn"])
        return {"distributionConfigurationArn": req.params["distributionConfigurationArn"]}

    def _pipeline_fields(self, req: Request) -> Record:
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
            recipe = self._must_resolve(req, "containerRecipes", container_recipe, "containerRecipeArn")
        for member, collection in (
            ("infrastructureConfigurationArn", "infrastructureConfigurations"),
            ("distributionConfigurationArn", "distributionConfigurations"),
        ):
            if p.get(member) is not None and p[member] not in req.table(collection):
                raise SandboxError(
                    "InvalidParameterValueException",
                    f"The value supplied for parameter '{member}' is not valid. "
                    f"The resource '{p[member]}' does not exist.",
                )
        for i, wf in enumerate(p.get("workflows") or []):
            self._must_resolve(req, "workflows", wf["workflowArn"], f"workflows[{i}].workflowArn")
        schedule = copy.deepcopy(p.get("schedule"))
        if schedule is not None:
            schedule.setdefault("timezone", "UTC")
            schedule.setdefault("pipelineExecutionStartCondition", "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE")
        tests = dict(p.get("imageTestsConfiguration") or {})
        tests.setdefault("imageTestsEnabled", True)
        tests.setdefault("timeoutMinutes", 720)
        return {
            "description": p.get("description"),
            "platform": recipe["platform"],
            "enhancedImageMetadataEnabled": p.get("enhancedImageMetadataEnabled", True),
            "imageRecipeArn": image_recipe,
            "containerRecipeArn": container_recipe,
            "infrastructureConfigurationArn": p["infrastructureConfigurationArn"],
            "distributionConfigurationArn": p.get("distributionConfigurationArn"),
            "imageTestsConfiguration": tests,
            "schedule": schedule,
            "status": p.get("status", "ENABLED"),
            "imageScanningConfiguration": p.get("imageScanningConfiguration"),
            "executionRole": p.get("executionRole"),
            "workflows": p.get("workflows"),
            "loggingConfiguration": p.get("loggingConfiguration"),
            "imageTags": p.get("imageTags"),
            "consecutiveFailures": 0,
        }

    def op_create_image_pipeline(self, req: Request) -> Record:
        arn = self._create_mutable(req, "imagePipelines", self._pipeline_fields(req))
        return {"imagePipelineArn": arn}

    def op_update_image_pipeline(self, req: Request) -> Record:
        fields = self._pipeline_fields(req)
        return {"imagePipelineArn": self._update_mutable(req, "imagePipelines", "imagePipelineArn", fields)}

    def op_get_image_pipeline(self, req: Request) -> Record:
        return {"imagePipeline": self._get(req, "imagePipelines", req.params["imagePipelineArn"])}

    def op_list_image_pipelines(self, req: Request) -> Record:
        page, token = paginate(
            req.operation,
            req.params,
            _sorted(req.own("imagePipelines")),
            {
                name: (lambda r, n=name: r.get(n))
                for name in (
                    "description",
                    "distributionConfigurationArn",
                    "imageRecipeArn",
                    "infrastructureConfigurationArn",
                    "name",
                    "status",
                )
            },
        )
        return {"imagePipelineList": page, "nextToken": token}

    def op_delete_image_pipeline(self, req: Request) -> Record:
        self._delete(req, "imagePipelines", req.params["imagePipelineArn"])
        return {"imagePipelineArn": req.params["imagePipelineArn"]}

    def _lifecycle_fields(self, p: Params) -> Record:
        return {
            "description": p.get("description"),
            "status": p.get("status", "ENABLED"),
            "executionRole": p["executionRole"],
            "resourceType": p["resourceType"],
            "policyDetails": p["policyDetails"],
            "resourceSelection": p["resourceSelection"],
        }

    def op_create_lifecycle_policy(self, req: Request) -> Record:
        return {
            "lifecyclePolicyArn": self._create_mutable(req, "lifecyclePolicies", self._lifecycle_fields(req.params))
        }

    def op_update_lifecycle_policy(self, req: Request) -> Record:
        fields = self._lifecycle_fields(req.params)
        return {"lifecyclePolicyArn": self._update_mutable(req, "lifecyclePolicies", "lifecyclePolicyArn", fields)}

    def op_get_lifecycle_policy(self, req: Request) -> Record:
        return {"lifecyclePolicy": self._get(req, "lifecyclePolicies", req.params["lifecyclePolicyArn"])}

    def op_list_lifecycle_policies(self, req: Request) -> Record:
        page, token = paginate(
            req.operation,
            req.params,
            _sorted(req.own("lifecyclePolicies")),
            {
                "name": lambda r: r["name"],
                "status": lambda r: r["status"],
            },
        )
        return {"lifecyclePolicySummaryList": page, "nextToken": token}

    def op_delete_lifecycle_policy(self, req: Request) -> Record:
        self._delete(req, "lifecyclePolicies", req.params["lifecyclePolicyArn"])
        return {"lifecyclePolicyArn": req.params["lifecyclePolicyArn"]}

    # --- images ---------------------------------------------------------------------------------

    def op_start_image_pipeline_execution(self, req: Request) -> Record:
        pipeline = self._get(req, "imagePipelines", req.params["imagePipelineArn"])
        if pipeline.get("imageRecipeArn"):
            recipe = self._must_resolve(req, "imageRecipes", pipeline["imageRecipeArn"], "imageRecipeArn")
            recipe_key, image_type = "imageRecipe", "AMI"
        else:
            recipe = self._must_resolve(req, "containerRecipes", pipeline["containerRecipeArn"], "containerRecipeArn")
            recipe_key, image_type = "containerRecipe", "DOCKER"
        base = req.arn("images", recipe["name"], recipe["version"])
        build = (
            max((_build_of(r) for r in req.table("images").values() if r["arn"].startswith(base + "/")), default=0) + 1
        )
        arn = f"{base}/{build}"
        distribution = req.table("distributionConfigurations").get(pipeline.get("distributionConfigurationArn") or "")
        regions = [d["region"] for d in distribution["distributions"]] if distribution else [req.region]
        ami_seed = hashlib.sha256(arn.encode()).hexdigest()
        outputs: Record = (
            {
                "amis": [
                    {
                        "region": r,
                        "image": f"ami-{hashlib.sha256((ami_seed + r).encode()).hexdigest()[:17]}",
                        "name": f"{recipe['name']} {recipe['version']}/{build}",
                        "accountId": req.account,
                    }
                    for r in regions
                ]
            }
            if image_type == "AMI"
            else {
                "containers": [
                    {
                        "region": r,
                        "imageUris": [
                            f"{req.account}.dkr.ecr.{r}.amazonaws.com/"
                            f"{recipe['targetRepository']['repositoryName']}:{recipe['version']}-{build}"
                        ],
                    }
                    for r in regions
                ]
            }
        )
        req.table("images")[arn] = {
            "arn": arn,
            "type": image_type,
            "name": recipe["name"],
            "version": f"{recipe['version']}/{build}",
            "platform": recipe["platform"],
            "enhancedImageMetadataEnabled": pipeline.get("enhancedImageMetadataEnabled"),
            "osVersion": recipe.get("_osVersion"),
            "state": {"status": "AVAILABLE"},
            recipe_key: copy.deepcopy(recipe),
            "sourcePipelineName": pipeline["name"],
            "sourcePipelineArn": pipeline["arn"],
            "infrastructureConfiguration": copy.deepcopy(
                req.table("infrastructureConfigurations").get(pipeline["infrastructureConfigurationArn"])
            ),
            "distributionConfiguration": copy.deepcopy(distribution),
            "imageTestsConfiguration": pipeline.get("imageTestsConfiguration"),
            "dateCreated": now_iso(),
            "outputResources": outputs,
            "tags": dict(req.params.get("tags") or {}),
            "owner": req.account,
            "buildType": "USER_INITIATED",
            "imageSource": "CUSTOM",
        }
        return {"imageBuildVersionArn": arn}

    def op_get_image(self, req: Request) -> Record:
        arn = req.params["imageBuildVersionArn"]
        record = self._resolve(req, "images", arn, "imageBuildVersionArn")
        if record is None:
            raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")
        base = record["arn"].rsplit("/", 2)[0]
        return {"image": record, "latestVersionReferences": latest_references(base, record["version"])}

    _image_filters: dict[str, Callable[[Record], Any]] = {
        "name": lambda r: r["name"],
        "osVersion": lambda r: r.get("osVersion"),
        "platform": lambda r: r.get("platform"),
        "type": lambda r: r.get("type"),
        "version": lambda r: r["version"].split("/")[0],
    }

    def op_list_images(self, req: Request) -> Record:
        p = req.params
        if p.get("byName") and any(f["name"] == "version" for f in p.get("filters") or []):
            raise SandboxError(
                "InvalidParameterCombinationException",
                "The value supplied for parameter 'filters' is not valid. You cannot list Images by name and "
                "filter by version in the same request.",
            )
        pool = self._owned_list(req, "images", p.get("owner"))
        if not p.get("includeDeprecated"):
            pool = [r for r in pool if r["state"]["status"] != "DEPRECATED"]
        rows = _latest_per_version(pool)
        if p.get("byName"):
            rows = _latest_per_name(rows)
        items = [dict(r, arn=_version_arn(r["arn"]), version=r["version"].split("/")[0]) for r in rows]
        page, token = paginate(req.operation, p, items, self._image_filters)
        return {"imageVersionList": page, "nextToken": token}

    def op_list_image_build_versions(self, req: Request) -> Record:
        pool = self._family_builds(req, "images", req.params["imageVersionArn"], "imageVersionArn")
        page, token = paginate(req.operation, req.params, pool, self._image_filters)
        return {"imageSummaryList": page, "nextToken": token}

    def op_list_image_pipeline_images(self, req: Request) -> Record:
        pipeline = self._get(req, "imagePipelines", req.params["imagePipelineArn"])
        pool = sorted(
            (r for r in req.own("images") if r.get("sourcePipelineArn") == pipeline["arn"]),
            key=lambda r: (version_key(r["version"]), _build_of(r)),
        )
        filters = {"name": self._image_filters["name"], "version": self._image_filters["version"]}
        page, token = paginate(req.operation, req.params, pool, filters)
        return {"imageSummaryList": page, "nextToken": token}

    def op_delete_image(self, req: Request) -> Record:
        self._delete(req, "images", req.params["imageBuildVersionArn"])
        return {"imageBuildVersionArn": req.params["imageBuildVersionArn"]}

    # --- tags and resource policies -------------------------------------------------------------

    def _tag_target(self, req: Request, arn: str) -> Record:
        ref = parse_arn(arn, "resourceArn")
        if ref.account != req.account:
            raise SandboxError("InvalidParameterException", f"You can only tag resources your account owns: '{arn}'.")
        for collection in RESOURCE_COLLECTIONS:
            record = req.table(collection).get(arn) if arn.startswith(req.prefix) else None
            if record is not None:
                return record
        raise SandboxError("ResourceNotFoundException", f"The resource '{arn}' does not exist.")

    def op_tag_resource(self, req: Request) -> Record:
        record = self._tag_target(req, req.params["resourceArn"])
        merged = {**(record.get("tags") or {}), **req.params["tags"]}
        if len(merged) > 50:
            raise SandboxError("InvalidParameterException", "A resource can have at most 50 tags.")
        record["tags"] = merged
        return {}

    def op_untag_resource(self, req: Request) -> Record:
        record = self._tag_target(req, req.params["resourceArn"])
        record["tags"] = {k: v for k, v in (record.get("tags") or {}).items() if k not in req.params["tagKeys"]}
        return {}

    def op_list_tags_for_resource(self, req: Request) -> Record:
        return {"tags": self._tag_target(req, req.params["resourceArn"]).get("tags") or {}}

    def _put_policy(self, req: Request, collection: str, member: str) -> Record:
        arn = req.params[member]
        self._get(req, collection, arn)
        try:
            json.loads(req.params["policy"])
        except ValueError as exc:
            raise SandboxError(
                "InvalidParameterValueException",
                f"The value supplied for parameter 'policy' is not valid. It must be a JSON document: {exc}.",
            ) from exc
        req.state["policies"][arn] = req.params["policy"]
        return {member: arn}

    def _get_policy(self, req: Request, collection: str, member: str) -> Record:
        arn = req.params[member]
        self._get(req, collection, arn)
        return {"policy": req.state["policies"].get(arn)}

    def op_put_component_policy(self, req: Request) -> Record:
        return self._put_policy(req, "components", "componentArn")

    def op_get_component_policy(self, req: Request) -> Record:
        return self._get_policy(req, "components", "componentArn")

    def op_put_image_recipe_policy(self, req: Request) -> Record:
        return self._put_policy(req, "imageRecipes", "imageRecipeArn")

    def op_get_image_recipe_policy(self, req: Request) -> Record:
        return self._get_policy(req, "imageRecipes", "imageRecipeArn")

    def op_put_container_recipe_policy(self, req: Request) -> Record:
        return self._put_policy(req, "containerRecipes", "containerRecipeArn")

    def op_get_container_recipe_policy(self, req: Request) -> Record:
        return self._get_policy(req, "containerRecipes", "containerRecipeArn")

    def op_put_image_policy(self, req: Request) -> Record:
        return self._put_policy(req, "images", "imageArn")

    def op_get_image_policy(self, req: Request) -> Record:
        return self._get_policy(req, "images", "imageArn")


# --- helpers ----------------------------------------------------------------------------------


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _build_of(record: Record) -> int:
    """The build number of a component, workflow or image ARN (0 for recipes, which have none)."""
    last = record["arn"].rsplit("/", 1)[1]
    return int(last) if last.isdigit() else 0


def _version_arn(build_arn: str) -> str:
    return build_arn.rsplit("/", 1)[0]


def _sorted(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r["name"], version_key(r["version"]) if "version" in r else (0, 0, 0)))


def _latest_per_version(records: Iterable[Record]) -> list[Record]:
    """One row per name and x.y.z: its newest build, ordered by name then version."""
    newest: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r["name"], r["version"].split("/")[0])
        if key not in newest or _build_of(r) > _build_of(newest[key]):
            newest[key] = r
    return _sorted(newest.values())


def _latest_per_name(records: list[Record]) -> list[Record]:
    newest: dict[str, Record] = {}
    for r in records:
        if r["name"] not in newest or version_key(r["version"]) > version_key(newest[r["name"]]["version"]):
            newest[r["name"]] = r
    return _sorted(newest.values())
