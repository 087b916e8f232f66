"""The apply confirmation prompt shows exactly `render.text.render_plan` of the plan it applies.

Runs `python -m imagesync apply` on a pseudo-terminal against a sandbox server, compares what it
printed on stdout before asking (the question itself goes to stderr, as `input` does on a terminal)
with the renderer's output for the same plan, then answers no.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from imagesync import api
from imagesync.aws import ConnectOptions, Connector
from imagesync.planner import PlanOptions
from imagesync.render import text
from imagesync.sandbox import running

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"


def _read_until(fd: int, marker: bytes, limit: float = 120.0) -> bytes:
    data = b""
    deadline = time.monotonic() + limit  # a bound on a hung child, not a timing assertion
    while marker not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_the_apply_prompt_is_the_rendered_plan(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, manifests)
    with running() as sb:
        with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
            plan, _ = api.plan(manifests, connector, PlanOptions())
        assert plan.has_changes
        expected = text.render_plan(plan, color=True)
        main, child = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "imagesync", "apply", str(manifests), "--sandbox", sb.endpoint_url],
            stdin=child,
            stdout=child,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        os.close(child)
        try:
            last = expected.splitlines()[-1].encode() + b"\r\n"
            shown = _read_until(main, last)
            os.write(main, b"no\n")
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            os.close(main)
        with Connector(ConnectOptions(sandbox=sb.endpoint_url)) as connector:
            again, _ = api.plan(manifests, connector, PlanOptions())
    before = shown.decode("utf-8").replace("\r\n", "\n")
    assert before == expected
    assert "\x1b[" in before  # on a terminal the prompt is coloured
    assert proc.returncode == 0
    assert again.summary() == plan.summary()  # answered no: nothing was applied
