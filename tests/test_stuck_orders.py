"""``rpt_stuck_orders`` (issue 27.4): what needs chasing, by stage, lead time, recency and priority.

Planted rows at each stage's lead time and at the recency window's edge, the amount at risk of an
order and of a parcel, the warehouse contract's definition (paid with no parcel event after 72 hours;
a parcel with no new event for 7 days and not delivered) for the kinds it names, and the whole list
on a sandbox world against an independent reading of its ground truth written here in Python.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from xport_etl.load.migrate import ensure_schema, set_settings
from xport_etl.report.views import refresh_views

AS_OF = datetime(2026, 6, 30, 12, 0, 0)
H = timedelta(hours=1)
D = timedelta(days=1)
LEAD_H = {"awaiting_payment": 48, "paid_no_parcel_event": 72, "parcel_no_progress": 168, "delivery_failed": 24}


@pytest.fixture
def con():
    c = duckdb.connect()
    c.execute("set TimeZone = 'UTC'")
    ensure_schema(c)
    set_settings(c, {"report_tz": "Asia/Shanghai"})
    refresh_views(c)
    order(c, "clock", AS_OF - 10 * D, status="completed", updated=AS_OF)  # as_of: the latest update
    yield c
    c.close()


def order(con, oid, created, *, status="paid", paid=None, total="100.00", platform="taobao", updated=None):
    con.execute(
        "insert into fct_orders (platform, order_id, status, currency, goods_amount, shipping_amount, total_amount, "
        "line_count, created_at, paid_at, updated_at) values (?, ?, ?, 'CNY', ?, 0, ?, 1, ?, ?, ?)",
        [platform, oid, status, Decimal(total), Decimal(total), created, paid, updated or created],
    )


def line(con, oid, lid, amount, purchase_line=None, shipping=None, platform="taobao"):
    con.execute(
        "insert into fct_order_lines (platform, order_id, line_id, line_index, amount, shipping_amount, currency, "
        "purchase_line_id) values (?, ?, ?, 0, ?, ?, 'CNY', ?)",
        [platform, oid, lid, Decimal(amount), None if shipping is None else Decimal(shipping), purchase_line],
    )


def parcel(con, tn, oid, last, *, status="TRANSPORT", delivered=None, purchase_line=None, platform="taobao"):
    con.execute(
        "insert into fct_parcels (platform, tracking_number, order_id, purchase_line_id, carrier, first_event_at, "
        "last_event_at, delivered_at, last_status, event_count) values (?, ?, ?, ?, '中通快递', ?, ?, ?, ?, 1)",
        [platform, tn, oid, purchase_line, last - H, last, delivered, status],
    )


def stuck(con) -> list[dict]:
    cur = con.execute("select * from rpt_stuck_orders")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def listed(con) -> dict[str, str]:
    """``order id or tracking number → kind`` of every listed row."""
    return {r["tracking_number"] or r["order_id"]: r["kind"] for r in stuck(con)}


def test_each_stage_is_stuck_past_its_lead_time_and_not_before(con):
    # waiting for payment: 48 hours from creation
    order(con, "unpaid-49h", AS_OF - 49 * H, status="awaiting_payment")
    order(con, "unpaid-47h", AS_OF - 47 * H, status="awaiting_payment")
    order(con, "created-50h", AS_OF - 50 * H, status="created")
    # paid, no parcel event: 72 hours from payment
    order(con, "paid-73h", AS_OF - 80 * H, paid=AS_OF - 73 * H)
    order(con, "paid-71h", AS_OF - 80 * H, paid=AS_OF - 71 * H)
    order(con, "shipped-no-parcel", AS_OF - 80 * H, paid=AS_OF - 75 * H, status="shipped")
    order(con, "paid-with-parcel", AS_OF - 100 * H, paid=AS_OF - 99 * H, status="shipped")
    parcel(con, "P-moving", "paid-with-parcel", AS_OF - 2 * H)
    # parcels: 7 days without an event, 24 hours after a failed attempt, a refusal at once
    order(con, "o-parcels", AS_OF - 20 * D, paid=AS_OF - 20 * D, status="shipped")
    parcel(con, "P-8d", "o-parcels", AS_OF - 8 * D)
    parcel(con, "P-6d", "o-parcels", AS_OF - 6 * D)
    parcel(con, "P-delivered", "o-parcels", AS_OF - 9 * D, status="SIGN", delivered=AS_OF - 9 * D)
    parcel(con, "P-failed-25h", "o-parcels", AS_OF - 25 * H, status="FAILED")
    parcel(con, "P-failed-23h", "o-parcels", AS_OF - 23 * H, status="FAILED")
    parcel(con, "P-refused-1h", "o-parcels", AS_OF - 1 * H, status="REJECT")
    parcel(con, "P-refused-8d", "o-parcels", AS_OF - 8 * D, status="REJECT")
    assert listed(con) == {
        "unpaid-49h": "awaiting_payment",
        "created-50h": "awaiting_payment",
        "paid-73h": "paid_no_parcel_event",
        "shipped-no-parcel": "paid_no_parcel_event",
        "P-8d": "parcel_no_progress",
        "P-failed-25h": "delivery_failed",
        "P-refused-1h": "refused",
        "P-refused-8d": "refused",  # a refusal is never "parcel stalled"
    }
    rows = {r["tracking_number"] or r["order_id"]: r for r in stuck(con)}
    assert rows["P-8d"]["hours_stuck"] == 192.0 and rows["P-8d"]["lead_time_h"] == 168
    assert rows["P-8d"]["overdue_h"] == 24.0 and rows["P-8d"]["stage_started_at"] == AS_OF - 8 * D
    assert rows["paid-73h"]["stage_started_at"] == AS_OF - 73 * H and rows["paid-73h"]["tracking_number"] is None
    assert rows["unpaid-49h"]["stage_started_at"] == AS_OF - 49 * H
    assert {r["as_of"] for r in rows.values()} == {AS_OF}


def test_the_recency_window_is_a_setting_and_cancelled_orders_are_never_listed(con):
    order(con, "paid-29d", AS_OF - 30 * D, paid=AS_OF - 29 * D)
    order(con, "paid-31d", AS_OF - 32 * D, paid=AS_OF - 31 * D)
    order(con, "cancelled", AS_OF - 5 * D, paid=AS_OF - 5 * D, status="cancelled")
    order(con, "o-old-parcel", AS_OF - 60 * D, paid=AS_OF - 60 * D, status="shipped")
    parcel(con, "P-40d", "o-old-parcel", AS_OF - 40 * D)
    order(con, "o-cancelled-parcel", AS_OF - 20 * D, paid=AS_OF - 20 * D, status="cancelled")
    parcel(con, "P-of-cancelled", "o-cancelled-parcel", AS_OF - 10 * D)
    assert set(listed(con)) == {"paid-29d"}  # the default window: 30 days
    set_settings(con, {"stuck_recent_days": "45"})
    assert set(listed(con)) == {"paid-29d", "paid-31d", "P-40d"}
    set_settings(con, {"stuck_recent_days": "7"})
    assert set(listed(con)) == set()


def test_priority_is_the_amount_at_risk_times_the_days_overdue(con):
    # an order: its total
    order(con, "big", AS_OF - 10 * D, paid=AS_OF - 4 * D, total="1000.00")  # 24 h overdue
    order(con, "small-old", AS_OF - 20 * D, paid=AS_OF - 13 * D, total="100.00")  # 10 days overdue
    # a Taobao parcel: the lines of its purchase line (amount + shipping)
    order(con, "tb", AS_OF - 20 * D, paid=AS_OF - 20 * D, status="shipped", total="500.00")
    line(con, "tb", "l1", "120.00", purchase_line="PL1", shipping="5.00")
    line(con, "tb", "l2", "375.00", purchase_line="PL2")
    parcel(con, "TB-1", "tb", AS_OF - 9 * D, purchase_line="PL1")  # 2 days overdue
    # a 1688 parcel: the order's total shared among its parcels
    order(con, "ali", AS_OF - 20 * D, paid=AS_OF - 20 * D, status="shipped", total="300.00", platform="1688")
    parcel(con, "A-1", "ali", AS_OF - 10 * D, platform="1688", status=None)  # 3 days overdue
    parcel(con, "A-2", "ali", AS_OF - 1 * D, platform="1688", status=None)  # moving
    rows = stuck(con)
    got = {r["tracking_number"] or r["order_id"]: (r["amount_at_risk"], r["overdue_h"], r["priority"]) for r in rows}
    assert got == {
        "big": (Decimal("1000.00"), 24.0, 1000.0),
        "small-old": (Decimal("100.00"), 240.0, 1000.0),
        "TB-1": (Decimal("125.00"), 48.0, 250.0),
        "A-1": (Decimal("150.00"), 72.0, 450.0),
    }
    assert [r["priority"] for r in rows] == sorted((r["priority"] for r in rows), reverse=True)
    assert [r["order_id"] for r in rows][:2] == ["big", "small-old"]  # a tie: by platform, then order
    assert {r["currency"] for r in rows} == {"CNY"}


def test_the_contracts_definition_holds_for_the_kinds_it_names(con):
    """docs/warehouse.md: orders paid but with no parcel event 72 hours after payment, and parcels
    with no new event for 7 days and not delivered, as of the last load (within the window)."""
    for hours in range(60, 90, 3):
        order(con, f"paid-{hours}", AS_OF - 100 * H, paid=AS_OF - hours * H)
    order(con, "o", AS_OF - 20 * D, paid=AS_OF - 20 * D, status="shipped")
    for hours in range(150, 190, 4):
        parcel(con, f"P-{hours}", "o", AS_OF - hours * H)
    rows = stuck(con)
    unshipped = {r["order_id"] for r in rows if r["kind"] == "paid_no_parcel_event"}
    stalled = {r["tracking_number"] for r in rows if r["kind"] == "parcel_no_progress"}
    assert unshipped == {f"paid-{h}" for h in range(60, 90, 3) if h > 72}
    assert stalled == {f"P-{h}" for h in range(150, 190, 4) if h > 7 * 24}


# ---- on a sandbox world, against its ground truth read here in Python


def expected_stuck(tables: dict, recent_days: int = 30) -> set[tuple]:
    """The rule of docs (sql/DATA_DICTIONARY.md, rpt_stuck_orders) applied to the truth tables,
    independently of the view's SQL: ``{(kind, platform, order_id, tracking_number, priority)}``."""
    orders = {(o["platform"], o["order_id"]): o for o in tables["fct_orders"].to_pylist()}
    parcels = tables["fct_parcels"].to_pylist()
    lines = tables["fct_order_lines"].to_pylist()
    events = tables["fct_parcel_events"].to_pylist()
    utc = [o["updated_at"] for o in orders.values()] + [e["event_at"] for e in events]
    as_of = max(t for t in utc if t is not None)
    since = as_of - timedelta(days=recent_days)
    with_event = {(p["platform"], p["order_id"]) for p in parcels if p["first_event_at"] is not None}
    per_order: dict[tuple, int] = {}
    for p in parcels:
        per_order[(p["platform"], p["order_id"])] = per_order.get((p["platform"], p["order_id"]), 0) + 1

    out = set()

    def add(kind, o, tn, started, amount):
        hours = (as_of - started).total_seconds() / 3600
        lead = {**LEAD_H, "refused": 0}[kind]
        if started < since or hours <= lead or (o is not None and o["status"] == "cancelled"):
            return
        priority = None if amount is None else round(float(amount) * (hours - lead) / 24, 1)
        out.add((kind, o["platform"] if o else None, o["order_id"] if o else None, tn, priority))

    for o in orders.values():
        if o["status"] in ("created", "awaiting_payment"):
            add("awaiting_payment", o, None, o["created_at"], o["total_amount"])
        if o["status"] in ("paid", "shipped") and o["paid_at"] and (o["platform"], o["order_id"]) not in with_event:
            add("paid_no_parcel_event", o, None, o["paid_at"], o["total_amount"])
    for p in parcels:
        if p["delivered_at"] is not None:
            continue
        kind = {"FAILED": "delivery_failed", "REJECT": "refused"}.get(p["last_status"], "parcel_no_progress")
        o = orders.get((p["platform"], p["order_id"]))
        own = [
            line["amount"] + (line["shipping_amount"] or 0)
            for line in lines
            if p["purchase_line_id"] is not None
            and (line["platform"], line["order_id"], line["purchase_line_id"])
            == (p["platform"], p["order_id"], p["purchase_line_id"])
        ]
        if own:
            amount = sum(own)
        elif o is not None and o["total_amount"] is not None:
            amount = (o["total_amount"] / per_order[(p["platform"], p["order_id"])]).quantize(Decimal("0.01"))
        else:
            amount = None
        add(kind, o, p["tracking_number"], p["last_event_at"], amount)
    return out


def test_the_list_on_a_sandbox_world_is_the_rule_applied_to_its_ground_truth():
    from xport_sandbox.truth import truth_tables
    from xport_sandbox.world import World, WorldConfig

    tables = truth_tables(World(WorldConfig(seed=5, orders=1500)))
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        ensure_schema(con)
        for name, table in tables.items():
            con.register("truth", table)
            con.execute(f"insert into {name} by name select * from truth")
            con.unregister("truth")
        refresh_views(con)
        for days in (30, 90):
            set_settings(con, {"stuck_recent_days": str(days)})
            rows = stuck(con)
            got = {(r["kind"], r["platform"], r["order_id"], r["tracking_number"], r["priority"]) for r in rows}
            assert got == expected_stuck(tables, days)
            assert len(got) == len(rows)
        kinds = {r["kind"] for r in rows}
        assert kinds == {"awaiting_payment", "paid_no_parcel_event", "parcel_no_progress", "delivery_failed", "refused"}
        non_cancelled = con.execute("select count(*) from fct_orders where status <> 'cancelled'").fetchone()[0]
        set_settings(con, {"stuck_recent_days": "30"})
        assert len(stuck(con)) < 0.05 * non_cancelled  # was ~14% before the rule (issue 27)
    finally:
        con.close()
