"""The 1688 order normaliser on the contract's awkward cases: statuses, amounts, ids, rejects, and
both shapes (flat, nested ``baseInfo``) and both time formats (docs/api-contract.md §3, §5.7;
docs/warehouse.md)."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from decimal import Decimal

import pytest

from tests.factories.served import (
    ORDER_TIMES_1688,
    STEPS,
    alibaba_order,
    alibaba_refund,
    alibaba_trace,
    compact,
    envelope,
    item,
    nested,
    page,
    with_compact_times,
)
from tests.helpers import assert_fits_schemas, run_normalizer
from xport_etl import jsonutil
from xport_etl.normalize.alibaba_orders import ALIBABA_ORDER_STATUS, normalize_alibaba_order

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


# ---- rows, amounts, ids and rejects


def test_alibaba_order_rows():
    out = run_normalizer("alibaba_orders", [(page([alibaba_order()]), None)])
    assert_fits_schemas(out)
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
    out = run_normalizer("alibaba_orders", [(page([alibaba_order(productItems=items)]), None)])
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
    out = run_normalizer(
        "alibaba_orders",
        [
            (
                page(
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
    out = run_normalizer("alibaba_orders", [(page([new]), None), (page([old]), None)])
    assert [o["status"] for o in out.tables["orders"]] == ["shipped"]
    assert len(out.tables["order_lines"]) == 1


def test_alibaba_invalid_utf8_rejects_the_record_only():
    body = page([alibaba_order(sellerLoginId="AAAA"), alibaba_order(orderId="301")])
    out = run_normalizer("alibaba_orders", [(body.replace(b"AAAA", b"\xff\xfe"), None)])
    assert [o["order_id"] for o in out.tables["orders"]] == ["301"]
    assert out.rejects[0]["reason"] == "record contains bytes that are not valid UTF-8"


def test_every_reject_is_compact_json_with_money_exact():
    # an unreadable record is written by the same writer as any other (it once had its money
    # quoted and its text escaped to ASCII); a record served as a JSON string is that string
    rec = alibaba_order(sellerLoginId="AAAA", totalAmount=Decimal("38.40"))
    body = page([rec, alibaba_order(orderId="301"), "abc"]).replace(b"AAAA", b"\xff\xfe")
    out = run_normalizer("alibaba_orders", [(body, None)])
    unreadable, string = (r["raw_json"] for r in out.rejects)
    assert unreadable == jsonutil.dumps(rec).replace("AAAA", "\\udcff\\udcfe")
    assert '"totalAmount":38.40,' in unreadable and '"sellerCompanyName":"杭州某某有限公司"' in unreadable
    assert json.loads(unreadable, parse_float=Decimal)["sellerLoginId"] == "\udcff\udcfe"
    assert string == '"abc"'


# ---- both shapes (flat, nested baseInfo) and both time formats (docs/api-contract.md#57-1688-orders)


def alibaba_rows(rec):
    out = run_normalizer("alibaba_orders", [(page([rec]), None)])
    return out.tables, out.rejects


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda r: nested(r), id="nested"),
        pytest.param(lambda r: with_compact_times(r), id="flat-compact"),
        pytest.param(lambda r: nested(r, times=ORDER_TIMES_1688), id="nested-compact"),
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
            page(
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
    out = run_normalizer("alibaba_orders", pages)
    assert out.records == 4
    assert [r["order_id"] for r in out.tables["orders"]] == ["3012345678901234571"]
    assert [(r["record_id"], r["reason"]) for r in out.rejects] == [
        (None, "baseInfo is not an object: list"),
        ("3012345678901234570", "totalAmount is not an amount: 'abc'"),
        (None, "missing orderId"),
    ]


def test_alibaba_nested_invalid_utf8_reject_keeps_the_order_id():
    body = page([nested(alibaba_order(sellerLoginId="AAAA"))]).replace(b"AAAA", b"\xff")
    out = run_normalizer("alibaba_orders", [(body, None)])
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
    new = nested(alibaba_order(status="waitbuyerreceive", modifyTime="2026-03-02 08:00:00"), times=ORDER_TIMES_1688)
    for pages in ([new], [old]), ([old], [new]):
        out = run_normalizer("alibaba_orders", [(page(p), None) for p in pages])
        assert [o["status"] for o in out.tables["orders"]] == ["shipped"]
        assert out.tables["orders"][0]["updated_at"] == datetime(2026, 3, 2, 0, 0)


def test_alibaba_refund_and_logistics_accept_compact_times():
    dashed = run_normalizer("alibaba_refunds", [(envelope(alibaba_refund()), None)])
    data = alibaba_refund(createTime=compact("2026-03-01 07:30:00"), updateTime=compact("2026-03-02 02:00:00", "+0100"))
    assert run_normalizer("alibaba_refunds", [(envelope(data), None)]).tables == dashed.tables
    bad = run_normalizer("alibaba_refunds", [(envelope(alibaba_refund(updateTime="20260302090000000+08")), None)])
    assert [r["reason"] for r in bad.rejects] == [
        "updateTime is not a valid yyyyMMddHHmmssSSS±hhmm time: '20260302090000000+08'"
    ]

    ctx = {"order_id": "301", "order_status": "success"}
    trace = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", STEPS)]}
    steps = [{**s, "acceptTime": compact(s["acceptTime"])} for s in STEPS]
    mixed = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", steps[:1] + STEPS[1:])]}
    all_compact = {"orderId": "301", "logisticsTrace": [alibaba_trace("YT1", steps)]}
    expected = run_normalizer("alibaba_logistics", [(envelope(trace), ctx)]).tables
    assert run_normalizer("alibaba_logistics", [(envelope(mixed), ctx)]).tables == expected
    assert run_normalizer("alibaba_logistics", [(envelope(all_compact), ctx)]).tables == expected


def test_alibaba_nested_rejects_keep_the_record_as_served():
    rec = nested(alibaba_order(modifyTime="2027-01-01 00:00:00"))  # in the future of NOW
    out = run_normalizer("alibaba_orders", [(page([rec]), None)])
    assert [r["reason"] for r in out.rejects] == ["orders.updated_at 2026-12-31 16:00:00 UTC is in the future"]
    assert json.loads(out.rejects[0]["raw_json"]) == json.loads(jsonutil.dumps(rec, floats="allow"))
