"""Detail answers the callback refresh fetches: a Taobao order detail (``data`` is one order, read
exactly as a list record). (Refunds are re-read through the lists, whose normalisers they share
with a scheduled run.)"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.normalize.pages import Page, WindowRows, _record_id, has_surrogates, parse_detail
from xport_etl.normalize.taobao_orders import normalize_taobao_order
from xport_etl.normalize.values import RejectError


def normalize_taobao_order_detail_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise Taobao order detail pages (docs/api-contract.md#53-taobao-order-detail: ``data`` is
    one ``TaoBaoOrderVO``) into orders, order lines and rejects, exactly as the list's records."""
    out = WindowRows(endpoint, window_id, rejected_at)
    for page_no, body, ctx in pages:
        data, clean = parse_detail(body)
        out.records += 1
        rid = _record_id(data, "id") or (str(ctx.get("order_id")) if isinstance(ctx, dict) else None)
        if not clean and has_surrogates(data):
            out.reject(
                None if rid is None or has_surrogates(rid) else rid,
                "record contains bytes that are not valid UTF-8",
                data,
                page_no,
            )
            continue
        try:
            rows = normalize_taobao_order(data, endpoint=endpoint, page=page_no, assumptions=assumptions)
        except RejectError as exc:
            out.reject(rid, str(exc), data, page_no)
            continue
        out.keep(rows, page_no)
    return out.finish()
