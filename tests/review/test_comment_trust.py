"""`imagesync comment` edits only what its own token wrote, refuses a malformed token without
showing it, never posts a comment twice when an answer is lost, and waits out a secondary rate
limit once."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from imagesync.render.markdown import marker
from imagesync.review.client import ATTEMPTS, Client, ReviewApiError
from review.forges import FakeGitHub, FakeGitLab
from review.helpers import GITHUB_TOKEN, GITLAB_TOKEN, create, github_env, gitlab_env, plan_of, publish, run_comment

PR = "acme/images#12"
MR = "platform/images!3"
COMMENTS = "/repos/acme/images/issues/12/comments"
NOTES = "/api/v4/projects/platform%2Fimages/merge_requests/3/notes"
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
             "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
WritePlan = Callable[..., Path]


def on_github(server: FakeGitHub, plan: Path, tmp_path: Path, *extra: str, **env: str) -> tuple[int, str, str]:
    done = run_comment([str(plan), "--github", PR, *extra], {**github_env(server), **env}, tmp_path)
    return done.returncode, done.stdout, done.stderr


def on_gitlab(server: FakeGitLab, plan: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    done = run_comment([str(plan), "--gitlab", MR, *extra], gitlab_env(server), tmp_path)
    return done.returncode, done.stdout, done.stderr


# --- only the token's own comments ------------------------------------------------------------


def test_an_installation_token_edits_and_minimizes_only_github_actions_bot_comments(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    mark = marker("estate", ["prod"])
    forged = [
        github.add_comment(12, f"{mark}\nPlan: nothing to do, merge away", "mallory"),
        github.add_comment(12, f"{mark}\nPlan: nothing to do", "github-actions"),  # a user, not the bot
        github.add_comment(12, f"{mark}\nPlan: nothing to do", "other-app[bot]"),
    ]
    bodies = [c["body"] for c in forged]
    code, out, err = on_github(github, write_plan(plan_of(publish()), "one.json"), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert github.writes == [("POST", COMMENTS)]
    ours = github.comments_on(12)[-1]
    assert ours["user"] == {"login": "github-actions[bot]", "type": "Bot"}

    code, out, err = on_github(github, write_plan(plan_of(publish(), create()), "two.json"), tmp_path)
    assert code == 0, err
    assert out.startswith("updated: ") and ours["html_url"] in out
    assert github.writes[-1] == ("PATCH", f"/repos/acme/images/issues/comments/{ours['id']}")

    code, out, err = on_github(github, write_plan(plan_of(create()), "three.json"), tmp_path, "--minimize-outdated")
    assert code == 0, err
    assert "minimized 1 outdated" in out
    assert github.minimized == {ours["node_id"]}
    assert [c["body"] for c in forged] == bodies
    assert ("GET", "/user") in github.calls


def test_a_user_token_edits_only_its_users_comments(write_plan: WritePlan, tmp_path: Path) -> None:
    with FakeGitHub(GITHUB_TOKEN, user="ci-robot") as server:
        assert isinstance(server, FakeGitHub)
        mark = marker("estate", ["prod"])
        ours = server.add_comment(12, f"{mark}\nan older plan", "ci-robot")
        bot = server.add_comment(12, f"{mark}\nan older plan", "github-actions[bot]")
        someone = server.add_comment(12, f"{mark}\nan older plan", "mallory")
        code, out, err = on_github(server, write_plan(plan_of(publish())), tmp_path)
        assert code == 0, err
        assert out.startswith("updated: ") and ours["html_url"] in out
        assert server.writes == [("PATCH", f"/repos/acme/images/issues/comments/{ours['id']}")]
        assert bot["body"].endswith("an older plan") and someone["body"].endswith("an older plan")

        code, out, err = on_github(server, write_plan(plan_of(create()), "two.json"), tmp_path, "--minimize-outdated")
        assert code == 0, err
        assert server.minimized == {ours["node_id"]}


def test_imagesync_comment_author_names_the_app_bot_an_installation_token_writes_as(
    write_plan: WritePlan, tmp_path: Path
) -> None:
    with FakeGitHub(GITHUB_TOKEN, app="imagesync-app[bot]") as server:
        assert isinstance(server, FakeGitHub)
        mark = marker("estate", ["prod"])
        ours = server.add_comment(12, f"{mark}\nan older plan", "imagesync-app[bot]")
        actions = server.add_comment(12, f"{mark}\nan older plan", "github-actions[bot]")
        code, out, err = on_github(server, write_plan(plan_of(publish())), tmp_path,
                                   IMAGESYNC_COMMENT_AUTHOR="imagesync-app[bot]")
        assert code == 0, err
        assert out.startswith("updated: ") and ours["html_url"] in out
        assert server.writes == [("PATCH", f"/repos/acme/images/issues/comments/{ours['id']}")]
        assert actions["body"].endswith("an older plan")


def test_a_gitlab_note_with_the_marker_by_someone_else_is_not_edited(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    mark = marker("estate", ["prod"])
    forged = gitlab.add_note(3, f"{mark}\nPlan: nothing to do")
    code, out, err = on_gitlab(gitlab, write_plan(plan_of(publish()), "one.json"), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert forged["body"] == f"{mark}\nPlan: nothing to do"
    ours = gitlab.notes_on(3)[-1]
    assert ours["author"]["id"] == gitlab.user["id"]

    code, out, err = on_gitlab(gitlab, write_plan(plan_of(publish(), create()), "two.json"), tmp_path)
    assert code == 0, err
    assert out.startswith("updated: ")
    assert gitlab.writes == [("POST", NOTES), ("PUT", f"{NOTES}/{ours['id']}")]
    assert forged["body"] == f"{mark}\nPlan: nothing to do"
    assert ("GET", "/api/v4/user") in gitlab.calls


# --- malformed tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [GITHUB_TOKEN + "\n", GITHUB_TOKEN + " ", "ghp_two\tTabsAndMore12345", "ghp_\x07BellRingsInThisToken"]
)
def test_a_github_token_with_whitespace_or_control_characters_is_refused_unshown(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path, bad: str
) -> None:
    done = run_comment([str(write_plan(plan_of(publish()))), "--github", PR],
                       {**github_env(github), "GITHUB_TOKEN": bad}, tmp_path)
    assert done.returncode == 1
    assert "GITHUB_TOKEN" in done.stderr and "Traceback" not in done.stderr
    for part in re.split(r"[\s\x00-\x1f]+", bad):
        assert len(part) < 8 or part not in done.output
    assert github.calls == []


def test_a_gitlab_token_with_a_newline_is_refused_unshown(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    done = run_comment([str(write_plan(plan_of(publish()))), "--gitlab", MR],
                       {**gitlab_env(gitlab), "GITLAB_TOKEN": GITLAB_TOKEN + "\n"}, tmp_path)
    assert done.returncode == 1
    assert "GITLAB_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert GITLAB_TOKEN not in done.output
    assert gitlab.calls == []


def test_a_header_http_refuses_to_send_is_an_api_error_without_the_token(github: FakeGitHub) -> None:
    # Behind the check above: should a bad value reach the HTTP layer, its error is scrubbed too.
    token = GITHUB_TOKEN + "\n"
    client = Client(github.api_url, {"Authorization": f"Bearer {token}"}, [token], attempts=1)
    with pytest.raises(ReviewApiError) as caught:
        client.call("GET", "/user")
    assert "GET /user" in str(caught.value)
    assert GITHUB_TOKEN not in str(caught.value) and GITHUB_TOKEN[4:20] not in str(caught.value)
    assert github.calls == []


# --- a lost answer to the creating POST ----------------------------------------------------------


def test_a_comment_created_behind_a_502_is_not_posted_again(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", COMMENTS, 502, times=1, apply=True)
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    [posted] = github.comments_on(12)
    assert out.startswith("created: ") and posted["html_url"] in out
    assert github.calls.count(("POST", COMMENTS)) == 1
    assert github.calls.count(("GET", COMMENTS)) == 2  # looked again before posting again


def test_a_comment_created_before_the_connection_dropped_is_not_posted_again(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", COMMENTS, 0, times=1, apply=True, drop=True)
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert len(github.comments_on(12)) == 1
    assert github.calls.count(("POST", COMMENTS)) == 1


def test_a_comment_created_behind_the_last_502_is_found_and_reported_posted(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", COMMENTS, 502, times=ATTEMPTS - 1)
    github.fail("POST", COMMENTS, 502, times=1, apply=True)
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert len(github.comments_on(12)) == 1
    assert github.calls.count(("POST", COMMENTS)) == ATTEMPTS


def test_minimize_outdated_neither_duplicates_nor_minimizes_the_comment_created_behind_a_502(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    old = github.add_comment(12, marker("estate", ["prod"]) + "\nan older plan", "github-actions[bot]")
    github.fail("POST", COMMENTS, 502, times=1, apply=True)
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path, "--minimize-outdated")
    assert code == 0, err
    assert out.startswith("created: ") and "minimized 1 outdated" in out
    comments = github.comments_on(12)
    assert len(comments) == 2
    assert github.minimized == {old["node_id"]}
    assert github.calls.count(("POST", COMMENTS)) == 1


def test_a_note_created_behind_a_502_is_not_posted_again(
    gitlab: FakeGitLab, write_plan: WritePlan, tmp_path: Path
) -> None:
    gitlab.fail("POST", NOTES, 502, times=1, apply=True)
    code, out, err = on_gitlab(gitlab, write_plan(plan_of(publish())), tmp_path)
    assert code == 0, err
    assert out.startswith("created: ")
    assert len(gitlab.notes_on(3)) == 1
    assert gitlab.calls.count(("POST", NOTES)) == 1


# --- GitHub's secondary rate limit without Retry-After ---------------------------------------------


def test_a_secondary_rate_limit_without_retry_after_is_retried_once_after_a_wait(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", COMMENTS, 403, times=1, body=SECONDARY)
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path, IMAGESYNC_COMMENT_RETRY_WAIT="0")
    assert code == 0, err
    assert out.startswith("created: ")
    assert github.calls.count(("POST", COMMENTS)) == 2
    assert len(github.comments_on(12)) == 1


def test_a_second_secondary_rate_limit_is_given_up_on(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    github.fail("POST", COMMENTS, 403, times=5, body=SECONDARY)
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path, IMAGESYNC_COMMENT_RETRY_WAIT="1")
    assert code == 1
    assert "403 Forbidden: You have exceeded a secondary rate limit" in err and "Traceback" not in err
    assert github.calls.count(("POST", COMMENTS)) == 2
    assert github.comments_on(12) == []


def test_a_malformed_retry_wait_is_refused_before_any_call(
    github: FakeGitHub, write_plan: WritePlan, tmp_path: Path
) -> None:
    code, out, err = on_github(github, write_plan(plan_of(publish())), tmp_path, IMAGESYNC_COMMENT_RETRY_WAIT="soon")
    assert code == 1
    assert "IMAGESYNC_COMMENT_RETRY_WAIT" in err and "'soon'" in err
    assert github.calls == []
