"""Parcels (Taobao logistics detail, 1688 logistics trace): answers → ``parcels`` and
``parcel_events`` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    _reject_unreadable,
    _safe_id,
    has_surrogates,
    parse_detail,
)
from xport_etl.normalize.values import (
    MAX_INT32,
    Lenient,
    RejectError,
    Rows,
    _context,
    _first_id,
    _list,
    _obj,
    to_alibaba_time,
    to_cst_time,
    to_id,
    to_quantity,
    to_text,
)

SIGN = "SIGN"  # the trace status of a delivered parcel (docs/api-contract.md#56-taobao-logistics)


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
        lenient.found.append(
            ("logisticsGoods", f"the sum of logisticsGoods quantities is out of range: {total}", goods)
        )
        return None
    return total


def _taobao_parcel(
    detail: Any, order_id: str | None, line_id: str | None, assumptions: ApiAssumptions, lenient: Lenient
) -> Rows:
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
        events.append(
            {
                "platform": "taobao",
                "tracking_number": tracking,
                "event_index": index,
                "event_at": to_cst_time(trace.get("time"), f"{where}.time", assumptions),
                "status": to_text(trace.get("status"), f"{where}.status"),
                "description": to_text(trace.get("statusDesc"), f"{where}.statusDesc"),
                "city": to_text(trace.get("city"), f"{where}.city"),
            }
        )
    fields = {
        "order_id": order_id,
        "purchase_line_id": line_id,
        "carrier": to_text(partner.get("company"), "logisticsPartner[0].company") if partner else None,
        "order_status_at_fetch": None,  # only 1688 needs it: its steps carry no status
        "goods_quantity": _goods_quantity(detail.get("logisticsGoods"), lenient),
    }
    return _parcel_rows("taobao", tracking, fields, events, detail)


def _alibaba_parcel(trace: Any, order_id: str | None, order_status: str | None, assumptions: ApiAssumptions) -> Rows:
    if not isinstance(trace, dict):
        raise RejectError(f"parcel is not an object: {type(trace).__name__}")
    tracking = to_id(trace.get("logisticsBillNo"), "logisticsBillNo", required=True)
    events = []
    for index, step in enumerate(_list(trace.get("logisticsSteps"), "logisticsSteps")):
        if not isinstance(step, dict):
            raise RejectError(f"logisticsSteps[{index}] is not an object: {type(step).__name__}")
        where = f"logisticsSteps[{index}]"
        events.append(
            {
                "platform": "1688",
                "tracking_number": tracking,
                "event_index": index,
                "event_at": to_alibaba_time(step.get("acceptTime"), f"{where}.acceptTime", assumptions),
                "status": None,
                "description": to_text(step.get("remark"), f"{where}.remark"),
                "city": None,
            }
        )
    fields = {
        "order_id": order_id,
        "purchase_line_id": None,
        "carrier": to_text(trace.get("logisticsCompanyName"), "logisticsCompanyName"),
        "order_status_at_fetch": order_status,
        "goods_quantity": None,
    }
    return _parcel_rows("1688", tracking, fields, events, trace)


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


def normalize_taobao_logistics_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise Taobao logistics detail pages (docs/api-contract.md#56-taobao-logistics) into
    parcels and parcel events.

    Each page answers one purchase line; its context is ``{"order_id", "purchase_line_id"}``.
    """

    def record_id(data: dict, ctx: Any) -> str | None:
        return _record_id(data, "purchaseOrderOuterId") or _context(ctx, "purchase_line_id")

    def parcel(entry: Any, data: dict, ctx: Any, lenient: Lenient) -> Rows:
        line_id = _first_id(
            (data.get("purchaseOrderOuterId"), "purchaseOrderOuterId"),
            (_context(ctx, "purchase_line_id"), "context purchase_line_id"),
        )
        return _taobao_parcel(entry, _context(ctx, "order_id"), line_id, assumptions, lenient)

    out = WindowRows(endpoint, window_id, rejected_at)
    return _parcels_window(pages, out, "pnmLogisticsDetails", record_id, parcel, "mailNo")


def normalize_alibaba_logistics_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise 1688 logistics trace pages (docs/api-contract.md#59-1688-logistics) into parcels
    and parcel events.

    Each page answers one order; its context is ``{"order_id", "order_status"}``: the order's
    status when the trace was fetched is kept (``order_status_at_fetch``) because 1688 steps
    carry no status and the loader derives delivery from it.
    """

    def record_id(data: dict, ctx: Any) -> str | None:
        return _record_id(data, "orderId") or _context(ctx, "order_id")

    def parcel(entry: Any, data: dict, ctx: Any, lenient: Lenient) -> Rows:
        order_id = _first_id((data.get("orderId"), "orderId"), (_context(ctx, "order_id"), "context order_id"))
        status = lenient(to_text, ctx.get("order_status"), "context order_status") if isinstance(ctx, dict) else None
        return _alibaba_parcel(entry, order_id, status or None, assumptions)

    out = WindowRows(endpoint, window_id, rejected_at)
    return _parcels_window(pages, out, "logisticsTrace", record_id, parcel, "logisticsBillNo")
