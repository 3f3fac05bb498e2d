"""The storage URL's cost: the first load and an hourly incremental with every durable state in an
S3 bucket (moto's S3 server on this machine), beside the same runs on one local disk.

    python bench/bench_storage.py --orders 20000 [--seed 7] [--hours 1]

1. One sandbox world (``xport-sandbox serve`` in a subprocess, no rate limit) and one moto S3
   server (in this process, real HTTP on loopback; the bucket's bytes stay in memory).
2. **First load**, each mode in a fresh process: ``run_window`` over the whole history (what
   ``xport-etl run --start … --end …`` calls), on a fresh data directory; the storage mode with
   ``XPORT_STORAGE_URL=s3://…`` (its data directory is then that host's scratch and cache).
3. **Hourly incremental**: the sandbox clock moves ``--hours`` on, then ``run_window(…,
   incremental=True)`` over that hour in each mode: on the same host (the storage mode's cache is
   warm: it published last, so it downloads nothing), then after one more hour on a **fresh
   host** (an empty scratch directory: it downloads the newest version first, as a Kubernetes
   pod would).
4. Reported per run: wall seconds, the publish's seconds (the library's own ``publish`` progress
   event: checks, views, the swap or the upload and commit), peak RSS, and bytes: the warehouse
   file (what one publish writes, locally or uploaded), and under the storage URL the bytes and
   objects the run added to the bucket. Ratios are storage / local. The API's time is in both
   modes alike (same world, same requests); moto is slower than S3 at small objects and faster
   at large ones (no network), so the storage figures are indicative, not S3's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import PY, ROOT, WORK, Sandbox, table, world_bounds, write_result

# the measured process: one run_window, its publish seconds from the progress events
CHILD = """
import json, resource, sys, time
from datetime import datetime
from xport_etl.run.engine import run_window
from xport_etl.settings import Settings

a = json.loads(sys.argv[1])
publishes = []
def progress(event):
    if event.get("event") == "publish" and event.get("phase") == "done":
        publishes.append(event["seconds"])
t0 = time.perf_counter()
r = run_window(Settings.from_env(), datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"]),
               incremental=a["incremental"], progress=progress)
wall = time.perf_counter() - t0
print(json.dumps({"seconds": wall, "publish_s": sum(publishes), "publishes": len(publishes),
                  "rows_written": r.get("rows_written"), "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _bucket(client, bucket: str) -> dict[str, int]:
    """Key → size of every object in the bucket."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def _run(mode: str, data_dir: Path, env: dict[str, str], start: datetime, end: datetime, incremental: bool) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PY, "-c", CHILD, json.dumps({"start": start.isoformat(), "end": end.isoformat(), "incremental": incremental})],
        env={**env, "XPORT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed: {proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = time.perf_counter() - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hours", type=float, default=1.0)
    a = ap.parse_args()

    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    from bench.world import _free_port

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    aws = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }
    os.environ.update(aws)
    s3 = boto3.client("s3")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/xport"

    root = WORK / "storage"
    shutil.rmtree(root, ignore_errors=True)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("XPORT_")}
    rows: list[dict[str, Any]] = []
    try:
        with Sandbox(a.orders, seed=a.seed, rate_limit=0) as sb:
            env = {**base_env, "XPORT_BASE_URL": sb.base_url, "XPORT_RATE_LIMIT": "0"}
            modes = {
                "local": (env, root / "local"),
                "storage": ({**env, "XPORT_STORAGE_URL": url}, root / "host1"),
            }
            clock = datetime.fromisoformat(sb.stats()["clock"]).astimezone(UTC)
            history = world_bounds()[0]  # the whole history, in bounded runs of 31 days as `xport-etl run`

            def measure(run: str, mode: str, data_dir: Path, start, end, incremental: bool) -> None:
                mode_env = modes[mode][0]
                before = _bucket(s3, bucket) if mode == "storage" else {}
                res = _run(mode, data_dir, mode_env, start, end, incremental)
                row = {"run": run, "mode": mode, **res}
                wh = data_dir / "warehouse.duckdb"
                row["warehouse_mb"] = wh.stat().st_size / 2**20 if wh.exists() else 0.0
                if mode == "storage":
                    after = _bucket(s3, bucket)
                    new = {k: v for k, v in after.items() if before.get(k) != v}
                    row["uploaded_mb"] = sum(new.values()) / 2**20
                    row["objects"] = len(new)
                    row["version_mb"] = sum(v for k, v in new.items() if "/warehouse/v/" in k) / 2**20
                rows.append(row)
                print(
                    f"  {run:<24} {mode:<8} {row['seconds']:7.2f} s  publish {row['publish_s']:6.2f} s  "
                    f"RSS {row['maxrss_mb']:5.0f} MB  warehouse {row['warehouse_mb']:6.1f} MB"
                    + (
                        f"  uploaded {row['uploaded_mb']:6.1f} MB in {row['objects']} objects"
                        if mode == "storage"
                        else ""
                    ),
                    flush=True,
                )

            print(f"first load of {a.orders:,} orders (clock {clock.isoformat()})", flush=True)
            for mode, (_env, data_dir) in modes.items():
                measure("first load", mode, data_dir, history, clock + timedelta(seconds=1), False)
            for run, fresh in (("hourly incremental", False), ("hourly, fresh host", True)):
                new = httpx.post(sb.base_url + "/_sandbox/clock", json={"advance_seconds": a.hours * 3600}, timeout=600)
                t_end = datetime.fromisoformat(new.json()["clock"]).astimezone(UTC) + timedelta(seconds=1)
                print(f"{run}: {clock.isoformat()} → {t_end.isoformat()}", flush=True)
                for mode, (_env, data_dir) in modes.items():
                    where = (
                        root / f"host-{run.split(',')[0].replace(' ', '-')}"
                        if fresh and mode == "storage"
                        else data_dir
                    )
                    measure(run, mode, where, clock, t_end, True)
                clock = t_end - timedelta(seconds=1)
    finally:
        moto.stop()

    ratios = []
    for run in dict.fromkeys(r["run"] for r in rows):
        loc = next(r for r in rows if r["run"] == run and r["mode"] == "local")
        sto = next(r for r in rows if r["run"] == run and r["mode"] == "storage")
        ratios.append(
            {
                "run": run,
                "local s": round(loc["seconds"], 2),
                "storage s": round(sto["seconds"], 2),
                "ratio": round(sto["seconds"] / loc["seconds"], 2),
                "publishes": sto["publishes"],
                "local s/publish": round(loc["publish_s"] / max(loc["publishes"], 1), 2),
                "storage s/publish": round(sto["publish_s"] / max(sto["publishes"], 1), 2),
                "publish ratio": round(sto["publish_s"] / loc["publish_s"], 2) if loc["publish_s"] else None,
                "warehouse MB": round(loc["warehouse_mb"], 1),
                "uploaded MB": round(sto["uploaded_mb"], 1),
                "objects": sto["objects"],
                "RSS local/storage MB": f"{loc['maxrss_mb']:.0f}/{sto['maxrss_mb']:.0f}",
            }
        )
    print()
    print(table(ratios, list(ratios[0])))
    path = write_result(
        f"storage_{a.orders}",
        {"orders": a.orders, "seed": a.seed, "hours": a.hours, "runs": rows, "ratios": ratios},
    )
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
