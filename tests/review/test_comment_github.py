"""`imagesync comment` against a GitHub API server: one sticky comment, found again, rewritten only
when it changed, retried through failures and rate limits, and never leaking the token."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from imagesync.plan_model import Plan
from imagesync.render.markdown import marker
from imagesync.review.client import ATTEMPTS
from review.forges import FakeGitHub
from review.helpers import (
    GITHUB_TOKEN,
    create,
    delete,
    failed_plan,
    github_env,
    plan_of,
    publish,
    run_comment,
    unchanged,
)

PR = "acme/images#12"
WritePlan = Callable[..., Path]


def comment(server: FakeGitHub, plan: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    done = run_comment([str(plan), "--github", PR, *extra], github_env(server), tmp_path)
    return done.returncode, done.stdout, done.stderr


def test_first_run_creates_a_changed_plan_updates_it_and_an_unchanged_one_writes_nothing(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    first = write_plan(plan_of(publish()), "first.json")
    code, out, err = comment(github, first, tmp_path)
    assert code == 0, err
    [posted] = github.comments_on(12)
    assert out.startswith("created: ") and posted["html_url"] in out
    assert posted["body"].splitlines()[0] == marker("estate", ["prod"])
    assert github.writes == [("POST", "/repos/acme/images/issues/12/comments")]

    second = write_plan(plan_of(publish(), create()), "second.json")
    code, out, err = comment(github, second, tmp_path)
    assert code == 0, err
    assert out.startswith("updated: ") and posted["html_url"] in out
    assert [c["id"] for c in github.comments_on(12)] == [posted["id"]]  # still one comment
    assert "1 to create" in github.comments[posted["id"]]["body"]
    assert github.writes[1:] == [("PATCH", f"/repos/acme/images/issues/comments/{posted['id']}")]

    before = len(github.writes)
    code, out, err = comment(github, second, tmp_path)
    assert code == 0, err
    assert out.startswith("unchanged") and posted["html_url"] in out
    assert len(github.writes) == before  # no write at all


def test_comments_of_other_projects_target_sets_and_people_are_never_touched(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    ours = marker("estate", ["prod", "staging"])
    others = {
        "subset": github.add_comment(12, marker("estate", ["prod"]) + "\nplan for prod only", "imagesync[bot]"),
        "superset": github.add_comment(12, marker("estate", ["prod", "staging", "dev"]) + "\n...", "imagesync[bot]"),
        "project": github.add_comment(12, marker("estate-2", ["prod", "staging"]) + "\n...", "imagesync[bot]"),
        "prefix": github.add_comment(12, marker("estat", ["prod", "staging"]) + "\n...", "imagesync[bot]"),
        "other bot": github.add_comment(12, "<!-- imagesync:plan -->\nanother tool's plan", "other[bot]"),
        "quote": github.add_comment(12, f"> {ours}\n> Plan: 1 to publish\n\nLooks good to me", "reviewer"),
        "elsewhere": github.add_comment(12, f"What does `{ours}` mean?", "reviewer"),
    }
    bodies = {k: c["body"] for k, c in others.items()}
    plan = write_plan(plan_of(publish("prod"), publish("staging"), targets=("prod", "staging")))
    code, out, err = comment(github, plan, tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert {k: c["body"] for k, c in others.items()} == bodies
    assert [m for m, _ in github.writes] == ["POST"]
    new = github.comments_on(12)[-1]
    assert new["body"].splitlines()[0] == ours


def test_a_comment_on_the_third_page_is_found_and_updated(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    for i in range(230):
        github.add_comment(12, f"chatter {i}")
    ours = github.add_comment(12, marker("estate", ["prod"]) + "\nan older plan", "github-actions[bot]")
    for i in range(5):
        github.add_comment(12, f"more chatter {i}")
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    assert out.startswith("updated: ") and ours["html_url"] in out
    assert github.writes == [("PATCH", f"/repos/acme/images/issues/comments/{ours['id']}")]
    lists = [c for c in github.calls if c == ("GET", "/repos/acme/images/issues/12/comments")]
    assert len(lists) == 3  # pages 1, 2 and 3 of 100
    assert ours["body"] != "an older plan" and "Plan: 1 to publish" in ours["body"]


def test_5xx_answers_are_retried_until_one_succeeds(github: FakeGitHub, write_plan: WritePlan, tmp_path: Path) -> None:
    github.fail("GET", r"/repos/acme/images/issues/12/comments", 500, times=1)
    github.fail("POST", r"/repos/acme/images/issues/12/comments", 502, times=2)
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert github.calls.count(("POST", "/repos/acme/images/issues/12/comments")) == 3
    assert len(github.comments_on(12)) == 1


def test_a_secondary_rate_limit_is_waited_out_as_retry_after_asks(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    limited = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}
    github.fail("POST", r"/repos/acme/images/issues/12/comments", 403, times=1, headers={"Retry-After": "1"},
                body=limited)
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert github.calls.count(("POST", "/repos/acme/images/issues/12/comments")) == 2
    assert len(github.comments_on(12)) == 1


def test_a_plain_403_is_not_retried(github: FakeGitHub, write_plan: WritePlan, tmp_path: Path) -> None:
    github.fail("POST", r"/repos/acme/images/issues/12/comments", 403, times=5,
                body={"message": "Resource not accessible by integration"})
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 1
    assert "403 Forbidden: Resource not accessible by integration" in err
    assert github.calls.count(("POST", "/repos/acme/images/issues/12/comments")) == 1


def test_a_post_that_keeps_failing_exits_1_naming_the_status(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", r"/repos/acme/images/issues/12/comments", 503, times=100)
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 1
    assert out == ""
    assert "error: acme/images#12: the plan comment was not posted" in err
    assert "503 Service Unavailable" in err and f"after {ATTEMPTS} attempts" in err
    assert "Traceback" not in err
    assert github.calls.count(("POST", "/repos/acme/images/issues/12/comments")) == ATTEMPTS
    assert github.comments_on(12) == []


def test_a_body_over_githubs_limit_is_refused_with_422_and_the_default_limit_fits(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    plan = write_plan(failed_plan("x" * 80_000))  # fits 100,000 characters whole: over GitHub's limit
    code, _, err = comment(github, plan, tmp_path, "--max-chars", "100000")
    assert code == 1
    assert "422 Unprocessable Entity" in err and "too long" in err
    assert github.calls.count(("POST", "/repos/acme/images/issues/12/comments")) == 1  # a 422 is not retried
    code, out, err = comment(github, plan, tmp_path)
    assert code == 0, err
    [posted] = github.comments_on(12)
    assert len(posted["body"]) <= 65_536


def test_the_token_never_appears_in_the_output(github: FakeGitHub, write_plan: WritePlan, tmp_path: Path) -> None:
    plan = write_plan(plan_of(publish()))
    github.fail("GET", r".*", 500, times=100, echo_auth=True)
    for verbose in ([], ["-v"]):
        done = run_comment([str(plan), "--github", PR, *verbose], github_env(github), tmp_path)
        assert done.returncode == 1
        assert "upstream failed for request with credentials" in done.stderr  # the body was shown...
        assert GITHUB_TOKEN not in done.output  # ...with the token scrubbed
        assert GITHUB_TOKEN[4:20] not in done.output


def test_a_wrong_token_is_reported(github: FakeGitHub, write_plan: WritePlan, tmp_path: Path) -> None:
    env = {**github_env(github), "GITHUB_TOKEN": "ghp_notTheRightOne"}
    done = run_comment([str(write_plan(plan_of(publish()))), "--github", PR], env, tmp_path)
    assert done.returncode == 1
    assert "401 Unauthorized: Bad credentials" in done.stderr
    assert "ghp_notTheRightOne" not in done.output


def test_a_missing_token_is_an_error_before_any_call(github: FakeGitHub, write_plan: WritePlan, tmp_path: Path) -> None:
    done = run_comment([str(write_plan(plan_of(publish()))), "--github", PR], {"GITHUB_API_URL": github.api_url},
                       tmp_path)
    assert done.returncode == 1
    assert "GITHUB_TOKEN is not set" in done.stderr
    assert github.calls == []


def test_the_pull_request_comes_from_the_github_actions_event(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {"number": 7}}))
    env = {**github_env(github), "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/images",
           "GITHUB_EVENT_NAME": "pull_request", "GITHUB_ACTIONS": "true"}
    done = run_comment([str(write_plan(plan_of(publish())))], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "acme/images#7" in done.stdout
    assert len(github.comments_on(7)) == 1

    event.write_text(json.dumps({"ref": "refs/heads/main", "commits": []}))
    pushed = run_comment([str(write_plan(plan_of(publish())))], {**env, "GITHUB_EVENT_NAME": "push"}, tmp_path)
    assert pushed.returncode == 1
    assert "event (push) is not about a pull request" in pushed.stderr


def test_without_flags_or_ci_there_is_nothing_to_comment_on(write_plan: WritePlan, tmp_path: Path) -> None:
    done = run_comment([str(write_plan(plan_of(publish())))], {"GITHUB_TOKEN": GITHUB_TOKEN}, tmp_path)
    assert done.returncode == 1
    assert "no pull or merge request to comment on" in done.stderr
    assert "Traceback" not in done.stderr


def test_minimize_outdated_posts_anew_and_minimizes_only_this_projects_and_target_sets_comments(
    write_plan: WritePlan, tmp_path: Path
) -> None:
    # Laid out as GitHub Enterprise Server: REST under /api/v3, GraphQL at /api/graphql.
    with FakeGitHub(GITHUB_TOKEN, prefix="/api/v3") as server:
        assert isinstance(server, FakeGitHub)
        mark = marker("estate", ["prod"])
        old = [server.add_comment(12, f"{mark}\nplan {i}", "github-actions[bot]") for i in range(2)]
        spared = [
            server.add_comment(12, marker("estate", ["prod", "dev"]) + "\nplan", "github-actions[bot]"),
            server.add_comment(12, marker("other", ["prod"]) + "\nplan", "github-actions[bot]"),
            server.add_comment(12, "LGTM", "reviewer"),
        ]
        plan = write_plan(plan_of(publish()))
        code, out, err = comment(server, plan, tmp_path, "--minimize-outdated")
        assert code == 0, err
        assert out.startswith("created: ") and "minimized 2 outdated" in out
        assert server.minimized == {c["node_id"] for c in old}
        assert not server.minimized & {c["node_id"] for c in spared}
        assert len(server.comments_on(12)) == 6
        assert ("POST", "/api/graphql") in server.calls

        before = len(server.writes)
        code, out, err = comment(server, plan, tmp_path, "--minimize-outdated")
        assert code == 0, err
        assert out.startswith("unchanged")
        assert len(server.writes) == before


def test_labels_set_one_of_imagesyncs_and_leave_the_others(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.labels[12] = ["needs-review", "imagesync:no-changes", "imagesync-other"]
    cases: list[tuple[Plan, str]] = [
        (plan_of(publish(), delete()), "imagesync:deletes"),
        (plan_of(publish()), "imagesync:changes"),
        (plan_of(unchanged()), "imagesync:no-changes"),
    ]
    for plan, label in cases:
        code, out, err = comment(github, write_plan(plan), tmp_path, "--labels")
        assert code == 0, err
        assert f"label {label}" in out and "(unchanged)" not in out
        assert github.labels[12] == ["needs-review", "imagesync-other", label]
    before = len(github.writes)
    code, out, err = comment(github, write_plan(cases[-1][0]), tmp_path, "--labels")
    assert code == 0, err
    assert "label imagesync:no-changes (unchanged)" in out
    assert len(github.writes) == before


def test_a_failed_plan_is_commented_and_takes_imagesyncs_labels_off(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.labels[12] = ["imagesync:changes", "keep-me"]
    plan = write_plan(failed_plan("manifests/m.yaml:3:1: error: duplicate key 'name'"))
    code, out, err = comment(github, plan, tmp_path, "--labels")
    assert code == 0, err
    [posted] = github.comments_on(12)
    assert "failed" in posted["body"] and "duplicate key 'name'" in posted["body"]
    assert posted["body"].splitlines()[0] == marker("estate", ["prod"])
    assert github.labels[12] == ["keep-me"]
    assert "label none (the plan failed)" in out


def test_a_label_failure_after_posting_exits_1_and_says_the_comment_is_there(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", r"/repos/acme/images/issues/12/labels", 403, times=1,
                body={"message": "Resource not accessible by integration"})
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path, "--labels")
    assert code == 1
    assert "the plan comment is created" in err and "setting the labels failed" in err
    assert len(github.comments_on(12)) == 1


def test_bad_plan_files_are_refused_with_where_and_why(github: FakeGitHub, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "format_version": "2",\n  "project": oops\n}\n')
    done = run_comment([str(broken), "--github", PR], github_env(github), tmp_path)
    assert done.returncode == 1
    assert f"{broken}:3:14: not a saved imagesync plan" in done.stderr
    old = tmp_path / "old.json"
    old.write_text('{"format_version": "1", "project": "estate"}')
    done = run_comment([str(old), "--github", PR], github_env(github), tmp_path)
    assert done.returncode == 1
    assert "format_version 2 expected, found '1'" in done.stderr
    done = run_comment([str(tmp_path / "missing.json"), "--github", PR], github_env(github), tmp_path)
    assert done.returncode == 1 and "cannot read plan file" in done.stderr
    assert github.calls == []


def test_a_malformed_pull_request_is_refused(write_plan: WritePlan, tmp_path: Path) -> None:
    done = run_comment([str(write_plan(plan_of(publish()))), "--github", "acme/images/12"],
                       {"GITHUB_TOKEN": GITHUB_TOKEN}, tmp_path)
    assert done.returncode == 1
    assert "expected OWNER/REPO#NUMBER" in done.stderr


def test_a_rate_limit_asking_for_too_long_a_wait_is_given_up_at_once(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", r"/repos/acme/images/issues/12/comments", 429, times=1, headers={"Retry-After": "3600"},
                body={"message": "API rate limit exceeded"})
    code, out, err = comment(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 1
    assert "429 Too Many Requests: API rate limit exceeded" in err and "asks to wait 3600 s" in err
    assert github.calls.count(("POST", "/repos/acme/images/issues/12/comments")) == 1
