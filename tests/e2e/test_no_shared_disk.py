"""No shared disk (issue 26, "Done means"): every host a process of its own with an empty scratch
directory, sharing only an S3 bucket (moto's server over real HTTP) and a real ``redis-server``
(the rate limit's budget).

The ingest DAG: each task is a process of its own, started with a fresh ``XPORT_DATA_DIR`` that
is deleted once the task exits (its host is gone), calling the same library function with the
same arguments as ``dags/xport_ingest.py`` does (``xport_etl.run.tasks``: ``extract_interval``,
``extract_fanout_for_run``, ``load_into_run``, ``publish_run``, with the DAG run's next-state
key and run id), in the DAG's order, passing between tasks only what an XCom would (manifest
references). The Airflow worker processes themselves are not started: under a storage URL a
task's only inputs are its arguments, the environment and the bucket, and those are the same.
Then a fresh host's ``xport-etl pull`` equals the sandbox's truth; and again on a fresh bucket
with the logistics fan-out killed midway (SIGKILL, ``XPORT_CRASH_AT``) and retried on a fresh
host.

The CLI: ``xport-etl run`` on host A (the first part of the history), a run of all of it killed
(SIGKILL, from outside) on host B once it has made progress, the same command on host C (which
takes over B's lease once it expires and resumes B's plan), a reader pulling on host D: equal to
the truth, every row from A's run or the one run B started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import redis

from tests.helpers import assert_warehouse_equals_truth
from xport_etl.run.state import run_key
from xport_etl.run_ids import dag_run_id
from xport_etl.streams import graph

SANDBOX = {"seed": 23, "orders": 120}

DAG_ID, AIRFLOW_RUN = "xport_ingest", "manual__2026-07-01T00:00:00+00:00"
LEASE_S = 3  # a killed host's lease is taken over this soon

# what a task's process runs: the DAG's call, its settings from the environment (the DAG reads
# the same through its Connection), its result as JSON on the last line of stdout
TASK = """
import json, sys
from datetime import datetime, timedelta
from xport_etl.run import tasks
from xport_etl.settings import Settings

call, a = sys.argv[1], json.loads(sys.argv[2])
s = Settings.from_env()
if call == "extract_list":
    start, end = datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"])
    out = tasks.extract_interval(s, a["endpoint"], start, end, chunk=timedelta(days=31), run_id=a["run_id"])
elif call == "extract_fanout":
    out = tasks.extract_fanout_for_run(s, a["endpoint"], a["key"], a["run_id"])
elif call == "load":
    out = {"rows_written": tasks.load_into_run(s, a["manifests"], a["key"], a["run_id"])}
else:
    out = tasks.publish_run(s, a["key"], a["run_id"])
print(json.dumps(out, default=str))
"""


class Hosts:
    """Processes that share only the bucket and Redis; each ``env()`` is a fresh host's."""

    def __init__(self, root: Path, storage_url: str, base_url: str, redis_url: str) -> None:
        self.root, self.storage_url, self.base_url, self.redis_url = root, storage_url, base_url, redis_url
        self.count = 0

    def env(self, **extra: str) -> tuple[dict[str, str], Path]:
        self.count += 1
        scratch = self.root / f"host{self.count}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("XPORT_")}
        env.update(
            XPORT_BASE_URL=self.base_url,
            XPORT_DATA_DIR=str(scratch),
            XPORT_STORAGE_URL=self.storage_url,
            XPORT_RATE_LIMIT_URL=self.redis_url,
            XPORT_RATE_LIMIT="200",
            XPORT_RUN_LEASE=str(LEASE_S),
            XPORT_WORKERS="1",
        )
        env.update(extra)
        return env, scratch

    def task(self, call: str, crash_at: str | None = None, **args) -> tuple[int, object]:
        """One DAG task on a fresh host: its exit code and result; the host is gone afterwards."""
        env, scratch = self.env(**({"XPORT_CRASH_AT": crash_at} if crash_at else {}))
        proc = subprocess.run(
            [sys.executable, "-c", TASK, call, json.dumps(args, default=str)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        shutil.rmtree(scratch, ignore_errors=True)
        if proc.returncode != 0:
            return proc.returncode, proc.stderr[-2000:]
        return 0, json.loads(proc.stdout.strip().splitlines()[-1])

    def cli(self, *argv: str, **extra: str) -> subprocess.Popen:
        env, _scratch = self.env(**extra)
        return subprocess.Popen(
            [sys.executable, "-m", "xport_etl.cli", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def pulled(self) -> Path:
        """A fresh host's ``xport-etl pull``, as a directory holding ``warehouse.duckdb``."""
        into = self.root / f"reader{self.count + 1}"
        proc = self.cli("pull", "--to", str(into / "warehouse.duckdb"), "-q")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.startswith("pulled version"), out
        return into


@pytest.fixture
def hosts(tmp_path, s3_url, sandbox, redis_server) -> Hosts:
    return Hosts(tmp_path, s3_url, sandbox.base_url, redis_server.url)


def _ingest(hosts: Hosts, world, *, kill: tuple[str, str] | None = None) -> dict:
    """The ingest DAG's tasks in its order, each on a fresh host; ``kill``: (stream, crash point)
    of the task killed on its first try, retried on another fresh host."""
    key, run_id = run_key(DAG_ID, AIRFLOW_RUN), dag_run_id(DAG_ID, AIRFLOW_RUN)
    start, end = world.config.start, world.clock + timedelta(days=1)
    killed = []

    def task(name: str, call: str, **args):
        crash = kill[1] if kill and kill[0] == name and not killed else None
        code, out = hosts.task(call, crash, key=key, run_id=run_id, **args)
        if crash:
            assert code == -signal.SIGKILL, f"{name} was not killed at {crash}: {code} {out}"
            killed.append(name)
            code, out = hosts.task(call, key=key, run_id=run_id, **args)  # Airflow's retry, elsewhere
        assert code == 0, f"{call} {name}: {out}"
        return out

    def chain(name: str) -> None:
        """A stream's extract and load, then its fan-outs' (a task group's path through the DAG)."""
        if graph.stream(name).fanout is None:
            manifests = task(name, "extract_list", endpoint=name, start=start, end=end)
        else:
            manifests = task(name, "extract_fanout", endpoint=name)
        assert all(m.startswith(hosts.storage_url) for m in manifests)  # references any host reads
        if manifests:
            task(name, "load", manifests=manifests)
        for child in graph.children(name):
            chain(child.name)

    # the list streams' paths at once, as Airflow runs them: loads on several hosts merge into
    # the one next state of the run at the same time
    lists = [n for n in graph.run_order() if graph.stream(n).fanout is None]
    with ThreadPoolExecutor(len(lists)) as pool:
        for done in [pool.submit(chain, n) for n in lists]:
            done.result()
    result = task("publish", "publish")
    assert result["batches"] > 0 and result["run_id"] == run_id
    assert killed == ([kill[0]] if kill else [])
    return result


def _pulled_equals_truth(hosts: Hosts, world) -> Path:
    pulled = hosts.pulled()
    counts = assert_warehouse_equals_truth(pulled, world)
    assert all(counts.values()), counts  # every fact table has rows to compare
    return pulled


def _run_ids(pulled: Path) -> set[str]:
    import duckdb

    con = duckdb.connect(str(pulled / "warehouse.duckdb"), read_only=True)
    try:
        return {r[0] for r in con.execute("select distinct run_id from fct_orders").fetchall()}
    finally:
        con.close()


def test_the_ingest_dag_with_each_task_in_a_process_and_scratch_dir_of_its_own(hosts, sandbox, redis_server):
    _ingest(hosts, sandbox.world)
    pulled = _pulled_equals_truth(hosts, sandbox.world)
    assert _run_ids(pulled) == {dag_run_id(DAG_ID, AIRFLOW_RUN)}
    # the budget was shared through Redis (the key's hash, never the key)
    assert [k for k in redis.Redis.from_url(redis_server.url).keys("*") if k.startswith(b"xport:ratelimit:")]
    bucket, prefix = hosts.storage_url.removeprefix("s3://").split("/", 1)
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/state/next/")
    assert listed["KeyCount"] == 0  # the run's next state went with its publish


def test_a_task_killed_midway_is_retried_on_a_fresh_host(hosts, sandbox):
    fanout = next(n for n in graph.run_order() if graph.stream(n).fanout is not None)
    _ingest(hosts, sandbox.world, kill=(fanout, "fanout.page:5"))
    _pulled_equals_truth(hosts, sandbox.world)


def _landed_windows(hosts: Hosts) -> int:
    """How many windows the run plans in the bucket say have landed."""
    bucket, prefix = hosts.storage_url.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/state/plans/")
    n = 0
    for obj in listed.get("Contents", []):
        plan = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
        n = max(n, len(plan.get("landed", {})) if plan.get("status") == "running" else 0)
    return n


def test_a_cli_run_killed_on_one_host_is_finished_on_another(hosts, sandbox):
    world = sandbox.world
    start, end = world.config.start, world.clock + timedelta(days=1)
    middle = start + (end - start) / 2
    period = ["--start", f"{start:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}", "--run-days", "400"]

    a = hosts.cli("run", "--start", f"{start:%Y-%m-%d}", "--end", f"{middle:%Y-%m-%d}", "--run-days", "400", "-q")
    out, err = a.communicate(timeout=180)
    assert a.returncode == 0, err
    first = json.loads(hosts.cli("status", "--format", "json").communicate(timeout=60)[0])["runs"]
    assert len(first) == 1

    b = hosts.cli("run", *period, "-q", XPORT_RATE_LIMIT="20")  # slower: killed while it lands
    deadline = time.monotonic() + 60
    while b.poll() is None and _landed_windows(hosts) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.poll() is None, f"host B's run ended before it was killed: {b.communicate()}"
    b.send_signal(signal.SIGKILL)
    b.communicate(timeout=30)
    assert b.returncode == -signal.SIGKILL

    c = hosts.cli("run", *period)  # the same command elsewhere: waits for B's lease, resumes B's run
    out, err = c.communicate(timeout=300)
    assert c.returncode == 0, err
    assert "resumed an unfinished run" in out

    pulled = _pulled_equals_truth(hosts, world)
    runs = json.loads(hosts.cli("status", "--format", "json").communicate(timeout=60)[0])["runs"]
    assert len(runs) == 2  # A's run and B's, finished by C: one run, one id
    assert _run_ids(pulled) <= {r["run_id"] for r in runs}
