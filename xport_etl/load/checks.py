"""Data checks: what each ``sql/checks/*.sql`` declares, how its outcome is graded, and the ledger
of every publish's outcomes.

A check is a select that returns the rows that break a rule. Its header comment may declare:

- ``-- severity: error`` (the default) or ``-- severity: warn``. Above its threshold an error
  check blocks the publish; a warn check is recorded and the state is published anyway.
- ``-- threshold: N`` (default 0): the check fails only with more than N violations.
- ``-- scope: t1, t2``: where its violations can lie (see :func:`xport_etl.load.publish.run_checks`).

An operator changes a check's severity or threshold without editing SQL with
``Settings.check_overrides`` (``XPORT_CHECK_OVERRIDES``, JSON such as
``{"chk_fct_orders__amount_equals_lines": {"severity": "error", "threshold": 0}}``).

Every publish appends each check's outcome to ``state/check_results.jsonl`` under the data
directory (appended and fsynced, before a blocked publish raises), and each successful publish
mirrors the ledger into ``etl_check_results``: the outcomes of a blocked publish, which cannot be
in the warehouse it failed to build, appear there at the next successful one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from xport_etl.errors import ConfigError
from xport_etl.layout import DataLayout, Where
from xport_etl.resources import SQL_DIR

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

    def row(self, run_id: str) -> dict[str, Any]:
        """The ledger's row (and ``etl_check_results``'s)."""
        return {
            "run_id": run_id,
            "check_name": self.name,
            "severity": self.severity,
            "threshold": self.threshold,
            "violations": self.violations,
            "sample_keys": None if self.outcome == "skipped" else json.dumps(self.samples, ensure_ascii=False),
            "outcome": self.outcome,
            "checked_at": self.checked_at.isoformat(),
        }


def failure_message(results: Sequence[CheckResult]) -> str:
    """What :class:`~xport_etl.load.publish.CheckFailedError` says: each failing check, its count, samples."""
    parts = []
    for r in results:
        if r.outcome == "error":
            limit = f", threshold {r.threshold}" if r.threshold else ""
            samples = json.dumps(r.samples[:MESSAGE_SAMPLES], ensure_ascii=False)
            parts.append(f"{r.name}: {r.violations} violations{limit}, e.g. {samples}")
    return "data checks failed, warehouse not published: " + "; ".join(parts)


# ---- the ledger


def append_check_results(data_dir: Where, run_id: str, results: Sequence[CheckResult]) -> None:
    """Append one publish's outcomes to the ledger, fsynced (a blocked publish's included)."""
    path = DataLayout.of(data_dir).check_results
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r.row(run_id), ensure_ascii=False) + "\n" for r in results)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def read_check_results(data_dir: Where, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The ledger's rows from byte ``offset`` on, and the offset after the last whole line.

    An offset beyond the file (a ledger replaced by a shorter one) reads it from the start. Times
    come back as naive UTC datetimes; a torn line (a crash mid-append) is skipped."""
    path = DataLayout.of(data_dir).check_results
    if not path.exists():
        return [], 0
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if offset > f.tell():
            offset = 0
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    rows = []
    for line in data[:end].splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        row["checked_at"] = datetime.fromisoformat(row["checked_at"]).astimezone(UTC).replace(tzinfo=None)
        rows.append(row)
    return rows, offset + end
