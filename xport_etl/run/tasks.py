"""The steps the ingest and reports DAGs' tasks call: one DAG run in several processes, each task
one call for its data interval, returning small values (manifest paths, counts)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from xport_etl.ledger import read_runs
from xport_etl.run import Progress
from xport_etl.run.fanout import extract_fanout
from xport_etl.run.paging import extract_window
from xport_etl.run.state import merge_windows, next_state, nothing_published, publish_state
from xport_etl.run.windows import DEFAULT_CHUNK, interval_window, split_window
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
) -> list[str]:
    """Land a list endpoint for an incremental run's data interval (see :func:`~xport_etl.run.windows.interval_window`),
    in windows of at most ``chunk``; returns the manifest paths (what the DAG's tasks call)."""
    mode, lo, hi = interval_window(settings, endpoint, start, end, lookback=lookback)
    return [
        extract_window(settings, endpoint, a, b, mode=mode, client=client, progress=progress)
        for a, b in split_window(lo, hi, chunk)
    ]


def load_into_run(settings: Settings, manifests: Sequence[str | Path], key: str) -> dict[str, int]:
    """Normalise landed windows and merge them into the next state of run ``key`` (see
    :func:`~xport_etl.run.state.run_key`), unpublished: :func:`publish_run` publishes it once, at the end of the run."""
    return merge_windows(settings, next_state(settings, key), manifests)


def extract_fanout_for_run(settings: Settings, endpoint: str, key: str) -> list[str]:
    """:func:`~xport_etl.run.fanout.extract_fanout` with the keys chosen from run ``key``'s next state."""
    return extract_fanout(settings, endpoint, state=next_state(settings, key))


def publish_run(settings: Settings, key: str) -> dict[str, Any]:
    """Publish run ``key``'s next state, once (:func:`~xport_etl.run.state.publish_state`); a run that merged nothing,
    or whose next state was already published (a retried task), publishes nothing."""
    state = next_state(settings, key)
    if not state.exists():
        return nothing_published()
    return publish_state(settings, state)


def refresh_warehouse(settings: Settings) -> dict[str, Any]:
    """Re-create the report views and re-run every data check, publishing atomically.

    What the reports DAG runs after the loads: a new state is published unless an error check
    fails (``CheckFailedError``), with the reporting time zone from ``settings``. Returns where
    the published warehouse is (a path, or a version's URL under a storage URL).
    """
    from xport_etl.load.publish import view_settings

    state = next_state(settings, f"publish-{uuid.uuid4().hex}")
    try:
        result = state.publish(
            runs=read_runs(settings.layout),
            settings=view_settings(settings),
            check_overrides=settings.check_overrides,
        )
    finally:
        state.discard()
        state.forget()
    return {"warehouse": result.warehouse}
