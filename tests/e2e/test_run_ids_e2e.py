"""One ``xport-etl run`` over several months is one run (issue 27.2), against a sandbox serving
odd records (rejects and warnings among them): one id on every window row, check result, reject
and fact row it wrote, the warehouse equal to the truth. The clock moves; an incremental run puts
its own id on the rows it wrote, every order that changed or appeared among them, while the
others keep the first run's. ``status`` lists both runs, newest first, and ``status --run`` traces
each as the ledgers and the warehouse record it."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import duckdb
import pytest

from tests.helpers import TABLES, assert_warehouse_equals_truth
from xport_etl.cli import main
from xport_etl.layout import DataLayout
from xport_etl.tables import FACT_TABLES
from xport_sandbox.common import WorldConfig
from xport_sandbox.testing import SandboxServer
from xport_sandbox.truth import truth_tables


@pytest.fixture(scope="module")
def odd_sandbox():
    """A world whose order pages carry ~5% odd records: rejects and warnings to carry run ids."""
    with SandboxServer(WorldConfig(seed=1, orders=100, mix="odd5")) as server:
        yield server


def _cli(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _run_id(out: str) -> str:
    """The run id a ``run`` prints (``run ID (`xport-etl status --run ID` shows its steps)``)."""
    found = re.search(r"^run (\S+) \(`xport-etl status --run \1` shows its steps\)$", out, re.M)
    assert found, out
    return found[1]


def _query(data_dir, sql: str) -> list[tuple]:
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _ids(data_dir, table: str) -> set:
    return {r for (r,) in _query(data_dir, f"select distinct run_id from {table}")}


def _public(table) -> dict[str, tuple]:
    """A truth table of orders as ``order_id → its public columns``."""
    cols = [c for c in table.column_names if c != "order_id"]
    return {
        r["order_id"]: tuple(r[c] for c in cols)
        for r in table.select(["order_id", *cols]).to_pylist()
        if r["order_id"] is not None
    }


def test_one_run_one_id_then_a_second_runs_id_on_what_it_changed(odd_sandbox, tmp_path, capsys):
    sandbox, world = odd_sandbox, odd_sandbox.world
    data = ["--quiet", "--base-url", sandbox.base_url, "--rate-limit", "0", "--data-dir", str(tmp_path)]
    period = ["--start", world.config.start.isoformat(), "--end", (world.clock + timedelta(days=1)).isoformat()]
    first = _run_id(_cli(capsys, "run", *period, "--run-days", "45", *data))  # six months: 5 bounded runs
    assert_warehouse_equals_truth(tmp_path, world)

    # one id on everything the run wrote
    assert _ids(tmp_path, "etl_runs") == _ids(tmp_path, "etl_check_results") == {first}
    for table in (*FACT_TABLES, "etl_rejects"):
        assert _ids(tmp_path, table) == {first}, table
    ((windows, publishes),) = _query(tmp_path, "select count(*), count(distinct publish_id) from etl_runs")
    assert windows > 20 and publishes == 5  # one publish per bounded run, all under the one id
    assert _query(tmp_path, "select count(distinct publish_id) from etl_check_results") == [(publishes,)]
    ((rejected, warned),) = _query(
        tmp_path,
        "select count(*) filter (severity = 'rejected'), count(*) filter (severity = 'warning') from etl_rejects",
    )
    assert rejected > 0 and warned > 0  # (the odd records' rejects and warnings carry it too)
    ((orders,),) = _query(tmp_path, "select count(*) from fct_orders")

    # the world moves on; an incremental run reads what changed since
    before = _public(truth_tables(world)["fct_orders"])
    clock = world.clock
    sandbox.advance(3 * 24 * 3600)
    since = [
        "--start",
        (clock - timedelta(hours=1)).isoformat(),
        "--end",
        (world.clock + timedelta(hours=1)).isoformat(),
    ]
    second = _run_id(_cli(capsys, "run", "--incremental", *since, *data))
    assert second != first and second > first  # ids sort by time
    assert_warehouse_equals_truth(tmp_path, world, [t for t in TABLES if t.name in ("fct_orders", "fct_order_lines")])

    after = _public(truth_tables(world)["fct_orders"])
    changed = {o for o, row in after.items() if before.get(o) != row}  # new or changed orders
    lineage = dict(_query(tmp_path, "select order_id, run_id from fct_orders"))
    assert changed and {o for o in changed if lineage[o] != second} == set()  # which run changed this order?
    kept = {o for o, r in lineage.items() if r == first}
    assert kept and not kept & changed  # the rows the second run did not write keep the first's id
    assert _query(tmp_path, f"select count(*) from etl_runs where run_id = '{first}'") == [(windows,)]
    assert _ids(tmp_path, "etl_runs") == {first, second}

    # status: both runs, newest first; each traced
    listed = json.loads(_cli(capsys, "status", "--format", "json", *data))["runs"]
    assert [r["run_id"] for r in listed] == [second, first]
    assert [(r["command"], r["outcome"], r["publishes"]) for r in listed] == [
        ("xport-etl run", "success", 1),
        ("xport-etl run", "success", publishes),
    ]
    trace = json.loads(_cli(capsys, "status", "--run", first, "--format", "json", *data))
    assert trace["run"]["windows"] == len(trace["windows"]) == windows
    assert trace["run"]["requests"] == sum(w["requests"] for w in trace["windows"]) > windows
    steps = [s["step"] for s in trace["steps"]]
    assert steps.count("publish") == publishes and steps.count("extract") == publishes
    assert {"stage", "merge", "fanout"} <= set(steps)
    assert all(s["seconds"] is not None and s["offset_s"] >= 0 for s in trace["steps"])
    assert all(w["seconds"] is not None for w in trace["windows"])  # each window's extraction, timed
    tables = {t["table"]: t["rows_written"] for t in trace["tables"]}
    assert tables["fct_orders"] == orders  # the first run wrote every order once
    assert sum(r["rows"] for r in trace["rejects"] if r["severity"] == "rejected") == trace["run"]["rejected"] > 0
    assert {c["publishes"] for c in trace["checks"]} == {publishes} and len(trace["checks"]) == 15
    second_trace = json.loads(_cli(capsys, "status", "--run", second, "--format", "json", *data))
    assert second_trace["run"]["windows"] == len(_query(tmp_path, f"select 1 from etl_runs where run_id = '{second}'"))
