"""What every resource kind declares: its API nouns, whether it is versioned, where references go.

Each kind lives in its own module and builds a `Kind`; `imagesync.kinds.REGISTRY` lists them
explicitly. Lower layers only: kinds import nothing from the planner, the executor or the CLI.
docs/architecture.md describes what a `Kind` declares and who reads each declaration.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from imagesync.arns import resource_arn, version_of, with_version
from imagesync.kinds.sharing import Sharing

# Spec fields that only imagesync reads; never sent to Image Builder. (A kind's document fields
# are taken out by `create_request` itself.)
IMAGESYNC_FIELDS = frozenset({"version", "bump", "retainVersions", "sensitive", "sharing", "documentUpload"})


@dataclass(frozen=True)
class RefField:
    """A place in a spec where `{ref: NAME}` may stand, and the kinds it may name.

    `path` uses `*` for "every item of a list", e.g. `("components", "*")` for recipe components,
    whose items carry `ref` beside `parameters`; `("imageRecipeArn",)` for a field that is
    replaced whole by an ARN.
    """

    path: tuple[str, ...]
    kinds: tuple[str, ...]
    arn_key: str | None = None  # for list items: the key the resolved ARN goes under
    form: str = "arn"  # "arn": the exact managed version; "image": the newest image a recipe builds
    # The reference may pin a version of what it names (`{ref: NAME, version: 1.2.3}` or `1.x.x`,
    # the newest matching one), instead of following the version this plan leaves live.
    pinnable: bool = False
    # For list items that name what they select by name and version rather than by ARN (a
    # lifecycle policy's recipes): the keys `{ref: NAME}` becomes, e.g. ("name", "semanticVersion").
    name_keys: tuple[str, str] | None = None
    # The kind named, when the spec decides it (a lifecycle policy's resourceType picks ImageRecipe
    # or ContainerRecipe); `kinds` lists every kind it may pick, and the first stands for the rest.
    kind_of: Callable[[Mapping[str, Any]], str | None] | None = None

    @property
    def in_items(self) -> bool:
        """Does `{ref: NAME}` stand in list items beside other keys, rather than replace a value?"""
        return self.arn_key is not None or self.name_keys is not None

    def kind_for(self, spec: Mapping[str, Any]) -> str:
        """The kind the references of this field name in `spec`."""
        chosen = self.kind_of(spec) if self.kind_of is not None else None
        return chosen if chosen in self.kinds else self.kinds[0]

    def pins(self, spec: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str, str]]:
        """(path, name, version) of every `{ref: NAME, version: V}` this field holds in `spec`."""
        if not self.pinnable:
            return
        for where, item in self._ref_items(spec):
            if isinstance(item.get("version"), str):
                yield (*where, "ref"), item["ref"], item["version"]

    def _ref_items(self, spec: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Mapping[str, Any]]]:
        """(path, item) of every `{ref: NAME, ...}` item of the list this field's path ends in."""
        if not self.in_items:
            return
        items: Any = spec
        for part in self.path[:-1]:
            items = items.get(part) if isinstance(items, Mapping) else None
        for i, item in enumerate(items if isinstance(items, list | tuple) else ()):
            if isinstance(item, Mapping) and isinstance(item.get("ref"), str):
                yield (*self.path[:-1], i), item

    def targets(self, spec: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """(path, target) of every `{ref: NAME, target: T}`: a reference to what target T manages."""
        if self.in_items:
            for where, item in self._ref_items(spec):
                if isinstance(item.get("target"), str):
                    yield (*where, "ref"), item["target"]
            return
        for path, _name in _walk(spec, self.path, ()):
            node: Any = spec
            for part in path:
                node = node[part]
            if isinstance(node.get("target"), str):
                yield path, node["target"]

    def find(self, spec: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """(path, name) of every `{ref: NAME}` this field holds in `spec` (plain or frozen): the
        path of the `{ref:}` mapping, or of the `ref` key of a list item. The one reading of
        RefField paths: the loader's reference checks and the Create requests both use it."""
        if self.in_items:
            for where, item in self._ref_items(spec):
                yield (*where, "ref"), item["ref"]
            return
        yield from _walk(spec, self.path, ())


def _walk(node: Any, rest: tuple[str, ...], path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if not rest:
        if isinstance(node, Mapping) and isinstance(node.get("ref"), str):
            yield path, node["ref"]
        return
    head = rest[0]
    if head == "*":
        if isinstance(node, list | tuple):
            for i, item in enumerate(node):
                yield from _walk(item, rest[1:], (*path, i))
    elif isinstance(node, Mapping) and head in node:
        yield from _walk(node[head], rest[1:], (*path, head))


# resolve(kind, name, form, target) -> ARN of the managed resource; `target` names the target that
# manages it when that is not the resource's own (`{ref: NAME, target: T}`), else None.
Resolver = Callable[[str, str, str, str | None], str]

# named_dependencies(spec) -> (kind, name) of resources the spec names by plain name, not `{ref:}`
NamedDependencies = Callable[[Mapping[str, Any]], tuple[tuple[str, str], ...]]

# advice(spec, managed) -> (spec path, message) of what the service takes but is likely not what
# was meant, reported as warnings; `managed(kind, name)` says whether the manifests define it.
Advice = Callable[[Mapping[str, Any], Callable[[str, str], bool]], Iterator[tuple[tuple[str | int, ...], str]]]

# A kind's own live reader (see `Kind.reader`): reader(api, list items, every, specs) -> what
# exists. `specs` are the desired specs of its own kind, by name: the reader reads the list items
# they use, or every listed item when `every` (pruning looks for instances whose manifest is gone).
Api = Callable[[str, dict[str, Any]], dict[str, Any]]
Reader = Callable[[Api, list[dict[str, Any]], bool, Mapping[str, Mapping[str, Any]]], list["Instance"]]


@dataclass(frozen=True)
class Document:
    """A kind whose Create call carries a text document: AWSTOE YAML or a Dockerfile template.

    The manifest gives it inline (`inline_field`), as a file beside the manifest (`file_field`), or
    as an S3 URI the service reads (`uri_member`); the loader reads and checks it once, in the
    `language` it is written in, and the Create call sends its text under `member`.
    """

    member: str  # the Create member holding the text: "data", "dockerfileTemplateData"
    uri_member: str  # the Create member for an S3 document: "uri", "dockerfileTemplateUri"
    file_field: str  # the manifest field naming a file: "documentFile", "dockerfileTemplateFile"
    inline_field: str  # the manifest field holding it inline: "document" (YAML), or `member` (text)
    language: str  # "component" or "workflow" (AWSTOE YAML, parsed and checked) or "dockerfile" (text)

    @property
    def parsed(self) -> bool:
        """Is the document YAML that the loader parses (and the planner compares parsed)?"""
        return self.language != "dockerfile"


@dataclass(frozen=True)
class BuildVersions:
    """Versions carry build numbers (`1.2.3/1`): tags and documents live on builds, which are read
    with a Get and deleted one build at a time, each checked for ownership first."""

    list_op: str  # lists the builds of one version, e.g. "ListComponentBuildVersions"
    version_member: str  # that call's version ARN member, e.g. "componentVersionArn"
    list_key: str  # the key of its response holding the builds, e.g. "componentSummaryList"


@dataclass(frozen=True)
class Awaited:
    """A kind whose creation starts work that ends later (an image build): after the Create call,
    the executor reads the resource until its state is `ready` (done) or `failed` (with a reason)."""

    state_path: tuple[str, ...]  # where the Get response holds the status, e.g. ("state", "status")
    ready: frozenset[str]
    failed: frozenset[str]
    reason_path: tuple[str, ...] = ()  # where it says why it failed
    # outputs(resource as the Get returns it) -> what the resource made, for plans and outcomes
    outputs: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Instance:
    """One live instance a kind's own reader found: what `live` records for it."""

    name: str  # the manifest name it stands for (from its address tag)
    arn: str
    tags: Mapping[str, str]
    state: str = ""  # e.g. an image's AVAILABLE, BUILDING or FAILED
    outputs: Mapping[str, Any] | None = None
    created: str = ""  # for ordering instances of one name, oldest first


# The lifecycles a kind's resources can have.
VERSIONED = "versioned"  # immutable; every change publishes a new semantic version
MUTABLE = "mutable"  # updated in place with the kind's Update call
REBUILT = "rebuilt"  # immutable and unversioned: any change makes a new one (an image build)


@dataclass(frozen=True)
class Kind:
    """One Image Builder resource kind as imagesync manages it: everything the loader, the live
    reader, the planner, the executor and the schema generator need to know about it."""

    name: str  # manifest `kind:` and the address prefix, e.g. "ImageRecipe"
    noun: str  # the API noun in operation names, e.g. "ImageRecipe" in CreateImageRecipe
    arn_type: str  # the ARN resource type, e.g. "image-recipe"
    arn_member: str  # the member that names one resource in Get/Delete, e.g. "imageRecipeArn"
    create_arn_member: str  # the member of the Create response that holds the new ARN
    get_key: str  # the key of the Get response holding the resource
    list_key: str  # the key of the List response holding its items
    schema: str  # schema file stem
    lifecycle: str = MUTABLE  # VERSIONED, MUTABLE or REBUILT
    refs: tuple[RefField, ...] = ()
    builds: BuildVersions | None = None  # versions carry build numbers (components, workflows)
    document: Document | None = None
    update_member: str | None = None  # the ARN member of the Update call (mutable kinds)
    update_omits: frozenset[str] = field(default_factory=frozenset)  # Create members Update does not take
    # Resources a spec names by their plain name (the service looks them up at Create, so they
    # must exist first), e.g. the recipes a lifecycle policy selects.
    named_dependencies: NamedDependencies | None = None
    # Kinds whose resources `named_dependencies` may name: for the order of kinds.
    named_kinds: tuple[str, ...] = ()
    list_params: Mapping[str, Any] = field(default_factory=dict)  # e.g. owner=Self beside maxResults
    listed_whole: bool = False  # list items hold every field (no Get needed), e.g. pipelines
    version_wildcard: bool = False  # `1.0.x` lets the service pick the patch (recipes)
    # The ARN type when it depends on the spec, e.g. workflow/build for a BUILD workflow.
    arn_type_of: Callable[[Mapping[str, Any]], str] | None = None
    # Values the service fills in when a request leaves them out: equal to the default means absent.
    server_defaults: tuple[tuple[tuple[str, ...], Any], ...] = ()
    unordered: tuple[tuple[str, ...], ...] = ()  # lists the service keeps as sets (`*`: every item)
    named: bool = True  # the Create call takes a `name` (an image takes its recipe's)
    awaited: Awaited | None = None
    reader: Reader | None = None  # reads live instances itself (kinds not identified by name)
    sharing: Sharing | None = None  # can be shared with other accounts (`spec.sharing`)
    advice: Advice | None = None  # warnings about specs the service takes (see `Advice`)

    @property
    def versioned(self) -> bool:
        return self.lifecycle == VERSIONED

    @property
    def rebuilt(self) -> bool:
        return self.lifecycle == REBUILT

    @property
    def create_op(self) -> str:
        return f"Create{self.noun}"

    @property
    def get_op(self) -> str:
        return f"Get{self.noun}"

    @property
    def delete_op(self) -> str:
        return f"Delete{self.noun}"

    @property
    def list_op(self) -> str:
        plural = self.noun[:-1] + "ies" if self.noun.endswith("y") else self.noun + "s"
        return f"List{plural}"

    @property
    def update_op(self) -> str | None:
        return f"Update{self.noun}" if self.lifecycle == MUTABLE else None

    @property
    def depends_on_kinds(self) -> frozenset[str]:
        """The kinds this kind's resources may reference or name (itself excluded)."""
        return (frozenset(k for ref in self.refs for k in ref.kinds) | set(self.named_kinds)) - {self.name}

    @property
    def manifest_only_fields(self) -> frozenset[str]:
        """This kind's spec fields that only imagesync reads (its document's file and inline forms)."""
        if self.document is None:
            return frozenset()
        return frozenset({self.document.file_field, self.document.inline_field} - {self.document.member})

    def arn_base(self, region: str, account: str, name: str, spec: Mapping[str, Any] | None = None) -> str:
        """The ARN of the resource without its version: what a versioned resource's versions share."""
        arn_type = self.arn_type_of(spec or {}) if self.arn_type_of is not None else self.arn_type
        return resource_arn(region, account, arn_type, name)

    def create_request(
        self,
        spec: Mapping[str, Any],
        name: str,
        resolve: Resolver,
        *,
        version: str | None = None,
        document: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The Create call's parameters (without clientToken) for a desired resource."""
        own = IMAGESYNC_FIELDS | self.manifest_only_fields
        body = {k: copy.deepcopy(thaw(v)) for k, v in spec.items() if k not in own}
        for ref in self.refs:
            _resolve_refs(body, ref, resolve)
        if self.named:
            body["name"] = name
        if self.versioned:
            if version is None:
                raise ValueError(f"{self.name} needs a version to build its Create request")
            body["semanticVersion"] = version
        doc = self.document
        if doc is not None and document is not None and doc.uri_member not in body:
            body.pop(doc.inline_field, None)
            body[doc.member] = document
        for comp in body.get("components") or []:
            for param in comp.get("parameters") or []:
                param.pop("sensitive", None)
        merged = {**(body.get("tags") or {}), **(tags or {})}
        if merged:
            body["tags"] = merged
        else:
            body.pop("tags", None)
        return body

    def update_request(self, spec: Mapping[str, Any], name: str, arn: str, resolve: Resolver) -> dict[str, Any]:
        """The Update call's parameters (without clientToken): the full desired object."""
        if self.update_member is None:
            raise ValueError(f"{self.name} is immutable and has no Update call")
        body = self.create_request(spec, name, resolve)
        for key in ("name", "tags", *self.update_omits):
            body.pop(key, None)
        body[self.update_member] = arn
        return body


def _resolve_refs(body: dict[str, Any], ref: RefField, resolve: Resolver) -> None:
    kind = ref.kind_for(body)
    targets = dict(ref.targets(body))
    for path, name in list(ref.find(body)):
        arn = resolve(kind, name, ref.form, targets.get(path))
        parent: Any = body
        for part in path[:-1]:
            parent = parent[part]
        if ref.in_items:
            # list items such as recipe components: {ref: x, parameters: [...]} -> {componentArn: ARN, ...}
            del parent["ref"]
            parent.pop("target", None)
            pin = parent.pop("version", None) if ref.pinnable else None
            if isinstance(pin, str):
                arn = with_version(arn, pin)
            if ref.name_keys is not None:
                # {ref: r} -> {name: r, semanticVersion: 1.0.1}: the name as the manifests spell it
                # (an ARN holds it folded), the version the ARN names.
                parent[ref.name_keys[0]], parent[ref.name_keys[1]] = name, version_of(arn)
            else:
                parent[ref.arn_key] = arn
        else:
            parent[path[-1]] = arn


# What manifests and API bodies are made of, by exact type: `freeze` and `thaw` run over every
# value of a large estate, and telling these apart without the Mapping ABC's check halves their cost.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_MAPPINGS = frozenset({dict, MappingProxyType})
_SEQUENCES = frozenset({list, tuple})


def freeze(value: Any) -> Any:
    """A deeply immutable copy: mappings become read-only proxies, lists become tuples."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind in _MAPPINGS or isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if kind in _SEQUENCES or isinstance(value, (list, tuple)):
        return tuple([freeze(v) for v in value])
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable, JSON-shaped copy of a frozen (or any nested) value: mappings become
    dicts, tuples and lists become new lists. imagesync's one "frozen to plain" converter."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind in _MAPPINGS or isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if kind in _SEQUENCES or isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
