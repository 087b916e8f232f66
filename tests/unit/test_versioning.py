"""Versioning: ordering, bump rules, next-version choice and canonical hashing (property tests)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagesync import versioning
from imagesync.manifest.awstoe import load_document

nodes = st.integers(min_value=0, max_value=10_000)
versions = st.tuples(nodes, nodes, nodes)
levels = st.sampled_from(["patch", "minor", "major"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(versions)
def test_format_and_parse_round_trip(version: tuple[int, int, int]) -> None:
    assert versioning.parse(versioning.fmt(version)) == version


@given(versions, versions)
def test_ordering_is_numeric_per_node(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    # 1.10.0 > 1.9.0: comparing parsed versions agrees with comparing the node tuples
    assert (versioning.parse(versioning.fmt(a)) < versioning.parse(versioning.fmt(b))) == (a < b)


@given(versions, levels)
def test_bump_is_strictly_greater_and_resets_lower_nodes(version: tuple[int, int, int], level: str) -> None:
    bumped = versioning.bump(version, level)
    assert bumped > version
    position = ["major", "minor", "patch"].index(level)
    assert bumped[position] == version[position] + 1
    assert all(n == 0 for n in bumped[position + 1 :])
    assert bumped[:position] == version[:position]


@given(versions, versions, levels)
def test_next_version_is_max_of_spec_and_bumped_latest(
    spec: tuple[int, int, int], latest: tuple[int, int, int], level: str
) -> None:
    chosen = versioning.parse(versioning.next_version(versioning.fmt(spec), versioning.fmt(latest), level))
    assert chosen >= spec
    assert chosen > latest
    assert chosen == max(spec, versioning.bump(latest, level))


@given(versions)
def test_first_version_is_the_spec_version(spec: tuple[int, int, int]) -> None:
    assert versioning.next_version(versioning.fmt(spec), None, "major") == versioning.fmt(spec)


def test_next_version_refuses_to_pass_the_service_limit() -> None:
    with pytest.raises(ValueError, match="1073741823"):
        versioning.next_version("1.0.0", "1.0.1073741823", "patch")


@pytest.mark.parametrize("text", ["1.0", "1.0.x", "v1.0.0", "", "1.0.0.0"])
def test_parse_rejects_what_is_not_semver(text: str) -> None:
    with pytest.raises(ValueError):
        versioning.parse(text)


def test_parse_ignores_a_build_suffix() -> None:
    assert versioning.parse("1.4.2/3") == (1, 4, 2)


@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_hash_ignores_key_order(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert versioning.content_hash(value) == versioning.content_hash(reordered)
    assert versioning.canonical(value) == versioning.canonical(reordered)


@given(json_values, json_values)
def test_hash_separates_different_content(a: object, b: object) -> None:
    if versioning.canonical(a) != versioning.canonical(b):
        assert versioning.content_hash(a) != versioning.content_hash(b)


DOC = """\
schemaVersion: 1.0
parameters:
  - Users:
      type: string
      default: ec2-user
phases:
  - name: build
    steps:
      - name: One
        action: ExecuteBash
        inputs:
          commands: [echo one]
"""


@pytest.mark.parametrize(
    ("new", "level"),
    [
        (DOC.replace("echo one", "echo 1"), "patch"),
        (
            DOC + "      - name: Two\n        action: ExecuteBash\n        inputs:\n          commands: [echo two]\n",
            "minor",
        ),
        (DOC.replace("parameters:\n", "parameters:\n  - Extra:\n      type: string\n"), "minor"),
        (
            DOC.replace(
                "  - Users:\n      type: string\n      default: ec2-user\n", "  - Other:\n      type: string\n"
            ),
            "major",
        ),
        (DOC.replace("type: string", "type: integer"), "major"),
        ("# a comment only\n" + DOC, "patch"),
    ],
    ids=["step-changed", "step-added", "parameter-added", "parameter-removed", "parameter-retyped", "comment"],
)
def test_auto_level(new: str, level: str) -> None:
    assert versioning.auto_level(load_document(DOC), load_document(new)) == level


def test_auto_level_without_a_previous_document_is_patch() -> None:
    assert versioning.auto_level(None, load_document(DOC)) == "patch"


@pytest.mark.parametrize(
    ("spec", "existing", "expected"),
    [
        ("1.0.x", (), "1.0.0"),
        ("1.0.x", ("1.0.0", "1.0.4"), "1.0.5"),
        ("1.0.x", ("1.0.0", "1.1.0", "2.0.0"), "1.0.1"),  # the series, not the newest version
        ("2.3.x", ("1.0.0",), "2.3.0"),
    ],
)
def test_a_wildcard_patch_asks_for_the_next_patch_in_its_series(
    spec: str, existing: tuple[str, ...], expected: str
) -> None:
    latest = max(existing, key=versioning.parse) if existing else None
    assert versioning.next_version(spec, latest, "minor", existing) == expected
