"""Connections to Image Builder: client construction, error classification and backoff.

`Connector` makes one Image Builder client per target: against a sandbox (an in-process one on a
state file, or a running `imagesync sandbox serve` URL, with no other AWS endpoint contacted),
or against AWS through the standard boto3 credential chain, an optional profile, endpoint and
role. `call()` is the only way the reconciler calls the API: it classifies errors once and
retries transient ones (throttling, 5xx, dropped connections) with exponential backoff and full
jitter, since botocore's standard retry mode does not retry CallRateLimitExceededException.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from imagesync.errors import PermanentError, TransientError, UserError
from imagesync.logs import get_logger
from imagesync.model import Target

log = get_logger(__name__)

SANDBOX_ACCOUNT = "123456789012"
# An endpoint that refuses connections is most likely wrong, not busy: give up sooner.
MAX_REFUSALS = 3
TRANSIENT_CODES = frozenset(
    {
        "CallRateLimitExceededException",
        "TooManyRequestsException",
        "ThrottlingException",
        "ServiceException",
        "ServiceUnavailableException",
        "InternalServerError",
        "RequestTimeout",
    }
)
_CLIENT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt: retries are ours, see call()
    max_pool_connections=32,
    connect_timeout=5,
    read_timeout=60,
)


class ApiError(PermanentError):
    """An Image Builder error that retrying will not fix; names the operation and AWS error code."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code
        self.aws_message = message


class ApiUnavailable(TransientError):
    """A transient error that outlasted every retry."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} still failing after retries: {code}: {message}")
        self.operation = operation
        self.code = code


def classify(operation: str, exc: Exception) -> ApiError | ApiUnavailable:
    """Map a botocore exception to imagesync's errors: transient or permanent."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return ApiUnavailable(operation, code, message)
        return ApiError(operation, code, message)
    if isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        return ApiUnavailable(operation, "ConnectionError", str(exc))
    return ApiError(operation, type(exc).__name__, str(exc))


@dataclass
class Backoff:
    """Exponential backoff with full jitter; `sleep` is injectable so tests need not wait."""

    attempts: int = 10
    base: float = 0.05
    cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delays(self) -> Iterator[float]:
        for attempt in range(self.attempts - 1):
            yield self.rng.uniform(0, min(self.cap, self.base * (2**attempt)))


@dataclass
class CallCounter:
    """API calls made, per operation; thread-safe."""

    counts: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation: str, retry: bool = False) -> None:
        with self._lock:
            self.counts[operation] = self.counts.get(operation, 0) + 1
            if retry:
                self.retries += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def call(
    client: Any,
    operation: str,
    params: dict[str, Any],
    *,
    backoff: Backoff | None = None,
    counter: CallCounter | None = None,
) -> dict[str, Any]:
    """Call `operation` (e.g. "CreateComponent"), retrying transient failures with backoff."""
    backoff = backoff or Backoff()
    method = getattr(client, _snake(operation))
    delays = backoff.delays()
    retry = False
    refusals = 0
    while True:
        if counter is not None:
            counter.add(operation, retry)
        try:
            response = method(**params)
        except Exception as exc:  # classified right below; nothing is swallowed
            error = classify(operation, exc)
            refused = isinstance(exc, botocore.exceptions.EndpointConnectionError)
            refusals = refusals + 1 if refused else refusals
            if isinstance(error, ApiUnavailable) and refusals < MAX_REFUSALS:
                delay = next(delays, None)
                if delay is not None:
                    log.info("retrying", operation=operation, code=error.code, delay=round(delay, 3))
                    backoff.sleep(delay)
                    retry = True
                    continue
            raise error from exc
        response.pop("ResponseMetadata", None)
        return response


def list_all(
    client: Any,
    operation: str,
    params: dict[str, Any],
    key: str,
    *,
    backoff: Backoff | None = None,
    counter: CallCounter | None = None,
) -> list[dict[str, Any]]:
    """Every item of a List call, following `nextToken` to the end (pages may be short or empty)."""
    items: list[dict[str, Any]] = []
    while True:
        page = call(client, operation, params, backoff=backoff, counter=counter)
        items.extend(page.get(key) or [])
        token = page.get("nextToken")
        if not token:
            return items
        params = {**params, "nextToken": token}


def _snake(operation: str) -> str:
    out = []
    for i, ch in enumerate(operation):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@dataclass
class ConnectOptions:
    """How to reach Image Builder, from the global command-line flags."""

    sandbox: str | None = None  # a state file path or an http(s) URL
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None


class Connector:
    """Image Builder clients per target; owns an in-process sandbox when one is asked for."""

    def __init__(self, options: ConnectOptions) -> None:
        self.options = options
        self._stack = contextlib.ExitStack()
        self._endpoint: str | None = None
        self._session: boto3.Session | None = None
        self._accounts: dict[str, str] = {}
        sandbox = options.sandbox
        if sandbox is not None:
            if sandbox.startswith(("http://", "https://")):
                self._endpoint = sandbox.rstrip("/")
            else:
                from imagesync.sandbox import running

                try:
                    served = self._stack.enter_context(running(state=sandbox))
                except (OSError, ValueError) as exc:
                    raise UserError(f"cannot use sandbox state file {sandbox}: {exc}") from exc
                self._endpoint = served.endpoint_url

    @property
    def sandboxed(self) -> bool:
        return self._endpoint is not None

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def account(self, target: Target) -> str:
        """The target's account: configured, the sandbox's, or asked of STS once."""
        if target.account:
            return target.account
        if self.sandboxed:
            return SANDBOX_ACCOUNT
        if target.name not in self._accounts:
            sts = self._boto_session().client("sts", region_name=target.region)
            self._accounts[target.name] = call(sts, "GetCallerIdentity", {})["Account"]
        return self._accounts[target.name]

    def imagebuilder(self, target: Target) -> Any:
        region = target.region  # --region reaches here through the targets (see manifest.loader.load)
        if self.sandboxed:
            # A 12-digit access key selects the account in the sandbox; nothing else is contacted.
            return boto3.client(
                "imagebuilder",
                endpoint_url=self._endpoint,
                region_name=region,
                aws_access_key_id=target.account or SANDBOX_ACCOUNT,
                aws_secret_access_key="sandbox",
                config=_CLIENT_CONFIG,
            )
        session = self._boto_session()
        if target.role_arn:
            session = self._assume(session, target)
        return session.client(
            "imagebuilder", region_name=region, endpoint_url=self.options.endpoint_url, config=_CLIENT_CONFIG
        )

    def boto_session(self) -> boto3.Session:
        """The session for other AWS services (e.g. the DynamoDB lock); never used in sandbox mode."""
        return self._boto_session()

    def _boto_session(self) -> boto3.Session:
        if self._session is None:
            try:
                self._session = boto3.Session(profile_name=self.options.profile)
            except botocore.exceptions.ProfileNotFound as exc:
                raise UserError(str(exc)) from exc
        return self._session

    def _assume(self, session: boto3.Session, target: Target) -> boto3.Session:
        sts = session.client("sts", region_name=target.region)
        creds = call(sts, "AssumeRole", {"RoleArn": target.role_arn, "RoleSessionName": f"imagesync-{target.name}"})
        c = creds["Credentials"]
        return boto3.Session(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
        )
