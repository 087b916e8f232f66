"""Checking AWSTOE component documents and Image Builder workflow documents as the service does on Create.

`Backend.op_create_component` and `Backend.op_create_workflow` call `check_component_document` and
`check_workflow_document` with the parsed YAML; a document the service would refuse raises
`InvalidParameterValueException` naming the parameter `data` and the place in the document, in
the shapes of the service's own messages ("Invalid step name 'x' in phase 'build'. ...",
"Parsing step 'x' in phase 'build' failed. Error: ..."). The rules follow the AWSTOE document
schema, the action module reference (inputs and platforms per module) and the workflow document
reference; what those pages leave open is accepted rather than guessed at.
"""

from __future__ import annotations

import re
from typing import Any

from imagesync.sandbox.errors import SandboxError

Document = dict[str, Any]

SCHEMA_VERSION = "1.0"
# The phases Image Builder runs: build and validate in the build stage, test (and
# container-host-test for container images) in the test stage.
PHASES = ("build", "validate", "test", "container-host-test")
ON_FAILURE = ("Abort", "Continue", "Ignore")
STEP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_-]{3,128}$")

# Action modules whose `inputs` is one map; every other module takes a list of maps, one per operation.
MAP_INPUTS = frozenset(
    {"ExecuteBash", "ExecuteBinary", "ExecuteDocument", "ExecutePowerShell"}
    | {"InstallMSI", "UninstallMSI", "Reboot", "UpdateOS"}
)
# Members each operation of a module must give.
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "AppendFile": ("path",),
    "CopyFile": ("source", "destination"),
    "CopyFolder": ("source", "destination"),
    "CreateFile": ("path",),
    "CreateFolder": ("path",),
    "CreateSymlink": ("path", "target"),
    "DeleteFile": ("path",),
    "DeleteFolder": ("path",),
    "ExecuteBash": ("commands",),
    "ExecuteBinary": ("path",),
    "ExecuteDocument": ("document",),
    "ExecutePowerShell": (),
    "InstallMSI": ("path",),
    "ListFiles": ("path",),
    "MoveFile": ("source", "destination"),
    "MoveFolder": ("source", "destination"),
    "ReadFile": ("path",),
    "Reboot": (),
    "S3Download": ("source", "destination"),
    "S3Upload": ("source", "destination"),
    "SetFileEncoding": ("path",),
    "SetFileOwner": ("path", "owner"),
    "SetFilePermissions": ("path", "permissions"),
    "SetFolderOwner": ("path", "owner"),
    "SetFolderPermissions": ("path", "permissions"),
    "SetRegistry": ("path", "name", "value", "type"),
    "UninstallMSI": ("path",),
    "UpdateOS": (),
    "WebDownload": ("source", "destination"),
}
# Assert takes a comparison expression whose input syntax the reference does not spell out.
ACTIONS = frozenset(REQUIRED_INPUTS) | {"Assert"}
# Modules with only optional inputs may leave `inputs` out.
INPUTS_OPTIONAL = frozenset({"Reboot", "UpdateOS", "Assert"})
WINDOWS_ONLY = frozenset({"ExecutePowerShell", "InstallMSI", "UninstallMSI", "SetRegistry"})
NOT_ON_WINDOWS = frozenset(
    {"ExecuteBash", "CreateSymlink", "SetFileOwner", "SetFolderOwner", "SetFilePermissions", "SetFolderPermissions"}
)
NOT_ON_MACOS = frozenset({"UpdateOS"})
# CreateFile and CreateFolder refuse these inputs on Windows.
POSIX_ONLY_INPUTS = ("owner", "group", "permissions")

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
WORKFLOW_ON_FAILURE = ("Abort", "Continue")
WORKFLOW_PARAMETER_TYPES = ("string", "integer", "boolean", "stringList")
MAX_WORKFLOW_STEPS = 15


def _invalid(detail: str) -> SandboxError:
    return SandboxError(
        "InvalidParameterValueException", f"The value supplied for parameter 'data' is not valid. {detail}"
    )


def _check_schema_version(doc: Document) -> None:
    if "schemaVersion" not in doc:
        raise _invalid("The document must have a 'schemaVersion'; the supported version is 1.0.")
    value = doc["schemaVersion"]
    # Unquoted `schemaVersion: 1.0` is a YAML float; "1.0" quoted is the documented string.
    if isinstance(value, bool) or str(value) != SCHEMA_VERSION:
        raise _invalid(f"Unsupported schemaVersion '{value}'; the supported version is 1.0.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- components -----------------------------------------------------------------------------


def check_component_document(doc: Document, platform: str) -> None:
    """Refuse a component document (already parsed to a mapping) that the service would refuse."""
    _check_schema_version(doc)
    _check_variables(doc)
    phases = doc.get("phases")
    if not isinstance(phases, list) or not phases:
        raise _invalid("'phases' must be a non-empty list of phases.")
    seen: set[str] = set()
    for i, phase in enumerate(phases):
        if not isinstance(phase, dict):
            raise _invalid(f"phases[{i}] must be a mapping with 'name' and 'steps'.")
        name = phase.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"phases[{i}] must have a 'name'.")
        if name not in PHASES:
            raise _invalid(f"Unknown phase '{name}' in phases[{i}]; the phases are {', '.join(PHASES)}.")
        if name in seen:
            raise _invalid(f"The phase '{name}' appears more than once; each phase name must be unique.")
        seen.add(name)
        _check_phase_steps(name, phase.get("steps"), platform)


def _check_variables(doc: Document) -> None:
    names: set[str] = set()
    for section in ("parameters", "constants"):
        entries = doc.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise _invalid(f"'{section}' must be a list of single-key maps.")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or len(entry) != 1:
                raise _invalid(f"{section}[{i}] must be a map with exactly one key, the {section[:-1]}'s name.")
            ((name, spec),) = entry.items()
            if not isinstance(name, str) or not VARIABLE_NAME.match(name):
                raise _invalid(
                    f"Invalid name '{name}' in {section}[{i}]: names are 3 to 128 characters of letters, "
                    "digits, hyphens (-) and underscores (_)."
                )
            if name in names:
                raise _invalid(f"The name '{name}' in {section}[{i}] is already defined; names must be unique.")
            names.add(name)
            if not isinstance(spec, dict):
                raise _invalid(f"{section}[{i}].{name} must be a mapping with a 'type'.")
            if spec.get("type") != "string":
                raise _invalid(f"{section}[{i}].{name}.type must be 'string', got '{spec.get('type')}'.")
            if section == "constants" and "value" not in spec:
                raise _invalid(f"constants[{i}].{name} must have a 'value'.")


def _check_phase_steps(phase: str, steps: Any, platform: str) -> None:
    if not isinstance(steps, list) or not steps:
        raise _invalid(f"The phase '{phase}' must have a non-empty list of 'steps'.")
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise _invalid(f"phase '{phase}' steps[{i}] must be a mapping.")
        name = step.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"phase '{phase}' steps[{i}] must have a 'name'.")
        if not STEP_NAME.match(name):
            raise _invalid(
                f"Invalid step name '{name}' in phase '{phase}'. Allowed characters are combinations of "
                "numbers [0-9], english letters [a-z,A-Z] and special characters [-_]."
            )
        if name in seen:
            raise _invalid(f"Duplicate step name '{name}' in phase '{phase}'; step names must be unique in a phase.")
        seen.add(name)
        problem = _step_problem(step, platform)
        if problem:
            raise _invalid(f"Parsing step '{name}' in phase '{phase}' failed. Error: {problem}")


def _step_problem(step: Document, platform: str) -> str | None:
    action = step.get("action")
    if not isinstance(action, str) or not action:
        return "The step has no 'action'."
    if action not in ACTIONS:
        return f"Unknown action '{action}'."
    if platform != "Windows" and action in WINDOWS_ONLY:
        return f"Action {action} is only supported on Windows, not on {platform}."
    if platform == "Windows" and action in NOT_ON_WINDOWS:
        return f"Action {action} is not supported on Windows."
    if platform == "macOS" and action in NOT_ON_MACOS:
        return f"Action {action} is not supported on macOS."
    on_failure = step.get("onFailure")
    if on_failure is not None and on_failure not in ON_FAILURE:
        return f"onFailure must be one of {', '.join(ON_FAILURE)}, got '{on_failure}'."
    attempts = step.get("maxAttempts")
    if attempts is not None and (not _is_int(attempts) or attempts < 1):
        return f"maxAttempts must be a positive integer, got '{attempts}'."
    timeout = step.get("timeoutSeconds")
    if timeout is not None and (not _is_int(timeout) or (timeout < 1 and timeout != -1)):
        return f"timeoutSeconds must be a positive integer or -1, got '{timeout}'."
    return _inputs_problem(action, step.get("inputs"), platform)


def _inputs_problem(action: str, inputs: Any, platform: str) -> str | None:
    if action == "Assert":
        return None
    if inputs is None or inputs == [] or inputs == {}:
        if action in INPUTS_OPTIONAL:
            return None
        return f"Action {action} has no inputs; it requires an 'inputs'."
    if action in MAP_INPUTS:
        if not isinstance(inputs, dict):
            return f"Action {action} takes its 'inputs' as a map."
        operations = [inputs]
    else:
        if not isinstance(inputs, list) or not all(isinstance(op, dict) for op in inputs):
            return f"Action {action} takes its 'inputs' as a list of maps."
        operations = inputs
    for i, op in enumerate(operations):
        where = "inputs" if action in MAP_INPUTS else f"inputs[{i}]"
        missing = [key for key in REQUIRED_INPUTS[action] if op.get(key) in (None, "", [])]
        if missing:
            return f"Action {action} requires {', '.join(repr(m) for m in missing)} in {where}."
        if action == "ExecuteBash" and not isinstance(op["commands"], list):
            return "Action ExecuteBash takes 'commands' as a list."
        if action == "ExecutePowerShell":
            has_commands, has_file = op.get("commands") is not None, op.get("file") is not None
            if has_commands == has_file:
                return "Action ExecutePowerShell requires exactly one of 'commands' and 'file'."
            if has_commands and not isinstance(op["commands"], list):
                return "Action ExecutePowerShell takes 'commands' as a list."
        if action in ("CreateFile", "CreateFolder") and platform == "Windows":
            used = [key for key in POSIX_ONLY_INPUTS if key in op]
            if used:
                return f"Action {action} does not support {', '.join(repr(u) for u in used)} on Windows ({where})."
    return None


# --- workflows ------------------------------------------------------------------------------


def check_workflow_document(doc: Document) -> None:
    """Refuse a workflow document (already parsed to a mapping) that the service would refuse."""
    _check_schema_version(doc)
    parameters = doc.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, list):
            raise _invalid("'parameters' must be a list.")
        names: set[str] = set()
        for i, param in enumerate(parameters):
            if not isinstance(param, dict) or not isinstance(param.get("name"), str) or not param["name"]:
                raise _invalid(f"parameters[{i}] must be a mapping with a 'name'.")
            if param["name"] in names:
                raise _invalid(f"The parameter '{param['name']}' in parameters[{i}] is already defined.")
            names.add(param["name"])
            if param.get("type") not in WORKFLOW_PARAMETER_TYPES:
                raise _invalid(
                    f"parameters[{i}].type must be one of {', '.join(WORKFLOW_PARAMETER_TYPES)}, "
                    f"got '{param.get('type')}'."
                )
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _invalid("A workflow document needs a non-empty list of 'steps'.")
    if len(steps) > MAX_WORKFLOW_STEPS:
        raise _invalid(f"A workflow document can have at most {MAX_WORKFLOW_STEPS} steps, got {len(steps)}.")
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise _invalid(f"steps[{i}] must be a mapping.")
        name = step.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"steps[{i}] must have a 'name'.")
        if name in seen:
            raise _invalid(f"Duplicate step name '{name}' in steps[{i}]; step names must be unique.")
        seen.add(name)
        action = step.get("action")
        if not isinstance(action, str) or action not in WORKFLOW_ACTIONS:
            raise _invalid(f"Parsing step '{name}' failed. Error: Unknown workflow step action '{action}'.")
        on_failure = step.get("onFailure")
        if on_failure is not None and on_failure not in WORKFLOW_ON_FAILURE:
            raise _invalid(
                f"Parsing step '{name}' failed. Error: onFailure must be one of "
                f"{', '.join(WORKFLOW_ON_FAILURE)}, got '{on_failure}'."
            )
