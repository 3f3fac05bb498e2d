"""The Taobao order normaliser on the contract's awkward cases
(docs/api-contract.md#3-data-conventions, docs/warehouse.md)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from tests.factories.served import order, page, sub
from tests.helpers import NOW
from xport_etl.normalize.taobao_orders import normalize_taobao_order, normalize_taobao_pages
from xport_etl.normalize.values import RejectError


def test_cst_times_become_utc_across_the_date_line():
    rows = normalize_taobao_order(order())
    # 07:59:59 CST on 1 Feb is still 31 Jan in UTC
    assert rows.row["created_at"] == datetime(2026, 1, 31, 23, 59, 59)
    assert rows.row["updated_at"] == datetime(2026, 2, 1, 0, 0, 0)
    assert rows.row["paid_at"] is None


def test_ids_as_numbers_become_strings_without_rounding():
    rows = normalize_taobao_order(order(id=1031992847890383164, subOrderVOS=[sub(subOrderId=9007199254740993123)]))
    assert rows.row["order_id"] == "1031992847890383164"
    assert rows.children["order_lines"][0]["line_id"] == "9007199254740993123"


def test_money_as_strings_and_numbers_is_exact_decimal():
    rows = normalize_taobao_order(order(purchaseAmount="0.10", domesticPostFee=Decimal("0.2")))
    assert rows.row["goods_amount"] == Decimal("0.10")
    assert rows.row["total_amount"] == Decimal("0.30")  # never 0.30000000000000004
    assert rows.children["order_lines"][0]["amount"] == Decimal("12.50")


def test_status_mapping_and_platform_status_text():
    expected = {
        12: "created",
        0: "awaiting_payment",
        1: "awaiting_payment",
        3: "awaiting_payment",
        5: "awaiting_payment",
        2: "paid",
        10: "paid",
        11: "shipped",
        4: "cancelled",
        9: "other",
        77: "other",
    }
    for code, status in expected.items():
        o = normalize_taobao_order(order(status=code)).row
        assert (o["status"], o["platform_status"]) == (status, str(code))
    o = normalize_taobao_order(order(status="11")).row
    assert (o["status"], o["platform_status"]) == ("shipped", "11")


def test_refund_status_mapping():
    expected = {
        0: "none",
        10: "applied",
        20: "agreed",
        30: "waiting_return",
        100: "succeeded",
        -10: "refused",
        -20: "closed",
        None: "none",
    }
    for code, status in expected.items():
        line = normalize_taobao_order(order(subOrderVOS=[sub(refundStatus=code)])).children["order_lines"][0]
        assert line["refund_status"] == status


def test_nulls_are_allowed_almost_everywhere():
    rows = normalize_taobao_order(
        order(
            status=None,
            payTime=None,
            domesticPostFee=None,
            receiver=None,
            subOrderVOS=[sub(status=None, quantity="3", title=None)],
        )
    )
    assert rows.row["status"] is None and rows.row["total_amount"] is None
    assert rows.children["order_lines"][0]["quantity"] == 3 and rows.children["order_lines"][0]["line_status"] is None


def test_null_suborders_means_no_lines():
    rows = normalize_taobao_order(order(subOrderVOS=None))
    assert rows.row["line_count"] == 0 and rows.children["order_lines"] == []


@pytest.mark.parametrize(
    "over,reason",
    [
        ({"id": None}, "missing id"),
        ({"id": ""}, "missing id"),
        ({"id": Decimal("1.5e18")}, "not a string or integer id"),
        ({"createTime": "2026-02-30 10:00:00"}, "createTime"),
        ({"createTime": "yesterday"}, "createTime"),
        ({"subOrderVOS": {"subOrderId": "1"}}, "subOrderVOS is not a list"),
        ({"purchaseAmount": {"a": 1}}, "purchaseAmount is not an amount"),
        ({"orderSource": ["lazada"]}, "orderSource is not text"),
    ],
)
def test_corrupt_orders_are_rejected(over, reason):
    with pytest.raises(RejectError, match=reason):
        normalize_taobao_order(order(**over))


# ---- a record is dropped only when the warehouse cannot hold it: fields that no public column is
# defined from are warnings (the record loads, the non-public column is null)


@pytest.mark.parametrize(
    "receiver,reason",
    [
        ("{not json", "receiver is not valid JSON"),
        ("[1, 2]", "receiver JSON is not an object: list"),
        (5, "receiver is neither a JSON string nor an object: int"),
    ],
)
def test_an_unreadable_receiver_is_a_warning_and_the_order_loads_with_its_lines(receiver, reason):
    rows = normalize_taobao_pages(
        [(1, page([order(receiver=receiver)]), None)], endpoint="taobao_orders", window_id="w", rejected_at=NOW
    )
    assert [o["order_id"] for o in rows.tables["orders"]] == ["1031992847890383164"]
    assert [line["line_id"] for line in rows.tables["order_lines"]] == ["1031992847890383165"]
    (warning,) = rows.rejects
    assert warning["severity"] == "warning" and warning["field"] == "receiver"
    assert warning["record_id"] == "1031992847890383164" and warning["reason"].startswith(reason)
    assert json.loads(warning["raw_json"]) == receiver  # the field's raw value, as JSON
    assert (rows.rejected, rows.warned) == (0, 1)


def test_a_bad_non_public_line_field_keeps_the_line_with_a_null_column_and_a_warning():
    subs = [sub(), sub(subOrderId="2", logisticNumber={"no": "ZT1"}, logisticCompanyName=["中通"], status="shipped")]
    rows = normalize_taobao_pages(
        [(1, page([order(subOrderVOS=subs, closeReason={"why": 1})]), None)],
        endpoint="taobao_orders",
        window_id="w",
        rejected_at=NOW,
    )
    (o,) = rows.tables["orders"]
    assert o["line_count"] == 2 and o["close_reason"] is None
    line = rows.tables["order_lines"][1]
    assert (line["line_id"], line["tracking_number"], line["carrier"], line["line_status"]) == ("2", None, None, None)
    assert line["amount"] == Decimal("12.50")
    got = [(r["severity"], r["record_id"], r["field"], json.loads(r["raw_json"])) for r in rows.rejects]
    assert got == [
        ("warning", "1031992847890383164", "closeReason", {"why": 1}),
        ("warning", "1031992847890383164/2", "subOrderVOS[1].status", "shipped"),
        ("warning", "1031992847890383164/2", "subOrderVOS[1].logisticCompanyName", ["中通"]),
        ("warning", "1031992847890383164/2", "subOrderVOS[1].logisticNumber", {"no": "ZT1"}),
    ]
    assert all(r["reason"].startswith("sub-order: ") for r in rows.rejects[1:])
    assert (rows.rejected, rows.warned) == (0, 2)  # the order and one line


def test_a_bad_public_field_still_rejects_and_a_rejected_line_carries_no_warning():
    subs = [sub(quantity="two", logisticNumber={"no": 1}), sub(subOrderId="2")]
    rows = normalize_taobao_pages(
        [(1, page([order(subOrderVOS=subs)]), None)], endpoint="taobao_orders", window_id="w", rejected_at=NOW
    )
    assert [line["line_id"] for line in rows.tables["order_lines"]] == ["2"]
    (reject,) = rows.rejects
    assert reject["severity"] == "rejected" and reject["field"] is None and "quantity" in reject["reason"]


def test_a_future_update_time_rejects_the_order_whole_with_no_warning():
    # a corrupt future updateTime would win the latest-version merge forever
    rows = normalize_taobao_pages(
        [(1, page([order(updateTime="2027-01-01 00:00:00", receiver="{x")]), None)],
        endpoint="taobao_orders",
        window_id="w",
        rejected_at=NOW,
    )
    assert rows.tables.get("orders", []) == []
    assert [(r["severity"], "future" in r["reason"]) for r in rows.rejects] == [("rejected", True)]


def test_a_bad_line_is_rejected_alone_and_still_counted():
    rows = normalize_taobao_order(
        order(subOrderVOS=[sub(), sub(subOrderId=None), sub(subOrderId="2", purchaseAmount="x"), sub()])
    )
    assert rows.row["line_count"] == 4
    assert [line["line_index"] for line in rows.children["order_lines"]] == [0]
    reasons = [r.reason for r in rows.rejects]
    assert any("missing subOrderId" in r for r in reasons)
    assert any("purchaseAmount" in r for r in reasons)
    assert any("duplicate subOrderId" in r for r in reasons)


def test_window_dedupes_orders_latest_update_wins_and_rejects_land_with_raw_json():
    old = order(status=10, updateTime="2026-02-01 08:00:00")
    new = order(status=11, updateTime="2026-02-03 08:00:00")
    bad = order(id=None)
    rows = normalize_taobao_pages(
        [(1, page([new, bad]), None), (2, page([old]), None)], endpoint="taobao_orders", window_id="w", rejected_at=NOW
    )
    assert rows.records == 3
    assert [o["status"] for o in rows.tables["orders"]] == ["shipped"]
    assert len(rows.rejects) == 1
    reject = rows.rejects[0]
    assert reject["reason"] == "missing id" and reject["page"] == 1
    assert json.loads(reject["raw_json"])["purchaseAmount"] == "12.50"


def test_duplicate_id_within_a_page_is_rejected_keeping_the_later_version():
    a = order(status=10, updateTime="2026-02-01 08:00:00")
    b = order(status=11, updateTime="2026-02-02 08:00:00")
    rows = normalize_taobao_pages([(1, page([a, b]), None)], endpoint="taobao_orders", window_id="w", rejected_at=NOW)
    assert [o["status"] for o in rows.tables["orders"]] == ["shipped"]
    assert [r["reason"] for r in rows.rejects] == ["duplicate id within one page; kept the later version"]


def test_non_utf8_bytes_reject_only_the_record_that_has_them():
    body = page([order(id="1", sellerOrderNumber="MARK"), order(id="2")])
    body = body.replace(b"MARK", b"\xff\xfe")
    rows = normalize_taobao_pages([(1, body, None)], endpoint="taobao_orders", window_id="w", rejected_at=NOW)
    assert [o["order_id"] for o in rows.tables["orders"]] == ["2"]
    assert rows.rejects[0]["record_id"] == "1" and "UTF-8" in rows.rejects[0]["reason"]


def test_assumed_source_offset_is_configurable_through_settings(tmp_path):
    from xport_etl.settings import Settings

    path = tmp_path / "assumptions.json"
    path.write_text('{"source_utc_offset": "+09:00"}')
    settings = Settings.from_env({"XPORT_API_ASSUMPTIONS": str(path)})
    rows = normalize_taobao_order(order(), assumptions=settings.assumptions)
    assert rows.row["created_at"] == datetime(2026, 1, 31, 22, 59, 59)
