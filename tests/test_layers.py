"""The sandbox and the reconciler stay independent: neither imports the other's code.

The sandbox is the judge of the reconciler; if the two shared a reading of the service, a wrong
reading would pass every test. Every module under src/imagesync is parsed with `ast` (nothing is
imported), and its imports are checked against the allowed layering:

- outside `imagesync.sandbox`, only `imagesync.cli` may import the sandbox, and only inside a
  function (so the reconciler's import graph never reaches it);
- inside `imagesync.sandbox`, the only `imagesync` modules outside the sandbox it may import are
  the neutral ones.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "imagesync"
SANDBOX = "imagesync.sandbox"
# Modules both sides may use: they hold no reading of the service of their own.
NEUTRAL = frozenset({"imagesync.service_model"})
# Where a sandbox may be started for the command line's `--sandbox STATE_FILE`.
MAY_START_SANDBOX = frozenset({"imagesync.cli"})


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports, as a dotted module name
    line: int
    lazy: bool  # inside a function body
    statement: str  # the import as written

    def __str__(self) -> str:
        where = "inside a function" if self.lazy else "at module level"
        return f"{self.module} (line {self.line}, {where}): `{self.statement}` imports {self.target}"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """Dotted names an ImportFrom brings in: the module, and each name as a possible submodule."""
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*"]


def imports_of(path: Path, package: Path = PACKAGE) -> list[Import]:
    module = module_name(path, package)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(
                    Import(module, alias.name, child.lineno, lazy, ast.unparse(child)) for alias in child.names
                )
            elif isinstance(child, ast.ImportFrom):
                source, *names = _resolve(module, path.name == "__init__.py", child)
                # `from imagesync import sandbox` reaches the sandbox through a name, not the module it names.
                target = next((n for n in names if _in(n, SANDBOX) and not _in(source, SANDBOX)), source)
                found.append(Import(module, target, child.lineno, lazy, ast.unparse(child)))
            visit(child, inside)

    visit(tree, False)
    return found


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def layering_violations(imports: list[Import]) -> list[str]:
    problems: list[str] = []
    for imp in imports:
        inside_sandbox = _in(imp.module, SANDBOX)
        if not inside_sandbox and _in(imp.target, SANDBOX):
            if imp.module not in MAY_START_SANDBOX:
                problems.append(f"{imp}: only {', '.join(sorted(MAY_START_SANDBOX))} may import the sandbox")
            elif not imp.lazy:
                problems.append(f"{imp}: the sandbox may be imported only inside a function, when it is started")
        if inside_sandbox and _in(imp.target, "imagesync") and not _in(imp.target, SANDBOX):
            if not any(_in(imp.target, neutral) for neutral in NEUTRAL):
                problems.append(
                    f"{imp}: the sandbox may import from imagesync only {', '.join(sorted(NEUTRAL))} "
                    "(it must not share the reconciler's reading of the service)"
                )
    return problems


def test_every_module_keeps_the_layering() -> None:
    imports = _all_imports()
    assert len({imp.module for imp in imports}) > 30  # the walk really covered the package
    assert layering_violations(imports) == []


def test_neutral_modules_import_neither_side() -> None:
    problems = [
        str(imp)
        for path in sorted(PACKAGE.rglob("*.py"))
        if module_name(path) in NEUTRAL
        for imp in imports_of(path)
        if _in(imp.target, "imagesync")
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "imagesync.live",
            "from imagesync.sandbox.model import service_model\n",
            "imagesync.live (line 1, at module level): `from imagesync.sandbox.model import service_model` imports "
            "imagesync.sandbox.model: only imagesync.cli",
        ),
        (
            "imagesync.aws",
            "def start():\n    from imagesync.sandbox import running\n",
            "imagesync.aws (line 2, inside a function): `from imagesync.sandbox import running` imports "
            "imagesync.sandbox: only imagesync.cli",
        ),
        (
            "imagesync.api",
            "from imagesync import sandbox\n",
            "imagesync.api (line 1, at module level): `from imagesync import sandbox` imports imagesync.sandbox: "
            "only imagesync.cli",
        ),
        (
            "imagesync.cli",
            "import imagesync.sandbox.server\n",
            "imagesync.cli (line 1, at module level): `import imagesync.sandbox.server` imports "
            "imagesync.sandbox.server: the sandbox may be imported only inside a function",
        ),
        (
            "imagesync.sandbox.backend",
            "from imagesync.manifest.rules import version_problem\n",
            "imagesync.sandbox.backend (line 1, at module level): `from imagesync.manifest.rules import "
            "version_problem` imports imagesync.manifest.rules: the sandbox may import from imagesync only "
            "imagesync.service_model",
        ),
        (
            "imagesync.sandbox.core",
            "from ..kinds import arn_name\n",
            "imagesync.sandbox.core (line 1, at module level): `from ..kinds import arn_name` imports "
            "imagesync.kinds: the sandbox may import",
        ),
        ("imagesync.cli", "def f():\n    from imagesync.sandbox import running\n", None),
        ("imagesync.sandbox.core", "from imagesync.service_model import service_model\n", None),
        ("imagesync.sandbox.core", "from .model import service_model\n", None),
    ],
)
def test_a_crossing_import_is_named(tmp_path: Path, module: str, source: str, expected: str | None) -> None:
    """The checker itself: each kind of crossing is caught and named by module, line and import."""
    path = tmp_path.joinpath("imagesync", *module.split(".")[1:]).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    problems = layering_violations(imports_of(path, tmp_path / "imagesync"))
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(expected), problems
