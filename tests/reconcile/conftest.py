"""Fixtures for end-to-end reconcile tests: a sandbox per test, a copy of the example estate, helpers.

Everything goes through real boto3 over HTTP to the sandbox; nothing is mocked. The example estate
is applied once per session into a sandbox state file; tests that start from an applied estate get
a fresh sandbox served on their own copy of that file, so every test has isolated state and
counters without paying for a full apply each time.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from imagesync import api
from imagesync.aws import CallCounter, ConnectOptions, Connector
from imagesync.cli import main as cli_main
from imagesync.execute import Outcome
from imagesync.plan_model import Plan, ResourceChange
from imagesync.planner import PlanOptions
from imagesync.sandbox import RunningSandbox, Sandbox, running

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "manifests"
PLAN_SCHEMA = REPO / "src" / "imagesync" / "schemas" / "plan.json"

PROD, STAGING = "prod-use1", "staging-euw1"
ACCOUNTS = {PROD: "111111111111", STAGING: "222222222222"}
REGIONS = {PROD: "us-east-1", STAGING: "eu-west-1"}
TARGETS = (PROD, STAGING)

WRITE_PREFIXES = ("Create", "Update", "Delete", "Tag", "Untag", "Start", "Cancel", "Put", "Import")


class Estate:
    """One test's world: a running sandbox, a manifest directory, and ways to drive both."""

    def __init__(self, sb: RunningSandbox, root: Path, workdir: Path) -> None:
        self.sb = sb
        self.root = root
        self.workdir = workdir
        self._clients: dict[str, Any] = {}
        self._mark: dict[str, int] = {}

    # --- imagesync, programmatically ------------------------------------------------------------

    def connector(self) -> Connector:
        return Connector(ConnectOptions(sandbox=self.sb.endpoint_url))

    def plan(self, counter: CallCounter | None = None, **options: Any) -> Plan:
        with self.connector() as connector:
            plan, _ = api.plan(self.root, connector, _options(options), counter)
        return plan

    def apply(self, source: str | Path | None = None, **options: Any) -> tuple[Plan, list[Outcome]]:
        with self.connector() as connector:
            return api.apply(source or self.root, connector, _options(options))

    def apply_ok(self, **options: Any) -> list[Outcome]:
        """Apply, insist every outcome is good, and insist the plan afterwards is empty."""
        plan, outcomes = self.apply(**options)
        failed = [o for o in outcomes if not o.ok]
        assert not failed, failed
        assert plan.has_changes == bool(outcomes)
        after = self.plan(**options)
        assert not after.has_changes, pending(after)
        return outcomes

    # --- the CLI, as a user runs it -------------------------------------------------------------

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m imagesync ARGS` in a subprocess, cwd the test's directory, no terminal."""
        return subprocess.run(
            [sys.executable, "-m", "imagesync", *args],
            cwd=self.workdir, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The same entry point in-process (faster): argv in, exit code and captured output out."""
        out, err = io.StringIO(), io.StringIO()
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO()  # no terminal
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli_main(list(args))
        finally:
            sys.stdin = saved_stdin
        return subprocess.CompletedProcess(["imagesync", *args], code, out.getvalue(), err.getvalue())

    # --- the account, behind imagesync's back ---------------------------------------------------

    def client(self, target: str) -> Any:
        if target not in self._clients:
            self._clients[target] = boto3.client(
                "imagebuilder",
                endpoint_url=self.sb.endpoint_url,
                region_name=REGIONS[target],
                aws_access_key_id=ACCOUNTS[target],
                aws_secret_access_key="x",
            )
        return self._clients[target]

    def stats(self) -> dict[str, Any]:
        """The sandbox's own call counters, read over HTTP."""
        with urllib.request.urlopen(f"{self.sb.endpoint_url}/_sandbox/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def mark(self) -> None:
        """Start counting calls from now (the state stays as it is)."""
        self._mark = dict(self.stats()["operations"])

    def calls(self) -> dict[str, int]:
        """Calls per operation the sandbox served since `mark()` (since start without one)."""
        now = self.stats()["operations"]
        return {op: n - self._mark.get(op, 0) for op, n in now.items() if n - self._mark.get(op, 0)}

    def writes(self) -> dict[str, int]:
        return {op: n for op, n in self.calls().items() if op.startswith(WRITE_PREFIXES)}

    # --- manifests ------------------------------------------------------------------------------

    def docs(self, filename: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all((self.root / filename).read_text()) if d is not None]

    def write_docs(self, filename: str, docs: list[dict[str, Any]]) -> None:
        (self.root / filename).write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def edit(self, filename: str, kind: str, name: str, fn: Callable[[dict[str, Any]], None]) -> None:
        """Edit one manifest document in place (fn mutates the whole document)."""
        docs = self.docs(filename)
        hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
        assert len(hits) == 1, (filename, kind, name)
        fn(hits[0])
        self.write_docs(filename, docs)

    def remove(self, filename: str, kind: str, name: str) -> None:
        docs = self.docs(filename)
        kept = [d for d in docs if not (d["kind"] == kind and d["metadata"]["name"] == name)]
        assert len(kept) == len(docs) - 1
        self.write_docs(filename, kept)

    def replace_text(self, relpath: str, old: str, new: str) -> None:
        path = self.root / relpath
        text = path.read_text()
        assert old in text, (relpath, old)
        path.write_text(text.replace(old, new))


def _options(options: dict[str, Any]) -> PlanOptions:
    if "targets" in options:
        options = {**options, "targets": tuple(options["targets"])}
    return PlanOptions(**options)


def pending(plan: Plan, target: str | None = None) -> list[tuple[str, str, str]]:
    """(target, address, action) of every pending change, in plan order."""
    return [
        (t.target, c.address, c.action)
        for t in plan.targets if target in (None, t.target)
        for c in t.pending
    ]


def change(plan: Plan, target: str, address: str) -> ResourceChange:
    tp = next(t for t in plan.targets if t.target == target)
    hits = [c for c in tp.changes if c.address == address]
    assert len(hits) == 1, (target, address, [c.address for c in tp.changes])
    return hits[0]


def warnings(plan: Plan, target: str | None = None) -> list[str]:
    return [w for t in plan.targets if target in (None, t.target) for w in t.warnings]


def manifest_resources(root: Path) -> dict[str, list[tuple[str, str]]]:
    """target -> [(kind, name)] read straight from the YAML, independently of imagesync's loader."""
    out: dict[str, list[tuple[str, str]]] = {t: [] for t in TARGETS}
    for path in sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml")):
        if path.name == "imagesync.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            for target in doc["metadata"].get("targets") or TARGETS:
                out[target].append((doc["kind"], doc["metadata"]["name"]))
    return out


@pytest.fixture(autouse=True)
def _in_test_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in its own directory (fake credentials come from tests/conftest.py)."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def baseline_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox state file holding the example estate, applied once by imagesync itself."""
    work = tmp_path_factory.mktemp("baseline")
    state = work / "state.json"
    root = work / "manifests"
    shutil.copytree(EXAMPLES, root)
    with running(state=str(state)) as sb, Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(work)  # apply's lock files go here
            plan, outcomes = api.apply(root, connector, PlanOptions())
    assert plan.has_changes and outcomes and all(o.ok for o in outcomes), outcomes
    return state


def _estate(tmp_path: Path, sb: RunningSandbox) -> Estate:
    root = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, root)
    return Estate(sb, root, tmp_path)


@contextlib.contextmanager
def _served(state: str | None) -> Iterator[RunningSandbox]:
    sb = RunningSandbox(Sandbox(state)).start()
    try:
        yield sb
    finally:
        # Stopping waits for the server loop's poll interval; let that happen off the test's clock.
        threading.Thread(target=sb.stop, daemon=True).start()


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    """An empty sandbox and a fresh copy of the example manifests."""
    with _served(None) as sb:
        yield _estate(tmp_path, sb)


@pytest.fixture
def applied(tmp_path: Path, baseline_state: Path) -> Iterator[Estate]:
    """A sandbox where the example manifests are already applied, with zeroed counters."""
    state = tmp_path / "sandbox" / "state.json"
    state.parent.mkdir()
    shutil.copyfile(baseline_state, state)
    with _served(str(state)) as sb:
        yield _estate(tmp_path, sb)
