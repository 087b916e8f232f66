"""Documents the sandbox reads from S3: CreateComponent and CreateWorkflow with `uri`.

With an S3 endpoint (`--s3-endpoint URL`, `running(s3_endpoint=...)`, e.g. a moto server), the
sandbox reads the object a `uri` names through boto3, as the service reads it from the caller's
bucket, and keeps its text as the resource's `data`, so Get returns the document and its steps
and parameters are checked like inline data. A missing object, a missing bucket or any other
refusal answers InvalidParameterValueException naming the URI (the service's documented
reaction to a document it cannot fetch; the exact wording is the sandbox's). Without an endpoint
the document is not read and `data` stays empty.
"""

from __future__ import annotations

import re

import boto3
import botocore.exceptions
from botocore.config import Config

from imagesync.sandbox.errors import SandboxError

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
_URI = re.compile(r"^s3://([^/]+)/(.+)$")
_CONFIG = Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def read_document(endpoint: str, uri: str, region: str) -> str:
    """The text of the S3 object at `uri`, or InvalidParameterValueException."""
    match = _URI.match(uri)
    if match is None:
        raise _invalid(f"The uri '{uri}' is not an S3 URL (s3://bucket/key).")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=_CONFIG,
    )
    try:
        raw = client.get_object(Bucket=match.group(1), Key=match.group(2))["Body"].read(MAX_DOCUMENT_BYTES + 1)
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        raise _invalid(f"The document at '{uri}' could not be read: {code}.") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise _invalid(f"The document at '{uri}' could not be read: {exc}.") from exc
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise _invalid(f"The document at '{uri}' is too large.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"The document at '{uri}' is not UTF-8 text.") from exc


def _invalid(message: str) -> SandboxError:
    prefix = "The value supplied for parameter 'uri' is not valid."
    return SandboxError("InvalidParameterValueException", f"{prefix} {message}")
