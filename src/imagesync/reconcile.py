"""The reconcile loop: plan and apply on a schedule, each target on its own.

Every run reads the manifests from a source (a directory, or a git repository fetched into a
cache), loads them once, and then plans and applies one target at a time under that target's
writer lock. What happens to one target never stops another:

- success: the target is next due one interval later (with jitter), or as soon as the source
  has a new revision (the source is looked at every minute, `--poll-source`);
- a lock held by another writer (a second replica, a CI apply): the run is skipped, not failed;
- a transient failure (throttling past the retry deadline, 5xx, connection trouble, or anything
  unexpected): retried sooner, with exponential backoff capped at the interval;
- a permanent failure (manifests that do not load, a resource imagesync does not own, a wrong
  account): not retried until the source has a new revision, since nothing would change.

`Reconciler` holds the per-target state, the metrics (a prometheus-client registry of its own)
and the readiness the health server reports; the CLI makes the connector and the source.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import random
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from imagesync.api import PlanErrored, apply_desired
from imagesync.aws import CallCounter, Connector
from imagesync.errors import ImagesyncError, PermanentError, UserError
from imagesync.execute import FAILED, NOT_STARTED, Outcome
from imagesync.kinds import REGISTRY
from imagesync.lock import LockHeld
from imagesync.logs import get_logger
from imagesync.manifest.loader import load, load_project
from imagesync.plan_model import Plan
from imagesync.planner import PlanOptions, in_shard, make_plan, selected_targets

log = get_logger(__name__)

SUCCESS, FAILURE, INVALID, SKIPPED, INTERRUPTED = "success", "failure", "invalid", "skipped", "interrupted"
MANIFESTS = "(manifests)"  # the target label of a run that failed before any target was chosen


# --- sources ----------------------------------------------------------------------------------


class SourceError(ImagesyncError):
    """The manifests could not be fetched (a transient failure: retried with backoff)."""


class DirectorySource:
    """Manifests in a directory (mounted, or kept fresh by a git-sync sidecar). Its revision is
    a digest of the files' names and contents, so any change to them is a new revision."""

    def __init__(self, path: str) -> None:
        self.path = path

    def describe(self) -> str:
        return self.path

    def refresh(self) -> tuple[str, str]:
        root = Path(self.path)
        if not root.is_dir():
            raise SourceError(f"{self.path}: not a directory")
        digest = hashlib.sha256()
        files = []
        # Links are not followed (nor read): the digest reads nothing outside the directory given.
        for folder, dirs, names in os.walk(root, followlinks=False):
            dirs[:] = [d for d in dirs if d != ".git"]
            files += [Path(folder, n) for n in names if not os.path.islink(os.path.join(folder, n))]
        for path in sorted(files):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:
                continue  # removed while being read: the next run sees the directory as it is then
            digest.update(b"\0")
        return self.path, digest.hexdigest()[:12]


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def redact(url: str) -> str:
    """`url` with any user and password replaced: what logs and errors may show."""
    return re.sub(r"(?<=://)[^/@]*@", "***@", url)


class GitSource:
    """Manifests in a git repository, fetched with the `git` command into a cache directory.

    `${NAME}` in the URL is taken from the environment when fetching (a token, say). A user and
    password in the URL never reach a command line, imagesync's or git's: git is given the URL
    without them and asks for them through a credential helper that reads them from its own
    environment. URLs are redacted in every message. Credentials may also come from git itself
    (an SSH key, a credential helper of the user's).
    """

    def __init__(self, url: str, ref: str, subdir: str, cache: str, stop: threading.Event | None = None) -> None:
        if ref.startswith("-"):
            raise UserError(f"--ref {ref!r}: a branch, tag or commit never starts with '-'")
        self.url, self.ref, self.subdir = url, ref, subdir.strip("/")
        self.stop = stop or threading.Event()
        key = "\0".join((url, ref, self.subdir)).encode()
        self.checkout = Path(cache) / hashlib.sha256(key).hexdigest()[:16]

    def describe(self) -> str:
        return f"{redact(self.url)}@{self.ref}" + (f":{self.subdir}" if self.subdir else "")

    def command(self) -> tuple[str, dict[str, str]]:
        """The URL git is given, and what its environment adds: the credentials, if the URL has
        any, for the credential helper that hands them to git."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise UserError(f"--git: the URL uses ${{{name}}}, which is not set in the environment")
            return os.environ[name]

        parts = urlsplit(self.url)
        if "@" not in parts.netloc:
            return _ENV.sub(value, self.url), {}
        userinfo, _, host = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        env = {
            "IMAGESYNC_GIT_USERNAME": unquote(_ENV.sub(value, user)),
            "IMAGESYNC_GIT_PASSWORD": unquote(_ENV.sub(value, password)),
            # Only this helper: one of the user's own must not be offered these credentials.
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "credential.helper",
            "GIT_CONFIG_VALUE_0": "",
            "GIT_CONFIG_KEY_1": "credential.helper",
            "GIT_CONFIG_VALUE_1": _CREDENTIAL_HELPER,
        }
        return urlunsplit(parts._replace(netloc=host)), env

    def _git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
        # A stalled transfer fails after 30 s below 1 KB/s rather than holding the loop.
        cmd = ["git", "-c", "http.lowSpeedLimit=1000", "-c", "http.lowSpeedTime=30", *args]
        try:
            proc = subprocess.Popen(
                cmd, cwd=self.checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise PermanentError("--git needs the git command, which is not installed") from exc
        deadline = time.monotonic() + GIT_TIMEOUT
        while True:
            try:
                out, err = proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if self.stop.is_set() or time.monotonic() > deadline:
                    proc.kill()
                    proc.communicate()
                    why = "stopped" if self.stop.is_set() else f"took more than {GIT_TIMEOUT:g} s"
                    raise SourceError(f"git {args[0]} of {self.describe()} {why}") from None
        if proc.returncode != 0:
            message = err.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
            raise SourceError(f"git {args[0]} of {self.describe()} failed: {redact(message[0])}")
        return out.strip()

    def refresh(self) -> tuple[str, str]:
        self.checkout.mkdir(parents=True, exist_ok=True)
        url, env = self.command()
        with open(self.checkout.parent / f"{self.checkout.name}.lock", "w") as held:
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SourceError(f"another imagesync is fetching {self.describe()} into {self.checkout}") from None
            if not (self.checkout / ".git").exists():
                self._git("init", "--quiet")
            # Left by a git that was killed: this process holds the checkout's lock, so none is running.
            (self.checkout / ".git" / "index.lock").unlink(missing_ok=True)
            self._git("fetch", "--quiet", "--depth", "1", "--force", "--end-of-options", url, self.ref, env=env)
            revision = self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}")
            self._git("checkout", "--quiet", "--force", "--detach", revision)
            self._git("clean", "--quiet", "-ffdx")
        root = self.checkout / self.subdir if self.subdir else self.checkout
        if not root.is_dir():
            raise UserError(f"--git-path {self.subdir}: no such directory at {revision[:12]} of {self.describe()}")
        return str(root), revision


GIT_TIMEOUT = 300.0
# Answers git's request for credentials from the two variables `GitSource.command` sets.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; echo "username=$IMAGESYNC_GIT_USERNAME"; '
    'echo "password=$IMAGESYNC_GIT_PASSWORD"; }; f'
)


# --- the loop ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    interval: float = 1800.0
    jitter: float = 0.1  # each wait is the interval plus up to this fraction of it
    once: bool = False
    dry_run: bool = False
    prune: bool = False
    allow_empty: bool = False
    targets: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    concurrency: int = 64
    parallelism: int = 4
    region: str | None = None
    poll: float = 60.0  # seconds between looks at the source for a new revision


@dataclass
class TargetState:
    failures: int = 0  # consecutive
    due: float = 0.0  # monotonic time of the next attempt
    blocked: str | None = None  # the revision a permanent failure happened at
    revision: str = ""  # the revision last run at
    result: str = ""
    error: str = ""


@dataclass
class RunReport:
    run_id: str
    revision: str
    results: dict[str, str] = field(default_factory=dict)
    pending: int = 0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("imagesync_reconcile", "Reconcile runs per target and result", ["target", "result"],
                            registry=r)
        self.duration = Histogram(
            "imagesync_reconcile_duration_seconds", "Duration of a target's reconcile run", ["target"], registry=r,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.last_success = Gauge("imagesync_last_success_timestamp_seconds",
                                  "When the target last reconciled successfully (Unix time)", ["target"], registry=r)
        self.drift = Gauge("imagesync_drift_resources", "Resources changed outside imagesync, per kind",
                           ["target", "kind"], registry=r)
        self.pending = Gauge("imagesync_pending_changes", "Changes the last plan found", ["target"], registry=r)
        self.calls = Counter("imagesync_api_calls", "Image Builder API calls, by operation and answer",
                             ["operation", "code"], registry=r)
        self.throttled = Counter("imagesync_throttled", "Calls the service throttled", registry=r)
        self.revision = Gauge("imagesync_source_revision_info", "The revision of the manifests last read",
                              ["revision"], registry=r)

    def counted(self, counter: CallCounter) -> None:
        for (operation, code), n in counter.answers.items():
            self.calls.labels(operation=operation, code=code).inc(n)
        if counter.throttled:
            self.throttled.inc(counter.throttled)

    def planned(self, target: str, plan: Plan) -> None:
        for tp in plan.targets:
            if tp.target != target:
                continue
            kinds = {k: 0 for k in REGISTRY.names()}
            for change in tp.drift:
                kinds[change.kind] = kinds.get(change.kind, 0) + 1
            for kind, n in kinds.items():
                self.drift.labels(target=target, kind=kind).set(n)
            self.pending.labels(target=target).set(len(tp.pending))

    def read_revision(self, revision: str) -> None:
        """The one revision series: the new one set before the old one goes, so that a scrape
        in between never sees none."""
        self.revision.labels(revision=revision).set(1)
        for (old,) in [key for key in self._revision_keys() if key != (revision,)]:
            self.revision.remove(old)

    def _revision_keys(self) -> list[tuple[str, ...]]:
        return [tuple(sample.labels.values()) for metric in self.revision.collect() for sample in metric.samples]

    def forget(self, target: str) -> None:
        """A target no longer in the manifests (or the shard): its gauges go, its counters stay."""
        for kind in REGISTRY.names():
            with contextlib.suppress(KeyError):
                self.drift.remove(target, kind)
        with contextlib.suppress(KeyError):
            self.pending.remove(target)


class Reconciler:
    def __init__(
        self,
        source: DirectorySource | GitSource,
        connector: Connector,
        settings: Settings,
        *,
        stop: threading.Event | None = None,
        out: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.connector, self.settings = source, connector, settings
        self.stop = stop or threading.Event()
        self.out = out or (lambda line: None)
        self.clock = clock
        self.metrics = Metrics()
        self.targets: dict[str, TargetState] = {}
        self.source_state = TargetState()  # fetching and loading, before any target
        self.read_once = False  # the source has been read and loaded at least once
        self.runs = 0
        self.alive = True
        self._lock = threading.Lock()

    # -- readiness, for /readyz --

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            if self.runs == 0:
                return False, "no run has finished yet"
            if self.source_state.result == INVALID:
                return False, f"the manifests do not load: {self.source_state.error}"
            if not self.read_once:
                return False, f"the manifests have not been read yet: {self.source_state.error}"
            blocked = sorted(n for n, s in self.targets.items() if s.result == INVALID)
            if blocked:
                return False, "waiting for a new revision to retry: " + ", ".join(blocked)
            return True, "ok"

    # -- one run --

    def run_once(self) -> RunReport:
        run_id = uuid.uuid4().hex[:12]
        started = self.clock()
        try:
            root, revision = self.source.refresh()
        except SourceError as err:
            self._failed_source(run_id, "", err, transient=True)
            return self._finish(RunReport(run_id, "", {MANIFESTS: FAILURE}))
        except ImagesyncError as err:
            self._failed_source(run_id, "", err, transient=False)
            return self._finish(RunReport(run_id, "", {MANIFESTS: INVALID}))
        self.metrics.read_revision(revision)
        report = RunReport(run_id, revision)
        if self.source_state.blocked == revision:
            log.info("waiting for a new revision", run_id=run_id, revision=revision, error=self.source_state.error)
            report.results[MANIFESTS] = INVALID
            return self._finish(report)
        try:
            desired = load(root, region=self.settings.region)
            targets = selected_targets(desired, self.settings.targets, self.settings.shard)
        except ImagesyncError as err:
            self._failed_source(run_id, revision, err, transient=False, root=root)
            report.results[MANIFESTS] = INVALID
            return self._finish(report)
        with self._lock:
            self.source_state = TargetState(result=SUCCESS)
            self.read_once = True
            for gone in set(self.targets) - {t.name for t in targets}:
                del self.targets[gone]
                self.metrics.forget(gone)
            for target in targets:
                self.targets.setdefault(target.name, TargetState())
        if not targets:
            self.out(f"run={run_id} revision={revision[:12]} target=- result=success: no targets selected"
                     + (f" (shard {self.settings.shard[0]}/{self.settings.shard[1]} holds none)"
                        if self.settings.shard else ""))
        for target in targets:
            if self.stop.is_set():
                break
            state = self.targets[target.name]
            if state.blocked == revision or (self.clock() < state.due and state.revision == revision):
                continue  # a new revision is applied at once; the same one once an interval
            state.revision = revision
            result, pending = self._reconcile_target(run_id, revision, desired, target.name, state)
            report.results[target.name] = result
            report.pending += pending
        log.info("run finished", run_id=run_id, revision=revision, duration_s=round(self.clock() - started, 3),
                 results=report.results)
        return self._finish(report)

    def _finish(self, report: RunReport) -> RunReport:
        with self._lock:
            self.runs += 1
        return report

    def _failed_source(
        self, run_id: str, revision: str, err: ImagesyncError, *, transient: bool, root: str | None = None
    ) -> None:
        message = _one_line(err)
        with self._lock:
            state = self.source_state
            state.result, state.error = (FAILURE if transient else INVALID), message
            if transient:
                state.failures += 1
            else:
                state.failures, state.blocked = 0, revision
        names = [MANIFESTS]
        project = load_project(root, region=self.settings.region) if root is not None else None
        if project is not None:
            chosen = [t.name for t in project.targets if not self.settings.targets or t.name in self.settings.targets]
            names = [n for n in chosen if in_shard(n, self.settings.shard)] or names
        for name in names:
            self.metrics.runs.labels(target=name, result=state.result).inc()
        log.error("manifests not read", run_id=run_id, revision=revision, error=message, retry=transient)
        self.out(f"run={run_id} revision={revision[:12] or '-'} target={MANIFESTS} result={state.result} "
                 f"pending=0 applied=0 drift=0 seconds=0.00 error={message}")

    def _reconcile_target(
        self, run_id: str, revision: str, desired: Any, name: str, state: TargetState
    ) -> tuple[str, int]:
        s = self.settings
        options = PlanOptions(targets=(name,), prune=s.prune, allow_empty=s.allow_empty, concurrency=s.concurrency)
        counter = CallCounter()
        started = self.clock()
        plan: Plan | None = None
        outcomes: list[Outcome] = []
        error = ""
        try:
            if s.dry_run:
                plan = make_plan(desired, self.connector, options, counter)
                result = INVALID if plan.errored else SUCCESS
                error = "; ".join(f"{c.address}: {c.message}" for c in plan.conflicts)
            else:
                # A run that finds the lock taken waits a little (a spoke and its hub's own run, or
                # two shards sharing a hub, take turns) before it counts as skipped.
                plan, outcomes = apply_desired(
                    desired, self.connector, options, counter=counter, cancel=self.stop, parallelism=s.parallelism,
                    lock_timeout=min(LOCK_WAIT, s.interval),
                )
                failed = [o for o in outcomes if o.status == FAILED]
                stopped = any(o.status == NOT_STARTED for o in outcomes)
                result = FAILURE if failed else INTERRUPTED if stopped else SUCCESS
                error = "; ".join(f"{o.address}: {o.detail}" for o in failed)
        except LockHeld as err:
            result, error = SKIPPED, str(err)
        except PlanErrored as err:
            plan, result, error = err.plan, INVALID, str(err)
        except ImagesyncError as err:
            # Credentials, STS, the lock's backend, the service: fixed outside the manifests, so
            # tried again with backoff rather than at the next revision.
            result, error = FAILURE, str(err)
        except Exception as err:  # noqa: BLE001 - a bug must not stop the other targets
            result, error = FAILURE, f"{type(err).__name__}: {err}"
            log.exception("unexpected failure", run_id=run_id, target=name)
        error = _one_line(error)
        elapsed = self.clock() - started
        self.metrics.counted(counter)
        self.metrics.runs.labels(target=name, result=result).inc()
        self.metrics.duration.labels(target=name).observe(elapsed)
        if plan is not None:
            self.metrics.planned(name, plan)
        pending = sum(len(tp.pending) for tp in plan.targets if tp.target == name) if plan is not None else 0
        drift = sum(len(tp.drift) for tp in plan.targets if tp.target == name) if plan is not None else 0
        with self._lock:
            state.result, state.error = result, error
            if result in (SUCCESS, SKIPPED):
                state.failures, state.blocked = 0, None
                state.due = self.clock() + self._interval()
                if result == SUCCESS:
                    self.metrics.last_success.labels(target=name).set(time.time())
            elif result == INVALID:
                state.failures, state.blocked = state.failures + 1, revision
            elif result == FAILURE:
                state.failures += 1
                state.due = self.clock() + self._backoff(state.failures)
            # INTERRUPTED: the loop is stopping; the next process starts where this one stopped.
        changes = len([o for o in outcomes if o.ok])
        fields = {"run_id": run_id, "revision": revision, "target": name, "result": result, "pending": pending,
                  "applied": changes, "drift": drift, "calls": counter.total, "duration_s": round(elapsed, 3)}
        if error:
            fields["error"] = error
        (log.info if result in (SUCCESS, SKIPPED, INTERRUPTED) else log.error)("reconciled", **fields)
        line = f"run={run_id} revision={revision[:12]} target={name} result={result} pending={pending}"
        line += f" applied={changes} drift={drift} seconds={elapsed:.2f}"
        self.out(line + (f" error={error}" if error else ""))
        return result, pending

    # -- timing --

    def _interval(self) -> float:
        return self.settings.interval * (1 + random.uniform(0, self.settings.jitter))

    def _backoff(self, failures: int) -> float:
        """A failing target's wait: from a tenth of the interval (at least 1 s, at most 30 s),
        doubling with every failure, never longer than the interval."""
        first = min(30.0, max(1.0, self.settings.interval / 10))
        doubled = first * 2.0 ** min(failures - 1, 32)  # 2**32 tenths: past any interval
        return min(self.settings.interval, doubled) * (1 + random.uniform(0, 0.1))

    def next_wait(self) -> float:
        """Seconds until a target is next due, or until the source is next looked at for a new
        revision (every `poll` seconds, or every interval when that is shorter). While the
        source cannot be read, or holds manifests that do not load, no target can run: the
        source's own backoff or poll decides. Never less than a second."""
        now = self.clock()
        poll = min(self.settings.poll, self.settings.interval)
        with self._lock:
            source = self.source_state
            if source.result == FAILURE:
                return max(MIN_WAIT, self._backoff(source.failures))
            dues = [s.due for s in self.targets.values() if s.blocked is None] if source.result == SUCCESS else []
        return max(MIN_WAIT, min([*dues, now + poll]) - now)

    def loop(self) -> int:
        """Run until `stop` is set; 0 then (a signal is how a loop is meant to end)."""
        try:
            while not self.stop.is_set():
                self.run_once()
                self.stop.wait(self.next_wait())
        finally:
            self.alive = False
        return 0


LOCK_WAIT = 30.0  # seconds a run waits for a target's lock before it is skipped
MIN_WAIT = 1.0  # seconds between runs, at the least


def _one_line(err: BaseException | str) -> str:
    """On one line: messages from AWS or the manifests may hold newlines, which would split (or
    forge) the loop's one line a run."""
    return " ".join(str(err).split())


# --- health and metrics -----------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    reconciler: Reconciler
    timeout = 10  # seconds a connection may sit idle: probes and scrapes never hold a thread for long

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.reconciler.metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            alive = self.reconciler.alive
            self._send(200 if alive else 503, b"ok\n" if alive else b"the loop has stopped\n")
        elif path == "/readyz":
            ready, why = self.reconciler.ready()
            self._send(200 if ready else 503, (why + "\n").encode())
        else:
            self._send(404, b"not found: try /healthz, /readyz or /metrics\n")

    def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # probes every few seconds would drown the run events


def serve(reconciler: Reconciler, host: str, port: int) -> ThreadingHTTPServer:
    """Serve /healthz, /readyz and /metrics on a daemon thread; the caller shuts it down."""
    handler = type("Handler", (_Handler,), {"reconciler": reconciler})
    server_class = _Server6 if ":" in host else ThreadingHTTPServer
    server = server_class((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="imagesync-health", daemon=True).start()
    return server


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def listening_line(server: ThreadingHTTPServer, stream: TextIO) -> None:
    host, port = server.server_address[:2]
    name = host if isinstance(host, str) else host.decode()
    stream.write(f"listening=http://{f'[{name}]' if ':' in name else name}:{port}\n")
    stream.flush()

