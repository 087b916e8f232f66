"""Helpers shared by the test suites: constants and a real boto3 client for a sandbox.

Importable as `support` (pytest puts tests/ on sys.path); conftest.py files are not imported
by name, since several directories have one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config

from imagesync.aws import ConnectOptions, Connector
from imagesync.desired import Target
from imagesync.sandbox import RunningSandbox
from imagesync.sandbox.model import service_model

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The installed model's page-size limit (25 in botocore 1.43, 100 in 1.44): tests follow the model.
MAX_RESULTS: int = service_model().operation_model("ListComponents").input_shape.members["maxResults"].metadata["max"]

SIMPLE_DOCUMENT = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: SayHello
        action: ExecuteBash
        inputs:
          commands:
            - echo "hello ${HOME}"
"""


def run_imagesync(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: `python -m imagesync ARGS` in `cwd`, no stdin, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def make_client(endpoint_url: str, region: str = REGION, account: str = "testing", **config: Any) -> Any:
    """A real boto3 Image Builder client talking HTTP to a sandbox (a 12-digit `account` signs as
    that account; anything else gets the sandbox's default one)."""
    return boto3.client(
        "imagebuilder",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=account,
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


def manifest_tree(root: Path, project: str, *docs: str) -> Path:
    """A manifest directory: `imagesync.yaml` holding `project`, and `docs` in one `m.yaml`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "imagesync.yaml").write_text(project)
    (root / "m.yaml").write_text("---\n".join(docs))
    return root


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line of `proc` ('' at end of file), read on a helper thread so a hung process
    fails the test after `timeout` seconds instead of blocking it."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no stdout line within {timeout} s") from None


T = TypeVar("T")


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 60.0, interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy, and return that. After `timeout` seconds
    fail naming `what` was awaited: the timeout only bounds a hang, no outcome depends on its size.
    `predicate` may itself fail (e.g. when the process it watches has exited) to stop early."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting until {what}")
        time.sleep(interval)


def stop_heartbeats() -> None:
    """Stop the heartbeats of DynamoDB/S3 locks a test took and never released, while moto still
    answers: a beat after the mock ends would go to the real AWS endpoint."""
    from imagesync.lock import _Heartbeat

    for obj in gc.get_objects():
        if isinstance(obj, _Heartbeat):
            obj.stop()


def stop_process(proc: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL after 5 s; close the pipes. Safe on a process that already exited."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def advance_clock(endpoint_url: str, seconds: float) -> dt.datetime:
    """Move a sandbox's clock forward over HTTP (`POST /_sandbox/clock`); its new simulated now."""
    body = json.dumps({"advance": seconds}).encode()
    request = urllib.request.Request(f"{endpoint_url}/_sandbox/clock", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return _moment(json.loads(resp.read())["now"])


def sandbox_now(endpoint_url: str) -> dt.datetime:
    """A sandbox's simulated now, read over HTTP (`GET /_sandbox/clock`)."""
    with urllib.request.urlopen(f"{endpoint_url}/_sandbox/clock", timeout=10) as resp:
        return _moment(json.loads(resp.read())["now"])


def _moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@contextlib.contextmanager
def moto_lock_store(backend: str, name: str = "imagesync-locks") -> Iterator[Any]:
    """moto's DynamoDB table (LockID hash key) or S3 bucket named `name`, for the remote locks;
    the client to read and plant records behind imagesync's back. Heartbeats of locks a test left
    held are stopped before moto goes away."""
    from moto import mock_aws

    with mock_aws():
        if backend == "dynamodb":
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        else:
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=name)
        try:
            yield client
        finally:
            stop_heartbeats()


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """moto's S3 served over HTTP on loopback (moto's ThreadedMotoServer): its endpoint URL. Both
    imagesync (through AWS_ENDPOINT_URL_S3) and a sandbox (through its S3 endpoint) reach it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint_url: str) -> Any:
    """A real boto3 S3 client for a moto endpoint, to plant and read objects behind imagesync's back."""
    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


class HookedConnector(Connector):
    """A sandbox connector whose Image Builder clients carry botocore event handlers."""

    def __init__(self, sb: RunningSandbox, hooks: dict[str, Callable[..., Any]]) -> None:
        super().__init__(ConnectOptions(sandbox=sb.endpoint_url))
        self.hooks = hooks

    def imagebuilder(self, target: Target) -> Any:
        client = super().imagebuilder(target)
        for event, handler in self.hooks.items():
            client.meta.events.register(event, handler)
        return client
