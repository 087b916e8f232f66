"""The Terraform-like text plan: what `plan` prints and what `apply` asks to confirm.

One section per target: a header, one block per pending change, then drift, errors and warnings;
a closing summary line. The symbols are chosen not to collide with Terraform's (`-/+` and `+/-`
mean replace there, and nothing is replaced here):

    + create            a new resource, or the first version of a versioned one
    ^ publish           a new version of a versioned resource: `1.4.2 -> 1.4.3`
    ~ update            a mutable resource changed in place (or its tags)
    - delete            a whole resource, every version listed
    - delete versions   older versions beyond retainVersions, each listed

Nothing is hidden: a create lists its fields, a multi-line string (a document, a command, a
Dockerfile, user data) is shown as a line-level unified diff with context, and a long one-line
value shows the span that changed in full. Sensitive values are masked (`render.mask`); ANSI
colour only when asked for.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from imagesync.plan_model import (
    CREATE,
    DELETE,
    DELETE_VERSIONS,
    NO_OP,
    PUBLISH,
    UPDATE,
    DiffItem,
    Plan,
    ResourceChange,
    plain,
)
from imagesync.render.mask import SENSITIVE, is_masked, mask_diff_value, mask_document

INLINE_CHARS = 100  # longer values (or any with a newline) are shown on lines of their own
SPAN_CONTEXT = 30  # characters kept either side of the changed span of a long one-line value
DIFF_CONTEXT = 3  # unchanged lines either side of a changed line in a unified diff
NO_CHANGES = "No changes. Image Builder matches the manifests."


def empty_shard(shard: Any) -> str:
    index, count = shard
    return f"No changes: shard {index}/{count} holds none of the project's targets."
REMOVED_NOTE = "  (removed: Image Builder's default applies)"
NO_NEWLINE = "\\ no newline at end"

SYMBOLS = {CREATE: "+", PUBLISH: "^", UPDATE: "~", DELETE: "-", DELETE_VERSIONS: "-", NO_OP: "="}
_DIFF_SYMBOLS = {"add": "+", "remove": "-", "change": "~"}
_COLOURS = {"+": "32", "~": "33", "-": "31", "^": "36", "!": "33", "x": "31"}
_RESET = "\033[0m"

_CHANGE_INDENT = "  "
_DETAIL_INDENT = "      "
_DRIFT_INDENT = "    "
_DRIFT_DETAIL_INDENT = "        "
_BLOCK_INDENT = "    "  # extra indent for the lines of a multi-line value under its path

Paint = Callable[[str], str]


def render_plan(plan: Plan, *, color: bool = False) -> str:
    """The plan as text, ending with the summary line (or the no-changes line) and a newline."""
    paint = _painter(color)
    lines: list[str] = []
    for target in plan.targets:
        lines.append(f"Target {target.target} ({target.region}, account {target.account})")
        pending = target.pending
        for change in pending:
            lines.append("")
            lines.extend(_change_block(change, paint, _CHANGE_INDENT, _DETAIL_INDENT, header(change, paint)))
        if target.drift:
            lines.append("")
            lines.append(f"{_CHANGE_INDENT}Drift detected:")
            for change in target.drift:
                head = f"{paint(SYMBOLS.get(change.action, '~'))} {change.address}"
                lines.extend(_change_block(change, paint, _DRIFT_INDENT, _DRIFT_DETAIL_INDENT, head))
        if target.conflicts:
            lines.append("")
            for conflict in target.conflicts:
                lines.append(f"{_CHANGE_INDENT}{paint('x')} error: {conflict.address}: {conflict.message}")
        if target.warnings:
            lines.append("")
            for warning in target.warnings:
                text = f"\n{_CHANGE_INDENT}  ".join(str(warning).splitlines() or [""])
                lines.append(f"{_CHANGE_INDENT}{paint('!')} {text}")
        if not pending and not plan.refresh_only:
            lines.append("")
            lines.append(f"{_CHANGE_INDENT}No changes for this target.")
        lines.append("")
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n"


def summary_line(plan: Plan) -> str:
    if plan.errored:
        count = len(plan.conflicts)
        return f"Plan failed: {_plural(count, 'error')}; nothing can be applied until they are resolved."
    if plan.refresh_only:
        drift = plan.summary()["drift"]
        if not drift:
            return "No drift. Image Builder matches what imagesync last applied."
        return f"Refresh only: {_plural(drift, 'drifted resource')} found; nothing will be changed."
    if not plan.targets and plan.options.get("shard"):
        return empty_shard(plan.options["shard"])
    if not plan.has_changes:
        return NO_CHANGES
    s = plan.summary()
    return (
        f"Plan: {s['publish']} to publish, {s['create']} to create, {s['update']} to update, {s['delete']} to delete."
    )


def header(change: ResourceChange, paint: Paint) -> str:
    """The first line of a change's block: symbol, action, address and versions."""
    address = change.address
    symbol = paint(SYMBOLS.get(change.action, "?"))
    version = change.version
    reason = f" ({version.reason})" if version and version.reason else ""
    if change.action == PUBLISH and version is not None:
        return f"{symbol} publish {address} {version.previous or '(none)'} -> {version.next}{reason}"
    if change.action == CREATE and version is not None:
        return f"{symbol} create {address} {version.next}{reason}"
    if change.action == DELETE and change.deleted_versions:
        return f"{symbol} delete {address} (versions {', '.join(change.deleted_versions)})"
    if change.action == DELETE_VERSIONS:
        return f"{symbol} delete versions {address}: {', '.join(change.deleted_versions)}"
    return f"{symbol} {change.action} {address}"


def _change_block(change: ResourceChange, paint: Paint, indent: str, detail: str, head: str) -> list[str]:
    lines = [f"{indent}{head}"]
    if change.reason and not (change.version and change.version.reason == change.reason):
        lines.append(f"{detail}# {change.reason}")
    if change.depends_on:
        lines.append(f"{detail}depends on: {', '.join(change.depends_on)}")
    lines.extend(_upload_lines(change, detail))
    if change.action == CREATE and change.after is not None:
        lines.extend(_create_lines(change, paint, detail))  # every field it sends, not a diff from nothing
        return lines
    for item in change.diff:
        lines.extend(_diff_lines(item, change.sensitive_paths, paint, detail))
    return lines


def _upload_lines(change: ResourceChange, detail: str) -> list[str]:
    """A document too large to send inline is uploaded first: say what goes where."""
    return [
        f"{detail}uploads the document ({int(call.params.get('ContentLength', 0)):,} bytes) to "
        f"s3://{call.params.get('Bucket')}/{call.params.get('Key')} (unless it is there already)"
        for call in change.calls
        if call.operation == "PutObject"
    ]


def _create_lines(change: ResourceChange, paint: Paint, detail: str) -> list[str]:
    """A create shows every field it sends (tags apart from imagesync's own bookkeeping)."""
    after = mask_document(dict(change.after or {}), change.sensitive_paths)
    lines: list[str] = []
    spec = after.get("spec") or {}
    for key in sorted(spec):
        lines.extend(_value_lines(paint("+"), f"spec.{key}", spec[key], detail))
    tags = {k: v for k, v in (after.get("tags") or {}).items() if not str(k).startswith("imagesync:")}
    for key in sorted(tags):
        lines.extend(_value_lines(paint("+"), f"tags.{key}", tags[key], detail))
    return lines


def _diff_lines(item: DiffItem, sensitive_paths: tuple[str, ...], paint: Paint, detail: str) -> list[str]:
    symbol = paint(_DIFF_SYMBOLS.get(item.op, "?"))
    if is_masked(item.path, sensitive_paths):
        shown = {"add": SENSITIVE, "remove": SENSITIVE}.get(item.op, f"{SENSITIVE} -> {SENSITIVE}")
        if item.op == "remove":
            shown += REMOVED_NOTE
        return [f"{detail}{symbol} {item.path}: {shown}"]
    old = mask_diff_value(item.path, item.old, sensitive_paths)
    new = mask_diff_value(item.path, item.new, sensitive_paths)
    if item.op == "add":
        return _value_lines(symbol, item.path, new, detail)
    if item.op == "remove":
        lines = _value_lines(symbol, item.path, old, detail)
        lines[0] += REMOVED_NOTE
        return lines
    return _changed_lines(symbol, item.path, old, new, detail, paint)


def _value_lines(symbol: str, path: str, value: Any, detail: str) -> list[str]:
    """`path: value` on one line when short, else the value's lines indented under the path."""
    if _fits_inline(value):
        return [f"{detail}{symbol} {path}: {_scalar(value)}"]
    if isinstance(value, str):
        head = f"{detail}{symbol} {path}: {_block_marker(value)}"
        body = [_line(text) for text, _ in _split(value)]
    else:
        head = f"{detail}{symbol} {path}:"
        body = [_line(text) for text in _structure(value)]
    return [head, *(f"{detail}{_BLOCK_INDENT}{line}".rstrip() for line in body)]


def _changed_lines(symbol: str, path: str, old: Any, new: Any, detail: str, paint: Paint) -> list[str]:
    if _fits_inline(old) and _fits_inline(new):
        return [f"{detail}{symbol} {path}: {_scalar(old)} -> {_scalar(new)}"]
    if isinstance(old, str) and isinstance(new, str) and "\n" not in old and "\n" not in new:
        before, after = changed_span(old, new)
        return [
            f"{detail}{symbol} {path}:",
            f"{detail}{_BLOCK_INDENT}{paint('-')} {before}",
            f"{detail}{_BLOCK_INDENT}{paint('+')} {after}",
        ]
    old_text, new_text = _as_text(old), _as_text(new)
    if old_text == new_text:
        # Two different values whose readable forms coincide: fall back to JSON, which never does.
        old_text, new_text = _json(old, indent=2), _json(new, indent=2)
    lines = [f"{detail}{symbol} {path}:"]
    lines.extend(f"{detail}{_BLOCK_INDENT}{line}" for line in unified(old_text, new_text, paint))
    return lines


def unified(old: str, new: str, paint: Paint = lambda s: s) -> list[str]:
    """A line-level diff of two texts with DIFF_CONTEXT lines of context either side of a change.

    Unchanged lines further away are folded into `# (N unchanged lines hidden)`; a last line without
    a newline is followed by `\\ no newline at end`, so a change to the final newline shows too.
    Lines that would hide a difference (trailing blanks, control characters) are shown JSON-quoted.
    """
    a, b = _split(old), _split(new)
    if a == b:
        return []
    render = _line_renderer(a + b)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)  # autojunk can pair equal lines
    out: list[str] = []
    shown_to = 0
    for group in matcher.get_grouped_opcodes(DIFF_CONTEXT):
        if group[0][1] > shown_to:
            out.append(_hidden(group[0][1] - shown_to))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for line in a[i1:i2]:
                    out.extend(render(" ", line))
                continue
            for line in a[i1:i2]:
                out.extend(render(paint("-"), line))
            for line in b[j1:j2]:
                out.extend(render(paint("+"), line))
        shown_to = group[-1][2]
    if shown_to < len(a):
        out.append(_hidden(len(a) - shown_to))
    return out


def changed_span(old: str, new: str) -> tuple[str, str]:
    """Both one-line values cut to the span that differs plus SPAN_CONTEXT characters either side.

    The differing span itself is never cut, so a change anywhere in a long value is visible; each
    cut is JSON-quoted (a trailing blank or a control character shows), with `...` outside the
    quotes where text was left out.
    """
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    start = max(0, prefix - SPAN_CONTEXT)

    def cut(text: str) -> str:
        end = min(len(text), len(text) - suffix + SPAN_CONTEXT)
        return ("..." if start else "") + _scalar(text[start:end]) + ("..." if end < len(text) else "")

    return cut(old), cut(new)


# --- value formatting ---------------------------------------------------------------------------

# Characters a terminal would act on or hide instead of showing: C0/C1 controls, line and
# paragraph separators, bidirectional overrides and zero-width characters.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./:@-]+")

Line = tuple[str, bool]  # a line's text and whether a newline ends it


def _fits_inline(value: Any) -> bool:
    return not _has_newline(value) and len(_scalar(value)) <= INLINE_CHARS


def _has_newline(value: Any) -> bool:
    if isinstance(value, str):
        return "\n" in value
    if isinstance(value, Mapping):
        return any(_has_newline(k) or _has_newline(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_newline(v) for v in value)
    return False


def _scalar(value: Any) -> str:
    """Compact JSON that is safe on a terminal (still valid JSON: the extra escapes decode back)."""
    if value == SENSITIVE:
        return SENSITIVE  # a masked value reads the same wherever it is
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", _json(value))


def _as_text(value: Any) -> str:
    """A string as itself, anything else in the indented block form of `_structure`."""
    return value if isinstance(value, str) else "".join(line + "\n" for line in _structure(value))


def _structure(value: Any) -> list[str]:
    """A YAML-like view of a value: one key or item a line, multi-line strings as `|` blocks
    (so a changed line inside a command is a changed line here), other scalars as JSON."""
    if isinstance(value, Mapping) and value:
        lines: list[str] = []
        for key, item in value.items():
            shown = str(key) if _PLAIN_KEY.fullmatch(str(key)) else _scalar(str(key))
            lines.extend(_nested(f"{shown}:", item, "  "))
        return lines
    if isinstance(value, (list, tuple)) and value:
        lines = []
        for item in value:
            lines.extend(_nested("-", item, "  "))
        return lines
    return [_scalar(value)]


def _nested(lead: str, value: Any, indent: str) -> list[str]:
    if isinstance(value, str) and "\n" in value:
        return [f"{lead} {_block_marker(value)}", *(indent + text for text, _ in _split(value))]
    if isinstance(value, (Mapping, list, tuple)) and value:
        inner = _structure(value)
        if lead == "-" and isinstance(value, Mapping):  # `- key: value`, the compact YAML list item
            return [f"- {inner[0]}", *(indent + line for line in inner[1:])]
        return [lead, *(indent + line for line in inner)]
    return [f"{lead} {_scalar(value)}"]


def _block_marker(text: str) -> str:
    return "|" if text.endswith("\n") else "|-"  # YAML's keep / strip the final newline


def _split(text: str) -> list[Line]:
    """Lines split at newlines only (a carriage return or form feed is part of its line)."""
    parts = text.split("\n")
    lines = [(part, True) for part in parts[:-1]]
    if parts[-1]:
        lines.append((parts[-1], False))
    return lines


def _line(text: str, quote: bool = False) -> str:
    """One line of a multi-line value as shown: itself when that is unambiguous, else JSON-quoted."""
    if quote or _UNSAFE.search(text) or text != text.rstrip():
        return _scalar(text)
    return text


def _line_renderer(lines: list[Line]) -> Callable[[str, Line], list[str]]:
    """Render diff lines so that two different lines never look the same: lines are shown as they
    are, unless that makes two of them coincide (`a ` quoted vs a line reading `"a "`), then all quoted."""
    shown: dict[tuple[str, bool], Line] = {}
    quote = False
    for line in set(lines):
        key = (_line(line[0]), line[1])
        if shown.setdefault(key, line) != line:
            quote = True
            break

    def render(symbol: str, line: Line) -> list[str]:
        out = [f"{symbol} {_line(line[0], quote=quote)}".rstrip()]
        if not line[1]:
            out.append(NO_NEWLINE)
        return out

    return render


def _hidden(count: int) -> str:
    return f"  # ({_plural(count, 'unchanged line')} hidden)"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _json(value: Any, indent: int | None = None) -> str:
    try:
        return json.dumps(plain(value), ensure_ascii=False, default=str, indent=indent)
    except (TypeError, ValueError):
        return repr(value)


def _painter(color: bool) -> Paint:
    if not color:
        return lambda symbol: symbol

    def paint(symbol: str) -> str:
        code = _COLOURS.get(symbol)
        return f"\033[{code}m{symbol}{_RESET}" if code else symbol

    return paint
