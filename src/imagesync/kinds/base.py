"""What every resource kind declares: its API nouns, whether it is versioned, where references go.

Each kind lives in its own module and builds a `Kind`; `imagesync.kinds.REGISTRY` lists them
explicitly. Lower layers only: kinds import nothing from plan, execute or cli.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from imagesync.arns import resource_arn

# Spec fields that only imagesync reads; never sent to Image Builder.
IMAGESYNC_FIELDS = frozenset(
    {"version", "bump", "retainVersions", "document", "documentFile", "dockerfileTemplateFile", "sensitive"}
)


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


# resolve(kind, name, form) -> ARN of the managed resource
Resolver = Callable[[str, str, str], str]

# named_dependencies(spec) -> (kind, name) of resources the spec names by plain name, not `{ref:}`
NamedDependencies = Callable[[Mapping[str, Any]], tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Kind:
    """One Image Builder resource kind as imagesync manages it."""

    name: str  # manifest `kind:` and the address prefix, e.g. "ImageRecipe"
    noun: str  # the API noun in operation names, e.g. "ImageRecipe" in CreateImageRecipe
    arn_type: str  # the ARN resource type, e.g. "image-recipe"
    arn_member: str  # the member that names one resource in Get/Delete, e.g. "imageRecipeArn"
    create_arn_member: str  # the member of the Create response that holds the new ARN
    get_key: str  # the key of the Get response holding the resource
    list_key: str  # the key of the List response holding its items
    schema: str  # schema file stem
    versioned: bool
    refs: tuple[RefField, ...] = ()
    built: bool = False  # versions carry build numbers (components, workflows)
    document_member: str | None = None  # "data" for components and workflows
    update_member: str | None = None  # the ARN member of the Update call (mutable kinds)
    update_omits: frozenset[str] = field(default_factory=frozenset)  # Create members Update does not take
    # Resources a spec names by their plain name (the service looks them up at Create, so they
    # must exist first), e.g. the recipes a lifecycle policy selects.
    named_dependencies: NamedDependencies | None = None

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
        return None if self.versioned else f"Update{self.noun}"

    def arn_base(self, region: str, account: str, name: str) -> str:
        return resource_arn(region, account, self.arn_type, name)

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
        body = {k: copy.deepcopy(thaw(v)) for k, v in spec.items() if k not in IMAGESYNC_FIELDS}
        for ref in self.refs:
            _resolve_refs(body, ref, resolve)
        body["name"] = name
        if self.versioned:
            if version is None:
                raise ValueError(f"{self.name} needs a version to build its Create request")
            body["semanticVersion"] = version
        if self.document_member is not None and document is not None and "uri" not in body:
            body[self.document_member] = document
        if self.name == "ContainerRecipe" and document is not None and "dockerfileTemplateUri" not in body:
            body["dockerfileTemplateData"] = document
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
    def visit(node: Any, path: tuple[str, ...]) -> Any:
        if not path:
            return node
        head, rest = path[0], path[1:]
        if head == "*":
            if isinstance(node, list):
                return [visit(item, rest) for item in node]
            return node
        if not isinstance(node, dict) or head not in node:
            return node
        value = node[head]
        if not rest and isinstance(value, dict) and set(value) == {"ref"}:
            node[head] = resolve(ref.kinds[0], value["ref"], ref.form)
        else:
            node[head] = visit(value, rest)
        return node

    if ref.arn_key is not None:
        # list items such as recipe components: {ref: x, parameters: [...]} -> {componentArn: ARN, ...}
        items = _get(body, ref.path[:-1])
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and "ref" in item:
                item[ref.arn_key] = resolve(ref.kinds[0], item.pop("ref"), ref.form)
        return
    visit(body, ref.path)


def _get(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def freeze(value: Any) -> Any:
    """A deeply immutable copy: mappings become read-only proxies, lists become tuples."""
    from types import MappingProxyType

    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable, JSON-shaped copy of a frozen value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
