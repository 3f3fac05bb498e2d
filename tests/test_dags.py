"""DAG integrity and the Airflow hook.

Every DAG file imports without errors and fast, with tags, retries, docs, an explicit schedule
and catchup off; ``xport_ingest`` has a real daily data interval, its API tasks in the
``xport_api`` pool, the wiring the fan-outs need and the fact assets as outlets; ``xport_reports``
is scheduled on those assets; API tasks have timeouts and every task the failure-notifier hook
point. The provider registers the ``xport`` connection type; its hook maps an ``xport``
Connection onto the library's settings.

Airflow reads its configuration when it is first imported, so the module-scoped fixture points
``AIRFLOW_HOME`` at a temporary directory before any test here imports it: these tests never
touch the project's ``.airflow/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
DAGS_DIR = PROJECT_DIR / "dags"
PLUGINS_DIR = PROJECT_DIR / "plugins"
PROVIDER_DIR = PROJECT_DIR / "provider"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
IMPORT_BUDGET_S = 0.5
HEAVY_MODULES = ("duckdb", "pyarrow", "pandas", "xport_etl.run", "xport_etl.load.publish")

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Configure Airflow through the environment, in a throwaway home."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    loaded = sys.modules.get("airflow.settings")
    if loaded is not None and Path(loaded.AIRFLOW_HOME).resolve() != home.resolve():
        # airflow was imported earlier in this session; its home is fixed by then
        mp.undo()
        pytest.skip("airflow was imported before this module could point AIRFLOW_HOME elsewhere")
    yield env
    mp.undo()


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    import airflow.settings
    from airflow.dag_processing.dagbag import DagBag

    assert Path(airflow.settings.AIRFLOW_HOME) == Path(airflow_env["AIRFLOW_HOME"])
    return DagBag(dag_folder=str(DAGS_DIR))


def test_there_are_dag_files():
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAGs found"
    loaded_files = {Path(dag.fileloc).name for dag in dagbag.dags.values()}
    assert loaded_files == {p.name for p in DAG_FILES}


FACT_ASSETS = {
    f"xport://warehouse/{t}"
    for t in ("fct_orders", "fct_order_lines", "fct_refunds", "fct_parcels", "fct_parcel_events")
}
API_TASKS = {
    "taobao.extract_orders",
    "taobao.extract_refunds",
    "taobao.extract_logistics",
    "alibaba.extract_orders",
    "alibaba.extract_refunds",
    "alibaba.extract_logistics",
}
LOAD_TASKS = {
    "taobao.load_orders",
    "alibaba.load_orders",
    "taobao.load_refunds",
    "alibaba.load_refunds",
    "taobao.load_logistics",
    "alibaba.load_logistics",
}


def test_the_expected_dags(dagbag):
    assert set(dagbag.dags) == {"xport_ingest", "xport_reports", "xport_freshness", "xport_callbacks"}


def test_dag_headers(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "xport" in dag.tags, f"{dag_id}: no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id}: no doc_md"
        assert dag.schedule is not None, f"{dag_id}: no schedule"
        assert dag.catchup is False, f"{dag_id}: catchup must be off (backfills are explicit)"
        assert dag.max_active_runs == 1, f"{dag_id}: runs must not overlap"
        assert dag.start_date is not None and dag.start_date.tzinfo is not None
        assert dag.default_args.get("retries", 0) >= 2, f"{dag_id}: default retries < 2"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries < 2"
            assert task.doc_md, f"{dag_id}.{task.task_id}: no doc_md"


def test_ingest_schedule_has_a_real_daily_data_interval(dagbag):
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = dagbag.dags["xport_ingest"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    # the scheduler's (and `dags test`'s) view of it
    timetable = coerce_to_core_timetable(dag.timetable)
    # what `airflow dags test xport_ingest 2026-07-01` runs: the day that ends at that date
    end = datetime(2026, 7, 1, tzinfo=UTC)
    interval = timetable.infer_manual_data_interval(run_after=end)
    assert (interval.start, interval.end) == (end - timedelta(days=1), end)
    # a scheduled run: logical date D covers [D, D+1) and is created once that day is over
    info = timetable.next_dagrun_info(
        last_automated_data_interval=interval,
        restriction=_restriction(),
    )
    assert info.logical_date == end
    assert (info.data_interval.start, info.data_interval.end) == (end, end + timedelta(days=1))
    assert info.run_after == end + timedelta(days=1)


def _restriction():
    from airflow.timetables.base import TimeRestriction

    # catchup=True only so that the next run follows the last one, whatever today's date is
    return TimeRestriction(earliest=datetime(2026, 1, 1, tzinfo=UTC), latest=None, catchup=True)


def test_ingest_wiring(dagbag):
    dag = dagbag.dags["xport_ingest"]
    assert {"taobao", "1688"} <= set(dag.tags)
    assert dag.params["lookback_days"] == 0
    assert set(dag.task_group.children) == {"taobao", "alibaba", "publish"}
    tasks = dag.task_dict
    assert set(tasks) == API_TASKS | LOAD_TASKS | {"publish"}

    def downstream(task_id):
        return tasks[task_id].downstream_task_ids

    # every extract feeds its load
    for task_id in API_TASKS:
        assert downstream(task_id) == {task_id.replace(".extract_", ".load_")}
    # fan-outs read keys from the run's next state: they run after their platform's orders load
    assert downstream("taobao.load_orders") == {"taobao.extract_logistics"}
    assert downstream("alibaba.load_orders") == {
        "alibaba.extract_refunds",
        "alibaba.extract_logistics",
    }
    # list endpoints start the run
    for task_id in ("taobao.extract_orders", "taobao.extract_refunds", "alibaba.extract_orders"):
        assert tasks[task_id].upstream_task_ids == set()
    # the run publishes once, after every load; the fan-outs and the publish run when an
    # upstream load merged nothing (skipped), never when one failed
    for task_id in ("taobao.load_refunds", "taobao.load_logistics", "alibaba.load_refunds", "alibaba.load_logistics"):
        assert downstream(task_id) == {"publish"}
    assert tasks["publish"].upstream_task_ids == LOAD_TASKS - {"taobao.load_orders", "alibaba.load_orders"}
    for task_id in ("publish", "taobao.extract_logistics", "alibaba.extract_refunds", "alibaba.extract_logistics"):
        assert tasks[task_id].trigger_rule == "none_failed", task_id


def test_ingest_tasks_are_walked_from_the_stream_graph(dagbag):
    from xport_etl.streams import graph

    tasks = dagbag.dags["xport_ingest"].task_dict
    ids = {
        s.name: (f"{p.group}.extract_{s.short}", f"{p.group}.load_{s.short}") for p, ss in graph.platforms() for s in ss
    }
    assert set(tasks) == {t for pair in ids.values() for t in pair} | {"publish"}
    for name, (extract, _load) in ids.items():
        fanout = graph.stream(name).fanout
        assert tasks[extract].upstream_task_ids == (set() if fanout is None else {ids[fanout.parent][1]})
        assert list(tasks[extract].op_args) == [name]
    leaves = {load for name, (_, load) in ids.items() if not graph.children(name)}
    assert tasks["publish"].upstream_task_ids == leaves
    assert (
        graph.draw(lambda s: f"extract_{s.short} → load_{s.short}", lambda p: p.group)
        in dagbag.dags["xport_ingest"].doc_md
    )


def test_ingest_api_tasks_run_in_the_api_pool(dagbag):
    dag = dagbag.dags["xport_ingest"]
    for task in dag.tasks:
        expected = "xport_api" if task.task_id in API_TASKS else "default_pool"
        assert task.pool == expected, f"{task.task_id}: pool {task.pool}"
    assert "airflow pools set xport_api" in dag.doc_md


def test_ingest_publish_emits_the_fact_assets_and_nothing_else_does(dagbag):
    dag = dagbag.dags["xport_ingest"]
    for task in dag.tasks:
        outlets = {asset.uri for asset in task.outlets}
        assert outlets == (FACT_ASSETS if task.task_id == "publish" else set()), task.task_id


def test_api_tasks_time_out(dagbag):
    tasks = dagbag.dags["xport_ingest"].task_dict
    fanouts = {"taobao.extract_logistics", "alibaba.extract_refunds", "alibaba.extract_logistics"}
    for task_id in API_TASKS:
        expected = timedelta(hours=6) if task_id in fanouts else timedelta(hours=2)
        assert tasks[task_id].execution_timeout == expected, task_id
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if task.pool == "xport_api":
                assert task.execution_timeout is not None, f"{dag.dag_id}.{task.task_id}: no timeout"


def test_every_task_has_the_failure_notifier_hook_point(dagbag):
    from xport_airflow_provider.notifications import notify_failure

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify_failure in callbacks, f"{dag.dag_id}.{task.task_id}"


def test_reports_dag_is_scheduled_on_any_fact_asset(dagbag):
    from airflow.sdk import AssetAny
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable

    dag = dagbag.dags["xport_reports"]
    assert isinstance(dag.timetable, AssetTriggeredTimetable)
    condition = dag.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {asset.uri for asset in condition.objects} == FACT_ASSETS
    assert set(dag.task_dict) == {"refresh"}
    assert dag.task_dict["refresh"].pool == "default_pool"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast_and_light(dag_file: Path, airflow_env, tmp_path):
    """Parse a DAG file in a fresh interpreter, after Airflow itself (which every file shares).

    Importing ``airflow.sdk`` alone takes about a second; the budget is for the DAG file.
    """
    code = f"""
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
import runpy
runpy.run_path({str(dag_file)!r})
t2 = time.perf_counter()
heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]
print(json.dumps({{"airflow_s": t1 - t0, "dag_s": t2 - t1, "heavy": heavy}}))
"""
    env = {**os.environ, **airflow_env, "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"{dag_file.name} imports {result['heavy']} at parse time"
    assert result["dag_s"] < IMPORT_BUDGET_S, (
        f"{dag_file.name} took {result['dag_s']:.3f} s to import (after {result['airflow_s']:.3f} s for airflow.sdk)"
    )


def _ingest_module(airflow_env):
    import importlib.util

    spec = importlib.util.spec_from_file_location("_xport_ingest_under_test", DAGS_DIR / "xport_ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ingest_window(airflow_env):
    import pendulum

    ingest_window = _ingest_module(airflow_env).ingest_window
    d = datetime(2026, 6, 30, tzinfo=UTC)
    day = timedelta(days=1)
    # the data interval, widened by the lookback
    assert ingest_window(d, d + day, 0) == (d, d + day)
    assert ingest_window(d, d + day, 30) == (d - timedelta(days=30), d + day)
    # a run without a logical date has no interval: the day that ends when it runs
    assert ingest_window(None, None, 2, run_after=d) == (d - timedelta(days=3), d)
    # Airflow hands over pendulum datetimes; the window is plain UTC (pendulum drops
    # datetime.UTC in `+ timedelta`, which broke the library's split_window)
    p = pendulum.datetime(2026, 6, 30, tz="UTC")
    start, end = ingest_window(p, p.add(days=1), 200)
    assert type(start) is datetime and type(end) is datetime
    assert (start + timedelta(days=31)).tzinfo is not None
    assert (start, end) == (d - timedelta(days=200), d + day)
    with pytest.raises(ValueError):
        ingest_window(d, d + day, -1)
    with pytest.raises(ValueError):
        ingest_window(d, d, 0)


SECRET = "the-access-secret-0123456789"


def _connection(**overrides):
    from airflow.sdk import Connection

    fields = {
        "conn_id": "xport_default",
        "conn_type": "xport",
        "host": "http://127.0.0.1:8765",
        "login": "0123456789abcdef0123456789abcdef",
        "password": SECRET,
        "extra": json.dumps({"user_id": "1000042"}),
    }
    fields.update(overrides)
    return Connection(**fields)


def _hook_with(monkeypatch, conn):
    from xport_airflow_provider.hooks import XportHook

    monkeypatch.setattr(XportHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    return XportHook()


def test_hook_declares_its_connection_type(airflow_env):
    from airflow.sdk import BaseHook
    from xport_airflow_provider.hooks import XportHook

    assert issubclass(XportHook, BaseHook)
    assert XportHook.conn_name_attr == "xport_conn_id"
    assert XportHook.default_conn_name == "xport_default"
    assert XportHook.conn_type == "xport"
    assert XportHook.hook_name == "Xportcn OpenAPI"
    assert XportHook().xport_conn_id == "xport_default"


def test_hook_maps_connection_to_settings(airflow_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.delenv("XPORT_RATE_LIMIT", raising=False)
    hook = _hook_with(monkeypatch, _connection())
    settings = hook.get_settings()
    assert settings.base_url == "http://127.0.0.1:8765"
    assert settings.access_key == "0123456789abcdef0123456789abcdef"
    assert settings.access_secret == SECRET
    assert settings.user_id == "1000042"
    # what the connection does not set still comes from XPORT_* variables
    assert settings.data_dir == tmp_path / "from-env"
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)


def test_hook_masks_the_secret(airflow_env, monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    _hook_with(monkeypatch, _connection()).get_settings()
    assert SECRET not in redact(f"signing with {SECRET}")


def test_hook_extras_override_the_environment(airflow_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path / "from-env"))
    extra = {
        "user_id": 77,
        "rate_limit": "2.5",
        "data_dir": str(tmp_path / "from-conn"),
        "report_tz": "UTC",
    }
    settings = _hook_with(monkeypatch, _connection(extra=json.dumps(extra))).get_settings()
    assert settings.user_id == "77"
    assert settings.rate_limit == 2.5
    assert settings.data_dir == tmp_path / "from-conn"
    assert settings.report_tz == "UTC"


def test_every_setting_is_a_connection_extra_and_typos_are_refused(airflow_env, monkeypatch, tmp_path):
    import os

    from xport_etl.errors import ConfigError

    extra = {
        "workers": "2",
        "extract_workers": 3,
        "stage_memory": "256MB",
        "load_memory": "300MB",
        "refetch_after": 0,
        "umask": "027",
        "check_overrides": {"chk_fct_orders__amount_equals_lines": {"severity": "error"}},
    }
    before = os.umask(0o022)
    try:
        settings = _hook_with(monkeypatch, _connection(extra=json.dumps(extra))).get_settings()
        applied = os.umask(0o022)
    finally:
        os.umask(before)
    assert (settings.workers, settings.extract_workers) == (2, 3)
    assert (settings.stage_memory, settings.load_memory) == ("256MB", "300MB")
    assert settings.refetch_after == 0 and settings.umask == 0o027
    assert settings.check_overrides["chk_fct_orders__amount_equals_lines"]["severity"] == "error"
    assert applied == 0o027  # the task process writes personal data with the settings' umask
    with pytest.raises(ConfigError, match="unknown Connection extra 'wokers'"):
        _hook_with(monkeypatch, _connection(extra=json.dumps({"wokers": 2}))).get_settings()
    with pytest.raises(ConfigError, match="XPORT_WORKERS|workers"):
        _hook_with(monkeypatch, _connection(extra=json.dumps({"workers": "many"}))).get_settings()


@pytest.mark.parametrize(
    ("schema", "host", "port", "expected"),
    [
        (None, "https://www.xportcn.com/api/", None, "https://www.xportcn.com/api"),
        ("https", "www.xportcn.com/api", None, "https://www.xportcn.com/api"),
        (None, "www.xportcn.com", None, "https://www.xportcn.com"),
        ("http", "127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("http", "127.0.0.1/api", 8765, "http://127.0.0.1:8765/api"),
    ],
)
def test_base_url_from_connection(airflow_env, schema, host, port, expected):
    from xport_airflow_provider.hooks import base_url_from_connection

    conn = _connection(schema=schema, host=host, port=port)
    assert base_url_from_connection(conn) == expected


def test_hook_reads_the_connection_from_the_environment(airflow_env, monkeypatch, tmp_path):
    conn = {
        "conn_type": "xport",
        "host": "http://127.0.0.1:9999",
        "login": "fedcba9876543210fedcba9876543210",
        "password": SECRET,
        "extra": {"user_id": "1000001"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_XPORT_ENVTEST", json.dumps(conn))
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))
    from xport_airflow_provider.hooks import XportHook

    settings = XportHook(xport_conn_id="xport_envtest").get_settings()
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.access_key == "fedcba9876543210fedcba9876543210"
    assert settings.user_id == "1000001"
    assert settings.data_dir == tmp_path


def test_hook_maps_the_signing_recipe_extras(airflow_env, monkeypatch):
    monkeypatch.delenv("XPORT_SIGN_RECIPE", raising=False)
    assert _hook_with(monkeypatch, _connection()).get_settings().signer.name == "query"
    extra = {"user_id": "1000042", "sign_recipe": "concat"}
    settings = _hook_with(monkeypatch, _connection(extra=json.dumps(extra))).get_settings()
    assert settings.sign_recipe == "concat" and settings.signer.timestamp_unit == "s"
    extra = {"user_id": "1000042", "sign_template": "{secret}{access_key}{nonce}{timestamp}", "timestamp_unit": "s"}
    settings = _hook_with(monkeypatch, _connection(extra=json.dumps(extra))).get_settings()
    assert settings.signer.name == "custom" and settings.signer.timestamp_unit == "s"


@pytest.fixture(scope="module")
def concat_sandbox():
    from xport_sandbox.testing import SandboxServer
    from xport_sandbox.world import WorldConfig

    with SandboxServer(WorldConfig(seed=3, orders=30), sign_recipe="concat") as server:
        yield server


def _sandbox_connection(server, **extra):
    from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID

    return _connection(
        host=server.base_url,
        login=DEFAULT_ACCESS_KEY,
        password=DEFAULT_ACCESS_SECRET,
        extra=json.dumps({"user_id": DEFAULT_USER_ID, **extra}),
    )


def test_hook_test_connection_passes_against_the_sandbox(airflow_env, monkeypatch, tmp_path, concat_sandbox):
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))
    hook = _hook_with(monkeypatch, _sandbox_connection(concat_sandbox, sign_recipe="concat"))
    ok, message = hook.test_connection()
    assert ok is True, message
    assert isinstance(message, str) and message


def test_hook_test_connection_says_which_recipe_to_set(airflow_env, monkeypatch, tmp_path, concat_sandbox):
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("XPORT_SIGN_RECIPE", raising=False)
    hook = _hook_with(monkeypatch, _sandbox_connection(concat_sandbox))
    ok, message = hook.test_connection()
    assert ok is False
    assert '{"sign_recipe": "concat"}' in message
    from xport_sandbox import DEFAULT_ACCESS_SECRET

    assert DEFAULT_ACCESS_SECRET not in message


def test_hook_test_connection_leaves_the_umask_alone(airflow_env, monkeypatch):
    # "Test connection" runs in Airflow's API server: only a task's own process takes XPORT_UMASK
    import os

    before = os.umask(0o022)
    try:
        ok, _ = _hook_with(monkeypatch, _connection(host="http://127.0.0.1:9")).test_connection()
        after = os.umask(0o022)
    finally:
        os.umask(before)
    assert ok is False and after == 0o022


def test_hook_test_connection_reports_bad_configuration(airflow_env, monkeypatch):
    extra = {"user_id": "1000042", "sign_recipe": "sha1"}
    ok, message = _hook_with(monkeypatch, _connection(extra=json.dumps(extra))).test_connection()
    assert ok is False and "sign_recipe" in message.lower().replace("xport_sign_recipe", "sign_recipe")


# ---- failures a retry cannot fix fail the task at once (xport_airflow_provider.failures)


def _task_context(dag) -> dict:
    """What the xport tasks read from Airflow's context."""
    from types import SimpleNamespace

    start = datetime(2026, 6, 30, tzinfo=UTC)
    return {
        "dag": dag,
        "run_id": "manual__fail_fast",
        "data_interval_start": start,
        "data_interval_end": start + timedelta(days=1),
        "params": {"lookback_days": 0},
        "dag_run": SimpleNamespace(run_after=start + timedelta(days=1)),
    }


def _call_task(dag, task):
    """Run a task's Python callable as Airflow would: the context to a ``**context`` parameter
    only (an upstream's manifests: one path)."""
    import inspect

    args = [a if isinstance(a, str) else ["manifest.json"] for a in task.op_args]
    params = inspect.signature(task.python_callable).parameters.values()
    context = _task_context(dag) if any(p.kind is p.VAR_KEYWORD for p in params) else {}
    return task.python_callable(*args, **task.op_kwargs, **context)


def _permanent_failures():
    from xport_etl.errors import AuthenticationError, ConfigError, FatalError
    from xport_etl.extract.landing import ManifestError
    from xport_etl.load.connect import WarehouseError

    return [
        AuthenticationError("envelope code 401: bad signature; check XPORT_ACCESS_SECRET", code=401),
        AuthenticationError("envelope code 403: user-id 1000042 may not read these orders", code=403),
        ConfigError("XPORT_USER_ID, XPORT_ACCESS_KEY and XPORT_ACCESS_SECRET must not be empty"),
        FatalError("envelope code 400: pageSize must be 1..100", code=400),
        ManifestError("refusing a manifest: window_id '../x' is not a plain name"),
        WarehouseError("cannot open the warehouse /srv/xport/data/warehouse.duckdb: not a DuckDB file"),
    ]


def _transient_failures():
    from xport_etl.errors import MalformedBodyError, RateLimitedError, RateLimiterUnavailableError, RetriableError
    from xport_etl.load.checks import CheckFailedError

    return [
        RetriableError("HTTP 503 from the server or gateway", http_status=503, attempts=5),
        RateLimitedError("envelope code 429", code=429, attempts=5),
        MalformedBodyError("HTTP 200 with a body that is not JSON", attempts=5),
        RateLimiterUnavailableError("the shared rate-limit store redis://redis:6379/1 is unreachable"),
        CheckFailedError("data checks failed, warehouse not published: chk_fct_orders__unique_key"),
        OSError(28, "No space left on device"),
        RuntimeError("a bug"),
    ]


def test_every_task_fails_at_once_on_what_a_retry_cannot_fix(dagbag, monkeypatch):
    """Wrong credentials, a refused user-id, a bad setting or request, a foreign manifest, an
    unreadable warehouse: every task of every DAG raises AirflowFailException (Airflow fails the
    task without its retries), naming the library's error, which stays chained."""
    from airflow.sdk.exceptions import AirflowFailException
    from xport_airflow_provider.hooks import XportHook

    for exc in _permanent_failures():
        monkeypatch.setattr(XportHook, "get_settings", lambda self, exc=exc: (_ for _ in ()).throw(exc))
        for dag in dagbag.dags.values():
            for task in dag.tasks:
                with pytest.raises(AirflowFailException) as info:
                    _call_task(dag, task)
                assert info.value.__cause__ is exc, f"{dag.dag_id}.{task.task_id}"
                assert str(exc) in str(info.value) and "not retried" in str(info.value)


def test_every_task_keeps_its_retries_for_transient_failures(dagbag, monkeypatch):
    """The API failing past the client's own retries, Redis away, a malformed page, a failed data
    check, a full disk, a bug: the exception itself, so that Airflow retries the task."""
    from xport_airflow_provider.hooks import XportHook

    for exc in _transient_failures():
        monkeypatch.setattr(XportHook, "get_settings", lambda self, exc=exc: (_ for _ in ()).throw(exc))
        for dag in dagbag.dags.values():
            for task in dag.tasks:
                with pytest.raises(type(exc)) as info:
                    _call_task(dag, task)
                assert info.value is exc, f"{dag.dag_id}.{task.task_id}"


def test_wrong_credentials_fail_the_extract_at_once_after_one_request(dagbag, airflow_env, monkeypatch, tmp_path):
    """Through the real hook, client and sandbox: a wrong AccessSecret is one refused request, then
    AirflowFailException; before, the task was retried twice, five minutes apart."""
    from airflow.sdk.exceptions import AirflowFailException

    from xport_etl.errors import AuthenticationError
    from xport_sandbox.testing import SandboxServer
    from xport_sandbox.world import WorldConfig

    with SandboxServer(WorldConfig(seed=3, orders=10)) as server:
        conn = _sandbox_connection(server, data_dir=str(tmp_path), rate_limit=0)
        conn.password = "not-the-secret"
        _hook_with(monkeypatch, conn)
        dag = dagbag.dags["xport_ingest"]
        with pytest.raises(AirflowFailException) as info:
            _call_task(dag, dag.get_task("taobao.extract_orders"))
        requests = server.stats()["requests"]
    assert isinstance(info.value.__cause__, AuthenticationError)
    assert "XPORT_ACCESS_SECRET" in str(info.value) and "not-the-secret" not in str(info.value)
    assert requests == 1


def test_the_freshness_dag_warns_past_the_warning_level_and_fails_past_the_error_level(
    dagbag, monkeypatch, tmp_path, caplog
):
    """Issue 27.6: the task succeeds with a logged warning between the two levels
    (XPORT_FRESHNESS_WARN_HOURS, XPORT_FRESHNESS_HOURS) and raises StaleDataError past the error level."""
    from xport_airflow_provider.hooks import XportHook

    from xport_etl.ledger import append_run
    from xport_etl.report.status import StaleDataError
    from xport_etl.settings import Settings

    now = datetime.now(UTC)
    for endpoint in ("taobao_orders", "alibaba_orders", "taobao_refunds"):
        finished = (now - timedelta(hours=10)).isoformat()
        append_run(
            tmp_path,
            {"run_id": endpoint, "endpoint": endpoint, "window_id": "w", "outcome": "success", "finished_at": finished},
        )
    dag = dagbag.dags["xport_freshness"]
    (task,) = dag.tasks
    for levels, expected in (((26.0, None), "ok"), ((26.0, 8.0), "warn"), ((9.0, 8.0), StaleDataError)):
        settings = Settings(data_dir=tmp_path, freshness_hours=levels[0], freshness_warn_hours=levels[1])
        monkeypatch.setattr(XportHook, "get_settings", lambda self, s=settings: s)
        caplog.clear()
        if expected is StaleDataError:
            with pytest.raises(StaleDataError):
                _call_task(dag, task)
            continue
        rows = _call_task(dag, task)
        assert {r["level"] for r in rows} == {expected}
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert bool(warned) == (expected == "warn"), warned
        if warned:
            assert "older than the warning level 8 h" in warned[0]
