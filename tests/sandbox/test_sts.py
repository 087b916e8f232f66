"""The sandbox's STS: real boto3 STS clients over HTTP, identities by access key, AssumeRole, errors."""

from __future__ import annotations

import datetime as dt
import urllib.request
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from imagesync.sandbox import RunningSandbox, running
from imagesync.sandbox.sts import Session, encode_token

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def sts(sb: RunningSandbox, key: str = "testing", token: str | None = None, region: str = "us-east-1") -> Any:
    return boto3.client(
        "sts",
        endpoint_url=sb.endpoint_url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key="x",
        aws_session_token=token,
        config=ONE_ATTEMPT,
    )


def assumed(sb: RunningSandbox, role_arn: str, key: str = "222222222222", session: str = "deploy") -> dict[str, Any]:
    return sts(sb, key).assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]


@pytest.mark.parametrize(
    ("key", "region", "account", "arn"),
    [
        ("222222222222", "us-east-1", "222222222222", "arn:aws:iam::222222222222:user/sandbox"),
        ("111111111111", "eu-west-1", "111111111111", "arn:aws:iam::111111111111:user/sandbox"),
        ("testing", "us-east-1", "123456789012", "arn:aws:iam::123456789012:user/sandbox"),
        ("AKIAIOSFODNN7EXAMPLE", "us-east-1", "123456789012", "arn:aws:iam::123456789012:user/sandbox"),
        ("2222222222223", "us-east-1", "123456789012", "arn:aws:iam::123456789012:user/sandbox"),
        ("333333333333", "cn-north-1", "333333333333", "arn:aws-cn:iam::333333333333:user/sandbox"),
    ],
)
def test_caller_identity_follows_the_access_key(
    sandbox: RunningSandbox, key: str, region: str, account: str, arn: str
) -> None:
    identity = sts(sandbox, key, region=region).get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (account, arn)
    assert identity["UserId"].startswith("AIDA")
    assert identity["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_assume_role_returns_credentials_for_the_roles_account(sandbox: RunningSandbox) -> None:
    response = sts(sandbox, "222222222222").assume_role(
        RoleArn="arn:aws:iam::111111111111:role/x", RoleSessionName="SESSION", DurationSeconds=900
    )
    creds = response["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert creds["SecretAccessKey"] and creds["SessionToken"]
    remaining = creds["Expiration"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=800) < remaining <= dt.timedelta(seconds=900)
    assert response["AssumedRoleUser"]["Arn"] == "arn:aws:sts::111111111111:assumed-role/x/SESSION"
    assert response["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")
    assert response["AssumedRoleUser"]["AssumedRoleId"].endswith(":SESSION")

    identity = boto3.client(
        "sts",
        endpoint_url=sandbox.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert identity["Account"] == "111111111111"
    assert identity["Arn"] == "arn:aws:sts::111111111111:assumed-role/x/SESSION"
    assert identity["UserId"] == response["AssumedRoleUser"]["AssumedRoleId"]


def test_assumed_credentials_select_the_roles_account_for_image_builder(sandbox: RunningSandbox) -> None:
    creds = assumed(sandbox, "arn:aws:iam::111111111111:role/path/to/x")
    client = boto3.client(
        "imagebuilder",
        endpoint_url=sandbox.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    arn = client.create_infrastructure_configuration(name="build", instanceProfileName="p")[
        "infrastructureConfigurationArn"
    ]
    assert arn == "arn:aws:imagebuilder:eu-west-1:111111111111:infrastructure-configuration/build"
    # the calling key's own account holds nothing
    own = boto3.client(
        "imagebuilder",
        endpoint_url=sandbox.endpoint_url,
        region_name="eu-west-1",
        aws_access_key_id="222222222222",
        aws_secret_access_key="x",
    )
    assert own.list_infrastructure_configurations()["infrastructureConfigurationSummaryList"] == []


def test_role_chaining_reports_the_last_role(sandbox: RunningSandbox) -> None:
    first = assumed(sandbox, "arn:aws:iam::111111111111:role/hub")
    chained = sts(sandbox, first["AccessKeyId"], first["SessionToken"]).assume_role(
        RoleArn="arn:aws:iam::333333333333:role/spoke", RoleSessionName="hop"
    )
    identity = sts(sandbox, "k", chained["Credentials"]["SessionToken"]).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::333333333333:assumed-role/spoke/hop"


@pytest.mark.parametrize(
    ("params", "code", "status", "message"),
    [
        (
            {"RoleArn": "arn:aws:iam::111111111111:role/denied-deploy", "RoleSessionName": "s1"},
            "AccessDenied",
            403,
            "User: arn:aws:iam::222222222222:user/sandbox is not authorized to perform: sts:AssumeRole on resource: "
            "arn:aws:iam::111111111111:role/denied-deploy",
        ),
        ({"RoleArn": "arn:aws:iam::111111111111:user/x", "RoleSessionName": "s1"}, "ValidationError", 400, "invalid"),
        ({"RoleArn": "arn:aws:iam::1111:role/x", "RoleSessionName": "s1"}, "ValidationError", 400, "invalid"),
        ({"RoleArn": "arn:aws:iam::111111111111:role/x", "RoleSessionName": "bad name"}, "ValidationError", 400,
         "roleSessionName"),
        ({"RoleArn": "arn:aws:iam::111111111111:role/x", "RoleSessionName": "s1", "DurationSeconds": 43201},
         "ValidationError", 400, "between 900 and 43200"),
    ],
)
def test_assume_role_errors(
    sandbox: RunningSandbox, params: dict[str, Any], code: str, status: int, message: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sts(sandbox, "222222222222").assume_role(**params)
    error = caught.value.response["Error"]
    assert (error["Code"], error["Type"]) == (code, "Sender")
    assert message in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("FwoGZXIvYXdzEBYaDN0t-a-sandbox-token", "InvalidClientTokenId"),
        ("imagesync-sandbox-sts/not-base64-json", "InvalidClientTokenId"),
        (
            encode_token(
                Session("111111111111", "x", "arn:aws:iam::111111111111:role/x", "old",
                        dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            ),
            "ExpiredToken",
        ),
    ],
)
def test_bad_session_tokens(sandbox: RunningSandbox, token: str, code: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sts(sandbox, "ASIAEXAMPLE", token).get_caller_identity()
    assert caught.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"Action=GetSessionToken&Version=2011-06-15", 400, "InvalidAction"),
        (b"Action=GetCallerIdentity&Version=2010-01-01", 400, "InvalidAction"),
        (b"Version=2011-06-15", 400, "MissingAction"),
        (b"Action=GetCallerIdentity&Version=2011-06-15", 200, None),
    ],
)
def test_query_protocol_on_the_wire(sandbox: RunningSandbox, body: bytes, status: int, code: str | None) -> None:
    request = urllib.request.Request(
        sandbox.endpoint_url + "/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            got_status, text = resp.status, resp.read().decode()
            content_type = resp.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        got_status, text, content_type = err.code, err.read().decode(), err.headers["Content-Type"]
    assert got_status == status
    assert content_type == "text/xml"
    ns = 'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"'
    if code is None:
        assert text.startswith(f"<GetCallerIdentityResponse {ns}><GetCallerIdentityResult>")
        assert "<Account>123456789012</Account>" in text and "<RequestId>" in text
    else:
        assert text.startswith(f"<ErrorResponse {ns}><Error><Type>Sender</Type><Code>{code}</Code>")


def test_sts_calls_are_counted_per_operation(sandbox: RunningSandbox) -> None:
    client = sts(sandbox, "222222222222")
    client.get_caller_identity()
    client.get_caller_identity()
    client.assume_role(RoleArn="arn:aws:iam::111111111111:role/x", RoleSessionName="s1")
    with pytest.raises(botocore.exceptions.ClientError):
        client.assume_role(RoleArn="arn:aws:iam::111111111111:role/denied", RoleSessionName="s1")
    assert sandbox.stats() == {"total": 4, "operations": {"AssumeRole": 2, "GetCallerIdentity": 2}, "throttled": {}}


def test_sts_is_never_faulted() -> None:
    with running(throttle_rate=1.0, seed=1) as sb:
        assert sts(sb, "222222222222").get_caller_identity()["Account"] == "222222222222"
        ib = boto3.client(
            "imagebuilder", endpoint_url=sb.endpoint_url, region_name="us-east-1",
            aws_access_key_id="x", aws_secret_access_key="x", config=ONE_ATTEMPT,
        )
        with pytest.raises(botocore.exceptions.ClientError, match="CallRateLimitExceeded"):
            ib.list_components()
