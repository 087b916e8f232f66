"""The sandbox's HTTP server: an Image Builder endpoint on loopback that boto3 talks to.

Each request is routed and parsed by `protocol`, validated against botocore's model by
`validation`, possibly faulted by `faults`, and handled by `backend` inside one `store`
transaction. STS Query requests (form-encoded `POST /`) go to `sts` instead. `/_sandbox/stats` and
`/_sandbox/reset` are the sandbox's own endpoints; they are never faulted or counted. Used by
`imagesync sandbox serve`, by `running()` and by `--sandbox`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from imagesync.sandbox import protocol, service_rules, sts
from imagesync.sandbox.backend import Backend
from imagesync.sandbox.core import Settings, iso
from imagesync.sandbox.errors import SandboxError, not_implemented
from imagesync.sandbox.faults import Fault, FaultConfig, FaultInjector
from imagesync.sandbox.store import Store
from imagesync.sandbox.validation import validate_input

DEFAULT_REGION = "us-east-1"
MAX_BODY = 8 * 1024 * 1024
# How often the serving loop looks for a shutdown request: stopping a sandbox waits up to this long
# (the standard library's 0.5 s made every test that starts a sandbox pay half a second to stop it).
SHUTDOWN_POLL = 0.02
_CREDENTIAL_RE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/")
_READ_PREFIXES = ("Get", "List")


class Sandbox:
    """Everything one sandbox endpoint holds: state, behaviour, faults and call counters."""

    def __init__(
        self,
        state: str | None = None,
        *,
        versioning: str = "auto",
        faults: FaultConfig | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = Store(state)
        self.backend = Backend(versioning=versioning, settings=settings)
        self.faults = FaultInjector(faults or FaultConfig())
        self._counts: Counter[str] = Counter()
        self._throttled: Counter[str] = Counter()  # calls answered CallRateLimitExceededException
        self._counts_lock = threading.Lock()

    def count(self, operation: str) -> None:
        with self._counts_lock:
            self._counts[operation] += 1

    def count_throttled(self, operation: str) -> None:
        with self._counts_lock:
            self._throttled[operation] += 1

    def stats(self) -> dict[str, Any]:
        with self._counts_lock:
            return {
                "total": sum(self._counts.values()),
                "operations": dict(sorted(self._counts.items())),
                "throttled": dict(sorted(self._throttled.items())),
            }

    def clock(self, advance: float = 0.0) -> dict[str, Any]:
        """The sandbox clock's simulated now, after moving it `advance` seconds forward."""
        with self.store.transaction(write=advance > 0) as state:
            clock = self.backend.clock
            now = clock.advance(state, advance) if advance else clock.now(state)
        return {"now": iso(now), "speed": clock.speed}

    def reset(self) -> None:
        self.store.reset()
        if self.faults.limiter is not None:
            self.faults.limiter.reset()
        with self._counts_lock:
            self._counts.clear()
            self._throttled.clear()

    def close(self) -> None:
        """Fold the state file's journal into its snapshot: the sandbox is stopping."""
        self.store.close()

    def call(self, operation: str, params: dict[str, Any], region: str, account: str | None = None) -> dict[str, Any]:
        """Validate and run one operation against the state."""
        service_rules.check_signing_region(region)
        if not self.backend.supports(operation):  # before validation, so it never looks like a bad request
            raise not_implemented(operation)
        validate_input(operation, params)
        write = not operation.startswith(_READ_PREFIXES)
        with self.store.transaction(write=write) as state:
            result = self.backend.handle(state, region, operation, params, account)
        result.setdefault("requestId", str(uuid.uuid4()))
        return result


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the client's delayed ACK
    # stalls every response by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: a test or benchmark floods the terminal otherwise

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _dispatch(self) -> None:
        sandbox = self.server.sandbox
        try:
            body = self._read_body()
        except SandboxError as err:
            self.close_connection = True
            self._send_error(err)
            return
        if self.path.startswith("/_sandbox/"):
            self._sandbox_endpoint(body)
            return
        if sts.is_sts_request(self.command, self.path, self.headers.get("Content-Type") or "", body):
            self._sts(body)
            return
        try:
            operation, uri_params = protocol.route(self.command, self.path)
        except SandboxError as err:
            self._send_error(err)
            return
        sandbox.count(operation)
        config = sandbox.faults.config
        if config.latency_ms:
            time.sleep(config.latency_ms / 1000.0)
        fault = sandbox.faults.draw()  # drawn even when rate-limited, so a seed's sequence stays put
        region, account = self._scope()
        # A call a random fault already throttles takes no token: the service refused it anyway.
        caller = account or sandbox.backend.account
        if fault is not Fault.THROTTLE and not sandbox.faults.admit(caller, region, operation):
            fault = Fault.THROTTLE
        if fault is Fault.THROTTLE:
            sandbox.count_throttled(operation)
            self._send_error(
                SandboxError(
                    "CallRateLimitExceededException",
                    f"You have exceeded the permitted request rate for the specific operation {operation}.",
                )
            )
            return
        if fault in (Fault.SERVICE_ERROR, Fault.UNAVAILABLE):
            code = "ServiceException" if fault is Fault.SERVICE_ERROR else "ServiceUnavailableException"
            self._send_error(
                SandboxError(code, "The service encountered an unexpected error (injected by the sandbox).")
            )
            return
        if fault is Fault.RESET_BEFORE:
            self._reset_connection()
            return
        try:
            params = protocol.parse_request(operation, self.path, uri_params, body)
            result = sandbox.call(operation, params, region, account)
            payload = protocol.serialize_output(operation, result)
        except SandboxError as err:
            self._send_error(err)
            return
        except Exception as exc:  # a sandbox bug must answer like the service, not kill the server
            self._send_error(SandboxError("ServiceException", f"Internal sandbox error: {type(exc).__name__}: {exc}"))
            return
        if fault is Fault.RESET_AFTER:
            self._reset_connection()
            return
        self._send(200, payload, {"x-amzn-RequestId": result.get("requestId", "")})

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_header)
        except ValueError:
            raise SandboxError("SerializationException", "The Content-Length header is not a number.") from None
        if length < 0 or length > MAX_BODY:
            raise SandboxError("SerializationException", f"The request body must be at most {MAX_BODY} bytes.")
        return self.rfile.read(length) if length else b""

    def _scope(self) -> tuple[str, str | None]:
        """Region from the SigV4 credential scope; the account from a 12-digit access key id.

        Like moto, an access key id that is an account number selects that account, so one
        sandbox can hold several accounts; any other key uses the default account. Temporary
        credentials from the sandbox's AssumeRole select the role's account (see `sts`).
        """
        match = _CREDENTIAL_RE.search(self.headers.get("Authorization") or "")
        if not match:
            return DEFAULT_REGION, None
        key, region = match.group(1), match.group(2)
        return region, sts.account_for(key, self.headers.get("X-Amz-Security-Token"))

    def _sts(self, body: bytes) -> None:
        """An STS Query request: counted like any call, never delayed or faulted."""
        match = _CREDENTIAL_RE.search(self.headers.get("Authorization") or "")
        key, region = (match.group(1), match.group(2)) if match else (None, DEFAULT_REGION)
        try:
            action, params = sts.parse(body)
            if action in sts.OPERATIONS:
                self.server.sandbox.count(action)
            status, payload = 200, sts.handle(action, params, key, self.headers.get("X-Amz-Security-Token"), region)
        except sts.StsError as err:
            status, payload = err.status, sts.error_body(err)
        self._send(status, payload, {"x-amzn-RequestId": str(uuid.uuid4())}, content_type="text/xml")

    def _sandbox_endpoint(self, body: bytes) -> None:
        sandbox = self.server.sandbox
        path = self.path.split("?", 1)[0]
        if path == "/_sandbox/stats" and self.command == "GET":
            self._send(200, json.dumps(sandbox.stats()).encode())
        elif path == "/_sandbox/reset" and self.command == "POST":
            sandbox.reset()
            self._send(200, b'{"reset":true}')
        elif path == "/_sandbox/clock" and self.command in ("GET", "POST"):
            try:
                advance = _clock_advance(body) if self.command == "POST" else 0.0
                self._send(200, json.dumps(sandbox.clock(advance)).encode())
            except ValueError as exc:
                self._send_error(SandboxError("InvalidRequestException", str(exc)))
        else:
            self._send_error(SandboxError("UnknownOperationException", f"No sandbox endpoint {self.command} {path}."))

    def _send_error(self, err: SandboxError) -> None:
        body = json.dumps({"message": err.message}).encode()
        self._send(err.status, body, {"x-amzn-ErrorType": err.code, "x-amzn-RequestId": str(uuid.uuid4())})

    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset_connection(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the client sees a reset connection.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()


def _no_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not a number of seconds", name, 0)


def _clock_advance(body: bytes) -> float:
    """Seconds to move the clock by, from a `{"advance": SECONDS}` body."""
    try:
        request = json.loads(body or b"{}", parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"The body must be JSON like {{\"advance\": 3600}}: {exc}") from None
    advance = request.get("advance", 0) if isinstance(request, dict) else None
    if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
        raise ValueError(f"'advance' must be a non-negative number of seconds, got {advance!r}")
    return float(advance)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox


class RunningSandbox:
    """A sandbox served on a background thread; `endpoint_url` is what boto3 needs."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self._server = _Server((host, port), sandbox)
        bound_host, bound_port = self._server.server_address[:2]
        host_text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.endpoint_url = f"http://{host_text}:{bound_port}"
        self._thread = threading.Thread(target=self._serve, name="imagesync-sandbox", daemon=True)

    def start(self) -> RunningSandbox:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.sandbox.close()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=SHUTDOWN_POLL)

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(poll_interval=SHUTDOWN_POLL)
        finally:
            self._server.server_close()
            self.sandbox.close()

    def shutdown(self) -> None:
        self._server.shutdown()

    def stats(self) -> dict[str, Any]:
        return self.sandbox.stats()

    def reset(self) -> None:
        self.sandbox.reset()


@contextlib.contextmanager
def running(
    state: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0.0,
    throttle_rate: float = 0.0,
    error_rate: float = 0.0,
    reset_rate: float = 0.0,
    seed: int | None = None,
    versioning: str = "auto",
    rate_limit: float | None = None,
    rate_burst: int | None = None,
    build_minutes: float = Settings.build_minutes,
    clock_speed: float = Settings.clock_speed,
    build_failure_rate: float = 0.0,
    catalog_files: tuple[str, ...] = (),
    s3_endpoint: str | None = None,
) -> Iterator[RunningSandbox]:
    """Serve a sandbox for the duration of a `with` block.

    `state` is a JSON state file (absent: empty), or None to keep the state in memory.
    `s3_endpoint` is where CreateComponent and CreateWorkflow read `uri` documents (see `s3`).
    """
    faults = FaultConfig(latency_ms, throttle_rate, error_rate, reset_rate, seed, rate_limit, rate_burst)
    settings = Settings(build_minutes, clock_speed, build_failure_rate, seed, tuple(catalog_files), s3_endpoint)
    served = RunningSandbox(Sandbox(state, versioning=versioning, faults=faults, settings=settings), host, port).start()
    try:
        yield served
    finally:
        served.stop()
