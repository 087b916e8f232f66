"""The sandbox reads `uri` documents from an S3 endpoint (moto's S3 over HTTP), as the service
reads them from the caller's bucket: real boto3 on both sides."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from imagesync.sandbox import running
from support import SIMPLE_DOCUMENT, make_client, read_line, s3_client, stop_process

LARGE = (Path(__file__).resolve().parents[1] / "fixtures" / "kernel-mainline-update.yaml").read_text()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "manifests"
WORKFLOW = (EXAMPLES / "workflows" / "build-and-verify.yml").read_text()


@pytest.fixture
def bucket(bucket: str, moto_url: str) -> str:
    """The shared empty bucket, holding a large and a small document."""
    s3 = s3_client(moto_url)
    s3.put_object(Bucket=bucket, Key="large.yaml", Body=LARGE.encode())
    s3.put_object(Bucket=bucket, Key="small.yaml", Body=SIMPLE_DOCUMENT.encode())
    return bucket


def _create(client: Any, uri: str, version: str = "1.0.0") -> str:
    answer = client.create_component(
        name="from-s3", semanticVersion=version, platform="Linux", uri=uri, clientToken=uuid.uuid4().hex
    )
    return str(answer["componentBuildVersionArn"])


def test_create_component_with_uri_stores_the_object_as_data(moto_url: str, bucket: str) -> None:
    with running(s3_endpoint=moto_url) as sb:
        client = make_client(sb.endpoint_url)
        arn = _create(client, f"s3://{bucket}/large.yaml")
        component = client.get_component(componentBuildVersionArn=arn)["component"]
        assert component["data"] == LARGE
        assert [p["name"] for p in component["parameters"]] == [
            "KernelChannel", "KeepPreviousKernels", "ExtraKernelArguments"
        ]


def test_a_missing_object_or_bucket_is_invalid_parameter_value(moto_url: str, bucket: str) -> None:
    with running(s3_endpoint=moto_url) as sb:
        client = make_client(sb.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        missing = ((f"s3://{bucket}/absent.yaml", "NoSuchKey"), ("s3://no-such-bucket-x/a.yaml", "NoSuchBucket"))
        for uri, code in missing:
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                _create(client, uri)
            error = caught.value.response["Error"]
            assert error["Code"] == "InvalidParameterValueException"
            assert uri in error["Message"] and code in error["Message"]
        assert not client.list_components(owner="Self")["componentVersionList"]


def test_an_object_that_is_not_a_valid_document_is_refused(moto_url: str, bucket: str) -> None:
    s3_client(moto_url).put_object(Bucket=bucket, Key="bad.yaml", Body=b"schemaVersion: 1.0\nphases: []\n")
    with running(s3_endpoint=moto_url) as sb:
        client = make_client(sb.endpoint_url, retries={"max_attempts": 1, "mode": "standard"})
        with pytest.raises(client.exceptions.InvalidParameterValueException):
            _create(client, f"s3://{bucket}/bad.yaml")


def test_workflow_with_uri_is_read_too(moto_url: str, bucket: str) -> None:
    s3_client(moto_url).put_object(Bucket=bucket, Key="wf.yaml", Body=WORKFLOW.encode())
    with running(s3_endpoint=moto_url) as sb:
        client = make_client(sb.endpoint_url)
        arn = client.create_workflow(
            name="build-only", semanticVersion="1.0.0", type="BUILD", uri=f"s3://{bucket}/wf.yaml", clientToken="t"
        )["workflowBuildVersionArn"]
        assert client.get_workflow(workflowBuildVersionArn=arn)["workflow"]["data"] == WORKFLOW


def test_without_an_endpoint_the_uri_is_not_read(bucket: str) -> None:
    with running() as sb:
        client = make_client(sb.endpoint_url)
        arn = _create(client, f"s3://{bucket}/absent.yaml")  # not read, so not refused
        assert "data" not in client.get_component(componentBuildVersionArn=arn)["component"]


def test_sandbox_serve_takes_an_s3_endpoint(moto_url: str, bucket: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", "--port", "0", "--s3-endpoint", moto_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        match = re.fullmatch(r"endpoint=(http://127\.0\.0\.1:\d+)\n", read_line(proc, 20))
        assert match
        client = make_client(match.group(1))
        arn = _create(client, f"s3://{bucket}/small.yaml")
        assert client.get_component(componentBuildVersionArn=arn)["component"]["data"] == SIMPLE_DOCUMENT
    finally:
        stop_process(proc)
