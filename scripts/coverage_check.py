"""Hold chosen modules to a floor of branch coverage; .ci/run calls it after `coverage combine`.

`coverage report --fail-under` judges one figure that mixes statements and branches, over every
file at once. The safety-critical modules (applying changes, locking, talking to AWS) are held to
their own figure instead: covered branches over all branches, per file, from `coverage json`.

    python scripts/coverage_check.py build/coverage/coverage.json --branches 95 src/imagesync/lock.py ...

Exit 0 when every named file meets the floor, 1 (naming each file under it, or missing from the
data) otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def branch_figures(report: dict[str, Any], path: str) -> tuple[int, int] | None:
    """Covered and total branches of `path` in a `coverage json` report, or None if it was never measured."""
    files: dict[str, Any] = report.get("files", {})
    entry = files.get(path)
    if entry is None:
        return None
    summary = entry["summary"]
    return int(summary["covered_branches"]), int(summary["num_branches"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the output of `coverage json`")
    parser.add_argument("--branches", type=float, required=True, help="minimum percentage of branches per file")
    parser.add_argument("files", nargs="+", help="source paths as the report names them (src/imagesync/...)")
    args = parser.parse_args(argv)

    report = json.loads(args.report.read_text(encoding="utf-8"))
    if not report.get("meta", {}).get("branch_coverage"):
        print(f"{args.report}: measured without branch coverage", file=sys.stderr)
        return 1
    failed = False
    for path in args.files:
        figures = branch_figures(report, path)
        if figures is None:
            print(f"{path}: not in the coverage data (never imported?)")
            failed = True
            continue
        covered, total = figures
        # A file without branches has nothing to miss.
        percent = 100.0 if total == 0 else 100.0 * covered / total
        verdict = "ok" if percent >= args.branches else f"below {args.branches:g}%"
        print(f"{path}: {covered}/{total} branches, {percent:.1f}% {verdict}")
        failed |= percent < args.branches
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
