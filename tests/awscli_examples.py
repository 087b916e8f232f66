"""Reads the AWS CLI's published Image Builder examples from the installed awscli package.

Each `awscli/examples/imagebuilder/<command>.rst` shows one `aws imagebuilder ...` command, the
JSON files it reads (`Contents of ``x.json``::`), and the `Output::` it printed (or says it
produces none). `load_examples()` parses them into `Example` records; the sandbox conformance
suite runs each command against the sandbox with the real CLI and compares what comes back.
Nothing is copied into the repository: the files are read where awscli installed them.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import awscli
from botocore import xform_name

from imagesync.sandbox.model import service_model

EXAMPLES_DIR = Path(awscli.__file__).parent / "examples" / "imagebuilder"

IMAGEBUILDER_ARN = re.compile(r"arn:aws[a-z-]*:imagebuilder:[a-z0-9-]+:(?:[0-9]{12}|aws):[A-Za-z0-9_./-]+")


@dataclass
class Example:
    """One published example: its command, the files it reads, and the output it showed."""

    name: str
    """The file's stem, which is also the CLI command (`get-component`)."""
    argv: list[str]
    """The command line after `aws`, split as a shell would."""
    files: dict[str, str] = field(default_factory=dict)
    """Shown file contents by file name."""
    output: Any = None
    """The parsed `Output::` JSON; None when the example shows no output."""
    output_error: str | None = None
    """Why the shown output is not JSON, if it is not."""
    no_output: bool = False
    """The example says the command produces no output."""

    @property
    def command(self) -> str:
        return self.argv[1]

    @property
    def operation(self) -> str:
        """The API operation the CLI command calls (`get-component` -> `GetComponent`)."""
        return operations_by_command()[self.command]

    @property
    def source(self) -> str:
        return f"awscli/examples/imagebuilder/{self.name}.rst"

    def file_argument(self, arg: str) -> str | None:
        """The shown file an argument such as `file://x.json` names (a misspelled `file:/x.json`
        included; an example whose command and heading disagree on the name has only one file)."""
        if not arg.startswith("file:"):
            return None
        wanted = arg.split("/")[-1]
        if wanted in self.files:
            return wanted
        return next(iter(self.files)) if len(self.files) == 1 else None

    def parameters(self) -> dict[str, Any]:
        """The API parameters the command line sends: `--cli-input-json` file members, and each
        `--some-member VALUE` as `someMember` (JSON values parsed, as the CLI does for structures)."""
        params: dict[str, Any] = {}
        members = service_model().operation_model(self.operation).input_shape.members
        args = self.argv[2:]
        for flag, value in zip(args[::2], args[1::2], strict=False):
            if flag == "--cli-input-json":
                shown = self.file_argument(value)
                params.update(json.loads(self.files[shown]) if shown else {})
                continue
            member = re.sub(r"-([a-z])", lambda m: m.group(1).upper(), flag.removeprefix("--"))
            if member in members and members[member].type_name in ("structure", "list", "map"):
                value = json.loads(value)
            params[member] = value
        return params

    def input_arns(self) -> list[str]:
        """Image Builder ARNs the command and its files mention, in order of appearance."""
        text = " ".join(self.argv) + " " + " ".join(self.files.values())
        return _unique(IMAGEBUILDER_ARN.findall(text))

    def output_arns(self) -> list[str]:
        return _unique(IMAGEBUILDER_ARN.findall(json.dumps(self.output))) if self.output is not None else []


def operations_by_command() -> dict[str, str]:
    """CLI command name -> API operation name, the way the CLI derives its commands from the model."""
    return {xform_name(op).replace("_", "-"): op for op in service_model().operation_names}


def load_examples() -> list[Example]:
    return [parse_example(path) for path in sorted(EXAMPLES_DIR.glob("*.rst"))]


def parse_example(path: Path) -> Example:
    lines = path.read_text().splitlines()
    example: Example | None = None
    files: dict[str, str] = {}
    output: Any = None
    output_error: str | None = None
    for intro, block in _literal_blocks(lines):
        if block.startswith("aws "):
            example = Example(path.stem, shlex.split(block.replace("\\\n", " "))[1:])
            continue
        heading = re.search(r"Contents of ``([^`]+)``", intro)
        if heading:
            files[heading.group(1)] = block
        elif intro.rstrip().endswith("Output::"):
            try:
                output = json.loads(block)
            except json.JSONDecodeError as exc:
                output_error = f"line {exc.lineno} col {exc.colno}: {exc.msg}"
    if example is None:
        raise ValueError(f"{path}: no 'aws imagebuilder' command found")
    example.files = files
    example.output = output
    example.output_error = output_error
    example.no_output = "This command produces no output." in "\n".join(lines)
    return example


def _literal_blocks(lines: list[str]) -> list[tuple[str, str]]:
    """(the paragraph line that introduces it, the dedented block) for every `::` literal block."""
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip().endswith("::"):
            intro = lines[i]
            j = i + 1
            body: list[str] = []
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                body.append(lines[j])
                j += 1
            text = "\n".join(body).strip("\n")
            if text.strip():
                indent = min(len(ln) - len(ln.lstrip()) for ln in body if ln.strip())
                blocks.append((intro, "\n".join(ln[indent:] for ln in text.splitlines()).strip()))
            i = j
        else:
            i += 1
    return blocks


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
