"""Which normaliser reads which endpoint's pages: the one place that routes a landed window.

Every normaliser takes ``(pages, *, endpoint, window_id, rejected_at, assumptions)`` and returns a
:class:`~xport_etl.normalize.pages.WindowRows`. The Taobao order endpoints may instead go through
the DuckDB twin (:mod:`xport_etl.normalize.taobao_orders_sql`); the staging step decides that.
"""

from __future__ import annotations

from collections.abc import Callable

from xport_etl.normalize.alibaba_orders import normalize_alibaba_order_pages
from xport_etl.normalize.callback_details import DETAIL_NORMALIZERS
from xport_etl.normalize.pages import WindowRows
from xport_etl.normalize.parcels import (
    normalize_alibaba_logistics_pages,
    normalize_taobao_logistics_pages,
)
from xport_etl.normalize.refunds import (
    normalize_alibaba_refund_pages,
    normalize_taobao_refund_detail_pages,
    normalize_taobao_refund_pages,
)
from xport_etl.normalize.taobao_orders import normalize_taobao_pages

__all__ = ["NORMALIZERS", "normalizer_for"]

Normalizer = Callable[..., WindowRows]

NORMALIZERS: dict[str, Normalizer] = {
    # the order endpoints share a record shape
    "taobao_orders": normalize_taobao_pages,
    "taobao_orders_legacy": normalize_taobao_pages,
    "taobao_refunds": normalize_taobao_refund_pages,
    "taobao_refund_detail": normalize_taobao_refund_detail_pages,
    "alibaba_orders": normalize_alibaba_order_pages,
    "alibaba_refunds": normalize_alibaba_refund_pages,
    "taobao_logistics": normalize_taobao_logistics_pages,
    "alibaba_logistics": normalize_alibaba_logistics_pages,
    **DETAIL_NORMALIZERS,  # the detail endpoints that callbacks refresh through
}


def normalizer_for(endpoint: str) -> Normalizer:
    """The normaliser of ``endpoint``'s pages; ``KeyError`` for an endpoint without one."""
    return NORMALIZERS[endpoint]
