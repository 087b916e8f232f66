"""The rest-json wire protocol of Image Builder, as the sandbox HTTP server speaks it.

Routes `METHOD /path` to an operation using the request URIs in botocore's model, turns the
querystring, URI and JSON body into one parameter dict, and serializes handler results through the
operation's output shape (so nothing the real service would not return leaks out, and timestamps
are encoded the way botocore parses them).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from botocore.model import OperationModel, Shape

from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.model import service_model


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    regex: re.Pattern[str]
    uri_members: tuple[str, ...]


@functools.lru_cache(maxsize=1)
def _routes() -> tuple[Route, ...]:
    routes = []
    model = service_model()
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?", 1)[0]
        members = tuple(re.findall(r"{([^}+]+)\+?}", path))
        pattern = re.sub(r"{([^}+]+)\+}", r"(?P<\1>.+)", path)
        pattern = re.sub(r"{([^}+]+)}", r"(?P<\1>[^/]+)", pattern)
        routes.append(Route(name, http["method"], re.compile(f"^{pattern}$"), members))
    # Literal paths first so that `/tags/{resourceArn}` never shadows a named operation.
    routes.sort(key=lambda r: len(r.uri_members))
    return tuple(routes)


def route(method: str, raw_path: str) -> tuple[str, dict[str, str]]:
    """The operation a request names, and its URI members (percent-decoded)."""
    path = raw_path.split("?", 1)[0]
    for r in _routes():
        if r.method != method:
            continue
        match = r.regex.match(path)
        if match:
            return r.operation, {k: unquote(v) for k, v in match.groupdict().items()}
    raise SandboxError(
        "UnknownOperationException",
        f"No Image Builder operation matches {method} {path}.",
    )


def parse_request(operation: str, raw_path: str, uri_params: dict[str, str], body: bytes) -> dict[str, Any]:
    """Merge body, querystring and URI members into the operation's input parameters."""
    op = service_model().operation_model(operation)
    params: dict[str, Any] = {}
    if body.strip():
        try:
            decoded = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SandboxError("SerializationException", f"The request body is not valid JSON: {exc}.") from exc
        if not isinstance(decoded, dict):
            raise SandboxError("SerializationException", "The request body must be a JSON object.")
        params.update(decoded)
    shape = op.input_shape
    if shape is None:
        return params
    query = parse_qs(raw_path.split("?", 1)[1], keep_blank_values=True) if "?" in raw_path else {}
    for member, member_shape in shape.members.items():
        location = member_shape.serialization.get("location")
        wire_name = member_shape.serialization.get("name", member)
        if location == "uri" and wire_name in uri_params:
            params[member] = uri_params[wire_name]
        elif location == "querystring" and wire_name in query:
            params[member] = _from_query(member_shape, query[wire_name])
    return params


def _from_query(shape: Shape, values: list[str]) -> Any:
    if shape.type_name == "list":
        return list(values)
    value = values[-1]
    if shape.type_name in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            return value  # validation reports the wrong type with the member's name
    if shape.type_name == "boolean":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value


def serialize_output(operation: str, result: dict[str, Any]) -> bytes:
    """Encode a handler's result through the operation's output shape."""
    op: OperationModel = service_model().operation_model(operation)
    if op.output_shape is None:
        return b"{}"
    return json.dumps(_shape_out(op.output_shape, result), separators=(",", ":")).encode()


def _shape_out(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        return {k: _shape_out(members[k], v) for k, v in value.items() if k in members and v is not None}
    if kind == "list":
        return [_shape_out(shape.member, v) for v in value]
    if kind == "map":
        return {k: _shape_out(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        return value
    return value
