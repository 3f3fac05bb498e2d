"""Data checks, in one place: what each ``sql/checks/*.sql`` declares, how a publish runs and
grades it, and the ledger of every publish's outcomes.

A check is a select that returns the rows that break a rule. Its header comment may declare:

- ``-- severity: error`` (the default) or ``-- severity: warn``. Above its threshold an error
  check blocks the publish (:class:`CheckFailedError`); a warn check is recorded and the state is
  published anyway.
- ``-- threshold: N`` (default 0): the check fails only with more than N violations.
- ``-- scope: t1, t2``: where its violations can lie (see :func:`evaluate_checks`).

An operator changes a check's severity or threshold without editing SQL with
``Settings.check_overrides`` (``XPORT_CHECK_OVERRIDES``, JSON such as
``{"chk_fct_orders__amount_equals_lines": {"severity": "error", "threshold": 0}}``).

A publish (:mod:`xport_etl.load.publish`) runs :func:`evaluate_checks` on its next state. It runs
an error check with no threshold only where the run changed a table the check reads: the rest of
the state passed it, which ``etl_settings`` records per check text (:func:`record_checks`; a new
or edited check runs on the next publish). Warn and thresholded checks always run in full (their
count is the whole state's), and a publish without batches (the reports DAG's refresh) or a
rebuild runs every check.

Every publish appends each check's outcome to the check ledger (the layout's ``check_results``,
``state/check_results.jsonl``; appended and fsynced before a blocked publish raises), and each
successful publish mirrors the ledger into ``etl_check_results`` (:func:`mirror_check_results`):
the outcomes of a blocked publish, which cannot be in the warehouse it failed to build, appear
there at the next successful one.

Nothing here imports DuckDB or Arrow at import time: the settings read :func:`parse_overrides`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xport_etl.errors import ConfigError, XportError
from xport_etl.layout import Where
from xport_etl.ledger import insert_rows, ledger_of, naive_utc
from xport_etl.resources import SQL_DIR, sql_objects

if TYPE_CHECKING:
    import duckdb

CHECKS_DIR = SQL_DIR / "checks"
SEVERITIES = ("error", "warn")
OUTCOMES = ("pass", "warn", "error", "skipped")
SAMPLE_ROWS = 20  # violating rows kept per check and publish
MESSAGE_SAMPLES = 3  # of which an error message shows this many

_SEVERITY = re.compile(r"^--\s*severity:\s*(\S+)\s*$", re.M)
_THRESHOLD = re.compile(r"^--\s*threshold:\s*(\S+)\s*$", re.M)


@dataclass(frozen=True)
class CheckSpec:
    """A check: its select and how its violations are graded."""

    name: str
    body: str
    severity: str = "error"
    threshold: int = 0

    @property
    def must_pass(self) -> bool:
        """An error check with no allowance: it holds on every published state, which is what
        lets a publish skip it over unchanged tables or scope it to the merged keys."""
        return self.severity == "error" and self.threshold == 0


def parse_check(name: str, body: str) -> CheckSpec:
    """The check declared by a SQL file's text (``-- severity:``, ``-- threshold:``)."""
    severity = m[1].lower() if (m := _SEVERITY.search(body)) else "error"
    if severity not in SEVERITIES:
        raise ValueError(f"{name}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    threshold = _threshold(m[1], name) if (m := _THRESHOLD.search(body)) else 0
    return CheckSpec(name, body, severity, threshold)


def _threshold(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: threshold must be a whole number >= 0, got {value!r}")
    return value


def check_names(folder: Path = CHECKS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.sql"))


def parse_overrides(
    value: str | Mapping[str, Any] | None, known: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Validated operator overrides: ``{check: {"severity"?: "error"|"warn", "threshold"?: n}}``.

    Args:
        value: a mapping, or its JSON text (as ``XPORT_CHECK_OVERRIDES`` holds it); None or "" = none.
        known: the check names (default: the files in ``sql/checks/``).

    Raises:
        ConfigError: text that is not a JSON object, an unknown check, an unknown key, a severity
            other than error/warn, a threshold that is not a whole number >= 0.
    """
    where = "XPORT_CHECK_OVERRIDES"
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{where} must be a JSON object ({exc}), got {value!r}") from None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f'{where} must be a JSON object of check name -> {{"severity": ..., "threshold": ...}}, got {value!r}'
        )
    names = set(check_names() if known is None else known)
    unknown = sorted(set(value) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown check(s) {', '.join(map(repr, unknown))}; the checks are {', '.join(sorted(names))}"
        )
    out: dict[str, dict[str, Any]] = {}
    for name, rule in value.items():
        if not isinstance(rule, Mapping):
            raise ConfigError(f'{where}: {name} must map to {{"severity": ..., "threshold": ...}}, got {rule!r}')
        extra = sorted(set(rule) - {"severity", "threshold"})
        if extra:
            raise ConfigError(
                f"{where}: {name}: unknown key(s) {', '.join(map(repr, extra))} (only severity and threshold)"
            )
        one: dict[str, Any] = {}
        if "severity" in rule:
            if rule["severity"] not in SEVERITIES:
                raise ConfigError(
                    f"{where}: {name}: severity must be one of {', '.join(SEVERITIES)}, got {rule['severity']!r}"
                )
            one["severity"] = rule["severity"]
        if "threshold" in rule:
            try:
                one["threshold"] = _threshold(rule["threshold"], f"{where}: {name}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        out[name] = one
    return out


def apply_overrides(specs: Sequence[CheckSpec], overrides: Mapping[str, Any] | None) -> list[CheckSpec]:
    """The checks with the operator's severities and thresholds (validated against ``specs``)."""
    rules = parse_overrides(overrides or {}, known=[s.name for s in specs])
    return [replace(s, **rules[s.name]) if s.name in rules else s for s in specs]


def grade(violations: int, severity: str, threshold: int) -> str:
    """``pass`` up to the threshold, the check's severity above it."""
    return "pass" if violations <= threshold else severity


def jsonable(value: Any) -> Any:
    """A sample value as JSON: money and times as text, exactly as DuckDB returned them."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal | date | datetime):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome in one publish.

    ``violations`` is the full count (None when the check was skipped: the state's earlier full
    result stands); ``samples`` up to :data:`SAMPLE_ROWS` violating rows, columns in the check's
    order (its key columns first); ``how``: ``ran``, ``ran on the merged keys`` or ``skipped``.
    """

    name: str
    severity: str
    threshold: int
    violations: int | None
    samples: list[list[Any]]
    outcome: str
    how: str
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self, run_id: str, publish_id: str | None = None) -> dict[str, Any]:
        """The ledger's row (and ``etl_check_results``'s): run ``run_id``'s publish ``publish_id``."""
        return {
            "run_id": run_id,
            "publish_id": publish_id,
            "check_name": self.name,
            "severity": self.severity,
            "threshold": self.threshold,
            "violations": self.violations,
            "sample_keys": None if self.outcome == "skipped" else json.dumps(self.samples, ensure_ascii=False),
            "outcome": self.outcome,
            "checked_at": self.checked_at.isoformat(),
        }


def count_outcomes(results: Sequence[CheckResult] | None) -> dict[str, int]:
    """How many checks had each outcome: ``{"pass": 14, "warn": 1}`` (a publish step's ``checks``)."""
    outcomes = [r.outcome for r in results or ()]
    return {o: outcomes.count(o) for o in sorted(set(outcomes))}


def failure_message(results: Sequence[CheckResult]) -> str:
    """What :class:`CheckFailedError` says: each failing check, its count, samples."""
    parts = []
    for r in results:
        if r.outcome == "error":
            limit = f", threshold {r.threshold}" if r.threshold else ""
            samples = json.dumps(r.samples[:MESSAGE_SAMPLES], ensure_ascii=False)
            parts.append(f"{r.name}: {r.violations} violations{limit}, e.g. {samples}")
    return "data checks failed, warehouse not published: " + "; ".join(parts)


class CheckFailedError(XportError):
    """An error check found more violations than its threshold: the load is not published.

    ``results`` holds every check's outcome of the attempt. Not permanent: the next try checks
    again, after a callbacks refresh may have published what the check missed, or an operator
    set ``XPORT_CHECK_OVERRIDES``."""

    exit_code = 4
    hint = (
        "the published warehouse is unchanged; see sql/checks/ for what each check means "
        "and docs/data-checks.md for XPORT_CHECK_OVERRIDES"
    )

    def __init__(self, message: str, results: Sequence[CheckResult] = ()):
        super().__init__(message)
        self.results = list(results)


# ---- running the checks on a state


_CHECK_PASSED = "check_passed:"  # etl_settings key prefix: the digest of a check's SQL this state passed
_TABLE_NAME = re.compile(r"\b((?:fct|etl|rpt)_[a-z0-9_]+)\b")
_SCOPE = re.compile(r"^--\s*scope:\s*([a-z0-9_, ]+)$", re.M)


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _scoped(con: duckdb.DuckDBPyConnection, body: str) -> str | None:
    """The check restricted to the keys this publish merged, if it declares ``-- scope: t1, t2``.

    The declaration says: every violation of the check lies within one key of the listed tables'
    merge parent (a parent's own key; a child's ``parent_key``), so on a state that passed it,
    only rows of the keys a merge replaced can make a new one (a merge deletes and re-inserts the
    winning keys and their children, and deletes nothing else). Each listed table is shadowed by a
    CTE of its rows of those keys; the other tables are read whole."""
    match = _SCOPE.search(body)
    if not match:
        return None
    from xport_etl.schemas import STAGED_TABLES

    by_spec = {t.spec.name: t for t in STAGED_TABLES.values()}
    merged_tables = {
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where starts_with(table_name, '_merged_')"
        ).fetchall()
    }
    ctes = []
    for table in (t.strip() for t in match.group(1).split(",")):
        staged = by_spec.get(table)
        if staged is None:
            return None
        parent = STAGED_TABLES[staged.parent].spec if staged.parent else staged.spec
        merged = f"_merged_{parent.name}"
        if merged not in merged_tables:
            ctes.append(f"{table} as (select * from main.{table} where false)")
            continue
        on = " and ".join(f"t.{k} = m.{k}" for k in parent.key)
        ctes.append(f"{table} as (select t.* from main.{table} as t semi join {merged} as m on {on})")
    return f"with {', '.join(ctes)}\nselect * from (\n{body}\n)"


def evaluate_checks(
    con: duckdb.DuckDBPyConnection, changed: set[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> list[CheckResult]:
    """Run every ``sql/checks/*.sql`` and grade it (severity, threshold: see the module's docstring).

    Args:
        changed: the tables this load wrote. Given, an error check with no threshold that this
            warehouse state already passed with the same text (recorded in ``etl_settings`` by
            :func:`record_checks`) is skipped when it reads none of them (the rows it reads are
            the rows it passed), and runs on the keys this publish merged only when it declares
            ``-- scope:`` (see :func:`_scoped`): on a state with no violation, every new one lies
            there, so that count is the full count. A check that reads a view or names no table,
            a warn check and a thresholded check run in full (their count is the whole state's).
            None: run every check in full.
        overrides: the operator's ``{check: {"severity": ..., "threshold": ...}}``.

    Raises:
        ConfigError: an override names an unknown check or holds a bad value.
    """
    passed = {}
    if changed is not None:
        passed = dict(
            con.execute("select key, value from etl_settings where starts_with(key, ?)", [_CHECK_PASSED]).fetchall()
        )
    specs = apply_overrides([parse_check(name, body) for name, body in sql_objects("checks")], overrides)
    results = []
    for spec in specs:
        tables = set(_TABLE_NAME.findall(spec.body))
        incremental = (
            spec.must_pass
            and changed is not None
            and tables
            and not any(t.startswith("rpt_") for t in tables)
            and passed.get(_CHECK_PASSED + spec.name) == _digest(spec.body)
        )
        if incremental and changed is not None and not tables & changed:
            results.append(CheckResult(spec.name, spec.severity, spec.threshold, None, [], "skipped", "skipped"))
            continue
        query = _scoped(con, spec.body) if incremental else None
        how = "ran" if query is None else "ran on the merged keys"
        query = query or spec.body
        violations = con.execute(f"select count(*) from (\n{query}\n)").fetchall()[0][0]
        samples = []
        if violations:  # the common case, none, reads the check once
            samples = [
                jsonable(list(r)) for r in con.execute(f"select * from (\n{query}\n) limit {SAMPLE_ROWS}").fetchall()
            ]
        results.append(
            CheckResult(
                spec.name,
                spec.severity,
                spec.threshold,
                violations,
                samples,
                grade(violations, spec.severity, spec.threshold),
                how,
            )
        )
    return results


def run_checks(
    con: duckdb.DuckDBPyConnection, changed: set[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """:func:`evaluate_checks`, raising if an error check failed.

    Returns:
        ``{check name: "ran" | "ran on the merged keys" | "skipped"}``.

    Raises:
        CheckFailedError: an error check has more violations than its threshold; the message names
            each, its count and a few sample rows.
    """
    results = evaluate_checks(con, changed, overrides)
    if any(r.outcome == "error" for r in results):
        raise CheckFailedError(failure_message(results), results)
    return {r.name: r.how for r in results}


def record_checks(con: duckdb.DuckDBPyConnection, results: Sequence[CheckResult] | None = None) -> None:
    """Record the checks this state passes with no violation at all (with ``results``: those that
    found none, or were skipped as passed before; without: every current check, as after a
    :func:`run_checks` that found nothing). A warn check with violations is not recorded: made
    an error check later, it runs in full."""
    clean = None if results is None else {r.name for r in results if r.violations == 0 or r.how == "skipped"}
    con.execute("delete from etl_settings where starts_with(key, ?)", [_CHECK_PASSED])
    rows = [
        (_CHECK_PASSED + name, _digest(body)) for name, body in sql_objects("checks") if clean is None or name in clean
    ]
    if rows:
        con.executemany("insert into etl_settings values (?, ?)", rows)


# ---- the ledger


def append_check_results(
    data_dir: Where, run_id: str, results: Sequence[CheckResult], *, publish_id: str | None = None
) -> None:
    """Append the outcomes of run ``run_id``'s publish ``publish_id`` to the ledger, fsynced (a
    blocked publish's included)."""
    ledger_of(data_dir, "check_results").append([r.row(run_id, publish_id) for r in results])


def publish_of(row: dict[str, Any]) -> str:
    """The publish a check ledger row belongs to: its ``publish_id``, or for a row from before
    runs had ids (whose ``run_id`` named the publish), its ``run_id``."""
    return row.get("publish_id") or row["run_id"]


def read_check_results(data_dir: Where, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The ledger's rows from byte ``offset`` on, and the offset after the last whole line.

    An offset beyond the file (a ledger replaced by a shorter one) reads it from the start. Times
    come back as naive UTC datetimes; a torn line (a crash mid-append) is skipped."""
    rows, end = ledger_of(data_dir, "check_results").read(offset)
    for row in rows:
        row["checked_at"] = naive_utc(row["checked_at"])
    return rows, end


_MIRRORED = "check_results_offset"  # etl_settings: how far into the check ledger etl_check_results holds


def mirror_check_results(con: duckdb.DuckDBPyConnection, data_dir: Where) -> int:
    """Add the check ledger's rows this warehouse does not hold yet to ``etl_check_results``.

    The ledger only grows, so the rows past the offset recorded at the last publish are the new
    ones (a blocked publish's among them); a row already there (same publish and check) is replaced.
    Returns the rows added."""
    from xport_etl.schemas import ETL_CHECK_RESULTS

    got = con.execute("select value from etl_settings where key = ?", [_MIRRORED]).fetchall()
    offset = int(got[0][0]) if got and got[0][0] and got[0][0].isdigit() else 0
    rows, end = read_check_results(data_dir, offset)
    # one row per publish and check (a publish retried without the memory limit appended twice)
    rows = list({(publish_of(r), r["check_name"]): r for r in rows}.values())
    if rows:
        con.executemany(
            "delete from etl_check_results where coalesce(publish_id, run_id) = ? and check_name = ?",
            [[publish_of(r), r["check_name"]] for r in rows],
        )
        insert_rows(con, ETL_CHECK_RESULTS, rows)
    con.execute("delete from etl_settings where key = ?", [_MIRRORED])
    con.execute("insert into etl_settings values (?, ?)", [_MIRRORED, str(end)])
    return len(rows)
