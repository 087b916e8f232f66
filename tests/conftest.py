"""Shared fixtures: a sandbox served over HTTP and real boto3 clients pointed at it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from imagesync.sandbox import RunningSandbox, running
from support import REGION, make_client, moto_s3_server, s3_client


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches real AWS: fake credentials, and no profile, endpoint or CI summary from the host."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_IMAGEBUILDER",
        "AWS_ENDPOINT_URL_S3",
        # A CI job's own summary, which `plan` appends to: no test writes the host's.
        "GITHUB_STEP_SUMMARY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _lock_state_home(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """File locks live in $XDG_STATE_HOME: one per test, never the real home; CI unset for the same reason."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """A moto S3 server over HTTP, one per test module."""
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def bucket(moto_url: str) -> str:
    """A new, empty bucket in `moto_url`."""
    name = f"docs-{uuid.uuid4().hex[:12]}"
    s3_client(moto_url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running() as served:
        yield served


@pytest.fixture
def client(sandbox: RunningSandbox) -> Any:
    return make_client(sandbox.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture
def client_factory(sandbox: RunningSandbox) -> Callable[..., Any]:
    def factory(region: str = REGION, **config: Any) -> Any:
        return make_client(sandbox.endpoint_url, region, **config)

    return factory


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures a test records with `record_property("container_image", ...)`, printed after the run
    (also under xdist, where a worker's own output never reaches the terminal)."""
    lines = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "container_image"
    ]
    if lines:
        terminalreporter.write_sep("-", "container image")
        for line in lines:
            terminalreporter.write_line(line)
