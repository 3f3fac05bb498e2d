"""Run ids: a new CLI run's, a DAG run's, a publish's, and the check that a given one is usable.

What a run is and what carries its id: :mod:`xport_etl.run.steps`. The ids live apart from the
steps because every step makes or checks one (a publish in ``load`` makes its own publish id).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

__all__ = ["MAX_LENGTH", "check_run_id", "dag_run_id", "new_publish_id", "new_run_id"]

MAX_LENGTH = 300  # an Airflow run id is at most 250 characters, and the DAG id comes before it
_BAD = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def new_run_id(now: datetime | None = None) -> str:
    """A new run's id: ``20260714T101500Z-3f9a2c7d`` (UTC start, 32 random bits)."""
    return f"{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def new_publish_id(now: datetime | None = None) -> str:
    """A new publish's id (``etl_check_results.publish_id``): ``publish-`` and a new id's form."""
    return f"publish-{new_run_id(now)}"


def dag_run_id(dag_id: str, run_id: str) -> str:
    """A DAG run's id: ``<dag_id>/<Airflow run_id>`` (two DAGs' runs may share an Airflow run id,
    ``scheduled__2026-07-14T00:00:00+00:00``; with the DAG's id they never do)."""
    return check_run_id(f"{dag_id}/{run_id}")


def check_run_id(value: object) -> str:
    """``value`` if it can be a run id: text of 1 to :data:`MAX_LENGTH` characters, without spaces
    or control characters (it is shown in tables and typed back as ``status --run ID``).

    Raises:
        ValueError: naming what is wrong.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_LENGTH:
        raise ValueError(f"a run id is text of 1 to {MAX_LENGTH} characters, not {str(value)[:60]!r}")
    if _BAD.search(value):
        raise ValueError(f"a run id has no spaces or control characters: {value[:60]!r}")
    return value
