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
from collections.abc import Callable, Mapping
from typing import Any

from imagesync.changes import (
    CREATE,
    DELETE,
    DELETE_VERSIONS,
    NO_OP,
    PUBLISH,
    UPDATE,
    DiffItem,
    Plan,
    ResourceChange,
)
from imagesync.render.mask import SENSITIVE, is_masked, mask_diff_value, mask_document

INLINE_CHARS = 100  # longer values (or any with a newline) are shown on lines of their own
SPAN_CONTEXT = 30  # characters kept either side of the changed span of a long one-line value
DIFF_CONTEXT = 3  # unchanged lines either side of a changed line in a unified diff
NO_CHANGES = "No changes. Image Builder matches the manifests."

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
        return f"Plan failed: {len(plan.conflicts)} error(s); nothing can be applied until they are resolved."
    if plan.refresh_only:
        drift = plan.summary()["drift"]
        if not drift:
            return "No drift. Image Builder matches what imagesync last applied."
        return f"Refresh only: {drift} drifted resource(s) found; nothing will be changed."
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
    if change.action == CREATE and change.after is not None:
        lines.extend(_create_lines(change, paint, detail))
    for item in change.diff:
        lines.extend(_diff_lines(item, change.sensitive_paths, paint, detail))
    return lines


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
        return [f"{detail}{symbol} {item.path}: {shown}"]
    old = mask_diff_value(item.path, item.old, sensitive_paths)
    new = mask_diff_value(item.path, item.new, sensitive_paths)
    if item.op == "add":
        return _value_lines(symbol, item.path, new, detail)
    if item.op == "remove":
        lines = _value_lines(symbol, item.path, old, detail)
        lines[0] += "  (removed: Image Builder's default applies)"
        return lines
    return _changed_lines(symbol, item.path, old, new, detail, paint)


def _value_lines(symbol: str, path: str, value: Any, detail: str) -> list[str]:
    """`path: value` on one line when short, else the value's lines indented under the path."""
    text = value if isinstance(value, str) else _json(value)
    if isinstance(value, str) and "\n" not in value and len(_json(value)) <= INLINE_CHARS:
        return [f"{detail}{symbol} {path}: {_json(value)}"]
    if not isinstance(value, str) and len(text) <= INLINE_CHARS:
        return [f"{detail}{symbol} {path}: {text}"]
    if not isinstance(value, str):
        text = _json(value, indent=2)
    marker = "|" if isinstance(value, str) else ""
    lines = [f"{detail}{symbol} {path}: {marker}".rstrip()]
    lines.extend(f"{detail}{_BLOCK_INDENT}{line}".rstrip() for line in text.splitlines())
    return lines


def _changed_lines(symbol: str, path: str, old: Any, new: Any, detail: str, paint: Paint) -> list[str]:
    old_text = old if isinstance(old, str) else _json(old)
    new_text = new if isinstance(new, str) else _json(new)
    multi_line = "\n" in old_text or "\n" in new_text
    if not multi_line and len(_json(old)) <= INLINE_CHARS and len(_json(new)) <= INLINE_CHARS:
        return [f"{detail}{symbol} {path}: {_json(old)} -> {_json(new)}"]
    if not multi_line and isinstance(old, str) and isinstance(new, str):
        before, after = changed_span(old, new)
        return [
            f"{detail}{symbol} {path}:",
            f"{detail}{_BLOCK_INDENT}{paint('-')} {before}",
            f"{detail}{_BLOCK_INDENT}{paint('+')} {after}",
        ]
    if not isinstance(old, str) or not isinstance(new, str):
        old_text, new_text = _json(old, indent=2), _json(new, indent=2)
    lines = [f"{detail}{symbol} {path}:"]
    lines.extend(f"{detail}{_BLOCK_INDENT}{line}" for line in unified(old_text, new_text, paint))
    return lines


def unified(old: str, new: str, paint: Paint = lambda s: s) -> list[str]:
    """A line-level unified diff with DIFF_CONTEXT lines of context (no file header lines)."""
    out: list[str] = []
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=DIFF_CONTEXT)
    for line in diff:
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            out.append(line)
        elif line[:1] in "+-":
            out.append(f"{paint(line[0])} {line[1:]}".rstrip())
        else:
            out.append(f"  {line[1:]}".rstrip())
    if old.endswith("\n") != new.endswith("\n"):
        out.append("\\ the final newline " + ("was added" if new.endswith("\n") else "was removed"))
    return out


def changed_span(old: str, new: str) -> tuple[str, str]:
    """Both one-line values cut to the span that differs plus SPAN_CONTEXT characters either side.

    The differing span itself is never cut, so a change anywhere in a long value is visible.
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
        return ("..." if start else "") + text[start:end] + ("..." if end < len(text) else "")

    return cut(old), cut(new)


def _json(value: Any, indent: int | None = None) -> str:
    try:
        return json.dumps(_plain(value), ensure_ascii=False, default=str, indent=indent)
    except (TypeError, ValueError):
        return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _painter(color: bool) -> Paint:
    if not color:
        return lambda symbol: symbol

    def paint(symbol: str) -> str:
        code = _COLOURS.get(symbol)
        return f"\033[{code}m{symbol}{_RESET}" if code else symbol

    return paint
