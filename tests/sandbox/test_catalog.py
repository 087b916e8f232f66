"""Tests for the sandbox's Amazon-owned catalog (imagesync.sandbox.catalog)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.model import ServiceModel, Shape

from imagesync.sandbox import catalog

REGIONS = ("us-east-1", "eu-west-2", "cn-north-1")

REQUIRED_COMPONENTS: dict[str, int] = {
    "update-linux": 2,
    "update-windows": 2,
    "amazon-cloudwatch-agent-linux": 2,
    "aws-cli-version-2-linux": 2,
    "stig-build-linux-high": 2,
    "inspector-test-linux": 2,
    "simple-boot-test-linux": 2,
    "reboot-test-linux": 2,
    "python-3-linux": 2,
    "docker-ce-linux": 2,
    "powershell-windows": 2,
}
TEST_COMPONENTS = {"inspector-test-linux", "simple-boot-test-linux", "reboot-test-linux"}

REQUIRED_IMAGES: dict[str, int] = {
    "amazon-linux-2023-x86": 3,
    "amazon-linux-2023-arm64": 3,
    "ubuntu-server-22-lts-x86": 3,
    "windows-server-2022-english-full-base-x86": 3,
    "amazon-linux-2-x86": 3,
}

ACTION_MODULES = {
    "AppendFile", "Assert", "CopyFile", "CopyFolder", "CreateFile", "CreateFolder",
    "CreateSymlink", "DeleteFile", "DeleteFolder", "ExecuteBash", "ExecuteBinary",
    "ExecuteDocument", "ExecutePowerShell", "InstallMSI", "ListFiles", "MoveFile", "MoveFolder",
    "ReadFile", "Reboot", "SetFileEncoding", "SetFileOwner", "SetFolderOwner",
    "SetFilePermissions", "SetFolderPermissions", "SetRegistry", "S3Download", "S3Upload",
    "UninstallMSI", "UpdateOS", "WebDownload",
}  # fmt: skip

# Members where the catalog follows the real service rather than a botocore model constraint
# (see the catalog's module docstring). Keyed by (structure shape name, member name).
SERVICE_OVER_MODEL = {
    ("Image", "version"),  # the service returns "x.y.z/build"; the model says VersionNumber
    ("ComponentParameterDetail", "type"),  # "string"; the model pattern is case-sensitive
    ("Component", "tags"),  # {} although TagMap has min 1
    ("Image", "tags"),
}

ISO_MS_Z = re.compile(r"^(2024|2025|2026)-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(scope="module")
def model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("imagebuilder")


def _semver_key(version: str) -> tuple[int, ...]:
    return tuple(int(node) for node in version.split("/")[0].split("."))


def _check_shape(value: Any, shape: Shape, path: str, owner: str = "", member: str = "") -> None:
    """Recursively check value against shape: member names, types, enums, patterns, lengths."""
    exempt = (owner, member) in SERVICE_OVER_MODEL
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), path
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: not members of {shape.name}: {sorted(unknown)}"
        for name in shape.required_members:
            assert name in value, f"{path}: missing required member {name}"
        for name, item in value.items():
            _check_shape(item, shape.members[name], f"{path}.{name}", shape.name, name)
    elif kind == "list":
        assert isinstance(value, list), path
        if not exempt:
            assert len(value) >= shape.metadata.get("min", 0), path
            assert len(value) <= shape.metadata.get("max", len(value)), path
        for i, item in enumerate(value):
            _check_shape(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        assert isinstance(value, dict), path
        if not exempt:
            assert len(value) >= shape.metadata.get("min", 0), path
        for key, item in value.items():
            _check_shape(key, shape.key, f"{path}<key>")
            _check_shape(item, shape.value, f"{path}[{key}]")
    elif kind == "string":
        assert isinstance(value, str), path
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.name} {shape.enum}"
        if not exempt:
            assert len(value) >= shape.metadata.get("min", 0), path
            assert len(value) <= shape.metadata.get("max", len(value)), path
            pattern = shape.metadata.get("pattern")
            if pattern:
                assert re.search(pattern, value), f"{path}: {value!r} !~ {pattern}"
    elif kind == "boolean":
        assert isinstance(value, bool), path
    else:  # pragma: no cover - the catalog emits no other types
        raise AssertionError(f"{path}: unexpected shape type {kind}")


# --- presence and versions ---------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_required_components_present_with_versions(region: str) -> None:
    versions: dict[str, list[str]] = defaultdict(list)
    for component in catalog.components(region):
        versions[component["name"]].append(component["version"])
    for name, minimum in REQUIRED_COMPONENTS.items():
        assert len(versions[name]) >= minimum, name
    assert sum(len(v) >= 3 for v in versions.values()) >= 3  # "3 for some"
    for name, vs in versions.items():
        assert len(vs) == len(set(vs)), f"duplicate versions for {name}"
        assert vs == sorted(vs, key=_semver_key), f"versions of {name} not ascending"


@pytest.mark.parametrize("region", REGIONS)
def test_required_images_present_with_versions(region: str) -> None:
    versions: dict[str, list[str]] = defaultdict(list)
    for image in catalog.images(region):
        versions[image["name"]].append(image["version"])
    for name, minimum in REQUIRED_IMAGES.items():
        assert len(versions[name]) >= minimum, name
    for name, vs in versions.items():
        assert len(vs) == len(set(vs)), f"duplicate versions for {name}"
        assert vs == sorted(vs, key=_semver_key), f"versions of {name} not ascending"


def test_numeric_version_ordering_cases_exist() -> None:
    """Wildcard resolution must compare nodes numerically; the catalog includes cases for it."""
    cli = [
        c["version"]
        for c in catalog.components("us-east-1")
        if c["name"] == "aws-cli-version-2-linux"
    ]
    assert max(cli, key=_semver_key) == "1.0.10"
    assert max(cli) == "1.0.9"  # lexical order would pick the wrong one
    al = [i["version"] for i in catalog.images("us-east-1") if i["name"] == "amazon-linux-2023-x86"]
    assert max(al, key=_semver_key) == "2026.1.15/1"
    assert sorted(al) != sorted(al, key=_semver_key)  # 2025.9.18 vs 2025.10.16


# --- documents, type and parameters --------------------------------------------------------------


def test_component_documents_are_valid_awstoe() -> None:
    for component in catalog.components("us-east-1"):
        data = component["data"]
        assert len(data) <= 16000
        document = yaml.safe_load(data)
        assert isinstance(document, dict), component["name"]
        assert str(document["schemaVersion"]) == "1.0", component["name"]
        phases = document["phases"]
        assert isinstance(phases, list) and phases, component["name"]
        phase_names = [phase["name"] for phase in phases]
        assert len(phase_names) == len(set(phase_names)), component["name"]
        assert set(phase_names) & {"build", "validate", "test"}, component["name"]
        for phase in phases:
            steps = phase["steps"]
            assert steps, (component["name"], phase["name"])
            step_names = [step["name"] for step in steps]
            assert len(step_names) == len(set(step_names)), (component["name"], phase["name"])
            for step in steps:
                assert step["action"] in ACTION_MODULES, (component["name"], step["name"])
                if step["action"] not in {"UpdateOS", "Reboot"}:
                    assert "inputs" in step, (component["name"], step["name"])
                assert step.get("onFailure", "Abort") in {"Abort", "Continue", "Ignore"}
        if component["platform"] == "Windows":
            actions = {s["action"] for p in phases for s in p["steps"]}
            assert "ExecuteBash" not in actions, component["name"]


def test_component_data_differs_per_version() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for component in catalog.components("us-east-1"):
        assert component["data"] not in seen[component["name"]]
        seen[component["name"]].add(component["data"])
        assert f"# Document version: {component['version']}" in component["data"]


def test_test_type_exactly_for_test_only_documents() -> None:
    for component in catalog.components("us-east-1"):
        phases = yaml.safe_load(component["data"])["phases"]
        test_only = [p["name"] for p in phases] == ["test"]
        assert component["type"] == ("TEST" if test_only else "BUILD"), component["name"]
        assert (component["name"] in TEST_COMPONENTS) == test_only, component["name"]


def test_parameters_match_document() -> None:
    with_parameters = set()
    for component in catalog.components("us-east-1"):
        declared = yaml.safe_load(component["data"]).get("parameters") or []
        if not declared:
            assert "parameters" not in component, component["name"]
            continue
        with_parameters.add(component["name"])
        expected = []
        for entry in declared:
            ((name, spec),) = entry.items()
            detail: dict[str, Any] = {"name": name, "type": spec["type"]}
            if "default" in spec:
                detail["defaultValue"] = [str(spec["default"])]
            if "description" in spec:
                detail["description"] = spec["description"]
            expected.append(detail)
        assert component["parameters"] == expected, component["name"]
        for detail in component["parameters"]:
            assert detail["type"] == "string"
            assert all(isinstance(v, str) for v in detail.get("defaultValue", []))
    assert with_parameters & {"amazon-cloudwatch-agent-linux", "stig-build-linux-high"}


def test_stig_parameters_are_strings_not_yaml_booleans() -> None:
    stig = next(c for c in catalog.components("us-east-1") if c["name"] == "stig-build-linux-high")
    assert {p["name"]: p["defaultValue"] for p in stig["parameters"]} == {
        "InstallPackages": ["No"],
        "SetDoDConsentBanner": ["No"],
    }


# --- shapes, ARNs, enums -------------------------------------------------------------------------


@pytest.mark.parametrize("region", REGIONS)
def test_components_match_model_shape(model: ServiceModel, region: str) -> None:
    shape = model.shape_for("Component")
    arn_pattern = re.compile(model.shape_for("ComponentBuildVersionArn").metadata["pattern"])
    arns = set()
    for component in catalog.components(region):
        _check_shape(component, shape, component["arn"])
        assert arn_pattern.search(component["arn"]), component["arn"]
        assert component["arn"].split(":")[3] == region
        assert component["arn"].split(":")[4] == "aws"
        name, version, build = component["arn"].split("/")[1:]
        assert (name, version, build) == (component["name"], component["version"], "1")
        assert component["owner"] == "Amazon"
        assert component["state"] == {"status": "ACTIVE"}
        assert component["encrypted"] is True
        assert component["tags"] == {}
        assert ISO_MS_Z.match(component["dateCreated"]), component["dateCreated"]
        arns.add(component["arn"])
    assert len(arns) == len(catalog.components(region))


@pytest.mark.parametrize("region", REGIONS)
def test_images_match_model_shape(model: ServiceModel, region: str) -> None:
    shape = model.shape_for("Image")
    arn_pattern = re.compile(model.shape_for("ImageBuildVersionArn").metadata["pattern"])
    version_pattern = re.compile(model.shape_for("VersionNumber").metadata["pattern"])
    amis = set()
    for image in catalog.images(region):
        _check_shape(image, shape, image["arn"])
        assert arn_pattern.search(image["arn"]), image["arn"]
        assert image["arn"].split(":")[3] == region
        assert image["arn"].split(":")[4] == "aws"
        name, version, build = image["arn"].split("/")[1:]
        assert image["name"] == name
        assert image["version"] == f"{version}/{build}"
        assert version_pattern.search(version) and build == "1"
        assert "owner" not in image  # Image has no owner member (ImageVersion does)
        assert image["state"] == {"status": "AVAILABLE"}
        assert ISO_MS_Z.match(image["dateCreated"]), image["dateCreated"]
        (ami,) = image["outputResources"]["amis"]
        assert ami["region"] == region
        assert re.fullmatch(r"ami-[0-9a-f]{17}", ami["image"]), ami["image"]
        amis.add(ami["image"])
    assert len(amis) == len(catalog.images(region))


def test_partition_follows_region() -> None:
    east = catalog.components("us-east-1")[0]["arn"]
    assert east.startswith("arn:aws:imagebuilder:us-east-1:aws:")
    china = catalog.images("cn-north-1")[0]["arn"]
    assert china.startswith("arn:aws-cn:imagebuilder:cn-north-1:aws:")
    assert catalog.images("us-gov-west-1")[0]["arn"].startswith("arn:aws-us-gov:")


def test_example_arn_from_the_brief() -> None:
    arns = {c["arn"] for c in catalog.components("us-east-1")}
    assert "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/1.0.2/1" in arns


def test_os_versions_fit_platform() -> None:
    image_os = {i["osVersion"] for i in catalog.images("us-east-1")}
    for component in catalog.components("us-east-1"):
        assert 1 <= len(component["supportedOsVersions"]) <= 25
        windows = component["platform"] == "Windows"
        for os_version in component["supportedOsVersions"]:
            assert os_version.startswith("Microsoft Windows") == windows, component["name"]
        # every component can be used with at least one catalog parent image (prefix match)
        assert any(o.startswith(s) for o in image_os for s in component["supportedOsVersions"])


# --- determinism and isolation -------------------------------------------------------------------


def test_deterministic_and_region_specific() -> None:
    assert catalog.components("eu-west-2") == catalog.components("eu-west-2")
    assert catalog.images("eu-west-2") == catalog.images("eu-west-2")
    east = {i["outputResources"]["amis"][0]["image"] for i in catalog.images("us-east-1")}
    west = {i["outputResources"]["amis"][0]["image"] for i in catalog.images("eu-west-2")}
    assert not east & west


def test_mutating_results_does_not_affect_later_calls() -> None:
    first = catalog.components("us-east-1")
    pristine = catalog.components("us-east-1")
    first[0]["state"]["status"] = "DISABLED"
    first[0]["supportedOsVersions"].append("Hacked OS")
    first[0]["tags"]["k"] = "v"
    stig = next(c for c in first if "parameters" in c)
    stig["parameters"][0]["defaultValue"].append("Yes")
    first.pop()
    assert catalog.components("us-east-1") == pristine

    images = catalog.images("us-east-1")
    pristine_images = catalog.images("us-east-1")
    images[0]["outputResources"]["amis"][0]["image"] = "ami-00000000000000000"
    images[0]["state"]["status"] = "DELETED"
    images.clear()
    assert catalog.images("us-east-1") == pristine_images
