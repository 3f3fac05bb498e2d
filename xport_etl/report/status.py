"""``xport-etl status``: the last runs from the run ledger (one row a run), how fresh each table is,
and the data checks that found violations in the last publish (from the check ledger); ``status
--run ID``: one run as a trace (:mod:`xport_etl.report.trace`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from xport_etl.cliutil import UsageError, int_arg, number_arg, pipeline_settings
from xport_etl.errors import XportError
from xport_etl.layout import Where
from xport_etl.ledger import read_runs
from xport_etl.load.checks import publish_of, read_check_results
from xport_etl.load.connect import connect_reader
from xport_etl.load.published import PublishedWarehouse
from xport_etl.report.trace import RUN_COLUMNS, TRACE_SECTIONS, recent_runs, run_trace
from xport_etl.schemas import FACTS, FCT_ORDERS, FCT_PARCELS
from xport_etl.streams.graph import feeds
from xport_etl.tables import FACT_TABLES

CHECK_COLUMNS = ("checked_at", "check_name", "severity", "threshold", "violations", "outcome", "sample_keys")


def last_checks(data_dir: Where) -> tuple[str | None, list[dict[str, Any]]]:
    """The last publish's id (blocked or not) and its checks with violations (warn or error
    outcomes, and passes within a threshold), errors first; ``(None, [])`` before any publish."""
    rows, _ = read_check_results(data_dir)
    if not rows:
        return None, []
    run_id = publish_of(rows[-1])
    last = {r["check_name"]: r for r in rows if publish_of(r) == run_id}  # a retried publish appends twice
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


# ---- the command

STATUS_SECTIONS = ("runs", "freshness", "checks")
TRACE_TITLES = {
    "steps": "steps",
    "windows": "windows (etl_runs)",
    "tables": "rows written per table",
    "rejects": "rejects and warnings still in the warehouse (etl_rejects)",
    "checks": "checks of its publishes (etl_check_results)",
}


def _print_sections(
    sections: Mapping[str, list[dict[str, Any]]],
    titles: Mapping[str, str],
    columns: Mapping[str, Sequence[str]],
    fmt: str,
    empty: Mapping[str, str] | None = None,
) -> None:
    """Each section as a table, CSV or JSON array (:func:`~xport_etl.report.reports.format_rows`);
    an empty one in a table is one line, ``empty[name]`` (default ``<title>: none``)."""
    from xport_etl.report.reports import format_rows, wrap_words

    for name, rows in sections.items():
        if not rows and fmt == "table":
            print(wrap_words((empty or {}).get(name) or f"{titles[name]}: none"))
            continue
        cols = list(columns[name])
        print(format_rows(titles[name], cols, [tuple(r.get(c) for c in cols) for r in rows], fmt))


def cmd_trace(args, s) -> int:
    """``status --run ID``: one run as a trace (:func:`~xport_etl.report.trace.run_trace`)."""
    from xport_etl.report.reports import plain

    if args.section is not None and args.section not in TRACE_SECTIONS:
        raise UsageError(f"--run shows the sections {', '.join(TRACE_SECTIONS)}, not {args.section}")
    trace = run_trace(s.layout, args.run)
    run = trace["run"][0]
    # CSV holds one table: one section per call (steps unless --section says otherwise)
    wanted = [args.section] if args.section else (["steps"] if args.format == "csv" else list(TRACE_SECTIONS))
    if args.format == "json":  # one document: the run, then a key per section
        doc: dict[str, Any] = {"data_dir": str(s.data_dir)}
        doc.update({name: run if name == "run" else trace[name] for name in wanted})
        print(json.dumps(doc, ensure_ascii=False, indent=2, default=plain))
        return 0
    titles = {"run": f"run {run['run_id']}", **TRACE_TITLES}
    _print_sections({name: trace[name] for name in wanted}, titles, TRACE_SECTIONS, args.format)
    return 0


def cmd_status(args) -> int:
    from xport_etl.report.reports import format_rows, plain

    s = pipeline_settings(args)
    if args.run is not None:
        if args.check_freshness is not None or args.warn_freshness is not None:
            raise UsageError("--run shows one run; --check-freshness is a command of its own")
        return cmd_trace(args, s)
    if args.section is not None and args.section not in STATUS_SECTIONS:
        raise UsageError(f"--section {args.section} goes with --run ID; status shows {', '.join(STATUS_SECTIONS)}")
    if args.warn_freshness is not None and args.check_freshness is None:
        raise UsageError("--warn-freshness goes with --check-freshness HOURS (the error level)")
    if args.check_freshness is not None:  # for cron / monitoring: exit 6 when stale, a warning when late
        warn = args.warn_freshness if args.warn_freshness is not None else s.freshness_warn_hours
        if warn is not None and warn > args.check_freshness:
            raise UsageError(
                f"the freshness warning level {warn:g} h (--warn-freshness or XPORT_FRESHNESS_WARN_HOURS) "
                f"is above the error level --check-freshness {args.check_freshness:g}"
            )
        rows = check_freshness(s.layout, args.check_freshness, warn_hours=warn)
        print(format_rows("freshness", list(rows[0]), [tuple(r.values()) for r in rows], args.format))
        warning = freshness_warning(rows)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    # CSV holds one table: one section per call (runs unless --section says otherwise)
    wanted = [args.section] if args.section else (["runs"] if args.format == "csv" else list(STATUS_SECTIONS))
    run_id, checks = last_checks(s.layout) if "checks" in wanted else (None, [])
    sections = {
        "runs": recent_runs(s.layout, args.limit) if "runs" in wanted else [],
        "freshness": freshness(s.layout) if "freshness" in wanted else [],
        "checks": checks,
    }
    if args.format == "json":  # one document, one key per section
        doc: dict = {"data_dir": str(s.data_dir)}
        for name in wanted:
            doc[name] = {"publish_id": run_id, "violations": sections[name]} if name == "checks" else sections[name]
        print(json.dumps(doc, ensure_ascii=False, indent=2, default=plain))
        return 0
    columns = {
        "runs": RUN_COLUMNS,
        "freshness": ("table", "rows", "last_extracted_at", "age_hours"),
        "checks": CHECK_COLUMNS,
    }
    titles = {
        "runs": "last runs",
        "freshness": "freshness",
        "checks": f"checks with violations in the last publish ({run_id})" if run_id else "checks",
    }
    empty = {
        "runs": f"last runs: none yet under {s.layout.storage_shown}",
        "freshness": f"freshness: none yet under {s.layout.storage_shown}",
        "checks": f"{titles['checks']}: none" if run_id else f"checks: no publish yet under {s.layout.storage_shown}",
    }
    _print_sections({name: sections[name] for name in wanted}, titles, columns, args.format, empty)
    return 0


def register(subparsers: argparse._SubParsersAction, parents: Sequence[argparse.ArgumentParser] = ()):
    """Add the ``status`` command to the ``xport-etl`` sub-parser set (``parents``: the pipeline
    commands' shared flags); it sets ``func``."""
    p = subparsers.add_parser(
        "status",
        parents=list(parents),
        help="the last runs and how fresh each table is; one run's trace",
        description="Show the last runs from the run ledger (one row a run, by run id), each fact table's "
        "freshness and the last publish's checks with violations; with --run ID, that run as a trace: its "
        "steps with timings, its windows, the rows it wrote per table, its rejects and warnings, its checks.\n"
        "example: xport-etl status --limit 5\n"
        "example: xport-etl status --run 20260714T101500Z-3f9a2c7d",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--limit", type=int_arg(1, 100_000), default=15, help="how many runs to show (default 15)")
    p.add_argument(
        "--run",
        metavar="ID",
        help="show this run as a trace: a run id from `xport-etl status`, `etl_runs.run_id` or a fact row's "
        "run_id, or the start of exactly one (e.g. 20260714T1015)",
    )
    p.add_argument(
        "--check-freshness",
        type=number_arg(0, 366 * 24, above=True),
        metavar="HOURS",
        help="exit 6 if a fact table's feeding endpoints have not succeeded within HOURS, e.g. 26",
    )
    p.add_argument(
        "--warn-freshness",
        type=number_arg(0, 366 * 24, above=True),
        metavar="HOURS",
        help="with --check-freshness: print a warning (exit 0) for a table older than HOURS but not the "
        "error level (default: XPORT_FRESHNESS_WARN_HOURS, else an hour less than --check-freshness), e.g. 25",
    )
    p.add_argument(
        "--format",
        default="table",
        choices=("table", "csv", "json"),
        help="output format (default table); json is one object with a key per section; csv is one "
        "section (--section, default runs; with --run, steps)",
    )
    p.add_argument(
        "--section",
        choices=tuple(dict.fromkeys([*STATUS_SECTIONS, *TRACE_SECTIONS])),
        help="show only this section (default: all; csv: runs): runs, freshness or checks; with --run: "
        f"{', '.join(TRACE_SECTIONS)} (csv: steps), e.g. --section freshness",
    )
    p.set_defaults(func=cmd_status)

    return p
