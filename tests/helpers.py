"""Helpers shared by test modules (import them from here, not from another test module)."""

from __future__ import annotations

from typing import Any


def serve(seed: int, orders: int, **server: Any):
    """A `SandboxServer` (a context manager) on `WorldConfig(seed=seed, orders=orders)`.

    Without a rate limit unless `server` sets one; other `server` keywords (`access_secret`,
    `sign_recipe`, ...) go to `SandboxServer` as they are.
    """
    from xport_sandbox.testing import SandboxServer
    from xport_sandbox.world import WorldConfig

    return SandboxServer(WorldConfig(seed=seed, orders=orders), **{"rate_limit": None, **server})


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
    from xport_etl.report.views import reports

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
    from pathlib import Path

    from xport_etl.load.connect import connect_writer
    from xport_etl.load.migrate import ensure_schema, set_settings
    from xport_etl.report.views import describe_objects, refresh_views
    from xport_sandbox.truth import truth_tables
    from xport_sandbox.world import World, WorldConfig

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
