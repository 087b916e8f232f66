"""A merge request's notes and labels on GitLab, through API v4.

The token is sent as `PRIVATE-TOKEN`: a project, group or personal access token with the `api`
scope. CI job tokens cannot write notes, so `CI_JOB_TOKEN` is never used. Our notes are those
whose author is the token's user (`GET /user`; a project access token's is its bot user).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from imagesync.review.client import Client, ReviewApiError
from imagesync.review.post import Comment


class GitLab:
    """One merge request, `group/project!iid`, through the API at `api_url`."""

    can_minimize = False

    def __init__(self, project: str, iid: int, token: str, api_url: str) -> None:
        self.where = f"{project}!{iid}"
        self._client = Client(api_url, {"PRIVATE-TOKEN": token}, [token])
        self._mr = f"/projects/{urllib.parse.quote(project, safe='')}/merge_requests/{iid}"
        self._request: dict[str, Any] | None = None
        self._user_id: str | None = None

    def merge_request(self) -> dict[str, Any]:
        """The merge request itself (read once): its `web_url` for note links, and its `labels`."""
        if self._request is None:
            data = self._client.call("GET", self._mr, expect=(200,)).data
            if not isinstance(data, dict):
                raise ReviewApiError(f"GitLab answered GET merge request {self.where} without one")
            self._request = data
        return self._request

    def comments(self) -> list[Comment]:
        """Every note a person or bot wrote, oldest first (system notes, "added 1 commit", are skipped)."""
        notes = self._client.pages(f"{self._mr}/notes", {"per_page": 100, "sort": "asc", "order_by": "created_at"})
        return [self._note(n) for n in notes if isinstance(n, dict) and not n.get("system")]

    def is_ours(self, comment: Comment) -> bool:
        return comment.author == self.user_id()

    def user_id(self) -> str:
        """The id of the user the token acts as, read once."""
        if self._user_id is None:
            data = self._client.call("GET", "/user", expect=(200,)).data
            user_id = data.get("id") if isinstance(data, dict) else None
            if not isinstance(user_id, int):
                raise ReviewApiError("GitLab answered GET /user without a user id")
            self._user_id = str(user_id)
        return self._user_id

    def create(self, body: str) -> Comment:
        path = f"{self._mr}/notes"
        return self._note(self._client.call("POST", path, {"body": body}, expect=(201,), idempotent=False).data)

    def update(self, comment: Comment, body: str) -> Comment:
        path = f"{self._mr}/notes/{urllib.parse.quote(comment.id, safe='')}"
        return self._note(self._client.call("PUT", path, {"body": body}, expect=(200,)).data)

    def minimize(self, comment: Comment) -> None:
        raise ReviewApiError("GitLab cannot minimize a note")

    def labels(self) -> set[str]:
        return {str(label) for label in self.merge_request().get("labels") or []}

    def set_labels(self, add: list[str], remove: list[str]) -> None:
        body = {"add_labels": ",".join(add), "remove_labels": ",".join(remove)}
        self._client.call("PUT", self._mr, {k: v for k, v in body.items() if v}, expect=(200,))

    def _note(self, item: object) -> Comment:
        if not isinstance(item, dict) or "id" not in item:
            raise ReviewApiError("GitLab answered a note call without a note")
        web_url = str(self.merge_request().get("web_url") or "")
        url = f"{web_url}#note_{item['id']}" if web_url else ""
        author = item.get("author")
        if not isinstance(author, dict):
            author = {}
        author_id = author.get("id")
        return Comment(str(item["id"]), str(item.get("body") or ""), url,
                       author=str(author_id) if isinstance(author_id, int) else "")
