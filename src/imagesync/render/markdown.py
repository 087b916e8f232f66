"""The markdown plan: what `plan --format markdown`, `render` and `comment` write.

It is rendered from the JSON plan document (`render.json`, already masked), so a plan saved with
`plan --out` renders exactly as the plan did, failures included. The body is deterministic: the
same plan document gives the same bytes (no plan id, no time, document order throughout).

In order: the hidden marker line, a heading, the summary (per target and overall; a failure's
message or the conflicts), warning banners (deletions, drift this plan reverts, the plan's
warnings), the version bumps, the blast radius (pipelines that will build new images, images that
will be rebuilt), then one collapsed `<details>` per changed resource with its field diffs and
line-level diffs of documents.

The result never exceeds `max_chars` (a GitHub comment holds 65,536). When the plan does not fit,
per-resource details go first, the largest first: their document diffs are shortened, then whole
resources are left out, and a note says exactly what was cut. Only when the summary itself does
not fit are its tables cut to their first rows with a `… and N more` row. Every piece is built
balanced and kept or dropped whole, so a cut never falls inside a fence or an HTML tag.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagesync.plan_model import CREATE, DELETE, DELETE_VERSIONS, DELETIONS, NO_OP, PUBLISH, UPDATE, is_under
from imagesync.render import text

GITHUB_LIMIT = 65_536  # characters in a GitHub comment; GitLab allows more, the same budget is used

TOO_LARGE = "This plan is too large to show in a comment."
_BUILD_FIELDS = ("imageRecipeArn", "containerRecipeArn", "workflows")  # a pipeline moved to new content
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<|~#])")
_URL_UNSAFE = re.compile(r"[\s<>()\"'`\\\x00-\x1f\x7f]")
_ARROW = "→"
_ACTION_WORDS = {DELETE_VERSIONS: "delete versions"}


def marker(project: str, targets: Sequence[str]) -> str:
    """The hidden line that finds this project's and target set's comment again."""
    return f"<!-- imagesync:plan project={project} targets={','.join(sorted(targets))} -->"


def plan_targets(document: Mapping[str, Any]) -> list[str]:
    """The target set a plan document is for: the targets selected with --target, or every target
    planned. Targets planned only because a selected one uses them do not count, so a plan and a
    failed plan of the same selection (which names no planned targets) share one comment."""
    selected = [str(n) for n in (document.get("options") or {}).get("targets") or []]
    return sorted(set(selected or [str(t["name"]) for t in document.get("targets") or []]))


def render_markdown(
    document: Mapping[str, Any], *, max_chars: int = GITHUB_LIMIT, details_url: str | None = None
) -> str:
    """The plan document as markdown, at most `max_chars` characters (ValueError below the minimum:
    the marker line and a one-line notice)."""
    view = _View(document)
    top = marker(view.project, plan_targets(document))
    minimum = len(_join([top, TOO_LARGE]))
    if max_chars < minimum:
        raise ValueError(
            f"max_chars is {max_chars}, but a markdown plan needs at least {minimum} characters "
            "(the marker line and a one-line notice)"
        )
    sections = [_target_section(view, target) for target in view.target_names]
    # The link appears only with a note of what was cut: a CI run's URL changes every run, and a
    # plan that fits whole must render the same body each time so its comment is left alone.
    full = _join([*_head(view, top, None), *_details(sections, None)])
    if len(full) <= max_chars:
        return full
    fitted = _fit_details(view, top, sections, max_chars, details_url)
    if fitted is not None:
        return fitted
    fitted = _fit_tables(view, top, sections, max_chars, details_url)
    if fitted is not None:
        return fitted
    return _minimal(view, top, max_chars, details_url)


# --- reading the document -----------------------------------------------------------------------


class _View:
    """The facts of a plan document the markdown needs, read once."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.project = str(document.get("project") or "")
        failure = document.get("failure")
        self.failure = (
            None if not failure else str(failure.get("message", "") if isinstance(failure, Mapping) else failure)
        )
        self.options: Mapping[str, Any] = document.get("options") or {}
        self.refresh_only = bool(self.options.get("refresh_only"))
        self.targets: list[Mapping[str, Any]] = list(document.get("targets") or [])
        self.changes: list[Mapping[str, Any]] = list(document.get("resource_changes") or [])
        self.drift: list[Mapping[str, Any]] = list(document.get("resource_drift") or [])
        self.errors: list[Mapping[str, Any]] = list(document.get("errors") or [])
        self.errored = bool(document.get("errored")) or bool(self.errors) or self.failure is not None
        self.pending = [c for c in self.changes if _action(c) != NO_OP]
        self.by_address = {str(c.get("address")): c for c in self.pending}
        names = [str(t.get("name")) for t in self.targets]
        for entry in (*self.changes, *self.drift):  # a document written by hand may omit a target
            if str(entry.get("target")) not in names:
                names.append(str(entry.get("target")))
        self.target_names = names
        self.multi_target = len(names) > 1
        # Drift the plan reverts: a drifted resource the plan changes, or a change whose reason says so.
        drifted = {str(d.get("address")) for d in self.drift}
        self.reverted = [d for d in self.drift if str(d.get("address")) in self.by_address]
        self.reverted += [c for c in self.pending if _reverts_drift(c) and str(c.get("address")) not in drifted]
        self.reverted_addresses = {str(d.get("address")) for d in self.reverted}

    def target_info(self, name: str) -> Mapping[str, Any]:
        return next((t for t in self.targets if str(t.get("name")) == name), {"name": name})

    def shown(self, change: Mapping[str, Any]) -> str:
        """A change's address as tables show it: with its target only when the plan has several."""
        return str(change.get("address")) if self.multi_target else str(change.get("resource"))

    def published(self, address: str) -> Mapping[str, Any] | None:
        """The pending change that gives `address` a new version to build from (None: nothing new)."""
        change = self.by_address.get(address)
        if change is None or _action(change) not in (PUBLISH, CREATE) or not change.get("version"):
            return None
        return change


def _action(change: Mapping[str, Any]) -> str:
    actions = (change.get("change") or {}).get("actions") or [NO_OP]
    return str(actions[0])


def _reverts_drift(change: Mapping[str, Any]) -> bool:
    """The planner says a change restores a resource changed outside imagesync in its reason."""
    reasons = f"{change.get('reason') or ''} {(change.get('version') or {}).get('reason') or ''}".lower()
    return "drift" in reasons or "changed outside imagesync" in reasons


def _counts(changes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = {PUBLISH: 0, CREATE: 0, UPDATE: 0, DELETE: 0, NO_OP: 0}
    for change in changes:
        action = _action(change)
        counts[DELETE if action in DELETIONS else action if action in counts else UPDATE] += 1
    return counts


def _summary_line(view: _View) -> str:
    """The text renderer's closing line, read from the document."""
    if view.failure is not None:
        return "The plan failed; nothing can be applied."
    if view.errored:
        count = len(view.errors)
        return f"Plan failed: {text._plural(count, 'error')}; nothing can be applied until they are resolved."
    if view.refresh_only:
        if not view.drift:
            return "No drift. Image Builder matches what imagesync last applied."
        return f"Refresh only: {text._plural(len(view.drift), 'drifted resource')} found; nothing will be changed."
    if not view.pending:
        return text.NO_CHANGES
    c = _counts(view.pending)
    return f"Plan: {c[PUBLISH]} to publish, {c[CREATE]} to create, {c[UPDATE]} to update, {c[DELETE]} to delete."


# --- the head: summary, banners, bumps, blast radius --------------------------------------------

Rows = int | None  # how many rows each table keeps; None keeps all


def _head(view: _View, top: str, rows: Rows) -> list[str]:
    parts = [f"{top}\n{_heading(view)}", f"**{_inline(_summary_line(view))}**"]
    parts += _summary(view, rows)
    parts += _banners(view, rows)
    parts += _bumps(view, rows)
    parts += _blast_radius(view, rows)
    return parts


def _heading(view: _View) -> str:
    return f"## imagesync plan: {_inline(view.project) if view.project else 'unknown project'}"


def _summary(view: _View, rows: Rows) -> list[str]:
    if view.failure is not None:
        parts = [_fence(_cut_lines(view.failure.splitlines() or [""], rows), "text")]
        selected = plan_targets(view.document)
        if selected:
            parts.append("Targets selected: " + ", ".join(_code(t) for t in selected))
        return parts
    parts = []
    if view.target_names:
        head = ["Target", "Account", "Region", "Publish", "Create", "Update", "Delete", "Drift found"]
        body = []
        for name in view.target_names:
            info = view.target_info(name)
            c = _counts([x for x in view.changes if str(x.get("target")) == name])
            drift = sum(1 for d in view.drift if str(d.get("target")) == name)
            body.append(
                [
                    name,
                    str(info.get("account") or ""),
                    str(info.get("region") or ""),
                    *(str(c[a]) for a in (PUBLISH, CREATE, UPDATE, DELETE)),
                    str(drift),
                ]
            )
        parts.append(_table(head, body, rows, numeric_from=3))
    if view.errors:
        items = [f"{_code(str(e.get('address')))}: {_inline(str(e.get('message')))}" for e in view.errors]
        parts.append("Errors, resources imagesync may not manage:\n\n" + _bullets(items, rows))
    return parts


def _banners(view: _View, rows: Rows) -> list[str]:
    deleted = [c for c in view.pending if _action(c) in DELETIONS]
    warnings = [(name, w) for name in view.target_names for w in view.target_info(name).get("warnings") or []]
    parts = []
    lines: list[str] = []
    if deleted:
        items = [_deletion(view, c) for c in deleted]
        lines += [f"This plan deletes ({len(deleted)}):", "", *_bullets(items, rows).splitlines()]
    if view.reverted and not view.refresh_only:
        items = [f"{_code(view.shown(d))}: {_inline(str(d.get('reason') or 'drift'))}" for d in view.reverted]
        if lines:
            lines.append("")
        lines += [
            f"This plan reverts drift, changes made outside imagesync ({len(view.reverted)}):",
            "",
            *_bullets(items, rows).splitlines(),
        ]
    if warnings:
        items = [
            (f"{_inline(n)}: " if view.multi_target else "") + _inline(" ".join(str(w).split())) for n, w in warnings
        ]
        if lines:
            lines.append("")
        lines += ["Warnings:", "", *_bullets(items, rows).splitlines()]
    if lines:
        parts.append(_alert("WARNING", lines))
    unreverted = [d for d in view.drift if str(d.get("address")) not in view.reverted_addresses or view.refresh_only]
    if unreverted:
        items = [f"{_code(view.shown(d))}: {_inline(str(d.get('reason') or 'drift'))}" for d in unreverted]
        verb = "nothing is changed (refresh only)" if view.refresh_only else "this plan does not change it"
        parts.append(
            _alert("NOTE", [f"Drift found, {verb} ({len(unreverted)}):", "", *_bullets(items, rows).splitlines()])
        )
    return parts


def _deletion(view: _View, change: Mapping[str, Any]) -> str:
    versions = [str(v) for v in change.get("deleted_versions") or []]
    if _action(change) == DELETE_VERSIONS:
        return f"{_code(view.shown(change))}: versions {_inline(', '.join(versions))}"
    what = f" with versions {_inline(', '.join(versions))}" if versions else ""
    return f"{_code(view.shown(change))}, the whole resource{what}"


def _bumps(view: _View, rows: Rows) -> list[str]:
    bumped = [c for c in view.pending if c.get("version")]
    if not bumped:
        return []
    body = []
    for change in bumped:
        version = change.get("version") or {}
        before, after = version.get("from"), str(version.get("to"))
        shown = f"{before} {_ARROW} {after}" if before else f"new {_ARROW} {after}"
        body.append([view.shown(change), shown, bump_kind(before, after), str(version.get("reason") or "")])
    return ["### Version bumps", _table(["Resource", "Version", "Bump", "Reason"], body, rows)]


def bump_kind(previous: str | None, next_version: str) -> str:
    """`major`, `minor` or `patch` from the two semantic versions; `new` for a first version."""
    if not previous:
        return "new"
    old, new = _VERSION.match(previous), _VERSION.match(next_version)
    if old is None or new is None:
        return ""
    for kind, a, b in zip(("major", "minor", "patch"), old.groups(), new.groups(), strict=True):
        if int(a) != int(b):
            return kind
    return ""


def _blast_radius(view: _View, rows: Rows) -> list[str]:
    pipelines = [(c, _pipeline_cause(view, c)) for c in view.pending if c.get("kind") == "ImagePipeline"]
    building = [(c, cause) for c, cause in pipelines if cause]
    # A build is a change of a kind that makes outputs (AMIs, container images): its JSON has them.
    images = [c for c in view.pending if "outputs" in c and _action(c) == CREATE]
    if not building and not images:
        return []
    parts = ["### Blast radius"]
    if building:
        body = [[view.shown(c), cause] for c, cause in building]
        parts.append("Pipelines that will build new images:\n\n" + _table(["Pipeline", "Because"], body, rows))
    if images:
        body = [[view.shown(c), _image_cause(view, c)] for c in images]
        parts.append("Images that will be rebuilt:\n\n" + _table(["Build", "Because"], body, rows))
    return parts


def _pipeline_cause(view: _View, change: Mapping[str, Any]) -> str:
    """Why a pipeline's next run builds something new, or "" when it does not."""
    if _action(change) in DELETIONS:
        return ""
    if _action(change) == CREATE:
        return "new pipeline"
    published = _published_dependencies(view, change)
    if published:
        return ", ".join(published)
    moved = [
        f"{item.get('path')} now {_arn_tail(item.get('new'))}"
        for item in change.get("diff") or []
        if any(is_under(str(item.get("path")), f"spec.{f}") for f in _BUILD_FIELDS)
    ]
    return ", ".join(moved)


def _image_cause(view: _View, change: Mapping[str, Any]) -> str:
    published = _published_dependencies(view, change)
    return ", ".join(published) if published else str(change.get("reason") or "new resource")


def _published_dependencies(view: _View, change: Mapping[str, Any]) -> list[str]:
    found = []
    for address in change.get("depends_on") or []:
        dependency = view.published(str(address))
        if dependency is None:
            continue
        version = (dependency.get("version") or {}).get("to")
        found.append(f"{view.shown(dependency)} {version}")
    return found


def _arn_tail(value: Any) -> str:
    """`base/1.0.1` for an image recipe ARN: the part a reader compares."""
    if isinstance(value, str) and value.startswith("arn:"):
        return "/".join(value.split("/")[-2:])
    return text._scalar(value)


# --- per-resource details -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One resource's collapsible details, in full and with its document diffs left out."""

    full: str
    short: str
    documents: int  # document diffs the short form leaves out


@dataclass(frozen=True)
class _Section:
    """One target's details: a heading, a block per changed resource, then the unchanged count."""

    heading: str
    blocks: list[_Block]
    footer: str


def _target_section(view: _View, name: str) -> _Section:
    info = view.target_info(name)
    where = ", ".join(x for x in (str(info.get("region") or ""), _account(info)) if x)
    heading = f"### Changes in {_inline(name)}" + (f" ({_inline(where)})" if where else "")
    changes = [c for c in view.changes if str(c.get("target")) == name]
    blocks = [_block(view, c, drift=False) for c in changes if _action(c) != NO_OP]
    blocks += [_block(view, d, drift=True) for d in view.drift if str(d.get("target")) == name]
    unchanged = sum(1 for c in changes if _action(c) == NO_OP)
    footer = f"{text._plural(unchanged, 'resource')} unchanged." if unchanged else ""
    if not blocks and not unchanged:
        footer = "No resources."
    return _Section(heading, blocks, footer)


def _account(info: Mapping[str, Any]) -> str:
    return f"account {info['account']}" if info.get("account") else ""


def _block(view: _View, change: Mapping[str, Any], *, drift: bool) -> _Block:
    summary = _block_summary(view, change, drift)
    notes = _notes(change, drift)
    full: list[str] = []
    short: list[str] = []
    fields: list[str] = []
    documents = 0

    def flush() -> None:
        if fields:
            full.append(_bullets(fields, None))
            short.append(_bullets(fields, None))
            fields.clear()

    for path, op, old, new in _items(change):
        line, diff = _item(path, op, old, new)
        if diff is None:
            fields.append(line)
            continue
        flush()
        full.append(f"{line}\n\n{_fence(diff, 'diff')}")
        short.append(f"{line} a {text._plural(len(diff), 'line')} diff, left out to fit the comment limit")
        documents += 1
    flush()
    open_tag = f"<details><summary>{summary}</summary>"
    return _Block(
        full=_join([open_tag, *notes, *full, "</details>"]).rstrip("\n"),
        short=_join([open_tag, *notes, *short, "</details>"]).rstrip("\n"),
        documents=documents,
    )


def _block_summary(view: _View, change: Mapping[str, Any], drift: bool) -> str:
    action = _action(change)
    symbol = text.SYMBOLS.get(action, "~")
    version = change.get("version") or {}
    head = f"{symbol} {_ACTION_WORDS.get(action, action)}"
    if drift:
        head = f"{symbol} drift"
    title = str(change.get("resource") or change.get("address"))
    if action in (PUBLISH, CREATE) and version and not drift:
        title += (
            f" {version.get('from')} {_ARROW} {version.get('to')}" if version.get("from") else f" {version.get('to')}"
        )
    if drift:
        title += " (reverted by this plan)" if str(change.get("address")) in view.by_address else ""
    return f"<code>{html.escape(head)}</code> {html.escape(title)}"


def _notes(change: Mapping[str, Any], drift: bool) -> list[str]:
    notes = []
    reason = str(change.get("reason") or "")
    version_reason = "" if drift else str((change.get("version") or {}).get("reason") or "")
    why = "; ".join(dict.fromkeys(r for r in (version_reason, reason) if r))
    if why:
        notes.append(f"{'Drift' if drift else 'Why'}: {_inline(why)}")
    if change.get("depends_on"):
        notes.append("Depends on: " + ", ".join(_code(str(d)) for d in change["depends_on"]))
    if change.get("deleted_versions"):
        notes.append("Deletes versions: " + ", ".join(_code(str(v)) for v in change["deleted_versions"]))
    return notes


Item = tuple[str, str, Any, Any]  # path, op, old, new


def _items(change: Mapping[str, Any]) -> list[Item]:
    """The field differences to show: every field a create sends (bookkeeping tags apart), else the diff."""
    after = (change.get("change") or {}).get("after")
    if _action(change) == CREATE and isinstance(after, Mapping):
        spec = after.get("spec") or {}
        tags = {k: v for k, v in (after.get("tags") or {}).items() if not str(k).startswith("imagesync:")}
        return [(f"spec.{k}", "add", None, spec[k]) for k in sorted(spec)] + [
            (f"tags.{k}", "add", None, tags[k]) for k in sorted(tags)
        ]
    return [(str(d.get("path")), str(d.get("op")), d.get("old"), d.get("new")) for d in change.get("diff") or []]


def _item(path: str, op: str, old: Any, new: Any) -> tuple[str, list[str] | None]:
    """A bullet for a short value; for a long or multi-line one, a label and the lines of a diff fence."""
    label = _code(path)
    if op == "add":
        if text._fits_inline(new):
            return f"{label}: added {_code(text._scalar(new))}", None
        return f"{label}: added", text.unified("", text._as_text(new))
    if op == "remove":
        note = "removed, Image Builder's default applies"
        if text._fits_inline(old):
            return f"{label}: {_code(text._scalar(old))} {note}", None
        return f"{label}: {note}", text.unified(text._as_text(old), "")
    if text._fits_inline(old) and text._fits_inline(new):
        return f"{label}: {_code(text._scalar(old))} {_ARROW} {_code(text._scalar(new))}", None
    if isinstance(old, str) and isinstance(new, str) and "\n" not in old and "\n" not in new:
        before, after = text.changed_span(old, new)
        return f"{label}: changed", [f"- {before}", f"+ {after}"]
    old_text, new_text = text._as_text(old), text._as_text(new)
    if old_text == new_text:
        old_text, new_text = text._json(old, indent=2), text._json(new, indent=2)
    return f"{label}: changed", text.unified(old_text, new_text)


def _details(sections: Sequence[_Section], kept: Callable[[_Block], str] | None) -> list[str]:
    """The details of every target; `kept` picks each block's form ("" leaves it out)."""
    parts = []
    for section in sections:
        parts.append(section.heading)
        parts += [x for x in ((kept or _full)(b) for b in section.blocks) if x]
        if section.footer:
            parts.append(section.footer)
    return parts


def _full(block: _Block) -> str:
    return block.full


# --- fitting the budget ---------------------------------------------------------------------------


def _fit_details(
    view: _View, top: str, sections: Sequence[_Section], max_chars: int, details_url: str | None
) -> str | None:
    """Everything but some resources' details: document diffs shortened, then whole resources left
    out, the largest first, until the comment fits (None when the rest alone does not)."""
    blocks = [b for s in sections for b in s.blocks]
    frame = _join(
        [*_head(view, top, None), *_details(sections, lambda b: ""), *_cut_note(len(blocks), len(blocks), details_url)]
    )
    budget = max_chars - len(frame)
    if budget < 0:
        return None
    form = {id(b): b.full for b in blocks}
    total = sum(len(b.full) + 2 for b in blocks)  # each part is followed by a blank line
    for block in sorted(blocks, key=lambda b: -len(b.full)):
        if total <= budget:
            break
        if block.documents:
            total -= len(block.full) - len(block.short)
            form[id(block)] = block.short
    for block in sorted(blocks, key=lambda b: -len(form[id(b)])):
        if total <= budget:
            break
        total -= len(form[id(block)]) + 2
        form[id(block)] = ""
    dropped = sum(1 for b in blocks if not form[id(b)])
    shortened = sum(1 for b in blocks if form[id(b)] == b.short and b.short != b.full)
    out = _join(
        [
            *_head(view, top, None),
            *_cut_note(dropped, shortened, details_url),
            *_details(sections, lambda b: form[id(b)]),
        ]
    )
    return out if len(out) <= max_chars else None


def _fit_tables(
    view: _View, top: str, sections: Sequence[_Section], max_chars: int, details_url: str | None
) -> str | None:
    """No per-resource details, and the summary's tables cut to as many rows as fit."""
    resources = sum(len(s.blocks) for s in sections)
    note = _cut_note(resources, 0, details_url, tables=True)

    def attempt(rows: int) -> str:
        return _join([*_head(view, top, rows), *note])

    warnings = sum(len(t.get("warnings") or []) for t in view.targets)
    lines = len((view.failure or "").splitlines())
    low, high = 0, max(len(view.changes), len(view.drift), len(view.errors), len(view.target_names), warnings, lines)
    if len(attempt(low)) > max_chars:
        return None
    while low < high:  # the largest row count that fits: sizes grow with it
        middle = (low + high + 1) // 2
        if len(attempt(middle)) <= max_chars:
            low = middle
        else:
            high = middle - 1
    return attempt(low)


def _minimal(view: _View, top: str, max_chars: int, details_url: str | None) -> str:
    """The marker and a notice, with as much of the heading and summary line as fits."""
    heading = _heading(view)
    notice = TOO_LARGE + (f" [The full plan]({_url(details_url)}) has everything." if details_url else "")
    line = f"**{_inline(_summary_line(view))}**"
    candidates = [
        [f"{top}\n{heading}", line, *(_summary(view, None) if view.failure is None else []), notice],
        [f"{top}\n{heading}", line, notice],
        [f"{top}\n{heading}", notice],
        [top, notice],
        [top, TOO_LARGE],
    ]
    for parts in candidates:
        out = _join(parts)
        if len(out) <= max_chars:
            return out
    raise AssertionError("render_markdown checks the minimum first")  # pragma: no cover


def _cut_note(dropped: int, shortened: int, details_url: str | None, *, tables: bool = False) -> list[str]:
    """Exactly what was cut, and where the rest is."""
    if not dropped and not shortened and not tables:
        return []
    said = []
    if dropped:
        said.append(f"Details of {text._plural(dropped, 'resource')} were left out to fit the comment limit.")
    if shortened:
        said.append(
            f"The document diffs of {text._plural(shortened, 'resource')} were left out to fit the comment limit."
        )
    if tables:
        said.append("Tables longer than fits show their first rows only.")
    if details_url:
        said.append(f"[The full plan]({_url(details_url)}) has everything.")
    return [_alert("NOTE", [" ".join(said)])]


# --- markdown pieces ------------------------------------------------------------------------------


def _join(parts: Sequence[str]) -> str:
    """Blocks separated by blank lines, ending with one newline."""
    return "\n\n".join(p for p in parts if p) + "\n"


def _inline(value: str) -> str:
    """Plain text on one line, with everything markdown or HTML would act on escaped."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(value.split())).replace("&", "&amp;")


def _code(value: str) -> str:
    """An inline code span that survives any backticks in `value` (a longer run of them around it)."""
    value = " ".join(value.splitlines())
    ticks = "`" * (_longest_run(value) + 1)
    pad = " " if value.startswith(("`", " ")) or value.endswith(("`", " ")) else ""
    return f"{ticks}{pad}{value}{pad}{ticks}"


def _fence(lines: Sequence[str], info: str) -> str:
    """A fenced block longer than any backtick run inside it, so its content cannot close it."""
    body = "\n".join(lines)
    ticks = "`" * max(3, _longest_run(body) + 1)
    return f"{ticks}{info}\n{body}\n{ticks}" if lines else f"{ticks}{info}\n{ticks}"


def _longest_run(value: str) -> int:
    return max((len(run) for run in re.findall(r"`+", value)), default=0)


def _table(head: Sequence[str], body: Sequence[Sequence[str]], rows: Rows, numeric_from: int | None = None) -> str:
    kept = body if rows is None else body[:rows]
    align = ["---:" if numeric_from is not None and i >= numeric_from else "---" for i in range(len(head))]
    lines = [_row(head), "| " + " | ".join(align) + " |"]
    lines += [_row(r) for r in kept]
    if len(kept) < len(body):
        lines.append(_row([f"… and {len(body) - len(kept)} more", *([""] * (len(head) - 1))]))
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_inline(c) for c in cells) + " |"


def _bullets(items: Sequence[str], rows: Rows) -> str:
    kept = items if rows is None else items[:rows]
    lines = [f"- {item}" for item in kept]
    if len(kept) < len(items):
        lines.append(f"- … and {len(items) - len(kept)} more")
    return "\n".join(lines)


def _cut_lines(lines: Sequence[str], rows: Rows) -> list[str]:
    kept = list(lines if rows is None else lines[:rows])
    if len(kept) < len(lines):
        kept.append(f"… and {text._plural(len(lines) - len(kept), 'more line')}")
    return kept


def _alert(kind: str, lines: Sequence[str]) -> str:
    """A GitHub alert (`> [!WARNING]`): a blockquote elsewhere."""
    return "\n".join([f"> [!{kind}]", *(f"> {line}".rstrip() for line in lines)])


def _url(url: str | None) -> str:
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url or "")
