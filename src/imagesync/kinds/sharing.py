"""Sharing a resource with other accounts: the resource policy imagesync writes and how it reads one.

A shareable kind (components, image and container recipes, images) declares a `Sharing`; a spec's
`sharing` (accounts, organizations, organizational units) becomes one resource policy granting
the kind's read and list actions, put with the kind's Put*Policy call. The live reader reads the
policy back with Get*Policy and `principals` turns it into the same shape, so the planner diffs
sharing like any field. Pure: no API calls here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

POLICY_VERSION = "2012-10-17"
STATEMENT_ID = "imagesync-sharing"
# Who a spec shares with, in the order the plan shows them.
CATEGORIES = ("accounts", "organizations", "organizationalUnits")

_ROOT = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>[0-9]{12}):root$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_PLAIN = frozenset({"Sid", "Effect", "Principal", "Action", "Resource"})


@dataclass(frozen=True)
class Sharing:
    """A kind whose resources can be shared through a resource policy."""

    policy_noun: str  # the noun of its policy calls: "ComponentPolicy" in PutComponentPolicy
    arn_member: str  # the member naming the resource in those calls: "componentArn"
    actions: tuple[str, ...]  # what a grant allows: reading the resource and listing it

    @property
    def put_op(self) -> str:
        return f"Put{self.policy_noun}"

    @property
    def get_op(self) -> str:
        return f"Get{self.policy_noun}"


Principals = dict[str, list[str]]  # category -> sorted principals; a category with none is absent


def wanted(spec: Mapping[str, Any]) -> Principals:
    """Whom a spec's `sharing` names, by category (empty when it shares with no one)."""
    sharing = spec.get("sharing")
    if not isinstance(sharing, Mapping):
        return {}
    found = {c: sorted({str(p) for p in sharing.get(c) or ()}) for c in CATEGORIES}
    return {c: found[c] for c in CATEGORIES if found[c]}


def policy(sharing: Sharing, principals: Principals) -> str:
    """The policy text that grants exactly `principals` the kind's actions (stable: same input,
    same text, so a re-run puts nothing new)."""
    every = [p for c in CATEGORIES for p in principals.get(c, ())]
    statement = {
        "Sid": STATEMENT_ID,
        "Effect": "Allow",
        "Principal": {"AWS": every},
        "Action": list(sharing.actions),
    }
    return json.dumps({"Version": POLICY_VERSION, "Statement": [statement]}, separators=(",", ":"))


def principals(sharing: Sharing, text: str | None) -> Principals | None:
    """Whom a live policy grants every one of the kind's actions, in `wanted`'s shape; None when
    the policy says something else too (a Deny, a condition, a grant of only some actions), which
    imagesync then replaces with its own."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    statements = doc.get("Statement") if isinstance(doc, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        return None
    granted: dict[str, set[str]] = {}
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow" or set(statement) - _PLAIN:
            return None  # a Deny, a Condition, a NotPrincipal...: more than imagesync would write
        who = (statement.get("Principal") or {}).get("AWS") if isinstance(statement.get("Principal"), dict) else None
        actions = statement.get("Action")
        who = [who] if isinstance(who, str) else who
        actions = [actions] if isinstance(actions, str) else actions
        if not isinstance(who, list) or not isinstance(actions, list):
            return None
        for principal in who:
            root = _ROOT.match(str(principal))
            name = root["account"] if root else str(principal)
            granted.setdefault(name, set()).update(str(a).lower() for a in actions)
    needed = {a.lower() for a in sharing.actions}
    if any(not needed <= acts for acts in granted.values()):
        return None
    found: dict[str, set[str]] = {}
    for name in granted:
        found.setdefault(category(name), set()).add(name)
    return {c: sorted(found[c]) for c in CATEGORIES if c in found}


def category(principal: str) -> str:
    """Which `sharing` list a principal belongs in."""
    if _ACCOUNT.match(principal):
        return "accounts"
    return "organizationalUnits" if ":ou/" in principal else "organizations"


def grants(principals: Principals, account: str) -> bool | None:
    """Does sharing with `principals` reach `account`? True or False when that is certain; None
    when it may, through an organization or unit that imagesync cannot see into."""
    if account in principals.get("accounts", ()):
        return True
    if principals.get("organizations") or principals.get("organizationalUnits"):
        return None
    return False


def marker(principals: Principals) -> str:
    """The value of the tag that records what imagesync shared a resource with."""
    text = json.dumps(principals, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
