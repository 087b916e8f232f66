"""Fixtures for `imagesync comment`: fake GitHub and GitLab servers and saved plans."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagesync.plan_model import Plan
from imagesync.render import json as render_json
from review.forges import FakeGitHub, FakeGitLab
from review.helpers import GITHUB_TOKEN, GITLAB_TOKEN


@pytest.fixture
def write_plan(tmp_path: Path) -> Callable[[Plan, str], Path]:
    """Save a plan exactly as `plan --out` does (the JSON renderer), and return its path."""

    def write(plan: Plan, name: str = "plan.json") -> Path:
        path = tmp_path / name
        path.write_text(render_json.render_plan(plan), encoding="utf-8")
        return path

    return write


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(GITHUB_TOKEN) as server:
        assert isinstance(server, FakeGitHub)
        yield server


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(GITLAB_TOKEN) as server:
        assert isinstance(server, FakeGitLab)
        yield server
