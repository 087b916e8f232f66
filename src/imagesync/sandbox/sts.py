"""STS in the sandbox: `GetCallerIdentity` and `AssumeRole` over the AWS Query protocol.

The HTTP server (`server.py`) hands every form-encoded `POST /` with an `Action` to this module,
and asks it which account a request's credentials stand for (`account_for`), for Image Builder
calls as well as STS ones. botocore sends STS to the same endpoint as Image Builder when
`AWS_ENDPOINT_URL` is set, so one running sandbox answers both.

The sandbox has no IAM, so identities follow a convention:

- An access key id of 12 digits is that account's IAM user `sandbox`
  (`arn:aws:iam::222222222222:user/sandbox`); any other key is the same user in the default
  account (123456789012).
- `AssumeRole` of `arn:aws:iam::111111111111:role/x` succeeds for any caller and returns temporary
  credentials whose session token names the role and session; the sandbox maps requests signed
  with them to 111111111111, and `GetCallerIdentity` answers
  `arn:aws:sts::111111111111:assumed-role/x/SESSION`. The token carries everything (no server
  state), so it stays valid across restarts and across processes sharing one state file.
- A role whose name starts with `denied` (e.g. `role/denied-deploy`) refuses every caller with
  `AccessDenied`, the way a trust policy that does not name the caller does.
- A session token the sandbox did not issue answers `InvalidClientTokenId`; one past its
  expiration answers `ExpiredToken`. (Image Builder calls stay lenient and fall back to the key.)

Errors are STS's XML `ErrorResponse`. STS calls are counted in the sandbox's per-operation stats
like every other call, but latency and faults are never injected into them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from imagesync.sandbox.core import ACCOUNT, partition

VERSION = "2011-06-15"
NAMESPACE = f"https://sts.amazonaws.com/doc/{VERSION}/"
OPERATIONS = ("GetCallerIdentity", "AssumeRole")
USER_NAME = "sandbox"
TOKEN_PREFIX = "imagesync-sandbox-sts/"
DENIED_ROLE_PREFIX = "denied"
DEFAULT_DURATION = 3600
_ROLE_ARN_RE = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):role/(?:[\x21-\x7e]+/)*([\w+=,.@-]{1,64})$")
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
_ACCOUNT_KEY_RE = re.compile(r"^[0-9]{12}$")
_STATUS = {
    "AccessDenied": 403,
    "InvalidClientTokenId": 403,
    "ExpiredToken": 400,
    "ValidationError": 400,
    "InvalidAction": 400,
    "MissingAction": 400,
}


class StsError(Exception):
    """An STS error: `Code`, `Message` and the HTTP status of the ErrorResponse."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = _STATUS.get(code, 400)


@dataclass(frozen=True)
class Session:
    """What a sandbox session token stands for."""

    account: str
    role: str
    role_arn: str
    session: str
    expires: dt.datetime


@dataclass(frozen=True)
class Caller:
    """Who signed a request: an account's `sandbox` user, or an assumed role session."""

    account: str
    session: Session | None = None

    def arn(self, region: str) -> str:
        part = partition(region)
        if self.session is None:
            return f"arn:{part}:iam::{self.account}:user/{USER_NAME}"
        return f"arn:{part}:sts::{self.account}:assumed-role/{self.session.role}/{self.session.session}"

    def user_id(self) -> str:
        if self.session is None:
            return _unique_id("AIDA", self.account)
        return f"{_unique_id('AROA', self.session.role_arn)}:{self.session.session}"


def is_sts_request(method: str, path: str, content_type: str, body: bytes) -> bool:
    """A Query-protocol request: form-encoded `POST /` that names an `Action`."""
    if method != "POST" or path.split("?", 1)[0] not in ("", "/"):
        return False
    return content_type.startswith("application/x-www-form-urlencoded") or body.startswith(b"Action=")


def parse(body: bytes) -> tuple[str, dict[str, str]]:
    """The action and its (single-valued) parameters; raises StsError for a request with no action."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise StsError("ValidationError", "The request body is not valid UTF-8.") from None
    params = {k: v[-1] for k, v in fields.items()}
    action = params.pop("Action", "")
    if not action:
        raise StsError("MissingAction", "Missing Action")
    return action, params


def handle(action: str, params: dict[str, str], access_key: str | None, token: str | None, region: str) -> bytes:
    """Answer one STS action with its XML response body; raises StsError."""
    version = params.pop("Version", VERSION)
    if action not in OPERATIONS or version != VERSION:
        raise StsError("InvalidAction", f"Could not find operation {action} for version {version}")
    caller = _caller(access_key, token)
    if action == "GetCallerIdentity":
        result = _element("Arn", caller.arn(region)) + _element("UserId", caller.user_id())
        result += _element("Account", caller.account)
        return _response(action, result)
    return _response(action, _assume_role(caller, params, region))


def error_body(err: StsError) -> bytes:
    kind = "Receiver" if err.status >= 500 else "Sender"
    inner = _element("Type", kind) + _element("Code", err.code) + _element("Message", err.message)
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error>{inner}</Error>'
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def account_for(access_key: str | None, token: str | None) -> str | None:
    """The account a request's credentials select, or None for the sandbox's default account."""
    session = decode_token(token) if token else None
    if session is not None:
        return session.account
    if access_key and _ACCOUNT_KEY_RE.match(access_key):
        return access_key
    return None


def encode_token(session: Session) -> str:
    payload = {
        "account": session.account,
        "role": session.role,
        "roleArn": session.role_arn,
        "session": session.session,
        "expires": session.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Session | None:
    """The session a sandbox-issued token stands for; None for any other string."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    data = token[len(TOKEN_PREFIX) :]
    try:
        payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        expires = dt.datetime.strptime(payload["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        session = Session(payload["account"], payload["role"], payload["roleArn"], payload["session"], expires)
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    if not _ACCOUNT_KEY_RE.match(str(session.account)):
        return None
    return session


def _caller(access_key: str | None, token: str | None) -> Caller:
    if token:
        session = decode_token(token)
        if session is None:
            raise StsError("InvalidClientTokenId", "The security token included in the request is invalid.")
        if session.expires <= dt.datetime.now(dt.UTC):
            raise StsError("ExpiredToken", "The security token included in the request is expired")
        return Caller(session.account, session)
    if access_key and _ACCOUNT_KEY_RE.match(access_key):
        return Caller(access_key)
    return Caller(ACCOUNT)


def _assume_role(caller: Caller, params: dict[str, str], region: str) -> str:
    role_arn = params.get("RoleArn")
    session_name = params.get("RoleSessionName")
    missing = [name for name, value in (("roleArn", role_arn), ("roleSessionName", session_name)) if not value]
    if missing:
        raise StsError(
            "ValidationError",
            f"{len(missing)} validation error(s) detected: "
            + "; ".join(f"Value null at '{m}' failed to satisfy constraint: Member must not be null" for m in missing),
        )
    assert role_arn is not None and session_name is not None
    if not _SESSION_NAME_RE.match(session_name):
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy "
            r"constraint: Member must satisfy regular expression pattern: [\w+=,.@-]* and have length 2-64",
        )
    match = _ROLE_ARN_RE.match(role_arn)
    if not match:
        raise StsError("ValidationError", f"{role_arn} is invalid")
    account, role = match.group(2), match.group(3)
    duration = _duration(params.get("DurationSeconds"))
    if role.startswith(DENIED_ROLE_PREFIX):
        raise StsError(
            "AccessDenied",
            f"User: {caller.arn(region)} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
        )
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=duration)
    session = Session(account, role, role_arn, session_name, expires)
    assumed = Caller(account, session)
    credentials = (
        _element("AccessKeyId", "ASIA" + _random(string.ascii_uppercase + string.digits, 16))
        + _element("SecretAccessKey", _random(string.ascii_letters + string.digits + "+/", 40))
        + _element("SessionToken", encode_token(session))
        + _element("Expiration", session.expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    user = _element("Arn", assumed.arn(region)) + _element("AssumedRoleId", assumed.user_id())
    return f"<Credentials>{credentials}</Credentials><AssumedRoleUser>{user}</AssumedRoleUser>"


def _duration(text: str | None) -> int:
    if text is None:
        return DEFAULT_DURATION
    try:
        value = int(text)
    except ValueError:
        raise StsError("ValidationError", f"Value '{text}' at 'durationSeconds' is not a number") from None
    if not 900 <= value <= 43200:
        raise StsError(
            "ValidationError",
            f"1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: "
            "Member must have value between 900 and 43200",
        )
    return value


def _response(action: str, result: str) -> bytes:
    return (
        f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>"
    ).encode()


def _element(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>"


def _unique_id(prefix: str, seed: str) -> str:
    # Stable per identity, shaped like IAM's unique ids: a prefix and 17 upper-case characters.
    digest = hashlib.sha256(seed.encode()).digest()
    alphabet = string.ascii_uppercase + "234567"
    return prefix + "".join(alphabet[b % len(alphabet)] for b in digest[:17])


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))
