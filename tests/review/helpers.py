"""Helpers for the `imagesync comment` tests: plans to post, the CLI as a subprocess, tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from imagesync.plan_model import CREATE, DELETE, NO_OP, PUBLISH, Plan, ResourceChange, TargetPlan, VersionChange
from review.forges import FakeGitHub, FakeGitLab

# Distinctive, so that a leak anywhere in the output is found by a plain substring search.
GITHUB_TOKEN = "ghp_T0kenThatMustNeverBePrinted4f9c2a7e"
GITLAB_TOKEN = "glpat-An0therT0kenNeverPrinted-81b3d"

# What a CI runner or a developer's shell may set, which would point `comment` somewhere else.
_HOST_VARIABLES = ("GITHUB_", "GITLAB_", "CI_", "RUNNER_")
_PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_comment(args: list[str], env: dict[str, str], cwd: Path) -> Run:
    """`imagesync comment ARGS` as a user runs it, with only the CI/forge variables given in `env`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_HOST_VARIABLES) and k not in ("CI", "GITLAB_CI", "GITHUB_ACTIONS")
        and k.lower() not in _PROXIES
    }
    done = subprocess.run(
        [sys.executable, "-m", "imagesync", "comment", *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def plan_of(*changes: ResourceChange, project: str = "estate", targets: tuple[str, ...] = ("prod",)) -> Plan:
    by_target = {t: tuple(c for c in changes if c.target == t) for t in targets}
    return Plan(
        targets=tuple(TargetPlan(target=t, region="eu-west-1", account="111111111111", changes=by_target[t])
                      for t in targets),
        imagesync_version="0.1.0",
        manifest_digest="sha256:feed",
        manifest_root="manifests",
        options={"targets": list(targets)},
        project=project,
    )


def publish(target: str = "prod", name: str = "harden", to: str = "1.0.1") -> ResourceChange:
    return ResourceChange(
        target=target, kind="Component", name=name, action=PUBLISH,
        before={"spec": {"version": "1.0.0"}}, after={"spec": {"version": to}},
        version=VersionChange("1.0.0", to, "document changed"),
    )


def create(target: str = "prod", name: str = "build") -> ResourceChange:
    return ResourceChange(target=target, kind="InfrastructureConfiguration", name=name, action=CREATE,
                          after={"spec": {"instanceTypes": ["m7i.large"]}}, reason="new resource")


def delete(target: str = "prod", name: str = "old") -> ResourceChange:
    return ResourceChange(target=target, kind="DistributionConfiguration", name=name, action=DELETE,
                          before={"spec": {}}, reason="no longer in the manifests (--prune)")


def unchanged(target: str = "prod", name: str = "agent") -> ResourceChange:
    return ResourceChange(target=target, kind="Component", name=name, action=NO_OP)


def failed_plan(message: str, project: str = "estate", targets: tuple[str, ...] = ("prod",)) -> Plan:
    return Plan.failed(message, project=project, imagesync_version="0.1.0", manifest_root="manifests",
                       options={"targets": list(targets)})


def github_env(server: FakeGitHub) -> dict[str, str]:
    return {"GITHUB_TOKEN": GITHUB_TOKEN, "GITHUB_API_URL": server.api_url}


def gitlab_env(server: FakeGitLab) -> dict[str, str]:
    return {"GITLAB_TOKEN": GITLAB_TOKEN, "CI_API_V4_URL": server.api_url}
