"""What `imagesync validate` must accept, and how it must word what it refuses.

Table-driven: each case writes a small manifest tree into a temporary directory and runs
`imagesync.api.validate` on it. Accepted cases must validate clean; refused cases must report a
problem at an exact `file:line:col` with a message fragment, and nothing that must not be there
(raw regular expressions, sensitive or long values, follow-on problems). One CLI subprocess test per
group checks exit code 1, the located line and the absence of a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imagesync.api import ValidationResult, validate

PROJECT = """\
project: findings
targets:
  - name: prod
    region: us-east-1
    account: "111111111111"
  - name: dev
    region: eu-west-1
    account: "222222222222"
"""

DOC = """\
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Hello
        action: ExecuteBash
        inputs:
          commands:
            - echo hello
"""

COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata:
  name: comp
spec:
  platform: Linux
  version: 1.0.0
  documentFile: comp.yml
"""

INLINE = """\
apiVersion: imagesync/v1
kind: Component
metadata:
  name: inline
spec:
  platform: Linux
  version: 1.0.0
  document:
    schemaVersion: 1
    phases:
      - name: build
        steps:
          - name: Hello
            action: ExecuteBash
            inputs:
              commands: [echo hello]
"""

WORKFLOW = """\
apiVersion: imagesync/v1
kind: Workflow
metadata:
  name: flow
spec:
  type: BUILD
  version: 1.0.0
  documentFile: flow.yml
"""

WORKFLOW_DOC = """\
schemaVersion: 1.0
steps:
  - name: Launch
    action: LaunchInstance
    inputs:
      waitFor: ssmAgent
"""

RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata:
  name: base
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - ref: comp
"""

CONTAINER = """\
apiVersion: imagesync/v1
kind: ContainerRecipe
metadata:
  name: api
spec:
  version: 1.0.0
  containerType: DOCKER
  parentImage: public.ecr.aws/amazonlinux/amazonlinux:2023
  components:
    - ref: comp
  dockerfileTemplateFile: api.Dockerfile
  targetRepository:
    service: ECR
    repositoryName: golden/api
"""

DOCKERFILE = "FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\n"

INFRA = """\
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata:
  name: infra
spec:
  instanceProfileName: build-profile
  instanceTypes: [m7i.large]
"""

PIPELINE = """\
apiVersion: imagesync/v1
kind: ImagePipeline
metadata:
  name: pipe
spec:
  imageRecipeArn: {ref: base}
  infrastructureConfigurationArn: {ref: infra}
"""

BASE: dict[str, str] = {"comp.yaml": COMPONENT, "comp.yml": DOC}

# A regular expression leaking into a message: anchors, classes, escapes, quantifiers.
REGEX_TEXT = re.compile(r"\^\[|\]\{|\\\$|\$'|\\[dsw]|\(\?")


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def write_tree(root: Path, files: dict[str, str], project: str = PROJECT) -> Path:
    (root / "imagesync.yaml").write_text(project, encoding="utf-8")
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def describe(result: ValidationResult) -> str:
    return "\n".join(str(p) for p in result.problems) or "(no problems)"


# --- A. accepted by AWS, so accepted offline ---------------------------------------------------------

ACCEPTED: list[tuple[str, dict[str, str], str]] = [
    ("schema-version-integer-in-component-file", {**BASE, "comp.yml": edit(DOC, "1.0", "1")}, PROJECT),
    ("schema-version-float-in-component-file", BASE, PROJECT),
    ("schema-version-string-in-component-file", {**BASE, "comp.yml": edit(DOC, "1.0", "'1.0'")}, PROJECT),
    ("schema-version-integer-inline", {"inline.yaml": INLINE}, PROJECT),
    ("schema-version-integer-in-workflow-file", {"flow.yaml": WORKFLOW, "flow.yml": edit(WORKFLOW_DOC, "1.0", "1")},
     PROJECT),
    (
        "allowed-values-on-parameter",
        {**BASE, "comp.yml": edit(DOC, "phases:", "parameters:\n  - Flavor:\n      type: string\n      default: a\n"
                                  "      allowedValues: [a, b]\n      description: which one\nphases:")},
        PROJECT,
    ),
    ("image-recipe-wildcard-patch", {**BASE, "recipe.yaml": edit(RECIPE, "version: 1.0.0", "version: 1.0.x")},
     PROJECT),
    (
        "container-recipe-wildcard-patch",
        {**BASE, "api.yaml": edit(CONTAINER, "version: 1.0.0", "version: 2.3.x"), "api.Dockerfile": DOCKERFILE},
        PROJECT,
    ),
    ("manifest-file-ending-in-separator", {**BASE, "comp.yaml": COMPONENT + "---\n"}, PROJECT),
    ("empty-documents-between-separators", {**BASE, "comp.yaml": "---\n" + COMPONENT + "---\n---\n\n---\n" + INFRA},
     PROJECT),
    ("document-file-ending-in-separator", {**BASE, "comp.yml": DOC + "---\n"}, PROJECT),
    ("project-file-ending-in-separator", BASE, PROJECT + "---\n"),
    ("lock-path-inside-the-root", BASE, PROJECT + "lock:\n  backend: file\n  path: state/locks\n"),
    ("same-arn-name-different-kinds", {**BASE, "infra.yaml": edit(INFRA, "name: infra", "name: Comp")}, PROJECT),
    (
        "same-arn-name-different-targets",
        {
            "a.yaml": edit(INFRA, "  name: infra\n", "  name: Build_Infra\n  targets: [prod]\n"),
            "b.yaml": edit(INFRA, "  name: infra\n", "  name: build-infra\n  targets: [dev]\n"),
        },
        PROJECT,
    ),
    (
        "sensitive-paths-that-exist",
        {
            "comp.yaml": COMPONENT,
            "comp.yml": edit(DOC, "phases:", "parameters:\n  - Token: {type: string}\nphases:"),
            "recipe.yaml": RECIPE.replace("    - ref: comp\n", "    - ref: comp\n      parameters:\n"
                                          "        - {name: Token, value: [abc]}\n")
            + "  description: secret\n  sensitive: [description, 'components[0].parameters[0].value']\n",
        },
        PROJECT,
    ),
]


@pytest.mark.parametrize(("files", "project"), [pytest.param(f, p, id=i) for i, f, p in ACCEPTED])
def test_accepted(files: dict[str, str], project: str, tmp_path: Path) -> None:
    result = validate(write_tree(tmp_path, files, project))
    assert result.ok, describe(result)


def test_nested_merge_keys_merge_every_level(tmp_path: Path) -> None:
    infra = INFRA + (
        "  tags: &inner {team: platform, env: base}\n"
        "  resourceTags:\n"
        "    <<: &outer\n"
        "      <<: *inner\n"
        "      env: prod\n"
        "    extra: x\n"
    )
    result = validate(write_tree(tmp_path, {"infra.yaml": infra}))
    assert result.ok, describe(result)
    assert result.desired is not None
    spec = result.desired.resources[("prod", "InfrastructureConfiguration", "infra")].spec
    assert dict(spec["resourceTags"]) == {"team": "platform", "env": "prod", "extra": "x"}


def test_empty_documents_are_skipped_not_counted(tmp_path: Path) -> None:
    result = validate(write_tree(tmp_path, {**BASE, "comp.yaml": COMPONENT + "---\n---\n" + INFRA + "---\n"}))
    assert result.ok, describe(result)
    assert result.desired is not None
    assert len(result.desired.resources) == 4  # two resources in two targets


# --- refused, with a located and readable problem ----------------------------------------------------

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str]
    file: str
    line: int
    column: int
    message: str
    project: str = PROJECT
    count: int | None = 1
    absent: tuple[str, ...] = field(default_factory=tuple)  # fragments no problem may contain
    setup: Setup | None = None


def _fifo(name: str) -> Setup:
    def make(root: Path) -> None:
        os.mkfifo(root / name)

    return make


SECRET = "hunter2-s3cr3t"
LONG = "x" * 300

REFUSED: list[Case] = [
    # A: genuinely wrong schemaVersions stay wrong
    Case("schema-version-2", {**BASE, "comp.yml": edit(DOC, "1.0", "2")}, "comp.yml", 1, 1,
         "schemaVersion must be 1.0, not the number 2"),
    Case("schema-version-1.1", {**BASE, "comp.yml": edit(DOC, "1.0", "1.1")}, "comp.yml", 1, 1,
         "schemaVersion must be 1.0, not the number 1.1"),
    Case("schema-version-string-2.0", {**BASE, "comp.yml": edit(DOC, "1.0", "'2.0'")}, "comp.yml", 1, 1,
         "schemaVersion must be 1.0, not '2.0'"),
    Case("schema-version-boolean", {**BASE, "comp.yml": edit(DOC, "1.0", "true")}, "comp.yml", 1, 1,
         "schemaVersion must be 1.0, not the boolean true"),
    Case("workflow-schema-version-3", {"flow.yaml": WORKFLOW, "flow.yml": edit(WORKFLOW_DOC, "1.0", "3")},
         "flow.yml", 1, 1, "schemaVersion must be 1.0, not the number 3"),
    Case("allowed-values-not-a-list",
         {**BASE, "comp.yml": edit(DOC, "phases:", "parameters:\n  - Flavor:\n      type: string\n"
                                   "      allowedValues: a\nphases:")},
         "comp.yml", 5, 7, "the 'allowedValues' of parameter 'Flavor' must be a list of strings"),
    Case("allowed-values-not-strings",
         {**BASE, "comp.yml": edit(DOC, "phases:", "parameters:\n  - Flavor:\n      type: string\n"
                                   "      allowedValues: [a, 2]\nphases:")},
         "comp.yml", 5, 7, "the 'allowedValues' of parameter 'Flavor' must be a list of strings"),
    Case("component-wildcard-version-refused", {**BASE, "comp.yaml": edit(COMPONENT, "1.0.0", "1.0.x")},
         "comp.yaml", 7, 3, "spec.version: '1.0.x' is not a version: write major.minor.patch, e.g. '1.0.0'"),
    Case("recipe-wildcard-minor-refused", {**BASE, "recipe.yaml": edit(RECIPE, "1.0.0", "1.x.x")},
         "recipe.yaml", 6, 3, "spec.version: '1.x.x' is not a recipe version: write major.minor.patch, or "
         "major.minor.x to let Image Builder pick the patch, e.g. '1.0.0' or '1.0.x'"),
    # B: human wording instead of regular expressions and type names
    Case("name-pattern-in-words", {"infra.yaml": edit(INFRA, "name: infra", "name: bad/name!")},
         "infra.yaml", 4, 3, "metadata.name: 'bad/name!' is not a valid name: use 3 to 128 letters, digits, "
         "'-' or '_' (spaces only inside), e.g. 'hardened-al2023'"),
    Case("version-pattern-in-words", {**BASE, "comp.yaml": edit(COMPONENT, "1.0.0", "'1.0'")},
         "comp.yaml", 7, 3, "spec.version: '1.0' is not a version: write major.minor.patch, e.g. '1.0.0'"),
    Case("version-as-number-says-quote-it", {**BASE, "comp.yaml": edit(COMPONENT, "1.0.0", "1.0")},
         "comp.yaml", 7, 3, "spec.version: YAML read the unquoted value as the number 1.0, but it must be a "
         "string: quote it"),
    Case("account-as-number-says-quote-it", BASE, "imagesync.yaml", 8, 5,
         "targets[1].account: YAML read the unquoted value as the number 222222222222, but it must be a string: "
         "quote it", project=edit(PROJECT, 'account: "222222222222"', "account: 222222222222")),
    Case("region-pattern-in-words", BASE, "imagesync.yaml", 7, 5,
         "targets[1].region: 'Europe' is not an AWS Region code, e.g. 'us-east-1'",
         project=edit(PROJECT, "region: eu-west-1", "region: Europe")),
    Case("character-class-pattern-in-words", {"infra.yaml": edit(INFRA, "build-profile", "'build profile!'")},
         "infra.yaml", 6, 3, "spec.instanceProfileName: 'build profile!' may only hold letters, digits"),
    Case("arn-pattern-in-words",
         {**BASE, "recipe.yaml": edit(RECIPE, "- ref: comp", "- componentArn: arn:aws:s3:::bucket/comp")},
         "recipe.yaml", 9, 7, "spec.components[0].componentArn: 'arn:aws:s3:::bucket/comp' is not the ARN of an "
         "Image Builder component, e.g. 'arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x'"),
    # B: sensitive and long values are never echoed
    Case("sensitive-path-value-not-echoed",
         {"infra.yaml": edit(INFRA, "build-profile", f"'{SECRET} !'") + "  sensitive: [instanceProfileName]\n"},
         "infra.yaml", 6, 3, "spec.instanceProfileName: the value (sensitive, not shown) may only hold",
         absent=(SECRET,)),
    Case("sensitive-parameter-value-not-echoed",
         {"comp.yaml": COMPONENT, "comp.yml": edit(DOC, "phases:", "parameters:\n  - Token: {type: string}\nphases:"),
          "recipe.yaml": edit(RECIPE, "    - ref: comp\n", "    - ref: comp\n      parameters:\n"
                              f"        - {{name: Token, value: {SECRET}, sensitive: true}}\n")},
         "recipe.yaml", 11, 25, "spec.components[0].parameters[0].value: the value (sensitive, not shown) is "
         "not a list", absent=(SECRET,)),
    Case("long-value-not-echoed", {"infra.yaml": edit(INFRA, "[m7i.large]", LONG)},
         "infra.yaml", 7, 3, "spec.instanceTypes: a 300-character string is not a list", absent=(LONG[:40],)),
    Case("long-value-pattern-not-echoed", {"infra.yaml": edit(INFRA, "build-profile", f"'{LONG}!'")},
         "infra.yaml", 6, 3, "spec.instanceProfileName: a 301-character string may only hold", count=2,
         absent=(LONG[:40],)),
    # B: a YAML error in a document file is the only problem reported for it
    Case("document-file-syntax-error-not-also-empty", {**BASE, "comp.yml": DOC + "oops: [\n"},
         "comp.yml", 11, 1, "invalid YAML", absent=("is empty",)),
    # B: no follow-on problems
    Case("no-follow-on-for-unparsable-file",
         {"comp.yaml": edit(COMPONENT, "  platform: Linux\n", "  platform: [Linux\n"), "comp.yml": DOC,
          "recipe.yaml": RECIPE},
         "comp.yaml", 7, 10, "invalid YAML", absent=("not defined",)),
    Case("no-follow-on-for-unknown-kind",
         {**BASE, "comp.yaml": edit(COMPONENT, "kind: Component", "kind: Componnet"), "recipe.yaml": RECIPE},
         "comp.yaml", 2, 1, "unknown kind 'Componnet'", absent=("not defined",)),
    # B: did you mean
    Case("did-you-mean-kind", {"infra.yaml": edit(INFRA, "kind: InfrastructureConfiguration",
                                                  "kind: InfrastructureConfig")},
         "infra.yaml", 2, 1, "unknown kind 'InfrastructureConfig'; did you mean 'InfrastructureConfiguration'?"),
    Case("did-you-mean-field", {"infra.yaml": edit(INFRA, "instanceTypes:", "instanceType:")},
         "infra.yaml", 7, 3, "spec.instanceType: unknown field 'instanceType'; did you mean 'instanceTypes'?"),
    Case("did-you-mean-ref",
         {**BASE, "infra.yaml": INFRA, "recipe.yaml": RECIPE,
          "pipe.yaml": edit(PIPELINE, "{ref: infra}", "{ref: infr}")},
         "pipe.yaml", 7, 3, "references InfrastructureConfiguration/infr, which is not defined; did you mean 'infra'?"),
    Case("did-you-mean-target", {"infra.yaml": edit(INFRA, "  name: infra\n", "  name: infra\n  targets: [prd]\n")},
         "infra.yaml", 5, 13, "unknown target 'prd'; did you mean 'prod'?"),
    # B: FIFOs and other non-regular files are refused, never opened
    Case("fifo-manifest", BASE, "pipe.yaml", 0, 0, "is not a regular file", setup=_fifo("pipe.yaml")),
    Case("fifo-document-file", {"comp.yaml": COMPONENT}, "comp.yaml", 8, 3,
         "documentFile 'comp.yml' is not a regular file", setup=_fifo("comp.yml")),
    Case("fifo-dockerfile-template-file", {**BASE, "api.yaml": CONTAINER}, "api.yaml", 11, 3,
         "dockerfileTemplateFile 'api.Dockerfile' is not a regular file", setup=_fifo("api.Dockerfile")),
    # B: lock.path stays inside the manifest root
    Case("lock-path-absolute", BASE, "imagesync.yaml", 11, 3,
         "lock.path '/tmp/imagesync-locks' is outside the manifest root",
         project=PROJECT + "lock:\n  backend: file\n  path: /tmp/imagesync-locks\n"),
    Case("lock-path-dotdot", BASE, "imagesync.yaml", 10, 3, "lock.path '../locks' is outside the manifest root",
         project=PROJECT + "lock:\n  path: ../locks\n"),
    # C: identity per ARN name
    Case("arn-name-collides-by-case",
         {"a.yaml": edit(INFRA, "name: infra", "name: Build-Infra"), "b.yaml": edit(INFRA, "name: infra",
                                                                                    "name: build-infra")},
         "b.yaml", 4, 3, "InfrastructureConfiguration 'build-infra' and 'Build-Infra' (a.yaml:4:3) have the same "
         "ARN name 'build-infra'"),
    Case("arn-name-collides-by-underscore",
         {**BASE, "more.yaml": edit(COMPONENT, "name: comp", "name: Comp")},
         "more.yaml", 4, 3, "Component 'Comp' and 'comp' (comp.yaml:4:3) have the same ARN name 'comp'"),
    Case("arn-name-collides-by-space-and-underscore",
         {"a.yaml": edit(INFRA, "name: infra", "name: 'build infra'"),
          "b.yaml": edit(INFRA, "name: infra", "name: build_infra")},
         "b.yaml", 4, 3, "InfrastructureConfiguration 'build_infra' and 'build infra' (a.yaml:4:3) have the same "
         "ARN name 'build-infra'"),
    # D: sensitive paths name fields of the spec
    Case("sensitive-unknown-field", {"infra.yaml": INFRA + "  description: d\n  sensitive: [descripton]\n"},
         "infra.yaml", 9, 15, "spec.sensitive[0]: 'descripton' is not a field of this spec; did you mean "
         "'description'?"),
    Case("sensitive-absent-field", {"infra.yaml": INFRA + "  sensitive: [keyPair]\n"},
         "infra.yaml", 8, 15, "spec.sensitive[0]: 'keyPair' is not a field of this spec"),
    Case("sensitive-index-out-of-range",
         {**BASE, "recipe.yaml": RECIPE + "  sensitive: ['components[1].parameters[0].value']\n"},
         "recipe.yaml", 10, 15, "spec.sensitive[0]: 'components[1].parameters[0].value' is not a field of this "
         "spec: spec.components has 1 item"),
    Case("sensitive-malformed", {"infra.yaml": INFRA + "  sensitive: ['instanceTypes[0']\n"},
         "infra.yaml", 8, 15, "spec.sensitive[0]: 'instanceTypes[0' is not a field path"),
    Case("sensitive-spec-prefix", {"infra.yaml": INFRA + "  sensitive: [spec.instanceTypes]\n"},
         "infra.yaml", 8, 15, "spec.sensitive[0]: 'spec.instanceTypes' is not a field of this spec; did you mean "
         "'instanceTypes'?"),
]


def run_case(case: Case, root: Path) -> ValidationResult:
    write_tree(root, case.files, case.project)
    if case.setup is not None:
        case.setup(root)
    return validate(root)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in REFUSED])
def test_refused(case: Case, tmp_path: Path) -> None:
    result = run_case(case, tmp_path)
    assert not result.ok
    found = [
        p for p in result.problems
        if (p.location.path, p.location.line, p.location.column) == (case.file, case.line, case.column)
        and case.message in p.message
    ]
    assert found, f"expected {case.file}:{case.line}:{case.column}: ...{case.message}... in\n{describe(result)}"
    for fragment in case.absent:
        assert not any(fragment in p.message for p in result.problems), describe(result)
    if case.count is not None:
        assert len(result.problems) == case.count, describe(result)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in REFUSED] + [i for i, _f, _p in ACCEPTED]
    assert len(ids) == len(set(ids))


def test_no_schema_message_holds_a_regular_expression(tmp_path: Path) -> None:
    """Every patterned field given a wrong value: the messages say what is allowed in words."""
    infra = INFRA + (
        "  subnetId: 'subnet 1!'\n"
        "  snsTopicArn: arn:aws:sqs:us-east-1:111111111111:topic\n"
        "  tags: {'aws:owner': x}\n"
        "  instanceMetadataOptions: {httpTokens: maybe}\n"
    )
    project = edit(PROJECT, "name: dev", "name: Dev_1") + "allowEnv: ['1BAD']\n"
    result = validate(write_tree(tmp_path, {"infra.yaml": edit(infra, "name: infra", "name: x")}, project))
    assert len(result.problems) >= 2, describe(result)
    for problem in result.problems:
        assert not REGEX_TEXT.search(problem.message), str(problem)


# --- the CLI, one per group ----------------------------------------------------------------------------


def run_cli(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imagesync", "validate", str(root)], capture_output=True, text=True, timeout=60
    )


def _assert_refused(done: subprocess.CompletedProcess[str], line: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert line in done.stdout.splitlines(), done.stdout


def test_cli_accepts_what_aws_accepts(tmp_path: Path) -> None:
    files = {**BASE, "comp.yml": edit(DOC, "1.0", "1") + "---\n",
             "recipe.yaml": edit(RECIPE, "version: 1.0.0", "version: 1.0.x")}
    done = run_cli(write_tree(tmp_path, files))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_cli_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"comp.yaml": COMPONENT})
    os.mkfifo(root / "comp.yml")
    done = run_cli(root)
    _assert_refused(
        done, "comp.yaml:8:3: error: documentFile 'comp.yml' is not a regular file (a FIFO); documents must be "
        "regular files"
    )


def test_cli_wording_and_masking(tmp_path: Path) -> None:
    infra = edit(INFRA, "build-profile", f"'{SECRET} !'") + "  sensitive: [instanceProfileName]\n"
    done = run_cli(write_tree(tmp_path, {"infra.yaml": infra}))
    assert SECRET not in done.stdout + done.stderr
    assert not REGEX_TEXT.search(done.stdout)
    _assert_refused(
        done, "infra.yaml:6:3: error: spec.instanceProfileName: the value (sensitive, not shown) may only hold "
        "letters, digits, '_', '+', '=', ',', '.', '@' and '-'"
    )


def test_cli_arn_name_collision(tmp_path: Path) -> None:
    files = {"a.yaml": edit(INFRA, "name: infra", "name: Build-Infra"),
             "b.yaml": edit(INFRA, "name: infra", "name: build_infra")}
    done = run_cli(write_tree(tmp_path, files))
    _assert_refused(
        done, "b.yaml:4:3: error: InfrastructureConfiguration 'build_infra' and 'Build-Infra' (a.yaml:4:3) have "
        "the same ARN name 'build-infra'; Image Builder would treat them as one resource"
    )


def test_cli_unknown_sensitive_path(tmp_path: Path) -> None:
    done = run_cli(write_tree(tmp_path, {"infra.yaml": INFRA + "  sensitive: [instanceType]\n"}))
    _assert_refused(
        done, "infra.yaml:8:15: error: spec.sensitive[0]: 'instanceType' is not a field of this spec; "
        "did you mean 'instanceTypes'?"
    )
