#!/usr/bin/env python3
"""Generate the JSON Schemas (draft 2020-12) for imagesync manifests and `imagesync.yaml`.

Each kind's `spec` is derived from botocore's Image Builder model (the kind's Create operation
input), so member names, lengths, patterns and enums match the API exactly; imagesync's own fields
(`version`, `bump`, `retainVersions`, `document`/`documentFile`, `{ref: NAME}` references,
`sensitive`) are layered on top. Run it after upgrading botocore; the test suite fails when the
committed files under `src/imagesync/schemas/` differ from what this script produces.

    python scripts/generate_schemas.py           # write the files
    python scripts/generate_schemas.py --check   # exit 1 if any file is out of date

Importable too: `build_schemas()` returns `{file name: schema}` without writing anything.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape

from imagesync.kinds import REGISTRY, Kind, RefField

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://imagesync.dev/schemas/"
API_VERSION = "imagesync/v1"
OUTPUT_DIR = Path(__file__).resolve().parent.parent / "src" / "imagesync" / "schemas"

# Substitution happens before the API sees a value, so a patterned string may hold a placeholder
# (for example an ARN with `${target.region}`); the model's pattern then applies after expansion.
PLACEHOLDER_PATTERN = r"\$\{(target|vars|env)\.[A-Za-z0-9_-]+\}"
# Names are identities: built from the target and its variables, never from the environment.
NAME_PLACEHOLDER_PATTERN = r"\$\{(target|vars)\.[A-Za-z0-9_-]+\}"
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+$"
# A pinned reference's version: exact, or `x` from some node on (the service's wildcard form).
PIN_PATTERN = r"^(?:[0-9]+\.[0-9]+\.[0-9]+|[0-9]+\.[0-9]+\.x|[0-9]+\.x\.x|x\.x\.x)$"
# Recipes may leave the patch to the service (`1.0.x`): it assigns the next free one.
RECIPE_VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.(?:[0-9]+|x)$"
TARGET_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
BUMPS = ["patch", "minor", "major", "auto"]
MAX_DESCRIPTION = 300

# The model's owner alternation in component ARNs leaves out `third-party` (CIS and other
# Marketplace components), which the real service accepts; the sandbox widens it the same way.
_MODEL_ACCOUNT = "aws(?:-[a-z-]+)?"
_WIDENED_ACCOUNT = "(?:aws(?:-[a-z-]+)?|third-party)"

# Members that imagesync fills in itself or that make no sense in a manifest.
REMOVED_MEMBERS = ("name", "clientToken", "dryRun", "semanticVersion")


# --- descriptions -------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
# A sentence ends at . ! or ? followed by space and something that starts a new sentence; this
# keeps "e.g. the" and "1.0.0" together.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def describe(documentation: str) -> str:
    """Plain text of model documentation: tags stripped, whitespace collapsed, first sentence(s)."""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", documentation or ""))).strip()
    if not text:
        return ""
    text = re.sub(r"\s+([.,;:!?)\]])", r"\1", re.sub(r"([(\[])\s+", r"\1", text))
    sentences = _SENTENCE_END.split(text)
    out = ""
    for sentence in sentences:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > MAX_DESCRIPTION:
            break
        out = candidate
    if not out:
        # The first sentence alone is too long: cut at a word boundary.
        cut = sentences[0][: MAX_DESCRIPTION - 1].rsplit(" ", 1)[0].rstrip(",;:")
        out = cut + "…"
    return out


def _with_description(schema: dict[str, Any], documentation: str) -> dict[str, Any]:
    text = describe(documentation)
    if text:
        schema["description"] = text
    return schema


# --- botocore shapes -> JSON Schema -------------------------------------------------------------


def _pattern(pattern: str) -> str:
    return pattern.replace(_MODEL_ACCOUNT, _WIDENED_ACCOUNT)


def string_schema(shape: Shape, *, placeholders: bool = True) -> dict[str, Any]:
    """A string shape's constraints; a pattern also admits strings holding a placeholder."""
    meta = shape.metadata
    schema: dict[str, Any] = {"type": "string"}
    if "min" in meta:
        schema["minLength"] = meta["min"]
    if "max" in meta:
        schema["maxLength"] = meta["max"]
    if "enum" in meta:
        schema["enum"] = list(meta["enum"])
    elif "pattern" in meta:
        pattern = _pattern(meta["pattern"])
        if placeholders:
            schema["anyOf"] = [{"pattern": pattern}, {"pattern": PLACEHOLDER_PATTERN}]
        else:
            schema["pattern"] = pattern
    return schema


def shape_schema(shape: Shape) -> dict[str, Any]:
    """JSON Schema for a botocore shape, recursively, with its documentation as description."""
    meta = shape.metadata
    kind = shape.type_name
    schema: dict[str, Any]
    if kind == "structure":
        schema = {
            "type": "object",
            "properties": {name: shape_schema(member) for name, member in shape.members.items()},
            "additionalProperties": False,
        }
        if meta.get("required"):
            schema["required"] = list(meta["required"])
        if meta.get("union"):
            schema["minProperties"] = schema["maxProperties"] = 1
    elif kind == "list":
        schema = {"type": "array", "items": shape_schema(shape.member)}
        if "min" in meta:
            schema["minItems"] = meta["min"]
        if "max" in meta:
            schema["maxItems"] = meta["max"]
    elif kind == "map":
        key = string_schema(shape.key)
        key.pop("type")
        schema = {"type": "object", "additionalProperties": shape_schema(shape.value)}
        if key:
            schema["propertyNames"] = key
        if "min" in meta:
            schema["minProperties"] = meta["min"]
        if "max" in meta:
            schema["maxProperties"] = meta["max"]
    elif kind == "string":
        schema = string_schema(shape)
    elif kind in ("integer", "long"):
        schema = {"type": "integer"}
        if "min" in meta:
            schema["minimum"] = meta["min"]
        if "max" in meta:
            schema["maximum"] = meta["max"]
    elif kind in ("double", "float"):
        schema = {"type": "number"}
        if "min" in meta:
            schema["minimum"] = meta["min"]
        if "max" in meta:
            schema["maximum"] = meta["max"]
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "timestamp":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "blob":
        schema = {"type": "string"}
    else:
        raise ValueError(f"unsupported shape type {kind!r} ({shape.name})")
    return _with_description(schema, shape.documentation)


# --- imagesync's own pieces ---------------------------------------------------------------------


def _article(kind: str) -> str:
    return "an" if kind[0] in "AEIOU" else "a"


def name_schema(model: ServiceModel, description: str) -> dict[str, Any]:
    """A resource name: the model's `ResourceName`, strict (identity never holds a placeholder)."""
    schema = string_schema(model.shape_for("ResourceName"), placeholders=False)
    schema["description"] = description
    return schema


def target_schema(kind: str) -> dict[str, Any]:
    """`target:` beside `ref:`, for what another target manages and shares."""
    return {
        "type": "string",
        "pattern": TARGET_NAME_PATTERN,
        "description": f"The target that manages the {_words(kind)}, when it is another one (a hub that shares it "
        "with this target's account, in the same region); it is applied first.",
    }


def _shareable(kind: str) -> bool:
    return REGISTRY[kind].sharing is not None


def ref_object(model: ServiceModel, kinds: tuple[str, ...]) -> dict[str, Any]:
    names = " or ".join(kinds)
    props: dict[str, Any] = {"ref": name_schema(model, f"metadata.name of the referenced {names}.")}
    if _shareable(kinds[0]):
        props["target"] = target_schema(kinds[0])
    return {
        "type": "object",
        "title": f"Reference to a managed {names}",
        "description": f"Names {_article(kinds[0])} {names} in these manifests; imagesync fills in its ARN.",
        "properties": props,
        "required": ["ref"],
        "additionalProperties": False,
    }


def sharing_schema(kind: Kind) -> dict[str, Any]:
    """`spec.sharing`: whom the resource is shared with, through its resource policy."""

    def principals(description: str, pattern: str) -> dict[str, Any]:
        return {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": pattern},
            "description": description,
        }

    return {
        "type": "object",
        "description": f"Share the {_words(kind.name)} with other accounts (Put{kind.noun}Policy): they may read it "
        "and build on it. Every version imagesync publishes (or image it builds) is shared.",
        "properties": {
            "accounts": principals("12-digit AWS account IDs.", r"^[0-9]{12}$"),
            "organizations": principals(
                "AWS Organizations organization ARNs.",
                r"^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$",
            ),
            "organizationalUnits": principals(
                "AWS Organizations organizational unit ARNs.",
                r"^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$",
            ),
        },
        "minProperties": 1,
        "additionalProperties": False,
    }


def ref_or(model: ServiceModel, literal: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    """A reference field: the model's literal value or `{ref: NAME}`."""
    literal = copy.deepcopy(literal)
    description = literal.pop("description", "")
    suffix = f"Either a literal value or {{ref: NAME}} naming a managed {' or '.join(kinds)}."
    return {
        "description": f"{description} {suffix}".strip(),
        "oneOf": [literal, ref_object(model, kinds)],
    }


def parameters_schema(model: ServiceModel) -> dict[str, Any]:
    """The model's ComponentParameter list, each item allowed to carry `sensitive: true`."""
    schema = shape_schema(model.shape_for("ComponentConfiguration").members["parameters"])
    schema["items"]["properties"]["sensitive"] = {
        "type": "boolean",
        "description": "Mask this parameter's value in every imagesync output.",
    }
    return schema


def _words(kind: str) -> str:
    """`ImageRecipe` -> `image recipe`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", kind).lower()


def ref_items(model: ServiceModel, literal: dict[str, Any], owner: Kind, ref: RefField) -> dict[str, Any]:
    """A list whose items name a resource by ARN under `ref.arn_key` (recipe components), or by
    the name and version under `ref.name_keys` (a lifecycle policy's recipes): each item either
    `{ref: NAME, ...}` naming a managed resource or the literal item."""
    referenced = " or ".join(ref.kinds)
    words = " or ".join(_words(k) for k in ref.kinds)
    item = copy.deepcopy(literal["items"])
    props = item["properties"]
    if "parameters" in props:
        props["parameters"] = parameters_schema(model)
    replaced: tuple[str, ...] = ref.name_keys if ref.name_keys is not None else (str(ref.arn_key),)
    others = {k: v for k, v in props.items() if k not in replaced}
    if ref.name_keys is not None:
        follows = f"the {_words(owner.name)} selects the version imagesync leaves live"
        pin_text = (
            f"Select this version of the {words} (1.2.3), or every matching one (1.x.x, x.x.x); default: "
            "the version this plan leaves live, which moves with it."
        )
    else:
        follows = f"the {_words(owner.name)} pins the exact version imagesync publishes"
        pin_text = (
            f"Pin a published version of the {words} (1.2.3), or follow the newest matching one (1.x.x, 1.2.x) "
            "without a new version of this resource when it moves; default: the version this plan leaves live."
        )
    chosen = f" (the one the {_words(owner.name)}'s type selects)" if ref.kind_of is not None else ""
    pin = {"version": {"type": "string", "pattern": PIN_PATTERN, "description": pin_text}} if ref.pinnable else {}
    schema = copy.deepcopy(literal)
    schema["items"] = {
        "oneOf": [
            {
                "type": "object",
                "title": f"Managed {words}",
                "description": f"{_article(ref.kinds[0]).capitalize()} {words} in these manifests{chosen}; "
                f"{follows}.",
                "properties": {
                    "ref": name_schema(model, f"metadata.name of the referenced {referenced}."),
                    # Selecting by name stays within the account: only an ARN can name another's.
                    **({"target": target_schema(ref.kinds[0])} if ref.arn_key and _shareable(ref.kinds[0]) else {}),
                    **pin,
                    **others,
                },
                "required": ["ref"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "title": f"{referenced} by {'name' if ref.name_keys else 'ARN'}",
                "description": f"{_article(ref.kinds[0]).capitalize()} {words} these manifests do not manage, by name "
                "and version."
                if ref.name_keys
                else f"An AWS-owned, third-party or otherwise unmanaged {words}, by ARN.",
                "properties": {**{k: props[k] for k in replaced}, **others},
                "required": list(replaced),
                "additionalProperties": False,
            },
        ]
    }
    return schema


def _apply_ref(model: ServiceModel, props: dict[str, Any], owner: Kind, ref: RefField) -> None:
    """Let the member at `ref.path` (`*`: every item of a list) take `{ref: NAME}` as well."""
    if ref.in_items:
        node = props  # list items: the list is the member before the final `*`
        for part in ref.path[:-2]:
            node = node[part]["properties"]
        member = ref.path[-2]
        node[member] = ref_items(model, node[member], owner, ref)
        return
    node = props  # the properties of the object the path is at
    parts = ref.path
    for i, part in enumerate(parts[:-1]):
        if part == "*":
            continue  # taken with the list it follows
        member = node[part]
        node = member["items"]["properties"] if parts[i + 1] == "*" else member["properties"]
    node[parts[-1]] = ref_or(model, node[parts[-1]], ref.kinds)


def exactly_one(*members: str) -> list[dict[str, Any]]:
    return [{"required": [member]} for member in members]


def document_bucket_schema(description: str) -> dict[str, Any]:
    """`{bucket, prefix}`: an S3 location for documents over the inline limit."""
    return {
        "type": "object",
        "description": description + " Objects are keyed <prefix><name>/<sha256 of the document>.yaml.",
        "properties": {
            "bucket": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "description": "S3 bucket name (may use ${target.*} and ${vars.*}).",
            },
            "prefix": {
                "type": "string",
                "maxLength": 800,
                "description": "Key prefix (default imagesync/).",
            },
        },
        "required": ["bucket"],
        "additionalProperties": False,
    }


def spec_schema(model: ServiceModel, kind: Kind) -> dict[str, Any]:
    operation = model.operation_model(kind.create_op)
    base = shape_schema(operation.input_shape)
    props: dict[str, Any] = base["properties"]
    required: list[str] = [r for r in base.get("required", []) if r not in REMOVED_MEMBERS]
    for member in REMOVED_MEMBERS:
        props.pop(member, None)

    if kind.versioned:
        recipe = kind.version_wildcard
        props["version"] = {
            "type": "string",
            "pattern": RECIPE_VERSION_PATTERN if recipe else VERSION_PATTERN,
            "description": (
                "Base semantic version (major.minor.patch"
                + (", or major.minor.x to let Image Builder assign the next patch" if recipe else ", no wildcards")
                + "). imagesync publishes max(version, bump(latest live version)) when the content changes."
            ),
        }
        props["bump"] = {
            "enum": BUMPS,
            "description": (
                "How the next version is derived from the latest live one: patch (default), minor, major, "
                "or auto (from what changed)."
            ),
        }
        props["retainVersions"] = {
            "type": "integer",
            "minimum": 0,
            "description": "Older versions to keep when pruning; unreferenced versions beyond this are deleted.",
        }
        required.append("version")

    one_of: list[dict[str, Any]] | None = None
    document = kind.document
    if document is not None:
        if document.inline_field != document.member:
            props.pop(document.member)
            props[document.inline_field] = {
                "type": "object",
                "description": f"The {kind.name.lower()} document inline, as YAML.",
            }
        what = "document file" if document.parsed else f"{document.language.capitalize()} template"
        props[document.file_field] = {
            "type": "string",
            "minLength": 1,
            "description": f"Path of the {what}, relative to the manifest; it may not escape the manifest root.",
        }
        one_of = exactly_one(document.inline_field, document.file_field, document.uri_member)
        if document.parsed:
            props["documentUpload"] = document_bucket_schema(
                f"Where this {kind.name.lower()}'s document is uploaded when it is over the 16,000-character "
                "inline limit (instead of defaults.documentBucket in imagesync.yaml); the Create call then "
                "names it with 'uri'."
            )

    for ref in kind.refs:
        _apply_ref(model, props, kind, ref)

    if kind.sharing is not None:
        props["sharing"] = sharing_schema(kind)
    props.setdefault("tags", shape_schema(model.shape_for("TagMap")))
    props["tags"].setdefault("description", "Tags for the resource.")
    props["sensitive"] = {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "uniqueItems": True,
        "description": "Dotted paths of spec fields whose values are masked in every imagesync output.",
    }

    schema: dict[str, Any] = {
        "type": "object",
        "description": f"The {kind.name}'s fields, in Image Builder's own names ({kind.create_op}). "
        + describe(operation.documentation),
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    if one_of:
        schema["oneOf"] = one_of
    return schema


def metadata_name_schema(model: ServiceModel) -> dict[str, Any]:
    """A manifest's name: the model's `ResourceName`, or one built from ${target.*} and ${vars.*}
    (checked against the model's pattern once substituted, per target)."""
    strict = name_schema(model, "")
    return {
        "type": "string",
        "description": "The resource's identity within a target; its Image Builder name. It may use "
        "${target.*} and ${vars.*}, substituted per target.",
        "anyOf": [{"pattern": strict["pattern"]}, {"pattern": NAME_PLACEHOLDER_PATTERN}],
    }


def metadata_schema(model: ServiceModel) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Identity of the resource and imagesync-only settings.",
        "properties": {
            "name": metadata_name_schema(model),
            "targets": {
                "type": "array",
                "items": {"type": "string", "pattern": TARGET_NAME_PATTERN},
                "minItems": 1,
                "uniqueItems": True,
                "description": "Restrict the resource to these targets (names from imagesync.yaml); default: all.",
            },
            "annotations": {
                "type": "object",
                "description": "imagesync-only settings; never sent to Image Builder.",
                "properties": {
                    "imagesync/prune": {
                        "enum": ["disabled", "enabled"],
                        "description": "disabled: never delete this resource, even with --prune.",
                    },
                    "imagesync/lint-ignore": {
                        "type": "string",
                        "description": "Suppress lint rules for this resource, e.g. 'IS012: reason'.",
                    },
                },
                "additionalProperties": {"type": "string"},
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }


def manifest_schema(model: ServiceModel, kind: Kind) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": ID_BASE + kind.schema + ".json",
        "title": f"imagesync {kind.name}",
        "description": f"An imagesync manifest for an EC2 Image Builder {kind.name}.",
        "type": "object",
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": "Manifest format version."},
            "kind": {"const": kind.name, "description": "The resource kind."},
            "metadata": metadata_schema(model),
            "spec": spec_schema(model, kind),
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
    }


def project_schema() -> dict[str, Any]:
    """`imagesync.yaml`: project identity, targets, lock backend and defaults."""
    identifier = {"type": "string", "pattern": TARGET_NAME_PATTERN}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": ID_BASE + "imagesync.json",
        "title": "imagesync project",
        "description": "imagesync.yaml: project settings for a manifest directory.",
        "type": "object",
        "properties": {
            "project": {**identifier, "description": "Ownership identity, written into the imagesync:project tag."},
            "targets": {
                "type": "array",
                "minItems": 1,
                "description": "Where the manifests are applied: account x region.",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {**identifier, "description": "Target name, used by --target and metadata.targets."},
                        "region": {
                            "type": "string",
                            "pattern": r"^[a-z]{2}(-[a-z]+)+-[0-9]+$",
                            "description": "AWS Region, e.g. us-east-1.",
                        },
                        "account": {
                            "type": "string",
                            "pattern": r"^[0-9]{12}$",
                            "description": "Expected AWS account ID; apply refuses other accounts.",
                        },
                        "roleArn": {
                            "type": "string",
                            "pattern": r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$",
                            "description": "IAM role to assume for this target.",
                        },
                        "vars": {
                            "type": "object",
                            "description": "Values for ${vars.NAME} placeholders.",
                            "propertyNames": {"pattern": r"^[A-Za-z0-9_-]+$"},
                            "additionalProperties": {"type": ["string", "number", "boolean"]},
                        },
                    },
                    "required": ["name", "region"],
                    "additionalProperties": False,
                },
            },
            "lock": {
                "type": "object",
                "description": "Where apply takes its lock per project, account and region.",
                "properties": {
                    "backend": {"enum": ["file", "dynamodb", "s3"], "description": "Lock backend (default file)."},
                    "table": {"type": "string", "minLength": 1, "description": "DynamoDB table (dynamodb backend)."},
                    "bucket": {"type": "string", "minLength": 1, "description": "S3 bucket (s3 backend)."},
                    "key": {
                        "type": "string",
                        "minLength": 1,
                        "description": "S3 key prefix (s3 backend; default imagesync/locks).",
                    },
                    "path": {
                        "type": "string",
                        "minLength": 1,
                        "description": "Directory for lock files, relative to the manifests and inside their "
                        "root (file backend; default $XDG_STATE_HOME/imagesync/locks).",
                    },
                    "region": {
                        "type": "string",
                        "pattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$",
                        "description": "Region of the DynamoDB table or S3 bucket (default: each target's region).",
                    },
                },
                "additionalProperties": False,
            },
            "defaults": {
                "type": "object",
                "description": "Defaults for versioned kinds, and where large documents are uploaded.",
                "properties": {
                    "bump": {"enum": BUMPS, "description": "Default bump for versioned kinds."},
                    "retainVersions": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "Default number of old versions to keep when pruning.",
                    },
                    "documentBucket": document_bucket_schema(
                        "Where component and workflow documents over the 16,000-character inline limit are "
                        "uploaded (a spec's documentUpload wins); documents within the limit stay inline."
                    ),
                },
                "additionalProperties": False,
            },
            "allowEnv": {
                "type": "array",
                "uniqueItems": True,
                "items": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                "description": "Environment variables that ${env.NAME} placeholders may read.",
            },
            "include": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "Only YAML files matching these patterns (gitignore syntax, relative to the manifest "
                "root) are read as manifests; default: every YAML file.",
            },
            "exclude": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "YAML files matching these patterns (gitignore syntax, relative to the manifest root) "
                "are not read as manifests, as if listed in .imagesyncignore.",
            },
        },
        "required": ["project", "targets"],
        "additionalProperties": False,
    }


GENERATED_FROM = (
    f"Generated by scripts/generate_schemas.py from the imagebuilder model of botocore {botocore.__version__}."
)


def build_schemas() -> dict[str, dict[str, Any]]:
    """Every schema, by file name."""
    model = botocore.session.get_session().get_service_model("imagebuilder")
    schemas = {kind.schema + ".json": manifest_schema(model, kind) for kind in REGISTRY}
    schemas["imagesync.json"] = project_schema()
    for schema in schemas.values():
        schema["$comment"] = GENERATED_FROM
    return schemas


def render(schema: dict[str, Any]) -> str:
    """The committed form of a schema file."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT_DIR, help="output directory")
    parser.add_argument("--check", action="store_true", help="report out-of-date files instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for name, schema in build_schemas().items():
        path = args.out / name
        text = render(schema)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(name)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run scripts/generate_schemas.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
