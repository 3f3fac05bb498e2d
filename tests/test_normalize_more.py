"""After-sale, logistics and 1688 normalisers on the contract's awkward cases (docs/api-contract.md
§3, §5.4–§5.9; docs/warehouse.md)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from xport_etl import jsonutil
from xport_etl.normalize.alibaba_orders import ALIBABA_ORDER_STATUS, normalize_alibaba_order
from xport_etl.normalize.pages import parse_detail, to_table
from xport_etl.normalize.refunds import (
    ALIBABA_REFUND_STATUS,
    normalize_alibaba_refund,
    normalize_taobao_refund,
    normalize_taobao_refund_detail,
)
from xport_etl.normalize.registry import NORMALIZERS
from xport_etl.normalize.values import (
    TAOBAO_REFUND_STATUS,
    PageError,
    RejectError,
    to_epoch_ms_time,
    to_fen_money,
)
from xport_etl.schemas import STAGED_TABLES

NOW = datetime(2026, 7, 1)
# the public documentation's response templates (field names and nesting are real, values blank)
DOC_EXAMPLES = Path(__file__).resolve().parent / "recorded" / "doc-examples"


def envelope(data, code=200) -> bytes:
    page = {"requestId": "r", "code": code, "developId": 1, "msg": "成功", "data": data}
    return jsonutil.dumps(page, floats="allow").encode()


def list_page(records) -> bytes:
    return envelope({"records": records, "total": len(records), "size": 100, "current": 1, "pages": 1})


def run(endpoint, pages):
    """Run the endpoint's normaliser over ``[(body, context), ...]`` numbered from 1."""
    fn = NORMALIZERS[endpoint]
    numbered = [(i, body, ctx) for i, (body, ctx) in enumerate(pages, start=1)]
    return fn(numbered, endpoint=endpoint, window_id="w1", rejected_at=NOW)


def assert_columns(out):
    """Every row has exactly its staged table's columns, minus what the stager adds."""
    for table, rows in out.tables.items():
        expected = set(STAGED_TABLES[table].spec.staged_columns) - {"extracted_at", "data_clock"}
        for row in rows:
            assert set(row) == expected, table
        to_table(rows, STAGED_TABLES[table].spec.arrow_schema())  # the declared types fit


# ---- status mappings


@pytest.mark.parametrize(
    ("raw", "unified"),
    [
        ("waitbuyerpay", "awaiting_payment"),
        ("waitsellersend", "paid"),
        ("waitbuyerreceive", "shipped"),
        ("confirm_goods", "completed"),
        ("success", "completed"),
        ("cancel", "cancelled"),
        ("terminated", "cancelled"),
        ("waitlogistics", "other"),
        ("SUCCESS", "other"),
        (None, None),
        ("", None),
    ],
)
def test_alibaba_order_status(raw, unified):
    rows = normalize_alibaba_order(alibaba_order(status=raw))
    assert rows.row["status"] == unified
    assert rows.row["platform_status"] == (raw or None)


def test_alibaba_order_status_table_is_the_warehouse_one():
    assert ALIBABA_ORDER_STATUS == {
        "waitbuyerpay": "awaiting_payment",
        "waitsellersend": "paid",
        "waitbuyerreceive": "shipped",
        "confirm_goods": "completed",
        "success": "completed",
        "cancel": "cancelled",
        "terminated": "cancelled",
    }


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


# ---- scalars


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (1999, Decimal("19.99")),
        ("5", Decimal("0.05")),
        (0, Decimal("0.00")),
        ("100", Decimal("1.00")),
        (Decimal("300"), Decimal("3.00")),
        (123456789012345678, Decimal("1234567890123456.78")),
        (None, None),
        ("", None),
    ],
)
def test_fen_to_yuan_exactly(fen, yuan):
    got = to_fen_money(fen, "refundPayment")
    assert got == yuan
    if yuan is not None:
        assert str(got) == str(yuan)  # two decimals, no float noise


@pytest.mark.parametrize("bad", [12.5, Decimal("12.5"), "12.5", "-5", -5, "5 fen", True, [1], 10**20])
def test_fen_rejects_fractions_and_junk(bad):
    with pytest.raises(RejectError, match="refundPayment"):
        to_fen_money(bad, "refundPayment")


def test_epoch_ms_and_seconds():
    assert to_epoch_ms_time(1767225600000, "t") == datetime(2026, 1, 1)
    assert to_epoch_ms_time("1767225600123", "t") == datetime(2026, 1, 1, 0, 0, 0, 123000)
    assert to_epoch_ms_time("1767225600", "t") == datetime(2026, 1, 1)  # 10 digits: seconds
    assert to_epoch_ms_time(1767225600, "t") == datetime(2026, 1, 1)
    assert to_epoch_ms_time(Decimal("1767225600000"), "t") == datetime(2026, 1, 1)
    assert to_epoch_ms_time(None, "t") is None
    assert to_epoch_ms_time("", "t") is None
    assert to_epoch_ms_time(0, "t") is None  # the Java default of an unset long


@pytest.mark.parametrize("bad", [17672256000, "176722560", "1767225600000.5", -1767225600000, "2026-01-01", True, 1.5])
def test_epoch_rejects_other_widths_and_junk(bad):
    with pytest.raises(RejectError, match="createTime"):
        to_epoch_ms_time(bad, "createTime")


# ---- detail pages


def test_parse_detail():
    data, clean = parse_detail(envelope({"a": 1, "b": 1.5}))
    assert data == {"a": 1, "b": Decimal("1.5")} and clean
    data, clean = parse_detail(envelope({"a": "x"}).replace(b"x", b"\xff"))
    assert not clean and data["a"] == "\udcff"
    for bad in (b"<html>", b"[1]", envelope(None, code=404), envelope([1, 2])):
        with pytest.raises(PageError):
            parse_detail(bad)


# ---- Taobao refunds


def taobao_refund(**over):
    base = {
        "refundId": "300000000001",
        "orderId": "1031992847890383164",
        "subOrderId": "1031992847890383165",
        "purchaseOrderId": "200027842447",
        "purchaseOrderLineId": "200027842448",
        "salesOrderId": "88001",
        "refundType": 1,
        "goodsStatus": 1,
        "refundStatus": 100,
        "refundFee": "12.50",
        "currency": "CNY",
        "reasonId": 3,
        "reasonDesc": "七天无理由",
        "refundDesc": None,
        "createTime": 1767225600000,
        "modifiedTime": "1767229200000",
        "timeoutDate": "2026-01-08 08:00:00",
    }
    base.update(over)
    return base


def test_taobao_refund_list_row():
    out = run("taobao_refunds", [(list_page([taobao_refund()]), None)])
    assert_columns(out)
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
    out = run("taobao_refunds", [(list_page([older, bad_fee]), None), (list_page([newer, no_id]), None)])
    assert [r["status"] for r in out.tables["refunds"]] == ["succeeded"]
    assert out.records == 4
    reasons = {r["record_id"]: r["reason"] for r in out.rejects}
    assert reasons["300000000002"] == "refundFee has more than two decimals: '1.234'"
    assert reasons[None] == "missing refundId"


def taobao_refund_detail(**refund_over):
    refund_order = {
        "refundFee": Decimal("19.9"),
        "payOrderId": "",
        "timeoutType": "",
        "sellerRefuseReason": "",
        "refundStatus": 20,
        "canEditFee": False,
        "remainingTime": "",
        "refundType": 2,
        "feeTips": "",
        "reasonDesc": "尺码不合适",
        "goodsStatus": 2,
        "refundDesc": "",
        "reasonId": 7,
        "timeoutDate": "2026-01-08 08:00:00",
        "sellerRefuseReasonDescribe": "",
        "refundId": "300000000009",
    }
    refund_order.update(refund_over)
    return {
        "distributorId": "2200000001",
        "currency": "CNY",
        "refundOrderAggregate": {
            "logistics": {
                "receiverAddress": "",
                "returnGoodsDesc": "",
                "buyerPhone": "",
                "logisticsCompany": {"logisticsCompanyCode": "", "logisticsCompanyName": ""},
                "sellerAgreeReturnDescribe": "",
            },
            "refundOrder": refund_order,
            "purchaseOrderLine": {
                "salesOrderId": "88001",
                "supplierId": 1,
                "quantity": 1,
                "totalPrice": 1990,
                "itemTitle": "短袖T恤",
                "postFee": 0,
                "productFee": 1990,
                "salesMarket": "",
                "purchaseOrderLineId": 200027842448,
                "createTime": 1767139200000,
                "purchaseOrderId": 200027842447,
                "price": 1990,
            },
        },
    }


def test_taobao_refund_detail_row_takes_ids_from_context():
    ctx = {"refund_id": "300000000009", "order_id": "1031992847890383164", "line_id": "1031992847890383165"}
    out = run("taobao_refund_detail", [(envelope(taobao_refund_detail()), ctx)])
    assert_columns(out)
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
    out = run(
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


def alibaba_refund(**over):
    base = {
        "id": 99001,
        "refundId": "TQ25987654321",
        "orderId": "3012345678901234567",
        "subItemId": "3012345678901234568",
        "status": "refundsuccess",
        "createTime": "2026-03-01 07:30:00",
        "updateTime": "2026-03-02 09:00:00",
        "applyPayment": 1999,
        "applyCarriage": 0,
        "applyReason": "商品质量问题",
        "applyReasonId": 5,
        "buyerSendGoods": False,
        "refundPayment": 1999,
    }
    base.update(over)
    return base


def test_alibaba_refund_row():
    out = run("alibaba_refunds", [(envelope(alibaba_refund()), {"refund_id": "TQ25987654321"})])
    assert_columns(out)
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
    out = run("alibaba_refunds", pages)
    assert "refunds" not in out.tables and out.records == 3
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        ("TQ25987654321", "refundPayment is not a whole number of fen: Decimal('12.5')"),
        (None, "missing refundId (and id)"),
        ("TQ25987654321", "createTime is not a valid yyyy-MM-dd HH:mm:ss time: '2026-02-30 00:00:00'"),
    ]


# ---- 1688 orders


def item(**over):
    base = {
        "subItemId": "3012345678901234568",
        "productId": 612345678901,
        "skuId": "4970432383383",
        "specId": "b1c2",
        "name": "加厚 保温杯 500ml",
        "quantity": 3,
        "price": "10.00",
        "itemAmount": "30.00",
        "unit": "个",
        "status": "waitsellersend",
        "refundStatus": None,
        "refundId": None,
        "logisticsStatus": 1,
    }
    base.update(over)
    return base


def alibaba_order(**over):
    base = {
        "orderId": "3012345678901234567",
        "webSite": "1688",
        "status": "waitsellersend",
        "sellerLoginId": "杭州某某工厂",
        "sellerCompanyName": "杭州某某有限公司",
        "totalAmount": "38.00",
        "shippingFee": 8,
        "discount": "0",
        "currency": "CNY",
        "createTime": "2026-03-01 07:59:59",
        "payTime": "2026-03-01 08:10:00",
        "allDeliveredTime": None,
        "completeTime": None,
        "modifyTime": "2026-03-01 08:10:00",
        "productItems": [item()],
    }
    base.update(over)
    return base


def test_alibaba_order_rows():
    out = run("alibaba_orders", [(list_page([alibaba_order()]), None)])
    assert_columns(out)
    assert out.tables["orders"] == [
        {
            "platform": "1688",
            "order_id": "3012345678901234567",
            "order_no": None,
            "status": "paid",
            "platform_status": "waitsellersend",
            "order_source": None,
            "seller_order_number": None,
            "seller": "杭州某某工厂",
            "currency": "CNY",
            "goods_amount": Decimal("30.00"),
            "shipping_amount": Decimal("8.00"),
            "total_amount": Decimal("38.00"),
            "line_count": 1,
            "created_at": datetime(2026, 2, 28, 23, 59, 59),
            "paid_at": datetime(2026, 3, 1, 0, 10),
            "updated_at": datetime(2026, 3, 1, 0, 10),
            "close_reason": None,
        }
    ]
    assert out.tables["order_lines"] == [
        {
            "platform": "1688",
            "order_id": "3012345678901234567",
            "line_id": "3012345678901234568",
            "line_index": 0,
            "item_id": "612345678901",
            "sku_id": "4970432383383",
            "title": "加厚 保温杯 500ml",
            "quantity": 3,
            "amount": Decimal("30.00"),
            "shipping_amount": None,
            "currency": "CNY",
            "refund_status": "none",
            "purchase_id": None,
            "purchase_line_id": None,
            "line_status": "waitsellersend",
            "platform_refund_status": None,
            "carrier": None,
            "tracking_number": None,
            "refund_id": None,
        }
    ]


def test_alibaba_goods_is_total_minus_shipping_with_sql_nulls():
    row = normalize_alibaba_order(alibaba_order(totalAmount=Decimal("100.10"), shippingFee="0.10")).row
    assert (row["goods_amount"], row["shipping_amount"], row["total_amount"]) == (
        Decimal("100.00"),
        Decimal("0.10"),
        Decimal("100.10"),
    )
    row = normalize_alibaba_order(alibaba_order(shippingFee=None)).row
    assert (row["goods_amount"], row["shipping_amount"], row["total_amount"]) == (None, None, None)
    row = normalize_alibaba_order(alibaba_order(totalAmount=None)).row
    assert (row["goods_amount"], row["shipping_amount"], row["total_amount"]) == (None, Decimal("8.00"), None)


def test_alibaba_ids_as_numbers_and_nulls():
    rows = normalize_alibaba_order(
        alibaba_order(
            orderId=3012345678901234567,
            sellerLoginId=None,
            payTime=None,
            currency=None,
            productItems=[
                item(
                    subItemId=3012345678901234568,
                    skuId=None,
                    refundId="TQ1",
                    refundStatus="waitselleragree",
                    quantity="2",
                )
            ],
        )
    )
    assert rows.row["order_id"] == "3012345678901234567"
    assert rows.row["seller"] is None and rows.row["paid_at"] is None and rows.row["currency"] is None
    (line,) = rows.children["order_lines"]
    assert line["line_id"] == "3012345678901234568" and line["sku_id"] is None
    assert (line["refund_id"], line["refund_status"], line["quantity"]) == ("TQ1", "applied", 2)
    rows = normalize_alibaba_order(alibaba_order(productItems=None))
    assert rows.row["line_count"] == 0 and rows.children["order_lines"] == []


def test_alibaba_rejected_item_still_counted():
    items = [item(), item(subItemId="3012345678901234569", itemAmount="1.234"), "junk", item(subItemId=None), item()]
    out = run("alibaba_orders", [(list_page([alibaba_order(productItems=items)]), None)])
    assert out.tables["orders"][0]["line_count"] == 5
    assert [line["line_id"] for line in out.tables["order_lines"]] == ["3012345678901234568"]
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        ("3012345678901234567/3012345678901234569", "product item: itemAmount has more than two decimals: '1.234'"),
        ("3012345678901234567/#2", "product item: product item is not an object: str"),
        ("3012345678901234567/#3", "product item: missing subItemId"),
        ("3012345678901234567/3012345678901234568", "product item: duplicate subItemId in order"),
    ]
    assert out.records == 1


def test_alibaba_bad_order_rejected_whole():
    out = run(
        "alibaba_orders",
        [
            (
                list_page(
                    [
                        alibaba_order(createTime="01/03/2026"),
                        alibaba_order(orderId="3012345678901234570", productItems={"a": 1}),
                        alibaba_order(orderId=None),
                        alibaba_order(orderId="3012345678901234571", totalAmount="abc"),
                    ]
                ),
                None,
            )
        ],
    )
    assert "orders" not in out.tables and "order_lines" not in out.tables and out.records == 4
    assert [r["reason"] for r in out.rejects] == [
        "createTime is not a valid yyyy-MM-dd HH:mm:ss time: '01/03/2026'",
        "productItems is not a list: dict",
        "missing orderId",
        "totalAmount is not an amount: 'abc'",
    ]


def test_alibaba_orders_dedupe_across_pages_latest_modify_wins():
    old = alibaba_order(status="waitbuyerpay", modifyTime="2026-03-01 08:00:00")
    new = alibaba_order(status="waitbuyerreceive", modifyTime="2026-03-02 08:00:00")
    out = run("alibaba_orders", [(list_page([new]), None), (list_page([old]), None)])
    assert [o["status"] for o in out.tables["orders"]] == ["shipped"]
    assert len(out.tables["order_lines"]) == 1


def test_alibaba_invalid_utf8_rejects_the_record_only():
    body = list_page([alibaba_order(sellerLoginId="AAAA"), alibaba_order(orderId="301")])
    out = run("alibaba_orders", [(body.replace(b"AAAA", b"\xff\xfe"), None)])
    assert [o["order_id"] for o in out.tables["orders"]] == ["301"]
    assert out.rejects[0]["reason"] == "record contains bytes that are not valid UTF-8"


def test_every_reject_is_compact_json_with_money_exact():
    # an unreadable record is written by the same writer as any other (it once had its money
    # quoted and its text escaped to ASCII); a record served as a JSON string is that string
    rec = alibaba_order(sellerLoginId="AAAA", totalAmount=Decimal("38.40"))
    body = list_page([rec, alibaba_order(orderId="301"), "abc"]).replace(b"AAAA", b"\xff\xfe")
    out = run("alibaba_orders", [(body, None)])
    unreadable, string = (r["raw_json"] for r in out.rejects)
    assert unreadable == jsonutil.dumps(rec).replace("AAAA", "\\udcff\\udcfe")
    assert '"totalAmount":38.40,' in unreadable and '"sellerCompanyName":"杭州某某有限公司"' in unreadable
    assert json.loads(unreadable, parse_float=Decimal)["sellerLoginId"] == "\udcff\udcfe"
    assert string == '"abc"'


# ---- Taobao logistics


def trace(time, status, desc="", city="杭州市"):
    return {
        "statusDesc": desc,
        "province": "浙江省",
        "city": city,
        "district": "余杭区",
        "action": status,
        "facilityName": "杭州转运中心",
        "time": time,
        "standerdDesc": desc,
        "status": status,
        "nextCity": "",
        "nextNodeName": "",
    }


def parcel(mail_no, traces, company="中通快递"):
    return {
        "mailNo": mail_no,
        "logisticsTraces": traces,
        "logisticsPartner": [{"companyImageUrl": "", "company": company, "companyContact": "95311"}],
        "receiver": {
            "zipCode": "510000",
            "address": "仓库",
            "province": "广东省",
            "city": "广州市",
            "district": "白云区",
            "phone": "",
            "name": "仓库",
        },
        "logisticsGoods": [{"title": "短袖T恤", "property": "白色 L", "imageUrl": "", "quantity": "2"}],
    }


def logistics(parcels, line_id="200027842448"):
    return {"purchaseOrderOuterId": line_id, "pnmLogisticsDetails": parcels}


CTX = {"order_id": "1031992847890383164", "purchase_line_id": "200027842448"}

TRACES = [
    trace("2026-01-02 07:00:00", "ACCEPT", "已揽收"),
    trace("2026-01-02 20:00:00", "TRANSPORT", "运输中"),
    trace("2026-01-03 09:00:00", "SIGN", "已签收", "广州市"),
    trace("2026-01-03 10:00:00", "SIGN", "再次签收", "广州市"),
    trace("2026-01-03 11:00:00", "FAILED", "异常"),
]


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


def test_fixtures_follow_the_doc_examples_nesting():
    doc = json.loads((DOC_EXAMPLES / "taobao-logistics-detail-v2.json").read_text())["data"]
    assert _shape(logistics([parcel("ZT1", TRACES[:1])])) == _shape(doc)
    doc = json.loads((DOC_EXAMPLES / "taobao-refund-detail-v2.json").read_text())["data"]
    assert _shape(taobao_refund_detail()) == _shape(doc)


def test_taobao_parcel_and_events():
    out = run("taobao_logistics", [(envelope(logistics([parcel("ZT7700001", TRACES)])), CTX)])
    assert_columns(out)
    assert out.tables["parcels"] == [
        {
            "platform": "taobao",
            "tracking_number": "ZT7700001",
            "order_id": "1031992847890383164",
            "purchase_line_id": "200027842448",
            "carrier": "中通快递",
            "first_event_at": datetime(2026, 1, 1, 23),
            "last_event_at": datetime(2026, 1, 3, 3),
            "delivered_at": datetime(2026, 1, 3, 1),  # the first SIGN, not the second
            "last_status": "FAILED",
            "event_count": 5,
            "order_status_at_fetch": None,
            "goods_quantity": 2,  # the sum of logisticsGoods quantities: what the line shipped in it
        }
    ]
    events = out.tables["parcel_events"]
    assert [e["event_index"] for e in events] == [0, 1, 2, 3, 4]
    assert events[2] == {
        "platform": "taobao",
        "tracking_number": "ZT7700001",
        "event_index": 2,
        "event_at": datetime(2026, 1, 3, 1),
        "status": "SIGN",
        "description": "已签收",
        "city": "广州市",
    }
    assert out.records == 1 and out.rejects == []


def test_taobao_first_and_last_follow_the_apis_order_not_the_clock():
    traces = [trace("2026-01-03 09:00:00", "TRANSPORT"), trace("2026-01-02 07:00:00", "ACCEPT")]
    out = run("taobao_logistics", [(envelope(logistics([parcel("ZT1", traces)])), CTX)])
    (row,) = out.tables["parcels"]
    assert row["first_event_at"] == datetime(2026, 1, 3, 1)
    assert row["last_event_at"] == datetime(2026, 1, 1, 23)
    assert row["last_status"] == "ACCEPT" and row["delivered_at"] is None


def test_taobao_parcel_without_traces_and_several_parcels():
    data = logistics([parcel("ZT1", []), parcel("ZT2", None, company=None)])
    data["pnmLogisticsDetails"][1]["logisticsPartner"] = []
    out = run("taobao_logistics", [(envelope(data), CTX)])
    rows = {r["tracking_number"]: r for r in out.tables["parcels"]}
    for tn in ("ZT1", "ZT2"):
        assert rows[tn]["first_event_at"] is None and rows[tn]["last_event_at"] is None
        assert rows[tn]["event_count"] == 0 and rows[tn]["last_status"] is None
        assert rows[tn]["delivered_at"] is None
    assert rows["ZT1"]["carrier"] == "中通快递" and rows["ZT2"]["carrier"] is None
    assert out.tables["parcel_events"] == [] and out.records == 2


def test_taobao_empty_logistics_is_not_an_error():
    pages = [
        (envelope(logistics([])), CTX),
        (envelope({"purchaseOrderOuterId": "1", "pnmLogisticsDetails": None}), CTX),
    ]
    out = run("taobao_logistics", pages)
    assert out.tables == {} and out.rejects == [] and out.records == 0


def test_taobao_purchase_line_falls_back_to_context_and_no_context():
    out = run("taobao_logistics", [(envelope(logistics([parcel("ZT1", TRACES)], line_id=None)), CTX)])
    assert out.tables["parcels"][0]["purchase_line_id"] == "200027842448"
    out = run("taobao_logistics", [(envelope(logistics([parcel("ZT1", TRACES)], line_id=200027842449)), None)])
    row = out.tables["parcels"][0]
    assert (row["order_id"], row["purchase_line_id"]) == (None, "200027842449")


def test_taobao_same_parcel_for_two_lines_kept_once():
    shorter = parcel("ZT1", TRACES[:2])
    longer = parcel("ZT1", TRACES[:3])
    pages = [
        (envelope(logistics([shorter], line_id="L1")), CTX),
        (envelope(logistics([longer], line_id="L2")), CTX),
        (envelope(logistics([copy.deepcopy(shorter)], line_id="L3")), CTX),
    ]
    out = run("taobao_logistics", pages)
    (row,) = out.tables["parcels"]
    assert (row["purchase_line_id"], row["event_count"]) == ("L2", 3)
    assert len(out.tables["parcel_events"]) == 3 and out.rejects == []
    # same last event and same count: the first seen stays
    out = run(
        "taobao_logistics",
        [(envelope(logistics([shorter], line_id="L1")), CTX), (envelope(logistics([shorter], line_id="L2")), CTX)],
    )
    assert out.tables["parcels"][0]["purchase_line_id"] == "L1"


def test_taobao_bad_parcels_rejected_alone():
    bad_time = parcel("ZT2", [trace("2026-01-02 7:00", "ACCEPT")])
    pages = [
        (envelope(logistics([parcel("ZT1", TRACES), bad_time, parcel("", []), "junk", parcel("ZT3", [None])])), CTX),
        (envelope(logistics({"mailNo": "x"})), CTX),
    ]
    out = run("taobao_logistics", pages)
    assert [r["tracking_number"] for r in out.tables["parcels"]] == ["ZT1"]
    assert [(r["record_id"], r["reason"], r["page"]) for r in out.rejects] == [
        ("200027842448/ZT2", "logisticsTraces[0].time is not a valid yyyy-MM-dd HH:mm:ss time: '2026-01-02 7:00'", 1),
        ("200027842448/#2", "missing mailNo", 1),
        ("200027842448/#3", "parcel is not an object: str", 1),
        ("200027842448/ZT3", "logisticsTraces[0] is not an object: NoneType", 1),
        ("200027842448", "pnmLogisticsDetails is not a list: dict", 2),
    ]
    assert out.records == 6


def test_taobao_logistics_page_errors():
    with pytest.raises(PageError):
        run("taobao_logistics", [(envelope(None, code=404), CTX)])


# ---- 1688 logistics


def alibaba_trace(bill_no, steps, company="圆通速递"):
    return {
        "logisticsId": "LP001",
        "logisticsBillNo": bill_no,
        "logisticsCompanyName": company,
        "logisticsSteps": steps,
    }


STEPS = [
    {"acceptTime": "2026-03-02 10:00:00", "remark": "已揽件"},
    {"acceptTime": "2026-03-03 18:30:00", "remark": "派送中"},
    {"acceptTime": "2026-03-04 08:00:00", "remark": "已签收"},
]


def test_alibaba_parcel_and_events():
    data = {"orderId": 3012345678901234567, "logisticsTrace": [alibaba_trace("YT900001", STEPS)]}
    ctx = {"key": "3012345678901234567", "order_id": "3012345678901234567", "order_status": "success"}
    out = run("alibaba_logistics", [(envelope(data), ctx)])
    assert_columns(out)
    assert out.tables["parcels"] == [
        {
            "platform": "1688",
            "tracking_number": "YT900001",
            "order_id": "3012345678901234567",
            "purchase_line_id": None,
            "carrier": "圆通速递",
            "first_event_at": datetime(2026, 3, 2, 2),
            "last_event_at": datetime(2026, 3, 4, 0),
            "delivered_at": None,
            "last_status": None,
            "event_count": 3,
            "order_status_at_fetch": "success",  # from the fan-out context: the loader derives delivery
            "goods_quantity": None,
        }
    ]
    assert out.tables["parcel_events"][1] == {
        "platform": "1688",
        "tracking_number": "YT900001",
        "event_index": 1,
        "event_at": datetime(2026, 3, 3, 10, 30),
        "status": None,
        "description": "派送中",
        "city": None,
    }


def test_an_unreadable_context_order_status_is_a_warning_and_the_parcels_load():
    data = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", STEPS), alibaba_trace("YT2", STEPS)]}
    out = run("alibaba_logistics", [(envelope(data), {"order_id": "301", "order_status": {"s": "success"}})])
    assert [(r["tracking_number"], r["order_status_at_fetch"]) for r in out.tables["parcels"]] == [
        ("YT1", None),
        ("YT2", None),
    ]
    assert [(r["severity"], r["record_id"], r["field"], r["raw_json"]) for r in out.rejects] == [
        ("warning", "301/YT1", "context order_status", '{"s":"success"}'),
        ("warning", "301/YT2", "context order_status", '{"s":"success"}'),
    ]
    assert (out.rejected, out.warned) == (0, 2)


def test_alibaba_logistics_empty_no_steps_and_context_order():
    out = run("alibaba_logistics", [(envelope({"orderId": "301", "logisticsTrace": []}), {"order_id": "301"})])
    assert out.tables == {} and out.rejects == []
    data = {"orderId": None, "logisticsTrace": [alibaba_trace("YT1", None), alibaba_trace("YT2", [])]}
    out = run("alibaba_logistics", [(envelope(data), {"order_id": "302"})])
    assert [(r["order_id"], r["event_count"], r["first_event_at"]) for r in out.tables["parcels"]] == [
        ("302", 0, None),
        ("302", 0, None),
    ]


def test_alibaba_logistics_rejects():
    data = {
        "orderId": "301",
        "logisticsTrace": [
            alibaba_trace(None, STEPS),
            alibaba_trace("YT2", [{"acceptTime": 1767225600000}]),
            alibaba_trace("YT3", STEPS),
        ],
    }
    out = run("alibaba_logistics", [(envelope(data), None), (envelope({"logisticsTrace": "x"}), {"order_id": "302"})])
    assert [r["tracking_number"] for r in out.tables["parcels"]] == ["YT3"]
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        ("301/#0", "missing logisticsBillNo"),
        ("301/YT2", "logisticsSteps[0].acceptTime is not a time string: 1767225600000"),
        ("302", "logisticsTrace is not a list: str"),
    ]


def test_duplicate_tracking_number_within_one_answer_is_a_reject():
    data = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", STEPS[:1]), alibaba_trace("YT1", STEPS)]}
    out = run("alibaba_logistics", [(envelope(data), None)])
    assert out.tables["parcels"][0]["event_count"] == 3
    assert [r["reason"] for r in out.rejects] == ["duplicate id within one page; kept the later version"]


def test_logistics_invalid_utf8_rejects_the_parcel():
    data = logistics([parcel("ZT1", [trace("2026-01-02 07:00:00", "ACCEPT", "AAAA")]), parcel("ZT2", [])])
    body = envelope(data).replace(b"AAAA", b"\xff")
    out = run("taobao_logistics", [(body, CTX)])
    assert [r["tracking_number"] for r in out.tables["parcels"]] == ["ZT2"]
    assert out.rejects[0]["record_id"] == "200027842448/ZT1"
    assert out.rejects[0]["reason"] == "record contains bytes that are not valid UTF-8"
    assert out.rejects[0]["raw_json"].startswith('{"mailNo":"ZT1","logisticsTraces":[{"statusDesc":"\\udcff",')


def test_normalizers_cover_the_new_endpoints():
    # the registry routes every endpoint: these, the Taobao order lists and the callback details
    assert set(NORMALIZERS) == {
        "taobao_refunds",
        "taobao_refund_detail",
        "alibaba_orders",
        "alibaba_refunds",
        "taobao_logistics",
        "alibaba_logistics",
        "taobao_orders",
        "taobao_orders_legacy",
        "taobao_order_detail",
    }


# ---- 1688 orders in both shapes (flat, nested baseInfo) and both time formats
# (docs/api-contract.md#57-1688-orders)

ORDER_TIMES = ("createTime", "payTime", "allDeliveredTime", "completeTime", "modifyTime")


def compact(text, offset="+0800"):
    """A ``yyyy-MM-dd HH:mm:ss`` CST time written as 1688 writes it: ``yyyyMMddHHmmssSSS+0800``."""
    if text is None:
        return None
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime("%Y%m%d%H%M%S") + "000" + offset


def nested(rec, *, times=()):
    """The flat record in 1688's own shape; the ``times`` named are written compact."""
    base = {k: (compact(v) if k in times else v) for k, v in rec.items() if k != "productItems"}
    return {
        "baseInfo": base,
        "productItems": rec.get("productItems"),
        "nativeLogistics": {
            "province": "浙江省",
            "city": "金华市",
            "address": "春晗路88号",
            "zip": "322000",
            "contactPerson": "张三",
        },
    }


def with_compact_times(rec, times=ORDER_TIMES):
    return {k: (compact(v) if k in times else v) for k, v in rec.items()}


def alibaba_rows(rec):
    out = run("alibaba_orders", [(list_page([rec]), None)])
    return out.tables, out.rejects


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda r: nested(r), id="nested"),
        pytest.param(lambda r: with_compact_times(r), id="flat-compact"),
        pytest.param(lambda r: nested(r, times=ORDER_TIMES), id="nested-compact"),
        pytest.param(lambda r: nested(r, times=("createTime", "modifyTime")), id="nested-mixed"),
        pytest.param(lambda r: with_compact_times(r, ("payTime",)), id="flat-mixed"),
    ],
)
def test_alibaba_order_shapes_and_time_formats_give_identical_rows(shape):
    flat = alibaba_order(
        allDeliveredTime="2026-03-02 09:00:00",
        completeTime="2026-03-05 10:00:00",
        productItems=[item(), item(subItemId="3012345678901234569", refundId="TQ7", refundStatus="waitselleragree")],
    )
    expected, no_rejects = alibaba_rows(flat)
    assert no_rejects == [] and len(expected["order_lines"]) == 2
    tables, rejects = alibaba_rows(shape(copy.deepcopy(flat)))
    assert rejects == []
    assert tables == expected


def test_alibaba_compact_time_uses_its_own_offset_and_drops_milliseconds():
    def created(value):
        rec = nested(alibaba_order(createTime=value))
        return normalize_alibaba_order(rec).row["created_at"]

    assert created("20180801104333000+0800") == datetime(2018, 8, 1, 2, 43, 33)
    assert created("20180801104333000+0000") == datetime(2018, 8, 1, 10, 43, 33)
    assert created("20180801104333000-0530") == datetime(2018, 8, 1, 16, 13, 33)
    assert created("20180801014333000+0930") == datetime(2018, 7, 31, 16, 13, 33)
    # whole seconds, as the yyyy-MM-dd HH:mm:ss form: a record's version never depends on its format
    assert created("20180801104333999+0800") == datetime(2018, 8, 1, 2, 43, 33)
    assert created(" 20180801104333000+0800 ") == datetime(2018, 8, 1, 2, 43, 33)


@pytest.mark.parametrize(
    "value",
    [
        "20260230080000000+0800",  # no 30 February
        "20260301250000000+0800",  # hour 25
        "20260301080000000+0860",  # offset minutes
        "20260301080000000+1500",  # beyond any real offset
        "20260301080000000",  # no offset
        "2026030108000000+0800",  # 16 digits
        "20260301080000+0800",  # no milliseconds
        "20260301080000000+08:00",
        "20260301080000000Z",
        "1767225600000",
    ],  # epoch milliseconds as a string
)
def test_alibaba_malformed_compact_time_rejects_naming_the_field(value):
    tables, rejects = alibaba_rows(nested(alibaba_order(modifyTime=value)))
    assert tables == {}
    assert [(r["record_id"], r["reason"]) for r in rejects] == [
        ("3012345678901234567", f"modifyTime is not a valid yyyyMMddHHmmssSSS±hhmm time: {value!r}")
    ]


def test_alibaba_other_bad_times_keep_their_reasons():
    _, rejects = alibaba_rows(nested(alibaba_order(payTime="2026-02-30 08:00:00")))
    assert [r["reason"] for r in rejects] == ["payTime is not a valid yyyy-MM-dd HH:mm:ss time: '2026-02-30 08:00:00'"]
    _, rejects = alibaba_rows(alibaba_order(payTime=20260301080000000))
    assert [r["reason"] for r in rejects] == ["payTime is not a time string: 20260301080000000"]


def test_alibaba_base_info_wins_over_record_level_members():
    rec = nested(alibaba_order(status="success", totalAmount="48.00"))
    rec.update({"orderId": "999", "status": "cancel", "totalAmount": "1.00", "sellerLoginId": "top"})
    row = normalize_alibaba_order(rec).row
    assert (row["order_id"], row["status"], row["total_amount"]) == (
        "3012345678901234567",
        "completed",
        Decimal("48.00"),
    )
    # a member only at the record level is still read
    del rec["baseInfo"]["sellerLoginId"]
    assert normalize_alibaba_order(rec).row["seller"] == "top"
    # productItems are read at the record level, never inside baseInfo
    rec["baseInfo"]["productItems"] = [item(subItemId="1")]
    lines = normalize_alibaba_order(rec).children["order_lines"]
    assert [line["line_id"] for line in lines] == ["3012345678901234568"]


def test_alibaba_bad_base_info_and_nested_reject_ids():
    pages = [
        (
            list_page(
                [
                    {"baseInfo": ["x"], "productItems": []},
                    nested(alibaba_order(orderId="3012345678901234570", totalAmount="abc")),
                    nested(alibaba_order(orderId=None)),
                    {"baseInfo": None, **alibaba_order(orderId="3012345678901234571")},
                ]
            ),
            None,
        )
    ]
    out = run("alibaba_orders", pages)
    assert out.records == 4
    assert [r["order_id"] for r in out.tables["orders"]] == ["3012345678901234571"]
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        (None, "baseInfo is not an object: list"),
        ("3012345678901234570", "totalAmount is not an amount: 'abc'"),
        (None, "missing orderId"),
    ]


def test_alibaba_nested_invalid_utf8_reject_keeps_the_order_id():
    body = list_page([nested(alibaba_order(sellerLoginId="AAAA"))]).replace(b"AAAA", b"\xff")
    out = run("alibaba_orders", [(body, None)])
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        ("3012345678901234567", "record contains bytes that are not valid UTF-8")
    ]


@pytest.mark.parametrize("discount", [-226, "-226", "0", Decimal("-2.26"), "abc", 1.5, {"x": 1}, [1], True, None])
def test_alibaba_discount_never_costs_the_order(discount):
    for rec in (alibaba_order(discount=discount), nested(alibaba_order(discount=discount))):
        tables, rejects = alibaba_rows(rec)
        assert rejects == [] and len(tables["orders"]) == 1


def test_alibaba_orders_dedupe_across_shapes_and_formats():
    old = alibaba_order(status="waitbuyerpay", modifyTime="2026-03-01 08:00:00")
    new = nested(alibaba_order(status="waitbuyerreceive", modifyTime="2026-03-02 08:00:00"), times=ORDER_TIMES)
    for pages in ([new], [old]), ([old], [new]):
        out = run("alibaba_orders", [(list_page(p), None) for p in pages])
        assert [o["status"] for o in out.tables["orders"]] == ["shipped"]
        assert out.tables["orders"][0]["updated_at"] == datetime(2026, 3, 2, 0, 0)


def test_alibaba_refund_and_logistics_accept_compact_times():
    dashed = run("alibaba_refunds", [(envelope(alibaba_refund()), None)])
    data = alibaba_refund(createTime=compact("2026-03-01 07:30:00"), updateTime=compact("2026-03-02 02:00:00", "+0100"))
    assert run("alibaba_refunds", [(envelope(data), None)]).tables == dashed.tables
    bad = run("alibaba_refunds", [(envelope(alibaba_refund(updateTime="20260302090000000+08")), None)])
    assert [r["reason"] for r in bad.rejects] == [
        "updateTime is not a valid yyyyMMddHHmmssSSS±hhmm time: '20260302090000000+08'"
    ]

    ctx = {"order_id": "301", "order_status": "success"}
    trace = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", STEPS)]}
    steps = [{**s, "acceptTime": compact(s["acceptTime"])} for s in STEPS]
    mixed = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", steps[:1] + STEPS[1:])]}
    all_compact = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", steps)]}
    expected = run("alibaba_logistics", [(envelope(trace), ctx)]).tables
    assert run("alibaba_logistics", [(envelope(mixed), ctx)]).tables == expected
    assert run("alibaba_logistics", [(envelope(all_compact), ctx)]).tables == expected


def test_alibaba_nested_rejects_keep_the_record_as_served():
    rec = nested(alibaba_order(modifyTime="2027-01-01 00:00:00"))  # in the future of NOW
    out = run("alibaba_orders", [(list_page([rec]), None)])
    assert [r["reason"] for r in out.rejects] == ["orders.updated_at 2026-12-31 16:00:00 UTC is in the future"]
    assert json.loads(out.rejects[0]["raw_json"]) == json.loads(jsonutil.dumps(rec, floats="allow"))
