"""Landed pages → typed rows for after-sale (refunds), logistics (parcels) and 1688 orders.

Builds on :mod:`xport_etl.normalize.values` (scalar parsers, :class:`~xport_etl.normalize.values.WindowRows`)
and produces the ``refunds``, ``parcels``/``parcel_events`` and ``orders``/``order_lines`` rows of
:data:`xport_etl.schemas.STAGED_TABLES`. :data:`NORMALIZERS` maps each endpoint to its normaliser.

Decisions (where CONTRACT.md and WAREHOUSE.md are silent):

- Epoch times (Taobao refunds' ``createTime``/``modifiedTime``) may be numbers or digit strings.
  13 digits are milliseconds, 10 digits are seconds (CONTRACT §3 mentions both); any other length,
  a fraction or a sign is bad input. ``0`` is the Java default of an unset ``long`` (the doc
  templates show it) and means null, not 1970.
- 1688 fen amounts (``refundPayment``) are integers or digit strings, converted exactly
  (``Decimal(fen).scaleb(-2)``); a fraction of a fen or a negative amount is bad input.
- Unknown status codes keep the raw code in ``platform_status``: an unknown 1688 order status is
  ``other`` (WAREHOUSE.md); an unknown refund status (either platform) has a null unified status.
  A null 1688 refund status is ``none`` (WAREHOUSE.md); a null Taobao refund ``refundStatus`` on a
  refund record gives a null unified status (a refund order is never "no refund").
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
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from xport_etl.extract.endpoints import (
    ASSUMED,
    COMPACT_TIME_FORMAT,
    ApiAssumptions,
    is_compact_time,
    parse_alibaba_time,
)
from xport_etl.normalize.values import (
    CENT,
    MAX_INT32,
    MAX_MONEY,
    TAOBAO_REFUND_STATUS,
    Lenient,
    Page,
    PageError,  # noqa: F401 (raised by parse_detail, re-exported for callers)
    Reject,
    RejectError,
    Rows,
    WindowRows,
    _record_id,
    has_surrogates,
    parse_envelope,
    parse_page,
    show,
    status_code,
    to_cst_time,
    to_id,
    to_money,
    to_quantity,
    to_text,
)

__all__ = [
    "ALIBABA_ORDER_STATUS",
    "ALIBABA_REFUND_STATUS",
    "NORMALIZERS",
    "TAOBAO_REFUND_STATUS",
    "alibaba_order_view",
    "normalize_alibaba_logistics_pages",
    "normalize_alibaba_order",
    "normalize_alibaba_order_pages",
    "normalize_alibaba_refund",
    "normalize_alibaba_refund_pages",
    "normalize_taobao_logistics_pages",
    "normalize_taobao_refund",
    "normalize_taobao_refund_detail",
    "normalize_taobao_refund_detail_pages",
    "normalize_taobao_refund_pages",
    "parse_detail",
    "to_alibaba_time",
    "to_epoch_ms_time",
    "to_fen_money",
]

ALIBABA_ORDER_STATUS = {
    "waitbuyerpay": "awaiting_payment",
    "waitsellersend": "paid",
    "waitbuyerreceive": "shipped",
    "confirm_goods": "completed",
    "success": "completed",
    "cancel": "cancelled",
    "terminated": "cancelled",
}
ALIBABA_REFUND_STATUS = {
    None: "none",
    "waitselleragree": "applied",
    "waitbuyermodify": "refused",
    "waitbuyersend": "agreed",
    "waitsellerreceive": "waiting_return",
    "refundsuccess": "succeeded",
    "refundclose": "closed",
}
MAX_FEN = int(MAX_MONEY * 100)
SIGN = "SIGN"  # the trace status of a delivered parcel (CONTRACT §5.6)

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


# ---- detail pages


def parse_detail(body: bytes) -> tuple[dict, bool]:
    """A landed detail page body → its ``data`` object, and whether it is clean.

    As :func:`xport_etl.normalize.values.parse_page`: invalid UTF-8 (or a lone surrogate escape) does not
    fail the page, the caller rejects the records holding it; anything that is not a code-200
    envelope with an object ``data`` fails the page.

    Raises:
        PageError: not JSON, not an object, an error code, or ``data`` is not an object.
    """
    return parse_envelope(body)


# ---- refunds


def normalize_taobao_refund(rec: Any) -> Rows:
    """One Taobao refund list record (CONTRACT §5.4) → a ``fct_refunds`` row.

    Raises:
        RejectError: the record cannot be normalised (the reason says why).
    """
    if not isinstance(rec, dict):
        raise RejectError(f"refund record is not an object: {type(rec).__name__}")
    refund_id = to_id(rec.get("refundId"), "refundId", required=True)
    code = status_code(rec.get("refundStatus"), "refundStatus")
    row = {
        "platform": "taobao",
        "refund_id": refund_id,
        "order_id": to_id(rec.get("orderId"), "orderId"),
        "line_id": to_id(rec.get("subOrderId"), "subOrderId"),
        "status": None if code is None else TAOBAO_REFUND_STATUS.get(code),
        "platform_status": None if code is None else str(code),
        "refund_amount": to_money(rec.get("refundFee"), "refundFee"),
        "currency": to_text(rec.get("currency"), "currency"),
        "reason": to_text(rec.get("reasonDesc"), "reasonDesc"),
        "created_at": to_epoch_ms_time(rec.get("createTime"), "createTime"),
        "updated_at": to_epoch_ms_time(rec.get("modifiedTime"), "modifiedTime"),
    }
    return Rows("refunds", row, ("taobao", refund_id), row["updated_at"], raw=rec)


def normalize_taobao_refund_detail(data: Any, context: Any = None) -> Rows:
    """One Taobao refund detail ``data`` (CONTRACT §5.5) → a ``fct_refunds`` row.

    A ``purchaseOrderLine`` that is not an object is a warning (the ids it may carry have their
    fallbacks: ``refundOrder``, then the request context); its record id is filled in by the
    window.

    Raises:
        RejectError: the object cannot be normalised (the reason says why).
    """
    if not isinstance(data, dict):
        raise RejectError(f"refund detail is not an object: {type(data).__name__}")
    aggregate = _required_obj(data.get("refundOrderAggregate"), "refundOrderAggregate")
    refund = _required_obj(aggregate.get("refundOrder"), "refundOrderAggregate.refundOrder")
    lenient = Lenient()
    line = lenient(_obj, aggregate.get("purchaseOrderLine"), "refundOrderAggregate.purchaseOrderLine") or {}
    refund_id = _first_id((refund.get("refundId"), "refundOrder.refundId"),
                          (_context(context, "refund_id"), "context refund_id"))
    if refund_id is None:
        raise RejectError("missing refundOrder.refundId")
    code = status_code(refund.get("refundStatus"), "refundOrder.refundStatus")
    row = {
        "platform": "taobao",
        "refund_id": refund_id,
        "order_id": _first_id((line.get("orderId"), "purchaseOrderLine.orderId"),
                              (refund.get("orderId"), "refundOrder.orderId"),
                              (_context(context, "order_id"), "context order_id")),
        "line_id": _first_id((line.get("subOrderId"), "purchaseOrderLine.subOrderId"),
                             (refund.get("subOrderId"), "refundOrder.subOrderId"),
                             (_context(context, "line_id"), "context line_id")),
        "status": None if code is None else TAOBAO_REFUND_STATUS.get(code),
        "platform_status": None if code is None else str(code),
        "refund_amount": to_money(refund.get("refundFee"), "refundOrder.refundFee"),
        "currency": to_text(data.get("currency") or refund.get("currency"), "currency"),
        "reason": to_text(refund.get("reasonDesc"), "refundOrder.reasonDesc"),
        "created_at": to_epoch_ms_time(refund.get("createTime"), "refundOrder.createTime"),
        "updated_at": to_epoch_ms_time(refund.get("modifiedTime"), "refundOrder.modifiedTime"),
    }
    rows = Rows("refunds", row, ("taobao", refund_id), row["updated_at"], raw=data)
    rows.rejects.extend(lenient.warnings("taobao_refund_detail", None, 0))
    return rows


def normalize_alibaba_refund(
    data: Any, context: Any = None, *, assumptions: ApiAssumptions = ASSUMED
) -> Rows:
    """One 1688 after-sale detail ``data`` (CONTRACT §5.8) → a ``fct_refunds`` row.

    Raises:
        RejectError: the object cannot be normalised (the reason says why).
    """
    if not isinstance(data, dict):
        raise RejectError(f"refund detail is not an object: {type(data).__name__}")
    refund_id = _first_id((data.get("refundId"), "refundId"), (data.get("id"), "id"),
                          (_context(context, "refund_id"), "context refund_id"))
    if refund_id is None:
        raise RejectError("missing refundId (and id)")
    raw_status = to_text(data.get("status"), "status")
    if raw_status == "":
        raw_status = None
    row = {
        "platform": "1688",
        "refund_id": refund_id,
        "order_id": _first_id((data.get("orderId"), "orderId"),
                              (_context(context, "order_id"), "context order_id")),
        "line_id": _first_id((data.get("subItemId"), "subItemId"),
                             (_context(context, "line_id"), "context line_id")),
        "status": ALIBABA_REFUND_STATUS.get(raw_status),
        "platform_status": raw_status,
        "refund_amount": to_fen_money(data.get("refundPayment"), "refundPayment"),
        "currency": to_text(data.get("currency"), "currency") or "CNY",
        "reason": to_text(data.get("applyReason"), "applyReason"),
        "created_at": to_alibaba_time(data.get("createTime"), "createTime", assumptions),
        "updated_at": to_alibaba_time(data.get("updateTime"), "updateTime", assumptions),
    }
    return Rows("refunds", row, ("1688", refund_id), row["updated_at"], raw=data)


# ---- 1688 orders

_BASE_INFO = "baseInfo"


def alibaba_order_view(rec: Any) -> dict:
    """A 1688 order record of either shape (CONTRACT §5.7) → one mapping of its fields.

    A flat record is its own view (returned as it is). A record with a ``baseInfo`` object (1688's
    own shape) reads the members of ``baseInfo`` as the record's own; where a member is both in
    ``baseInfo`` and at the record level, ``baseInfo`` wins (it is where 1688 writes the order's
    facts), silently. ``productItems`` is always read at the record level (where both shapes put
    it), never inside ``baseInfo``; ``nativeLogistics`` is not read. A null ``baseInfo`` is the
    flat shape.

    Raises:
        RejectError: the record, or its ``baseInfo``, is not an object.
    """
    if not isinstance(rec, dict):
        raise RejectError(f"order record is not an object: {type(rec).__name__}")
    base = rec.get(_BASE_INFO)
    if base is None:
        return rec
    if not isinstance(base, dict):
        raise RejectError(f"{_BASE_INFO} is not an object: {type(base).__name__}")
    view = {**rec, **base}
    view["productItems"] = rec.get("productItems")
    return view


def _alibaba_order_id(rec: Any) -> str | None:
    """The order id of a 1688 record of either shape for a reject row (never raises)."""
    base = rec.get(_BASE_INFO) if isinstance(rec, dict) else None
    return _record_id(base, "orderId") or _record_id(rec, "orderId")


def normalize_alibaba_order(
    rec: Any, *, endpoint: str = "alibaba_orders", page: int = 0, assumptions: ApiAssumptions = ASSUMED
) -> Rows:
    """One 1688 order record (CONTRACT §5.7) → a ``fct_orders`` row, its lines, line rejects.

    Raises:
        RejectError: the order as a whole cannot be normalised (the reason says why).
    """
    raw, rec = rec, alibaba_order_view(rec)
    order_id = to_id(rec.get("orderId"), "orderId", required=True)
    items = rec.get("productItems")
    if items is not None and not isinstance(items, list):
        raise RejectError(f"productItems is not a list: {type(items).__name__}")
    status = to_text(rec.get("status"), "status")
    if status == "":
        status = None
    total_in = to_money(rec.get("totalAmount"), "totalAmount")
    shipping = to_money(rec.get("shippingFee"), "shippingFee")
    goods = total_in - shipping if total_in is not None and shipping is not None else None
    if goods is not None and goods < 0:
        raise RejectError(f"totalAmount {total_in} is less than shippingFee {shipping}")
    total = goods + shipping if goods is not None and shipping is not None else None
    currency = to_text(rec.get("currency"), "currency")
    order = {
        "platform": "1688",
        "order_id": order_id,
        "order_no": None,
        "status": None if status is None else ALIBABA_ORDER_STATUS.get(status, "other"),
        "platform_status": status,
        "order_source": None,
        "seller_order_number": None,
        "seller": to_text(rec.get("sellerLoginId"), "sellerLoginId"),
        "currency": currency,
        "goods_amount": goods,
        "shipping_amount": shipping,
        "total_amount": total,
        "line_count": len(items) if items else 0,
        "created_at": to_alibaba_time(rec.get("createTime"), "createTime", assumptions),
        "paid_at": to_alibaba_time(rec.get("payTime"), "payTime", assumptions),
        "updated_at": to_alibaba_time(rec.get("modifyTime"), "modifyTime", assumptions),
        "close_reason": None,
    }
    lines: list[dict] = []
    rows = Rows("orders", order, ("1688", order_id), order["updated_at"], {"order_lines": lines}, raw=raw)
    seen: set[str] = set()
    for index, item in enumerate(items or ()):
        lenient = Lenient()
        try:
            line = _alibaba_line(item, order_id, index, currency, lenient)
        except RejectError as exc:
            rid = f"{order_id}/{_record_id(item, 'subItemId') or f'#{index}'}"
            rows.rejects.append(Reject(endpoint, rid, f"product item: {exc}", item, page))
            continue
        if line["line_id"] in seen:
            rid = f"{order_id}/{line['line_id']}"
            rows.rejects.append(Reject(endpoint, rid, "product item: duplicate subItemId in order", item, page))
            continue
        seen.add(line["line_id"])
        lines.append(line)
        rows.rejects.extend(lenient.warnings(endpoint, f"{order_id}/{line['line_id']}", page,
                                             prefix=f"productItems[{index}].", reason_prefix="product item: "))
    return rows


def _alibaba_line(item: Any, order_id: str, index: int, currency: str | None, lenient: Lenient) -> dict:
    if not isinstance(item, dict):
        raise RejectError(f"product item is not an object: {type(item).__name__}")
    refund = to_text(item.get("refundStatus"), "refundStatus")
    if refund == "":
        refund = None
    return {
        "platform": "1688",
        "order_id": order_id,
        "line_id": to_id(item.get("subItemId"), "subItemId", required=True),
        "line_index": index,
        "item_id": to_id(item.get("productId"), "productId"),
        "sku_id": to_id(item.get("skuId"), "skuId"),
        "title": to_text(item.get("name"), "name"),
        "quantity": to_quantity(item.get("quantity"), "quantity"),
        "amount": to_money(item.get("itemAmount"), "itemAmount"),
        "shipping_amount": None,
        "currency": currency,
        "refund_status": ALIBABA_REFUND_STATUS.get(refund),
        "purchase_id": None,
        "purchase_line_id": None,
        "line_status": lenient(to_text, item.get("status"), "status"),
        "platform_refund_status": refund,
        "carrier": None,
        "tracking_number": None,
        "refund_id": lenient(to_id, item.get("refundId"), "refundId"),
    }


# ---- parcels


def _parcel_version(row: dict) -> tuple:
    """Which of two states of a parcel is later: last event time, then event count."""
    last = row["last_event_at"]
    return (last is not None, last or datetime.min, row["event_count"])


def _parcel_rows(
    platform: str,
    tracking_number: str,
    fields: dict,
    events: list[dict],
    raw: Any,
) -> Rows:
    timed = [e["event_at"] for e in events]
    row = {
        "platform": platform,
        "tracking_number": tracking_number,
        **fields,
        "first_event_at": timed[0] if timed else None,
        "last_event_at": timed[-1] if timed else None,
        "event_count": len(events),
    }
    if platform == "taobao":
        signed = [e["event_at"] for e in events if e["status"] == SIGN]
        row["delivered_at"] = signed[0] if signed else None
        row["last_status"] = events[-1]["status"] if events else None
    else:
        # 1688 steps carry no status: the loader derives delivery from the order's status
        row["delivered_at"] = None
        row["last_status"] = None
    key = (platform, tracking_number)
    return Rows("parcels", row, key, _parcel_version(row), {"parcel_events": events}, raw=raw)


def _goods_quantity(goods: Any, lenient: Lenient) -> int | None:
    """Units the parcel carries (sum of ``logisticsGoods[].quantity``), or None when any is
    missing or unreadable: it only tells the fan-out whether a line has shipped in full, so an odd
    value makes it unknown (and a warning) rather than rejecting the parcel."""
    goods = lenient(_list, goods, "logisticsGoods")
    if not goods:
        return None
    total: int | None = 0
    for index, item in enumerate(goods):
        item = lenient(_obj, item, f"logisticsGoods[{index}]")
        quantity = lenient(to_quantity, item.get("quantity"), f"logisticsGoods[{index}].quantity") if item else None
        total = None if total is None or quantity is None else total + quantity
    if total is not None and total > MAX_INT32:
        lenient.found.append(("logisticsGoods", f"the sum of logisticsGoods quantities is out of range: {total}",
                              goods))
        return None
    return total


def _taobao_parcel(detail: Any, order_id: str | None, line_id: str | None,
                   assumptions: ApiAssumptions, lenient: Lenient) -> Rows:
    if not isinstance(detail, dict):
        raise RejectError(f"parcel is not an object: {type(detail).__name__}")
    tracking = to_id(detail.get("mailNo"), "mailNo", required=True)
    partners = _list(detail.get("logisticsPartner"), "logisticsPartner")
    partner = _obj(partners[0], "logisticsPartner[0]") if partners else None
    events = []
    for index, trace in enumerate(_list(detail.get("logisticsTraces"), "logisticsTraces")):
        if not isinstance(trace, dict):
            raise RejectError(f"logisticsTraces[{index}] is not an object: {type(trace).__name__}")
        where = f"logisticsTraces[{index}]"
        events.append({
            "platform": "taobao",
            "tracking_number": tracking,
            "event_index": index,
            "event_at": to_cst_time(trace.get("time"), f"{where}.time", assumptions),
            "status": to_text(trace.get("status"), f"{where}.status"),
            "description": to_text(trace.get("statusDesc"), f"{where}.statusDesc"),
            "city": to_text(trace.get("city"), f"{where}.city"),
        })
    fields = {
        "order_id": order_id,
        "purchase_line_id": line_id,
        "carrier": to_text(partner.get("company"), "logisticsPartner[0].company") if partner else None,
        "order_status_at_fetch": None,  # only 1688 needs it: its steps carry no status
        "goods_quantity": _goods_quantity(detail.get("logisticsGoods"), lenient),
    }
    return _parcel_rows("taobao", tracking, fields, events, detail)


def _alibaba_parcel(trace: Any, order_id: str | None, order_status: str | None,
                    assumptions: ApiAssumptions) -> Rows:
    if not isinstance(trace, dict):
        raise RejectError(f"parcel is not an object: {type(trace).__name__}")
    tracking = to_id(trace.get("logisticsBillNo"), "logisticsBillNo", required=True)
    events = []
    for index, step in enumerate(_list(trace.get("logisticsSteps"), "logisticsSteps")):
        if not isinstance(step, dict):
            raise RejectError(f"logisticsSteps[{index}] is not an object: {type(step).__name__}")
        where = f"logisticsSteps[{index}]"
        events.append({
            "platform": "1688",
            "tracking_number": tracking,
            "event_index": index,
            "event_at": to_alibaba_time(step.get("acceptTime"), f"{where}.acceptTime", assumptions),
            "status": None,
            "description": to_text(step.get("remark"), f"{where}.remark"),
            "city": None,
        })
    fields = {
        "order_id": order_id,
        "purchase_line_id": None,
        "carrier": to_text(trace.get("logisticsCompanyName"), "logisticsCompanyName"),
        "order_status_at_fetch": order_status,
        "goods_quantity": None,
    }
    return _parcel_rows("1688", tracking, fields, events, trace)


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
    out.reject(rid, "record contains bytes that are not valid UTF-8",
               json.dumps(raw, default=str, ensure_ascii=True), page)


def _parcels_window(
    pages: Iterable[Page],
    out: WindowRows,
    parcels_field: str,
    record_id: Callable[[dict, Any], str | None],
    parcel: Callable[[Any, dict, Any, Lenient], Rows],
    parcel_id: str,
) -> WindowRows:
    for page_no, body, ctx in pages:
        data, clean = parse_detail(body)
        rid = _safe_id(record_id, data, ctx)
        entries = data.get(parcels_field)
        if not isinstance(entries, list) and entries is not None:
            out.records += 1
            if not clean and has_surrogates(data):
                _reject_unreadable(out, rid, data, page_no)
            else:
                out.reject(rid, f"{parcels_field} is not a list: {type(entries).__name__}", data, page_no)
            continue
        if not clean and has_surrogates({k: v for k, v in data.items() if k != parcels_field}):
            # the surrounding ids are unreadable: no parcel of this answer can be attributed
            out.records += 1
            _reject_unreadable(out, rid, data, page_no)
            continue
        for index, entry in enumerate(entries or ()):
            out.records += 1
            number = _record_id(entry, parcel_id)
            entry_id = f"{rid}/{number or f'#{index}'}"
            if not clean and has_surrogates(entry):
                _reject_unreadable(out, entry_id, entry, page_no)
                continue
            lenient = Lenient()
            try:
                rows = parcel(entry, data, ctx, lenient)
            except RejectError as exc:
                out.reject(entry_id, str(exc), entry, page_no)
                continue
            rows.rejects.extend(lenient.warnings(out.endpoint, entry_id, page_no, prefix=f"{parcels_field}[{index}]."))
            out.keep(rows, page_no)
    return out.finish()


def normalize_taobao_refund_pages(
    pages: Iterable[Page], *, endpoint: str, window_id: str, rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise a window of Taobao refund list pages (CONTRACT §5.4) into ``refunds``."""
    out = WindowRows(endpoint, window_id, rejected_at)
    return _list_window(pages, out, "refundId", lambda rec, _page: normalize_taobao_refund(rec))


def normalize_taobao_refund_detail_pages(
    pages: Iterable[Page], *, endpoint: str, window_id: str, rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise Taobao refund detail pages (CONTRACT §5.5), one per refund, into ``refunds``."""

    def record_id(data: Any, ctx: Any) -> str | None:
        aggregate = data.get("refundOrderAggregate")
        refund = aggregate.get("refundOrder") if isinstance(aggregate, dict) else None
        return _record_id(refund, "refundId") or _context(ctx, "refund_id")

    out = WindowRows(endpoint, window_id, rejected_at)
    return _detail_window(pages, out, record_id, normalize_taobao_refund_detail)


def normalize_alibaba_refund_pages(
    pages: Iterable[Page], *, endpoint: str, window_id: str, rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise 1688 after-sale detail pages (CONTRACT §5.8), one per refund, into ``refunds``."""

    def record_id(data: Any, ctx: Any) -> str | None:
        return (_record_id(data, "refundId") or _record_id(data, "id")
                or _context(ctx, "refund_id"))

    out = WindowRows(endpoint, window_id, rejected_at)
    return _detail_window(pages, out, record_id,
                          lambda data, ctx: normalize_alibaba_refund(data, ctx, assumptions=assumptions))


def normalize_alibaba_order_pages(
    pages: Iterable[Page], *, endpoint: str, window_id: str, rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise a window of 1688 order pages (CONTRACT §5.7) into orders, lines and rejects."""
    out = WindowRows(endpoint, window_id, rejected_at)
    return _list_window(
        pages, out, "orderId",
        lambda rec, page: normalize_alibaba_order(rec, endpoint=endpoint, page=page, assumptions=assumptions),
        _alibaba_order_id,
    )


def normalize_taobao_logistics_pages(
    pages: Iterable[Page], *, endpoint: str, window_id: str, rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise Taobao logistics detail pages (CONTRACT §5.6) into parcels and parcel events.

    Each page answers one purchase line; its context is ``{"order_id", "purchase_line_id"}``.
    """

    def record_id(data: dict, ctx: Any) -> str | None:
        return _record_id(data, "purchaseOrderOuterId") or _context(ctx, "purchase_line_id")

    def parcel(entry: Any, data: dict, ctx: Any, lenient: Lenient) -> Rows:
        line_id = _first_id((data.get("purchaseOrderOuterId"), "purchaseOrderOuterId"),
                            (_context(ctx, "purchase_line_id"), "context purchase_line_id"))
        return _taobao_parcel(entry, _context(ctx, "order_id"), line_id, assumptions, lenient)

    out = WindowRows(endpoint, window_id, rejected_at)
    return _parcels_window(pages, out, "pnmLogisticsDetails", record_id, parcel, "mailNo")


def normalize_alibaba_logistics_pages(
    pages: Iterable[Page], *, endpoint: str, window_id: str, rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise 1688 logistics trace pages (CONTRACT §5.9) into parcels and parcel events.

    Each page answers one order; its context is ``{"order_id", "order_status"}``: the order's
    status when the trace was fetched is kept (``order_status_at_fetch``) because 1688 steps
    carry no status and the loader derives delivery from it.
    """

    def record_id(data: dict, ctx: Any) -> str | None:
        return _record_id(data, "orderId") or _context(ctx, "order_id")

    def parcel(entry: Any, data: dict, ctx: Any, lenient: Lenient) -> Rows:
        order_id = _first_id((data.get("orderId"), "orderId"),
                             (_context(ctx, "order_id"), "context order_id"))
        status = lenient(to_text, ctx.get("order_status"), "context order_status") if isinstance(ctx, dict) else None
        return _alibaba_parcel(entry, order_id, status or None, assumptions)

    out = WindowRows(endpoint, window_id, rejected_at)
    return _parcels_window(pages, out, "logisticsTrace", record_id, parcel, "logisticsBillNo")


NORMALIZERS: dict[str, _Normalizer] = {
    "taobao_refunds": normalize_taobao_refund_pages,
    "taobao_refund_detail": normalize_taobao_refund_detail_pages,
    "alibaba_orders": normalize_alibaba_order_pages,
    "alibaba_refunds": normalize_alibaba_refund_pages,
    "taobao_logistics": normalize_taobao_logistics_pages,
    "alibaba_logistics": normalize_alibaba_logistics_pages,
}
