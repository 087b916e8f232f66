"""A document read as sent (`awstoe.as_sent`, what the content hash covers) has exactly the value
YAML's pure-Python safe loader gives, whichever parser read it: libyaml's for plain text, the pure
one for text the two could read differently, and the pure one alone where libyaml is missing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from imagesync.manifest import awstoe

ROOT = Path(__file__).resolve().parents[2]

COMPONENT = """\
name: hello
description: says hello
schemaVersion: 1.0
parameters:
  - Greeting: {type: string, default: "hi there"}
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        timeoutSeconds: 60
        maxAttempts: 3
        inputs:
          commands: ["echo {{ Greeting }}", 'echo "quoted"', echo 0x1F 1e3 .inf ~ yes no on off]
      - name: Script
        action: ExecuteBash
        inputs:
          commands:
            - |
              set -e
              if [ -f /etc/os-release ]; then cat /etc/os-release; fi
            - >-
              folded
              text
"""


def pure(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def outcome(read: Any, text: str) -> Any:
    """What `read(text)` gives, or the type of what it raises (`!!int x` raises ValueError in both)."""
    try:
        return read(text)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


def same(a: Any, b: Any) -> bool:
    """Equal with types and key order: 1, 1.0 and True are told apart (the hash tells them apart)."""
    return repr(a) == repr(b)


def repository_documents() -> list[Path]:
    found = [p for p in ROOT.rglob("*.y*ml") if ".git" not in p.parts and ".venv" not in p.parts]
    assert len(found) >= 10  # the examples' manifests and documents at least
    return sorted(found)


@pytest.mark.parametrize("path", repository_documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_in_the_repository_reads_as_the_pure_loader_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert same(awstoe.as_sent(text), pure(text))


def test_a_plain_document_goes_to_libyaml_and_reads_the_same() -> None:
    assert awstoe._CLoader is not None, "PyYAML without libyaml: the fast path is never taken here"
    assert awstoe._libyaml_reads_alike(COMPONENT)
    assert same(awstoe.as_sent(COMPONENT), pure(COMPONENT))
    assert same(yaml.load(COMPONENT, Loader=yaml.CSafeLoader), pure(COMPONENT))  # noqa: S506


@pytest.mark.parametrize(
    "text",
    [
        "released: 2024-01-02T10:00:00Z\nday: 2024-01-02\n",
        "base: &b {a: 1}\nchild:\n  <<: *b\n  c: 2\n",
        "%YAML 1.1\n---\na: 1\n",
        "a:\tb\n",
        "a: 1\r\nb: 2\r\n",
        "a: caf\u00e9\n",
        "a: x\u0085y\n",
        "a: \u2028\n",
        "\ufeffa: 1\n",
    ],
)
def test_text_the_parsers_could_read_differently_goes_to_the_pure_parser(text: str) -> None:
    assert not awstoe._libyaml_reads_alike(text)
    assert same(awstoe.as_sent(text), pure(text))


def test_timestamps_keep_the_values_the_hash_has_always_covered() -> None:
    value = awstoe.as_sent("commands: [2024-01-02T10:00:00Z, 2024-01-02]\n")
    assert [type(v).__name__ for v in value["commands"]] == ["datetime", "date"]


def test_without_libyaml_the_pure_parser_reads_every_document() -> None:
    # A PyYAML built without libyaml has no CSafeLoader at all.
    script = (
        "import yaml, sys\n"
        "del yaml.CSafeLoader\n"
        "from imagesync.manifest import awstoe\n"
        "assert awstoe._CLoader is None\n"
        "text = sys.stdin.read()\n"
        "print(repr(awstoe.as_sent(text)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=COMPONENT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == repr(pure(COMPONENT))


# Mostly ASCII YAML punctuation, so that much of what is generated takes the libyaml path, with a
# few of the characters that send text to the pure parser.
TOKENS = [
    "\n", "\n", "\n", " ", "  ", "    ", ": ", ":", "- ", "-", "? ", ",", "[", "]", "{", "}", "#", "# c",
    "'", '"', "|", "|-", "|+", ">", ">-", "&a ", "*a", "!!str ", "!!int ", "!!float ", "!!binary ", "!x ",
    "---\n", "...\n", "~", "null", "true", "yes", "No", "on", "0x1F", "0o17", "017", "1_000", "1e3", "1.0",
    ".inf", "-.Inf", ".nan", "12:30:00", "1:20", "+1", "-0", "0.", "\\", "\\n", "%", "@", "`", "=",
    "name: ", "steps:", "phases:", "schemaVersion: 1.0", "a", "b", "x y", "1", "0",
    "\t", "\r\n", "é", "2024-01-02", "<<: *a", "|#", ">2#",
]
texts = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(st.characters(max_codepoint=126), max_size=4)), max_size=30)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts.map("".join))
def test_generated_text_reads_as_the_pure_loader_reads_it(text: str) -> None:
    fast = awstoe._libyaml_reads_alike(text)
    event("libyaml" if fast else "pure")
    expected = outcome(pure, text)
    assert same(outcome(awstoe.as_sent, text), expected)
    if fast:
        by_libyaml = outcome(lambda t: yaml.load(t, Loader=yaml.CSafeLoader), text)  # noqa: S506
        if not isinstance(by_libyaml, type):  # what libyaml refuses, as_sent asks the pure parser
            assert same(by_libyaml, expected)
