"""Incremental: an hourly run over an N-order history in which ~0.1% of the orders changed.

    python bench/bench_incremental.py --orders 1000000 [--seed 7] [--hours 1] [--profile] [--steady]
                                      [--base auto|full|lists+truth] [--validate]

1. **The history** (cached per seed, size and method in
   ``bench/.cache/seed<S>_orders<N>/incremental_base_<method>/``):
   the data directory (``warehouse.duckdb`` + the run ledger) after loading the world's whole
   history at its initial clock, all six endpoints. Two ways to build it:

   - ``full``: ``run_window`` over the whole history against the sandbox, exactly like a first
     load (what ``tests/e2e/test_incremental_cost.py`` does). It makes one detail call per shipped
     line / order / 1688 refund: ~2.1 million calls at 1,000,000 orders, hours against the
     one-process sandbox, so ``auto`` uses it only up to 100,000 orders.
   - ``lists+truth``: the three list endpoints through our pipeline for real (the landed-pages
     cache of ``bench/world.py``, then ``load_windows``: orders, lines, Taobao refunds with every
     pipeline column), and the fan-out tables (``fct_parcels``, ``fct_parcel_events``, 1688 rows of
     ``fct_refunds``) from the sandbox's ground truth (``xport_sandbox.truth``, which equals what
     the pipeline loads, tested by the e2e tests), stamped as fetched at the world's clock
     (``extracted_at``/``data_clock``; 1688 ``order_status_at_fetch`` = the order's status then).
     ``--validate`` at a small size runs the hourly run on both bases and compares.

   Each measurement runs on a fresh copy of that directory (``cp --reflink=auto``).
2. **An hour passes**: the sandbox clock moves on ``--hours`` (``POST /_sandbox/clock``); the
   orders that changed are counted by the API itself (``total`` of the update-time list queries
   of both order lists over the hour; these requests are not part of the measurement).
3. **The hourly run**: ``run_window(settings, T, T + hours, incremental=True)`` — what
   ``xport-etl run --incremental --start T --end T+1h`` calls — in a fresh process, measured like
   the other systems (wall, polled peak RSS of the process tree, CPU s), sandbox limit off.
4. **API wait**: every ``httpx.Client.send`` of the run is timed in the child (a wrapper installed
   by this benchmark, no library change). The fan-out calls 4 requests at a time, so the API wait
   is the wall time during which at least one request was in flight (the union of the request
   intervals); the plain sum is reported too. non-API = wall - API wait. The stages (landing,
   fan-out key queries, staging, publish: copy-aside / merge / rejects / ledger / views / checks /
   commit + checkpoint + swap) are timed by wrappers around the library functions;
   ``--profile`` adds a pyinstrument profile of a second run.
5. ``--steady``: one more run on a copy whose fan-out fetch times are spread over each key's
   refetch period (``SPREAD_SQL``), as steady hourly polling leaves them; right after a full load
   no parcel is due again for ``XPORT_REFETCH_AFTER``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import CACHE, PY, RESULTS, ROOT, WORK, Sandbox, landed_cache, table, write_result

FULL_MAX_ORDERS = 100_000


# ---------------------------------------------------------------- the child (measured) process


def _child(task: str, args: dict[str, Any], out: Path) -> None:
    import resource

    import duckdb  # noqa: F401  (imported before timing, like bench.systems)
    import pyarrow.parquet  # noqa: F401

    import xport_etl.load.publish  # noqa: F401
    import xport_etl.load.staging  # noqa: F401
    import xport_etl.run.engine  # noqa: F401

    result = {
        "incremental": child_incremental,
        "base_full": child_base_full,
        "base_lists": child_base_lists,
        "lists_load": child_lists_load,
    }[task](args)
    ru_s, ru_c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result.update(
        maxrss_self_kb=ru_s.ru_maxrss,
        maxrss_children_kb=ru_c.ru_maxrss,
        cpu_s=ru_s.ru_utime + ru_s.ru_stime + ru_c.ru_utime + ru_c.ru_stime,
    )
    out.write_text(json.dumps(result, default=str))


def _settings(args: dict):
    from xport_etl.settings import Settings

    # from_env: the knobs set in the child's environment (XPORT_STAGE_MEMORY for the history build)
    return Settings.from_env(base_url=args["base_url"], data_dir=Path(args["data_dir"]), rate_limit=0)


class _Timeline:
    """Intervals (perf_counter) of the HTTP requests and of named stages, recorded by wrappers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[float, float]] = []
        self.stages: dict[str, list[tuple[float, float]]] = {}

    def wrap_http(self) -> None:
        # the client sends and reads each answer (headers and streamed body) in request_capped
        from xport_etl.extract import client

        send = client.request_capped
        timeline = self

        def timed_send(*a, **kw):
            t0 = time.perf_counter()
            try:
                return send(*a, **kw)
            finally:
                t1 = time.perf_counter()
                with timeline.lock:
                    timeline.requests.append((t0, t1))

        client.request_capped = timed_send

    def wrap(self, module, name: str, stage: str) -> None:
        fn = getattr(module, name)
        timeline = self

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                t1 = time.perf_counter()
                with timeline.lock:
                    timeline.stages.setdefault(stage, []).append((t0, t1))

        setattr(module, name, timed)


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _length(intervals) -> float:
    return sum(b - a for a, b in intervals)


def _overlap(xs, ys) -> float:
    """Total length of the intersection of two interval unions."""
    xs, ys, total, i, j = _union(xs), _union(ys), 0.0, 0, 0
    while i < len(xs) and j < len(ys):
        lo, hi = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        total += max(0.0, hi - lo)
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return total


def child_incremental(args: dict) -> dict:
    import shutil as shutil_mod

    import xport_etl.load.migrate as migrate
    import xport_etl.load.publish as load
    import xport_etl.load.staging as staging
    from xport_etl.load.stored_state import StoredNextState
    from xport_etl.run import engine, fanout, lander, state
    from xport_etl.run import stage as run_stage

    tl = _Timeline()
    tl.wrap_http()
    for mod, name, stage in (
        (lander, "extract_window", "landing"),  # where the engine's lander and the engine call them
        (engine, "extract_fanout", "landing"),
        (fanout, "fanout_keys", "fanout_keys"),
        (staging, "stage_window", "staging"),
        (run_stage, "_stage_in_processes", "staging"),
        # a run merges into its next state, then publishes it once (load.NextState)
        (load.NextState, "merge", "publish"),
        (load.NextState, "publish", "publish"),
        # under a storage URL (bench_storage.py): the same steps, with the uploads and the commit
        (StoredNextState, "merge", "publish"),
        (StoredNextState, "publish", "publish"),
        (load, "merge_staged", "publish.merge"),
        (load, "merge_rejects", "publish.rejects"),
        (load, "replace_runs", "publish.ledger"),
        (state, "read_runs", "publish.read_ledger"),
        (load, "refresh_views", "publish.views"),
        (load, "evaluate_checks", "publish.checks"),
        (load, "mirror_check_results", "publish.check_results"),
        (load, "ensure_schema", "publish.schema"),
        (load, "connect_writer", "publish.open"),
    ):
        if hasattr(mod, name):
            tl.wrap(mod, name, stage)
    # the copy-aside of the published file (if the publish path makes one)
    if hasattr(migrate, "shutil"):
        tl.wrap(shutil_mod, "copyfile", "publish.copy_aside")

    settings = _settings(args)
    start, end = datetime.fromisoformat(args["start"]), datetime.fromisoformat(args["end"])
    prof = None
    if args.get("profile"):
        from pyinstrument import Profiler

        prof = Profiler(interval=0.002)
        prof.start()
    t0 = time.perf_counter()
    result = engine.run_window(settings, start, end, incremental=True)
    t1 = time.perf_counter()
    if prof:
        prof.stop()
        Path(args["profile"]).write_text(prof.output_text(unicode=False, color=False, show_all=False))

    api = _union(tl.requests)
    api_wait = _length(api)
    wall = t1 - t0
    stages = {k: _length(_union(v)) for k, v in tl.stages.items()}
    landing = _union(tl.stages.get("landing", []))
    keys = _union(tl.stages.get("fanout_keys", []))
    breakdown = {
        "landing (non-API)": _length(landing) - _overlap(landing, api) - _length(keys),
        "fan-out key queries": _length(keys),
        "staging": stages.get("staging", 0.0),
        "publish": stages.get("publish", 0.0),
    }
    for k in ("copy_aside", "open", "schema", "merge", "rejects", "read_ledger", "ledger", "views", "checks"):
        if f"publish.{k}" in stages:
            breakdown[f"publish: {k}"] = stages[f"publish.{k}"]
    # read_runs is called by load_windows just before publish: count it in publish
    breakdown["publish"] += stages.get("publish.read_ledger", 0.0)
    inner = sum(v for k, v in breakdown.items() if k.startswith("publish: "))
    breakdown["publish: commit + checkpoint + fsync + swap (rest)"] = breakdown["publish"] - inner
    breakdown["other (plan, ledger appends, ...)"] = (
        wall - api_wait - sum(v for k, v in breakdown.items() if not k.startswith("publish: "))
    )
    return {
        "seconds": wall,
        "api_wait_s": api_wait,
        "api_sum_s": _length(tl.requests),
        "non_api_s": wall - api_wait,
        "requests": len(tl.requests),
        "publishes": len(tl.stages.get("publish", [])),  # next-state merges and the publish
        "rows_written": result["rows_written"],
        "rejects": result["rejects"],
        "breakdown": breakdown,
    }


def child_lists_load(args: dict) -> dict:
    """The list endpoints' landed windows (``args["manifests"]``: paths, or URLs under a storage
    URL's ``raw/``) through ``load_windows`` into a fresh data directory: staged, merged and
    published, as the first load does after landing them (bench_storage.py's first load at 1M)."""
    from xport_etl.load.publish import NextState
    from xport_etl.load.stored_state import StoredNextState
    from xport_etl.run.state import load_windows

    tl = _Timeline()
    for cls in (NextState, StoredNextState):
        tl.wrap(cls, "publish", "publish")
        tl.wrap(cls, "merge", "merge")
    settings = _settings(args)
    t0 = time.perf_counter()
    loaded = load_windows(settings, args["manifests"])
    wall = time.perf_counter() - t0
    return {
        "seconds": wall,
        "publish_s": _length(_union(tl.stages.get("publish", []))),
        "merge_s": _length(_union(tl.stages.get("merge", []))),
        "publishes": len(tl.stages.get("publish", [])),
        "rows_written": loaded["rows_written"],
    }


def child_base_full(args: dict) -> dict:
    """The first load of the whole history, every endpoint, as ``xport-etl run`` would do it."""
    from xport_etl.run.engine import run_window

    settings = _settings(args)
    t0 = time.perf_counter()
    result = run_window(settings, datetime.fromisoformat(args["start"]), datetime.fromisoformat(args["end"]))
    return {"seconds": time.perf_counter() - t0, "rows_written": result["rows_written"]}


def child_base_lists(args: dict) -> dict:
    """The list endpoints' landed history through ``load_windows``, then the fan-out tables from
    the sandbox's ground truth, stamped as fetched at the world's clock, and one more publish
    (report views + every data check) so that the base is a state our publish accepts."""
    from xport_etl.layout import DataLayout
    from xport_etl.ledger import append_run, read_runs
    from xport_etl.load.connect import connect_writer
    from xport_etl.load.publish import publish
    from xport_etl.run.state import load_windows

    settings = _settings(args)
    t0 = time.perf_counter()
    loaded = load_windows(settings, args["manifests"])
    t1 = time.perf_counter()
    truth = Path(args["truth_dir"])
    db = DataLayout.of(settings.data_dir).warehouse
    con = connect_writer(db)
    try:
        clock = con.execute("select max(updated_at) from fct_orders").fetchall()[0][0]
        con.execute("begin")
        con.execute(
            "delete from fct_parcels; delete from fct_parcel_events; delete from fct_refunds where platform = '1688'"
        )
        con.execute(
            """insert into fct_parcels by name
               select p.*, case when p.platform = '1688' then o.platform_status end as order_status_at_fetch,
                      $clock as extracted_at, $clock as data_clock
               from read_parquet($f) as p
               left join fct_orders as o on p.platform = '1688' and o.platform = '1688' and o.order_id = p.order_id""",
            {"clock": clock, "f": str(truth / "fct_parcels.parquet")},
        )
        con.execute(
            "insert into fct_parcel_events by name select * from read_parquet(?)",
            [str(truth / "fct_parcel_events.parquet")],
        )
        con.execute(
            """insert into fct_refunds by name
               select r.*, $clock as extracted_at, $clock as data_clock
               from read_parquet($f) as r where platform = '1688'""",
            {"clock": clock, "f": str(truth / "fct_refunds.parquet")},
        )
        con.execute("commit")
        con.execute("checkpoint")
    finally:
        con.close()
    # the ledger a first load leaves: one row per landed fan-out window of FANOUT_BATCH keys
    from xport_etl.run.fanout import FANOUT_BATCH

    con = connect_writer(db)
    try:
        n_keys = {
            "taobao_logistics": con.execute(
                "select count(distinct purchase_line_id) from fct_parcels where platform = 'taobao'"
            ).fetchall()[0][0],
            "alibaba_logistics": con.execute(
                "select count(distinct order_id) from fct_parcels where platform = '1688'"
            ).fetchall()[0][0],
            "alibaba_refunds": con.execute("select count(*) from fct_refunds where platform = '1688'").fetchall()[0][0],
        }
    finally:
        con.close()
    stamp = datetime.now(UTC)
    for endpoint, n in n_keys.items():
        for i in range(0, n, FANOUT_BATCH):
            wid = f"keys_{stamp:%Y%m%dT%H%M%S%fZ}_{i // FANOUT_BATCH:04d}"
            append_run(
                settings.data_dir,
                {
                    "run_id": f"base-{endpoint}-{i}",
                    "endpoint": endpoint,
                    "window_id": wid,
                    "mode": "keys",
                    "window_start": stamp.isoformat(),
                    "window_end": stamp.isoformat(),
                    "pages": min(FANOUT_BATCH, n - i),
                    "requests": min(FANOUT_BATCH, n - i),
                    "retries": 0,
                    "http_429": 0,
                    "records": min(FANOUT_BATCH, n - i),
                    "rows_written": None,
                    "rejected": 0,
                    "drift_repages": 0,
                    "started_at": stamp.isoformat(),
                    "finished_at": stamp.isoformat(),
                    "duration_s": 0.0,
                    "outcome": "success",
                    "error": None,
                },
            )
    publish(settings.data_dir, [], runs=read_runs(settings.data_dir), settings={"report_tz": settings.report_tz})
    return {
        "seconds": time.perf_counter() - t0,
        "lists_s": t1 - t0,
        "rows_written": loaded["rows_written"],
        "fanout_keys_stamped": n_keys,
    }


# ---------------------------------------------------------------- the parent


def measure(
    task: str,
    args: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    poll_s: float = 0.05,
    timeout: float = 4 * 3600,
) -> dict:
    """``bench.world.run_child`` for this module's tasks: one fresh process; wall time, polled peak
    RSS of the process tree (or ``ru_maxrss`` if larger), CPU s, load average around it."""
    import psutil

    WORK.mkdir(parents=True, exist_ok=True)
    out = WORK / f".incremental.{task}.{os.getpid()}.{time.time_ns()}.json"
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [PY, "-m", "bench.bench_incremental", "--child", task, json.dumps(args), str(out)], cwd=ROOT, env=env
    )
    peak, ps = 0, psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        with suppress(psutil.Error):
            for p in [ps, *ps.children(recursive=True)]:
                with suppress(psutil.Error):
                    total += p.memory_info().rss
        peak = max(peak, total)
        if time.perf_counter() - t0 > timeout:
            proc.kill()
            raise RuntimeError(f"{task} timed out")
        time.sleep(poll_s)
    if proc.returncode != 0:
        raise RuntimeError(f"{task} failed with exit code {proc.returncode}")
    result = json.loads(out.read_text())
    out.unlink()
    result["peak_rss_mb"] = round(max(peak, result.get("maxrss_self_kb", 0) * 1024) / 2**20, 1)
    result["process_s"] = round(time.perf_counter() - t0, 2)
    result["loadavg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def _truth_dir(orders: int, seed: int) -> Path:
    """The ground-truth tables at the world's initial clock (shared with bench_reports' cache)."""
    out = CACHE / f"seed{seed}_orders{orders}" / "truth_warehouse" / "truth"
    if not (out / "fct_parcel_events.parquet").exists():
        print(f"[cache] writing the ground truth of {orders:,} orders ...", flush=True)
        code = (
            "import sys; from xport_sandbox.world import World, WorldConfig; "
            "from xport_sandbox.truth import write_truth; "
            "write_truth(World(WorldConfig(seed=int(sys.argv[1]), orders=int(sys.argv[2]))), sys.argv[3])"
        )
        subprocess.run([PY, "-c", code, str(seed), str(orders), str(out)], cwd=ROOT, check=True)
    return out


def base_dir(orders: int, seed: int, how: str) -> tuple[Path, dict]:
    """The cached data directory of the loaded history (built once per seed, size and method)."""
    from xport_sandbox.world import WorldConfig

    root = CACHE / f"seed{seed}_orders{orders}" / f"incremental_base_{how.replace('+', '_')}"
    meta_path = root / "base.json"
    if meta_path.exists():
        return root / "data", json.loads(meta_path.read_text())
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    data = root / "data"
    data.mkdir(parents=True)
    cfg = WorldConfig()
    t0 = time.perf_counter()
    if how == "full":
        with Sandbox(orders, seed=seed, rate_limit=0) as sb:
            print(f"[cache] first load of the whole history ({orders:,} orders, every endpoint) ...", flush=True)
            res = measure(
                "base_full",
                {
                    "base_url": sb.base_url,
                    "data_dir": str(data),
                    "start": cfg.start.astimezone(UTC).isoformat(),
                    "end": (cfg.clock + timedelta(days=1)).astimezone(UTC).isoformat(),
                },
            )
            res["requests_served"] = sb.stats()["requests"]
    else:
        from xport_etl.streams import graph

        lists = tuple(graph.lists(graph.run_order()))
        meta = landed_cache(orders, seed=seed, endpoints=lists)
        manifests = [m for e in lists for m in meta["manifests"][e]]
        truth = _truth_dir(orders, seed)
        print(
            f"[cache] loading the lists' history ({len(manifests)} windows) + fan-out tables from truth ...", flush=True
        )
        res = measure(
            "base_lists",
            {"base_url": "http://127.0.0.1:9", "data_dir": str(data), "manifests": manifests, "truth_dir": str(truth)},
            # building the history is not measured: give the staging workers room for
            # a whole 31-day window of the 1M world
            env={"XPORT_STAGE_MEMORY": os.environ.get("XPORT_STAGE_MEMORY", "4GB")},
        )
    # the incremental run needs the warehouse and the ledger; landed pages and Parquet batches of
    # the history are never read again (they stay in the cache for inspection)
    res["build_s"] = time.perf_counter() - t0
    res["how"] = how
    meta_path.write_text(json.dumps(res, indent=1, default=str))
    print(f"[cache] history built in {res['build_s']:.0f} s", flush=True)
    return data, res


def copy_base(src: Path, name: str) -> Path:
    dst = WORK / name
    subprocess.run(["rm", "-rf", str(dst)], check=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mkdir", "-p", str(dst)], check=True)
    for item in ("warehouse.duckdb", "state"):
        if (src / item).exists():
            subprocess.run(["cp", "-r", "--reflink=auto", str(src / item), str(dst / item)], check=True)
    return dst


SPREAD_SQL = """
-- steady hourly polling: each in-transit parcel / open refund was last fetched at a uniformly
-- spread moment of its refetch period before the clock (sql/fanout: settings.refetch_after, 4x for
-- parcels quiet 3-30 days), every parcel of a line (Taobao) / order (1688) shares its fetch time
update fct_parcels as p set data_clock = p.data_clock - to_seconds(
    (hash(coalesce(p.purchase_line_id, p.order_id)) % 1000000) / 1000000.0 * $refetch_s *
    case when q.last_event_at is null or q.last_event_at >= p.data_clock - interval 3 days then 1 else 4 end)
from (select platform, coalesce(purchase_line_id, order_id) as k, max(last_event_at) as last_event_at
      from fct_parcels group by all) as q
where q.platform = p.platform and q.k = coalesce(p.purchase_line_id, p.order_id);
update fct_refunds set data_clock = data_clock - to_seconds(
    (hash(refund_id) % 1000000) / 1000000.0 * $refetch_s)
where platform = '1688';
"""


def spread_fetches(data_dir: Path) -> None:
    """Make the copied history look like one in steady hourly polling (see ``SPREAD_SQL``)."""
    import duckdb

    from xport_etl.settings import Settings

    con = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        for stmt in filter(str.strip, SPREAD_SQL.split(";")):
            con.execute(stmt, {"refetch_s": Settings().refetch_after} if "$refetch_s" in stmt else None)
        con.execute("checkpoint")
    finally:
        con.close()


def _changed(sb: Sandbox, start: datetime, end: datetime) -> dict[str, int]:
    """Orders whose update time is in [start, end): the ``total`` the API reports for the update-time
    window of each order list (one request each, page size 1)."""
    from xport_etl.extract.client import XportClient
    from xport_etl.extract.endpoints import endpoints_for, format_window_value
    from xport_etl.extract.paginators import PageNumberPaginator, paginate
    from xport_etl.settings import Settings

    s = Settings(base_url=sb.base_url, data_dir=WORK / "probe", rate_limit=0)
    specs = endpoints_for(s.assumptions)
    out = {}
    with XportClient(s) as client:
        for name in ("taobao_orders", "alibaba_orders"):
            spec = specs[name]
            win = spec.windows["update"]
            q = {
                win.start_field: format_window_value(start, win.time_format, assumptions=s.assumptions),
                win.end_field: format_window_value(end, win.time_format, assumptions=s.assumptions),
            }
            pager = PageNumberPaginator(page_size=1, in_body=spec.pages_in_body)
            out[name] = int(next(iter(paginate(client, spec, q, paginator=pager))).total)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--hours", type=float, default=1.0, help="how far the sandbox clock moves (the run's interval)")
    ap.add_argument("--base", choices=("auto", "full", "lists+truth"), default="auto")
    ap.add_argument("--validate", action="store_true", help="also run on the other base and compare")
    ap.add_argument("--profile", action="store_true", help="a 2nd run under pyinstrument")
    ap.add_argument(
        "--steady",
        action="store_true",
        help="also a run on a history whose fan-out fetch times are spread as in steady "
        "hourly polling (the plain history was fetched all at once: no parcel is due "
        "again in its first hours)",
    )
    a = ap.parse_args()
    how = a.base if a.base != "auto" else ("full" if a.orders <= FULL_MAX_ORDERS else "lists+truth")
    hows = [how] + ([h for h in ("full", "lists+truth") if h != how] if a.validate else [])
    bases = {h: base_dir(a.orders, a.seed, h) for h in hows}

    runs: dict[str, dict] = {}
    with Sandbox(a.orders, seed=a.seed, rate_limit=0) as sb:
        t_start = datetime.fromisoformat(sb.stats()["clock"]).astimezone(UTC)
        import httpx

        clock = httpx.post(
            sb.base_url + "/_sandbox/clock", json={"advance_seconds": a.hours * 3600}, timeout=600
        ).json()
        t_end = datetime.fromisoformat(clock["clock"]).astimezone(UTC)
        changed = _changed(sb, t_start, t_end + timedelta(seconds=1))
        health = httpx.get(sb.base_url + "/_sandbox/health", timeout=60).json()
        total_orders = int(health["taobao_orders"]) + int(health["orders_1688"])
        n_changed = sum(changed.values())
        share = n_changed / total_orders
        print(
            f"clock {t_start.isoformat()} -> {t_end.isoformat()} ({a.hours:g} h): {n_changed:,} of "
            f"{total_orders:,} orders changed = {share:.3%} (target 0.1%); {changed}",
            flush=True,
        )
        plan = [(h, kind) for h in hows for kind in (("run", "profile") if (a.profile and h == how) else ("run",))]
        plan += [(how, "steady")] if a.steady else []
        for h, kind in plan:
            data = copy_base(bases[h][0], f"incremental_{kind}")
            if kind == "steady":
                spread_fetches(data)
            args = {
                "base_url": sb.base_url,
                "data_dir": str(data),
                "start": t_start.isoformat(),
                "end": (t_end + timedelta(seconds=1)).isoformat(),
            }
            if kind == "profile":
                prof = RESULTS / f"profile_incremental_{a.orders}.txt"
                RESULTS.mkdir(parents=True, exist_ok=True)
                args["profile"] = str(prof)
            served0 = sb.stats()["requests"]
            res = measure("incremental", args)
            res["requests_served"] = sb.stats()["requests"] - served0
            runs[f"{h}:{kind}"] = res
            print(
                f"  [{h} {kind}] wall {res['seconds']:.2f} s, API wait {res['api_wait_s']:.2f} s, "
                f"non-API {res['non_api_s']:.2f} s, {res['requests']} requests "
                f"({res['requests_served']} served), peak RSS {res['peak_rss_mb']:.0f} MB",
                flush=True,
            )

    main_run = runs[f"{how}:run"]
    rows = [
        {"stage": k, "seconds": v, "share of non-API": v / main_run["non_api_s"]}
        for k, v in main_run["breakdown"].items()
    ]
    print()
    print(
        table(
            [
                {"figure": k, "value": main_run[k]}
                for k in (
                    "seconds",
                    "api_wait_s",
                    "api_sum_s",
                    "non_api_s",
                    "requests",
                    "requests_served",
                    "publishes",
                    "peak_rss_mb",
                    "cpu_s",
                )
            ],
            ["figure", "value"],
        )
    )
    print("rows merged:", main_run["rows_written"])
    print()
    print(table(rows, ["stage", "seconds", "share of non-API"]))
    target = main_run["non_api_s"] < 60
    print(f"\ntarget non-API < 60 s: {'pass' if target else 'MISS'} ({main_run['non_api_s']:.2f} s)")
    path = write_result(
        f"incremental_{a.orders}",
        {
            "orders": a.orders,
            "seed": a.seed,
            "hours": a.hours,
            "base": how,
            "base_build": {h: b[1] for h, b in bases.items()},
            "clock": [t_start.isoformat(), t_end.isoformat()],
            "total_orders": total_orders,
            "changed_orders": changed,
            "changed_share": share,
            "runs": runs,
            "target_non_api_lt_60s": target,
            "profile": (
                str((RESULTS / f"profile_incremental_{a.orders}.txt").relative_to(ROOT)) if a.profile else None
            ),
        },
    )
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], json.loads(sys.argv[3]), Path(sys.argv[4]))
    else:
        raise SystemExit(main())
