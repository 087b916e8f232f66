"""Documents in S3, as the manifests describe them: where an upload goes and what a `uri` names.

A component or workflow document over Image Builder's inline limit is uploaded to the bucket that
`spec.documentUpload` or `defaults.documentBucket` in imagesync.yaml names, under a key made
from the document's SHA-256 (`<prefix><name>/<sha256>.yaml`): the same document always has the
same key, so uploading it again writes nothing new. Within the limit, documents stay inline.
Used by the manifest loader; nothing here talks to AWS.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from imagesync.errors import Location
from imagesync.manifest import awstoe
from imagesync.manifest.problems import Problems

DEFAULT_PREFIX = "imagesync/"
# S3's rule for bucket names (general purpose buckets): 3 to 63 lower-case letters, digits, dots and
# hyphens, beginning and ending with a letter or digit.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class Upload:
    """Where documents over the inline limit are uploaded: a bucket and a key prefix."""

    bucket: str
    prefix: str = DEFAULT_PREFIX

    def key(self, name: str, text: str) -> str:
        return f"{self.prefix}{name}/{digest(text)}.yaml"


def digest(text: str) -> str:
    """The SHA-256 of a document as uploaded (UTF-8), in hex: what its key is named after."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_settings(bucket: object, prefix: object, where: Location, problems: Problems) -> bool:
    """A bucket and prefix (after substitution) S3 accepts; each problem reported at `where`."""
    ok = True
    if not isinstance(bucket, str) or not BUCKET_NAME.match(bucket) or ".." in bucket:
        problems.add(
            where,
            f"bucket {bucket!r} is not an S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, "
            "beginning and ending with a letter or digit",
        )
        ok = False
    if not isinstance(prefix, str) or prefix.startswith("/"):
        problems.add(where, f"prefix {prefix!r} must be a key prefix such as 'imagesync/' (not starting with '/')")
        ok = False
    elif len(prefix.encode("utf-8")) > MAX_KEY_BYTES - 200:
        problems.add(where, f"prefix is longer than {MAX_KEY_BYTES - 200} bytes; S3 keys are at most {MAX_KEY_BYTES}")
        ok = False
    return ok


def check_size(text: str, where: Location, problems: Problems, upload: Upload | None) -> None:
    """A document over the inline limit is fine when it will be uploaded; otherwise say how to fix it."""
    if upload is not None:
        return
    awstoe.check_inline_size(
        text,
        where,
        problems,
        hint="name a bucket to upload it to: 'documentBucket: {bucket: NAME}' under defaults in imagesync.yaml, "
        "or 'documentUpload: {bucket: NAME}' in this spec (or keep the document in S3 yourself and give 'uri')",
    )


def parse_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of an `s3://BUCKET/KEY` URL, or None for anything else."""
    match = S3_URI.match(uri)
    return (match.group(1), match.group(2)) if match else None
