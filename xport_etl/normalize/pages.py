"""Pages and windows: page envelopes parsed (first member wins, big ints kept), a window's rows,
rejects and warnings collected (:class:`WindowRows`), and the list and detail window loops the
per-source normalisers share.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from xport_etl import jsonutil
from xport_etl.normalize.values import (
    FUTURE_TOLERANCE,
    REJECTED,
    WARNING,
    PageError,
    RejectError,
    Rows,
    _int_text,
    show,
)
from xport_etl.numbers import ascii_int

# ---- pages and windows


_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def first_wins(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object whose member names repeat keeps the first occurrence of each.

    RFC 8259 leaves repeated names to the reader; Python's default keeps the last, DuckDB (yyjson)
    the first. The DuckDB normaliser (:mod:`xport_etl.normalize.taobao_orders_sql`) cannot see repeats without
    parsing every page again, so the reference reads them as DuckDB does, and both agree.
    """
    obj = dict(pairs)
    if len(obj) != len(pairs):
        obj = {}
        for key, value in pairs:
            obj.setdefault(key, value)
    return obj


def loads_exact(text: str | bytes) -> Any:
    """JSON as the normalisers read it (:func:`xport_etl.jsonutil.loads`): numbers with a fraction
    or an exponent as Decimals, an integer too long for ``int()`` a Decimal (it rejects its record
    only), the first of a repeated member name (:func:`first_wins`).

    Raises:
        ValueError: not JSON, or nested deeper than the parser goes.
    """
    return jsonutil.loads(text, object_pairs_hook=first_wins)


def parse_envelope(body: bytes) -> tuple[dict, bool]:
    """A landed body → its ``data`` object, and whether every string in it is valid Unicode.

    "Not clean" means the bytes were not valid UTF-8 (kept as surrogate escapes) or the JSON
    holds a ``\\uD800``-style escape that may be a lone surrogate: the records that contain one
    are rejected one by one (see :func:`has_surrogates`) rather than failing the page.

    Raises:
        PageError: not JSON, not an object, an envelope ``code`` other than 200, or ``data`` is
            not an object.
    """
    clean = True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text, clean = body.decode("utf-8", errors="surrogateescape"), False
    if clean and _LONE_SURROGATE.search(body):
        clean = False
    try:  # integers too long for int() are kept as Decimals: they reject their record only
        envelope = loads_exact(text)
    except ValueError as exc:
        raise PageError(f"page is not valid JSON: {show(exc)}") from exc
    if not isinstance(envelope, dict):
        raise PageError("page is not a JSON object")
    code = envelope.get("code")
    if code is not None and ascii_int(code, max_digits=3) != 200:
        raise PageError(f"page is an error answer (envelope code {show(code)}, msg {show(envelope.get('msg'))})")
    data = envelope.get("data")
    if not isinstance(data, dict):
        raise PageError(f"page data is not an object (envelope code {show(code)})")
    return data, clean


def parse_page(body: bytes) -> tuple[list, bool]:
    """A landed list page body → its records list, and whether it is clean (see
    :func:`parse_envelope`).

    Raises:
        PageError: see :func:`parse_envelope`; also ``records`` present but not a list.
    """
    data, clean = parse_envelope(body)
    records = data.get("records")
    if records is None:
        return [], clean
    if not isinstance(records, list):
        raise PageError(f"page records is not a list: {type(records).__name__}")
    return records, clean


class _Records(msgspec.Struct):
    records: list[msgspec.Raw]


class _ListPage(msgspec.Struct):
    data: _Records


_LIST_PAGE = msgspec.json.Decoder(_ListPage)
# a run of digits this long may be an integer beyond int()'s limit, after which parse_envelope
# reads the whole page again with other integer rules (jsonutil.loads keeps it as a Decimal)
_LONG_DIGITS = b"0" * (jsonutil.MAX_INT_DIGITS + 1)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
# such a run covers a whole stretch ``body[k * _STRIDE : (k + 1) * _STRIDE + 1]``
_STRIDE = (jsonutil.MAX_INT_DIGITS + 1) // 2
_DIGITS = frozenset(b"0123456789")


def _long_digits(body: bytes) -> bool:
    """Whether ``body`` holds a run of more than :data:`~xport_etl.jsonutil.MAX_INT_DIGITS` digits.

    A run that long covers a whole stretch of ``_STRIDE + 1`` bytes starting at a multiple of
    ``_STRIDE``: only those stretches are looked at (a few bytes each, as ``isdigit`` stops at the
    first other byte), and the exact scan runs only if one is all digits."""
    n = len(body)
    if not any(body[k] in _DIGITS and body[k : k + _STRIDE + 1].isdigit() for k in range(0, n - _STRIDE, _STRIDE)):
        return False
    return _LONG_DIGITS in body.translate(_DIGITS_AS_ZERO)


def _address(buffer: Any) -> int:
    return int(np.frombuffer(buffer, np.uint8).ctypes.data)


def _envelope(body: bytes, texts: list[msgspec.Raw]) -> bytes | None:
    """The page's text outside its records (the envelope, and ``data`` less ``records``), from
    where msgspec found the first and the last record (each a view into ``body``); None if they
    are not views into it."""
    start = _address(texts[0]) - _address(body)
    end = _address(texts[-1]) - _address(body) + len(texts[-1])
    first, last = bytes(texts[0]), bytes(texts[-1])
    if not (0 < start <= end <= len(body)) or (body[start : start + len(first)], body[end - len(last) : end]) != (
        first,
        last,
    ):
        return None
    return body[:start] + body[end:]


def record_texts(body: bytes) -> list[msgspec.Raw] | None:
    """The exact text of each record of a list page (``data.records``), without parsing them; or
    None when :func:`loads_exact` of one record's text is not certain to give that record as
    :func:`parse_page` of the whole page would.

    The texts are slices of ``body`` found by msgspec, which checks the JSON but builds no value
    (~10x faster than parsing the page). Each text read with :func:`loads_exact` is then the
    record :func:`parse_page` gives, provided the page is as :func:`parse_page` reads it: strict
    JSON (msgspec refuses ``NaN``, trailing commas, control characters: None), one ``data`` and
    one ``records`` member (msgspec keeps the last of a repeated name, ``parse_page`` the first:
    the page's text outside its records naming either twice gives None, as does any ``\\u``
    escape there, which could spell one), UTF-8 (it is by then) and with no integer long enough to
    make ``parse_envelope`` read the page again with other rules. A record's own names and
    escapes read the same alone as in the page; whether the records read are clean (no lone
    surrogate) is the caller's to say from their own texts (:func:`texts_clean`).

    The checks look at the text outside the records and at a few bytes of the rest, so a page
    costs about msgspec's scan of it; a page without records (or whose records msgspec did not
    hand back as views of ``body``) is checked whole."""
    try:
        texts = _LIST_PAGE.decode(body).data.records
    except (msgspec.DecodeError, RecursionError):  # (a ValidationError is a DecodeError)
        return None
    outside = _envelope(body, texts) if texts else None
    if outside is None:
        outside = body
    if outside.count(b'"data"') != 1 or outside.count(b'"records"') != 1 or b"\\u" in outside:
        return None
    return None if _long_digits(body) else texts


def texts_clean(texts: Iterable[msgspec.Raw | bytes]) -> bool:
    """Whether records read from these texts are clean as :func:`parse_envelope` says of a page
    (UTF-8 already: no escape that may be a lone surrogate in any of them)."""
    return not any(_LONE_SURROGATE.search(t) for t in texts)


def has_surrogates(record: Any) -> bool:
    try:
        json.dumps(record, default=str, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):  # an int beyond the digit limit; absurd nesting
        return False
    return False


def _record_id(rec: Any, key: str) -> str | None:
    """The record's id for a reject row, if it is a readable string or integer."""
    if isinstance(rec, dict):
        value = rec.get(key)
        if isinstance(value, str) and not has_surrogates(value):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return _int_text(value)
    return None


def _id_text(value: Any) -> str | None:
    """A record id fit for a Parquet string column (readable text), else None."""
    if value is None or not isinstance(value, str) or has_surrogates(value):
        return None
    return value


def count_warned(rejects: Iterable[dict]) -> int:
    """Records loaded with a warning among ``etl_rejects`` rows: distinct ``record_id`` of the
    WARNING rows (an order and one of its lines are two records)."""
    return len({(r["endpoint"], r["record_id"]) for r in rejects if r.get("severity") == WARNING})


@functools.cache
def _time_columns(table: str) -> tuple[str, ...]:
    """The timestamp columns of a staged table (what the future-time check looks at)."""
    from xport_etl.schemas import STAGED_TABLES, UTC_TS

    return tuple(c.name for c in STAGED_TABLES[table].spec.columns if c.type == UTC_TS)


class WindowRows:
    """Everything normalised from one landed window, ready for Parquet.

    Records are kept once per key: across pages the later ``version`` wins (ties: first seen,
    as pages are newest first); the same key twice within one page is a server fault and the
    losing copy is rejected.
    """

    def __init__(self, endpoint: str, window_id: str, rejected_at: datetime):
        self.endpoint, self.window_id, self.rejected_at = endpoint, window_id, rejected_at
        self.tables: dict[str, list[dict]] = {}
        self.rejects: list[dict] = []
        self.records = 0
        self._best: dict[tuple, Rows] = {}
        self._page: dict[tuple, Rows] = {}
        self._page_no: int | None = None

    def reject(
        self,
        record_id: str | None,
        reason: str,
        raw: Any,
        page: int,
        *,
        severity: str = REJECTED,
        field: str | None = None,
    ) -> None:
        """A row for ``etl_rejects``. ``raw``: the record as parsed, or for a WARNING the field's
        value; a record served as a JSON string is written as that string.

        ``raw_json`` is compact JSON, money exact, from :func:`xport_etl.jsonutil.dumps` (floats
        allowed: a NaN or Infinity served is written back as that token); a lone surrogate or an
        undecodable byte in it is written as its ``\\uXXXX`` escape."""
        try:
            text = jsonutil.dumps(raw, floats="allow")
        except (ValueError, RecursionError):  # absurd nesting or an overlong int: keep a trace
            text = jsonutil.dumps({"unserialisable": show(raw)})
        if has_surrogates(text):  # only ever stored as escapes: Parquet strings are UTF-8
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        self.rejects.append(
            {
                "endpoint": self.endpoint,
                "record_id": _id_text(record_id),
                "reason": reason,
                "raw_json": text,
                "window_id": self.window_id,
                "page": page,
                "rejected_at": self.rejected_at,
                "severity": severity,
                "field": field,
            }
        )

    @property
    def rejected(self) -> int:
        """Rows of :attr:`rejects` that are rejections (records, lines, losing copies)."""
        return sum(1 for r in self.rejects if r["severity"] == REJECTED)

    @property
    def warned(self) -> int:
        """Records (or lines) loaded with at least one warning."""
        return count_warned(self.rejects)

    def readable(self, rec: Any, clean: bool, page: int, id_field: str) -> bool:
        """False (and rejected) when the record holds bytes that were not valid UTF-8."""
        if clean or not has_surrogates(rec):
            return True
        self.reject(_record_id(rec, id_field), "record contains bytes that are not valid UTF-8", rec, page)
        return False

    def _in_future(self, rows: Rows) -> str | None:
        """The first time of the record (or of its children) beyond ``rejected_at`` + 1 hour."""
        ceiling = self.rejected_at + FUTURE_TOLERANCE
        for table, row in [(rows.table, rows.row)] + [(t, r) for t, rs in rows.children.items() for r in rs]:
            for column in _time_columns(table):
                value = row.get(column)
                if value is not None and value > ceiling:
                    return f"{table}.{column} {value:%Y-%m-%d %H:%M:%S} UTC is in the future"
        return None

    def keep(self, rows: Rows, page: int) -> None:
        future = self._in_future(rows)
        if future is not None:
            self.reject(_id_text(rows.key[-1]), future, rows.raw, page)
            return
        for r in rows.rejects:
            self.reject(r.record_id, r.reason, r.raw, page, severity=r.severity, field=r.field)
        if page != self._page_no:
            self._page, self._page_no = {}, page
        twin = self._page.get(rows.key)
        if twin is not None:
            keep, lose = (rows, twin) if rows.newer_than(twin) else (twin, rows)
            self.reject(rows.key[-1], "duplicate id within one page; kept the later version", lose.raw, page)
            self._page[rows.key] = keep
            current = self._best[rows.key]  # the twin, or an earlier page's version the twin lost to
            if current is twin or keep.newer_than(current):
                self._best[rows.key] = keep
            return
        self._page[rows.key] = rows
        best = self._best.get(rows.key)
        if best is None or rows.newer_than(best):
            self._best[rows.key] = rows

    def winners(self) -> list[Rows]:
        """The records kept so far, one per key (before :meth:`finish` turns them into tables)."""
        return list(self._best.values())

    def finish(self) -> WindowRows:
        for rows in self._best.values():
            self.tables.setdefault(rows.table, []).append(rows.row)
            for table, children in rows.children.items():
                self.tables.setdefault(table, []).extend(children)
        self._best, self._page = {}, {}
        return self


Page = tuple[int, bytes, Any]  # (page number, body as landed, request context or None)


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    # from_pylist walks the dicts in C++: about twice as fast as building columns in Python
    return pa.Table.from_pylist(rows, schema=schema)


# ---- detail pages


def parse_detail(body: bytes) -> tuple[dict, bool]:
    """A landed detail page body → its ``data`` object, and whether it is clean.

    As :func:`parse_page`: invalid UTF-8 (or a lone surrogate escape) does not
    fail the page, the caller rejects the records holding it; anything that is not a code-200
    envelope with an object ``data`` fails the page.

    Raises:
        PageError: not JSON, not an object, an error code, or ``data`` is not an object.
    """
    return parse_envelope(body)


# ---- windows

_Normalizer = Callable[..., WindowRows]


def _list_window(
    pages: Iterable[Page],
    out: WindowRows,
    id_field: str,
    normalize_one: Callable[[Any, int], Rows],
    record_id: Callable[[Any], str | None] | None = None,
) -> WindowRows:
    def rid(rec: Any) -> str | None:
        return record_id(rec) if record_id is not None else _record_id(rec, id_field)

    for page_no, body, _ctx in pages:
        records, clean = parse_page(body)
        for rec in records:
            out.records += 1
            if not clean and has_surrogates(rec):
                _reject_unreadable(out, rid(rec), rec, page_no)
                continue
            try:
                rows = normalize_one(rec, page_no)
            except RejectError as exc:
                out.reject(rid(rec), str(exc), rec, page_no)
                continue
            _own_warnings(rows, _record_id(rec, id_field))
            out.keep(rows, page_no)
    return out.finish()


def _own_warnings(rows: Rows, record_id: str | None) -> None:
    """Warnings made without knowing the record's id (detail answers, parcels) get it here."""
    for r in rows.rejects:
        if r.record_id is None:
            r.record_id = record_id


def _detail_window(
    pages: Iterable[Page],
    out: WindowRows,
    record_id: Callable[[Any, Any], str | None],
    normalize_one: Callable[[Any, Any], Rows],
) -> WindowRows:
    for page_no, body, ctx in pages:
        data, clean = parse_detail(body)
        out.records += 1
        rid = _safe_id(record_id, data, ctx)
        if not clean and has_surrogates(data):
            _reject_unreadable(out, rid, data, page_no)
            continue
        try:
            rows = normalize_one(data, ctx)
        except RejectError as exc:
            out.reject(rid, str(exc), data, page_no)
            continue
        _own_warnings(rows, rid)
        out.keep(rows, page_no)
    return out.finish()


def _safe_id(record_id: Callable[[Any, Any], str | None], data: Any, ctx: Any) -> str | None:
    """The best id for a reject message; never fails (the record may be malformed)."""
    try:
        return record_id(data, ctx)
    except (RejectError, AttributeError, KeyError, TypeError):
        return None


def _reject_unreadable(out: WindowRows, rid: str | None, raw: Any, page: int) -> None:
    if rid is not None and has_surrogates(rid):
        rid = None
    out.reject(rid, "record contains bytes that are not valid UTF-8", raw, page)
