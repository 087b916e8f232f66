"""Reading component and workflow documents the way the service does on Create.

Used by the backend for requests (bad documents are client errors) and by the catalog for its
built-in documents, so the type and parameters the sandbox reports come from one reading.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from imagesync.sandbox.errors import SandboxError

Record = dict[str, Any]


MAX_ALIASES = 32
"""Aliases one document may use: plenty for a real document, far too few for an alias bomb."""


class _Loader(yaml.SafeLoader):
    """The safe loader, counting aliases so that a document cannot expand without bound."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases = getattr(self, "aliases", 0) + 1
            if self.aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"the document uses more than {MAX_ALIASES} aliases")
        return super().compose_node(parent, index)


def load(data: str) -> Any:
    """A document as the service reads it: YAML, with bounded aliases and no recursive structure.

    Raises `yaml.YAMLError` (or `ValueError` for a structure that refers to itself)."""
    loader = _Loader(data)
    try:
        doc = loader.get_single_data()
    finally:
        loader.dispose()
    json.dumps(doc, default=str)  # a recursive alias builds a structure that contains itself: ValueError
    return doc


def load_stored(data: str | None) -> Any:
    """A document the sandbox accepted before, read again (an unreadable one reads as empty)."""
    try:
        return load(data or "") or {}
    except (yaml.YAMLError, ValueError, RecursionError):
        return {}


def parse_document(data: str, member: str) -> dict[str, Any]:
    try:
        doc = load(data)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise SandboxError(
            "InvalidParameterValueException",
            f"The value supplied for parameter '{member}' is not valid. The document is not valid YAML: {exc}",
        ) from exc
    if not isinstance(doc, dict):
        raise SandboxError(
            "InvalidParameterValueException",
            f"The value supplied for parameter '{member}' is not valid. The document must be a YAML mapping.",
        )
    return doc


def component_type(doc: dict[str, Any]) -> str:
    phases = doc.get("phases")
    if not isinstance(phases, list) or not phases:
        raise SandboxError(
            "InvalidParameterValueException",
            "The value supplied for parameter 'data' is not valid. A component document needs a list of 'phases'.",
        )
    names = [ph.get("name") for ph in phases if isinstance(ph, dict)]
    return "TEST" if names == ["test"] else "BUILD"


def component_parameters(doc: dict[str, Any]) -> list[Record] | None:
    declared = doc.get("parameters") or []
    if not isinstance(declared, list):
        raise SandboxError(
            "InvalidParameterValueException",
            "The value supplied for parameter 'data' is not valid. 'parameters' must be a list of single-key maps.",
        )
    out = []
    for entry in declared:
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        ((name, spec),) = entry.items()
        spec = spec if isinstance(spec, dict) else {}
        item: Record = {"name": str(name), "type": str(spec.get("type", "string"))}
        if "default" in spec:
            item["defaultValue"] = [str(spec["default"])]
        if "description" in spec:
            item["description"] = str(spec["description"])
        out.append(item)
    return out or None


def workflow_parameters(doc: dict[str, Any]) -> list[Record] | None:
    declared = doc.get("parameters") or []
    if not isinstance(declared, list):
        raise SandboxError(
            "InvalidParameterValueException",
            "The value supplied for parameter 'data' is not valid. 'parameters' must be a list.",
        )
    out = []
    for entry in declared:
        if isinstance(entry, dict) and "name" in entry:
            item: Record = {"name": str(entry["name"]), "type": str(entry.get("type", "string"))}
            if "default" in entry:
                item["defaultValue"] = [str(entry["default"])]
            if "description" in entry:
                item["description"] = str(entry["description"])
            out.append(item)
    return out or None
