"""A run's next state of the warehouse: landed windows staged and merged into it, then checked and
published once (:class:`xport_etl.load.publish.NextState`), its windows recorded in the run ledger
under the run's id, with its ``stage``, ``merge`` and ``publish`` steps (:mod:`xport_etl.run.steps`)."""

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
from xport_etl.run.steps import step
from xport_etl.run_ids import new_publish_id, new_run_id
from xport_etl.settings import Settings

if TYPE_CHECKING:
    from xport_etl.load.publish import NextState

log = logging.getLogger(__name__)


def next_state(settings: Settings, key: str, run_id: str | None = None) -> NextState:
    """Run ``key``'s next state of the warehouse, with the settings' memory limit and storage version:
    a file of the data directory, or under a storage URL what any host rebuilds it from
    (:class:`xport_etl.load.stored_state.StoredNextState`); ``run_id``: the run's id
    (:mod:`xport_etl.run.steps`; default: the one the state holds, else new)."""
    if settings.layout.stored:
        from xport_etl.load.stored_state import StoredNextState

        return StoredNextState(settings.layout, key, settings.load_memory, settings.warehouse_storage_version, run_id)
    from xport_etl.load.publish import NextState

    return NextState(settings.layout, key, settings.load_memory, settings.warehouse_storage_version, run_id)


def run_key(*parts: str) -> str:
    """A next-state key for a run named by ``parts`` (e.g. an Airflow DAG id and run id)."""
    return "run-" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:20]


def nothing_published(run_id: str | None = None) -> dict[str, Any]:
    """The result of a run that had nothing to publish."""
    return {"run_id": run_id, "batches": 0, "records": 0, "rows_written": {}, "rejects": 0, "warehouse": None}


def _success_rows(loaded: Sequence[Manifest], batches: Sequence[Any], run_id: str) -> list[dict[str, Any]]:
    from xport_etl.load.publish import rows_json

    return [
        _run_row(
            m,
            run_id=run_id,
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
    by :func:`publish_state`); returns the rows written per table. Recorded as the run's ``stage``
    step (the windows not already staged while they landed) and ``merge`` step."""
    run_id = state.resolved_run_id()
    early = len([m for m in manifests if str(m) in (staged or {})])
    with step(settings.layout, run_id, "stage", windows=len(manifests), staged_while_landing=early):
        loaded, batches = stage_windows(settings, manifests, progress=progress, staged=staged)
    endpoints = sorted({m.endpoint for m in loaded})
    with step(settings.layout, run_id, "merge", windows=len(loaded), endpoints=endpoints) as info:
        written = state.merge(batches, rows=_success_rows(loaded, batches, run_id))
        info["rows_written"] = written
    return written


def publish_state(settings: Settings, state, *, progress: Progress | None = None) -> dict[str, Any]:
    """Check a run's next state and swap it in for the published warehouse (see
    :class:`xport_etl.load.publish.NextState`); then record its windows in the run ledger, under
    the run's id and this publish's id, and the run's ``publish`` step.

    Returns:
        Small counts: rows written per table, rejects, batches (windows), the records those
        windows held (as the API listed them), the warehouse path, the run's and publish's ids.
    """
    from xport_etl.load.checks import count_outcomes
    from xport_etl.load.publish import view_settings

    run_id, publish_id = state.resolved_run_id(), new_publish_id()
    pending = [_pending_row(row, run_id, publish_id) for row in state.pending_rows]
    started = time.time()
    if progress:
        progress({"event": "publish", "phase": "start", "batches": len(state.batches)})
    with step(settings.layout, run_id, "publish", publish_id=publish_id, batches=len(pending)) as info:
        try:
            result = state.publish(
                runs=read_runs(settings.layout, pending=pending),
                settings=view_settings(settings),
                check_overrides=settings.check_overrides,
                publish_id=publish_id,
            )
        except Exception as exc:
            append_runs(settings.layout, [{**row, "outcome": "failed", "error": str(exc)} for row in pending])
            info["checks"] = count_outcomes(getattr(exc, "results", None))
            raise
        append_runs(settings.layout, pending)
        info.update(rows_written=result.rows_written, rejects=result.rejects, checks=result.checks)
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
        "run_id": run_id,
        "publish_id": publish_id,
        "batches": result.batches,
        "records": sum(row.get("records") or 0 for row in pending),
        "rows_written": result.rows_written,
        "rejects": result.rejects,
        "warehouse": result.warehouse,
    }


def _pending_row(row: dict[str, Any], run_id: str, publish_id: str) -> dict[str, Any]:
    """A merged window's ledger row as its publish records it: the run's id and the publish's. A row
    a version before run ids merged (its run killed then, resumed now) named its extraction as
    ``run_id``: that becomes its ``extraction_id``, and the resuming run its run."""
    extraction = row["extraction_id"] if "extraction_id" in row else row.get("run_id")
    return {**row, "run_id": run_id, "publish_id": publish_id, "extraction_id": extraction}


def load_windows(
    settings: Settings,
    manifests: Sequence[str | Path],
    *,
    progress: Progress | None = None,
    staged: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Normalise landed windows to Parquet and publish them into the warehouse atomically, at once
    (``xport-etl load``, the callbacks' refresh: a run of one load).

    Args:
        staged: batches already staged, by manifest path; the other windows are staged here.
        run_id: the run's id (default: a new one).

    Returns:
        Small counts: rows written per table, rejects, batches, the run's and publish's ids.
    """
    state = next_state(settings, f"load-{uuid.uuid4().hex}", run_id or new_run_id())
    try:
        merge_windows(settings, state, manifests, progress=progress, staged=staged)
        return publish_state(settings, state, progress=progress)
    finally:
        state.discard()
        state.forget()
