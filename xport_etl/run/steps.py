"""A run's id, and the steps it records in the run ledger for ``xport-etl status --run ID``.

A **run** is one CLI command that loads (``run``, ``backfill``, ``load``, ``callbacks consume``) or
one Airflow DAG run. It has one id, shared by every window it loads (``etl_runs``), every publish's
check results (``etl_check_results``), the rejects and warnings of its windows (``etl_rejects``) and
every fact row it writes (their lineage column ``run_id``):

- a CLI command makes one (:func:`xport_etl.run_ids.new_run_id`): its UTC start time and 8 random hex digits,
  ``20260714T101500Z-3f9a2c7d``, so ids sort by time and read as one;
- a DAG run's is Airflow's, prefixed with the DAG's id (:func:`xport_etl.run_ids.dag_run_id`):
  ``xport_ingest/scheduled__2026-07-14T00:00:00+00:00``; every task of the run passes it to the
  library (:mod:`xport_etl.run.tasks`), so its windows, however many processes load them, share it;
- a ``run``/``backfill`` that resumes after a crash is the same run finishing: it keeps the id of
  the command that started it (kept in the plan, :class:`~xport_etl.run.plan.RunPlan`).

Besides its windows' rows, a run appends a **step line** to the run ledger as each step ends
(:func:`step`): ``run`` (the command as a whole: outcome, error, whether it resumed), ``stage``
and ``merge`` (each merge of landed windows into the run's next state), ``fanout`` (one fan-out
stream's detail calls) and ``publish`` (its publish id, rows written, rejects, the checks' outcomes).
A step line has a ``step`` key, which a window row never has; each says when it started and
finished, how it ended, and what it did. They are what the trace shows (with the windows' own
extraction times); ``etl_runs`` mirrors only the window rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from xport_etl.layout import Where
from xport_etl.ledger import append_run

__all__ = ["STEPS", "step"]

STEPS = ("run", "stage", "merge", "fanout", "publish")


@contextlib.contextmanager
def step(where: Where, run_id: str, name: str, **detail: Any) -> Iterator[dict[str, Any]]:
    """Record step ``name`` of run ``run_id`` in the run ledger of ``where`` when the block ends.

    Yields a dict of the step's detail (``detail`` to start with) for the block to add to (a
    ``run_id`` set there replaces the one given: a resumed run learns its id from its plan). The
    line says when the step started and finished, its outcome (``success``, or ``failed`` with the
    error, which is raised on) and the detail. A process killed mid-step records nothing for it.
    """
    info: dict[str, Any] = dict(detail)
    started = datetime.now(UTC)
    try:
        yield info
    except BaseException as exc:
        _append(where, run_id, name, started, info, "failed", str(exc) or type(exc).__name__)
        raise
    _append(where, run_id, name, started, info, "success", None)


def _append(
    where: Where, run_id: str, name: str, started: datetime, info: dict, outcome: str, error: str | None
) -> None:
    finished = datetime.now(UTC)
    row = {
        "step": name,
        "run_id": info.pop("run_id", None) or run_id,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 3),
        "outcome": outcome,
        "error": error,
        **info,
    }
    append_run(where, row)
