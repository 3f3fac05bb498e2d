"""Callback messages as Xportcn pushes them (``docs/api-contract.md#6-message-callbacks``), signed
with a test secret, and a receiver app served over real HTTP."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import uvicorn

from xport_etl.callbacks.receiver import CALLBACK_PATH, sign_body

SECRET = "callback-test-secret"
NOW = 1_790_000_000.0  # a fixed receiver clock (epoch s)


def message(mtype="TAOBAO_ORDER_STATUS_MODIFY", body=None, ts=None, platform=0) -> bytes:
    """A message's bytes: its type, body (an order status change by default), platform (0: Taobao)
    and its timestamp in ms (``ts`` in epoch seconds, :data:`NOW` by default)."""
    msg = {
        "messageType": mtype,
        "messageBody": body if body is not None else {"orderId": "1031992847890383164", "status": 11},
        "messagePlatform": platform,
        "timestamp": str(int((NOW if ts is None else ts) * 1000)),
    }
    return json.dumps(msg, ensure_ascii=False).encode()


def post(client, body: bytes, secret: str | None = SECRET, auth: str | None = None):
    """POST ``body`` to the receiver through ``client`` (an httpx client), signed with ``secret``, or
    with ``auth`` as the ``Authorization`` header, or unsigned when both are None."""
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    elif secret is not None:
        headers["Authorization"] = sign_body(secret, body)
    return client.post(CALLBACK_PATH, content=body, headers=headers)


def lines(path: Path) -> list[dict]:
    """The JSON lines of a file (the inbox), blank lines skipped."""
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@contextlib.contextmanager
def serve_app(app):
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "receiver did not start"
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
