"""Hypothesis strategies for the normalisers' inputs: arbitrary JSON (huge numbers, Decimals, NaN
floats, lone surrogates, nested objects), and for each endpoint its contract-conforming records
(``valid_*``, ids drawn from their own namespace so that garbage never collides with them) and its
garbage (the real field names with values of any JSON type, and non-dicts)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# the normaliser property tests' budget (tests/normalize/)
PROFILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

# ---- arbitrary JSON

huge_ints = st.integers(min_value=-(10**40), max_value=10**40)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: abs(d.adjusted()) < 400)
texts = st.text(max_size=12) | st.sampled_from(
    [
        "",
        " ",
        "abc",
        "1.5",
        "-1",
        "12.345",
        "1e5",
        "2026-02-30 10:00:00",
        "2026-01-01 25:61:00",
        "2026-01-01 08:00:00",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59",
        "{",
        "[1]",
        '{"a": 1}',
        "\ud800",
        "\x00",
        "１２３",
        "NaN",
        "1767225600000",
        "1767225600",
    ]
)
# values that broke the normalisers once: digit strings beyond int()'s 4300-digit limit, exponents
# that make int(Decimal) run for hours or overflow the 28-digit Decimal context, lone surrogates
nasty = st.sampled_from(
    [
        "9" * 5000,
        "-" + "1" * 4400,
        10**30,
        10**40,
        -(10**20),
        Decimal("1E+30"),
        Decimal("1E+100000"),
        Decimal("-1E+100000"),
        Decimal("0E+100000"),
        Decimal("1E-100000"),
        Decimal("12.345"),
        Decimal("-0.00"),
        float("nan"),
        float("inf"),
        "1" + "0" * 40,
        "\udcff\udcfe",
        "9999-12-31 23:59:59",
        "2099-01-01 00:00:00",
        4102444800000,
        "4102444800",
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 200)
    | huge_ints
    | decimals
    | texts
    | nasty
    | st.floats(allow_nan=True, allow_infinity=True)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def garbage(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Dicts with the real field names, each absent, arbitrary JSON, or its own nested strategy."""
    return st.fixed_dictionaries({}, optional={k: json_values | v for k, v in fields.items()}) | json_values


# ---- valid values (docs/api-contract.md#3-data-conventions)


def ids(prefix: str) -> st.SearchStrategy:
    """Valid ids of one namespace: digit strings or JSON integers starting with ``prefix``."""
    digits = st.integers(10**12, 10**13 - 1).map(lambda n: f"{prefix}{n}")
    return digits | digits.filter(lambda s: s.isdigit()).map(int)


money = st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2)
money_wire = money.flatmap(lambda d: st.sampled_from([d, str(d), int(d)] if d == int(d) else [d, str(d)]))
cst_times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2026, 6, 30)).map(
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
)
opt_time = st.none() | st.just("") | cst_times
epoch_ms = st.integers(1577836800000, 1782864000000)  # 2020 .. mid-2026
epoch_wire = epoch_ms.flatmap(lambda ms: st.sampled_from([ms, str(ms), ms // 1000, str(ms // 1000)]))
quantity = st.integers(0, 10**6).flatmap(lambda q: st.sampled_from([q, str(q)]))
text_or_null = st.none() | st.text(st.characters(codec="utf-8"), max_size=10)


def unique_by(key: str, elements: st.SearchStrategy, max_size: int = 3) -> st.SearchStrategy:
    return st.lists(elements, max_size=max_size, unique_by=lambda r: str(r[key]))


tb_line = st.fixed_dictionaries(
    {
        "subOrderId": ids("81"),
        "orderNo": ids("88"),
        "itemId": ids("6"),
        "skuId": ids("4") | st.none(),
        "title": text_or_null,
        "quantity": quantity,
        "purchaseAmount": money_wire,
        "purchaseCurrency": st.just("CNY"),
        "domesticPostFee": money_wire | st.none(),
        "status": st.sampled_from([None, 0, 4, 10, 11, 77]),
        "refundStatus": st.sampled_from([None, 0, 10, 20, 30, 100, -10, -20, 55]),
        "taobaoPurchaseId": ids("2"),
        "taobaoSubPurchaseId": ids("2"),
        "logisticNumber": st.none() | st.text("ABZ0123456789", min_size=1, max_size=12),
    }
)
valid_tb_order = st.fixed_dictionaries(
    {
        "id": ids("91"),
        "orderNo": ids("88"),
        "status": st.sampled_from([12, 0, 1, 2, 3, 4, 5, 9, 10, 11, 77, None]),
        "orderSource": text_or_null,
        "sellerOrderNumber": text_or_null,
        "purchaseAmount": money_wire | st.none(),
        "purchaseCurrency": st.just("CNY"),
        "domesticPostFee": money_wire | st.none(),
        "receiver": st.none()
        | st.just("")
        | st.dictionaries(st.sampled_from(["name", "city", "zip"]), text_or_null).map(
            lambda d: json.dumps(d, ensure_ascii=False)
        ),
        "createTime": cst_times,
        "payTime": opt_time,
        "updateTime": opt_time,
        "subOrderVOS": st.none() | unique_by("subOrderId", tb_line),
    }
)
garbage_tb_order = garbage(
    {
        "id": ids("91") | json_values,
        "status": json_values,
        "purchaseAmount": json_values,
        "receiver": json_values,
        "createTime": opt_time,
        "updateTime": opt_time,
        "subOrderVOS": st.lists(
            garbage(
                {
                    "subOrderId": ids("81"),
                    "quantity": quantity,
                    "purchaseAmount": money_wire,
                    "refundStatus": json_values,
                }
            ),
            max_size=3,
        ),
    }
)

al_item = st.fixed_dictionaries(
    {
        "subItemId": ids("82"),
        "productId": ids("6"),
        "skuId": ids("4") | st.none(),
        "name": text_or_null,
        "quantity": quantity,
        "price": money_wire,
        "itemAmount": money_wire | st.none(),
        "unit": st.just("个"),
        "status": st.sampled_from(["waitsellersend", "success", None]),
        "refundStatus": st.sampled_from([None, "waitselleragree", "refundsuccess", "mystery"]),
        "refundId": st.none() | st.from_regex(r"TQ[0-9]{6}", fullmatch=True),
        "logisticsStatus": st.integers(0, 5),
    }
)
valid_al_order = st.fixed_dictionaries(
    {
        "orderId": ids("92"),
        "webSite": st.just("1688"),
        "status": st.sampled_from(
            [
                "waitbuyerpay",
                "waitsellersend",
                "waitbuyerreceive",
                "confirm_goods",
                "success",
                "cancel",
                "terminated",
                "waitlogistics",
                None,
            ]
        ),
        "sellerLoginId": text_or_null,
        "currency": st.just("CNY"),
        "amounts": st.tuples(money, money).map(sorted),
        "createTime": cst_times,
        "payTime": opt_time,
        "modifyTime": opt_time,
        "productItems": st.none() | unique_by("subItemId", al_item),
    }
).map(
    lambda r: {
        **{k: v for k, v in r.items() if k != "amounts"},
        "shippingFee": str(r["amounts"][0]),
        "totalAmount": r["amounts"][1],
    }
)
garbage_al_order = garbage(
    {
        "orderId": ids("92") | json_values,
        "totalAmount": json_values,
        "shippingFee": json_values,
        "status": json_values,
        "modifyTime": opt_time,
        "productItems": st.lists(garbage({"subItemId": ids("82"), "itemAmount": money_wire}), max_size=3),
    }
)

valid_tb_refund = st.fixed_dictionaries(
    {
        "refundId": ids("93"),
        "orderId": ids("91"),
        "subOrderId": ids("81") | st.none(),
        "refundStatus": st.sampled_from([0, 10, 20, 30, 100, -10, -20, 999, None]),
        "refundFee": money_wire | st.none(),
        "currency": st.just("CNY"),
        "reasonDesc": text_or_null,
        "createTime": epoch_wire | st.just(0) | st.none(),
        "modifiedTime": epoch_wire | st.none(),
    }
)
garbage_tb_refund = garbage(
    {
        "refundId": ids("93") | json_values,
        "refundFee": json_values,
        "createTime": json_values,
        "modifiedTime": epoch_wire,
    }
)

valid_tb_refund_detail = st.fixed_dictionaries(
    {
        "currency": st.just("CNY"),
        "refundOrderAggregate": st.fixed_dictionaries(
            {
                "refundOrder": st.fixed_dictionaries(
                    {
                        "refundId": ids("94"),
                        "refundFee": money_wire,
                        "refundStatus": st.sampled_from([10, 20, 100, 7]),
                        "reasonDesc": text_or_null,
                    }
                ),
                "purchaseOrderLine": st.none()
                | st.fixed_dictionaries({"purchaseOrderLineId": ids("2"), "price": st.integers(0, 10**6)}),
            }
        ),
    }
)
garbage_tb_refund_detail = garbage(
    {
        "currency": json_values,
        "refundOrderAggregate": garbage(
            {
                "refundOrder": garbage({"refundId": ids("94"), "refundFee": money_wire, "createTime": epoch_wire}),
                "purchaseOrderLine": json_values,
            }
        ),
    }
)

valid_al_refund = st.fixed_dictionaries(
    {
        "refundId": st.from_regex(r"TQ95[0-9]{8}", fullmatch=True),
        "id": st.integers(1, 10**9),
        "orderId": ids("92"),
        "subItemId": ids("82"),
        "status": st.sampled_from(["waitselleragree", "refundsuccess", "refundclose", "odd", None]),
        "refundPayment": st.integers(0, 10**12).flatmap(lambda f: st.sampled_from([f, str(f)])) | st.none(),
        "createTime": cst_times,
        "updateTime": opt_time,
        "applyReason": text_or_null,
    }
)
garbage_al_refund = garbage(
    {"refundId": json_values, "id": json_values, "refundPayment": json_values, "createTime": opt_time}
)

tb_trace = st.fixed_dictionaries(
    {
        "time": opt_time,
        "status": st.sampled_from(["ACCEPT", "TRANSPORT", "SIGN", "FAILED", None]),
        "statusDesc": text_or_null,
        "city": text_or_null,
    }
)
tb_parcel = st.fixed_dictionaries(
    {
        "mailNo": st.from_regex(r"ZT96[0-9]{8}", fullmatch=True),
        "logisticsPartner": st.none() | st.lists(st.fixed_dictionaries({"company": text_or_null}), max_size=2),
        "logisticsTraces": st.none() | st.lists(tb_trace, max_size=4),
    }
)
valid_tb_logistics = st.fixed_dictionaries(
    {
        "purchaseOrderOuterId": ids("2"),
        "pnmLogisticsDetails": st.none() | unique_by("mailNo", tb_parcel),
    }
)
garbage_tb_logistics = garbage(
    {
        "purchaseOrderOuterId": json_values,
        "pnmLogisticsDetails": st.lists(
            garbage(
                {
                    "mailNo": json_values,
                    "logisticsPartner": json_values,
                    "logisticsTraces": st.lists(garbage({"time": opt_time}), max_size=3),
                }
            ),
            max_size=3,
        ),
    }
)

al_step = st.fixed_dictionaries({"acceptTime": opt_time, "remark": text_or_null})
al_trace = st.fixed_dictionaries(
    {
        "logisticsBillNo": st.from_regex(r"YT97[0-9]{8}", fullmatch=True),
        "logisticsCompanyName": text_or_null,
        "logisticsSteps": st.none() | st.lists(al_step, max_size=4),
    }
)
valid_al_logistics = st.fixed_dictionaries(
    {"orderId": ids("92"), "logisticsTrace": st.none() | unique_by("logisticsBillNo", al_trace)}
)
garbage_al_logistics = garbage(
    {
        "orderId": json_values,
        "logisticsTrace": st.lists(
            garbage(
                {
                    "logisticsBillNo": json_values,
                    "logisticsSteps": st.lists(garbage({"acceptTime": opt_time}), max_size=3),
                }
            ),
            max_size=3,
        ),
    }
)
