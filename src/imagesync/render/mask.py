"""Sensitive-value masking shared by the renderers.

A sensitive path is dotted, with `[i]` list indexes (`spec.components[1].parameters[0].value`),
relative to a resource's document root (the `{"spec": {...}}`-shaped `before`/`after`). Diff paths
use the same syntax, so a diff item at or below a sensitive path is masked whole, and one above a
sensitive path (say `spec.components`) has the sensitive leaves inside its old/new values masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from imagesync.plan_model import is_under, parse_path

__all__ = ["SENSITIVE", "is_masked", "is_under", "mask_at", "mask_diff_value", "mask_document", "parse_path"]

SENSITIVE = "(sensitive)"

Segment = str | int

_MISSING = object()


def is_masked(path: str, sensitive_paths: Iterable[str]) -> bool:
    """True when the value at `path` is sensitive as a whole."""
    return any(is_under(path, s) for s in sensitive_paths)


def mask_at(value: Any, path: tuple[Segment, ...]) -> Any:
    """A copy of `value` with the value at `path` replaced by SENSITIVE (absent or null: unchanged).

    Only the containers along `path` are copied; the input is never modified.
    """
    if not path:
        return None if value is None else SENSITIVE
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        key = _mapping_key(value, head)
        if key is _MISSING:
            return value
        copied = dict(value)
        copied[key] = mask_at(value[key], rest)
        return copied
    if isinstance(value, (list, tuple)):
        index = _list_index(value, head)
        if index is None:
            return value
        items = list(value)
        items[index] = mask_at(value[index], rest)
        return items
    return value


def mask_document(document: Any, sensitive_paths: Iterable[str]) -> Any:
    """`document` (a `before`/`after` value) with every sensitive path masked."""
    for sensitive in sensitive_paths:
        segments = _segments(sensitive)
        if segments is not None:
            document = mask_at(document, segments)
    return document


def mask_diff_value(path: str, value: Any, sensitive_paths: Iterable[str]) -> Any:
    """The old/new value of a diff item at `path`, with sensitive parts masked."""
    for sensitive in sensitive_paths:
        if is_under(path, sensitive):
            return None if value is None else SENSITIVE
        if not path or is_under(sensitive, path):
            segments = _segments(sensitive[len(path) :])
            if segments is not None:
                value = mask_at(value, segments)
    return value


def _segments(path: str) -> tuple[Segment, ...] | None:
    try:
        return parse_path(path)
    except ValueError:
        return None


def _mapping_key(mapping: Mapping[Any, Any], segment: Segment) -> Any:
    if segment in mapping:
        return segment
    if isinstance(segment, int) and str(segment) in mapping:
        return str(segment)
    return _MISSING


def _list_index(items: list[Any] | tuple[Any, ...], segment: Segment) -> int | None:
    if isinstance(segment, str):
        if not segment.isdigit():
            return None
        segment = int(segment)
    return segment if 0 <= segment < len(items) else None
