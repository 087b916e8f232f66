"""Readable messages for JSON Schema errors in manifests and `imagesync.yaml`.

`explain(error, sensitive)` turns one jsonschema error into a path and a sentence that says what is
allowed, in words and with an example, rather than quoting a regular expression or a JSON Schema
type name. Values are echoed only when short and not sensitive (`sensitive` answers for a dotted
path such as `spec.components[0].parameters[1].value`); otherwise the message says what kind of
value it was. Called by `imagesync.manifest.loader` for every schema error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema

from imagesync.kinds import REGISTRY
from imagesync.manifest.problems import did_you_mean
from imagesync.plan_model import dotted

Sensitive = Callable[[str], bool]

MAX_ECHO = 60  # characters of a value's repr that a message may quote
PLACEHOLDER_PATTERN = r"\$\{(target|vars|env)\.[A-Za-z0-9_-]+\}"
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+$"
RECIPE_VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.(?:[0-9]+|x)$"
PIN_PATTERN = r"^(?:[0-9]+\.[0-9]+\.[0-9]+|[0-9]+\.[0-9]+\.x|[0-9]+\.x\.x|x\.x\.x)$"

# Patterns the schemas use, in words: (what the value is not, example). The message reads
# "<value> is not <what>, e.g. '<example>'".
_KNOWN: dict[str, tuple[str, str]] = {
    VERSION_PATTERN: ("a version: write major.minor.patch", "1.0.0"),
    RECIPE_VERSION_PATTERN: (
        "a recipe version: write major.minor.patch, or major.minor.x to let Image Builder pick the patch",
        "1.0.0' or '1.0.x",
    ),
    PIN_PATTERN: (
        "a version to pin: write major.minor.patch, or x from some node on for the newest matching one",
        "1.2.3' or '1.x.x",
    ),
    r"^[-_A-Za-z-0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z-0-9]$": (
        "a valid name: use 3 to 128 letters, digits, '-' or '_' (spaces only inside)",
        "hardened-al2023",
    ),
    r"^[a-z0-9][a-z0-9-]{0,62}$": (
        "a valid name: use 1 to 63 lower-case letters, digits or '-', starting with a letter or digit",
        "prod-use1",
    ),
    r"^[0-9]{12}$": ("an AWS account ID (12 digits, quoted)", "123456789012"),
    r"^[a-z]{2}(-[a-z]+)+-[0-9]+$": ("an AWS Region code", "us-east-1"),
    r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$": ("an IAM role ARN", "arn:aws:iam::123456789012:role/imagesync"),
    r"^(?:arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/)?[a-zA-Z_0-9+=,.@\-_/]+$": (
        "an IAM role name or ARN",
        "arn:aws:iam::123456789012:role/imagesync",
    ),
    r"^[A-Za-z_][A-Za-z0-9_]*$": (
        "an environment variable name (letters, digits and '_', not starting with a digit)",
        "BUILD_ID",
    ),
    r"^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$": (
        "a valid tag: use letters, digits, spaces and _ . : / = + - @, and do not start with 'aws:'",
        "team",
    ),
    r"^(?:[0-9]+|x)\.(?:[0-9]+|x)\.(?:[0-9]+|x)$": ("a version filter: major.minor.patch, each a number or x", "1.x.x"),
    r"^lt-[a-z0-9-_]{17}$": ("a launch template ID", "lt-0123456789abcdef0"),
    r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$": ("base64 text", "aGVsbG8="),
    r"[^\x00]+": ("text without NUL characters", "some text"),
    r"[^\x00]*": ("text without NUL characters", "some text"),
    "optional|required": ("'optional' or 'required'", "required"),
}

_IMAGEBUILDER_EXAMPLES = {
    "component": "arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x",
    "image": "arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x",
    "image-recipe": "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/base/1.0.0",
    "container-recipe": "arn:aws:imagebuilder:us-east-1:123456789012:container-recipe/api/1.0.0",
    "workflow": "arn:aws:imagebuilder:us-east-1:aws:workflow/build/build-image/x.x.x",
    "infrastructure-configuration": "arn:aws:imagebuilder:us-east-1:123456789012:infrastructure-configuration/infra",
    "distribution-configuration": "arn:aws:imagebuilder:us-east-1:123456789012:distribution-configuration/dist",
}
_SERVICE_NAMES = {
    "imagebuilder": "Image Builder",
    "sns": "SNS",
    "iam": "IAM",
    "organizations": "AWS Organizations",
    "license-manager": "License Manager",
}
_ARN_SERVICE = re.compile(r":(?P<service>imagebuilder|sns|iam|organizations|license-manager|[a-z0-9-]+):")
_ARN_TYPE = re.compile(r":(?P<type>[a-z][a-z-]*)/")
_CLASS = re.compile(r"^\^?\[(?P<chars>[^\]]+)\](?P<count>\{\d+(,\d*)?\}|\+|\*)\$?$")
_TYPE_WORDS = {
    "string": "a string",
    "array": "a list",
    "object": "a map",
    "boolean": "a boolean (true or false)",
    "integer": "a whole number",
    "number": "a number",
    "null": "empty",
}


def explain(error: jsonschema.ValidationError, sensitive: Sensitive) -> tuple[tuple[Any, ...], str]:
    """A path and a readable message for one schema error, looking inside oneOf/anyOf."""
    path = tuple(error.absolute_path)
    where = dotted(path) or "the document"
    secret = sensitive(dotted(path))
    shown = show(error.instance, secret)
    validator, expected = error.validator, error.validator_value
    if validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        if extra:
            field = (*path, extra[0])
            hint = did_you_mean(extra[0], allowed)
            if extra[0] == "target" and "ref" in allowed:
                shareable = ", ".join(k.name for k in REGISTRY if k.sharing is not None)
                hint = f" (only references to what can be shared name another target: {shareable})"
            return field, f"{dotted(field)}: unknown field '{extra[0]}'{hint}; allowed: {', '.join(allowed)}"
    if validator in ("oneOf", "anyOf"):
        alternatives = expected if isinstance(expected, list) else []
        if isinstance(error.instance, dict) and "ref" in error.instance:
            # `{ref: ...}` means the reference, whatever else the field may hold: explain that.
            refs = [i for i, alt in enumerate(alternatives) if isinstance(alt, dict) and alt.get("required") == ["ref"]]
            meant = [e for e in error.context or () if refs and e.relative_schema_path[0] == refs[0]]
            best = jsonschema.exceptions.best_match(meant) if meant else None
            if best is not None:
                return explain(best, sensitive)
        required_sets = [alt.get("required") for alt in alternatives if isinstance(alt, dict)]
        if required_sets and len(required_sets) == len(alternatives):
            # Each alternative known by its first required key (`ref`, or `componentArn` / `name`).
            firsts = [r[0] if isinstance(r, list) and r else None for r in required_sets]
            if None not in firsts and len(set(firsts)) == len(firsts):
                names = [str(n) for n in firsts]
                present = [i for i, n in enumerate(names) if isinstance(error.instance, dict) and n in error.instance]
                chosen = [e for e in error.context or () if present and e.relative_schema_path[0] == present[0]]
                best = jsonschema.exceptions.best_match(chosen) if len(present) == 1 and chosen else None
                if best is not None:
                    # One alternative is clearly meant (its key is there): explain what is wrong inside it.
                    return explain(best, sensitive)
                return path, f"{where}: specify exactly one of {', '.join(names)}"
        patterns = [alt.get("pattern") for alt in alternatives if isinstance(alt, dict)]
        if patterns and all(isinstance(p, str) for p in patterns):
            # A patterned value that may also hold a placeholder: the real pattern is what to explain.
            real = [str(p) for p in patterns if p != PLACEHOLDER_PATTERN]
            if real and isinstance(error.instance, str):
                return path, f"{where}: {pattern_message(real[0], shown)}"
        if error.context:
            best = jsonschema.exceptions.best_match(error.context)
            if best is not None:
                inner_path, message = explain(best, sensitive)
                if inner_path and len(inner_path) >= len(path):
                    return inner_path, message
                return path, f"{where}: {message.split(': ', 1)[-1]}"
    if validator == "pattern" and isinstance(error.instance, str):
        return path, f"{where}: {pattern_message(str(expected), shown)}"
    if validator == "type":
        return path, f"{where}: {type_message(error.instance, expected, shown)}"
    if validator == "enum" and isinstance(expected, list):
        choices = ", ".join(str(c) for c in expected)
        hint = "" if secret else did_you_mean(error.instance, [c for c in expected if isinstance(c, str)])
        return path, f"{where}: {shown} is not one of: {choices}{hint}"
    if validator == "const":
        return path, f"{where}: must be {expected!r}, not {shown}"
    if validator in ("maxLength", "minLength") and isinstance(error.instance, str):
        limit = "at most" if validator == "maxLength" else "at least"
        return path, f"{where}: is {len(error.instance)} characters long; it must be {limit} {expected}"
    if validator in ("minItems", "maxItems") and isinstance(error.instance, list):
        limit = "at least" if validator == "minItems" else "at most"
        return path, f"{where}: has {_count(len(error.instance), 'item')}; it must have {limit} {expected}"
    if validator in ("minProperties", "maxProperties") and isinstance(error.instance, dict):
        limit = "at least" if validator == "minProperties" else "at most"
        return path, f"{where}: has {_count(len(error.instance), 'entry')}; it must have {limit} {expected}"
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        word = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "above", "exclusiveMaximum": "below"}
        return path, f"{where}: {shown} is out of range; it must be {word[validator]} {expected}"
    if validator == "uniqueItems":
        return path, f"{where}: holds the same item more than once; each item must be unique"
    if validator == "format":
        return path, f"{where}: {shown} is not a valid {expected}"
    if validator == "required":
        return path, f"{where}: {error.message}"
    if secret or len(repr(error.instance)) > MAX_ECHO:
        return path, f"{where}: {shown} is not valid here"
    return path, f"{where}: {error.message}"


def show(value: Any, secret: bool = False) -> str:
    """The value as a message may quote it: short values as written, others by their kind."""
    if secret:
        return "the value (sensitive, not shown)"
    text = repr(value)
    if len(text) <= MAX_ECHO:
        return text
    if isinstance(value, str):
        return f"a {len(value)}-character string"
    if isinstance(value, list):
        return f"a list of {_count(len(value), 'item')}"
    if isinstance(value, dict):
        return f"a map of {_count(len(value), 'entry')}"
    return f"a long {type(value).__name__}"


def type_message(value: Any, expected: Any, shown: str) -> str:
    wanted = expected if isinstance(expected, list) else [expected]
    words = " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
    if "string" in wanted and isinstance(value, (bool, int, float)):
        # An account ID, a version or `yes` written unquoted: YAML made it a number or a boolean.
        kind = "boolean" if isinstance(value, bool) else "number"
        read = (
            f"{shown} is a {kind}"
            if shown.startswith("the value")
            else f"YAML read the unquoted value as the {kind} {str(value).lower() if kind == 'boolean' else value}"
        )
        return f"{read}, but it must be a string: quote it"
    return f"{shown} is not {words}"


def pattern_message(pattern: str, shown: str) -> str:
    if pattern in _KNOWN:
        what, example = _KNOWN[pattern]
        return f"{shown} is not {what}, e.g. '{example}'"
    arn = _ARN_SERVICE.search(pattern) if pattern.startswith("^arn:aws") else None
    if arn:
        service = arn.group("service")
        resource = _ARN_TYPE.search(pattern, arn.end())
        kind = resource.group("type") if resource else ""
        name = _SERVICE_NAMES.get(service, service)
        if service == "imagebuilder" and kind in _IMAGEBUILDER_EXAMPLES:
            noun = kind.replace("-", " ")
            return f"{shown} is not the ARN of {_article(name)} {name} {noun}, e.g. '{_IMAGEBUILDER_EXAMPLES[kind]}'"
        noun = f" {kind.replace('-', ' ')}" if kind else ""
        return f"{shown} is not {_article(name)} {name}{noun} ARN (arn:aws:{service}:...)"
    chars = _CLASS.match(pattern)
    if chars:
        return f"{shown} may only hold {_characters(chars.group('chars'))}"
    return f"{shown} is not in a form this field accepts"


def _characters(klass: str) -> str:
    """`\\w+=,.@-` -> "letters, digits, '_', '+', '=', ',', '.', '@' and '-'"."""
    words: list[str] = []

    def add(word: str) -> None:
        if word not in words:
            words.append(word)

    i = 0
    while i < len(klass):
        if klass.startswith(("A-Z", "a-z"), i):
            add("letters")
            i += 3
        elif klass.startswith("0-9", i):
            add("digits")
            i += 3
        elif klass.startswith("\\w", i):
            add("letters")
            add("digits")
            add("'_'")
            i += 2
        elif klass.startswith("\\s", i):
            add("spaces")
            i += 2
        elif klass[i] == "\\" and i + 1 < len(klass):
            add(f"'{klass[i + 1]}'")
            i += 2
        else:
            add(f"'{klass[i]}'")
            i += 1
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _article(word: str) -> str:
    return "an" if word[:1] in "AEIOU" or word.startswith(("SNS", "S3")) else "a"


def _count(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    return f"{n} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"
