"""The packaged JSON Schemas: in sync with their generator, valid, strict where they should be."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from imagesync.manifest.schemas import KIND_FILES, PROJECT_FILE, load_schema, validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "src" / "imagesync" / "schemas"
ALL_FILES = [*KIND_FILES.values(), PROJECT_FILE]


def _generator() -> ModuleType:
    name = "imagesync_generate_schemas"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "generate_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _generator()


# --- the committed files ------------------------------------------------------------------------


def test_committed_files_match_generator(generator: ModuleType) -> None:
    committed_from = json.loads((SCHEMA_DIR / "component.json").read_text(encoding="utf-8"))["$comment"]
    if committed_from != generator.GENERATED_FROM:
        # The test extra pins the botocore the schemas come from; another botocore has another model.
        pytest.skip(f"schemas say: {committed_from!r}; installed botocore differs: regenerate to compare")
    built = generator.build_schemas()
    assert sorted(built) == sorted(f"{stem}.json" for stem in ALL_FILES)
    for name, schema in built.items():
        committed = (SCHEMA_DIR / name).read_text(encoding="utf-8")
        assert committed == generator.render(schema), f"{name} is stale: run scripts/generate_schemas.py"


def test_top_level_schemas_dir_is_the_packaged_one() -> None:
    top = ROOT / "schemas"
    assert top.is_symlink() and top.resolve() == SCHEMA_DIR.resolve()


@pytest.mark.parametrize("name", ALL_FILES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://imagesync.dev/schemas/{name}.json"
    assert schema["title"] and schema["description"]


def test_load_schema_unknown_name() -> None:
    with pytest.raises(KeyError):
        load_schema("no-such-kind")


# --- validation, table-driven -------------------------------------------------------------------

PLACEHOLDER_ARN = "arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x"

VALID: dict[str, dict[str, Any]] = {
    "Component": {"platform": "Linux", "version": "1.0.0", "documentFile": "components/harden-sshd.yml"},
    "ImageRecipe": {
        "version": "1.0.0",
        "parentImage": PLACEHOLDER_ARN,
        "components": [
            {"componentArn": "arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x"},
            {"ref": "harden-sshd", "parameters": [{"name": "Token", "value": ["x"], "sensitive": True}]},
        ],
    },
    "ContainerRecipe": {
        "containerType": "DOCKER",
        "version": "1.0.0",
        "parentImage": {"ref": "base-container"},
        "targetRepository": {"service": "ECR", "repositoryName": "app"},
        "dockerfileTemplateFile": "Dockerfile.tpl",
    },
    "Workflow": {"type": "BUILD", "version": "1.0.0", "document": {"name": "build", "steps": []}},
    "InfrastructureConfiguration": {"instanceProfileName": "imagebuilder"},
    "DistributionConfiguration": {"distributions": [{"region": "us-east-1"}]},
    "ImagePipeline": {
        "imageRecipeArn": {"ref": "hardened-base"},
        "infrastructureConfigurationArn": {"ref": "build-private"},
        "distributionConfigurationArn": {"ref": "org-wide"},
        "schedule": {
            "scheduleExpression": "cron(0 4 ? * MON *)",
            "pipelineExecutionStartCondition": "EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
        },
        "workflows": [{"workflowArn": {"ref": "build-wf"}}],
    },
    "LifecyclePolicy": {
        "executionRole": "arn:aws:iam::111111111111:role/lifecycle",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 5}}],
        "resourceSelection": {"recipes": [{"name": "hardened-base", "semanticVersion": "1.0.0"}]},
    },
    "Image": {
        "imageRecipeArn": {"ref": "hardened-base"},
        "infrastructureConfigurationArn": {"ref": "build-infra"},
        "workflows": [{"workflowArn": {"ref": "build-wf"}}],
    },
}

PROJECT = {
    "project": "golden-images",
    "targets": [
        {
            "name": "prod-use1",
            "region": "us-east-1",
            "roleArn": "arn:aws:iam::111111111111:role/imagesync",
            "vars": {"vpc": "vpc-0abc", "size": 3, "debug": False},
        },
        {"name": "prod-euw1", "region": "eu-west-1", "account": "111111111111"},
    ],
    "lock": {"backend": "file"},
    "defaults": {"bump": "patch", "retainVersions": 0},
    "allowEnv": ["GIT_SHA"],
}


def manifest(kind: str, spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "imagesync/v1",
        "kind": kind,
        "metadata": {"name": "hardened-base", **metadata},
        "spec": copy.deepcopy(VALID[kind]) if spec is None else spec,
    }


def with_spec(kind: str, **changes: Any) -> dict[str, Any]:
    """A valid manifest of `kind` with spec members changed (a value of None removes the member)."""
    document = manifest(kind)
    for key, value in changes.items():
        if value is None:
            document["spec"].pop(key, None)
        else:
            document["spec"][key] = value
    return document


def error_paths(name: str, instance: Any) -> list[str]:
    return sorted(e.json_path for e in validator(name).iter_errors(instance))


@pytest.mark.parametrize("kind", sorted(KIND_FILES))
def test_minimal_manifest_is_valid(kind: str) -> None:
    assert error_paths(KIND_FILES[kind], manifest(kind)) == []


@pytest.mark.parametrize("kind", sorted(KIND_FILES))
def test_common_envelope_fields(kind: str) -> None:
    described = "description" in load_schema(KIND_FILES[kind])["properties"]["spec"]["properties"]
    extra = {"description": "${target.name}"} if described else {}  # CreateImage takes no description
    document = with_spec(kind, tags={"team": "${vars.team}", "env": "prod"}, sensitive=["tags.team"], **extra)
    document["metadata"].update(targets=["prod-use1"], annotations={"imagesync/prune": "disabled", "x/y": "z"})
    assert error_paths(KIND_FILES[kind], document) == []


def test_kind_must_match_the_schema() -> None:
    assert "$.kind" in error_paths("component", {**manifest("Component"), "kind": "ImageRecipe"})


def test_project_file_is_valid() -> None:
    assert error_paths(PROJECT_FILE, PROJECT) == []


def case(name: str, document: Any, expected: str | None = None) -> Any:
    return pytest.param(document, expected, id=name)


INVALID = [
    case("unknown spec field", with_spec("Component", platfrom="Linux"), "$.spec"),
    case("wrong enum", with_spec("Component", platform="Linuxx"), "$.spec.platform"),
    case("placeholder in an enum", with_spec("Component", platform="${vars.os}"), "$.spec.platform"),
    case("missing version", with_spec("Component", version=None), "$.spec"),
    case("wildcard version", with_spec("ImageRecipe", version="1.x.x"), "$.spec.version"),
    case("document and documentFile", with_spec("Component", document={"phases": []}), "$.spec"),
    case("no document at all", with_spec("Workflow", document=None), "$.spec"),
    case("data is not a manifest field", with_spec("Component", documentFile=None, data="x"), "$.spec"),
    case("removed member semanticVersion", with_spec("Component", semanticVersion="1.0.0"), "$.spec"),
    case("removed member name", with_spec("InfrastructureConfiguration", name="x-y-z"), "$.spec"),
    case("two dockerfile sources", with_spec("ContainerRecipe", dockerfileTemplateUri="s3://b/k"), "$.spec"),
    case(
        "ref not allowed",
        with_spec("InfrastructureConfiguration", instanceProfileName={"ref": "x"}),
        "$.spec.instanceProfileName",
    ),
    case(
        "ref with extra key",
        with_spec("ImagePipeline", imageRecipeArn={"ref": "abc", "v": 1}),
        "$.spec.imageRecipeArn",
    ),
    case("ref name too short", with_spec("ImageRecipe", parentImage={"ref": "x"}), "$.spec.parentImage"),
    case("ARN pattern", with_spec("ImagePipeline", imageRecipeArn="arn:aws:s3:::bucket"), "$.spec.imageRecipeArn"),
    case(
        "component item with both ref and componentArn",
        with_spec("ImageRecipe", components=[{"ref": "abc", "componentArn": "arn"}]),
        "$.spec.components[0]",
    ),
    case(
        "component item unknown key",
        with_spec("ImageRecipe", components=[{"ref": "abc", "sensitive": True}]),
        "$.spec.components[0]",
    ),
    case("bad bump", with_spec("Component", bump="huge"), "$.spec.bump"),
    case("negative retainVersions", with_spec("Workflow", retainVersions=-1), "$.spec.retainVersions"),
    case("metadata.name too short", manifest("Component", name="ab"), "$.metadata.name"),
    case("metadata unknown field", manifest("Component", labels={}), "$.metadata"),
    case("empty targets", manifest("Component", targets=[]), "$.metadata.targets"),
    case(
        "bad prune annotation",
        manifest("Component", annotations={"imagesync/prune": "no"}),
        "$.metadata.annotations['imagesync/prune']",
    ),
    case("wrong apiVersion", {**manifest("Component"), "apiVersion": "v1"}, "$.apiVersion"),
    case("required model member", with_spec("InfrastructureConfiguration", instanceProfileName=None), "$.spec"),
    case(
        "nested model maximum",
        with_spec(
            "LifecyclePolicy",
            policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 1001}}],
        ),
        "$.spec.policyDetails[0].filter.value",
    ),
    case(
        "model maxLength still applies to a placeholder",
        with_spec("InfrastructureConfiguration", instanceProfileName="${vars.p}" + "x" * 300),
        "$.spec.instanceProfileName",
    ),
    case("tag key aws:", with_spec("Component", tags={"aws:x": "y"}), "$.spec.tags"),
]


@pytest.mark.parametrize(("document", "expected"), INVALID)
def test_invalid_manifest(document: dict[str, Any], expected: str) -> None:
    assert expected in error_paths(KIND_FILES[document["kind"]], document)


VALID_VARIANTS = [
    case(
        "target.region in an ARN",
        with_spec("ImagePipeline", imageRecipeArn="arn:aws:imagebuilder:${target.region}:aws:image-recipe/x/1.0.0"),
    ),
    case(
        "target.account in an ARN",
        with_spec("InfrastructureConfiguration", snsTopicArn="arn:aws:sns:us-east-1:${target.account}:topic"),
    ),
    case("vars in a patterned name", with_spec("InfrastructureConfiguration", instanceProfileName="${vars.profile}")),
    case("env in a workflow ARN", with_spec("ImagePipeline", workflows=[{"workflowArn": "${env.WORKFLOW_ARN}"}])),
    case(
        "third-party component ARN",
        with_spec(
            "ImageRecipe",
            components=[{"componentArn": "arn:aws:imagebuilder:us-east-1:third-party:component/cis/1.0.0/1"}],
        ),
    ),
]


@pytest.mark.parametrize(("document", "expected"), VALID_VARIANTS)
def test_valid_variants(document: dict[str, Any], expected: None) -> None:
    assert error_paths(KIND_FILES[document["kind"]], document) == []


def _project(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(PROJECT)
    document.update(changes)
    return document


def _target(**fields: Any) -> dict[str, Any]:
    return _project(targets=[{"name": "a", "region": "us-east-1", **fields}])


PROJECT_INVALID = [
    case("missing project", {"targets": PROJECT["targets"]}, "$"),
    case("bad project name", _project(project="Golden"), "$.project"),
    case("no targets", _project(targets=[]), "$.targets"),
    case("bad region", _target(region="useast1"), "$.targets[0].region"),
    case("bad account", _target(account="123"), "$.targets[0].account"),
    case("bad role", _target(roleArn="role"), "$.targets[0].roleArn"),
    case("var of wrong type", _target(vars={"x": [1]}), "$.targets[0].vars.x"),
    case("unknown lock backend", _project(lock={"backend": "etcd"}), "$.lock.backend"),
    case("unknown key", _project(extra=1), "$"),
    case("bad env name", _project(allowEnv=["1ABC"]), "$.allowEnv[0]"),
]


@pytest.mark.parametrize(("document", "expected"), PROJECT_INVALID)
def test_invalid_project_file(document: dict[str, Any], expected: str) -> None:
    assert expected in error_paths(PROJECT_FILE, document)


# --- documentation ------------------------------------------------------------------------------


def _documented(schema: dict[str, Any]) -> bool:
    if schema.get("description") or schema.get("title"):
        return True
    branches = schema.get("oneOf") or schema.get("anyOf")
    return bool(branches) and all(_documented(b) for b in branches)


def _properties(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield f"{path}.{name}", sub
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{path}[{index}]")


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_property_is_documented(name: str) -> None:
    undocumented = [path for path, sub in _properties(load_schema(name), "") if not _documented(sub)]
    assert undocumented == []


@pytest.mark.parametrize("name", KIND_FILES.values())
def test_top_level_spec_properties_have_descriptions(name: str) -> None:
    spec = load_schema(name)["properties"]["spec"]
    assert spec["description"]
    missing = [key for key, sub in spec["properties"].items() if not sub.get("description")]
    assert missing == []


def test_descriptions_are_plain_and_short(generator: ModuleType) -> None:
    assert generator.describe("<p>Creates a <i>new</i> component.</p> <p>More text here.</p>") == (
        "Creates a new component. More text here."
    )
    long = "word " * 100
    assert len(generator.describe(long + ". Next.")) <= 300


# --- packaging ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_schemas_load_from_an_installed_wheel(tmp_path: Path) -> None:
    if importlib.util.find_spec("build") is None:
        pytest.skip("python -m build is unavailable (pip install build, or the 'test' extra)")
    # Build from a copy so the build leaves no build/ or egg-info behind in the working tree.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    dist = tmp_path / "dist"
    # Not measured by coverage either: the installed copy is not the source the suite measures.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "COVERAGE_PROCESS_START")}

    def run(*argv: str | Path, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
        return done

    # Installed without its dependencies into a directory of its own that comes first on the path:
    # the dependencies are this environment's (installing them into a fresh venv took most of this
    # test's time).
    run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, cwd=source)
    (wheel,) = dist.glob("imagesync-*.whl")
    installed = tmp_path / "installed"
    run(sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
        "--target", installed, wheel)
    env["PYTHONPATH"] = str(installed)
    done = run(
        sys.executable,
        "-c",
        "from imagesync.manifest.schemas import load_schema; print(len(load_schema('component')['properties']))",
    )
    assert done.stdout.strip() == str(len(load_schema("component")["properties"]))
    # The wheel's module, not the source tree's.
    where = run(sys.executable, "-c", "import imagesync; print(imagesync.__file__)").stdout.strip()
    assert where.startswith(str(installed))
    listing = (
        "import importlib.resources as r, json; "
        "print(json.dumps([p.name for p in (r.files('imagesync') / 'schemas').iterdir()]))"
    )
    packaged = run(sys.executable, "-c", listing)
    # the generated manifest schemas, plus the hand-written schema of the plan JSON
    assert sorted(json.loads(packaged.stdout)) == sorted([*(f"{stem}.json" for stem in ALL_FILES), "plan.json"])
