"""A run's next state of the warehouse: landed windows staged and merged into it, then checked and
published once (:class:`xport_etl.load.publish.NextState`), its windows recorded in the run ledger."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xport_etl.extract.landing import Manifest
from xport_etl.ledger import _run_row, append_runs, read_runs
from xport_etl.run import Progress
from xport_etl.run.stage import stage_windows
from xport_etl.settings import Settings

if TYPE_CHECKING:
    from xport_etl.load.publish import NextState

log = logging.getLogger(__name__)


def next_state(settings: Settings, key: str) -> NextState:
    """Run ``key``'s next state of the warehouse, with the settings' memory limit and storage version:
    a file of the data directory, or under a storage URL what any host rebuilds it from
    (:class:`xport_etl.load.stored_state.StoredNextState`)."""
    if settings.layout.stored:
        from xport_etl.load.stored_state import StoredNextState

        return StoredNextState(settings.layout, key, settings.load_memory, settings.warehouse_storage_version)
    from xport_etl.load.publish import NextState

    return NextState(settings.layout, key, settings.load_memory, settings.warehouse_storage_version)


def run_key(*parts: str) -> str:
    """A next-state key for a run named by ``parts`` (e.g. an Airflow DAG id and run id)."""
    return "run-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def nothing_published() -> dict[str, Any]:
    """The result of a run that had nothing to publish."""
    return {"batches": 0, "records": 0, "rows_written": {}, "rejects": 0, "warehouse": None}


def _success_rows(loaded: Sequence[Manifest], batches: Sequence[Any]) -> list[dict[str, Any]]:
    from xport_etl.load.publish import rows_json

    return [
        _run_row(
            m,
            outcome="success",
            rejected=b.counts.get("rejects", 0),
            warnings=b.counts.get("warnings", 0),
            rows_written=rows_json({t: n for t, n in b.counts.items() if t not in ("rejects", "warnings")}),
        )
        for m, b in zip(loaded, batches, strict=True)
    ]


def merge_windows(
    settings: Settings,
    state,
    manifests: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    staged: dict[str, Any] | None = None,
) -> dict[str, int]:
    """Normalise landed windows and merge them into a run's next state (published later, once,
    by :func:`publish_state`); returns the rows written per table."""
    loaded, batches = stage_windows(settings, manifests, progress=progress, staged=staged)
    return state.merge(batches, rows=_success_rows(loaded, batches))


def publish_state(settings: Settings, state, *, progress: Progress | None = None) -> dict[str, Any]:
    """Check a run's next state and swap it in for the published warehouse (see
    :class:`xport_etl.load.publish.NextState`); then record its windows in the run ledger.

    Returns:
        Small counts: rows written per table, rejects, batches (windows), the records those
        windows held (as the API listed them), the warehouse path.
    """
    from xport_etl.load.publish import view_settings

    pending = state.pending_rows
    started = time.time()
    if progress:
        progress({"event": "publish", "phase": "start", "batches": len(state.batches)})
    try:
        result = state.publish(
            runs=read_runs(settings.layout, pending=pending),
            settings=view_settings(settings),
            check_overrides=settings.check_overrides,
        )
    except Exception as exc:
        append_runs(settings.layout, [{**row, "outcome": "failed", "error": str(exc)} for row in pending])
        raise
    append_runs(settings.layout, pending)
    log.info("published %d batches in %.1f s: %s", result.batches, time.time() - started, result.rows_written)
    if progress:
        progress(
            {
                "event": "publish",
                "phase": "done",
                "batches": result.batches,
                "rows_written": result.rows_written,
                "seconds": time.time() - started,
            }
        )
    return {
        "batches": result.batches,
        "records": sum(row.get("records") or 0 for row in pending),
        "rows_written": result.rows_written,
        "rejects": result.rejects,
        "warehouse": result.warehouse,
    }


def load_windows(
    settings: Settings,
    manifests: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    staged: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Normalise landed windows to Parquet and publish them into the warehouse atomically, at once
    (``xport-etl load``, the callbacks' refresh: a run of one load).

    Args:
        staged: batches already staged, by manifest path; the other windows are staged here.

    Returns:
        Small counts: rows written per table, rejects, batches.
    """
    state = next_state(settings, f"load-{uuid.uuid4().hex}")
    try:
        merge_windows(settings, state, manifests, progress=progress, staged=staged)
        return publish_state(settings, state, progress=progress)
    finally:
        state.discard()
        state.forget()
