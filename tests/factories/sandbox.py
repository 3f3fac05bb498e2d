"""Served worlds: a sandbox on a loopback port (``serve``), and a signed caller written from the
contract for the sandbox's own tests (``tests/sandbox/``)."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.factories.served import ORDER_TIMES_1688
from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import WorldConfig


def serve(seed: int, orders: int, **server: Any):
    """A `SandboxServer` (a context manager) on `WorldConfig(seed=seed, orders=orders)`.

    Without a rate limit unless `server` sets one; other `server` keywords (`access_secret`,
    `sign_recipe`, ...) go to `SandboxServer` as they are.
    """
    return SandboxServer(WorldConfig(seed=seed, orders=orders), **{"rate_limit": None, **server})


# the world of the ``sandbox_warehouse`` fixture (tests/conftest.py): both platforms, refunds,
# parcels, stuck orders; every endpoint read in one window (fewer requests, the same data)
PUBLISHED_WORLD = {"seed": 21, "orders": 120}
ONE_WINDOW = timedelta(days=400)


def publish_world(data_dir: Path, *, seed: int, orders: int) -> WorldConfig:
    """Serve the world ``(seed, orders)``, run the pipeline over its whole history into ``data_dir``
    (every endpoint, one window each) and stop serving it; returns the world's config."""
    from xport_etl.run.engine import run_window
    from xport_etl.settings import Settings

    with serve(seed=seed, orders=orders) as sandbox:
        world = sandbox.world
        settings = Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0)
        run_window(settings, world.config.start, world.clock + timedelta(days=30), chunk=ONE_WINDOW)
    return world.config


# the plain wire forms: these tests check the server's paging and filters value by value (the
# varied forms of the default world are checked in test_world.py and by the normaliser tests)
SMALL = WorldConfig(orders=600, variety=False)


def signed_headers(
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret: str = DEFAULT_ACCESS_SECRET,
    user_id: str = DEFAULT_USER_ID,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The five headers of docs/api-contract.md#1-transport-and-authentication, signed with md5 as
    the contract assumes."""
    ts = timestamp or str(int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(16)
    base = f"access-key={access_key}&nonce-str={nonce}&timestamp={ts}&secret={secret}"
    return {
        "access-key": access_key,
        "timestamp": ts,
        "nonce-str": nonce,
        "user-id": user_id,
        "signature": hashlib.md5(base.encode()).hexdigest().upper(),
    }


class Api:
    """A tiny signed caller for tests (the real client lives elsewhere)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def post(self, path: str, body: dict, **header_kwargs: str) -> httpx.Response:
        return self.http.post(path, json=body, headers=signed_headers(**header_kwargs))

    def get(self, path: str, params: dict, **header_kwargs: str) -> httpx.Response:
        return self.http.get(path, params=params, headers=signed_headers(**header_kwargs))

    def page(self, body: dict) -> dict:
        envelope = self.post("/open/purchase/page", body).json()
        assert envelope["code"] == 200, envelope
        return envelope["data"]


def cst_1688(value: str | None) -> str | None:
    """A served 1688 time as ``yyyy-MM-dd HH:mm:ss`` CST, whichever of its two formats it is in
    (``yyyyMMddHHmmssSSS±hhmm`` is converted through its own offset, milliseconds dropped)."""
    if value is None or value[4] == "-":
        return value
    at = datetime.strptime(value[:14], "%Y%m%d%H%M%S")
    sign = 1 if value[17] == "+" else -1
    offset = timedelta(hours=int(value[18:20]), minutes=int(value[20:22]))
    return (at - sign * offset + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def flat_1688(record: dict) -> dict:
    """A served 1688 order record in the flat shape with CST times, whichever shape it came in."""
    flat = dict(record.get("baseInfo") or record)
    flat["productItems"] = record["productItems"]
    for key in ORDER_TIMES_1688:
        flat[key] = cst_1688(flat[key])
    return flat
