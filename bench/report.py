"""Write BENCHMARKS.md from the JSON results under bench/results/ (the latest run of each).

python bench/report.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.world import RESULTS, ROOT


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def _largest(prefix: str) -> dict | None:
    found = sorted(RESULTS.glob(f"{prefix}_*.json"), key=lambda p: json.loads(p.read_text()).get("orders", 0))
    return json.loads(found[-1].read_text()) if found else None


def pf(ok: bool | None, r: dict | None = None) -> str:
    """pass / MISS; provisional when other work shared the 2 cores during the result's run."""
    text = "not measured" if ok is None else ("**pass**" if ok else "**MISS**")
    busy = _busiest(r) if r else 0.0
    return f"{text} (load avg up to {busy:.1f}: provisional)" if busy > 2 else text


def _busiest(r: dict) -> float:
    """The highest 1-minute load average recorded around any system of a result."""
    return max((v for x in r.get("systems", {}).values() for v in x.get("loadavg_1m") or []), default=0.0)


MIX_ORDER = {"plain": 0, "varied": 1, "odd2": 2, "odd5": 3}
MIX_NOTE = {
    "plain": "plain: no odd form",
    "varied": "varied: ~0.4% odd records (the default world)",
    "odd2": "odd2: ~2% odd records",
    "odd5": "odd5: ~5% odd records",
}


def world(r: dict) -> str:
    """Which sandbox world (mix) a result measured: load results record it; a whole-run result
    from before ``--mix`` ran on the default (varied) world; load results from before
    WorldConfig.variety on the plain one."""
    if r.get("world"):
        return r["world"]
    if r.get("benchmark", "").startswith("extract_"):
        return "default (of its date)"
    return "varied" if r.get("benchmark", "").startswith("run_") else "plain, before WorldConfig.variety"


def windows(r: dict) -> str:
    """How the landed history was split: one window, or its number of 31-day windows."""
    n = r.get("landed", {}).get("windows")
    return "one window" if r.get("one_window") else (f"{n} windows" if n else "31-day windows")


def label(r: dict) -> str:
    """The world and split of a load result, as its rows name it."""
    return f"{world(r)} world, {windows(r)}"


def share(r: dict) -> str:
    x = r["systems"]["ours"]
    if x.get("fast_share") is None:
        return "not recorded"
    return f"{100 * x['fast_share']:.2f}% ({x['fast_records']:,} of {x['records']:,} records)"


def load_section(r: dict) -> list[str]:
    s = r["systems"]
    lines = r["lines_on_pages"]
    out = [
        f"### (b) normalise + load from landed pages — {r['orders']:,}-order {label(r)}",
        "",
        f"Records typed in SQL by our fast path: {share(r)}; the rest went to the Python reference.",
        "",
        f"`{r['command']}` — {r['landed']['pages']:,} pages, {r['landed']['records']:,} order records, "
        f"{lines:,} order lines on the pages, {r['landed']['gz_bytes'] / 2**20:.1f} MB gzip "
        f"({r['machine']['date']}, git {r['machine']['git']}{' + uncommitted changes' if r['machine']['git_dirty'] else ''})",
        "",
        "| system | seconds | every round s | lines/s | peak RSS MB | CPU s | load avg (before, after) | our time / its time |",
        "|---|---:|---|---:|---:|---:|---|---:|",
    ]
    if r.get("repeat", 1) > 1:
        out[2:2] = [
            f"Best of {r['repeat']} interleaved rounds per system (dlt default: one); *every round* lists "
            "each round's time, peak RSS is the highest of any round.",
            "",
        ]
    for name, x in s.items():
        rounds = ", ".join(f"{v:.2f}" for v in x.get("samples_s", [x["seconds"]]))
        out.append(
            f"| {name} | {x['seconds']:.2f} | {rounds} | {lines / x['seconds']:,.0f} | {x['peak_rss_mb']:,.0f} | "
            f"{x.get('cpu_s', float('nan')):.1f} | {x.get('loadavg_1m', '')} | "
            f"{s['ours']['seconds'] / x['seconds']:.3f} |"
        )
    for name in ("dlt_best", "dlt_default"):
        if name in s and "extract_s" in s[name]:
            out.append(
                f"\n{name} stages: extract {s[name]['extract_s']:.1f} s, normalize "
                f"{s[name]['normalize_s']:.1f} s, load {s[name]['load_s']:.1f} s."
            )
    if r.get("errors"):
        out.append("\nCOUNT MISMATCH: " + "; ".join(r["errors"]))
    return out


def mix_tables(loads: list[dict], runs: list[dict]) -> list[str]:
    """The issue-24 comparison: every world (mix) and split side by side, each row one command's run."""
    out = [
        "## Normalise + load over the mix, one window or many",
        "",
        "Each row: one run of `bench/bench_load.py` on the landed Taobao order pages of that world and",
        "split (all systems read the same pages; ratios measured in the same run). *Odd on the pages*:",
        "records our load warned about or rejected, of the records on the pages; *fast path*: records",
        "typed in SQL (the rest went, one by one, to the Python reference).",
        "",
        "| orders | world | landed as | odd on the pages | fast path | ours s | CPU s | dlt best s | speed-up | "
        "`read_json` ref s | ours / ref | text ref s | peak RSS MB | load avg |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in loads:
        s = r["systems"]
        o = s["ours"]
        odd = o.get("warnings", 0) + o.get("order_reject_rows", o.get("order_rejects", 0))
        records = r["landed"]["records"]
        fast = f"{100 * o['fast_share']:.2f}%" if o.get("fast_share") is not None else "—"
        out.append(
            f"| {r['orders']:,} | {world(r)} | {windows(r)} | {odd:,} ({100 * odd / records:.2f}%) | {fast} | "
            f"{o['seconds']:.2f} | {o.get('cpu_s', float('nan')):.1f} | {s['dlt_best']['seconds']:.2f} | "
            f"{s['dlt_best']['seconds'] / o['seconds']:.2f}× | {s['duckdb_ref']['seconds']:.2f} | "
            f"{o['seconds'] / s['duckdb_ref']['seconds']:.2f} | {s['duckdb_ref_text']['seconds']:.2f} | "
            f"{o['peak_rss_mb']:,.0f} | {o.get('loadavg_1m', '')} |"
        )
    out += [
        "",
        "*Odd on the pages* counts warnings (a field of a loaded record read as null) and rejected",
        "order records (results from before issue 24: only rejected orders that did not load at all).",
        "",
    ]
    if runs:
        out += [
            "## Whole run over the mix",
            "",
            "| orders | world | ours (31-day windows) s | ours (one window) s | dlt best s | speed-up | requests (ours / one window / dlt) | load avg |",
            "|---:|---|---:|---:|---:|---|---|---|",
        ]
        for r in runs:
            s = r["systems"]
            d = s["dlt_best"]
            many, one = s.get("ours"), s.get("ours_one_window")
            speed = ", ".join(f"{d['seconds'] / x['seconds']:.2f}×" for x in (many, one) if x)
            out.append(
                f"| {r['orders']:,} | {world(r)} | {many['seconds']:.2f} | "
                f"{one['seconds'] if one else float('nan'):.2f} | {d['seconds']:.2f} | {speed} | "
                f"{many['requests'] if many else '—'} / {one['requests'] if one else '—'} / {d['requests']} | "
                f"{(many or one).get('loadavg_1m', '')} |"
            )
        out.append("")
    return out


def main() -> int:
    m = None
    md = ["# Benchmarks", ""]
    load = _largest("load")
    loads = sorted(
        (json.loads(p.read_text()) for p in RESULTS.glob("load_*.json")),
        key=lambda r: (r["orders"], bool(r.get("one_window")), MIX_ORDER.get(world(r), 9)),
    )
    runs = sorted(
        (json.loads(p.read_text()) for p in RESULTS.glob("run_*.json")),
        key=lambda r: (r["orders"], MIX_ORDER.get(world(r), 9)),
    )
    ext = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("extract_*.json")}
    reps = sorted((json.loads(p.read_text()) for p in RESULTS.glob("reports_*.json")), key=lambda r: r["orders"])
    dag = _load("dag_import")
    any_r = load or (runs[-1] if runs else None) or dag
    if any_r:
        m = any_r["machine"]
        md += [
            f"Machine: {m['cpus']} cores ({m['cpu_model']}), {m['ram_gb']} GB RAM; Python {m['python']}, "
            f"DuckDB {m['duckdb']}, dlt {m['dlt']}. Generated by `python bench/report.py` from "
            "`bench/results/*.json`; every figure and ratio in a table comes from one run of one command "
            "(with `--repeat N`: each system's fastest of N interleaved rounds within that run).",
            "",
        ]
    md += [
        "How to read: *our time / its time* < 1 means we are faster; speed-up = 1 / that. Peak RSS is the",
        "client process tree's (polled every 50 ms, or `ru_maxrss` if larger); the sandbox runs in its own",
        "process and is not counted. *load avg* is the machine's 1-minute load before/after the",
        "measurement: on 2 cores, a value above ~2 means other work shared the CPU during it, and a",
        "target decided by such a run is marked *provisional*.",
        "",
    ]

    md += [
        "**Which figures depend on the mix.** The sandbox world a figure was measured on is named in",
        "its row: `plain` (no odd form), `varied` (the default world: the contract's variety, ~0.4% of",
        "the records with a warning or a reject), `odd2` (~2%), `odd5` (~5%; see",
        "`xport_sandbox/world.py: MIXES`), and for the loads how the history was landed: in 31-day",
        "windows or as one window. *Depend on the mix*: normalise + load (b) and the whole run (c),",
        "whose Taobao order pages the mix is about (and the paging passes of the whole run: a world",
        "with null ids, odd2 and odd5, looked like moving data to paging before issue 24 item 0), and",
        "weakly the incremental run (its hour of pages, on the default world). *Do not*: the",
        "extraction rate tests (requests and answers; default world), the report views (a warehouse",
        "built from the sandbox's ground truth) and the DAG imports.",
        "",
    ]

    # ---- targets
    md += [
        "## Targets",
        "",
        "| target | world | measured | dlt ratio | result | command |",
        "|---|---|---|---|---|---|",
    ]
    for r in loads:
        s = r["systems"]
        sp = s["dlt_best"]["seconds"] / s["ours"]["seconds"]
        ref = s["duckdb_ref"]
        md.append(
            f"| normalise + load ≥ 5× dlt best ({r['orders']:,} orders; fast path {share(r)}) | {label(r)} | "
            f"ours {s['ours']['seconds']:.2f} s ({r['lines_on_pages'] / s['ours']['seconds']:,.0f} lines/s), "
            f"dlt best {s['dlt_best']['seconds']:.2f} s | "
            f"ours/dlt_best {s['ours']['seconds'] / s['dlt_best']['seconds']:.3f} (speed-up {sp:.2f}×) | "
            f"{pf(sp >= 5, r)} | `{r['command']}` |"
        )
        # the issue's reference is one read_json + unnest query (duckdb_ref); duckdb_ref_text, the
        # same rows through read_csv + a JSON cast, is listed in the details and the mix table
        md.append(
            f"| normalise + load within 1.5× of one plain `read_json` + `unnest` query ({r['orders']:,}) | "
            f"{label(r)} | ours {s['ours']['seconds']:.2f} s, duckdb_ref {ref['seconds']:.2f} s | "
            f"ours/duckdb_ref {s['ours']['seconds'] / ref['seconds']:.3f} | "
            f"{pf(s['ours']['seconds'] <= 1.5 * ref['seconds'], r)} | same |"
        )
        if r["orders"] >= 1_000_000:
            md.append(
                f"| peak RSS < 500 MB, 1,000,000-order full load | {label(r)} | ours "
                f"{s['ours']['peak_rss_mb']:,.0f} MB (normalise + load of the Taobao order pages) | — | "
                f"{pf(s['ours']['peak_rss_mb'] < 500, r)} | same |"
            )
    for r in runs:
        s = r["systems"]
        for name in ("ours", "ours_one_window"):
            if name not in s:
                continue
            sp = s["dlt_best"]["seconds"] / s[name]["seconds"]
            how = "31-day windows and runs" if name == "ours" else "one window, one run"
            md.append(
                f"| whole run ≥ 3× dlt best, no rate limit ({r['orders']:,}) | {world(r)} world, {how} | "
                f"ours {s[name]['seconds']:.2f} s, dlt best {s['dlt_best']['seconds']:.2f} s | "
                f"ours/dlt_best {1 / sp:.3f} (speed-up {sp:.2f}×) | {pf(sp >= 3, r)} | `{r['command']}` |"
            )
    for _name, r in sorted(ext.items()):
        c = r.get("concurrent")
        if c:
            md.append(
                f"| extraction at {r['rate_limit']:g} req/s: sustained ≥ 95% of limit, < 1% 429 "
                f"({r['orders']:,}-order world, all 6 endpoints together, {c['seconds']:.0f} s) | {world(r)} world | "
                f"{c['sustained_rate']:.2f} req/s = {100 * c['rate_share']:.1f}%; 429s "
                f"{c['server']['throttled']}/{c['server']['requests']} = {100 * c['http_429_share']:.2f}% | — | "
                f"{pf(c['targets']['rate>=95%'] and c['targets']['429<1%'])} | `{r['command']}` |"
            )
    pagings = sorted((json.loads(p.read_text()) for p in RESULTS.glob("paging_*.json")), key=lambda r: r["orders"])
    for r in pagings:
        for name, x in r["layouts"].items():
            md.append(
                f"| each window paged once: requests = ceil(total / pageSize) + 1 catch-up per window "
                f"({r['orders']:,} orders, {name}) | {100 * r['null_id_copies']:g}% null-id records | "
                f"{x['requests']:,} requests, minimum {x['minimum']:,} + {x['catch_up']} catch-up, "
                f"{x['drift_repages']} re-pages | — | {pf(x['extra'] == 0)} | `{r['command']}` |"
            )
    if not any(r["orders"] >= 1_000_000 for r in loads):
        md.append(
            "| peak RSS < 500 MB, 1,000,000-order full load | — | — | — | not measured | "
            "`python bench/bench_load.py --orders 1000000 --skip-dlt-default` |"
        )
    incs = sorted((json.loads(p.read_text()) for p in RESULTS.glob("incremental_*.json")), key=lambda r: r["orders"])
    for r in incs:
        x = r["runs"][f"{r['base']}:run"]
        md.append(
            f"| incremental hourly run, {r['orders']:,}-order history, 0.1% changed, < 60 s non-API | varied world | "
            f"non-API {x['non_api_s']:.2f} s (wall {x['seconds']:.2f} s − API wait {x['api_wait_s']:.2f} s); "
            f"{sum(r['changed_orders'].values()):,} of {r['total_orders']:,} orders changed "
            f"({100 * r['changed_share']:.2f}%) in {r['hours']:g} h, {x['requests']:,} requests, "
            f"peak RSS {x['peak_rss_mb']:,.0f} MB, load avg {x.get('loadavg_1m', '')} | — | "
            f"{pf(x['non_api_s'] < 60)} | `{r['command']}` |"
        )
    if not any(r["orders"] >= 1_000_000 for r in incs):
        md.append(
            "| incremental hourly run, 1,000,000-order history, 0.1% changed, < 60 s non-API | — | — | — | "
            "not measured | `python bench/bench_incremental.py --orders 1000000` |"
        )
    for r in reps:
        worst = max(v["cold_s"] for v in r["views"].values())
        worst = max(worst, *(max(v["warm_s"]) for v in r["views"].values()))
        md.append(
            f"| every rpt_* view < 1 s ({r['orders']:,} orders) | ground truth (no mix) | slowest {worst:.3f} s | — | "
            f"{pf(all(v['pass'] for v in r['views'].values()))} | `{r['command']}` |"
        )
    if not any(r["orders"] >= 1_000_000 for r in reps):
        md.append(
            "| every rpt_* view < 1 s (1,000,000 orders) | — | — | — | not measured | "
            "`python bench/bench_reports.py --orders 1000000` |"
        )
    stores = sorted((json.loads(p.read_text()) for p in RESULTS.glob("storage_*.json")), key=lambda r: r["orders"])
    for r in stores:
        hourly = [x for x in r["ratios"] if x["run"].startswith("hourly")]
        if "storage non-API s" in hourly[0]:  # the API wait measured apart: the target is on the rest
            worst = max(x["storage non-API s"] for x in hourly)
            md.append(
                f"| hourly incremental with every durable state under a storage URL (S3 on moto's server), "
                f"{r['orders']:,}-order history, < 2 min non-API | default world ({r.get('base', 'api')} base) | "
                + "; ".join(
                    f"{x['run']}: {x['storage non-API s']:.2f} s non-API (one disk {x['local non-API s']:.2f} s), "
                    f"{x['uploaded MB']:.1f} MB uploaded"
                    for x in hourly
                )
                + f" | — | {pf(worst < 120)} | `{r['command']}` |"
            )
            continue
        x = hourly[0]
        md.append(
            f"| hourly incremental with every durable state under a storage URL (S3 on moto's server), "
            f"{r['orders']:,}-order history, < 2 min | default world | {x['storage s']:.2f} s against "
            f"{x['local s']:.2f} s on one disk ({x['ratio']:.2f}×), {x['uploaded MB']:.1f} MB uploaded | — | "
            f"{pf(x['storage s'] < 120)} | `{r['command']}` |"
        )
    if not any(r["orders"] >= 1_000_000 for r in stores):
        md.append(
            "| hourly incremental with a storage URL, 1,000,000-order history, < 2 min non-API | — | — | — | "
            "not measured | `python bench/bench_storage.py --orders 1000000` |"
        )
    if dag:
        worst = max(max(v["dag_s"]) for v in dag["files"].values())
        md.append(
            f"| DAG files import < 0.5 s each | — (no data) | slowest {worst:.3f} s | — | "
            f"{pf(all(v['pass'] for v in dag['files'].values()))} | `{dag['command']}` |"
        )
    md.append("")

    md += mix_tables(loads, runs)

    # ---- details
    md += ["## Details", ""]
    for r in loads:
        md += load_section(r) + [""]
    for r in runs:
        s = r["systems"]
        md += [
            f"### (c) whole run against the sandbox, no rate limit — {r['orders']:,} orders, {world(r)} world",
            "",
            f"`{r['command']}` ({r['machine']['date']})",
            "",
            "| system | seconds | sandbox CPU s | requests | orders | lines | peak RSS MB | CPU s | load avg | our time / its time |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
        ]
        for n, x in s.items():
            md.append(
                f"| {n} | {x['seconds']:.2f} | {x.get('sandbox_cpu_s', float('nan')):.1f} | {x['requests']:,} | {x.get('orders', 0):,} | {x.get('lines', 0):,} | "
                f"{x['peak_rss_mb']:,.0f} | {x.get('cpu_s', float('nan')):.1f} | {x.get('loadavg_1m', '')} | "
                f"{s['ours']['seconds'] / x['seconds']:.3f} |"
            )
        md.append("")
    for _name, r in sorted(ext.items()):
        le = r["list_extract"]
        md += [
            f"### (a) extraction — {r['orders']:,}-order world, sandbox limit {r['rate_limit'] or 'off'}",
            "",
            f"`{r['command']}` ({r['machine']['date']}). Taobao order list over the whole history:",
            "",
            "| system | seconds | sandbox CPU s | requests | 429s | served req/s | records | peak RSS MB | our time / its time |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n, x in le.items():
            srv = x["server"]
            md.append(
                f"| {n} | {x['seconds']:.2f} | {x.get('sandbox_cpu_s', float('nan')):.1f} | {srv['requests']:,} | {srv['throttled']:,} | "
                f"{srv['served'] / x['seconds']:.1f} | {x.get('records') or 0:,} | {x['peak_rss_mb']:,.0f} | "
                f"{le['ours']['seconds'] / x['seconds']:.3f} |"
            )
        c = r.get("concurrent")
        if c:
            md += [
                "",
                f"All endpoints together for {c['seconds']:.0f} s (our limiter, one budget): "
                f"{c['sustained_rate']:.2f} req/s answered = {100 * c['rate_share']:.1f}% of {r['rate_limit']:g}; "
                f"{c['server']['throttled']} of {c['server']['requests']} requests answered 429. Per endpoint: "
                + ", ".join(f"`{p}` {v['requests']}" for p, v in c["server"]["endpoints"].items())
                + ".",
            ]
        md.append("")
    for r in pagings:
        md += [
            f"### (a') requests per window — {r['orders']:,}-order world, {100 * r['null_id_copies']:g}% of orders "
            "followed by a copy whose id is null",
            "",
            f"`{r['command']}` ({r['machine']['date']}). The Taobao order list, no rate limit; *minimum* is "
            "ceil(total / pageSize) per window, *catch-up* the one query a creation window makes after its pass:",
            "",
            "| layout | windows | total | requests | minimum | catch-up | extra | re-pages | pages landed | records landed | seconds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, x in r["layouts"].items():
            md.append(
                f"| {name} | {x['windows']} | {x['total']:,} | {x['requests']:,} | {x['minimum']:,} | "
                f"{x['catch_up']} | {x['extra']} | {x['drift_repages']} | {x['pages_landed']:,} | "
                f"{x['records_landed']:,} | {x['seconds']:.2f} |"
            )
        md.append("")
    for r in reps:
        md += [
            f"### reports — warehouse of {r['orders']:,} orders (built from the sandbox's ground truth)",
            "",
            f"`{r['command']}`; sizes: " + ", ".join(f"{t} {n:,}" for t, n in r["sizes"].items()),
            "",
            "| view | rows | cold s | warm s (each) |",
            "|---|---:|---:|---|",
        ]
        for v, x in r["views"].items():
            md.append(f"| {v} | {x['rows']:,} | {x['cold_s']:.3f} | {', '.join(f'{t:.3f}' for t in x['warm_s'])} |")
        md.append("")
    for r in stores:
        md += [
            f"### every durable state under a storage URL — {r['orders']:,}-order world",
            "",
            f"`{r['command']}` ({r['machine']['date']}): the same runs with `XPORT_STORAGE_URL` on an S3 "
            "bucket of moto's server on this machine, and on one local disk; *fresh host*: the incremental "
            "started with an empty data directory (its cache downloaded first). Each publish uploads the "
            "whole warehouse file as a new version."
            + (
                " History: the `lists+truth` base (bench_incremental.py), imported into the bucket by "
                "`xport-etl storage import`; *first load (landed lists)*: the list endpoints' landed pages "
                "loaded and published into an empty data directory (the first load without its API "
                "requests and without the fan-out endpoints; see bench/NOTES.md)."
                if r.get("base") == "lists+truth"
                else ""
            ),
            "",
            "| run | local s | storage s | ratio | non-API s, local → storage | API wait s, local / storage | "
            "publishes | s / publish, local → storage | warehouse MB | uploaded MB | objects | "
            "peak RSS MB, local / storage | load average (1 min, before → after), local; storage |",
            "|---|---:|---:|---:|---|---|---:|---|---:|---:|---:|---|---|",
        ]

        def loads(run: str, r: dict = r) -> str:
            found = {x["mode"]: x.get("loadavg_1m") for x in r["runs"] if x["run"] == run}
            return "; ".join(
                f"{v[0]:.2f} → {v[1]:.2f}" if v else "—" for v in (found.get("local"), found.get("storage"))
            )

        def num(x: dict, key: str, fmt: str = ".2f") -> str:
            return format(x[key], fmt) if x.get(key) is not None else "—"

        for x in r["ratios"]:
            non_api = f"{x['local non-API s']:.2f} → {x['storage non-API s']:.2f}" if "storage non-API s" in x else "—"
            per = f"{x['local s/publish']:.2f} → {x['storage s/publish']:.2f}" if "storage s/publish" in x else "—"
            md.append(
                f"| {x['run']} | {num(x, 'local s')} | {num(x, 'storage s')} | {num(x, 'ratio')} | {non_api} | "
                f"{x.get('API wait s local/storage', '—')} | {x.get('publishes', '—')} | {per} | "
                f"{num(x, 'warehouse MB', '.1f')} | {num(x, 'uploaded MB', '.1f')} | {x.get('objects', '—')} | "
                f"{x.get('RSS local/storage MB', '—')} | {loads(x['run'])} |"
            )
        md.append("")
    if dag:
        md += [
            "### DAG import",
            "",
            f"`{dag['command']}` — fresh interpreter per import, after `import airflow.sdk`:",
            "",
            "| file | DAG file s (each run) | airflow.sdk s (each run) |",
            "|---|---|---|",
        ]
        for f, x in dag["files"].items():
            md.append(
                f"| {f} | {', '.join(f'{t:.3f}' for t in x['dag_s'])} | "
                f"{', '.join(f'{t:.2f}' for t in x['airflow_sdk_s'])} |"
            )
        md.append("")
    extra = ROOT / "bench" / "NOTES.md"
    if extra.exists():
        md += [extra.read_text()]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(md) + "\n")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
