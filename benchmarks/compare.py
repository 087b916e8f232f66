"""Benchmark: imagesync's no-op plan and apply against a Terraform-style refresh and the latency floor.

For each estate size, against one sandbox (`imagesync sandbox serve --latency-ms L`, in memory):
- apply of the whole estate (wall, client CPU);
- imagesync's no-op plan (wall, client CPU, peak memory as VmHWM, API calls);
- a Terraform-style refresh of the same resources: one Get per resource, parallelism 10, which
  is what the AWS provider does on plan (wall, calls), and the CPU botocore spends per call in
  it, which bounds how little client CPU a plan of that many calls can take;
- the latency floor of imagesync's call graph: the longest chain of calls that must follow one
  another (a kind's list pages, then a read), at L per call, with unlimited concurrency;
and prints the ratios. The estate is the one benchmarks/plan_noop.py generates (groups of a
component, a recipe, an infrastructure and a distribution configuration, and a pipeline).

    python benchmarks/compare.py                              # 1,000 and 10,000 resources, 50 ms
    python benchmarks/compare.py --resources 1000 --latency-ms 50
    python benchmarks/compare.py --resources 10000 --latency-ms 0   # client CPU and memory at scale
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import boto3  # noqa: E402
from plan_noop import GROUP, write_estate  # noqa: E402

# The CLI in a child process that reports its own peak memory and CPU when it exits.
MEASURED = """
import resource, sys
from imagesync.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
usage = resource.getrusage(resource.RUSAGE_SELF)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(f"measured peak_kib={hwm} cpu={usage.ru_utime + usage.ru_stime:.3f}", file=sys.stderr)
sys.exit(code)
"""

PAGE = 25  # what imagesync asks for per List page
KINDS_LISTED = 8  # every kind but images (no image manifests here)


def cli(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float, float, int]:
    started = time.monotonic()
    # Locks under the run's own directory: another run on this machine never holds them.
    env = {**os.environ, "XDG_STATE_HOME": str(cwd / "state")}
    done = subprocess.run([sys.executable, "-c", MEASURED, *args], cwd=cwd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - started
    line = [x for x in done.stderr.splitlines() if x.startswith("measured ")][-1]
    fields = dict(part.split("=") for part in line.split()[1:])
    return done, wall, float(fields["cpu"]), int(fields["peak_kib"])


def stats(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}/_sandbox/stats") as resp:
        return dict(json.load(resp)["operations"])


def terraform_refresh(endpoint: str, parallelism: int = 10) -> tuple[float, int, float]:
    """One Get per resource, `parallelism` at a time, the way the AWS provider refreshes state.
    Returns the wall time, the calls, and the CPU this process spent in them (botocore's own
    cost of a call, the part of a plan's client CPU no change to imagesync can remove)."""
    client = boto3.client(
        "imagebuilder", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="111111111111", aws_secret_access_key="x",
    )
    gets: list[tuple[str, str, str]] = []  # (operation, member, arn), listed before the clock starts
    for list_op, key, get_op, member in (
        ("list_components", "componentVersionList", "get_component", "componentBuildVersionArn"),
        ("list_image_recipes", "imageRecipeSummaryList", "get_image_recipe", "imageRecipeArn"),
        ("list_infrastructure_configurations", "infrastructureConfigurationSummaryList",
         "get_infrastructure_configuration", "infrastructureConfigurationArn"),
        ("list_distribution_configurations", "distributionConfigurationSummaryList",
         "get_distribution_configuration", "distributionConfigurationArn"),
        ("list_image_pipelines", "imagePipelineList", "get_image_pipeline", "imagePipelineArn"),
    ):
        params: dict[str, Any] = {"maxResults": 25}
        if list_op in ("list_components", "list_image_recipes"):
            params["owner"] = "Self"
        while True:
            page = getattr(client, list_op)(**params)
            for item in page.get(key) or []:
                arn = item["arn"] + ("/1" if list_op == "list_components" else "")
                gets.append((get_op, member, arn))
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
    started, cpu = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(lambda g: getattr(client, g[0])(**{g[1]: g[2]}), gets))
    return time.monotonic() - started, len(gets), time.process_time() - cpu


def run(resources: int, latency_ms: float, work: Path) -> dict[str, Any]:
    root = work / f"estate-{resources}"
    root.mkdir()
    count = write_estate(root, resources)
    server = subprocess.Popen(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip().split("=", 1)[1]
        applied, apply_wall, apply_cpu, _ = cli(
            "apply", str(root), "--sandbox", endpoint, "--auto-approve", "--parallelism", "16", "--format", "json",
            cwd=work,
        )
        if applied.returncode != 0:
            raise SystemExit(f"apply failed: {applied.stderr[-2000:]}")
        before = stats(endpoint)
        planned, plan_wall, plan_cpu, peak_kib = cli(
            "plan", str(root), "--sandbox", endpoint, "--format", "json", cwd=work
        )
        if planned.returncode != 0:
            raise SystemExit(f"plan failed: {planned.stderr[-2000:]}")
        after = stats(endpoint)
        tf_wall, tf_calls, tf_cpu = terraform_refresh(endpoint)
    finally:
        server.terminate()
        server.wait(timeout=30)
    calls = sum(n - before.get(op, 0) for op, n in after.items())
    groups = count // GROUP
    pages_per_kind = max(1, math.ceil(groups / PAGE))
    pages = 5 * pages_per_kind + (KINDS_LISTED - 5)
    reads = 3 * groups  # components, infrastructure and distribution configurations
    changes = json.loads(planned.stdout)["summary"]
    floor = (pages_per_kind + 1) * latency_ms / 1000  # the longest list, then one read
    return {
        "resources": count,
        "latency_ms": latency_ms,
        "apply_wall": apply_wall,
        "apply_cpu": apply_cpu,
        "plan_wall": plan_wall,
        "plan_cpu": plan_cpu,
        "plan_peak_mib": peak_kib / 1024,
        "plan_calls": calls,
        "calls_floor": pages + reads,
        "plan_changes": sum(v for k, v in changes.items() if k != "drift"),
        "terraform_wall": tf_wall,
        "terraform_calls": tf_calls,
        "call_cpu": tf_cpu / max(1, tf_calls),
        "floor": floor,
    }


def report(r: dict[str, Any]) -> None:
    print(f"== {r['resources']} resources at {r['latency_ms']:.0f} ms per call")
    print(f"  apply (create all)         {r['apply_wall']:7.2f} s wall  {r['apply_cpu']:6.2f} s client CPU")
    print(
        f"  no-op plan                 {r['plan_wall']:7.2f} s wall  {r['plan_cpu']:6.2f} s client CPU"
        f"  {r['plan_peak_mib']:.0f} MiB peak  {r['plan_calls']} calls  {r['plan_changes']} changes"
    )
    tf_calls = r["terraform_calls"]
    print(f"  terraform-style refresh    {r['terraform_wall']:7.2f} s wall  ({tf_calls} Gets, parallelism 10)")
    print(f"  latency floor              {r['floor']:7.2f} s")
    botocore_cpu = r["call_cpu"] * r["plan_calls"]
    print(
        f"  botocore CPU per call      {r['call_cpu'] * 1000:7.2f} ms  (the plan's {r['plan_calls']} calls:"
        f" {botocore_cpu:.2f} s of its client CPU)"
    )
    if r["terraform_wall"] > 0:
        print(f"  plan / terraform refresh   {r['plan_wall'] / r['terraform_wall']:7.2f}x wall")
    floor_calls = r["calls_floor"]
    print(f"  plan calls / floor         {r['plan_calls'] / floor_calls:7.2f}x ({floor_calls} = list pages + reads)")
    if r["floor"] > 0:
        print(f"  plan / latency floor       {r['plan_wall'] / r['floor']:7.2f}x wall")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, action="append", help="estate size (repeatable; default 1000, 10000)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.resources or [1000, 10000]:
            report(run(size, args.latency_ms, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
