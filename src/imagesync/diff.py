"""Normalization and diffing: the only module that knows DeepDiff.

`normalize` removes what the service fills in or owns (each kind's declared defaults and set order) so a
no-op plan is truly empty; `diff` turns DeepDiff's result into imagesync's own `DiffItem`s;
`document_diff` compares AWSTOE documents step by step. Used by the planner.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from imagesync.kinds import REGISTRY
from imagesync.manifest import awstoe
from imagesync.plan_model import DiffItem, dotted


def normalize(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A comparable copy of a mutable resource's fields: the server defaults and unordered lists
    the kind declares taken out of the comparison. Idempotent: normalize(normalize(x)) == normalize(x)."""
    out = copy.deepcopy(body)
    declared = REGISTRY[kind]
    for path, default in declared.server_defaults:
        _drop_if(out, path, default)
    for path in declared.unordered:
        _sort_at(out, path)
    pruned: dict[str, Any] = _prune_empty(out)  # a dict stays a dict
    return pruned


def _drop_if(node: Any, path: tuple[str, ...], default: Any) -> None:
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict) and node.get(path[-1]) == default:
        del node[path[-1]]


def _sort_at(node: Any, path: tuple[str, ...]) -> None:
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else []:
            _sort_at(item, rest)
        return
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        _sort_at(node[head], rest)
    elif isinstance(node[head], list):
        node[head] = sorted(node[head], key=str)


def _prune_empty(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _prune_empty(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in pruned.items() if v != {}}
    if isinstance(value, list):
        return [_prune_empty(v) for v in value]
    return value


_PATH_PART = re.compile(r"\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]")


def _path(deep_path: str, prefix: str) -> str:
    """A DeepDiff path (`root['a'][0]`) written the imagesync way (`a[0]`), under `prefix`."""
    tail = dotted(int(index) if index else key for key, index in _PATH_PART.findall(deep_path))
    if not prefix or not tail:
        return prefix or tail
    return prefix + (tail if tail.startswith("[") else "." + tail)


def diff(old: Any, new: Any, prefix: str = "") -> list[DiffItem]:
    """Field-level differences from `old` to `new`, sorted by path."""
    if _identical(old, new):
        return []  # most fields of most plans are unchanged; DeepDiff costs far more than a walk
    return _deep_diff(old, new, prefix)


def _deep_diff(old: Any, new: Any, prefix: str) -> list[DiffItem]:
    # threshold_to_diff_deeper=0: always report field by field, never the whole object because most
    # of its keys differ (DeepDiff 8's default), so every changed field has its own line.
    from deepdiff import DeepDiff  # imported when a value differs: most plans never need it

    result = DeepDiff(old, new, verbose_level=2, view="tree", threshold_to_diff_deeper=0)
    items: list[DiffItem] = []
    for report, nodes in result.items():
        for node in nodes:
            path = _path(node.path(), prefix)
            if report in ("dictionary_item_added", "iterable_item_added"):
                items.append(DiffItem("add", path, None, node.t2))
            elif report in ("dictionary_item_removed", "iterable_item_removed"):
                items.append(DiffItem("remove", path, node.t1, None))
            else:
                items.append(DiffItem("change", path, node.t1, node.t2))
    return sorted(items, key=lambda d: d.path)


def _identical(old: Any, new: Any) -> bool:
    """Equal with the same types all the way down, so DeepDiff would report nothing (it reports
    `1` against `1.0` or `True`, and a tuple against a list, as type changes)."""
    if type(old) is not type(new):
        return False
    if isinstance(old, dict):
        return old.keys() == new.keys() and all(_identical(v, new[k]) for k, v in old.items())
    if isinstance(old, (list, tuple)):
        return len(old) == len(new) and all(map(_identical, old, new))
    return bool(old == new)


DOCUMENT_PATH = "spec.document"


def document_diff(old_text: str | None, new_text: str | None, old: Any, new: Any) -> list[DiffItem]:
    """Step-level differences between two AWSTOE documents: steps added, removed or changed.

    `old` and `new` are the documents parsed (None, or anything but a mapping, compares the texts).
    Paths lie under `spec.document` (where the plan shows a document), so a `sensitive: [document]`
    masks them; parameters are compared by name, not by their position in the list.
    """
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if old_text == new_text else [DiffItem("change", DOCUMENT_PATH, old_text, new_text)]
    old_steps, new_steps = _steps(old), _steps(new)
    items = []
    for key in sorted(set(old_steps) | set(new_steps)):
        path = f"{DOCUMENT_PATH}." + ".".join(key)
        if key not in new_steps:
            items.append(DiffItem("remove", path, old_steps[key], None))
        elif key not in old_steps:
            items.append(DiffItem("add", path, None, new_steps[key]))
        elif old_steps[key] != new_steps[key]:
            items.extend(diff(old_steps[key], new_steps[key], path))
    rest_old = _by_parameter_name({k: v for k, v in old.items() if k not in ("phases", "steps")})
    rest_new = _by_parameter_name({k: v for k, v in new.items() if k not in ("phases", "steps")})
    items.extend(diff(rest_old, rest_new, DOCUMENT_PATH))
    return items


def _by_parameter_name(document: dict[str, Any]) -> dict[str, Any]:
    """AWSTOE parameters are a list of one-key mappings; keyed by name, a parameter added in the
    middle of the list is one addition instead of every later parameter changing."""
    params = document.get("parameters")
    if not isinstance(params, list):
        return document
    named: dict[str, Any] = {}
    for index, item in enumerate(params):
        if isinstance(item, dict) and len(item) == 1:
            (key, value), = item.items()
            named.setdefault(str(key), value)
        else:
            named.setdefault(f"[{index}]", item)
    return {**document, "parameters": named}


def _steps(document: dict[str, Any]) -> dict[tuple[str, ...], Any]:
    """Steps by (phase, step) for AWSTOE documents, by (step,) for workflow documents."""
    if "phases" in document:
        by_phase: dict[tuple[str, ...], Any] = dict(awstoe.step_index(document).items())
        return by_phase
    steps = document.get("steps")
    indexed: dict[tuple[str, ...], Any] = {}
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and isinstance(step.get("name"), str):
            indexed.setdefault((step["name"],), step)
    return indexed
