"""`imagesync comment` against a GitLab API server, and plans made by the real CLI in the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from imagesync.render.markdown import marker
from review.forges import FakeGitHub, FakeGitLab
from review.helpers import GITLAB_TOKEN, create, delete, github_env, gitlab_env, plan_of, publish, run_comment

MR = "platform/images!3"
NOTES = "/api/v4/projects/platform%2Fimages/merge_requests/3/notes"
WritePlan = Callable[..., Path]


def test_the_merge_request_comes_from_gitlab_ci_and_its_note_is_kept_up_to_date(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    for i in range(230):  # three pages of 100: the note to update is on the third
        gitlab.add_note(3, f"added {i} commits", system=True) if i % 2 else gitlab.add_note(3, f"comment {i}")
    gitlab.add_note(3, marker("estate", ["prod", "dev"]) + "\nanother target set's plan")
    ours = gitlab.add_note(3, marker("estate", ["prod"]) + "\nan older plan", author=gitlab.user)
    other = gitlab.add_note(3, marker("estate", ["prod", "dev"]) + "\nanother target set's plan")
    env = {
        **gitlab_env(gitlab),
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_PROJECT_PATH": "platform/images",
        "CI_JOB_TOKEN": "job-token-that-cannot-write-notes",
    }
    plan = write_plan(plan_of(publish()))
    done = run_comment([str(plan)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    url = f"https://gitlab.example/platform/images/-/merge_requests/3#note_{ours['id']}"
    assert done.stdout.startswith("updated: ") and url in done.stdout and "platform/images!3" in done.stdout
    assert gitlab.writes == [("PUT", f"{NOTES}/{ours['id']}")]
    assert "Plan: 1 to publish" in ours["body"]
    assert other["body"].endswith("another target set's plan")
    assert gitlab.calls.count(("GET", NOTES)) == 3

    done = run_comment([str(plan)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("unchanged") and len(gitlab.writes) == 1


def test_a_first_note_is_created_and_labels_are_set_through_the_merge_request(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    gitlab.labels[3] = ["backend", "imagesync:changes"]
    plan = write_plan(plan_of(publish(), delete()))
    done = run_comment([str(plan), "--gitlab", MR, "--labels"], gitlab_env(gitlab), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("created: ") and "label imagesync:deletes" in done.stdout
    [note] = gitlab.notes_on(3)
    assert note["body"].splitlines()[0] == marker("estate", ["prod"])
    assert gitlab.labels[3] == ["backend", "imagesync:deletes"]
    mr = "/api/v4/projects/platform%2Fimages/merge_requests/3"
    assert gitlab.writes == [("POST", NOTES), ("PUT", mr)]

    done = run_comment([str(write_plan(plan_of(create())))], {**gitlab_env(gitlab), "CI_MERGE_REQUEST_IID": "3",
                                                               "CI_PROJECT_PATH": "platform/images"}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("updated: ")
    assert gitlab.labels[3] == ["backend", "imagesync:deletes"]  # no --labels: left as they were


def test_without_gitlab_token_the_job_token_is_not_used(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    env = {"CI_API_V4_URL": gitlab.api_url, "CI_JOB_TOKEN": "job-token", "CI_MERGE_REQUEST_IID": "3",
           "CI_PROJECT_PATH": "platform/images"}
    done = run_comment([str(write_plan(plan_of(publish())))], env, tmp_path)
    assert done.returncode == 1
    assert "GITLAB_TOKEN is not set" in done.stderr and "CI_JOB_TOKEN" in done.stderr
    assert gitlab.calls == []


def test_a_gitlab_pipeline_that_is_not_for_a_merge_request_says_so(write_plan: WritePlan, tmp_path: Path) -> None:
    env = {"GITLAB_CI": "true", "GITLAB_TOKEN": GITLAB_TOKEN, "CI_PROJECT_PATH": "platform/images"}
    done = run_comment([str(write_plan(plan_of(publish())))], env, tmp_path)
    assert done.returncode == 1
    assert "not for a merge request" in done.stderr


def test_minimize_outdated_is_refused_on_gitlab_before_any_write(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    done = run_comment([str(write_plan(plan_of(publish()))), "--gitlab", MR, "--minimize-outdated"],
                       gitlab_env(gitlab), tmp_path)
    assert done.returncode == 1
    assert "--minimize-outdated is for GitHub" in done.stderr
    assert gitlab.writes == []


def _plan_in_sandbox(root: Path) -> subprocess.CompletedProcess[str]:
    """`imagesync plan manifests --sandbox state.json --out plan.json`, with no other AWS endpoint reachable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_CONFIG_FILE": str(root / "none"),
                "AWS_SHARED_CREDENTIALS_FILE": str(root / "none")})
    return subprocess.run(
        [sys.executable, "-m", "imagesync", "plan", "manifests", "--sandbox", "state.json", "--out", "plan.json"],
        cwd=root, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180,
    )


def test_a_failed_plan_from_the_cli_is_commented_then_replaced_by_the_fixed_plan(
    github: FakeGitHub, tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "imagesync.yaml").write_text("project: iso\ntargets:\n  - name: solo\n    region: eu-west-1\n")
    (manifests / "m.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large], instanceTypes: [m7i.xlarge]}\n"
    )
    planned = _plan_in_sandbox(tmp_path)
    assert planned.returncode == 1
    assert json.loads((tmp_path / "plan.json").read_text())["failure"]
    done = run_comment(["plan.json", "--github", "acme/images#12"], github_env(github), tmp_path)
    assert done.returncode == 0, done.stderr
    [posted] = github.comments_on(12)
    assert posted["body"].splitlines()[0] == marker("iso", ["solo"])
    assert "failed" in posted["body"] and "m.yaml" in posted["body"]

    (manifests / "m.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
    )
    planned = _plan_in_sandbox(tmp_path)
    assert planned.returncode == 0, planned.stderr
    done = run_comment(["plan.json", "--github", "acme/images#12"], github_env(github), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("updated: ")
    assert [c["id"] for c in github.comments_on(12)] == [posted["id"]]
    assert "failed" not in posted["body"] and "1 to create" in posted["body"]
