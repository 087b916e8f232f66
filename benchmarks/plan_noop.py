"""Benchmark: a no-op plan of a large estate against the sandbox with injected latency.

Generates an estate of N resources (groups of component, recipe, infrastructure and
distribution configuration, pipeline), applies it to a sandbox served by
`imagesync sandbox serve --latency-ms L`, then runs `imagesync plan` as a child process and
prints what it cost: API calls per operation against the budget (list pages plus one read per
resource a list cannot describe), wall time, and the plan process's peak memory.

    python benchmarks/plan_noop.py --resources 1000 --latency-ms 50
    python benchmarks/plan_noop.py --resources 10000 --latency-ms 0     # memory at scale
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

GROUP = 5  # resources per generated group


def write_estate(root: Path, resources: int) -> int:
    groups = max(1, resources // GROUP)
    (root / "imagesync.yaml").write_text(
        "project: bench\ntargets:\n  - name: bench\n    region: us-east-1\n    account: '111111111111'\n"
    )
    docs = []
    for i in range(groups):
        docs.append(f"""apiVersion: imagesync/v1
kind: Component
metadata: {{name: comp-{i:05d}}}
spec:
  platform: Linux
  version: 1.0.0
  document:
    schemaVersion: 1.0
    phases:
      - name: build
        steps:
          - name: Step
            action: ExecuteBash
            inputs:
              commands: ["echo {i}"]
---
apiVersion: imagesync/v1
kind: ImageRecipe
metadata: {{name: recipe-{i:05d}}}
spec:
  version: 1.0.0
  parentImage: arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x
  components:
    - ref: comp-{i:05d}
---
apiVersion: imagesync/v1
kind: InfrastructureConfiguration
metadata: {{name: infra-{i:05d}}}
spec:
  instanceProfileName: build
  instanceTypes: [m7i.large]
---
apiVersion: imagesync/v1
kind: DistributionConfiguration
metadata: {{name: dist-{i:05d}}}
spec:
  distributions:
    - region: us-east-1
      amiDistributionConfiguration: {{name: "bench-{i}-{{{{ imagebuilder:buildDate }}}}"}}
---
apiVersion: imagesync/v1
kind: ImagePipeline
metadata: {{name: pipe-{i:05d}}}
spec:
  imageRecipeArn: {{ref: recipe-{i:05d}}}
  infrastructureConfigurationArn: {{ref: infra-{i:05d}}}
  distributionConfigurationArn: {{ref: dist-{i:05d}}}
  schedule: {{scheduleExpression: "cron(0 4 ? * MON *)"}}
""")
    (root / "estate.yaml").write_text("---\n".join(docs))
    return groups * GROUP


# Runs the CLI, then reports the process's own peak memory (VmHWM; ru_maxrss would include the
# parent's high-water mark, which Linux keeps across execve) on the last line of stderr.
MEASURED = """\
import sys
from imagesync.cli import main
code = main(sys.argv[1:])
hwm = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
print(f"peak_kib={hwm}", file=sys.stderr)
sys.exit(code)
"""


def imagesync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Locks under the run's own directory: another run on this machine never holds them.
    env = {**os.environ, "XDG_STATE_HOME": str(cwd / "state")}
    return subprocess.run([sys.executable, "-c", MEASURED, *args], cwd=cwd, capture_output=True, text=True, env=env)


def stats(endpoint: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{endpoint}/_sandbox/stats") as resp:
        return json.load(resp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "estate"
        root.mkdir()
        count = write_estate(root, args.resources)
        server = subprocess.Popen(
            [sys.executable, "-m", "imagesync", "sandbox", "serve", "--latency-ms", str(args.latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            endpoint = server.stdout.readline().strip().split("=", 1)[1]
            started = time.monotonic()
            applied = imagesync(
                "apply",
                str(root),
                "--sandbox",
                endpoint,
                "--auto-approve",
                "--parallelism",
                "16",
                "--format",
                "json",
                cwd=Path(tmp),
            )
            apply_seconds = time.monotonic() - started
            if applied.returncode != 0:
                print(applied.stdout[-2000:], applied.stderr[-2000:], file=sys.stderr)
                return 1
            before = stats(endpoint)
            started = time.monotonic()
            planned = imagesync("plan", str(root), "--sandbox", endpoint, "--format", "json", cwd=Path(tmp))
            plan_seconds = time.monotonic() - started
            peak_kb = int(planned.stderr.strip().splitlines()[-1].split("=", 1)[1])
            after = stats(endpoint)
        finally:
            server.terminate()
            server.wait(timeout=10)

    if planned.returncode != 0:
        print(planned.stderr[-2000:], file=sys.stderr)
        return 1
    summary = json.loads(planned.stdout)["summary"]
    ops_before = before["operations"]  # type: ignore[index]
    ops_after = after["operations"]  # type: ignore[index]
    calls = {op: n - ops_before.get(op, 0) for op, n in ops_after.items() if n - ops_before.get(op, 0)}  # type: ignore[union-attr]
    groups = count // GROUP
    # Budget: every List paginated (25 per page) plus one Get per component, infrastructure and
    # distribution configuration; recipes and pipelines are described by their lists.
    pages = sum(max(1, math.ceil(groups / 25)) for _ in ("comp", "recipe", "infra", "dist", "pipe"))
    pages += 3  # workflows, container recipes and lifecycle policies: one empty page each
    budget = pages + 3 * groups
    print(f"resources            {count}")
    print(f"injected latency     {args.latency_ms:.0f} ms per call")
    print(f"apply (create all)   {apply_seconds:.1f} s")
    print(f"no-op plan           {plan_seconds:.2f} s wall")
    print(f"plan changes         {sum(v for k, v in summary.items() if k != 'drift')} (expected 0)")
    print(f"api calls            {sum(calls.values())} (budget: {pages} list pages + {3 * groups} reads = {budget})")
    for op, n in sorted(calls.items()):
        print(f"  {op:34s} {n}")
    print(f"peak memory (plan)   {peak_kb / 1024:.0f} MiB (the plan process's VmHWM)")
    return 0 if sum(calls.values()) <= budget else 1


if __name__ == "__main__":
    sys.exit(main())
