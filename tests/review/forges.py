"""In-process GitHub and GitLab API servers for `imagesync comment`, written from the public API docs.

Each runs `http.server` on a thread, on 127.0.0.1 and a free port, and keeps what it was asked
(`calls`, and `writes`: every call that is not a GET). Only the endpoints `comment` uses exist:

- GitHub REST: the token's user (`GET /user`: a user token's login, or the 403 an app
  installation token such as Actions' GITHUB_TOKEN gets), issue comments (list with
  `per_page`/`page` and a `Link` header, create, update; 422 for a body over 65,536 characters;
  each has its author in `user`), issue labels (list, add, remove), and GraphQL's
  `minimizeComment`. Authorization must be `Bearer <token>`, else 401.
- GitLab v4: the token's user (`GET /user`), the merge request (read; labels through
  `add_labels`/`remove_labels`), its notes (list with `X-Next-Page`, create, update; each has its
  `author`). `PRIVATE-TOKEN` must be the token, else 401.

`fail(method, path, status, times, ...)` queues failures for matching calls (a 502, a secondary
rate limit with Retry-After), answered before the real endpoint runs; with `apply=True` the real
endpoint runs first and its answer is replaced, as when a gateway times out on a request the
server went on to complete; with `drop=True` the connection is closed without an answer.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GITHUB_BODY_LIMIT = 65_536
DROP = -1  # a Reply status meaning: hang up without answering


@dataclass
class Fault:
    method: str
    path: str  # a regular expression the request path (no query) must fully match
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    echo_auth: bool = False  # put the request's credentials into the error body, as a careless proxy might
    apply: bool = False  # the real endpoint acts on the request before the failure is answered
    drop: bool = False  # close the connection without any answer (status is then ignored)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Server:
    """The HTTP plumbing both fakes share: dispatch, call log, faults, auth."""

    def __init__(self, token: str, prefix: str = "") -> None:
        self.token = token
        self.prefix = prefix
        self.calls: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.origin + self.prefix

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] != "GET"]

    def fail(self, method: str, path: str, status: int, times: int = 1, **kw: Any) -> None:
        self.faults.append(Fault(method, path, status, times, **kw))

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def authorized(self, headers: Any) -> bool:
        raise NotImplementedError

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _serve(self) -> None:
                raw_path, _, raw_query = self.path.partition("?")
                query = dict(urllib.parse.parse_qsl(raw_query))
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                with server.lock:
                    server.calls.append((self.command, raw_path))
                    reply = server._answer(self.command, raw_path, query, data, self.headers)
                if reply.status == DROP:
                    self.close_connection = True
                    return
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler

    def _answer(self, method: str, raw_path: str, query: dict[str, str], data: bytes, headers: Any) -> Reply:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and re.fullmatch(fault.path, raw_path):
                fault.times -= 1
                if fault.apply and self.authorized(headers):
                    self.route(method, raw_path, query, json.loads(data) if data else None)
                body = fault.body if fault.body is not None else {"message": "fault injected"}
                if fault.echo_auth:
                    seen = headers.get("Authorization") or headers.get("PRIVATE-TOKEN") or ""
                    body = {"message": f"upstream failed for request with credentials {seen}"}
                return Reply(DROP if fault.drop else fault.status, body, dict(fault.headers))
        if not self.authorized(headers):
            return Reply(401, {"message": "Bad credentials" if isinstance(self, FakeGitHub) else "401 Unauthorized"})
        try:
            body = json.loads(data) if data else None
        except ValueError:
            return Reply(400, {"message": "Problems parsing JSON"})
        return self.route(method, raw_path, query, body)


def _page(items: list[Any], query: dict[str, str], default: int) -> tuple[list[Any], int, int]:
    per_page = min(int(query.get("per_page", default)), 100)
    page = max(int(query.get("page", 1)), 1)
    last = max(1, -(-len(items) // per_page))
    return items[(page - 1) * per_page : page * per_page], page, last


class FakeGitHub(_Server):
    """One repository's pull requests. `prefix="/api/v3"` lays it out as Enterprise Server does
    (GraphQL then at /api/graphql); the default is github.com's (GraphQL at /graphql).

    With `user`, the token is that user's (`GET /user` names them); without, it is an app
    installation token, as Actions' GITHUB_TOKEN is: `GET /user` is refused with 403 and what the
    token posts is written by the app's bot, `app`."""

    def __init__(self, token: str, owner: str = "acme", repo: str = "images", prefix: str = "",
                 user: str | None = None, app: str = "github-actions[bot]") -> None:
        super().__init__(token, prefix)
        self.owner, self.repo = owner, repo
        self.user = user
        self.author = user or app
        self.comments: dict[int, dict[str, Any]] = {}
        self.issue_of: dict[int, int] = {}
        self.labels: dict[int, list[str]] = {}
        self.minimized: set[str] = set()
        self._next_id = 1000
        self.graphql_path = "/api/graphql" if prefix == "/api/v3" else prefix + "/graphql"

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.token}"

    def add_comment(self, number: int, body: str, login: str = "someone") -> dict[str, Any]:
        self._next_id += 1
        cid = self._next_id
        comment = {
            "id": cid,
            "node_id": f"IC_node{cid}",
            "body": body,
            "html_url": f"https://github.example/{self.owner}/{self.repo}/pull/{number}#issuecomment-{cid}",
            "user": {"login": login, "type": "Bot" if login.endswith("[bot]") else "User"},
        }
        self.comments[cid] = comment
        self.issue_of[cid] = number
        return comment

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for cid, c in sorted(self.comments.items()) if self.issue_of[cid] == number]

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if path == self.graphql_path and method == "POST":
            return self._graphql(body)
        rest = path[len(self.prefix) :]
        if rest == "/user" and method == "GET" and path.startswith(self.prefix):
            if self.user is None:
                return Reply(403, {"message": "Resource not accessible by integration",
                                   "documentation_url": "https://docs.github.com/rest/users/users"})
            return Reply(200, {"login": self.user, "id": 4242, "type": "User"})
        repo = f"/repos/{self.owner}/{self.repo}"
        if not path.startswith(self.prefix) or not rest.startswith(repo + "/"):
            return Reply(404, {"message": "Not Found"})
        rest = rest[len(repo) :]
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            number = int(m[1])
            if method == "GET":
                return self._list(path, query, self.comments_on(number))
            if method == "POST":
                if too_long := self._too_long(body):
                    return too_long
                return Reply(201, self.add_comment(number, body["body"], self.author))
        if (m := re.fullmatch(r"/issues/comments/(\d+)", rest)) and method == "PATCH":
            comment = self.comments.get(int(m[1]))
            if comment is None:
                return Reply(404, {"message": "Not Found"})
            if too_long := self._too_long(body):
                return too_long
            comment["body"] = body["body"]
            return Reply(200, comment)
        if m := re.fullmatch(r"/issues/(\d+)/labels", rest):
            labels = self.labels.setdefault(int(m[1]), [])
            if method == "GET":
                return self._list(path, query, [{"name": n} for n in labels])
            if method == "POST":
                labels.extend(n for n in body["labels"] if n not in labels)
                return Reply(200, [{"name": n} for n in labels])
        if (m := re.fullmatch(r"/issues/(\d+)/labels/([^/]+)", rest)) and method == "DELETE":
            labels = self.labels.setdefault(int(m[1]), [])
            name = urllib.parse.unquote(m[2])
            if name not in labels:
                return Reply(404, {"message": "Label does not exist"})
            labels.remove(name)
            return Reply(200, [{"name": n} for n in labels])
        return Reply(404, {"message": "Not Found"})

    def _too_long(self, body: Any) -> Reply | None:
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            return Reply(422, {"message": "Invalid request.", "errors": [{"field": "body", "code": "missing"}]})
        if len(body["body"]) > GITHUB_BODY_LIMIT:
            error = {"resource": "IssueComment", "code": "custom", "field": "body",
                     "message": f"body is too long (maximum is {GITHUB_BODY_LIMIT} characters)"}
            return Reply(422, {"message": "Validation Failed", "errors": [error]})
        return None

    def _list(self, path: str, query: dict[str, str], items: list[Any]) -> Reply:
        chunk, page, last = _page(items, query, 30)
        rels = ([("prev", page - 1), ("first", 1)] if page > 1 else []) + (
            [("next", page + 1), ("last", last)] if page < last else []
        )
        links = []
        for rel, number in rels:
            q = urllib.parse.urlencode({**query, "page": number})
            links.append(f'<{self.origin}{path}?{q}>; rel="{rel}"')
        return Reply(200, chunk, {"Link": ", ".join(links)} if links else {})

    def _graphql(self, body: Any) -> Reply:
        query = body.get("query", "") if isinstance(body, dict) else ""
        if "minimizeComment" not in query or "OUTDATED" not in query:
            return Reply(200, {"errors": [{"message": "this server knows only minimizeComment(OUTDATED)"}]})
        subject = (body.get("variables") or {}).get("id")
        if subject not in {c["node_id"] for c in self.comments.values()}:
            message = f"Could not resolve to a node with the global id of '{subject}'"
            return Reply(200, {"data": None, "errors": [{"type": "NOT_FOUND", "message": message}]})
        self.minimized.add(subject)
        return Reply(200, {"data": {"minimizeComment": {"minimizedComment": {"isMinimized": True}}}})


class FakeGitLab(_Server):
    """One project's merge requests under /api/v4, the project addressed by its URL-encoded path."""

    # Who the token is (a project access token's bot user), and who else writes notes.
    USER = {"id": 41, "username": "project_7_bot_3c1d", "bot": True}
    SOMEONE = {"id": 12, "username": "someone", "bot": False}

    def __init__(self, token: str, project: str = "platform/images") -> None:
        super().__init__(token, "/api/v4")
        self.project = project
        self.user = dict(self.USER)
        self.notes: dict[int, dict[str, Any]] = {}
        self.mr_of: dict[int, int] = {}
        self.labels: dict[int, list[str]] = {}
        self._next_id = 500

    def authorized(self, headers: Any) -> bool:
        return headers.get("PRIVATE-TOKEN") == self.token

    def add_note(
        self, iid: int, body: str, system: bool = False, author: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        note = {"id": self._next_id, "body": body, "system": system, "author": dict(author or self.SOMEONE)}
        self.notes[self._next_id] = note
        self.mr_of[self._next_id] = iid
        return note

    def notes_on(self, iid: int) -> list[dict[str, Any]]:
        return [n for nid, n in sorted(self.notes.items()) if self.mr_of[nid] == iid]

    def _merge_request(self, iid: int) -> dict[str, Any]:
        return {
            "iid": iid,
            "web_url": f"https://gitlab.example/{self.project}/-/merge_requests/{iid}",
            "labels": list(self.labels.get(iid, [])),
        }

    def route(self, method: str, path: str, query: dict[str, str], body: Any) -> Reply:
        if path == "/api/v4/user" and method == "GET":
            return Reply(200, {**self.user, "state": "active"})
        base = f"/api/v4/projects/{urllib.parse.quote(self.project, safe='')}/merge_requests/"
        if not path.startswith(base):
            return Reply(404, {"message": "404 Project Not Found"})
        rest = path[len(base) :]
        if m := re.fullmatch(r"(\d+)", rest):
            iid = int(m[1])
            if method == "GET":
                return Reply(200, self._merge_request(iid))
            if method == "PUT":
                labels = self.labels.setdefault(iid, [])
                for name in (body.get("remove_labels") or "").split(","):
                    if name in labels:
                        labels.remove(name)
                labels.extend(n for n in (body.get("add_labels") or "").split(",") if n and n not in labels)
                return Reply(200, self._merge_request(iid))
        if m := re.fullmatch(r"(\d+)/notes", rest):
            iid = int(m[1])
            if method == "GET":
                chunk, page, last = _page(self.notes_on(iid), query, 20)
                headers = {"X-Page": str(page), "X-Total-Pages": str(last), "X-Next-Page": ""}
                if page < last:
                    headers["X-Next-Page"] = str(page + 1)
                return Reply(200, chunk, headers)
            if method == "POST":
                return Reply(201, self.add_note(iid, body["body"], author=self.user))
        if (m := re.fullmatch(r"(\d+)/notes/(\d+)", rest)) and method == "PUT":
            note = self.notes.get(int(m[2]))
            if note is None or self.mr_of[int(m[2])] != int(m[1]):
                return Reply(404, {"message": "404 Not found"})
            note["body"] = body["body"]
            return Reply(200, note)
        return Reply(404, {"message": "404 Not Found"})

