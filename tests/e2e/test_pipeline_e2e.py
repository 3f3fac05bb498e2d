"""End to end: sandbox over real HTTP → raw pages → Parquet → DuckDB for every endpoint on both
platforms, compared with the sandbox's ground truth row for row and cent for cent (every
docs/warehouse.md column of all five fact tables), then again after a re-run of the same window, and
again after the sandbox clock moved (new orders, statuses changed, new events, parcels delivered)."""

from __future__ import annotations

from datetime import timedelta

import pyarrow.compute as pc

from tests.helpers import assert_warehouse_equals_truth
from xport_etl.run.engine import run_window
from xport_etl.settings import Settings
from xport_sandbox.truth import truth_tables

# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 11, "orders": 1200}


def test_every_endpoint_end_to_end_equal_truth_then_rerun_then_clock_moves(sandbox, tmp_path):
    settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0)
    world = sandbox.world
    start = world.config.start
    end = world.clock + timedelta(days=30)  # the window covers every order created so far

    run_window(settings, start, end)
    first = assert_warehouse_equals_truth(tmp_path, world)
    assert first["fct_orders"] > 500 and first["fct_order_lines"] > first["fct_orders"]
    assert min(first.values()) > 0, first  # refunds, parcels and events are really there

    # the same window again: identical facts, no duplicates
    run_window(settings, start, end)
    assert assert_warehouse_equals_truth(tmp_path, world) == first

    # the world moves on: new orders appear, existing ones change status; a re-run catches up
    before_all = truth_tables(world)
    truth_before = before_all["fct_orders"]
    sandbox.advance(5 * 24 * 3600)
    after_all = truth_tables(world)
    truth_after = after_all["fct_orders"]
    for table in ("fct_parcel_events", "fct_refunds"):
        assert after_all[table].num_rows > before_all[table].num_rows, table
    delivered = [pc.sum(pc.is_valid(t["fct_parcels"]["delivered_at"])).as_py() for t in (before_all, after_all)]
    assert delivered[1] > delivered[0]
    assert truth_after.num_rows > truth_before.num_rows
    before = dict(zip(truth_before["order_id"].to_pylist(), truth_before["status"].to_pylist(), strict=True))
    changed = sum(
        1
        for oid, st in zip(truth_after["order_id"].to_pylist(), truth_after["status"].to_pylist(), strict=True)
        if oid in before and before[oid] != st
    )
    assert changed > 0
    run_window(settings, start, world.clock + timedelta(days=30))
    later = assert_warehouse_equals_truth(tmp_path, world)
    assert later["fct_orders"] == truth_after.num_rows
