"""Data checks catch planted violations; report views bucket months in the reporting time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tests.factories.warehouse import PLANTED, line, order, refund, valid_world
from xport_etl.load.checks import CheckFailedError, evaluate_checks, run_checks
from xport_etl.load.migrate import set_settings
from xport_etl.report.views import reports
from xport_etl.resources import sql_objects


def test_every_check_is_covered_by_a_planted_violation():
    assert {name for name, _ in sql_objects("checks")} == set(PLANTED)


def test_valid_data_passes_every_check(con):
    valid_world(con)
    run_checks(con)


# money reconciliations between amounts the source computes: recorded, never blocking
WARN = {"chk_fct_orders__amount_equals_lines", "chk_fct_refunds__amount_within_line"}


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_each_check_catches_its_planted_violation(con, check):
    valid_world(con)
    PLANTED[check](con)
    if check in WARN:
        results = {r.name: r for r in evaluate_checks(con)}
        assert results[check].outcome == "warn" and results[check].violations == 1
        assert {r.outcome for r in results.values() if r.name != check} == {"pass"}
        run_checks(con)  # a warn check does not block
        return
    with pytest.raises(CheckFailedError) as failure:
        run_checks(con)
    assert check in str(failure.value)


def test_refund_within_line_allows_returned_shipping(con):
    valid_world(con)
    refund(con, "r3", "1", "11", "12.00", datetime(2026, 1, 21))  # line 10.00 + shipping 2.00
    run_checks(con)


def spend(con):
    return con.execute(
        "select month, platform, orders, goods_amount, shipping_amount, refund_amount, net_spend from rpt_spend_monthly"
    ).fetchall()


def test_spend_months_are_cst_months_at_the_boundary(con):
    # 15:59:59 UTC on 31 Jan is 23:59:59 CST (January); 16:00:00 UTC is 00:00 on 1 Feb CST
    order(con, "a", datetime(2026, 1, 31, 15, 59, 59))
    order(con, "b", datetime(2026, 1, 31, 16, 0, 0))
    order(con, "c", datetime(2026, 1, 15), status="cancelled")  # excluded from spend
    refund(con, "r", "b", "x", "3.50", datetime(2026, 2, 28, 16, 0, 0))  # 1 March CST
    refund(con, "r-open", "b", "x", "1.00", datetime(2026, 2, 2), status="applied")  # not succeeded
    rows = spend(con)
    jan, feb, mar = (datetime(2026, m, 1).date() for m in (1, 2, 3))
    assert rows == [
        (jan, "taobao", 1, Decimal("10.00"), Decimal("2.00"), Decimal("0.00"), Decimal("12.00")),
        (feb, "taobao", 1, Decimal("10.00"), Decimal("2.00"), Decimal("0.00"), Decimal("12.00")),
        (mar, "taobao", 0, Decimal("0.00"), Decimal("0.00"), Decimal("3.50"), Decimal("-3.50")),
    ]


def test_reporting_time_zone_is_configurable(con):
    order(con, "a", datetime(2026, 1, 31, 15, 59, 59))
    order(con, "b", datetime(2026, 1, 31, 16, 0, 0))
    set_settings(con, {"report_tz": "UTC"})
    assert [(r[0].month, r[2]) for r in spend(con)] == [(1, 2)]


def test_fulfilment_and_after_sale_and_carrier_reports(con):
    valid_world(con)
    order(con, "2", datetime(2026, 1, 12), paid=datetime(2026, 1, 12, 2), status="shipped")
    line(con, "2", "21")
    con.execute("update fct_orders set paid_at = created_at + interval 1 hour where order_id = '1'")
    f = con.execute(
        "select orders, paid_orders, shipped_orders, delivered_orders, created_to_paid_p50_h, "
        "first_event_to_delivered_p50_h from rpt_fulfilment_monthly"
    ).fetchall()
    assert f == [(2, 2, 2, 1, 1.5, 48.0)]
    a = con.execute("select lines, refunded_lines, refund_rate, refund_amount from rpt_after_sale_monthly").fetchall()
    assert a == [(2, 1, 0.5, Decimal("5.00"))]
    c = con.execute("select carrier, parcels, delivered, transit_p50_h from rpt_carrier_performance").fetchall()
    assert c == [("中通快递", 1, 1, 48.0)]


def test_spend_by_sales_channel_sums_to_spend(con):
    """Issue 27.5: spend per order_source; refunds count under their order's channel, an order
    without one (every 1688 order) under '(none)'; summed over channels, rpt_spend_monthly."""
    order(con, "l1", datetime(2026, 1, 10), goods="100.00")
    order(con, "l2", datetime(2026, 1, 11), goods="50.00")
    order(con, "s1", datetime(2026, 1, 12), goods="70.00")
    order(con, "c1", datetime(2026, 1, 13), goods="999.00", status="cancelled")
    order(con, "a1", datetime(2026, 1, 14), goods="30.00", platform="1688")
    con.execute("update fct_orders set order_source = 'lazada' where order_id in ('l1', 'l2', 'c1')")
    con.execute("update fct_orders set order_source = 'shopee' where order_id = 's1'")
    refund(con, "r1", "l1", "x", "8.00", datetime(2026, 2, 3))
    refund(con, "r2", "c1", "x", "5.00", datetime(2026, 1, 20))  # a cancelled order's refund still counts
    refund(con, "r3", "gone", "x", "1.00", datetime(2026, 1, 21))  # an order not in the warehouse
    rows = con.execute(
        "select month, platform, order_source, orders, goods_amount, refund_amount, net_spend "
        "from rpt_spend_by_channel_monthly"
    ).fetchall()
    jan, feb = datetime(2026, 1, 1).date(), datetime(2026, 2, 1).date()
    money = Decimal
    assert rows == [
        (jan, "1688", "(none)", 1, money("30.00"), money("0.00"), money("32.00")),
        (jan, "taobao", "(none)", 0, money("0.00"), money("1.00"), money("-1.00")),
        (jan, "taobao", "lazada", 2, money("150.00"), money("5.00"), money("149.00")),
        (jan, "taobao", "shopee", 1, money("70.00"), money("0.00"), money("72.00")),
        (feb, "taobao", "lazada", 0, money("0.00"), money("8.00"), money("-8.00")),
    ]
    summed = con.execute(
        "select month, platform, currency, sum(orders)::bigint, sum(goods_amount), sum(shipping_amount), "
        "sum(refund_amount), sum(net_spend) from rpt_spend_by_channel_monthly group by all order by all"
    ).fetchall()
    assert summed == con.execute("select * from rpt_spend_monthly order by all").fetchall()
    assert [c[1] for c in con.execute("describe rpt_spend_monthly").fetchall()][3:] == ["BIGINT"] + [
        "DECIMAL(18,2)"
    ] * 4


# ---- issue 16: each monthly view is its table macro at the warehouse's zone


def test_monthly_views_are_table_macros_at_the_warehouse_zone(con):
    order(con, "a", datetime(2026, 1, 31, 15, 59, 59))  # 31 Jan 23:59:59 CST
    order(con, "b", datetime(2026, 1, 31, 16, 0, 0))  # 1 Feb 00:00 CST, still 31 Jan in UTC
    macros = dict(
        con.execute(
            "select function_name, parameters from duckdb_functions() "
            "where function_type = 'table_macro' and function_name like 'rpt_%'"
        ).fetchall()
    )
    assert macros == {
        f"{v}_at": ["tz"]
        for v in (
            "rpt_spend_monthly",
            "rpt_spend_by_channel_monthly",
            "rpt_fulfilment_monthly",
            "rpt_after_sale_monthly",
        )
    }
    for view, macro in ((r.name, r.macro) for r in reports() if r.macro):
        described = con.execute(f"describe {view}").fetchall()
        assert con.execute(f"describe select * from {macro}('UTC')").fetchall() == described
        assert (
            con.execute(f"select * from {macro}(?)", ["Asia/Shanghai"]).fetchall()
            == con.execute(f"select * from {view}").fetchall()
        )
    assert [(r[0].month, r[2]) for r in spend(con)] == [(1, 1), (2, 1)]
    utc = con.execute("select month, orders from rpt_spend_monthly_at(?)", ["UTC"]).fetchall()
    assert [(m.month, n) for m, n in utc] == [(1, 2)]
    set_settings(con, {"report_tz": "UTC"})  # the view follows etl_settings, the macro its argument
    assert [(r[0].month, r[2]) for r in spend(con)] == [(1, 2)]
    assert len(con.execute("select * from rpt_spend_monthly_at('Asia/Shanghai')").fetchall()) == 2


def test_a_report_macro_takes_the_zone_only(monkeypatch):
    from xport_etl.report import views as publish

    body = "-- a report\n\n-- macro: rpt_x_at(zone)\nselect zone"
    monkeypatch.setattr(publish, "sql_objects", lambda folder: [("rpt_x", body)])
    with pytest.raises(ValueError, match="takes one argument, tz"):
        publish.reports()
    monkeypatch.setattr(publish, "sql_objects", lambda folder: [("rpt_x", body.replace("(zone)", "(tz, zone)"))])
    with pytest.raises(ValueError, match="takes one argument, tz"):
        publish.reports()
    monkeypatch.setattr(publish, "sql_objects", lambda folder: [("rpt_x", body.replace("zone", "tz"))])
    (report,) = publish.reports()
    assert (report.macro, report.select) == ("rpt_x_at", f"select * from rpt_x_at({publish.WAREHOUSE_TZ_SQL})")


ZONES = (
    "Asia/Shanghai",
    "UTC",
    "America/Los_Angeles",  # DST
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # +10:30, DST of 30 minutes
    "Pacific/Chatham",  # +12:45 / +13:45
    "America/Santiago",  # DST ending at midnight
)


def test_fulfilment_months_are_each_orders_month_in_the_zone(con):
    """rpt_fulfilment_monthly buckets by the month of each distinct minute (a zone offset and its
    changes fall on whole minutes): the same month as converting each order, at every month start
    and DST change ± 1 s and ± 59 s, in zones with DST, 30/45-minute offsets and midnight changes."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    instants = set()
    for zone in ZONES:
        tz = ZoneInfo(zone)
        for year in (2025, 2026):
            for month in range(1, 13):
                start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
                instants |= {start + timedelta(seconds=d) for d in (-59, -1, 0, 1, 59)}
        probe = datetime(2025, 1, 1, tzinfo=UTC)  # every offset change in the two years, found hourly
        while probe.year < 2027:
            after = probe + timedelta(hours=1)
            if probe.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
                lo, hi = probe, after
                while hi - lo > timedelta(seconds=1):
                    mid = lo + (hi - lo) / 2
                    lo, hi = (
                        (mid, hi) if mid.astimezone(tz).utcoffset() == probe.astimezone(tz).utcoffset() else (lo, mid)
                    )
                instants |= {hi + timedelta(seconds=d) for d in (-59, -1, 0, 1, 59)}
            probe = after
    for i, instant in enumerate(sorted(instants)):
        order(con, f"o{i}", instant.replace(tzinfo=None).replace(microsecond=0))
    for zone in ZONES:
        expected: dict = {}
        for instant in instants:
            local = instant.replace(microsecond=0).astimezone(ZoneInfo(zone))
            month = datetime(local.year, local.month, 1).date()
            expected[month] = expected.get(month, 0) + 1
        got = dict(con.execute("select month, orders from rpt_fulfilment_monthly_at(?)", [zone]).fetchall())
        assert got == expected, zone
        spend = dict(con.execute("select month, orders from rpt_spend_monthly_at(?)", [zone]).fetchall())
        assert spend == got, zone  # the views agree on every order's month
