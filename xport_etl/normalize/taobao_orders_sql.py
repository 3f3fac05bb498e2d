"""Taobao order pages → orders and order lines, in DuckDB: the fast path of the normaliser.

:mod:`xport_etl.normalize.values` is the reference: it states every rule (ids, money, times, statuses,
rejects, duplicates) in Python, one record at a time. At a million orders that costs minutes of
per-record Python, so the order pages (by far the largest endpoint) take this path instead:

1. pages are decompressed in bounded chunks (``CHUNK_BYTES`` of JSON at a time: memory does not
   grow with the window) and handed to DuckDB as Arrow, zero-copy;
2. one ``json_transform`` per page types every field as raw JSON, and SQL predicates decide,
   **record by record**, whether a record is **plain**: every value has a shape whose typed
   value is certain (an id is printable ASCII or a JSON integer, money is
   ``[0-9]{1,13}(.[0-9]{1,2})?`` as a string or a number, text is a string or a JSON integer, a
   time is a real ``yyyy-MM-dd HH:mm:ss``, ...), with its lines, nothing is in the future, its
   order id does not repeat within the page, no sub-order id repeats within it (an object that
   repeats a member name keeps the first, in DuckDB as in the reference: ``normalize.pages.first_wins``);
3. plain records are typed in SQL; every other record goes **alone** to the Python reference,
   with its page number and its position in the page (so its rejects, warnings and place in
   the version order are the reference's), while the rest of its page stays in SQL. The
   reference reads such a record from its own exact text, cut out of the page without parsing
   the rest (:func:`xport_etl.normalize.pages.record_texts`): a record costs about its own size,
   not its page's (the page is parsed whole only where the cut might read differently: see
   :class:`_PageRecords`);
   **lenient fields** (``taobao_orders.ORDER_LENIENT``/``LINE_LENIENT``: ``receiver``,
   ``closeReason``, a line's ``status``/``logisticCompanyName``/``logisticNumber``) do not make a
   record odd: a value outside their plain shape is handed, alone, to the reference's own reader
   of that field (:meth:`TaobaoOrdersSql._lenient`); if it refuses the value, the record stays
   in SQL with that column null and the reader's warning, exactly as the reference would write
   it (an undecodable ``receiver`` costs one ``json.loads`` of that string); if it reads the
   value (a column SQL could not fill), the record goes to the reference;
4. the latest version of each order wins across the window in one SQL window function (the
   reference's rule: later ``updateTime`` wins, ties go to the first seen, nulls are oldest),
   and the winners stream to Parquet a record batch at a time.

So every SQL predicate is *narrower* than the Python rule it shadows: when in doubt, a record
goes to Python, which costs time but never correctness. ``tests/normalize/test_taobao_orders_sql.py`` runs
both paths on the bad-input corpus, on generated pages and on sandbox pages (the varied world
and the plain one) and requires identical tables, rejects and warnings, and checks the share of
records that took the fast path.

Why a record goes to the reference although it may be fine, and what it costs (its own time):

- a number literal with three or more decimals or an exponent anywhere in it (DuckDB parses JSON
  numbers to binary doubles: for money the path must be sure the double is the literal). A
  cheap scan of the page's text finds the pages that may hold one; only those pages' records
  are scanned in Python (:meth:`_PageRecords.suspects`) to find the records that do. Longer literals need no
  check of their own: a double keeps a literal's magnitude, and the shapes allow at most 13
  digits before the point (money), 9 (integers) or an integer of 19 (ids), so a literal that a
  double cannot hold never passes as one it can;
- a ``\\u`` escape of a NUL or a surrogate in it (found the same way);
- an id, amount, integer or time written as a string that still needs an escape once DuckDB has
  re-serialised it (a quote, a backslash or a control character): the shapes are regular
  expressions over that text, which is cheaper than unescaping every value first;
- text that is a number with a fraction (the reference keeps ``12.50`` as written; DuckDB would
  print ``12.5``); an integer is kept as written by both.

A page goes whole to the reference only when it is not a page of records (not JSON to DuckDB,
an error envelope, ``records`` not a list: the reference says which, or fails the window),
when its bytes are not UTF-8, when it may hold a comma before a closing bracket (DuckDB reads
that, the reference does not: the window fails in both), or when a record the reference reads has the same order id as a
record typed in SQL (an id such as ``" 91001 "`` that the shapes do not accept but the reference
reads as ``91001``): the same id twice in one page makes the older copy a reject, a page matter.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.extract.landing import open_pages
from xport_etl.normalize.pages import WindowRows, first_wins, loads_exact, parse_page, record_texts, to_table
from xport_etl.normalize.taobao_orders import (
    LINE_LENIENT,
    ORDER_LENIENT,
    TAOBAO_ORDER_STATUS,
    read_records,
    taobao_window,
)
from xport_etl.normalize.values import FUTURE_TOLERANCE, TAOBAO_REFUND_STATUS, Lenient, PageError
from xport_etl.schemas import ETL_REJECTS, FCT_ORDER_LINES, FCT_ORDERS

# decompressed JSON handed to DuckDB at a time (24 MB): bigger chunks cost less CPU a page and more
# memory, and beyond 24 MB the CPU saved is small; see bench/NOTES.md
CHUNK_BYTES = 24 * 2**20
READ_BYTES = 2**20
PAGES_PER_BATCH = 8  # Arrow record batch size in pages: DuckDB scans batches in parallel
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

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
# literal or escape go (found by :func:`_suspect_records`)
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


def _warn_cols(alias: str, shapes: dict[str, str]) -> str:
    """Per lenient field, its raw JSON text where its value is not of the plain shape (else null)."""
    return ", ".join(
        f"(case when not {shape}({alias}.{name}) then {alias}.{name}::varchar end) as w_{name}"
        for name, shape in shapes.items()
    )


def _case(mapping: dict, column: str, other: str) -> str:
    """``mapping[column]``, ``other`` for an unknown code, null for a null code."""
    whens = " ".join(f"when {code} then '{name}'" for code, name in mapping.items())
    return f"(case when {column} is null then null else (case {column} {whens} else {other} end) end)"


@dataclass
class SqlStats:
    """How a window went: pages and records per path (the tests check the fast path is taken)."""

    pages: int = 0
    fast_pages: int = 0  # pages whose every record was typed in SQL
    python_pages: int = 0  # pages the reference read whole
    records: int = 0
    fast_records: int = 0  # records typed in SQL
    python_records: int = 0  # records the reference read (alone, or with their whole page)
    # pages Python parsed whole for the records it reads or looks at (a record alone is parsed
    # from its own text where the page allows: :class:`_PageRecords`)
    parsed_pages: int = 0
    # why records (``record``, ``number``, ``escape``: one each) or whole pages (the other
    # reasons: one a page) went to the reference
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: SqlStats) -> None:
        """Count ``other``'s pages, records and reasons in this one."""
        for name in (
            "pages",
            "fast_pages",
            "python_pages",
            "records",
            "fast_records",
            "python_records",
            "parsed_pages",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    @property
    def fast_share(self) -> float:
        """Share of the records typed in SQL (1.0 for a window without records)."""
        return self.fast_records / self.records if self.records else 1.0


class TaobaoOrdersSql:
    """Normalise one window of Taobao order pages in a DuckDB database.

    ``feed`` chunks of pages, from one connection or several at once (``feed(..., con=)``: each a
    cursor of the same database, on its own thread), then ``finish``; the winners are then in the
    tables :attr:`out_orders` and :attr:`out_lines` (with ``created_month``), readable from any
    cursor of the database, and the rejects in :attr:`rejects`. The window's tables live in a
    schema of their own; :meth:`drop` removes them.
    """

    def __init__(
        self, con, *, endpoint: str, window_id: str, rejected_at: datetime, assumptions: ApiAssumptions = ASSUMED
    ):
        if assumptions.cst_time_format != DEFAULT_TIME_FORMAT:
            raise ValueError("the SQL normaliser reads only the yyyy-MM-dd HH:mm:ss time format")
        self.con, self.endpoint, self.window_id = con, endpoint, window_id
        self.rejected_at, self.assumptions = rejected_at, assumptions
        self.offset_s = int(assumptions.source_tz.utcoffset(None).total_seconds())
        self.ceiling = rejected_at + FUTURE_TOLERANCE
        self.schema = f"taobao_orders_{uuid.uuid4().hex[:16]}"
        self.out_orders, self.out_lines = f"{self.schema}.out_orders", f"{self.schema}.out_lines"
        self._chunks: list[_Chunk] = []  # done, each with its tables, rejects and counts
        self._lock = threading.Lock()
        _macros(con)
        con.execute(f"create schema {self.schema}")
        # the reference's rows (appended by every chunk: appends never conflict in DuckDB)
        con.execute(
            f"create table {self.schema}.ref_orders as select {_order_cols(self.offset_s)} from "
            "(select null::json as r, 0::bigint as seq, 0::integer as idx) where false"
        )
        con.execute(
            f"create table {self.schema}.ref_lines as select {_line_cols()} from "
            "(select null::json as oid, null::json as l, 0::bigint as seq, 0::integer as idx, "
            "0::integer as li) where false"
        )

    def feed(self, seqs: np.ndarray, bodies: pa.Array, con=None) -> None:
        """One chunk of pages: ``seqs`` their page numbers, ``bodies`` the JSON texts (UTF-8);
        on ``con`` (a cursor of the window's database), else on the window's connection.

        Raises:
            PageError: as with the reference: the window fails.
        """
        self._done(_Chunk(self, con or self.con, int(seqs[0])).feed(seqs, bodies))

    def feed_python(self, seq: int, body: bytes, reason: str, con=None) -> None:
        """A page that cannot even reach DuckDB (its bytes are not UTF-8)."""
        self._done(_Chunk(self, con or self.con, seq).feed_python(seq, body, reason))

    def _done(self, chunk: _Chunk) -> None:
        # a chunk's rejects as Arrow: a year in one window may hold tens of thousands of warnings
        # until it is staged, each a Python dict several times its size
        chunk.rejects_arrow = to_table(chunk.rejects, ETL_REJECTS.arrow_schema())
        chunk.rejects = []
        with self._lock:
            self._chunks.append(chunk)

    def rejects_table(self) -> pa.Table:
        """The window's rejects and warnings (``etl_rejects`` rows), in page order of the chunks
        (all from the reference's code: a plain record has none)."""
        tables = [c.rejects_arrow for c in sorted(self._chunks, key=lambda c: c.first)]
        return pa.concat_tables(tables) if tables else to_table([], ETL_REJECTS.arrow_schema())

    @property
    def rejects(self) -> list[dict]:
        """:meth:`rejects_table` as ``etl_rejects`` row dicts."""
        return self.rejects_table().to_pylist()

    @property
    def stats(self) -> SqlStats:
        total = SqlStats()
        for c in self._chunks:
            total.add(c.stats)
        return total

    def finish(self) -> None:
        """Keep the latest version of each order (ties: first seen; nulls oldest) and its lines.

        The versions are ranked on their keys alone (order id, update time, place), not on whole
        rows: a year landed as one window ranks a million orders within the staging budget."""
        con = self.con
        warn_orders = ", ".join(f"w_{name}" for name in ORDER_WARN)
        warn_lines = ", ".join(f"w_{name}" for name in LINE_WARN)
        orders = " union all by name ".join(
            [f"select * exclude (ok, no_subs, {warn_orders}) from {c.orders}" for c in self._tables()]
            + [f"select * from {self.schema}.ref_orders"]
        )
        lines = " union all by name ".join(
            [f"select * exclude (ok, {warn_lines}) from {c.lines}" for c in self._tables()]
            + [f"select * from {self.schema}.ref_lines"]
        )
        keys = " union all ".join(
            [f"select order_id, updated_at, created_at, seq, idx from {c.orders}" for c in self._tables()]
            + [f"select order_id, updated_at, created_at, seq, idx from {self.schema}.ref_orders"]
        )
        con.execute(f"""
            create table {self.schema}.winners as
            select seq, idx, coalesce(strftime(created_at, '%Y-%m'), 'unknown') as created_month
            from ({keys})
            qualify row_number() over (partition by order_id order by updated_at desc nulls last, seq, idx) = 1
        """)
        con.execute(
            f"create table {self.out_orders} as select * from ({orders}) join {self.schema}.winners using (seq, idx)"
        )
        con.execute(
            f"create table {self.out_lines} as select * from ({lines}) join {self.schema}.winners using (seq, idx)"
        )
        for c in self._tables():
            con.execute(f"drop table {c.orders}")
            con.execute(f"drop table {c.lines}")
        con.execute(f"drop table {self.schema}.winners")

    def _tables(self) -> list[_Chunk]:
        return [c for c in self._chunks if c.orders is not None]

    def drop(self) -> None:
        """Remove the window's tables (its schema)."""
        self.con.execute(f"drop schema if exists {self.schema} cascade")


# the connections (cursors) that have the shape macros: they are temporary, one set a connection
_WITH_MACROS: weakref.WeakSet = weakref.WeakSet()
_MACROS_LOCK = threading.Lock()


def _macros(con) -> None:
    with _MACROS_LOCK:
        if con in _WITH_MACROS:
            return
        _WITH_MACROS.add(con)
    con.execute(_MACROS)


# ---- the typed columns, from a record ``r`` and a line ``l``


def _order_cols(offset_s: int) -> str:
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


def _line_cols() -> str:
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


class _Chunk:
    """One chunk of a window's pages, on one connection: its records typed in SQL into tables of
    the window's schema (:attr:`orders`, :attr:`lines`), the reference's records appended to the
    window's ``ref_*`` tables, its rejects and counts kept for the window."""

    def __init__(self, window: TaobaoOrdersSql, con, first: int) -> None:
        self.window, self.con, self.first = window, con, first
        self.endpoint, self.window_id, self.rejected_at = window.endpoint, window.window_id, window.rejected_at
        self.assumptions = window.assumptions
        self.orders: str | None = None  # the chunk's typed tables, less the reference's records
        self.lines: str | None = None
        self.rejects: list[dict] = []
        self.rejects_arrow: pa.Table | None = None  # the same, once the chunk is done
        self.stats = SqlStats()
        self._orders: list[dict] = []  # the reference's rows, until the chunk is done
        self._lines: list[dict] = []
        _macros(con)

    # ---- feeding pages

    def feed(self, seqs: np.ndarray, bodies: pa.Array) -> _Chunk:
        """Type the chunk's pages (``seqs`` their page numbers, ``bodies`` the JSON texts)."""
        self.orders = f"{self.window.schema}.orders_{self.first}"
        self.lines = f"{self.window.schema}.lines_{self.first}"
        self.stats.pages += len(bodies)
        table = pa.table({"seq": pa.array(seqs, pa.int64()), "body": bodies})
        chunk = pa.Table.from_batches(table.to_batches(max_chunksize=PAGES_PER_BATCH))
        con = self.con
        body = _bodies(seqs, bodies)
        con.register("chunk", chunk)
        try:
            try:
                self._parse(con)
            except Exception as exc:  # noqa: BLE001 - not JSON somewhere: find the page(s) first
                if "JSON" not in str(exc):
                    raise
                con.execute("create or replace temp table bad_json as select seq from chunk where not json_valid(body)")
                self._parse(con, skip_bad_json=True)
                python_pages, suspects = self._classify_and_type(con, skip_bad_json=True)
            else:
                python_pages, suspects = self._classify_and_type(con)
        finally:
            con.unregister("chunk")
        self._count("record", self.con.execute("select count(*) from py_recs").fetchall()[0][0])
        whole = dict(python_pages)  # page → reason: the reference reads the whole page
        # the pages cut into records to find suspect ones, kept until their records are read
        pages: dict[int, _PageRecords] = {}

        def page(seq: int) -> _PageRecords:
            if seq not in pages:
                pages[seq] = _PageRecords(body(seq), self.stats)
            return pages[seq]

        def take(seq: int) -> _PageRecords:  # (a page's text is held no longer than needed)
            return pages.pop(seq, None) or _PageRecords(body(seq), self.stats)

        # pages with a number literal or an escape that DuckDB may not read as Python does: the
        # records that hold one join the records for the reference, the others stay typed in SQL
        extra: list[tuple[int, int]] = []
        for seq, reason in suspects:
            found = page(seq).suspects()
            if found is None:
                whole[seq] = reason
                continue
            extra.extend((seq, idx) for idx in found)
            self._count(reason, len(found))
        if extra:
            self._add_python_records(extra)
        warnings = self._lenient(whole)
        records, more = self._python_records(take, skip=whole)
        whole.update(more)
        self._insert_fast(seqs, whole)
        python = set(self.con.execute("select seq, idx from py_recs").fetchall())
        self.rejects.extend(w for key, ws in warnings.items() if key not in python for w in ws)
        for seq, rows in records.items():
            self._add_rows(seq, rows)
        for seq in sorted(whole):
            self._count(whole[seq])
            self._python_page(seq, body(seq))
        self._flush()
        return self

    def feed_python(self, seq: int, body: bytes, reason: str) -> _Chunk:
        """A page that cannot even reach DuckDB (its bytes are not UTF-8)."""
        self.stats.pages += 1
        self._count(reason)
        self._python_page(seq, body)
        self._flush()
        return self

    def _count(self, reason: str, n: int = 1) -> None:
        if n:
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + n

    def _parse(self, con, skip_bad_json: bool = False) -> None:
        where = "where seq not in (select seq from bad_json)" if skip_bad_json else ""
        con.execute(f"""
            create or replace temp table pages as
            select seq, json_transform(body, '{STRUCTURE}') as t, false as bad_json from chunk {where}
        """)
        if skip_bad_json:
            con.execute("insert into pages select seq, null, true from bad_json")

    def _classify_and_type(self, con, skip_bad_json: bool = False) -> tuple[list, list]:
        """Type every record of the chunk's readable pages; ``py_recs`` gets the records that need
        the reference. Returns the pages that go whole to the reference and the suspect pages
        (a number literal or escape to look at in Python), each as ``(seq, reason)``."""
        # page level: the envelope, then the things only the raw text shows
        # (three small steps: a CASE over a join of the bodies with the parsed struct blows memory)
        con.execute("""
            create or replace temp table envelope as
            select seq, bad_json, t.data is null as no_data, t.code::varchar as code,
                   t.data.records is null as no_records
            from pages
        """)
        con.execute(rf"""
            create or replace temp table body_flags as
            select seq,
                -- (CASEs, not ANDs: DuckDB evaluates both sides of an AND for every row)
                case when contains(body, '\u') then regexp_matches(body, '{UNSAFE_ESCAPE}') else false end as escape,
                case when regexp_matches(body, '{MAYBE_INEXACT[0]}') or regexp_matches(body, '{MAYBE_INEXACT[1]}')
                     then regexp_matches(body, '{INEXACT_NUMBER}') else false end as number,
                regexp_matches(body, '{TRAILING_COMMA}') as comma
            from chunk {"where seq not in (select seq from bad_json)" if skip_bad_json else ""}
        """)
        con.execute("""
            create or replace temp table page_flags as
            select e.seq,
                case
                  when e.bad_json then 'not json'
                  when e.no_data then 'envelope'
                  when e.code is not null and e.code not in ('200', '"200"') then 'envelope'
                  when e.no_records then 'no records'  -- null, or not a list: Python tells which
                  when b.comma then 'trailing comma'
                  when b.escape then 'escape'
                  when b.number then 'number'
                end as reason
            from envelope e left join body_flags b using (seq)
        """)
        # records and lines, typed once; ``ok``: every raw value had a plain shape
        con.execute(f"""
            create or replace temp table recs as
            select p.seq, unnest(p.t.data.records) as r, generate_subscripts(p.t.data.records, 1) - 1 as idx
            from pages p semi join page_flags f on p.seq = f.seq and (f.reason is null or f.reason in {SUSPECT})
        """)
        con.execute(f"""
            create table {self.lines} as
            select {_line_cols()},
                   coalesce(l.subOrderId is not null and id_ok(l.subOrderId) and id_val(l.subOrderId) is not null
                       and id_ok(l.itemId) and id_ok(l.skuId) and text_ok(l.title) and qty_ok(l.quantity)
                       and money_ok(l.purchaseAmount) and money_ok(l.domesticPostFee)
                       and text_ok(l.purchaseCurrency) and int_ok(l.refundStatus)
                       and id_ok(l.taobaoPurchaseId) and id_ok(l.taobaoSubPurchaseId), false) as ok,
                   {_warn_cols("l", LINE_WARN)}
            from (select seq, idx, r.id as oid, unnest(r.subOrderVOS) as l,
                         generate_subscripts(r.subOrderVOS, 1) - 1 as li from recs)
        """)
        con.execute(f"""
            create table {self.orders} as
            select {_order_cols(self.window.offset_s)},
                   coalesce(r.id is not null and id_ok(r.id) and id_val(r.id) is not null
                    and id_ok(r.orderNo) and int_ok(r.status) and text_ok(r.orderSource)
                    and text_ok(r.sellerOrderNumber) and money_ok(r.purchaseAmount)
                    and text_ok(r.purchaseCurrency) and money_ok(r.domesticPostFee)
                    and ts_ok(r.createTime) and ts_ok(r.payTime) and ts_ok(r.updateTime), false) as ok,
                   r.subOrderVOS is null and r is not null as no_subs,
                   {_warn_cols("r", ORDER_WARN)}
            from recs
        """)
        # the records the reference reads, one by one (their pages stay on the fast path): a
        # value outside the plain shapes, a line that is, a repeated line id, a future time, an
        # order id seen twice in the page (every copy, in page order: the reference picks the
        # winner). A null subOrderVOS may be a real null or something the transform could not
        # read as a list: the reference tells which.
        con.execute(
            f"""
            create or replace temp table py_recs as
            with lines as (
                select seq, idx, bool_and(ok) as ok, count(*) <> count(distinct line_id) as dup
                from {self.lines} group by all
            )
            select seq, idx from (
                select o.seq, o.idx,
                       o.ok and not o.no_subs and coalesce(l.ok and not l.dup, true)
                       and coalesce(o.created_at <= $ceiling, true) and coalesce(o.paid_at <= $ceiling, true)
                       and coalesce(o.updated_at <= $ceiling, true)
                       and count(*) over (partition by o.seq, o.order_id) = 1 as ok
                from {self.orders} o left join lines l using (seq, idx))
            where not ok
        """,
            {"ceiling": self.window.ceiling},
        )
        flags = con.execute("select seq, reason from page_flags where reason is not null order by seq").fetchall()
        return (
            [(seq, reason) for seq, reason in flags if reason not in SUSPECT],
            [(seq, reason) for seq, reason in flags if reason in SUSPECT],
        )

    def _add_python_records(self, pairs: list[tuple[int, int]]) -> None:
        arrow = pa.table(
            {"seq": pa.array([s for s, _ in pairs], pa.int64()), "idx": pa.array([i for _, i in pairs], pa.int64())}
        )
        self.con.register("more_py_recs", arrow)
        try:
            self.con.execute(
                "insert into py_recs select seq, idx from more_py_recs except select seq, idx from py_recs"
            )
        finally:
            self.con.unregister("more_py_recs")

    def _lenient(self, whole: dict[int, str]) -> dict[tuple[int, int], list[dict]]:
        """The lenient values outside their plain shape of the typed records (not those of the
        ``whole`` pages, nor those already for the reference), each read by the reference's reader
        of that field: the warnings it gives, by record (they join the rejects if the record stays
        in SQL); a record with a value the reader reads (or one this path cannot show exactly)
        joins the records for the reference."""
        con = self.con
        skip = f"and seq not in ({', '.join(map(str, whole))})" if whole else ""
        fields = [*ORDER_WARN, *(f"line {name}" for name in LINE_WARN)]
        any_warn = " or ".join(f"w_{name} is not null" for name in ORDER_WARN)
        any_line_warn = " or ".join(f"w_{name} is not null" for name in LINE_WARN)
        found = con.execute(f"""
            select seq, idx, order_id, null::integer as li, null::varchar as line_id,
                   {", ".join(f"w_{n}" for n in ORDER_WARN)}, {", ".join("null::varchar" for _ in LINE_WARN)}
            from {self.orders} anti join py_recs using (seq, idx) where ({any_warn}) {skip}
            union all
            select seq, idx, order_id, line_index, line_id,
                   {", ".join("null::varchar" for _ in ORDER_WARN)}, {", ".join(f"w_{n}" for n in LINE_WARN)}
            from {self.lines} anti join py_recs using (seq, idx) where ({any_line_warn}) {skip}
            order by seq, idx, li nulls first
        """).fetchall()
        if not found:
            return {}
        out: dict[tuple[int, int], list[dict]] = {}
        reference: set[tuple[int, int]] = set()
        for seq, idx, order_id, li, line_id, *texts in found:
            if (seq, idx) in reference:
                continue
            lenient = Lenient()
            for field_name, text in zip(fields, texts, strict=True):
                if text is None:
                    continue
                name = field_name.removeprefix("line ")
                reader = LINE_LENIENT[name] if li is not None else ORDER_LENIENT[name]
                read = len(lenient.found)
                # a number DuckDB re-wrote is not the literal served (a string is exact): the
                # reference reads the record
                if (text[0] != '"' and _INEXACT_TEXT.search(text)) or (
                    lenient(reader, loads_exact(text), name) is not None
                    and len(lenient.found) == read
                    and name != "receiver"  # a value the reader reads fills a column (the receiver has none)
                ):
                    reference.add((seq, idx))
                    break
            if (seq, idx) in reference or not lenient.found:
                continue
            if li is None:
                warned = lenient.warnings(self.endpoint, order_id, seq)
            else:
                warned = lenient.warnings(
                    self.endpoint,
                    f"{order_id}/{line_id}",
                    seq,
                    prefix=f"subOrderVOS[{li}].",
                    reason_prefix="sub-order: ",
                )
            rows = WindowRows(self.endpoint, self.window_id, self.rejected_at)
            for r in warned:
                rows.reject(r.record_id, r.reason, r.raw, seq, severity=r.severity, field=r.field)
            out.setdefault((seq, idx), []).extend(rows.rejects)
        if reference:
            self._add_python_records(sorted(reference))
            self._count("lenient", len(reference))
        return {key: ws for key, ws in out.items() if key not in reference}

    def _python_records(
        self, page: Callable[[int], _PageRecords], skip: dict[int, str]
    ) -> tuple[dict[int, WindowRows], dict[int, str]]:
        """The reference on the records of ``py_recs``, page by page (not the pages in ``skip``),
        each record parsed alone where its page allows (:class:`_PageRecords`).

        Returns the reference's result per page, and the pages that must go whole to the
        reference after all: one whose records, as the reference reads them, share an order id
        with a record typed in SQL (an id the shapes did not accept, e.g. with spaces: the same id
        twice in one page is a page matter, one copy is rejected), or one the reference cannot
        read (it raises in page order, with the whole pages)."""
        con = self.con
        by_page = con.execute("select seq, list(idx order by idx) from py_recs group by seq order by seq").fetchall()
        pages: dict[int, WindowRows] = {}
        more: dict[int, str] = {}
        keys_seq, keys_id = [], []
        for seq, idxs in by_page:
            if seq in skip:
                continue
            try:
                records, clean = page(seq).records(idxs)
                rows = read_records(
                    WindowRows(self.endpoint, self.window_id, self.rejected_at),
                    seq,
                    records,
                    clean,
                    endpoint=self.endpoint,
                    assumptions=self.assumptions,
                )
            except (PageError, IndexError):
                more[seq] = "page error"
                continue
            pages[seq] = rows
            for winner in rows.winners():
                keys_seq.append(seq)
                keys_id.append(winner.key[-1])
        if keys_seq:
            con.register(
                "py_keys", pa.table({"seq": pa.array(keys_seq, pa.int64()), "order_id": pa.array(keys_id, pa.string())})
            )
            try:
                for (seq,) in con.execute(f"""
                    select distinct k.seq from py_keys k
                    join (select seq, order_id from {self.orders} anti join py_recs using (seq, idx)) t
                      on t.seq = k.seq and t.order_id = k.order_id
                """).fetchall():
                    more[seq] = "id collision"
                    del pages[seq]
            finally:
                con.unregister("py_keys")
        return pages, more

    def _insert_fast(self, seqs: np.ndarray, whole: dict[int, str]) -> None:
        """Every typed record that the reference does not read stays in the chunk's tables."""
        con = self.con
        if whole:
            con.execute(
                f"insert into py_recs select seq, idx from {self.orders} where seq in ({', '.join(map(str, whole))})"
                " except select seq, idx from py_recs"
            )
        # the chunk's typed tables are kept as they are, less the reference's records (a delete
        # only marks rows): copying them into one table a chunk cost ~20% of staging at 1M
        con.execute(f"delete from {self.orders} t using py_recs p where t.seq = p.seq and t.idx = p.idx")
        con.execute(f"delete from {self.lines} t using py_recs p where t.seq = p.seq and t.idx = p.idx")
        (records,) = con.execute(f"select count(*) from {self.orders}").fetchall()[0]
        touched = {seq for (seq,) in con.execute("select distinct seq from py_recs").fetchall()} | set(whole)
        self.stats.records += records
        self.stats.fast_records += records
        self.stats.fast_pages += sum(1 for seq in seqs.tolist() if seq not in touched)

    def _add_rows(self, seq: int, page) -> None:
        """The reference's records of a page (read one by one) join the candidates."""
        self.stats.python_records += page.records
        self.stats.records += page.records
        self.rejects.extend(page.rejects)
        self._append_winners(seq, page)

    def _python_page(self, seq: int, body: bytes) -> None:
        """The reference normaliser on one whole page; its winners join the candidates.

        Raises:
            PageError: as with the reference: the window fails.
        """
        self.stats.python_pages += 1
        self.stats.parsed_pages += 1
        page = taobao_window(
            [(seq, body, None)],
            endpoint=self.endpoint,
            window_id=self.window_id,
            rejected_at=self.rejected_at,
            assumptions=self.assumptions,
        )
        self._add_rows(seq, page)

    def _append_winners(self, seq: int, page) -> None:
        for rows in page.winners():
            self._orders.append({**rows.row, "seq": seq, "idx": rows.index})
            self._lines.extend({**line, "seq": seq, "idx": rows.index} for line in rows.children.get("order_lines", ()))

    def _flush(self) -> None:
        """The reference's rows of a chunk join the candidates, one insert a table (an insert
        has a fixed cost however few its rows)."""
        if self._orders:
            self._append(f"{self.window.schema}.ref_orders", self._orders, FCT_ORDERS.arrow_schema())
        if self._lines:
            self._append(f"{self.window.schema}.ref_lines", self._lines, FCT_ORDER_LINES.arrow_schema())
        self._orders, self._lines = [], []

    def _append(self, table: str, rows: list[dict], schema: pa.Schema) -> None:
        schema = schema.append(pa.field("seq", pa.int64())).append(pa.field("idx", pa.int32()))
        if "extracted_at" in schema.names:
            schema = schema.remove(schema.get_field_index("extracted_at"))
        arrow = pa.Table.from_pylist(rows, schema=schema)
        self.con.register("python_rows", arrow)
        try:
            self.con.execute(f"insert into {table} by name select * from python_rows")
        finally:
            self.con.unregister("python_rows")


# ---- the records the reference reads


class _Inexact(Decimal):
    """A number literal a double may not hold exactly (three or more decimals, an exponent)."""


_INEXACT_LITERAL = re.compile(r"\.[0-9]{3}|[eE]")
_UNSAFE_CHAR = re.compile("[\x00\ud800-\udfff]")
_INEXACT_RECORD = re.compile(INEXACT_NUMBER.encode())
# a number with a fraction or an exponent (or NaN, Infinity) in DuckDB's text of a value: DuckDB
# re-wrote it from a double (12.50 → 12.5), so the text is not the literal served (strings may
# match too: those records just go to the reference)
_INEXACT_TEXT = re.compile(r"[0-9][.eE]|NaN|Infinity")


def _number(text: str) -> Decimal:
    return _Inexact(text) if _INEXACT_LITERAL.search(text) else Decimal(text)


def _bodies(seqs: np.ndarray, bodies: pa.Array) -> Callable[[int], bytes]:
    """Page number → that page's text as bytes, sliced from the chunk's Arrow buffers (no
    decoding to a Python str and back)."""
    offsets = np.frombuffer(bodies.buffers()[1], np.int64)[bodies.offset : bodies.offset + len(bodies) + 1]
    data = bodies.buffers()[2]
    where = {seq: k for k, seq in enumerate(seqs.tolist())}

    def body(seq: int) -> bytes:
        k = where[seq]
        return data.slice(int(offsets[k]), int(offsets[k + 1] - offsets[k])).to_pybytes().rstrip(b"\n")

    return body


class _PageRecords:
    """The records of one page that the reference reads: each parsed alone from its exact text
    (:func:`xport_etl.normalize.pages.record_texts`), so that a record costs about its own size;
    or, when that is not certain to read as the whole page does, the page parsed whole (once)."""

    def __init__(self, body: bytes, stats: SqlStats) -> None:
        self.body, self.stats = body, stats
        self.texts = record_texts(body)

    def records(self, idxs: list[int]) -> tuple[list[tuple[int, Any]], bool]:
        """``(position, record)`` of the records at ``idxs`` (in page order), and whether the
        page is clean (:func:`xport_etl.normalize.pages.parse_envelope`).

        Raises:
            PageError: the reference cannot read the page.
            IndexError: a position beyond the page's records.
        """
        if self.texts is not None and idxs[-1] < len(self.texts):
            return [(i, loads_exact(bytes(self.texts[i]))) for i in idxs], True
        self.stats.parsed_pages += 1
        records, clean = parse_page(self.body)
        return [(i, records[i]) for i in idxs], clean

    def suspects(self) -> list[int] | None:
        """The positions of the page's records that hold a number literal a double may not hold,
        a NUL or a lone surrogate (in a value or a member name); None when Python cannot read
        the page's records (the reference then reads the page whole, and says why)."""
        if self.texts is None:
            self.stats.parsed_pages += 1
            return _suspect_records(self.body)
        # no escape in the page (record_texts): no NUL, no surrogate; only a number can be one
        return [
            idx
            for idx, text in enumerate(self.texts)
            if _INEXACT_RECORD.search(bytes(text))
            and _suspect(json.loads(bytes(text), parse_float=_number, object_pairs_hook=first_wins))
        ]


def _suspect_records(body: bytes) -> list[int] | None:
    """:meth:`_PageRecords.suspects` of a page parsed whole."""
    try:
        data = json.loads(body.decode("utf-8"), parse_float=_number, object_pairs_hook=first_wins)["data"]["records"]
    except (ValueError, RecursionError, TypeError, KeyError):
        return None
    if not isinstance(data, list):
        return None
    return [idx for idx, rec in enumerate(data) if _suspect(rec)]


def _suspect(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for key, item in v.items():
                if _UNSAFE_CHAR.search(key):
                    return True
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, _Inexact) or (isinstance(v, str) and _UNSAFE_CHAR.search(v)):
            return True
    return False


# ---- reading landed pages in bounded chunks


class ChunkReader:
    """Whole lines of a landed window's pages (a local directory or a storage URL: see
    :func:`xport_etl.extract.landing.open_pages`), in chunks, for one reader or several at once.

    Each caller reads into a buffer of its own (:meth:`read`), which it reuses: the pages are
    decompressed 1 MB at a time straight into it, and the chunk is a view of it, valid until the
    caller reads again (the normaliser is done with a chunk by then: DuckDB has parsed it into
    its own tables). So a reader holds one chunk of text, not two: a single large ``read`` of a
    gzip file holds several times what it returns, and joining read blocks into a chunk would hold
    it twice. Reading is serial (a lock); what the readers do with their chunks is not."""

    def __init__(self, directory, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self._file = open_pages(directory).__enter__()
        self._lock = threading.Lock()
        self._tail = b""  # the start of a line the last chunk cut off
        self._first = 1  # the page number of the next line
        self._eof = self._stopped = False

    def read(self, buf: bytearray) -> tuple[int, memoryview] | None:
        """The next chunk into ``buf`` (grown to ``chunk_bytes`` when smaller, so a reader that
        finds nothing left allocates nothing, and for a line longer than it): ``(first page
        number, whole lines)``; None when every line was read (or :meth:`stop` was called)."""
        with self._lock:
            if self._stopped or (self._eof and not self._tail):
                return None
            if len(buf) < self.chunk_bytes:
                buf += bytes(self.chunk_bytes - len(buf))
            pos = len(self._tail)
            while pos > len(buf):
                buf += bytes(len(buf))
            buf[:pos] = self._tail
            while True:
                while not self._eof and pos < len(buf):
                    n = self._file.readinto(memoryview(buf)[pos : pos + READ_BYTES])
                    if not n:
                        self._eof = True
                        break
                    pos += n
                cut = buf.rfind(b"\n", 0, pos) + 1
                if cut or self._eof:
                    break
                buf += bytes(len(buf))  # no whole line in the buffer yet: a longer one
            if not cut:  # the last line, without its newline (or nothing at all)
                if not pos:
                    return None
                if pos == len(buf):
                    buf += b"\n"
                else:
                    buf[pos : pos + 1] = b"\n"
                pos += 1
                cut = pos
            self._tail = bytes(buf[cut:pos])
            first = self._first
            self._first += buf.count(b"\n", 0, cut)
            return first, memoryview(buf)[:cut]

    def stop(self) -> None:
        """No more chunks for anyone (a reader failed: the window fails)."""
        with self._lock:
            self._stopped = True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_chunks(directory, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(first page number, whole lines)`` from a landed window's pages, one reused buffer
    of ``chunk_bytes`` (:class:`ChunkReader`): each chunk is released when the next is asked for."""
    buf = bytearray()
    with ChunkReader(directory, chunk_bytes) as reader:
        while (got := reader.read(buf)) is not None:
            first, whole = got
            yield first, whole
            whole.release()


def split_lines(first: int, data: bytes | memoryview) -> tuple[np.ndarray, pa.Array]:
    """Whole lines → (page numbers, a zero-copy Arrow binary array of the lines)."""
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    return np.arange(first, first + len(ends), dtype=np.int64), lines


def feed_window(
    norm: TaobaoOrdersSql,
    directory,
    chunk_bytes: int = CHUNK_BYTES,
    run: Callable[[Callable[[Any], None]], None] | None = None,
) -> None:
    """Every page of a landed window, in bounded chunks.

    ``run``: chunks on several threads at once. ``run(work)`` calls ``work(con)`` once on each of
    its threads, ``con`` a cursor of the window's database that thread owns, and returns when
    every call has: the calls share the window's chunks, each in a buffer of its own (so a window
    holds one chunk of text a thread). Without it, the chunks are fed one after another on the
    window's connection. Either way the window's result is the same: its chunks are independent
    until :meth:`TaobaoOrdersSql.finish`, and an error is the one the first failing chunk (in
    page order) raises, as when the chunks are fed in order.
    """
    if run is None:
        for first, data in iter_chunks(directory, chunk_bytes):
            feed_bytes(norm, first, data)
        return
    failed: list[tuple[int, BaseException]] = []
    with ChunkReader(directory, chunk_bytes) as reader:

        def work(con) -> None:
            buf = bytearray()
            while (got := reader.read(buf)) is not None:
                first, data = got
                try:
                    feed_bytes(norm, first, data, con=con)
                except BaseException as exc:  # noqa: BLE001 - raised below, the first in page order
                    failed.append((first, exc))
                    reader.stop()  # later chunks do not matter: the window fails
                    return  # (the error's traceback still holds views of the buffer: no release)
                data.release()

        run(work)
    if failed:
        raise min(failed, key=lambda f: f[0])[1]


def feed_bytes(norm: TaobaoOrdersSql, first: int, data: bytes | memoryview, con=None) -> None:
    seqs, lines = split_lines(first, data)
    feed_lines(norm, seqs, lines, con=con)


def feed_lines(norm: TaobaoOrdersSql, seqs: np.ndarray, lines: pa.Array, con=None) -> None:
    """Pages as a binary array (each ending in a newline); those that are not UTF-8 go to Python."""
    try:
        norm.feed(seqs, lines.cast(pa.large_string()), con=con)
        return
    except pa.ArrowInvalid:  # bytes that are not UTF-8 somewhere: find the pages
        pass
    run: list[tuple[int, bytes]] = []  # UTF-8 pages in a row; the others go to Python in order

    def flush() -> None:
        if run:
            norm.feed(
                np.array([s for s, _ in run], np.int64),
                pa.array([b for _, b in run], pa.large_binary()).cast(pa.large_string()),
                con=con,
            )
            run.clear()

    for seq, line in zip(seqs.tolist(), lines.to_pylist(), strict=True):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            flush()
            norm.feed_python(seq, line.rstrip(b"\n"), "not utf-8", con=con)
        else:
            run.append((seq, line))
    flush()


def feed_pages(norm: TaobaoOrdersSql, pages: Iterable[tuple[int, bytes, Any]]) -> None:
    """Landed ``(page, body, context)`` triples held in memory (tests; small windows)."""
    seqs, lines = [], []
    for page_no, body, _ctx in pages:
        seqs.append(page_no)
        lines.append(body.replace(b"\n", b" ") + b"\n")
    if lines:
        feed_lines(norm, np.array(seqs, np.int64), pa.array(lines, pa.large_binary()))
