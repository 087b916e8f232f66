"""Sharing Image Builder resources through resource policies, across accounts of one sandbox.

Three real boto3 clients talk HTTP to one sandbox, each acting in its own account (a 12-digit
access key id selects the account): A owns the resources and puts the policies, B is the account
a policy names, C is an account no policy names. Nothing in the sandbox is mocked.

A sandbox simplification: it has no RAM, so a policy shares at once. The service documents that a
resource shared by Put*Policy "isn't visible to the principals that it's shared with" until RAM's
PromoteResourceShareCreatedFromPolicy is called
(https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html,
https://docs.aws.amazon.com/ram/latest/APIReference/API_PromoteResourceShareCreatedFromPolicy.html);
every test here that reads a shared resource right after Put*Policy relies on that simplification.

Which policies Put*Policy refuses is documented only in general: the policy is a JSON policy
document and an invalid one is refused with InvalidParameterValueException
(https://docs.aws.amazon.com/zh_tw/imagebuilder/latest/APIReference/API_PutImagePolicy.html). The
finer refusals (Deny, principals other than accounts, actions of another kind, conditions, ...) are
the sandbox's reading of the user guide's sharing policies; their tests check only the error code
and that the message names 'policy', not the sandbox's wording.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from imagesync.sandbox import RunningSandbox, running
from support import REGION, SIMPLE_DOCUMENT

A, B, C = "111111111111", "222222222222", "333333333333"
AMI = "ami-0123456789abcdef0"
AMAZON_COMPONENT = f"arn:aws:imagebuilder:{REGION}:aws:component/update-linux/x.x.x"

SHARE_DOCS = "https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources-share.html"
SHARING_DOCS = "https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources.html"
IAM_ACTIONS = "https://docs.aws.amazon.com/IAM/latest/UserGuide/list_amazonec2imagebuilder.html"
OWNER_DOCS = (
    "https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/imagebuilder/"
    "aws.sdk.kotlin.services.imagebuilder.model/-list-components-request"
)
PUT_COMPONENT_POLICY = "https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html"
CLI_EXAMPLE = "https://docs.aws.amazon.com/cli/v1/reference/imagebuilder/put-component-policy.html"
RAM_PROMOTE = "https://docs.aws.amazon.com/ram/latest/APIReference/API_PromoteResourceShareCreatedFromPolicy.html"
PUT_IMAGE_POLICY = "https://docs.aws.amazon.com/zh_tw/imagebuilder/latest/APIReference/API_PutImagePolicy.html"
SANDBOX_READING = "the sandbox's reading"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with running(clock_speed=0) as served:
        yield served


def account_client(sandbox: RunningSandbox, account: str, region: str = REGION) -> Any:
    return boto3.client(
        "imagebuilder",
        endpoint_url=sandbox.endpoint_url,
        region_name=region,
        aws_access_key_id=account,
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.fixture
def a(sandbox: RunningSandbox) -> Any:
    return account_client(sandbox, A)


@pytest.fixture
def b(sandbox: RunningSandbox) -> Any:
    return account_client(sandbox, B)


@pytest.fixture
def c(sandbox: RunningSandbox) -> Any:
    return account_client(sandbox, C)


def policy(kind: str, arn: str, *principals: str, actions: tuple[str, ...] = ("Get", "List")) -> str:
    """The policy the user guide's examples put: Allow, AWS principals, the kind's Get/List actions."""
    names = {"Get": f"imagebuilder:Get{kind}", "List": f"imagebuilder:List{kind}s"}
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": list(principals)},
            "Action": [names[a] for a in actions],
            "Resource": [arn],
        }],
    })


def component(client: Any, name: str = "shared-setup", version: str = "1.0.0", data: str = SIMPLE_DOCUMENT) -> str:
    return client.create_component(name=name, semanticVersion=version, platform="Linux", data=data)[
        "componentBuildVersionArn"
    ]


def image_recipe(client: Any, name: str, components: list[str], parent: str = AMI) -> str:
    return client.create_image_recipe(
        name=name, semanticVersion="1.0.0", parentImage=parent,
        components=[{"componentArn": arn} for arn in components or [AMAZON_COMPONENT]],
    )["imageRecipeArn"]


def container_recipe(client: Any, name: str, components: list[str]) -> str:
    return client.create_container_recipe(
        containerType="DOCKER", name=name, semanticVersion="1.0.0", parentImage="amazonlinux:2023",
        components=[{"componentArn": arn} for arn in components],
        dockerfileTemplateData="FROM {{{ imagebuilder:parentImage }}}\n{{{ imagebuilder:components }}}\n",
        targetRepository={"service": "ECR", "repositoryName": "golden"},
    )["containerRecipeArn"]


def image(client: Any, recipe: str, name: str = "golden") -> str:
    infra = client.create_infrastructure_configuration(
        name=f"{name}-infra", instanceProfileName="EC2InstanceProfileForImageBuilder"
    )["infrastructureConfigurationArn"]
    pipeline = client.create_image_pipeline(
        name=f"{name}-pipeline", imageRecipeArn=recipe, infrastructureConfigurationArn=infra
    )["imagePipelineArn"]
    return client.start_image_pipeline_execution(imagePipelineArn=pipeline)["imageBuildVersionArn"]


def error(excinfo: pytest.ExceptionInfo[Any]) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err["Code"], err["Message"]


# --- the four shareable kinds -------------------------------------------------------------------

KINDS = {
    # kind: (put, get-policy member, get, get member, get result key, list, list result key)
    "Component": ("put_component_policy", "componentArn", "get_component", "componentBuildVersionArn", "component",
                  "list_components", "componentVersionList"),
    "ImageRecipe": ("put_image_recipe_policy", "imageRecipeArn", "get_image_recipe", "imageRecipeArn", "imageRecipe",
                    "list_image_recipes", "imageRecipeSummaryList"),
    "ContainerRecipe": ("put_container_recipe_policy", "containerRecipeArn", "get_container_recipe",
                        "containerRecipeArn", "containerRecipe", "list_container_recipes",
                        "containerRecipeSummaryList"),
    "Image": ("put_image_policy", "imageArn", "get_image", "imageBuildVersionArn", "image",
              "list_images", "imageVersionList"),
}


def make(kind: str, client: Any) -> str:
    comp = component(client)
    if kind == "Component":
        return comp
    if kind == "ContainerRecipe":
        return container_recipe(client, "golden-container", [comp])
    recipe = image_recipe(client, "golden", [comp])
    return recipe if kind == "ImageRecipe" else image(client, recipe)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_policy_shares_the_resource_with_the_accounts_it_names_and_no_other(kind: str, a: Any, b: Any,
                                                                             c: Any) -> None:
    """The named account lists the resource with owner=Shared (owner is A's account id) and reads it;
    an account the policy does not name sees nothing, and Self lists never show shared resources.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Sources: the put-*-policy examples and the owner filter at
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources-share.html and
    https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/imagebuilder/aws.sdk.kotlin.services.imagebuilder.model/-list-components-request
    """
    put, member, get, get_member, key, list_op, list_key = KINDS[kind]
    arn = make(kind, a)
    assert getattr(b, list_op)(owner="Shared")[list_key] == []
    getattr(a, put)(**{member: arn, "policy": policy(kind, arn, B)})

    shared = getattr(b, list_op)(owner="Shared")[list_key]
    assert [row["owner"] for row in shared] == [A]
    assert arn.startswith(shared[0]["arn"])
    assert getattr(b, get)(**{get_member: arn})[key]["arn"] == arn
    assert getattr(b, list_op)()[list_key] == []
    assert getattr(b, list_op)(owner="Self")[list_key] == []

    assert getattr(c, list_op)(owner="Shared")[list_key] == []
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        getattr(c, get)(**{get_member: arn})
    assert getattr(a, list_op)(owner="Shared")[list_key] == []
    assert [row["owner"] for row in getattr(a, list_op)()[list_key]] == [A]


def test_the_named_account_uses_a_shared_component_in_its_recipes(a: Any, b: Any, c: Any) -> None:
    """Consumers associate a shared component with their recipes and pipelines, by its build,
    version or wildcard ARN; an account it is not shared with is told the component does not exist.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources.html
    """
    arn = component(a)
    a.put_component_policy(componentArn=arn, policy=policy("Component", arn, B))
    version_arn = arn.rsplit("/", 1)[0]
    wildcard = arn.rsplit("/", 2)[0] + "/x.x.x"
    for i, ref in enumerate((arn, version_arn, wildcard)):
        recipe = image_recipe(b, f"consumer-{i}", [ref])
        assert recipe.startswith(f"arn:aws:imagebuilder:{REGION}:{B}:image-recipe/")
    with pytest.raises(c.exceptions.InvalidParameterValueException) as excinfo:
        image_recipe(c, "outsider", [arn])
    assert "does not exist" in error(excinfo)[1]


def test_the_named_account_builds_on_a_shared_image_and_pipes_a_shared_recipe(a: Any, b: Any, c: Any) -> None:
    """A shared image is a parent image for the consumer's recipes, by build ARN or x.x.x; a shared
    recipe can run in the consumer's pipeline.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources-share.html
    ("You can apply a resource policy to an image, to allow others to use it as the base image in
    their recipes")
    """
    recipe = image_recipe(a, "base", [component(a)])
    built = image(a, recipe)
    a.put_image_policy(imageArn=built, policy=policy("Image", built, B))
    a.put_image_recipe_policy(imageRecipeArn=recipe, policy=policy("ImageRecipe", recipe, B))
    latest = built.rsplit("/", 2)[0] + "/x.x.x"
    for i, parent in enumerate((built, latest)):
        layered = image_recipe(b, f"layered-{i}", [], parent=parent)
        assert b.get_image_recipe(imageRecipeArn=layered)["imageRecipe"]["parentImage"] == parent
    infra = b.create_infrastructure_configuration(
        name="consumer-infra", instanceProfileName="EC2InstanceProfileForImageBuilder"
    )["infrastructureConfigurationArn"]
    b.create_image_pipeline(name="consumer", imageRecipeArn=recipe, infrastructureConfigurationArn=infra)

    with pytest.raises(c.exceptions.InvalidParameterValueException) as excinfo:
        image_recipe(c, "outsider", [], parent=latest)
    assert "parentImage" in error(excinfo)[1]


def test_a_component_policy_on_a_build_shares_every_build_of_that_version(a: Any, b: Any) -> None:
    """PutComponentPolicy takes a build ARN (`.../1.0.0/1`); the sandbox reads that as sharing the
    version, so a later build of 1.0.0 is the one the consumer sees, newest per version as for Self,
    while another version stays unshared.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: componentArn pattern at https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html
    """
    first = component(a)
    a.put_component_policy(componentArn=first, policy=policy("Component", first, B))
    second = component(a, data=SIMPLE_DOCUMENT.replace("hello", "hello again"))
    other_version = component(a, version="1.0.1")
    assert second.endswith("/1.0.0/2")

    rows = b.list_components(owner="Shared")["componentVersionList"]
    assert [(row["arn"], row["version"]) for row in rows] == [(first.rsplit("/", 1)[0], "1.0.0")]
    assert b.get_component(componentBuildVersionArn=first.rsplit("/", 1)[0])["component"]["arn"] == second
    assert b.get_component(componentBuildVersionArn=second)["component"]["arn"] == second
    with pytest.raises(b.exceptions.ResourceNotFoundException):
        b.get_component(componentBuildVersionArn=other_version)


def test_build_version_lists_show_another_accounts_builds_only_where_shared(a: Any, b: Any, c: Any) -> None:
    """ListComponentBuildVersions of another account's version lists its builds only for an
    account the policy names; for any other account the version holds nothing, as a resource it
    cannot see. Regression: the builds of an unshared version were listed to every caller.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources.html
    """
    first = component(a)
    second = component(a, data=SIMPLE_DOCUMENT.replace("hello", "hello again"))
    version_arn = first.rsplit("/", 1)[0]
    for caller in (b, c):
        assert caller.list_component_build_versions(componentVersionArn=version_arn)["componentSummaryList"] == []
    a.put_component_policy(componentArn=first, policy=policy("Component", first, B))
    shared = b.list_component_build_versions(componentVersionArn=version_arn)["componentSummaryList"]
    assert [row["arn"] for row in shared] == [first, second]
    assert c.list_component_build_versions(componentVersionArn=version_arn)["componentSummaryList"] == []


def test_list_and_get_are_granted_separately(a: Any, b: Any) -> None:
    """The list action makes a resource appear in owner=Shared lists, the get action lets the
    consumer read and use it; each is an IAM action of its own.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/list_amazonec2imagebuilder.html
    """
    listed, readable = component(a, "listed-only"), component(a, "readable-only")
    a.put_component_policy(componentArn=listed, policy=policy("Component", listed, B, actions=("List",)))
    a.put_component_policy(componentArn=readable, policy=policy("Component", readable, B, actions=("Get",)))
    assert [row["name"] for row in b.list_components(owner="Shared")["componentVersionList"]] == ["listed-only"]
    with pytest.raises(b.exceptions.ResourceNotFoundException):
        b.get_component(componentBuildVersionArn=listed)
    assert b.get_component(componentBuildVersionArn=readable)["component"]["owner"] == A


def test_replacing_the_policy_moves_access_and_deleting_the_resource_drops_it(a: Any, b: Any, c: Any) -> None:
    """A new policy replaces the old one whole (B, no longer named, loses access); Get*Policy returns
    what was put; deleting the resource drops its policy, so a new resource of the same name is not shared.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources-share.html
    """
    arn = component(a)
    a.put_component_policy(componentArn=arn, policy=policy("Component", arn, B))
    to_c = policy("Component", arn, C)
    a.put_component_policy(componentArn=arn, policy=to_c)
    assert a.get_component_policy(componentArn=arn)["policy"] == to_c
    assert b.list_components(owner="Shared")["componentVersionList"] == []
    with pytest.raises(b.exceptions.ResourceNotFoundException):
        b.get_component(componentBuildVersionArn=arn)
    assert c.get_component(componentBuildVersionArn=arn)["component"]["arn"] == arn

    a.delete_component(componentBuildVersionArn=arn)
    again = component(a)
    assert c.list_components(owner="Shared")["componentVersionList"] == []
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.get_component(componentBuildVersionArn=again)
    assert a.get_component_policy(componentArn=again).get("policy") is None


def test_only_the_owner_reads_or_puts_a_policy(a: Any, b: Any, c: Any) -> None:
    """A consumer cannot reshare what was shared with it, nor read its policy (ForbiddenException);
    to an account it is not shared with, the resource does not exist.
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources.html
    ("You cannot share resources that have been shared with you")
    """
    arn = component(a)
    a.put_component_policy(componentArn=arn, policy=policy("Component", arn, B))
    reshare = policy("Component", arn, C)
    with pytest.raises(b.exceptions.ForbiddenException):
        b.put_component_policy(componentArn=arn, policy=reshare)
    with pytest.raises(b.exceptions.ForbiddenException):
        b.get_component_policy(componentArn=arn)
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.put_component_policy(componentArn=arn, policy=reshare)
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.get_component_policy(componentArn=arn)
    assert a.get_component_policy(componentArn=arn)["policy"] == policy("Component", arn, B)
    assert c.list_components(owner="Shared")["componentVersionList"] == []


def test_sharing_stays_in_the_region_of_the_resource(sandbox: RunningSandbox, a: Any) -> None:
    """Resources are shared only in the Region where they are created.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources.html
    """
    arn = component(a)
    a.put_component_policy(componentArn=arn, policy=policy("Component", arn, B))
    elsewhere = account_client(sandbox, B, "us-west-2")
    assert elsewhere.list_components(owner="Shared")["componentVersionList"] == []
    assert account_client(sandbox, B).list_components(owner="Shared")["componentVersionList"] != []


# --- what Put*Policy accepts and refuses --------------------------------------------------------


def statement(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": [B]},
        "Action": ["imagebuilder:GetComponent", "imagebuilder:ListComponents"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def document(*statements: dict[str, Any], **top: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements), **top})


# (id, policy text, what backs the refusal). Only "not a JSON policy document" is documented; every
# other row is the sandbox's reading of the user guide's sharing policies (Allow, AWS account
# principals, the kind's Get/List actions), labelled so in its id. No source shows the service's
# wording for any of them, so the test checks the code and that the message names 'policy'.
INVALID = [
    ("not-json", "{not json", PUT_IMAGE_POLICY),
    ("not-an-object", json.dumps(["Statement"]), PUT_IMAGE_POLICY),
    ("no-version", json.dumps({"Statement": [statement()]}), SANDBOX_READING),
    ("bad-version", json.dumps({"Version": "2020-01-01", "Statement": [statement()]}), SANDBOX_READING),
    ("unknown-top-level", document(statement(), Extra=1), SANDBOX_READING),
    ("no-statement", json.dumps({"Version": "2012-10-17"}), SANDBOX_READING),
    ("empty-statement", document(), SANDBOX_READING),
    ("deny", document(statement(Effect="Deny")), SANDBOX_READING),
    ("public", document(statement(Principal="*")), SANDBOX_READING),
    ("service-principal", document(statement(Principal={"Service": "ec2.amazonaws.com"})), SANDBOX_READING),
    ("short-account", document(statement(Principal={"AWS": ["12345"]})), SANDBOX_READING),
    ("role-principal", document(statement(Principal={"AWS": f"arn:aws:iam::{B}:role/x"})), SANDBOX_READING),
    ("empty-principal-list", document(statement(Principal={"AWS": []})), SANDBOX_READING),
    ("no-action", document(statement(Action=None)), SANDBOX_READING),
    ("other-kind-action", document(statement(Action="imagebuilder:GetImage")), SANDBOX_READING),
    ("write-action", document(statement(Action=["imagebuilder:DeleteComponent"])), SANDBOX_READING),
    ("wildcard-action", document(statement(Action="imagebuilder:*")), SANDBOX_READING),
    ("condition", document(statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-abc"}})), SANDBOX_READING),
    ("not-action", document(statement(NotAction="imagebuilder:DeleteComponent")), SANDBOX_READING),
    ("unknown-element", document(statement(Principals={"AWS": B})), SANDBOX_READING),
    ("second-statement", document(statement(), statement(Effect="Deny")), SANDBOX_READING),
    ("other-resource", document(statement(Resource=f"arn:aws:imagebuilder:{REGION}:{A}:component/other/1.0.0/1")),
     SANDBOX_READING),
]


def _invalid_id(name: str, backing: str) -> str:
    return f"{name}-sandbox-reading" if backing == SANDBOX_READING else name


@pytest.mark.parametrize("text", [t for _, t, _ in INVALID], ids=[_invalid_id(i, b) for i, _, b in INVALID])
def test_an_invalid_policy_is_refused_and_nothing_is_shared(a: Any, b: Any, text: str) -> None:
    """Put*Policy answers InvalidParameterValueException for a policy it cannot apply, and nothing is shared.
    Source for the code and for refusing what is not a JSON policy document:
    https://docs.aws.amazon.com/zh_tw/imagebuilder/latest/APIReference/API_PutImagePolicy.html ("rejects
    invalid policies with InvalidParameterValueException"). Rows whose id ends in `-sandbox-reading` are
    the sandbox's reading of the policies at
    https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources-share.html (a sharing
    policy Allows the kind's Get/List actions to AWS account principals); the service does not document them.
    """
    arn = component(a)
    with pytest.raises(a.exceptions.InvalidParameterValueException) as excinfo:
        a.put_component_policy(componentArn=arn, policy=text)
    code, got = error(excinfo)
    assert code == "InvalidParameterValueException"
    assert "policy" in got, got
    assert a.get_component_policy(componentArn=arn).get("policy") is None
    assert b.list_components(owner="Shared")["componentVersionList"] == []


VALID = [
    ("account-string", {"Principal": {"AWS": B}}, True),
    ("root-arn", {"Principal": {"AWS": [f"arn:aws:iam::{B}:root"]}}, True),
    ("action-string", {"Action": "imagebuilder:GetComponent"}, True),
    ("action-case", {"Action": ["ImageBuilder:getcomponent", "imagebuilder:LISTCOMPONENTS"]}, True),
    ("resource-wildcard", {"Resource": "*"}, True),
    ("resource-pattern", {"Resource": f"arn:aws:imagebuilder:{REGION}:{A}:component/shared-setup/*"}, True),
    ("with-sid", {"Sid": "ShareWithB"}, True),
    ("organization", {"Principal": {"AWS": f"arn:aws:organizations::{A}:organization/o-a1b2c3d4e5"}}, False),
    ("organizational-unit",
     {"Principal": {"AWS": f"arn:aws:organizations::{A}:ou/o-a1b2c3d4e5/ou-ab12-cd34ef56"}}, False),
]


@pytest.mark.parametrize(("overrides", "grants_b"), [(o, g) for _, o, g in VALID], ids=[i for i, _, _ in VALID])
def test_policy_forms_that_are_accepted(a: Any, b: Any, overrides: dict[str, Any], grants_b: bool) -> None:
    """Principals as an account id or `arn:aws:iam::ACCOUNT:root`, elements as a string or a list,
    action names in any case, and IAM wildcards in Resource are accepted; organization and OU
    principals (documented sharing targets) are kept in the policy but grant nothing in the
    sandbox, which has no organizations.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Sources: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources.html
    (accounts, organizations and OUs as consumers),
    https://docs.aws.amazon.com/IAM/latest/UserGuide/list_amazonec2imagebuilder.html
    """
    arn = component(a)
    text = document(statement(**overrides))
    a.put_component_policy(componentArn=arn, policy=text)
    assert a.get_component_policy(componentArn=arn)["policy"] == text
    try:
        b.get_component(componentBuildVersionArn=arn)
        readable = True
    except b.exceptions.ResourceNotFoundException:
        readable = False
    assert readable is grants_b


def test_a_single_statement_object_is_accepted(a: Any, b: Any) -> None:
    """IAM's policy grammar lets `Statement` be one statement object instead of a list.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/list_amazonec2imagebuilder.html
    """
    arn = component(a)
    a.put_component_policy(componentArn=arn, policy=json.dumps({"Version": "2012-10-17", "Statement": statement()}))
    assert b.get_component(componentBuildVersionArn=arn)["component"]["arn"] == arn


@pytest.mark.parametrize(
    ("kind", "wrong"),
    [("Image", "imagebuilder:GetComponent"), ("ImageRecipe", "imagebuilder:ListImages"),
     ("ContainerRecipe", "imagebuilder:GetImageRecipe")],
)
def test_each_kind_takes_only_its_own_actions(a: Any, kind: str, wrong: str) -> None:
    """An image policy names GetImage/ListImages, an image recipe policy GetImageRecipe/ListImageRecipes,
    a container recipe policy GetContainerRecipe/ListContainerRecipes; another kind's action is refused.
    Refusing it is the sandbox's reading (the service documents no such refusal), so only the code and a
    message naming 'policy' and the offending action are checked.
    Sources: https://docs.aws.amazon.com/imagebuilder/latest/userguide/manage-shared-resources-share.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/list_amazonec2imagebuilder.html
    """
    put, member, *_ = KINDS[kind]
    arn = make(kind, a)
    text = document(statement(Action=wrong))
    with pytest.raises(a.exceptions.InvalidParameterValueException) as excinfo:
        getattr(a, put)(**{member: arn, "policy": text})
    code, got = error(excinfo)
    assert code == "InvalidParameterValueException"
    assert "policy" in got and wrong in got, got


def test_the_published_cli_example_shares_a_component(sandbox: RunningSandbox, a: Any, b: Any) -> None:
    """`aws imagebuilder put-component-policy` with the policy of the CLI reference's example (its
    account and ARN changed to this sandbox's), run as a user would, shares the component.
    A sandbox simplification: it has no RAM, so a policy shares at once (RAM caveat:
    https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_PutComponentPolicy.html).
    Source: https://docs.aws.amazon.com/cli/v1/reference/imagebuilder/put-component-policy.html
    """
    arn = component(a, "examplecomponent")
    text = (
        '{ "Version": "2012-10-17", "Statement": [ { "Effect": "Allow", "Principal": { "AWS": [ "' + B + '" ] }, '
        '"Action": [ "imagebuilder:GetComponent", "imagebuilder:ListComponents" ], "Resource": [ "' + arn + '" ] } ] }'
    )
    env = dict(os.environ, AWS_ACCESS_KEY_ID=A, AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    env.pop("AWS_PROFILE", None)
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "imagebuilder", "put-component-policy", "--endpoint-url", sandbox.endpoint_url,
         "--component-arn", arn, "--policy", text],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["componentArn"] == arn
    assert [row["name"] for row in b.list_components(owner="Shared")["componentVersionList"]] == ["examplecomponent"]
