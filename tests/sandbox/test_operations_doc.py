"""The README's sandbox Operations lists match the backend, so they cannot go stale.

Both sets are computed from botocore's model and the backend's handlers when the test runs; the
README holds them as backticked operation names between marker comments. When an operation is
implemented, the failure says exactly which names to move.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagesync.sandbox.backend import Backend
from imagesync.sandbox.model import service_model

README = Path(__file__).resolve().parents[2] / "README.md"
_BACKEND = Backend()
MODEL_OPERATIONS = set(service_model().operation_names)
IMPLEMENTED = {op for op in MODEL_OPERATIONS if _BACKEND.supports(op)}
SETS = {"implemented": IMPLEMENTED, "unimplemented": MODEL_OPERATIONS - IMPLEMENTED}


def listed(marker: str, text: str) -> list[str]:
    """The backticked names between `<!-- sandbox-MARKER:start -->` and `...:end -->`."""
    match = re.search(rf"<!-- sandbox-{marker}:start -->\n(.*?)<!-- sandbox-{marker}:end -->", text, re.S)
    assert match, f"README.md has no <!-- sandbox-{marker}:start --> ... <!-- sandbox-{marker}:end --> block"
    return re.findall(r"`([A-Za-z]+)`", match.group(1))


def staleness(marker: str, expected: set[str], names: list[str]) -> list[str]:
    """What to change between the README's markers, one instruction per line; empty when current."""
    problems = []
    missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    where = f"between <!-- sandbox-{marker}:start/end --> in README.md"
    if missing:
        problems.append(f"add {', '.join(f'`{n}`' for n in missing)} {where}")
    if extra:
        problems.append(f"remove {', '.join(f'`{n}`' for n in extra)} {where}")
    if duplicated:
        problems.append(f"list {', '.join(f'`{n}`' for n in duplicated)} only once {where}")
    if names != sorted(names):
        problems.append(f"keep the names in alphabetical order {where}")
    return problems


@pytest.mark.parametrize("marker", sorted(SETS))
def test_readme_lists_exactly_the_backends_operations(marker: str) -> None:
    names = listed(marker, README.read_text(encoding="utf-8"))
    problems = staleness(marker, SETS[marker], names)
    assert not problems, "the sandbox's Operations lists are stale:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("names", "expected", "instructions"),
    [
        (["A", "B"], {"A", "B"}, []),
        (["A"], {"A", "B"}, ["add `B`"]),
        (["A", "B", "C"], {"A", "B"}, ["remove `C`"]),
        (["A", "A", "B"], {"A", "B"}, ["list `A` only once"]),
        (["B", "A"], {"A", "B"}, ["keep the names in alphabetical order"]),
        (["A", "D"], {"A", "B", "C"}, ["add `B`, `C`", "remove `D`"]),
    ],
)
def test_staleness_says_what_to_change(names: list[str], expected: set[str], instructions: list[str]) -> None:
    problems = staleness("unimplemented", expected, names)
    assert [p.split(" between ")[0] for p in problems] == instructions
    assert all(p.endswith("between <!-- sandbox-unimplemented:start/end --> in README.md") for p in problems)


def test_the_two_lists_partition_the_model() -> None:
    text = README.read_text(encoding="utf-8")
    implemented, unimplemented = listed("implemented", text), listed("unimplemented", text)
    assert not set(implemented) & set(unimplemented)
    assert set(implemented) | set(unimplemented) == MODEL_OPERATIONS
