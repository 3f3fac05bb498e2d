"""(a') requests per window against the minimum, on a world with corrupt records (issue 24 item 0).

    python bench/bench_paging.py [--orders 70000] [--null-id-copies 0.002] [--seed 7]

Lands the Taobao order list of a sandbox world whose pages carry, besides the default variety
(corrupt copies included), records without an id (``WorldConfig.null_id_copies``: after that share
of the orders, a corrupt copy whose ``id`` is null), with our extractor and no rate limit, in two
layouts: one window over the world's whole history, and the 31-day windows ``xport-etl run``
pages. For each layout it counts the list requests the sandbox served and the pages landed,
against the minimum: ``ceil(total / pageSize)`` per window, plus the one catch-up query a creation
window makes after its pass (what changed while it was paged); and the passes (``drift_repages``).

The sandbox runs in this process (its world option has no command-line flag): the request counts
are exact, the seconds include the server's own work.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import fresh_dir, table, world_bounds, write_result

PATH = "/open/purchase/page"


def land(sandbox, windows: list, work: Path) -> dict:
    """Page ``windows`` of the Taobao order list one after another; what it cost."""
    from xport_etl.extract.client import XportClient
    from xport_etl.extract.landing import read_manifest
    from xport_etl.run.paging import extract_window
    from xport_etl.settings import Settings

    settings = Settings(base_url=sandbox.base_url, data_dir=work, rate_limit=0, extract_workers=1)
    before = sandbox.stats()["endpoints"].get(PATH, {}).get("requests", 0)
    manifests = []
    t0 = time.perf_counter()
    with XportClient(settings) as client:
        for start, end in windows:
            path = extract_window(settings, "taobao_orders", start, end, client=client)
            manifests.append(read_manifest(Path(path).parent))
    seconds = time.perf_counter() - t0
    served = sandbox.stats()["endpoints"][PATH]["requests"] - before
    size = settings.page_size
    minimum = sum(-(-(m.total or 0) // size) or 1 for m in manifests)  # an empty window is one request
    catch_up = sum(1 for m in manifests if m.extra.get("pass_start"))
    return {
        "windows": len(manifests),
        "total": sum(m.total or 0 for m in manifests),
        "records_landed": sum(m.records for m in manifests),
        "pages_landed": sum(m.pages for m in manifests),
        "requests": served,
        "minimum": minimum,
        "catch_up": catch_up,
        "extra": served - minimum - catch_up,
        "drift_repages": sum(m.drift_repages for m in manifests),
        "seconds": seconds,
    }


def main() -> int:
    from xport_etl.run.windows import split_window
    from xport_sandbox.testing import SandboxServer
    from xport_sandbox.world import WorldConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=70000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--null-id-copies", type=float, default=0.002, help="share of orders followed by a null-id copy")
    a = ap.parse_args()

    start, end = world_bounds()
    config = WorldConfig(
        seed=a.seed,
        orders=a.orders,
        null_id_copies=a.null_id_copies,
        detail_cache=max(65_536, a.orders + a.orders // 3),
    )
    layouts = {"one window": [(start, end)], "31-day windows": split_window(start, end, timedelta(days=31))}
    out: dict = {"orders": a.orders, "seed": a.seed, "null_id_copies": a.null_id_copies, "layouts": {}}
    with SandboxServer(config, startup_timeout=600) as sandbox:
        t0 = time.perf_counter()
        sandbox.world.warm()
        print(
            f"sandbox: {a.orders:,} orders, null-id copies {a.null_id_copies:g}, warmed in "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        for name, windows in layouts.items():
            print(f"landing the Taobao order list as {name} ({len(windows)}) ...", flush=True)
            out["layouts"][name] = land(sandbox, windows, fresh_dir(f"paging_{name.replace(' ', '_')}"))
    rows = [{"layout": name, **r} for name, r in out["layouts"].items()]
    cols = ["layout", "windows", "total", "requests", "minimum", "catch_up", "extra", "drift_repages", "pages_landed",
            "records_landed", "seconds"]  # fmt: skip
    print()
    print(table(rows, cols))
    null_ids = a.null_id_copies
    print(f"\n(total: orders the sandbox reported; records landed include the corrupt copies, ~{null_ids:.1%} "
          "null-id ones plus the variety's, served beyond total)")  # fmt: skip
    path = write_result(f"paging_{a.orders}", out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
