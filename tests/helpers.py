"""Helpers shared by test modules (import them from here, not from another test module)."""

from __future__ import annotations

from typing import Any


def serve(seed: int, orders: int, **server: Any):
    """A `SandboxServer` (a context manager) on `WorldConfig(seed=seed, orders=orders)`.

    Without a rate limit unless `server` sets one; other `server` keywords (`access_secret`,
    `sign_recipe`, ...) go to `SandboxServer` as they are.
    """
    from xport_sandbox.testing import SandboxServer
    from xport_sandbox.world import WorldConfig

    return SandboxServer(WorldConfig(seed=seed, orders=orders), **{"rate_limit": None, **server})
