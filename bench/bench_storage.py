"""The storage URL's cost: the first load and an hourly incremental with every durable state in an
S3 bucket (moto's S3 server on this machine), beside the same runs on one local disk.

    python bench/bench_storage.py --orders 20000 [--seed 7] [--hours 1] [--base auto|api|lists+truth]

Two ways to get a history, as bench_incremental.py (``--base auto``: ``api`` up to 100,000
orders, ``lists+truth`` above).

**``api``** (small sizes):

1. A sandbox world per mode (``xport-sandbox serve`` in a subprocess, no rate limit, the same
   seed: the sandbox answers a second pass over the same history more slowly, which would charge
   the mode measured second) and one moto S3 server (a process of its own, real HTTP on loopback;
   the bucket's bytes stay in its memory).
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

**``lists+truth``** (1,000,000 orders: a first load through the API takes hours against the
one-process sandbox):

1. **The history**: bench_incremental.py's ``lists+truth`` base (the list endpoints' landed pages
   through ``load_windows``, the fan-out tables from the sandbox's ground truth; built once and
   cached). The local mode runs on a copy of it; the storage mode's history is that directory
   imported into the bucket by ``xport-etl storage import`` (timed: the *import* row), whose host
   keeps the imported version as its copy.
2. **First load, non-API part** (the *first load (landed lists)* rows): the list endpoints' landed
   pages (3 endpoints, 31-day windows: the landed-pages cache) through ``load_windows`` into an
   empty data directory: normalised, staged, merged and published once. The storage mode reads
   the same pages from the bucket's ``raw/`` (uploaded before, not timed) under another prefix of
   the bucket, with an empty scratch directory. Not covered: the API requests of the lists (the
   API's time, alike in both modes) and the fan-out endpoints' detail calls and their load (~2.1
   million calls at 1M; the fan-out tables are a small share of the warehouse). Both modes give
   the staging 4 GB (``XPORT_STAGE_MEMORY``), as the base build does.
3. **Hourly incremental** in both modes, measured by bench_incremental.py's child (every HTTP
   request timed: API wait = the wall time with a request in flight; non-API = wall - API wait;
   the stages): one hour on the host that holds the newest version (the storage mode's import
   host), then one more hour on a **fresh host** (an empty scratch directory that downloads the
   newest version first; the local mode goes on on its one directory).
4. Each row records the load average before and after (``loadavg_1m``): the machine is shared.
"""

from __future__ import annotations

import argparse
import json
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


class MotoProcess:
    """moto's S3 server in a process of its own. Not a thread of this one: a measured child is
    forked from this process and Linux keeps a process's peak RSS (``ru_maxrss``) across
    ``exec``, so a bucket held in this process's memory would count as every child's peak."""

    def __init__(self, port: int) -> None:
        import httpx

        self.proc = subprocess.Popen(
            [PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


def _bucket(client, bucket: str) -> dict[str, int]:
    """Key → size of every object in the bucket."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = obj["Size"]
    return out


def _run(mode: str, data_dir: Path, env: dict[str, str], start: datetime, end: datetime, incremental: bool) -> dict:
    load_before = os.getloadavg()[0]
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
    out["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]  # the machine is shared
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--base", choices=("auto", "api", "lists+truth"), default="auto")
    a = ap.parse_args()
    from bench.bench_incremental import FULL_MAX_ORDERS

    how = a.base if a.base != "auto" else ("api" if a.orders <= FULL_MAX_ORDERS else "lists+truth")

    import boto3
    import httpx

    from bench.world import _free_port

    port = _free_port()
    moto = MotoProcess(port)
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
    if how == "lists+truth":
        try:
            rows = run_lists_truth(a, s3, bucket, root, base_env)
        finally:
            moto.stop()
        return report(a, how, rows)
    history = world_bounds()[0]  # the whole history, in bounded runs of 31 days as `xport-etl run`
    modes = {"local": ({}, root / "local"), "storage": ({"XPORT_STORAGE_URL": url}, root / "host1")}

    def measure(run: str, mode: str, data_dir: Path, env: dict[str, str], start, end, incremental: bool) -> None:
        before = _bucket(s3, bucket) if mode == "storage" else {}
        res = _run(mode, data_dir, env, start, end, incremental)
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
            + (f"  uploaded {row['uploaded_mb']:6.1f} MB in {row['objects']} objects" if mode == "storage" else "")
            + f"  load {row['loadavg_1m']}",
            flush=True,
        )

    try:
        # each mode on a sandbox of its own (the same world): the sandbox's process answers a second
        # pass over the same history more slowly (its CPU per pass grows), which would charge the
        # mode measured second
        for mode, (extra, data_dir) in modes.items():
            with Sandbox(a.orders, seed=a.seed, rate_limit=0) as sb:
                env = {**base_env, "XPORT_BASE_URL": sb.base_url, "XPORT_RATE_LIMIT": "0", **extra}
                clock = datetime.fromisoformat(sb.stats()["clock"]).astimezone(UTC)
                print(f"{mode}: first load of {a.orders:,} orders (clock {clock.isoformat()})", flush=True)
                measure("first load", mode, data_dir, env, history, clock + timedelta(seconds=1), False)
                for run, fresh in (("hourly incremental", False), ("hourly, fresh host", True)):
                    new = httpx.post(
                        sb.base_url + "/_sandbox/clock", json={"advance_seconds": a.hours * 3600}, timeout=600
                    )
                    t_end = datetime.fromisoformat(new.json()["clock"]).astimezone(UTC) + timedelta(seconds=1)
                    print(f"{mode}: {run}: {clock.isoformat()} → {t_end.isoformat()}", flush=True)
                    where = root / "host-fresh" if fresh and mode == "storage" else data_dir
                    measure(run, mode, where, env, clock, t_end, True)
                    clock = t_end - timedelta(seconds=1)
    finally:
        moto.stop()
    return report(a, how, rows)


def _rss(row: dict[str, Any]) -> float:
    return row.get("maxrss_mb", row.get("peak_rss_mb", 0.0))


def report(a, how: str, rows: list[dict[str, Any]]) -> int:
    """The storage / local table of ``rows`` (printed), and the result file."""
    ratios = []
    for run in dict.fromkeys(r["run"] for r in rows):
        loc = next((r for r in rows if r["run"] == run and r["mode"] == "local"), None)
        sto = next(r for r in rows if r["run"] == run and r["mode"] == "storage")
        if loc is None:  # the import: the storage mode only
            ratios.append(
                {
                    "run": run,
                    "storage s": round(sto["seconds"], 2),
                    "uploaded MB": round(sto["uploaded_mb"], 1),
                    "objects": sto["objects"],
                }
            )
            continue
        non_api = {}
        if "non_api_s" in sto:
            non_api = {
                "local non-API s": round(loc["non_api_s"], 2),
                "storage non-API s": round(sto["non_api_s"], 2),
                "API wait s local/storage": f"{loc['api_wait_s']:.2f}/{sto['api_wait_s']:.2f}",
            }
        ratios.append(
            {
                "run": run,
                "local s": round(loc["seconds"], 2),
                "storage s": round(sto["seconds"], 2),
                "ratio": round(sto["seconds"] / loc["seconds"], 2),
                **non_api,
                "publishes": sto["publishes"],
                "local s/publish": round(loc["publish_s"] / max(loc["publishes"], 1), 2),
                "storage s/publish": round(sto["publish_s"] / max(sto["publishes"], 1), 2),
                "publish ratio": round(sto["publish_s"] / loc["publish_s"], 2) if loc["publish_s"] else None,
                "warehouse MB": round(loc["warehouse_mb"], 1),
                "uploaded MB": round(sto["uploaded_mb"], 1),
                "objects": sto["objects"],
                "RSS local/storage MB": f"{_rss(loc):.0f}/{_rss(sto):.0f}",
            }
        )
    print()
    cols = list(dict.fromkeys(c for r in ratios for c in r))
    print(table(ratios, cols))
    path = write_result(
        f"storage_{a.orders}",
        {"orders": a.orders, "seed": a.seed, "hours": a.hours, "base": how, "runs": rows, "ratios": ratios},
    )
    print(f"\nwritten to {path}")
    return 0


def _du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def run_lists_truth(a, s3, bucket: str, root: Path, base_env: dict[str, str]) -> list[dict[str, Any]]:
    """The ``lists+truth`` measurements (the module's docstring): rows of run, mode and figures."""
    import httpx

    from bench.bench_incremental import base_dir, copy_base
    from bench.bench_incremental import measure as measure_child
    from bench.world import landed_cache
    from xport_etl.streams import graph

    base, _built = base_dir(a.orders, a.seed, "lists+truth")
    lists = tuple(graph.lists(graph.run_order()))
    meta = landed_cache(a.orders, seed=a.seed, endpoints=lists)
    manifests = [m for e in lists for m in meta["manifests"][e]]
    url, first_url = f"s3://{bucket}/xport", f"s3://{bucket}/first"
    storage_env = {**base_env, "XPORT_STORAGE_URL": url}
    stage = {"XPORT_STAGE_MEMORY": os.environ.get("XPORT_STAGE_MEMORY", "4GB")}
    rows: list[dict[str, Any]] = []
    root.mkdir(parents=True, exist_ok=True)

    def record(run: str, mode: str, res: dict, data_dir: Path, before: dict[str, int] | None) -> None:
        row = {"run": run, "mode": mode, **{k: v for k, v in res.items() if k != "breakdown"}}
        row["publishes"] = 1  # each of these runs publishes once (the child counts merges too)
        if "breakdown" in res:
            row["breakdown"] = res["breakdown"]
            row["publish_s"] = res["breakdown"].get("publish", 0.0)
        wh = data_dir / "warehouse.duckdb"
        row["warehouse_mb"] = wh.stat().st_size / 2**20 if wh.exists() else 0.0
        if before is not None:
            after = _bucket(s3, bucket)
            new = {k: v for k, v in after.items() if before.get(k) != v}
            row["uploaded_mb"] = sum(new.values()) / 2**20
            row["objects"] = len(new)
            row["version_mb"] = sum(v for k, v in new.items() if "/warehouse/v/" in k) / 2**20
            row["scratch_mb"] = _du_mb(data_dir)
        rows.append(row)
        extra = (
            f"  non-API {row['non_api_s']:6.2f} s  API wait {row['api_wait_s']:6.2f} s" if "non_api_s" in row else ""
        )
        up = f"  uploaded {row['uploaded_mb']:7.1f} MB in {row['objects']} objects" if before is not None else ""
        print(
            f"  {run:<26} {mode:<8} {row['seconds']:7.2f} s{extra}  publish {row.get('publish_s', 0):6.2f} s  "
            f"RSS {row['peak_rss_mb']:5.0f} MB  warehouse {row['warehouse_mb']:6.1f} MB{up}  load {row['loadavg_1m']}",
            flush=True,
        )

    # 1. the first load's non-API part: the landed list pages loaded and published
    print(f"first load of the landed list pages ({len(manifests)} windows of {a.orders:,} orders)", flush=True)
    local_first = root / "first-local"
    res = measure_child(
        "lists_load",
        {"base_url": "http://127.0.0.1:9", "data_dir": str(local_first), "manifests": manifests},
        env={**base_env, **stage},
    )
    record("first load (landed lists)", "local", res, local_first, None)
    shutil.rmtree(local_first, ignore_errors=True)
    stored_manifests = []
    for m in manifests:  # the same pages in the bucket's raw/ (not timed)
        window = Path(m).parent
        prefix = f"first/raw/{window.parent.name}/{window.name}"
        for f in window.iterdir():
            if f.is_file():
                s3.upload_file(str(f), bucket, f"{prefix}/{f.name}")
        stored_manifests.append(f"s3://{bucket}/{prefix}/manifest.json")
    before = _bucket(s3, bucket)
    host = root / "first-host"
    res = measure_child(
        "lists_load",
        {"base_url": "http://127.0.0.1:9", "data_dir": str(host), "manifests": stored_manifests},
        env={**base_env, **stage, "XPORT_STORAGE_URL": first_url},
    )
    record("first load (landed lists)", "storage", res, host, before)
    shutil.rmtree(host, ignore_errors=True)

    # 2. the history: a copy for the local mode, the import for the storage mode
    local = copy_base(base, "storage-local")
    host1 = root / "host1"
    before = _bucket(s3, bucket)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run(
        [PY, "-m", "xport_etl.cli", "storage", "import", "--from", str(base), "--data-dir", str(host1), "-q"],
        env={**storage_env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
    )
    res = {"seconds": time.perf_counter() - t0, "peak_rss_mb": 0.0, "loadavg_1m": [load0, os.getloadavg()[0]]}
    record("import (storage import)", "storage", res, host1, before)

    # 3. the hourly incremental: on the host with the newest version, then on a fresh host
    with Sandbox(a.orders, seed=a.seed, rate_limit=0) as sb:
        clock = datetime.fromisoformat(sb.stats()["clock"]).astimezone(UTC)
        for run, fresh in (("hourly incremental", False), ("hourly, fresh host", True)):
            new = httpx.post(sb.base_url + "/_sandbox/clock", json={"advance_seconds": a.hours * 3600}, timeout=600)
            t_end = datetime.fromisoformat(new.json()["clock"]).astimezone(UTC) + timedelta(seconds=1)
            print(f"{run}: {clock.isoformat()} → {t_end.isoformat()}", flush=True)
            window = {"base_url": sb.base_url, "start": clock.isoformat(), "end": t_end.isoformat()}
            res = measure_child("incremental", {**window, "data_dir": str(local)}, env=base_env)
            record(run, "local", res, local, None)
            where = root / "host2" if fresh else host1
            before = _bucket(s3, bucket)
            res = measure_child("incremental", {**window, "data_dir": str(where)}, env=storage_env)
            record(run, "storage", res, where, before)
            clock = t_end - timedelta(seconds=1)
    return rows


if __name__ == "__main__":
    sys.exit(main())
