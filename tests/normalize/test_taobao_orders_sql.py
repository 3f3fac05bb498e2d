"""The DuckDB normaliser of Taobao order pages against the Python reference (``normalize/taobao_orders.py``).

The two must give the same orders, order lines and rejects (reasons included), or the same
``PageError``, on every window: the bad-input corpus, hypothesis-generated windows of valid and
garbage records in every JSON shape, hand-made cases aimed at each SQL shape predicate, and
sandbox pages (the varied world and the plain one). The fast path must also really be taken: a
record outside the plain shapes goes alone to Python, its page stays in SQL, and on the varied
sandbox world at least 99% of the records are typed in SQL (on the plain world, all).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories.corpus import CASES
from tests.factories.corpus import pages as corpus_pages
from tests.factories.strategies import PROFILE, garbage_tb_order, valid_tb_order
from xport_etl import jsonutil
from xport_etl.extract.landing import read_manifest, read_pages
from xport_etl.normalize.pages import to_table
from xport_etl.normalize.taobao_orders import normalize_taobao_pages
from xport_etl.normalize.taobao_orders_chunks import feed_pages, feed_window
from xport_etl.normalize.taobao_orders_sql import TaobaoOrdersSql
from xport_etl.normalize.values import PageError
from xport_etl.schemas import ETL_REJECTS, FCT_ORDER_LINES, FCT_ORDERS

NOW = datetime(2026, 7, 1)
ENDPOINT = "taobao_orders"


def _schema(spec) -> pa.Schema:
    schema = spec.arrow_schema()
    return schema.remove(schema.get_field_index("extracted_at")) if "extracted_at" in schema.names else schema


def _sorted(table: pa.Table, spec) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in spec.key])


def _rejects(rows: list[dict]) -> list[tuple]:
    """Rejects and warnings, every column the normaliser decides."""
    return sorted(
        (r["page"], r["record_id"] or "", r["severity"], r["field"] or "", r["reason"], r["raw_json"]) for r in rows
    )


class Sql:
    """The SQL path's result in the reference's terms (Arrow tables per table, rejects)."""

    def __init__(self, pages, rejected_at: datetime = NOW, chunk_bytes: int | None = None, path: Path | None = None):
        self.con = duckdb.connect()
        self.norm = TaobaoOrdersSql(self.con, endpoint=ENDPOINT, window_id="w1", rejected_at=rejected_at)
        if path is not None:
            feed_window(self.norm, path, **({"chunk_bytes": chunk_bytes} if chunk_bytes else {}))
        else:
            feed_pages(self.norm, pages)
        self.norm.finish()

    def table(self, source: str, spec) -> pa.Table:
        source = {"out_orders": self.norm.out_orders, "out_lines": self.norm.out_lines}[source]
        schema = _schema(spec)
        return _sorted(
            self.con.sql(f"select {', '.join(schema.names)} from {source}").to_arrow_table().cast(schema), spec
        )


def assert_same(pages, rejected_at: datetime = NOW, **kwargs) -> Sql:
    """Both normalisers on the same window: equal tables and rejects, or the same page error."""
    pages = list(pages)
    try:
        ref = normalize_taobao_pages(iter(pages), endpoint=ENDPOINT, window_id="w1", rejected_at=rejected_at)
    except PageError as exc:
        with pytest.raises(PageError) as info:
            Sql(pages, rejected_at, **kwargs)
        assert str(info.value) == str(exc)
        return None
    sql = Sql(pages, rejected_at, **kwargs)
    for table, source, spec in (("orders", "out_orders", FCT_ORDERS), ("order_lines", "out_lines", FCT_ORDER_LINES)):
        want = _sorted(to_table(ref.tables.get(table, []), _schema(spec)), spec)
        got = sql.table(source, spec)
        assert got.num_rows == want.num_rows, (table, got.num_rows, want.num_rows)
        for name in want.schema.names:
            assert got.column(name).equals(want.column(name)), (table, name, got.column(name), want.column(name))
    assert _rejects(sql.norm.rejects) == _rejects(ref.rejects)
    to_table(sql.norm.rejects, ETL_REJECTS.arrow_schema())
    assert sql.norm.stats.records == ref.records
    return sql


def page(records, **envelope) -> bytes:
    body = {
        "requestId": "r",
        "code": 200,
        "msg": "ok",
        "data": {"records": records, "total": len(records), "size": 100, "current": 1, "pages": 1},
    }
    body.update(envelope)
    return jsonutil.dumps(body, floats="allow").encode("utf-8")


def order(oid="9100000000001", *, lines=1, **fields) -> dict:
    rec = {
        "id": oid,
        "orderNo": "8800000000001",
        "status": 11,
        "orderSource": "shopee",
        "sellerOrderNumber": "S1",
        "purchaseAmount": "10.50",
        "purchaseCurrency": "CNY",
        "domesticPostFee": 3,
        "receiver": json.dumps({"name": "张三", "city": "广州"}, ensure_ascii=False),
        "closeReason": None,
        "createTime": "2026-03-01 10:00:00",
        "payTime": "2026-03-01 10:05:00",
        "updateTime": "2026-03-02 08:00:00",
        "subOrderVOS": [
            {
                "subOrderId": f"{oid}{i}",
                "itemId": "6001",
                "skuId": None,
                "title": '杯子 "大"',
                "quantity": 2,
                "purchaseAmount": Decimal("5.25"),
                "purchaseCurrency": "CNY",
                "domesticPostFee": "1.5",
                "status": 11,
                "refundStatus": 0,
                "taobaoPurchaseId": "2001",
                "taobaoSubPurchaseId": f"200{i}",
                "logisticCompanyName": "中通",
                "logisticNumber": "ZT1",
            }
            for i in range(lines)
        ],
    }
    rec.update(fields)
    return rec


# ---- the corpus


@pytest.mark.parametrize("case", [c for c in CASES if c["endpoint"] == ENDPOINT], ids=lambda c: c["name"])
def test_corpus_case_gives_what_the_reference_gives(case):
    assert_same(corpus_pages(case))


# ---- plain pages take the fast path, and every shape predicate diverts what it must


def test_a_plain_page_is_typed_in_sql_and_never_reaches_python():
    sql = assert_same([(1, page([order("91001"), order("91002", lines=3)]), None)])
    assert (sql.norm.stats.fast_pages, sql.norm.stats.python_pages) == (1, 0)


# each: (what, record fields); every one must send its page to Python, and still equal the reference
DIVERTED = [
    ("money with three decimals as a string", {"purchaseAmount": "1.005"}),
    ("money with 17 significant digits", {"purchaseAmount": Decimal("10.5000000000000001")}),
    ("money with an exponent", {"purchaseAmount": "@@"}, "1.05E1"),
    ("money with an exponent that hides a third decimal", {"purchaseAmount": "@@"}, "1050000000000000001e-17"),
    ("negative money", {"purchaseAmount": "-1"}),
    ("money that is a bool", {"purchaseAmount": True}),
    ("money with spaces", {"purchaseAmount": " 10.50 "}),
    ("an id that is a float", {"id": Decimal("9100000000001.0")}),
    ("an id beyond 19 digits", {"id": 10**25}),
    ("an id with spaces", {"id": " 91001 "}),
    ("an empty id", {"id": ""}),
    ("an id after a tab", {"id": "\t91001"}),
    ("an id with a non-breaking space", {"orderNo": "88\u00a0"}),
    ("an id that starts with a non-ASCII letter", {"orderNo": "订88"}),
    ("a missing id", {"id": None}),
    ("text that is a number", {"orderSource": Decimal("12.50")}),
    ("text that is an object", {"closeReason": {"a": 1}}),
    ("a status that is text", {"status": "eleven"}),
    ("a status beyond INTEGER", {"status": 2**31}),
    ("a time with a T", {"createTime": "2026-03-01T10:00:00"}),
    ("an impossible date", {"payTime": "2026-02-30 10:00:00"}),
    ("a leap second", {"payTime": "2026-02-28 23:59:60"}),
    ("year one", {"payTime": "0001-01-01 00:00:00"}),
    ("a time in the future", {"updateTime": "2027-01-01 00:00:00"}),
    ("a receiver that is not JSON", {"receiver": "{not json"}),
    ("a receiver that is a JSON list", {"receiver": "[1, 2]"}),
    ("a receiver that is a number", {"receiver": 5}),
    ("subOrderVOS as an object", {"subOrderVOS": {"subOrderId": "1"}}),
    ("subOrderVOS as null", {"subOrderVOS": None}),
    ("a sub-order that is not an object", {"subOrderVOS": [5]}),
    ("a sub-order without an id", {"subOrderVOS": [{"quantity": 1}]}),
    ("a repeated sub-order id", {"subOrderVOS": [{"subOrderId": "7"}, {"subOrderId": "7"}]}),
    ("a negative quantity", {"subOrderVOS": [{"subOrderId": "7", "quantity": -1}]}),
    ("a NUL in a title", {"subOrderVOS": [{"subOrderId": "7", "title": "a\x00b"}]}),
    ("a lone surrogate", {"closeReason": "@@"}, r'"\ud800"'),
    ("an escaped NUL", {"closeReason": "@@"}, r'"a\u0000"'),
    # number literals a double may not hold: caught by the page guard or by the value's shape
    ("an exponent before a space", {"purchaseAmount": "@@"}, "1.05E1 "),
    ("money with 16 digits before the point", {"purchaseAmount": Decimal("1234567890123456.5")}),
    ("an id with 16 digits and a fraction", {"id": Decimal("1234567890123456.0")}),
]


@pytest.mark.parametrize("case", DIVERTED, ids=[d[0] for d in DIVERTED])
def test_a_record_outside_the_plain_shapes_goes_alone_to_python_and_comes_out_the_same(case):
    what, fields, *raw = case
    body = page([order("91000"), order("91002", **fields), order("91003")])
    if raw:  # a literal json.dumps cannot write, put into the JSON text as is
        body = body.replace(b'"@@"', raw[0].encode())
    sql = assert_same([(1, body, None)])
    stats = sql.norm.stats
    if what in WHOLE_PAGE:  # DuckDB cannot read the page at all
        assert (stats.python_pages, stats.python_records, stats.fast_records) == (1, 3, 0), (what, stats)
    elif what in WARNED_IN_SQL:  # a lenient field: the record loads with a warning, typed in SQL
        assert (stats.python_pages, stats.python_records, stats.fast_records) == (0, 0, 3), (what, stats)
        assert [r["severity"] for r in sql.norm.rejects] == ["warning"]
    else:
        assert (stats.python_pages, stats.python_records, stats.fast_records) == (0, 1, 2), (what, stats)


WHOLE_PAGE = {"a lone surrogate"}
WARNED_IN_SQL = {
    "text that is an object",
    "a receiver that is not JSON",
    "a receiver that is a JSON list",
    "a receiver that is a number",
}


@pytest.mark.parametrize("oid", [" 91001 ", "\t91001", 91001])
def test_a_record_whose_id_the_reference_reads_as_a_fast_records_id_sends_the_page_whole(oid):
    """The same id twice in one page is a page matter (the older copy is rejected): an id outside
    the shapes that the reference reads as another record's id takes the page with it."""
    body = page([order("91001", updateTime="2026-03-03 08:00:00"), order(oid), order("91003")])
    sql = assert_same([(1, body, None)])
    assert sql.norm.stats.python_pages == (0 if oid == 91001 else 1)


# fields no public column is defined from (the lenient fields): the record stays in SQL, the
# reference's own reader of the field gives the warning, exactly as the reference would, and the
# record loads
WARNED = [
    ("receiver", {"receiver": "{not json"}, "receiver", "{not json"),
    ("closeReason", {"closeReason": {"a": 1}}, "closeReason", {"a": 1}),
    (
        "a line's logisticNumber",
        {"subOrderVOS": [{"subOrderId": "7", "logisticNumber": {"no": "ZT1"}}]},
        "subOrderVOS[0].logisticNumber",
        {"no": "ZT1"},
    ),
    (
        "a line's status",
        {"subOrderVOS": [{"subOrderId": "7", "status": "shipped"}]},
        "subOrderVOS[0].status",
        "shipped",
    ),
]


@pytest.mark.parametrize("case", WARNED, ids=[w[0] for w in WARNED])
def test_a_warned_field_keeps_its_record_in_sql_and_it_loads_with_the_reference_warning(case):
    _what, fields, name, value = case
    sql = assert_same([(1, page([order("91001"), order("91002", **fields)]), None)])
    stats = sql.norm.stats
    assert (stats.python_pages, stats.python_records, stats.fast_records) == (0, 0, 2)
    assert sorted(sql.table("out_orders", FCT_ORDERS).column("order_id").to_pylist()) == ["91001", "91002"]
    (warning,) = sql.norm.rejects
    assert (warning["severity"], warning["field"], json.loads(warning["raw_json"])) == ("warning", name, value)
    assert warning["record_id"] == ("91002/7" if name.startswith("subOrderVOS") else "91002")


# values written with escapes: the shapes read a value as DuckDB re-serialises it (escapes
# that JSON does not need are gone), so either path may take them; both give the same rows
ESCAPED = [
    ("an id", {"orderNo": "@@"}, r'"\u0038\u0038"'),
    ("an id with an escaped quote", {"orderNo": "@@"}, r'"8\"8"'),
    ("an id that ends in a backslash", {"orderNo": "@@"}, r'"88\\"'),
    ("money", {"purchaseAmount": "@@"}, r'"1\u0030.50"'),
    ("a status", {"status": "@@"}, r'"\u0031\u0031"'),
    ("a time", {"createTime": "@@"}, r'"2026-03-01\u002010:00:00"'),
    ("a time with an escaped tab", {"createTime": "@@"}, r'"2026-03-01\t10:00:00"'),
]


@pytest.mark.parametrize("case", ESCAPED, ids=[d[0] for d in ESCAPED])
def test_values_written_with_escapes_come_out_as_in_the_reference(case):
    what, fields, raw = case
    body = page([order("91001"), order("91002", **fields)]).replace(b'"@@"', raw.encode())
    assert_same([(1, body, None)])


def test_text_that_only_looks_like_an_inexact_number_keeps_the_page_plain():
    # the page guard's quick scan finds ".2345" and "e5," but inside strings, not as numbers
    body = page([order("91001", closeReason="v1.2345", orderSource="x1e5, y")])
    sql = assert_same([(1, body, None)])
    assert (sql.norm.stats.fast_pages, sql.norm.stats.python_pages) == (1, 0)


def test_a_repeated_member_name_keeps_the_first_in_both_paths():
    text = page([order("91001")]).decode()
    text = text.replace('"status": 11', '"status": 11, "status": 4', 1).replace(
        '"code": 200', '"code": 200, "code": 500', 1
    )
    text = text.replace('"quantity": 2', '"quantity": 2, "quantity": 7', 1)
    sql = assert_same([(1, text.encode(), None)])
    assert (sql.norm.stats.fast_pages, sql.norm.stats.python_pages) == (1, 0)
    assert sql.table("out_orders", FCT_ORDERS).column("status").to_pylist() == ["shipped"]
    assert sql.table("out_lines", FCT_ORDER_LINES).column("quantity").to_pylist() == [2]


# lenient values outside their plain shape: the field's reader decides. A value it refuses is a
# warning with the record in SQL; a value it reads fills a column, so the record goes to the
# reference; a number DuckDB re-wrote (12.50 → 12.5) is not the literal served, so it goes too
LENIENT = [  # (what, fields, records for the reference, warnings)
    ("a closeReason beyond 18 digits reads as text", {"closeReason": 10**20}, 1, 0),
    ("a closeReason object holding a fraction", {"closeReason": {"a": Decimal("1.50")}}, 1, 1),
    ("a receiver that is a number with a fraction", {"receiver": Decimal("12.50")}, 1, 1),
    ("a receiver of blanks reads as null", {"receiver": "   "}, 0, 0),
    ("a receiver with blanks around its object", {"receiver": ' {"a": 1} '}, 0, 0),
    ("a receiver holding nan", {"receiver": '{"a": nan}'}, 0, 1),
    ("a receiver holding -Inf", {"receiver": '{"a": -Inf}'}, 0, 1),
    ("a receiver holding NaN, which Python reads", {"receiver": '{"a": NaN}'}, 0, 0),
    ("a receiver that is true", {"receiver": True}, 0, 1),
    ("a line status beyond INTEGER", {"subOrderVOS": [{"subOrderId": "7", "status": 2**31}]}, 0, 1),
    ("a line status with blanks reads as a code", {"subOrderVOS": [{"subOrderId": "7", "status": " 12 "}]}, 1, 0),
    (
        "a line status and a carrier both refused",
        {"subOrderVOS": [{"subOrderId": "7", "status": "x", "logisticCompanyName": [1]}]},
        0,
        2,
    ),
    (
        "a refused carrier beside a status that reads",
        {"subOrderVOS": [{"subOrderId": "7", "status": " 2", "logisticCompanyName": [1]}]},
        1,
        1,
    ),
    (
        "a refused receiver and a refused line status",
        {"receiver": "{x", "subOrderVOS": [{"subOrderId": "7", "status": "x"}, {"subOrderId": "8"}]},
        0,
        2,
    ),
]


@pytest.mark.parametrize("case", LENIENT, ids=[c[0] for c in LENIENT])
def test_a_lenient_value_is_read_by_the_reference_reader_of_its_field(case):
    _what, fields, python_records, warnings = case
    sql = assert_same([(1, page([order("91001"), order("91002", **fields)]), None)])
    stats = sql.norm.stats
    assert (stats.python_pages, stats.python_records, stats.parsed_pages) == (0, python_records, 0), stats
    assert [r["severity"] for r in sql.norm.rejects] == ["warning"] * warnings


def test_a_trailing_comma_sends_its_page_to_the_reference_which_fails_the_window():
    """DuckDB's JSON reader allows a comma before a closing bracket, the reference does not: the
    page is not JSON, and the window fails in both (SQL alone would have loaded it)."""
    body = page([order("91001"), order("91002")]).replace(b"}]}]", b"},]}]", 1)
    assert b",]" in body
    with pytest.raises(PageError, match="not valid JSON"):
        Sql([(1, body, None)])
    assert_same([(1, body, None)])


def test_a_trailing_comma_inside_a_string_only_costs_the_page_a_parse():
    sql = assert_same([(1, page([order("91001", closeReason="a, ]"), order("91002")]), None)])
    assert (sql.norm.stats.python_pages, sql.norm.stats.fast_records) == (1, 0)


# ---- a record for the reference costs its own parse, not its page's


def test_a_reference_record_is_parsed_alone_from_its_exact_text():
    """The other records of its page stay typed in SQL, and the reference reads the odd record
    from its own text, number literals as served (the reject keeps 3.50, not 3.5)."""
    odd = order("91002", purchaseAmount="12.5O", domesticPostFee=Decimal("3.50"))
    sql = assert_same([(1, page([order("91001"), odd, order("91003")]), None)])
    stats = sql.norm.stats
    assert (stats.parsed_pages, stats.python_records, stats.fast_records) == (0, 1, 2), stats
    (reject,) = sql.norm.rejects
    assert '"domesticPostFee":3.50' in reject["raw_json"].replace(" ", "")


# pages whose records, cut out of the page one by one, might not read as the page parsed whole
# does: the page is parsed whole, and both paths still agree
WHOLE_PARSE = [
    ("a NaN in a field no column reads", {"warehouseName": "@@"}, "NaN"),
    ("an integer beyond int()'s digits elsewhere in the page", {"warehouseName": "@@"}, "9" * 4400),
]


@pytest.mark.parametrize("case", WHOLE_PARSE, ids=[c[0] for c in WHOLE_PARSE])
def test_a_page_that_may_not_cut_into_records_is_parsed_whole_once(case):
    _what, fields, raw = case
    # the odd record's orderNo has 4100 digits: an int alone, a Decimal when the page is read again
    # with the rules for integers beyond int()'s limit (the last case); a reject either way
    odd = order("91002", orderNo="@@1")
    body = page([order("91001"), odd, order("91003", **fields)]).replace(b'"@@1"', b"9" * 4100)
    if raw is not None:
        body = body.replace(b'"@@"', raw.encode())
    sql = assert_same([(1, body, None)])
    assert (sql.norm.stats.parsed_pages, sql.norm.stats.python_pages) == (1, 0), sql.norm.stats


def _records(amount: str) -> list[dict]:
    """Three orders, the second one for the reference (its amount is not money)."""
    return [order("91001"), order("91002", purchaseAmount=amount), order("91003")]


# the envelope names data or records twice (msgspec keeps the last, the reference and DuckDB the
# first), or spells a name with an escape: cut out of the last, the odd record would be another
ENVELOPE_TWICE = [
    ("a second data member", lambda other: b',"data":{"records":' + other + b"}}"),
    ("a second data member spelled with an escape", lambda other: b',"d\\u0061ta":{"records":' + other + b"}}"),
    ("a second records member in data", None),
]


@pytest.mark.parametrize("case", ENVELOPE_TWICE, ids=[c[0] for c in ENVELOPE_TWICE])
def test_an_envelope_naming_data_or_records_twice_is_parsed_whole(case):
    _what, tail = case
    body = page(_records("12.5O"))
    other = jsonutil.dumps(_records("99.5O")).encode()
    if tail is None:
        body = body.replace(b'"total":', b'"records":' + other + b',"total":', 1)
    else:
        body = body[:-1] + tail(other)
    sql = assert_same([(1, body, None)])
    assert (sql.norm.stats.parsed_pages, sql.norm.stats.python_records) == (1, 1), sql.norm.stats
    (reject,) = sql.norm.rejects
    assert "12.5O" in reject["raw_json"]


# what records hold reads the same in a record cut alone as in its page: the page is not parsed
CUT_ANYWAY = [
    ("a member named data in a record", {"data": 1}, None),
    ("a second records member in a record", {"records": []}, None),
    ("an escape in another record", {"sellerOrderNumber": "@@"}, r'"S\u0031"'),
    ("a surrogate pair in another record", {"sellerOrderNumber": "@@"}, r'"S\ud83d\ude00"'),
]


@pytest.mark.parametrize("case", CUT_ANYWAY, ids=[c[0] for c in CUT_ANYWAY])
def test_names_and_escapes_inside_records_do_not_make_the_page_parse_whole(case):
    _what, fields, raw = case
    records = _records("12.5O")
    records[2].update(fields)
    body = page(records)
    if raw is not None:
        body = body.replace(b'"@@"', raw.encode())
    sql = assert_same([(1, body, None)])
    assert (sql.norm.stats.parsed_pages, sql.norm.stats.python_records) == (0, 1), sql.norm.stats


def test_an_escape_in_the_record_for_the_reference_is_read_from_its_own_text():
    """A surrogate pair and an escaped character in the odd record itself: read alone, as in its page."""
    odd = order("91002", purchaseAmount="12.5O", sellerOrderNumber="@@", closeReason="@@2")
    body = page([order("91001"), odd]).replace(b'"@@"', rb'"\ud83d\ude00"').replace(b'"@@2"', rb'"a\u0062"')
    sql = assert_same([(1, body, None)])
    assert (sql.norm.stats.parsed_pages, sql.norm.stats.python_records) == (0, 1), sql.norm.stats


def test_bytes_that_are_not_utf8_go_to_python_in_page_order():
    bad = page([order("91003", closeReason="MARK")]).replace(b"MARK", b"\xff\xfe")
    sql = assert_same([(1, page([order("91001")]), None), (2, bad, None), (3, page([order("91002")]), None)])
    assert (sql.norm.stats.fast_pages, sql.norm.stats.python_pages) == (2, 1)


@pytest.mark.parametrize(
    "envelope",
    [
        {"code": 500},
        {"code": "200"},
        {"data": None},
        {"data": [1]},
        {"data": {"records": {"a": 1}}},
        {"data": {"records": None}},
        {"data": {}},
    ],
)
def test_envelopes_fail_or_pass_as_in_the_reference(envelope):
    assert_same([(1, page([order("91001")]), None), (2, page([order("91002")], **envelope), None)])


def test_a_page_that_is_not_json_fails_the_window_with_the_reference_message():
    assert_same([(1, page([order("91001")]), None), (2, b'{"code": 200, "data": {"records": [', None)])


def test_versions_across_pages_latest_wins_ties_first_nulls_oldest():
    t = "2026-03-0{} 08:00:00".format
    pages = [
        (1, page([order("1", updateTime=t(2)), order("2", updateTime=None), order("3", updateTime=t(5))]), None),
        (
            2,
            page(
                [
                    order("1", updateTime=t(4), status=4),
                    order("2", updateTime=t(1)),
                    order("3", updateTime=t(5), status=2),
                ]
            ),
            None,
        ),
        (3, page([order("1", updateTime=t(3)), order("2", updateTime=None)]), None),
    ]
    sql = assert_same(pages)
    got = {r["order_id"]: r["status"] for r in sql.table("out_orders", FCT_ORDERS).to_pylist()}
    assert got == {"1": "cancelled", "2": "shipped", "3": "shipped"}  # 1: page 2; 3: tie → page 1


def test_the_same_id_twice_in_a_page_goes_to_python_which_rejects_the_older_copy():
    t = "2026-03-0{} 08:00:00".format
    pages = [
        (1, page([order("1", updateTime=t(5))]), None),
        (2, page([order("1", updateTime=t(3)), order("2"), order("1", updateTime=t(7), status=4)]), None),
    ]
    sql = assert_same(pages)
    assert sql.norm.stats.reasons == {"record": 2}  # both copies, alone; order 2 stays fast
    assert (sql.norm.stats.python_pages, sql.norm.stats.fast_records) == (0, 2)
    assert [r["reason"] for r in sql.norm.rejects] == ["duplicate id within one page; kept the later version"]
    assert sql.table("out_orders", FCT_ORDERS).column("status").to_pylist() == ["cancelled", "shipped"]


def test_the_reference_keeps_a_page_twin_newer_than_an_earlier_pages_version():
    """page 1 has v5; page 2 has v3 then v7 of the same order: v7 wins (the twin v3 lost to v5)."""
    t = "2026-03-0{} 08:00:00".format
    pages = [
        (1, page([order("1", updateTime=t(5))]), None),
        (2, page([order("1", updateTime=t(3)), order("1", updateTime=t(7), status=4)]), None),
    ]
    ref = normalize_taobao_pages(iter(pages), endpoint=ENDPOINT, window_id="w1", rejected_at=NOW)
    assert [o["status"] for o in ref.tables["orders"]] == ["cancelled"]


def test_empty_pages_and_orders_without_lines():
    assert_same([(1, page([]), None), (2, page([order("1", subOrderVOS=[])]), None)])


def test_chunks_split_anywhere_give_the_same_window(tmp_path):
    import gzip

    pages = [(n, page([order(f"9{n}{i}", lines=i % 3) for i in range(5)]), None) for n in range(1, 8)]
    path = tmp_path
    with gzip.open(tmp_path / "pages.jsonl.gz", "wb") as f:
        for _, body, _ctx in pages:
            f.write(body + b"\n")
    whole = assert_same(pages)
    for chunk_bytes in (100, 2000, 10**6):
        split = Sql(None, path=path, chunk_bytes=chunk_bytes)
        for source, spec in (("out_orders", FCT_ORDERS), ("out_lines", FCT_ORDER_LINES)):
            assert split.table(source, spec).equals(whole.table(source, spec)), chunk_bytes
        assert split.norm.stats.pages == 7


def _landed(path: Path, pages) -> Path:
    import gzip

    with gzip.open(path / "pages.jsonl.gz", "wb") as f:
        for _, body, _ctx in pages:
            f.write(body + b"\n")
    return path


def _on_threads(path: Path, data_dir: Path, chunk_bytes: int, workers: int = 3):
    """The window fed on ``workers`` threads at once (``SharedStaging.run``): its tables, rejects, counts."""
    from xport_etl.load.staging import SharedStaging

    with SharedStaging(data_dir, workers=workers) as shared:
        con = shared.cursor()
        norm = TaobaoOrdersSql(con, endpoint=ENDPOINT, window_id="w1", rejected_at=NOW)
        try:
            feed_window(norm, path, chunk_bytes=chunk_bytes, run=shared.run)
            norm.finish()
            tables = {
                source: _sorted(
                    con.sql(f"select {', '.join(_schema(spec).names)} from {name}")
                    .to_arrow_table()
                    .cast(_schema(spec)),
                    spec,
                )
                for source, name, spec in (
                    ("out_orders", norm.out_orders, FCT_ORDERS),
                    ("out_lines", norm.out_lines, FCT_ORDER_LINES),
                )
            }
            return tables, norm.rejects, norm.stats
        finally:
            norm.drop()
            con.close()


def test_a_window_fed_on_several_threads_is_the_window_fed_in_order(tmp_path):
    """One window's chunks typed on three threads at once (a year landed as one window is staged
    on every core): the same rows, rejects (in the same order), warnings and counts as the chunks
    fed one after another, which equal the reference; versions of an order in different chunks
    still give the latest, and a page that is not UTF-8 still goes to Python in its place."""
    from xport_sandbox.server import dumps
    from xport_sandbox.world import World, WorldConfig

    world = World(WorldConfig(seed=20, orders=1500, mix="odd5"))
    t = "2026-03-0{} 08:00:00".format
    pages = [(n, dumps({"code": 200, "data": {"records": world.taobao_page(n, 40)[1]}}), None) for n in range(1, 9)]
    pages.append((9, page([order("1", updateTime=t(2)), order("2", updateTime=t(5))]), None))
    pages.append((10, page([order("3", closeReason="MARK")]).replace(b"MARK", b"\xff\xfe"), None))
    pages.append((11, page([order("1", updateTime=t(4), status=4), order("2", updateTime=t(3))]), None))
    path = _landed(tmp_path, pages)
    sequential = assert_same(pages)
    in_order = Sql(None, path=path, chunk_bytes=60_000)
    tables, rejects, stats = _on_threads(path, tmp_path / "data", chunk_bytes=60_000)
    assert stats.pages == 11 and stats.python_pages == 1 and stats.fast_records > 300
    assert stats == in_order.norm.stats
    assert rejects == in_order.norm.rejects and _rejects(rejects) == _rejects(sequential.norm.rejects)
    for source, spec in (("out_orders", FCT_ORDERS), ("out_lines", FCT_ORDER_LINES)):
        assert tables[source].equals(sequential.table(source, spec))
        assert tables[source].equals(in_order.table(source, spec))


def test_a_window_fed_on_several_threads_fails_with_the_first_failing_page_as_in_order(tmp_path):
    pages = [(n, page([order(f"9{n}")]), None) for n in range(1, 9)]
    pages[2] = (3, page([order("93")], code=500), None)
    pages[5] = (6, b'{"code": 200, "data": {"records": [', None)
    path = _landed(tmp_path, pages)
    with pytest.raises(PageError) as want:
        normalize_taobao_pages(iter(pages), endpoint=ENDPOINT, window_id="w1", rejected_at=NOW)
    for _ in range(3):  # whichever thread gets which chunk first
        with pytest.raises(PageError) as got:
            _on_threads(path, tmp_path / "data", chunk_bytes=100)
        assert str(got.value) == str(want.value) and "envelope code 500" in str(got.value)


@pytest.mark.parametrize("read_bytes", [1, 7, 4096])
@pytest.mark.parametrize("chunk_bytes", [1, 30, 10**6])
@pytest.mark.parametrize("final_newline", [True, False])
def test_chunks_hold_whole_lines_in_order_numbered_from_one(
    tmp_path, monkeypatch, read_bytes, chunk_bytes, final_newline
):
    import gzip

    from xport_etl.normalize import taobao_orders_chunks as chunks_module

    monkeypatch.setattr(chunks_module, "READ_BYTES", read_bytes)
    lines = [b"a", b"", b"x" * 100, b"bc", b"d" * 31]  # one line longer than a chunk, one empty
    body = b"\n".join(lines) + (b"\n" if final_newline else b"")
    with gzip.open(tmp_path / "pages.jsonl.gz", "wb") as f:
        f.write(body)
    chunks = [(first, bytes(data)) for first, data in chunks_module.iter_chunks(tmp_path, chunk_bytes)]
    assert b"".join(data for _, data in chunks) == b"\n".join(lines) + b"\n"
    expected_first = 1
    for first, data in chunks:
        assert data.endswith(b"\n") and first == expected_first
        expected_first += data.count(b"\n")
    assert expected_first == len(lines) + 1


def test_a_chunk_is_a_view_released_when_the_next_is_read(tmp_path):
    """The reader reuses one buffer: a chunk kept past the next one must fail loudly, never show
    the next chunk's bytes."""
    import gzip

    from xport_etl.normalize.taobao_orders_chunks import iter_chunks

    with gzip.open(tmp_path / "pages.jsonl.gz", "wb") as f:
        f.write(b"".join(b"page %d\n" % i for i in range(20)))
    chunks = iter_chunks(tmp_path, 30)
    _, first = next(chunks)
    assert bytes(first).startswith(b"page 0\n")
    next(chunks)
    with pytest.raises(ValueError, match="released"):
        bytes(first)


# ---- generated windows


@pytest.mark.slow  # hypothesis: a DuckDB normaliser per generated window
@PROFILE
@given(st.lists(st.lists(valid_tb_order | garbage_tb_order, max_size=6), min_size=1, max_size=4), st.booleans())
def test_generated_windows_match_the_reference(window, ascii_):
    pages = [
        (
            n,
            jsonutil.dumps({"code": 200, "data": {"records": records}}, floats="allow").encode(
                "utf-8", "surrogatepass"
            ),
            None,
        )
        for n, records in enumerate(window, start=1)
    ]
    if ascii_:
        pages = [
            (
                n,
                json.dumps(
                    json.loads(body.decode("utf-8", "surrogatepass"), parse_float=Decimal), default=str
                ).encode(),
                ctx,
            )
            for n, body, ctx in pages
        ]
    assert_same(pages)


@pytest.mark.slow  # hypothesis: a DuckDB normaliser per generated window
@settings(PROFILE, max_examples=40)
@given(st.lists(valid_tb_order, min_size=1, max_size=8))
def test_generated_valid_orders_mostly_take_the_fast_path(records):
    ids = [str(r["id"]) for r in records]
    body = jsonutil.dumps({"code": 200, "data": {"records": records}}, floats="allow").encode()
    sql = assert_same([(1, body, None)])
    stats = sql.norm.stats
    if len(set(ids)) == len(ids) and all(_plain(r) for r in records):
        assert stats.python_records == 0, records
    text = json.dumps(records, default=str, ensure_ascii=False)
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # (DuckDB cannot read a lone surrogate)
        assert stats.python_pages == 0, records  # the records outside the shapes went alone


def _plain(rec: dict) -> bool:
    """What the generator can produce that is valid but deliberately not fast: text that is not a
    string (hypothesis draws only strings, so none), a receiver string that is not a JSON object,
    NUL characters, lone surrogates, orders without lines."""
    text = json.dumps(rec, default=str, ensure_ascii=False)
    return (
        rec.get("subOrderVOS") is not None
        and "\\u0000" not in text
        and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        and "\x00" not in text
    )


# ---- sandbox pages


def _land(tmp_path_factory, config):
    from xport_etl.run.paging import extract_window
    from xport_etl.settings import Settings
    from xport_sandbox.testing import SandboxServer

    data = tmp_path_factory.mktemp("sandbox")
    with SandboxServer(config, rate_limit=None) as sandbox:
        settings_ = Settings(base_url=sandbox.base_url, data_dir=data, rate_limit=0)
        start, end = sandbox.world.config.start, sandbox.world.clock + timedelta(days=30)
        manifest = extract_window(settings_, ENDPOINT, start, end)
    return read_manifest(manifest)


@pytest.fixture(scope="module")
def landed_sandbox_window(tmp_path_factory):
    """The default (varied) world: every value form docs/api-contract.md#3-data-conventions allows,
    warnings and rejects."""
    from xport_sandbox.world import WorldConfig

    return _land(tmp_path_factory, WorldConfig(seed=5, orders=3000))


@pytest.fixture(scope="module")
def landed_plain_window(tmp_path_factory):
    from xport_sandbox.world import WorldConfig

    return _land(tmp_path_factory, WorldConfig(seed=5, orders=1500, variety=False))


def test_varied_sandbox_pages_match_the_reference_with_99_percent_on_the_fast_path(landed_sandbox_window):
    m = landed_sandbox_window
    sql = assert_same(list(read_pages(m.directory)))
    stats = sql.norm.stats
    assert stats.python_pages == 0 and stats.parsed_pages == 0 and stats.pages > 25
    assert stats.fast_share >= 0.99, stats
    severities = {r["severity"] for r in sql.norm.rejects}
    assert severities == {"warning", "rejected"}, "the varied world serves both"
    assert stats.fast_records + stats.python_records == stats.records
    streamed = Sql(None, path=m.directory, chunk_bytes=50_000)
    assert streamed.table("out_lines", FCT_ORDER_LINES).equals(sql.table("out_lines", FCT_ORDER_LINES))
    assert _rejects(streamed.norm.rejects) == _rejects(sql.norm.rejects)


def test_plain_sandbox_pages_all_take_the_fast_path_and_match_the_reference(landed_plain_window):
    m = landed_plain_window
    sql = assert_same(list(read_pages(m.directory)))
    assert sql.norm.stats.python_records == 0 and sql.norm.stats.fast_pages == sql.norm.stats.pages > 5


@pytest.mark.parametrize("mix", ["varied", "odd2", "odd5"])
def test_each_mix_of_odd_records_matches_the_reference_and_only_its_corrupt_records_leave_sql(mix):
    """The benchmarks' worlds (``WorldConfig.mix``: ~0.4%, ~2%, ~5% of the records with a
    warning or a reject), eight pages each as the sandbox serves them: identical results; the
    undecodable receivers load with their warning in SQL; only the corrupt copies (and the good
    twin beside one that repeats its id) go to the reference, each parsed alone."""
    from xport_sandbox.server import dumps
    from xport_sandbox.world import World, WorldConfig

    world = World(WorldConfig(seed=20, orders=1500, mix=mix))  # seed 20: null ids among odd2's and odd5's
    pages, corrupt, null_ids = [], 0, 0
    for n in range(1, 9):
        _total, records = world.taobao_page(n, 100)
        for k, rec in enumerate(records):
            if k and (rec["id"] is None or str(rec["id"]) == str(records[k - 1]["id"])):
                corrupt += 1 if rec["id"] is None else 2
                null_ids += rec["id"] is None
        pages.append((n, dumps({"requestId": "r", "code": 200, "msg": "ok", "data": {"records": records}}), None))
    sql = assert_same(pages)
    stats = sql.norm.stats
    assert (stats.python_records, stats.parsed_pages, stats.python_pages) == (corrupt, 0, 0), stats
    assert any(r["severity"] == "warning" and r["field"] == "receiver" for r in sql.norm.rejects)
    assert corrupt and bool(null_ids) == (mix != "varied")
