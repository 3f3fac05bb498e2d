"""The steps the ingest and reports DAGs' tasks call: one DAG run in several processes, each task
one call for its data interval, returning small values (manifest paths, counts).

Each takes the DAG run's id (``run_id``, :func:`~xport_etl.run.steps.dag_run_id` of the DAG's id and
Airflow's run id, passed by the DAG file: the library never imports Airflow), so that every window,
step, check result, reject and fact row of the DAG run carries that one id, whichever process and
whichever retry of a task wrote it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from xport_etl.run import Progress
from xport_etl.run.fanout import extract_fanout
from xport_etl.run.paging import extract_window
from xport_etl.run.state import merge_windows, next_state, nothing_published, publish_state
from xport_etl.run.windows import DEFAULT_CHUNK, interval_window, split_window
from xport_etl.run_ids import new_run_id
from xport_etl.settings import Settings


def extract_interval(
    settings: Settings,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    lookback: timedelta = timedelta(0),
    chunk: timedelta = DEFAULT_CHUNK,
    client=None,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> list[str]:
    """Land a list endpoint for an incremental run's data interval (see :func:`~xport_etl.run.windows.interval_window`),
    in windows of at most ``chunk``; returns the manifest paths (what the DAG's tasks call)."""
    mode, lo, hi = interval_window(settings, endpoint, start, end, lookback=lookback)
    return [
        extract_window(settings, endpoint, a, b, mode=mode, client=client, progress=progress, run_id=run_id)
        for a, b in split_window(lo, hi, chunk)
    ]


def load_into_run(
    settings: Settings, manifests: Sequence[str | Path], key: str, run_id: str | None = None
) -> dict[str, int]:
    """Normalise landed windows and merge them into the next state of run ``key`` (see
    :func:`~xport_etl.run.state.run_key`), unpublished: :func:`publish_run` publishes it once, at the end of the run."""
    return merge_windows(settings, next_state(settings, key, run_id), manifests)


def extract_fanout_for_run(settings: Settings, endpoint: str, key: str, run_id: str | None = None) -> list[str]:
    """:func:`~xport_etl.run.fanout.extract_fanout` with the keys chosen from run ``key``'s next state."""
    state = next_state(settings, key, run_id)
    return extract_fanout(settings, endpoint, state=state, run_id=run_id or state.resolved_run_id())


def publish_run(settings: Settings, key: str, run_id: str | None = None) -> dict[str, Any]:
    """Publish run ``key``'s next state, once (:func:`~xport_etl.run.state.publish_state`); a run that merged nothing,
    or whose next state was already published (a retried task), publishes nothing."""
    state = next_state(settings, key, run_id)
    if not state.exists():
        return nothing_published(run_id)
    return publish_state(settings, state)


def refresh_warehouse(settings: Settings, run_id: str | None = None) -> dict[str, Any]:
    """Re-create the report views and re-run every data check, publishing atomically.

    What the reports DAG runs after the loads: a new state is published unless an error check
    fails (``CheckFailedError``), with the reporting time zone from ``settings``. A publish of run
    ``run_id`` (default: a new id) with nothing merged (:func:`~xport_etl.run.state.publish_state`).
    """
    state = next_state(settings, f"refresh-{uuid.uuid4().hex}", run_id or new_run_id())
    try:
        result = publish_state(settings, state)
    finally:
        state.discard()
        state.forget()
    return {"warehouse": result["warehouse"], "run_id": result["run_id"]}
