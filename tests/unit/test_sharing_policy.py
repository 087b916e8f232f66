"""The resource policy imagesync writes for `spec.sharing`, and how a live one is read back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagesync.kinds import REGISTRY
from imagesync.kinds import sharing as shares

COMPONENT = REGISTRY["Component"].sharing
assert COMPONENT is not None
ORG = "arn:aws:organizations::111111111111:organization/o-abc123def4"
OU = "arn:aws:organizations::111111111111:ou/o-abc123def4/ou-ab12-cd34ef56"


def statement(**fields: object) -> str:
    base = {"Effect": "Allow", "Principal": {"AWS": ["222222222222"]}, "Action": list(COMPONENT.actions)}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**base, **fields}]})


accounts = st.lists(st.from_regex(r"^[0-9]{12}$", fullmatch=True), unique=True, max_size=5)


@given(accounts, st.booleans(), st.booleans())
def test_what_imagesync_writes_reads_back_as_the_spec_said(found: list[str], org: bool, ou: bool) -> None:
    spec = {
        "sharing": {
            "accounts": found,
            **({"organizations": [ORG]} if org else {}),
            **({"organizationalUnits": [OU]} if ou else {}),
        }
    }
    wanted = shares.wanted(spec)
    assert shares.principals(COMPONENT, shares.policy(COMPONENT, wanted)) == wanted
    assert shares.policy(COMPONENT, wanted) == shares.policy(COMPONENT, shares.wanted(spec))  # stable text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(None, {}, id="no-policy"),
        pytest.param(statement(), {"accounts": ["222222222222"]}, id="plain"),
        pytest.param(
            statement(Principal={"AWS": "arn:aws:iam::333333333333:root"}),
            {"accounts": ["333333333333"]},
            id="root-arn",
        ),
        pytest.param(
            statement(Action=[a.upper() for a in COMPONENT.actions]), {"accounts": ["222222222222"]}, id="action-case"
        ),
        pytest.param(statement(Action="imagebuilder:GetComponent"), None, id="only-some-actions"),
        pytest.param(statement(Effect="Deny"), None, id="deny"),
        pytest.param(statement(Condition={"StringEquals": {"aws:PrincipalOrgID": "o-x"}}), None, id="condition"),
        pytest.param("{not json", None, id="not-json"),
        pytest.param(json.dumps({"Version": "2012-10-17"}), None, id="no-statement"),
        pytest.param(statement(Principal="*"), None, id="principal-not-an-object"),
    ],
)
def test_a_live_policy_is_read_back_or_marked_foreign(text: str | None, expected: object) -> None:
    assert shares.principals(COMPONENT, text) == expected


@pytest.mark.parametrize(
    ("principals", "account", "expected"),
    [
        ({"accounts": ["222222222222"]}, "222222222222", True),
        ({"accounts": ["222222222222"]}, "333333333333", False),
        ({}, "333333333333", False),
        ({"accounts": ["222222222222"], "organizations": [ORG]}, "333333333333", None),
        ({"organizationalUnits": [OU]}, "333333333333", None),
    ],
)
def test_whether_sharing_reaches_an_account(principals: shares.Principals, account: str, expected: bool | None) -> None:
    assert shares.grants(principals, account) is expected


def test_the_marker_follows_whom_it_is_shared_with() -> None:
    one = shares.marker({"accounts": ["222222222222"]})
    assert one == shares.marker({"accounts": ["222222222222"]})
    assert one != shares.marker({"accounts": ["222222222222", "333333333333"]})
