"""The run ledger: one JSON line per (run, endpoint, window) and outcome, appended with an fsync
(the layout's ``runs``, ``state/runs.jsonl``); the last line for a key wins. ``etl_runs`` and
``xport-etl status`` are read from it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from xport_etl.extract.landing import Manifest
from xport_etl.layout import DataLayout, Where

__all__ = ["append_run", "read_runs"]


def _run_row(
    m: Manifest,
    *,
    outcome: str,
    error: str | None = None,
    rejected: int = 0,
    warnings: int = 0,
    rows_written: str | None = None,
) -> dict[str, Any]:
    started = datetime.fromisoformat(m.extracted_at)
    finished = datetime.now(UTC)
    return {
        "run_id": m.run_id,
        "endpoint": m.endpoint,
        "window_id": m.window_id,
        "mode": m.mode,
        "window_start": m.window_start,
        "window_end": m.window_end,
        "pages": m.pages,
        "requests": m.requests,
        "retries": m.retries,
        "http_429": m.http_429,
        "records": m.records,
        "rows_written": rows_written,
        "rejected": rejected,
        "warnings": warnings,
        "drift_repages": m.drift_repages,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "outcome": outcome,
        "error": error,
    }


def append_run(data_dir: Where, row: dict[str, Any]) -> None:
    """Append ``row`` to the run ledger of ``data_dir`` (a data directory or its :class:`DataLayout`)."""
    path = DataLayout.of(data_dir).runs
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_runs(data_dir: Where, pending: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The ledger (plus ``pending`` rows not yet appended), one row per (run, endpoint, window):
    the last word on each wins. Times come back as naive UTC datetimes."""
    path = DataLayout.of(data_dir).runs
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    rows: dict[tuple, dict] = {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn last line after a crash
        rows[(row["run_id"], row["endpoint"], row["window_id"])] = row
    for row in pending:
        rows[(row["run_id"], row["endpoint"], row["window_id"])] = dict(row)
    for row in rows.values():
        for k in ("window_start", "window_end", "started_at", "finished_at"):
            if row.get(k):
                row[k] = datetime.fromisoformat(row[k]).astimezone(UTC).replace(tzinfo=None)
    return list(rows.values())
