"""DAG integrity and the Airflow hook.

Every DAG file imports without errors and fast, with tags, retries, docs, an explicit schedule
and catchup off; the hook maps an ``xport`` Connection onto the library's settings.

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
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
IMPORT_BUDGET_S = 0.5
HEAVY_MODULES = ("duckdb", "pyarrow", "pandas", "xport_etl.pipeline", "xport_etl.load")

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
    mp.syspath_prepend(str(PLUGINS_DIR))
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


def test_dag_headers(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id}: no doc_md"
        assert isinstance(dag.schedule, str) and dag.schedule, f"{dag_id}: implicit schedule"
        assert dag.catchup is False, f"{dag_id}: catchup must be off (backfills are explicit)"
        assert dag.start_date is not None and dag.start_date.tzinfo is not None
        assert dag.default_args.get("retries", 0) >= 2, f"{dag_id}: default retries < 2"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id}: retries < 2"
            assert task.doc_md, f"{dag_id}.{task.task_id}: no doc_md"


def test_orders_dag_wiring(dagbag):
    dag = dagbag.dags["xport_taobao_orders"]
    assert dag.schedule == "@daily"
    assert dag.max_active_runs == 1
    assert set(dag.tags) == {"xport", "taobao", "orders"}
    assert dag.params["lookback_days"] == 30
    assert dag.task_dict["extract"].downstream_task_ids == {"load"}
    outlets = {asset.uri for asset in dag.task_dict["load"].outlets}
    assert outlets == {"xport://warehouse/fct_orders", "xport://warehouse/fct_order_lines"}


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast_and_light(dag_file: Path, airflow_env, tmp_path):
    """Parse a DAG file in a fresh interpreter, after Airflow itself (which every file shares).

    Importing ``airflow.sdk`` alone takes about a second; the budget is for the DAG file.
    """
    code = f"""
import json, sys, time
sys.path.insert(0, {str(PLUGINS_DIR)!r})
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
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"{dag_file.name} imports {result['heavy']} at parse time"
    assert result["dag_s"] < IMPORT_BUDGET_S, (
        f"{dag_file.name} took {result['dag_s']:.3f} s to import "
        f"(after {result['airflow_s']:.3f} s for airflow.sdk)"
    )


def _orders_dag_module(airflow_env):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_xport_taobao_orders_under_test", DAGS_DIR / "xport_taobao_orders.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_order_window(airflow_env):
    order_window = _orders_dag_module(airflow_env).order_window
    d = datetime(2026, 6, 30, tzinfo=UTC)
    # "@daily" in Airflow 3 has a zero-width data interval: the day ending at the logical date
    assert order_window(d, d, 0) == (d - timedelta(days=1), d)
    assert order_window(d, d, 30) == (d - timedelta(days=31), d)
    assert order_window(None, d, 2) == (d - timedelta(days=3), d)
    # a real interval (e.g. CronDataIntervalTimetable) is kept and widened by the lookback
    assert order_window(d - timedelta(days=1), d, 30) == (d - timedelta(days=31), d)
    with pytest.raises(ValueError):
        order_window(d, d, -1)


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
    from xport_hook import XportHook

    monkeypatch.setattr(XportHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    return XportHook()


def test_hook_declares_its_connection_type(airflow_env):
    from airflow.sdk import BaseHook
    from xport_hook import XportHook

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
    from xport_hook import base_url_from_connection

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
    from xport_hook import XportHook

    settings = XportHook(xport_conn_id="xport_envtest").get_settings()
    assert settings.base_url == "http://127.0.0.1:9999"
    assert settings.access_key == "fedcba9876543210fedcba9876543210"
    assert settings.user_id == "1000001"
    assert settings.data_dir == tmp_path
