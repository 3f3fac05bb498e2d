"""`make demo`: the sandbox, one run of each Airflow DAG, and the reports.

The library never imports Airflow, so the demo drives it as subprocesses, configured entirely
through environment variables (Airflow still writes a default ``airflow.cfg`` into its home on
first use; the variables below override it):

1. ``AIRFLOW_HOME=<project>/.airflow`` with the project's ``dags/`` and ``plugins/``, no
   examples, and a SQLite metadata database under ``.airflow/``.
2. The sandbox (``xport-sandbox serve --rate-limit 100``) on a free loopback port, until
   ``/_sandbox/health`` answers. The connection paces the client at the same 100 requests/s, so
   the fan-out (a logistics call per shipped line) takes seconds, not minutes.
3. ``airflow db migrate``, only when the database is missing or was migrated by another Airflow
   version; then ``airflow pools set xport_api 4 …`` (the DAG's API tasks run in that pool, and a
   scheduler never schedules a task whose pool does not exist).
4. The ``xport_default`` connection as ``AIRFLOW_CONN_XPORT_DEFAULT`` (JSON) and
   ``XPORT_DATA_DIR=<project>/data/demo``.
5. ``airflow dags test xport_ingest 2026-07-01 --conf '{"lookback_days": 200}'``: ``dags test``
   gives the run the data interval that ends at the date, ``[2026-06-30, 2026-07-01)`` UTC, which
   ends after the sandbox clock (2026-06-30 16:00 UTC); with the lookback the run re-reads
   ``[2025-12-12, 2026-07-01)``, the sandbox's whole history.
6. ``airflow dags test xport_reports 2026-07-01``: views and data checks (no scheduler runs, so
   nothing reacts to the ingest's asset events by itself).
7. The spend and fulfilment reports and the fact tables' row counts, read in-process from the
   published warehouse (read-only).
8. The sandbox is stopped whatever happens. Each ``dags test`` writes
   ``.airflow/logs/demo-<dag_id>.log``; a failed task stops the run at its first failed try.

Run it as ``xport-sandbox demo`` (what ``make demo`` runs; its options are :func:`run_demo`'s).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO

import httpx
from rich.console import Console

import xport_sandbox as sandbox

PROJECT_DIR = Path(__file__).resolve().parents[1]
INGEST_DAG = "xport_ingest"
REPORTS_DAG = "xport_reports"
# `dags test DAG D` runs with the data interval that ends at D (the last complete day before D),
# so the run of 2026-07-01 covers [2026-06-30, 2026-07-01) UTC, past the sandbox clock
# (2026-07-01 00:00 CST = 2026-06-30 16:00 UTC)
LOGICAL_DATE = "2026-07-01"
LOOKBACK_DAYS = 200
SANDBOX_SEED = 7
SANDBOX_ORDERS = 1500
RATE_LIMIT = 100.0  # requests/s: the sandbox's limit per access key, and the client's pace
API_POOL = "xport_api"
API_POOL_SLOTS = 4  # concurrency only: the rate limiter is shared across processes (a lock file)
REPORTS = ("spend", "fulfilment")
SANDBOX_START_TIMEOUT = 60.0
DAG_RUN_TIMEOUT = 30 * 60.0

console = Console(highlight=False, soft_wrap=True)


class DemoError(Exception):
    """A demo step failed; the message is one line and names the log to read."""


@dataclass
class DemoPaths:
    """Where the demo keeps Airflow's state, its logs and the pipeline's data."""

    project: Path
    airflow_home: Path = field(init=False)
    log_dir: Path = field(init=False)
    data_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.airflow_home = self.project / ".airflow"
        self.log_dir = self.airflow_home / "logs"
        self.data_dir = self.project / "data" / "demo"


def airflow_environ(paths: DemoPaths, base: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment that configures Airflow for an offline, single-process run."""
    env = dict(os.environ if base is None else base)
    home = paths.airflow_home
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(paths.project / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(paths.project / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(paths.log_dir),
            # the sandbox is on loopback: never send it through a proxy
            "NO_PROXY": _join_csv(env.get("NO_PROXY"), "127.0.0.1,localhost"),
            "no_proxy": _join_csv(env.get("no_proxy"), "127.0.0.1,localhost"),
        }
    )
    return env


def xport_environ(base_url: str, data_dir: Path, rate_limit: float = RATE_LIMIT) -> dict[str, str]:
    """Return the library's and the connection's variables for a sandbox at `base_url`."""
    connection = {
        "conn_type": "xport",
        "host": base_url,
        "login": sandbox.DEFAULT_ACCESS_KEY,
        "password": sandbox.DEFAULT_ACCESS_SECRET,
        "extra": {"user_id": sandbox.DEFAULT_USER_ID, "rate_limit": rate_limit},
    }
    return {
        "AIRFLOW_CONN_XPORT_DEFAULT": json.dumps(connection),
        "XPORT_BASE_URL": base_url,
        "XPORT_ACCESS_KEY": sandbox.DEFAULT_ACCESS_KEY,
        "XPORT_ACCESS_SECRET": sandbox.DEFAULT_ACCESS_SECRET,
        "XPORT_USER_ID": sandbox.DEFAULT_USER_ID,
        "XPORT_RATE_LIMIT": str(rate_limit),
        "XPORT_DATA_DIR": str(data_dir),
    }


def run_demo(
    *,
    port: int | None = None,
    seed: int = SANDBOX_SEED,
    orders: int = SANDBOX_ORDERS,
    rate_limit: float = RATE_LIMIT,
    sandbox_url: str | None = None,
    logical_date: str = LOGICAL_DATE,
    lookback_days: int = LOOKBACK_DAYS,
    fresh: bool = False,
) -> int:
    """Run the demo; return the process exit code.

    The options are those of ``xport-sandbox demo`` (:mod:`xport_sandbox.cli`, which parses them):
    ``port`` of the sandbox (default a free one), its world's ``seed`` and Taobao ``orders``, the
    sandbox's and the connection's ``rate_limit`` (requests/s), ``sandbox_url`` of a sandbox
    already running (then none is started), the DAG runs' ``logical_date`` (interval end), the
    ingest's ``lookback_days``, and ``fresh`` to delete data/demo first.
    """
    paths = DemoPaths(PROJECT_DIR)
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    if fresh and paths.data_dir.exists():
        shutil.rmtree(paths.data_dir)
    paths.data_dir.mkdir(parents=True, exist_ok=True)

    sandbox_proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        if sandbox_url:
            base_url = sandbox_url.rstrip("/")
            _wait_healthy(base_url, None, None, SANDBOX_START_TIMEOUT)
            _ok(f"sandbox: using {base_url}")
        else:
            port = port or _free_port()
            base_url = f"http://127.0.0.1:{port}"
            sandbox_log = paths.log_dir / "demo-sandbox.log"
            sandbox_proc = _start_sandbox(port, seed, orders, rate_limit, sandbox_log)
            _wait_healthy(base_url, sandbox_proc, sandbox_log, SANDBOX_START_TIMEOUT)
            _ok(f"sandbox: {base_url} (seed {seed}, {orders} Taobao orders, {rate_limit:g} requests/s)")

        env = airflow_environ(paths)
        env.update(xport_environ(base_url, paths.data_dir, rate_limit))
        _migrate_if_needed(paths, env)
        _ensure_pool(paths, env)
        conf = {"lookback_days": lookback_days}
        for dag_id, dag_conf in ((INGEST_DAG, conf), (REPORTS_DAG, None)):
            log_path = paths.log_dir / f"demo-{dag_id}.log"
            results = dags_test(env, dag_id, logical_date, log_path, conf=dag_conf)
            for task_id, value in results.items():
                _ok(f"  {task_id}: {_shorten(value)}")
        _print_reports(base_url, paths.data_dir, rate_limit)
    except DemoError as exc:
        console.print(f"[bold red]✗ demo failed:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("[bold red]✗ demo interrupted[/]")
        return 130
    finally:
        if sandbox_proc is not None:
            _stop(sandbox_proc, signal.SIGTERM)
    _ok(f"done in {time.monotonic() - started:.0f} s")
    return 0


def _bin(name: str) -> str:
    """Return the path of a console script installed next to this interpreter."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise DemoError(f"`{name}` is not installed in {Path(sys.executable).parent}; run `make venv`")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_sandbox(port: int, seed: int, orders: int, rate_limit: float, log_path: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "xport_sandbox.cli", "serve", "--port", str(port), "--seed", str(seed)]
    cmd += ["--orders", str(orders), "--rate-limit", f"{rate_limit:g}"]
    with log_path.open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_healthy(
    base_url: str,
    proc: subprocess.Popen[bytes] | None,
    log_path: Path | None,
    timeout: float,
) -> None:
    url = f"{base_url}/_sandbox/health"
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for the sandbox at {base_url} …"):
        while True:
            if proc is not None and proc.poll() is not None:
                raise DemoError(
                    f"the sandbox exited with code {proc.returncode} before it was healthy (log: {log_path})"
                )
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                where = f" (log: {log_path})" if log_path else ""
                raise DemoError(f"the sandbox did not answer {url} within {timeout:.0f} s{where}")
            time.sleep(0.25)


def _migrate_if_needed(paths: DemoPaths, env: dict[str, str]) -> None:
    db = paths.airflow_home / "airflow.db"
    stamp = paths.airflow_home / ".demo-db-migrated"
    version = metadata.version("apache-airflow-core")
    if db.exists() and stamp.exists() and stamp.read_text().strip() == version:
        _ok(f"airflow {version}: metadata database up to date ({db})")
        return
    log_path = paths.log_dir / "demo-db-migrate.log"
    t0 = time.monotonic()
    with console.status("airflow db migrate …"), log_path.open("wb") as log:
        rc = subprocess.call(
            [_bin("airflow"), "db", "migrate"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if rc != 0:
        raise DemoError(f"`airflow db migrate` exited with code {rc} (log: {log_path})")
    stamp.write_text(version + "\n")
    _ok(f"airflow {version}: metadata database migrated in {time.monotonic() - t0:.1f} s ({db})")


def _ensure_pool(paths: DemoPaths, env: dict[str, str]) -> None:
    """Create (or resize) the API pool; `pools set` is idempotent."""
    log_path = paths.log_dir / "demo-pools-set.log"
    cmd = [_bin("airflow"), "pools", "set", API_POOL, str(API_POOL_SLOTS), "Xportcn API calls"]
    with console.status(f"airflow pools set {API_POOL} …"), log_path.open("wb") as log:
        rc = subprocess.call(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if rc != 0:
        raise DemoError(f"`airflow pools set {API_POOL}` exited with code {rc} (log: {log_path})")
    _ok(f"pool {API_POOL}: {API_POOL_SLOTS} slot(s)")


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_TASK_RETURN = re.compile(r"Done\. Returned value was: (.*?)\s+\[airflow\.task")
_TASK_STATE = re.compile(r"new_state=(\w+)")
_RUN_FINISHED = re.compile(r"DagRun Finished: .*?state=(\w+)")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b.*)$")


def dags_test(
    env: dict[str, str],
    dag_id: str,
    logical_date: str,
    log_path: Path,
    *,
    conf: dict | None = None,
    timeout: float = DAG_RUN_TIMEOUT,
) -> dict[str, str]:
    """Run ``airflow dags test``, its output into `log_path`; return each task's return value.

    ``dags test`` honours the DAG's retries and waits out `retry_delay` between tries (minutes),
    and it ignores SIGTERM; so this stops it with SIGINT at the first failed try.

    Raises:
        DemoError: a task failed, the run did not succeed, or it took longer than `timeout`;
            one line, naming the task, the exception and the log.
    """
    cmd = [_bin("airflow"), "dags", "test", dag_id, logical_date]
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    results: dict[str, str] = {}
    task = "parsing the DAG"
    run_state: str | None = None
    failed_task: str | None = None
    error_line: str | None = None
    t0 = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        try:
            with console.status(f"airflow dags test {dag_id} {logical_date} …") as status:
                for line in _lines(proc.stdout, log):
                    if m := _TASK_START.search(line):
                        task = m.group(1)
                    elif m := _TASK_RETURN.search(line):
                        results[task] = m.group(1)
                    elif m := _EXCEPTION.match(line.strip()):
                        error_line = m.group(1)
                    elif (m := _TASK_STATE.search(line)) and m.group(1) in (
                        "up_for_retry",
                        "failed",
                    ):
                        failed_task = task
                        break
                    elif m := _RUN_FINISHED.search(line):
                        run_state = m.group(1)
                    status.update(f"airflow dags test {dag_id} {logical_date}: {task} ({time.monotonic() - t0:.0f} s)")
                    if time.monotonic() - t0 > timeout:
                        failed_task = f"{task} (timed out)"
                        break
        finally:
            if proc.poll() is None and (failed_task or run_state is None):
                # dags test ignores SIGTERM; SIGINT stops it, a kill follows if it does not
                proc.send_signal(signal.SIGINT)
                killer = threading.Timer(15.0, proc.kill)
                killer.start()
                for _ in _lines(proc.stdout, log):
                    pass
                killer.cancel()
            rc = proc.wait()
            if proc.stdout is not None:  # the pipe `_lines` read: closed, not left to the collector
                proc.stdout.close()
    elapsed = time.monotonic() - t0
    if failed_task is not None:
        why = f": {error_line}" if error_line else ""
        raise DemoError(f"task `{failed_task}` failed{why} (log: {log_path})")
    if rc != 0 or run_state != "success":
        why = f": {error_line}" if error_line else ""
        raise DemoError(f"`airflow dags test` ended with code {rc}, run state {run_state}{why} (log: {log_path})")
    _ok(f"airflow dags test {dag_id} {logical_date}: success in {elapsed:.0f} s (log: {log_path})")
    return results


def _lines(stream: IO[str] | None, log: IO[str]):
    assert stream is not None
    for line in stream:
        log.write(line)
        log.flush()
        yield line


def _print_reports(base_url: str, data_dir: Path, rate_limit: float) -> None:
    from xport_etl.load.connect import connect_reader
    from xport_etl.report.reports import render_report
    from xport_etl.settings import Settings
    from xport_etl.tables import FACT_TABLES

    settings = Settings.from_env({**os.environ, **xport_environ(base_url, data_dir, rate_limit)})
    for name in REPORTS:
        try:
            text = render_report(settings, name)
        except Exception as exc:  # the runs succeeded; say which step did not
            raise DemoError(f"the {name} report failed: {type(exc).__name__}: {exc}") from exc
        console.rule(name)
        console.print(text, markup=False)
    console.rule()
    try:
        con = connect_reader(settings.layout)
        try:
            counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in FACT_TABLES}
        finally:
            con.close()
    except Exception as exc:
        raise DemoError(f"counting the fact tables failed: {type(exc).__name__}: {exc}") from exc
    _ok(
        "warehouse: {fct_orders:,} orders, {fct_order_lines:,} lines, {fct_refunds:,} refunds,"
        " {fct_parcels:,} parcels, {fct_parcel_events:,} tracking events".format(**counts)
    )
    path = settings.layout.warehouse
    shown = path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path
    console.print(f"  {path}")
    console.print(f"  open it read-only: duckdb -readonly {shown}")
    console.print(
        f"  or: .venv/bin/python -c \"import duckdb; print(duckdb.connect('{shown}',"
        " read_only=True).sql('from rpt_spend_monthly'))\"",
        markup=False,
    )
    from xport_etl.report.dashboard import build_dashboard

    try:
        board = build_dashboard(settings.data_dir, settings.data_dir / "dashboard.html", report_tz=settings.report_tz)
    except Exception as exc:
        raise DemoError(f"the dashboard failed: {type(exc).__name__}: {exc}") from exc
    shown = board.relative_to(PROJECT_DIR) if board.is_relative_to(PROJECT_DIR) else board
    _ok(f"dashboard: {shown} (one self-contained HTML file: open it in a browser)")


def _shorten(value: str, width: int = 160) -> str:
    """A task's logged return value, with a list of manifest paths shown as a count."""
    if value.startswith("[") and "manifest.json" in value:
        n = value.count("manifest.json")
        return f"{n} window{'s' if n != 1 else ''} landed"
    return value if len(value) <= width else value[: width - 1] + "…"


def _stop(proc: subprocess.Popen, sig: int, timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _join_csv(existing: str | None, extra: str) -> str:
    return f"{existing},{extra}" if existing else extra


def _ok(message: str) -> None:
    console.print(f"[green]✓[/] {message}")
