"""Message callbacks (docs/api-contract.md#6-message-callbacks): a receiver that stores Xportcn's
pushes durably, and a consumer that refreshes exactly the orders and refunds they name through the
detail endpoints.

Receiving — ``POST /callbacks`` on the app from :func:`create_receiver` (``xport-etl callbacks
serve``):

1. ``Authorization`` must be the lower-case hex HMAC-SHA256 of the RAW request body keyed with the
   access secret (compared in constant time; upper-case hex is accepted too). Missing or wrong:
   HTTP 401.
2. The body must be a JSON object. Its ``timestamp`` (epoch milliseconds as a string of digits or
   a JSON number, a fraction allowed; a value below 10^11 is read as epoch seconds) must be within ``max_skew_s`` (600 s, the API's
   own window) of the receiver's clock; missing, unparseable or outside: HTTP 401. This bounds
   replays. Should Xportcn redeliver a failed message (30 minutes later,
   docs/api-contract.md#6-message-callbacks) with its original body, raise ``max_skew_s`` above 3 h:
   a replay is harmless anyway (it is de-duplicated, and consuming a message only re-queries the
   API). Nothing else is checked here: a well-formed, signed envelope whose ``messageBody`` or type
   is unusable is stored and answered 200 (Xportcn would only retry it), and the consumer counts it.
3. The message is appended to ``<inbox_dir>/inbox.jsonl`` and fsynced BEFORE the HTTP 200, so a
   crash after the answer loses nothing. A body already stored (same content id, the sha256 of
   the raw body) is answered 200 and not stored again.

``GET /callbacks/health`` answers ``{"ok": true, "stored": n, ...}`` (counters and the slowest
answer in ms). Every answer carries ``Server-Timing: app;dur=<ms>``; the documented budget is
1000 ms, the usual cost is one fsync. The secret and the ``Authorization`` header are never logged
or stored.

Inbox format: UTF-8 JSON lines, append-only, one per distinct message::

    {"id": "<sha256 hex of the raw body>", "received_at": "2026-07-01T08:00:00.123456+00:00",
     "type": "TAOBAO_ORDER_STATUS_MODIFY", "platform": 0, "body": "<the raw body, as text>"}

``body`` is the request body exactly as received and verified; ``type`` and ``platform`` are
copied from it as sent, for reading the file by eye. A line that does not parse (a write torn by a
crash) is skipped and counted by the reader; the receiver, when it starts, ends such a torn tail
with a newline so the next message starts on a line of its own, and a write that fails (a full
disk) is cut back before the 500. The inbox rotates by size into ``inbox.<n>.jsonl`` segments;
ids are remembered for a bounded horizon; the consumer dead-letters what it can never use to
``dead-letter.jsonl``. The limits on slow, idle and oversized requests and these decisions are in
``docs/callbacks.md``.

The message body — ``messageBody`` arrives as a JSON object or as a string holding one
(docs/api-contract.md#6-message-callbacks) — is decoded when it is consumed, by
:func:`message_body`, the one reader of it. A string that does not decode to an object (not
JSON, a list, a string encoded twice, nested too deep) is a bad message. ``messagePlatform`` may be
``0``/``1`` or ``"0"``/``"1"`` (:func:`message_platform`); a missing one is read as Taobao.

Consuming — :func:`refresh_from_callbacks` (``xport-etl callbacks consume``) reads the inbox from
``<data_dir>/callbacks/offset.json`` (``{"offset": <byte offset>, "consumed": n, "updated_at":
…}``, replaced atomically only after a successful publish: a crash re-processes, never loses),
and refreshes:

- ``TAOBAO_ORDER_STATUS_MODIFY`` → body ``orderId`` (the xportcn order id);
- ``TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY`` → body ``salesOrderId``: the only order id the
  documented body has; the API uses it for the xportcn order id (the refund list's and the refund
  detail's ``salesOrderId`` equal ``orderId``), so it is read as ``orderId``;
- ``TAOBAO_ORDER_REFUND`` → body ``refundId`` (the refund, through the refund detail) and
  ``orderId`` (the order, whose line carries the refund status).

Orders go through ``taobao_order_detail`` (one call per distinct id), refunds through
``taobao_refund_detail``; no list endpoint is called. The refund detail has no ids of the xportcn
order and line and no times (docs/api-contract.md#55-taobao-refund-detail), so each refund call
carries a context: ``order_id``/``line_id`` from the message (``orderId``/``subOrderId``) or else
the warehouse, ``created_at_ms`` from the message's ``createTime`` or else the warehouse, and
``modified_at_ms`` from the newest ``modifiedTime`` among the refund's messages [assumed body
fields, named as in the refund list]. Without a modification time the refreshed refund counts as
older than the warehouse's row (the loader's rule) until the next list run. Message fields only ever
become request parameters and landed context, never SQL text; an id that is not 1-64 letters/digits
is counted as bad and skipped. Unknown message types stay in the inbox and are counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from xport_etl.callbacks.inbox import (
    DEFAULT_ROTATE_BYTES,
    DEFAULT_SEEN_HORIZON_S,
    InboxStore,
    _clean_scalar,
)

log = logging.getLogger("xport_etl.callbacks")

CALLBACK_PATH = "/callbacks"
HEALTH_PATH = "/callbacks/health"
MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_SKEW_S = 600
DEFAULT_READ_TIMEOUT_S = 10.0

ORDER_STATUS = "TAOBAO_ORDER_STATUS_MODIFY"
ORDER_PRICE = "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"
ORDER_REFUND = "TAOBAO_ORDER_REFUND"
KNOWN_TYPES = (ORDER_STATUS, ORDER_PRICE, ORDER_REFUND)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ID = re.compile(r"[0-9A-Za-z]{1,64}")


def sign_body(secret: str, body: bytes) -> str:
    """The ``Authorization`` value of a callback: lower-case hex HMAC-SHA256(secret, raw body)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# ---- the message's fields


def message_body(message: dict) -> dict | None:
    """The ``messageBody`` of a callback as an object, whichever form it arrived in.

    Xportcn sends the body as a JSON object or as a JSON-encoded string of that object
    (docs/api-contract.md#6-message-callbacks). A string is decoded once, with decimals kept exact
    as in the object form.

    Returns:
        The body, or None when it is missing, not an object, or a string that does not decode to
        an object (the caller counts such a message as bad).
    """
    body = message.get("messageBody")
    if isinstance(body, str):
        try:
            body = json.loads(body, parse_float=Decimal)
        except (ValueError, RecursionError):
            # not JSON, or nested past the decoder's limit: a bad message, never a crash
            return None
    return body if isinstance(body, dict) else None


def message_platform(message: dict) -> int | None:
    """``messagePlatform`` as 0 (Taobao) or 1 (1688), from a number or a string of one digit.

    A missing platform is read as 0; anything else (a boolean, another value) is None.
    """
    value = message.get("messagePlatform", 0)
    if value is None:
        return 0
    if isinstance(value, str):
        value = value.strip()
        return int(value) if value in ("0", "1") else None
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return value
    return None


# ---- the receiver


def _parse_timestamp(value: Any) -> float | None:
    """Epoch seconds from a callback ``timestamp`` (ms, or s when below 10^11), else None.

    A string must be digits; a JSON number (an int, or a Decimal as the receiver parses floats)
    may have a fraction.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or len(value) > 16:
            return None
        value = int(value)
    if isinstance(value, Decimal):
        # bounded before converting: 1e999999 is a valid JSON number
        if not value.is_finite() or not 0 <= value < 10**16:
            return None
        value = float(value)
    if not isinstance(value, (int, float)) or not 0 <= value < 10**16:
        return None
    return value / 1000 if value >= 10**11 else float(value)


def create_receiver(
    secret: str,
    inbox_dir: Path,
    *,
    max_skew_s: float = DEFAULT_MAX_SKEW_S,
    clock: Callable[[], float] = time.time,
    max_body: int = MAX_BODY_BYTES,
    rotate_bytes: int = DEFAULT_ROTATE_BYTES,
    seen_horizon_s: float = DEFAULT_SEEN_HORIZON_S,
):
    """The callback receiver as an ASGI app (Starlette): ``POST /callbacks``, ``GET /callbacks/health``.

    Args:
        secret: the access secret that keys the HMAC.
        inbox_dir: where ``inbox.jsonl`` lives (created if missing).
        max_skew_s: how far a message's ``timestamp`` may be from ``clock()`` (seconds).
        clock: epoch seconds (injectable for tests).
        max_body: the largest body read, in bytes, counted as it streams in (413 past it).
        rotate_bytes: the inbox segment size (:class:`InboxStore`).
        seen_horizon_s: how long a message id is remembered (:class:`InboxStore`).

    The app's ``state.store`` is the :class:`InboxStore`, ``state.stats`` a Counter of outcomes
    plus ``max_ms`` (the slowest answer).
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if not secret:
        raise ValueError("the callback receiver needs the access secret")
    key = secret.encode("utf-8")
    store = InboxStore(inbox_dir, rotate_bytes=rotate_bytes, seen_horizon_s=seen_horizon_s)
    stats: Counter = Counter()

    def answer(status: int, payload: dict, started: float, outcome: str, *, close: bool = False) -> JSONResponse:
        ms = (time.perf_counter() - started) * 1000
        stats[outcome] += 1
        # a Counter takes any number at run time; typeshed types its values int
        stats["max_ms"] = max(stats["max_ms"], round(ms, 3))  # type: ignore[assignment]
        if ms > 500:
            log.warning("callback answered in %.0f ms (budget 1000 ms)", ms)
        headers = {"Server-Timing": f"app;dur={ms:.1f}"}
        if close:
            # the rest of the body is not read: the connection cannot carry another request
            headers["Connection"] = "close"
        return JSONResponse(payload, status_code=status, headers=headers)

    async def receive(request: Request) -> JSONResponse:
        started = time.perf_counter()
        # refuse before reading a byte of the body: no signature, no body
        given = (request.headers.get("authorization") or "").strip()
        if not given:
            return answer(
                401,
                {"ok": False, "error": "missing Authorization"},
                started,
                "unauthorized",
                close=True,
            )
        if not _HEX64.fullmatch(given):
            return answer(401, {"ok": False, "error": "bad signature"}, started, "unauthorized", close=True)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body:
            return answer(413, {"ok": False, "error": "body too large"}, started, "too_large", close=True)
        # the cap holds while the body streams in, chunked or not
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    return answer(
                        413,
                        {"ok": False, "error": "body too large"},
                        started,
                        "too_large",
                        close=True,
                    )
                chunks.append(chunk)
        except ClientDisconnect:
            # the client left, or the read deadline cut it off: nobody to answer
            return answer(400, {"ok": False, "error": "disconnected"}, started, "disconnected")
        raw = b"".join(chunks)
        expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.lower(), expected):
            return answer(401, {"ok": False, "error": "bad signature"}, started, "unauthorized")
        try:
            message = json.loads(raw.decode("utf-8"), parse_float=Decimal)
        except (ValueError, RecursionError):
            return answer(400, {"ok": False, "error": "body is not UTF-8 JSON"}, started, "bad_request")
        if not isinstance(message, dict):
            return answer(400, {"ok": False, "error": "body is not a JSON object"}, started, "bad_request")
        sent = _parse_timestamp(message.get("timestamp"))
        if sent is None or abs(clock() - sent) > max_skew_s:
            return answer(401, {"ok": False, "error": "stale or missing timestamp"}, started, "stale")
        try:
            mid, stored = await run_in_threadpool(store.append, raw, message)
        except OSError as exc:
            # the disk (full, failing): retriable, and nothing of the message was kept
            log.error("callback not stored: %s", exc.strerror or exc)
            return answer(500, {"ok": False, "error": "message not stored"}, started, "store_failed")
        except (ValueError, RecursionError, UnicodeError):
            # it can never be stored: a refusal Xportcn need not retry
            return answer(422, {"ok": False, "error": "message cannot be stored"}, started, "unstorable")
        log.info(
            "callback %s %s%s",
            _clean_scalar(message.get("messageType")),
            mid[:12],
            "" if stored else " (duplicate)",
        )
        return answer(
            200,
            {"ok": True, "id": mid, "duplicate": not stored},
            started,
            "stored" if stored else "duplicate",
        )

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "stored": len(store.seen), **stats})

    app = Starlette(
        routes=[
            Route(CALLBACK_PATH, receive, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ]
    )
    app.state.store = store
    app.state.stats = stats
    return app


# ---- serving the receiver


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    import ipaddress

    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def deadline_protocol(read_timeout: float) -> type:
    """uvicorn's h11 protocol with a deadline to receive each request, headers and body.

    uvicorn bounds header size (``h11_max_incomplete_event_size``) and idle kept-alive
    connections (``timeout_keep_alive``) but has no time limit on receiving a request: a client
    dribbling a byte a second holds a connection for ever, and a connection that never sends a
    byte is never closed. Here the clock starts when a connection opens (first request) or when
    the first byte of a later request arrives, and stops once the whole request is in; when it
    runs out, the connection is closed (an app still reading the body sees a disconnect).
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(read_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                log.warning(
                    "callback receiver: closed a connection from %s that did not send its request within %.0f s",
                    self.client[0] if self.client else "?",
                    read_timeout,
                )
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and self.conn.their_state is h11.IDLE:
                self._arm()  # the first byte of a request on a kept-alive connection
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._disarm()  # the whole request is in (or the connection is done)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return DeadlineH11Protocol


def receiver_config(app, settings, *, host: str = "127.0.0.1", port: int = 8780):
    """The uvicorn configuration of the receiver: its limits come from ``settings``.

    Args:
        app: the app from :func:`create_receiver`.
        settings: :class:`xport_etl.settings.Settings` (``callback_*``).
        host, port: where to listen (``port`` is unused when the server is given sockets).
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=deadline_protocol(settings.callback_read_timeout),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=settings.callback_keep_alive,
        limit_concurrency=settings.callback_max_connections,
        # request line and headers: 16 KiB is plenty for a callback (h11's own default)
        h11_max_incomplete_event_size=16 * 1024,
        timeout_graceful_shutdown=5,
    )
