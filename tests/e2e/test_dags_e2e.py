"""End to end through Airflow: ``airflow dags test xport_ingest`` and ``xport_reports`` against a
sandbox over real HTTP, then every fact table compared with the sandbox's ground truth (every
public column, both ways); then the sandbox clock moves five days and the next day's run catches
up, compared again.

Airflow runs as subprocesses with a throwaway ``AIRFLOW_HOME`` (SQLite), configured only through
the environment, exactly as the demo drives it; the sandbox runs in this process.

Each DAG run is one run of the warehouse's lineage (issue 27.2): its windows, check results and
the fact rows it wrote carry ``<dag_id>/<Airflow run id>``, and ``status --run`` traces it.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import xport_sandbox as sandbox_defaults
from tests.helpers import TABLES, assert_warehouse_equals_truth
from xport_etl.callbacks.inbox import InboxStore
from xport_etl.layout import DataLayout
from xport_etl.schemas import (
    FCT_ORDER_LINES,
    FCT_ORDERS,
    FCT_REFUNDS,
)
from xport_sandbox.demo import dags_test
from xport_sandbox.push import CallbackPusher, message_bytes
from xport_sandbox.testing import SandboxServer

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOOKBACK_DAYS = 400  # the world starts on 2026-01-01: every run re-reads the whole history
RUN_TIMEOUT = 240.0


def run_ids(data_dir: Path, table: str) -> set:
    """The distinct run ids of a published table."""
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        return {r for (r,) in con.execute(f"select distinct run_id from {table}").fetchall()}
    finally:
        con.close()


def traced(data_dir: Path, run_id: str) -> dict:
    """``xport-etl status --run run_id --format json`` of ``data_dir``."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "xport_etl.cli",
            "status",
            "--run",
            run_id,
            "--format",
            "json",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def next_logical_date(clock: datetime) -> str:
    """The `dags test` date whose data interval (the UTC day that ends there) holds `clock`."""
    day = clock.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (day + timedelta(days=1)).date().isoformat()


# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 11, "orders": 300}


@pytest.fixture
def airflow(tmp_path: Path, sandbox: SandboxServer):
    """Environment and a migrated metadata database for Airflow subprocesses."""
    home = tmp_path / "airflow"
    home.mkdir()
    connection = {
        "conn_type": "xport",
        "host": sandbox.base_url,
        "login": sandbox_defaults.DEFAULT_ACCESS_KEY,
        "password": sandbox_defaults.DEFAULT_ACCESS_SECRET,
        # no limit in the sandbox, none in the client: the test is about the pipeline
        "extra": {"user_id": sandbox_defaults.DEFAULT_USER_ID, "rate_limit": 0},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "XPORT_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW_CONN_XPORT_DEFAULT": json.dumps(connection),
            "XPORT_DATA_DIR": str(tmp_path / "data"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    for cmd in (["db", "migrate"], ["pools", "set", "xport_api", "1", "Xportcn API calls"]):
        out = subprocess.run([airflow_bin, *cmd], env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, f"airflow {' '.join(cmd)}: {out.stdout[-1500:]}"
    return env


def run_dag(env: dict[str, str], dag_id: str, logical_date: str, conf=None) -> dict[str, str]:
    log_path = Path(env["AIRFLOW_HOME"]) / f"{dag_id}-{logical_date}.log"
    return dags_test(env, dag_id, logical_date, log_path, conf=conf, timeout=RUN_TIMEOUT)


def asset_events(env: dict[str, str]) -> dict[str, int]:
    """Asset events per URI in the metadata database."""
    con = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    try:
        rows = con.execute(
            "select a.uri, count(*) from asset_event as e join asset as a on a.id = e.asset_id group by a.uri"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def test_dags_end_to_end_equal_truth_then_clock_moves(sandbox, airflow, tmp_path):
    world = sandbox.world
    conf = {"lookback_days": LOOKBACK_DAYS}
    first_date = next_logical_date(world.clock)
    assert first_date == "2026-07-01"  # [2026-06-30, 2026-07-01) UTC holds the sandbox clock

    results = run_dag(airflow, "xport_ingest", first_date, conf)
    # every task ran (a load with nothing to load would have been skipped, with no result)
    assert len(results) == 13, sorted(results)
    # the run published once: one event per fact asset, and no next state left behind
    events = asset_events(airflow)
    assert events == {f"xport://warehouse/{spec.name}": 1 for spec in TABLES}
    assert not list((tmp_path / "data" / "state" / "next").glob("*.duckdb"))
    run_dag(airflow, "xport_reports", first_date)

    first = assert_warehouse_equals_truth(tmp_path / "data", world)
    assert first["fct_orders"] > 300 and first["fct_order_lines"] > first["fct_orders"]
    assert first["fct_refunds"] > 0 and first["fct_parcel_events"] > first["fct_parcels"] > 0

    # the ingest run is one run: its id, from Airflow's run, on every window and every fact row
    data = tmp_path / "data"
    (ingest,) = run_ids(data, "etl_runs")
    assert ingest.startswith("xport_ingest/manual__")  # (`dags test` names its run manual__<now>)
    for spec in TABLES:
        assert run_ids(data, spec.name) == {ingest}, spec.name
    checked = run_ids(data, "etl_check_results")  # the ingest's publish, then the reports run's
    (reports,) = checked - {ingest}
    assert ingest in checked and reports.startswith("xport_reports/")
    trace = traced(data, ingest)
    assert trace["run"]["command"] == "dag xport_ingest" and trace["run"]["outcome"] == "success"
    assert trace["run"]["publishes"] == 1 and trace["run"]["windows"] == len(trace["windows"]) > 0
    assert {"extract", "stage", "merge", "fanout", "publish"} <= {s["step"] for s in trace["steps"]}

    # a day of changes arrives as message callbacks only, and the xport_callbacks DAG applies
    # them: orders, lines and refunds of both platforms equal the truth (parcels wait for the
    # next run: callbacks do not name them)
    t0 = world.clock
    sandbox.advance(24 * 3600)
    pusher = CallbackPusher(world, "unused", "unused", seed=1)
    messages = pusher.messages_between(t0, world.clock + timedelta(seconds=1))
    assert {m["messagePlatform"] for m in messages} == {0, 1}
    # what the receiver stores, as it stores it: on the API's clock (the sandbox's)
    store = InboxStore(tmp_path / "data" / "callbacks", clock=lambda: world.clock_ms / 1000)
    for m in messages:
        raw = message_bytes(m)
        store.append(raw, json.loads(raw))
    store.close()
    stale = {spec.name for spec in (FCT_ORDERS, FCT_ORDER_LINES, FCT_REFUNDS)}
    with pytest.raises(AssertionError):
        assert_warehouse_equals_truth(tmp_path / "data", world, [FCT_ORDERS])
    consumed = ast.literal_eval(run_dag(airflow, "xport_callbacks", first_date)["consume"])
    assert consumed["messages"] == len(messages) and consumed["dead_lettered"] == 0, consumed
    assert_warehouse_equals_truth(tmp_path / "data", world, [t for t in TABLES if t.name in stale])
    # the orders it refreshed carry its id; the others keep the ingest run's
    callbacks = consumed["run_id"]
    assert callbacks.startswith("xport_callbacks/") and run_ids(data, "fct_orders") == {ingest, callbacks}
    trace = traced(data, callbacks)
    assert (trace["run"]["command"], trace["run"]["outcome"]) == ("dag xport_callbacks", "success")

    # the world moves on: new orders, statuses changed, parcels moved; the next day's run
    # (with the same lookback) catches up
    sandbox.advance(4 * 24 * 3600)
    next_date = next_logical_date(world.clock)
    assert next_date == "2026-07-06"
    run_dag(airflow, "xport_ingest", next_date, conf)
    run_dag(airflow, "xport_reports", next_date)
    later = assert_warehouse_equals_truth(tmp_path / "data", world)
    assert later["fct_orders"] > first["fct_orders"]
    assert later["fct_parcel_events"] > first["fct_parcel_events"]


def test_the_ingest_dag_under_airflow_keeps_everything_durable_in_the_storage_url(s3_url, sandbox, airflow, tmp_path):
    """Issue 26 through Airflow itself: ``airflow dags test xport_ingest`` with the Connection's
    ``storage_url`` extra (the provider's path to ``Settings``). Nothing durable stays only on the
    host's disk: its scratch directory (a cache of the published version, spool, staging) is
    deleted after the run, and a fresh host's ``xport-etl pull`` equals the sandbox's truth.
    (Every task in a process and a scratch directory of its own, one killed and retried:
    ``tests/e2e/test_no_shared_disk.py``.)"""
    env = {**airflow, **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    connection = json.loads(env["AIRFLOW_CONN_XPORT_DEFAULT"])
    connection["extra"]["storage_url"] = s3_url
    env["AIRFLOW_CONN_XPORT_DEFAULT"] = json.dumps(connection)
    results = run_dag(env, "xport_ingest", next_logical_date(sandbox.world.clock), {"lookback_days": LOOKBACK_DAYS})
    assert len(results) == 13, sorted(results)

    scratch = tmp_path / "data"
    # the host keeps only a cache of the version it published (``warehouse.duckdb.version`` says
    # which): delete the whole scratch directory, as a pod's goes with it
    assert (scratch / "warehouse.duckdb.version").exists()
    shutil.rmtree(scratch)
    reader = tmp_path / "reader"
    pull_env = {k: v for k, v in env.items() if not k.startswith("XPORT_")}
    pull_env.update(XPORT_STORAGE_URL=s3_url, XPORT_DATA_DIR=str(tmp_path / "reader-scratch"))
    pulled = subprocess.run(
        [sys.executable, "-m", "xport_etl.cli", "pull", "--to", str(reader / "warehouse.duckdb"), "-q"],
        env=pull_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    counts = assert_warehouse_equals_truth(reader, sandbox.world)
    assert all(counts.values()), counts
