"""(a) extraction from the sandbox: ours vs dlt's REST API source, and our rate-limit behaviour.

    python bench/bench_extract.py --orders 50000 --rate-limit 10 [--duration 60] [--skip-dlt]
    python bench/bench_extract.py --orders 50000 --rate-limit 50
    python bench/bench_extract.py --orders 70000 --rate-limit 0      # pure throughput

Part 1 (every rate): the Taobao order list (``POST /open/purchase/page``) over the world's whole
history, ours (``extract_window`` per 31-day window, landing gzip pages) vs dlt
(``rest_api_source`` with ``PageNumberPaginator(base_page=1, page_body_path="pageNo",
total_path="data.pages")``, our ``sign`` as a custom ``AuthConfigBase``, ``pipeline.extract``),
each in a fresh process against the same sandbox process. Time ratio, served request rate and the
share of answers that were 429 (the sandbox's own counts, ``/_sandbox/stats``).

Part 2 (rate > 0): every endpoint running together (3 list endpoints + 3 fan-outs, each in its own
thread and client, sharing our machine-wide limiter) for ``--duration`` seconds. The fan-out keys
come from a warehouse published beforehand from the list endpoints (landed with no limit,
cached). Sustained rate = requests answered (not 429) / seconds; target >= 95% of the limit and
< 1% of requests answered 429.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import CACHE, Sandbox, fresh_dir, landed_cache, run_child, table, write_result

LISTS = ("taobao_orders", "alibaba_orders", "taobao_refunds")


def _diff(s0: dict, s1: dict) -> dict:
    req = s1["requests"] - s0["requests"]
    thr = s1["throttled"] - s0["throttled"]
    per = {}
    for path, e in s1["endpoints"].items():
        b = s0["endpoints"].get(path, {"requests": 0, "throttled": 0})
        if e["requests"] - b["requests"]:
            per[path] = {"requests": e["requests"] - b["requests"], "throttled": e["throttled"] - b["throttled"]}
    return {"requests": req, "throttled": thr, "served": req - thr, "endpoints": per}


def prep_warehouse(orders: int, seed: int) -> Path:
    """A warehouse with the list endpoints published (the fan-outs' keys), cached."""
    meta = landed_cache(orders, seed=seed, endpoints=LISTS)
    wh = CACHE / f"seed{seed}_orders{orders}" / "prep_lists"
    if not (wh / "warehouse.duckdb").exists():
        shutil.rmtree(wh, ignore_errors=True)
        wh.mkdir(parents=True)
        print("[prep] publishing the list endpoints for the fan-out keys ...", flush=True)
        run_child(
            "ours_load",
            {"manifests": [m for e in LISTS for m in meta["manifests"][e]], "data_dir": str(wh), "workdir": str(wh)},
        )
    return wh / "warehouse.duckdb"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--rate-limit", type=float, default=10)
    ap.add_argument("--duration", type=float, default=60, help="seconds of the all-endpoints run")
    ap.add_argument("--skip-dlt", action="store_true")
    ap.add_argument("--skip-concurrent", action="store_true")
    a = ap.parse_args()
    rate = a.rate_limit

    wh = prep_warehouse(a.orders, a.seed) if rate > 0 and not a.skip_concurrent else None
    out: dict = {"orders": a.orders, "seed": a.seed, "rate_limit": rate}
    with Sandbox(a.orders, seed=a.seed, rate_limit=rate, warm=True) as sb:
        print(f"sandbox: {a.orders:,} orders, rate limit {rate or 'off'}, started in {sb.startup_s:.1f} s", flush=True)
        rows, res = [], {}
        systems = [("ours", "ours_extract", {"endpoints": ["taobao_orders"], "rate_limit": rate})]
        if not a.skip_dlt:
            systems.append(("dlt", "dlt_extract", {"config": "best"}))
        for name, task, args in systems:
            work = fresh_dir(f"extract_{name}")
            print(f"running {name} (taobao_orders list, whole history) ...", flush=True)
            s0 = sb.stats()
            c0 = sb.cpu_s()
            r = run_child(task, {**args, "base_url": sb.base_url, "data_dir": str(work), "workdir": str(work)})
            r.pop("manifests", None)
            r["server"] = _diff(s0, sb.stats())
            r["sandbox_cpu_s"] = sb.cpu_s() - c0
            res[name] = r
            srv = r["server"]
            rows.append(
                {
                    "system": name,
                    "seconds": r["seconds"],
                    "requests": srv["requests"],
                    "429s": srv["throttled"],
                    "429 share %": 100 * srv["throttled"] / max(1, srv["requests"]),
                    "served/s": srv["served"] / r["seconds"],
                    "sandbox CPU s": r["sandbox_cpu_s"],
                    "records": r.get("records"),
                    "peak RSS MB": r["peak_rss_mb"],
                }
            )
        print()
        print(
            table(
                rows,
                [
                    "system",
                    "seconds",
                    "requests",
                    "429s",
                    "429 share %",
                    "served/s",
                    "sandbox CPU s",
                    "records",
                    "peak RSS MB",
                ],
            )
        )
        out["list_extract"] = res
        if "dlt" in res:
            ratio = res["ours"]["seconds"] / res["dlt"]["seconds"]
            out["ours_time/dlt_time"] = ratio
            print(f"\nours_time/dlt_time = {ratio:.3f}  (speed-up {1 / ratio:.2f}x)")
            if res["ours"]["records"] != res["dlt"]["records"]:
                print(f"NOTE: records differ: ours {res['ours']['records']}, dlt {res['dlt']['records']}")

        if wh is not None:
            work = fresh_dir("extract_concurrent")
            shutil.copyfile(wh, work / "warehouse.duckdb")
            print(f"\nall endpoints together for {a.duration:.0f} s at {rate:g} req/s ...", flush=True)
            s0 = sb.stats()
            r = run_child(
                "ours_concurrent",
                {
                    "base_url": sb.base_url,
                    "data_dir": str(work),
                    "workdir": str(work),
                    "rate_limit": rate,
                    "duration": a.duration,
                },
            )
            srv = _diff(s0, sb.stats())
            sustained = srv["served"] / r["seconds"]
            share = srv["throttled"] / max(1, srv["requests"])
            conc = {
                "seconds": r["seconds"],
                "server": srv,
                "sustained_rate": sustained,
                "rate_share": sustained / rate,
                "http_429_share": share,
                "keys": r["keys"],
                "threads_finished": r["finished"],
                "errors": r["errors"],
                "client_stats": r["client_stats"],
                "targets": {"rate>=95%": sustained >= 0.95 * rate, "429<1%": share < 0.01},
            }
            out["concurrent"] = conc
            print(
                table(
                    [{"endpoint": p, **v} for p, v in srv["endpoints"].items()], ["endpoint", "requests", "throttled"]
                )
            )
            print(
                f"\nsustained {sustained:.2f} req/s = {100 * sustained / rate:.1f}% of the limit; "
                f"429s {srv['throttled']} of {srv['requests']} = {100 * share:.2f}%; "
                f"threads finished {r['finished']}/{r['threads']}; errors {r['errors'] or 'none'}"
            )
            print("targets:", conc["targets"])
    tag = f"extract_{a.orders}_rl{rate:g}"
    print(f"\nresult: {write_result(tag, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
