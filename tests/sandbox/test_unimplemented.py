"""Every Image Builder operation the sandbox does not emulate answers 501 NotImplementedException.

The set is computed when the tests run: botocore's model's operations minus the backend's
handlers, so an operation implemented later simply leaves the table. Each call is a real boto3
call with input built from the model's required members, valid against the server's own checks,
so the answer is about the operation and never a validation error. botocore's legacy and
standard retry modes both leave the answer alone: one request reaches the server per call.
"""

from __future__ import annotations

import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.model import Shape

from imagesync.sandbox.backend import Backend
from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.model import service_model
from imagesync.sandbox.server import RunningSandbox, running
from imagesync.sandbox.validation import validate_input
from support import make_client

_BACKEND = Backend()
UNIMPLEMENTED = sorted(op for op in service_model().operation_names if not _BACKEND.supports(op))
# Characters tried, in order, for a character class: readable values first.
_PREFERRED = "a0bcdefghijklmnopqrstuvwxyz123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_./:=,@+ "


def _class_admits(items: list[tuple[Any, Any]], char: str) -> bool:
    negate = False
    found = False
    for op, arg in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            found |= ord(char) == arg
        elif op is sre_constants.RANGE:
            found |= arg[0] <= ord(char) <= arg[1]
        elif op is sre_constants.CATEGORY:
            found |= _category_admits(arg, char)
    return found != negate


def _category_admits(category: Any, char: str) -> bool:
    table = {
        sre_constants.CATEGORY_DIGIT: char.isdigit(),
        sre_constants.CATEGORY_NOT_DIGIT: not char.isdigit(),
        sre_constants.CATEGORY_WORD: char.isalnum() or char == "_",
        sre_constants.CATEGORY_NOT_WORD: not (char.isalnum() or char == "_"),
        sre_constants.CATEGORY_SPACE: char.isspace(),
        sre_constants.CATEGORY_NOT_SPACE: not char.isspace(),
    }
    return table.get(category, False)


def _example(parsed: Any) -> str:
    """The shortest readable string the parsed pattern matches (first alternative of a branch)."""
    out: list[str] = []
    for op, arg in parsed:
        if op is sre_constants.LITERAL:
            out.append(chr(arg))
        elif op is sre_constants.NOT_LITERAL:
            out.append(next(c for c in _PREFERRED if ord(c) != arg))
        elif op is sre_constants.ANY:
            out.append("a")
        elif op is sre_constants.IN:
            out.append(next(c for c in _PREFERRED if _class_admits(arg, c)))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _high, sub = arg
            out.append(_example(sub) * low)
        elif op is sre_constants.SUBPATTERN:
            out.append(_example(arg[-1]))
        elif op is sre_constants.BRANCH:
            out.append(_example(arg[1][0]))
        elif op is sre_constants.AT:
            continue
        else:
            raise NotImplementedError(f"pattern construct {op} in the test's value builder")
    return "".join(out)


def example_string(shape: Shape) -> str:
    meta = shape.metadata
    if "enum" in meta:
        return str(meta["enum"][0])
    if "pattern" in meta:
        return _example(sre_parse.parse(meta["pattern"]))
    return "a" * max(meta.get("min", 1), 1)


def example(shape: Shape) -> Any:
    """A minimal value for `shape`: its required members only, each the simplest valid value."""
    kind = shape.type_name
    if kind == "structure":
        return {name: example(shape.members[name]) for name in shape.required_members}
    if kind == "list":
        return [example(shape.member) for _ in range(shape.metadata.get("min", 1))]
    if kind == "map":
        return {}
    if kind == "string":
        return example_string(shape)
    if kind in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if kind in ("double", "float"):
        return float(max(shape.metadata.get("min", 1), 1))
    if kind == "boolean":
        return False
    raise NotImplementedError(f"{kind} members in the test's value builder")


def minimal_input(operation: str) -> dict[str, Any]:
    shape = service_model().operation_model(operation).input_shape
    return example(shape) if shape is not None else {}


def snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


@pytest.fixture(scope="module")
def served() -> Any:
    with running() as sandbox:
        yield sandbox


def test_the_table_is_not_empty_and_names_only_model_operations() -> None:
    # If the sandbox ever implements everything this test's table is empty; until then this
    # guards against computing the set wrongly (say, from a backend with no handlers).
    model_operations = set(service_model().operation_names)
    assert set(UNIMPLEMENTED) < model_operations
    assert "CreateComponent" not in UNIMPLEMENTED and "ListComponents" not in UNIMPLEMENTED


@pytest.mark.parametrize("operation", UNIMPLEMENTED)
def test_minimal_input_is_valid_for_the_server(operation: str) -> None:
    """The built input passes the server's model checks, so the calls below test the operation."""
    validate_input(operation, minimal_input(operation))


@pytest.mark.parametrize("mode", ["legacy", "standard"])
@pytest.mark.parametrize("operation", UNIMPLEMENTED)
def test_unimplemented_operation_answers_501_and_is_not_retried(
    served: RunningSandbox, operation: str, mode: str
) -> None:
    client = make_client(served.endpoint_url, retries={"mode": mode})  # the mode's default attempts
    before = served.stats()["operations"].get(operation, 0)
    with pytest.raises(ClientError) as excinfo:
        getattr(client, snake(operation))(**minimal_input(operation))
    response = excinfo.value.response
    assert response["Error"]["Code"] == "NotImplementedException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "NotImplementedException"
    assert response["Error"]["Message"] == (
        f"The imagesync sandbox does not implement the Image Builder operation {operation}. "
        "Implemented operations are listed in the README's sandbox section."
    )
    assert response["ResponseMetadata"].get("RetryAttempts", 0) == 0
    assert served.stats()["operations"][operation] == before + 1  # exactly one request reached it


def test_backend_refuses_unimplemented_operations_the_same_way() -> None:
    """Callers of the backend that bypass the HTTP server get the same error."""
    if not UNIMPLEMENTED:
        pytest.skip("every operation of the model is implemented")
    operation = UNIMPLEMENTED[0]
    with pytest.raises(SandboxError) as excinfo:
        Backend().handle({}, "us-east-1", operation, minimal_input(operation))
    assert (excinfo.value.code, excinfo.value.status) == ("NotImplementedException", 501)
    assert operation in excinfo.value.message


def test_an_implemented_operation_still_answers_after_refusals(served: RunningSandbox) -> None:
    client = make_client(served.endpoint_url)
    assert client.list_components()["componentVersionList"] == []
