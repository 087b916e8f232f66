"""The CI templates (action.yml, examples/ci/) are valid for their platforms and call imagesync as it is.

A template is only run by GitHub or GitLab, long after it was written: these tests catch what would
break it there. Each file is checked against the platform's official schema as the check-jsonschema
package vendors it (offline, through its CLI as a user would run it), and every `imagesync ...`
command in its shell scripts must name a subcommand and flags that `python -m imagesync ... --help`
lists.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
PLAN_WORKFLOW = ROOT / "examples" / "ci" / "github" / "plan.yml"
APPLY_WORKFLOW = ROOT / "examples" / "ci" / "github" / "apply.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"

# Each template and the check-jsonschema builtin schema it must satisfy.
TEMPLATES = {
    ACTION: "vendor.github-actions",
    PLAN_WORKFLOW: "vendor.github-workflows",
    APPLY_WORKFLOW: "vendor.github-workflows",
    GITLAB: "vendor.gitlab-ci",
}
TEMPLATE_IDS = [str(path.relative_to(ROOT)) for path in TEMPLATES]

# Tokens that end one shell command and may start another.
SHELL_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "then", "else", "do", "{", "}"}


def check_schema(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    """Validate `path` with check-jsonschema's own CLI against one of its vendored schemas."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("path", "schema"), list(TEMPLATES.items()), ids=TEMPLATE_IDS)
def test_template_matches_the_official_schema(path: Path, schema: str) -> None:
    result = check_schema(path, schema)
    assert result.returncode == 0, result.stdout + result.stderr


def _break(text: str, old: str, new: str) -> str:
    """Replace the first `old` in a template's text, failing loudly if it is not there."""
    assert old in text, f"the template no longer contains {old!r}: update this test"
    return text.replace(old, new, 1)


BROKEN = {
    # A workflow job without runs-on.
    "workflow-job-without-runs-on": (
        PLAN_WORKFLOW,
        lambda text: _break(text, "    runs-on: ubuntu-latest\n", ""),
    ),
    # A composite action's run step must name its shell.
    "action-run-step-without-shell": (
        ACTION,
        lambda text: _break(text, "      shell: bash\n      run: python -m pip", "      run: python -m pip"),
    ),
    # A GitLab script is a string or a list of strings, not a mapping.
    "gitlab-script-not-a-list": (
        GITLAB,
        lambda text: _break(
            text,
            '    - |\n      rc=0\n',
            '    plan: |\n      rc=0\n',
        ),
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_template_is_rejected(case: str, tmp_path: Path) -> None:
    source, breaker = BROKEN[case]
    broken = tmp_path / source.name
    broken.write_text(breaker(source.read_text(encoding="utf-8")), encoding="utf-8")
    result = check_schema(broken, TEMPLATES[source])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "validation error" in (result.stdout + result.stderr).lower()


# --- imagesync commands in the templates' scripts -------------------------------------------------


def shell_scripts(path: Path) -> list[str]:
    """The shell scripts of a template: `run:` of its steps, or GitLab's (before_/after_)script."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if path == GITLAB:
        scripts: list[str] = []
        for job in doc.values():
            if isinstance(job, dict):
                for key in ("before_script", "script", "after_script"):
                    lines = job.get(key, [])
                    scripts.extend([lines] if isinstance(lines, str) else lines)
        return scripts
    if path == ACTION:
        steps = doc["runs"]["steps"]
    else:
        steps = [step for job in doc["jobs"].values() for step in job.get("steps", [])]
    return [step["run"] for step in steps if "run" in step]


def tokens(script: str) -> list[str]:
    """The script's shell words, with `;`, `&&`, `(`... as words of their own, line ends as `;`."""
    words: list[str] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        for word in lexer:
            # shlex keeps a run of punctuation together: `()` or `);` are two words to the shell.
            is_run = set(word) <= set(lexer.punctuation_chars) and word not in ("&&", "||")
            words.extend(list(word) if is_run else [word])
        words.append(";")
    return words


def arrays(words: list[str]) -> dict[str, list[str]]:
    """Bash arrays the script builds, `name=(...)` and `name+=(...)`, by name (all parts joined)."""
    found: dict[str, list[str]] = {}
    for i, word in enumerate(words[:-1]):
        match = re.fullmatch(r"([A-Za-z_]\w*)\+?=", word)
        if match and words[i + 1] == "(":
            end = words.index(")", i + 1)
            found.setdefault(match.group(1), []).extend(words[i + 2 : end])
    return found


def imagesync_commands(script: str) -> Iterator[list[str]]:
    """Every `imagesync SUBCOMMAND ...` in a script, its array expansions ("${a[@]}") spliced in."""
    words = tokens(script)
    known = arrays(words)
    for i, word in enumerate(words):
        if word != "imagesync" or (i and words[i - 1] not in SHELL_SEPARATORS):
            continue
        command: list[str] = []
        for arg in words[i + 1 :]:
            if arg in SHELL_SEPARATORS:
                break
            array = re.fullmatch(r"\$\{(\w+)\[@\]\}", arg)
            command.extend(known.get(array.group(1), []) if array else [arg])
        yield command


@functools.cache
def cli_help(*args: str) -> str:
    """`python -m imagesync ARGS --help`, failing if imagesync refuses it (an unknown subcommand)."""
    result = subprocess.run(
        [sys.executable, "-m", "imagesync", *args, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"imagesync {' '.join(args)} --help: {result.stderr.strip()}"
    return result.stdout


def subcommands() -> set[str]:
    """The subcommands the top-level --help lists under COMMAND."""
    text = cli_help().split("COMMAND\n", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^ {4}([a-z][\w-]*)", text, re.M))


def problems(command: list[str]) -> list[str]:
    """What in one `imagesync ...` command its --help does not list: the subcommand, a flag, a choice."""
    if not command or command[0] not in subcommands():
        return [f"unknown subcommand in imagesync {' '.join(command)}"]
    text = cli_help(command[0])
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))
    choices = {flag: set(values.split(",")) for flag, values in re.findall(r"(--[a-z][\w-]*) \{([^}]+)\}", text)}
    found = []
    for i, arg in enumerate(command[1:], start=1):
        flag = arg.split("=", 1)[0]
        if not flag.startswith("--"):
            continue
        if flag not in flags:
            found.append(f"imagesync {command[0]} has no {flag}")
        elif flag in choices:
            value = arg.split("=", 1)[1] if "=" in arg else (command[i + 1] if i + 1 < len(command) else "")
            if "$" not in value and value not in choices[flag]:
                found.append(f"imagesync {command[0]} {flag} takes {sorted(choices[flag])}, not {value!r}")
    return found


@pytest.mark.parametrize("path", [ACTION, GITLAB], ids=["action.yml", "gitlab"])
def test_templates_only_use_what_imagesync_help_lists(path: Path) -> None:
    commands = [command for script in shell_scripts(path) for command in imagesync_commands(script)]
    assert commands, f"{path.name} runs no imagesync command"
    found = [problem for command in commands for problem in problems(command)]
    assert not found, found


def test_the_templates_plan_comment_and_apply() -> None:
    used = {
        (command[0], arg)
        for path in TEMPLATES
        for script in shell_scripts(path)
        for command in imagesync_commands(script)
        for arg in command
    }
    for expected in [
        ("validate", "validate"),
        ("plan", "--out"),
        ("plan", "--detailed-exitcode"),
        ("plan", "--target"),
        ("comment", "--github"),
        ("comment", "--gitlab"),
        ("apply", "--auto-approve"),
    ]:
        assert expected in used, expected


def test_the_command_check_finds_a_wrong_flag_and_reads_arrays() -> None:
    script = 'set -f\nargs=()\nargs+=(--target "$t" --no-such-flag)\nimagesync plan . --out p.json "${args[@]}" | cat\n'
    assert list(imagesync_commands(script)) == [["plan", ".", "--out", "p.json", "--target", "$t", "--no-such-flag"]]
    assert problems(["plan", ".", "--no-such-flag"]) == ["imagesync plan has no --no-such-flag"]
    assert problems(["plan", ".", "--format", "yaml"]) == [
        "imagesync plan --format takes ['json', 'markdown', 'text'], not 'yaml'"
    ]
    assert problems(["frobnicate", "."]) == ["unknown subcommand in imagesync frobnicate ."]
    assert problems(["plan", ".", "--format=$FORMAT", "--target", "a"]) == []


# --- what the templates promise -------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    """A template as YAML 1.2 reads it (PyYAML would read GitHub's `on:` key as True)."""
    text = re.sub(r"^on:", '"on":', path.read_text(encoding="utf-8"), flags=re.M)
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def test_the_action_comments_a_failed_plan_and_takes_exit_code_2_as_success() -> None:
    steps = {step["name"]: step for step in load(ACTION)["runs"]["steps"]}
    install = steps["Install imagesync"]["run"]
    assert "pip install" in install and '"${{ github.action_path }}"' in install
    plan = steps["Plan"]
    assert "--detailed-exitcode" in plan["run"] and '"$rc" -eq 2' in plan["run"]
    assert "saved=true" in plan["run"]
    for name in ("Upload the plan", "Comment the plan on the pull request"):
        condition = steps[name]["if"]
        assert "always()" in condition and "steps.plan.outputs.saved == 'true'" in condition, name
    assert steps["Comment the plan on the pull request"]["env"]["GITHUB_TOKEN"] == "${{ inputs.github-token }}"
    assert steps["Upload the plan"]["uses"].startswith("actions/upload-artifact@")
    assert steps["Download the reviewed plan"]["uses"].startswith("actions/download-artifact@")


def test_the_github_workflows_grant_what_they_use() -> None:
    plan = load(PLAN_WORKFLOW)
    assert plan["on"] == {"pull_request": None}
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    apply = load(APPLY_WORKFLOW)
    assert list(apply["on"]) == ["push"]
    assert apply["permissions"]["id-token"] == "write" and apply["permissions"]["actions"] == "read"
    job = apply["jobs"]["apply"]
    assert "${{ matrix.target }}" in job["concurrency"]["group"]
    assert job["concurrency"]["cancel-in-progress"] is False
    inputs = load(ACTION)["inputs"]
    for workflow in (plan, apply):
        for job in workflow["jobs"].values():
            steps = [step for step in job["steps"] if "/imagesync@" in step.get("uses", "")]
            if not steps:
                continue
            # The workflows call imagesync through the action: with inputs it declares.
            assert set(steps[0]["with"]) <= set(inputs), set(steps[0]["with"]) - set(inputs)
            assert steps[0]["with"]["command"] in ("plan", "apply")
            credentials = [step for step in job["steps"] if step.get("uses", "").startswith("aws-actions/")]
            assert credentials and credentials[0]["with"]["role-to-assume"].startswith("${{ vars.")
            assert job["steps"].index(credentials[0]) < job["steps"].index(steps[0])
    assert {job["steps"][-1]["with"]["command"] for job in (plan["jobs"]["plan"], apply["jobs"]["apply"])} == {
        "plan",
        "apply",
    }


def test_the_gitlab_apply_jobs_have_a_resource_group_per_target() -> None:
    doc = load(GITLAB)
    jobs = {name: job for name, job in doc.items() if isinstance(job, dict)}
    applies = {name: job for name, job in jobs.items() if job.get("extends") == ".imagesync-apply"}
    assert applies
    groups = [job["resource_group"] for job in applies.values()]
    assert len(set(groups)) == len(groups)
    for job in applies.values():
        assert job["variables"]["IMAGESYNC_TARGET"] in job["resource_group"]
    targets = doc["imagesync-plan"]["parallel"]["matrix"][0]["IMAGESYNC_TARGET"]
    assert sorted(targets) == sorted(job["variables"]["IMAGESYNC_TARGET"] for job in applies.values())
    assert doc["imagesync-plan"]["artifacts"]["when"] == "always"
    assert "GITLAB_TOKEN" not in doc.get("variables", {}), "the token is a masked CI variable, not in the file"


def test_the_readme_shows_the_action_with_its_own_inputs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## CI\n", 1)[1].split("\n## ", 1)[0]
    assert readme.index("\n## CI\n") < readme.index("\n## Development\n")
    for path in TEMPLATES:
        assert str(path.relative_to(ROOT)) in section, path
    inputs = set(load(ACTION)["inputs"])
    snippets = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert snippets
    steps = [step for snippet in snippets for step in yaml.safe_load(snippet)]
    used = {key for step in steps if "/imagesync@" in step.get("uses", "") for key in step.get("with", {})}
    assert used and used <= inputs, used - inputs


# --- the action's shell steps, run as GitHub runs them ------------------------------------------

# GitHub's `shell: bash` runs a step's script as `bash --noprofile --norc -eo pipefail FILE`.
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def run_action_step(name: str, workdir: Path, **inputs: str) -> tuple[int, dict[str, str]]:
    """Run one of action.yml's `run:` steps in `workdir` with its env; its exit code and outputs."""
    step = next(step for step in load(ACTION)["runs"]["steps"] if step["name"] == name)
    script = workdir / "step.sh"
    script.write_text(step["run"], encoding="utf-8")
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "imagesync"  # what `pip install` puts on PATH, for the imagesync under test
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m imagesync "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    outputs = workdir / "github_output"
    outputs.write_text("", encoding="utf-8")
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("GITHUB_")},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(outputs),
        **inputs,
    }
    result = subprocess.run(
        [*GITHUB_BASH, str(script)], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in result.stderr, result.stderr
    values = dict(line.split("=", 1) for line in outputs.read_text(encoding="utf-8").splitlines())
    return result.returncode, values


def plan_inputs(**overrides: str) -> dict[str, str]:
    """The Plan step's env for the example manifests, against a sandbox state file in the workdir."""
    return {
        "INPUT_DIRECTORY": "manifests",
        "INPUT_TARGETS": "prod-use1,",
        "INPUT_ARGS": "--sandbox state.json",
        "INPUT_PLAN_FILE": "out/plan.json",
        "INPUT_MAX_CHARS": "",
        "DETAILS_URL": "https://github.example/org/repo/actions/runs/1",
        **overrides,
    }


@pytest.mark.slow
def test_the_action_plans_applies_and_plans_nothing_then(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "manifests", tmp_path / "manifests")
    (tmp_path / "out").mkdir()
    code, outputs = run_action_step("Plan", tmp_path, **plan_inputs())
    assert code == 0, "exit code 2 (changes) must not fail the step"
    assert outputs == {"exit-code": "2", "saved": "true", "changes": "true"}
    plan = json.loads((tmp_path / "out" / "plan.json").read_text(encoding="utf-8"))
    assert [target["name"] for target in plan["targets"]] == ["prod-use1"]
    assert plan["resource_changes"]

    apply_env = {"INPUT_ARGS": "--sandbox state.json", "INPUT_PLAN_FILE": "out/plan.json"}
    code, _ = run_action_step("Apply the plan", tmp_path, **apply_env)
    assert code == 0

    code, outputs = run_action_step("Plan", tmp_path, **plan_inputs())
    assert (code, outputs) == (0, {"exit-code": "0", "saved": "true", "changes": "false"})


@pytest.mark.slow
def test_the_action_saves_a_failed_plan_then_fails(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "manifests", tmp_path / "manifests")
    (tmp_path / "out").mkdir()
    with (tmp_path / "manifests" / "recipes.yaml").open("a", encoding="utf-8") as recipes:
        recipes.write("apiVersion: twice\n")
    code, outputs = run_action_step("Plan", tmp_path, **plan_inputs())
    assert code == 1
    # saved=true is what makes the upload and comment steps (if: always()) report the failure.
    assert outputs == {"exit-code": "1", "saved": "true", "changes": "false"}
    plan = json.loads((tmp_path / "out" / "plan.json").read_text(encoding="utf-8"))
    assert plan["failure"] and not plan["applyable"]
