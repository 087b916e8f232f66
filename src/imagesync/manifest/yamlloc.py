"""YAML loading that remembers where every node came from, and refuses what it cannot trust.

Documents are composed with PyYAML's safe loader and constructed here into plain Python values
(dict, list, str, int, float, bool, None) plus a side table from each value's path to its line and
column, so later checks can name the exact place of a problem while working on plain data.
Duplicate keys are errors; alias expansion, nesting depth and input size are bounded so a YAML
alias bomb or a huge file fails with a clear message instead of exhausting memory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from imagesync.errors import Location
from imagesync.manifest.problems import Problems

Path = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it (same nodes and marks, about 10x faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml's emitter, for the text `dump` can trust it with (see there).
_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", None)
_PLAIN_TEXT = re.compile(r"[\t\n\x20-\x7e]*")
_PLAIN_KEY = re.compile(r"[\x20-\x7e]{1,64}")
_PLAIN_SCALARS = (bool, int, float, type(None), dt.date)
_STR_TAG = "tag:yaml.org,2002:str"

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 100_000  # per YAML document: a manifest is small; an alias bomb is not
MAX_DEPTH = 64


@dataclass
class Located:
    """One YAML document: its plain value and the location of every node, by path."""

    value: Any
    file: str
    # Each node's line and column, packed into one int (`_pack`): a tuple per node took a
    # quarter of the memory of loading a large estate.
    marks: dict[Path, int] = field(default_factory=dict)

    def at(self, path: Path = ()) -> Location:
        """The location of `path`, or of its nearest ancestor that exists in the document."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        line, column = divmod(self.marks.get(path, _pack(1, 1)), _COLUMNS)
        return Location(self.file, line, column)

    def sub(self, path: Path) -> Located:
        """The part of this document under `path`, with paths re-rooted there."""
        n = len(path)
        value = self.value
        for key in path:
            value = value[key]
        marks = {p[n:]: m for p, m in self.marks.items() if p[:n] == path}
        return Located(value, self.file, marks)


def dump(value: Any) -> str:
    """`value` as YAML block text, keys in their order, as `yaml.safe_dump` writes it.

    That text is what a component's inline document is sent as, and what its content hash reads,
    so it must never change. libyaml's emitter writes it several times faster, and identically for
    a mapping whose values are printable ASCII, tabs and newlines, and whose keys are printable
    ASCII of 1 to 64 characters. Elsewhere the two differ (libyaml escapes characters outside the
    Basic Multilingual Plane, quotes carriage returns and U+0085 its own way, does not fold a long
    quoted key, and marks the end of a lone scalar), so any other value goes through PyYAML's own
    emitter.
    """
    fast = _FAST_DUMPER is not None and isinstance(value, dict) and _plain(value)
    dumper = _FAST_DUMPER if fast else yaml.SafeDumper
    text: str = yaml.dump(value, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return text


def _plain(value: Any) -> bool:
    """Holds only what libyaml's emitter writes as PyYAML's does (see `dump`)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not _PLAIN_TEXT.fullmatch(item):
                return False
        elif isinstance(item, dict):
            for key, member in item.items():
                if not isinstance(key, str) or not _PLAIN_KEY.fullmatch(key):
                    return False
                pending.append(member)
        elif isinstance(item, list):
            pending.extend(item)
        elif not isinstance(item, _PLAIN_SCALARS):
            return False
    return True


_COLUMNS = 1 << 24  # a line's columns, in a packed mark; more than a file's bytes (MAX_FILE_BYTES)


def _pack(line: int, column: int) -> int:
    return line * _COLUMNS + column


class _Limits(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


class _Builder:
    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems
        self.count = 0
        self.scalars = yaml.constructor.SafeConstructor()

    def build(self, node: Node) -> Located:
        self.count = 0
        doc = Located(None, self.file)
        try:
            doc.value = self._value(node, (), doc.marks, 0)
        finally:
            # The constructor caches every node it constructs (for aliases); anchors never span
            # documents, so dropping them here lets each document's node tree be freed once built.
            self.scalars.constructed_objects.clear()
            self.scalars.recursive_objects.clear()
        return doc

    def _mark(self, node: Node) -> int:
        return _pack(node.start_mark.line + 1, node.start_mark.column + 1)

    def _value(self, node: Node, path: Path, marks: dict[Path, int], depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Limits(node, f"the document expands to more than {MAX_NODES} nodes (a YAML alias bomb?)")
        if depth > MAX_DEPTH:
            raise _Limits(node, f"the document nests deeper than {MAX_DEPTH} levels")
        marks.setdefault(path, self._mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            return [self._value(item, (*path, i), marks, depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            return self._mapping(node, path, marks, depth)
        raise _Limits(node, f"unsupported YAML node {type(node).__name__}")

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag == _STR_TAG:
            return node.value  # what SafeConstructor makes of a string, without its dispatch
        try:
            value = self.scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise _Limits(node, f"cannot read this value: {exc.problem}") from exc
        except Exception as exc:  # noqa: BLE001
            # `!!int abc`, `!!int ''`: PyYAML's scalar constructors raise plain ValueError,
            # IndexError, KeyError... for bad typed scalars; all of them mean "bad value here".
            raise _Limits(node, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}") from exc
        if isinstance(value, (dt.date, dt.datetime)):
            return node.value  # keep dates as written: manifests are JSON-shaped
        if isinstance(value, bytes):
            raise _Limits(node, "binary values are not supported in manifests")
        return value

    def _mapping(self, node: MappingNode, path: Path, marks: dict[Path, int], depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        pairs = list(node.value)
        for key_node, value_node in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key_node, ScalarNode):
                raise _Limits(key_node, "mapping keys must be plain strings")
            key = str(self._scalar(key_node))
            if key in seen:
                first = seen[key].start_mark
                self.problems.add(
                    Location(self.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1),
                    f"duplicate key '{key}' (first defined at line {first.line + 1}, column {first.column + 1})",
                )
                continue
            seen[key] = key_node
            at = (*path, key)
            marks[at] = self._mark(key_node)
            result[key] = self._value(value_node, at, marks, depth + 1)
        for key, (key_node, value_node) in self._merged(node, 0).items():
            if key not in result:
                marks.setdefault((*path, key), self._mark(key_node))
                result[key] = self._value(value_node, (*path, key), marks, depth + 1)
        return result

    def _merged(self, node: MappingNode, depth: int) -> dict[str, tuple[Node, Node]]:
        """The pairs that `<<` merge keys bring into `node`, by key, following merges inside merges.

        As in YAML's merge-key rules: a mapping's own keys win over merged ones, and an earlier
        mapping in a `<<: [*a, *b]` list wins over a later one. Each level keeps one pair per key,
        so a chain of merges costs no more than the keys it holds.
        """
        if depth > MAX_DEPTH:
            raise _Limits(node, f"merge keys ('<<') nest deeper than {MAX_DEPTH} levels")
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if key_node.tag != "tag:yaml.org,2002:merge":
                continue
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    raise _Limits(value_node, "a merge key ('<<') needs a mapping or a list of mappings")
                own: dict[str, tuple[Node, Node]] = {}
                for k, v in source.value:
                    if k.tag == "tag:yaml.org,2002:merge" or not isinstance(k, ScalarNode):
                        continue
                    own.setdefault(str(self._scalar(k)), (k, v))
                for key, pair in {**self._merged(source, depth + 1), **own}.items():
                    out.setdefault(key, pair)
                self.count += len(own)
                if self.count > MAX_NODES:
                    raise _Limits(node, f"the document expands to more than {MAX_NODES} nodes (a YAML alias bomb?)")
        return out


def load_text(text: str, file: str, problems: Problems) -> list[Located]:
    """Every YAML document in `text`; problems go to `problems` and broken documents are skipped."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        problems.add(Location(file, 1, 1), f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return []
    docs: list[Located] = []
    builder = _Builder(file, problems)
    # libyaml recurses in C and crashes on pathological nesting; such input goes to the Python
    # parser, whose RecursionError is reported as a problem below.
    loader = yaml.SafeLoader if _looks_deep(text) else _LOADER
    try:
        for node in yaml.compose_all(text, Loader=loader):
            if node is None or _empty(node):
                continue  # an empty document: a trailing `---`, or `---` twice in a row
            try:
                docs.append(builder.build(node))
            except _Limits as exc:
                mark = exc.node.start_mark
                problems.add(Location(file, mark.line + 1, mark.column + 1), exc.message)
                return docs
            except RecursionError:
                problems.add(Location(file, node.start_mark.line + 1, 1), "the document nests too deeply")
                return docs
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.add(Location(file, line, column), f"invalid YAML: {exc.problem or exc.context}")
    except yaml.YAMLError as exc:
        problems.add(Location(file, 1, 1), f"invalid YAML: {exc}")
    except RecursionError:
        problems.add(Location(file, 1, 1), "invalid YAML: the document nests too deeply")
    return docs


def _empty(node: Node) -> bool:
    """True for the node of a document with no content (not for an explicit `null` or `~`)."""
    return (
        isinstance(node, ScalarNode)
        and node.tag == "tag:yaml.org,2002:null"
        and node.value == ""
        and node.start_mark.index == node.end_mark.index
    )


def _looks_deep(text: str) -> bool:
    """A cheap over-estimate of nesting: open flow brackets, or very deep indentation."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    if deepest > MAX_DEPTH:
        return True
    return any(len(line) - len(line.lstrip(" -")) > 4 * MAX_DEPTH for line in text.splitlines())


def load_file(path: str, display: str, problems: Problems) -> list[Located]:
    """Read and parse one file; `display` is the name used in problems (relative to the root)."""
    try:
        raw = read_regular(path, MAX_FILE_BYTES + 1)
    except NotRegularFile as exc:
        problems.add(Location(display), f"is not a regular file ({exc.what}); manifests must be regular files")
        return []
    except OSError as exc:
        problems.add(Location(display), f"cannot read the file: {exc.strerror or exc}")
        return []
    if len(raw) > MAX_FILE_BYTES:
        problems.add(Location(display, 1, 1), f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(Location(display, 1, 1), f"the file is not UTF-8 text (byte {exc.start})")
        return []
    return load_text(text, display, problems)


class NotRegularFile(OSError):
    """A path that names a FIFO, a device, a socket or a directory: never read, it could block."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _kind_of(mode: int) -> str:
    for test, what in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def check_regular(path: str | os.PathLike[str]) -> None:
    """Raise NotRegularFile unless `path` (links followed) is a regular file; OSError if it is absent."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(_kind_of(mode))


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """Up to `limit` bytes of a regular file; NotRegularFile for anything else, without blocking.

    Opened non-blocking and checked with fstat, so a FIFO swapped in after a stat still cannot hang.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(_kind_of(mode))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(limit)
    finally:
        os.close(fd)
