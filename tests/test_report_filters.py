"""``xport-etl report NAME`` filters (issue 27.3): ``--platform``, ``--start``/``--end`` (months,
``[start, end)``), ``--currency``, ``--carrier``, ``--channel``, each on the reports that have its
column; every value a bound parameter; an option that does not apply is a usage error (exit 2)
naming those that do. Rows are compared with the view filtered by SQL written here."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date

import duckdb
import pytest

from tests.factories.warehouse import truth_warehouse
from xport_etl.cli import main
from xport_etl.layout import DataLayout
from xport_etl.report.reports import FILTER_COLUMNS, report_filters, report_views

APPLIES = {
    "rpt_after_sale_monthly": ["platform", "start", "end"],
    "rpt_carrier_performance": ["carrier"],
    "rpt_fulfilment_monthly": ["platform", "start", "end"],
    "rpt_spend_by_channel_monthly": ["platform", "start", "end", "currency", "channel"],
    "rpt_spend_monthly": ["platform", "start", "end", "currency"],
    "rpt_stuck_orders": ["platform", "currency", "carrier"],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("filters")
    truth_warehouse(directory, seed=9, orders=1200)
    return directory


def cli_rows(data_dir, capsys, *args) -> list[list[str]]:
    assert main(["report", *args, "--data-dir", str(data_dir), "--format", "csv", "-q"]) == 0
    return list(csv.reader(io.StringIO(capsys.readouterr().out)))[1:]


def sql_rows(data_dir, sql: str, params=()) -> list[list[str]]:
    """The rows as the CSV prints them (via the same text conversion), from plain SQL."""
    from xport_etl.report.reports import plain

    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        rows = con.execute(sql, list(params)).fetchall()
    finally:
        con.close()
    return [["" if v is None else str(plain(v)) for v in r] for r in rows]


def test_which_filters_apply_to_which_report():
    assert {v: report_filters(v) for v in sorted(set(report_views().values()))} == APPLIES


def test_platform_and_period_filter_the_monthly_reports(data_dir, capsys):
    for name, view in (("spend", "rpt_spend_monthly"), ("fulfilment", "rpt_fulfilment_monthly")):
        got = cli_rows(data_dir, capsys, name, "--platform", "1688", "--start", "2026-02", "--end", "2026-04")
        want = sql_rows(
            data_dir,
            f"select * from {view} where platform = ? and month >= ? and month < ?",
            ["1688", date(2026, 2, 1), date(2026, 4, 1)],
        )
        assert got == want and len(want) == 2, name  # two months of one platform
        assert {r[0] for r in got} == {"2026-02-01", "2026-03-01"}
    everything = cli_rows(data_dir, capsys, "after_sale")
    assert len(cli_rows(data_dir, capsys, "after_sale", "--start", "2026-03")) < len(everything)
    assert cli_rows(data_dir, capsys, "after_sale", "--end", "2026-01") == []


def test_currency_carrier_and_channel_filters(data_dir, capsys):
    got = cli_rows(data_dir, capsys, "spend_by_channel", "--channel", "lazada", "--currency", "CNY")
    assert got == sql_rows(
        data_dir,
        "select * from rpt_spend_by_channel_monthly where order_source = ? and currency = ?",
        ["lazada", "CNY"],
    )
    assert got and {r[2] for r in got} == {"lazada"}
    carrier = sql_rows(data_dir, "select carrier from rpt_carrier_performance limit 1")[0][0]
    assert cli_rows(data_dir, capsys, "carrier_performance", "--carrier", carrier) == sql_rows(
        data_dir, "select * from rpt_carrier_performance where carrier = ?", [carrier]
    )
    stuck = cli_rows(data_dir, capsys, "stuck_orders", "--platform", "taobao", "--carrier", carrier)
    assert stuck and stuck == sql_rows(
        data_dir, "select * from rpt_stuck_orders where platform = ? and carrier = ?", ["taobao", carrier]
    )
    assert cli_rows(data_dir, capsys, "spend", "--currency", "USD") == []


@pytest.mark.parametrize(
    ("report", "option", "value"),
    [
        ("spend", "--carrier", "中通快递"),
        ("carrier_performance", "--platform", "taobao"),
        ("stuck_orders", "--start", "2026-01"),
        ("fulfilment", "--currency", "CNY"),
        ("spend", "--channel", "lazada"),
    ],
)
def test_an_option_that_does_not_apply_is_a_usage_error_naming_those_that_do(data_dir, capsys, report, option, value):
    assert main(["report", report, option, value, "--data-dir", str(data_dir), "-q"]) == 2
    err = capsys.readouterr().err
    view = report_views()[report]
    assert f"{option} does not apply" in err
    assert "takes " + ", ".join(f"--{o}" for o in APPLIES[view]) in err


def test_values_are_parameters_never_sql_text(data_dir, capsys):
    before = hashlib.sha256(DataLayout.of(data_dir).warehouse.read_bytes()).hexdigest()
    for hostile in ("x' or '1'='1", "CNY'; drop table fct_orders; --", "中通快递\n; delete from fct_parcels"):
        assert cli_rows(data_dir, capsys, "spend", "--currency", hostile) == []
        assert cli_rows(data_dir, capsys, "stuck_orders", "--carrier", hostile) == []
    assert hashlib.sha256(DataLayout.of(data_dir).warehouse.read_bytes()).hexdigest() == before


def test_an_empty_or_reversed_period_and_a_bad_month_are_usage_errors(data_dir, capsys):
    assert main(["report", "spend", "--start", "2026-03", "--end", "2026-03", "--data-dir", str(data_dir)]) == 2
    assert "must be before --end" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["report", "spend", "--start", "March", "--data-dir", str(data_dir)])
    assert exit_.value.code == 2
    assert "not a month or date" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["report", "spend", "--platform", "amazon", "--data-dir", str(data_dir)])
    assert exit_.value.code == 2


def test_every_filter_option_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert all(f"--{option}" in text for option in FILTER_COLUMNS)
