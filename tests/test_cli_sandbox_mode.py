"""In sandbox mode imagesync contacts nothing but the sandbox, STS included; logs go to stderr."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, so any use of it fails


def run(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **(extra_env or {}),
        # Every AWS endpoint but the sandbox points nowhere, and there are no credentials or region:
        # a single call outside the sandbox (an STS lookup of the account, say) would fail the run.
        "AWS_ENDPOINT_URL": CLOSED,
        "AWS_ENDPOINT_URL_STS": CLOSED,
        "AWS_ENDPOINT_URL_IMAGEBUILDER": CLOSED,
        "AWS_CONFIG_FILE": str(cwd / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(cwd / "no-credentials"),
    }
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
    )


def test_apply_and_plan_in_sandbox_mode_touch_no_other_endpoint(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    # a target without an account: outside the sandbox this would ask STS who we are
    (manifests / "imagesync.yaml").write_text("project: iso\ntargets:\n  - name: solo\n    region: eu-west-1\n")
    (manifests / "m.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {name: build}\n"
        "spec: {instanceProfileName: build, instanceTypes: [m7i.large]}\n"
    )
    applied = run(["apply", "manifests", "--sandbox", "state.json", "--auto-approve"], tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 1 created." in applied.stdout
    planned = run(
        ["plan", "manifests", "--sandbox", "state.json", "--format", "json", "--log-format", "json", "-v"], tmp_path
    )
    assert planned.returncode == 0, planned.stderr
    summary = json.loads(planned.stdout)["summary"]
    assert summary == {"publish": 0, "create": 0, "update": 0, "delete": 0, "drift": 0}
    events = [json.loads(line) for line in planned.stderr.splitlines() if line.strip()]
    assert [e["target"] for e in events if e["event"] == "planned"] == ["solo"]
    state = json.loads((tmp_path / "state.json").read_text())
    arns = [arn for table in state["resources"].values() for arn in table]
    assert arns == ["arn:aws:imagebuilder:eu-west-1:123456789012:infrastructure-configuration/build"]


def test_without_sandbox_the_configured_endpoint_is_used(tmp_path: Path) -> None:
    """The same environment without --sandbox fails against the closed endpoint, exit 1, no traceback."""
    shutil.copytree(ROOT / "examples" / "manifests", tmp_path / "manifests")
    planned = run(["plan", "manifests", "--target", "prod-use1"], tmp_path)
    assert planned.returncode == 1
    assert "Traceback" not in planned.stderr
    assert "error:" in planned.stderr


def shop(tmp_path: Path, spec: str = "{instanceProfileName: builder}", *, project: str | None = None) -> Path:
    """A manifest directory: project `shop` (or the `project` file's text), target `dev`, one
    infrastructure configuration."""
    root = tmp_path / "manifests"
    root.mkdir(exist_ok=True)
    (root / "imagesync.yaml").write_text(project or "project: shop\ntargets:\n  - {name: dev, region: us-east-1}\n")
    (root / "m.yaml").write_text(
        f"apiVersion: imagesync/v1\nkind: InfrastructureConfiguration\nmetadata: {{name: build}}\nspec: {spec}\n"
    )
    return root


def test_a_failed_plan_is_saved_as_a_failure_that_apply_refuses(tmp_path: Path) -> None:
    """`plan --out` on bad manifests still writes the plan file, recording the error (so it can be
    rendered and commented on); it validates as a plan, and apply refuses it without any call."""
    import jsonschema

    root = shop(tmp_path, "{instanceProfileName: 7}")
    saved = tmp_path / "plan.json"
    state = tmp_path / "sandbox.json"
    planned = run(["plan", str(root), "--sandbox", str(state), "--out", str(saved)], tmp_path)
    assert planned.returncode == 1
    assert "m.yaml:4:8: error: spec.instanceProfileName" in planned.stderr
    document = json.loads(saved.read_text())
    schema = json.loads((Path(__file__).parents[1] / "schemas" / "plan.json").read_text())
    jsonschema.validate(document, schema)
    assert document["project"] == "shop"
    assert document["options"]["targets"] == ["dev"]
    assert "m.yaml:4:8: error: spec.instanceProfileName" in document["failure"]["message"]
    assert document["errored"] is True and document["applyable"] is False
    assert document["resource_changes"] == []

    applied = run(["apply", str(saved), "--sandbox", str(state)], tmp_path)
    assert applied.returncode == 1
    assert "this plan failed, so there is nothing to apply" in applied.stderr
    assert "Traceback" not in applied.stderr


def test_the_markdown_plan_renders_the_same_from_plan_render_and_the_step_summary(tmp_path: Path) -> None:
    """`plan --format markdown`, `render` of the plan it saved, and the job summary GitHub Actions
    shows are the same bytes: the markdown is made from the saved document alone."""
    root = shop(tmp_path)
    state, saved, summary = tmp_path / "sandbox.json", tmp_path / "plan.json", tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env_summary = {"GITHUB_STEP_SUMMARY": str(summary)}
    planned = run(["plan", str(root), "--sandbox", str(state), "--format", "markdown", "--out", str(saved)],
                  tmp_path, env_summary)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith("<!-- imagesync:plan project=shop targets=dev -->\n")
    assert "1 to create" in planned.stdout
    rendered = run(["render", str(saved)], tmp_path)
    assert rendered.returncode == 0 and rendered.stdout == planned.stdout
    assert summary.read_text() == "earlier step\n" + planned.stdout  # appended, as GitHub expects
    short = run(["render", str(saved), "--max-chars", "200"], tmp_path)
    assert short.returncode == 0 and len(short.stdout) <= 200


def test_render_shows_a_failed_plan_and_refuses_what_is_not_a_plan(tmp_path: Path) -> None:
    root = shop(tmp_path)
    (root / "m.yaml").write_text("apiVersion: imagesync/v1\nkind: Nope\nmetadata: {name: build}\nspec: {}\n")
    saved, summary = tmp_path / "plan.json", tmp_path / "summary.md"
    planned = run(["plan", str(root), "--sandbox", str(tmp_path / "s.json"), "--out", str(saved)], tmp_path,
                  {"GITHUB_STEP_SUMMARY": str(summary)})
    assert planned.returncode == 1
    rendered = run(["render", str(saved)], tmp_path)
    assert rendered.returncode == 0
    assert "failed" in rendered.stdout and "unknown kind 'Nope'" in rendered.stdout
    assert summary.read_text() == rendered.stdout  # the job summary says why the plan failed

    (tmp_path / "junk.json").write_text("{not json")
    junk = run(["render", str(tmp_path / "junk.json")], tmp_path)
    assert junk.returncode == 1
    assert f"{tmp_path / 'junk.json'}:1:2: not a saved imagesync plan" in junk.stderr
    assert "Traceback" not in junk.stderr


def test_a_plan_with_errors_is_saved_shown_and_refused(tmp_path: Path) -> None:
    """A plan with errors (here: another project's resource under the same name) exits 1 but is
    saved like a failure, so CI can comment it; apply refuses the file."""
    root = shop(tmp_path)
    state, saved = tmp_path / "sandbox.json", tmp_path / "plan.json"
    assert run(["apply", str(root), "--sandbox", str(state), "--auto-approve"], tmp_path).returncode == 0
    (root / "imagesync.yaml").write_text("project: other\ntargets:\n  - {name: dev, region: us-east-1}\n")
    planned = run(["plan", str(root), "--sandbox", str(state), "--out", str(saved)], tmp_path)
    assert planned.returncode == 1
    document = json.loads(saved.read_text())
    assert document["errored"] is True and document["errors"]
    rendered = run(["render", str(saved)], tmp_path)
    assert rendered.returncode == 0 and document["errors"][0]["message"] in rendered.stdout
    applied = run(["apply", str(saved), "--sandbox", str(state)], tmp_path)
    assert applied.returncode == 1
    assert "this plan has errors, so nothing in it can be applied" in applied.stderr


def test_a_broken_project_file_still_names_the_comment_and_bad_budgets_are_errors(tmp_path: Path) -> None:
    root = shop(tmp_path, project="project: shop\nbogus: 1\ntargets:\n  - {name: dev, region: us-east-1}\n")
    saved, summary = tmp_path / "plan.json", tmp_path / "no-such-dir" / "summary.md"
    planned = run(["plan", str(root), "--sandbox", str(tmp_path / "s.json"), "--out", str(saved)], tmp_path,
                  {"GITHUB_STEP_SUMMARY": str(summary)})
    assert planned.returncode == 1
    assert "imagesync.yaml" in planned.stderr and "bogus" in planned.stderr  # the real error, not the summary's
    assert "warning: the plan was not written to the step summary" in planned.stderr
    document = json.loads(saved.read_text())
    assert (document["project"], document["options"]["targets"]) == ("shop", ["dev"])
    tiny = run(["render", str(saved), "--max-chars", "20"], tmp_path)
    assert tiny.returncode == 1
    assert tiny.stderr.startswith("error: --max-chars 20:") and "Traceback" not in tiny.stderr
