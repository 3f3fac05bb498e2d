"""How a BI tool (Superset, Metabase, a notebook) connects: SQLAlchemy + duckdb_engine, read-only.

    create_engine("duckdb:////abs/path/warehouse.duckdb", connect_args={"read_only": True},
                  poolclass=NullPool)   # or pool_recycle=…: a new connection sees the newest load

Every ``fct_*``/``etl_*`` table and ``rpt_*`` view is visible to SQLAlchemy's inspector and
queryable; writes fail; and a reader in another process (as a BI server is) keeps connecting and
querying without a single error while the pipeline publishes new loads (atomic file swap).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import create_engine, exc, inspect, text
from sqlalchemy.pool import NullPool

from tests.factories.sandbox import ONE_WINDOW, PUBLISHED_WORLD, serve
from xport_etl.layout import DataLayout
from xport_etl.report import docs
from xport_etl.run.engine import run_window
from xport_etl.run.tasks import refresh_warehouse
from xport_etl.settings import Settings


def bi_url(path: Path) -> str:
    """The SQLAlchemy URL a BI tool is given: ``duckdb:///`` + the absolute path."""
    return f"duckdb:///{Path(path).resolve()}"


def bi_engine(path: Path):
    return create_engine(bi_url(path), connect_args={"read_only": True}, poolclass=NullPool)


def dictionary_objects() -> tuple[list[str], list[str]]:
    """(tables, views) the data dictionary documents."""
    objects = [o for s in docs.sections() for o in s.objects]
    return [o.name for o in objects if o.kind == "table"], [o.name for o in objects if o.kind == "view"]


@pytest.fixture(scope="module")
def loaded(sandbox_warehouse):
    """No sandbox, and the session's published sandbox world (read it only)."""
    return None, Settings(data_dir=sandbox_warehouse, rate_limit=0)


@pytest.fixture
def loading(sandbox_warehouse, tmp_path):
    """The world of the session's published warehouse served again, and a copy of that warehouse
    of the test's own to load further into."""
    data_dir = Path(shutil.copytree(sandbox_warehouse, tmp_path / "data"))
    with serve(**PUBLISHED_WORLD) as sandbox:
        yield sandbox, Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0)


def test_url_is_absolute_with_four_slashes(tmp_path):
    assert bi_url(tmp_path / "warehouse.duckdb").startswith("duckdb:////")


def test_every_object_is_visible_and_queryable(loaded):
    _, settings = loaded
    tables, views = dictionary_objects()
    engine = bi_engine(DataLayout.of(settings.data_dir).warehouse)
    try:
        inspector = inspect(engine)
        assert set(tables) <= set(inspector.get_table_names())
        assert set(views) <= set(inspector.get_view_names())
        with engine.connect() as con:
            for obj in (o for s in docs.sections() for o in s.objects):  # a dataset's fields
                fields = con.execute(
                    text(
                        "select column_name, data_type from information_schema.columns "
                        "where table_name = :name order by ordinal_position"
                    ),
                    {"name": obj.name},
                ).all()
                assert [tuple(f) for f in fields] == [(c.name, c.type) for c in obj.columns], obj.name
            counts = {n: con.execute(text(f"select count(*) from {n}")).scalar_one() for n in tables + views}
            assert counts["fct_orders"] > 0 and counts["rpt_spend_monthly"] > 0, counts
            row = con.execute(text("select * from rpt_spend_monthly limit 1")).mappings().one()
            assert {"month", "platform", "net_spend"} <= set(row)
            # a monthly view's table macro, the zone a bound parameter (a notebook's other zone)
            view = con.execute(text("select * from rpt_spend_monthly")).all()
            at_home = con.execute(text("select * from rpt_spend_monthly_at(:tz)"), {"tz": "Asia/Shanghai"}).all()
            utc = con.execute(text("select * from rpt_spend_monthly_at(:tz)"), {"tz": "UTC"}).all()
            assert at_home == view and utc and sum(r.orders for r in utc) == sum(r.orders for r in view)
    finally:
        engine.dispose()


@pytest.mark.xfail(
    raises=exc.ProgrammingError,
    strict=True,
    reason=(
        "known bug: SQLAlchemy >= 2.0.45 reflects columns with a pg_catalog.pg_collation query that "
        "DuckDB's catalog cannot answer (Mause/duckdb_engine#1391, fix proposed in #1393). Tools that "
        "reflect columns (Superset's dataset editor, Table(autoload_with=…)) need SQLAlchemy < 2.0.45 "
        "in their own environment; when this passes, drop the xfail and the README caveat."
    ),
)
def test_sqlalchemy_column_reflection(loaded):
    _, settings = loaded
    engine = bi_engine(DataLayout.of(settings.data_dir).warehouse)
    try:
        columns = inspect(engine).get_columns("rpt_spend_monthly")
    finally:
        engine.dispose()
    assert [c["name"] for c in columns][:3] == ["month", "platform", "currency"]


def test_writes_through_the_bi_engine_fail(loaded):
    _, settings = loaded
    path = DataLayout.of(settings.data_dir).warehouse
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    engine = bi_engine(path)
    try:
        for statement in (
            "insert into etl_settings values ('report_tz', 'UTC')",
            "delete from fct_orders",
            "create table scratch (x int)",
            "drop view rpt_spend_monthly",
        ):
            with engine.connect() as con, pytest.raises(exc.DBAPIError, match="read-only"):
                con.execute(text(statement))
    finally:
        engine.dispose()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


READER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.pool import NullPool

    url, stop, tables, views = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
    engine = create_engine(url, connect_args={"read_only": True}, poolclass=NullPool)
    iterations, errors, states = 0, [], []
    while True:
        last = stop.exists()
        try:
            with engine.connect() as con:  # a fresh connection (a fresh open of the file) every time
                insp = inspect(con)
                missing = (set(tables) - set(insp.get_table_names())) | (set(views) - set(insp.get_view_names()))
                assert not missing, f"not visible: {sorted(missing)}"
                counts = {n: con.execute(text(f"select count(*) from {n}")).scalar_one() for n in tables + views}
                by_month = con.execute(text("select coalesce(sum(orders), 0) from rpt_fulfilment_monthly")).scalar_one()
                assert by_month == counts["fct_orders"], (by_month, counts["fct_orders"])
                state = [counts["etl_runs"], counts["fct_orders"], counts["fct_parcel_events"]]
                if not states or states[-1] != state:
                    states.append(state)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        iterations += 1
        if iterations == 1:
            print("ready", flush=True)
        if last:
            break
    print(json.dumps({"iterations": iterations, "errors": errors[:20], "n_errors": len(errors), "states": states}))
""")


@pytest.mark.slow
def test_a_bi_reader_never_fails_while_the_pipeline_publishes(loading, tmp_path):
    """A BI reader in its own process loops connect → inspect → count every object while real
    loads (the sandbox clock moving: new orders, statuses, events) and refreshes publish."""
    sandbox, settings = loading
    tables, views = dictionary_objects()
    path = DataLayout.of(settings.data_dir).warehouse
    stop = tmp_path / "stop"
    script = tmp_path / "reader.py"
    script.write_text(READER)
    proc = subprocess.Popen(
        [sys.executable, str(script), bi_url(path), str(stop), json.dumps(tables), json.dumps(views)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready", proc.communicate(timeout=30)
        publishes = 0
        for _ in range(3):
            sandbox.advance(2 * 24 * 3600)
            run_window(settings, sandbox.world.config.start, sandbox.world.clock + timedelta(days=30), chunk=ONE_WINDOW)
            refresh_warehouse(settings)
            publishes += 3  # list endpoints, fan-out endpoints, refresh
        stop.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["n_errors"] == 0, result["errors"]
    assert result["iterations"] >= publishes, result  # it really read throughout the loads

    con = duckdb.connect(str(path), read_only=True)
    try:
        final = [
            con.execute(f"select count(*) from {n}").fetchone()[0]
            for n in ("etl_runs", "fct_orders", "fct_parcel_events")
        ]
    finally:
        con.close()
    states = result["states"]
    assert len(states) >= 2, f"the reader never saw a newer load: {states}"  # reconnecting sees new loads
    assert states[-1] == final, (states, final)  # and, once loads stop, exactly the published state
