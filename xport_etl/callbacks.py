"""Message callbacks (CONTRACT §6): a receiver that stores Xportcn's pushes durably, and a consumer
that refreshes exactly the orders and refunds they name through the detail endpoints.

Receiving — ``POST /callbacks`` on the app from :func:`create_receiver` (``xport-etl callbacks
serve``):

1. ``Authorization`` must be the lower-case hex HMAC-SHA256 of the RAW request body keyed with the
   access secret (compared in constant time; upper-case hex is accepted too). Missing or wrong:
   HTTP 401.
2. The body must be a JSON object. Its ``timestamp`` (epoch milliseconds as a string of digits or
   a JSON number, a fraction allowed; a value below 10^11 is read as epoch seconds) must be within ``max_skew_s`` (600 s, the API's
   own window) of the receiver's clock; missing, unparseable or outside: HTTP 401. This bounds
   replays. Should Xportcn redeliver a failed message (30 minutes later, CONTRACT §6) with its
   original body, raise ``max_skew_s`` above 3 h: a replay is harmless anyway (it is de-duplicated,
   and consuming a message only re-queries the API). Nothing else is checked here: a
   well-formed, signed envelope whose ``messageBody`` or type is unusable is stored and answered
   200 (Xportcn would only retry it), and the consumer counts it.
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
with a newline so the next message starts on a line of its own.

The message body — ``messageBody`` arrives as a JSON object or as a string holding one (CONTRACT
§6) — is decoded when it is consumed, by :func:`message_body`, the one reader of it. A string
that does not decode to an object (not JSON, a list, a string encoded twice, nested too deep) is
a bad message. ``messagePlatform`` may be ``0``/``1`` or ``"0"``/``"1"`` (:func:`message_platform`);
a missing one is read as Taobao.

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
order and line and no times (CONTRACT §5.5), so each refund call carries a context:
``order_id``/``line_id`` from the message (``orderId``/``subOrderId``) or else the warehouse,
``created_at_ms`` from the message's ``createTime`` or else the warehouse, and ``modified_at_ms``
from the newest ``modifiedTime`` among the refund's messages [assumed body fields, named as in
the refund list]. Without a modification time the refreshed refund counts as older than the
warehouse's row (the loader's rule) until the next list run. Message fields only ever become
request parameters and landed context, never SQL text; an id that is not 1-64 letters/digits is
counted as bad and skipped. Unknown message types stay in the inbox and are counted.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from xport_etl.endpoints import ASSUMED, ApiAssumptions
from xport_etl.normalize import (
    Page,
    RejectError,
    WindowRows,
    _record_id,
    has_surrogates,
    normalize_taobao_order,
)

__all__ = [
    "CALLBACK_PATH",
    "HEALTH_PATH",
    "InboxEntry",
    "InboxStore",
    "create_receiver",
    "main",
    "message_body",
    "message_platform",
    "normalize_taobao_order_detail_pages",
    "normalize_taobao_refund_detail_refresh_pages",
    "read_inbox",
    "refresh_from_callbacks",
    "register",
    "sign_body",
]

log = logging.getLogger(__name__)

CALLBACK_PATH = "/callbacks"
HEALTH_PATH = "/callbacks/health"
INBOX_FILE = "inbox.jsonl"
OFFSET_FILE = "offset.json"
MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_SKEW_S = 600

ORDER_STATUS = "TAOBAO_ORDER_STATUS_MODIFY"
ORDER_PRICE = "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"
ORDER_REFUND = "TAOBAO_ORDER_REFUND"
KNOWN_TYPES = (ORDER_STATUS, ORDER_PRICE, ORDER_REFUND)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ID = re.compile(r"[0-9A-Za-z]{1,64}")


def sign_body(secret: str, body: bytes) -> str:
    """The ``Authorization`` value of a callback: lower-case hex HMAC-SHA256(secret, raw body)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def content_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def callbacks_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "callbacks"


# ---- the inbox


@dataclass
class InboxEntry:
    """One stored message: ``message`` is the parsed body (decimals kept exact)."""

    id: str
    received_at: str
    type: str | None
    message: dict


class InboxStore:
    """``inbox.jsonl``: append-only, fsynced, de-duplicated by content id.

    Thread-safe (one lock) and safe against other processes appending (``flock``).
    """

    def __init__(self, inbox_dir: Path) -> None:
        self.dir = Path(inbox_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / INBOX_FILE
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        if created:
            _fsync_dir(self.dir)
        self._lock = threading.Lock()
        self.seen: set[str] = set()
        with self._locked():
            self._seal_torn_tail()
            entries, _end, _corrupt = read_inbox(self.path)
            self.seen.update(e.id for e in entries)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _seal_torn_tail(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        if os.pread(self._fd, 1, size - 1) != b"\n":
            # a write torn by a crash: it was never acknowledged (we answer only after fsync);
            # end it so the next message starts on its own line, and keep it for the record
            _write_all(self._fd, b"\n")
            os.fsync(self._fd)
            log.warning("inbox %s ended with a torn line (a crash mid-write); sealed it", self.path)

    def append(self, raw: bytes, message: dict) -> tuple[str, bool]:
        """Store one message unless already stored; returns ``(content id, stored now)``."""
        mid = content_id(raw)
        with self._locked():
            if mid in self.seen:
                return mid, False
            mtype = message.get("messageType")
            line = {
                "id": mid,
                "received_at": datetime.now(UTC).isoformat(),
                "type": mtype if isinstance(mtype, str) else None,
                "platform": message.get("messagePlatform"),
                "body": raw.decode("utf-8"),
            }
            data = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8")
            _write_all(self._fd, data)
            os.fsync(self._fd)
            self.seen.add(mid)
        return mid, True

    def close(self) -> None:
        os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_inbox(path: Path, offset: int = 0) -> tuple[list[InboxEntry], int, int]:
    """The complete lines of the inbox from byte ``offset``.

    Returns:
        ``(entries, end, corrupt)``: the readable messages, the byte offset just after the last
        complete line (an unfinished last line is left for later), and how many lines were
        skipped as unreadable (torn by a crash, or not a message).

    Raises:
        ValueError: ``offset`` is past the end of the inbox (it was replaced or truncated).
    """
    path = Path(path)
    if not path.exists():
        if offset:
            raise ValueError(f"callback offset {offset} but there is no inbox at {path}")
        return [], 0, 0
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if offset > size:
            raise ValueError(f"callback offset {offset} is past the end of {path} ({size} bytes)")
        f.seek(offset)
        data = f.read()
    cut = data.rfind(b"\n") + 1
    entries, corrupt = [], 0
    for line in data[:cut].splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            message = json.loads(row["body"], parse_float=Decimal)
            if not isinstance(message, dict) or not isinstance(row["id"], str):
                raise ValueError("not a message")
        except (ValueError, KeyError, TypeError, RecursionError):
            corrupt += 1
            continue
        entries.append(InboxEntry(row["id"], row.get("received_at", ""), row.get("type"), message))
    return entries, offset + cut, corrupt


# ---- the message's fields


def message_body(message: dict) -> dict | None:
    """The ``messageBody`` of a callback as an object, whichever form it arrived in.

    Xportcn sends the body as a JSON object or as a JSON-encoded string of that object (CONTRACT
    §6). A string is decoded once, with decimals kept exact as in the object form.

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
):
    """The callback receiver as an ASGI app (Starlette): ``POST /callbacks``, ``GET /callbacks/health``.

    Args:
        secret: the access secret that keys the HMAC.
        inbox_dir: where ``inbox.jsonl`` lives (created if missing).
        max_skew_s: how far a message's ``timestamp`` may be from ``clock()`` (seconds).
        clock: epoch seconds (injectable for tests).

    The app's ``state.store`` is the :class:`InboxStore`, ``state.stats`` a Counter of outcomes
    plus ``max_ms`` (the slowest answer).
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if not secret:
        raise ValueError("the callback receiver needs the access secret")
    key = secret.encode("utf-8")
    store = InboxStore(inbox_dir)
    stats: Counter = Counter()

    def answer(status: int, payload: dict, started: float, outcome: str) -> JSONResponse:
        ms = (time.perf_counter() - started) * 1000
        stats[outcome] += 1
        stats["max_ms"] = max(stats["max_ms"], round(ms, 3))
        if ms > 500:
            log.warning("callback answered in %.0f ms (budget 1000 ms)", ms)
        return JSONResponse(
            payload, status_code=status, headers={"Server-Timing": f"app;dur={ms:.1f}"}
        )

    async def receive(request: Request) -> JSONResponse:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return answer(413, {"ok": False, "error": "body too large"}, started, "too_large")
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            return answer(413, {"ok": False, "error": "body too large"}, started, "too_large")
        given = (request.headers.get("authorization") or "").strip()
        if not given:
            return answer(
                401, {"ok": False, "error": "missing Authorization"}, started, "unauthorized"
            )
        expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
        if not (_HEX64.fullmatch(given) and hmac.compare_digest(given.lower(), expected)):
            return answer(401, {"ok": False, "error": "bad signature"}, started, "unauthorized")
        try:
            message = json.loads(raw.decode("utf-8"), parse_float=Decimal)
        except (ValueError, RecursionError):
            return answer(
                400, {"ok": False, "error": "body is not UTF-8 JSON"}, started, "bad_request"
            )
        if not isinstance(message, dict):
            return answer(
                400, {"ok": False, "error": "body is not a JSON object"}, started, "bad_request"
            )
        sent = _parse_timestamp(message.get("timestamp"))
        if sent is None or abs(clock() - sent) > max_skew_s:
            return answer(
                401, {"ok": False, "error": "stale or missing timestamp"}, started, "stale"
            )
        mid, stored = await run_in_threadpool(store.append, raw, message)
        log.info(
            "callback %s %s%s",
            message.get("messageType"),
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


# ---- normalisers for the detail endpoints the refresh calls


def normalize_taobao_order_detail_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """Normalise Taobao order detail pages (CONTRACT §5.3: ``data`` is one ``TaoBaoOrderVO``)
    into orders, order lines and rejects, exactly as the list's records."""
    from xport_etl.normalize_more import parse_detail

    out = WindowRows(endpoint, window_id, rejected_at)
    for page_no, body, ctx in pages:
        data, clean = parse_detail(body)
        out.records += 1
        rid = _record_id(data, "id") or (
            str(ctx.get("order_id")) if isinstance(ctx, dict) else None
        )
        if not clean and has_surrogates(data):
            out.reject(
                None if rid is None or has_surrogates(rid) else rid,
                "record contains bytes that are not valid UTF-8",
                json.dumps(data, default=str, ensure_ascii=True),
                page_no,
            )
            continue
        try:
            rows = normalize_taobao_order(
                data, endpoint=endpoint, page=page_no, assumptions=assumptions
            )
        except RejectError as exc:
            out.reject(rid, str(exc), data, page_no)
            continue
        out.keep(rows, page_no)
    return out.finish()


def normalize_taobao_refund_detail_refresh_pages(
    pages: Iterable[Page],
    *,
    endpoint: str,
    window_id: str,
    rejected_at: datetime,
    assumptions: ApiAssumptions = ASSUMED,
) -> WindowRows:
    """The refund detail normaliser, with the times the detail lacks taken from the page context
    (``created_at_ms``, ``modified_at_ms``: epoch ms) when the served detail has none."""
    from xport_etl.normalize_more import normalize_taobao_refund_detail_pages, to_epoch_ms_time

    pages = list(pages)
    out = normalize_taobao_refund_detail_pages(
        pages,
        endpoint=endpoint,
        window_id=window_id,
        rejected_at=rejected_at,
        assumptions=assumptions,
    )
    contexts = {str(ctx.get("refund_id")): ctx for _n, _b, ctx in pages if isinstance(ctx, dict)}
    for row in out.tables.get("refunds", []):
        ctx = contexts.get(row["refund_id"])
        if not ctx:
            continue
        for column, name in (("created_at", "created_at_ms"), ("updated_at", "modified_at_ms")):
            if row.get(column) is None and ctx.get(name):
                # a bad hint stays unknown: the row keeps its null time
                with suppress(RejectError):
                    row[column] = to_epoch_ms_time(ctx[name], f"context {name}")
    return out


REFRESH_NORMALIZERS = {
    "taobao_order_detail": normalize_taobao_order_detail_pages,
    "taobao_refund_detail": normalize_taobao_refund_detail_refresh_pages,
}


# ---- the consumer


@dataclass
class _Wanted:
    orders: dict[str, dict] = field(default_factory=dict)
    refunds: dict[str, dict] = field(default_factory=dict)
    unknown: Counter = field(default_factory=Counter)
    bad: int = 0


def _msg_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and _ID.fullmatch(value.strip()):
        return value.strip()
    return None


def _ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value > 0 else None


def collect(entries: Iterable[InboxEntry]) -> _Wanted:
    """The distinct orders and refunds the messages name (each message counted once by id)."""
    wanted, seen = _Wanted(), set()
    for entry in entries:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        mtype = entry.message.get("messageType")
        if mtype not in KNOWN_TYPES or message_platform(entry.message) != 0:
            wanted.unknown[str(mtype)] += 1
            continue
        body = message_body(entry.message)
        if body is None:
            wanted.bad += 1
            continue
        if mtype == ORDER_REFUND:
            refund_id, order_id = _msg_id(body.get("refundId")), _msg_id(body.get("orderId"))
            if refund_id is None:
                wanted.bad += 1
                continue
            hint = wanted.refunds.setdefault(refund_id, {})
            for name, value in (
                ("order_id", order_id),
                ("line_id", _msg_id(body.get("subOrderId"))),
                ("created_at_ms", _ms(body.get("createTime"))),
            ):
                if value is not None:
                    hint[name] = value
            modified = _ms(body.get("modifiedTime"))
            if modified is not None and modified > hint.get("modified_at_ms", 0):
                hint["modified_at_ms"] = modified
            if order_id is not None:
                wanted.orders.setdefault(order_id, {})
            continue
        order_id = _msg_id(
            body.get("orderId") if mtype == ORDER_STATUS else body.get("salesOrderId")
        )
        if order_id is None:
            wanted.bad += 1
            continue
        wanted.orders.setdefault(order_id, {})
    return wanted


def _refund_hints_from_warehouse(settings, refund_ids: list[str]) -> dict[str, dict]:
    """Known order, line and creation time of refunds, from the published warehouse."""
    from xport_etl.load import connect_reader, warehouse_path

    if not refund_ids or not warehouse_path(settings.data_dir).exists():
        return {}
    con = connect_reader(settings.data_dir)
    try:
        rows = con.execute(
            "select refund_id, order_id, line_id, epoch_ms(created_at) from fct_refunds "
            "where platform = 'taobao' and refund_id in (select unnest(?::varchar[]))",
            [refund_ids],
        ).fetchall()
    finally:
        con.close()
    return {r[0]: {"order_id": r[1], "line_id": r[2], "created_at_ms": r[3]} for r in rows}


def _read_offset(path: Path) -> dict:
    if not path.exists():
        return {"offset": 0, "consumed": 0}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_offset(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(state, indent=2))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def refresh_from_callbacks(settings, *, client=None) -> dict[str, Any]:
    """Refresh the orders and refunds named by the messages received since the last run.

    Reads ``<data_dir>/callbacks/inbox.jsonl`` from the stored offset, calls the detail endpoints
    once per distinct order and refund, publishes, and only then advances the offset.

    Returns:
        Small counts: ``messages``, ``corrupt`` (unreadable lines), ``bad`` (known type, unusable
        body), ``unknown`` (per message type), ``orders``, ``refunds``, ``rows_written``,
        ``rejects``, ``offset``.
    """
    from xport_etl.faults import crashpoint
    from xport_etl.pipeline import _make_client, extract_fanout, load_windows

    cdir = callbacks_dir(settings.data_dir)
    cdir.mkdir(parents=True, exist_ok=True)
    offset_path = cdir / OFFSET_FILE
    with open(cdir / "consume.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read_offset(offset_path)
        entries, end, corrupt = read_inbox(cdir / INBOX_FILE, int(state.get("offset", 0)))
        wanted = collect(entries)
        result: dict[str, Any] = {
            "messages": len(entries),
            "corrupt": corrupt,
            "bad": wanted.bad,
            "unknown": dict(wanted.unknown),
            "orders": len(wanted.orders),
            "refunds": len(wanted.refunds),
            "rows_written": {},
            "rejects": 0,
            "offset": end,
        }
        if wanted.orders or wanted.refunds:
            missing = [
                r
                for r, h in wanted.refunds.items()
                if not {"order_id", "line_id", "created_at_ms"} <= h.keys()
            ]
            known = _refund_hints_from_warehouse(settings, missing)
            own_client = client is None
            client = client or _make_client(settings)
            try:
                paths: list[str] = []
                if wanted.orders:
                    paths += extract_fanout(
                        settings,
                        "taobao_order_detail",
                        client=client,
                        keys=[{"key": o, "order_id": o} for o in sorted(wanted.orders)],
                    )
                refund_keys = []
                for refund_id in sorted(wanted.refunds):
                    row = {k: v for k, v in known.get(refund_id, {}).items() if v is not None}
                    row.update(wanted.refunds[refund_id])
                    refund_keys.append({"key": refund_id, "refund_id": refund_id, **row})
                if refund_keys:
                    paths += extract_fanout(
                        settings, "taobao_refund_detail", client=client, keys=refund_keys
                    )
            finally:
                if own_client:
                    client.close()
            if paths:
                loaded = load_windows(settings, paths)
                result["rows_written"], result["rejects"] = (
                    loaded["rows_written"],
                    loaded["rejects"],
                )
        crashpoint("callbacks.published")
        if end != state.get("offset", 0):
            _write_offset(
                offset_path,
                {
                    "offset": end,
                    "consumed": int(state.get("consumed", 0)) + len(entries),
                    "updated_at": datetime.now(UTC).isoformat(),
                },
            )
    log.info("callbacks consumed: %s", result)
    return result


# ---- CLI


def cmd_serve(args) -> int:
    import uvicorn

    from xport_etl.sandbox import DEFAULT_ACCESS_SECRET
    from xport_etl.settings import Settings

    settings = Settings.from_env(data_dir=Path(args.data_dir) if args.data_dir else None)
    if settings.access_secret == DEFAULT_ACCESS_SECRET:
        log.warning("XPORT_ACCESS_SECRET is not set: verifying callbacks with the sandbox's secret")
    app = create_receiver(
        settings.access_secret, callbacks_dir(settings.data_dir), max_skew_s=args.max_skew
    )
    print(
        f"receiving callbacks on http://{args.host}:{args.port}{CALLBACK_PATH} "
        f"into {callbacks_dir(settings.data_dir) / INBOX_FILE}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    return 0


def cmd_consume(args) -> int:
    from xport_etl.settings import Settings

    settings = Settings.from_env(data_dir=Path(args.data_dir) if args.data_dir else None)
    result = refresh_from_callbacks(settings)
    print(json.dumps(result, default=str))
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``callbacks`` command (``serve`` and ``consume``) to ``subparsers``."""
    parser = subparsers.add_parser(
        "callbacks",
        help="receive Xportcn message callbacks, or refresh what they name",
        description="Receive Xportcn's message callbacks (CONTRACT §6) into an fsynced inbox, and "
        "refresh the orders and refunds they name through the detail endpoints.\n"
        "example: xport-etl callbacks serve --port 8780 --data-dir data\n"
        "example: xport-etl callbacks consume --data-dir data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="callbacks_command", metavar="{serve,consume}", required=True
    )
    serve = commands.add_parser(
        "serve",
        help=f"serve POST {CALLBACK_PATH} (secret from XPORT_ACCESS_SECRET)",
        description=f"Serve POST {CALLBACK_PATH}: verify the HMAC and timestamp, store the message "
        "under <data-dir>/callbacks/inbox.jsonl, answer 200.\n"
        "example: XPORT_ACCESS_SECRET=… xport-etl callbacks serve --host 0.0.0.0 --port 8780",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1), e.g. --host 0.0.0.0",
    )
    serve.add_argument(
        "--port", type=int, default=8780, help="port to listen on (default 8780), e.g. --port 9000"
    )
    serve.add_argument(
        "--data-dir",
        help="data directory (env XPORT_DATA_DIR, default ./data); the inbox is <data-dir>/callbacks/",
    )
    serve.add_argument(
        "--max-skew",
        type=float,
        default=DEFAULT_MAX_SKEW_S,
        help=f"accepted distance of a message's timestamp from now, seconds (default {DEFAULT_MAX_SKEW_S}), e.g. --max-skew 900",
    )
    serve.set_defaults(func=cmd_serve)
    consume = commands.add_parser(
        "consume",
        help="refresh the orders and refunds named by new callbacks, and publish",
        description="Read the inbox from the stored offset, re-fetch the named orders and refunds "
        "through the detail endpoints, publish, then advance the offset.\n"
        "example: xport-etl callbacks consume --data-dir data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    consume.add_argument("--data-dir", help="data directory (env XPORT_DATA_DIR, default ./data)")
    consume.set_defaults(func=cmd_consume)
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m xport_etl.callbacks serve|consume …`` (the same as ``xport-etl callbacks``)."""
    parser = argparse.ArgumentParser(prog="python -m xport_etl.callbacks")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["callbacks", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
