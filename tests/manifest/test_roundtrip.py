"""Round trip: example manifests -> loader -> Create/Update request bodies -> botocore model.

Every resource of every kind in every target of `examples/manifests` is turned into the request
imagesync would send, and each request is checked twice against botocore's Image Builder model:
by the sandbox's server-side `validate_input` (types, required members, lengths, patterns, enums)
and by botocore's own client-side `ParamValidator` (which also refuses unknown members, something
`validate_input` does not look at). A parametrized table then pins the specific facts the round
trip must preserve: documents sent as `data`, references resolved to ARNs, placeholders
substituted per target and imagesync-only fields never sent.

"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.validate import ParamValidator

from imagesync.desired import Address, DesiredState, Resource, Target
from imagesync.kinds import REGISTRY, thaw
from imagesync.kinds.base import IMAGESYNC_FIELDS
from imagesync.manifest.loader import load
from imagesync.manifest.problems import ManifestError
from imagesync.sandbox.errors import SandboxError
from imagesync.sandbox.model import service_model
from imagesync.sandbox.validation import validate_input

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "manifests"
PROJECT = "golden-images"
TARGETS = ("prod-use1", "staging-euw1")
MUTABLE = [k.name for k in REGISTRY if k.update_op is not None]  # updated in place

# Everything the examples define, by (target, kind, name). A hand-written list on purpose: if the
# loader silently drops or invents a resource, the test says so.
_EVERYWHERE = [
    ("Component", "harden-cis"),
    ("Component", "smoke-test"),
    ("Component", "install-nginx"),
    ("Component", "install-worker-runtime"),
    ("Workflow", "build-and-verify"),
    ("InfrastructureConfiguration", "build-private"),
    ("DistributionConfiguration", "org-wide"),
    ("ImageRecipe", "hardened-al2023"),
    ("ImageRecipe", "app-web"),
    ("ImageRecipe", "app-worker"),
    ("ImagePipeline", "hardened-al2023"),
    ("ImagePipeline", "app-web"),
    ("ImagePipeline", "app-worker"),
    ("LifecyclePolicy", "golden-image-retention"),
]
_PROD_ONLY = [
    ("DistributionConfiguration", "api-ecr"),
    ("ContainerRecipe", "api-container"),
    ("ImagePipeline", "api-container"),
]
EXPECTED_KEYS = sorted(
    [(t, k, n) for t in TARGETS for k, n in _EVERYWHERE] + [("prod-use1", k, n) for k, n in _PROD_ONLY]
)


# --- helpers -------------------------------------------------------------------------------------


def make_resolver(target: Target) -> Callable[[str, str, str, str | None], str]:
    """resolve(kind, name, form, in_target): the realistic ARN of a managed resource in `target`."""
    base = f"arn:aws:imagebuilder:{target.region}:{target.account}:"

    def resolve(kind: str, name: str, form: str, in_target: str | None = None) -> str:
        assert in_target is None, in_target
        if form == "image":
            return f"{base}image/{name}/x.x.x"
        assert form == "arn", form
        if kind == "Component":
            return f"{base}component/{name}/1.0.0/1"
        if kind == "Workflow":
            return f"{base}workflow/build/{name}/1.0.0/1"
        if kind in ("ImageRecipe", "ContainerRecipe"):
            return f"{base}{REGISTRY[kind].arn_type}/{name}/1.0.0"
        if kind in ("InfrastructureConfiguration", "DistributionConfiguration"):
            return f"{base}{REGISTRY[kind].arn_type}/{name}"
        raise AssertionError(f"nothing references a {kind}, but {name} was resolved as one")

    return resolve


def tags_for(resource: Resource) -> dict[str, str]:
    return {"imagesync:project": PROJECT, "imagesync:address": str(resource.address)}


def create_body(state: DesiredState, resource: Resource) -> dict[str, Any]:
    kind = resource.kind_info
    target = state.project.target(resource.target)
    body = kind.create_request(
        resource.spec,
        resource.name,
        make_resolver(target),
        version=resource.spec.get("version", "1.0.0"),
        document=resource.document,
        tags=tags_for(resource),
    )
    body["clientToken"] = f"roundtrip-{resource.target}-{resource.kind}-{resource.name}"
    return body


def own_arn(state: DesiredState, resource: Resource) -> str:
    target = state.project.target(resource.target)
    return resource.kind_info.arn_base(target.region, target.account or "", resource.name)


def update_body(state: DesiredState, resource: Resource) -> dict[str, Any]:
    target = state.project.target(resource.target)
    body = resource.kind_info.update_request(
        resource.spec, resource.name, own_arn(state, resource), make_resolver(target)
    )
    body["clientToken"] = f"roundtrip-update-{resource.target}-{resource.name}"
    return body


def assert_model_valid(operation: str, body: dict[str, Any]) -> None:
    """Both the sandbox's server-side validation and botocore's client-side validation pass."""
    try:
        validate_input(operation, body)
    except SandboxError as exc:  # pragma: no cover - the assertion message is the point
        pytest.fail(f"{operation} rejected by validate_input: {exc}\nbody: {body!r}")
    shape = service_model().operation_model(operation).input_shape
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), f"{operation} rejected by botocore:\n{report.generate_report()}"


def leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) of every scalar in a JSON-shaped value."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*path, key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from leaves(value, (*path, i))
    else:
        yield path, node


def dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from dicts(value)


def raw_manifests() -> list[dict[str, Any]]:
    """The example manifests as plain YAML, before any loading, substitution or resolution."""
    out = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        if path.name == "imagesync.yaml":
            continue
        out.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return out


def raw_spec(kind: str, name: str) -> dict[str, Any]:
    for doc in raw_manifests():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc["spec"]
    raise KeyError((kind, name))


def substitute(text: str, target: Target) -> str:
    out = text.replace("${target.name}", target.name).replace("${target.region}", target.region)
    out = out.replace("${target.account}", target.account or "")
    for key, value in target.vars.items():
        out = out.replace("${vars." + key + "}", str(value))
    return out


@pytest.fixture(scope="module")
def state() -> DesiredState:
    return load(EXAMPLES)


def resource(state: DesiredState, target: str, kind: str, name: str) -> Resource:
    found = state.get(target, Address(kind, name))
    assert found is not None, f"{kind}/{name} is missing for {target}"
    return found


# --- every resource, every kind, every target ----------------------------------------------------


def test_examples_define_exactly_the_expected_resources(state: DesiredState) -> None:
    assert sorted(state.resources) == EXPECTED_KEYS
    # Every kind but the one-off Image build: the example estate's pipelines build its images, and
    # tests/reconcile/test_image.py applies Image manifests of its own.
    assert {k for _t, k, _n in EXPECTED_KEYS} == set(REGISTRY.names()) - {"Image"}, "every kind is exercised"


@pytest.mark.parametrize(("target", "kind", "name"), EXPECTED_KEYS, ids=["/".join(k) for k in EXPECTED_KEYS])
def test_create_request_is_model_valid(state: DesiredState, target: str, kind: str, name: str) -> None:
    r = resource(state, target, kind, name)
    body = create_body(state, r)
    assert_model_valid(r.kind_info.create_op, body)
    assert body["name"] == name
    assert body["tags"]["imagesync:project"] == PROJECT
    assert body["tags"]["imagesync:address"] == f"{kind}/{name}"
    # imagesync-only fields never reach Image Builder (top level) ...
    assert not IMAGESYNC_FIELDS & set(body), sorted(IMAGESYNC_FIELDS & set(body))
    # ... no `{ref: NAME}` survives anywhere, and no imagesync placeholder is left unexpanded.
    assert not [d for d in dicts(body) if "ref" in d]
    for path, value in leaves(body):
        if isinstance(value, str):
            assert "${target." not in value and "${vars." not in value and "${env." not in value, path
    if r.kind_info.versioned:
        assert body["semanticVersion"] == r.spec["version"]
    else:
        assert "semanticVersion" not in body


@pytest.mark.parametrize(("target", "kind", "name"), EXPECTED_KEYS, ids=["/".join(k) for k in EXPECTED_KEYS])
def test_create_request_does_not_mutate_the_desired_spec(
    state: DesiredState, target: str, kind: str, name: str
) -> None:
    r = resource(state, target, kind, name)
    before = thaw(r.spec)
    create_body(state, r)
    create_body(state, r)
    assert thaw(r.spec) == before
    assert create_body(state, r) == create_body(state, r)


MUTABLE_KEYS = [k for k in EXPECTED_KEYS if k[1] in MUTABLE]


@pytest.mark.parametrize(("target", "kind", "name"), MUTABLE_KEYS, ids=["/".join(k) for k in MUTABLE_KEYS])
def test_update_request_is_model_valid_and_a_full_replacement(
    state: DesiredState, target: str, kind: str, name: str
) -> None:
    r = resource(state, target, kind, name)
    info = r.kind_info
    assert info.update_op == f"Update{info.noun}"
    body = update_body(state, r)
    assert_model_valid(info.update_op, body)
    assert "name" not in body and "tags" not in body
    assert body[info.update_member] == own_arn(state, r)
    # The Update call sends the full desired object: the Create body minus identity and tags.
    create = create_body(state, r)
    expected = {k: v for k, v in create.items() if k not in ("name", "tags", "clientToken")}
    expected[info.update_member] = own_arn(state, r)
    assert {k: v for k, v in body.items() if k != "clientToken"} == expected


@pytest.mark.parametrize("kind", MUTABLE)
def test_update_request_drops_spec_tags(state: DesiredState, kind: str) -> None:
    r = next(x for x in state if x.kind == kind and x.target == "prod-use1")
    spec = {**thaw(r.spec), "tags": {"team": "platform"}}
    target = state.project.target("prod-use1")
    body = r.kind_info.update_request(spec, r.name, own_arn(state, r), make_resolver(target))
    assert "tags" not in body and "name" not in body
    body["clientToken"] = "t"
    assert_model_valid(r.kind_info.update_op, body)
    # while the Create request merges the spec's tags with imagesync's own
    create = r.kind_info.create_request(spec, r.name, make_resolver(target), tags=tags_for(r))
    assert create["tags"] == {"team": "platform", **tags_for(r)}


@pytest.mark.parametrize("kind", [k.name for k in REGISTRY if k.versioned])
def test_versioned_kinds_have_no_update(state: DesiredState, kind: str) -> None:
    r = next(x for x in state if x.kind == kind)
    assert r.kind_info.update_op is None
    with pytest.raises(ValueError):
        r.kind_info.update_request(r.spec, r.name, "arn:aws:imagebuilder:us-east-1:1:x/y", lambda *a: "")
    with pytest.raises(ValueError):
        r.kind_info.create_request(r.spec, r.name, lambda *a: "", version=None)


# --- the round-trip facts, per resource ----------------------------------------------------------

Check = Callable[[dict[str, Any], Resource, Target], None]


def _file(relative: str) -> str:
    return (EXAMPLES / relative).read_text(encoding="utf-8")


def document_file_sent(relative: str) -> Check:
    def check(body: dict[str, Any], r: Resource, t: Target) -> None:
        assert body["data"] == _file(relative)
        assert r.document == _file(relative)
        for key in ("version", "bump", "retainVersions", "document", "documentFile", "sensitive", "uri"):
            assert key not in body, key
        assert body["semanticVersion"] == raw_spec(r.kind, r.name)["version"]

    return check


def inline_document_sent(body: dict[str, Any], r: Resource, t: Target) -> None:
    assert isinstance(body["data"], str)
    assert yaml.safe_load(body["data"]) == raw_spec(r.kind, r.name)["document"]
    assert yaml.safe_load(body["data"]) == thaw(r.spec["document"])
    for key in ("version", "bump", "retainVersions", "document", "documentFile", "sensitive"):
        assert key not in body, key


def harden_cis(body: dict[str, Any], r: Resource, t: Target) -> None:
    document_file_sent("components/harden-cis.yml")(body, r, t)
    assert body["platform"] == "Linux"
    assert body["supportedOsVersions"] == ["Amazon Linux 2023"]
    assert "bump" not in body  # the example sets `bump: auto`


def workflow(body: dict[str, Any], r: Resource, t: Target) -> None:
    document_file_sent("workflows/build-and-verify.yml")(body, r, t)
    assert body["type"] == "BUILD"


def recipe_hardened(body: dict[str, Any], r: Resource, t: Target) -> None:
    resolve = make_resolver(t)
    assert body["parentImage"] == f"arn:aws:imagebuilder:{t.region}:aws:image/amazon-linux-2023-x86/x.x.x"
    assert body["components"] == [
        {"componentArn": f"arn:aws:imagebuilder:{t.region}:aws:component/update-linux/x.x.x"},
        {
            "componentArn": resolve("Component", "harden-cis", "arn"),
            "parameters": [{"name": "AllowedSshUsers", "value": ["ec2-user ssm-user"]}],
        },
        {"componentArn": f"arn:aws:imagebuilder:{t.region}:aws:component/amazon-cloudwatch-agent-linux/x.x.x"},
        {"componentArn": resolve("Component", "smoke-test", "arn")},
    ]
    assert body["semanticVersion"] == "1.0.0"
    assert body["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 30
    assert body["amiTags"] == {"os": "amazon-linux-2023", "hardening": "cis"}


def recipe_app_web(body: dict[str, Any], r: Resource, t: Target) -> None:
    resolve = make_resolver(t)
    # a managed parent recipe is layered through its newest image
    assert body["parentImage"] == f"arn:aws:imagebuilder:{t.region}:{t.account}:image/hardened-al2023/x.x.x"
    assert body["components"][0] == {
        "componentArn": resolve("Component", "install-nginx", "arn"),
        "parameters": [{"name": "WorkerProcesses", "value": ["4"]}],
    }
    assert body["semanticVersion"] == "2.1.0"


def recipe_app_worker(body: dict[str, Any], r: Resource, t: Target) -> None:
    assert body["parentImage"] == make_resolver(t)("ImageRecipe", "hardened-al2023", "image")
    assert body["components"][0] == {"componentArn": make_resolver(t)("Component", "install-worker-runtime", "arn")}


def container_recipe(body: dict[str, Any], r: Resource, t: Target) -> None:
    assert body["dockerfileTemplateData"] == _file("containers/api.Dockerfile")
    assert "dockerfileTemplateFile" not in body and "dockerfileTemplateUri" not in body
    assert body["parentImage"] == "public.ecr.aws/amazonlinux/amazonlinux:2023"  # a literal, left alone
    assert body["components"][1] == {"componentArn": make_resolver(t)("Component", "install-worker-runtime", "arn")}
    assert body["containerType"] == "DOCKER"
    assert body["targetRepository"] == {"service": "ECR", "repositoryName": "golden/api"}


def pipeline_hardened(body: dict[str, Any], r: Resource, t: Target) -> None:
    resolve = make_resolver(t)
    assert body["imageRecipeArn"] == resolve("ImageRecipe", "hardened-al2023", "arn")
    assert body["infrastructureConfigurationArn"] == resolve("InfrastructureConfiguration", "build-private", "arn")
    assert body["distributionConfigurationArn"] == resolve("DistributionConfiguration", "org-wide", "arn")
    assert body["workflows"] == [{"workflowArn": resolve("Workflow", "build-and-verify", "arn")}]
    assert body["executionRole"] == f"arn:aws:iam::{t.account}:role/imagesync-workflow-execution"
    for key in ("imageRecipeArn", "infrastructureConfigurationArn", "distributionConfigurationArn"):
        assert isinstance(body[key], str)


def pipeline_app(recipe: str) -> Check:
    def check(body: dict[str, Any], r: Resource, t: Target) -> None:
        resolve = make_resolver(t)
        assert body["imageRecipeArn"] == resolve("ImageRecipe", recipe, "arn")
        assert body["infrastructureConfigurationArn"] == resolve("InfrastructureConfiguration", "build-private", "arn")
        assert body["distributionConfigurationArn"] == resolve("DistributionConfiguration", "org-wide", "arn")
        assert "workflows" not in body and "containerRecipeArn" not in body

    return check


def pipeline_container(body: dict[str, Any], r: Resource, t: Target) -> None:
    resolve = make_resolver(t)
    assert body["containerRecipeArn"] == resolve("ContainerRecipe", "api-container", "arn")
    assert body["distributionConfigurationArn"] == resolve("DistributionConfiguration", "api-ecr", "arn")
    assert "imageRecipeArn" not in body


def infrastructure(body: dict[str, Any], r: Resource, t: Target) -> None:
    assert body["subnetId"] == t.vars["subnet"]
    assert body["securityGroupIds"] == [t.vars["securityGroup"]]
    assert body["instanceProfileName"] == t.vars["instanceProfile"]
    assert body["logging"] == {
        "s3Logs": {"s3BucketName": t.vars["logBucket"], "s3KeyPrefix": f"image-builder/{t.name}"}
    }
    assert body["resourceTags"] == {"cost-center": "platform"}  # resourceTags are not imagesync's tags


def distribution_org_wide(body: dict[str, Any], r: Resource, t: Target) -> None:
    kms = [d["amiDistributionConfiguration"]["kmsKeyId"] for d in body["distributions"]]
    assert kms == [
        f"arn:aws:kms:us-east-1:{t.account}:alias/golden-images",
        f"arn:aws:kms:eu-west-1:{t.account}:alias/golden-images",
    ]
    # Image Builder's own `{{ ... }}` expressions are not imagesync placeholders
    assert body["distributions"][0]["amiDistributionConfiguration"]["name"] == "{{ imagebuilder:buildDate }}-golden"


def distribution_api_ecr(body: dict[str, Any], r: Resource, t: Target) -> None:
    assert body["distributions"][0]["region"] == t.region == "us-east-1"


def lifecycle(body: dict[str, Any], r: Resource, t: Target) -> None:
    assert body["executionRole"] == f"arn:aws:iam::{t.account}:role/imagesync-lifecycle"
    assert body["resourceType"] == "AMI_IMAGE"
    assert [d["action"]["type"] for d in body["policyDetails"]] == ["DEPRECATE", "DELETE"]


FACTS: list[tuple[str, str, Check]] = [
    ("Component", "harden-cis", harden_cis),
    ("Component", "smoke-test", document_file_sent("components/smoke-test.yml")),
    ("Component", "install-nginx", inline_document_sent),
    ("Component", "install-worker-runtime", inline_document_sent),
    ("Workflow", "build-and-verify", workflow),
    ("ImageRecipe", "hardened-al2023", recipe_hardened),
    ("ImageRecipe", "app-web", recipe_app_web),
    ("ImageRecipe", "app-worker", recipe_app_worker),
    ("ContainerRecipe", "api-container", container_recipe),
    ("ImagePipeline", "hardened-al2023", pipeline_hardened),
    ("ImagePipeline", "app-web", pipeline_app("app-web")),
    ("ImagePipeline", "app-worker", pipeline_app("app-worker")),
    ("ImagePipeline", "api-container", pipeline_container),
    ("InfrastructureConfiguration", "build-private", infrastructure),
    ("DistributionConfiguration", "org-wide", distribution_org_wide),
    ("DistributionConfiguration", "api-ecr", distribution_api_ecr),
    ("LifecyclePolicy", "golden-image-retention", lifecycle),
]
FACT_CASES = [
    pytest.param(t, kind, name, check, id=f"{t}/{kind}/{name}")
    for kind, name, check in FACTS
    for t in TARGETS
    if (t, kind, name) in EXPECTED_KEYS
]


@pytest.mark.parametrize(("target", "kind", "name", "check"), FACT_CASES)
def test_round_trip_fact(state: DesiredState, target: str, kind: str, name: str, check: Check) -> None:
    r = resource(state, target, kind, name)
    check(create_body(state, r), r, state.project.target(target))


def test_every_resource_has_a_fact() -> None:
    assert {(k, n) for k, n, _ in FACTS} == {(k, n) for _t, k, n in EXPECTED_KEYS}


# --- per-target substitution -----------------------------------------------------------------------

SHARED = [(k, n) for k, n in _EVERYWHERE]


@pytest.mark.parametrize(("kind", "name"), SHARED, ids=[f"{k}/{n}" for k, n in SHARED])
def test_targets_differ_exactly_where_placeholders_and_refs_stand(state: DesiredState, kind: str, name: str) -> None:
    """prod-use1 and staging-euw1 bodies differ at placeholders (where the values differ) and at
    resolved references (whose ARNs carry the region and account), and nowhere else."""
    prod, staging = (state.project.target(t) for t in TARGETS)
    a = dict(leaves(create_body(state, resource(state, prod.name, kind, name))))
    b = dict(leaves(create_body(state, resource(state, staging.name, kind, name))))
    a.pop(("clientToken",))
    b.pop(("clientToken",))
    assert a.keys() == b.keys()
    differing = {p for p in a if a[p] != b[p]}

    raw = raw_spec(kind, name)
    expected: set[tuple[Any, ...]] = set()
    for path, value in leaves(raw):
        if isinstance(value, str) and "${" in value:
            assert a[path] == substitute(value, prod)
            assert b[path] == substitute(value, staging)
            if substitute(value, prod) != substitute(value, staging):
                expected.add(path)
    for ref in resource(state, prod.name, kind, name).references:
        # {ref: x} list items become {componentArn: ARN}; scalar refs are replaced in place
        path = (*ref.path[:-1], "componentArn") if ref.path[-1] == "ref" else ref.path
        assert a[path].startswith(f"arn:aws:imagebuilder:{prod.region}:{prod.account}:")
        assert b[path].startswith(f"arn:aws:imagebuilder:{staging.region}:{staging.account}:")
        expected.add(path)
    assert differing == expected


def test_targets_restricted_resources_exist_only_in_their_targets(state: DesiredState) -> None:
    all_targets = {t.name for t in state.project.targets}
    assert all_targets == set(TARGETS)
    restricted = 0
    for doc in raw_manifests():
        meta = doc["metadata"]
        wanted = set(meta.get("targets") or all_targets)
        restricted += "targets" in meta
        present = {t for t in all_targets if state.get(t, Address(doc["kind"], meta["name"])) is not None}
        assert present == wanted, f"{doc['kind']}/{meta['name']}"
    assert restricted == 3


# --- dependency order ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_dependency_order_puts_every_resource_after_what_it_references(state: DesiredState, target: str) -> None:
    order = state.for_target(target)
    mine = [r for r in state if r.target == target]
    assert sorted(r.address for r in order) == sorted(r.address for r in mine)
    assert len({r.address for r in order}) == len(order)
    position = {r.address: i for i, r in enumerate(order)}
    for r in order:
        assert r.target == target
        for dep in r.depends_on:
            assert dep in position, f"{r.address} depends on {dep}, which is not in {target}"
            assert position[dep] < position[r.address], f"{dep} must come before {r.address}"
    # and the order is stable
    assert [r.address for r in state.for_target(target)] == [r.address for r in order]


@pytest.mark.parametrize("target", TARGETS)
def test_depends_on_of_the_hardened_pipeline(state: DesiredState, target: str) -> None:
    r = resource(state, target, "ImagePipeline", "hardened-al2023")
    assert r.depends_on == (
        Address("DistributionConfiguration", "org-wide"),
        Address("ImageRecipe", "hardened-al2023"),
        Address("InfrastructureConfiguration", "build-private"),
        Address("Workflow", "build-and-verify"),
    )


@pytest.mark.parametrize("target", TARGETS)
def test_depends_on_matches_the_references_written_in_the_manifests(state: DesiredState, target: str) -> None:
    """What a resource depends on is what its manifest `{ref:}`s, plus the recipes a lifecycle
    policy selects by name."""
    for r in state:
        if r.target != target:
            continue
        raw = raw_spec(r.kind, r.name)
        written = set()
        for d in dicts(raw):
            if set(d) >= {"ref"} and isinstance(d["ref"], str):
                written.add(d["ref"])
        if r.kind == "LifecyclePolicy":
            written |= {s["name"] for s in raw["resourceSelection"].get("recipes") or []}
        assert {a.name for a in r.depends_on} == written, str(r.address)


# --- normalization --------------------------------------------------------------------------------

_SENSITIVE_RECIPE = """\
apiVersion: imagesync/v1
kind: ImageRecipe
metadata:
  name: secret-params
spec:
  version: 3.0.0
  sensitive: [description]
  description: A recipe with masked parameters.
  parentImage: arn:aws:imagebuilder:${target.region}:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - ref: harden-cis
      parameters:
        - name: AllowedSshUsers
          value: [ops]
          sensitive: true
    - componentArn: arn:aws:imagebuilder:${target.region}:aws:component/update-linux/x.x.x
      parameters:
        - name: Token
          value: [s3cr3t]
          sensitive: false
"""

_INLINE_COMPONENT = """\
apiVersion: imagesync/v1
kind: Component
metadata:
  name: tricky-inline
spec:
  platform: Linux
  version: 0.1.0
  sensitive: [description]
  retainVersions: 2
  bump: minor
  description: Inline document with values that YAML likes to reinterpret.
  document:
    schemaVersion: 1.0
    description: "ünïcødé — ✓"
    parameters:
      - Flag:
          type: string
          default: "yes"
          description: "on"
      - When:
          type: string
          default: "2024-01-01"
          description: "1.0"
    phases:
      - name: build
        steps:
          - name: Shell
            action: ExecuteBash
            timeoutSeconds: 60
            inputs:
              commands:
                - echo "${HOME} $PATH ${target.region}"
                - |
                  cat <<'EOF' > /tmp/x
                  null: ~
                  key: 'quoted'
                  EOF
                - "007"
                - "#not a comment"
"""


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    shutil.copytree(EXAMPLES, root)
    return root


def test_parameters_are_sent_without_sensitive(estate: Path) -> None:
    (estate / "secret.yaml").write_text(_SENSITIVE_RECIPE)
    state = load(estate)
    for t in TARGETS:
        r = resource(state, t, "ImageRecipe", "secret-params")
        assert r.spec["components"][0]["parameters"][0]["sensitive"] is True  # kept for imagesync's own use
        body = create_body(state, r)
        assert_model_valid("CreateImageRecipe", body)
        assert "sensitive" not in body
        assert not [d for d in dicts(body) if "sensitive" in d]
        target = state.project.target(t)
        assert body["components"] == [
            {
                "componentArn": make_resolver(target)("Component", "harden-cis", "arn"),
                "parameters": [{"name": "AllowedSshUsers", "value": ["ops"]}],
            },
            {
                "componentArn": f"arn:aws:imagebuilder:{target.region}:aws:component/update-linux/x.x.x",
                "parameters": [{"name": "Token", "value": ["s3cr3t"]}],
            },
        ]
        assert body["description"] == "A recipe with masked parameters."  # masked in output, sent as is


def test_inline_document_is_yaml_text_that_parses_back(estate: Path) -> None:
    (estate / "tricky.yaml").write_text(_INLINE_COMPONENT)
    state = load(estate)
    for t in TARGETS:
        target = state.project.target(t)
        r = resource(state, t, "Component", "tricky-inline")
        body = create_body(state, r)
        assert_model_valid("CreateComponent", body)
        assert isinstance(body["data"], str) and body["data"] == r.document
        parsed = yaml.safe_load(body["data"])
        assert parsed == thaw(r.spec["document"])
        for key in ("version", "bump", "retainVersions", "document", "documentFile", "sensitive"):
            assert key not in body
        # the values YAML likes to reinterpret stay what the manifest said they were
        assert parsed["parameters"][0]["Flag"]["default"] == "yes"
        assert parsed["parameters"][0]["Flag"]["description"] == "on"
        assert parsed["parameters"][1]["When"]["default"] == "2024-01-01"
        assert parsed["parameters"][1]["When"]["description"] == "1.0"
        assert parsed["schemaVersion"] == 1.0
        assert parsed["description"] == "ünïcødé — ✓"
        commands = parsed["phases"][0]["steps"][0]["inputs"]["commands"]
        # shell variables reach Image Builder untouched; imagesync placeholders are substituted
        assert commands[0] == f'echo "${{HOME}} $PATH {target.region}"'
        assert commands[1] == "cat <<'EOF' > /tmp/x\nnull: ~\nkey: 'quoted'\nEOF\n"
        assert commands[2:] == ["007", "#not a comment"]


def test_inline_documents_in_the_examples_parse_back(state: DesiredState) -> None:
    for r in state:
        if r.kind == "Component" and "document" in r.spec:
            body = create_body(state, r)
            assert yaml.safe_load(body["data"]) == thaw(r.spec["document"]) == raw_spec(r.kind, r.name)["document"]


def test_document_file_shell_variables_reach_image_builder_untouched(estate: Path) -> None:
    doc = estate / "components" / "smoke-test.yml"
    shell = 'echo "${HOME} ${USER:-x} ${target.name}" && systemctl is-active auditd'
    text = doc.read_text().replace("systemctl is-active auditd", shell)
    doc.write_text(text)
    state = load(estate)
    for t in TARGETS:
        body = create_body(state, resource(state, t, "Component", "smoke-test"))
        assert body["data"] == text.replace("${target.name}", t)
        assert '"${HOME} ${USER:-x} ' in body["data"]


# --- bugs -------------------------------------------------------------------------------------------


def test_placeholder_in_tag_key_is_substituted_or_refused(estate: Path) -> None:
    (estate / "tagged.yaml").write_text(
        "apiVersion: imagesync/v1\nkind: Component\nmetadata: {name: tagged}\n"
        "spec:\n  platform: Linux\n  version: 1.0.0\n  documentFile: components/smoke-test.yml\n"
        "  tags: {\"${target.name}-owner\": team}\n"
    )
    try:
        state = load(estate)
    except ManifestError:
        return  # refusing it is fine too
    for t in TARGETS:
        r = resource(state, t, "Component", "tagged")
        body = create_body(state, r)
        assert body["tags"].get(f"{t}-owner") == "team", body["tags"]
        assert_model_valid("CreateComponent", body)


def test_value_still_holding_a_placeholder_after_substitution_is_refused(estate: Path) -> None:
    project = estate / "imagesync.yaml"
    text = project.read_text()
    project.write_text(text.replace("instanceProfile: imagesync-build-instance", "instanceProfile: ${target.name}", 1))
    try:
        state = load(estate)
    except ManifestError:
        return
    r = resource(state, "prod-use1", "InfrastructureConfiguration", "build-private")
    assert_model_valid("CreateInfrastructureConfiguration", create_body(state, r))
