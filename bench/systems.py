"""The systems under test, one task per fresh process: ``python -m bench.systems TASK ARGS_JSON OUT``.

Each task times only its own work (after imports) and writes a JSON result to OUT, including
``seconds`` and ``maxrss_self_kb``; the parent (``bench.world.run_child``) adds the polled peak RSS
of the whole process tree. Tasks:

- ``ours_extract``  our ``extract_window`` over the world's history (per endpoint, 31-day chunks)
- ``ours_load``     our ``load_windows`` (stage_window + publish) over landed windows
- ``ours_run``      our ``run_window`` (extract + normalise + load) for the given endpoints
- ``duckdb_ref``    one DuckDB ``read_json`` + ``unnest`` query per table over the landed pages
- ``dlt_load``      dlt resource over the landed pages → DuckDB (``config``: default | best)
- ``dlt_extract``   dlt ``rest_api_source`` → ``pipeline.extract`` only
- ``dlt_run``       dlt ``rest_api_source`` → ``pipeline.run`` into DuckDB
"""

from __future__ import annotations

import gzip
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# dlt's "best" configuration: set before dlt is imported (dlt reads env vars when it resolves
# its config). Chosen from dlt's performance guide: parquet loader files, 2 normalise processes,
# large in-memory buffers, rotated intermediary files so the 2 workers have files to share.
DLT_BEST_ENV = {
    "NORMALIZE__WORKERS": "2",
    "DATA_WRITER__BUFFER_MAX_ITEMS": "50000",
    "EXTRACT__DATA_WRITER__FILE_MAX_ITEMS": "50000",
    "NORMALIZE__DATA_WRITER__FILE_MAX_ITEMS": "200000",
    "NORMALIZE__LOADER_FILE_FORMAT": "parquet",
}
DLT_COMMON_ENV = {"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"}


def _bounds(args: dict) -> tuple[datetime, datetime]:
    from bench.world import world_bounds

    return world_bounds()


def _settings(args: dict):
    from xport_etl.settings import Settings

    # from_env: the knobs a benchmark sets in the child's environment (XPORT_WORKERS, XPORT_STAGE_MEMORY…)
    return Settings.from_env(
        base_url=args.get("base_url", "http://127.0.0.1:8765"),
        data_dir=Path(args["data_dir"]),
        rate_limit=float(args.get("rate_limit") or 0),
    )


# ---- ours


def ours_extract(args: dict) -> dict:
    from xport_etl.run.paging import _make_client, extract_window
    from xport_etl.run.windows import DEFAULT_CHUNK, split_window

    settings = _settings(args)
    start, end = _bounds(args)
    if args.get("one_pass"):
        # the landed-pages cache: nothing moves in the sandbox while it is landed, so one pass over
        # each window is all paging needs (a world with null ids looks "moving" to paging that
        # counts distinct ids until issue 24 item 0, and would land three passes)
        import xport_etl.run

        xport_etl.run.MAX_PASSES = 1
    client = _make_client(settings)
    t0 = time.perf_counter()
    manifests: dict[str, list[str]] = {}
    try:
        windows = [(start, end)] if args.get("one_window") else split_window(start, end, DEFAULT_CHUNK)
        for e in args["endpoints"]:
            manifests[e] = [extract_window(settings, e, a, b, client=client) for a, b in windows]
    finally:
        client.close()
    seconds = time.perf_counter() - t0
    mans = [json.loads(Path(m).read_text()) for ms in manifests.values() for m in ms]
    return {
        "seconds": seconds,
        "manifests": manifests,
        "pages": sum(m["pages"] for m in mans),
        "records": sum(m["records"] for m in mans),
        "requests": sum(m["requests"] for m in mans),
        "http_429": sum(m["http_429"] for m in mans),
        "retries": sum(m["retries"] for m in mans),
    }


def _ours_counts(data_dir: Path) -> dict:
    from xport_etl.load.connect import connect_reader

    con = connect_reader(data_dir)
    try:
        q = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
        return {
            "orders": q("select count(*) from fct_orders where platform = 'taobao'"),
            "lines": q("select count(*) from fct_order_lines where platform = 'taobao'"),
            # rejected orders that did not load (a rejected copy of an order whose other copy
            # loaded is not one: the check is orders + these = distinct ids on the pages)
            "order_rejects": q(
                "select count(distinct record_id) from etl_rejects where endpoint = 'taobao_orders' "
                "and severity = 'rejected' and reason not like 'sub-order:%' and record_id not in "
                "(select order_id from fct_orders where platform = 'taobao')"
            ),
            # every rejected order row (a corrupt copy whose twin loaded too): with the warnings,
            # the records the world served odd
            "order_reject_rows": q(
                "select count(*) from etl_rejects where endpoint = 'taobao_orders' "
                "and severity = 'rejected' and reason not like 'sub-order:%'"
            ),
            "line_rejects": q(
                "select count(*) from etl_rejects where endpoint = 'taobao_orders' "
                "and severity = 'rejected' and reason like 'sub-order:%'"
            ),
            "warnings": q("select count(*) from etl_rejects where endpoint = 'taobao_orders' and severity = 'warning'"),
        }
    finally:
        con.close()


def _fast_share(data_dir: Path) -> dict:
    """Records of the Taobao order windows and how many the DuckDB normaliser typed in SQL (the
    batch markers say; the rest went, one by one or by page, to the Python reference)."""
    records = fast = 0
    for marker in (Path(data_dir) / "parquet" / "_batches").glob("taobao_orders__*.json"):
        batch = json.loads(marker.read_text())
        records += batch.get("records") or 0
        fast += batch.get("fast_records") or 0
    return {"records": records, "fast_records": fast, "fast_share": round(fast / records, 5) if records else None}


def ours_load(args: dict) -> dict:
    from xport_etl.run.state import load_windows

    settings = _settings(args)
    t0 = time.perf_counter()
    if args.get("profile"):
        from pyinstrument import Profiler

        prof = Profiler(interval=0.005)
        prof.start()
    result = load_windows(settings, args["manifests"])
    seconds = time.perf_counter() - t0
    out = {
        "seconds": seconds,
        "rows_written": result["rows_written"],
        "rejects": result["rejects"],
        **_ours_counts(settings.data_dir),
        **_fast_share(settings.data_dir),
    }
    if args.get("profile"):
        prof.stop()
        Path(args["profile"]).write_text(prof.output_text(unicode=False, color=False, show_all=False))
    return out


def ours_run(args: dict) -> dict:
    from xport_etl.run.engine import run_window

    settings = _settings(args)
    start, end = _bounds(args)
    # one window: the whole history as one window and one run (``extract --start … --end …``)
    whole = {"chunk": end - start, "span": end - start} if args.get("one_window") else {}
    t0 = time.perf_counter()
    result = run_window(settings, start, end, endpoints=args["endpoints"], **whole)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "rows_written": result["rows_written"],
        "rejects": result["rejects"],
        **_ours_counts(settings.data_dir),
    }


# ---- the plain-DuckDB reference

_SUB = (
    "STRUCT(subOrderId VARCHAR, orderNo VARCHAR, itemId VARCHAR, skuId VARCHAR, title VARCHAR, "
    "quantity VARCHAR, purchaseAmount VARCHAR, purchaseCurrency VARCHAR, domesticPostFee VARCHAR, "
    "status VARCHAR, refundStatus VARCHAR, taobaoPurchaseId VARCHAR, taobaoSubPurchaseId VARCHAR, "
    "closeReason VARCHAR, errorCode VARCHAR, errorMessage VARCHAR, logisticCompanyName VARCHAR, "
    "logisticNumber VARCHAR)"
)
_REC = (
    "STRUCT(id VARCHAR, orderNo VARCHAR, status VARCHAR, orderSource VARCHAR, "
    "sellerOrderNumber VARCHAR, purchaseAmount VARCHAR, purchaseCurrency VARCHAR, "
    "domesticPostFee VARCHAR, receiver VARCHAR, warehouseName VARCHAR, warehouseAddress VARCHAR, "
    f"closeReason VARCHAR, createTime VARCHAR, payTime VARCHAR, updateTime VARCHAR, subOrderVOS {_SUB}[])"
)
_CST = "interval 8 hour"


_PAGES_AS_TEXT = (
    "read_csv(?, columns = {line: 'VARCHAR'}, delim = chr(1), quote = '', escape = '', "
    "header = false, compression = 'gzip', max_line_size = 100000000)"
)


def duckdb_ref(args: dict) -> dict:
    """What the normalisation costs as plain DuckDB SQL: no rejects, no merge, no checks.

    ``variant``: ``read_json`` (one ``read_json`` with the page's declared structure, then
    ``unnest(data.records)``) or ``text`` (each page read as one text line, its ``data.records``
    cast from JSON to the same structure: DuckDB's JSON reader is slow on 160 KB lines)."""
    import duckdb

    db = Path(args["data_dir"]) / "ref.duckdb"
    t0 = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("set TimeZone = 'UTC'")
    if args.get("variant", "read_json") == "read_json":
        con.execute(
            f"""
            create temp table recs as
            select unnest(data.records) as r
            from read_json(?, format = 'newline_delimited', compression = 'gzip',
                           columns = {{data: 'STRUCT(records {_REC}[])'}}, maximum_object_size = 67108864)
            """,
            [args["files"]],
        )
    else:
        con.execute(
            f"""
            create temp table recs as
            select unnest(cast(json_extract(line, '$.data.records') as {_REC}[])) as r
            from {_PAGES_AS_TEXT}
            """,
            [args["files"]],
        )
    con.execute(
        f"""
        create table orders as
        select r.id as order_id, r.orderNo as order_no, try_cast(r.status as integer) as status,
               r.orderSource as order_source, r.sellerOrderNumber as seller_order_number,
               r.purchaseCurrency as currency,
               try_cast(r.purchaseAmount as decimal(18, 2)) as goods_amount,
               try_cast(r.domesticPostFee as decimal(18, 2)) as shipping_amount,
               len(r.subOrderVOS) as line_count,
               try_cast(r.createTime as timestamp) - {_CST} as created_at,
               try_cast(r.payTime as timestamp) - {_CST} as paid_at,
               try_cast(r.updateTime as timestamp) - {_CST} as updated_at,
               r.closeReason as close_reason, r.receiver as receiver
        from recs
        """
    )
    con.execute(
        """
        create table order_lines as
        select order_id, s.subOrderId as line_id, s.itemId as item_id, s.skuId as sku_id,
               s.title as title, try_cast(s.quantity as integer) as quantity,
               try_cast(s.purchaseAmount as decimal(18, 2)) as amount,
               try_cast(s.domesticPostFee as decimal(18, 2)) as shipping_amount,
               s.purchaseCurrency as currency, try_cast(s.refundStatus as integer) as refund_status,
               try_cast(s.status as integer) as line_status, s.taobaoPurchaseId as purchase_id,
               s.taobaoSubPurchaseId as purchase_line_id
        from (select r.id as order_id, unnest(r.subOrderVOS) as s from recs)
        """
    )
    con.execute("drop table recs")
    con.execute("checkpoint")
    con.close()
    seconds = time.perf_counter() - t0
    con = duckdb.connect(str(db), read_only=True)
    q = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
    out = {
        "seconds": seconds,
        "orders": q("select count(*) from orders"),
        "lines": q("select count(*) from order_lines"),
        "distinct_orders": q("select count(distinct order_id) from orders"),
        "distinct_lines": q("select count(distinct line_id) from order_lines"),
        # a fingerprint of the typed values, to check the two variants agree
        "checksum": str(q("select sum(hash(order_id, goods_amount, created_at, updated_at, line_count)) from orders")),
    }
    con.close()
    return out


# ---- dlt


def _dlt_pipeline(args: dict, name: str):
    import dlt

    work = Path(args["data_dir"])
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(work / "dlt_pipelines"),
        destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
        dataset_name="xport",
    )


def _dlt_counts(pipeline) -> dict:
    with pipeline.sql_client() as c:
        q = lambda sql: c.execute_sql(sql)[0][0]  # noqa: E731
        return {
            "orders": q("select count(*) from taobao_orders"),
            "lines": q("select count(*) from taobao_orders__sub_order_vos"),
        }


def _run_kwargs(args: dict) -> dict:
    return {"loader_file_format": "parquet"} if args.get("config") == "best" else {}


def dlt_load(args: dict) -> dict:
    """The same landed pages through dlt: a resource yielding each page's records."""
    import dlt
    from dlt.common import json as djson

    files = args["files"]

    @dlt.resource(name="taobao_orders", write_disposition="append")
    def taobao_orders():
        for path in files:
            with gzip.open(path, "rb") as f:
                for line in f:
                    yield djson.loadb(line)["data"]["records"]

    pipeline = _dlt_pipeline(args, "bench_load")
    t0 = time.perf_counter()
    t = {}
    if args.get("stages"):
        pipeline.extract(taobao_orders(), **_run_kwargs(args))
        t["extract_s"] = time.perf_counter() - t0
        pipeline.normalize()
        t["normalize_s"] = time.perf_counter() - t0 - t["extract_s"]
        pipeline.load()
        t["load_s"] = time.perf_counter() - t0 - t["extract_s"] - t["normalize_s"]
    else:
        pipeline.run(taobao_orders(), **_run_kwargs(args))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, **t, **_dlt_counts(pipeline)}


def _dlt_source(args: dict):
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
    from dlt.sources.rest_api import rest_api_source

    from bench.dlt_auth import XportDltAuth
    from xport_etl.extract.endpoints import format_window_value
    from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID

    start, end = _bounds(args)
    body = {
        "pageSize": 100,
        "createStartTime": format_window_value(start, "cst_string"),
        "createEndTime": format_window_value(end, "cst_string"),
    }
    return rest_api_source(
        {
            "client": {
                "base_url": args["base_url"],
                "auth": XportDltAuth(
                    access_key=DEFAULT_ACCESS_KEY, secret=DEFAULT_ACCESS_SECRET, user_id=DEFAULT_USER_ID
                ),
                "paginator": PageNumberPaginator(base_page=1, page_body_path="pageNo", total_path="data.pages"),
            },
            "resources": [
                {
                    "name": "taobao_orders",
                    "write_disposition": "append",
                    "endpoint": {
                        "path": "/open/purchase/page",
                        "method": "POST",
                        "json": body,
                        "data_selector": "data.records",
                    },
                }
            ],
        }
    )


def dlt_extract(args: dict) -> dict:
    pipeline = _dlt_pipeline(args, "bench_extract")
    source = _dlt_source(args)
    t0 = time.perf_counter()
    info = pipeline.extract(source, **_run_kwargs(args))
    seconds = time.perf_counter() - t0
    metrics = info.metrics[info.loads_ids[0]][0]["table_metrics"]
    return {
        "seconds": seconds,
        "records": metrics["taobao_orders"].items_count,
        "lines": metrics["taobao_orders__sub_order_vos"].items_count
        if "taobao_orders__sub_order_vos" in metrics
        else None,
    }


def dlt_run(args: dict) -> dict:
    pipeline = _dlt_pipeline(args, "bench_run")
    source = _dlt_source(args)
    t0 = time.perf_counter()
    pipeline.run(source, **_run_kwargs(args))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, **_dlt_counts(pipeline)}


def ours_concurrent(args: dict) -> dict:
    """Every endpoint at once (3 list endpoints over the whole history + 3 fan-outs from the
    published warehouse in ``data_dir``), each in its own thread and client, sharing our
    machine-wide rate limiter, for ``duration`` seconds; then exit (the parent reads the server's
    counts)."""
    import threading

    from xport_etl.run.fanout import extract_fanout, fanout_keys
    from xport_etl.run.paging import _make_client, extract_window
    from xport_etl.run.windows import DEFAULT_CHUNK, split_window
    from xport_etl.streams import graph

    LIST_ENDPOINTS, FANOUT_ENDPOINTS = graph.lists(graph.run_order()), graph.fanouts(graph.run_order())

    settings = _settings(args)
    start, end = _bounds(args)
    keys = {e: fanout_keys(settings, e)[0] for e in FANOUT_ENDPOINTS}
    clients = []
    errors: list[str] = []

    def lists(e: str) -> None:
        client = _make_client(settings)
        clients.append(client)
        try:
            for a, b in split_window(start, end, DEFAULT_CHUNK):
                extract_window(settings, e, a, b, client=client)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{e}: {exc}")

    def fanout(e: str) -> None:
        client = _make_client(settings)
        clients.append(client)
        try:
            extract_fanout(settings, e, keys=keys[e], client=client)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{e}: {exc}")

    threads = [threading.Thread(target=lists, args=(e,), daemon=True) for e in LIST_ENDPOINTS]
    threads += [threading.Thread(target=fanout, args=(e,), daemon=True) for e in FANOUT_ENDPOINTS]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    deadline = t0 + float(args["duration"])
    for t in threads:
        t.join(max(0.0, deadline - time.perf_counter()))
    seconds = time.perf_counter() - t0
    stats: dict[str, float] = {}
    for c in clients:
        for k, v in c.stats.as_dict().items():
            if isinstance(v, (int, float)):
                stats[k] = stats.get(k, 0) + v
    return {
        "seconds": seconds,
        "keys": {e: len(v) for e, v in keys.items()},
        "finished": sum(not t.is_alive() for t in threads),
        "threads": len(threads),
        "client_stats": stats,
        "errors": errors,
        "_exit": True,
    }


TASKS = {
    f.__name__: f
    for f in (ours_extract, ours_load, ours_run, duckdb_ref, dlt_load, dlt_extract, dlt_run, ours_concurrent)
}


def main() -> None:
    task, args, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    if task.startswith("dlt"):
        os.environ.update(DLT_COMMON_ENV)
        if args.get("config") == "best":
            os.environ.update(DLT_BEST_ENV)
    if task.startswith("ours"):
        # first, as in the CLI and the DAGs: xport_etl picks Arrow's allocator before pyarrow loads
        import xport_etl  # noqa: F401
    # the heavy libraries every system uses, imported before any timing starts (all alike)
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if task.startswith("ours"):
        import xport_etl.load.publish  # noqa: F401
        import xport_etl.load.staging  # noqa: F401
        import xport_etl.run.engine  # noqa: F401
    elif task.startswith("dlt"):
        import dlt  # noqa: F401
    result = TASKS[task](args)
    ru_s = resource.getrusage(resource.RUSAGE_SELF)
    ru_c = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.update(
        maxrss_self_kb=ru_s.ru_maxrss,
        maxrss_children_kb=ru_c.ru_maxrss,
        cpu_s=ru_s.ru_utime + ru_s.ru_stime + ru_c.ru_utime + ru_c.ru_stime,
        task=task,
        finished_at=datetime.now(UTC).isoformat(),
    )
    out.write_text(json.dumps(result, default=str))
    if result.get("_exit"):  # threads may still be running: do not wait for them
        sys.stdout.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
