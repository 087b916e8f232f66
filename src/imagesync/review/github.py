"""A pull request's conversation on GitHub (or GitHub Enterprise): issue comments and labels.

Pull request comments are issue comments in GitHub's REST API. Minimizing one has no REST call,
only GraphQL's `minimizeComment`, which takes the comment's `node_id`.

Our comments are those the token's identity wrote. A user's token (a personal access token) may
read `GET /user`, which names its login. An app installation token, which is what GitHub Actions'
GITHUB_TOKEN is, may not (403 "Resource not accessible by integration"), and what it posts is
written by the app's bot: `github-actions[bot]` for Actions, another app's when its token is used
(`IMAGESYNC_COMMENT_AUTHOR`). Then only comments by a Bot of that login are ours; no person can
hold a login with `[bot]` in it.
"""

from __future__ import annotations

import urllib.parse

from imagesync.review.client import SECONDARY_WAIT, Client, ReviewApiError
from imagesync.review.post import Comment

API_VERSION = "2022-11-28"
ACTIONS_BOT = "github-actions[bot]"  # who GitHub Actions' GITHUB_TOKEN writes as

_MINIMIZE = (
    "mutation($id: ID!) { minimizeComment(input: {subjectId: $id, classifier: OUTDATED}) "
    "{ minimizedComment { isMinimized } } }"
)


def graphql_url(api_url: str) -> str:
    """GraphQL's URL beside a REST base: `{api}/graphql`, but Enterprise Server's REST API is under
    `/api/v3` and its GraphQL at `/api/graphql`."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


class GitHub:
    """One pull request, `owner/repo#number`, through the REST API at `api_url`."""

    can_minimize = True

    def __init__(
        self,
        owner: str,
        repo: str,
        number: int,
        token: str,
        api_url: str,
        graphql: str | None = None,
        *,
        app_bot: str = ACTIONS_BOT,
        secondary_wait: float = SECONDARY_WAIT,
    ) -> None:
        self.where = f"{owner}/{repo}#{number}"
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        self._rest = Client(api_url, headers, [token], secondary_wait=secondary_wait)
        self._graphql = Client(graphql or graphql_url(api_url), headers, [token], secondary_wait=secondary_wait)
        self._app_bot = app_bot
        self._identity: tuple[str, bool] | None = None  # (login, is an app's bot), read once
        repo_path = f"/repos/{urllib.parse.quote(owner, safe='')}/{urllib.parse.quote(repo, safe='')}"
        self._issue = f"{repo_path}/issues/{number}"
        self._comment = f"{repo_path}/issues/comments"

    def comments(self) -> list[Comment]:
        """Every comment of the pull request, oldest first, following `Link: rel="next"`."""
        return [_comment(item) for item in self._rest.pages(f"{self._issue}/comments", {"per_page": 100})]

    def is_ours(self, comment: Comment) -> bool:
        login, bot = self.identity()
        return comment.author == login and (comment.bot or not bot)

    def identity(self) -> tuple[str, bool]:
        """The login the token writes as, and whether it is an app's bot (an installation token)."""
        if self._identity is None:
            try:
                data = self._rest.call("GET", "/user", expect=(200,)).data
            except ReviewApiError as err:
                if err.status != 403:
                    raise
                self._identity = (self._app_bot, True)  # an installation token may not read /user
            else:
                login = data.get("login") if isinstance(data, dict) else None
                if not isinstance(login, str) or not login:
                    raise ReviewApiError("GitHub answered GET /user without a login") from None
                self._identity = (login, False)
        return self._identity

    def create(self, body: str) -> Comment:
        path = f"{self._issue}/comments"
        return _comment(self._rest.call("POST", path, {"body": body}, expect=(201,), idempotent=False).data)

    def update(self, comment: Comment, body: str) -> Comment:
        path = f"{self._comment}/{urllib.parse.quote(comment.id, safe='')}"
        return _comment(self._rest.call("PATCH", path, {"body": body}, expect=(200,)).data)

    def minimize(self, comment: Comment) -> None:
        if not comment.node_id:
            raise ReviewApiError(f"comment {comment.url or comment.id} has no node_id to minimize it by")
        answer = self._graphql.call("POST", "", {"query": _MINIMIZE, "variables": {"id": comment.node_id}}).data
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if errors or not isinstance(answer, dict) or not answer.get("data"):
            detail = "; ".join(str(e.get("message", e)) for e in errors or [] if isinstance(e, dict)) or "no data"
            raise ReviewApiError(f"minimizing comment {comment.url or comment.id} failed: {self._rest.scrub(detail)}")

    def labels(self) -> set[str]:
        return {str(label["name"]) for label in self._rest.pages(f"{self._issue}/labels", {"per_page": 100})}

    def set_labels(self, add: list[str], remove: list[str]) -> None:
        for name in remove:
            # 404: someone removed it meanwhile, which is what was wanted.
            self._rest.call("DELETE", f"{self._issue}/labels/{urllib.parse.quote(name, safe='')}", expect=(200, 404))
        if add:
            self._rest.call("POST", f"{self._issue}/labels", {"labels": add}, expect=(200,))


def _comment(item: object) -> Comment:
    if not isinstance(item, dict) or "id" not in item:
        raise ReviewApiError("GitHub answered a comment call without a comment")
    user = item.get("user")
    if not isinstance(user, dict):
        user = {}
    return Comment(str(item["id"]), str(item.get("body") or ""), str(item.get("html_url") or ""),
                   str(item.get("node_id") or ""), str(user.get("login") or ""), user.get("type") == "Bot")
