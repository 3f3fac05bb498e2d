"""Each DAG file's import time in a fresh interpreter, after ``import airflow.sdk`` (as the DAG
test does); target: < 0.5 s per file, airflow.sdk itself reported alongside.

    python bench/bench_dag_import.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import ROOT, table, write_result

DAGS_DIR = ROOT / "dags"
PLUGINS_DIR = ROOT / "plugins"
HEAVY = ("duckdb", "pyarrow", "pandas", "xport_etl.run", "xport_etl.load.publish")
CODE = """
import json, sys, time
sys.path.insert(0, {plugins!r})
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
import runpy
runpy.run_path({dag!r})
t2 = time.perf_counter()
print(json.dumps({{"airflow_s": t1 - t0, "dag_s": t2 - t1,
                  "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    rows, res = [], {}
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "PYTHONPATH": str(ROOT),
        }
        for dag in sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_")):
            runs = []
            for _ in range(a.repeat):
                out = subprocess.run(
                    [sys.executable, "-c", CODE.format(plugins=str(PLUGINS_DIR), dag=str(dag), heavy=HEAVY)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if out.returncode != 0:
                    print(out.stderr[-2000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            dag_s = [r["dag_s"] for r in runs]
            af_s = [r["airflow_s"] for r in runs]
            res[dag.name] = {
                "dag_s": dag_s,
                "airflow_sdk_s": af_s,
                "heavy": runs[-1]["heavy"],
                "pass": max(dag_s) < 0.5,
            }
            rows.append(
                {
                    "dag file": dag.name,
                    "median s": statistics.median(dag_s),
                    "max s": max(dag_s),
                    "airflow.sdk median s": statistics.median(af_s),
                    "heavy modules": ",".join(runs[-1]["heavy"]),
                    "< 0.5 s": "pass" if max(dag_s) < 0.5 else "MISS",
                }
            )
    print(table(rows, ["dag file", "median s", "max s", "airflow.sdk median s", "heavy modules", "< 0.5 s"]))
    print(f"\nresult: {write_result('dag_import', {'repeat': a.repeat, 'files': res})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
