"""Sharing through resource policies: who else may see and use a component, image or recipe.

`backend.Backend._put_policy` calls `check_policy` on every Put{Component,Image,ImageRecipe,
ContainerRecipe}Policy; `core.Core._resolve` (Get* calls, components in recipes, parent images,
recipes in pipelines) and `core.Core._owned_list` (`owner=Shared` lists) ask `granted` and
`shared_with` what another account's caller may see. The stored policy text stays the record
(Get*Policy returns it as put); grants are read from it when asked, so replacing or deleting a
policy (or the resource, which drops its policy) takes effect on the next call.

The readings the sandbox takes where the service's documentation is silent:
- a policy is `{"Version", "Statement": [...]}` (a single statement object is accepted too) whose
  statements have only `Sid`, `Effect: Allow`, `Principal: {"AWS": ...}`, `Action` and an optional
  `Resource` that must match the ARN the policy is put on (`*` and `?` as IAM wildcards);
  `Condition`, `NotAction`, `NotPrincipal`, `NotResource` and `Deny` are refused rather than
  half-honoured;
- actions are the read and list action of the resource's kind (`imagebuilder:GetComponent`,
  `imagebuilder:ListComponents`, ...), case-insensitive like IAM action names; the list action
  makes the resource appear in `owner=Shared` lists, the get action lets the caller read it and
  use it (a component in a recipe, an image as a parent image, a recipe in a pipeline);
- principals are 12-digit account ids or `arn:PARTITION:iam::ACCOUNT:root`; organization and
  organizational-unit ARNs are accepted and kept in the policy, but grant nothing, as the sandbox
  has no organizations;
- a component policy, put on a build ARN, shares every build of that version; an image policy
  shares only the image build it is put on; a recipe policy shares that recipe version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from imagesync.sandbox.errors import SandboxError

GET = "get"
LIST = "list"

# The read and list action of each shareable kind, as the service's policy examples name them.
ACTIONS: dict[str, dict[str, str]] = {
    "components": {GET: "imagebuilder:GetComponent", LIST: "imagebuilder:ListComponents"},
    "images": {GET: "imagebuilder:GetImage", LIST: "imagebuilder:ListImages"},
    "imageRecipes": {GET: "imagebuilder:GetImageRecipe", LIST: "imagebuilder:ListImageRecipes"},
    "containerRecipes": {GET: "imagebuilder:GetContainerRecipe", LIST: "imagebuilder:ListContainerRecipes"},
}
KIND_LABELS = {
    "components": "component",
    "images": "image",
    "imageRecipes": "image recipe",
    "containerRecipes": "container recipe",
}

VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = ("Sid", "Effect", "Principal", "Action", "Resource")
UNSUPPORTED_KEYS = ("Condition", "NotAction", "NotPrincipal", "NotResource")

_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
_ROOT_RE = re.compile(r"^arn:aws(?:-cn|-us-gov)?:iam::(?P<account>[0-9]{12}):root$")
_ORGANIZATION_RE = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:organizations::[0-9]{12}:"
    r"(?:organization/o-[a-z0-9]{10,32}|ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$"
)


@dataclass(frozen=True)
class Policy:
    """What a valid policy grants: per account, the actions (GET/LIST) it may take."""

    accounts: dict[str, frozenset[str]]
    organizations: tuple[str, ...]


def _refuse(detail: str) -> SandboxError:
    return SandboxError(
        "InvalidParameterValueException", f"The value supplied for parameter 'policy' is not valid. {detail}"
    )


def _strings(value: Any, where: str) -> list[str]:
    """A policy element that is a string or a non-empty list of strings, as a list."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise _refuse(f"{where} must be a string or a non-empty list of strings.")
    return items


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$")


def check_policy(text: str, collection: str, arn: str) -> Policy:
    """Parse a policy as Put*Policy receives it for the resource `arn`; refuse anything invalid."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _refuse(f"It must be a JSON document: {exc}.") from exc
    if not isinstance(doc, dict):
        raise _refuse("It must be a JSON object with 'Version' and 'Statement'.")
    unknown = sorted(set(doc) - {"Version", "Id", "Statement"})
    if unknown:
        raise _refuse(f"Unknown top-level element '{unknown[0]}'; a policy has 'Version', 'Id' and 'Statement'.")
    if doc.get("Version") not in VERSIONS:
        raise _refuse(f"'Version' must be one of {', '.join(VERSIONS)}, got {json.dumps(doc.get('Version'))}.")
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise _refuse("'Statement' must be a non-empty list of statements.")
    allowed = {name.lower(): verb for verb, name in ACTIONS[collection].items()}
    accounts: dict[str, set[str]] = {}
    organizations: list[str] = []
    for i, statement in enumerate(statements):
        where = f"Statement[{i}]"
        if not isinstance(statement, dict):
            raise _refuse(f"{where} must be a JSON object.")
        for key in statement:
            if key in UNSUPPORTED_KEYS:
                raise _refuse(f"{where}.{key} is not supported in an Image Builder resource policy.")
            if key not in STATEMENT_KEYS:
                raise _refuse(f"{where} has an unknown element '{key}'.")
        if "Sid" in statement and not isinstance(statement["Sid"], str):
            raise _refuse(f"{where}.Sid must be a string.")
        if statement.get("Effect") != "Allow":
            raise _refuse(f"{where}.Effect must be 'Allow', got {json.dumps(statement.get('Effect'))}.")
        principal = statement.get("Principal")
        if not isinstance(principal, dict) or set(principal) != {"AWS"}:
            raise _refuse(f"{where}.Principal must be an object with one element, 'AWS'.")
        verbs = set()
        for action in _strings(statement.get("Action"), f"{where}.Action"):
            verb = allowed.get(action.lower())
            if verb is None:
                raise _refuse(
                    f"{where}.Action '{action}' is not allowed in a {KIND_LABELS[collection]} policy; "
                    f"allowed: {', '.join(ACTIONS[collection].values())}."
                )
            verbs.add(verb)
        if "Resource" in statement:
            for resource in _strings(statement["Resource"], f"{where}.Resource"):
                if not _wildcard(resource).match(arn):
                    raise _refuse(f"{where}.Resource '{resource}' does not match the resource '{arn}'.")
        for value in _strings(principal["AWS"], f"{where}.Principal.AWS"):
            root = _ROOT_RE.match(value)
            if _ACCOUNT_RE.match(value) or root:
                accounts.setdefault(root["account"] if root else value, set()).update(verbs)
            elif _ORGANIZATION_RE.match(value):
                organizations.append(value)
            else:
                raise _refuse(
                    f"{where}.Principal.AWS '{value}' is not a valid principal: use a 12-digit account id, "
                    "arn:aws:iam::ACCOUNT:root, or an organization or organizational unit ARN."
                )
    return Policy({a: frozenset(v) for a, v in accounts.items()}, tuple(organizations))


def _grants(text: str, collection: str, arn: str, account: str, verb: str) -> bool:
    try:
        policy = check_policy(text, collection, arn)
    except SandboxError:
        return False  # a policy stored before these checks existed grants nothing it cannot state
    return verb in policy.accounts.get(account, frozenset())


def _policy_arns(collection: str, arn: str, policies: dict[str, str]) -> list[str]:
    """The ARNs whose policy covers `arn`: itself, and for a component any build of its version."""
    if collection != "components":
        return [arn] if arn in policies else []
    version = arn.rsplit("/", 1)[0] + "/"
    return [key for key in policies if key.startswith(version) and key.count("/") == arn.count("/")]


def granted(state: dict[str, Any], collection: str, arn: str, account: str, verb: str) -> bool:
    """Whether the existing resource `arn` is shared with `account` for `verb` (GET or LIST)."""
    if collection not in ACTIONS or arn not in state["resources"].get(collection, {}):
        return False
    policies: dict[str, str] = state["policies"]
    return any(
        _grants(policies[key], collection, key, account, verb) for key in _policy_arns(collection, arn, policies)
    )


def shared_with(state: dict[str, Any], collection: str, region: str, account: str) -> list[dict[str, Any]]:
    """Other accounts' resources in `region` that their policies list for `account` (`owner=Shared`)."""
    if collection not in ACTIONS:
        return []
    region_re = re.compile(rf"^arn:aws[^:]*:imagebuilder:{re.escape(region)}:(?P<account>[0-9]{{12}}):")
    found = []
    for arn, record in state["resources"].get(collection, {}).items():
        match = region_re.match(arn)
        if match and match["account"] != account and granted(state, collection, arn, account, LIST):
            found.append(record)
    return found
