"""Server-side input validation for the sandbox's Image Builder operations.

The sandbox HTTP server calls `validate_input` after it has parsed a request (JSON body,
querystring and URI members merged into one dict keyed by member name) and before the backend
handles the operation. It walks botocore's input shape for the operation and raises the first
`SandboxError` the real service would answer with.

botocore checks only required members, types and minimums on the client side, so this module
also enforces what the real service checks and botocore does not: maximums, patterns and enums.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.model import ListShape, MapShape, OperationNotFoundError, Shape, StructureShape

from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.model import service_model

# The model's account alternation leaves out `third-party` (for example the CIS components), but
# the real service accepts it. An emulator that rejected those ARNs would break real recipes.
_MODEL_ACCOUNT = "aws(?:-[a-z-]+)?"
_WIDENED_ACCOUNT = "(?:aws(?:-[a-z-]+)?|third-party)"


def _is_number(value: Any) -> bool:
    # bool is a subclass of int in Python, but JSON `true` is not a number.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_timestamp(value: Any) -> bool:
    if _is_number(value):
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "double": _is_number,
    "float": _is_number,
    "list": lambda v: isinstance(v, list),
    "map": lambda v: isinstance(v, dict),
    "structure": lambda v: isinstance(v, dict),
    "timestamp": _is_timestamp,
}


def validate_input(operation_name: str, params: dict[str, Any]) -> None:
    """Raise `SandboxError` for the first invalid member of `params`, in model order."""
    try:
        shape = service_model().operation_model(operation_name).input_shape
    except OperationNotFoundError:
        raise SandboxError("UnknownOperationException", f"Unknown operation '{operation_name}'.") from None
    if shape is None:
        return
    if not isinstance(params, dict):
        raise SandboxError(
            "InvalidRequestException",
            f"Invalid type for request: expected structure, got {type(params).__name__}.",
        )
    _check_structure(shape, params, "")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # re.ASCII: the service is Java, whose \w and \s are ASCII-only by default. A closing `$` becomes
    # `\Z`: Java's matches() takes the whole string, while Python's `$` also matches before a final
    # newline, which let a name ending in "\n" through and made a resource no ARN could name again.
    pattern = pattern.replace(_MODEL_ACCOUNT, _WIDENED_ACCOUNT)
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern, re.ASCII)


def _invalid_value(path: str, requirement: str, code: str = "InvalidParameterValueException") -> SandboxError:
    return SandboxError(
        code,
        f"The value supplied for parameter '{path}' is not valid. '{path}' {requirement}",
    )


def _check_structure(shape: StructureShape, value: dict[str, Any], prefix: str) -> None:
    required = set(shape.required_members)
    for name, member in shape.members.items():
        path = f"{prefix}.{name}" if prefix else name
        item = value.get(name)
        # botocore never serializes null, so a null member counts as absent.
        if item is None:
            if name in required:
                raise SandboxError("InvalidRequestException", f"Missing required parameter '{path}'.")
            continue
        _check(member, item, path, name)


def _check(shape: Shape, value: Any, path: str, member: str) -> None:
    kind = shape.type_name
    type_check = _TYPE_CHECKS.get(kind)
    if type_check is not None and not type_check(value):
        raise SandboxError(
            "InvalidRequestException",
            f"Invalid type for parameter '{path}': expected {kind}, got {type(value).__name__}.",
        )
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        _check_structure(shape, value, path)
    elif isinstance(shape, ListShape):
        _check_bounds(len(value), meta, path, "length")
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", member)
    elif isinstance(shape, MapShape):
        _check_bounds(len(value), meta, path, "length")
        for key, item in value.items():
            # Same path notation botocore's own validator uses for map keys and values.
            _check(shape.key, key, f"{path} (key: {key})", member)
            _check(shape.value, item, f"{path}.{key}", member)
    elif kind == "string":
        _check_bounds(len(value), meta, path, "length")
        if "enum" in meta and value not in meta["enum"]:
            raise _invalid_value(path, "must be one of: " + ", ".join(meta["enum"]))
        pattern = meta.get("pattern")
        if pattern is not None and _compiled(pattern).search(value) is None:
            # Version syntax is the one constraint with its own modeled exception.
            code = "InvalidVersionNumberException" if member == "semanticVersion" else "InvalidParameterValueException"
            raise _invalid_value(path, f"must match pattern {pattern}", code)
    elif kind in ("integer", "long", "double", "float"):
        _check_bounds(value, meta, path, "value")


def _check_bounds(measured: float, meta: dict[str, Any], path: str, what: str) -> None:
    if "min" in meta and measured < meta["min"]:
        raise _invalid_value(path, f"must have {what} greater than or equal to {meta['min']}")
    if "max" in meta and measured > meta["max"]:
        raise _invalid_value(path, f"must have {what} less than or equal to {meta['max']}")
