"""Documents in S3, against AWS: read the ones manifests name by `uri`, upload the large ones.

`with_s3_documents` is called by the planner before it plans (plan time, never apply): each
component or workflow whose manifest gives `uri: s3://BUCKET/KEY` is read with the target's S3
client and checked like any document, so it is hashed, diffed step by step and cascades like an
inline one; a missing or unreadable object is a located error naming the URI and the AWS error
code. `upload` is called by the executor, before the Create call that names the object: it
writes a document over the inline limit under its content-hash key unless an object is already
there, so a re-run writes nothing new.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import Any

from imagesync.aws import ApiError, ApiUnavailable, Backoff, CallCounter, Connector, call
from imagesync.desired import DesiredState, DocumentObject, Resource, Target
from imagesync.errors import Location
from imagesync.kinds import freeze
from imagesync.manifest import awstoe, s3docs
from imagesync.manifest.problems import Problems
from imagesync.manifest.yamlloc import Located, load_text

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # as for document files
UPLOAD = "PutObject"  # the plan's call for an upload (HeadObject first, made by `upload`)
# HeadObject answers a missing object (or bucket) with a bare HTTP status; without s3:ListBucket
# on the bucket, a missing object is a 403. Either way the object is written: its key names its
# content, so writing it again changes nothing.
_ABSENT = frozenset({"404", "NoSuchKey", "NotFound", "403", "AccessDenied", "Forbidden"})

_CHECKS: dict[str, Callable[[Located, Problems], None]] = {
    "component": awstoe.check_component_document,
    "workflow": awstoe.check_workflow_document,
}


def with_s3_documents(
    desired: DesiredState, connector: Connector, targets: Iterable[Target], counter: CallCounter | None = None
) -> DesiredState:
    """`desired` with the document of every `uri` resource of `targets` read from S3 and checked;
    raises `ManifestError` listing every object that cannot be read or is not a valid document."""
    problems = Problems()
    replaced: dict[tuple[str, str, str], Resource] = {}
    for target in targets:
        wanted = [
            (key, res)
            for key, res in desired.resources.items()
            if res.target == target.name and res.document_object is not None and not res.document_object.upload
        ]
        if not wanted:
            continue
        client = connector.s3(target)
        texts: dict[str, str | None] = {}  # one read per object and target
        for key, res in wanted:
            obj = res.document_object
            assert obj is not None
            if obj.uri not in texts:
                texts[obj.uri] = _read(client, obj, target.name, problems, counter)
            text = texts[obj.uri]
            if text is None:
                continue
            parsed = _check(res, obj.uri, text, problems)
            if parsed is not None:
                replaced[key] = dataclasses.replace(res, document=text, document_value=freeze(parsed))
    problems.raise_if_any()
    if not replaced:
        return desired
    return dataclasses.replace(desired, resources=MappingProxyType({**desired.resources, **replaced}))


def _read(
    client: Any, obj: DocumentObject, target: str, problems: Problems, counter: CallCounter | None
) -> str | None:
    try:
        answer = call(client, "GetObject", {"Bucket": obj.bucket, "Key": obj.key}, counter=counter, target=target)
        raw: bytes = answer["Body"].read(MAX_DOCUMENT_BYTES + 1)
    except (ApiError, ApiUnavailable) as exc:
        problems.add(
            obj.location,
            f"uri {obj.uri} cannot be read in target {target}: {exc.code}"
            + (f" ({exc.aws_message})" if isinstance(exc, ApiError) and exc.aws_message else ""),
        )
        return None
    if len(raw) > MAX_DOCUMENT_BYTES:
        problems.add(obj.location, f"uri {obj.uri}: the document is larger than 4 MiB")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.add(obj.location, f"uri {obj.uri}: the document is not UTF-8 text")
        return None


def _check(res: Resource, uri: str, text: str, problems: Problems) -> Any:
    """The document parsed, if it is one valid document of its kind's language (problems located in it)."""
    declared = res.kind_info.document
    assert declared is not None
    before = len(problems.items)
    docs = load_text(text, uri, problems)
    if len(docs) != 1:
        if docs:
            problems.add(docs[1].at(), "a document must hold exactly one YAML document")
        elif len(problems.items) == before:
            problems.add(Location(uri, 1, 1), "the document is empty")
        return None
    _CHECKS[declared.language](docs[0], problems)
    if len(problems.items) != before:
        return None
    return awstoe.as_sent(text)


def upload_call_params(obj: DocumentObject, text: str) -> dict[str, Any]:
    """What the plan records of an upload: where it goes and how large it is (never the text)."""
    return {"Bucket": obj.bucket, "Key": obj.key, "ContentLength": len(text.encode("utf-8"))}


def upload(
    client: Any,
    params: dict[str, Any],
    text: str,
    *,
    target: str,
    counter: CallCounter | None = None,
    backoff: Backoff | None = None,
) -> bool:
    """Put `text` at the plan's Bucket/Key unless an object is there already (the key names the
    content's hash, so it holds this very text); True if it wrote. Failures are `ApiError`s
    naming the S3 URL and AWS code."""
    bucket, key = str(params["Bucket"]), str(params["Key"])
    where = f"s3://{bucket}/{key}"
    if not key.endswith(f"/{s3docs.digest(text)}.yaml"):
        raise ApiError(UPLOAD, "DocumentChanged", f"the document is no longer the one planned for {where}; plan again")
    try:
        call(client, "HeadObject", {"Bucket": bucket, "Key": key}, counter=counter, backoff=backoff, target=target)
        return False
    except ApiError as exc:
        if exc.code not in _ABSENT:
            message = f"checking {where} before uploading the document: {exc.aws_message}"
            raise ApiError(UPLOAD, exc.code, message) from exc
    except ApiUnavailable as exc:
        raise ApiError(UPLOAD, exc.code, f"checking {where} before uploading the document: {exc}") from exc
    body = {"Bucket": bucket, "Key": key, "Body": text.encode("utf-8"), "ContentType": "application/x-yaml"}
    try:
        call(client, UPLOAD, body, counter=counter, backoff=backoff, target=target)
    except (ApiError, ApiUnavailable) as exc:
        message = exc.aws_message if isinstance(exc, ApiError) else str(exc)
        raise ApiError(UPLOAD, exc.code, f"uploading the document to {where}: {message}") from exc
    return True
