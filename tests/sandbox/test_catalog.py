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
TEST_COMPONENTS = {
    "inspector-test-linux", "inspector-test-windows", "simple-boot-test-linux", "simple-boot-test-windows",
    "reboot-test-linux", "reboot-test-windows", "eni-attachment-test-linux", "ebs-volume-usage-test-windows",
}  # fmt: skip

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


def _newest(records: list[dict[str, Any]], name: str, pattern: str, type_: str | None = None) -> dict[str, Any]:
    """The catalog record a version pattern (``2025.x.x``, ``x.x.x``, ``1.0.2``) must resolve to.

    Computed from the catalog data with the numeric maximum over the matching versions, so a test
    checks the service's resolution rather than repeating a version string from the data.
    """
    wanted = pattern.split("/")[0].split(".")
    matches = [
        r
        for r in records
        if r["name"] == name
        and (type_ is None or r["type"] == type_)
        and all(w in ("x", node) for w, node in zip(wanted, r["version"].split("/")[0].split("."), strict=True))
    ]
    assert matches, f"no catalog version of {name} matches {pattern}"
    return max(matches, key=lambda r: _semver_key(r["version"]))


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
    assert sum(len(v) >= 3 for v in versions.values()) >= 3  # several names have a longer history
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
        if component["name"] in TEST_COMPONENTS:
            assert test_only, component["name"]


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
        if image["type"] == "DOCKER":
            (container,) = image["outputResources"]["containers"]
            assert container["region"] == region
            (uri,) = container["imageUris"]
            amis.add(uri)
            continue
        assert image["type"] == "AMI"
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


def test_update_linux_1_0_2_build_1_is_listed() -> None:
    """The ARN AWS's user guide uses for the update-linux component exists in the catalog."""
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
    east = {i["outputResources"]["amis"][0]["image"] for i in catalog.images("us-east-1") if i["type"] == "AMI"}
    west = {i["outputResources"]["amis"][0]["image"] for i in catalog.images("eu-west-2") if i["type"] == "AMI"}
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


# --- over HTTP with real boto3 clients -----------------------------------------------------------

AMAZON = "arn:aws:imagebuilder:us-east-1:aws"


def _infrastructure(client: Any, name: str) -> str:
    resp = client.create_infrastructure_configuration(name=name, instanceProfileName="ImageBuilderRole")
    return resp["infrastructureConfigurationArn"]


LINUX_COMPONENTS = [
    "update-linux/x.x.x",
    "aws-cli-version-2-linux/1.0.x",
    "amazon-cloudwatch-agent-linux/x.x.x",
    "stig-build-linux-medium/2025.x.x",
    "docker-ce-linux/1.0.1",
    "eni-attachment-test-linux/x.x.x",
    "ebs-volume-usage-test-linux/x.x.x",
    "simple-boot-test-linux/x.x.x",
]


def test_recipe_with_several_aws_managed_linux_components(client: Any) -> None:
    """A recipe may use AWS-managed components by wildcard or exact version; GetImageRecipe keeps them.

    Sources: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-components.html (Amazon-managed
    components in recipes) and
    https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedComponent.html
    (component names, ARNs with the account segment 'aws' and 'x.x.x').
    """
    components = [{"componentArn": f"{AMAZON}:component/{ref}"} for ref in LINUX_COMPONENTS]
    arn = client.create_image_recipe(
        name="linux-managed",
        semanticVersion="1.0.0",
        parentImage=f"{AMAZON}:image/amazon-linux-2023-x86/x.x.x",
        components=components,
    )["imageRecipeArn"]
    recipe = client.get_image_recipe(imageRecipeArn=arn)["imageRecipe"]
    assert recipe["platform"] == "Linux"
    assert [c["componentArn"] for c in recipe["components"]] == [c["componentArn"] for c in components]
    for ref in LINUX_COMPONENTS:
        got = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/{ref}")["component"]
        assert got["owner"] == "Amazon" and got["platform"] == "Linux"
    stig = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/stig-build-linux-medium/2025.x.x")
    newest_stig = _newest(catalog.components("us-east-1"), "stig-build-linux-medium", "2025.x.x")
    assert stig["component"]["version"] == newest_stig["version"]
    eni = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/eni-attachment-test-linux/x.x.x")
    assert eni["component"]["type"] == "TEST"


WINDOWS_COMPONENTS = [
    "update-windows/x.x.x",
    "aws-cli-version-2-windows/x.x.x",
    "amazon-cloudwatch-agent-windows/1.x.x",
    "powershell-lts-windows/x.x.x",
    "dotnet-runtime-lts-windows/x.x.x",
    "stig-build-windows-high/x.x.x",
    "chocolatey/x.x.x",
    "reboot-test-windows/x.x.x",
]


@pytest.mark.parametrize(
    "parent",
    [
        "windows-server-2022-english-full-base-x86/x.x.x",
        "windows-server-2019-english-core-base-x86/2025.x.x",
        "windows-server-2025-english-full-base-x86/x.x.x",
    ],
)
def test_recipe_with_windows_components_and_a_windows_parent(client: Any, parent: str) -> None:
    """Windows recipes take AWS-managed Windows components and an AWS-managed Windows parent image.

    Sources: https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedImage.html
    (Windows Server 2019/2022/2025 Full and Core image names) and
    https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedComponent.html.
    """
    arn = client.create_image_recipe(
        name="windows-managed",
        semanticVersion="1.0.0",
        parentImage=f"{AMAZON}:image/{parent}",
        components=[{"componentArn": f"{AMAZON}:component/{ref}"} for ref in WINDOWS_COMPONENTS],
    )["imageRecipeArn"]
    assert client.get_image_recipe(imageRecipeArn=arn)["imageRecipe"]["platform"] == "Windows"
    image = client.get_image(imageBuildVersionArn=f"{AMAZON}:image/{parent}")["image"]
    assert image["platform"] == "Windows" and image["osVersion"].startswith("Microsoft Windows Server")


@pytest.mark.parametrize(
    "reference",
    [
        "amazon-linux-2023-x86/2025.10.16",  # an exact date pin
        "amazon-linux-2023-x86/2025.10.16/1",
        "amazon-linux-2023-x86/2025.x.x",
        "amazon-linux-2023-x86/2025.9.x",  # 2025.9.x must not pick a 2025.10 date
        "amazon-linux-2023-x86/x.x.x",
        "ubuntu-server-24-lts-x86/2025.x.x",
        "red-hat-enterprise-linux-10-arm64/x.x.x",
    ],
)
def test_date_pinned_parent_images(client: Any, reference: str) -> None:
    """Amazon-managed images have dated versions; exact dates, partial wildcards and x.x.x resolve numerically.

    Source: https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedImage.html
    (image names and the imageVersion attribute, default x.x.x).
    """
    arn = client.create_image_recipe(
        name="pinned",
        semanticVersion="1.0.0",
        parentImage=f"{AMAZON}:image/{reference}",
        components=[{"componentArn": f"{AMAZON}:component/update-linux/x.x.x"}],
    )["imageRecipeArn"]
    assert client.get_image_recipe(imageRecipeArn=arn)["imageRecipe"]["parentImage"].endswith(reference)
    image = client.get_image(imageBuildVersionArn=f"{AMAZON}:image/{reference}")["image"]
    name, pattern = reference.split("/", 1)
    expected = _newest(catalog.images("us-east-1"), name, pattern)
    assert image["version"] == expected["version"]
    assert image["arn"] == expected["arn"]


def test_unknown_amazon_names_are_still_refused(client: Any) -> None:
    """A name AWS does not publish is refused like any missing resource.

    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-components.html (components are
    referenced by ARN; an ARN must name an existing component).
    """
    with pytest.raises(client.exceptions.InvalidParameterValueException) as err:
        client.create_image_recipe(
            name="unknown",
            semanticVersion="1.0.0",
            parentImage=f"{AMAZON}:image/amazon-linux-2023-x86/x.x.x",
            components=[{"componentArn": f"{AMAZON}:component/no-such-component-linux/x.x.x"}],
        )
    assert "does not exist" in err.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.create_image_recipe(
            name="unknown",
            semanticVersion="1.0.0",
            parentImage=f"{AMAZON}:image/amazon-linux-2023-x86/2019.1.1",
            components=[{"componentArn": f"{AMAZON}:component/update-linux/x.x.x"}],
        )


@pytest.mark.parametrize(
    ("workflow", "type_"),
    [
        ("build/build-image", "BUILD"),
        ("test/test-image", "TEST"),
        ("distribution/distribute-image", "DISTRIBUTION"),
    ],
)
def test_get_workflow_of_an_aws_managed_workflow(client: Any, workflow: str, type_: str) -> None:
    """GetWorkflow answers AWS-managed workflows; x.x.x resolves to the newest.

    Sources: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-image-workflows.html (managed
    workflows) and https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedWorkflow.html
    (ARNs workflow/TYPE/NAME/x.x.x in the 'aws' account).
    """
    got = client.get_workflow(workflowBuildVersionArn=f"{AMAZON}:workflow/{workflow}/x.x.x")["workflow"]
    newest = _newest(catalog.workflows("us-east-1"), workflow.split("/")[1], "x.x.x", type_)
    assert got["arn"] == newest["arn"] == f"{AMAZON}:workflow/{workflow}/{newest['version']}/1"
    assert got["type"] == type_ and got["owner"] == "Amazon" and got["state"] == {"status": "ACTIVE"}
    assert yaml.safe_load(got["data"])["steps"]


def test_aws_managed_workflows_in_a_pipeline(client: Any) -> None:
    """A pipeline's workflows[].workflowArn may name AWS-managed build and test workflows.

    Source: https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedWorkflow.html
    (the example pipeline that lists the managed build/test/distribute workflows).
    """
    recipe = client.create_image_recipe(
        name="wf-recipe",
        semanticVersion="1.0.0",
        parentImage=f"{AMAZON}:image/amazon-linux-2023-x86/x.x.x",
        components=[{"componentArn": f"{AMAZON}:component/update-linux/x.x.x"}],
    )["imageRecipeArn"]
    workflows = [
        {"workflowArn": f"{AMAZON}:workflow/build/build-image/x.x.x"},
        {"workflowArn": f"{AMAZON}:workflow/test/test-image/1.0.1"},
    ]
    arn = client.create_image_pipeline(
        name="wf-pipeline",
        imageRecipeArn=recipe,
        infrastructureConfigurationArn=_infrastructure(client, "wf-infra"),
        workflows=workflows,
        executionRole="arn:aws:iam::123456789012:role/ImageBuilderExecution",
    )["imagePipelineArn"]
    pipeline = client.get_image_pipeline(imagePipelineArn=arn)["imagePipeline"]
    assert [w["workflowArn"] for w in pipeline["workflows"]] == [w["workflowArn"] for w in workflows]
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.create_image_pipeline(
            name="wf-missing",
            imageRecipeArn=recipe,
            infrastructureConfigurationArn=_infrastructure(client, "wf-infra-2"),
            workflows=[{"workflowArn": f"{AMAZON}:workflow/build/no-such-workflow/x.x.x"}],
            executionRole="arn:aws:iam::123456789012:role/ImageBuilderExecution",
        )


def test_list_workflows_owner_amazon(client: Any) -> None:
    """ListWorkflows with owner=Amazon lists the managed workflows, one row per name and version.

    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-image-workflows.html.
    """
    rows = client.list_workflows(owner="Amazon")["workflowVersionList"]
    names = {(r["name"], r["type"]) for r in rows}
    assert {("build-image", "BUILD"), ("test-image", "TEST"), ("build-container", "BUILD"),
            ("test-container", "TEST"), ("distribute-container", "DISTRIBUTION")} <= names  # fmt: skip
    assert all(r["owner"] == "Amazon" and r["arn"].count("/") == 3 for r in rows)
    assert client.list_workflows()["workflowVersionList"] == []


@pytest.mark.parametrize("page_size", [7, 25])
def test_owner_amazon_listing_paginates_over_the_whole_catalog(client: Any, page_size: int) -> None:
    """ListComponents owner=Amazon pages through every (name, version) once, in pages of maxResults.

    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-components.html (listing with the
    ownership filter).
    """
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"owner": "Amazon", "maxResults": page_size}
    pages = 0
    while True:
        resp = client.list_components(**params)
        pages += 1
        assert len(resp["componentVersionList"]) <= page_size
        rows.extend(resp["componentVersionList"])
        if "nextToken" not in resp:
            break
        params["nextToken"] = resp["nextToken"]
    expected = {(c["name"], c["version"]) for c in catalog.components("us-east-1")}
    assert len(expected) > 200
    assert [(r["name"], r["version"]) for r in rows] == sorted(expected, key=lambda nv: (nv[0], _semver_key(nv[1])))
    assert pages == -(-len(expected) // page_size)
    platforms = {r["platform"] for r in rows}
    assert platforms == {"Linux", "Windows"}


@pytest.mark.parametrize(
    ("region", "partition"), [("eu-central-1", "aws"), ("cn-northwest-1", "aws-cn"), ("us-gov-east-1", "aws-us-gov")]
)
def test_catalog_in_every_partition(client_factory: Any, region: str, partition: str) -> None:
    """The catalog exists in each region with the region's partition in its ARNs.

    Source: https://docs.aws.amazon.com/cdk/api/v2/docs/@aws-cdk_aws-imagebuilder-alpha.AmazonManagedWorkflow.html
    (managed ARNs are formatted with the stack's partition and region).
    """
    regional = client_factory(region)
    prefix = f"arn:{partition}:imagebuilder:{region}:aws"
    component = regional.get_component(componentBuildVersionArn=f"{prefix}:component/update-linux/x.x.x")
    newest = _newest(catalog.components(region), "update-linux", "x.x.x")
    assert component["component"]["arn"] == newest["arn"] == f"{prefix}:component/update-linux/{newest['version']}/1"
    workflow = regional.get_workflow(workflowBuildVersionArn=f"{prefix}:workflow/build/build-image/x.x.x")
    assert workflow["workflow"]["arn"].startswith(f"{prefix}:workflow/build/build-image/")
    images = regional.list_images(owner="Amazon")["imageVersionList"]
    assert images and all(r["arn"].startswith(f"{prefix}:image/") for r in images)
