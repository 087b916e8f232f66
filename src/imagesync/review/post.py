"""One sticky comment per project and target set, and imagesync's labels, on a pull/merge request.

The comment is found again by its marker, the hidden first line `render.markdown.marker` writes:
all of it must match (project and the whole target set), so the comment for targets `a,b` is
never taken for the one for `a`, nor another project's or another tool's. The marker is no proof
of authorship, as anyone on the request can post it: only comments written by the identity the
token acts as count (`Forge.is_ours`). A body identical to what is there already writes nothing.
Only our comments that carry the marker are ever edited or minimized.

Creating a comment is the one call that must not be repeated blindly: when its answer is lost,
the comments are listed again, and one of ours that has appeared since is taken as the one posted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from imagesync.render.markdown import marker, plan_targets, render_markdown
from imagesync.review.client import ATTEMPTS, MaybeWritten, ReviewApiError, backoff

CHANGES, DELETES, NO_CHANGES = "imagesync:changes", "imagesync:deletes", "imagesync:no-changes"
LABELS = (CHANGES, DELETES, NO_CHANGES)
_DELETIONS = frozenset({"delete", "delete-versions"})


class PartlyPosted(ReviewApiError):
    """The comment is there, but what was to follow it (minimizing, labels) failed: still exit 1."""


@dataclass(frozen=True)
class Comment:
    id: str
    body: str
    url: str
    node_id: str = ""  # GitHub's GraphQL id, to minimize it by
    author: str = ""  # GitHub's login, GitLab's user id
    bot: bool = False  # GitHub's `user.type` is "Bot"


class Forge(Protocol):
    """A pull/merge request's comments and labels: `GitHub` or `GitLab`."""

    where: str  # `owner/repo#12` or `group/project!12`, for messages
    can_minimize: bool

    def comments(self) -> list[Comment]: ...
    def is_ours(self, comment: Comment) -> bool: ...
    def create(self, body: str) -> Comment: ...
    def update(self, comment: Comment, body: str) -> Comment: ...
    def minimize(self, comment: Comment) -> None: ...
    def labels(self) -> set[str]: ...
    def set_labels(self, add: list[str], remove: list[str]) -> None: ...


@dataclass(frozen=True)
class Outcome:
    action: str  # "created", "updated" or "unchanged"
    comment: Comment
    minimized: int = 0
    label: str | None = None  # the label the request now has, when labels were asked for
    labels_changed: bool = False


def carries(body: str, mark: str) -> bool:
    """The comment's first line is exactly `mark` (a quote of it in a reply starts with `>`)."""
    first = body.lstrip().split("\n", 1)[0]
    return first.strip() == mark


def same_body(stored: str, body: str) -> bool:
    """The APIs may store line ends as CRLF and drop the final newline: neither is a change."""
    return stored.replace("\r\n", "\n").rstrip() == body.replace("\r\n", "\n").rstrip()


def marked(forge: Forge, mark: str) -> list[Comment]:
    """Our comments that carry `mark`, oldest first (the author is checked only for those)."""
    return [c for c in forge.comments() if carries(c.body, mark) and forge.is_ours(c)]


def create_once(forge: Forge, body: str, mark: str, known: set[str]) -> tuple[str, Comment]:
    """Create the comment, retrying a creation whose answer was lost only once it is known not to
    have happened: one of ours with `mark` that is not in `known` (the ids there before) means it
    did, and that comment is taken, rewritten should another run have put a different plan in it."""
    attempt = 1
    while True:
        try:
            return "created", forge.create(body)
        except MaybeWritten as err:
            lost = err
        time.sleep(backoff(attempt))
        try:
            appeared = [c for c in marked(forge, mark) if c.id not in known]
        except ReviewApiError as err:
            raise ReviewApiError(f"{lost}; whether it was posted is unknown: listing the comments failed: {err}",
                                 err.status) from None
        if appeared:
            found = appeared[-1]
            if same_body(found.body, body):
                return "created", found
            return "updated", forge.update(found, body)
        if attempt == ATTEMPTS:
            raise ReviewApiError(f"{lost} (gave up after {attempt} attempts)", lost.status)
        attempt += 1


def post_comment(forge: Forge, body: str, mark: str, *, minimize_outdated: bool = False) -> Outcome:
    """Create, update or leave the marked comment; with `minimize_outdated`, post anew and hide the rest."""
    ours = marked(forge, mark)
    latest = ours[-1] if ours else None
    if latest is not None and same_body(latest.body, body):
        return Outcome("unchanged", latest)
    if minimize_outdated:
        action, created = create_once(forge, body, mark, {c.id for c in ours})
        for old in ours:
            try:
                forge.minimize(old)
            except ReviewApiError as err:
                raise PartlyPosted(
                    f"the plan comment is created ({created.url or created.id}), but minimizing "
                    f"{old.url or old.id} failed: {err}",
                    err.status,
                ) from None
        return Outcome(action, created, minimized=len(ours))
    if latest is None:
        action, created = create_once(forge, body, mark, set())
        return Outcome(action, created)
    return Outcome("updated", forge.update(latest, body))


def label_for(document: Mapping[str, Any]) -> str | None:
    """`imagesync:deletes` if anything would be deleted, `imagesync:changes` if anything would change,
    else `imagesync:no-changes`; None for a failed plan, which says nothing about the changes."""
    if document.get("failure"):
        return None
    actions = {a for c in document.get("resource_changes") or [] for a in (c.get("change") or {}).get("actions") or []}
    if actions & _DELETIONS:
        return DELETES
    if actions - {"no-op"}:
        return CHANGES
    return NO_CHANGES


def sync_labels(forge: Forge, wanted: str | None) -> bool:
    """Give the request exactly `wanted` among imagesync's labels, touching no other; True if it wrote."""
    present = forge.labels()
    add = [wanted] if wanted is not None and wanted not in present else []
    remove = [name for name in LABELS if name in present and name != wanted]
    if not add and not remove:
        return False
    forge.set_labels(add, remove)
    return True


def comment_plan(
    document: Mapping[str, Any],
    forge: Forge,
    *,
    max_chars: int,
    details_url: str | None = None,
    minimize_outdated: bool = False,
    labels: bool = False,
) -> Outcome:
    """Render the plan document and post it as the project's and target set's one comment."""
    mark = marker(str(document.get("project") or ""), plan_targets(document))
    # Posted without the final newline, which the APIs drop anyway, so it never counts against the limit.
    body = render_markdown(document, max_chars=max_chars, details_url=details_url).rstrip("\n")
    if len(body) > max_chars:
        raise ReviewApiError(f"the plan comment was not posted: it renders to {len(body)} characters, "
                             f"more than the {max_chars} allowed")
    try:
        outcome = post_comment(forge, body, mark, minimize_outdated=minimize_outdated)
    except PartlyPosted:
        raise
    except ReviewApiError as err:
        raise ReviewApiError(f"the plan comment was not posted: {err}", err.status) from None
    if not labels:
        return outcome
    wanted = label_for(document)
    try:
        changed = sync_labels(forge, wanted)
    except ReviewApiError as err:
        raise PartlyPosted(
            f"the plan comment is {outcome.action} ({outcome.comment.url or outcome.comment.id}), "
            f"but setting the labels failed: {err}",
            err.status,
        ) from None
    return Outcome(outcome.action, outcome.comment, outcome.minimized, wanted, changed)
