"""A small JSON-over-HTTPS client for the code-review APIs, on urllib3.

urllib3 is already installed (botocore depends on it), so posting a comment adds no dependency.
Every call has a timeout; 5xx answers, dropped connections and rate limits (429, and GitHub's 403
with `Retry-After` or `x-ratelimit-remaining: 0`) are retried a few times, honouring the server's
`Retry-After` up to a bound, then given up with an error that names the call and its status.
GitHub's secondary rate limit, a 403 saying so without `Retry-After`, is waited out once, for a
minute by default: GitHub asks for at least that. A call that is not idempotent (creating a
comment) is never retried after an answer that leaves unknown whether it took effect (a 5xx, no
answer): it raises `MaybeWritten`, and the caller looks before it tries again. The token is a
header, never in a URL, and is scrubbed from every message this module raises or logs: an API
error body may echo what it was sent.
"""

from __future__ import annotations

import json
import random
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import urllib3

from imagesync.errors import ImagesyncError
from imagesync.logs import get_logger

log = get_logger("imagesync.review")

ATTEMPTS = 4  # one call and three retries
MAX_WAIT = 60.0  # seconds: a server asking for a longer pause is given up on at once
BACKOFF = 0.5  # seconds before the first retry of a 5xx without Retry-After; doubles each time
TIMEOUT = urllib3.Timeout(connect=10.0, read=30.0)
SECONDARY_WAIT = 60.0  # seconds before the one retry of a secondary rate limit without Retry-After

_LINK = re.compile(r'\s*<([^>]*)>(.*)')
_REL = re.compile(r'rel="([^"]*)"|rel=([^;\s]+)')
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f]+")
_SECRET_PART = 8  # the shortest run of a secret's printable characters scrubbed on its own


class ReviewApiError(ImagesyncError):
    """A call to the review API failed for good (after its retries): the comment was not posted."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MaybeWritten(ReviewApiError):
    """A call that is not idempotent got a 5xx or no answer: it may or may not have taken effect."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    data: Any  # the decoded JSON body, or None for an empty one
    url: str


class Client:
    """JSON calls under one API base URL, with one set of auth headers.

    `secrets` are the strings no message may contain (the token). Absolute URLs (from a `Link`
    header) must stay on the base URL's origin: the token is never sent to another host.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        *,
        attempts: int = ATTEMPTS,
        max_wait: float = MAX_WAIT,
        secondary_wait: float = SECONDARY_WAIT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ReviewApiError(f"not an http(s) API URL: {self.scrub(base_url)!r}")
        self._origin = (parts.scheme, parts.netloc)
        self._headers = {"Accept": "application/json", "User-Agent": "imagesync", **headers}
        self._secrets = _scrubbed_forms(secrets)
        self._attempts = attempts
        self._max_wait = max_wait
        self._secondary_wait = secondary_wait
        self._pool = _pool_for(self.base_url)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """`path` under the base URL (or an absolute URL on its origin), with `query` added."""
        url = path if "://" in path else self.base_url + path
        if urllib.parse.urlsplit(url)[:2] != self._origin:
            raise ReviewApiError(f"refusing to send the token to {self.scrub(url)}: not on {self.base_url}")
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        return url

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        expect: Sequence[int] = (200, 201, 204),
        idempotent: bool = True,
    ) -> Response:
        """One API call, retried while retrying may help; ReviewApiError when it did not succeed.

        With `idempotent=False`, a 5xx or a lost answer raises MaybeWritten at once instead of
        being retried: sending it again could do it twice. Rate limits are still retried: they
        mean the call was not acted on.
        """
        url = self.url(path, query)
        shown = self.scrub(urllib.parse.urlsplit(url).path)
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = dict(self._headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        attempt, secondary_waited = 0, False
        while attempt < self._attempts:
            attempt += 1
            last = attempt == self._attempts
            try:
                raw = self._pool.request(
                    method, url, body=payload, headers=headers, timeout=TIMEOUT, retries=False, redirect=False
                )
            except ValueError as exc:
                # http.client refuses a header value with a line break or a control character,
                # quoting the value, the token included: nothing was sent, and retrying cannot help.
                detail = self.scrub(str(exc))
                raise ReviewApiError(f"{method} {shown}: the request could not be sent: {detail}") from None
            except urllib3.exceptions.HTTPError as exc:
                log.debug("review call", method=method, path=shown, attempt=attempt, ok=False, error=type(exc).__name__)
                if not idempotent:
                    raise MaybeWritten(f"{method} {shown}: no answer: {self.scrub(str(exc))}") from None
                if last:
                    raise ReviewApiError(
                        f"{method} {shown}: no answer after {attempt} attempts: {self.scrub(str(exc))}"
                    ) from None
                time.sleep(backoff(attempt))
                continue
            status = raw.status
            log.debug("review call", method=method, path=shown, attempt=attempt, status=status, ok=status in expect)
            response = Response(status, {k.lower(): v for k, v in raw.headers.items()}, _decode(raw.data), url)
            if status in expect:
                return response
            if not idempotent and status >= 500:
                raise MaybeWritten(f"{method} {shown}: {self._describe(response)}", status)
            wait = _retry_wait(response, attempt)
            if wait is None and not secondary_waited and _secondary_limit(response):
                # Not counted as an attempt: the one retry happens even for a call allowed only one.
                secondary_waited = True
                log.warning("GitHub secondary rate limit: waiting before one retry", method=method, path=shown,
                            seconds=self._secondary_wait)
                time.sleep(self._secondary_wait)
                attempt -= 1
                continue
            if wait is None:
                raise ReviewApiError(f"{method} {shown}: {self._describe(response)}", status)
            if wait > self._max_wait:
                raise ReviewApiError(
                    f"{method} {shown}: {self._describe(response)}; the server asks to wait {wait:.0f} s, "
                    f"more than the {self._max_wait:.0f} s imagesync waits",
                    status,
                )
            if last:
                raise ReviewApiError(f"{method} {shown}: {self._describe(response)} (gave up after {attempt} attempts)",
                                     status)
            time.sleep(wait)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def pages(self, path: str, query: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paginated list: follows `Link: rel="next"`, or GitLab's `X-Next-Page`."""
        items: list[Any] = []
        url: str | None = self.url(path, query)
        seen: set[str] = set()
        while url and url not in seen:  # a server that links a page to itself is not followed forever
            seen.add(url)
            response = self.call("GET", url, expect=(200,))
            if not isinstance(response.data, list):
                raise ReviewApiError(f"GET {self.scrub(urllib.parse.urlsplit(url).path)}: expected a JSON list")
            items.extend(response.data)
            url = _next_page(response)
        return items

    def _describe(self, response: Response) -> str:
        """`422 Unprocessable Entity: Validation Failed (body is too long ...)`, secrets scrubbed."""
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        text = f"{response.status} {reason}".rstrip()
        detail = _api_message(response.data)
        return self.scrub(f"{text}: {detail}" if detail else text)


def _scrubbed_forms(secrets: Sequence[str]) -> list[str]:
    """Each secret, and each long run of its printable characters, longest first: a token with a
    stray newline appears in an error only as `repr` quotes it (`\\n`), or as the part before it."""
    forms = {s for s in secrets if s}
    for secret in list(forms):
        forms.update(part for part in _UNPRINTABLE.split(secret) if len(part) >= _SECRET_PART)
        forms.add(repr(secret.encode("utf-8"))[2:-1])
    return sorted(forms, key=len, reverse=True)


def _pool_for(url: str) -> urllib3.PoolManager:
    """A pool that honours HTTPS_PROXY/HTTP_PROXY and NO_PROXY, as CI runners behind a proxy need."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return urllib3.ProxyManager(proxy)
    return urllib3.PoolManager()


def _decode(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data[:500].decode("utf-8", "replace")  # an HTML error page, say: shown in the error


def _api_message(data: Any) -> str:
    """What GitHub (`message`, `errors[].message`) or GitLab (`message`, `error`) says went wrong."""
    if isinstance(data, str):
        return " ".join(data.split())[:300]
    if not isinstance(data, Mapping):
        return ""
    parts = []
    for key in ("message", "error"):
        value = data.get(key)
        if value:
            parts.append(value if isinstance(value, str) else json.dumps(value))
    errors = [e.get("message") or e.get("code") for e in data.get("errors") or [] if isinstance(e, Mapping)]
    details = [str(d) for d in errors if d]
    if details:
        parts.append(f"({'; '.join(details)})")
    return " ".join(parts)


def _retry_wait(response: Response, attempt: int) -> float | None:
    """Seconds to wait before retrying `response`, or None when retrying cannot help."""
    status, headers = response.status, response.headers
    retry_after = _seconds(headers.get("retry-after"))
    rate_limited = status == 429 or (
        status == 403 and (retry_after is not None or headers.get("x-ratelimit-remaining") == "0")
    )
    if not rate_limited and status < 500:
        return None
    if retry_after is not None:
        return retry_after
    if rate_limited and headers.get("x-ratelimit-remaining") == "0":
        reset = _seconds(headers.get("x-ratelimit-reset"))
        if reset is not None:
            return max(1.0, reset - time.time())
    return backoff(attempt)


def _secondary_limit(response: Response) -> bool:
    """GitHub's secondary rate limit: a 403 that says so, sometimes without any header to go by."""
    return response.status == 403 and "secondary rate limit" in _api_message(response.data).lower()


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: rare from these APIs, and backing off instead is safe
    return seconds if seconds >= 0 else None


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt`: doubling, jittered so parallel jobs spread out."""
    return BACKOFF * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def _next_page(response: Response) -> str | None:
    for link in response.headers.get("link", "").split(","):
        match = _LINK.match(link)
        rel = _REL.search(match.group(2)) if match else None
        if match and rel and "next" in (rel.group(1) or rel.group(2)).split():
            return match.group(1)
    next_page = response.headers.get("x-next-page", "").strip()
    if next_page:
        parts = urllib.parse.urlsplit(response.url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["page"] = next_page
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return None

