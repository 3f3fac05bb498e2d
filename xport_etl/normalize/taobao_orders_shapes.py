"""The SQL side of the Taobao order fast path (:mod:`xport_etl.normalize.taobao_orders_sql`): the
fields it reads as raw JSON, the page-text patterns that send records to the reference, and the
shape macros and typed column expressions that decide, record by record, what SQL may type.

Each shape is narrower than the Python rule of the same name in :mod:`xport_etl.normalize.values`.
"""

from __future__ import annotations

import json
import threading
import weakref

from xport_etl.normalize.taobao_orders import LINE_LENIENT, ORDER_LENIENT, TAOBAO_ORDER_STATUS
from xport_etl.normalize.values import TAOBAO_REFUND_STATUS

ORDER_FIELDS = (
    "id",
    "orderNo",
    "status",
    "orderSource",
    "sellerOrderNumber",
    "purchaseAmount",
    "purchaseCurrency",
    "domesticPostFee",
    "receiver",
    "closeReason",
    "createTime",
    "payTime",
    "updateTime",
)
LINE_FIELDS = (
    "subOrderId",
    "itemId",
    "skuId",
    "title",
    "quantity",
    "purchaseAmount",
    "purchaseCurrency",
    "domesticPostFee",
    "status",
    "refundStatus",
    "taobaoPurchaseId",
    "taobaoSubPurchaseId",
    "logisticCompanyName",
    "logisticNumber",
)
# every field as raw JSON: the SQL sees each value's JSON text, so it can tell "12" from 12
STRUCTURE = json.dumps(
    {
        "code": "JSON",
        "data": {"records": [{**{f: "JSON" for f in ORDER_FIELDS}, "subOrderVOS": [{f: "JSON" for f in LINE_FIELDS}]}]},
    }
)

# number literals DuckDB might not hold exactly as a double (see the module docstring)
INEXACT_NUMBER = r"""[:,\[]\s*-?[0-9]+\.[0-9]{3}|[:,\[]\s*-?[0-9]+(\.[0-9]+)?[eE]"""
# a necessary condition of each alternative, tried first (INEXACT_NUMBER runs only on the pages
# that have one): RE2 scans a page for these several times faster than for INEXACT_NUMBER (which
# opens with a character as frequent as ':' or ','). An exponent literal is followed by its
# digits, then whitespace or , } ] (the page is valid JSON by then)
MAYBE_INEXACT = (r"""\.[0-9]{3}""", r"""[eE][-+]?[0-9]+\s*[,}\]]""")
UNSAFE_ESCAPE = r"""\\u(0000|[dD][89a-fA-F])"""
# page reasons that do not send the page to the reference: only its records that hold such a
# literal or escape go (found by :func:`xport_etl.normalize.taobao_orders_suspects.suspect_records`)
SUSPECT = ("escape", "number")
# a comma before a closing bracket: DuckDB's JSON reader allows it, the reference does not (the
# page is not JSON to it: the window fails), so such a page goes whole to the reference. Inside a
# string it is harmless, and the reference then reads the page as SQL would have.
TRAILING_COMMA = r""",\s*[\]}]"""

# the lenient fields (``taobao_orders.ORDER_LENIENT`` / ``LINE_LENIENT``) by the shape that keeps a
# value on the fast path unasked; any other value is read by the reference's own reader of that
# field, alone: a value it refuses is a warning (the column is null, the record stays in SQL), a
# value it reads sends the record to the reference (only a ``receiver`` has no column to fill).
ORDER_WARN = {"receiver": "receiver_ok", "closeReason": "text_ok"}
LINE_WARN = {"status": "int_ok", "logisticCompanyName": "text_ok", "logisticNumber": "id_ok"}
assert set(ORDER_WARN) == set(ORDER_LENIENT) and set(LINE_WARN) == set(LINE_LENIENT)

# SQL shapes, each narrower than the Python rule of the same name in normalize/values.py. Values
# are computed for every record, plain or not, hence try_cast: only plain records' values are kept.
_MACROS = r"""
-- to_text's value: what a JSON string says, or an integer's digits (read only where text_ok holds)
create or replace temp macro text_val(x) as x->>'$';
-- the text of a plain scalar: its raw JSON without the quotes (the shapes below that use it
-- admit no quote or escape inside, so this is the value; replace is ~2x cheaper than trim)
create or replace temp macro bare(x) as replace(x::varchar, '"', '');

-- Each shape is one regular expression over the value's raw JSON text: a string of the shape
-- (with no escape: a string with one goes to Python) or a number of it.

-- to_id: null, "" (null), a string that starts and ends with printable ASCII (so Python's
-- strip() leaves it as it is), or a JSON integer
create or replace temp macro id_ok(x) as coalesce(x is null
    or regexp_full_match(x::varchar, '""|"[!-\[\]-~]([^"\\]*[!-\[\]-~])?"|0|[1-9][0-9]{0,18}'), false);
create or replace temp macro id_val(x) as nullif(bare(x), '');

-- to_text: null, a JSON string, or a JSON integer of up to 18 digits (kept as written: a
-- re-serialised integer is its literal; a fraction is not, and goes to the reference)
create or replace temp macro text_ok(x) as coalesce(x is null or left(x::varchar, 1) = '"'
    or regexp_full_match(x::varchar, '0|-?[1-9][0-9]{0,17}'), false);

-- to_money: null, "" (null), or up to 13 digits and 2 decimals, as a string or a number
create or replace temp macro money_ok(x) as coalesce(x is null
    or regexp_full_match(x::varchar, '""|"[0-9]{1,13}(\.[0-9]{1,2})?"|[0-9]{1,13}(\.[0-9]{1,2})?'), false);
create or replace temp macro money_val(x) as try_cast(nullif(bare(x), '') as decimal(18, 2));

-- to_int / to_quantity: null, or up to 9 digits as a string or a number
create or replace temp macro int_ok(x) as coalesce(x is null
    or regexp_full_match(x::varchar, '"-?[0-9]{1,9}"|-?[0-9]{1,9}'), false);
create or replace temp macro qty_ok(x) as coalesce(x is null
    or regexp_full_match(x::varchar, '"[0-9]{1,9}"|[0-9]{1,9}'), false);
create or replace temp macro int_val(x) as try_cast(bare(x) as integer);

-- to_cst_time: null, "" (null), or a real yyyy-MM-dd HH:mm:ss in years 1900..9998
create or replace temp macro ts_ok(x) as coalesce(x is null or x::varchar = '""'
    or (regexp_full_match(x::varchar,
            '"(19|[2-9][0-9])[0-9][0-9]-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"')
        and x::varchar < '"9999' and try_strptime(bare(x), '%Y-%m-%d %H:%M:%S') is not null), false);
create or replace temp macro ts_val(x, offset_s) as
    try_strptime(nullif(bare(x), ''), '%Y-%m-%d %H:%M:%S') - to_seconds(offset_s);

-- receiver: null, an object, "" or a short JSON-object string (valid JSON that opens with '{',
-- with no token DuckDB reads and Python does not: nan, inf in any case; a trailing comma sends
-- the whole page to the reference anyway)
create or replace temp macro receiver_ok(x) as coalesce(x is null or left(x::varchar, 1) = '{'
    or (left(x::varchar, 1) = '"' and (x::varchar = '""' or (strlen(text_val(x)) < 2000
        and left(text_val(x), 1) = '{' and json_valid(text_val(x))
        and not regexp_matches(text_val(x), '(?i)[:,\[]\s*-?(nan|inf)')))), false);
"""


def warn_cols(alias: str, shapes: dict[str, str]) -> str:
    """Per lenient field, its raw JSON text where its value is not of the plain shape (else null)."""
    return ", ".join(
        f"(case when not {shape}({alias}.{name}) then {alias}.{name}::varchar end) as w_{name}"
        for name, shape in shapes.items()
    )


def _case(mapping: dict, column: str, other: str) -> str:
    """``mapping[column]``, ``other`` for an unknown code, null for a null code."""
    whens = " ".join(f"when {code} then '{name}'" for code, name in mapping.items())
    return f"(case when {column} is null then null else (case {column} {whens} else {other} end) end)"


# the connections (cursors) that have the shape macros: they are temporary, one set a connection
_WITH_MACROS: weakref.WeakSet = weakref.WeakSet()
_MACROS_LOCK = threading.Lock()


def install_macros(con) -> None:
    with _MACROS_LOCK:
        if con in _WITH_MACROS:
            return
        _WITH_MACROS.add(con)
    con.execute(_MACROS)


# ---- the typed columns, from a record ``r`` and a line ``l``


def order_cols(offset_s: int) -> str:
    o = offset_s
    status = _case(TAOBAO_ORDER_STATUS, "int_val(r.status)", "'other'")
    return f"""
        'taobao' as platform, id_val(r.id) as order_id, id_val(r.orderNo) as order_no,
        {status} as status, int_val(r.status)::varchar as platform_status,
        text_val(r.orderSource) as order_source, text_val(r.sellerOrderNumber) as seller_order_number,
        null::varchar as seller, text_val(r.purchaseCurrency) as currency,
        money_val(r.purchaseAmount) as goods_amount, money_val(r.domesticPostFee) as shipping_amount,
        money_val(r.purchaseAmount) + money_val(r.domesticPostFee) as total_amount,
        coalesce(len(r.subOrderVOS), 0)::integer as line_count,
        ts_val(r.createTime, {o}) as created_at, ts_val(r.payTime, {o}) as paid_at,
        ts_val(r.updateTime, {o}) as updated_at,
        (case when text_ok(r.closeReason) then text_val(r.closeReason) end) as close_reason,
        seq, idx"""


def line_cols() -> str:
    refund = _case(TAOBAO_REFUND_STATUS, "int_val(l.refundStatus)", "null")
    return f"""
        'taobao' as platform, id_val(oid) as order_id, id_val(l.subOrderId) as line_id,
        li::integer as line_index, id_val(l.itemId) as item_id, id_val(l.skuId) as sku_id,
        text_val(l.title) as title, int_val(l.quantity) as quantity,
        money_val(l.purchaseAmount) as amount, money_val(l.domesticPostFee) as shipping_amount,
        text_val(l.purchaseCurrency) as currency,
        (case when l.refundStatus is null then 'none' else {refund} end) as refund_status,
        id_val(l.taobaoPurchaseId) as purchase_id, id_val(l.taobaoSubPurchaseId) as purchase_line_id,
        (case when int_ok(l.status) then int_val(l.status)::varchar end) as line_status,
        int_val(l.refundStatus)::varchar as platform_refund_status,
        (case when text_ok(l.logisticCompanyName) then text_val(l.logisticCompanyName) end) as carrier,
        (case when id_ok(l.logisticNumber) then id_val(l.logisticNumber) end) as tracking_number,
        null::varchar as refund_id, seq, idx"""
