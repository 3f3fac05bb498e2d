"""Every ``rpt_*`` view's query time on a warehouse of N orders; target < 1 s each.

    python bench/bench_reports.py --orders 1000000 [--seed 7] [--repeat 3]
    python bench/bench_reports.py --warehouse /path/to/warehouse.duckdb

Without ``--warehouse``, the warehouse is built from the sandbox's ground truth of the world
(``xport_sandbox.truth``: fct_orders, fct_order_lines, fct_refunds, fct_parcels,
fct_parcel_events for Taobao and 1688, exactly the rows a full pipeline load produces) into our
schema (``ensure_schema``), with our views (``refresh_views``): all endpoints at full size without
hours of fan-out calls. Cached under bench/.cache/. Each view is read in full
(``fetchall``) through a fresh read-only connection: first (cold) and best/worst of
``--repeat`` warm reads.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import CACHE, PY, ROOT, table, write_result

BUILD = """
import sys, time
from pathlib import Path
import duckdb
from xport_sandbox.world import World, WorldConfig
from xport_sandbox.truth import write_truth
from xport_etl.load.connect import connect_writer
from xport_etl.load.migrate import ensure_schema, set_settings
from xport_etl.report.views import refresh_views
seed, orders, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
t0 = time.perf_counter()
paths = write_truth(World(WorldConfig(seed=seed, orders=orders)), out / "truth")
t1 = time.perf_counter()
db = out / "warehouse.duckdb"
db.unlink(missing_ok=True)
con = connect_writer(db)
con.execute("set enable_progress_bar = false")
ensure_schema(con)
set_settings(con, {"report_tz": "Asia/Shanghai"})
for name, path in paths.items():
    con.execute(f"insert into {name} by name select * from read_parquet(?)", [str(path)])
refresh_views(con)
con.execute("checkpoint")
con.close()
print(f"truth {t1 - t0:.1f} s, warehouse {time.perf_counter() - t1:.1f} s", flush=True)
"""


# a cached warehouse has the views of the code that built it: migrate it and re-create the views
# of this code, so that what is measured is what this commit publishes
REFRESH = """
import sys
from xport_etl.load.connect import connect_writer
from xport_etl.load.migrate import ensure_schema
from xport_etl.report.views import refresh_views
con = connect_writer(sys.argv[1])
ensure_schema(con)
refresh_views(con)
con.execute("checkpoint")
con.close()
"""


def build(orders: int, seed: int) -> Path:
    out = CACHE / f"seed{seed}_orders{orders}" / "truth_warehouse"
    db = out / "warehouse.duckdb"
    if not db.exists():
        out.mkdir(parents=True, exist_ok=True)
        print(f"[cache] building a warehouse from the ground truth of {orders:,} orders ...", flush=True)
        subprocess.run([PY, "-c", BUILD, str(seed), str(orders), str(out)], cwd=ROOT, check=True)
    else:
        subprocess.run([PY, "-c", REFRESH, str(db)], cwd=ROOT, check=True)
    return db


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=70000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warehouse", type=Path)
    a = ap.parse_args()
    import duckdb

    db = a.warehouse or build(a.orders, a.seed)
    con = duckdb.connect(str(db), read_only=True)
    sizes = {
        t: con.execute(f"select count(*) from {t}").fetchall()[0][0]
        for t in ("fct_orders", "fct_order_lines", "fct_refunds", "fct_parcels", "fct_parcel_events")
    }
    views = [
        r[0]
        for r in con.execute("select view_name from duckdb_views() where view_name like 'rpt_%' order by 1").fetchall()
    ]
    con.close()
    print("warehouse:", ", ".join(f"{t} {n:,}" for t, n in sizes.items()))
    rows, res = [], {}
    for v in views:
        times, n = [], 0
        for _ in range(1 + a.repeat):
            con = duckdb.connect(str(db), read_only=True)
            t0 = time.perf_counter()
            n = len(con.execute(f"select * from {v}").fetchall())
            times.append(time.perf_counter() - t0)
            con.close()
        res[v] = {"cold_s": times[0], "warm_s": times[1:], "rows": n, "pass": max(times) < 1.0}
        rows.append(
            {
                "view": v,
                "rows": n,
                "cold s": times[0],
                "warm median s": statistics.median(times[1:]),
                "max s": max(times),
                "< 1 s": "pass" if max(times) < 1.0 else "MISS",
            }
        )
    print(table(rows, ["view", "rows", "cold s", "warm median s", "max s", "< 1 s"]))
    name = f"reports_{a.orders}" if not a.warehouse else "reports_custom"
    print(f"\nresult: {write_result(name, {'orders': a.orders, 'warehouse': str(db), 'sizes': sizes, 'views': res})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
