"""Benchmark: apply and plan under throttling, with the client-side adaptive rate limiter.

Generates the estate of `plan_noop.py` (N resources in groups of component, recipe,
infrastructure and distribution configuration, pipeline) and runs the CLI as a user would:

1. against `imagesync sandbox serve --rate-limit R` (a token bucket per operation): an apply of
   the whole estate, then a no-op plan. Prints the throttling errors the user saw (must be 0), the
   throttled answers the sandbox gave, and per operation the rate its accepted calls achieved
   against the limit (from the apply's `api call` debug events; must be within 20% of the limit
   for the operations the apply had more work for than the limit allows);
2. against `--throttle-rate P` (that share of calls refused at random) RUNS times, each with its
   own seed: an apply and a no-op plan each, and how many of them failed (must be 0).

    python benchmarks/throttling.py                       # 1000 resources, limit 20, 3 runs at 50%
    python benchmarks/throttling.py --resources 200 --runs 1
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_noop import write_estate  # noqa: E402  (a sibling script, not a package)

THROTTLE_WORDS = ("CallRateLimitExceeded", "throttl", "Throttl", "still failing after retries")


def serve(*flags: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "imagesync", "sandbox", "serve", *flags], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    return server, server.stdout.readline().strip().split("=", 1)[1]


def stop(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.wait(timeout=10)


def stats(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/_sandbox/stats") as resp:
        answer: dict[str, Any] = json.load(resp)
        return answer


def imagesync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Locks under the run's own directory: another run on this machine never holds them.
    env = {**os.environ, "XDG_STATE_HOME": str(cwd / "state")}
    return subprocess.run(
        [sys.executable, "-m", "imagesync", *args], cwd=cwd, capture_output=True, text=True, timeout=3600, env=env
    )


def apply(root: Path, endpoint: str, parallelism: int, *, verbose: bool) -> subprocess.CompletedProcess[str]:
    extra = ["-v", "--log-format", "json"] if verbose else []
    return imagesync("apply", str(root), "--sandbox", endpoint, "--auto-approve", "--parallelism",
                     str(parallelism), *extra, cwd=root.parent)


def plan(root: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    return imagesync("plan", str(root), "--sandbox", endpoint, "--detailed-exitcode", cwd=root.parent)


def user_throttling_errors(result: subprocess.CompletedProcess[str], verbose: bool) -> int:
    """Lines the user would read that speak of throttling; debug events of a -v run are not among them."""
    lines = result.stdout.splitlines()
    for line in result.stderr.splitlines():
        if verbose and line.startswith("{"):
            event = json.loads(line)
            if event.get("level") == "debug" or event.get("event") == "retrying":
                continue
        lines.append(line)
    return sum(1 for line in lines if any(word in line for word in THROTTLE_WORDS))


def achieved_rates(stderr: str) -> dict[str, tuple[int, float]]:
    """Per operation: accepted calls, and their rate between the first and the last of them."""
    times: dict[str, list[float]] = collections.defaultdict(list)
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "api call" and event.get("ok"):
            times[event["operation"]].append(datetime.fromisoformat(event["timestamp"]).timestamp())
    rates = {}
    for operation, stamps in times.items():
        span = max(stamps) - min(stamps)
        rates[operation] = (len(stamps), (len(stamps) - 1) / span if span > 0 else float("inf"))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--rate-limit", type=float, default=20.0)
    parser.add_argument("--rate-burst", type=int, default=None)
    parser.add_argument("--throttle-rate", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=16)
    args = parser.parse_args()
    ok = True

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "limited" / "estate"
        root.mkdir(parents=True)
        count = write_estate(root, args.resources)
        burst = ["--rate-burst", str(args.rate_burst)] if args.rate_burst else []
        server, endpoint = serve("--rate-limit", str(args.rate_limit), *burst)
        try:
            started = time.monotonic()
            applied = apply(root, endpoint, args.parallelism, verbose=True)
            apply_seconds = time.monotonic() - started
            after_apply = stats(endpoint)
            started = time.monotonic()
            planned = plan(root, endpoint)
            plan_seconds = time.monotonic() - started
            after_plan = stats(endpoint)
        finally:
            stop(server)
        if applied.returncode != 0:
            print([line for line in applied.stderr.splitlines() if '"debug"' not in line][-10:], file=sys.stderr)
        errors = user_throttling_errors(applied, True) + user_throttling_errors(planned, False)
        apply_throttled = sum(after_apply["throttled"].values())
        plan_throttled = sum(after_plan["throttled"].values()) - apply_throttled
        plan_calls = after_plan["total"] - after_apply["total"]
        print(f"resources                       {count}")
        print(f"rate limit                      {args.rate_limit:g}/s per operation, burst "
              f"{args.rate_burst or max(1, int(args.rate_limit))}")
        print(f"apply                           exit {applied.returncode}, {apply_seconds:.1f} s, "
              f"{after_apply['total']} calls, {apply_throttled} throttled answers")
        print(f"no-op plan                      exit {planned.returncode} (0: no changes), {plan_seconds:.1f} s, "
              f"{plan_calls} calls, {plan_throttled} throttled answers")
        print(f"throttling errors shown         {errors} (must be 0)")
        ok &= applied.returncode == 0 and planned.returncode == 0 and errors == 0
        print("achieved rate per operation (apply; accepted calls between the first and the last):")
        for operation, (calls, rate) in sorted(achieved_rates(applied.stderr).items()):
            # Only an operation with more calls than the limit admits in a burst plus a few seconds
            # had work queued faster than the limit; the others show how fast the work came.
            judged = calls >= 4 * args.rate_limit
            within = abs(rate - args.rate_limit) <= 0.2 * args.rate_limit
            verdict = ("within 20%" if within else "NOT within 20%") if judged else "not judged: too few calls"
            ok &= within or not judged
            print(f"  {operation:34s} {calls:5d} calls  {rate:6.1f}/s  {verdict}")

        failed = 0
        for run in range(args.runs):
            root_n = Path(tmp) / f"random-{run}" / "estate"
            root_n.mkdir(parents=True)
            write_estate(root_n, args.resources)
            server, endpoint = serve("--throttle-rate", str(args.throttle_rate), "--seed", str(run))
            try:
                started = time.monotonic()
                applied = apply(root_n, endpoint, args.parallelism, verbose=False)
                planned = plan(root_n, endpoint)
                seconds = time.monotonic() - started
                answers = stats(endpoint)
            finally:
                stop(server)
            bad = (applied.returncode != 0) + (planned.returncode != 0)
            failed += bad
            print(f"random throttling {args.throttle_rate:.0%}, run {run + 1}: apply exit {applied.returncode}, "
                  f"plan exit {planned.returncode}, {seconds:.1f} s, {answers['total']} calls, "
                  f"{sum(answers['throttled'].values())} throttled")
            if bad:
                print((applied.stderr + planned.stderr)[-1500:], file=sys.stderr)
        print(f"failed plans/applies            {failed} of {2 * args.runs} (must be 0)")
        ok &= failed == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
