"""The refund normalisers on the contract's awkward cases: Taobao's refund list and refund detail,
1688's refunds, and both platforms' refund statuses (docs/api-contract.md §3, §5.4, §5.5, §5.8;
docs/warehouse.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from tests.factories.served import (
    alibaba_order,
    alibaba_refund,
    envelope,
    item,
    page,
    taobao_refund,
    taobao_refund_detail,
)
from tests.helpers import assert_fits_schemas, run_normalizer
from xport_etl.normalize.alibaba_orders import normalize_alibaba_order
from xport_etl.normalize.refunds import (
    ALIBABA_REFUND_STATUS,
    normalize_alibaba_refund,
    normalize_taobao_refund,
    normalize_taobao_refund_detail,
)
from xport_etl.normalize.values import TAOBAO_REFUND_STATUS

# ---- status mappings


@pytest.mark.parametrize(
    ("code", "unified"),
    [
        (0, "none"),
        (10, "applied"),
        (20, "agreed"),
        (30, "waiting_return"),
        (100, "succeeded"),
        (-10, "refused"),
        (-20, "closed"),
        ("100", "succeeded"),
        (40, None),
        (-30, None),
        (None, None),
    ],
)
def test_taobao_refund_status(code, unified):
    row = normalize_taobao_refund(taobao_refund(refundStatus=code)).row
    assert row["status"] == unified
    assert row["platform_status"] == (None if code is None else str(code))
    assert TAOBAO_REFUND_STATUS.get(None if code is None else int(code)) == unified


@pytest.mark.parametrize(
    ("raw", "unified"),
    [
        (None, "none"),
        ("waitselleragree", "applied"),
        ("waitbuyermodify", "refused"),
        ("waitbuyersend", "agreed"),
        ("waitsellerreceive", "waiting_return"),
        ("refundsuccess", "succeeded"),
        ("refundclose", "closed"),
        ("refundpending", None),
    ],
)
def test_alibaba_refund_status_on_items_and_refunds(raw, unified):
    assert ALIBABA_REFUND_STATUS.get(raw) == unified
    line = normalize_alibaba_order(alibaba_order(productItems=[item(refundStatus=raw)])).children["order_lines"][0]
    assert (line["refund_status"], line["platform_refund_status"]) == (unified, raw)
    refund = normalize_alibaba_refund(alibaba_refund(status=raw)).row
    assert (refund["status"], refund["platform_status"]) == (unified, raw)


# ---- Taobao refunds


def test_taobao_refund_list_row():
    out = run_normalizer("taobao_refunds", [(page([taobao_refund()]), None)])
    assert_fits_schemas(out)
    assert out.tables["refunds"] == [
        {
            "platform": "taobao",
            "refund_id": "300000000001",
            "order_id": "1031992847890383164",
            "line_id": "1031992847890383165",
            "status": "succeeded",
            "platform_status": "100",
            "refund_amount": Decimal("12.50"),
            "currency": "CNY",
            "reason": "七天无理由",
            "created_at": datetime(2026, 1, 1),
            "updated_at": datetime(2026, 1, 1, 1),
        }
    ]
    assert out.records == 1 and out.rejects == []


def test_taobao_refund_ids_as_numbers_money_as_strings_and_nulls():
    row = normalize_taobao_refund(
        taobao_refund(
            refundId=300000000001,
            orderId=1031992847890383164,
            subOrderId=None,
            refundFee="0.10",
            currency=None,
            reasonDesc=None,
            modifiedTime=None,
        )
    ).row
    assert row["refund_id"] == "300000000001" and row["order_id"] == "1031992847890383164"
    assert row["line_id"] is None and row["refund_amount"] == Decimal("0.10")
    assert row["currency"] is None and row["reason"] is None and row["updated_at"] is None


def test_taobao_refunds_rejects_and_dedupe():
    older = taobao_refund(refundStatus=10, modifiedTime=1767225600000)
    newer = taobao_refund(refundStatus=100, modifiedTime=1767229200000)
    bad_fee = taobao_refund(refundId="300000000002", refundFee="1.234")
    no_id = taobao_refund(refundId=None)
    out = run_normalizer("taobao_refunds", [(page([older, bad_fee]), None), (page([newer, no_id]), None)])
    assert [r["status"] for r in out.tables["refunds"]] == ["succeeded"]
    assert out.records == 4
    reasons = {r["record_id"]: r["reason"] for r in out.rejects}
    assert reasons["300000000002"] == "refundFee has more than two decimals: '1.234'"
    assert reasons[None] == "missing refundId"


def test_taobao_refund_detail_row_takes_ids_from_context():
    ctx = {"refund_id": "300000000009", "order_id": "1031992847890383164", "line_id": "1031992847890383165"}
    out = run_normalizer("taobao_refund_detail", [(envelope(taobao_refund_detail()), ctx)])
    assert_fits_schemas(out)
    (row,) = out.tables["refunds"]
    assert row == {
        "platform": "taobao",
        "refund_id": "300000000009",
        "order_id": "1031992847890383164",
        "line_id": "1031992847890383165",
        "status": "agreed",
        "platform_status": "20",
        "refund_amount": Decimal("19.90"),
        "currency": "CNY",
        "reason": "尺码不合适",
        # no refund times in the documented detail: the purchase line's createTime is not used
        "created_at": None,
        "updated_at": None,
    }


def test_taobao_refund_detail_prefers_served_ids_and_times():
    data = taobao_refund_detail(
        orderId=1031992847890383170,
        subOrderId="1031992847890383171",
        createTime=1767225600000,
        modifiedTime=1767229200000,
    )
    row = normalize_taobao_refund_detail(data, {"order_id": "x", "line_id": "y"}).row
    assert (row["order_id"], row["line_id"]) == ("1031992847890383170", "1031992847890383171")
    assert (row["created_at"], row["updated_at"]) == (datetime(2026, 1, 1), datetime(2026, 1, 1, 1))
    # no context at all: ids unknown, never the Taobao purchase-line id
    row = normalize_taobao_refund_detail(taobao_refund_detail(), None).row
    assert row["order_id"] is None and row["line_id"] is None


def test_taobao_refund_detail_rejects():
    no_id = taobao_refund_detail(refundId="")
    no_order = {"currency": "CNY", "refundOrderAggregate": {"refundOrder": None}}
    out = run_normalizer(
        "taobao_refund_detail",
        [
            (envelope(no_id), None),
            (envelope(no_order), {"refund_id": "3"}),
            (envelope({"refundOrderAggregate": []}), None),
        ],
    )
    assert "refunds" not in out.tables and out.records == 3
    assert [(r["record_id"], r["reason"], r["page"]) for r in out.rejects] == [
        (None, "missing refundOrder.refundId", 1),
        ("3", "missing refundOrderAggregate.refundOrder", 2),
        (None, "refundOrderAggregate is not an object: list", 3),
    ]


# ---- 1688 refunds


def test_alibaba_refund_row():
    out = run_normalizer("alibaba_refunds", [(envelope(alibaba_refund()), {"refund_id": "TQ25987654321"})])
    assert_fits_schemas(out)
    assert out.tables["refunds"] == [
        {
            "platform": "1688",
            "refund_id": "TQ25987654321",
            "order_id": "3012345678901234567",
            "line_id": "3012345678901234568",
            "status": "succeeded",
            "platform_status": "refundsuccess",
            "refund_amount": Decimal("19.99"),
            "currency": "CNY",
            "reason": "商品质量问题",
            "created_at": datetime(2026, 2, 28, 23, 30),
            "updated_at": datetime(2026, 3, 2, 1, 0),
        }
    ]


def test_alibaba_refund_fallbacks_and_nulls():
    ctx = {"refund_id": "TQ1", "order_id": "301", "line_id": 302}
    row = normalize_alibaba_refund(alibaba_refund(refundId=None, orderId=None, subItemId=None), ctx).row
    assert (row["refund_id"], row["order_id"], row["line_id"]) == ("99001", "301", "302")
    row = normalize_alibaba_refund(alibaba_refund(refundId=None, id=None), ctx).row
    assert row["refund_id"] == "TQ1"
    row = normalize_alibaba_refund(alibaba_refund(refundPayment="5", currency="USD", updateTime=None)).row
    assert (row["refund_amount"], row["currency"], row["updated_at"]) == (Decimal("0.05"), "USD", None)
    row = normalize_alibaba_refund(alibaba_refund(refundPayment=None, status=None)).row
    assert (row["refund_amount"], row["status"], row["platform_status"]) == (None, "none", None)


def test_alibaba_refund_takes_its_orders_currency_from_the_context():
    """refund/info has no currency: the order's, passed in the request context, else CNY."""
    no_currency = alibaba_refund()
    no_currency.pop("currency", None)
    assert normalize_alibaba_refund(no_currency, {"currency": "USD"}).row["currency"] == "USD"
    assert normalize_alibaba_refund(no_currency, {"currency": None}).row["currency"] == "CNY"
    assert normalize_alibaba_refund(alibaba_refund(currency="HKD"), {"currency": "USD"}).row["currency"] == "HKD"


def test_alibaba_refund_rejects():
    pages = [
        (envelope(alibaba_refund(refundPayment=12.5)), None),
        (envelope(alibaba_refund(refundId=None, id=None)), None),
        (envelope(alibaba_refund(createTime="2026-02-30 00:00:00")), None),
    ]
    out = run_normalizer("alibaba_refunds", pages)
    assert "refunds" not in out.tables and out.records == 3
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        ("TQ25987654321", "refundPayment is not a whole number of fen: Decimal('12.5')"),
        (None, "missing refundId (and id)"),
        ("TQ25987654321", "createTime is not a valid yyyy-MM-dd HH:mm:ss time: '2026-02-30 00:00:00'"),
    ]
