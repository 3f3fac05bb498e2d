"""Kill test: the pipeline process is SIGKILLed at many points (page landed, window committing,
fan-out call landed, Parquet table written, batch marker, merge done, swap about to happen…),
then the same command is run again. The resumed run must continue from what was landed and end
with every fact table equal to the sandbox truth, with no duplicates, and be the same run as the
killed one: one run id on everything either wrote."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import timedelta

import duckdb
import pytest

from tests.helpers import TABLES, assert_no_duplicates, assert_warehouse_equals_truth
from xport_etl.layout import DataLayout
from xport_etl.ledger import read_runs, read_steps

# (crash point, n-th time it is reached): spread over extract, fan-out, normalise and load
FAST_POINTS = [
    ("extract.page", 2),
    ("fanout.page", 30),
    ("stage.table", 3),
    ("publish.replace", 1),
]
SLOW_POINTS = [
    ("extract.page", 1),
    ("extract.page", 5),
    ("extract.page", 11),
    ("extract.page", 19),
    ("extract.commit", 1),
    ("extract.commit", 8),
    ("extract.commit", 20),
    ("fanout.page", 1),
    ("fanout.page", 120),
    ("stage.table", 1),
    ("stage.table", 9),
    ("stage.marker", 2),
    ("stage.marker", 21),
    ("publish.merged", 1),
    ("publish.merged", 2),
    ("publish.replace", 2),
    ("run.fanout", 1),
    ("stage.marker", 23),
]


# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 5, "orders": 300}


def run_cli(sandbox, data_dir, crash_at=None, workers="1"):
    world = sandbox.world
    start = world.config.start.isoformat()
    end = (world.clock + timedelta(days=30)).isoformat()
    # one staging process unless a test asks for more: crash points count hits per process
    env = {**os.environ, "XPORT_RATE_LIMIT": "0", "XPORT_WORKERS": workers}
    env.pop("XPORT_CRASH_AT", None)
    if crash_at:
        env["XPORT_CRASH_AT"] = f"{crash_at[0]}:{crash_at[1]}"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "xport_etl.cli",
            "run",
            "--quiet",
            "--base-url",
            sandbox.base_url,
            "--data-dir",
            str(data_dir),
            "--start",
            start,
            "--end",
            end,
            "--chunk-days",
            "30",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_run(data_dir, printed: str) -> None:
    """The killed command and the one that resumed it are one run: the id the resumed command
    printed is on every ledger line (the killed attempt's steps too) and every fact row."""
    run_id = re.search(r"^run (\S+) ", printed, re.M)[1]
    assert {r["run_id"] for r in [*read_runs(data_dir), *read_steps(data_dir)]} == {run_id}
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        for spec in TABLES:
            assert con.execute(f"select distinct run_id from {spec.name}").fetchall() == [(run_id,)], spec.name
    finally:
        con.close()


def kill_then_resume(sandbox, data_dir, point):
    crashed = run_cli(sandbox, data_dir, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr[-2000:])
    resumed = run_cli(sandbox, data_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_warehouse_equals_truth(data_dir, sandbox.world)
    assert_no_duplicates(data_dir)
    assert_one_run(data_dir, resumed.stdout)
    return resumed


@pytest.mark.parametrize("point", FAST_POINTS, ids=[f"{p}:{n}" for p, n in FAST_POINTS])
def test_sigkill_then_resume_equals_truth(sandbox, tmp_path, point):
    resumed = kill_then_resume(sandbox, tmp_path, point)
    assert "resuming an unfinished run" in resumed.stderr  # it continued, it did not start over


def test_sigkill_in_a_staging_worker_takes_the_run_down_and_resumes(sandbox, tmp_path):
    crashed = run_cli(sandbox, tmp_path, crash_at=("stage.table", 1), workers="2")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    resumed = run_cli(sandbox, tmp_path, workers="2")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming an unfinished run" in resumed.stderr
    assert_warehouse_equals_truth(tmp_path, sandbox.world)
    assert_no_duplicates(tmp_path)
    assert_one_run(tmp_path, resumed.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("point", SLOW_POINTS, ids=[f"{p}:{n}" for p, n in SLOW_POINTS])
def test_sigkill_at_many_points_then_resume_equals_truth(sandbox, tmp_path, point):
    resumed = kill_then_resume(sandbox, tmp_path, point)
    assert "resuming an unfinished run" in resumed.stderr
