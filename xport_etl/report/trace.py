"""Runs as ``xport-etl status`` shows them: the recent runs, one row each (:func:`recent_runs`), and
one run as a trace (:func:`run_trace`, ``status --run ID``), after dlt's ``pipeline trace``.

Read from the run ledger (a run's window rows and step lines, :mod:`xport_etl.run.steps`), the
check ledger (its publishes' check results) and the published warehouse (its rejects and warnings
that are still there: a later run that loads the same window again replaces them). A run from
before runs had ids is each of its windows alone, under the window's extraction id, and has no
steps but its windows.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from xport_etl.errors import NotFoundError
from xport_etl.layout import Where
from xport_etl.ledger import read_runs, read_steps
from xport_etl.load.checks import publish_of, read_check_results

RUN_COLUMNS = (
    "run_id",
    "command",
    "started_at",
    "finished_at",
    "duration_s",
    "outcome",
    "endpoints",
    "windows",
    "pages",
    "requests",
    "records",
    "rows_written",
    "rejected",
    "warnings",
    "publishes",
    "resumed",
    "error",
)
STEP_COLUMNS = ("offset_s", "step", "seconds", "outcome", "what", "error")
WINDOW_COLUMNS = (
    "endpoint",
    "window_id",
    "started_at",
    "seconds",
    "pages",
    "requests",
    "retries",
    "http_429",
    "records",
    "rejected",
    "warnings",
    "outcome",
    "error",
)
TABLE_COLUMNS = ("table", "rows_written")
REJECT_COLUMNS = ("endpoint", "severity", "field", "reason", "rows")
CHECK_COLUMNS = ("check_name", "severity", "outcome", "publishes", "violations", "sample_keys")
TRACE_SECTIONS: dict[str, tuple[str, ...]] = {
    "run": RUN_COLUMNS,
    "steps": STEP_COLUMNS,
    "windows": WINDOW_COLUMNS,
    "tables": TABLE_COLUMNS,
    "rejects": REJECT_COLUMNS,
    "checks": CHECK_COLUMNS,
}
MAX_REJECT_GROUPS = 50  # (endpoint, severity, field, reason) groups shown, the commonest first
_WORST = {"error": 0, "failed": 0, "warn": 1, "pass": 2, "success": 2, "skipped": 3}


# ---- the runs


def _by_run(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row["run_id"]].append(row)
    return out


def _total(rows: Iterable[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key) or 0) for r in rows)


def _rows_written(publishes: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Rows written per table by the run's successful publishes."""
    out: Counter[str] = Counter()
    for p in publishes:
        if p.get("outcome") == "success":
            out.update(p.get("rows_written") or {})
    return dict(sorted(out.items()))


def _summary(run_id: str, windows: list[dict[str, Any]], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's row: when (its command's start, else its first window's extraction or step, to
    its last record), what, how it ended, what it did.

    Its outcome and error are its own ``run`` step's (the last one: a resumed run has one per
    command that worked on it) when it has one (a CLI command, a callbacks consume), else its last
    publish's (a DAG run), else ``failed`` if a window failed (nothing published), else
    ``unfinished`` (a run still going, or killed before it recorded an end)."""
    runs = [s for s in steps if s["step"] == "run"]
    publishes = [s for s in steps if s["step"] == "publish"]
    times = [t for r in [*windows, *steps] for t in (r.get("started_at"), r.get("finished_at")) if t]
    started, finished = (min(times), max(times)) if times else (None, None)
    if runs:  # the command's own start (a `load` loads windows landed before it)
        started = min(r["started_at"] for r in runs)
    last = runs[-1] if runs else publishes[-1] if publishes else None
    failed = [w for w in windows if w.get("outcome") == "failed"]
    if last is not None:
        outcome, error = last.get("outcome"), last.get("error")
    elif failed:
        outcome, error = "failed", failed[-1].get("error")
    else:
        outcome, error = ("success" if windows and not steps else "unfinished"), None
    if runs:
        command = runs[-1].get("command")
    elif "/" in run_id:  # a DAG run: <dag_id>/<Airflow run id>
        command = f"dag {run_id.split('/', 1)[0]}"
    else:
        command = None
    return {
        "run_id": run_id,
        "command": command,
        "started_at": started,
        "finished_at": finished,
        "duration_s": round((finished - started).total_seconds(), 3) if started and finished else None,
        "outcome": outcome,
        "endpoints": ", ".join(sorted({w["endpoint"] for w in windows})),
        "windows": len(windows),
        "pages": _total(windows, "pages"),
        "requests": _total(windows, "requests"),
        "records": _total(windows, "records"),
        "rows_written": sum(_rows_written(publishes).values()),
        "rejected": _total(windows, "rejected"),
        "warnings": _total(windows, "warnings"),
        "publishes": sum(p.get("outcome") == "success" for p in publishes),
        "resumed": any(r.get("resumed") for r in runs),
        "error": error,
    }


def all_runs(data_dir: Where) -> list[dict[str, Any]]:
    """Every run in the run ledger, one row each (:data:`RUN_COLUMNS`), the latest finished first."""
    windows, steps = _by_run(read_runs(data_dir)), _by_run(read_steps(data_dir))
    rows = [_summary(r, windows.get(r, []), steps.get(r, [])) for r in {*windows, *steps}]
    return sorted(rows, key=lambda r: (r["finished_at"] or datetime.min, r["run_id"]), reverse=True)


def recent_runs(data_dir: Where, limit: int = 15) -> list[dict[str, Any]]:
    """The ``limit`` runs that finished last (``xport-etl status``'s runs)."""
    return all_runs(data_dir)[:limit]


def find_run(data_dir: Where, text: str) -> str:
    """The run id ``text`` names: a run id, or the start of exactly one (``20260714T1015``).

    Raises:
        NotFoundError: no run, or several, start so (naming a few).
    """
    ids = {r["run_id"] for r in read_runs(data_dir)} | {s["run_id"] for s in read_steps(data_dir)}
    if text in ids:
        return text
    found = sorted(i for i in ids if i.startswith(text))
    if len(found) == 1:
        return found[0]
    if found:
        raise NotFoundError(
            f"{len(found)} runs start with {text!r}: {', '.join(found[:5])}{', …' if len(found) > 5 else ''}",
            hint="give more of the id",
        )
    raise NotFoundError(
        f"no run {text!r} in the run ledger", hint="`xport-etl status` lists the recent runs; check --data-dir"
    )


# ---- one run


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _checks_text(checks: dict[str, int] | None) -> str:
    return ", ".join(f"{n} {o}" for o, n in (checks or {}).items())


def _what(s: dict[str, Any]) -> str:
    """A step line's detail in a few words."""
    name = s["step"]
    if name == "stage":
        early = s.get("staged_while_landing") or 0
        return _count(s.get("windows") or 0, "window") + (f" ({early:,} staged while landing)" if early else "")
    if name == "merge":
        rows = sum((s.get("rows_written") or {}).values())
        return f"{_count(s.get('windows') or 0, 'window')}, {_count(rows, 'row')}"
    if name == "fanout":
        parts = [_count(s.get(k) or 0, k.rstrip("s")) for k in ("keys", "windows", "requests", "records")]
        missing = s.get("not_found") or 0
        return f"{s.get('endpoint')}: {', '.join(parts)}" + (f", {missing:,} not found" if missing else "")
    if name == "publish":
        rows = sum((s.get("rows_written") or {}).values())
        text = _count(s.get("batches") or 0, "window")
        if s.get("outcome") == "success":
            text += f", {_count(rows, 'row')}, {_count(s.get('rejects') or 0, 'reject')}"
        checks = _checks_text(s.get("checks"))
        return text + (f", checks {checks}" if checks else "") + f"; {s.get('publish_id')}"
    return ""


def _extract_steps(windows: list[dict[str, Any]], fanouts: set[str]) -> list[dict[str, Any]]:
    """The run's windows as ``extract`` steps, one per publish that carried them (and one for the
    windows whose extraction failed): from the first extraction's start to the last landing. The
    windows of a fan-out the run called (``fanouts``) are its ``fanout`` steps instead. A window
    an earlier command landed (``load`` loads what ``extract`` or a run landed) starts before
    the run does."""
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for w in windows:
        if w.get("mode") != "keys" or w["endpoint"] not in fanouts:
            groups[w.get("publish_id")].append(w)
    out = []
    for rows in groups.values():
        start = min((w["started_at"] for w in rows if w.get("started_at")), default=None)
        end = max((w.get("landed_at") or w["finished_at"] for w in rows if w.get("finished_at")), default=None)
        failed = [w for w in rows if w.get("outcome") == "failed" and not w.get("landed_at")]
        totals = [_count(len(rows), "window")] + [
            _count(_total(rows, k), k.rstrip("s")) for k in ("pages", "requests", "records")
        ]
        out.append(
            {
                "started_at": start,
                "step": "extract",
                "seconds": _seconds(start, end),
                "outcome": "failed" if failed else "success",
                "what": ", ".join(totals),
                "error": failed[-1].get("error") if failed else None,
            }
        )
    return out


def _window_rows(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for w in sorted(windows, key=lambda w: (w.get("started_at") or datetime.min, w["endpoint"], w["window_id"])):
        row = {c: w.get(c) for c in WINDOW_COLUMNS}
        row["seconds"] = _seconds(w.get("started_at"), w.get("landed_at"))
        rows.append(row)
    return rows


def _check_rows(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per check over the run's publishes: its worst outcome, the most violations, and the
    worst result's first samples (``etl_check_results`` keeps every result)."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in checks:
        by_name[r["check_name"]].append(r)
    rows = []
    for name, results in by_name.items():
        worst = min(results, key=lambda r: (_WORST.get(r["outcome"], 9), -(r.get("violations") or 0)))
        samples = json.loads(worst.get("sample_keys") or "[]")[:3]
        rows.append(
            {
                "check_name": name,
                "severity": worst.get("severity"),
                "outcome": worst["outcome"],
                "publishes": len({publish_of(r) for r in results}),
                "violations": max((r.get("violations") or 0 for r in results), default=0),
                "sample_keys": json.dumps(samples, ensure_ascii=False) if samples else None,
            }
        )
    return sorted(rows, key=lambda r: (_WORST.get(r["outcome"], 9), r["check_name"]))


def _reject_rows(data_dir: Where, run_id: str) -> list[dict[str, Any]]:
    """The run's rejects and warnings still in the published warehouse, grouped and counted."""
    from xport_etl.load.connect import connect_reader
    from xport_etl.load.published import PublishedWarehouse

    if not PublishedWarehouse(data_dir).exists():
        return []
    con = connect_reader(data_dir)
    try:
        has = con.execute(
            "select count(*) from duckdb_columns() where table_name = 'etl_rejects' and column_name = 'run_id'"
        ).fetchall()[0][0]
        if not has:  # published before runs had ids
            return []
        found = con.execute(
            "select endpoint, severity, field, reason, count(*) as rows from etl_rejects where run_id = ? "
            "group by all order by rows desc, endpoint, severity, field, reason limit ?",
            [run_id, MAX_REJECT_GROUPS],
        ).fetchall()
    finally:
        con.close()
    return [dict(zip(REJECT_COLUMNS, r, strict=True)) for r in found]


def run_trace(data_dir: Where, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Run ``run_id`` (an id or the unique start of one, :func:`find_run`) as a trace: its row
    (``run``), its ``steps`` in the order they started (the list windows' extraction per publish,
    staging, merges, fan-outs, publishes), its ``windows`` (``etl_runs``), the rows it wrote per
    table (``tables``), its ``rejects`` and warnings still in the warehouse, and its ``checks``
    (one row per check over its publishes).

    Raises:
        NotFoundError: no such run (:func:`find_run`).
    """
    run_id = find_run(data_dir, run_id)
    windows = [w for w in read_runs(data_dir) if w["run_id"] == run_id]
    steps = [s for s in read_steps(data_dir) if s["run_id"] == run_id]
    summary = _summary(run_id, windows, steps)
    lines: list[dict[str, Any]] = [
        {
            "started_at": s.get("started_at"),
            "step": s["step"],
            "seconds": s.get("duration_s"),
            "outcome": s.get("outcome"),
            "what": _what(s),
            "error": s.get("error"),
        }
        for s in steps
        if s["step"] != "run"
    ]
    fanouts = {str(s.get("endpoint")) for s in steps if s["step"] == "fanout"}
    lines = sorted([*_extract_steps(windows, fanouts), *lines], key=lambda s: s["started_at"] or datetime.min)
    for line in lines:  # seconds after the run started: the run's row says when that was
        line["offset_s"] = _seconds(summary["started_at"], line.pop("started_at"))
    publishes = [s for s in steps if s["step"] == "publish"]
    checks, _ = read_check_results(data_dir)
    return {
        "run": [summary],
        "steps": lines,
        "windows": _window_rows(windows),
        "tables": [{"table": t, "rows_written": n} for t, n in _rows_written(publishes).items()],
        "rejects": _reject_rows(data_dir, run_id),
        "checks": _check_rows([r for r in checks if r["run_id"] == run_id]),
    }
