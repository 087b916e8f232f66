"""Which pull/merge request to comment on: from `--github`/`--gitlab`, or from the CI environment.

GitHub Actions describes the event in the JSON file at `GITHUB_EVENT_PATH` (a pull request's
number is `pull_request.number`; an `issue_comment` on a pull request has `issue.number`);
GitLab's merge request pipelines set `CI_MERGE_REQUEST_IID`. Tokens come from the environment
only (`GITHUB_TOKEN`, `GITLAB_TOKEN`), never from flags, which other users can read in `ps`, and
one with whitespace or a control character in it (a newline pasted with it) is refused before any
call: HTTP cannot send it, and the error saying so would quote it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

from imagesync.errors import UserError
from imagesync.review.client import SECONDARY_WAIT
from imagesync.review.github import ACTIONS_BOT, GitHub
from imagesync.review.gitlab import GitLab
from imagesync.review.post import Forge

GITHUB_API = "https://api.github.com"
GITLAB_API = "https://gitlab.com/api/v4"

_GITHUB_SPEC = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+)#([1-9][0-9]*)")
_GITLAB_SPEC = re.compile(r"([^\s!]+/[^\s!]+)!([1-9][0-9]*)")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without the space: what every token is made of


class ReviewSetupError(UserError):
    """No request to comment on, or no token to do it with: nothing was posted."""


def forge_for(github: str | None, gitlab: str | None, env: Mapping[str, str]) -> Forge:
    """The request the flags name, else the one the CI run is for."""
    if github is not None:
        match = _GITHUB_SPEC.fullmatch(github)
        if match is None:
            raise ReviewSetupError(f"--github {github!r}: expected OWNER/REPO#NUMBER, e.g. acme/images#12")
        return _github(match[1], match[2], int(match[3]), env)
    if gitlab is not None:
        match = _GITLAB_SPEC.fullmatch(gitlab)
        if match is None:
            raise ReviewSetupError(f"--gitlab {gitlab!r}: expected GROUP/PROJECT!IID, e.g. platform/images!7")
        return _gitlab(match[1], int(match[2]), env)
    return detect(env)


def detect(env: Mapping[str, str]) -> Forge:
    """The pull request of a GitHub Actions run, or the merge request of a GitLab pipeline."""
    if env.get("GITHUB_EVENT_PATH"):
        number = _pull_request_number(env["GITHUB_EVENT_PATH"])
        repository = env.get("GITHUB_REPOSITORY", "")
        if number is None:
            event = env.get("GITHUB_EVENT_NAME") or "this"
            raise ReviewSetupError(
                f"the GitHub Actions event ({event}) is not about a pull request: run comment on pull_request "
                "events, or pass --github OWNER/REPO#NUMBER"
            )
        owner, _, repo = repository.partition("/")
        if not owner or not repo:
            raise ReviewSetupError("GITHUB_REPOSITORY is not OWNER/REPO: pass --github OWNER/REPO#NUMBER")
        return _github(owner, repo, number, env)
    if env.get("CI_MERGE_REQUEST_IID"):
        iid = env["CI_MERGE_REQUEST_IID"]
        project = env.get("CI_MERGE_REQUEST_PROJECT_PATH") or env.get("CI_PROJECT_PATH") or ""
        if not iid.isdigit() or not project:
            raise ReviewSetupError("CI_MERGE_REQUEST_IID and CI_PROJECT_PATH do not name a merge request: "
                                   "pass --gitlab GROUP/PROJECT!IID")
        return _gitlab(project, int(iid), env)
    if env.get("GITLAB_CI"):
        raise ReviewSetupError(
            "this GitLab pipeline is not for a merge request (CI_MERGE_REQUEST_IID is not set): run the job in "
            "merge request pipelines, or pass --gitlab GROUP/PROJECT!IID"
        )
    raise ReviewSetupError(
        "no pull or merge request to comment on: pass --github OWNER/REPO#NUMBER or --gitlab GROUP/PROJECT!IID, "
        "or run in a GitHub Actions pull_request workflow or a GitLab merge request pipeline"
    )


def _pull_request_number(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
    except OSError as exc:
        raise ReviewSetupError(f"cannot read GITHUB_EVENT_PATH {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReviewSetupError(f"{path}:{exc.lineno}:{exc.colno}: the GitHub event is not JSON: {exc.msg}") from exc
    if not isinstance(event, dict):
        return None
    pull = event.get("pull_request")
    if isinstance(pull, dict) and isinstance(pull.get("number"), int):
        return int(pull["number"])
    issue = event.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request") and isinstance(issue.get("number"), int):
        return int(issue["number"])
    return None


def _github(owner: str, repo: str, number: int, env: Mapping[str, str]) -> GitHub:
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise ReviewSetupError(
            "GITHUB_TOKEN is not set: it needs to be a token that may write pull request comments (in GitHub "
            "Actions, pass secrets.GITHUB_TOKEN with `permissions: pull-requests: write`)"
        )
    _check_token("GITHUB_TOKEN", token)
    api = env.get("GITHUB_API_URL") or GITHUB_API
    author = env.get("IMAGESYNC_COMMENT_AUTHOR", "").strip() or ACTIONS_BOT
    return GitHub(owner, repo, number, token, api, env.get("GITHUB_GRAPHQL_URL") or None,
                  app_bot=author, secondary_wait=_retry_wait(env))


def _gitlab(project: str, iid: int, env: Mapping[str, str]) -> GitLab:
    token = env.get("GITLAB_TOKEN", "")
    if not token:
        raise ReviewSetupError(
            "GITLAB_TOKEN is not set: it needs to be a project or personal access token with the api scope. "
            "CI_JOB_TOKEN is not used: CI job tokens cannot write merge request notes"
        )
    _check_token("GITLAB_TOKEN", token)
    return GitLab(project, iid, token, env.get("CI_API_V4_URL") or GITLAB_API)


def _check_token(variable: str, token: str) -> None:
    """Refuse a token HTTP cannot carry, naming the variable only: the value is a secret."""
    if not _TOKEN.fullmatch(token):
        raise ReviewSetupError(
            f"{variable} contains whitespace, a control character or a non-ASCII character, which no token has "
            f"(a newline copied with it?): set {variable} to the token alone"
        )


def _retry_wait(env: Mapping[str, str]) -> float:
    """IMAGESYNC_COMMENT_RETRY_WAIT: seconds to wait out GitHub's secondary rate limit before one retry."""
    raw = env.get("IMAGESYNC_COMMENT_RETRY_WAIT", "").strip()
    if not raw:
        return SECONDARY_WAIT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not math.isfinite(seconds) or seconds < 0:
        raise ReviewSetupError(f"IMAGESYNC_COMMENT_RETRY_WAIT={raw!r}: expected a number of seconds, 0 or more")
    return seconds
