"""One id per run (issue 27.2): a run's id reaches every window row, step, check result, reject and
fact row it writes, through the library's steps (the CLI's and the DAG tasks' alike), and a next
state an older version started is finished under the resuming run's id."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from tests.factories.landed import T0, land
from tests.factories.served import order, page, sub
from tests.helpers import assert_warehouse_equals_truth
from xport_etl.layout import DataLayout
from xport_etl.ledger import read_runs, read_steps
from xport_etl.load.checks import CheckFailedError, read_check_results
from xport_etl.load.publish import NextState
from xport_etl.load.published import PublishedWarehouse
from xport_etl.load.staging import stage_window
from xport_etl.run.state import merge_windows, next_state, publish_state
from xport_etl.run_ids import check_run_id, dag_run_id, new_run_id
from xport_etl.settings import Settings
from xport_etl.tables import FACT_TABLES

# the served world of the `sandbox` fixture (tests/conftest.py): the DAG tasks' test
SANDBOX = {"seed": 3, "orders": 60}
AMOUNT = "chk_fct_orders__amount_equals_lines"


def _batch(data_dir, records, day: int = 0):
    return stage_window(data_dir, land(data_dir, [page(records)], start=T0 + timedelta(days=day)))


def _lineage(data_dir, table: str, *key: str) -> dict[tuple, str | None]:
    """``key → run_id`` of a published table."""
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        cols = ", ".join(key)
        return {tuple(r[:-1]): r[-1] for r in con.execute(f"select {cols}, run_id from {table}").fetchall()}
    finally:
        con.close()


def test_a_run_id_sorts_by_time_and_a_dag_runs_names_its_dag():
    ids = [new_run_id(datetime(2026, 7, 14, 10, 15, s, tzinfo=UTC)) for s in (0, 1, 59)]
    assert all(re.fullmatch(r"20260714T1015\d\dZ-[0-9a-f]{8}", i) for i in ids) and sorted(ids) == ids
    assert ids[0].startswith("20260714T101500Z-")
    assert new_run_id() != new_run_id()
    airflow = "scheduled__2026-07-14T00:00:00+00:00"  # two DAGs' runs may have the same Airflow run id
    assert dag_run_id("xport_ingest", airflow) == f"xport_ingest/{airflow}" != dag_run_id("xport_callbacks", airflow)
    for bad in ("", "a run", "x\x1b[31m", "x\u202ey", "r" * 301):
        with pytest.raises(ValueError):
            check_run_id(bad)


def test_a_merge_writes_its_runs_id_on_the_rows_it_writes_and_no_other(tmp_path):
    first = NextState(tmp_path, "a", run_id="run-1")
    line = sub(subOrderId="11")
    first.merge([_batch(tmp_path, [order(id="1", subOrderVOS=[line]), order(id="2"), order(id=None)])])
    first.publish()
    assert set(_lineage(tmp_path, "fct_orders", "order_id").values()) == {"run-1"}
    assert set(_lineage(tmp_path, "fct_order_lines", "order_id", "line_id").values()) == {"run-1"}
    assert set(_lineage(tmp_path, "etl_rejects", "record_id").values()) == {"run-1"}  # the order without an id

    # the second run reads order 2 changed and an older state of order 1 (which loses the merge)
    second = NextState(tmp_path, "b", run_id="run-2")
    changed = order(id="2", status=11, updateTime="2026-02-03 08:00:00")
    older = order(id="1", subOrderVOS=[line], updateTime="2026-01-30 08:00:00")
    second.merge([_batch(tmp_path, [changed, older], day=1)])
    result = second.publish()
    assert _lineage(tmp_path, "fct_orders", "order_id") == {("1",): "run-1", ("2",): "run-2"}
    lines = _lineage(tmp_path, "fct_order_lines", "order_id", "line_id")
    assert {k[0]: v for k, v in lines.items()} == {"1": "run-1", "2": "run-2"}  # a line goes with its order
    assert set(_lineage(tmp_path, "etl_rejects", "record_id").values()) == {"run-1"}  # not its window's

    # the check results: each run's publish, under the run's id and the publish's
    rows, _ = read_check_results(tmp_path)
    assert {(r["run_id"], r["publish_id"]) for r in rows if r["run_id"] == "run-2"} == {("run-2", result.publish_id)}
    assert result.run_id == "run-2" and result.publish_id.startswith("publish-")
    assert len({r["publish_id"] for r in rows}) == 2


def test_a_publish_records_its_windows_steps_and_checks_under_the_runs_id(tmp_path):
    settings = Settings(data_dir=tmp_path)
    m = land(tmp_path, [page([order(id="1"), order(id="2", purchaseAmount="99.00")])])  # order 2 warns
    state = next_state(settings, "k", "run-7")
    merge_windows(settings, state, [m.directory / "manifest.json"])
    as_error = {AMOUNT: {"severity": "error"}}
    with pytest.raises(CheckFailedError):  # blocked: its windows and step are on record, failed
        publish_state(Settings(data_dir=tmp_path, check_overrides=as_error), state)
    (row,) = read_runs(tmp_path)
    assert (row["run_id"], row["outcome"], row["extraction_id"]) == ("run-7", "failed", m.run_id)
    blocked = read_steps(tmp_path)[-1]
    assert (blocked["step"], blocked["outcome"], blocked["checks"]["error"]) == ("publish", "failed", 1)

    result = publish_state(settings, state)  # the re-run publishes: same run, another publish
    (row,) = read_runs(tmp_path)  # the last word on the window
    assert (row["run_id"], row["outcome"], row["publish_id"]) == ("run-7", "success", result["publish_id"])
    assert row["landed_at"] is None  # (this hand-landed manifest has no finished_at; a paged one has)
    assert result["run_id"] == "run-7" and result["publish_id"] != blocked["publish_id"]
    steps = read_steps(tmp_path)
    assert [s["step"] for s in steps] == ["stage", "merge", "publish", "publish"]
    assert {s["run_id"] for s in steps} == {"run-7"}
    assert steps[1]["rows_written"]["fct_orders"] == 2 and steps[-1]["checks"] == {"pass": 14, "warn": 1}
    assert steps[-1]["rows_written"] == result["rows_written"] and steps[-1]["outcome"] == "success"
    checks, _ = read_check_results(tmp_path)
    assert {(r["run_id"], r["publish_id"]) for r in checks} == {
        ("run-7", blocked["publish_id"]),
        ("run-7", result["publish_id"]),
    }
    # etl_runs mirrors the window row as published
    con = duckdb.connect(str(DataLayout.of(tmp_path).warehouse), read_only=True)
    try:
        got = con.execute("select run_id, publish_id, extraction_id, outcome from etl_runs").fetchall()
    finally:
        con.close()
    assert got == [("run-7", result["publish_id"], m.run_id, "success")]


def test_a_next_state_an_older_version_started_is_finished_under_the_resuming_runs_id(tmp_path):
    """A run killed under the version before run ids, resumed by this one: what the old version
    merged (rows without an id, a ledger row naming its extraction) becomes the resuming run's."""
    settings = Settings(data_dir=tmp_path)
    m = land(tmp_path, [page([order(id="1"), order(id=None)])])
    old = next_state(settings, "plan-x-0000")
    merge_windows(settings, old, [m.directory / "manifest.json"])
    # as the older version left it: no run id in the sidecar, its rows, or the pending ledger row
    con = duckdb.connect(str(old.path))
    for table in (*FACT_TABLES, "etl_rejects"):
        con.execute(f"update {table} set run_id = null")
    con.close()
    meta = json.loads(old.meta_path.read_text())
    del meta["run_id"]
    meta["rows"] = [
        {k: v for k, v in r.items() if k not in ("extraction_id", "landed_at")} | {"run_id": m.run_id}
        for r in meta["rows"]
    ]
    old.meta_path.write_text(json.dumps(meta))

    resumed = next_state(settings, "plan-x-0000", "run-new")
    merge_windows(settings, resumed, [land(tmp_path, [page([order(id="2")])], start=T0 + timedelta(days=1)).directory])
    publish_state(settings, resumed)
    assert set(_lineage(tmp_path, "fct_orders", "order_id").values()) == {"run-new"}
    assert set(_lineage(tmp_path, "fct_order_lines", "order_id", "line_id").values()) == {"run-new"}
    assert set(_lineage(tmp_path, "etl_rejects", "record_id").values()) == {"run-new"}
    rows = {r["window_id"]: r for r in read_runs(tmp_path)}
    assert {r["run_id"] for r in rows.values()} == {"run-new"}
    assert rows[m.window_id]["extraction_id"] == m.run_id  # the old row's id was its extraction's


@pytest.mark.parametrize("stored", [False, True], ids=["data-dir", "storage-url"])
def test_the_dag_tasks_put_the_dag_runs_id_on_everything(sandbox, tmp_path, capsys, monkeypatch, stored):
    """The ingest DAG's tasks, called as its task functions call them (each its own next state
    object, as each task is its own process), with the DAG run's id: one id on everything. Under
    a storage URL the same ledger lines, read from its objects."""
    from xport_etl.cli import main
    from xport_etl.run.state import run_key
    from xport_etl.run.tasks import extract_fanout_for_run, extract_interval, load_into_run, publish_run
    from xport_etl.streams import graph

    data_dir, storage_url = tmp_path / "data", str(tmp_path / "bucket") if stored else None
    if stored:
        monkeypatch.setenv("XPORT_STORAGE_URL", str(storage_url))  # for the CLI's settings
    settings = Settings(base_url=sandbox.base_url, data_dir=data_dir, storage_url=storage_url, rate_limit=0)
    where = settings.layout
    airflow = "manual__2026-07-01T00:00:00+00:00"
    run_id, key = dag_run_id("xport_ingest", airflow), run_key("xport_ingest", airflow)
    world = sandbox.world
    start, end = world.config.start, world.clock + timedelta(days=1)
    order = graph.run_order()
    for e in graph.lists(order):
        load_into_run(settings, extract_interval(settings, e, start, end, run_id=run_id), key, run_id)
    for e in graph.fanouts(order):
        paths = extract_fanout_for_run(settings, e, key, run_id)
        if paths:
            load_into_run(settings, paths, key, run_id)
    assert publish_run(settings, key, run_id)["run_id"] == run_id
    assert PublishedWarehouse(where).exists()  # (this host's copy is the newest)
    assert_warehouse_equals_truth(data_dir, world)

    for table in FACT_TABLES:
        assert set(_lineage(data_dir, table, "platform").values()) == {run_id}, table
    assert {r["run_id"] for r in read_runs(where)} == {run_id}
    assert {r["run_id"] for r in read_check_results(where)[0]} == {run_id}
    steps = read_steps(where)
    assert {s["run_id"] for s in steps} == {run_id}
    assert {s["step"] for s in steps} == {"stage", "merge", "fanout", "publish"}
    if stored:  # the ledgers are the storage URL's objects, none of them on the host
        assert not DataLayout.of(data_dir).runs.exists() and not DataLayout.of(data_dir).check_results.exists()

    # the run as `status` shows it: by its id, or the start of it
    assert main(["status", "--format", "json", "--data-dir", str(data_dir)]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["runs"]
    assert (listed["run_id"], listed["command"], listed["outcome"]) == (run_id, "dag xport_ingest", "success")
    assert main(["status", "--run", "xport_ingest/manual", "--format", "json", "--data-dir", str(data_dir)]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["run"]["run_id"] == run_id and trace["run"]["windows"] == len(read_runs(where))


def test_status_run_takes_an_id_or_the_unique_start_of_one(tmp_path):
    """``status --run`` finds a run by its id or the start of exactly one; several starting so are
    named, not guessed between; none is a one-line error pointing at ``status``."""
    from xport_etl.errors import NotFoundError
    from xport_etl.ledger import append_run
    from xport_etl.report.trace import find_run

    ids = ["xport_ingest/manual__2026-07-14T00:00:00+00:00", "xport_ingest/scheduled__2026-07-14T00:00:00+00:00"]
    for run_id in ids:
        append_run(tmp_path, {"run_id": run_id, "endpoint": "taobao_orders", "window_id": "w", "outcome": "success"})
    append_run(tmp_path, {"step": "run", "run_id": "xport_reports/manual__1", "outcome": "success"})
    assert find_run(tmp_path, ids[1]) == ids[1]
    assert find_run(tmp_path, "xport_ingest/manual__") == ids[0]
    assert find_run(tmp_path, "xport_reports/") == "xport_reports/manual__1"  # a run known by its steps only
    with pytest.raises(NotFoundError, match="2 runs start with 'xport_ingest/'") as several:
        find_run(tmp_path, "xport_ingest/")
    assert several.value.hint == "give more of the id"
    with pytest.raises(NotFoundError, match="no run 'nope'"):
        find_run(tmp_path, "nope")
