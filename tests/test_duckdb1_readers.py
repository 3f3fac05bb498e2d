"""Readers on DuckDB 1.x open the warehouse that DuckDB 2.x publishes.

The pipeline writes with DuckDB 2.0.1, but the warehouse's readers bring their own DuckDB: the
DuckDB CLI from the package index (1.5.6), BI drivers and language bindings built on 1.x. The
warehouse is therefore written in the storage version ``v1.0.0``
(``XPORT_WAREHOUSE_STORAGE_VERSION``, :func:`xport_etl.load.migrate.create_state_file`), and a
warehouse written in DuckDB 2.x's own format (everything published before that setting) is
rewritten in it on its next publish.

In a virtual environment of their own (the ``duckdb1_readers`` fixture, tests/conftest.py), DuckDB
1.5.6 and the oldest reader, DuckDB 1.0.0, open the published file read-only and read every table,
every ``rpt_*`` view and every table macro, row for row what DuckDB 2.x reads; the DuckDB CLI 1.5.6
runs the deployment guide's query; duckdb-engine 0.17.0 with SQLAlchemy 2.0.44 lists and reflects
every object and queries a macro with a bound zone.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.factories.readers import OLDEST_READER_PIN, READER_PINS
from xport_etl.errors import ConfigError
from xport_etl.layout import DataLayout
from xport_etl.load.migrate import create_state_file
from xport_etl.report import docs
from xport_etl.report.views import reports
from xport_etl.run.tasks import refresh_warehouse
from xport_etl.settings import DEFAULT_WAREHOUSE_STORAGE_VERSION, Settings

# every table, view and table macro, each read whole (in a fixed order) and printed as JSON: the
# same script runs on DuckDB 2.x (the writer's) and on each 1.x reader, and their outputs are compared
READ_EVERYTHING = """
import json, sys
import duckdb

con = duckdb.connect(sys.argv[1], read_only=True)
out = {"version": duckdb.__version__, "tables": {}, "views": {}, "macros": {}}


def rows(sql):
    return [[None if v is None else str(v) for v in row] for row in con.execute(sql).fetchall()]


objects = con.execute(
    "select table_name, table_type from information_schema.tables where table_schema = 'main' order by 1"
).fetchall()
for name, kind in objects:
    out["tables" if kind == "BASE TABLE" else "views"][name] = rows(f"select * from {name} order by all")
macros = con.execute(
    "select distinct function_name from duckdb_functions() "
    "where function_type = 'table_macro' and schema_name = 'main' and not internal order by 1"
).fetchall()
for (macro,) in macros:
    for tz in ("UTC", "America/New_York"):
        out["macros"][f"{macro}({tz})"] = rows(f"select * from {macro}('{tz}') order by all")
# what a BI tool shows of each object and column: its comment (COMMENT ON, from the data dictionary)
out["comments"] = {
    "tables": rows("select table_name, comment from duckdb_tables() order by all"),
    "views": rows("select view_name, comment from duckdb_views() where not internal order by all"),
    "columns": rows("select table_name, column_name, comment from duckdb_columns() where not internal order by all"),
    "macros": rows(
        "select distinct function_name, comment from duckdb_functions() "
        "where function_type = 'table_macro' and schema_name = 'main' and not internal order by all"
    ),
}
print(json.dumps(out))
"""

# what a BI tool does through duckdb-engine: list, reflect, query with a bound parameter
BI_TOOL = """
import json, sys
import duckdb, sqlalchemy
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

engine = create_engine(f"duckdb:///{sys.argv[1]}", connect_args={"read_only": True}, poolclass=NullPool)
insp = inspect(engine)
with engine.connect() as con:
    utc = con.execute(text("select * from rpt_spend_monthly_at(:tz)"), {"tz": "UTC"}).all()
    view = con.execute(text("select * from rpt_spend_monthly")).all()
print(json.dumps({
    "versions": [duckdb.__version__, sqlalchemy.__version__],
    "tables": insp.get_table_names(),
    "views": insp.get_view_names(),
    "columns": [c["name"] for c in insp.get_columns("rpt_spend_monthly")],
    "orders_utc": sum(r.orders for r in utc),
    "orders_view": sum(r.orders for r in view),
}))
"""


def expected_objects() -> tuple[set[str], set[str], set[str]]:
    """(tables, views, table macros) the warehouse holds: the data dictionary's, the reports' and
    ``etl_settings`` (what the views read the reporting zone from)."""
    objects = [o for s in docs.sections() for o in s.objects]
    tables = {o.name for o in objects if o.kind == "table"} | {"etl_settings"}
    views = {o.name for o in objects if o.kind == "view"}
    return tables, views, {r.macro for r in reports() if r.macro}


def read_everything(path: Path, readers=None, *, oldest: bool = False) -> dict:
    """:data:`READ_EVERYTHING` on ``path``: with this DuckDB (2.x), or with ``readers``' 1.5.6 (or
    1.0.0: ``oldest``)."""
    if readers is not None:
        return json.loads(readers.run(READ_EVERYTHING, str(path), oldest=oldest))
    out = subprocess.run([sys.executable, "-c", READ_EVERYTHING, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def storage_version(path: Path) -> str:
    con = duckdb.connect(":memory:")
    try:
        con.execute("attach ? as w (read_only)", [str(path)])
        return con.execute(
            "select tags['storage_version'] from duckdb_databases() where database_name = 'w'"
        ).fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def loaded(sandbox_warehouse):
    """A warehouse published from the sandbox with the default settings (the session's: copy it to
    change it)."""
    return Settings(data_dir=sandbox_warehouse, rate_limit=0)


@pytest.fixture(scope="module")
def written(loaded) -> dict:
    """What DuckDB 2.x (the writer's own) reads in the published warehouse."""
    return read_everything(DataLayout.of(loaded.data_dir).warehouse)


def test_the_warehouse_is_published_in_the_oldest_storage_version(loaded, written):
    assert DEFAULT_WAREHOUSE_STORAGE_VERSION == "v1.0.0" == Settings().warehouse_storage_version
    assert storage_version(DataLayout.of(loaded.data_dir).warehouse) == "v1.0.0+"
    tables, views, macros = expected_objects()
    assert set(written["tables"]) == tables and set(written["views"]) == views
    assert {m.split("(")[0] for m in written["macros"]} == macros
    assert all(written["tables"][t] for t in ("fct_orders", "fct_order_lines", "fct_parcels", "fct_refunds"))
    assert all(written["views"][v] for v in views)


@pytest.mark.slow  # the duckdb1_readers fixture installs DuckDB 1.x from the package index
@pytest.mark.parametrize("oldest", [False, True], ids=[READER_PINS[0], OLDEST_READER_PIN])
def test_duckdb_1x_reads_every_table_view_and_macro(loaded, written, duckdb1_readers, oldest):
    read = read_everything(DataLayout.of(loaded.data_dir).warehouse, duckdb1_readers, oldest=oldest)
    assert read["version"] == (OLDEST_READER_PIN if oldest else READER_PINS[0]).split("==")[1]
    for kind in ("tables", "views", "macros"):
        assert read[kind].keys() == written[kind].keys(), kind
        for name, rows in written[kind].items():
            assert read[kind][name] == rows, f"{kind} {name}: DuckDB {read['version']} reads other rows"
    # and every object's and column's description (issue 27.1)
    assert all(comment for *_, comment in written["comments"]["columns"])
    assert read["comments"] == written["comments"]


@pytest.mark.slow  # the duckdb1_readers fixture installs DuckDB 1.x from the package index
def test_the_duckdb_cli_runs_the_guides_query(loaded, duckdb1_readers):
    """docs/deploy-airflow.md, "Reading the run ledger", with the DuckDB CLI from the package index."""
    cli = duckdb1_readers.bin / "duckdb"
    path = str(DataLayout.of(loaded.data_dir).warehouse)
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v" + READER_PINS[1].split("==")[1]), version
    for sql in (
        "from etl_runs order by started_at desc limit 10",
        "select count(*) as months from rpt_spend_monthly_at('UTC')",
    ):
        out = subprocess.run([cli, "-readonly", "-csv", path, sql], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout.count("\n") >= 2, (sql, out.stdout, out.stderr)


@pytest.mark.slow  # the duckdb1_readers fixture installs DuckDB 1.x from the package index
def test_a_bi_tool_on_duckdb_1x_lists_reflects_and_queries(loaded, duckdb1_readers):
    """duckdb-engine 0.17.0 + SQLAlchemy 2.0.44 on DuckDB 1.5.6: column reflection works there
    (it fails from SQLAlchemy 2.0.45 on: tests/test_bi.py's xfail)."""
    got = json.loads(duckdb1_readers.run(BI_TOOL, str(DataLayout.of(loaded.data_dir).warehouse.resolve())))
    assert got["versions"] == [READER_PINS[0].split("==")[1], READER_PINS[3].split("==")[1]]
    tables, views, _ = expected_objects()
    assert tables <= set(got["tables"]) and views <= set(got["views"])
    assert got["columns"][:3] == ["month", "platform", "currency"]
    assert got["orders_utc"] == got["orders_view"] > 0


@pytest.mark.slow  # the duckdb1_readers fixture installs DuckDB 1.x from the package index
def test_a_warehouse_in_duckdb_2x_format_migrates_on_its_next_publish(
    loaded, written, duckdb1_readers, tmp_path, caplog
):
    """A warehouse in DuckDB 2.x's own storage version (what every publish wrote before the setting:
    DuckDB's default) is unreadable on 1.x; the next publish rewrites it in v1.0.0, in place, with
    every fact row and report row as it was; the publish after that copies it as it is."""
    data_dir = tmp_path / "data"
    shutil.copytree(loaded.data_dir, data_dir)
    path = DataLayout.of(data_dir).warehouse
    path.unlink()
    con = duckdb.connect(str(path))  # DuckDB 2.x's default storage version, as before the setting
    try:
        con.execute("attach ? as published (read_only)", [str(DataLayout.of(loaded.data_dir).warehouse)])
        con.execute("copy from database published to warehouse")
    finally:
        con.close()
    assert storage_version(path) == "v2.0.0+"
    failed = subprocess.run(
        [
            str(duckdb1_readers.python),
            "-c",
            "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True)",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and "version number" in failed.stderr  # the reported failure

    with caplog.at_level(logging.INFO, logger="xport_etl.load.migrate"):
        refresh_warehouse(Settings(data_dir=data_dir))
    assert storage_version(path) == "v1.0.0+"
    assert caplog.text.count("rewriting it in v1.0.0+") == 1, caplog.text
    read = read_everything(path, duckdb1_readers)
    assert read["views"] == written["views"] and read["macros"] == written["macros"]
    assert {t: rows for t, rows in read["tables"].items() if t.startswith("fct_")} == {
        t: rows for t, rows in written["tables"].items() if t.startswith("fct_")
    }

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="xport_etl.load.migrate"):
        refresh_warehouse(Settings(data_dir=data_dir))
    assert "rewriting" not in caplog.text and storage_version(path) == "v1.0.0+"


def test_latest_writes_this_duckdbs_newest_storage_version(loaded, tmp_path):
    """XPORT_WAREHOUSE_STORAGE_VERSION=latest: for readers all on DuckDB 2.x; the warehouse is
    rewritten in the newest format on the next publish (and back with v1.0.0)."""
    data_dir = tmp_path / "data"
    shutil.copytree(loaded.data_dir, data_dir)
    settings = Settings.from_env({"XPORT_DATA_DIR": str(data_dir), "XPORT_WAREHOUSE_STORAGE_VERSION": "latest"})
    assert settings.warehouse_storage_version == "latest"
    refresh_warehouse(settings)
    assert storage_version(DataLayout.of(data_dir).warehouse) == "v2.0.0+"
    refresh_warehouse(Settings(data_dir=data_dir))
    assert storage_version(DataLayout.of(data_dir).warehouse) == "v1.0.0+"


def test_the_storage_version_setting_is_checked(tmp_path):
    from xport_etl.settings import overrides_from_extras

    for bad in ("1.0", "v1.0", "newest", "v1.0.0; drop table fct_orders"):
        with pytest.raises(ConfigError, match="XPORT_WAREHOUSE_STORAGE_VERSION must be a DuckDB release"):
            Settings.from_env({"XPORT_WAREHOUSE_STORAGE_VERSION": bad})
    assert overrides_from_extras({"warehouse_storage_version": "v1.2.0"}) == {"warehouse_storage_version": "v1.2.0"}
    # well-formed, but not a DuckDB release: one line naming the variable, nothing created
    with pytest.raises(
        ConfigError, match="XPORT_WAREHOUSE_STORAGE_VERSION: DuckDB .* knows no storage version 'v9.9.9'"
    ):
        create_state_file(tmp_path / "next.duckdb", "v9.9.9")
    assert not (tmp_path / "next.duckdb").exists()
