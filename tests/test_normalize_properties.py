"""Property tests of every normaliser: arbitrary JSON never crashes them, valid records are never
lost, and whatever comes out always fits the staged Parquet schemas.

For each endpoint a window of pages is generated, mixing contract-conforming records (the
``valid_*`` strategies, ids drawn from their own namespace so that garbage never collides with
them) with garbage: dicts with the real field names and values of any JSON type (huge ints,
Decimals, NaN floats, strings with lone surrogates, nulls, lists, nested objects), and non-dicts.
The page bytes are produced as the API would (UTF-8 JSON), sometimes ASCII-escaped, sometimes with
lone surrogates encoded as invalid UTF-8. Then:

- the normaliser raises nothing (a well-formed envelope is never a page-level problem);
- every valid record's key is in the output exactly once, with its lines/events;
- every output table and the rejects convert with ``to_table`` to the declared Arrow schemas;
- a random envelope raises nothing but ``PageError``.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xport_etl import jsonutil
from xport_etl.load.staging import _normalizers
from xport_etl.normalize.pages import to_table
from xport_etl.normalize.values import (
    MAX_INT32,
    MAX_MONEY,
    PageError,
    RejectError,
    to_cst_time,
    to_epoch_ms_time,
    to_fen_money,
    to_id,
    to_int,
    to_money,
    to_quantity,
    to_text,
)
from xport_etl.schemas import ETL_REJECTS, STAGED_TABLES

NOW = datetime(2026, 7, 1)
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


# ---- pages


def serialise(envelope: dict, style: str) -> bytes:
    """Page bytes as served: UTF-8 JSON; lone surrogates as ``\\ud800`` escapes or invalid bytes."""
    if style == "ascii":
        return raw_json_ascii(envelope).encode("ascii")
    return jsonutil.dumps(envelope, floats="allow").encode("utf-8", "surrogatepass")


def _escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # a surrogate pair, as JSON writes it
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def raw_json_ascii(value) -> str:
    """``raw_json`` with every non-ASCII character escaped (non-ASCII only occurs inside strings)."""
    return "".join(c if c.isascii() else _escape(c) for c in jsonutil.dumps(value, floats="allow"))


def envelope(data) -> dict:
    return {"requestId": "r", "code": 200, "msg": "成功", "data": data}


def assert_fits_schemas(out) -> None:
    for table, rows in out.tables.items():
        to_table(rows, STAGED_TABLES[table].spec.arrow_schema())
    to_table(out.rejects, ETL_REJECTS.arrow_schema())


def _norm_id(value) -> str:
    return str(value).strip()


def _run(endpoint: str, pages: list[tuple[bytes, dict | None]]):
    fn = _normalizers()[endpoint]
    numbered = [(n, body, ctx) for n, (body, ctx) in enumerate(pages, start=1)]
    return fn(numbered, endpoint=endpoint, window_id="w", rejected_at=NOW)


def _count(rows: list[dict], column: str, value: str) -> int:
    return sum(1 for r in rows if r[column] == value)


# ---- list endpoints: valid records mixed with garbage on the same pages

LISTS = {
    # endpoint: (valid, garbage, id field, line list field, line id field)
    "taobao_orders": (valid_tb_order, garbage_tb_order, "id", "subOrderVOS", "subOrderId"),
    "alibaba_orders": (valid_al_order, garbage_al_order, "orderId", "productItems", "subItemId"),
    "taobao_refunds": (valid_tb_refund, garbage_tb_refund, "refundId", None, None),
}


def list_window(endpoint: str):
    valid, junk, key, _lines, _line_key = LISTS[endpoint]
    return st.tuples(
        st.lists(valid, max_size=4, unique_by=lambda r: _norm_id(r[key])),
        st.lists(junk, max_size=4),
        st.randoms(use_true_random=False),
        st.integers(1, 3),
        st.sampled_from(["utf8", "ascii"]),
    )


def check_list_window(endpoint: str, window) -> None:
    valid, junk, rnd, n_pages, style = window
    _v, _g, key, lines_field, line_key = LISTS[endpoint]
    valid_ids = {_norm_id(r[key]) for r in valid}
    # garbage never shares an id with a valid record (a duplicate would legitimately replace it)
    junk = [j for j in junk if not (isinstance(j, dict) and _norm_id(j.get(key)) in valid_ids)]
    records = valid + junk
    rnd.shuffle(records)
    pages = [records[i::n_pages] for i in range(n_pages)]
    bodies = [(serialise(envelope({"records": p, "total": len(records)}), style), None) for p in pages]
    out = _run(endpoint, bodies)
    assert out.records == len(records)
    table = "refunds" if endpoint == "taobao_refunds" else "orders"
    id_col = "refund_id" if table == "refunds" else "order_id"
    for rec in valid:
        rid = _norm_id(rec[key])
        assert _count(out.tables.get(table, []), id_col, rid) == 1, (rid, out.rejects)
        if lines_field and rec[lines_field]:
            lines = [r for r in out.tables["order_lines"] if r["order_id"] == rid]
            assert sorted(r["line_id"] for r in lines) == sorted(_norm_id(s[line_key]) for s in rec[lines_field])
    assert_fits_schemas(out)


@PROFILE
@given(list_window("taobao_orders"))
def test_taobao_orders_never_crash_and_never_lose_a_valid_record(window):
    check_list_window("taobao_orders", window)


@PROFILE
@given(list_window("alibaba_orders"))
def test_alibaba_orders_never_crash_and_never_lose_a_valid_record(window):
    check_list_window("alibaba_orders", window)


@PROFILE
@given(list_window("taobao_refunds"))
def test_taobao_refunds_never_crash_and_never_lose_a_valid_record(window):
    check_list_window("taobao_refunds", window)


# ---- detail endpoints: one answer per page

DETAILS = {
    "taobao_order_detail": (valid_tb_order, garbage_tb_order),
    "taobao_refund_detail": (valid_tb_refund_detail, garbage_tb_refund_detail),
    "alibaba_refunds": (valid_al_refund, garbage_al_refund),
    "taobao_logistics": (valid_tb_logistics, garbage_tb_logistics),
    "alibaba_logistics": (valid_al_logistics, garbage_al_logistics),
}


def detail_window(endpoint: str):
    valid, junk = DETAILS[endpoint]
    return st.tuples(
        st.lists(valid, max_size=3),
        st.lists(junk, max_size=3),
        st.randoms(use_true_random=False),
        st.sampled_from(["utf8", "ascii"]),
    )


def _expected_keys(endpoint: str, valid: list[dict]) -> tuple[str, list[str]]:
    """Which table and keys the valid answers must produce (each exactly once)."""
    if endpoint == "taobao_order_detail":
        return "orders", [_norm_id(d["id"]) for d in valid]
    if endpoint == "taobao_refund_detail":
        return "refunds", [_norm_id(d["refundOrderAggregate"]["refundOrder"]["refundId"]) for d in valid]
    if endpoint == "alibaba_refunds":
        return "refunds", [d["refundId"] for d in valid]
    field, number = (
        ("pnmLogisticsDetails", "mailNo") if endpoint == "taobao_logistics" else ("logisticsTrace", "logisticsBillNo")
    )
    return "parcels", [p[number] for d in valid for p in (d[field] or [])]


def check_detail_window(endpoint: str, window) -> None:
    valid, junk, rnd, style = window
    table, keys = _expected_keys(endpoint, valid)
    assume_unique = len(keys) == len(set(keys))
    if not assume_unique:  # the same parcel in two answers is merged (a documented dedupe)
        valid = valid[:1]
        table, keys = _expected_keys(endpoint, valid)
    answers = [(d, True) for d in valid] + [(d, False) for d in junk]
    rnd.shuffle(answers)
    pages = [
        (
            serialise(envelope(d), style),
            {"order_id": "1", "purchase_line_id": "2", "refund_id": None, "order_status": "success"} if ok else None,
        )
        for d, ok in answers
        if isinstance(d, dict)
    ]
    out = _run(endpoint, pages)  # every data is an object: no page-level problem
    column = {"refunds": "refund_id", "orders": "order_id"}.get(table, "tracking_number")
    rows = out.tables.get(table, [])
    for key in keys:
        # garbage may carry the same key (ids are drawn from text): then one of them wins
        assert _count(rows, column, key) == 1, (key, out.rejects)
    if table == "parcels":
        events = out.tables.get("parcel_events", [])
        for parcel in rows:
            mine = [e["event_index"] for e in events if e["tracking_number"] == parcel["tracking_number"]]
            assert sorted(mine) == list(range(parcel["event_count"]))
    assert_fits_schemas(out)


@PROFILE
@given(detail_window("taobao_order_detail"))
def test_taobao_order_detail_never_crashes_and_never_loses_a_valid_answer(window):
    check_detail_window("taobao_order_detail", window)


@PROFILE
@given(detail_window("taobao_refund_detail"))
def test_taobao_refund_detail_never_crashes_and_never_loses_a_valid_answer(window):
    check_detail_window("taobao_refund_detail", window)


@PROFILE
@given(detail_window("alibaba_refunds"))
def test_alibaba_refunds_never_crash_and_never_lose_a_valid_answer(window):
    check_detail_window("alibaba_refunds", window)


@PROFILE
@given(detail_window("taobao_logistics"))
def test_taobao_logistics_never_crashes_and_never_loses_a_valid_parcel(window):
    check_detail_window("taobao_logistics", window)


@PROFILE
@given(detail_window("alibaba_logistics"))
def test_alibaba_logistics_never_crashes_and_never_loses_a_valid_parcel(window):
    check_detail_window("alibaba_logistics", window)


# ---- scalar parsers: any JSON value gives a typed value or a RejectError, never anything else

PARSERS = [to_id, to_text, to_money, to_int, to_quantity, to_cst_time, to_epoch_ms_time, to_fen_money]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_scalar_parsers_raise_only_reject_error(value):
    for parse in PARSERS:
        try:
            parsed = parse(value, "f")
        except RejectError as exc:
            assert len(str(exc)) < 200  # the reason quotes the value, cut short
            continue
        if isinstance(parsed, Decimal):
            assert parsed == parsed.quantize(Decimal("0.01")) and 0 <= parsed <= MAX_MONEY
        if isinstance(parsed, int):
            assert abs(parsed) <= MAX_INT32


# ---- page-level: random envelopes and bytes raise PageError or nothing


ENDPOINTS = sorted(set(_normalizers()) - {"taobao_orders_legacy"})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ENDPOINTS),
    st.one_of(
        st.binary(max_size=40),
        json_values.map(lambda v: jsonutil.dumps(v, floats="allow").encode("utf-8", "surrogatepass")),
        st.fixed_dictionaries(
            {},
            optional={
                "code": json_values | st.just(200),
                "msg": json_values,
                "data": json_values
                | st.fixed_dictionaries({}, optional={"records": json_values | st.lists(json_values, max_size=3)}),
            },
        ).map(lambda v: jsonutil.dumps(v, floats="allow").encode("utf-8", "surrogatepass")),
    ),
    st.none()
    | st.dictionaries(st.sampled_from(["order_id", "purchase_line_id", "refund_id", "order_status"]), json_values),
)
def test_any_page_raises_nothing_but_page_error(endpoint, body, context):
    try:
        out = _run(endpoint, [(body, context)])
    except PageError:
        return
    assert_fits_schemas(out)
