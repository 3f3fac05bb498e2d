"""Landed pages → typed rows: orders, order lines and rejects, as declared in :mod:`schemas`.

Decisions (the contract leaves these open; WAREHOUSE.md fixes the result):

- Ids arrive as strings or JSON numbers and are kept as strings. A float-looking id (``1.2e18``)
  or a non-scalar is bad input: the record is rejected rather than stored with a rounded id.
- Money arrives as numbers or numeric strings and is parsed to ``Decimal`` without ever passing
  through a binary float. More than two decimals, or a value that does not fit DECIMAL(18,2), is
  bad input. ``total_amount`` is ``goods + shipping`` with SQL semantics (null if either is null).
- Times are ``yyyy-MM-dd HH:mm:ss`` in China Standard Time (the offset is an [assumed] setting of
  :data:`xport_etl.extract.endpoints.ASSUMED`) and become UTC. An unparseable or impossible time is bad
  input; a null or empty time is simply null.
- An unknown Taobao order status maps to ``other`` (code 9's meaning, "unenumerated"), keeping the
  raw code in ``platform_status``: an order with money on it is never dropped for its status. An
  unknown refund status code gives a null unified ``refund_status`` (raw code kept in
  ``platform_refund_status``); a null Taobao ``refundStatus`` means no refund: ``none``.
- The same order seen twice in a window (data moving while pages were read) is kept once: the
  version with the latest ``updateTime`` wins, ties go to the first seen (pages are newest first).
  The same id twice within one page is a server fault: the losing copy goes to the rejects.
- A JSON object that repeats a member name keeps the first occurrence (see :func:`first_wins`).
- Amounts are never negative (a purchase, a fee, a refund): a negative amount is bad input.

**The rule: a record is dropped only when the warehouse cannot hold it.** Bad input in a record
ends in one of two ways, each a row of ``etl_rejects`` (its ``severity``):

- **rejected** — the record is not loaded (with its lines or events), only when
  (a) its key is unusable: the record is not an object, its id is missing or cannot be typed
  (a float, bool, list or object; too long), or it is the losing copy of a key seen twice in one
  page (an order) or one order (a line); or
  (b) a value that a **public** warehouse column (``Column.public`` in :mod:`xport_etl.schemas`,
  the analyst contract) is defined from cannot be typed: money that is an object, a float
  ``NaN``, a non-numeric string, negative, more than two decimals or beyond DECIMAL(18,2); a
  quantity or status that is not an integer or beyond INTEGER; an impossible or malformed time;
  text that is not text; a nested list (``subOrderVOS``, ``productItems``,
  ``pnmLogisticsDetails``, ``logisticsTraces``, ``logisticsTrace``, ``logisticsSteps``,
  ``logisticsPartner``) that is an object or a scalar (null is an empty list) — ``line_count``,
  ``event_count`` and the parcels are defined from them; or
  (c) the record cannot be read as a whole: bytes that are not valid UTF-8, or a JSON
  ``\\uD800``-style lone surrogate, anywhere in it; or
  (d) any of its times is more than an hour after the moment it is normalised (``rejected_at``,
  the tolerance of ``sql/checks/chk_all__no_future_timestamps.sql``). Such a time is treated as
  an impossible value: a corrupt future ``updateTime`` would otherwise win the latest-version
  merge for ever, and one corrupt record must not stop the publish of every other one.
- **warning** — everything else: a field that no column is defined from (``receiver``, a JSON
  string that does not decode or is not an object), or one that only a non-public (plumbing)
  column is defined from (``close_reason``, a line's ``line_status``, ``carrier``,
  ``tracking_number``, a 1688 item's ``refund_id``, a parcel's ``goods_quantity`` and
  ``order_status_at_fetch``, the refund detail's ``purchaseOrderLine`` whose ids have fallbacks).
  The record loads, the affected column is null, and the ``etl_rejects`` row names the record
  (``record_id``: the order id, ``order/line`` for a line), the ``field`` (a path in the record as
  served, e.g. ``subOrderVOS[2].logisticNumber``), the reason, and the field's raw value as JSON
  (``raw_json``). A line (or item) that is itself rejected carries no warnings. A record version
  that the window reads is checked whole: a warning of a version that a later one replaced stays
  in ``etl_rejects`` (as a line reject does).

Per normaliser, field by field: ``docs/rejects-and-warnings.md``. In code a warned field is read
through :class:`Lenient`, everything else through the scalar parsers, which raise
``RejectError``; a bad line is rejected alone, its order loads and ``line_count`` still counts it.

Record-level or page-level (bad input never crashes the normaliser with anything but these two):

- **Record-level** (``RejectError`` or a warning: the record lands in ``etl_rejects`` as above,
  every other record of the page loads): see the rule above; also a number too long for Python's
  int conversion limit (kept as a decimal, so it only affects its record).
- **Page-level** (``PageError``: the window fails, nothing of it is staged, the raw page is kept
  for a re-run): the body is not JSON (or nested too deeply to parse); not a JSON object; an
  envelope ``code`` other than 200; ``data`` not an object; ``records`` present but not a list.
  An absent or null ``records`` is an empty page.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions, parse_cst

CENT = Decimal("0.01")
MAX_MONEY = Decimal("9999999999999999.99")  # DECIMAL(18,2)
MAX_INT32 = 2**31 - 1
FUTURE_TOLERANCE = timedelta(hours=1)  # as sql/checks/chk_all__no_future_timestamps.sql
_SHOW = 80  # longest value quoted in a reject reason

TAOBAO_ORDER_STATUS = {
    12: "created",
    0: "awaiting_payment",
    1: "awaiting_payment",
    3: "awaiting_payment",
    5: "awaiting_payment",
    2: "paid",
    10: "paid",
    11: "shipped",
    4: "cancelled",
    9: "other",
}
TAOBAO_REFUND_STATUS = {
    0: "none",
    10: "applied",
    20: "agreed",
    30: "waiting_return",
    100: "succeeded",
    -10: "refused",
    -20: "closed",
}


class RejectError(ValueError):
    """A record that cannot be normalised; the message is the reason stored in etl_rejects."""


class PageError(ValueError):
    """A landed page that is not a page at all (not JSON, no records list): the window fails."""


# ---- scalar parsers: each returns the typed value or raises RejectError naming the field


def show(value: Any) -> str:
    """``repr(value)`` for a reject reason, cut short: a reason never carries a megabyte."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int beyond Python's digit limit; absurd nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOW else text[: _SHOW - 3] + "..."


def _int_text(value: int) -> str | None:
    """``str(value)``, or None for an int beyond Python's int→str digit limit."""
    try:
        return str(value)
    except ValueError:
        return None


def to_id(value: Any, name: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise RejectError(f"missing {name}")
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            if required:
                raise RejectError(f"missing {name}")
            return None
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        text = _int_text(value)
        if text is None:
            raise RejectError(f"{name} is too long for an id: {show(value)}")
        return text
    raise RejectError(f"{name} is not a string or integer id: {show(value)}")


def to_text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        text = _int_text(value) if isinstance(value, int) else str(value)
        if text is None:
            raise RejectError(f"{name} is too long for text: {show(value)}")
        return text
    raise RejectError(f"{name} is not text: {type(value).__name__}")


_NUMERIC = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def to_money(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise RejectError(f"{name} is not an amount: {value!r}")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        if not _NUMERIC.fullmatch(text):
            raise RejectError(f"{name} is not an amount: {show(value)}")
        amount = Decimal(text)
    else:
        raise RejectError(f"{name} is not an amount: {type(value).__name__}")
    if not amount.is_finite():
        raise RejectError(f"{name} is not a finite amount: {show(value)}")
    if amount and amount.adjusted() > 18:  # beyond DECIMAL(18,2), and beyond what quantize can hold
        raise RejectError(f"{name} is out of range for DECIMAL(18,2): {show(value)}")
    try:
        cents = amount.quantize(CENT)
    except InvalidOperation as exc:
        raise RejectError(f"{name} is out of range: {show(value)}") from exc
    if cents != amount:
        raise RejectError(f"{name} has more than two decimals: {show(value)}")
    if abs(cents) > MAX_MONEY:
        raise RejectError(f"{name} is out of range for DECIMAL(18,2): {show(value)}")
    if cents < 0:
        raise RejectError(f"{name} is negative: {show(value)}")
    return cents


_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def to_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise RejectError(f"{name} is not an integer: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value):
        text = value.strip()
        digits = text.lstrip("+-").lstrip("0") or "0"
        if len(digits) > 18:  # and int() of more than 4300 digits raises ValueError
            raise RejectError(f"{name} is out of range: {show(value)}")
        number = -int(digits) if text.startswith("-") else int(digits)
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if value and value.adjusted() > 18:  # int(Decimal("1E+999999999")) runs for hours
            raise RejectError(f"{name} is out of range: {show(value)}")
        number = int(value) if value else 0
    else:
        raise RejectError(f"{name} is not an integer: {show(value)}")
    if abs(number) > MAX_INT32:
        raise RejectError(f"{name} is out of range: {show(value)}")
    return number


def to_quantity(value: Any, name: str) -> int | None:
    number = to_int(value, name)
    if number is not None and number < 0:
        raise RejectError(f"{name} is negative: {show(value)}")
    return number


def to_cst_time(value: Any, name: str, assumptions: ApiAssumptions = ASSUMED) -> datetime | None:
    """A CST ``yyyy-MM-dd HH:mm:ss`` string → naive UTC datetime (Arrow reads naive as UTC)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RejectError(f"{name} is not a time string: {show(value)}")
    try:
        return parse_cst(value, assumptions=assumptions).astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise RejectError(f"{name} is not a valid yyyy-MM-dd HH:mm:ss time: {show(value)}") from exc


def status_code(value: Any, name: str) -> int | None:
    return to_int(value, name)


def to_json_object(value: Any, name: str) -> dict | None:
    """A JSON object, or a string holding one (``receiver``, CONTRACT §3); null or blank is None."""
    if value is None or isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise RejectError(f"{name} is neither a JSON string nor an object: {type(value).__name__}")
    if not value.strip():
        return None
    try:
        decoded = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise RejectError(f"{name} is not valid JSON: {show(exc)}") from exc
    if not isinstance(decoded, dict):
        raise RejectError(f"{name} JSON is not an object: {type(decoded).__name__}")
    return decoded


# ---- raw JSON for the rejects table, with decimals kept as the numbers they were

# a marker no served string can forge: random per process
_DEC_TOKEN = secrets.token_hex(8)
_DEC_MARK = f"\x00dec{_DEC_TOKEN}:"


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{_DEC_MARK}{value}\x00"
    raise TypeError(type(value).__name__)


_DEC_RE = re.compile(r'"\\u0000dec' + _DEC_TOKEN + r':([^"\\]*)\\u0000"')


def raw_json(record: Any) -> str:
    """Serialise a parsed record back to JSON, writing Decimals as bare numbers again."""
    text = json.dumps(record, default=_encode_default, ensure_ascii=False)
    return _DEC_RE.sub(r"\1", text)


# ---- records


REJECTED = "rejected"  # etl_rejects.severity: the record did not load
WARNING = "warning"  # etl_rejects.severity: the record loaded, one non-public column of it is null


@dataclass
class Reject:
    """A row for ``etl_rejects``: a rejected record, or (``severity`` WARNING) a field of a loaded
    record that could not be read, ``field`` naming it and ``raw`` holding its value."""

    endpoint: str
    record_id: str | None
    reason: str
    raw: Any
    page: int
    severity: str = REJECTED
    field: str | None = None


class Lenient:
    """Reads the fields that no public warehouse column is defined from (see the module docstring).

    ``lenient(parse, value, name)`` is ``parse(value, name)``, except that a ``RejectError`` does
    not reject the record: the value is read as None and ``(name, reason, value)`` is kept in
    :attr:`found`, for the caller to record as a warning.
    """

    def __init__(self) -> None:
        self.found: list[tuple[str, str, Any]] = []

    def __call__(self, parse: Any, value: Any, name: str, *args: Any) -> Any:
        try:
            return parse(value, name, *args)
        except RejectError as exc:
            self.found.append((name, str(exc), value))
            return None

    def warnings(self, endpoint: str, record_id: str | None, page: int, *, prefix: str = "",
                 reason_prefix: str = "") -> list[Reject]:
        """What was found, as warnings of ``record_id``: ``field`` is the name prefixed with
        ``prefix`` (the path of the record in what was served), except for a page's request
        context (``context …``), which is not part of the record."""
        return [Reject(endpoint, record_id, f"{reason_prefix}{reason}", value, page, WARNING,
                       name if name.startswith("context ") else f"{prefix}{name}")
                for name, reason, value in self.found]


@dataclass
class Rows:
    """One normalised record: its row in a parent table, its child rows, and child rejects.

    ``version`` orders two states of the same ``key`` (e.g. ``updated_at``); None is oldest.
    """

    table: str
    row: dict
    key: tuple
    version: Any = None
    children: dict[str, list[dict]] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    raw: Any = None
    index: int = 0  # the record's position in its page

    def newer_than(self, other: Rows) -> bool:
        """Is this a strictly later state than ``other`` (nulls are oldest)?"""
        if self.version is None:
            return False
        return other.version is None or self.version > other.version


def normalize_taobao_order(
    rec: Any, *, endpoint: str = "taobao_orders", page: int = 0, assumptions: ApiAssumptions = ASSUMED
) -> Rows:
    """One ``TaoBaoOrderVO`` → a ``fct_orders`` row, its ``fct_order_lines`` rows, line rejects.

    Raises:
        RejectError: the order as a whole cannot be normalised (the reason says why).
    """
    if not isinstance(rec, dict):
        raise RejectError(f"order record is not an object: {type(rec).__name__}")
    order_id = to_id(rec.get("id"), "id", required=True)
    subs = rec.get("subOrderVOS")
    if subs is not None and not isinstance(subs, list):
        raise RejectError(f"subOrderVOS is not a list: {type(subs).__name__}")
    lenient = Lenient()
    lenient(to_json_object, rec.get("receiver"), "receiver")  # no column: read only to check it

    code = status_code(rec.get("status"), "status")
    goods = to_money(rec.get("purchaseAmount"), "purchaseAmount")
    shipping = to_money(rec.get("domesticPostFee"), "domesticPostFee")
    total = goods + shipping if goods is not None and shipping is not None else None
    if total is not None and abs(total) > MAX_MONEY:
        raise RejectError("purchaseAmount + domesticPostFee is out of range for DECIMAL(18,2)")
    order = {
        "platform": "taobao",
        "order_id": order_id,
        "order_no": to_id(rec.get("orderNo"), "orderNo"),
        "status": None if code is None else TAOBAO_ORDER_STATUS.get(code, "other"),
        "platform_status": None if code is None else str(code),
        "order_source": to_text(rec.get("orderSource"), "orderSource"),
        "seller_order_number": to_text(rec.get("sellerOrderNumber"), "sellerOrderNumber"),
        "seller": None,
        "currency": to_text(rec.get("purchaseCurrency"), "purchaseCurrency"),
        "goods_amount": goods,
        "shipping_amount": shipping,
        "total_amount": total,
        "line_count": len(subs) if subs else 0,
        "created_at": to_cst_time(rec.get("createTime"), "createTime", assumptions),
        "paid_at": to_cst_time(rec.get("payTime"), "payTime", assumptions),
        "updated_at": to_cst_time(rec.get("updateTime"), "updateTime", assumptions),
        "close_reason": lenient(to_text, rec.get("closeReason"), "closeReason"),
    }
    lines: list[dict] = []
    rows = Rows("orders", order, ("taobao", order_id), order["updated_at"], {"order_lines": lines}, raw=rec)
    rows.rejects.extend(lenient.warnings(endpoint, order_id, page))
    seen: set[str] = set()
    for index, sub in enumerate(subs or ()):
        line_lenient = Lenient()
        try:
            line = _taobao_line(sub, order_id, index, line_lenient)
        except RejectError as exc:
            rid = f"{order_id}/{_record_id(sub, 'subOrderId') or f'#{index}'}"
            rows.rejects.append(Reject(endpoint, rid, f"sub-order: {exc}", sub, page))
            continue
        if line["line_id"] in seen:
            rid = f"{order_id}/{line['line_id']}"
            rows.rejects.append(Reject(endpoint, rid, "sub-order: duplicate subOrderId in order", sub, page))
            continue
        seen.add(line["line_id"])
        lines.append(line)
        rows.rejects.extend(line_lenient.warnings(endpoint, f"{order_id}/{line['line_id']}", page,
                                                  prefix=f"subOrderVOS[{index}].", reason_prefix="sub-order: "))
    return rows


def _taobao_line(sub: Any, order_id: str, index: int, lenient: Lenient) -> dict:
    if not isinstance(sub, dict):
        raise RejectError(f"sub-order is not an object: {type(sub).__name__}")
    refund = status_code(sub.get("refundStatus"), "refundStatus")
    line_code = lenient(status_code, sub.get("status"), "status")
    return {
        "platform": "taobao",
        "order_id": order_id,
        "line_id": to_id(sub.get("subOrderId"), "subOrderId", required=True),
        "line_index": index,
        "item_id": to_id(sub.get("itemId"), "itemId"),
        "sku_id": to_id(sub.get("skuId"), "skuId"),
        "title": to_text(sub.get("title"), "title"),
        "quantity": to_quantity(sub.get("quantity"), "quantity"),
        "amount": to_money(sub.get("purchaseAmount"), "purchaseAmount"),
        "shipping_amount": to_money(sub.get("domesticPostFee"), "domesticPostFee"),
        "currency": to_text(sub.get("purchaseCurrency"), "purchaseCurrency"),
        "refund_status": "none" if refund is None else TAOBAO_REFUND_STATUS.get(refund),
        "purchase_id": to_id(sub.get("taobaoPurchaseId"), "taobaoPurchaseId"),
        "purchase_line_id": to_id(sub.get("taobaoSubPurchaseId"), "taobaoSubPurchaseId"),
        "line_status": None if line_code is None else str(line_code),
        "platform_refund_status": None if refund is None else str(refund),
        "carrier": lenient(to_text, sub.get("logisticCompanyName"), "logisticCompanyName"),
        "tracking_number": lenient(to_id, sub.get("logisticNumber"), "logisticNumber"),
    }


# ---- pages and windows


_LONE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_MAX_INT_DIGITS = 4000  # below Python's int<->str conversion limit (4300 digits)


def _big_int(text: str) -> int | Decimal:
    """JSON integers too long for ``int()``: kept as Decimals, so they reject their record only."""
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


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
    try:
        try:
            envelope = json.loads(text, parse_float=Decimal, object_pairs_hook=first_wins)
        except ValueError:  # perhaps an integer beyond int()'s digit limit: try once more
            envelope = json.loads(text, parse_float=Decimal, parse_int=_big_int, object_pairs_hook=first_wins)
    except (ValueError, RecursionError) as exc:
        raise PageError(f"page is not valid JSON: {show(exc)}") from exc
    if not isinstance(envelope, dict):
        raise PageError("page is not a JSON object")
    code = envelope.get("code")
    if code is not None and code not in (200, "200"):
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

    def reject(self, record_id: str | None, reason: str, raw: Any, page: int, *,
               severity: str = REJECTED, field: str | None = None) -> None:
        """A row for ``etl_rejects``. ``raw``: the record (a string is taken as its JSON text
        already), or for a WARNING the field's value (always serialised, strings included)."""
        if isinstance(raw, str) and severity == REJECTED:
            text = raw
        else:
            try:
                text = raw_json(raw)
            except (ValueError, RecursionError):  # absurd nesting or an overlong int: keep a trace
                text = json.dumps({"unserialisable": show(raw)})
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
        self.reject(_record_id(rec, id_field), "record contains bytes that are not valid UTF-8",
                    json.dumps(rec, default=str, ensure_ascii=True), page)
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
        current = self._best.get(rows.key)
        if current is None or rows.newer_than(current):
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


def normalize_taobao_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise a window of ``TaoBaoOrderVO`` pages into orders, order lines and rejects."""
    return taobao_window(pages, endpoint=endpoint, window_id=window_id, rejected_at=rejected_at,
                         assumptions=assumptions).finish()


def taobao_window(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
    only: dict[int, list[int]] | None = None,
) -> WindowRows:
    """The records of ``TaoBaoOrderVO`` pages, kept once per order (:meth:`WindowRows.winners`)
    with their rejects; :func:`normalize_taobao_pages` turns it into tables.

    ``only``: page number → the positions of the records to read (in page order); the page's
    other records are skipped (the DuckDB normaliser typed them). None reads every record.
    """
    out = WindowRows(endpoint, window_id, rejected_at)
    for page_no, body, _ctx in pages:
        records, clean = parse_page(body)
        chosen = enumerate(records) if only is None else ((i, records[i]) for i in only[page_no])
        for index, rec in chosen:
            out.records += 1
            if not out.readable(rec, clean, page_no, "id"):
                continue
            try:
                rows = normalize_taobao_order(rec, endpoint=endpoint, page=page_no, assumptions=assumptions)
            except RejectError as exc:
                out.reject(_record_id(rec, "id"), str(exc), rec, page_no)
                continue
            rows.index = index
            out.keep(rows, page_no)
    return out


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    # from_pylist walks the dicts in C++: about twice as fast as building columns in Python
    return pa.Table.from_pylist(rows, schema=schema)
