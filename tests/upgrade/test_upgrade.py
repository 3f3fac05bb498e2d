"""A data directory written by the released code upgrades in place.

``released.tar.gz`` (``build_fixture.py`` says how it was made, by which commit) holds a published
warehouse and a run killed half-way, with its plan, its next state, its landed pages and Parquet,
and the run and check ledgers. This code must read the published warehouse as it is (reports, the
dashboard in the warehouse's zone and in another, status), then resume the killed run and end equal
to the sandbox's truth, keeping the ledgers' history; and re-publish every landed window from its
raw pages, again equal to the truth.

Run ids (issue 27.2): the released ledgers' rows keep their ids, with the columns added since null;
the resumed run is one run under one id (its plan, from before run ids, takes the resuming
command's), on its windows, check results and every fact row it wrote, the rows its killed attempt
merged under the released code included; ``status --run`` traces it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.factories.sandbox import serve
from tests.helpers import assert_no_duplicates, assert_warehouse_equals_truth
from tests.upgrade.build_fixture import at_root
from xport_etl.cli import main
from xport_etl.layout import DataLayout
from xport_etl.load.connect import connect_reader
from xport_etl.report.dashboard import collect

FIXTURE = Path(__file__).resolve().parent / "released.tar.gz"


def _cli(data_dir: Path, base_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XPORT_RATE_LIMIT": "0", "XPORT_WORKERS": "1"}
    env.pop("XPORT_CRASH_AT", None)
    cmd = [sys.executable, "-m", "xport_etl.cli", *args, "--quiet", "--base-url", base_url, "--data-dir", str(data_dir)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _query(data_dir: Path, sql: str) -> list[tuple]:
    con = connect_reader(data_dir)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _run_id(out: str) -> str:
    return re.search(r"^run (\S+) \(`xport-etl status --run", out, re.M)[1]


def _history(data_dir: Path) -> tuple[set, set]:
    con = connect_reader(data_dir)
    try:
        runs = set(con.execute("select run_id, endpoint, window_id from etl_runs").fetchall())
        checks = set(con.execute("select run_id, check_name, outcome from etl_check_results").fetchall())
    finally:
        con.close()
    return runs, checks


@pytest.mark.slow  # 10-20 s: a resumed run of 7 bounded runs, then a reload of every window
def test_a_released_data_directory_is_read_then_resumed_and_republished_in_place(capsys):
    with tarfile.open(FIXTURE) as tar:
        fixture = json.load(tar.extractfile("fixture.json"))
    with at_root() as data_dir, serve(**fixture["sandbox"]) as sandbox:
        with tarfile.open(FIXTURE) as tar:
            tar.extractall(data_dir.parent, filter="tar")
        world = sandbox.world
        warehouse = DataLayout.of(data_dir).warehouse
        digest = hashlib.sha256(warehouse.read_bytes()).hexdigest()

        # read as it is: the released warehouse holds the world at its first clock
        assert_warehouse_equals_truth(data_dir, world)
        # the dashboard in the warehouse's zone (the views) and in another (their macros)
        orders = {
            tz: sum(r["orders"] for r in collect(data_dir, report_tz=tz).spend) for tz in ("Asia/Shanghai", "UTC")
        }
        assert orders["UTC"] == orders["Asia/Shanghai"] > 0
        assert main(["report", "spend", "--data-dir", str(data_dir), "--format", "csv", "-q"]) == 0
        assert main(["status", "--data-dir", str(data_dir)]) == 0
        assert "fct_orders" in capsys.readouterr().out
        assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == digest  # reading wrote nothing
        released_runs, released_checks = _history(data_dir)
        assert released_runs and released_checks

        # the killed run, resumed by this code from its plan and next state
        sandbox.advance(fixture["advance"])
        period = ["--start", world.config.start.isoformat(), "--end", fixture["end"]]
        resumed = _cli(data_dir, sandbox.base_url, "run", *period)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resuming an unfinished run" in resumed.stderr
        counts = assert_warehouse_equals_truth(data_dir, world)
        assert_no_duplicates(data_dir)
        runs, checks = _history(data_dir)
        assert released_runs < runs and released_checks < checks  # the ledgers' history is kept

        # the released rows keep their ids, the new columns null; the resumed run is one id
        run_id = _run_id(resumed.stdout)
        window_rows = _query(data_dir, "select run_id, endpoint, window_id, extraction_id, publish_id from etl_runs")
        old = [r for r in window_rows if r[:3] in released_runs]
        new = [r for r in window_rows if r[:3] not in released_runs]
        assert len(old) == len(released_runs) and {r[3:] for r in old} == {(None, None)}
        assert {r[0] for r in new} == {run_id} and all(r[3] and r[4] for r in new)
        check_rows = _query(data_dir, "select run_id, check_name, outcome, publish_id from etl_check_results")
        assert {r[3] for r in check_rows if r[:3] in released_checks} == {None}
        assert {(r[0], r[3] is not None) for r in check_rows if r[:3] not in released_checks} == {(run_id, True)}
        for table in ("fct_orders", "fct_order_lines"):  # every order re-read: the killed attempt's too
            assert _query(data_dir, f"select distinct run_id from {table}") == [(run_id,)], table
        for table in ("fct_refunds", "fct_parcels", "fct_parcel_events", "etl_rejects"):
            assert {r for (r,) in _query(data_dir, f"select distinct run_id from {table}")} <= {run_id, None}
        assert main(["status", "--run", run_id, "--format", "json", "--data-dir", str(data_dir), "-q"]) == 0
        trace = json.loads(capsys.readouterr().out)
        assert trace["run"]["windows"] == len(new) and trace["run"]["resumed"] is True
        assert trace["run"]["outcome"] == "success" and "publish" in {s["step"] for s in trace["steps"]}

        # every landed window, the released code's included, published again from its raw pages
        loaded = _cli(data_dir, sandbox.base_url, "load")
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        assert assert_warehouse_equals_truth(data_dir, world) == counts
        assert_no_duplicates(data_dir)
        assert _query(data_dir, "select distinct run_id from fct_orders") == [(_run_id(loaded.stdout),)]
