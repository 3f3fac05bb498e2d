"""A faithful local Xportcn server with a deterministic world of orders.

A test double, never imported by ``xport_etl``. Its address and credentials are the library's
defaults (``xport_etl.settings``), re-exported here; they are not secrets.

Modules: ``world`` (the deterministic world and its clock), ``server`` (``create_app``, the
FastAPI app), ``truth`` (the docs/warehouse.md tables the pipeline must produce), ``testing``
(``SandboxServer``, the app on a free loopback port), ``common`` (what the Taobao and 1688 worlds
share), ``demo`` and ``cli`` (``xport-sandbox serve|truth|demo``).
"""

from xport_etl.settings import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_ACCESS_SECRET,
    DEFAULT_BASE_URL,
    DEFAULT_USER_ID,
)
from xport_etl.settings import DEFAULT_SANDBOX_HOST as DEFAULT_HOST
from xport_etl.settings import DEFAULT_SANDBOX_PORT as DEFAULT_PORT

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_ACCESS_SECRET",
    "DEFAULT_BASE_URL",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_USER_ID",
]
