"""Refunds (Taobao list and detail, 1688 detail): records → ``refunds`` rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from xport_etl.extract.endpoints import (
    ASSUMED,
    ApiAssumptions,
)
from xport_etl.normalize.pages import (
    Page,
    WindowRows,
    _detail_window,
    _list_window,
    _record_id,
)
from xport_etl.normalize.values import (
    TAOBAO_REFUND_STATUS,
    Lenient,
    RejectError,
    Rows,
    _context,
    _first_id,
    _obj,
    _required_obj,
    status_code,
    to_alibaba_time,
    to_epoch_ms_time,
    to_fen_money,
    to_id,
    to_money,
    to_text,
)

ALIBABA_REFUND_STATUS = {
    None: "none",
    "waitselleragree": "applied",
    "waitbuyermodify": "refused",
    "waitbuyersend": "agreed",
    "waitsellerreceive": "waiting_return",
    "refundsuccess": "succeeded",
    "refundclose": "closed",
}


# ---- refunds


def normalize_taobao_refund(rec: Any) -> Rows:
    """One Taobao refund list record (docs/api-contract.md#54-taobao-refunds) → a ``fct_refunds``
    row.

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
    """One Taobao refund detail ``data`` (docs/api-contract.md#55-taobao-refund-detail) → a
    ``fct_refunds`` row.

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
    refund_id = _first_id(
        (refund.get("refundId"), "refundOrder.refundId"), (_context(context, "refund_id"), "context refund_id")
    )
    if refund_id is None:
        raise RejectError("missing refundOrder.refundId")
    code = status_code(refund.get("refundStatus"), "refundOrder.refundStatus")
    row = {
        "platform": "taobao",
        "refund_id": refund_id,
        "order_id": _first_id(
            (line.get("orderId"), "purchaseOrderLine.orderId"),
            (refund.get("orderId"), "refundOrder.orderId"),
            (_context(context, "order_id"), "context order_id"),
        ),
        "line_id": _first_id(
            (line.get("subOrderId"), "purchaseOrderLine.subOrderId"),
            (refund.get("subOrderId"), "refundOrder.subOrderId"),
            (_context(context, "line_id"), "context line_id"),
        ),
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


def normalize_alibaba_refund(data: Any, context: Any = None, *, assumptions: ApiAssumptions = ASSUMED) -> Rows:
    """One 1688 after-sale detail ``data`` (docs/api-contract.md#58-1688-refunds) → a
    ``fct_refunds`` row.

    Raises:
        RejectError: the object cannot be normalised (the reason says why).
    """
    if not isinstance(data, dict):
        raise RejectError(f"refund detail is not an object: {type(data).__name__}")
    refund_id = _first_id(
        (data.get("refundId"), "refundId"),
        (data.get("id"), "id"),
        (_context(context, "refund_id"), "context refund_id"),
    )
    if refund_id is None:
        raise RejectError("missing refundId (and id)")
    raw_status = to_text(data.get("status"), "status")
    if raw_status == "":
        raw_status = None
    row = {
        "platform": "1688",
        "refund_id": refund_id,
        "order_id": _first_id((data.get("orderId"), "orderId"), (_context(context, "order_id"), "context order_id")),
        "line_id": _first_id((data.get("subItemId"), "subItemId"), (_context(context, "line_id"), "context line_id")),
        "status": ALIBABA_REFUND_STATUS.get(raw_status),
        "platform_status": raw_status,
        "refund_amount": to_fen_money(data.get("refundPayment"), "refundPayment"),
        # the detail carries no currency: its order's, from the request context, else CNY
        "currency": to_text(data.get("currency"), "currency") or _context(context, "currency") or "CNY",
        "reason": to_text(data.get("applyReason"), "applyReason"),
        "created_at": to_alibaba_time(data.get("createTime"), "createTime", assumptions),
        "updated_at": to_alibaba_time(data.get("updateTime"), "updateTime", assumptions),
    }
    return Rows("refunds", row, ("1688", refund_id), row["updated_at"], raw=data)


def normalize_taobao_refund_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise a window of Taobao refund list pages (docs/api-contract.md#54-taobao-refunds) into
    ``refunds``."""
    out = WindowRows(endpoint, window_id, rejected_at)
    return _list_window(pages, out, "refundId", lambda rec, _page: normalize_taobao_refund(rec))


def normalize_taobao_refund_detail_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise Taobao refund detail pages (docs/api-contract.md#55-taobao-refund-detail), one per
    refund, into ``refunds``."""

    def record_id(data: Any, ctx: Any) -> str | None:
        aggregate = data.get("refundOrderAggregate")
        refund = aggregate.get("refundOrder") if isinstance(aggregate, dict) else None
        return _record_id(refund, "refundId") or _context(ctx, "refund_id")

    out = WindowRows(endpoint, window_id, rejected_at)
    return _detail_window(pages, out, record_id, normalize_taobao_refund_detail)


def normalize_alibaba_refund_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise 1688 after-sale detail pages (docs/api-contract.md#58-1688-refunds), one per
    refund, into ``refunds``."""

    def record_id(data: Any, ctx: Any) -> str | None:
        return _record_id(data, "refundId") or _record_id(data, "id") or _context(ctx, "refund_id")

    out = WindowRows(endpoint, window_id, rejected_at)
    return _detail_window(
        pages, out, record_id, lambda data, ctx: normalize_alibaba_refund(data, ctx, assumptions=assumptions)
    )
