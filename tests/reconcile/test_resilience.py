"""Reliability against the sandbox: idempotency, locking, faults and kills.

- Injected throttling, 5xx and connection resets: apply converges, a re-plan is empty, and the
  sandbox holds exactly one version (and one build) of everything the manifests describe.
- SIGKILL at random points of an apply (first apply, and a second apply that publishes 1.0.1):
  re-running apply converges with no duplicate versions and nothing missing.
- Two writers on one target never both write; `--lock-timeout` waits; `imagesync unlock` only
  breaks a lock whose holder is gone.

The killed applies run `imagesync.cli.main` (what `python -m imagesync` runs) in a subprocess that
has already imported imagesync and boto3 and waits for a "go" line, so the random kill delay is
spent inside the apply itself rather than in interpreter start-up (and 20 iterations stay fast).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from file_opens import FileOpens
from imagesync import api, cli
from imagesync.aws import ApiUnavailable, Backoff, CallCounter, ConnectOptions, Connector, call
from imagesync.lock import FileLock, LockHeld, default_lock_dir
from imagesync.planner import PlanOptions
from imagesync.sandbox import protocol as sandbox_protocol
from imagesync.sandbox import running
from imagesync.sandbox.faults import Fault, FaultConfig, FaultInjector

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"
LOCK_ID = "golden-images/111111111111/us-east-1"  # prod-use1: project/account/region
VERSIONED = ("Component", "Workflow", "ImageRecipe", "ContainerRecipe")
WRITE_PREFIXES = ("Create", "Update", "Delete", "Tag", "Untag", "Put", "Start", "Cancel", "Import")

# A process that holds the prod-use1 apply lock the way `apply` does, until it is killed or its
# stdin closes (so it never outlives the test).
HOLDER = """\
import sys
from imagesync.lock import FileLock, default_lock_dir
held = FileLock(default_lock_dir(), 'golden-images/111111111111/us-east-1')
held.acquire('apply')
print('held', flush=True)
sys.stdin.read()
"""

# `python -m imagesync ARGS`, with the imports done before the "go" line arrives.
WARM_CLI = """\
import sys
import boto3
import imagesync.api, imagesync.aws, imagesync.execute, imagesync.live, imagesync.planner
import imagesync.render.json, imagesync.render.text
from imagesync.cli import main
boto3.client('imagebuilder', region_name='us-east-1', endpoint_url='http://127.0.0.1:9',
             aws_access_key_id='000000000000', aws_secret_access_key='x')  # loads the service model
print('ready', flush=True)
if sys.stdin.readline().strip() != 'go':
    sys.exit(99)
sys.exit(main(sys.argv[1:]))
"""

# A fork server for the SIGKILL loops: imports once, then forks one `main(ARGS)` process per
# "go PATH" line (stdout/stderr to PATH.out/PATH.err) and reports "pid N"; "reap N" waits for that
# process and reports "rc CODE" (negative: killed by that signal). Single-threaded, so fork is safe.
ZYGOTE = """\
import os, sys
import boto3
import imagesync.api, imagesync.aws, imagesync.execute, imagesync.live, imagesync.planner
import imagesync.render.json, imagesync.render.text
from imagesync.cli import main
boto3.client('imagebuilder', region_name='us-east-1', endpoint_url='http://127.0.0.1:9',
             aws_access_key_id='000000000000', aws_secret_access_key='x')
argv = sys.argv[1:]
print('ready', flush=True)
while True:
    line = sys.stdin.readline()
    if not line:
        break
    command, _, arg = line.strip().partition(' ')
    if command == 'go':
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            rc = 70
            try:
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.dup2(os.open(arg + '.out', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 1)
                os.dup2(os.open(arg + '.err', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), 2)
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(rc)
        print('pid', pid, flush=True)
    elif command == 'reap':
        _, status = os.waitpid(int(arg), 0)
        print('rc', os.waitstatus_to_exitcode(status), flush=True)
"""

PROGRESS_MARK = re.compile(r"\[[+x-]\] ")


# -- helpers: manifests, live state ------------------------------------------------------------


def copy_examples(dest: Path) -> Path:
    shutil.copytree(EXAMPLES, dest)
    return dest


def make_v2(src: Path, dest: Path) -> Path:
    """A copy of the manifests whose harden-cis document changed in a patch-level way."""
    shutil.copytree(src, dest)
    doc = dest / "components" / "harden-cis.yml"
    text = doc.read_text()
    assert "MaxAuthTries 4" in text
    doc.write_text(text.replace("MaxAuthTries 4", "MaxAuthTries 3"))
    return dest


def ib_client(endpoint: str, account: str, region: str) -> Any:
    return boto3.client(
        "imagebuilder",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=account,
        aws_secret_access_key="sandbox",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def _paginate(method: Callable[..., dict[str, Any]], key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = method(**params)
        items.extend(page.get(key) or [])
        if not page.get("nextToken"):
            return items
        params = {**params, "nextToken": page["nextToken"]}


Shape = dict[str, dict[str, dict[str, Any]]]


def live_shape(endpoint: str, desired: Any) -> Shape:
    """Per target and kind: {name: {version: number of builds}} (versioned) or {name: count}."""
    shape: Shape = {}
    for target in desired.project.targets:
        c = ib_client(endpoint, target.account, target.region)
        kinds: dict[str, dict[str, Any]] = {k: {} for k in (*VERSIONED, "ImagePipeline",
                                                         "InfrastructureConfiguration",
                                                         "DistributionConfiguration", "LifecyclePolicy")}
        for row in _paginate(c.list_components, "componentVersionList", owner="Self"):
            builds = _paginate(c.list_component_build_versions, "componentSummaryList",
                               componentVersionArn=row["arn"])
            versions = kinds["Component"].setdefault(row["name"], {})
            versions[row["version"]] = versions.get(row["version"], 0) + len(builds)
        for row in _paginate(c.list_workflows, "workflowVersionList", owner="Self"):
            builds = _paginate(c.list_workflow_build_versions, "workflowSummaryList",
                               workflowVersionArn=row["arn"])
            versions = kinds["Workflow"].setdefault(row["name"], {})
            versions[row["version"]] = versions.get(row["version"], 0) + len(builds)
        for kind, method, key in (
            ("ImageRecipe", c.list_image_recipes, "imageRecipeSummaryList"),
            ("ContainerRecipe", c.list_container_recipes, "containerRecipeSummaryList"),
        ):
            for row in _paginate(method, key, owner="Self"):
                version = row["arn"].rsplit("/", 1)[-1]
                versions = kinds[kind].setdefault(row["name"], {})
                versions[version] = versions.get(version, 0) + 1
        for kind, method, key in (
            ("ImagePipeline", c.list_image_pipelines, "imagePipelineList"),
            ("InfrastructureConfiguration", c.list_infrastructure_configurations,
             "infrastructureConfigurationSummaryList"),
            ("DistributionConfiguration", c.list_distribution_configurations,
             "distributionConfigurationSummaryList"),
            ("LifecyclePolicy", c.list_lifecycle_policies, "lifecyclePolicySummaryList"),
        ):
            for row in _paginate(method, key):
                kinds[kind][row["name"]] = kinds[kind].get(row["name"], 0) + 1
        shape[target.name] = kinds
    return shape


def expected_shape(desired: Any, extra_versions: dict[tuple[str, str], list[str]] | None = None) -> Shape:
    """What the manifests ask for after a first apply: every resource once, one version, one build."""
    shape: Shape = {}
    for target in desired.project.targets:
        kinds: dict[str, dict[str, Any]] = {k: {} for k in (*VERSIONED, "ImagePipeline",
                                                         "InfrastructureConfiguration",
                                                         "DistributionConfiguration", "LifecyclePolicy")}
        for res in desired.resources.values():
            if res.target != target.name:
                continue
            if res.kind in VERSIONED:
                versions = {str(res.spec["version"]): 1}
                for v in (extra_versions or {}).get((res.kind, res.name), []):
                    versions[v] = 1
                kinds[res.kind][res.name] = versions
            else:
                kinds[res.kind][res.name] = 1
        shape[target.name] = kinds
    return shape


def assert_no_duplicates(shape: Shape) -> None:
    for target, kinds in shape.items():
        for kind, names in kinds.items():
            for name, value in names.items():
                if kind in VERSIONED:
                    dupes = {v: n for v, n in value.items() if n != 1}
                    assert not dupes, f"{target}: {kind}/{name} has versions with several builds: {dupes}"
                else:
                    assert value == 1, f"{target}: {kind}/{name} exists {value} times"


def assert_plan_empty(plan_json: dict[str, Any]) -> None:
    assert plan_json["summary"] == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 0}, (
        plan_json["summary"], [c for c in plan_json["resource_changes"] if c["change"]["actions"] != ["no-op"]])
    pending = [f"{c['address']} {c['change']['actions']}" for c in plan_json["resource_changes"]
               if c["change"]["actions"] != ["no-op"]]
    assert pending == []


def write_ops(stats: dict[str, Any]) -> dict[str, int]:
    return {op: n for op, n in stats["operations"].items() if op.startswith(WRITE_PREFIXES)}


def creates_per_kind(desired: Any, target: str | None = None) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for res in desired.resources.values():
        if target is None or res.target == target:
            counts[f"Create{res.kind}"] += 1
    return dict(counts)


# -- helpers: processes ------------------------------------------------------------------------


class StreamReader:
    """Collects a pipe's output on a thread, so a test can wait for text with a timeout."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._chunks: list[str] = []
        self._cond = threading.Condition()
        self.closed = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd = self._stream.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self.closed = True
                    self._cond.notify_all()
                    return
                self._chunks.append(data.decode("utf-8", "replace"))
                self._cond.notify_all()

    @property
    def text(self) -> str:
        with self._cond:
            return "".join(self._chunks)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate("".join(self._chunks)):
                    return True
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return predicate("".join(self._chunks))
                self._cond.wait(remaining)

    def join(self, timeout: float = 10) -> None:
        self._thread.join(timeout)


class Proc:
    """A subprocess whose stdout/stderr are collected; always killed by `stop()`."""

    def __init__(self, argv: list[str], cwd: Path, stdin: bool = False) -> None:
        self.popen = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.out = StreamReader(self.popen.stdout)
        self.err = StreamReader(self.popen.stderr)
        self.t_go: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float) -> int:
        rc = self.popen.wait(timeout)
        self.out.join()
        self.err.join()
        return rc

    def sigkill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        try:
            self.sigkill()
        finally:
            for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass


class WarmCli(Proc):
    """`python -m imagesync ARGS` with imports already done; runs when `go()` is called."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        super().__init__([sys.executable, "-c", WARM_CLI, *args], cwd, stdin=True)

    def wait_ready(self, timeout: float = 90) -> None:
        ok = self.out.wait_for(lambda t: t.startswith("ready\n"), timeout)
        assert ok, f"warm imagesync did not start: {self.err.text[-2000:]}"

    def go(self) -> None:
        assert self.popen.stdin is not None
        self.t_go = time.monotonic()
        self.popen.stdin.write(b"go\n")
        self.popen.stdin.flush()

    @property
    def output(self) -> str:
        return self.out.text.removeprefix("ready\n")

    def progress(self) -> int:
        return len(PROGRESS_MARK.findall(self.output))


class Run:
    """One `imagesync ARGS` process forked by a `Zygote`; output goes to files."""

    def __init__(self, zygote: Zygote, pid: int, base: Path, t_go: float) -> None:
        self.zygote, self.pid, self.base, self.t_go = zygote, pid, base, t_go
        self.rc: int | None = None

    @property
    def output(self) -> str:
        try:
            return Path(f"{self.base}.out").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def errors(self) -> str:
        try:
            return Path(f"{self.base}.err").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def progress(self) -> int:
        return len(PROGRESS_MARK.findall(self.output))

    def finished_output(self) -> bool:
        out = self.output
        return "Apply complete" in out or "Apply failed" in out or "No changes" in out

    def wait_until(self, predicate: Callable[[Run], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)
        return True

    def sigkill(self) -> None:
        # Until it is reaped the process is at worst a zombie, so its pid cannot have been reused.
        if self.rc is None:
            os.kill(self.pid, signal.SIGKILL)

    def reap(self, timeout: float = 120) -> int:
        if self.rc is None:
            self.rc = self.zygote.reap(self.pid, timeout)
        return self.rc


class Zygote(Proc):
    """A fork server running `imagesync ARGS` (see ZYGOTE) so each run skips interpreter start-up."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        super().__init__([sys.executable, "-c", ZYGOTE, *args], cwd, stdin=True)
        self.cwd = cwd
        self._consumed = 0
        self._runs: list[Run] = []
        assert self.out.wait_for(lambda t: t.startswith("ready\n"), 90), self.err.text
        self._consumed = len("ready\n")

    def _command(self, line: str, reply: str, timeout: float) -> str:
        assert self.popen.stdin is not None
        self.popen.stdin.write(f"{line}\n".encode())
        self.popen.stdin.flush()
        ok = self.out.wait_for(lambda t: "\n" in t[self._consumed:], timeout)
        assert ok, f"fork server did not answer {line!r}: {self.err.text[-2000:]}"
        text = self.out.text
        end = text.index("\n", self._consumed)
        answer, self._consumed = text[self._consumed:end], end + 1
        assert answer.startswith(reply + " "), answer
        return answer.split(" ", 1)[1]

    def go(self) -> Run:
        base = self.cwd / f"run-{len(self._runs)}"
        t_go = time.monotonic()
        run = Run(self, int(self._command(f"go {base}", "pid", 30)), base, t_go)
        self._runs.append(run)
        return run

    def reap(self, pid: int, timeout: float) -> int:
        return int(self._command(f"reap {pid}", "rc", timeout))

    def stop(self) -> None:
        try:
            for run in self._runs:
                if run.rc is None and self.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(run.pid, signal.SIGKILL)
        finally:
            super().stop()


def start_holder(cwd: Path) -> Proc:
    """Holds the prod-use1 lock (in the per-user state directory) from the manifest directory."""
    holder = Proc([sys.executable, "-c", HOLDER], cwd, stdin=True)
    try:
        assert holder.out.wait_for(lambda t: "held" in t, 90), holder.err.text
    except BaseException:
        holder.stop()
        raise
    return holder


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """Every subprocess a test starts goes in here and is SIGKILLed at teardown."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


@pytest.fixture
def served(tmp_path: Path, procs: list[Proc]) -> str:
    """`imagesync sandbox serve --state STATE` as a subprocess (fault-free); its endpoint URL."""
    server = Proc([sys.executable, "-m", "imagesync", "sandbox", "serve", "--state",
                   str(tmp_path / "sandbox-state.json")], tmp_path)
    procs.append(server)
    assert server.out.wait_for(lambda t: "\n" in t, 90), server.err.text
    first = server.out.text.splitlines()[0]
    assert first.startswith("endpoint=http://"), first
    return first.removeprefix("endpoint=")


def sandbox_reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/_sandbox/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def sandbox_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=30) as response:
        return json.loads(response.read())


def cli_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`python -m imagesync ARGV` in-process (same `main`), in the test's CWD."""
    capsys.readouterr()
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# -- 1. injected faults ------------------------------------------------------------------------


class FaultLog:
    """Which fault each sandbox request drew, by operation (read and write)."""

    def __init__(self, served_sandbox: Any, monkeypatch: pytest.MonkeyPatch,
                 decide: Callable[[str, Fault], Fault] | None = None) -> None:
        self.events: list[tuple[str, Fault]] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        original_route = sandbox_protocol.route
        injector = served_sandbox.sandbox.faults
        original_draw = injector.draw

        def route(command: str, path: str) -> Any:
            result = original_route(command, path)
            self._local.operation = result[0]
            return result

        def draw() -> Fault:
            fault = original_draw()
            operation = getattr(self._local, "operation", "?")
            if decide is not None:
                fault = decide(operation, fault)
            with self._lock:
                self.events.append((operation, fault))
            return fault

        monkeypatch.setattr(sandbox_protocol, "route", route)
        monkeypatch.setattr(injector, "draw", draw)

    def count(self, *faults: Fault, writes_only: bool = False) -> int:
        with self._lock:
            return sum(1 for op, f in self.events
                       if f in faults and (not writes_only or op.startswith(WRITE_PREFIXES)))


@pytest.mark.parametrize("reset_rate", [0.0, 0.1], ids=["throttle+5xx", "throttle+5xx+resets"])
@pytest.mark.parametrize("seed", [7, 1234, 99991])
def test_apply_converges_under_injected_faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, reset_rate: float
) -> None:
    root = copy_examples(tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    desired = api.validate(root).desired
    assert desired is not None
    with running(throttle_rate=0.2, error_rate=0.05, reset_rate=reset_rate, seed=seed) as sb:
        log = FaultLog(sb, monkeypatch)
        connector = Connector(ConnectOptions(sandbox=sb.endpoint_url))
        plan, outcomes = api.apply(root, connector, PlanOptions())
        failed = [(o.target, o.address, o.status, o.detail) for o in outcomes if not o.ok]
        assert failed == []
        assert len(outcomes) == len(desired.resources)
        assert {(o.target, o.address) for o in outcomes} == {
            (r.target, str(r.address)) for r in desired.resources.values()}
        assert log.count(Fault.THROTTLE) > 0 and log.count(Fault.SERVICE_ERROR, Fault.UNAVAILABLE) > 0
        if reset_rate:
            assert log.count(Fault.RESET_BEFORE, Fault.RESET_AFTER) > 0

        # Re-plan through the same faulty sandbox: reads are retried too, and nothing is pending.
        replan, _ = api.plan(root, connector, PlanOptions())
        assert_plan_empty(replan.to_json())

        # Inspect the store without faults.
        sb.sandbox.faults = FaultInjector(FaultConfig())
        shape = live_shape(sb.endpoint_url, desired)
    assert_no_duplicates(shape)
    for target, kinds in shape.items():
        for kind in ("ImageRecipe", "ContainerRecipe", "Component", "Workflow"):
            for name, versions in kinds[kind].items():
                assert len(versions) == 1, f"{target}: {kind}/{name} has several versions: {versions}"
    assert shape == expected_shape(desired)


def test_lost_responses_to_committed_writes_are_retried_with_the_same_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every write's first response is lost after the write committed (reset after handling).

    imagesync's own retry (`aws.call`) must resend with the same clientToken and get the original
    result back: nothing is created or published twice, for creates (first apply) and for
    publishes/updates (second apply). botocore makes one attempt only, so the retry under test is
    imagesync's own.
    """
    v1 = copy_examples(tmp_path / "v1")
    v2 = make_v2(v1, tmp_path / "v2")
    monkeypatch.chdir(tmp_path)
    desired = api.validate(v1).desired
    assert desired is not None
    attempts: collections.Counter[str] = collections.Counter()

    def first_attempt_loses_response(operation: str, _fault: Fault) -> Fault:
        if not operation.startswith(WRITE_PREFIXES):
            return Fault.NONE
        attempts[operation] += 1
        return Fault.RESET_AFTER if attempts[operation] % 2 == 1 else Fault.NONE

    with running() as sb:
        log = FaultLog(sb, monkeypatch, decide=first_attempt_loses_response)
        connector = Connector(ConnectOptions(sandbox=sb.endpoint_url))
        counter = CallCounter()
        # parallelism=1: writes are sequential, so each call's retry is the next call of its operation
        _, outcomes = api.apply(v1, connector, PlanOptions(), parallelism=1, counter=counter)
        assert [o for o in outcomes if not o.ok] == []
        assert write_ops(sb.stats()) == {op: 2 * n for op, n in creates_per_kind(desired).items()}
        assert log.count(Fault.RESET_AFTER, writes_only=True) == len(desired.resources)
        assert counter.retries == len(desired.resources)  # each lost response retried by call()
        assert_plan_empty(api.plan(v1, connector, PlanOptions())[0].to_json())
        assert live_shape(sb.endpoint_url, desired) == expected_shape(desired)

        _, outcomes = api.apply(v2, connector, PlanOptions(), parallelism=1)
        assert [o for o in outcomes if not o.ok] == []
        assert {o.action for o in outcomes} >= {"publish", "update"}
        assert_plan_empty(api.plan(v2, connector, PlanOptions())[0].to_json())
        shape = live_shape(sb.endpoint_url, desired)
    expected = expected_shape(desired, {("Component", "harden-cis"): ["1.0.1"],
                                        ("ImageRecipe", "hardened-al2023"): ["1.0.1"]})
    assert shape == expected


def test_call_is_the_only_retry_layer(tmp_path: Path) -> None:
    desired = api.validate(copy_examples(tmp_path / "manifests")).desired
    assert desired is not None
    target = desired.project.target("prod-use1")
    sleeps: list[float] = []
    with running(error_rate=1.0, seed=3) as sb:
        client = Connector(ConnectOptions(sandbox=sb.endpoint_url)).imagebuilder(target)
        counter = CallCounter()
        with pytest.raises(ApiUnavailable):
            call(client, "ListImagePipelines", {}, counter=counter,
                 backoff=Backoff(attempts=2, sleep=sleeps.append))
        assert counter.total == 2 and len(sleeps) == 1
        # Every HTTP request the service saw was one of call()'s attempts.
        assert sb.stats()["operations"]["ListImagePipelines"] == counter.total


# -- 2. SIGKILL at random points ---------------------------------------------------------------


def _kill_at_random_point(zygote: Zygote, rng: random.Random, mode: str, full: float, changes: int) -> dict[str, Any]:
    """Start an apply and SIGKILL it: after a random delay within a full apply's duration (mode
    "time") or right after a random number of outcome lines (mode "progress")."""
    run = zygote.go()
    if mode == "time":
        delay = rng.uniform(0.0, full)
        time.sleep(max(0.0, run.t_go + delay - time.monotonic()))
        point = f"{delay:.3f}s"
    else:
        k = rng.randint(1, max(1, changes - 1))
        run.wait_until(lambda r: r.progress() >= k or r.finished_output(), full * 4 + 10)
        time.sleep(rng.uniform(0.0, 0.01))
        point = f"after {k} outcome(s)"
    run.sigkill()
    rc = run.reap()
    progress, done = run.progress(), run.finished_output()
    return {"point": point, "progress": progress, "completed": done, "rc": rc,
            "mid_write": progress > 0 and not done}


def _converge_and_check(capsys: pytest.CaptureFixture[str], url: str, root: Path, expected: Shape,
                        desired: Any, context: str) -> None:
    rc, out, err = cli_run(capsys, "apply", str(root), "--sandbox", url, "--auto-approve")
    assert rc == 0, f"{context}: re-run apply failed:\n{out[-3000:]}\n{err[-3000:]}"
    rc, out, err = cli_run(capsys, "plan", str(root), "--sandbox", url, "--format", "json")
    assert rc == 0, f"{context}: plan failed: {err}"
    plan = json.loads(out)
    try:
        assert_plan_empty(plan)
    except AssertionError as exc:
        raise AssertionError(f"{context}: plan after re-run is not empty: {exc}") from None
    shape = live_shape(url, desired)
    assert_no_duplicates(shape)
    assert shape == expected, f"{context}: live state differs from the manifests"


def _calibrate(zygote: Zygote) -> tuple[float, Run]:
    """One full apply, start to exit."""
    run = zygote.go()
    rc = run.reap()
    assert rc == 0, (run.output[-3000:], run.errors[-3000:])
    return time.monotonic() - run.t_go, run


@pytest.mark.slow
def test_sigkill_during_first_apply_then_rerun_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    served: str, procs: list[Proc],
) -> None:
    root = copy_examples(tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    desired = api.validate(root).desired
    assert desired is not None
    expected = expected_shape(desired)
    zygote = Zygote(["apply", str(root), "--sandbox", served, "--auto-approve"], tmp_path)
    procs.append(zygote)

    full, calibration = _calibrate(zygote)
    assert calibration.progress() == len(desired.resources)
    assert live_shape(served, desired) == expected

    seen: list[dict[str, Any]] = []
    for seed in range(12):
        sandbox_reset(served)
        assert sandbox_stats(served)["total"] == 0
        info = _kill_at_random_point(zygote, random.Random(seed), "time" if seed % 2 == 0 else "progress",
                                     full, len(desired.resources))
        info["seed"] = seed
        seen.append(info)
        _converge_and_check(capsys, served, root, expected, desired, f"seed {seed} (killed {info})")
    # The random points must have hit the write phase, not only start-up or the end.
    assert sum(1 for s in seen if s["mid_write"]) >= 3, seen
    assert sum(1 for s in seen if s["rc"] == -signal.SIGKILL) >= 6, seen


@pytest.mark.slow
def test_sigkill_during_second_apply_publishing_new_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    served: str, procs: list[Proc],
) -> None:
    v1 = copy_examples(tmp_path / "v1")
    v2 = make_v2(v1, tmp_path / "v2")
    monkeypatch.chdir(tmp_path)
    desired = api.validate(v1).desired
    assert desired is not None
    expected = expected_shape(desired, {("Component", "harden-cis"): ["1.0.1"],
                                        ("ImageRecipe", "hardened-al2023"): ["1.0.1"]})
    zygote = Zygote(["apply", str(v2), "--sandbox", served, "--auto-approve"], tmp_path)
    procs.append(zygote)

    def apply_v1() -> None:
        sandbox_reset(served)
        rc, out, err = cli_run(capsys, "apply", str(v1), "--sandbox", served, "--auto-approve")
        assert rc == 0, out + err

    apply_v1()
    full, calibration = _calibrate(zygote)
    changes = calibration.progress()
    assert changes == 6  # harden-cis and hardened-al2023 published, the pipeline updated, per target
    assert live_shape(served, desired) == expected

    seen: list[dict[str, Any]] = []
    for seed in range(100, 106):
        apply_v1()
        info = _kill_at_random_point(zygote, random.Random(seed), "time" if seed % 2 == 0 else "progress",
                                     full, changes)
        info["seed"] = seed
        seen.append(info)
        _converge_and_check(capsys, served, v2, expected, desired, f"seed {seed} (killed {info})")
        for target in desired.project.targets:
            c = ib_client(served, target.account, target.region)
            published = [r for r in _paginate(c.list_components, "componentVersionList", owner="Self")
                         if r["name"] == "harden-cis"]
            assert sorted(r["version"] for r in published) == ["1.0.0", "1.0.1"], (seed, published)
            arn = next(r["arn"] for r in published if r["version"] == "1.0.1")
            builds = _paginate(c.list_component_build_versions, "componentSummaryList", componentVersionArn=arn)
            assert len(builds) == 1, f"seed {seed}: {target.name}: harden-cis 1.0.1 has {len(builds)} builds"
    assert sum(1 for s in seen if s["mid_write"]) >= 2, seen


# -- 3. concurrent applies and the lock --------------------------------------------------------


@pytest.mark.slow
def test_apply_fails_fast_while_the_target_is_locked(tmp_path: Path, procs: list[Proc]) -> None:
    root = copy_examples(tmp_path / "manifests")
    with running() as sb:
        holder = start_holder(root)
        procs.append(holder)
        apply = Proc([sys.executable, "-m", "imagesync", "apply", str(root), "--sandbox", sb.endpoint_url,
                      "--auto-approve", "--target", "prod-use1"], tmp_path)
        procs.append(apply)
        rc = apply.wait(120)
        assert holder.poll() is None, "the apply returned only because the holder went away"
        stderr = apply.err.text
        assert rc == 1, (apply.out.text, stderr)
        assert LOCK_ID in stderr and "is held by" in stderr
        assert f"pid {holder.pid}" in stderr and "'apply'" in stderr
        assert "--lock-timeout" in stderr
        assert write_ops(sb.stats()) == {}
        assert sb.stats()["total"] == 0  # the lock is taken before live state is even read


@pytest.mark.slow
def test_apply_with_lock_timeout_waits_for_the_holder(tmp_path: Path, procs: list[Proc]) -> None:
    root = copy_examples(tmp_path / "manifests")
    desired = api.validate(root).desired
    assert desired is not None
    with running() as sb:
        waiter = WarmCli(["apply", str(root), "--sandbox", sb.endpoint_url, "--auto-approve",
                          "--target", "prod-use1", "--lock-timeout", "10"], tmp_path)
        procs.append(waiter)
        holder = start_holder(root)
        procs.append(holder)
        waiter.wait_ready()
        with FileOpens(FileLock(default_lock_dir(), LOCK_ID).path) as opens:
            waiter.go()
            # Each attempt opens the lock file: a second open means the first one was refused.
            opens.wait_for(2, "the waiting apply has tried the held lock twice")
        assert waiter.poll() is None, (waiter.output, waiter.err.text)
        assert sb.stats()["total"] == 0  # still waiting for the lock: nothing read or written
        holder.sigkill()
        rc = waiter.wait(60)
        assert rc == 0, (waiter.output, waiter.err.text)
        assert "Apply complete" in waiter.output
        assert write_ops(sb.stats()) == creates_per_kind(desired, "prod-use1")


@pytest.mark.slow
def test_two_concurrent_applies_never_both_write(tmp_path: Path, procs: list[Proc]) -> None:
    root = copy_examples(tmp_path / "manifests")
    desired = api.validate(root).desired
    assert desired is not None
    with running(latency_ms=20) as sb:
        rounds = 2
        pairs = [[WarmCli(["apply", str(root), "--sandbox", sb.endpoint_url, "--auto-approve",
                           "--target", "prod-use1"], tmp_path) for _ in range(2)] for _ in range(rounds)]
        procs.extend(p for pair in pairs for p in pair)
        for round_no, pair in enumerate(pairs):
            for p in pair:
                p.wait_ready()
            sb.reset()
            for p in pair:
                p.go()
            rcs = [p.wait(120) for p in pair]
            writers = [p for p in pair if p.progress() > 0]
            assert len(writers) == 1, [(rc, p.output[-500:], p.err.text) for rc, p in zip(rcs, pair, strict=True)]
            writer = writers[0]
            other = next(p for p in pair if p is not writer)
            assert writer.popen.returncode == 0 and "Apply complete" in writer.output, writer.err.text
            if other.popen.returncode == 1:
                assert "is held by" in other.err.text and f"pid {writer.pid}" in other.err.text, other.err.text
            else:
                assert other.popen.returncode == 0 and "No changes" in other.output, (other.output, other.err.text)
            stats = sb.stats()
            assert write_ops(stats) == creates_per_kind(desired, "prod-use1"), f"round {round_no}: {stats}"
            shape = live_shape(sb.endpoint_url, desired)["prod-use1"]
            assert shape == expected_shape(desired)["prod-use1"]


# -- 4. unlock ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_unlock_after_holder_was_killed(tmp_path: Path, procs: list[Proc]) -> None:
    root = copy_examples(tmp_path / "manifests")
    holder = start_holder(root)
    procs.append(holder)
    holder.sigkill()
    unlock = Proc([sys.executable, "-m", "imagesync", "unlock", LOCK_ID, "--dir", str(root)], tmp_path)
    procs.append(unlock)
    rc = unlock.wait(120)
    out = unlock.out.text
    assert rc == 0, (out, unlock.err.text)
    assert f"{LOCK_ID}: not locked" in out or (f"released {LOCK_ID}" in out and f"pid {holder.pid}" in out), out
    # The lock is free now: it can be taken (and released) at once.
    lock = FileLock(default_lock_dir(), LOCK_ID)
    lock.acquire("test")
    lock.release()


@pytest.mark.slow
def test_unlock_refuses_while_holder_is_alive(tmp_path: Path, procs: list[Proc]) -> None:
    root = copy_examples(tmp_path / "manifests")
    holder = start_holder(root)
    procs.append(holder)
    unlock = Proc([sys.executable, "-m", "imagesync", "unlock", LOCK_ID, "--dir", str(root)], tmp_path)
    procs.append(unlock)
    rc = unlock.wait(120)
    err = unlock.err.text
    assert rc == 1, (unlock.out.text, err)
    assert "still running" in err and f"pid {holder.pid}" in err, err
    assert holder.poll() is None
    with pytest.raises(LockHeld):
        FileLock(default_lock_dir(), LOCK_ID).acquire("test")
