"""`run` pages its list windows several at once and stages each DuckDB-normalised window as soon as
it lands (run.lander.ListLander, run.stage.SqlStager); the windows staged at once share one DuckDB
(staging.SharedStaging). Same warehouse as one window at a time, per-window request counts still
right, a failing window stops new ones without losing those in flight, and the shared staging writes what a window's
own connection writes."""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from tests.helpers import TABLES, assert_warehouse_equals_truth
from xport_etl.extract.landing import read_manifest
from xport_etl.layout import DataLayout
from xport_etl.load.staging import SharedStaging, stage_window
from xport_etl.run import engine as engine_run
from xport_etl.run import lander as lander_run
from xport_etl.run import windows as windows_run
from xport_etl.run.engine import run_window
from xport_etl.settings import Settings
from xport_etl.streams import graph

# fct_refunds also holds the 1688 refunds, which come from a fan-out endpoint
LISTS = [t for t in TABLES if t.name in ("fct_orders", "fct_order_lines")]
WEEK = timedelta(days=7)
LIST_ENDPOINTS = graph.lists(graph.run_order())


# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 13, "orders": 700}


def _bounds(world):
    return world.config.start, world.clock + timedelta(days=1)


class _InFlight:
    """Wraps extract_window: counts calls per window and the most windows paged at once."""

    def __init__(self, real, fail_once: str | None = None):
        self.real, self.fail_once = real, fail_once
        self.calls: list[str] = []
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, settings, endpoint, start, end, **kw):
        key = f"{endpoint}/{start.isoformat()}"
        with self.lock:
            self.calls.append(key)
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            if key == self.fail_once:
                self.fail_once = None
                raise RuntimeError(f"injected failure paging {key}")
            return self.real(settings, endpoint, start, end, **kw)
        finally:
            with self.lock:
                self.now -= 1


def _list_requests(sandbox) -> int:
    from xport_etl.extract.endpoints import endpoints_for

    paths = {endpoints_for()[e].path for e in LIST_ENDPOINTS}
    return sum(e["requests"] for p, e in sandbox.stats()["endpoints"].items() if p in paths)


def test_windows_paged_at_once_equal_one_at_a_time_and_the_truth(sandbox, tmp_path, monkeypatch):
    start, end = _bounds(sandbox.world)
    results = {}
    for workers in ("1", "4"):
        spy = _InFlight(lander_run.extract_window)
        monkeypatch.setattr(lander_run, "extract_window", spy)  # where run's lander calls it
        staged_seen = {}
        real_merge = engine_run.merge_windows

        def merge(settings, state, manifests, staged=None, _seen=staged_seen, _real=real_merge, **kw):
            _seen.update(staged or {})
            return _real(settings, state, manifests, staged=staged, **kw)

        monkeypatch.setattr(engine_run, "merge_windows", merge)
        data_dir = tmp_path / f"workers{workers}"
        settings = Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, extract_workers=int(workers))
        requests_before = _list_requests(sandbox)
        run_window(settings, start, end, endpoints=LIST_ENDPOINTS, chunk=WEEK)
        results[workers] = assert_warehouse_equals_truth(data_dir, sandbox.world, LISTS)

        (plan,) = (data_dir / "state" / "plans").glob("*.json")
        landed = json.loads(plan.read_text())["landed"].values()
        manifests = [read_manifest(p) for p in landed]
        # each window's manifest counts its own requests, however many windows were paged at once
        assert sum(m.requests for m in manifests) == _list_requests(sandbox) - requests_before
        assert len(spy.calls) == len(set(spy.calls)) == len(manifests) > 20
        assert spy.most == (1 if workers == "1" else 4)
        # the DuckDB normaliser's windows were staged while paging went on; the others at load
        sql_windows = {p for p in landed if read_manifest(p).endpoint == "taobao_orders"}
        assert set(staged_seen) == sql_windows and sql_windows
    assert results["1"] == results["4"]


def test_a_failing_window_stops_new_windows_and_a_rerun_pages_only_what_is_missing(sandbox, tmp_path, monkeypatch):
    start, end = _bounds(sandbox.world)
    runs = windows_run.split_window(windows_run.utc(start), windows_run.utc(end), windows_run.DEFAULT_RUN)
    # the second window of the newest run, which goes first (runs are newest first)
    victim = f"taobao_orders/{(runs[-1][0] + WEEK).isoformat()}"
    spy = _InFlight(lander_run.extract_window, fail_once=victim)
    monkeypatch.setattr(lander_run, "extract_window", spy)
    settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path, rate_limit=0, extract_workers=3)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_window(settings, start, end, endpoints=LIST_ENDPOINTS, chunk=WEEK)
    assert not DataLayout.of(tmp_path).warehouse.exists()  # nothing was published
    (plan,) = (tmp_path / "state" / "plans").glob("*.json")
    landed_first = set(json.loads(plan.read_text())["landed"])
    started_first = list(spy.calls)
    total = 3 * sum(len(windows_run.split_window(lo, hi, WEEK)) for lo, hi in runs)
    # the windows in flight when the victim failed landed; no window was started after it
    assert victim in started_first and len(landed_first) == len(started_first) - 1
    assert len(started_first) <= started_first.index(victim) + 3 < total

    run_window(settings, start, end, endpoints=LIST_ENDPOINTS, chunk=WEEK)
    again = spy.calls[len(started_first) :]
    assert victim in again and len(again) == total - len(landed_first)
    assert_warehouse_equals_truth(tmp_path, sandbox.world, LISTS)


def test_shared_staging_writes_what_a_window_own_connection_writes(sandbox, tmp_path):
    start, _ = _bounds(sandbox.world)
    settings = Settings(base_url=sandbox.base_url, data_dir=tmp_path / "land", rate_limit=0)
    paths = [
        lander_run.extract_window(settings, "taobao_orders", start + i * 4 * WEEK, start + (i + 1) * 4 * WEEK)
        for i in range(3)
    ]
    manifests = [read_manifest(p) for p in paths]
    own = [stage_window(tmp_path / "own", m, duckdb_threads=1) for m in manifests]
    stale = tmp_path / "shared" / "tmp" / "stage-shared-999999999-deadbeef"  # a killed process's spill
    stale.mkdir(parents=True)
    with SharedStaging(tmp_path / "shared") as shared:
        assert not stale.exists()
        assert shared.tmp.is_dir()
        threads = []
        together = [None] * len(manifests)
        for i, m in enumerate(manifests):

            def work(i=i, m=m):
                together[i] = stage_window(tmp_path / "shared", m, shared=shared)

            threads.append(threading.Thread(target=work))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not shared.tmp.exists()
    for a, b in zip(own, together, strict=True):
        assert a.counts == b.counts and a.records == b.records and a.counts["orders"] > 0
        for table in ("orders", "order_lines"):
            assert [os.path.relpath(f, tmp_path / "own") for f in a.files[table]] == [
                os.path.relpath(f, tmp_path / "shared") for f in b.files[table]
            ]
            for fa, fb in zip(a.files[table], b.files[table], strict=True):
                ta, tb = pq.read_table(fa), pq.read_table(fb)
                assert ta.schema == tb.schema
                key = ["order_id"] + (["line_index"] if table == "order_lines" else [])
                assert ta.sort_by([(k, "ascending") for k in key]).equals(tb.sort_by([(k, "ascending") for k in key]))
