"""1688 orders, flat or nested in ``baseInfo``: records → ``orders`` and ``order_lines`` rows."""

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
    _list_window,
    _record_id,
)
from xport_etl.normalize.refunds import (
    ALIBABA_REFUND_STATUS,
)
from xport_etl.normalize.values import (
    Lenient,
    Reject,
    RejectError,
    Rows,
    to_alibaba_time,
    to_id,
    to_money,
    to_quantity,
    to_text,
)

ALIBABA_ORDER_STATUS = {
    "waitbuyerpay": "awaiting_payment",
    "waitsellersend": "paid",
    "waitbuyerreceive": "shipped",
    "confirm_goods": "completed",
    "success": "completed",
    "cancel": "cancelled",
    "terminated": "cancelled",
}


# ---- 1688 orders

_BASE_INFO = "baseInfo"


def alibaba_order_view(rec: Any) -> dict:
    """A 1688 order record of either shape (docs/api-contract.md#57-1688-orders) → one mapping of
    its fields.

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
    """One 1688 order record (docs/api-contract.md#57-1688-orders) → a ``fct_orders`` row, its
    lines, line rejects.

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
        rows.rejects.extend(
            lenient.warnings(
                endpoint,
                f"{order_id}/{line['line_id']}",
                page,
                prefix=f"productItems[{index}].",
                reason_prefix="product item: ",
            )
        )
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


def normalize_alibaba_order_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise a window of 1688 order pages (docs/api-contract.md#57-1688-orders) into orders,
    lines and rejects."""
    out = WindowRows(endpoint, window_id, rejected_at)
    return _list_window(
        pages,
        out,
        "orderId",
        lambda rec, page: normalize_alibaba_order(rec, endpoint=endpoint, page=page, assumptions=assumptions),
        _alibaba_order_id,
    )
