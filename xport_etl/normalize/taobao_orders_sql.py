"""Taobao order pages → orders and order lines, in DuckDB: the fast path of the normaliser.

:mod:`xport_etl.normalize.values` is the reference: it states every rule (ids, money, times, statuses,
rejects, duplicates) in Python, one record at a time. At a million orders that costs minutes of
per-record Python, so the order pages (by far the largest endpoint) take this path instead:

1. pages are decompressed in bounded chunks (``taobao_orders_chunks.CHUNK_BYTES`` of JSON at a time: memory does not
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
   :class:`~xport_etl.normalize.taobao_orders_suspects.PageRecords`);
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
  are scanned in Python (:meth:`~xport_etl.normalize.taobao_orders_suspects.PageRecords.suspects`) to find the records that do. Longer literals need no
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

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pyarrow as pa

from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.normalize.pages import WindowRows, loads_exact, to_table
from xport_etl.normalize.taobao_orders import (
    LINE_LENIENT,
    ORDER_LENIENT,
    read_records,
    taobao_window,
)
from xport_etl.normalize.taobao_orders_shapes import (
    INEXACT_NUMBER,
    LINE_WARN,
    MAYBE_INEXACT,
    ORDER_WARN,
    STRUCTURE,
    SUSPECT,
    TRAILING_COMMA,
    UNSAFE_ESCAPE,
    install_macros,
    line_cols,
    order_cols,
    warn_cols,
)
from xport_etl.normalize.taobao_orders_suspects import INEXACT_TEXT, PageRecords, page_bodies
from xport_etl.normalize.values import FUTURE_TOLERANCE, Lenient, PageError
from xport_etl.schemas import ETL_REJECTS, FCT_ORDER_LINES, FCT_ORDERS

PAGES_PER_BATCH = 8  # Arrow record batch size in pages: DuckDB scans batches in parallel
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


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
    # from its own text where the page allows: :class:`PageRecords`)
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
        install_macros(con)
        con.execute(f"create schema {self.schema}")
        # the reference's rows (appended by every chunk: appends never conflict in DuckDB)
        con.execute(
            f"create table {self.schema}.ref_orders as select {order_cols(self.offset_s)} from "
            "(select null::json as r, 0::bigint as seq, 0::integer as idx) where false"
        )
        con.execute(
            f"create table {self.schema}.ref_lines as select {line_cols()} from "
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
        install_macros(con)

    # ---- feeding pages

    def feed(self, seqs: np.ndarray, bodies: pa.Array) -> _Chunk:
        """Type the chunk's pages (``seqs`` their page numbers, ``bodies`` the JSON texts)."""
        self.orders = f"{self.window.schema}.orders_{self.first}"
        self.lines = f"{self.window.schema}.lines_{self.first}"
        self.stats.pages += len(bodies)
        table = pa.table({"seq": pa.array(seqs, pa.int64()), "body": bodies})
        chunk = pa.Table.from_batches(table.to_batches(max_chunksize=PAGES_PER_BATCH))
        con = self.con
        body = page_bodies(seqs, bodies)
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
        pages: dict[int, PageRecords] = {}

        def page(seq: int) -> PageRecords:
            if seq not in pages:
                pages[seq] = PageRecords(body(seq), self.stats)
            return pages[seq]

        def take(seq: int) -> PageRecords:  # (a page's text is held no longer than needed)
            return pages.pop(seq, None) or PageRecords(body(seq), self.stats)

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
            select {line_cols()},
                   coalesce(l.subOrderId is not null and id_ok(l.subOrderId) and id_val(l.subOrderId) is not null
                       and id_ok(l.itemId) and id_ok(l.skuId) and text_ok(l.title) and qty_ok(l.quantity)
                       and money_ok(l.purchaseAmount) and money_ok(l.domesticPostFee)
                       and text_ok(l.purchaseCurrency) and int_ok(l.refundStatus)
                       and id_ok(l.taobaoPurchaseId) and id_ok(l.taobaoSubPurchaseId), false) as ok,
                   {warn_cols("l", LINE_WARN)}
            from (select seq, idx, r.id as oid, unnest(r.subOrderVOS) as l,
                         generate_subscripts(r.subOrderVOS, 1) - 1 as li from recs)
        """)
        con.execute(f"""
            create table {self.orders} as
            select {order_cols(self.window.offset_s)},
                   coalesce(r.id is not null and id_ok(r.id) and id_val(r.id) is not null
                    and id_ok(r.orderNo) and int_ok(r.status) and text_ok(r.orderSource)
                    and text_ok(r.sellerOrderNumber) and money_ok(r.purchaseAmount)
                    and text_ok(r.purchaseCurrency) and money_ok(r.domesticPostFee)
                    and ts_ok(r.createTime) and ts_ok(r.payTime) and ts_ok(r.updateTime), false) as ok,
                   r.subOrderVOS is null and r is not null as no_subs,
                   {warn_cols("r", ORDER_WARN)}
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
                if (text[0] != '"' and INEXACT_TEXT.search(text)) or (
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
        self, page: Callable[[int], PageRecords], skip: dict[int, str]
    ) -> tuple[dict[int, WindowRows], dict[int, str]]:
        """The reference on the records of ``py_recs``, page by page (not the pages in ``skip``),
        each record parsed alone where its page allows (:class:`PageRecords`).

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
