"""Landed pages → typed rows: orders, order lines and rejects, as declared in :mod:`schemas`.

Decisions (the contract leaves these open; docs/warehouse.md fixes the result):

- Ids arrive as strings or JSON numbers and are kept as strings. A float-looking id (``1.2e18``)
  or a non-scalar is bad input: the record is rejected rather than stored with a rounded id.
- Money arrives as numbers or numeric strings and is parsed to ``Decimal`` without ever passing
  through a binary float. Numbers are read in ASCII digits only, with bounded work: ``"١٢.٥"``
  (which ``Decimal`` would read as 12.5), ``"²"`` and ``"٣"`` are bad input like any other text, and
  a huge exponent (``1e9999999``) is out of range before any conversion. More than two decimals, or a value that does not fit DECIMAL(18,2), is
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
  ``\ud800``-style lone surrogate, anywhere in it; or
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

Refunds, parcels and 1688 orders: Decisions (where docs/api-contract.md and docs/warehouse.md are
silent):

- Epoch times (Taobao refunds' ``createTime``/``modifiedTime``) may be numbers or digit strings.
  13 digits are milliseconds, 10 digits are seconds (docs/api-contract.md#3-data-conventions
  mentions both); any other length, a fraction or a sign is bad input. ``0`` is the Java default of
  an unset ``long`` (the doc templates show it) and means null, not 1970.
- 1688 fen amounts (``refundPayment``) are integers or digit strings, converted exactly
  (``Decimal(fen).scaleb(-2)``); a fraction of a fen or a negative amount is bad input.
- Unknown status codes keep the raw code in ``platform_status``: an unknown 1688 order status is
  ``other`` (docs/warehouse.md); an unknown refund status (either platform) has a null unified
  status. A null 1688 refund status is ``none`` (docs/warehouse.md); a null Taobao refund
  ``refundStatus`` on a refund record gives a null unified status (a refund order is never "no
  refund").
- A 1688 order record may be flat or nest its facts in ``baseInfo`` (1688's own shape), per
  record: :func:`alibaba_order_view` reads either (``baseInfo`` wins over a record-level member of
  the same name; ``productItems`` is read at the record level only). Every 1688 time (orders,
  refund details, logistics steps) may be ``yyyy-MM-dd HH:mm:ss`` (CST) or
  ``yyyyMMddHHmmssSSS±hhmm`` (its own offset, milliseconds dropped), per value:
  :func:`to_alibaba_time`. ``discount`` is informational (money or integer fen) and never read.
- 1688 ``goods_amount = totalAmount - shippingFee`` and ``total_amount = goods + shipping`` with
  SQL semantics: null if either input is null. A ``shippingFee`` above ``totalAmount`` (negative
  goods) is bad input, as every negative amount is (:mod:`xport_etl.normalize.values`).
- What is rejected, what is only a warning (the record loads, a non-public column is null) and
  what is page-level (``PageError``) follows the rule in :mod:`xport_etl.normalize.values`: here the
  warned fields are a 1688 item's ``status`` and ``refundId``, a Taobao parcel's
  ``logisticsGoods`` (``goods_quantity``), a 1688 parcel's context ``order_status`` and the
  Taobao refund detail's ``purchaseOrderLine`` when it is not an object (the ids it may carry
  fall back to ``refundOrder`` and the request context). For detail answers (one object per page) a ``data`` that is not an
  object fails the page; a ``pnmLogisticsDetails``/``logisticsTrace`` that is not a list rejects
  that answer; a parcel whose ``logisticsTraces``/``logisticsSteps`` (or ``logisticsPartner``) is
  not a list, or holds a non-object, is rejected alone.
- Refund ``line_id`` is the xportcn sub-order id (``subOrderId``/``subItemId``), the key of
  ``fct_order_lines``; the Taobao refund detail only documents Taobao purchase ids
  (``purchaseOrderLineId``), which are never used as ``line_id``. The detail's ``orderId`` /
  ``subOrderId`` are taken from ``purchaseOrderLine`` or ``refundOrder`` if served, else from the
  page's request context (``order_id``/``line_id``).
- The Taobao refund detail has no documented creation or modification time. ``refundOrder``'s
  ``createTime``/``modifiedTime`` (the list's names, epoch ms) are used if served; otherwise both
  are null (``purchaseOrderLine.createTime`` is the purchase line's creation, not the refund's).
  A null ``updated_at`` is the oldest version, so a list row of the same refund wins over it.
- Parcels: a bad trace (not an object, bad time) rejects its whole parcel, as the parcel's times,
  delivery and status are derived from its traces. A trace with a null time is kept, with a null
  ``event_at``. ``delivered_at`` is the time of the first trace whose status is exactly ``SIGN``.
- 1688 parcels keep the order's status at fetch time (``order_status_at_fetch``, from the fan-out
  context's ``order_status``): the loader derives ``delivered_at`` from it; null for Taobao.
- The same tracking number twice in one window (a parcel carrying several purchase lines is
  answered for each of them) is kept once: the later ``last_event_at`` wins, then the one with
  more events, ties go to the first seen. Twice within one response is a server fault: the losing
  copy goes to the rejects (as for orders).
- ``records`` counts list records, one per detail page for refund details, and one per parcel
  entry for logistics (a detail object rejected whole counts as one).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, overload

from xport_etl.errors import BadInputError
from xport_etl.extract.endpoints import (
    ASSUMED,
    COMPACT_TIME_FORMAT,
    ApiAssumptions,
    is_compact_time,
    parse_alibaba_time,
    parse_cst,
)

CENT = Decimal("0.01")
MAX_MONEY = Decimal("9999999999999999.99")  # DECIMAL(18,2)
MAX_INT32 = 2**31 - 1
FUTURE_TOLERANCE = timedelta(hours=1)  # as sql/checks/chk_all__no_future_timestamps.sql
_SHOW = 80  # longest value quoted in a reject reason
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
    """A record that cannot be normalised; the message is the reason stored in etl_rejects.
    The normalisers' control flow, caught around each record: not an expected failure of a
    command, so not in the :mod:`xport_etl.errors` tree."""


class PageError(BadInputError):
    """A landed page that is not a page at all (not JSON, no records list): the window fails
    (exit 5, :class:`~xport_etl.errors.BadInputError`'s hint)."""


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


@overload
def to_id(value: Any, name: str, required: Literal[True]) -> str: ...
@overload
def to_id(value: Any, name: str, required: bool = False) -> str | None: ...
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


_NUMERIC = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")  # ASCII digits only: Decimal("١٢") is 12


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
    """A JSON object, or a string holding one (``receiver``,
    docs/api-contract.md#3-data-conventions); null or blank is None."""
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

    def warnings(
        self, endpoint: str, record_id: str | None, page: int, *, prefix: str = "", reason_prefix: str = ""
    ) -> list[Reject]:
        """What was found, as warnings of ``record_id``: ``field`` is the name prefixed with
        ``prefix`` (the path of the record in what was served), except for a page's request
        context (``context …``), which is not part of the record."""
        return [
            Reject(
                endpoint,
                record_id,
                f"{reason_prefix}{reason}",
                value,
                page,
                WARNING,
                name if name.startswith("context ") else f"{prefix}{name}",
            )
            for name, reason, value in self.found
        ]


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


MAX_FEN = int(MAX_MONEY * 100)

_EPOCH = datetime(1970, 1, 1)
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 20  # more than any epoch time or DECIMAL(18,2) amount in fen


# ---- scalar parsers


def _digits(value: Any, name: str, what: str) -> int | None:
    """An integer given as a JSON integer, an integral decimal or a digit string (no sign)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RejectError(f"{name} is not {what}: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if value and value.adjusted() > _MAX_DIGITS:  # int(Decimal("1E+999999999")) runs for hours
            raise RejectError(f"{name} is out of range: {show(value)}")
        number = int(value) if value else 0
    elif isinstance(value, str):
        text = value.strip()
        if text == "":
            return None
        if not _DIGITS.fullmatch(text):
            raise RejectError(f"{name} is not {what}: {show(value)}")
        if len(text.lstrip("0")) > _MAX_DIGITS:  # and int() of more than 4300 digits raises
            raise RejectError(f"{name} is out of range: {show(value)}")
        number = int(text)
    else:
        raise RejectError(f"{name} is not {what}: {show(value)}")
    if number < 0:
        raise RejectError(f"{name} is negative: {show(value)}")
    if number >= 10**_MAX_DIGITS:
        raise RejectError(f"{name} is out of range: {show(value)}")
    return number


def to_epoch_ms_time(value: Any, name: str) -> datetime | None:
    """Epoch milliseconds (13 digits) or seconds (10 digits) → naive UTC datetime.

    Numbers and digit strings are accepted; ``0``, null and ``""`` are null.

    Raises:
        RejectError: a fraction, a sign, or a number of neither 10 nor 13 digits.
    """
    number = _digits(value, name, "an epoch time")
    if not number:
        return None
    width = len(str(number))
    if width == 13:
        return _EPOCH + timedelta(milliseconds=number)
    if width == 10:
        return _EPOCH + timedelta(seconds=number)
    raise RejectError(f"{name} is not epoch milliseconds (13 digits) or seconds (10 digits): {show(value)}")


def to_alibaba_time(value: Any, name: str, assumptions: ApiAssumptions = ASSUMED) -> datetime | None:
    """A 1688 time → naive UTC datetime: ``yyyy-MM-dd HH:mm:ss`` (CST, as :func:`to_cst_time`) or
    ``yyyyMMddHHmmssSSS±hhmm`` (its own offset; milliseconds dropped, see
    :func:`xport_etl.extract.endpoints.parse_alibaba_time`). Null and ``""`` are null.

    Raises:
        RejectError: not a string, or not a valid time in the format it is written in (a value
            starting with eight digits is held to the compact format, any other to the CST one).
    """
    if not isinstance(value, str) or not is_compact_time(value):
        return to_cst_time(value, name, assumptions)
    try:
        return parse_alibaba_time(value, assumptions=assumptions).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise RejectError(f"{name} is not a valid {COMPACT_TIME_FORMAT} time: {show(value)}") from exc


def to_fen_money(value: Any, name: str) -> Decimal | None:
    """An amount in fen (1/100 CNY; an integer or digit string) → exact yuan ``Decimal``.

    Raises:
        RejectError: a fraction of a fen, a negative or non-numeric value, or out of range.
    """
    fen = _digits(value, name, "a whole number of fen")
    if fen is None:
        return None
    if fen > MAX_FEN:  # before any Decimal arithmetic: its 28-digit context would overflow
        raise RejectError(f"{name} is out of range for DECIMAL(18,2): {show(value)}")
    return Decimal(fen).scaleb(-2).quantize(CENT)


def _context(ctx: Any, key: str) -> str | None:
    """An id from a page's request context (what the detail call was asked for), if any."""
    if not isinstance(ctx, dict):
        return None
    return to_id(ctx.get(key), f"context {key}")


def _obj(value: Any, name: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RejectError(f"{name} is not an object: {type(value).__name__}")
    return value


def _required_obj(value: Any, name: str) -> dict:
    found = _obj(value, name)
    if found is None:
        raise RejectError(f"missing {name}")
    return found


def _list(value: Any, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RejectError(f"{name} is not a list: {type(value).__name__}")
    return value


def _first_id(*candidates: tuple[Any, str]) -> str | None:
    """The first non-empty id among ``(value, field name)`` pairs."""
    for value, name in candidates:
        found = to_id(value, name)
        if found is not None:
            return found
    return None
