"""Re-measure every figure of BENCHMARKS.md: each benchmark's one command, in turn, then the report.

    python bench/remeasure.py [--quick] [--only load,run,extract,reports,incremental,dag] [--dry-run]

Each command is the one documented in bench/README.md; it writes its results under bench/results/
and they replace the previous ones of the same world and size. ``--quick`` runs only the 70,000-order
measurements (~25 minutes on a quiet 2-core machine); the whole list takes ~3 hours (the 1M-order
load matrix alone ~80 minutes, landing its pages once per world and split included). A command that
fails is reported and the next one runs; BENCHMARKS.md is regenerated at the end from whatever the
results then hold. Run it on a quiet machine: each result records the load average around each of
its measurements.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (group, is it a 70,000-order (or smaller) measurement, the command after `python`)
COMMANDS: list[tuple[str, bool, str]] = [
    # (b) normalise + load: every world (mix), landed in 31-day windows and as one window
    (
        "load",
        True,
        "bench/bench_load.py --orders 70000 --mix plain,varied,odd2,odd5 --windows many,one "
        "--skip-dlt-default --repeat 2",
    ),
    (
        "load",
        False,
        "bench/bench_load.py --orders 1000000 --mix plain,varied,odd2,odd5 --windows many,one --skip-dlt-default",
    ),
    # (c) the whole run against the sandbox, every varied world, in 31-day windows and as one window
    ("run", True, "bench/bench_run.py --orders 70000 --mix varied,odd2,odd5 --windows many,one"),
    # (a) extraction: sustained rate under the sandbox's limit, and with no limit
    ("extract", True, "bench/bench_extract.py --orders 50000 --rate-limit 10 --duration 60"),
    ("extract", True, "bench/bench_extract.py --orders 50000 --rate-limit 50 --duration 60"),
    ("extract", True, "bench/bench_extract.py --orders 70000 --rate-limit 0"),
    ("reports", True, "bench/bench_reports.py --orders 70000"),
    ("reports", False, "bench/bench_reports.py --orders 1000000"),
    ("incremental", True, "bench/bench_incremental.py --orders 20000 --validate --steady"),
    ("incremental", False, "bench/bench_incremental.py --orders 1000000 --profile --steady"),
    ("dag", True, "bench/bench_dag_import.py --repeat 3"),
]
GROUPS = sorted({g for g, _small, _args in COMMANDS})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the 70,000-order (and smaller) measurements")
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups: {', '.join(GROUPS)}")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = ap.parse_args()
    only = {g.strip() for g in a.only.split(",") if g.strip()}
    unknown = only - set(GROUPS)
    if unknown:
        ap.error(f"unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(GROUPS)}")
    todo = [command for group, small, command in COMMANDS if group in only and (small or not a.quick)]
    failed = []
    for command in todo:
        args = shlex.split(command)
        line = f"python {command}"
        print(f"\n### {line}", flush=True)
        if a.dry_run:
            continue
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, *args], cwd=ROOT).returncode
        print(f"### exit {rc} after {time.perf_counter() - t0:.0f} s: {line}", flush=True)
        if rc:
            failed.append(line)
    if not a.dry_run:
        subprocess.run([sys.executable, "bench/report.py"], cwd=ROOT, check=True)
    if failed:
        print("\nfailed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
