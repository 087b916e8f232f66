"""Conformance of the sandbox's versioning, identity and error semantics, through real boto3 clients.

Every test talks HTTP to a served sandbox through a boto3 Image Builder client (the `client`,
`client_factory` and `make_client` helpers of `tests/conftest.py`). Nothing in the sandbox is mocked.
One sandbox serves the whole module and is reset before each test (see the `sandbox` fixture);
read-only tests that need many resources share a separately populated sandbox.
The expected behaviour comes from `shared/reference/imagebuilder-api-semantics.md` and from the
documented choices in the module docstring of `imagesync.sandbox.backend`.

Sections:
  1. immutability of versioned resources
  2. build numbers (auto-versioning and the legacy mode)
  3. wildcard recipe versions
  4. wildcard references resolved to the newest match
  5. latestVersionReferences
  6. semantic-version limits
  7. ResourceAlreadyExistsException for the mutable kinds
  8. ResourceDependencyException on delete
  9. ResourceNotFoundException
 10. clientToken idempotency
 11. pagination
 12. owner and byName
 13. regions
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from imagesync.sandbox import RunningSandbox, running
from support import ACCOUNT, MAX_RESULTS, REGION, SIMPLE_DOCUMENT, make_client

# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    """One served sandbox for the whole module, overriding conftest's per-test one.

    Stopping a served sandbox takes about half a second (the server's shutdown poll), which for
    ~200 tests would dominate the run time. `_fresh_state` empties it before every test instead,
    so each test still starts from an empty service. `client` and `client_factory` are conftest's.
    """
    with running() as served:
        yield served


@pytest.fixture(autouse=True)
def _fresh_state(sandbox: RunningSandbox) -> None:
    sandbox.reset()


@pytest.fixture(scope="module")
def legacy_client() -> Iterator[Any]:
    """A client of a sandbox in the legacy versioning mode (no build auto-increment)."""
    with running(versioning="legacy") as served:
        yield make_client(served.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})


# --- constants and helpers ----------------------------------------------------------------------

PREFIX = f"arn:aws:imagebuilder:{REGION}:{ACCOUNT}"
AMAZON = f"arn:aws:imagebuilder:{REGION}:aws"
PARENT_IMAGE = f"{AMAZON}:image/amazon-linux-2023-x86/x.x.x"
MAX_NODE = 1073741823  # 2**30 - 1

WORKFLOW_DOCUMENT = """\
name: build-image
description: Minimal build workflow
schemaVersion: 1.0
steps:
  - name: LaunchBuildInstance
    action: LaunchInstance
    onFailure: Abort
    inputs:
      waitForSsmAgent: true
"""

DOCKERFILE = "{{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:environments }}}\n{{{ imagebuilder:components }}}"


def component_document(message: str) -> str:
    """A valid component document whose content differs with `message`."""
    return SIMPLE_DOCUMENT.replace('echo "hello ${HOME}"', f'echo "{message}"')


def workflow_document(step_name: str) -> str:
    return WORKFLOW_DOCUMENT.replace("LaunchBuildInstance", step_name)


def create_component(
    client: Any, name: str = "test-comp", version: str = "1.0.0", data: str = SIMPLE_DOCUMENT, **extra: Any
) -> str:
    resp = client.create_component(name=name, semanticVersion=version, platform="Linux", data=data, **extra)
    return resp["componentBuildVersionArn"]


def create_workflow(
    client: Any, name: str = "test-workflow", version: str = "1.0.0", data: str = WORKFLOW_DOCUMENT, **extra: Any
) -> str:
    resp = client.create_workflow(name=name, semanticVersion=version, type="BUILD", data=data, **extra)
    return resp["workflowBuildVersionArn"]


def create_image_recipe(
    client: Any, name: str = "test-recipe", version: str = "1.0.0", components: list[str] | None = None, **extra: Any
) -> str:
    resp = client.create_image_recipe(
        name=name,
        semanticVersion=version,
        parentImage=PARENT_IMAGE,
        **({"components": [{"componentArn": arn} for arn in components]} if components else {}),
        **extra,
    )
    return resp["imageRecipeArn"]


def create_container_recipe(
    client: Any, name: str = "test-container", version: str = "1.0.0", components: list[str] | None = None, **extra: Any
) -> str:
    resp = client.create_container_recipe(
        containerType="DOCKER",
        name=name,
        semanticVersion=version,
        parentImage="amazonlinux:latest",
        targetRepository={"service": "ECR", "repositoryName": "test-repo"},
        dockerfileTemplateData=DOCKERFILE,
        **({"components": [{"componentArn": arn} for arn in components]} if components else {}),
        **extra,
    )
    return resp["containerRecipeArn"]


def create_infrastructure(client: Any, name: str = "test-infra", **extra: Any) -> str:
    resp = client.create_infrastructure_configuration(name=name, instanceProfileName="ImageBuilderRole", **extra)
    return resp["infrastructureConfigurationArn"]


def create_distribution(client: Any, name: str = "test-dist", **extra: Any) -> str:
    resp = client.create_distribution_configuration(
        name=name,
        distributions=[{"region": REGION, "amiDistributionConfiguration": {"name": "test {{imagebuilder:buildDate}}"}}],
        **extra,
    )
    return resp["distributionConfigurationArn"]


def create_pipeline(
    client: Any, name: str = "test-pipeline", *, infra: str | None = None, recipe: str | None = None, **extra: Any
) -> str:
    resp = client.create_image_pipeline(
        name=name,
        infrastructureConfigurationArn=infra or create_infrastructure(client, f"{name}-infra"),
        imageRecipeArn=recipe or create_image_recipe(client, f"{name}-recipe"),
        **extra,
    )
    return resp["imagePipelineArn"]


def create_lifecycle_policy(client: Any, name: str = "test-policy", **extra: Any) -> str:
    # The policy selects "test-recipe" 1.0.0, which must exist in the account.
    listed = client.list_image_recipes(filters=[{"name": "name", "values": ["test-recipe"]}])["imageRecipeSummaryList"]
    if not listed:
        create_image_recipe(client)
    resp = client.create_lifecycle_policy(
        name=name,
        executionRole=f"arn:aws:iam::{ACCOUNT}:role/ImageBuilderLifecycle",
        resourceType="AMI_IMAGE",
        policyDetails=[{"action": {"type": "DELETE"}, "filter": {"type": "COUNT", "value": 5}}],
        resourceSelection={"recipes": [{"name": "test-recipe", "semanticVersion": "1.0.0"}]},
        **extra,
    )
    return resp["lifecyclePolicyArn"]


def assert_error(err: pytest.ExceptionInfo[ClientError], code: str, status: int, *fragments: str) -> None:
    """The error's code (parsed and in the `x-amzn-errortype` header), HTTP status and message."""
    response = err.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    for fragment in fragments:
        assert fragment in response["Error"]["Message"]


def list_all(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**params):
        rows.extend(page[key])
    return rows


# --- 1. immutability ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method", ["update_component", "update_image_recipe", "update_container_recipe", "update_workflow", "update_image"]
)
def test_versioned_resources_have_no_update_operation(client: Any, method: str) -> None:
    assert not hasattr(client, method)


@pytest.mark.parametrize(
    "method",
    [
        "update_infrastructure_configuration",
        "update_distribution_configuration",
        "update_image_pipeline",
        "update_lifecycle_policy",
    ],
)
def test_mutable_resources_have_an_update_operation(client: Any, method: str) -> None:
    assert hasattr(client, method)


@pytest.mark.parametrize(
    ("create", "label", "get_key"),
    [
        (create_image_recipe, "ImageRecipe", "get_image_recipe"),
        (create_container_recipe, "ContainerRecipe", "get_container_recipe"),
    ],
)
def test_recreating_a_recipe_version_is_rejected(
    client: Any, create: Callable[..., str], label: str, get_key: str
) -> None:
    arn = create(client, "immutable-recipe", "1.2.3", description="first")
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException) as err:
        create(client, "immutable-recipe", "1.2.3", description="second")
    assert_error(err, "ResourceAlreadyExistsException", 400)
    assert err.value.response["Error"]["Message"] == f"The following resource '{label}' already exists: '{arn}'."
    # the original is untouched
    member = "imageRecipeArn" if label == "ImageRecipe" else "containerRecipeArn"
    recipe_key = "imageRecipe" if label == "ImageRecipe" else "containerRecipe"
    assert getattr(client, get_key)(**{member: arn})[recipe_key]["description"] == "first"


# --- 2. build numbers ---------------------------------------------------------------------------


def test_component_new_content_gets_next_build_number(client: Any) -> None:
    builds = [create_component(client, "builds", "1.0.0", component_document(f"v{i}")) for i in range(3)]
    assert builds == [f"{PREFIX}:component/builds/1.0.0/{n}" for n in (1, 2, 3)]


def test_component_identical_content_is_rejected(client: Any) -> None:
    create_component(client, "builds", "1.0.0", component_document("one"))
    second = create_component(client, "builds", "1.0.0", component_document("two"))
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException) as err:
        create_component(client, "builds", "1.0.0", component_document("two"))
    assert_error(err, "ResourceAlreadyExistsException", 400)
    assert err.value.response["Error"]["Message"] == f"The following resource 'Component' already exists: '{second}'."


def test_component_tags_and_change_description_are_not_content(client: Any) -> None:
    create_component(client, "builds", "1.0.0", changeDescription="a", tags={"k": "v1"})
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):
        create_component(client, "builds", "1.0.0", changeDescription="b", tags={"k": "v2"})
    # a different description is content, so it is a new build
    assert create_component(client, "builds", "1.0.0", description="other").endswith("/1.0.0/2")


def test_workflow_new_content_gets_next_build_number(client: Any) -> None:
    builds = [create_workflow(client, "wf-builds", "1.0.0", workflow_document(f"Launch{i}")) for i in range(3)]
    assert builds == [f"{PREFIX}:workflow/build/wf-builds/1.0.0/{n}" for n in (1, 2, 3)]
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException) as err:
        create_workflow(client, "wf-builds", "1.0.0", workflow_document("Launch2"))
    assert_error(err, "ResourceAlreadyExistsException", 400, "'Workflow' already exists", builds[-1])


def test_list_component_build_versions_lists_every_build(client: Any) -> None:
    builds = [create_component(client, "listed", "1.0.0", component_document(f"v{i}")) for i in range(3)]
    rows = client.list_component_build_versions(componentVersionArn=f"{PREFIX}:component/listed/1.0.0")
    assert [r["arn"] for r in rows["componentSummaryList"]] == builds


def test_list_workflow_build_versions_lists_every_build(client: Any) -> None:
    builds = [create_workflow(client, "listed-wf", "1.0.0", workflow_document(f"S{i}")) for i in range(2)]
    rows = client.list_workflow_build_versions(workflowVersionArn=f"{PREFIX}:workflow/build/listed-wf/1.0.0")
    assert [r["arn"] for r in rows["workflowSummaryList"]] == builds


def test_list_components_has_one_row_per_name_and_version(client: Any) -> None:
    for i in range(3):
        create_component(client, "rows", "1.0.0", component_document(f"v{i}"))
    create_component(client, "rows", "1.1.0")
    create_component(client, "other-rows", "2.0.0")
    rows = client.list_components()["componentVersionList"]
    assert sorted((r["arn"], r["version"]) for r in rows) == [
        (f"{PREFIX}:component/other-rows/2.0.0", "2.0.0"),
        (f"{PREFIX}:component/rows/1.0.0", "1.0.0"),
        (f"{PREFIX}:component/rows/1.1.0", "1.1.0"),
    ]
    assert all(r["owner"] == ACCOUNT for r in rows)


LEGACY_KINDS = [
    (lambda c, content: create_component(c, "legacy-comp", "1.0.0", component_document(content)), "Component"),
    (lambda c, content: create_workflow(c, "legacy-wf", "1.0.0", workflow_document(content)), "Workflow"),
]


@pytest.mark.parametrize(("create", "label"), LEGACY_KINDS, ids=["component", "workflow"])
def test_legacy_versioning_rejects_any_repeat_of_name_and_version(
    legacy_client: Any, create: Callable[[Any, str], str], label: str
) -> None:
    first = create(legacy_client, "One")
    assert first.endswith("/1.0.0/1")
    for content in ("Two", "One"):  # new content and identical content alike
        with pytest.raises(legacy_client.exceptions.ResourceAlreadyExistsException) as err:
            create(legacy_client, content)
        assert_error(err, "ResourceAlreadyExistsException", 400)
        assert err.value.response["Error"]["Message"] == f"The following resource '{label}' already exists: '{first}'."


def test_legacy_versioning_accepts_a_new_semantic_version(legacy_client: Any) -> None:
    assert create_component(legacy_client, "legacy-next", "1.0.0").endswith("/legacy-next/1.0.0/1")
    assert create_component(legacy_client, "legacy-next", "1.0.1").endswith("/legacy-next/1.0.1/1")


# --- 3. wildcard recipe versions ----------------------------------------------------------------

WILDCARD_SEQUENCE = [
    ("1.0.x", "1.0.0"),
    ("1.0.x", "1.0.1"),
    ("1.0.x", "1.0.2"),
    ("1.x.x", "1.1.0"),
    ("1.0.x", "1.0.3"),
    ("x.x.x", "2.0.0"),
    ("1.x.x", "1.2.0"),
    ("x.x.x", "3.0.0"),
    ("2.x.x", "2.1.0"),
]


@pytest.mark.parametrize(
    ("create", "arn_type"),
    [(create_image_recipe, "image-recipe"), (create_container_recipe, "container-recipe")],
    ids=["image-recipe", "container-recipe"],
)
def test_wildcard_recipe_versions_increment(client: Any, create: Callable[..., str], arn_type: str) -> None:
    got = [create(client, "wild", requested) for requested, _ in WILDCARD_SEQUENCE]
    assert got == [f"{PREFIX}:{arn_type}/wild/{expected}" for _, expected in WILDCARD_SEQUENCE]


def test_wildcard_recipe_version_on_empty_name_is_all_zero(client: Any) -> None:
    # documented sandbox choice: no version with the same prefix -> the wildcards become 0
    assert create_image_recipe(client, "fresh", "x.x.x") == f"{PREFIX}:image-recipe/fresh/0.0.0"
    assert create_image_recipe(client, "fresh2", "4.x.x") == f"{PREFIX}:image-recipe/fresh2/4.0.0"


def test_wildcard_recipe_version_increments_numerically(client: Any) -> None:
    create_image_recipe(client, "numeric", "1.0.9")
    create_image_recipe(client, "numeric", "1.0.10")
    assert create_image_recipe(client, "numeric", "1.0.x") == f"{PREFIX}:image-recipe/numeric/1.0.11"


def test_wildcard_recipe_version_response_echoes_concrete_version(client: Any) -> None:
    resp = client.create_image_recipe(name="echo", semanticVersion="1.0.x", parentImage=PARENT_IMAGE)
    recipe = client.get_image_recipe(imageRecipeArn=resp["imageRecipeArn"])["imageRecipe"]
    assert recipe["version"] == "1.0.0"
    assert recipe["name"] == "echo"


# --- 4. wildcard references ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def refs_client() -> Iterator[Any]:
    """A client of a separate sandbox, populated once, holding the own component `refs` in
    1.0.0 (/1), 1.0.9 (/1), 1.0.10 (/1 and /2), 1.2.0 (/1) and 2.0.0 (/1). The tests only read it."""
    with running() as served:
        client = make_client(served.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        for version in ("1.0.0", "1.0.9", "1.0.10", "1.2.0", "2.0.0"):
            create_component(client, "refs", version)
        create_component(client, "refs", "1.0.10", component_document("second build"))
        yield client


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("x.x.x", "2.0.0/1"),
        ("1.x.x", "1.2.0/1"),
        ("1.0.x", "1.0.10/2"),
        ("1.0.10", "1.0.10/2"),  # version ARN without build -> newest build
        ("1.0.10/1", "1.0.10/1"),  # exact build
        ("1.0.9", "1.0.9/1"),
        ("2.x.x", "2.0.0/1"),
    ],
)
def test_get_component_resolves_own_references(refs_client: Any, reference: str, expected: str) -> None:
    component = refs_client.get_component(componentBuildVersionArn=f"{PREFIX}:component/refs/{reference}")["component"]
    assert component["arn"] == f"{PREFIX}:component/refs/{expected}"
    assert component["version"] == expected.split("/")[0]


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("update-linux/x.x.x", "update-linux/1.0.2/1"),
        ("update-linux/1.x.x", "update-linux/1.0.2/1"),
        ("update-linux/1.0.x", "update-linux/1.0.2/1"),
        ("update-linux/1.0.1", "update-linux/1.0.1/1"),
        ("aws-cli-version-2-linux/x.x.x", "aws-cli-version-2-linux/1.0.10/1"),
        ("aws-cli-version-2-linux/1.0.x", "aws-cli-version-2-linux/1.0.10/1"),
        ("aws-cli-version-2-linux/1.0.9", "aws-cli-version-2-linux/1.0.9/1"),
        ("amazon-cloudwatch-agent-linux/1.0.x", "amazon-cloudwatch-agent-linux/1.0.1/1"),
        ("amazon-cloudwatch-agent-linux/x.x.x", "amazon-cloudwatch-agent-linux/1.1.0/1"),
    ],
)
def test_get_component_resolves_amazon_references(client: Any, reference: str, expected: str) -> None:
    component = client.get_component(componentBuildVersionArn=f"{AMAZON}:component/{reference}")["component"]
    assert component["arn"] == f"{AMAZON}:component/{expected}"
    assert component["owner"] == "Amazon"


def test_get_image_resolves_amazon_wildcard(client: Any) -> None:
    image = client.get_image(imageBuildVersionArn=f"{AMAZON}:image/amazon-linux-2023-x86/x.x.x")["image"]
    # 2026.1.15 > 2025.11.20 > 2025.10.16 > 2025.9.18 numerically (lexically 2025.9.18 would sort above 2025.11.20)
    assert image["arn"] == f"{AMAZON}:image/amazon-linux-2023-x86/2026.1.15/1"
    assert image["version"] == "2026.1.15/1"


def test_get_image_resolves_amazon_partial_wildcard_numerically(client: Any) -> None:
    image = client.get_image(imageBuildVersionArn=f"{AMAZON}:image/amazon-linux-2023-x86/2025.x.x")["image"]
    assert image["arn"] == f"{AMAZON}:image/amazon-linux-2023-x86/2025.11.20/1"


def test_get_image_recipe_resolves_wildcards(client: Any) -> None:
    for version in ("1.0.0", "1.0.9", "1.0.10", "2.0.0"):
        create_image_recipe(client, "recipe-refs", version)
    get = lambda ref: client.get_image_recipe(imageRecipeArn=f"{PREFIX}:image-recipe/recipe-refs/{ref}")  # noqa: E731
    assert get("x.x.x")["imageRecipe"]["version"] == "2.0.0"
    assert get("1.x.x")["imageRecipe"]["version"] == "1.0.10"
    assert get("1.0.x")["imageRecipe"]["version"] == "1.0.10"


def test_recipe_may_reference_components_through_wildcards(client: Any) -> None:
    own = create_component(client, "wild-ref", "1.0.0")
    recipe_arn = create_image_recipe(
        client,
        "wild-ref-recipe",
        components=[
            f"{PREFIX}:component/wild-ref/x.x.x",
            f"{AMAZON}:component/update-linux/x.x.x",
            f"{AMAZON}:component/aws-cli-version-2-linux/1.0.x",
        ],
    )
    recipe = client.get_image_recipe(imageRecipeArn=recipe_arn)["imageRecipe"]
    # the recipe keeps the references as written
    assert [c["componentArn"] for c in recipe["components"]][0] == f"{PREFIX}:component/wild-ref/x.x.x"
    assert own.endswith("/1.0.0/1")


# --- 5. latestVersionReferences -----------------------------------------------------------------


def references(base: str, major: str, minor: str, patch: str) -> dict[str, str]:
    return {
        "latestVersionArn": f"{base}/x.x.x",
        "latestMajorVersionArn": f"{base}/{major}.x.x",
        "latestMinorVersionArn": f"{base}/{major}.{minor}.x",
        "latestPatchVersionArn": f"{base}/{major}.{minor}.{patch}",
    }


def test_latest_version_references_of_components(client: Any) -> None:
    base = f"{PREFIX}:component/my-component"
    created = client.create_component(
        name="my-component", semanticVersion="1.2.3", platform="Linux", data=SIMPLE_DOCUMENT
    )
    assert created["componentBuildVersionArn"] == f"{base}/1.2.3/1"
    assert created["latestVersionReferences"] == references(base, "1", "2", "3")
    got = client.get_component(componentBuildVersionArn=f"{base}/x.x.x")
    assert got["latestVersionReferences"] == references(base, "1", "2", "3")


def test_latest_version_references_of_amazon_component(client: Any) -> None:
    base = f"{AMAZON}:component/aws-cli-version-2-linux"
    got = client.get_component(componentBuildVersionArn=f"{base}/x.x.x")
    assert got["latestVersionReferences"] == references(base, "1", "0", "10")


def test_latest_version_references_of_image_recipes(client: Any) -> None:
    base = f"{PREFIX}:image-recipe/ref-recipe"
    created = client.create_image_recipe(name="ref-recipe", semanticVersion="2.3.x", parentImage=PARENT_IMAGE)
    assert created["imageRecipeArn"] == f"{base}/2.3.0"
    assert created["latestVersionReferences"] == references(base, "2", "3", "0")
    got = client.get_image_recipe(imageRecipeArn=f"{base}/2.3.0")
    assert got["latestVersionReferences"] == references(base, "2", "3", "0")


def test_latest_version_references_of_container_recipes(client: Any) -> None:
    base = f"{PREFIX}:container-recipe/ref-container"
    arn = create_container_recipe(client, "ref-container", "4.5.6")
    got = client.get_container_recipe(containerRecipeArn=arn)
    assert got["latestVersionReferences"] == references(base, "4", "5", "6")


def test_latest_version_references_of_workflows(client: Any) -> None:
    base = f"{PREFIX}:workflow/build/ref-workflow"
    created = client.create_workflow(name="ref-workflow", semanticVersion="3.4.5", type="BUILD", data=WORKFLOW_DOCUMENT)
    assert created["latestVersionReferences"] == references(base, "3", "4", "5")
    got = client.get_workflow(workflowBuildVersionArn=f"{base}/3.x.x")
    assert got["workflow"]["arn"] == f"{base}/3.4.5/1"
    assert got["latestVersionReferences"] == references(base, "3", "4", "5")


def test_latest_version_references_of_amazon_image(client: Any) -> None:
    base = f"{AMAZON}:image/amazon-linux-2023-x86"
    got = client.get_image(imageBuildVersionArn=f"{base}/x.x.x")
    assert got["latestVersionReferences"] == references(base, "2026", "1", "15")


def test_latest_version_references_of_own_image(client: Any) -> None:
    recipe = create_image_recipe(client, "ref-image", "7.8.9")
    pipeline = create_pipeline(client, "ref-image-pipeline", recipe=recipe)
    image_arn = client.start_image_pipeline_execution(imagePipelineArn=pipeline)["imageBuildVersionArn"]
    base = f"{PREFIX}:image/ref-image"
    assert image_arn == f"{base}/7.8.9/1"
    got = client.get_image(imageBuildVersionArn=image_arn)
    assert got["latestVersionReferences"] == references(base, "7", "8", "9")


# --- 6. semantic-version limits -----------------------------------------------------------------

MAX_VERSION = f"{MAX_NODE}.{MAX_NODE}.{MAX_NODE}"


@pytest.mark.parametrize(
    "version", [MAX_VERSION, f"{MAX_NODE}.0.0", f"0.0.{MAX_NODE}", "0.0.0"]
)
def test_version_nodes_up_to_the_limit_are_accepted(client: Any, version: str) -> None:
    assert create_component(client, "limits", version) == f"{PREFIX}:component/limits/{version}/1"
    assert create_image_recipe(client, "limits", version) == f"{PREFIX}:image-recipe/limits/{version}"
    assert create_workflow(client, "limits", version) == f"{PREFIX}:workflow/build/limits/{version}/1"


OVER = str(MAX_NODE + 1)


@pytest.mark.parametrize(
    ("kind", "version"),
    [
        ("component", f"{OVER}.0.0"),
        ("component", f"0.{OVER}.0"),
        ("component", f"0.0.{OVER}"),
        ("component", "1.0"),
        ("component", "1.0.x"),
        ("component", "x.x.x"),
        ("component", "1.0.0.0"),
        ("component", "v1.0.0"),
        ("workflow", f"0.0.{OVER}"),
        ("workflow", "1.0.x"),
        ("image-recipe", f"{OVER}.0.0"),
        ("image-recipe", "x.2.x"),
        ("image-recipe", "1.x.0"),
        ("image-recipe", "x.x.0"),
        ("image-recipe", "1.0"),
        ("container-recipe", "x.2.x"),
        ("container-recipe", "1.x.0"),
        ("container-recipe", f"0.{OVER}.x"),
    ],
)
def test_invalid_versions_are_rejected(client: Any, kind: str, version: str) -> None:
    create = {
        "component": create_component,
        "workflow": create_workflow,
        "image-recipe": create_image_recipe,
        "container-recipe": create_container_recipe,
    }[kind]
    with pytest.raises(client.exceptions.InvalidVersionNumberException) as err:
        create(client, "bad-version", version)
    assert_error(err, "InvalidVersionNumberException", 400, "semanticVersion")


def test_wildcard_recipe_version_cannot_go_past_the_limit(client: Any) -> None:
    create_image_recipe(client, "ceiling", f"1.0.{MAX_NODE}")
    with pytest.raises(client.exceptions.InvalidVersionNumberException) as err:
        create_image_recipe(client, "ceiling", "1.0.x")
    assert_error(err, "InvalidVersionNumberException", 400)
    assert create_image_recipe(client, "ceiling", "1.x.x") == f"{PREFIX}:image-recipe/ceiling/1.1.0"


# --- 7. ResourceAlreadyExistsException for mutable kinds ----------------------------------------

MUTABLE_KINDS = [
    (create_infrastructure, "InfrastructureConfiguration", "infrastructure-configuration"),
    (create_distribution, "DistributionConfiguration", "distribution-configuration"),
    (create_pipeline, "ImagePipeline", "image-pipeline"),
    (create_lifecycle_policy, "LifecyclePolicy", "lifecycle-policy"),
]


@pytest.mark.parametrize(("create", "label", "arn_type"), MUTABLE_KINDS, ids=[k[1] for k in MUTABLE_KINDS])
@pytest.mark.parametrize("second_name", ["Build Private", "build-private"])
def test_existing_mutable_name_is_rejected(
    client: Any, create: Callable[..., str], label: str, arn_type: str, second_name: str
) -> None:
    extra: dict[str, Any] = {}
    if create is create_pipeline:
        # both attempts must differ only in the name, so share the dependencies
        extra = {
            "infra": create_infrastructure(client, "shared-infra"),
            "recipe": create_image_recipe(client, "shared"),
        }
    arn = create(client, "Build Private", **extra)
    assert arn == f"{PREFIX}:{arn_type}/build-private"
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException) as err:
        create(client, second_name, **extra)
    assert_error(err, "ResourceAlreadyExistsException", 400)
    assert err.value.response["Error"]["Message"] == f"The following resource '{label}' already exists: '{arn}'."


def test_name_keeps_its_spelling_while_arn_is_normalized(client: Any) -> None:
    arn = create_infrastructure(client, "Build Private")
    got = client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    assert got["name"] == "Build Private"
    assert got["arn"] == f"{PREFIX}:infrastructure-configuration/build-private"
    # upper case and underscores normalize to the same ARN segment too
    for other in ("BUILD PRIVATE", "build_private"):
        with pytest.raises(client.exceptions.ResourceAlreadyExistsException) as err:
            create_infrastructure(client, other)
        assert_error(err, "ResourceAlreadyExistsException", 400, arn)


# --- 8. ResourceDependencyException -------------------------------------------------------------

# Each scenario builds a target and a dependent; returns (delete target, target ARN, delete dependent).
Scenario = Callable[[Any], tuple[Callable[[], Any], str, Callable[[], Any]]]


def _component_in_image_recipe(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    comp = create_component(client, "dep-comp")
    recipe = create_image_recipe(client, "dep-recipe", components=[comp])
    return (
        lambda: client.delete_component(componentBuildVersionArn=comp),
        comp,
        lambda: client.delete_image_recipe(imageRecipeArn=recipe),
    )


def _component_in_container_recipe(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    comp = create_component(client, "dep-comp")
    recipe = create_container_recipe(client, "dep-container", components=[f"{PREFIX}:component/dep-comp/1.0.0"])
    return (
        lambda: client.delete_component(componentBuildVersionArn=comp),
        comp,
        lambda: client.delete_container_recipe(containerRecipeArn=recipe),
    )


def _image_recipe_in_pipeline(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    recipe = create_image_recipe(client, "dep-recipe")
    pipeline = create_pipeline(client, "dep-pipeline", recipe=recipe)
    return (
        lambda: client.delete_image_recipe(imageRecipeArn=recipe),
        recipe,
        lambda: client.delete_image_pipeline(imagePipelineArn=pipeline),
    )


def _container_recipe_in_pipeline(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    recipe = create_container_recipe(client, "dep-container")
    pipeline = client.create_image_pipeline(
        name="dep-pipeline", infrastructureConfigurationArn=create_infrastructure(client), containerRecipeArn=recipe
    )["imagePipelineArn"]
    return (
        lambda: client.delete_container_recipe(containerRecipeArn=recipe),
        recipe,
        lambda: client.delete_image_pipeline(imagePipelineArn=pipeline),
    )


def _infrastructure_in_pipeline(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    infra = create_infrastructure(client, "dep-infra")
    pipeline = create_pipeline(client, "dep-pipeline", infra=infra)
    return (
        lambda: client.delete_infrastructure_configuration(infrastructureConfigurationArn=infra),
        infra,
        lambda: client.delete_image_pipeline(imagePipelineArn=pipeline),
    )


def _distribution_in_pipeline(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    dist = create_distribution(client, "dep-dist")
    pipeline = create_pipeline(client, "dep-pipeline", distributionConfigurationArn=dist)
    return (
        lambda: client.delete_distribution_configuration(distributionConfigurationArn=dist),
        dist,
        lambda: client.delete_image_pipeline(imagePipelineArn=pipeline),
    )


def _workflow_in_pipeline(client: Any) -> tuple[Callable[[], Any], str, Callable[[], Any]]:
    workflow = create_workflow(client, "dep-workflow")
    pipeline = create_pipeline(
        client,
        "dep-pipeline",
        workflows=[{"workflowArn": workflow}],
        executionRole=f"arn:aws:iam::{ACCOUNT}:role/ImageBuilderExecution",
    )
    return (
        lambda: client.delete_workflow(workflowBuildVersionArn=workflow),
        workflow,
        lambda: client.delete_image_pipeline(imagePipelineArn=pipeline),
    )


DEPENDENCY_SCENARIOS: list[Scenario] = [
    _component_in_image_recipe,
    _component_in_container_recipe,
    _image_recipe_in_pipeline,
    _container_recipe_in_pipeline,
    _infrastructure_in_pipeline,
    _distribution_in_pipeline,
    _workflow_in_pipeline,
]


@pytest.mark.parametrize("scenario", DEPENDENCY_SCENARIOS, ids=lambda s: s.__name__.strip("_"))
def test_delete_with_dependents_is_rejected_until_they_are_gone(client: Any, scenario: Scenario) -> None:
    delete_target, target, delete_dependent = scenario(client)
    with pytest.raises(client.exceptions.ResourceDependencyException) as err:
        delete_target()
    assert_error(err, "ResourceDependencyException", 400, f"'{target}'", "has other resources depended on it")
    assert err.value.response["Error"]["Message"].startswith(f"Resource dependency error: The resource ARN '{target}'")
    delete_dependent()
    delete_target()


def test_unreferenced_older_build_can_be_deleted_while_newest_is_referenced_by_wildcard(client: Any) -> None:
    old = create_component(client, "wild-dep", "1.0.0", component_document("old"))
    new = create_component(client, "wild-dep", "1.0.0", component_document("new"))
    recipe = create_image_recipe(client, "wild-dep-recipe", components=[f"{PREFIX}:component/wild-dep/x.x.x"])
    client.delete_component(componentBuildVersionArn=old)
    with pytest.raises(client.exceptions.ResourceDependencyException) as err:
        client.delete_component(componentBuildVersionArn=new)
    assert_error(err, "ResourceDependencyException", 400, new, "has other resources depended on it")
    client.delete_image_recipe(imageRecipeArn=recipe)
    client.delete_component(componentBuildVersionArn=new)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_component(componentBuildVersionArn=f"{PREFIX}:component/wild-dep/x.x.x")


def test_failed_delete_leaves_the_resource_in_place(client: Any) -> None:
    delete_target, target, _ = _component_in_image_recipe(client)
    with pytest.raises(client.exceptions.ResourceDependencyException):
        delete_target()
    assert client.get_component(componentBuildVersionArn=target)["component"]["arn"] == target


# --- 9. ResourceNotFoundException ---------------------------------------------------------------

MISSING = [
    ("component", "componentBuildVersionArn", f"{PREFIX}:component/missing/1.0.0/1"),
    ("image_recipe", "imageRecipeArn", f"{PREFIX}:image-recipe/missing/1.0.0"),
    ("container_recipe", "containerRecipeArn", f"{PREFIX}:container-recipe/missing/1.0.0"),
    ("workflow", "workflowBuildVersionArn", f"{PREFIX}:workflow/build/missing/1.0.0/1"),
    ("image", "imageBuildVersionArn", f"{PREFIX}:image/missing/1.0.0/1"),
    (
        "infrastructure_configuration",
        "infrastructureConfigurationArn",
        f"{PREFIX}:infrastructure-configuration/missing",
    ),
    ("distribution_configuration", "distributionConfigurationArn", f"{PREFIX}:distribution-configuration/missing"),
    ("image_pipeline", "imagePipelineArn", f"{PREFIX}:image-pipeline/missing"),
    ("lifecycle_policy", "lifecyclePolicyArn", f"{PREFIX}:lifecycle-policy/missing"),
]


@pytest.mark.parametrize("action", ["get", "delete"])
@pytest.mark.parametrize(("kind", "member", "arn"), MISSING, ids=[m[0] for m in MISSING])
def test_missing_resource_is_not_found(client: Any, action: str, kind: str, member: str, arn: str) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
        getattr(client, f"{action}_{kind}")(**{member: arn})
    assert_error(err, "ResourceNotFoundException", 404, arn)


@pytest.mark.parametrize(
    ("member", "arn"),
    [
        ("componentBuildVersionArn", f"{PREFIX}:component/missing/x.x.x"),
        ("componentBuildVersionArn", f"{PREFIX}:component/missing/1.0.0"),
        ("componentBuildVersionArn", f"{AMAZON}:component/no-such-amazon-component/x.x.x"),
        ("componentBuildVersionArn", f"{AMAZON}:component/update-linux/9.x.x"),
    ],
)
def test_get_component_unresolvable_reference_is_not_found(client: Any, member: str, arn: str) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
        client.get_component(**{member: arn})
    assert_error(err, "ResourceNotFoundException", 404, arn)


def test_missing_build_of_an_existing_version_is_not_found(client: Any) -> None:
    create_component(client, "one-build")
    arn = f"{PREFIX}:component/one-build/1.0.0/2"
    for call in (client.get_component, client.delete_component):
        with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
            call(componentBuildVersionArn=arn)
        assert_error(err, "ResourceNotFoundException", 404, arn)


def test_deleted_resource_is_not_found(client: Any) -> None:
    arn = create_infrastructure(client, "short-lived")
    client.delete_infrastructure_configuration(infrastructureConfigurationArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_infrastructure_configuration(infrastructureConfigurationArn=arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_infrastructure_configuration(infrastructureConfigurationArn=arn)


def test_start_missing_pipeline_is_not_found(client: Any) -> None:
    arn = f"{PREFIX}:image-pipeline/missing"
    with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
        client.start_image_pipeline_execution(imagePipelineArn=arn)
    assert_error(err, "ResourceNotFoundException", 404, arn)


@pytest.mark.parametrize(
    "arn",
    [f"{PREFIX}:component/missing/1.0.0/1", f"{PREFIX}:image-pipeline/missing", f"{PREFIX}:image-recipe/missing/1.0.0"],
)
def test_tag_missing_resource_is_not_found(client: Any, arn: str) -> None:
    with pytest.raises(client.exceptions.ResourceNotFoundException) as err:
        client.tag_resource(resourceArn=arn, tags={"team": "platform"})
    assert_error(err, "ResourceNotFoundException", 404, arn)


# --- 10. clientToken idempotency ----------------------------------------------------------------

TOKEN = "idempotency-token-0001"

# kind -> (create(client, token, variant) -> ARN, count(client) -> number of resources/builds)
IdempotentCreate = Callable[[Any, str, int], str]


def _idem_component(client: Any, token: str, variant: int) -> str:
    return create_component(client, "idem", description=f"variant {variant}", clientToken=token)


def _idem_workflow(client: Any, token: str, variant: int) -> str:
    return create_workflow(client, "idem", description=f"variant {variant}", clientToken=token)


def _idem_image_recipe(client: Any, token: str, variant: int) -> str:
    return create_image_recipe(client, "idem", description=f"variant {variant}", clientToken=token)


def _idem_wildcard_image_recipe(client: Any, token: str, variant: int) -> str:
    return create_image_recipe(client, "idem", "1.0.x", description=f"variant {variant}", clientToken=token)


def _idem_container_recipe(client: Any, token: str, variant: int) -> str:
    return create_container_recipe(client, "idem", description=f"variant {variant}", clientToken=token)


def _idem_infrastructure(client: Any, token: str, variant: int) -> str:
    return create_infrastructure(client, "idem", description=f"variant {variant}", clientToken=token)


def _idem_distribution(client: Any, token: str, variant: int) -> str:
    return create_distribution(client, "idem", description=f"variant {variant}", clientToken=token)


def _idem_pipeline(client: Any, token: str, variant: int) -> str:
    infra = f"{PREFIX}:infrastructure-configuration/idem-infra"
    recipe = f"{PREFIX}:image-recipe/idem-recipe/1.0.0"
    if not client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]:
        create_infrastructure(client, "idem-infra")
        create_image_recipe(client, "idem-recipe")
    return create_pipeline(
        client, "idem", infra=infra, recipe=recipe, description=f"variant {variant}", clientToken=token
    )


def _idem_lifecycle(client: Any, token: str, variant: int) -> str:
    return create_lifecycle_policy(client, "idem", description=f"variant {variant}", clientToken=token)


IDEMPOTENT_CREATES: list[tuple[IdempotentCreate, Callable[[Any], int]]] = [
    (_idem_component, lambda c: len(c.list_component_build_versions(
        componentVersionArn=f"{PREFIX}:component/idem/1.0.0")["componentSummaryList"])),
    (_idem_workflow, lambda c: len(c.list_workflow_build_versions(
        workflowVersionArn=f"{PREFIX}:workflow/build/idem/1.0.0")["workflowSummaryList"])),
    (_idem_image_recipe, lambda c: len(c.list_image_recipes()["imageRecipeSummaryList"])),
    (_idem_wildcard_image_recipe, lambda c: len(c.list_image_recipes()["imageRecipeSummaryList"])),
    (_idem_container_recipe, lambda c: len(c.list_container_recipes()["containerRecipeSummaryList"])),
    (_idem_infrastructure, lambda c: len(
        c.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"])),
    (_idem_distribution, lambda c: len(c.list_distribution_configurations()["distributionConfigurationSummaryList"])),
    (_idem_pipeline, lambda c: len(c.list_image_pipelines()["imagePipelineList"])),
    (_idem_lifecycle, lambda c: len(c.list_lifecycle_policies()["lifecyclePolicySummaryList"])),
]


@pytest.mark.parametrize(("create", "count"), IDEMPOTENT_CREATES, ids=[c[0].__name__[6:] for c in IDEMPOTENT_CREATES])
def test_create_replay_with_same_token_returns_same_resource(
    client: Any, create: IdempotentCreate, count: Callable[[Any], int]
) -> None:
    first = create(client, TOKEN, 0)
    before = count(client)
    assert create(client, TOKEN, 0) == first
    assert create(client, TOKEN, 0) == first
    assert count(client) == before == 1


@pytest.mark.parametrize(("create", "count"), IDEMPOTENT_CREATES, ids=[c[0].__name__[6:] for c in IDEMPOTENT_CREATES])
def test_create_with_same_token_and_other_params_is_a_mismatch(
    client: Any, create: IdempotentCreate, count: Callable[[Any], int]
) -> None:
    create(client, TOKEN, 0)
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException) as err:
        create(client, TOKEN, 1)
    assert_error(err, "IdempotentParameterMismatchException", 400, TOKEN)
    assert count(client) == 1


def test_create_response_echoes_client_token(client: Any) -> None:
    resp = client.create_component(
        name="echo-token", semanticVersion="1.0.0", platform="Linux", data=SIMPLE_DOCUMENT, clientToken=TOKEN
    )
    assert resp["clientToken"] == TOKEN
    auto = client.create_infrastructure_configuration(name="auto-token", instanceProfileName="ImageBuilderRole")
    assert auto["clientToken"]  # botocore filled a uuid4 and the service echoed it


def test_same_token_on_different_operations_does_not_clash(client: Any) -> None:
    component = create_component(client, "shared-token", clientToken=TOKEN)
    recipe = create_image_recipe(client, "shared-token", components=[component], clientToken=TOKEN)
    workflow = create_workflow(client, "shared-token", clientToken=TOKEN)
    assert component == f"{PREFIX}:component/shared-token/1.0.0/1"
    assert recipe == f"{PREFIX}:image-recipe/shared-token/1.0.0"
    assert workflow == f"{PREFIX}:workflow/build/shared-token/1.0.0/1"


def test_update_replay_with_same_token_does_not_reapply(client: Any) -> None:
    arn = create_infrastructure(client, "idem-update", description="created")
    update = lambda description, token: client.update_infrastructure_configuration(  # noqa: E731
        infrastructureConfigurationArn=arn, instanceProfileName="ImageBuilderRole",
        description=description, clientToken=token,
    )
    get = lambda: client.get_infrastructure_configuration(  # noqa: E731
        infrastructureConfigurationArn=arn)["infrastructureConfiguration"]
    assert update("first", "update-token-a")["infrastructureConfigurationArn"] == arn
    assert get()["description"] == "first"
    update("second", "update-token-b")
    assert get()["description"] == "second"
    # replaying token A with its original parameters succeeds without doing anything
    assert update("first", "update-token-a")["infrastructureConfigurationArn"] == arn
    assert get()["description"] == "second"
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException) as err:
        update("third", "update-token-a")
    assert_error(err, "IdempotentParameterMismatchException", 400, "update-token-a")
    assert get()["description"] == "second"
    assert len(client.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"]) == 1


def test_create_token_does_not_clash_with_update_token(client: Any) -> None:
    arn = create_distribution(client, "token-scope", clientToken=TOKEN)
    client.update_distribution_configuration(
        distributionConfigurationArn=arn,
        distributions=[{"region": "eu-west-1"}],
        description="updated",
        clientToken=TOKEN,
    )
    got = client.get_distribution_configuration(distributionConfigurationArn=arn)["distributionConfiguration"]
    assert got["description"] == "updated"
    assert [d["region"] for d in got["distributions"]] == ["eu-west-1"]


def test_failed_create_does_not_consume_the_token(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidVersionNumberException):
        create_component(client, "retry-after-error", "1.0", clientToken=TOKEN)
    assert create_component(client, "retry-after-error", "1.0.0", clientToken=TOKEN).endswith("/1.0.0/1")


# --- 11. pagination -----------------------------------------------------------------------------

PAGE_NAMES = [f"page-comp-{i:02d}" for i in range(30)]


@pytest.fixture(scope="module")
def paged_client() -> Iterator[Any]:
    """A client of a separate sandbox holding 30 components, created once for the read-only tests below."""
    with running() as served:
        client = make_client(served.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        for name in PAGE_NAMES:
            create_component(client, name)
        yield client


def test_list_components_pages_follow_next_token(paged_client: Any) -> None:
    names, sizes, token = [], [], None
    while True:
        resp = paged_client.list_components(maxResults=10, **({"nextToken": token} if token else {}))
        sizes.append(len(resp["componentVersionList"]))
        names.extend(r["name"] for r in resp["componentVersionList"])
        token = resp.get("nextToken")
        if not token:
            break
    assert sizes == [10, 10, 10]
    assert sorted(names) == PAGE_NAMES
    assert len(set(names)) == 30


def test_list_components_default_page_size_is_25(paged_client: Any) -> None:
    first = paged_client.list_components()
    assert len(first["componentVersionList"]) == 25
    second = paged_client.list_components(nextToken=first["nextToken"])
    assert len(second["componentVersionList"]) == 5
    assert "nextToken" not in second


def test_filtered_pages_are_short_while_next_token_continues(paged_client: Any) -> None:
    wanted = ["page-comp-00", "page-comp-01", "page-comp-25"]
    pages, token = [], None
    while True:
        resp = paged_client.list_components(
            maxResults=10, filters=[{"name": "name", "values": wanted}], **({"nextToken": token} if token else {})
        )
        pages.append([r["name"] for r in resp["componentVersionList"]])
        token = resp.get("nextToken")
        if not token:
            break
    assert pages == [["page-comp-00", "page-comp-01"], [], ["page-comp-25"]]
    assert sorted(n for page in pages for n in page) == wanted


def test_paginator_yields_everything(paged_client: Any) -> None:
    rows = list_all(paged_client, "list_components", "componentVersionList", PaginationConfig={"PageSize": 7})
    assert sorted(r["name"] for r in rows) == PAGE_NAMES
    filtered = list_all(
        paged_client, "list_components", "componentVersionList",
        filters=[{"name": "name", "values": ["page-comp-03", "page-comp-29"]}], PaginationConfig={"PageSize": 4},
    )
    assert sorted(r["name"] for r in filtered) == ["page-comp-03", "page-comp-29"]


@pytest.mark.parametrize("token", ["garbage", "x" * 200, "eyJub3QiOiAidmFsaWQifQ"])
def test_garbage_next_token_is_rejected(client: Any, token: str) -> None:
    with pytest.raises(client.exceptions.InvalidPaginationTokenException) as err:
        client.list_components(nextToken=token)
    assert_error(err, "InvalidPaginationTokenException", 400, "nextToken")


def test_next_token_from_another_operation_is_rejected(client: Any) -> None:
    token = client.list_images(owner="Amazon", maxResults=1)["nextToken"]
    assert client.list_images(owner="Amazon", maxResults=1, nextToken=token)["imageVersionList"]
    with pytest.raises(client.exceptions.InvalidPaginationTokenException) as err:
        client.list_components(owner="Amazon", nextToken=token)
    assert_error(err, "InvalidPaginationTokenException", 400)


def test_max_results_zero_is_rejected_by_botocore(client: Any) -> None:
    with pytest.raises(ParamValidationError):
        client.list_components(maxResults=0)


def test_max_results_above_the_model_limit_is_rejected_by_the_service(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterValueException) as err:
        client.list_components(maxResults=MAX_RESULTS + 1)
    assert_error(err, "InvalidParameterValueException", 400, "maxResults")
    assert len(client.list_components(owner="Amazon", maxResults=25)["componentVersionList"]) == 25


# --- 12. owner and byName -----------------------------------------------------------------------

AMAZON_COMPONENTS = ["update-linux", "amazon-cloudwatch-agent-linux", "stig-build-linux-high", "inspector-test-linux"]
AMAZON_IMAGES = [
    "amazon-linux-2023-x86",
    "amazon-linux-2023-arm64",
    "ubuntu-server-22-lts-x86",
    "windows-server-2022-english-full-base-x86",
]


def test_default_owner_lists_only_own_components(client: Any) -> None:
    create_component(client, "mine")
    rows = client.list_components()["componentVersionList"]
    assert [(r["name"], r["owner"]) for r in rows] == [("mine", ACCOUNT)]
    assert client.list_components(owner="Self")["componentVersionList"] == rows


def test_owner_amazon_lists_the_catalog(client: Any) -> None:
    create_component(client, "mine")
    rows = list_all(client, "list_components", "componentVersionList", owner="Amazon")
    assert "mine" not in {r["name"] for r in rows}
    assert all(r["owner"] == "Amazon" and r["arn"].startswith(f"{AMAZON}:component/") for r in rows)
    for name in AMAZON_COMPONENTS:
        versions = [r for r in rows if r["name"] == name]
        assert len(versions) > 1, name
        assert all(r["arn"] == f"{AMAZON}:component/{name}/{r['version']}" for r in versions)


OWNED_LISTS = [
    ("list_components", "componentVersionList"),
    ("list_images", "imageVersionList"),
    ("list_image_recipes", "imageRecipeSummaryList"),
    ("list_container_recipes", "containerRecipeSummaryList"),
    ("list_workflows", "workflowVersionList"),
]


@pytest.mark.parametrize("owner", ["Shared", "ThirdParty", "AWSMarketplace"])
def test_other_owners_list_nothing(client: Any, owner: str) -> None:
    create_component(client, "mine")
    for operation, key in OWNED_LISTS:
        resp = getattr(client, operation)(owner=owner)
        assert resp[key] == [], operation
        assert "nextToken" not in resp, operation


def test_by_name_collapses_to_one_row_per_name(client: Any) -> None:
    for version in ("1.0.0", "1.0.9", "1.0.10"):
        create_component(client, "by-name", version)
    create_component(client, "by-name-b", "3.0.0")
    rows = client.list_components(byName=True)["componentVersionList"]
    assert sorted((r["name"], r["version"]) for r in rows) == [("by-name", "1.0.10"), ("by-name-b", "3.0.0")]


def test_by_name_over_the_amazon_catalog(client: Any) -> None:
    rows = list_all(client, "list_components", "componentVersionList", owner="Amazon", byName=True)
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    assert set(AMAZON_COMPONENTS) <= set(names)
    by_name = {r["name"]: r["version"] for r in rows}
    assert by_name["aws-cli-version-2-linux"] == "1.0.10"
    assert by_name["update-linux"] == "1.0.2"


def test_list_images_owner_amazon(client: Any) -> None:
    rows = list_all(client, "list_images", "imageVersionList", owner="Amazon")
    names = {r["name"] for r in rows}
    assert set(AMAZON_IMAGES) <= names
    for name in AMAZON_IMAGES:
        assert len([r for r in rows if r["name"] == name]) > 1, name
    assert all(r["arn"] == f"{AMAZON}:image/{r['name']}/{r['version']}" for r in rows)
    assert client.list_images()["imageVersionList"] == []


def test_list_images_by_name_amazon(client: Any) -> None:
    rows = list_all(client, "list_images", "imageVersionList", owner="Amazon", byName=True)
    by_name = {r["name"]: r["version"] for r in rows}
    assert len(by_name) == len(rows)
    assert by_name["amazon-linux-2023-x86"] == "2026.1.15"


def test_list_images_rows_carry_owner(client: Any) -> None:
    rows = client.list_images(owner="Amazon")["imageVersionList"]
    assert rows
    assert all(r.get("owner") == "Amazon" for r in rows)


def test_list_images_by_name_with_version_filter_is_rejected(client: Any) -> None:
    with pytest.raises(client.exceptions.InvalidParameterCombinationException) as err:
        client.list_images(owner="Amazon", byName=True, filters=[{"name": "version", "values": ["2025.9.18"]}])
    assert_error(
        err, "InvalidParameterCombinationException", 400, "You cannot list Images by name and filter by version"
    )


# --- 13. regions --------------------------------------------------------------------------------


def test_regions_are_isolated(client: Any, client_factory: Callable[..., Any]) -> None:
    eu = client_factory("eu-west-1")
    us_arn = create_component(client, "regional")
    assert us_arn == f"arn:aws:imagebuilder:us-east-1:{ACCOUNT}:component/regional/1.0.0/1"
    assert eu.list_components()["componentVersionList"] == []
    # the same name and version start at build 1 in the other region
    eu_arn = create_component(eu, "regional")
    assert eu_arn == f"arn:aws:imagebuilder:eu-west-1:{ACCOUNT}:component/regional/1.0.0/1"
    assert [r["arn"] for r in eu.list_components()["componentVersionList"]] == [eu_arn.rsplit("/", 1)[0]]
    assert [r["arn"] for r in client.list_components()["componentVersionList"]] == [us_arn.rsplit("/", 1)[0]]


def test_mutable_names_are_per_region(client: Any, client_factory: Callable[..., Any]) -> None:
    eu = client_factory("eu-west-1")
    assert create_infrastructure(client, "regional") == f"{PREFIX}:infrastructure-configuration/regional"
    eu_arn = create_infrastructure(eu, "regional")
    assert eu_arn == f"arn:aws:imagebuilder:eu-west-1:{ACCOUNT}:infrastructure-configuration/regional"


def test_amazon_catalog_is_regional(client_factory: Callable[..., Any]) -> None:
    eu = client_factory("eu-west-1")
    rows = eu.list_components(owner="Amazon")["componentVersionList"]
    assert rows and all(r["arn"].startswith("arn:aws:imagebuilder:eu-west-1:aws:component/") for r in rows)
    got = eu.get_component(componentBuildVersionArn="arn:aws:imagebuilder:eu-west-1:aws:component/update-linux/x.x.x")
    assert got["component"]["arn"] == "arn:aws:imagebuilder:eu-west-1:aws:component/update-linux/1.0.2/1"


CROSS_REGION_CALLS = {
    "get": lambda c, arn: c.get_component(componentBuildVersionArn=arn),
    "tag": lambda c, arn: c.tag_resource(resourceArn=arn, tags={"team": "platform"}),
    "delete": lambda c, arn: c.delete_component(componentBuildVersionArn=arn),
}


@pytest.mark.parametrize("action", list(CROSS_REGION_CALLS))
def test_other_region_cannot_reach_a_resource_by_arn(
    client: Any, client_factory: Callable[..., Any], action: str
) -> None:
    eu = client_factory("eu-west-1")
    arn = create_component(client, "regional")
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        CROSS_REGION_CALLS[action](eu, arn)
    component = client.get_component(componentBuildVersionArn=arn)["component"]
    assert component["arn"] == arn
    assert component.get("tags", {}) == {}


def test_own_arns_carry_the_region_partition(client_factory: Callable[..., Any]) -> None:
    cn = client_factory("cn-north-1")
    assert create_component(cn, "regional").startswith(f"arn:aws-cn:imagebuilder:cn-north-1:{ACCOUNT}:component/")


def test_amazon_wildcards_resolve_in_the_china_partition(client_factory: Callable[..., Any]) -> None:
    cn = client_factory("cn-north-1")
    base = "arn:aws-cn:imagebuilder:cn-north-1:aws:component/update-linux"
    assert cn.get_component(componentBuildVersionArn=f"{base}/x.x.x")["component"]["arn"] == f"{base}/1.0.2/1"
