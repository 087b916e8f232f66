"""`yamlloc.dump` writes exactly what PyYAML's own emitter writes, whichever emitter it uses.

An inline component document is sent, and its content hash computed, as this text: one character
of difference would publish a new version of every component on upgrade. libyaml's emitter is
used only where it writes the same text; these tests compare against PyYAML's pure-Python
`SafeDumper` on arbitrary values, and check that real AWSTOE documents take the fast path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagesync.manifest import yamlloc

ROOT = Path(__file__).resolve().parents[2]
needs_libyaml = pytest.mark.skipif(yamlloc._FAST_DUMPER is None, reason="PyYAML built without libyaml")


def pure(value: Any) -> str:
    text: str = yaml.dump(value, Dumper=yaml.SafeDumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return text


ASCII = st.sampled_from([chr(c) for c in range(0x20, 0x7F)] + ["\n", "\t"])
KEY = st.sampled_from([chr(c) for c in range(0x20, 0x7F)])
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)  # every plane but surrogates
TRICKY = st.sampled_from(
    ["", "yes", "no", "~", "1.0", "0x1F", "1e3", " a", "a: b", "#x", "- x", "a\nb\n", "a\n", "\r", "x\r\n",
     "\x85", "\u2028", "\ufeffx", "\U0001f60d", "'", '"', "*a", "&a", "!x", "%", "@", "`", "word " * 40]
)


def values(text: st.SearchStrategy[str], tricky: bool = True) -> st.SearchStrategy[Any]:
    """Nested lists and mappings of scalars; `tricky` adds strings and keys libyaml writes its own way."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
    keys: st.SearchStrategy[Any] = st.text(KEY, min_size=1, max_size=64)
    if tricky:
        scalars, keys = st.one_of(scalars, TRICKY), st.one_of(text, TRICKY, st.integers())
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=25,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(values(st.text(ASCII, max_size=200)), values(ANY_TEXT)))
def test_dump_writes_what_pyyamls_own_emitter_writes(value: Any) -> None:
    assert yamlloc.dump(value) == pure(value)


@needs_libyaml
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.text(KEY, min_size=1, max_size=64), values(st.text(ASCII, max_size=300), tricky=False),
                       min_size=1))
def test_printable_ascii_mappings_take_libyamls_emitter_and_match(value: dict[str, Any]) -> None:
    assert yamlloc._plain(value)
    assert yaml.dump(value, Dumper=yamlloc._FAST_DUMPER, sort_keys=False, default_flow_style=False,
                     allow_unicode=True) == pure(value)


@pytest.mark.parametrize(
    "value",
    [{"": 1}, {"a\nb": 1}, {"k" * 65: 1}, {"a": "\r"},
     {"a": ["\x85"]}, {"a": {"b": "\U0001f60d"}}, {1: "a"}, "scalar", ["a"], {"a": object()}],
    ids=["empty key", "newline in key", "long key", "carriage return", "next line", "astral", "integer key",
         "scalar", "list", "other type"],
)
def test_what_libyaml_writes_differently_takes_pyyamls_emitter(value: Any) -> None:
    assert not (isinstance(value, dict) and yamlloc._plain(value))


@needs_libyaml
def test_the_example_component_documents_take_the_fast_path() -> None:
    documents = []
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "Component" and "document" in (doc.get("spec") or {}):
                documents.append(doc["spec"]["document"])
    assert documents, "the examples hold inline component documents"
    for document in documents:
        assert yamlloc._plain(document)
        assert yamlloc.dump(document) == pure(document)
