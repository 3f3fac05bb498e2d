"""``SandboxServer``: the sandbox on a free loopback port, for tests and notebooks.

    with SandboxServer(WorldConfig(orders=500)) as sandbox:
        httpx.post(sandbox.base_url + "/open/purchase/page", ...)
        sandbox.advance(3600)

The server is real uvicorn over real HTTP on 127.0.0.1, in a background thread.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from xport_sandbox.faults import FaultProfile
from xport_sandbox.server import create_app
from xport_sandbox.world import World, WorldConfig


class SandboxServer:
    """Context manager running the sandbox app on ``127.0.0.1`` at a free port.

    Args:
        config: the world's config; ``WorldConfig()`` if omitted.
        rate_limit: requests per second per access key; None (the default here) for no limit.
        faults: a fault profile (``"none"``, ``"flaky"``, ``"drift"``, ``"nasty"`` or a
            ``FaultProfile``; see :mod:`xport_sandbox.faults`); :meth:`set_faults` swaps it.
        fault_seed: the seed of the fault decisions.
        **app_kwargs: passed to ``create_app`` (``access_key``, ``access_secret``, ``user_id``,
            ``real_clock``, ``sign_recipe``: ``"query"`` by default, or ``"concat"``).

    Attributes:
        base_url: ``http://127.0.0.1:<port>``, the API's base URL.
        world: the served ``World``; tests may read it directly.
        app: the FastAPI app.
    """

    def __init__(
        self,
        config: WorldConfig | None = None,
        *,
        rate_limit: float | None = None,
        faults: str | FaultProfile | None = "none",
        fault_seed: int = 0,
        startup_timeout: float = 10.0,
        **app_kwargs: Any,
    ) -> None:
        self.world = World(config)
        self.app = create_app(self.world, rate_limit=rate_limit, faults=faults, fault_seed=fault_seed, **app_kwargs)
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0
        self.base_url = ""

    def start(self) -> SandboxServer:
        """Start serving and wait until ``/_sandbox/health`` answers."""
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and without it every response waits ~40 ms for a delayed ACK (Nagle)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="httptools",
            timeout_keep_alive=30,
            # a "slow" fault may still be sleeping when the test ends: do not wait for it
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while True:
            try:
                if httpx.get(self.base_url + "/_sandbox/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"sandbox did not start on {self.base_url}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def advance(self, seconds: float) -> None:
        """Move the world's clock forward by ``seconds``."""
        self.world.advance(seconds)

    def stats(self) -> dict[str, Any]:
        """Requests served, HTTP 429s sent and faults injected (``faults``: ``{kind: n}``), in
        total and per endpoint (as ``GET /_sandbox/stats``)."""
        return self.app.state.stats.snapshot()

    def set_faults(self, faults: str | FaultProfile | None, seed: int = 0) -> None:
        """Switch the fault profile (fresh random stream, fresh drift burst); counts are kept."""
        self.app.state.faults.configure(faults, seed)

    @property
    def faults(self):
        """The app's :class:`~xport_sandbox.faults.FaultInjector` (profile, ``history``)."""
        return self.app.state.faults
