"""The markdown plan renderer: goldens, the character budget, balance under a real parser, masking.

The markdown is rendered from the JSON plan document exactly as `plan --out` saves it (json.loads of
`render.json.render_plan`). Balance is judged by markdown-it-py, a CommonMark parser with GFM
tables: every fence it finds must end on a closing fence line of its own, and every `<details>` in
the HTML it renders must be closed. Goldens are rewritten by `scripts/update_golden.sh`.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from test_render import (
    CASES,
    GOLDEN,
    OLD_SECRET,
    SECRET,
    TARGET,
    _golden,
    _plan,
    _script,
    create_plan,
)

from imagesync.plan_model import CREATE, PUBLISH, UPDATE, DiffItem, Plan, ResourceChange, TargetPlan, VersionChange
from imagesync.render import json as json_render
from imagesync.render import markdown
from imagesync.render.markdown import GITHUB_LIMIT, bump_kind, marker, plan_targets, render_markdown
from support import run_imagesync

ARN = "arn:aws:imagebuilder:us-east-1:111111111111"
PARSER = MarkdownIt("commonmark").enable("table")


def _document(plan: Plan) -> dict[str, Any]:
    """The plan as a saved plan file holds it."""
    return json.loads(json_render.render_plan(plan))


def small_plan() -> Plan:
    return _plan(create_plan().targets[0].changes[0])


def failed_plan() -> Plan:
    return Plan.failed(
        "manifests/components/harden.yaml:4:7: error: unknown field `dokument` (did you mean ```document```?)",
        project="estate",
        imagesync_version="0.1.0",
        manifest_root="manifests",
        options={"targets": ["prod-use1", "dev"]},
    )


def huge_plan(count: int = 1000) -> Plan:
    """`count` components, each publishing a new version of its build script."""
    changes = tuple(
        ResourceChange(
            target=TARGET,
            kind="Component",
            name=f"agent-{n:04d}",
            action=PUBLISH,
            diff=(DiffItem("change", "spec.document.build.Install.inputs.commands[0]", _script(False), _script(True)),),
            version=VersionChange("1.0.0", "1.0.1", "content changed"),
            reason="content changed",
        )
        for n in range(count)
    )
    return dataclasses.replace(_plan(*changes), project="estate")


def blast_plan() -> Plan:
    """A component published, the recipe following it, the pipeline and image built from that
    recipe, and drift on a configuration that the plan reverts."""
    component = ResourceChange(
        target=TARGET,
        kind="Component",
        name="harden-cis",
        action=PUBLISH,
        diff=(DiffItem("change", "spec.description", "CIS level 1", "CIS level 2"),),
        version=VersionChange("1.4.2", "2.0.0", "content changed (major bump)"),
        reason="content changed (major bump)",
    )
    recipe = ResourceChange(
        target=TARGET,
        kind="ImageRecipe",
        name="base",
        action=PUBLISH,
        diff=(
            DiffItem(
                "change",
                "spec.components[0].componentArn",
                f"{ARN}:component/harden-cis/1.4.2/1",
                f"{ARN}:component/harden-cis/2.0.0/1",
            ),
        ),
        version=VersionChange("1.2.0", "1.3.0", "dependency changed: Component/harden-cis -> 2.0.0 (minor bump)"),
        depends_on=("Component/harden-cis",),
        reason="dependency changed: Component/harden-cis -> 2.0.0 (minor bump)",
    )
    pipeline = ResourceChange(
        target=TARGET,
        kind="ImagePipeline",
        name="base-weekly",
        action=UPDATE,
        diff=(
            DiffItem(
                "change", "spec.imageRecipeArn", f"{ARN}:image-recipe/base/1.2.0", f"{ARN}:image-recipe/base/1.3.0"
            ),
        ),
        depends_on=("ImageRecipe/base",),
        reason="dependency changed: ImageRecipe/base -> 1.3.0",
    )
    image = ResourceChange(
        target=TARGET,
        kind="Image",
        name="base-now",
        action=CREATE,
        after={"spec": {"imageRecipeArn": f"{ARN}:image-recipe/base/1.3.0"}, "tags": {}},
        depends_on=("ImageRecipe/base",),
        reason="dependency changed: ImageRecipe/base -> 1.3.0",
        makes_outputs=True,
    )
    restore = ResourceChange(
        target=TARGET,
        kind="InfrastructureConfiguration",
        name="build",
        action=UPDATE,
        diff=(DiffItem("change", "spec.instanceTypes", ["m7i.large"], ["m7i.large", "c7i.large"]),),
        reason="changed outside imagesync; restoring the manifest's values",
    )
    drift = dataclasses.replace(
        restore, diff=(DiffItem("change", "spec.instanceTypes", ["m7i.large", "c7i.large"], ["m7i.large"]),)
    )
    return dataclasses.replace(_plan(component, recipe, pipeline, image, restore, drift=(drift,)), project="estate")


MD_CASES = {
    "plan_small": small_plan,
    "plan_mixed": CASES["plan_mixed"],
    "plan_huge": huge_plan,
    "plan_empty": CASES["plan_empty"],
    "plan_failed": failed_plan,
    "plan_errored": CASES["plan_errored"],
    "plan_masked_document": CASES["plan_masked_document"],
    "plan_multiline_diff": CASES["plan_multiline_diff"],
    "plan_refresh_only": CASES["plan_refresh_only"],
    "plan_blast": blast_plan,
}


def assert_balanced(out: str) -> None:
    """Every fence closes on a fence line of its own, every <details> closes, tables are tables."""
    tokens = PARSER.parse(out)
    lines = out.split("\n")
    for token in tokens:
        if token.type == "fence":
            assert token.map is not None
            start, end = token.map
            assert end - 1 > start, f"fence at line {start + 1} is not closed"
            closing = lines[end - 1]
            assert closing.startswith(token.markup) and set(closing.strip()) == {token.markup[0]}, (
                f"fence at line {start + 1} runs to the end of the comment"
            )
            assert len(closing.strip()) >= len(token.markup)
    rendered = PARSER.render(out)
    depth = 0
    for tag in re.findall(r"</?details>", rendered):
        depth += 1 if tag == "<details>" else -1
        assert depth >= 0, "</details> before its <details>"
    assert depth == 0, "a <details> is never closed"
    assert rendered.count("<summary>") == rendered.count("</summary>") == rendered.count("<details>")
    assert out.count("<details>") == rendered.count("<details>")  # none was swallowed by a fence or code span


# --- goldens -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MD_CASES))
def test_markdown_golden(name: str) -> None:
    _golden(f"{name}.md", render_markdown(_document(MD_CASES[name]())))


def test_every_markdown_golden_belongs_to_a_case() -> None:
    assert {p.name for p in GOLDEN.glob("*.md")} == {f"{n}.md" for n in MD_CASES}


@pytest.mark.parametrize("name", sorted(MD_CASES))
def test_markdown_is_balanced_and_within_the_limit(name: str) -> None:
    out = render_markdown(_document(MD_CASES[name]()))
    assert len(out) <= GITHUB_LIMIT
    assert_balanced(out)
    assert out.splitlines()[0] == marker(
        _document(MD_CASES[name]())["project"], plan_targets(_document(MD_CASES[name]()))
    )


# --- what it shows --------------------------------------------------------------------------------


def test_mixed_plan_in_order() -> None:
    out = render_markdown(_document(CASES["plan_mixed"]()))
    lines = out.splitlines()
    assert lines[0] == "<!-- imagesync:plan project= targets=prod-use1 -->"
    assert lines[1].startswith("## imagesync plan")
    order = [
        "**Plan: 2 to publish, 1 to create, 1 to update, 1 to delete.**",
        "| prod-use1 | 111111111111 | us-east-1 | 2 | 1 | 1 | 1 | 1 |",
        "> [!WARNING]",
        "> - `DistributionConfiguration/old`, the whole resource",
        "### Version bumps",
        "| Component/harden-cis | 1.0.0 → 1.0.1 | patch | document changed |",
        "### Blast radius",
        "| ImagePipeline/base | ImageRecipe/base 1.0.1 |",
        "<details><summary><code>^ publish</code> Component/harden-cis 1.0.0 → 1.0.1</summary>",
    ]
    positions = [lines.index(line) for line in order]
    assert positions == sorted(positions)
    assert "1 resource unchanged." in lines
    assert "install-agent" not in out  # the no-op is counted, not shown
    assert "```diff" in lines  # the step's line-level diff
    assert (
        "+     - \"sed -i 's/^#\\\\?PasswordAuthentication.*/PasswordAuthentication no/' /etc/ssh/sshd_config\""
        in lines
    )


def test_blast_radius_and_reverted_drift() -> None:
    out = render_markdown(_document(blast_plan()))
    lines = out.splitlines()
    assert "| Component/harden-cis | 1.4.2 → 2.0.0 | major | content changed (major bump) |" in lines
    assert (
        "| ImageRecipe/base | 1.2.0 → 1.3.0 | minor | dependency changed: Component/harden-cis -> 2.0.0 (minor bump) |"
        in lines
    )
    assert "| ImagePipeline/base-weekly | ImageRecipe/base 1.3.0 |" in lines
    assert "| Image/base-now | ImageRecipe/base 1.3.0 |" in lines
    warning = lines[lines.index("> [!WARNING]") :]
    assert "> This plan reverts drift, changes made outside imagesync (1):" in warning
    assert any(line.startswith("> - `InfrastructureConfiguration/build`") for line in warning)
    assert "(reverted by this plan)" in out


def test_failed_plan_shows_its_message_in_a_fence_longer_than_its_backticks() -> None:
    document = _document(failed_plan())
    out = render_markdown(document)
    assert "**The plan failed; nothing can be applied.**" in out
    assert "````text\n" + document["failure"]["message"] + "\n````" in out
    assert out.splitlines()[0] == "<!-- imagesync:plan project=estate targets=dev,prod-use1 -->"
    (fence,) = [t for t in PARSER.parse(out) if t.type == "fence"]
    assert fence.content == document["failure"]["message"] + "\n"


def test_conflicts_are_listed_with_their_address() -> None:
    out = render_markdown(_document(CASES["plan_errored"]()))
    assert "**Plan failed: 1 error; nothing can be applied until they are resolved.**" in out
    assert "- `prod-use1:Component/harden-cis`: a Component named harden-cis exists" in out


def test_backticks_and_html_in_values_cannot_break_out() -> None:
    nasty = "echo ```\n````` </details> <script>x</script>\n"
    change = ResourceChange(
        target=TARGET,
        kind="Component",
        name="a<b>&c",
        action=PUBLISH,
        diff=(
            DiffItem("change", "spec.document.build.Run.inputs.commands[0]", "echo hi\n", nasty),
            DiffItem("change", "spec.description", "plain `tick`", "two ``ticks``"),
        ),
        version=VersionChange("1.0.0", "1.0.1", "content <changed> & more"),
    )
    out = render_markdown(_document(_plan(change)))
    assert_balanced(out)
    assert "<summary><code>^ publish</code> Component/a&lt;b&gt;&amp;c 1.0.0 → 1.0.1</summary>" in out
    assert "``````diff" in out  # longer than the five-backtick run inside
    rendered = PARSER.render(out)
    assert "<script>" not in rendered
    fences = [t for t in PARSER.parse(out) if t.type == "fence"]
    assert any("+ ````` </details> <script>x</script>" in t.content for t in fences)
    assert "<code>&quot;two ``ticks``&quot;</code>" in rendered


# --- the budget ----------------------------------------------------------------------------------


def test_the_thousand_resource_plan_fits_and_says_what_was_cut() -> None:
    out = render_markdown(_document(huge_plan()))
    assert len(out) <= GITHUB_LIMIT
    assert_balanced(out)
    assert "**Plan: 1000 to publish, 0 to create, 0 to update, 0 to delete.**" in out
    assert "| prod-use1 | 111111111111 | us-east-1 | 1000 | 0 | 0 | 0 | 0 |" in out
    shown = out.count("<details>")
    dropped = int(re.search(r"Details of (\d+) resources were left out to fit the comment limit", out).group(1))
    assert shown + dropped == 1000 and dropped > 0


def test_details_go_before_any_row_of_the_summary() -> None:
    """100 resources whose diffs do not fit: every bump row stays, some details are shortened or
    left out (largest first), and the note's counts are exact."""
    plan = huge_plan(100)
    full = render_markdown(_document(plan), max_chars=10**9)
    budget = len(full) // 3
    out = render_markdown(_document(plan), max_chars=budget, details_url="https://ci.example.com/runs/7?x=(1)")
    assert len(out) <= budget
    assert_balanced(out)
    assert all(f"| Component/agent-{n:04d} | 1.0.0 → 1.0.1 | patch | content changed |" in out for n in range(100))
    assert "more |" not in out
    dropped = re.search(r"Details of (\d+) resources? were left out", out)
    shortened = re.search(r"The document diffs of (\d+) resources? were left out", out)
    assert dropped or shortened
    full_blocks = out.count("```diff")
    assert (
        full_blocks + (int(shortened.group(1)) if shortened else 0) + (int(dropped.group(1)) if dropped else 0) == 100
    )
    assert out.count("<details>") == 100 - (int(dropped.group(1)) if dropped else 0)
    assert "[The full plan](https://ci.example.com/runs/7?x=%281%29) has everything." in out


def test_a_summary_too_large_keeps_its_first_rows() -> None:
    plan = huge_plan(3000)
    out = render_markdown(_document(plan), details_url="https://ci.example.com/runs/7")
    assert len(out) <= GITHUB_LIMIT
    assert_balanced(out)
    more = re.findall(r"\| … and (\d+) more \|", out)
    rows = len(re.findall(r"^\| Component/agent-\d{4} \|", out, flags=re.M))
    assert more and rows + int(more[0]) == 3000
    assert "<details>" not in out
    assert "Details of 3000 resources were left out" in out
    assert "**Plan: 3000 to publish, 0 to create, 0 to update, 0 to delete.**" in out


def _minimum(document: dict[str, Any]) -> int:
    return len(marker(document["project"], plan_targets(document))) + 1 + len(markdown.TOO_LARGE) + 2


def test_a_budget_below_the_minimum_is_refused_clearly() -> None:
    document = _document(CASES["plan_mixed"]())
    smallest = _minimum(document)
    out = render_markdown(document, max_chars=smallest)
    assert len(out) <= smallest and out.startswith("<!-- imagesync:plan ") and markdown.TOO_LARGE in out
    with pytest.raises(
        ValueError, match=rf"max_chars is {smallest - 1}, but a markdown plan needs at least {smallest}"
    ):
        render_markdown(document, max_chars=smallest - 1)


BUDGET_CASES = ("plan_mixed", "plan_multiline_diff", "plan_failed", "plan_errored", "plan_blast")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(BUDGET_CASES), fraction=st.floats(min_value=0.0, max_value=1.0), url=st.booleans())
def test_any_budget_is_kept_and_balanced(name: str, fraction: float, url: bool) -> None:
    document = _document(MD_CASES[name]())
    details_url = "https://ci.example.com/runs/42" if url else None
    full = render_markdown(document, max_chars=10**9, details_url=details_url)
    low = _minimum(document)
    budget = low + round(fraction * (len(full) - low))
    out = render_markdown(document, max_chars=budget, details_url=details_url)
    assert len(out) <= budget
    assert out.split("\n", 1)[0] == marker(document["project"], plan_targets(document))
    assert_balanced(out)
    if budget >= len(full):
        assert out == full


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget=st.integers(min_value=200, max_value=60_000))
def test_any_budget_for_a_large_plan(budget: int) -> None:
    out = render_markdown(_document(huge_plan(150)), max_chars=budget)
    assert len(out) <= budget
    assert_balanced(out)


# --- masking, determinism, the saved plan --------------------------------------------------------


@pytest.mark.parametrize("name", ["plan_mixed", "plan_masked_document"])
def test_sensitive_values_never_appear(name: str) -> None:
    plan = CASES[name]()
    assert SECRET in json.dumps(plan.to_json())  # the fixture really holds it
    document = _document(plan)
    for budget in (GITHUB_LIMIT, 2_000, 600):
        out = render_markdown(document, max_chars=budget)
        assert SECRET not in out and OLD_SECRET not in out
    assert "(sensitive)" in render_markdown(document)


def test_same_document_same_bytes() -> None:
    plan = CASES["plan_mixed"]()
    first = render_markdown(_document(plan), details_url="https://x.example/1")
    again = render_markdown(_document(plan), details_url="https://x.example/1")
    assert first == again
    other_id = dataclasses.replace(plan, plan_id="f00d")  # a new plan of the same changes
    assert render_markdown(_document(other_id), details_url="https://x.example/1") == first
    huge = _document(huge_plan())
    assert render_markdown(huge) == render_markdown(huge)


@pytest.mark.parametrize("name", sorted(MD_CASES))
def test_a_saved_plan_renders_as_the_fresh_one(name: str) -> None:
    plan = MD_CASES[name]()
    assert render_markdown(json_render.plan_document(plan)) == render_markdown(_document(plan))


def test_several_targets_are_named_in_tables() -> None:
    base = CASES["plan_mixed"]()
    dev_change = ResourceChange(
        target="dev",
        kind="Component",
        name="harden-cis",
        action=PUBLISH,
        version=VersionChange("1.0.0", "1.1.0", "content changed"),
    )
    dev = TargetPlan(target="dev", region="eu-west-1", account="222222222222", changes=(dev_change,))
    plan = dataclasses.replace(base, targets=(*base.targets, dev), options={**base.options, "targets": []})
    out = render_markdown(_document(plan))
    assert out.splitlines()[0] == "<!-- imagesync:plan project= targets=dev,prod-use1 -->"
    assert "| dev:Component/harden-cis | 1.0.0 → 1.1.0 | minor | content changed |" in out
    assert "| dev | 222222222222 | eu-west-1 | 1 | 0 | 0 | 0 | 0 |" in out
    assert "### Changes in dev (eu-west-1, account 222222222222)" in out
    assert_balanced(out)


@pytest.mark.parametrize(
    ("previous", "following", "kind"),
    [
        (None, "1.0.0", "new"),
        ("1.0.0", "1.0.1", "patch"),
        ("1.4.2", "1.5.0", "minor"),
        ("1.9.9", "2.0.0", "major"),
        ("1.0.0", "1.0.0", ""),
        ("weird", "1.0.0", ""),
    ],
)
def test_bump_kind(previous: str | None, following: str, kind: str) -> None:
    assert bump_kind(previous, following) == kind


# --- through the CLI: a saved plan file -----------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"


def test_a_plan_file_and_a_fresh_plan_render_the_same(tmp_path: Path) -> None:
    """Two separate `plan` runs (different plan ids) of the examples: one saved with --out, one
    printed as JSON; their markdown is byte-identical, balanced and within the limit."""
    shutil.copytree(EXAMPLES, tmp_path / "manifests")
    saved = run_imagesync(["plan", "manifests", "--sandbox", "state.json", "--out", "plan.json"], tmp_path)
    assert saved.returncode == 0, saved.stderr
    printed = run_imagesync(["plan", "manifests", "--sandbox", "state.json", "--format", "json"], tmp_path)
    assert printed.returncode == 0, printed.stderr
    from_file = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    fresh = json.loads(printed.stdout)
    assert from_file["plan_id"] != fresh["plan_id"]
    out = render_markdown(from_file)
    assert out == render_markdown(fresh)
    assert_balanced(out)
    assert out.splitlines()[0] == marker(from_file["project"], plan_targets(from_file))
    assert f"## imagesync plan: {from_file['project']}" in out
    assert out.count("<details>") == sum(
        1 for c in from_file["resource_changes"] if c["change"]["actions"] != ["no-op"]
    )


def test_a_saved_failed_plan_renders_its_failure(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "manifests")
    (tmp_path / "manifests" / "broken.yaml").write_text("apiVersion: imagesync/v1\nkind: Component\nmetadata: {}\n")
    saved = run_imagesync(["plan", "manifests", "--sandbox", "state.json", "--out", "plan.json"], tmp_path)
    assert saved.returncode == 1
    document = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert document["failure"]
    out = render_markdown(document)
    assert "**The plan failed; nothing can be applied.**" in out
    assert "broken.yaml" in out
    assert_balanced(out)


def test_a_plan_and_a_failed_plan_of_the_same_selection_share_one_marker() -> None:
    """`plan --target spoke` also plans the hub the spoke uses; a failed plan names no planned
    targets at all. Both are for the selection `spoke`, so both find the same comment."""
    planned = {"project": "p", "options": {"targets": ["spoke"]}, "targets": [{"name": "hub"}, {"name": "spoke"}]}
    failed = {"project": "p", "options": {"targets": ["spoke"]}, "targets": []}
    everything = {"project": "p", "options": {"targets": []}, "targets": [{"name": "hub"}, {"name": "spoke"}]}
    assert plan_targets(planned) == plan_targets(failed) == ["spoke"]
    assert plan_targets(everything) == ["hub", "spoke"]
    assert marker("p", plan_targets(planned)) == "<!-- imagesync:plan project=p targets=spoke -->"


def test_a_plan_that_fits_renders_the_same_whatever_the_details_url() -> None:
    """CI passes its run's URL, new every run: a plan that fits whole must not change with it, or
    its comment would be rewritten on every push."""
    document = _document(CASES["plan_mixed"]())
    first = render_markdown(document, details_url="https://ci.example.com/runs/1")
    assert first == render_markdown(document, details_url="https://ci.example.com/runs/2") == render_markdown(document)
    assert "ci.example.com" not in first
    assert plan_targets({"options": {"targets": ["b", "a", "b"]}, "targets": []}) == ["a", "b"]
