"""One published state per run: a run's loads merge into its unpublished next state, fan-outs
read their keys from it, and one publish swaps it in (``xport_etl.load.publish.NextState``)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from tests.factories.landed import T0, facts, land
from tests.factories.served import order, page, sub
from xport_etl.layout import DataLayout
from xport_etl.load.checks import CheckFailedError
from xport_etl.load.publish import NextState, publish
from xport_etl.load.staging import stage_window
from xport_etl.run.fanout import fanout_keys
from xport_etl.run.state import publish_state
from xport_etl.run.tasks import publish_run
from xport_etl.settings import Settings


def _digest(data_dir) -> str:
    return hashlib.sha256(DataLayout.of(data_dir).warehouse.read_bytes()).hexdigest()


def _batch(data_dir, records, day: int = 0):
    return stage_window(data_dir, land(data_dir, [page(records)], start=T0 + timedelta(days=day)))


def test_merges_stay_unpublished_until_the_one_publish(tmp_path):
    publish(tmp_path, [_batch(tmp_path, [order(id="1")])])
    before = _digest(tmp_path)
    state = NextState(tmp_path, "run-a")
    state.merge([_batch(tmp_path, [order(id="2")], day=1)])
    state.merge([_batch(tmp_path, [order(id="3")], day=2)])
    assert _digest(tmp_path) == before  # readers still see the state before the run
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["1"]
    state.publish()
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["1", "2", "3"]
    assert not state.exists() and not state.path.exists()


def test_fanout_keys_come_from_the_next_state_not_the_published_one(tmp_path):
    settings = Settings(data_dir=tmp_path, refetch_after=0)
    shipped = order(
        id="7",
        status=11,
        subOrderVOS=[sub(subOrderId="71", status=11, taobaoSubPurchaseId="5001", logisticNumber="SF1")],
    )
    state = NextState(tmp_path, "run-b")
    state.merge([_batch(tmp_path, [shipped])])
    assert not DataLayout.of(tmp_path).warehouse.exists()  # nothing published yet
    assert fanout_keys(settings, "taobao_logistics")[0] == []  # the published warehouse knows nothing
    keys, _ = fanout_keys(settings, "taobao_logistics", state)
    assert [k["key"] for k in keys] == ["5001"]


def test_a_publish_between_merge_and_swap_is_kept(tmp_path):
    """Another writer (the callbacks' refresh) publishes while the run builds its next state: the
    run's publish merges its batches onto that newer state, so both writers' rows survive."""
    publish(tmp_path, [_batch(tmp_path, [order(id="1")])])
    state = NextState(tmp_path, "run-c")
    state.merge([_batch(tmp_path, [order(id="2")], day=1)])
    publish(tmp_path, [_batch(tmp_path, [order(id="9")], day=5)])  # the other writer
    state.publish()
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["1", "2", "9"]


def test_a_blocked_publish_keeps_the_next_state_and_the_published_file(tmp_path):
    publish(tmp_path, [_batch(tmp_path, [order(id="1")])])
    before = _digest(tmp_path)
    state = NextState(tmp_path, "run-d")
    broken = order(id="3", purchaseAmount="99.00")  # the order amount disagrees with its lines
    state.merge([_batch(tmp_path, [broken], day=1)])
    as_error = {"chk_fct_orders__amount_equals_lines": {"severity": "error"}}
    with pytest.raises(CheckFailedError):
        state.publish(check_overrides=as_error)
    assert _digest(tmp_path) == before
    assert state.exists()  # what the run merged waits for a re-run
    state.publish()  # the default policy: a warn check publishes
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["1", "3"]


def test_a_new_process_continues_the_same_next_state(tmp_path):
    """Airflow tasks of one run are separate processes: a NextState of the same key sees what the
    earlier tasks merged, and publishing twice (a retried task) publishes once."""
    settings = Settings(data_dir=tmp_path)
    row = {"run_id": "r", "endpoint": "taobao_orders", "window_id": "w", "outcome": "success"}
    NextState(tmp_path, "run-e").merge([_batch(tmp_path, [order(id="4")])], rows=[row])
    again = NextState(tmp_path, "run-e")
    assert again.exists() and len(again.batches) == 1 and again.pending_rows == [row]
    again.merge([_batch(tmp_path, [order(id="5")], day=1)])
    first = publish_run(settings, "run-e")
    assert first["batches"] == 2
    assert publish_run(settings, "run-e")["batches"] == 0  # already published: nothing to do
    assert [r[0] for r in facts(tmp_path)["orders"]] == ["4", "5"]


def test_a_failed_publish_marks_the_run_rows_failed_and_a_rerun_succeeds(tmp_path):
    from xport_etl.ledger import read_runs
    from xport_etl.run.state import merge_windows

    settings = Settings(
        data_dir=tmp_path, check_overrides={"chk_fct_orders__amount_equals_lines": {"severity": "error"}}
    )
    m = land(tmp_path, [page([order(id="3", purchaseAmount="99.00")])])
    state = NextState(tmp_path, "run-f")
    merge_windows(settings, state, [m.directory / "manifest.json"])
    with pytest.raises(CheckFailedError):
        publish_state(settings, state)
    assert [r["outcome"] for r in read_runs(tmp_path)] == ["failed"]
    publish_state(Settings(data_dir=tmp_path), state)
    assert [r["outcome"] for r in read_runs(tmp_path)] == ["success"]


def test_next_states_abandoned_for_a_week_are_removed_when_a_run_starts(tmp_path):
    import os
    import time

    old = NextState(tmp_path, "run-old")
    old.merge([_batch(tmp_path, [order(id="1")])])
    week_ago = time.time() - 8 * 24 * 3600
    os.utime(old.path, (week_ago, week_ago))
    recent = NextState(tmp_path, "run-recent")
    recent.merge([_batch(tmp_path, [order(id="2")], day=1)])
    NextState(tmp_path, "run-new").merge([_batch(tmp_path, [order(id="3")], day=2)])
    assert not old.path.exists() and not old.meta_path.exists()
    assert recent.exists()
