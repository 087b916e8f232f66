"""The markdown plan: what `plan --format markdown`, `render` and `comment` write.

It is rendered from the JSON plan document (`render.json`, already masked), so a plan saved with
`plan --out` renders exactly as the plan did, failures included. The body is deterministic: the
same plan document gives the same bytes (no plan id, no time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

GITHUB_LIMIT = 65_536  # characters in a GitHub comment; GitLab allows more, the same budget is used


def marker(project: str, targets: Sequence[str]) -> str:
    """The hidden line that finds this project's and target set's comment again."""
    return f"<!-- imagesync:plan project={project} targets={','.join(sorted(targets))} -->"


def plan_targets(document: Mapping[str, Any]) -> list[str]:
    """The target set a plan document is for: the targets planned, or those selected for a failed plan."""
    names = [str(t["name"]) for t in document.get("targets") or []]
    return names or [str(n) for n in (document.get("options") or {}).get("targets") or []]


def render_markdown(
    document: Mapping[str, Any], *, max_chars: int = GITHUB_LIMIT, details_url: str | None = None
) -> str:
    """The plan document as markdown, at most `max_chars` characters."""
    project = str(document.get("project") or "")
    lines = [marker(project, plan_targets(document)), f"## imagesync plan: {project or 'unknown project'}", ""]
    failure = document.get("failure")
    if failure:
        lines += ["**The plan failed**; nothing can be applied:", "", "```text", str(failure["message"]), "```", ""]
    else:
        summary = document.get("summary") or {}
        lines.append(
            "Plan: {publish} to publish, {create} to create, {update} to update, {delete} to delete.".format(
                **{k: summary.get(k, 0) for k in ("publish", "create", "update", "delete")}
            )
        )
    if details_url:
        lines += ["", f"[The full plan]({details_url})"]
    return "\n".join(lines)[:max_chars] + "\n"
