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

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories.strategies import (
    PROFILE,
    garbage_al_logistics,
    garbage_al_order,
    garbage_al_refund,
    garbage_tb_logistics,
    garbage_tb_order,
    garbage_tb_refund,
    garbage_tb_refund_detail,
    json_values,
    valid_al_logistics,
    valid_al_order,
    valid_al_refund,
    valid_tb_logistics,
    valid_tb_order,
    valid_tb_refund,
    valid_tb_refund_detail,
)
from tests.helpers import assert_fits_schemas, run_normalizer
from xport_etl import jsonutil
from xport_etl.normalize.registry import NORMALIZERS
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


def _norm_id(value) -> str:
    return str(value).strip()


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
    out = run_normalizer(endpoint, bodies)
    assert out.records == len(records)
    table = "refunds" if endpoint == "taobao_refunds" else "orders"
    id_col = "refund_id" if table == "refunds" else "order_id"
    for rec in valid:
        rid = _norm_id(rec[key])
        assert _count(out.tables.get(table, []), id_col, rid) == 1, (rid, out.rejects)
        if lines_field and rec[lines_field]:
            lines = [r for r in out.tables["order_lines"] if r["order_id"] == rid]
            assert sorted(r["line_id"] for r in lines) == sorted(_norm_id(s[line_key]) for s in rec[lines_field])
    assert_fits_schemas(out, every_column=False)


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
    out = run_normalizer(endpoint, pages)  # every data is an object: no page-level problem
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
    assert_fits_schemas(out, every_column=False)


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


ENDPOINTS = sorted(set(NORMALIZERS) - {"taobao_orders_legacy"})


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
        out = run_normalizer(endpoint, [(body, context)])
    except PageError:
        return
    assert_fits_schemas(out, every_column=False)
