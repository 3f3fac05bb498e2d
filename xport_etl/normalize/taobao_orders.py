"""Taobao orders (list and legacy list): records → ``orders`` and ``order_lines`` rows, the Python
reference of the rules (:mod:`xport_etl.normalize.taobao_orders_sql` is its DuckDB twin).
"""

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
    _record_id,
    parse_page,
)
from xport_etl.normalize.values import (
    MAX_MONEY,
    TAOBAO_REFUND_STATUS,
    Lenient,
    Reject,
    RejectError,
    Rows,
    status_code,
    to_cst_time,
    to_id,
    to_json_object,
    to_money,
    to_quantity,
    to_text,
)

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

# the fields no public column is defined from, or whose column is only informative: a value their
# reader refuses is read as null and recorded as a WARNING (``Lenient``), the record loads. The
# DuckDB normaliser keeps records whose only odd values are here on its fast path (see
# ``taobao_orders_sql``): it asks these same readers about such a value.
ORDER_LENIENT = {"receiver": to_json_object, "closeReason": to_text}
LINE_LENIENT = {"status": status_code, "logisticCompanyName": to_text, "logisticNumber": to_id}


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
    lenient(ORDER_LENIENT["receiver"], rec.get("receiver"), "receiver")  # no column: read only to check it

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
        "close_reason": lenient(ORDER_LENIENT["closeReason"], rec.get("closeReason"), "closeReason"),
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
        rows.rejects.extend(
            line_lenient.warnings(
                endpoint,
                f"{order_id}/{line['line_id']}",
                page,
                prefix=f"subOrderVOS[{index}].",
                reason_prefix="sub-order: ",
            )
        )
    return rows


def _taobao_line(sub: Any, order_id: str, index: int, lenient: Lenient) -> dict:
    if not isinstance(sub, dict):
        raise RejectError(f"sub-order is not an object: {type(sub).__name__}")
    refund = status_code(sub.get("refundStatus"), "refundStatus")
    line_code = lenient(LINE_LENIENT["status"], sub.get("status"), "status")
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
        "carrier": lenient(LINE_LENIENT["logisticCompanyName"], sub.get("logisticCompanyName"), "logisticCompanyName"),
        "tracking_number": lenient(LINE_LENIENT["logisticNumber"], sub.get("logisticNumber"), "logisticNumber"),
    }


def normalize_taobao_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise a window of ``TaoBaoOrderVO`` pages into orders, order lines and rejects."""
    return taobao_window(
        pages, endpoint=endpoint, window_id=window_id, rejected_at=rejected_at, assumptions=assumptions
    ).finish()


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
        read_records(out, page_no, chosen, clean, endpoint=endpoint, assumptions=assumptions)
    return out


def read_records(
    out: WindowRows,
    page_no: int,
    records: Iterable[tuple[int, Any]],
    clean: bool,
    *,
    endpoint: str,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Records of one page, each ``(position in the page, record as parsed)`` in page order, into
    ``out`` (``clean``: see :func:`xport_etl.normalize.pages.parse_envelope`). The DuckDB
    normaliser calls it with the few records it does not type itself, each parsed alone."""
    for index, rec in records:
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
