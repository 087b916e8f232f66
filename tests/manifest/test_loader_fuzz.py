"""Fuzzing the manifest loader: whatever the files hold, `load()` returns a DesiredState or raises
ManifestError whose problems point at real places in real files. Never any other exception.

(a) random text (YAML punctuation, tabs, anchors, merge keys, placeholders, unicode) as a manifest;
(b) random line-level mutations of a copy of examples/manifests;
(c) random nested values dumped as YAML under `spec:` of every kind, and schema-guided specs
    (mostly valid, sometimes junk): whatever load() accepts must build Create/Update requests that
    botocore's model accepts.

Each example gets a fresh `tempfile.TemporaryDirectory()` (hypothesis reuses pytest's tmp_path).

Crashes the fuzzers found are pinned by deterministic regression tests near the end of this file.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from imagesync.desired import Address, DesiredState
from imagesync.kinds import REGISTRY
from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError
from imagesync.manifest.schemas import KIND_FILES, load_schema
from imagesync.sandbox.model import service_model
from imagesync.sandbox.validation import validate_input

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "manifests"

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

PROJECT_YAML = """\
project: fuzz
targets:
  - name: prod-use1
    region: us-east-1
    account: "111111111111"
    vars: {subnet: subnet-0a1b2c3d4e5f60001, name: web}
  - name: staging-euw1
    region: eu-west-1
    account: "222222222222"
    vars: {subnet: subnet-0f9e8d7c6b5a40002, name: web}
"""

def load_or_problems(root: Path) -> DesiredState | ManifestError:
    """load(root); a ManifestError is returned; anything else fails the test."""
    try:
        state = load(root)
    except ManifestError as exc:
        assert exc.problems, "a ManifestError must list at least one problem"
        event("ManifestError")
        return exc
    event("loaded")
    return state


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines())


def assert_locations_are_real(root: Path, error: ManifestError) -> None:
    for problem in error.problems:
        loc = problem.location
        where = root / loc.path
        assert not Path(loc.path).is_absolute(), f"{problem}: location should be relative to the root"
        assert where.is_file(), f"{problem}: {loc.path} is not a file under the manifest root"
        assert where.resolve().is_relative_to(root.resolve()), str(problem)
        assert loc.line >= 0 and loc.column >= 0, str(problem)
        if loc.line == 0:
            assert loc.column == 0, f"{problem}: a file-level location has no column"
        else:
            assert loc.column >= 1, str(problem)
            assert loc.line <= line_count(where) + 1, f"{problem}: past the end of {loc.path}"
        assert problem.message.strip(), str(problem)


# --- (a) random text as a manifest ------------------------------------------------------------------

# Explicit typed tags with a random value after them once crashed the loader
# (test_regression_explicit_core_tag_with_bad_value); they stay in the mix.
TOKENS = [
    "!!int ", "!!float ", "!!bool ", "!!timestamp ",
    "\n", "\n", "\n", " ", "  ", "    ", "\t", ": ", ":", "- ", "-", "? ", ",", "[", "]", "{", "}",
    "#", "# comment", "'", '"', "|", "|-", ">", ">+", "&a ", "*a", "&b ", "*b", "<<: ", "<<: *a",
    "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2024:\n", "!!str ", "!!null ", "!!binary ",
    "!!set ", "!!omap ", "!!seq ", "!!map ", "!custom ", "! ", "@", "`", "%", "\\", "\\u0041",
    "${target.region}", "${target.name}", "${target.account}", "${target.nope}", "${vars.subnet}",
    "${vars.missing}", "${env.HOME}", "${HOME}", "${", "}", "{{ x }}", "~", "null", "true", "no",
    "0x1F", "1e400", ".nan", "-.inf", "2024-01-01", "12:30:00", "0o17", "1_000",
    "é", "日本", "😀", "\u2028", "\u0085", "\ufeff", "\u200b", "\r\n", "\r",
    "apiVersion: imagesync/v1\n", "apiVersion: imagesync/v2\n", "kind: ", "Component", "ImageRecipe",
    "ImagePipeline", "Workflow", "metadata:", "name: ", "targets: ", "annotations: ", "spec:",
    "ref: ", "version: 1.0.0", "documentFile: ", "document: ", "components: ", "parameters: ",
    "platform: Linux", "phases:", "steps:", "action: ExecuteBash", "x", "abc", "1", "0",
]
KINDS = REGISTRY.names()

fragments = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)),
    max_size=40,
).map("".join)


@st.composite
def manifest_texts(draw: st.DrawFn) -> str:
    body = draw(fragments)
    if draw(st.booleans()):
        return body
    # a valid envelope with fuzz for its spec, so the text gets past the envelope checks
    kind = draw(st.sampled_from(KINDS))
    indent = draw(st.sampled_from(["", "  ", "\t", " "]))
    spec = "\n".join(indent + line for line in body.split("\n"))
    return f"apiVersion: imagesync/v1\nkind: {kind}\nmetadata:\n  name: fuzz-{kind.lower()}\nspec:\n{spec}\n"


def _fresh_estate(tmp: str, files: dict[str, str]) -> Path:
    root = Path(tmp)
    (root / "imagesync.yaml").write_text(PROJECT_YAML, encoding="utf-8")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    return root


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=300)
@given(text=manifest_texts(), name=st.sampled_from(["m.yaml", "m.yml", "sub/dir/m.yaml"]))
def test_random_text_loads_or_raises_manifest_error(text: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _fresh_estate(tmp, {name: text})
        result = load_or_problems(root)
        if isinstance(result, ManifestError):
            assert_locations_are_real(root, result)
        else:
            assert isinstance(result, DesiredState)
            assert {r.target for r in result} <= {"prod-use1", "staging-euw1"}


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=60)
@given(text=fragments)
def test_random_text_as_a_document_file(text: str) -> None:
    """The same fuzz as a Component's documentFile (read as text, expanded, then parsed)."""
    manifest = (
        "apiVersion: imagesync/v1\nkind: Component\nmetadata: {name: doc-fuzz}\n"
        "spec: {platform: Linux, version: 1.0.0, documentFile: docs/fuzz.yml}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = _fresh_estate(tmp, {"c.yaml": manifest, "docs/fuzz.yml": text})
        result = load_or_problems(root)
        if isinstance(result, ManifestError):
            assert_locations_are_real(root, result)
        else:
            r = result.get("prod-use1", Address("Component", "doc-fuzz"))
            assert r is not None and isinstance(r.document, str)


# --- (b) mutations of the example estate ------------------------------------------------------------

MUTABLE_FILES = sorted(
    str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.suffix in (".yaml", ".yml")
)
_VALUE_LINE = r"^(\s*(?:-\s+)?[^\s#:\[\]{}][^#:\[\]{}]*:[ \t]+)(\S.*)$"

insert_text = st.one_of(
    st.sampled_from(TOKENS),
    st.text(alphabet=st.sampled_from(list(":-?[]{},#&*!|>'\"%@`\\ \t\n${}.x1é😀")), min_size=1, max_size=8),
    st.text(min_size=1, max_size=8),
)
scalar_values = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.none(),
    st.sampled_from(["${target.region}", "${vars.subnet}", "${vars.nope}", "${HOME}", "x.x.x", "[]", "{}", "~"]),
)


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, str, str]:
    """(file, description, mutated text) for one mutation of one example YAML file."""
    name = draw(st.sampled_from(MUTABLE_FILES))
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    lines = text.split("\n")
    op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace", "indent"]))
    if op == "delete":
        i = draw(st.integers(0, len(lines) - 1))
        del lines[i]
        return name, f"delete line {i + 1}", "\n".join(lines)
    if op == "duplicate":
        i = draw(st.integers(0, len(lines) - 1))
        lines.insert(i, lines[i])
        return name, f"duplicate line {i + 1}", "\n".join(lines)
    if op == "swap":
        i = draw(st.integers(0, len(lines) - 1))
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        return name, f"swap lines {i + 1} and {j + 1}", "\n".join(lines)
    if op == "insert":
        offset = draw(st.integers(0, len(text)))
        chars = draw(insert_text)
        return name, f"insert {chars!r} at {offset}", text[:offset] + chars + text[offset:]
    if op == "replace":
        candidates = [i for i, line in enumerate(lines) if re.match(_VALUE_LINE, line)]
        i = draw(st.sampled_from(candidates))
        value = draw(scalar_values)
        match = re.match(_VALUE_LINE, lines[i])
        assert match is not None
        lines[i] = match.group(1) + _yaml_scalar(value)
        return name, f"replace the value on line {i + 1} with {value!r}", "\n".join(lines)
    i = draw(st.integers(0, len(lines) - 1))
    width = draw(st.integers(0, 14))
    lines[i] = draw(st.sampled_from([" ", "\t"])) * width + lines[i].lstrip(" ")
    return name, f"indent line {i + 1} by {width}", "\n".join(lines)


def test_examples_load_cleanly() -> None:
    """The baseline the mutations start from."""
    state = load(EXAMPLES)
    assert len(state.resources) == 31
    assert "components.yaml" in MUTABLE_FILES and "imagesync.yaml" in MUTABLE_FILES
    assert "components/harden-cis.yml" in MUTABLE_FILES and "workflows/build-and-verify.yml" in MUTABLE_FILES


@pytest.mark.timeout(120)
@settings(FUZZ, max_examples=100)
@given(mutation=mutations())
def test_mutated_examples_load_or_report_problems_at_real_places(mutation: tuple[str, str, str]) -> None:
    name, what, text = mutation
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "manifests"
        shutil.copytree(EXAMPLES, root)
        (root / name).write_text(text, encoding="utf-8", newline="")
        result = load_or_problems(root)
        if isinstance(result, ManifestError):
            assert_locations_are_real(root, result)
        else:
            assert isinstance(result, DesiredState), what
            assert [t.name for t in result.project.targets]


# --- (c) random values under spec: ------------------------------------------------------------------

ARN = "arn:aws:imagebuilder:${target.region}:${target.account}"
BASE_SPECS: dict[str, dict[str, Any]] = {
    "Component": {"platform": "Linux", "version": "1.0.0", "documentFile": ".docs/smoke-test.yml"},
    "Workflow": {"type": "BUILD", "version": "1.0.0", "documentFile": ".docs/build-and-verify.yml"},
    "InfrastructureConfiguration": {"instanceProfileName": "build", "subnetId": "${vars.subnet}"},
    "DistributionConfiguration": {
        "distributions": [
            {"region": "${target.region}", "amiDistributionConfiguration": {"name": "{{ imagebuilder:buildDate }}-x"}}
        ]
    },
    "ImageRecipe": {
        "version": "1.0.0",
        "parentImage": "arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x",
        "components": [{"componentArn": "arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x"}],
    },
    "ContainerRecipe": {
        "version": "1.0.0",
        "containerType": "DOCKER",
        "parentImage": "public.ecr.aws/amazonlinux/amazonlinux:2023",
        "components": [{"componentArn": "arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x"}],
        "dockerfileTemplateFile": "containers/api.Dockerfile",
        "targetRepository": {"service": "ECR", "repositoryName": "golden/api"},
    },
    "ImagePipeline": {
        "imageRecipeArn": f"{ARN}:image-recipe/base/1.0.0",
        "infrastructureConfigurationArn": f"{ARN}:infrastructure-configuration/build",
    },
    "LifecyclePolicy": {
        "executionRole": "arn:aws:iam::${target.account}:role/lifecycle",
        "resourceType": "AMI_IMAGE",
        "policyDetails": [{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 5}}],
        "resourceSelection": {"recipes": [{"name": "base", "semanticVersion": "x.x.x"}]},
    },
    "Image": {
        "imageRecipeArn": f"{ARN}:image-recipe/base/1.0.0",
        "infrastructureConfigurationArn": f"{ARN}:infrastructure-configuration/build",
    },
}
assert set(BASE_SPECS) == set(KINDS)

FIELD_NAMES = sorted(
    {
        "version", "bump", "retainVersions", "document", "documentFile", "dockerfileTemplateFile",
        "dockerfileTemplateData", "sensitive", "tags", "uri", "data", "name", "components", "parameters",
        "ref", "componentArn", "parentImage", "imageRecipeArn", "containerRecipeArn", "workflows",
        "workflowArn", "infrastructureConfigurationArn", "distributionConfigurationArn", "schedule",
        "description", "platform", "type", "phases", "steps", "schemaVersion", "value", "region",
    }
)
fuzz_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(),
    fuzz_text,
    st.sampled_from([
        "${target.region}", "${vars.subnet}", "${vars.nope}", "${target.bogus}", "${env.HOME}", "${HOME}",
        "1.0.0", "x.x.x", "", "Linux", "BUILD", "DOCKER", "ENABLED",
        ".docs/smoke-test.yml", ".docs/build-and-verify.yml", "../outside.yml", "/etc/passwd",
        "containers/api.Dockerfile",
        "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x",
    ]),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), fuzz_text)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        st.builds(lambda n: {"ref": n}, st.one_of(fuzz_text, st.sampled_from(["base", "fuzz", "x"]))),
    ),
    max_leaves=12,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*path, i)))
    return out


def _set(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node[path[0]] = _set(node[path[0]], path[1:], value)
    return node


@st.composite
def specs(draw: st.DrawFn, kind: str) -> Any:
    import copy

    mode = draw(st.sampled_from(["whole", "override", "plant", "base"]))
    if mode == "whole":
        return draw(values)
    spec = copy.deepcopy(BASE_SPECS[kind])
    if mode == "override":
        for key, value in draw(st.dictionaries(keys, values, min_size=1, max_size=3)).items():
            spec[key] = value
    elif mode == "plant":
        spec = _set(spec, draw(st.sampled_from(_paths(spec)[1:])), draw(values))
    return spec


def _support_files(root: Path) -> None:
    # In a dot-directory, which the loader does not scan for manifests: a document file that the
    # fuzzed spec no longer names must not turn into a stray "manifest".
    (root / ".docs").mkdir()
    for relative in ("components/smoke-test.yml", "workflows/build-and-verify.yml"):
        shutil.copy(EXAMPLES / relative, root / ".docs")
    (root / "containers").mkdir()
    shutil.copy(EXAMPLES / "containers/api.Dockerfile", root / "containers")


@pytest.mark.parametrize("kind", KINDS)
def test_base_specs_load(kind: str) -> None:
    """The fuzz's starting points are valid, so mutations of them probe past the schema."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = {"apiVersion": "imagesync/v1", "kind": kind, "metadata": {"name": "fuzz"}, "spec": BASE_SPECS[kind]}
        root = _fresh_estate(tmp, {"m.yaml": yaml.safe_dump(manifest)})
        _support_files(root)
        state = load(root)
        assert state.get("prod-use1", Address(kind, "fuzz")) is not None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_random_spec_values_load_or_raise_manifest_error(kind: str) -> None:
    @settings(FUZZ, max_examples=30)
    @given(spec=specs(kind), name=st.sampled_from(["fuzz", "fuzz-2"]), restrict=st.booleans())
    def check(spec: Any, name: str, restrict: bool) -> None:
        metadata: dict[str, Any] = {"name": name}
        if restrict:
            metadata["targets"] = ["staging-euw1"]
        manifest = {"apiVersion": "imagesync/v1", "kind": kind, "metadata": metadata, "spec": spec}
        text = yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False)
        with tempfile.TemporaryDirectory() as tmp:
            root = _fresh_estate(tmp, {"m.yaml": text})
            _support_files(root)
            result = load_or_problems(root)
            if isinstance(result, ManifestError):
                assert_locations_are_real(root, result)
                return
            assert isinstance(result, DesiredState)
            for r in result:
                assert r.kind == kind and r.name == name
                # whatever the loader accepts, the Create request can be built from it
                body = r.kind_info.create_request(
                    r.spec, r.name, lambda k, n, f, t: f"arn:aws:imagebuilder:us-east-1:1:{k}/{n}",
                    version="1.0.0", document=r.document, tags={"imagesync:project": "fuzz"},
                )
                assert body.get("name") == (name if r.kind_info.named else None)

    check()


# --- (c2) schema-guided specs: whatever load() accepts is a model-valid request ----------------------

# Strings for patterned fields are drawn from the pattern over printable ASCII: Python's `re` (used
# by jsonschema) gives \w and \s Unicode meanings that the service's Java regexes do not have, see
# test_bug_schema_patterns_accept_non_ascii_word_and_space.
_PRINTABLE_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_DOC_FILES = {
    "documentFile": st.sampled_from([".docs/smoke-test.yml", ".docs/build-and-verify.yml"]),
    "dockerfileTemplateFile": st.sampled_from(["containers/api.Dockerfile", "containers/missing.Dockerfile"]),
}


@functools.cache
def _pattern(pattern: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True, alphabet=_PRINTABLE_ASCII).filter(lambda s: low <= len(s) <= high)


def from_schema(node: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that mostly conform to a (generated, $ref-free) kind schema node; 1 in 12 is junk."""
    return st.integers(0, 11).flatmap(lambda n: values if n == 0 else _conforming(node, depth))


def _conforming(node: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives:
        rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
        merged = []
        for alt in alternatives:
            both = {**rest, **alt}
            if "required" in rest or "required" in alt:
                both["required"] = sorted(set(rest.get("required", [])) | set(alt.get("required", [])))
            merged.append(both)
        return st.one_of([_conforming(m, depth) for m in merged])
    kind = node.get("type")
    if depth > 7:
        return st.none()
    if kind == "object" or "properties" in node:
        return _object(node, depth)
    if kind == "array":
        low = node.get("minItems", 0)
        high = max(low, min(node.get("maxItems", 3), 3))
        unique = (lambda x: json.dumps(x, sort_keys=True, default=str)) if node.get("uniqueItems") else None
        return st.lists(from_schema(node.get("items", {}), depth + 1), min_size=low, max_size=high, unique_by=unique)
    if kind == "string":
        low, high = node.get("minLength", 0), node.get("maxLength", 10**6)
        if "pattern" in node:
            return _pattern(node["pattern"], low, high)
        return st.text(st.characters(blacklist_categories=("Cs",)), min_size=low, max_size=max(low, min(high, 12)))
    if kind == "integer":
        return st.integers(node.get("minimum", -5), node.get("maximum", 10**6))
    if kind == "boolean":
        return st.booleans()
    if kind == "number":
        return st.floats(node.get("minimum", -1e6), node.get("maximum", 1e6))
    return values


def _object(node: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    props: dict[str, Any] = node.get("properties", {})
    required = [k for k in node.get("required", []) if k in props]
    optional = [k for k in props if k not in required]
    extra = node.get("additionalProperties")

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        chosen = required + (draw(st.lists(st.sampled_from(optional), unique=True, max_size=4)) if optional else [])
        out = {k: draw(_DOC_FILES[k] if k in _DOC_FILES else from_schema(props[k], depth + 1)) for k in chosen}
        if not props and isinstance(extra, dict):  # a map such as tags
            names = node.get("propertyNames", {})
            alternatives = names.get("anyOf") or [names]
            first = alternatives[0]
            key = _pattern(first["pattern"], 1, 128) if "pattern" in first else st.text(min_size=1, max_size=8)
            low = node.get("minProperties", 0)
            out.update(draw(st.dictionaries(key, from_schema(extra, depth + 1), min_size=low, max_size=max(low, 3))))
        return out

    return build()


def assert_model_valid(operation: str, body: dict[str, Any]) -> None:
    validate_input(operation, body)
    report = ParamValidator().validate(body, service_model().operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", KINDS)
def test_schema_guided_specs_load_into_model_valid_requests(kind: str) -> None:
    spec_schema = load_schema(KIND_FILES[kind])["properties"]["spec"]

    @settings(FUZZ, max_examples=30)
    @given(spec=from_schema(spec_schema))
    def check(spec: Any) -> None:
        manifest = {"apiVersion": "imagesync/v1", "kind": kind, "metadata": {"name": "fuzz"}, "spec": spec}
        with tempfile.TemporaryDirectory() as tmp:
            root = _fresh_estate(tmp, {"m.yaml": yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False)})
            _support_files(root)
            result = load_or_problems(root)
            if isinstance(result, ManifestError):
                assert_locations_are_real(root, result)
                return
        for r in result:
            info = r.kind_info
            target = result.project.target(r.target)
            prefix = f"arn:aws:imagebuilder:{target.region}:{target.account}"
            body = info.create_request(
                r.spec, r.name, lambda k, n, f, t, prefix=prefix: f"{prefix}:x/{n}",
                version="1.0.0", document=r.document,
                tags={"imagesync:project": "fuzz", "imagesync:address": str(r.address)},
            )
            body["clientToken"] = "fuzz"
            assert_model_valid(info.create_op, body)
            if info.update_op is not None:
                arn = info.arn_base(target.region, target.account or "", r.name)
                update = info.update_request(r.spec, r.name, arn, lambda k, n, f, t: "x")
                update["clientToken"] = "fuzz"
                assert "name" not in update and "tags" not in update
                assert_model_valid(info.update_op, update)

    check()


# --- open bugs found by the fuzzers (deterministic reproducers) -------------------------------------------


def _load_with(files: dict[str, str]) -> DesiredState | ManifestError:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "manifests"
        shutil.copytree(EXAMPLES, root)
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        try:
            return load(root)
        except ManifestError as exc:
            return exc


@pytest.mark.parametrize("tagged", ["!!int abc", "!!float abc", "!!bool abc", "!!timestamp abc"])
def test_regression_explicit_core_tag_with_bad_value(tagged: str) -> None:
    result = _load_with({"bad.yaml": (
        f"apiVersion: imagesync/v1\nkind: Component\nmetadata: {{name: x1}}\nspec: {{description: {tagged}}}\n"
    )})
    assert isinstance(result, ManifestError)
    assert any(p.location.path == "bad.yaml" and p.location.line == 4 for p in result.problems)


@pytest.mark.parametrize("mutual", [False, True], ids=["self", "mutual"])
def test_regression_manifest_naming_itself_as_document_vanishes(mutual: bool) -> None:
    files = {"x.yaml": (
        "apiVersion: imagesync/v1\nkind: Component\nmetadata: {name: xself}\n"
        f"spec: {{platform: Linux, version: 1.0.0, documentFile: {'y.yaml' if mutual else 'x.yaml'}}}\n"
    )}
    if mutual:
        files["y.yaml"] = (
            "apiVersion: imagesync/v1\nkind: Component\nmetadata: {name: yself}\n"
            "spec: {platform: Linux, version: 1.0.0, documentFile: x.yaml}\n"
        )
    result = _load_with(files)
    # Either the components exist, or the loader says why they cannot: never silence.
    if isinstance(result, ManifestError):
        assert any(p.location.path in files for p in result.problems)
    else:
        assert result.get("prod-use1", Address("Component", "xself")) is not None


@pytest.mark.parametrize("field", ["instanceProfileName", "tag key"])
def test_regression_schema_patterns_accept_non_ascii_word_and_space(field: str) -> None:
    spec: dict[str, Any] = {"instanceProfileName": "build"}
    if field == "instanceProfileName":
        spec["instanceProfileName"] = "r\u00f4le"
    else:
        spec["tags"] = {"team\x1fa": "platform"}
    manifest = {
        "apiVersion": "imagesync/v1",
        "kind": "InfrastructureConfiguration",
        "metadata": {"name": "infra"},
        "spec": spec,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = _fresh_estate(tmp, {"m.yaml": yaml.safe_dump(manifest, allow_unicode=True)})
        try:
            state = load(root)
        except ManifestError:
            return  # refused at load time, as it should be
    r = state.get("prod-use1", Address("InfrastructureConfiguration", "infra"))
    assert r is not None
    body = r.kind_info.create_request(r.spec, r.name, lambda *a: "", tags={"imagesync:project": "fuzz"})
    body["clientToken"] = "t"
    assert_model_valid("CreateInfrastructureConfiguration", body)


# --- regressions: crashes found while writing these tests, since fixed in src/ -------------------------


@pytest.mark.parametrize("kind", ["[Component]", "{a: 1}"])
def test_unhashable_kind_is_a_problem_not_a_crash(kind: str) -> None:
    result = _load_with({"bad.yaml": f"apiVersion: imagesync/v1\nkind: {kind}\nmetadata: {{name: abc}}\nspec: {{}}\n"})
    assert isinstance(result, ManifestError)
    assert any(p.location.path == "bad.yaml" and "kind" in p.message for p in result.problems)


@pytest.mark.parametrize("field", ["documentFile", "dockerfileTemplateFile"])
def test_nul_in_document_file_is_a_problem_not_a_crash(field: str) -> None:
    if field == "documentFile":
        spec = 'platform: Linux, version: 1.0.0, documentFile: "a\\0b"'
        kind = "Component"
    else:
        spec = (
            "version: 1.0.0, containerType: DOCKER, parentImage: x, "
            "targetRepository: {service: ECR, repositoryName: x}, "
            "components: [{componentArn: 'arn:aws:imagebuilder:us-east-1:aws:component/x/1.0.0'}], "
            'dockerfileTemplateFile: "a\\0b"'
        )
        kind = "ContainerRecipe"
    manifest = f"apiVersion: imagesync/v1\nkind: {kind}\nmetadata: {{name: abc}}\nspec: {{{spec}}}\n"
    result = _load_with({"bad.yaml": manifest})
    assert isinstance(result, ManifestError)
    assert any(p.location.path == "bad.yaml" for p in result.problems)


@pytest.mark.parametrize("targets", ["[[prod-use1]]", "[{a: 1}]"])
def test_unhashable_metadata_target_is_a_problem_not_a_crash(targets: str) -> None:
    result = _load_with({"bad.yaml": (
        f"apiVersion: imagesync/v1\nkind: Component\nmetadata: {{name: abc, targets: {targets}}}\n"
        "spec: {platform: Linux, version: 1.0.0, documentFile: components/smoke-test.yml}\n"
    )})
    assert isinstance(result, ManifestError)
    assert any(p.location.path == "bad.yaml" and p.location.line == 3 for p in result.problems)
