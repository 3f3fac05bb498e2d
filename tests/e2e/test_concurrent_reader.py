"""Readers are never blocked: a separate process queries every report view in a loop, read-only,
while ten consecutive runs (lists and fan-outs) publish. It must see zero errors, and every state
it sees must be a complete load (the sum of line amounts equals the sum of order amounts, for
orders whose lines all loaded; every line has its order) and the state at the end of one run: a
run publishes once, so no reader sees a run's orders with another run's parcels and refunds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from tests.factories.sandbox import serve
from xport_etl.layout import DataLayout
from xport_etl.resources import sql_objects
from xport_etl.run.engine import run_window
from xport_etl.settings import Settings

# what identifies a published state: every fact table's size and the newest time in each
FINGERPRINT = """
select (select count(*) from fct_orders), (select count(*) from fct_order_lines),
       (select count(*) from fct_refunds), (select count(*) from fct_parcels),
       (select count(*) from fct_parcel_events), (select max(updated_at)::varchar from fct_orders),
       (select max(updated_at)::varchar from fct_refunds), (select max(last_event_at)::varchar from fct_parcels)
"""

READER = r"""
import json, sys, time
from pathlib import Path
import duckdb

path, stop, views, fingerprint = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
stats = {"iterations": 0, "errors": [], "states": set(), "incomplete": [], "seen": set()}
while not stop.exists():
    try:
        con = duckdb.connect(str(path), read_only=True)
        try:
            for view in views:
                con.execute(f"select * from {view}").fetchall()
            orders, goods, lines = con.execute('''
                with l as (select platform, order_id, count(*) as n, sum(amount) as amount
                           from fct_order_lines group by all)
                select (select count(*) from fct_orders),
                       sum(o.goods_amount) filter (where l.n = o.line_count),
                       sum(l.amount) filter (where l.n = o.line_count)
                from fct_orders as o join l using (platform, order_id)''').fetchall()[0]
            orphans = con.execute("select count(*) from fct_order_lines anti join fct_orders "
                                  "using (platform, order_id)").fetchall()[0][0]
            stats["states"].add(orders)
            stats["seen"].add(json.dumps(con.execute(fingerprint).fetchall()[0]))
            if goods != lines or orphans:
                stats["incomplete"].append([str(goods), str(lines), orphans])
        finally:
            con.close()
    except Exception as exc:
        stats["errors"].append(f"{type(exc).__name__}: {exc}")
    stats["iterations"] += 1
stats["states"] = sorted(stats["states"])
stats["seen"] = sorted(stats["seen"])
print(json.dumps(stats))
"""


@pytest.mark.slow
def test_reader_process_sees_only_complete_loads_during_ten_loads(tmp_path):
    views = [name for name, _ in sql_objects("reports")]
    with serve(seed=9, orders=300) as sandbox:
        world = sandbox.world
        settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0, refetch_after=0)
        # one run per call: the span covers the whole world
        span = world.clock + timedelta(days=30) - world.config.start
        run_window(settings, world.config.start, world.clock + timedelta(days=30), span=span)
        published = {_fingerprint(tmp_path)}
        stop = tmp_path / "stop-reader"
        reader = subprocess.Popen(
            [
                sys.executable,
                "-c",
                READER,
                str(DataLayout.of(tmp_path).warehouse),
                str(stop),
                ",".join(views),
                FINGERPRINT,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(0.5)
            for _ in range(10):  # ten runs, each of a world that moved on a day
                sandbox.advance(24 * 3600)
                span = world.clock + timedelta(days=30) - world.config.start
                run_window(settings, world.config.start, world.clock + timedelta(days=30), span=span)
                published.add(_fingerprint(tmp_path))
        finally:
            stop.touch()
            out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    stats = json.loads(out)
    assert stats["errors"] == []
    assert stats["incomplete"] == []
    assert stats["iterations"] >= 20
    assert len(stats["states"]) >= 3  # it really read through several different loads
    # every state it read was the end of a run: none had one run's orders with another's parcels
    assert set(stats["seen"]) <= published, set(stats["seen"]) - published


def _fingerprint(data_dir) -> str:
    import duckdb

    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        return json.dumps(con.execute(FINGERPRINT).fetchall()[0])
    finally:
        con.close()
