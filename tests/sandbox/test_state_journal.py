"""The state file's journal: acknowledged writes survive SIGKILL, a torn tail is ignored, compaction
keeps content, old single-file states load; and the indexed tables agree with a scan of the table.

Crash tests run `python -m imagesync sandbox serve --state F` as a real subprocess and kill it
with SIGKILL, so nothing gets to run at exit.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from imagesync.sandbox import running, store
from imagesync.sandbox.index import Table
from imagesync.sandbox.store import Store
from support import SIMPLE_DOCUMENT, make_client, read_line, stop_process

SERVE = [sys.executable, "-m", "imagesync", "sandbox", "serve"]
ONE_ATTEMPT = {"total_max_attempts": 1, "mode": "standard"}
PREFIX = "arn:aws:imagebuilder:us-east-1:123456789012:"


@contextmanager
def serve(state: Path) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    proc = subprocess.Popen([*SERVE, "--state", str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = read_line(proc, 20.0)
        match = re.fullmatch(r"endpoint=(http://127\.0\.0\.1:\d+)\n", line)
        assert match, f"first stdout line {line!r}"
        yield proc, make_client(match.group(1), retries=ONE_ATTEMPT)
    finally:
        stop_process(proc)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def create(client: Any, name: str, version: str = "1.0.0") -> str:
    return str(client.create_component(name=name, semanticVersion=version, platform="Linux",
                                       data=SIMPLE_DOCUMENT)["componentBuildVersionArn"])


def names(client: Any) -> list[str]:
    pages = client.get_paginator("list_components").paginate()
    return sorted(row["name"] for page in pages for row in page["componentVersionList"])


def journal(state: Path) -> Path:
    return state.with_name(state.name + ".journal")


def test_a_sigkill_after_acknowledged_writes_loses_none_of_them(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve(state) as (proc, client):
        arns = [create(client, f"c-{i:02d}") for i in range(12)]
        client.tag_resource(resourceArn=arns[3], tags={"team": "web"})  # an in-place change
        client.delete_component(componentBuildVersionArn=arns[5])
        infra = client.create_infrastructure_configuration(name="infra", instanceProfileName="p")
        kill(proc)
    assert journal(state).stat().st_size > 0  # the writes were journaled, nothing compacted them
    with serve(state) as (proc, client):
        assert names(client) == [f"c-{i:02d}" for i in range(12) if i != 5]
        assert client.get_component(componentBuildVersionArn=arns[3])["component"]["tags"] == {"team": "web"}
        arn = infra["infrastructureConfigurationArn"]
        assert client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)[
            "infrastructureConfiguration"]["instanceProfileName"] == "p"
        # The content digest came back too: the same create is still a duplicate.
        with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
            create(client, "c-00")
        kill(proc)


def test_a_torn_last_journal_line_is_ignored_and_cut_off(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve(state) as (proc, client):
        for i in range(5):
            create(client, f"t-{i}")
        kill(proc)
    whole = journal(state).stat().st_size
    with journal(state).open("ab") as fh:  # a write that died half way through its line
        fh.write(b'0badc0de [["set",["resources","components"],"' + PREFIX.encode() + b"component/torn")
    with serve(state) as (proc, client):
        assert names(client) == [f"t-{i}" for i in range(5)]
        assert journal(state).stat().st_size == whole  # cut off, so the next line starts clean
        create(client, "after")
        kill(proc)
    with serve(state) as (_, client):
        assert names(client) == ["after", *(f"t-{i}" for i in range(5))]


def test_a_last_line_whose_checksum_does_not_match_is_ignored(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve(state) as (proc, client):
        create(client, "kept")
        create(client, "lost")
        kill(proc)
    lines = journal(state).read_bytes().splitlines(keepends=True)
    last = lines[-1]
    journal(state).write_bytes(b"".join(lines[:-1]) + last.replace(b"lost", b"lose"))
    with serve(state) as (_, client):
        assert names(client) == ["kept"]


def test_a_damaged_line_before_the_last_is_refused_at_startup(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve(state) as (proc, client):
        for name in ("one", "two", "three"):
            create(client, name)
        kill(proc)
    lines = journal(state).read_bytes().splitlines(keepends=True)
    journal(state).write_bytes(b"".join([lines[0], b"00000000 []\n", *lines[1:]]))
    proc = subprocess.Popen([*SERVE, "--state", str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert not read_line(proc, 20.0).startswith("endpoint=")
        assert proc.wait(timeout=10) != 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "damaged at line 2" in stderr and "Traceback" not in stderr
    finally:
        stop_process(proc)


def test_a_clean_stop_compacts_the_journal_into_the_snapshot(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with running(str(state)) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        for i in range(6):
            create(client, f"s-{i}")
        assert journal(state).stat().st_size > 0
    assert not journal(state).exists()
    snapshot = json.loads(state.read_text())
    assert sorted(r["name"] for r in snapshot["resources"]["components"].values()) == [f"s-{i}" for i in range(6)]


def test_compaction_keeps_content_and_bounds_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "COMPACT_BYTES", 2000)
    path = tmp_path / "state.json"
    one = Store(path)
    sizes = []
    for i in range(40):
        with one.transaction(write=True) as state:
            components = state["resources"].setdefault("components", {})
            components[f"{PREFIX}component/x/1.0.{i}/1"] = {"n": i, "pad": "p" * 80}
            state["tokens"][f"t{i}"] = {"i": i}
            if i % 3 == 0:
                state["policies"].pop(f"{PREFIX}component/x/1.0.{i - 3}/1", None)
                state["policies"][f"{PREFIX}component/x/1.0.{i}/1"] = "{}"
        size = journal(path).stat().st_size if journal(path).exists() else 0
        # Never past the bound (this size or the snapshot's) by more than the line that crossed it.
        assert size <= max(2000, path.stat().st_size) + 400
        sizes.append(size)
    assert sizes.count(0) > 2  # compacted more than once
    with one.transaction(write=False) as state:
        expected = json.loads(json.dumps(state, sort_keys=True))
    with Store(path).transaction(write=False) as state:  # snapshot plus journal, read afresh
        assert json.loads(json.dumps(state, sort_keys=True)) == expected
    one.close()
    assert not journal(path).exists()
    assert json.loads(path.read_text()) == expected


def test_a_state_file_without_journal_still_loads(tmp_path: Path) -> None:
    """A state file as the sandbox wrote it before it kept a journal: one JSON document."""
    arn = f"{PREFIX}infrastructure-configuration/old"
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"format": 1, "tokens": {}, "policies": {}, "resources": {
        "infrastructureConfigurations": {arn: {"arn": arn, "name": "old", "instanceProfileName": "p", "tags": {}}},
    }}))
    with running(str(state)) as served:
        client = make_client(served.endpoint_url, retries=ONE_ATTEMPT)
        rows = client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]
        assert [r["arn"] for r in rows] == [arn]


def test_two_processes_see_each_others_journaled_writes(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serve(state) as (_, first), serve(state) as (_, second):
        for i in range(6):
            create(first if i % 2 else second, f"p-{i}")
        assert names(first) == names(second) == [f"p-{i}" for i in range(6)]


# --- the indexes ------------------------------------------------------------------------------


def test_table_indexes_agree_with_a_scan_through_inserts_replaces_and_deletes() -> None:
    rng = random.Random(7)
    table = Table()
    plain: dict[str, Any] = {}
    scopes = [PREFIX, "arn:aws:imagebuilder:eu-west-1:123456789012:", "arn:aws:imagebuilder:us-east-1:210987654321:"]
    for step in range(3000):
        scope, name = rng.choice(scopes), rng.choice(["a", "b", "c"])
        version = f"{rng.randint(0, 2)}.{rng.randint(0, 2)}.{rng.choice(['0', '1', '01'])}"
        arn = f"{scope}component/{name}/{version}/{rng.randint(1, 3)}"
        if rng.random() < 0.3 and arn in table:
            del table[arn], plain[arn]
        elif rng.random() < 0.1:
            assert table.pop(arn, None) == plain.pop(arn, None)
        else:
            table[arn] = plain[arn] = {"arn": arn, "step": step}
        assert list(table) == list(plain)  # table order kept
        base = f"{scope}component/{name}"
        assert table.scope(scope) == [r for a, r in plain.items() if a.startswith(scope)]
        assert table.family(base) == [r for a, r in plain.items() if a.startswith(base + "/")]
        version_arn = f"{base}/{version}"
        assert table.builds(version_arn) == [r for a, r in plain.items() if a.startswith(version_arn + "/")]
        pattern = [rng.randint(0, 2), None, None][: rng.randint(0, 3)]
        pattern += [None] * (3 - len(pattern))
        assert table.newest(base, pattern) == _newest_by_scan(plain, base, pattern)


def _newest_by_scan(plain: dict[str, Any], base: str, pattern: list[int | None]) -> Any:
    def key(arn: str) -> tuple[tuple[int, ...], int]:
        version, build = arn[len(base) + 1:].split("/")
        return tuple(int(n) for n in version.split(".")), int(build)

    hits = [r for a, r in plain.items() if a.startswith(base + "/")
            and all(p is None or p == v for p, v in zip(pattern, key(a)[0], strict=True))]
    return max(hits, key=lambda r: key(r["arn"])) if hits else None
