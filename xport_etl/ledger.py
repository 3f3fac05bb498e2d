"""The ledgers: append-only records of JSON lines that outlive every warehouse state, and the
warehouse tables that mirror them.

:class:`JsonLines` is what a ledger is made of (each append fsynced; a reader skips a torn line, what
a crash mid-append leaves): a file of the data directory; under a storage URL the same API is
:class:`xport_etl.stored_lines.StoredLines` (one numbered object per append), and
:func:`ledger_of` is the one place that chooses. Two ledgers use it: the **run ledger**
here (one line per (run, endpoint, window) and outcome, the layout's ``runs``,
``state/runs.jsonl``; the last line for a key wins; ``etl_runs`` and ``xport-etl status`` are read
from it; and the runs' step lines, :mod:`xport_etl.run.steps`, which have a ``step`` key) and the
**check ledger** (:mod:`xport_etl.load.checks`, ``etl_check_results``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xport_etl.extract.landing import Manifest
from xport_etl.layout import DataLayout, Where

if TYPE_CHECKING:
    import duckdb

    from xport_etl.schemas import TableSpec
    from xport_etl.stored_lines import StoredLines

__all__ = [
    "JsonLines",
    "append_run",
    "append_runs",
    "insert_rows",
    "ledger_of",
    "naive_utc",
    "read_runs",
    "read_steps",
    "replace_runs",
]


class JsonLines:
    """An append-only ledger of JSON objects, one a line.

    Args:
        path: where its lines are kept (a kind of the :class:`~xport_etl.layout.DataLayout`).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append ``rows`` in one write, on disk when this returns."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def read(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The rows from byte ``offset`` on, and the offset after the last whole line.

        An offset beyond the end (a ledger replaced by a shorter one) reads from the start; a line
        that is not JSON (a crash mid-append) is skipped."""
        if not self.path.exists():
            return [], 0
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if offset > f.tell():
                offset = 0
            f.seek(offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        rows = []
        for line in data[:end].splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
        return rows, offset + end


def ledger_of(where: Where, kind: str) -> JsonLines | StoredLines:
    """The ledger ``kind`` (``"runs"``, ``"check_results"``) of a data directory: its file, or its
    objects under the storage URL (:class:`xport_etl.stored_lines.StoredLines`, the same API)."""
    layout = DataLayout.of(where)
    if layout.stored:
        from xport_etl.stored_lines import StoredLines

        return StoredLines(layout.store(kind), cache=layout.ledger_cache / f"{kind}.jsonl")
    return JsonLines(getattr(layout, kind))


def naive_utc(text: str) -> datetime:
    """An ISO time from a ledger line as the warehouse holds times: naive UTC."""
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def insert_rows(con: duckdb.DuckDBPyConnection, spec: TableSpec, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ledger rows into ``spec``'s table in one Arrow insert (``executemany`` pays a fixed
    cost per row, and a ledger grows with every run); a value Arrow will not cast is left to DuckDB."""
    import pyarrow as pa

    cols = spec.column_names
    try:
        table = spec.arrow_rows(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        con.executemany(
            f"insert into {spec.name} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
            [[r.get(c) for c in cols] for r in rows],
        )
        return
    con.register("_ledger", table)
    try:
        con.execute(f"insert into {spec.name} ({', '.join(cols)}) select {', '.join(cols)} from _ledger")
    finally:
        con.unregister("_ledger")


# ---- the run ledger


def _run_row(
    m: Manifest,
    *,
    run_id: str,
    outcome: str,
    error: str | None = None,
    rejected: int = 0,
    warnings: int = 0,
    rows_written: str | None = None,
) -> dict[str, Any]:
    """The run ledger's row for window ``m`` loaded (or not) by run ``run_id``: ``etl_runs``'s
    columns; ``publish_id`` is added when a publish carries it."""
    started = datetime.fromisoformat(m.extracted_at)
    finished = datetime.now(UTC)
    return {
        "run_id": run_id,
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
        "extraction_id": m.run_id,
        "landed_at": m.finished_at or None,
    }


def append_run(data_dir: Where, row: dict[str, Any]) -> None:
    """Append ``row`` to the run ledger of ``data_dir`` (a data directory or its :class:`DataLayout`)."""
    append_runs(data_dir, [row])


def append_runs(data_dir: Where, rows: Sequence[dict[str, Any]]) -> None:
    """Append ``rows`` to the run ledger in one write (one object under a storage URL)."""
    if rows:
        ledger_of(data_dir, "runs").append(rows)


_TIMES = ("window_start", "window_end", "started_at", "finished_at", "landed_at")


def _times(row: dict[str, Any]) -> dict[str, Any]:
    for k in _TIMES:
        if row.get(k):
            row[k] = naive_utc(row[k])
    return row


def read_runs(data_dir: Where, pending: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The ledger's window rows (plus ``pending`` rows not yet appended), one row per (run,
    endpoint, window): the last word on each wins; step lines are not among them
    (:func:`read_steps`). Times come back as naive UTC datetimes."""
    lines, _ = ledger_of(data_dir, "runs").read()
    rows: dict[tuple, dict] = {}
    for row in [*lines, *(dict(r) for r in pending)]:
        if "step" not in row:
            rows[(row["run_id"], row["endpoint"], row["window_id"])] = row
    return [_times(row) for row in rows.values()]


def read_steps(data_dir: Where) -> list[dict[str, Any]]:
    """The ledger's step lines (:mod:`xport_etl.run.steps`), in the order they were appended;
    times as naive UTC datetimes."""
    lines, _ = ledger_of(data_dir, "runs").read()
    return [_times(row) for row in lines if "step" in row]


def replace_runs(con: duckdb.DuckDBPyConnection, runs: Sequence[dict]) -> None:
    """``etl_runs`` mirrors the run ledger (which also keeps failed runs that published nothing)."""
    from xport_etl.schemas import ETL_RUNS

    con.execute("delete from etl_runs")
    if runs:
        insert_rows(con, ETL_RUNS, runs)
