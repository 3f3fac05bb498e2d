"""The CLI: report output formats, documented exit codes, one-line errors with a hint, --help
with an example for every command, and the stale-data check."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories.landed import land
from tests.factories.served import order, page
from xport_etl.cli import build_parser, main
from xport_etl.ledger import append_run
from xport_etl.report.status import StaleDataError, check_freshness


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_as_table_csv_and_json(published, capsys):
    code, out, _ = run(capsys, "report", "spend", "--data-dir", str(published))
    assert code == 0 and "rpt_spend_monthly" in out and "net_spend" in out
    code, out, _ = run(capsys, "report", "spend", "--format", "csv", "--data-dir", str(published))
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [(r["month"], r["orders"], r["goods_amount"]) for r in rows] == [
        ("2026-02-01", "1", "12.50"),
        ("2026-03-01", "1", "12.50"),
    ]
    code, out, _ = run(capsys, "report", "rpt_spend_monthly", "--format", "json", "--data-dir", str(published))
    data = json.loads(out)
    assert code == 0 and data[0]["net_spend"] == "15.50" and data[0]["month"] == "2026-02-01"


@pytest.mark.parametrize(
    "argv,code,needle",
    [
        (["run", "--start", "not-a-date", "--end", "2026-02-01"], 2, "not a date"),
        (["report", "no_such_report"], 2, "unknown report"),
        (["report", "spend", "--data-dir", "/nonexistent/xport"], 2, "no warehouse"),
        (["run", "--start", "2026-01-01", "--end", "2026-01-02", "--base-url", "http://127.0.0.1:9"], 3, "error:"),
        (["status", "--check-freshness", "1"], 6, "never loaded"),
        (
            [
                "extract",
                "--endpoint",
                "taobao_refunds",
                "--mode",
                "update",
                "--start",
                "2026-01-01",
                "--end",
                "2026-01-02",
            ],
            2,
            "has no 'update' window",
        ),
        (["extract", "--endpoint", "taobao_orders", "--start", "2026-01-02", "--end", "2026-01-01"], 2, "is not after"),
    ],
)
def test_expected_failures_are_one_line_with_a_hint_and_an_exit_code(
    tmp_path, capsys, monkeypatch, no_sleep, argv, code, needle
):
    # (no_sleep: the unreachable API is retried without waiting between tries)
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XPORT_TIMEOUT", "2")
    got, _, err = run(capsys, *argv, "--quiet") if argv[0] == "run" else run(capsys, *argv)
    lines = err.strip().splitlines()
    assert got == code, err
    assert needle in err and lines[0].startswith("error: ") and lines[-1].startswith("hint: ")
    assert "Traceback" not in err


def test_a_failed_check_exits_4_and_publishes_nothing(tmp_path, capsys, monkeypatch):
    # the amount check warns by default; the operator makes it blocking
    monkeypatch.setenv("XPORT_CHECK_OVERRIDES", '{"chk_fct_orders__amount_equals_lines": {"severity": "error"}}')
    m = land(tmp_path, [page([order(id="1", purchaseAmount="99.00")])])  # lines sum to 12.50
    code, _, err = run(capsys, "load", "--manifest", str(m.directory / "manifest.json"), "--data-dir", str(tmp_path))
    assert code == 4 and "amount_equals_lines" in err
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["report"])
    assert exit_.value.code == 2


def test_every_command_has_help_with_an_example():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        text = sub.format_help()
        assert "example" in text.lower(), f"`xport-etl {name} --help` shows no example"
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"`{name} {action.option_strings[0]}` has no help text"


def test_freshness_check_uses_the_run_ledger(tmp_path):
    now = datetime(2026, 7, 2, tzinfo=UTC)
    for endpoint in ("taobao_orders", "alibaba_orders", "taobao_refunds"):
        append_run(
            tmp_path,
            {
                "run_id": endpoint,
                "endpoint": endpoint,
                "window_id": "w",
                "outcome": "success",
                "finished_at": (now - timedelta(hours=3)).isoformat(),
            },
        )
    rows = check_freshness(tmp_path, 26, now=now)
    assert {r["table"]: r["age_hours"] for r in rows}["fct_orders"] == 3.0
    with pytest.raises(StaleDataError, match=r"fct_orders \(3.0 h old"):
        check_freshness(tmp_path, 2, now=now)
    # a failed run does not make a table fresh
    append_run(
        tmp_path,
        {
            "run_id": "x",
            "endpoint": "taobao_orders",
            "window_id": "w",
            "outcome": "failed",
            "finished_at": now.isoformat(),
        },
    )
    with pytest.raises(StaleDataError):
        check_freshness(tmp_path, 2, now=now)


def _ledger_aged(data_dir, now, hours: float) -> None:
    """Every feeding endpoint's last success ``hours`` before ``now``."""
    for endpoint in ("taobao_orders", "alibaba_orders", "taobao_refunds"):
        append_run(
            data_dir,
            {
                "run_id": endpoint,
                "endpoint": endpoint,
                "window_id": "w",
                "outcome": "success",
                "finished_at": (now - timedelta(hours=hours)).isoformat(),
            },
        )


def test_freshness_has_a_warning_and_an_error_level(tmp_path):
    """Issue 27.6: ok up to the warning level, a warning past it, the error (StaleDataError) past
    the error level; the warning level defaults to an hour before the error level."""
    now = datetime(2026, 7, 2, tzinfo=UTC)
    _ledger_aged(tmp_path, now, 25.5)
    rows = check_freshness(tmp_path, 26, now=now)  # default warning level: 25 h
    assert {r["level"] for r in rows} == {"warn"} and {r["warn_hours"] for r in rows} == {25}
    assert all(r["fresh"] for r in rows)
    from xport_etl.report.status import freshness_warning, warn_level

    text = freshness_warning(rows)
    assert text.startswith("data getting stale, older than the warning level 25 h (the error level is 26 h)")
    assert "fct_orders (25.5 h old; endpoints taobao_orders, alibaba_orders)" in text
    assert {r["level"] for r in check_freshness(tmp_path, 26, warn_hours=25.6, now=now)} == {"ok"}
    assert freshness_warning(check_freshness(tmp_path, 30, now=now)) is None
    with pytest.raises(StaleDataError, match=r"fct_orders \(25.5 h old"):
        check_freshness(tmp_path, 25, warn_hours=20, now=now)
    assert (warn_level(26), warn_level(26, 12), warn_level(1), warn_level(0.5)) == (25, 12, None, None)
    with pytest.raises(ValueError, match="at most 26 h"):
        warn_level(26, 27)


def test_status_check_freshness_warns_and_exits_0_or_errs_and_exits_6(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XPORT_FRESHNESS_WARN_HOURS", raising=False)
    now = datetime.now(UTC)
    _ledger_aged(tmp_path, now, 5)
    data = ["--data-dir", str(tmp_path)]
    code, out, err = run(capsys, "status", "--check-freshness", "26", *data)
    assert code == 0 and err == "" and " ok " in out
    code, out, err = run(capsys, "status", "--check-freshness", "26", "--warn-freshness", "4", *data)
    assert code == 0 and err.startswith("warning: data getting stale, older than the warning level 4 h")
    assert " warn " in out
    monkeypatch.setenv("XPORT_FRESHNESS_WARN_HOURS", "3")  # the setting, when no option says otherwise
    code, _, err = run(capsys, "status", "--check-freshness", "26", *data)
    assert code == 0 and "older than the warning level 3 h" in err
    code, _, err = run(capsys, "status", "--check-freshness", "4", "--warn-freshness", "3", *data)
    assert code == 6 and "stale data, expected fresher than 4.0 h" in err
    code, _, err = run(capsys, "status", "--check-freshness", "4", "--warn-freshness", "5", *data)
    assert code == 2 and "above the error level" in err
    code, _, err = run(capsys, "status", "--warn-freshness", "5", *data)
    assert code == 2 and "goes with --check-freshness" in err


def test_status_shows_rejected_and_warnings_per_run(tmp_path, capsys):
    from tests.factories.served import sub

    records = [
        order(id="1", receiver="{not json"),
        order(id="2", subOrderVOS=[sub(logisticNumber={"no": 1})]),
        order(id=None),
    ]
    m = land(tmp_path, [page(records)])
    code, _, err = run(capsys, "load", "--manifest", str(m.directory / "manifest.json"), "--data-dir", str(tmp_path))
    assert code == 0, err
    code, out, _ = run(capsys, "status", "--format", "json", "--data-dir", str(tmp_path))
    assert code == 0
    runs = json.loads(out)["runs"]  # one document: runs, freshness, checks
    assert [(r["endpoints"], r["rejected"], r["warnings"]) for r in runs] == [("taobao_orders", 1, 2)]
    code, out, _ = run(capsys, "status", "--data-dir", str(tmp_path))
    header = next(line for line in out.splitlines() if "rejected" in line)
    assert "warnings" in header
