"""The callback receiver (docs/api-contract.md#6-message-callbacks): it stores Xportcn's pushes
durably and answers within the 1000 ms budget; :mod:`xport_etl.callbacks.refresh` consumes them.

``POST /callbacks`` on the app from :func:`create_receiver` (``xport-etl callbacks serve``):

1. ``Authorization`` must be the lower-case hex HMAC-SHA256 of the RAW request body keyed with the
   access secret (compared in constant time; upper-case hex is accepted too). Missing or wrong:
   HTTP 401, the first before a byte of the body is read.
2. The body must be a JSON object (:func:`~xport_etl.callbacks.messages.parse_message`: any
   number, any nesting the decoder allows); else HTTP 400. Its ``timestamp`` (epoch milliseconds
   as a string of ASCII digits or a JSON number, a fraction allowed; a value below 10^11 is read as
   epoch seconds) must be at most ``max_age_s`` old (3 h by default: Xportcn retries a failed push
   30 minutes apart up to 5 times, 2.5 h, and the documentation does not say whether a retry
   carries a fresh timestamp) and at most ``max_future_s`` ahead (600 s, the API's own clock
   window); missing, unreadable or outside: HTTP 401. Replays within that age are the message
   id's job: the id memory lasts at least the accepted age (:class:`InboxStore`).
3. A signed, timely object is stored and answered 200 whatever its ``messageType`` and
   ``messageBody``: a refusal only makes Xportcn retry the same bytes, and the consumer decides
   what a message is worth. It is appended to the inbox and fsynced BEFORE the HTTP 200, so a
   crash after the answer loses nothing; a body already stored (same content id, the sha256 of
   the raw body) is answered 200 ``duplicate`` and not stored again. A full disk is 500
   (retriable, nothing kept); a message that can never be written is 422. No other 5xx: a
   message the receiver can parse is never answered 500.

``GET /callbacks/health`` answers ``{"ok": true, "stored": n, ...}`` (counters, the slowest answer
in ms, the connections closed to make room or past their deadline). Every answer carries
``Server-Timing: app;dur=<ms>``; the usual cost is one fsync. The secret and the ``Authorization``
header are never logged or stored.

Inbox format: UTF-8 JSON lines, append-only, one per distinct message::

    {"id": "<sha256 hex of the raw body>", "received_at": "2026-07-01T08:00:00.123456+00:00",
     "type": "TAOBAO_ORDER_STATUS_MODIFY", "platform": 0, "body": "<the raw body, as text>"}

``body`` is the request body exactly as received and verified; ``type`` and ``platform`` are
copied from it for reading the file by eye. The connection limits (deadlines, the connection
budget, the cap on requests in progress) are :func:`receiver_config`'s; the decisions behind
them are in ``docs/callbacks.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

from xport_etl.callbacks.inbox import (
    DEFAULT_ROTATE_BYTES,
    DEFAULT_SEEN_HORIZON_S,
    InboxStore,
    _clean_scalar,
)
from xport_etl.callbacks.messages import message_time, parse_message
from xport_etl.numbers import ascii_int

log = logging.getLogger("xport_etl.callbacks")

CALLBACK_PATH = "/callbacks"
HEALTH_PATH = "/callbacks/health"
MAX_BODY_BYTES = 1 << 20
# the retry schedule (5 retries 30 minutes apart, docs/api-contract.md#6-message-callbacks) and
# half an hour of margin
DEFAULT_MAX_AGE_S = 5 * 30 * 60 + 30 * 60
# a timestamp ahead of the receiver's clock: the API's own window for its requests' clocks
DEFAULT_MAX_FUTURE_S = 600
DEFAULT_READ_TIMEOUT_S = 10.0

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# set in a request's ASGI scope state once its signature checks out (read by the connection budget)
SIGNED_STATE = "xport_callback_signed"


def id_horizon(dedup_horizon_s: float, max_age_s: float, max_future_s: float = DEFAULT_MAX_FUTURE_S) -> float:
    """How long a message id is remembered: the dedup horizon, never less than the accepted age
    (a message is accepted from ``max_future_s`` before its timestamp to ``max_age_s`` after), so
    that a replay the clock still accepts is always recognised."""
    return max(dedup_horizon_s, max_age_s + max_future_s)


def sign_body(secret: str, body: bytes) -> str:
    """The ``Authorization`` value of a callback: lower-case hex HMAC-SHA256(secret, raw body)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# ---- the receiver


def create_receiver(
    secret: str,
    inbox_dir,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_future_s: float = DEFAULT_MAX_FUTURE_S,
    clock: Callable[[], float] = time.time,
    max_body: int = MAX_BODY_BYTES,
    rotate_bytes: int = DEFAULT_ROTATE_BYTES,
    seen_horizon_s: float = DEFAULT_SEEN_HORIZON_S,
    max_requests: int | None = None,
    inbox=None,
):
    """The callback receiver as an ASGI app (Starlette): ``POST /callbacks``, ``GET /callbacks/health``.

    Args:
        secret: the access secret that keys the HMAC.
        inbox_dir: where ``inbox.jsonl`` lives (created if missing).
        max_age_s: how old a message's ``timestamp`` may be by ``clock()`` (seconds).
        max_future_s: how far ahead of ``clock()`` it may be (seconds).
        clock: epoch seconds (injectable for tests; the inbox's ``received_at`` follows it).
        max_body: the largest body read, in bytes, counted as it streams in (413 past it).
        rotate_bytes: the inbox segment size (:class:`InboxStore`).
        seen_horizon_s: how long a message id is remembered (:class:`InboxStore`); never less
            than the accepted age (``max_age_s + max_future_s``), so that a replay the clock
            still accepts is always recognised.
        max_requests: complete requests handled at once; past it, 503 (Xportcn retries). None:
            no limit. :func:`receiver_config` sets it from the settings.
        inbox: where messages go instead of an :class:`InboxStore` under ``inbox_dir``: an
            :class:`~xport_etl.callbacks.inbox.ObjectInbox` under a storage URL (a 200 then means
            the message is in object storage).

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
    horizon = id_horizon(seen_horizon_s, max_age_s, max_future_s)
    store = inbox or InboxStore(inbox_dir, rotate_bytes=rotate_bytes, seen_horizon_s=horizon, clock=clock)
    stats: Counter = Counter()
    active = [0]  # complete requests being handled

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
        # h11 refuses a malformed Content-Length before the app sees it; read it as any number
        length = ascii_int(request.headers.get("content-length"), max_digits=18)
        if length is not None and length > max_body:
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
            # the client left, or a deadline or the connection budget cut it off: nobody to answer
            return answer(400, {"ok": False, "error": "disconnected"}, started, "disconnected")
        limit = request.app.state.max_requests
        if limit is not None and active[0] >= limit:
            return answer(503, {"ok": False, "error": "busy"}, started, "busy", close=True)
        active[0] += 1
        request.app.state.active = active[0]
        try:
            return await handle(request, b"".join(chunks), given, started)
        finally:
            active[0] -= 1
            request.app.state.active = active[0]

    async def handle(request: Request, raw: bytes, given: str, started: float) -> JSONResponse:
        expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.lower(), expected):
            return answer(401, {"ok": False, "error": "bad signature"}, started, "unauthorized", close=True)
        # the connection proved it holds the secret: the connection budget keeps it longest
        request.scope.setdefault("state", {})[SIGNED_STATE] = True
        try:
            message = parse_message(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            return answer(400, {"ok": False, "error": "body is not UTF-8 JSON"}, started, "bad_request")
        if not isinstance(message, dict):
            return answer(400, {"ok": False, "error": "body is not a JSON object"}, started, "bad_request")
        sent = message_time(message.get("timestamp"))
        if sent is None:
            return answer(401, {"ok": False, "error": "missing or unreadable timestamp"}, started, "stale")
        age = clock() - sent
        if age > max_age_s or -age > max_future_s:
            return answer(401, {"ok": False, "error": "timestamp outside the accepted age"}, started, "stale")
        try:
            mid, stored = await run_in_threadpool(store.append, raw, message)
        except OSError as exc:
            # the disk (full, failing): retriable, and nothing of the message was kept
            log.error("callback not stored: %s", exc.strerror or exc)
            return answer(500, {"ok": False, "error": "message not stored"}, started, "store_failed")
        except Exception:
            # it can never be stored: a refusal Xportcn need not retry, never a 500 it would
            # retry for ever
            log.exception("callback cannot be stored")
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
    app.state.max_requests = max_requests
    app.state.active = 0  # complete requests being handled now
    app.state.max_age_s = max_age_s
    app.state.max_future_s = max_future_s
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


class ConnectionBudget:
    """The connections that have not delivered a complete request (new ones, ones whose request
    is still arriving, kept-alive ones between requests), oldest first.

    They may hold at most ``limit`` places; a new one past that closes the oldest of them. An
    address holding ``per_address`` of them closes its own oldest instead, so a flood from one
    address churns its own connections and leaves the others alone. Either way a connection kept
    alive after a signed request (``trusted``) is closed only when no other can be: a client that
    proved it has the secret keeps its connection through a flood of sockets that never did. A
    connection whose request is complete is not in the budget: idle or slow sockets can never
    take the place a signed post needs, and a new connection is never refused for them.
    """

    def __init__(self, limit: int, per_address: int, stats: Counter | None = None) -> None:
        self.limit, self.per_address = max(1, limit), max(1, per_address)
        self.stats = stats if stats is not None else Counter()
        # connection -> (address, trusted), oldest first
        self._all: OrderedDict[Any, tuple[str, bool]] = OrderedDict()
        self._by_address: dict[str, OrderedDict[Any, bool]] = {}
        self._warned = 0.0

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, conn: object) -> bool:
        return conn in self._all

    @staticmethod
    def _oldest(conns: OrderedDict) -> Any:
        """The oldest untrusted connection of ``conns`` (connection -> trusted flag or
        (address, trusted)), else the oldest."""
        for conn, value in conns.items():
            if not (value[1] if isinstance(value, tuple) else value):
                return conn
        return next(iter(conns))

    def add(self, conn, address: str, evict: Callable[[Any], None], *, trusted: bool = False) -> None:
        """Take a place for ``conn`` (from ``address``), closing another with ``evict`` if full."""
        own = self._by_address.get(address)
        victim = None
        if own is not None and len(own) >= self.per_address:
            victim = self._oldest(own)
        elif len(self._all) >= self.limit:
            victim = self._oldest(self._all)
        if victim is not None:
            self.remove(victim)
            self.stats["evicted"] += 1
            now = time.monotonic()
            if now - self._warned > 60:
                self._warned = now
                log.warning(
                    "callback receiver: %d connections without a complete request; closing the oldest to make "
                    "room (%d closed so far)",
                    self.limit,
                    self.stats["evicted"],
                )
            evict(victim)
        self._all[conn] = (address, trusted)
        self._by_address.setdefault(address, OrderedDict())[conn] = trusted

    def remove(self, conn) -> None:
        found = self._all.pop(conn, None)
        if found is None:
            return
        own = self._by_address[found[0]]
        own.pop(conn, None)
        if not own:
            del self._by_address[found[0]]


def deadline_protocol(
    read_timeout: float, head_timeout: float | None = None, budget: ConnectionBudget | None = None
) -> type:
    """uvicorn's h11 protocol with deadlines to receive a request and a connection budget.

    uvicorn bounds header size (``h11_max_incomplete_event_size``) and the idle time between
    requests (``timeout_keep_alive``, reset by any byte), but not the time a request takes to
    arrive, and its ``limit_concurrency`` counts idle connections: a client dribbling a byte a
    second holds a connection for ever, and a few hundred sockets that send nothing take every
    slot. Here a connection is *waiting* from its opening (or the end of its previous response)
    until its whole request is in. While it waits:

    - its request head must be complete within ``head_timeout`` and the whole request within
      ``read_timeout`` of the start of the wait; past either, the connection is closed (an app
      still reading the body sees a disconnect);
    - it holds a place in ``budget`` (:class:`ConnectionBudget`), which closes the oldest waiting
      connection when a new one needs the room.

    It relies on uvicorn's ``H11Protocol`` (``connection_made``, ``data_received``,
    ``on_response_complete``, ``connection_lost``, ``conn``, ``transport``, ``client``).
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    head_s: float = read_timeout if head_timeout is None else min(head_timeout, read_timeout)
    waiting_states = (h11.IDLE, h11.SEND_BODY)

    class DeadlineH11Protocol(H11Protocol):
        _head: asyncio.TimerHandle | None = None
        _whole: asyncio.TimerHandle | None = None
        _waiting = False

        def _cancel(self, *, head_only: bool = False) -> None:
            if self._head is not None:
                self._head.cancel()
                self._head = None
            if not head_only and self._whole is not None:
                self._whole.cancel()
                self._whole = None

        def _expire(self, what: str, seconds: float) -> None:
            self._cancel()
            if not self.transport.is_closing():
                if budget is not None:
                    budget.stats["expired"] += 1
                log.info(
                    "callback receiver: closed a connection from %s that did not send its %s within %.1f s",
                    self.client[0] if self.client else "?",
                    what,
                    seconds,
                )
                self.transport.close()

        def _evicted(self) -> None:
            self._waiting = False
            self._cancel()
            if not self.transport.is_closing():
                self.transport.close()

        def _update(self) -> None:
            """Start or end the wait from h11's view of the client's side of the request."""
            if self.transport is None or self.transport.is_closing():
                self._leave()
                return
            state = self.conn.their_state
            if state in waiting_states and not self._waiting:
                self._waiting = True
                self._head = self.loop.call_later(head_s, self._expire, "request head", head_s)
                self._whole = self.loop.call_later(read_timeout, self._expire, "request", read_timeout)
                if budget is not None:
                    address = self.client[0] if self.client else ""
                    # kept alive after a request the app found signed
                    trusted = bool(self.scope and self.scope.get("state", {}).get(SIGNED_STATE))
                    budget.add(self, address, lambda conn: conn._evicted(), trusted=trusted)
            elif self._waiting and state is not h11.IDLE:
                self._cancel(head_only=True)  # the head is in
                if state is not h11.SEND_BODY:
                    self._leave()  # the whole request is in (or the connection is done)

        def _leave(self) -> None:
            self._waiting = False
            self._cancel()
            if budget is not None:
                budget.remove(self)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._update()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._update()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._update()

        def connection_lost(self, exc: Exception | None) -> None:
            self._leave()
            super().connection_lost(exc)

    return DeadlineH11Protocol


def receiver_config(app, settings, *, host: str = "127.0.0.1", port: int = 8780):
    """The uvicorn configuration of the receiver: its limits come from ``settings``.

    - a connection has ``callback_keep_alive`` seconds to deliver its request head and
      ``callback_read_timeout`` seconds for the whole request, from its opening or the end of its
      previous response;
    - the connection budget: ``callback_max_connections`` connections without a complete request
      at once, a quarter of them per address (at least 16) (:class:`ConnectionBudget`: the oldest
      is closed to make room), and ``callback_max_connections`` complete requests handled at once (503 past it;
      the app's ``max_requests``, set here). uvicorn's own ``limit_concurrency``, which counts
      idle connections, is off.

    Args:
        app: the app from :func:`create_receiver`.
        settings: :class:`xport_etl.settings.Settings` (``callback_*``).
        host, port: where to listen (``port`` is unused when the server is given sockets).
    """
    import uvicorn

    stats = getattr(app.state, "stats", None)
    places = settings.callback_max_connections
    budget = ConnectionBudget(places, max(places // 4, min(places, 16)), stats)
    app.state.max_requests = settings.callback_max_connections
    app.state.budget = budget
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=deadline_protocol(settings.callback_read_timeout, settings.callback_keep_alive, budget),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=settings.callback_keep_alive,
        limit_concurrency=None,
        # request line and headers: 16 KiB is plenty for a callback (h11's own default)
        h11_max_incomplete_event_size=16 * 1024,
        timeout_graceful_shutdown=5,
        # a flood of connections waits in the kernel's queue, not refused there
        backlog=4096,
    )
