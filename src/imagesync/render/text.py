"""The Terraform-like text plan (SPEC §4, Outputs: Text).

One section per target: a header, one block per pending change (`+ create`, `~ update`,
`-/+ new version`, `+ publish`, `- delete`) with its reason, dependencies and field-level or
AWSTOE step-level diff lines, then drift and warnings; a closing summary line. Sensitive values
are masked (`render.mask`); ANSI colour only when asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from imagesync.changes import CREATE, DELETE, NO_OP, PUBLISH, UPDATE, DiffItem, Plan, ResourceChange
from imagesync.render.mask import SENSITIVE, is_masked, mask_diff_value

MAX_VALUE_CHARS = 120
ELLIPSIS = "..."
NO_CHANGES = "No changes. Image Builder matches the manifests."

_ACTION_SYMBOLS = {CREATE: "+", UPDATE: "~", PUBLISH: "-/+", DELETE: "-", NO_OP: "="}
_DIFF_SYMBOLS = {"add": "+", "remove": "-", "change": "~"}
_COLOURS = {"+": "32", "~": "33", "-": "31", "-/+": "36", "!": "33"}
_RESET = "\033[0m"

_CHANGE_INDENT = "  "
_DETAIL_INDENT = "      "
_DRIFT_INDENT = "    "
_DRIFT_DETAIL_INDENT = "        "

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
            lines.extend(_change_block(change, paint, _CHANGE_INDENT, _DETAIL_INDENT, _header(change, paint)))
        if target.drift:
            lines.append("")
            lines.append(f"{_CHANGE_INDENT}Drift detected:")
            for change in target.drift:
                header = f"{paint(_ACTION_SYMBOLS.get(change.action, '~'))} {change.address}"
                lines.extend(_change_block(change, paint, _DRIFT_INDENT, _DRIFT_DETAIL_INDENT, header))
        if target.warnings:
            lines.append("")
            for warning in target.warnings:
                text = f"\n{_CHANGE_INDENT}  ".join(str(warning).splitlines() or [""])
                lines.append(f"{_CHANGE_INDENT}{paint('!')} {text}")
        if not pending:
            lines.append("")
            lines.append(f"{_CHANGE_INDENT}No changes for this target.")
        lines.append("")
    lines.append(_summary_line(plan))
    return "\n".join(lines) + "\n"


def _summary_line(plan: Plan) -> str:
    if not plan.has_changes:
        return NO_CHANGES
    s = plan.summary()
    return (
        f"Plan: {s['publish']} to publish, {s['create']} to create, {s['update']} to update, {s['delete']} to delete."
    )


def _header(change: ResourceChange, paint: Paint) -> str:
    address = change.address
    if change.action == PUBLISH:
        version = change.version
        if version is None:
            return f"{paint('-/+')} new version {address}"
        reason = f" ({version.reason})" if version.reason else ""
        if version.previous is None:
            return f"{paint('+')} publish {address} {version.next}{reason}"
        return f"{paint('-/+')} new version {address} {version.previous} -> {version.next}{reason}"
    symbol = _ACTION_SYMBOLS.get(change.action, "?")
    return f"{paint(symbol)} {change.action} {address}"


def _change_block(change: ResourceChange, paint: Paint, indent: str, detail: str, header: str) -> list[str]:
    lines = [f"{indent}{header}"]
    if change.reason and not (change.version and change.version.reason == change.reason):
        lines.append(f"{detail}# {change.reason}")
    if change.depends_on:
        lines.append(f"{detail}depends on: {', '.join(change.depends_on)}")
    for item in change.diff:
        lines.append(f"{detail}{_diff_line(item, change.sensitive_paths, paint)}")
    return lines


def _diff_line(item: DiffItem, sensitive_paths: tuple[str, ...], paint: Paint) -> str:
    symbol = _DIFF_SYMBOLS.get(item.op, "?")
    if is_masked(item.path, sensitive_paths):
        old = new = SENSITIVE
    else:
        old = _format_value(mask_diff_value(item.path, item.old, sensitive_paths))
        new = _format_value(mask_diff_value(item.path, item.new, sensitive_paths))
    if item.op == "add":
        shown = new
    elif item.op == "remove":
        shown = old
    else:
        shown = f"{old} -> {new}"
    return f"{paint(symbol)} {item.path}: {shown}"


def _format_value(value: Any) -> str:
    """Compact one-line JSON; values longer than MAX_VALUE_CHARS are elided in the middle."""
    try:
        text = json.dumps(_plain(value), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) <= MAX_VALUE_CHARS:
        return text
    keep = MAX_VALUE_CHARS - len(ELLIPSIS)
    head = keep - keep // 2
    tail = keep // 2
    return text[:head] + ELLIPSIS + text[len(text) - tail :]


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
