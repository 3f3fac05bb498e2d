"""A first load or a backfill is a sequence of bounded runs, the newest first, each published once:
the latest month is readable (orders with their parcels and refunds) before older months load."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from tests.factories.sandbox import serve
from tests.helpers import assert_warehouse_equals_truth
from xport_etl.layout import DataLayout
from xport_etl.run import engine as engine_run
from xport_etl.run import windows as windows_run
from xport_etl.settings import Settings

MONTH = timedelta(days=31)


def test_runs_publish_once_each_newest_first_and_end_equal_to_the_truth(tmp_path, monkeypatch):
    published = []
    real = engine_run.publish_state

    def spy(settings, state, **kw):
        result = real(settings, state, **kw)
        con = duckdb.connect(str(DataLayout.of(settings.data_dir).warehouse), read_only=True)
        try:
            published.append(
                con.execute(
                    "select min(created_at), max(created_at), count(*), "
                    "(select count(*) from fct_parcels) from fct_orders"
                ).fetchall()[0]
            )
        finally:
            con.close()
        return result

    monkeypatch.setattr(engine_run, "publish_state", spy)  # where the engine calls it
    with serve(seed=21, orders=200) as sandbox:
        world = sandbox.world
        settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0, refetch_after=0)
        start, end = world.config.start, world.clock + timedelta(days=1)
        result = engine_run.run_window(settings, start, end, span=MONTH)
        spans = windows_run.split_window(windows_run.utc(start), windows_run.utc(end), MONTH)
        assert result["runs"] == len(spans) >= 4
        assert len(published) == len(spans)  # one publish per run, none in between
        # the newest month first: the first state holds only orders created in the last span
        first_min, _, first_count, first_parcels = published[0]
        assert first_count > 0 and first_parcels > 0  # readable with its parcels
        assert first_min >= spans[-1][0].replace(tzinfo=None) - timedelta(days=1)
        # each later run adds older orders
        mins = [p[0] for p in published]
        assert mins == sorted(mins, reverse=True) and published[-1][2] > first_count
        assert_warehouse_equals_truth(tmp_path, world)
