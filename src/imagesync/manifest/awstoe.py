"""Offline checks for AWSTOE component documents and Image Builder workflow documents.

The manifest loader calls `check_component_document` for every Component and
`check_workflow_document` for every Workflow, whether the document is written inline or read from
`documentFile`, and `check_inline_size` on the text it would send as inline `data`. Each check
works on a `Located` document (plain values plus the line and column of every node) and reports
every problem it finds to a `Problems` collector, so one run names all mistakes with their places;
nothing here raises on bad input.

Component documents (the AWSTOE format, schemaVersion 1.0) are checked for:
- the top level: a map with `schemaVersion: 1.0`, optional string `name`/`description`, and no
  keys other than name, description, schemaVersion, parameters, constants and phases;
- `parameters` and `constants`: lists of single-key maps, names of 3-128 letters, digits, `_`
  or `-`, unique across both lists, `type: string`, and a `value` for every constant;
- `phases`: a non-empty list of uniquely named phases with non-empty `steps`, including at least
  one of build, validate or test;
- steps: a unique `name`, a known `action` (case-sensitive, with a suggestion on a near miss),
  `inputs` shaped as the action module expects (a map or a list of maps) with its required
  inputs, and valid `onFailure`, `timeoutSeconds`, `maxAttempts` and `loop` settings;
- `{{ ... }}` references in step inputs and loop values: each must name a parameter, a constant,
  a loop variable of the same step, or an input/output of an earlier step on the same side of
  the build -> test stage boundary.

Workflow documents are checked for their top level, typed `parameters`, and `steps` with unique
names, known actions, valid settings, and `$.stepOutputs.<step>` / `$.parameters.<name>`
references that name earlier steps and defined parameters.

Small readers used by versioning live here too: `component_type`, `parameter_names`,
`parameter_types` and `step_index`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from imagesync.errors import Location
from imagesync.manifest.problems import Problems
from imagesync.manifest.yamlloc import Located, Path, load_text

INLINE_LIMIT = 16000
"""The most characters Image Builder accepts as inline component or workflow `data`."""

# --- component documents -------------------------------------------------------------------------

COMPONENT_TOP_KEYS = ("name", "description", "schemaVersion", "parameters", "constants", "phases")
PHASE_KEYS = ("name", "steps")
STEP_KEYS = ("name", "action", "inputs", "onFailure", "timeoutSeconds", "maxAttempts", "loop", "if")
LOOP_KEYS = ("name", "for", "forEach")
FOR_KEYS = ("start", "end", "updateBy")
FOR_EACH_MAP_KEYS = ("list", "delimiter")
PARAMETER_KEYS = ("type", "default", "description", "allowedValues")
CONSTANT_KEYS = ("type", "value", "description")
ON_FAILURE = ("Abort", "Continue", "Ignore")
STANDARD_PHASES = ("build", "validate", "test")

MAP_MODULES = frozenset(
    {
        "ExecuteBash",
        "ExecutePowerShell",
        "ExecuteBinary",
        "ExecuteDocument",
        "InstallMSI",
        "UninstallMSI",
        "Reboot",
        "UpdateOS",
        "Assert",
    }
)
LIST_MODULES = frozenset(
    {
        "AppendFile",
        "CopyFile",
        "CopyFolder",
        "CreateFile",
        "CreateFolder",
        "CreateSymlink",
        "DeleteFile",
        "DeleteFolder",
        "ListFiles",
        "MoveFile",
        "MoveFolder",
        "ReadFile",
        "S3Download",
        "S3Upload",
        "SetFileEncoding",
        "SetFileOwner",
        "SetFilePermissions",
        "SetFolderOwner",
        "SetFolderPermissions",
        "SetRegistry",
        "WebDownload",
    }
)
COMPONENT_ACTIONS = MAP_MODULES | LIST_MODULES
"""Every AWSTOE action module name (the CDK `ComponentAction` enum), spelled as AWSTOE expects."""

INPUTS_OPTIONAL = frozenset({"UpdateOS", "Reboot"})

REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "ExecuteBash": ("commands",),
    "ExecuteBinary": ("path",),
    "ExecuteDocument": ("document",),
    "InstallMSI": ("path",),
    "UninstallMSI": ("path",),
    "S3Download": ("source", "destination"),
    "S3Upload": ("source", "destination"),
    "WebDownload": ("source", "destination"),
    "CopyFile": ("source", "destination"),
    "CopyFolder": ("source", "destination"),
    "MoveFile": ("source", "destination"),
    "MoveFolder": ("source", "destination"),
    "AppendFile": ("path",),
    "CreateFile": ("path",),
    "CreateFolder": ("path",),
    "CreateSymlink": ("path", "target"),
    "DeleteFile": ("path",),
    "DeleteFolder": ("path",),
    "ListFiles": ("path",),
    "ReadFile": ("path",),
    "SetFileEncoding": ("path",),
    "SetFileOwner": ("path", "owner"),
    "SetFolderOwner": ("path", "owner"),
    "SetFilePermissions": ("path", "permissions"),
    "SetFolderPermissions": ("path", "permissions"),
    "SetRegistry": ("path", "name", "value", "type"),
}

# Inputs whose value must come from a fixed set (checked only when written literally).
INPUT_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("SetRegistry", "type"): ("BINARY", "DWORD", "QWORD", "SZ", "EXPAND_SZ", "MULTI_SZ"),
    ("WebDownload", "algorithm"): ("MD5", "SHA1", "SHA256", "SHA512"),
}

VARIABLE_NAME = re.compile(r"[A-Za-z0-9_-]{3,128}")
STEP_NAME = re.compile(r"[A-Za-z0-9_-]+")
LOOP_NAME = re.compile(r"[A-Za-z0-9_-]+")

# `{{ X }}` but not `{{{ X }}}`; the expression itself holds no braces.
REFERENCE = re.compile(r"(?<!\{)\{\{(?!\{)([^{}]*)\}\}(?!\})")
# What AWSTOE could resolve: names, dotted members and [n] indexes. Anything else inside double
# braces (a Go template such as `docker inspect -f '{{.Id}}'`, Jinja filters) is not AWSTOE syntax
# and is left alone, as AWSTOE leaves it.
REFERENCE_SHAPE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+|\[\d+\])*")
LOOP_VARIABLE = re.compile(r"(?P<loop>[A-Za-z0-9_-]+)\.(?:index|value)")
CHAIN = re.compile(
    r"(?P<phase>[A-Za-z0-9_-]+)\.(?P<step>[A-Za-z0-9_-]+)\.(?:inputs|outputs)(?:\[\d+\])?(?:\.[A-Za-z0-9_-]+)+"
)

# Image Builder runs build and validate in its build stage, test phases in its test stage.
STAGES = {"build": "build", "validate": "build", "test": "test", "container-host-test": "test"}

# --- workflow documents --------------------------------------------------------------------------

WORKFLOW_TOP_KEYS = ("name", "description", "schemaVersion", "parameters", "steps", "outputs")
WORKFLOW_STEP_KEYS = (
    "name",
    "action",
    "description",
    "onFailure",
    "timeoutSeconds",
    "if",
    "inputs",
    "rollbackEnabled",
)
WORKFLOW_PARAMETER_KEYS = ("name", "type", "default", "description")
WORKFLOW_OUTPUT_KEYS = ("name", "value")
WORKFLOW_PARAMETER_TYPES = ("string", "integer", "boolean", "stringList")
WORKFLOW_ON_FAILURE = ("Abort", "Continue")
WORKFLOW_MAX_STEPS = 15
WORKFLOW_ACTIONS = frozenset(
    {
        "ApplyImageConfigurations",
        "BootstrapInstanceForContainer",
        "CollectImageMetadata",
        "CollectImageScanFindings",
        "CreateImage",
        "DistributeImage",
        "ExecuteComponents",
        "ExecuteStateMachine",
        "LaunchInstance",
        "ModifyImageAttributes",
        "RegisterImage",
        "RunCommand",
        "RunSysPrep",
        "SanitizeInstance",
        "TerminateInstance",
        "WaitForAction",
        "WaitForSSMAgent",
    }
)
WORKFLOW_STEP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,99}")
STEP_OUTPUT_REF = re.compile(r"\$\.stepOutputs\.(?P<step>[A-Za-z0-9_-]+)")
PARAMETER_REF = re.compile(r"\$\.parameters\.(?P<name>[A-Za-z0-9_-]+)")
# `$.Step.outputs...` is not Image Builder syntax; it is a common slip for `$.stepOutputs.Step...`.
WRONG_OUTPUT_REF = re.compile(r"\$\.(?P<step>[A-Za-z][A-Za-z0-9_-]*)\.outputs\b")


# --- public API ----------------------------------------------------------------------------------


def check_component_document(doc: Located, problems: Problems) -> None:
    """Report every problem in an AWSTOE component document, each at its line and column."""
    _ComponentChecker(doc, problems).check()


def check_workflow_document(doc: Located, problems: Problems) -> None:
    """Report every problem in an Image Builder workflow document, each at its line and column."""
    _WorkflowChecker(doc, problems).check()


def check_inline_size(text: str, location: Location, problems: Problems, hint: str | None = None) -> None:
    """Report inline document `data` longer than Image Builder accepts; `hint` says what to do."""
    if len(text) > INLINE_LIMIT:
        problems.add(
            location,
            f"the inline document is {len(text):,} characters, but inline data is limited to "
            f"{INLINE_LIMIT:,} characters; "
            + (hint or "upload the document to S3 and reference it with 'uri' instead"),
        )


def load_document(text: str | None) -> dict[str, Any] | None:
    """A live document's text (as the service returns it) parsed as a mapping, or None when absent,
    not one YAML mapping, or past the loader's limits: another account's document is read with the
    same alias, size and depth limits as a manifest. Desired documents are parsed by the loader
    (`Resource.document_value`), the same way."""
    if not text:
        return None
    problems = Problems()
    docs = load_text(text, "(live document)", problems)
    if problems.items or len(docs) != 1:
        return None
    value = as_sent(text)
    return value if isinstance(value, dict) else None


def as_sent(text: str) -> Any:
    """A document text that the loader's limits accepted, as YAML's own safe loader reads it
    (timestamps as dates, keys as typed): the form a document's content hash has always covered,
    so a document file hashes as it did before the loader kept its own parse."""
    if _CLoader is not None and _libyaml_reads_alike(text):
        try:
            return yaml.load(text, Loader=_CLoader)  # noqa: S506 - the safe loader, on libyaml's parser
        except yaml.YAMLError:
            pass  # the pure parser decides: it may read what libyaml refuses
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


# libyaml's parser (about ten times faster) feeds the same Python safe constructor and resolver as
# `yaml.safe_load`, so values can only differ where the two parsers read the text differently.
# They agree on plain ASCII block and flow YAML; text where their scanners are known to part
# (tabs, carriage returns, control or non-ASCII characters, directives) goes to the pure parser,
# and so, out of caution, does text with timestamps or merge keys: the content hash of documents
# holding them is pinned, and those are the values built beyond one scalar's text.
_CLoader: Any = getattr(yaml, "CSafeLoader", None)
_PURE_ONLY = re.compile(
    r"[^\n\x20-\x7e]"  # tabs, carriage returns, control and non-ASCII characters
    r"|^%"  # directives
    r"|[|>][-+0-9]*#"  # a block scalar header touching a comment: libyaml takes it, the pure parser refuses
    r"|(?:^|[\s\[{,])!"  # tags: a bare `!` reads as '' in libyaml, as None in the pure parser
    r"|<<|\d\d\d\d-\d\d?-\d\d?",  # merge keys, timestamps
    re.MULTILINE,
)


def _libyaml_reads_alike(text: str) -> bool:
    """Does `text` avoid everything the two parsers might read differently?"""
    return _PURE_ONLY.search(text) is None


def component_type(doc_value: Any) -> str:
    """'TEST' for a document whose only phase is named `test`, otherwise 'BUILD'.

    A guess at how the service types a component (Create takes no type; Get reports one); the
    planner does not depend on it.
    """
    phases = doc_value.get("phases") if isinstance(doc_value, dict) else None
    if (
        isinstance(phases, list)
        and len(phases) == 1
        and isinstance(phases[0], dict)
        and phases[0].get("name") == "test"
    ):
        return "TEST"
    return "BUILD"


def parameter_names(doc_value: Any) -> list[str]:
    """The names of the document's parameters (not constants), in document order."""
    return [name for name, _ in _definitions(doc_value, "parameters")]


def parameter_types(doc_value: Any) -> dict[str, str]:
    """Each parameter's declared type ('' when the type is missing or not a string)."""
    types: dict[str, str] = {}
    for name, body in _definitions(doc_value, "parameters"):
        declared = body.get("type") if isinstance(body, dict) else None
        types.setdefault(name, declared if isinstance(declared, str) else "")
    return types


def step_index(doc_value: Any) -> dict[tuple[str, str], Any]:
    """Each step by (phase name, step name); the first wins when names repeat."""
    index: dict[tuple[str, str], Any] = {}
    phases = doc_value.get("phases") if isinstance(doc_value, dict) else None
    if not isinstance(phases, list):
        return index
    for phase in phases:
        if not isinstance(phase, dict) or not isinstance(phase.get("name"), str):
            continue
        steps = phase.get("steps")
        if not isinstance(steps, list):
            continue
        for step in steps:
            if isinstance(step, dict) and isinstance(step.get("name"), str):
                index.setdefault((phase["name"], step["name"]), step)
    return index


# --- helpers -------------------------------------------------------------------------------------


def _definitions(doc_value: Any, section: str) -> Iterator[tuple[str, Any]]:
    items = doc_value.get(section) if isinstance(doc_value, dict) else None
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            ((name, body),) = item.items()
            if isinstance(name, str):
                yield name, body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    """A short phrase naming a value and its kind, for messages."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"'{_short(value)}'"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a map"
    return f"a {type(value).__name__}"


def _quoted(names: Iterable[str]) -> str:
    items = [f"'{n}'" for n in names]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _near(value: Any, choices: Iterable[str]) -> str | None:
    """The choice `value` most likely meant: same letters in another case, or a close spelling."""
    if not isinstance(value, str) or not value:
        return None
    folded = {c.lower(): c for c in sorted(choices)}
    if value.lower() in folded:
        return folded[value.lower()]
    close = difflib.get_close_matches(value.lower(), list(folded), n=1, cutoff=0.7)
    return folded[close[0]] if close else None


def _suggestion(value: Any, choices: Iterable[str]) -> str:
    """'; did you mean 'X'?' for a near miss, else ''."""
    near = _near(value, choices)
    return f"; did you mean '{near}'?" if near else ""


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    """Every string inside `value`, with its path; iterative, so deep nesting cannot overflow."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, str):
            yield here, item
        elif isinstance(item, dict):
            stack.extend(((*here, k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend(((*here, i), v) for i, v in reversed(list(enumerate(item))))


def _ref(expression: str) -> str:
    return "'{{ " + expression + " }}'"


class _Checker:
    def __init__(self, doc: Located, problems: Problems) -> None:
        self.doc = doc
        self.problems = problems

    def add(self, path: Path, message: str) -> None:
        self.problems.add(self.doc.at(path), message)

    def where(self, path: Path) -> str:
        location = self.doc.at(path)
        return f"line {location.line}, column {location.column}" if location.line else "earlier"

    def unknown_keys(self, value: dict[str, Any], path: Path, known: tuple[str, ...], what: str) -> None:
        for key in value:
            if key not in known:
                self.add(
                    (*path, key),
                    f"unknown {what} key '{key}'{_suggestion(key, known)} (expected {_quoted(known)})",
                )

    def schema_version(self, value: dict[str, Any], kind: str) -> None:
        if "schemaVersion" not in value:
            self.add((), f"the {kind} document is missing 'schemaVersion' (expected 1.0)")
            return
        version = value["schemaVersion"]
        # `1.0` unquoted is a float; Terraform's yamlencode and other generators write the number 1.
        ok = (isinstance(version, (int, float)) and not isinstance(version, bool) and version == 1) or version == "1.0"
        if not ok:
            self.add(("schemaVersion",), f"schemaVersion must be 1.0, not {_describe(version)}")

    def optional_string(self, value: dict[str, Any], path: Path, key: str, what: str) -> None:
        if key in value and not isinstance(value[key], str):
            self.add((*path, key), f"the '{key}' of {what} must be a string, not {_describe(value[key])}")


# --- component documents -------------------------------------------------------------------------


@dataclass
class _StepContext:
    phase: str | None
    position: tuple[int, int]
    loop_names: set[str] = field(default_factory=set)


class _ComponentChecker(_Checker):
    def __init__(self, doc: Located, problems: Problems) -> None:
        super().__init__(doc, problems)
        self.variables: set[str] = set()
        self.positions: dict[tuple[str, str], tuple[int, int]] = {}

    def check(self) -> None:
        value = self.doc.value
        if not isinstance(value, dict):
            self.add(
                (),
                f"a component document must be a map with 'schemaVersion' and 'phases', not {_describe(value)}",
            )
            return
        self.unknown_keys(value, (), COMPONENT_TOP_KEYS, "top-level")
        self.schema_version(value, "component")
        self.optional_string(value, (), "name", "the document")
        self.optional_string(value, (), "description", "the document")
        self.check_definitions(value)
        self.check_phases(value)

    # parameters and constants

    def check_definitions(self, value: dict[str, Any]) -> None:
        seen: dict[str, tuple[str, Path]] = {}
        for section, kind in (("parameters", "parameter"), ("constants", "constant")):
            if section not in value:
                continue
            items = value[section]
            if not isinstance(items, list):
                self.add(
                    (section,),
                    f"the '{section}' must be a list of single-key maps such as '- MyName: {{type: string}}', "
                    f"not {_describe(items)}",
                )
                continue
            for i, item in enumerate(items):
                path: Path = (section, i)
                if not isinstance(item, dict) or len(item) != 1:
                    found = f"a map with {len(item)} keys" if isinstance(item, dict) else _describe(item)
                    self.add(
                        path,
                        f"each entry in '{section}' must be a map with exactly one key, the {kind} name "
                        f"(such as '- MyName: {{type: string}}'), not {found}",
                    )
                    continue
                ((name, body),) = item.items()
                name = str(name)
                npath: Path = (section, i, name)
                if not VARIABLE_NAME.fullmatch(name):
                    self.add(
                        npath,
                        f"{kind} name '{_short(name)}' must be 3 to 128 letters, digits, '_' or '-'",
                    )
                elif name in seen:
                    first_kind, first_path = seen[name]
                    self.add(
                        npath,
                        f"duplicate name '{name}': already defined as a {first_kind} at {self.where(first_path)}; "
                        "parameter and constant names must be unique",
                    )
                else:
                    seen[name] = (kind, npath)
                self.variables.add(name)
                self.check_definition_body(kind, name, body, npath)

    def check_definition_body(self, kind: str, name: str, body: Any, path: Path) -> None:
        if not isinstance(body, dict):
            needs = "'type: string' and 'value'" if kind == "constant" else "'type: string'"
            self.add(path, f"{kind} '{name}' must be a map with {needs}, not {_describe(body)}")
            return
        self.unknown_keys(body, path, CONSTANT_KEYS if kind == "constant" else PARAMETER_KEYS, kind)
        if "type" not in body:
            self.add(path, f"{kind} '{name}' is missing 'type' (the only supported type is 'string')")
        elif body["type"] != "string":
            self.add(
                (*path, "type"),
                f"{kind} '{name}' has type {_describe(body['type'])}; the only supported type is 'string'",
            )
        if kind == "constant" and "value" not in body:
            self.add(path, f"constant '{name}' is missing 'value'")
        if kind == "parameter" and "allowedValues" in body:
            allowed = body["allowedValues"]
            if not isinstance(allowed, list) or not allowed or not all(isinstance(v, str) for v in allowed):
                self.add(
                    (*path, "allowedValues"),
                    f"the 'allowedValues' of parameter '{name}' must be a list of strings such as "
                    f"'allowedValues: [a, b]', not {_describe(allowed)}",
                )
        self.optional_string(body, path, "description", f"{kind} '{name}'")

    # phases and steps

    def check_phases(self, value: dict[str, Any]) -> None:
        if "phases" not in value:
            self.add((), "the component document is missing 'phases' (a list with a build, validate or test phase)")
            return
        phases = value["phases"]
        if not isinstance(phases, list) or not phases:
            self.add(("phases",), f"the 'phases' must be a non-empty list of phases, not {_describe(phases)}")
            return
        for pi, phase in enumerate(phases):
            if isinstance(phase, dict) and isinstance(phase.get("name"), str) and isinstance(phase.get("steps"), list):
                for si, step in enumerate(phase["steps"]):
                    if isinstance(step, dict) and isinstance(step.get("name"), str):
                        self.positions.setdefault((phase["name"], step["name"]), (pi, si))
        names: dict[str, Path] = {}
        for pi, phase in enumerate(phases):
            self.check_phase(pi, phase, names)
        if names and not any(n in STANDARD_PHASES for n in names):
            self.add(
                ("phases",),
                f"the document has no build, validate or test phase (found {_quoted(names)}); "
                "Image Builder runs only those phases",
            )

    def check_phase(self, pi: int, phase: Any, names: dict[str, Path]) -> None:
        path: Path = ("phases", pi)
        if not isinstance(phase, dict):
            self.add(path, f"each phase must be a map with 'name' and 'steps', not {_describe(phase)}")
            return
        self.unknown_keys(phase, path, PHASE_KEYS, "phase")
        name = phase.get("name")
        phase_name: str | None = None
        if "name" not in phase:
            self.add(path, "the phase is missing 'name' (build, validate, test or a name of your own)")
        elif not isinstance(name, str) or not name:
            self.add((*path, "name"), f"a phase name must be a non-empty string, not {_describe(name)}")
        elif name in names:
            self.add((*path, "name"), f"duplicate phase name '{name}' (first defined at {self.where(names[name])})")
        else:
            names[name] = (*path, "name")
            phase_name = name
        if "steps" not in phase:
            self.add(path, f"phase '{name if isinstance(name, str) else pi}' is missing 'steps'")
            return
        steps = phase["steps"]
        if not isinstance(steps, list) or not steps:
            self.add((*path, "steps"), f"the 'steps' must be a non-empty list of steps, not {_describe(steps)}")
            return
        step_names: dict[str, Path] = {}
        loop_names: dict[str, Path] = {}
        for si, step in enumerate(steps):
            self.check_step(phase_name, pi, si, step, step_names, loop_names)

    def check_step(
        self,
        phase: str | None,
        pi: int,
        si: int,
        step: Any,
        step_names: dict[str, Path],
        loop_names: dict[str, Path],
    ) -> None:
        path: Path = ("phases", pi, "steps", si)
        if not isinstance(step, dict):
            self.add(path, f"each step must be a map with 'name', 'action' and 'inputs', not {_describe(step)}")
            return
        self.unknown_keys(step, path, STEP_KEYS, "step")
        name = step.get("name")
        label = f"step '{name}'" if isinstance(name, str) else "the step"
        if "name" not in step:
            self.add(path, "the step is missing 'name'")
        elif not isinstance(name, str) or not STEP_NAME.fullmatch(name):
            self.add(
                (*path, "name"),
                f"step name must be letters, digits, '_' or '-', not {_describe(name)}",
            )
        elif name in step_names:
            self.add(
                (*path, "name"),
                f"duplicate step name '{name}' in this phase (first defined at {self.where(step_names[name])})",
            )
        else:
            step_names[name] = (*path, "name")

        action = step.get("action")
        known_action: str | None = None
        if "action" not in step:
            self.add(path, f"{label} is missing 'action' (an AWSTOE action module such as 'ExecuteBash')")
        elif not isinstance(action, str):
            self.add((*path, "action"), f"the action must be a module name, not {_describe(action)}")
        elif action not in COMPONENT_ACTIONS:
            hint = _suggestion(action, COMPONENT_ACTIONS)
            self.add(
                (*path, "action"),
                f"unknown action '{_short(action)}'{hint}"
                + (
                    " (action names are case-sensitive)"
                    if hint
                    else f" (expected one of {_quoted(sorted(COMPONENT_ACTIONS))})"
                ),
            )
        else:
            known_action = action

        self.check_inputs(path, label, step, known_action)
        self.check_settings(path, step)
        context = _StepContext(phase, (pi, si))
        if "loop" in step:
            loop_name = self.check_loop((*path, "loop"), step["loop"], loop_names)
            context.loop_names = {"loop"} | ({loop_name} if loop_name else set())
            loop = step["loop"]
            if isinstance(loop, dict) and "forEach" in loop:
                self.check_references(loop["forEach"], (*path, "loop", "forEach"), _StepContext(phase, (pi, si)))
        if "inputs" in step:
            self.check_references(step["inputs"], (*path, "inputs"), context)

    def check_inputs(self, path: Path, label: str, step: dict[str, Any], action: str | None) -> None:
        if action is None:
            return
        ipath: Path = (*path, "inputs")
        if "inputs" not in step:
            if action not in INPUTS_OPTIONAL:
                self.add(path, f"{label} has no 'inputs'; action {action} requires them")
            return
        inputs = step["inputs"]
        if action in MAP_MODULES:
            if inputs is None and action in INPUTS_OPTIONAL:
                return
            if not isinstance(inputs, dict):
                self.add(
                    ipath,
                    f"the inputs of action {action} must be a map of input names to values, not {_describe(inputs)}",
                )
                return
            self.check_input_values(action, inputs, ipath)
            return
        if isinstance(inputs, dict):
            self.add(
                ipath,
                f"the inputs of action {action} must be a list of maps, one per operation "
                "(write '- source: ...' with a leading dash), not a map",
            )
            return
        if not isinstance(inputs, list) or not inputs:
            self.add(ipath, f"the inputs of action {action} must be a non-empty list of maps, not {_describe(inputs)}")
            return
        for j, item in enumerate(inputs):
            if not isinstance(item, dict):
                self.add(
                    (*ipath, j),
                    f"each operation of action {action} must be a map of inputs, not {_describe(item)}",
                )
                continue
            self.check_input_values(action, item, (*ipath, j))

    def check_input_values(self, action: str, inputs: dict[str, Any], path: Path) -> None:
        for key in REQUIRED_INPUTS.get(action, ()):
            if key not in inputs:
                self.add(path, f"missing required input '{key}' for action {action}")
        for (module, key), choices in INPUT_CHOICES.items():
            if module == action and key in inputs:
                given = inputs[key]
                if isinstance(given, str) and "{{" in given:
                    continue
                if given not in choices:
                    self.add(
                        (*path, key),
                        f"input '{key}' of action {action} must be {_quoted(choices)}, not {_describe(given)}"
                        + _suggestion(given, choices),
                    )
        if action == "ExecutePowerShell":
            has_commands, has_file = "commands" in inputs, "file" in inputs
            if has_commands and has_file:
                self.add(path, "action ExecutePowerShell takes either 'commands' or 'file', not both")
            elif not has_commands and not has_file:
                self.add(
                    path,
                    "action ExecutePowerShell needs 'commands' (a list of commands) or 'file' (a script path)",
                )
        if action in ("ExecuteBash", "ExecutePowerShell") and "commands" in inputs:
            self.check_commands(action, inputs["commands"], (*path, "commands"))
        for key in ("arguments", "include", "exclude"):
            if key in inputs and action in ("ExecuteBinary", "UpdateOS") and not isinstance(inputs[key], list):
                self.add((*path, key), f"input '{key}' of action {action} must be a list, not {_describe(inputs[key])}")

    def check_commands(self, action: str, commands: Any, path: Path) -> None:
        if not isinstance(commands, list) or not commands:
            self.add(
                path,
                f"the 'commands' of action {action} must be a non-empty list of strings, not {_describe(commands)}",
            )
            return
        for k, command in enumerate(commands):
            if isinstance(command, dict):
                self.add(
                    (*path, k),
                    "this command was read as a map, not a string: YAML treats an unquoted ': ' as a key; "
                    "quote the whole command or use a '|' block",
                )
            elif isinstance(command, list) or command is None:
                self.add((*path, k), f"each command must be a string, not {_describe(command)}")

    def check_settings(self, path: Path, step: dict[str, Any]) -> None:
        if "onFailure" in step:
            value = step["onFailure"]
            if value not in ON_FAILURE:
                self.add(
                    (*path, "onFailure"),
                    f"onFailure must be {_quoted(ON_FAILURE)}, not {_describe(value)}{_suggestion(value, ON_FAILURE)}",
                )
        if "timeoutSeconds" in step:
            value = step["timeoutSeconds"]
            if not _is_int(value) or (value != -1 and value <= 0):
                self.add(
                    (*path, "timeoutSeconds"),
                    "timeoutSeconds must be a positive whole number of seconds or -1 (no limit), "
                    f"not {_describe(value)}",
                )
        if "maxAttempts" in step:
            value = step["maxAttempts"]
            if not _is_int(value) or value < 1:
                self.add(
                    (*path, "maxAttempts"),
                    f"maxAttempts must be a whole number of at least 1, not {_describe(value)}",
                )
        if "if" in step and not isinstance(step["if"], (dict, list)):
            self.add(
                (*path, "if"),
                f"the 'if' of a step must be a map or list holding a condition, not {_describe(step['if'])}",
            )

    def check_loop(self, path: Path, loop: Any, loop_names: dict[str, Path]) -> str | None:
        if not isinstance(loop, dict):
            self.add(
                path,
                f"the 'loop' must be a map with 'for' or 'forEach' (and an optional 'name'), not {_describe(loop)}",
            )
            return None
        self.unknown_keys(loop, path, LOOP_KEYS, "loop")
        name: str | None = None
        if "name" in loop:
            given = loop["name"]
            if not isinstance(given, str) or not LOOP_NAME.fullmatch(given):
                self.add((*path, "name"), f"a loop name must be letters, digits, '_' or '-', not {_describe(given)}")
            elif given in loop_names:
                self.add(
                    (*path, "name"),
                    f"duplicate loop name '{given}' in this phase (first defined at {self.where(loop_names[given])})",
                )
                name = given
            else:
                loop_names[given] = (*path, "name")
                name = given
        has_for, has_each = "for" in loop, "forEach" in loop
        if has_for and has_each:
            self.add(path, "the loop has both 'for' and 'forEach'; use exactly one")
        elif not has_for and not has_each:
            self.add(path, "the loop needs 'for' (a range of numbers) or 'forEach' (a list of strings)")
        if has_for:
            self.check_for((*path, "for"), loop["for"])
        if has_each:
            self.check_for_each((*path, "forEach"), loop["forEach"])
        return name

    def check_for(self, path: Path, spec: Any) -> None:
        if not isinstance(spec, dict):
            self.add(
                path,
                f"the 'for' of a loop must be a map with 'start', 'end' and 'updateBy', not {_describe(spec)}",
            )
            return
        self.unknown_keys(spec, path, FOR_KEYS, "'for'")
        numbers: dict[str, int] = {}
        for key in FOR_KEYS:
            if key not in spec:
                self.add(path, f"the 'for' loop is missing '{key}'")
            elif not _is_int(spec[key]):
                chained = isinstance(spec[key], str) and "{{" in spec[key]
                note = "; chaining expressions are not allowed here" if chained else ""
                self.add(
                    (*path, key),
                    f"the '{key}' of a 'for' loop must be a whole number, not {_describe(spec[key])}{note}",
                )
            else:
                numbers[key] = spec[key]
        if len(numbers) < 3:
            return
        start, end, step = numbers["start"], numbers["end"], numbers["updateBy"]
        if step == 0:
            self.add((*path, "updateBy"), "the 'updateBy' of a 'for' loop must not be 0: the loop would never end")
        elif (end - start) * step < 0:
            self.add(
                (*path, "updateBy"),
                f"the loop never ends: updateBy {step} moves start {start} away from end {end}; "
                f"use updateBy {-step} or swap start and end",
            )

    def check_for_each(self, path: Path, spec: Any) -> None:
        if isinstance(spec, list):
            for k, item in enumerate(spec):
                if not isinstance(item, str):
                    self.add((*path, k), f"forEach values must be strings, not {_describe(item)}; quote the value")
            return
        if isinstance(spec, dict):
            self.unknown_keys(spec, path, FOR_EACH_MAP_KEYS, "forEach")
            for key in FOR_EACH_MAP_KEYS:
                if key not in spec:
                    self.add(path, f"a forEach map needs '{key}' (a delimited string and its delimiter)")
                elif not isinstance(spec[key], str):
                    self.add((*path, key), f"forEach '{key}' must be a string, not {_describe(spec[key])}")
            return
        self.add(
            path,
            "the 'forEach' of a loop must be a list of strings or a map with 'list' and 'delimiter', "
            f"not {_describe(spec)}",
        )

    # references

    def check_references(self, value: Any, path: Path, context: _StepContext) -> None:
        for spath, text in _strings(value, path):
            if "{{" not in text:
                continue
            for match in REFERENCE.finditer(text):
                expression = match.group(1).strip()
                if not REFERENCE_SHAPE.fullmatch(expression):
                    continue
                message = self.resolve(expression, context)
                if message:
                    self.add(spath, message)

    def resolve(self, expression: str, context: _StepContext) -> str | None:
        """None when `expression` resolves here, else the message explaining why not."""
        if expression in self.variables:
            return None
        loop_match = LOOP_VARIABLE.fullmatch(expression)
        if loop_match and loop_match.group("loop") in context.loop_names:
            return None
        chain = CHAIN.fullmatch(expression)
        hint = ""
        if chain:
            phase, step = chain.group("phase"), chain.group("step")
            position = self.positions.get((phase, step))
            if position is not None:
                if position >= context.position:
                    return (
                        f"reference {_ref(expression)} reads step '{step}' of phase '{phase}', which does not run "
                        "before this step; chaining can only read earlier steps"
                    )
                here, there = STAGES.get(context.phase or ""), STAGES.get(phase)
                if here and there and here != there:
                    return (
                        f"reference {_ref(expression)} chains from phase '{phase}' into phase '{context.phase}' "
                        "across the build->test stage boundary; Image Builder runs build/validate and test phases "
                        "in separate stages, so pass the value another way"
                    )
                return None
            hint = f" (no step '{step}' in phase '{phase}')"
        elif loop_match and loop_match.group("loop") == "loop":
            hint = " ({{ loop.* }} works only in the inputs of a step that has a 'loop')"
        else:
            near = _near(expression, self.variables)
            hint = f" (did you mean '{near}'?)" if near else ""
        return (
            f"unknown reference {_ref(expression)}: not a parameter, constant, loop variable or earlier step output"
            + hint
        )


# --- workflow documents --------------------------------------------------------------------------


class _WorkflowChecker(_Checker):
    def __init__(self, doc: Located, problems: Problems) -> None:
        super().__init__(doc, problems)
        self.parameters: set[str] = set()
        self.step_positions: dict[str, int] = {}
        self.step_count = 0

    def check(self) -> None:
        value = self.doc.value
        if not isinstance(value, dict):
            self.add((), f"a workflow document must be a map with 'schemaVersion' and 'steps', not {_describe(value)}")
            return
        self.unknown_keys(value, (), WORKFLOW_TOP_KEYS, "top-level")
        self.schema_version(value, "workflow")
        self.optional_string(value, (), "name", "the document")
        self.optional_string(value, (), "description", "the document")
        self.check_parameters(value)
        self.check_steps(value)
        self.check_outputs(value)

    def check_parameters(self, value: dict[str, Any]) -> None:
        if "parameters" not in value:
            return
        items = value["parameters"]
        if not isinstance(items, list):
            self.add(
                ("parameters",),
                f"the 'parameters' must be a list of maps with 'name' and 'type', not {_describe(items)}",
            )
            return
        seen: dict[str, Path] = {}
        for i, item in enumerate(items):
            path: Path = ("parameters", i)
            if not isinstance(item, dict):
                self.add(path, f"each workflow parameter must be a map with 'name' and 'type', not {_describe(item)}")
                continue
            self.unknown_keys(item, path, WORKFLOW_PARAMETER_KEYS, "parameter")
            name = item.get("name")
            if "name" not in item:
                self.add(path, "the workflow parameter is missing 'name'")
            elif not isinstance(name, str) or not name:
                self.add((*path, "name"), f"a parameter name must be a non-empty string, not {_describe(name)}")
            elif name in seen:
                self.add(
                    (*path, "name"),
                    f"duplicate parameter name '{name}' (first defined at {self.where(seen[name])})",
                )
            else:
                seen[name] = (*path, "name")
                self.parameters.add(name)
            label = f"parameter '{name}'" if isinstance(name, str) else "the parameter"
            kind = item.get("type")
            if "type" not in item:
                self.add(path, f"{label} is missing 'type' (expected {_quoted(WORKFLOW_PARAMETER_TYPES)})")
            elif kind not in WORKFLOW_PARAMETER_TYPES:
                self.add(
                    (*path, "type"),
                    f"{label} has type {_describe(kind)}; expected {_quoted(WORKFLOW_PARAMETER_TYPES)}"
                    + _suggestion(kind, WORKFLOW_PARAMETER_TYPES),
                )
            elif "default" in item and not _default_fits(kind, item["default"]):
                article = "an" if kind[0] in "aeiou" else "a"
                self.add(
                    (*path, "default"),
                    f"the default of {label} is {_describe(item['default'])}, not {article} {kind}",
                )
            self.optional_string(item, path, "description", label)

    def check_steps(self, value: dict[str, Any]) -> None:
        if "steps" not in value:
            self.add((), "the workflow document is missing 'steps' (a non-empty list of steps)")
            return
        steps = value["steps"]
        if not isinstance(steps, list) or not steps:
            self.add(("steps",), f"the 'steps' must be a non-empty list of steps, not {_describe(steps)}")
            return
        if len(steps) > WORKFLOW_MAX_STEPS:
            self.add(
                ("steps",),
                f"the workflow has {len(steps)} steps; Image Builder allows at most {WORKFLOW_MAX_STEPS}",
            )
        self.step_count = len(steps)
        for i, step in enumerate(steps):
            if isinstance(step, dict) and isinstance(step.get("name"), str):
                self.step_positions.setdefault(step["name"], i)
        names: dict[str, Path] = {}
        for i, step in enumerate(steps):
            self.check_step(i, step, names)

    def check_step(self, i: int, step: Any, names: dict[str, Path]) -> None:
        path: Path = ("steps", i)
        if not isinstance(step, dict):
            self.add(path, f"each workflow step must be a map with 'name' and 'action', not {_describe(step)}")
            return
        self.unknown_keys(step, path, WORKFLOW_STEP_KEYS, "step")
        name = step.get("name")
        label = f"step '{name}'" if isinstance(name, str) else "the step"
        if "name" not in step:
            self.add(path, "the step is missing 'name'")
        elif not isinstance(name, str) or not WORKFLOW_STEP_NAME.fullmatch(name):
            self.add(
                (*path, "name"),
                "a workflow step name must start with a letter and hold 2 to 100 letters, digits, '_' or '-', "
                f"not {_describe(name)}",
            )
        elif name in names:
            self.add((*path, "name"), f"duplicate step name '{name}' (first defined at {self.where(names[name])})")
        else:
            names[name] = (*path, "name")
        action = step.get("action")
        if "action" not in step:
            self.add(path, f"{label} is missing 'action' (a workflow step action such as 'LaunchInstance')")
        elif not isinstance(action, str) or action not in WORKFLOW_ACTIONS:
            hint = _suggestion(action, WORKFLOW_ACTIONS)
            shown = f"'{_short(action)}'" if isinstance(action, str) else _describe(action)
            self.add(
                (*path, "action"),
                f"unknown workflow action {shown}{hint}"
                + ("" if hint else f" (expected one of {_quoted(sorted(WORKFLOW_ACTIONS))})"),
            )
        if "onFailure" in step and step["onFailure"] not in WORKFLOW_ON_FAILURE:
            value = step["onFailure"]
            self.add(
                (*path, "onFailure"),
                f"onFailure must be {_quoted(WORKFLOW_ON_FAILURE)}, not {_describe(value)}"
                + _suggestion(value, WORKFLOW_ON_FAILURE),
            )
        if "timeoutSeconds" in step:
            value = step["timeoutSeconds"]
            if not _is_int(value) or value <= 0:
                self.add(
                    (*path, "timeoutSeconds"),
                    f"timeoutSeconds must be a positive whole number, not {_describe(value)}",
                )
        if "rollbackEnabled" in step and not isinstance(step["rollbackEnabled"], bool):
            self.add(
                (*path, "rollbackEnabled"),
                f"rollbackEnabled must be true or false, not {_describe(step['rollbackEnabled'])}",
            )
        self.optional_string(step, path, "description", label)
        if "inputs" in step and not isinstance(step["inputs"], dict):
            self.add((*path, "inputs"), f"the inputs of a workflow step must be a map, not {_describe(step['inputs'])}")
        if "if" in step and not isinstance(step["if"], (dict, list)):
            self.add(
                (*path, "if"),
                f"the 'if' of a step must be a map or list holding a condition, not {_describe(step['if'])}",
            )
        for key in ("inputs", "if"):
            if key in step:
                self.check_references(step[key], (*path, key), i)

    def check_outputs(self, value: dict[str, Any]) -> None:
        if "outputs" not in value:
            return
        outputs = value["outputs"]
        if not isinstance(outputs, list):
            self.add(
                ("outputs",),
                f"the 'outputs' must be a list of maps with 'name' and 'value', not {_describe(outputs)}",
            )
            return
        for i, item in enumerate(outputs):
            path: Path = ("outputs", i)
            if not isinstance(item, dict):
                self.add(path, f"each workflow output must be a map with 'name' and 'value', not {_describe(item)}")
                continue
            self.unknown_keys(item, path, WORKFLOW_OUTPUT_KEYS, "output")
            for key in WORKFLOW_OUTPUT_KEYS:
                if key not in item:
                    self.add(path, f"the workflow output is missing '{key}'")
            if "value" in item:
                self.check_references(item["value"], (*path, "value"), self.step_count)

    def check_references(self, value: Any, path: Path, position: int) -> None:
        for spath, text in _strings(value, path):
            if "$." not in text:
                continue
            for match in STEP_OUTPUT_REF.finditer(text):
                step = match.group("step")
                where = self.step_positions.get(step)
                if where is None:
                    self.add(
                        spath,
                        f"unknown step output reference '$.stepOutputs.{step}': no step is named '{step}'"
                        + _suggestion(step, self.step_positions),
                    )
                elif where >= position:
                    self.add(
                        spath,
                        f"reference '$.stepOutputs.{step}' reads step '{step}', which does not run before this step; "
                        "a step can only read the outputs of earlier steps",
                    )
            for match in PARAMETER_REF.finditer(text):
                name = match.group("name")
                if name not in self.parameters:
                    self.add(
                        spath,
                        f"unknown parameter reference '$.parameters.{name}': the workflow defines no parameter '{name}'"
                        + _suggestion(name, self.parameters),
                    )
            for match in WRONG_OUTPUT_REF.finditer(text):
                step = match.group("step")
                if step in ("stepOutputs", "parameters", "imageBuilder"):
                    continue
                self.add(
                    spath,
                    f"the expression '$.{step}.outputs' is not a workflow reference; "
                    f"write '$.stepOutputs.{step}.<output>' "
                    "to read an earlier step's output",
                )


def _default_fits(kind: str, default: Any) -> bool:
    if kind == "string":
        return isinstance(default, str)
    if kind == "integer":
        return _is_int(default)
    if kind == "boolean":
        return isinstance(default, bool)
    return isinstance(default, list) and all(isinstance(item, str) for item in default)
