"""`imagesync reconcile`, run as a subprocess against the sandbox the way a container runs it.

Timing is never asserted: the loop's own output counts its runs ("run=... target=... result=..."
lines on stdout), and each test waits for a number of runs, not for a number of seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesync.sandbox import running
from support import make_client, manifest_tree, run_imagesync, stop_process, wait_until

PROJECT = "project: loop\ntargets:\n  - name: dev\n    region: us-east-1\n    account: '123456789012'\n"
INFRA = """apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {name: build}
spec:
  instanceProfileName: build
  instanceTypes: [m7i.large]
"""


def infra(name: str) -> str:
    return INFRA.replace("{name: build}", f"{{name: {name}}}")


class Loop:
    """A running `imagesync reconcile`: its stdout lines collected on a thread, its stderr kept."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "imagesync", "reconcile", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._collect, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect, args=(self.proc.stderr, self.errors), daemon=True).start()

    @staticmethod
    def _collect(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    @property
    def url(self) -> str:
        line = wait_until(lambda: next((x for x in self.lines if x.startswith("listening=")), None) or self._alive(),
                          "the loop listens")
        return str(line).split("=", 1)[1]

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"reconcile exited {self.proc.returncode}: {self.errors[-5:]}")

    def runs(self, target: str = "dev") -> list[dict[str, str]]:
        return [_fields(x) for x in list(self.lines) if x.startswith("run=") and f" target={target} " in x]

    def wait_runs(self, n: int, target: str = "dev") -> list[dict[str, str]]:
        def enough() -> list[dict[str, str]] | None:
            self._alive()
            runs = self.runs(target)
            return runs if len(runs) >= n else None

        return wait_until(enough, f"{n} runs of {target}", timeout=120)


def _fields(line: str) -> dict[str, str]:
    head = line.split(" error=", 1)
    out = dict(part.split("=", 1) for part in head[0].split())
    if len(head) > 1:
        out["error"] = head[1]
    return out


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def writes(endpoint: str) -> int:
    with urllib.request.urlopen(f"{endpoint}/_sandbox/stats") as resp:
        ops = json.load(resp)["operations"]
    return sum(n for op, n in ops.items() if not op.startswith(("Get", "List")))


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with running() as served:
        yield served.endpoint_url


def test_once_applies_an_empty_account(tmp_path: Path, sandbox_url: str) -> None:
    manifest_tree(tmp_path / "m", PROJECT, infra("build"), infra("test"))
    done = run_imagesync(["reconcile", "m", "--sandbox", sandbox_url, "--once"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [line] = [_fields(x) for x in done.stdout.splitlines() if x.startswith("run=")]
    assert line["target"] == "dev" and line["result"] == "success" and line["applied"] == "2"
    names = {c["name"] for c in make_client(sandbox_url, account="123456789012")
             .list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]}
    assert names == {"build", "test"}
    again = run_imagesync(["reconcile", "m", "--sandbox", sandbox_url, "--once", "--dry-run"], cwd=tmp_path)
    assert again.returncode == 0 and "pending=0" in again.stdout, again.stdout + again.stderr


def test_a_running_loop_reverts_an_out_of_band_edit_within_two_intervals(tmp_path: Path, sandbox_url: str) -> None:
    manifest_tree(tmp_path / "m", PROJECT, INFRA)
    loop = Loop(["m", "--sandbox", sandbox_url, "--interval", "2s"], tmp_path)
    try:
        loop.wait_runs(1)
        client = make_client(sandbox_url, account="123456789012")
        [summary] = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
        client.update_infrastructure_configuration(
            infrastructureConfigurationArn=summary["arn"], instanceProfileName="build", instanceTypes=["t3.nano"]
        )
        before = len(loop.runs())

        def types() -> list[str]:
            item = client.get_infrastructure_configuration(infrastructureConfigurationArn=summary["arn"])
            return list(item["infrastructureConfiguration"]["instanceTypes"])

        wait_until(lambda: types() == ["m7i.large"] or (len(loop.runs()) > before + 2 and "too late"),
                   "the edit is reverted")
        assert types() == ["m7i.large"]
        assert len(loop.runs()) <= before + 2, "reverted only after more than two intervals"
        assert any(r["drift"] == "1" and r["result"] == "success" for r in loop.runs()[before:])
    finally:
        stop_process(loop.proc)


def test_dry_run_writes_nothing_and_reports_drift_in_metrics(tmp_path: Path, sandbox_url: str) -> None:
    manifest_tree(tmp_path / "m", PROJECT, INFRA)
    assert run_imagesync(["reconcile", "m", "--sandbox", sandbox_url, "--once"], cwd=tmp_path).returncode == 0
    client = make_client(sandbox_url, account="123456789012")
    [summary] = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
    client.update_infrastructure_configuration(
        infrastructureConfigurationArn=summary["arn"], instanceProfileName="build", instanceTypes=["t3.nano"]
    )
    written = writes(sandbox_url)
    loop = Loop(["m", "--sandbox", sandbox_url, "--dry-run", "--interval", "1s", "--listen", "127.0.0.1:0"],
                tmp_path)
    try:
        url = loop.url
        loop.wait_runs(2)
        status, text = get(f"{url}/metrics")
        assert status == 200
        assert metric(text, "imagesync_drift_resources", target="dev", kind="InfrastructureConfiguration") == 1.0
        assert metric(text, "imagesync_drift_resources", target="dev", kind="Component") == 0.0
        assert metric(text, "imagesync_pending_changes", target="dev") == 1.0
        assert (metric(text, "imagesync_reconcile_total", target="dev", result="success") or 0) >= 2
        assert (metric(text, "imagesync_api_calls_total", operation="GetInfrastructureConfiguration", code="ok")
                or 0) >= 2
        assert get(f"{url}/healthz")[0] == 200 and get(f"{url}/readyz")[0] == 200
    finally:
        stop_process(loop.proc)
    assert writes(sandbox_url) == written, "a dry run wrote"
    once = run_imagesync(["reconcile", "m", "--sandbox", sandbox_url, "--once", "--dry-run"], cwd=tmp_path)
    assert once.returncode == 2, once.stdout + once.stderr
    assert writes(sandbox_url) == written


def test_a_bad_manifest_fails_readiness_and_waits_for_a_new_revision(tmp_path: Path, sandbox_url: str) -> None:
    root = manifest_tree(tmp_path / "m", PROJECT, INFRA.replace("instanceTypes: [m7i.large]", "instanceTypes: 7"))
    loop = Loop(["m", "--sandbox", sandbox_url, "--interval", "1s", "--listen", "127.0.0.1:0"], tmp_path)
    try:
        url = loop.url
        first = loop.wait_runs(1, target="(manifests)")[0]
        assert first["result"] == "invalid" and "m.yaml:" in first["error"], first
        status, why = get(f"{url}/readyz")
        assert status == 503 and "do not load" in why
        # The loop wakes every interval, sees the same revision, and does not try again.
        wait_until(lambda: sum("waiting for a new revision" in e for e in loop.errors) >= 2, "two idle wake-ups")
        assert len(loop.runs("(manifests)")) == 1
        assert writes(sandbox_url) == 0 and get(f"{url}/readyz")[0] == 503
        (root / "m.yaml").write_text(INFRA)  # a new revision of the manifests
        ok = loop.wait_runs(1)[0]
        assert ok["result"] == "success" and ok["revision"] != first["revision"]
        wait_until(lambda: get(f"{url}/readyz")[0] == 200, "ready again")
    finally:
        stop_process(loop.proc)


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_a_new_git_revision_is_picked_up_and_recorded(tmp_path: Path, sandbox_url: str) -> None:
    bare, work = tmp_path / "repo.git", tmp_path / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=tmp_path)
    manifest_tree(work / "deploy", PROJECT, INFRA)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "one", cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    loop = Loop(["--git", bare.as_uri(), "--ref", "main", "--git-path", "deploy", "--git-cache", str(tmp_path / "c"),
                 "--sandbox", sandbox_url, "--interval", "1s", "--listen", "127.0.0.1:0"], tmp_path)
    try:
        url = loop.url
        run = loop.wait_runs(1)[0]
        assert run["result"] == "success" and first.startswith(run["revision"])
        (work / "deploy" / "m.yaml").write_text(INFRA + "---\n" + infra("second"))
        git("commit", "--quiet", "-am", "two", cwd=work)
        git("push", "--quiet", str(bare), "main", cwd=work)
        second = git("rev-parse", "HEAD", cwd=work)
        wait_until(lambda: any(second.startswith(r["revision"]) for r in loop.runs()), "the new revision applied")
        newest = [r for r in loop.runs() if second.startswith(r["revision"])][0]
        assert newest["applied"] == "1" and newest["result"] == "success"
        _, text = get(f"{url}/metrics")
        assert metric(text, "imagesync_source_revision_info", revision=second) == 1.0
        assert metric(text, "imagesync_source_revision_info", revision=first) is None
        assert any(second in e and "reconciled" in e for e in loop.errors), "the revision is in the run's log event"
    finally:
        stop_process(loop.proc)


def test_sigterm_mid_apply_exits_0_promptly_and_releases_the_lock(tmp_path: Path) -> None:
    docs = [infra(f"b{i:02d}") for i in range(40)]
    manifest_tree(tmp_path / "m", PROJECT, *docs)
    with running(latency_ms=100) as served:
        loop = Loop(["m", "--sandbox", served.endpoint_url, "--interval", "1h", "--parallelism", "1"], tmp_path)
        try:
            wait_until(lambda: writes(served.endpoint_url) >= 2 or loop._alive(), "the apply is under way")
            loop.proc.send_signal(signal.SIGTERM)
            assert loop.proc.wait(timeout=10) == 0, loop.errors[-5:]
            made = writes(served.endpoint_url)
            assert 0 < made < 40, "SIGTERM arrived mid-apply"
            [run] = loop.runs()
            assert run["result"] == "interrupted" and int(run["applied"]) == made, run
        finally:
            stop_process(loop.proc)
        # The lock is free: the next writer gets it at once (a held lock fails without waiting).
        after = run_imagesync(["apply", "m", "--sandbox", served.endpoint_url, "--auto-approve"], cwd=tmp_path)
        assert after.returncode == 0, after.stderr


def test_two_loops_against_one_target_never_both_write(tmp_path: Path) -> None:
    manifest_tree(tmp_path / "m", PROJECT, *[infra(f"b{i:02d}") for i in range(20)])
    with running(latency_ms=50) as served:
        args = [sys.executable, "-m", "imagesync", "reconcile", "m", "--sandbox", served.endpoint_url, "--once"]
        procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
        runs = [_fields(line) for out, _ in outs for line in out.splitlines() if line.startswith("run=")]
        applied = [int(r.get("applied", "0")) for r in runs]
        assert sorted(applied) == [0, 20], runs  # one wrote everything; the other skipped or found nothing to do
        assert writes(served.endpoint_url) == 20
        skipped = [r for r in runs if r["result"] == "skipped"]
        assert all("is held by" in r["error"] for r in skipped)


def test_four_shards_of_forty_targets_cover_each_target_once(tmp_path: Path) -> None:
    targets = "".join(f"  - name: t{i:02d}\n    region: us-east-1\n    account: '{100000000000 + i}'\n"
                      for i in range(40))
    manifest_tree(tmp_path / "m", f"project: shards\ntargets:\n{targets}", INFRA)
    seen: list[str] = []
    for index in range(4):
        done = run_imagesync(["plan", "m", "--sandbox", str(tmp_path / "sb.json"), "--shard", f"{index}/4",
                              "--format", "json"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        names = [t["name"] for t in json.loads(done.stdout)["targets"]]
        assert names, f"shard {index} of 4 is empty"
        seen += names
    assert sorted(seen) == [f"t{i:02d}" for i in range(40)]


def test_an_empty_shard_succeeds_with_nothing_to_do_and_bad_shards_are_refused(tmp_path: Path) -> None:
    manifest_tree(tmp_path / "m", PROJECT, INFRA)
    state = str(tmp_path / "sb.json")
    codes = {}
    for index in range(2):
        done = run_imagesync(["apply", "m", "--sandbox", state, "--shard", f"{index}/2", "--auto-approve"],
                             cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        codes[index] = done.stdout
    assert sorted("1 created" in out for out in codes.values()) == [False, True], codes
    assert sorted("holds none of the project's targets" in out for out in codes.values()) == [False, True], codes
    for bad in ("2/2", "1", "-1/2", "a/b", "0/0"):
        done = run_imagesync(["plan", "m", "--sandbox", state, "--shard", bad], cwd=tmp_path)
        assert done.returncode == 1 and "--shard" in done.stderr and "Traceback" not in done.stderr, bad


def test_a_failing_targets_backoff_doubles_from_a_tenth_of_the_interval_up_to_the_interval() -> None:
    from imagesync.reconcile import DirectorySource, Reconciler, Settings

    def waits(interval: float) -> list[float]:
        loop = Reconciler(DirectorySource("."), connector=None, settings=Settings(interval=interval))  # type: ignore[arg-type]
        return [loop._backoff(n) for n in range(1, 9)]

    hour = waits(3600)  # the first retry after 30 s (a tenth, at most 30 s), jitter of up to 10% on top
    assert all(30 * 2**i <= w <= 30 * 2**i * 1.1 for i, w in enumerate(hour[:6]))
    assert all(3600 <= w <= 3960 for w in hour[7:]), "capped at the interval"
    short = waits(2)  # a tenth of 2 s is less than the 1 s floor
    assert 1 <= short[0] <= 1.1 and all(2 <= w <= 2.2 for w in short[1:])


def test_a_failing_target_never_stops_the_others(tmp_path: Path, sandbox_url: str) -> None:
    two = PROJECT + "  - name: prod\n    region: us-east-1\n    account: '210987654321'\n"
    manifest_tree(tmp_path / "m", two, INFRA)
    # prod already has an InfrastructureConfiguration of that name that imagesync did not make.
    make_client(sandbox_url, account="210987654321").create_infrastructure_configuration(
        name="build", instanceProfileName="someone-elses"
    )
    done = run_imagesync(["reconcile", "m", "--sandbox", sandbox_url, "--once"], cwd=tmp_path)
    assert done.returncode == 1
    runs = {r["target"]: r for r in (_fields(x) for x in done.stdout.splitlines() if x.startswith("run="))}
    assert runs["dev"]["result"] == "success" and runs["dev"]["applied"] == "1"
    assert runs["prod"]["result"] == "invalid" and "InfrastructureConfiguration/build" in runs["prod"]["error"]
    [dev] = make_client(sandbox_url, account="123456789012").list_infrastructure_configurations()[
        "infrastructureConfigurationSummaryList"]
    assert dev["name"] == "build"


def test_a_new_revision_is_applied_without_waiting_for_the_interval(tmp_path: Path, sandbox_url: str) -> None:
    root = manifest_tree(tmp_path / "m", PROJECT, INFRA)
    loop = Loop(["m", "--sandbox", sandbox_url, "--interval", "1h", "--poll-source", "1s"], tmp_path)
    try:
        [first] = loop.wait_runs(1)
        (root / "m.yaml").write_text(INFRA + "---\n" + infra("second"))
        second = loop.wait_runs(2)[1]
        assert second["revision"] != first["revision"] and second["applied"] == "1"
    finally:
        stop_process(loop.proc)


def _reconciler(root: Path, url: str, clock: list[float], **settings: Any) -> Any:
    from imagesync.aws import ConnectOptions, Connector
    from imagesync.reconcile import DirectorySource, Reconciler, Settings

    connector = Connector(ConnectOptions(sandbox=url))
    return connector, Reconciler(DirectorySource(str(root)), connector, Settings(**settings), clock=lambda: clock[0])


def test_removed_targets_and_unreadable_sources_never_make_the_loop_spin(tmp_path: Path, sandbox_url: str) -> None:
    two = PROJECT + "  - name: prod\n    region: us-east-1\n    account: '210987654321'\n"
    root = manifest_tree(tmp_path / "m", two, INFRA)
    clock = [1000.0]
    connector, loop = _reconciler(root, sandbox_url, clock, interval=3600, poll=5)
    with connector:
        assert loop.ready()[0] is False  # no run yet
        assert set(loop.run_once().results) == {"dev", "prod"}
        assert loop.next_wait() == 5 and loop.ready() == (True, "ok")
        (root / "imagesync.yaml").write_text(PROJECT)  # prod leaves the project
        clock[0] += 7200  # both were due long ago
        assert set(loop.run_once().results) == {"dev"}
        assert set(loop.targets) == {"dev"} and loop.next_wait() == 5
        # Manifests that stop loading: no target can run, so the wait is the poll, however overdue they are.
        (root / "m.yaml").write_text("kind: [")
        clock[0] += 7200
        assert loop.run_once().results == {"(manifests)": "invalid"}
        assert loop.next_wait() == 5 and loop.ready()[0] is False
        # A source that cannot be read at all: its own backoff, from a tenth of the interval (30 s at most).
        root.rename(tmp_path / "gone")
        clock[0] += 7200
        assert loop.run_once().results == {"(manifests)": "failure"}
        assert 30 <= loop.next_wait() <= 33
        assert loop._backoff(10_000) <= 3600 * 1.1  # no overflow after days of failures


def test_readiness_waits_for_a_first_read_of_the_manifests(tmp_path: Path, sandbox_url: str) -> None:
    clock = [0.0]
    connector, loop = _reconciler(tmp_path / "missing", sandbox_url, clock, interval=60)
    with connector:
        assert loop.run_once().results == {"(manifests)": "failure"}
        ready, why = loop.ready()
        assert ready is False and "not been read" in why


def test_git_credentials_never_reach_a_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imagesync.errors import UserError
    from imagesync.reconcile import GitSource

    monkeypatch.setenv("TOKEN", "s3cr3t/+token")
    source = GitSource("https://oauth2:${TOKEN}@git.example.com/org/repo.git", "main", "", str(tmp_path))
    url, env = source.command()
    assert url == "https://git.example.com/org/repo.git" and "s3cr3t" not in url
    assert "s3cr3t" not in str(source.checkout) and "TOKEN" not in source.describe()
    # The helper the environment configures answers git's own credential request, and only it does.
    asked = subprocess.run(
        ["git", "credential", "fill"], input="protocol=https\nhost=git.example.com\n\n", capture_output=True,
        text=True, env={**os.environ, **env, "GIT_TERMINAL_PROMPT": "0"}, check=True,
    )
    assert "username=oauth2\n" in asked.stdout and "password=s3cr3t/+token\n" in asked.stdout
    with pytest.raises(UserError, match="never starts with '-'"):
        GitSource("https://git.example.com/r.git", "--upload-pack=touch pwned", "", str(tmp_path))


def test_a_directorys_revision_reads_nothing_outside_it(tmp_path: Path) -> None:
    from imagesync.reconcile import DirectorySource

    root = manifest_tree(tmp_path / "m", PROJECT, INFRA)
    outside = tmp_path / "secret.txt"
    outside.write_text("one")
    (root / "link.yaml").symlink_to(outside)
    (root / "elsewhere").symlink_to(tmp_path, target_is_directory=True)
    source = DirectorySource(str(root))
    before = source.refresh()[1]
    outside.write_text("two")
    assert source.refresh()[1] == before
    (root / "m.yaml").write_text(INFRA + "# edited\n")
    assert source.refresh()[1] != before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0s"], "--interval: expected a duration from 1s to 30d"),
        (["--interval", "soon"], "--interval: expected a duration"),
        (["--listen", "8080"], "--listen: expected HOST:PORT"),
        (["--listen", "127.0.0.1:99999"], "expected a port number"),
        (["--git", "https://example.com/r.git", "--ref", "--upload-pack=x"], "--ref"),
        (["--shard", "3/3"], "--shard: expected INDEX/COUNT"),
    ],
)
def test_bad_reconcile_flags_exit_1_with_the_flag_named(tmp_path: Path, args: list[str], message: str) -> None:
    done = run_imagesync(["reconcile", "m", "--sandbox", str(tmp_path / "sb.json"), "--once", *args], cwd=tmp_path)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "sb.json").exists()


def test_an_unset_variable_in_the_git_url_is_invalid_and_names_it(tmp_path: Path, sandbox_url: str) -> None:
    done = run_imagesync(["reconcile", "--git", "https://x:${NOT_SET_ANYWHERE}@example.com/r.git", "--git-cache",
                          str(tmp_path / "c"), "--sandbox", sandbox_url, "--once"], cwd=tmp_path)
    assert done.returncode == 1 and "result=invalid" in done.stdout
    assert "${NOT_SET_ANYWHERE}, which is not set in the environment" in done.stdout
    assert writes(sandbox_url) == 0
