"""Which normaliser reads which stream's pages: the one place that routes a landed window.

Each stream declares its normaliser by ``"module:function"`` (:mod:`xport_etl.streams`); this
module imports them. Every normaliser takes ``(pages, *, endpoint, window_id, rejected_at,
assumptions)`` and returns a :class:`~xport_etl.normalize.pages.WindowRows`. A stream declared
with the fast path may instead go through the DuckDB twin
(:mod:`xport_etl.normalize.taobao_orders_sql`); the staging step decides that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

from xport_etl.normalize.pages import WindowRows
from xport_etl.streams.graph import STREAMS

__all__ = ["NORMALIZERS", "normalizer_for", "resolve"]

Normalizer = Callable[..., WindowRows]


def resolve(reference: str) -> Normalizer:
    """The function a ``"module:function"`` reference names (a module of ``xport_etl.normalize``)."""
    module, _, function = reference.partition(":")
    if not module.startswith("xport_etl.normalize."):
        raise ValueError(f"a normaliser lives in xport_etl.normalize, not {module!r}")
    return getattr(importlib.import_module(module), function)


NORMALIZERS: Mapping[str, Normalizer] = MappingProxyType({s.name: resolve(s.normalizer) for s in STREAMS.values()})


def normalizer_for(endpoint: str) -> Normalizer:
    """The normaliser of ``endpoint``'s pages; ``KeyError`` for an endpoint without one."""
    return NORMALIZERS[endpoint]
