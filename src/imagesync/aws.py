"""Connections to Image Builder: client construction, error classification and backoff.

`Connector` makes one Image Builder client per target: against a sandbox's URL (with no other
AWS endpoint contacted), or against AWS through the standard boto3 credential chain, an optional
profile, endpoint and role. It never starts a sandbox and never imports one: the sandbox judges
the reconciler, so the CLI starts an in-process one for `--sandbox STATE_FILE` and hands over its
URL. Outside the sandbox no client is handed out before STS confirms that the target's
credentials (after its role) act in the target's declared account: a wrong account would
otherwise be planned, written and pruned as if it were the target's. `call()` is the only way
the reconciler calls the API: it classifies errors once and retries transient ones (throttling,
5xx, dropped connections) with exponential backoff and full jitter until a deadline (5 minutes
unless IMAGESYNC_RETRY_DEADLINE says otherwise), since botocore's standard retry mode does not
retry CallRateLimitExceededException; botocore itself makes one attempt per call. Before every
attempt it takes a token from the adaptive rate limiter of the client's account and region
(`ratelimit`), which slows down when the service throttles and speeds up again after. Each attempt is one debug event
(`api call`: operation, target, attempt, duration_ms, and the AWS error code on failure), never
its parameters, which may hold secrets. The lock's DynamoDB and S3 calls go through `call()` too.

A target's `roleArn` is assumed with botocore's refreshable credentials: one AssumeRole per
target, made again by botocore before the temporary credentials expire (an apply may outlast
the role session), from the base session's credentials (profile, environment, SSO, web
identity: whatever botocore's chain finds, refreshed the same way).
"""

from __future__ import annotations

import os
import platform
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import botocore
import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.config import Config

from imagesync import __version__
from imagesync.desired import Target
from imagesync.errors import ImagesyncError, PermanentError, TransientError, UserError
from imagesync.logs import get_logger
from imagesync.ratelimit import attach, limiter_of

log = get_logger(__name__)

# The account a sandbox target without a declared account acts in. The reconciler chooses it
# itself, by signing with it as the access key id (see imagebuilder()), rather than relying on
# whichever default account the sandbox picks for other keys.
SANDBOX_ACCOUNT = "123456789012"
# An endpoint that refuses connections is most likely wrong, not busy: give up sooner.
MAX_REFUSALS = 3
TRANSIENT_CODES = frozenset(
    {
        "CallRateLimitExceededException",
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",  # STS and other query-protocol services
        "ServiceException",
        "ServiceUnavailableException",
        "InternalServerError",
        "RequestTimeout",
        # DynamoDB and S3, for the lock: their throttling answers 400 with these codes.
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
    }
)
# The answers that mean "slow down" (the rate limiter cuts its rate on these); HTTP 429 too.
THROTTLING_CODES = frozenset(
    {
        "CallRateLimitExceededException",  # Image Builder's, which botocore's adaptive mode does not know
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
    }
)
DEADLINE_VARIABLE = "IMAGESYNC_RETRY_DEADLINE"
DEFAULT_DEADLINE = 300.0  # seconds of retrying one call before giving up
# For every client whose calls go through call(): one attempt each, as the retries are call()'s.
# Every request names imagesync (CloudTrail shows who made a change). A fixed string is also what
# botocore sends fastest: its own user agent is rebuilt from some seventy parts on every request,
# a sixth of the CPU a read costs.
USER_AGENT = f"imagesync/{__version__} botocore/{botocore.__version__} python/{platform.python_version()}"
CLIENT_CONFIG = Config(
    user_agent=USER_AGENT,
    retries={"total_max_attempts": 1, "mode": "standard"},
    # Room for every reader thread (--concurrency) and lister at once: a full pool drops connections,
    # and each new one costs a handshake (and, against a busy listener, a dropped SYN's second).
    max_pool_connections=256,
    connect_timeout=5,
    read_timeout=60,
)
_CLIENT_CONFIG = CLIENT_CONFIG


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


def is_throttling(exc: Exception) -> bool:
    """Whether `exc` is the service asking this client to slow down."""
    if not isinstance(exc, botocore.exceptions.ClientError):
        return False
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in THROTTLING_CODES or status == 429


def retry_deadline() -> float:
    """Seconds one call is retried for: IMAGESYNC_RETRY_DEADLINE, or 5 minutes."""
    raw = os.environ.get(DEADLINE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_DEADLINE
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise UserError(f"{DEADLINE_VARIABLE} must be a positive number of seconds, got {raw!r}")
    return seconds


# One generator for every call's jitter: seeding one per call read the OS's entropy every time.
_JITTER = random.Random()


@dataclass
class Backoff:
    """Exponential backoff with full jitter, retrying until `deadline` seconds after the first failure
    (and at most `attempts` attempts, if given). `sleep` and `clock` are injectable so tests need
    not wait: a test that fakes `sleep` should fake `clock` too, or bound `attempts`."""

    attempts: int | None = None
    base: float = 0.05
    cap: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: _JITTER)
    deadline: float = field(default_factory=retry_deadline)
    clock: Callable[[], float] = time.monotonic

    def delays(self) -> Iterator[float]:
        """The waits before each retry; runs out when the deadline (or the attempts) would be passed."""
        started = self.clock()
        attempt = 0
        while self.attempts is None or attempt < self.attempts - 1:
            remaining = self.deadline - (self.clock() - started)
            if remaining <= 0:
                return
            # min(attempt, 60): 2**attempt beyond that only ever meets the cap.
            yield min(remaining, self.rng.uniform(0, min(self.cap, self.base * (2 ** min(attempt, 60)))))
            attempt += 1


@dataclass
class CallCounter:
    """API calls made, per operation; thread-safe."""

    counts: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    # Answers, per (operation, "ok" or the AWS error code), and how many said "slow down".
    answers: dict[tuple[str, str], int] = field(default_factory=dict)
    throttled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, operation: str, retry: bool = False) -> None:
        with self._lock:
            self.counts[operation] = self.counts.get(operation, 0) + 1
            if retry:
                self.retries += 1

    def answered(self, operation: str, code: str | None, throttled: bool = False) -> None:
        with self._lock:
            key = (operation, code or "ok")
            self.answers[key] = self.answers.get(key, 0) + 1
            if throttled:
                self.throttled += 1

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
    target: str | None = None,
) -> dict[str, Any]:
    """Call `operation` (e.g. "CreateComponent"), paced by the client's rate limiter, retrying
    transient failures with backoff until the backoff's deadline.

    `target` names the target the call is for in the debug event each attempt logs.
    """
    backoff = backoff or Backoff()
    method = getattr(client, _snake(operation))
    limiter = limiter_of(client)
    key = f"{_service(client)}:{operation}"
    delays = backoff.delays()
    retry = False
    refusals = 0
    attempt = 0
    while True:
        attempt += 1
        ticket = limiter.acquire(key)
        if counter is not None:
            counter.add(operation, retry)
        started = time.perf_counter()
        try:
            response = method(**params)
        except ImagesyncError:
            # Raised on purpose below botocore, e.g. a role that can no longer be assumed when its
            # credentials are refreshed: already says what is wrong, naming the target and role.
            _log_attempt(operation, target, attempt, started, "ImagesyncError")
            raise
        except Exception as exc:  # classified right below; nothing is swallowed
            error = classify(operation, exc)
            _log_attempt(operation, target, attempt, started, error.code)
            throttled = is_throttling(exc)
            if counter is not None:
                counter.answered(operation, error.code, throttled)
            if throttled:
                limiter.throttled(ticket)
            refused = isinstance(exc, botocore.exceptions.EndpointConnectionError)
            refusals = refusals + 1 if refused else refusals
            if isinstance(error, ApiUnavailable) and refusals < MAX_REFUSALS:
                delay = next(delays, None)
                if delay is not None:
                    log.info("retrying", operation=operation, target=target, code=error.code, delay=round(delay, 3))
                    backoff.sleep(delay)
                    retry = True
                    continue
            raise error from exc
        _log_attempt(operation, target, attempt, started, None)
        if counter is not None:
            counter.answered(operation, None)
        limiter.succeeded(ticket)
        response.pop("ResponseMetadata", None)
        answer: dict[str, Any] = response
        return answer


def _log_attempt(operation: str, target: str | None, attempt: int, started: float, code: str | None) -> None:
    # Operation, target, timing and outcome only: parameters and responses may hold secrets.
    fields: dict[str, Any] = {"operation": operation, "target": target, "attempt": attempt}
    fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if code is not None:
        fields["code"] = code
    log.debug("api call", ok=code is None, **fields)


def list_all(
    client: Any,
    operation: str,
    params: dict[str, Any],
    key: str,
    *,
    backoff: Backoff | None = None,
    counter: CallCounter | None = None,
    target: str | None = None,
) -> list[dict[str, Any]]:
    """Every item of a List call, following `nextToken` to the end (pages may be short or empty)."""
    items: list[dict[str, Any]] = []
    while True:
        page = call(client, operation, params, backoff=backoff, counter=counter, target=target)
        items.extend(page.get(key) or [])
        token = page.get("nextToken")
        if not token:
            return items
        params = {**params, "nextToken": token}


def _service(client: Any) -> str:
    try:
        return str(client.meta.service_model.service_name)
    except AttributeError:  # a stand-in client without botocore's model
        return type(client).__name__


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

    sandbox: str | None = None  # the http(s) URL of a running sandbox (the CLI turns a state file into one)
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None


class Connector:
    """Image Builder clients per target, against AWS or against the sandbox at `options.sandbox`.

    `clock` (an aware datetime, now) is what a role's credentials are judged against for refresh;
    tests move it to bring an expiry near.
    """

    def __init__(self, options: ConnectOptions, *, clock: Callable[[], datetime] | None = None) -> None:
        self.options = options
        retry_deadline()  # a malformed IMAGESYNC_RETRY_DEADLINE fails here, before any call
        self._clock = clock or _utcnow
        self._endpoint: str | None = None
        self._session: botocore.session.Session | None = None
        self._accounts: dict[str, str] = {}  # verified, per target name
        self._sessions: dict[str, botocore.session.Session] = {}  # per target name, after its roleArn
        self._guard = threading.RLock()  # one STS round per target even if targets run concurrently
        sandbox = options.sandbox
        if sandbox is not None:
            if not sandbox.startswith(("http://", "https://")):
                # A state file is served by whoever starts the sandbox (the CLI), never from here.
                raise ValueError(f"ConnectOptions.sandbox must be a sandbox URL, not {sandbox!r}")
            self._endpoint = sandbox.rstrip("/")

    @property
    def sandboxed(self) -> bool:
        return self._endpoint is not None

    def close(self) -> None:
        """Nothing to release today (clients close with the process); kept for `with Connector(...)`."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def account(self, target: Target) -> str:
        """The target's account: the sandbox's, or the one its credentials are verified to act in.

        A declared account is returned as declared until `imagebuilder()` verifies it (a target
        that fails verification never gets a client, so nothing acts on an unverified account);
        that way a run selecting some targets does not need credentials for the others. Without a
        declared account, the caller's account is asked of STS.
        """
        if self.sandboxed:
            return target.account or SANDBOX_ACCOUNT
        if target.name in self._accounts:
            return self._accounts[target.name]
        if target.account:
            return target.account
        return self.verify(target)

    def verify(self, target: Target) -> str:
        """Ask STS, once per target, which account the target's credentials act in (after its
        `roleArn`, if any), and insist it is the declared account. Returns the verified account."""
        if self.sandboxed:
            return target.account or SANDBOX_ACCOUNT
        with self._guard:
            return self._verify(target)

    def _verify(self, target: Target) -> str:
        if target.name not in self._accounts:
            session = self._target_session(target)
            identity = self._sts(target, session, "GetCallerIdentity", {})
            actual = str(identity.get("Account", ""))
            if target.account and actual != target.account:
                via = f", after assuming role {target.role_arn}," if target.role_arn else ""
                raise UserError(
                    f"target '{target.name}' declares account {target.account}, but its credentials{via} act in "
                    f"account {actual} ({identity.get('Arn', 'unknown identity')}); refusing to read or change "
                    f"anything there: use credentials or a roleArn for account {target.account}, "
                    "or correct the target's account in imagesync.yaml"
                )
            log.debug("account verified", target=target.name, account=actual, arn=identity.get("Arn"))
            self._accounts[target.name] = actual
        return self._accounts[target.name]

    def imagebuilder(self, target: Target) -> Any:
        region = target.region  # --region reaches here through the targets (see manifest.loader.load)
        if self.sandboxed:
            # A 12-digit access key selects the account in the sandbox; nothing else is contacted.
            client = self._sandbox_session().create_client(
                "imagebuilder",
                endpoint_url=self._endpoint,
                region_name=region,
                aws_access_key_id=target.account or SANDBOX_ACCOUNT,
                aws_secret_access_key="sandbox",
                config=_CLIENT_CONFIG,
            )
            return attach(client, target.account or SANDBOX_ACCOUNT)
        # No client before the account is verified: a wrong account must see no call at all.
        account = self.verify(target)
        client = self._target_session(target).create_client(
            "imagebuilder", region_name=region, endpoint_url=self.options.endpoint_url, config=_CLIENT_CONFIG
        )
        return attach(client, account)

    def boto_session(self) -> Any:
        """A boto3 session for other AWS services (e.g. the DynamoDB lock); never used in sandbox mode."""
        import boto3  # only the lock backends need boto3: the rest talks to botocore directly

        return boto3.Session(botocore_session=self._boto_session())

    def _boto_session(self) -> botocore.session.Session:
        # botocore, not boto3: importing boto3 (and the S3 transfer manager it brings) costs every
        # command a sixth of a second, and nothing here needs more than botocore's clients.
        if self._session is None:
            session = botocore.session.Session(profile=self.options.profile)
            profile = self.options.profile
            if profile and profile not in session.available_profiles:
                raise UserError(str(botocore.exceptions.ProfileNotFound(profile=profile)))
            self._session = session
        return self._session

    def _sandbox_session(self) -> botocore.session.Session:
        # Against a sandbox no profile or credential chain is read: each client is given its keys.
        with self._guard:
            if self._session is None:
                self._session = botocore.session.Session()
            return self._session

    def client(self, target: Target, service: str) -> Any:
        """A client of another AWS `service` acting as `target` (after its `roleArn`), verified first
        like `imagebuilder()`; never in sandbox mode, where nothing but the sandbox is contacted."""
        if self.sandboxed:
            raise ValueError(f"no {service} client against a sandbox")
        account = self.verify(target)
        client = self._target_session(target).create_client(service, region_name=target.region, config=_CLIENT_CONFIG)
        return attach(client, account)

    def s3(self, target: Target) -> Any:
        """An S3 client acting as `target`, for documents kept in S3. Against AWS it is built like
        the Image Builder client (the target's session, after its role, verified first), and
        botocore finds the endpoint as it always does (AWS_ENDPOINT_URL_S3, the profile's
        `services`). Against a sandbox only an S3 endpoint named in the environment
        (AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, e.g. a moto server) is used, signed as the
        target's sandbox account: with neither, nothing is contacted and this says what to set."""
        if not self.sandboxed:
            return self.client(target, "s3")
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if not endpoint:
            raise UserError(
                f"target '{target.name}' keeps a document in S3, but against a sandbox no S3 endpoint is contacted "
                "unless one is named: set AWS_ENDPOINT_URL_S3 (a moto server, say)"
            )
        client = self._sandbox_session().create_client(
            "s3",
            endpoint_url=endpoint,
            region_name=target.region,
            aws_access_key_id=target.account or SANDBOX_ACCOUNT,
            aws_secret_access_key="sandbox",
            config=_CLIENT_CONFIG,
        )
        return attach(client, target.account or SANDBOX_ACCOUNT)

    def _target_session(self, target: Target) -> botocore.session.Session:
        """The session a target's clients use: the base session, or its `roleArn` assumed (and
        refreshed before it expires), so the credentials verified are the ones the Image Builder
        client signs with."""
        with self._guard:
            if target.name in self._sessions:
                return self._sessions[target.name]
            session = self._boto_session()
            if target.role_arn:
                session = self._assume(session, target)
            self._sessions[target.name] = session
        return self._sessions[target.name]

    def _assume(self, session: botocore.session.Session, target: Target) -> botocore.session.Session:
        """A session signing with `target.role_arn`'s temporary credentials, which botocore refreshes
        (a new AssumeRole) within its advisory window before they expire (15 minutes; every caller
        waits for the refresh inside the last 10), from `session`'s own, possibly refreshing,
        credentials. The first AssumeRole happens here, so a denied role fails before any client."""
        sts = session.create_client("sts", region_name=target.region, config=_CLIENT_CONFIG)
        params = {"RoleArn": target.role_arn, "RoleSessionName": f"imagesync-{target.name}"[:64]}

        def fetch() -> dict[str, Any]:
            answer = self._sts_call(target, sts, "AssumeRole", params)
            creds = answer["Credentials"]
            expiry = creds["Expiration"]
            expiry = expiry if isinstance(expiry, datetime) else datetime.fromisoformat(str(expiry))
            log.debug("role assumed", target=target.name, role=target.role_arn, expires=expiry.isoformat())
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": expiry.isoformat(),
            }

        first = fetch()
        credentials = botocore.credentials.RefreshableCredentials(
            access_key=first["access_key"],
            secret_key=first["secret_key"],
            token=first["token"],
            expiry_time=datetime.fromisoformat(first["expiry_time"]),
            refresh_using=fetch,
            method=_AssumedRole.METHOD,
            time_fetcher=self._clock,
        )
        # Same profile (its region, endpoints and settings), only the credentials are the role's.
        core = botocore.session.Session(profile=self.options.profile)
        resolver = botocore.credentials.CredentialResolver([_AssumedRole(credentials)])
        core.register_component("credential_provider", resolver)
        return core

    def _sts(
        self, target: Target, session: botocore.session.Session, operation: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """One STS call for `target` with `session`'s credentials; see `_sts_call`."""
        try:
            sts = session.create_client("sts", region_name=target.region, config=_CLIENT_CONFIG)
        except botocore.exceptions.BotoCoreError as exc:
            role = f" (role {target.role_arn})" if target.role_arn else ""
            raise UserError(f"target '{target.name}'{role}: STS {operation}: {exc}") from exc
        return self._sts_call(target, sts, operation, params)

    def _sts_call(self, target: Target, sts: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """One STS call for `target`; any failure (denied, expired or missing credentials,
        unreachable endpoint) is a UserError naming the target and the role."""
        try:
            return call(sts, operation, params, target=target.name)
        except (ApiError, ApiUnavailable) as exc:
            if operation == "AssumeRole":
                doing = f"cannot assume role {target.role_arn}"
            else:
                role = f" (role {target.role_arn})" if target.role_arn else ""
                doing = f"cannot establish which AWS account the credentials{role} act in"
            raise UserError(f"target '{target.name}': {doing}: STS {exc}") from exc


class _AssumedRole(botocore.credentials.CredentialProvider):
    """The only link in a target session's credential chain: the role's refreshable credentials."""

    METHOD = "imagesync-assume-role"
    CANONICAL_NAME = "custom-imagesync-assume-role"

    def __init__(self, credentials: botocore.credentials.RefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> botocore.credentials.RefreshableCredentials:
        return self._credentials


def _utcnow() -> datetime:
    return datetime.now(UTC)
