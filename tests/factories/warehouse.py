"""Warehouses built without running the pipeline: an in-memory one with rows placed by hand (and
the planted violation of each data check), one on disk holding a sandbox world's ground truth,
and a published one turned back into what an older version published."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from xport_etl.load.connect import connect_writer
from xport_etl.load.migrate import ensure_schema, set_settings
from xport_etl.report.views import describe_objects, refresh_views, reports
from xport_sandbox.truth import truth_tables
from xport_sandbox.world import World, WorldConfig


def memory_warehouse() -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse: every table (empty), view and macro, the report zone Asia/Shanghai,
    the session in UTC. The caller closes it (the ``con`` fixture of ``tests/conftest.py`` does)."""
    c = duckdb.connect()
    c.execute("set TimeZone = 'UTC'")
    ensure_schema(c)
    set_settings(c, {"report_tz": "Asia/Shanghai"})
    refresh_views(c)
    return c


# ---- rows placed by hand: one fct_* row each, with the columns the checks and reports read


def order(
    con, oid, created, *, platform="taobao", status="paid", goods="10.00", shipping="2.00", line_count=1, paid=None
):
    con.execute(
        "insert into fct_orders (platform, order_id, status, currency, goods_amount, shipping_amount, total_amount, "
        "line_count, created_at, paid_at, updated_at) values (?, ?, ?, 'CNY', ?, ?, ?, ?, ?, ?, ?)",
        [
            platform,
            oid,
            status,
            Decimal(goods),
            Decimal(shipping),
            Decimal(goods) + Decimal(shipping),
            line_count,
            created,
            paid,
            created,
        ],
    )


def line(con, oid, lid, amount="10.00", platform="taobao", index=0):
    con.execute(
        "insert into fct_order_lines (platform, order_id, line_id, line_index, amount, currency, refund_status) "
        "values (?, ?, ?, ?, ?, 'CNY', 'none')",
        [platform, oid, lid, index, Decimal(amount)],
    )


def refund(con, rid, oid, lid, amount, created, status="succeeded", platform="taobao"):
    con.execute(
        "insert into fct_refunds (platform, refund_id, order_id, line_id, status, refund_amount, currency, "
        "created_at, updated_at) values (?, ?, ?, ?, ?, ?, 'CNY', ?, ?)",
        [platform, rid, oid, lid, status, Decimal(amount), created, created],
    )


def parcel(con, tn, oid, first, last, delivered=None, events=1, platform="taobao"):
    con.execute(
        "insert into fct_parcels (platform, tracking_number, order_id, first_event_at, last_event_at, "
        "delivered_at, event_count, carrier) values (?, ?, ?, ?, ?, ?, ?, '中通快递')",
        [platform, tn, oid, first, last, delivered, events],
    )


def event(con, tn, index, at, platform="taobao"):
    con.execute(
        "insert into fct_parcel_events (platform, tracking_number, event_index, event_at) values (?, ?, ?, ?)",
        [platform, tn, index, at],
    )


def valid_world(con):
    """An order with one line, a refund within it and a delivered parcel with two events: every
    data check passes."""
    order(con, "1", datetime(2026, 1, 10))
    line(con, "1", "11")
    refund(con, "r1", "1", "11", "5.00", datetime(2026, 1, 20))
    parcel(con, "P1", "1", datetime(2026, 1, 11), datetime(2026, 1, 13), datetime(2026, 1, 13), events=2)
    event(con, "P1", 0, datetime(2026, 1, 11))
    event(con, "P1", 1, datetime(2026, 1, 13))


# each data check (sql/checks/) and a row that violates it, on top of valid_world
PLANTED = {
    "chk_fct_orders__unique_key": lambda c: order(c, "1", datetime(2026, 1, 10)),
    "chk_fct_orders__not_null_key": lambda c: order(c, None, datetime(2026, 1, 10), line_count=0),
    "chk_fct_order_lines__unique_key": lambda c: line(c, "1", "11"),
    "chk_fct_order_lines__not_null_key": lambda c: (
        order(c, "2", datetime(2026, 1, 10), line_count=0),
        line(c, "2", None),
    ),
    "chk_fct_order_lines__has_order": lambda c: line(c, "missing", "m1"),
    "chk_fct_orders__amount_equals_lines": lambda c: (
        order(c, "3", datetime(2026, 1, 10), goods="99.00"),
        line(c, "3", "31", "10.00"),
    ),
    "chk_fct_refunds__unique_key": lambda c: refund(c, "r1", "1", "11", "1.00", datetime(2026, 1, 20)),
    "chk_fct_refunds__not_null_key": lambda c: refund(c, None, "1", "11", "1.00", datetime(2026, 1, 20)),
    "chk_fct_refunds__amount_within_line": lambda c: refund(c, "r2", "1", "11", "12.01", datetime(2026, 1, 21)),
    "chk_fct_parcels__unique_key": lambda c: parcel(c, "P1", "1", datetime(2026, 1, 11), datetime(2026, 1, 12)),
    "chk_fct_parcels__not_null_key": lambda c: parcel(c, None, "1", datetime(2026, 1, 11), datetime(2026, 1, 12)),
    "chk_fct_parcel_events__unique_key": lambda c: event(c, "P1", 1, datetime(2026, 1, 14)),
    "chk_fct_parcel_events__not_null_key": lambda c: event(c, "P1", None, datetime(2026, 1, 14)),
    "chk_fct_parcel_events__has_parcel": lambda c: event(c, "NOPARCEL", 0, datetime(2026, 1, 14)),
    "chk_all__no_future_timestamps": lambda c: event(c, "P1", 2, datetime(2099, 1, 1)),
}


# ---- the ground truth of a world, and what older versions published

# The monthly reports' zone CTE before they were table macros (issue 16): each view read
# etl_settings.report_tz itself; the rest of each file is unchanged.
ZONE_BEFORE_MACROS = """report_zone as (
    select coalesce(max(value) filter (where key = 'report_tz'), 'Asia/Shanghai') as tz
    from etl_settings
),
"""
ZONE_OF_THE_MACRO = """report_zone as (
    select tz::varchar as tz  -- the macro's argument
),
"""


def as_published_before_the_report_macros(con: Any) -> None:
    """Make a warehouse (a writable DuckDB connection to it) what the version before the report
    macros published: every monthly view its own ``select`` reading ``etl_settings``, no macro."""
    zoned = {r.macro: r.name for r in reports() if r.macro}
    for report in reports():
        if report.macro:
            # a macro over another one (rpt_spend_monthly_at over the by-channel one) reads its view
            old = report.body
            for macro, view in zoned.items():
                if macro != report.macro:
                    old = old.replace(f"from {macro}(tz)", f"from {view}")
            if old == report.body:
                assert report.body.count(ZONE_OF_THE_MACRO) == 1, report.name
                old = report.body.replace(ZONE_OF_THE_MACRO, ZONE_BEFORE_MACROS)
            con.execute(f"create or replace view {report.name} as\n{old}")
    for macro in zoned:
        con.execute(f"drop macro table {macro}")


def truth_warehouse(data_dir: Any, *, seed: int, orders: int) -> dict:
    """A published-like ``warehouse.duckdb`` under ``data_dir`` holding the sandbox's ground truth of
    a world (``xport_sandbox.truth``: the rows a full load produces, without the HTTP), with the
    views, macros and comments a publish gives it. Returns the truth tables (pyarrow)."""
    tables = truth_tables(World(WorldConfig(seed=seed, orders=orders)))
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    con = connect_writer(Path(data_dir) / "warehouse.duckdb")
    try:
        ensure_schema(con)
        set_settings(con, {"report_tz": "Asia/Shanghai"})
        for name, table in tables.items():
            con.register("truth", table)
            con.execute(f"insert into {name} by name select * from truth")
            con.unregister("truth")
        refresh_views(con)
        describe_objects(con)
        con.execute("checkpoint")
    finally:
        con.close()
    return tables
