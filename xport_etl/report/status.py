"""``xport-etl status``: the last runs from the run ledger, how fresh each table is, and the data
checks that found violations in the last publish (from the check ledger)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from xport_etl.errors import XportError
from xport_etl.layout import Where
from xport_etl.ledger import read_runs
from xport_etl.load.checks import read_check_results
from xport_etl.load.connect import connect_reader
from xport_etl.load.published import PublishedWarehouse
from xport_etl.schemas import FACTS, FCT_ORDERS, FCT_PARCELS
from xport_etl.streams.graph import feeds
from xport_etl.tables import FACT_TABLES

RUN_COLUMNS = (
    "finished_at",
    "endpoint",
    "window_id",
    "outcome",
    "pages",
    "requests",
    "retries",
    "http_429",
    "records",
    "rejected",
    "warnings",
    "drift_repages",
    "duration_s",
    "error",
)


def last_runs(data_dir: Where, limit: int = 15) -> list[dict[str, Any]]:
    runs = sorted(read_runs(data_dir), key=lambda r: r.get("finished_at") or datetime.min, reverse=True)
    return [{c: r.get(c) for c in RUN_COLUMNS} for r in runs[:limit]]


CHECK_COLUMNS = ("checked_at", "check_name", "severity", "threshold", "violations", "outcome", "sample_keys")


def last_checks(data_dir: Where) -> tuple[str | None, list[dict[str, Any]]]:
    """The last publish's id (blocked or not) and its checks with violations (warn or error
    outcomes, and passes within a threshold), errors first; ``(None, [])`` before any publish."""
    rows, _ = read_check_results(data_dir)
    if not rows:
        return None, []
    run_id = rows[-1]["run_id"]
    last = {r["check_name"]: r for r in rows if r["run_id"] == run_id}  # a retried publish appends twice
    found = [r for r in last.values() if r.get("violations")]
    found.sort(key=lambda r: ({"error": 0, "warn": 1}.get(r["outcome"], 2), r["check_name"]))
    out = [{c: r.get(c) for c in CHECK_COLUMNS} for r in found]
    for r in out:  # a few samples fit a terminal; etl_check_results keeps them all
        r["sample_keys"] = json.dumps(json.loads(r["sample_keys"] or "[]")[:3], ensure_ascii=False)
    return run_id, out


def freshness(data_dir: Where) -> list[dict[str, Any]]:
    """Per fact table: rows, when its newest state was read from the API, and how long ago."""
    if not PublishedWarehouse(data_dir).exists():
        return []
    con = connect_reader(data_dir)
    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    try:
        for spec in FACTS:
            # child tables have no extraction time of their own: their parent's is theirs
            source = {"fct_order_lines": FCT_ORDERS.name, "fct_parcel_events": FCT_PARCELS.name}.get(
                spec.name, spec.name
            )
            rows = con.execute(f"select count(*) from {spec.name}").fetchall()[0][0]
            latest = con.execute(f"select max(extracted_at) from {source}").fetchall()[0][0]
            age_h = round((now - latest).total_seconds() / 3600, 2) if latest else None
            out.append({"table": spec.name, "rows": rows, "last_extracted_at": latest, "age_hours": age_h})
    finally:
        con.close()
    return out


class StaleDataError(XportError):
    """A fact table has not been refreshed within its expected freshness."""

    exit_code = 6
    hint = "see `xport-etl status` for the last runs and their errors"


def warn_level(max_age_hours: float, warn_hours: float | None = None) -> float | None:
    """The freshness warning level for an error level of ``max_age_hours``: ``warn_hours`` when
    given (at most the error level), else an hour before the error level (25 h for the default
    26: the daily load is an hour late), or None (no warning band) when the error level is an
    hour or less.

    Raises:
        ValueError: ``warn_hours`` is not in (0, max_age_hours].
    """
    if warn_hours is not None:
        if not 0 < warn_hours <= max_age_hours:
            raise ValueError(f"the warning level {warn_hours:g} h must be above 0 and at most {max_age_hours:g} h")
        return warn_hours
    return max_age_hours - 1 if max_age_hours > 1 else None


def check_freshness(
    data_dir: Where, max_age_hours: float, *, warn_hours: float | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Each fact table's age: the time since the oldest of its feeding endpoints last succeeded,
    and its level: ``ok``, ``warn`` (older than the warning level, :func:`warn_level`) or
    ``error`` (older than ``max_age_hours``, or never loaded).

    Raises:
        StaleDataError: a table is at the error level; the message names each such table, its age
            and the endpoints to look at.
    """
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    warn_at = warn_level(max_age_hours, warn_hours)
    last_ok: dict[str, datetime] = {}
    for run in read_runs(data_dir):
        if run.get("outcome") == "success" and run.get("finished_at"):
            last_ok[run["endpoint"]] = max(last_ok.get(run["endpoint"], datetime.min), run["finished_at"])
    rows, stale = [], []
    for table in FACT_TABLES:
        endpoints = feeds(table)  # the list streams whose windows keep it fresh
        times = [last_ok.get(e) for e in endpoints]
        oldest = None if any(t is None for t in times) else min(t for t in times if t is not None)
        age = None if oldest is None else round((now - oldest).total_seconds() / 3600, 2)
        if age is None or age > max_age_hours:
            level = "error"
        elif warn_at is not None and age > warn_at:
            level = "warn"
        else:
            level = "ok"
        row = {
            "table": table,
            "refreshed_at": oldest,
            "age_hours": age,
            "warn_hours": warn_at,
            "max_age_hours": max_age_hours,
            "level": level,
            "fresh": level != "error",
        }
        rows.append(row)
        if level == "error":
            stale.append(
                f"{table} ({'never loaded' if age is None else f'{age} h old'}; endpoints {', '.join(endpoints)})"
            )
    if stale:
        raise StaleDataError(f"stale data, expected fresher than {max_age_hours} h: " + "; ".join(stale))
    return rows


def freshness_warning(rows: list[dict[str, Any]]) -> str | None:
    """One line naming the tables at the warning level of :func:`check_freshness`'s rows, or None."""
    late = [r for r in rows if r["level"] == "warn"]
    if not late:
        return None
    return (
        f"data getting stale, older than the warning level {late[0]['warn_hours']:g} h "
        f"(the error level is {late[0]['max_age_hours']:g} h): "
        + "; ".join(f"{r['table']} ({r['age_hours']} h old; endpoints {', '.join(feeds(r['table']))})" for r in late)
    )
