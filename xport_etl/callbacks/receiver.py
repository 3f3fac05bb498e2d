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
with a newline so the next message starts on a line of its own, and a write that fails (a full
disk) is cut back before the 500. The inbox rotates by size into ``inbox.<n>.jsonl`` segments;
ids are remembered for a bounded horizon; the consumer dead-letters what it can never use to
``dead-letter.jsonl``. The limits on slow, idle and oversized requests and these decisions are in
``docs/callbacks.md``.

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
import asyncio
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
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from xport_etl.extract.endpoints import ASSUMED, ApiAssumptions
from xport_etl.normalize.values import (
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
SEGMENT_FILE = "inbox.segment"
LOCK_FILE = "inbox.lock"
OFFSET_FILE = "offset.json"
DEAD_LETTER_FILE = "dead-letter.jsonl"
MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_SKEW_S = 600
DEFAULT_READ_TIMEOUT_S = 10.0
DEFAULT_ROTATE_BYTES = 64 << 20
# Xportcn retries a failed message after 30 minutes, at most 5 times (CONTRACT §6): a redelivery
# comes within about 2.5 h of the first try. A day covers that with room for a receiver that was
# down for hours; the count bounds memory whatever the rate (about 200 bytes an id)
DEFAULT_SEEN_HORIZON_S = 86_400.0
SEEN_MAX = 2_000_000

ORDER_STATUS = "TAOBAO_ORDER_STATUS_MODIFY"
ORDER_PRICE = "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"
ORDER_REFUND = "TAOBAO_ORDER_REFUND"
KNOWN_TYPES = (ORDER_STATUS, ORDER_PRICE, ORDER_REFUND)

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ID = re.compile(r"[0-9A-Za-z]{1,64}")
_SEGMENT = re.compile(r"inbox\.(\d{6,})\.jsonl")


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


def segment_path(inbox_dir: Path, segment: int) -> Path:
    """The file of a rotated inbox segment (the active one is always ``inbox.jsonl``)."""
    return Path(inbox_dir) / f"inbox.{segment:06d}.jsonl"


def rotated_segments(inbox_dir: Path) -> list[int]:
    """The numbers of the rotated segments present in ``inbox_dir``, oldest first."""
    found = []
    for path in Path(inbox_dir).glob("inbox.*.jsonl"):
        m = _SEGMENT.fullmatch(path.name)
        if m:
            found.append(int(m.group(1)))
    return sorted(found)


def active_segment(inbox_dir: Path) -> int:
    """The number of the active segment ``inbox.jsonl``: one past every rotated segment.

    ``inbox.segment`` remembers it once rotated segments have been consumed and removed; the
    rotated files win over it (a crash between the rename and the write of that file).
    """
    recorded = 1
    with suppress(FileNotFoundError, ValueError):
        recorded = int((Path(inbox_dir) / SEGMENT_FILE).read_text().strip())
    return max(recorded, max(rotated_segments(inbox_dir), default=0) + 1)


@contextmanager
def inbox_lock(inbox_dir: Path) -> Iterator[None]:
    """The inbox's cross-process lock (``inbox.lock``): appends, rotation and a reader's open."""
    fd = os.open(Path(inbox_dir) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class InboxStore:
    """The inbox: append-only, fsynced, de-duplicated by content id, rotated by size.

    ``inbox.jsonl`` is the active segment; once the next line would take it past
    ``rotate_bytes`` it is renamed ``inbox.<n>.jsonl`` (n = its segment number) and a new one is
    started. A write that fails (a full disk) is cut back to the last complete line before the
    error is raised, so the next message starts on a clean line; an id is remembered as seen only
    once its line is written and fsynced. Ids are remembered for ``seen_horizon_s`` (and at most
    ``SEEN_MAX`` of them): a redelivery after that is stored again, which costs the consumer one
    more refresh of the same order.

    Thread-safe (one lock) and safe against other processes appending (``flock`` on
    ``inbox.lock``).
    """

    def __init__(
        self,
        inbox_dir: Path,
        *,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        seen_horizon_s: float = DEFAULT_SEEN_HORIZON_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dir = Path(inbox_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / INBOX_FILE
        self.rotate_bytes = rotate_bytes
        self.seen_horizon_s = seen_horizon_s
        self._clock = clock
        self._lock = threading.Lock()
        self._lock_fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = -1
        # where the active segment was cut back to after a failed write that could not be
        # cut at once; the next append finishes the cut first
        self._cut_to: int | None = None
        # id -> epoch seconds received, oldest first
        self.seen: OrderedDict[str, float] = OrderedDict()
        with self._locked():
            self._seal_torn_tail()
            horizon = self._clock() - self.seen_horizon_s
            for seg in [*rotated_segments(self.dir), None]:
                path = self.path if seg is None else segment_path(self.dir, seg)
                with suppress(FileNotFoundError):
                    for e in read_inbox(path)[0]:
                        at = _epoch(e.received_at)
                        if at >= horizon:
                            self.seen[e.id] = at
            self._forget_old()

    @property
    def segment(self) -> int:
        return active_segment(self.dir)

    def _open_active(self) -> None:
        """(Re)open ``inbox.jsonl`` if this store has no descriptor on it (another process
        rotated it, or it was never opened)."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if self._fd >= 0:
            mine = os.fstat(self._fd)
            if current is not None and (mine.st_dev, mine.st_ino) == (
                current.st_dev,
                current.st_ino,
            ):
                return
            os.close(self._fd)
            self._fd = -1
            self._cut_to = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        if current is None:
            _fsync_dir(self.dir)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._open_active()
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

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

    def _cut(self, size: int) -> None:
        """Cut the active segment back to ``size`` bytes (the end of its last complete line)."""
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)
        self._cut_to = None

    def _rotate(self) -> None:
        seg = active_segment(self.dir)
        os.rename(self.path, segment_path(self.dir, seg))
        _fsync_dir(self.dir)
        os.close(self._fd)
        self._fd = -1
        self._open_active()
        _write_atomic(self.dir / SEGMENT_FILE, f"{seg + 1}\n")
        log.info("inbox rotated: %s", segment_path(self.dir, seg).name)

    def _forget_old(self) -> None:
        horizon = self._clock() - self.seen_horizon_s
        while self.seen and (len(self.seen) > SEEN_MAX or next(iter(self.seen.values())) < horizon):
            self.seen.popitem(last=False)

    def append(self, raw: bytes, message: dict) -> tuple[str, bool]:
        """Store one message unless already stored; returns ``(content id, stored now)``.

        Raises:
            OSError: the line could not be written and fsynced (a full disk): nothing of it
                is left in the inbox, and the message is not remembered (a retry stores it).
            ValueError: the message cannot be stored as a line (never the case for a body that
                parsed as JSON; kept as a guard so such a body is refused, not retried).
        """
        mid = content_id(raw)
        data = _inbox_line(mid, raw, message, self._clock())
        with self._locked():
            if mid in self.seen:
                return mid, False
            if self._cut_to is not None:
                self._cut(self._cut_to)
            good = os.fstat(self._fd).st_size
            if good and good + len(data) > self.rotate_bytes:
                self._rotate()
                good = 0
            try:
                _write_all(self._fd, data)
                os.fsync(self._fd)
            except OSError:
                # never leave a torn line for the next message to be glued to
                self._cut_to = good
                with suppress(OSError):
                    self._cut(good)
                raise
            self.seen[mid] = self._clock()
            self._forget_old()
        return mid, True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        os.close(self._lock_fd)


def _clean_scalar(value: Any) -> str | int | None:
    """A copy of an envelope field for the line's by-eye columns: short text or an int, else None.

    The raw body is what is stored; these copies must never make a line unwritable (a lone
    surrogate, absurd nesting, a huge number).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and abs(value) < 10**18:
        return value
    if isinstance(value, str) and len(value) <= 200 and not has_surrogates(value):
        return value
    return None


def _inbox_line(mid: str, raw: bytes, message: dict, now: float) -> bytes:
    line = {
        "id": mid,
        "received_at": datetime.fromtimestamp(now, UTC).isoformat(),
        "type": _clean_scalar(message.get("messageType")),
        "platform": _clean_scalar(message.get("messagePlatform")),
        "body": raw.decode("utf-8"),
    }
    return (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return 0.0


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


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _parse_lines(data: bytes) -> tuple[list[InboxEntry], list[bytes]]:
    entries, bad = [], []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            message = json.loads(row["body"], parse_float=Decimal)
            if not isinstance(message, dict) or not isinstance(row["id"], str):
                raise ValueError("not a message")
        except (ValueError, KeyError, TypeError, RecursionError):
            bad.append(line)
            continue
        entries.append(InboxEntry(row["id"], row.get("received_at", ""), row.get("type"), message))
    return entries, bad


def _read_from(f, offset: int, path: Path) -> bytes:
    size = os.fstat(f.fileno()).st_size
    if offset > size:
        raise ValueError(f"callback offset {offset} is past the end of {path} ({size} bytes)")
    f.seek(offset)
    return f.read()


def read_inbox(path: Path, offset: int = 0) -> tuple[list[InboxEntry], int, int]:
    """The complete lines of one inbox file from byte ``offset``.

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
        data = _read_from(f, offset, path)
    cut = data.rfind(b"\n") + 1
    entries, bad = _parse_lines(data[:cut])
    return entries, offset + cut, len(bad)


@dataclass
class InboxBatch:
    """What :func:`read_segments` read: messages, unreadable lines, and where it stopped."""

    entries: list[InboxEntry]
    corrupt: list[bytes]
    segment: int
    offset: int


def read_segments(inbox_dir: Path, segment: int, offset: int) -> InboxBatch:
    """Every complete line from ``(segment, offset)`` to the end of the active segment.

    A rotated segment is read to its end (an unfinished last line there can never be finished,
    so it counts as unreadable); the active one up to its last complete line.

    Raises:
        ValueError: the position is past the end of the inbox, or a rotated segment between it
            and the active one is missing (removed before it was consumed).
    """
    inbox_dir = Path(inbox_dir)
    files = []
    with inbox_lock(inbox_dir):
        active = active_segment(inbox_dir)
        if segment > active:
            raise ValueError(f"callback segment {segment} is past the inbox's ({active})")
        try:
            for seg in range(segment, active + 1):
                path = inbox_dir / INBOX_FILE if seg == active else segment_path(inbox_dir, seg)
                try:
                    files.append((seg, path, open(path, "rb")))  # noqa: SIM115 (closed below)
                except FileNotFoundError:
                    if seg != active:
                        raise ValueError(
                            f"inbox segment {path.name} is missing but was never consumed"
                        ) from None
                    files.append((seg, path, None))
        except BaseException:
            for _s, _p, f in files:
                if f is not None:
                    f.close()
            raise
    batch = InboxBatch([], [], segment, offset)
    try:
        for seg, path, f in files:
            start = offset if seg == segment else 0
            if f is None:
                if start:
                    raise ValueError(f"callback offset {start} but there is no inbox at {path}")
                batch.segment, batch.offset = seg, 0
                continue
            data = _read_from(f, start, path)
            cut = len(data) if seg != active else data.rfind(b"\n") + 1
            entries, bad = _parse_lines(data[:cut])
            batch.entries += entries
            batch.corrupt += bad
            batch.segment, batch.offset = seg, start + cut
    finally:
        for _s, _p, f in files:
            if f is not None:
                f.close()
    return batch


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

    def answer(
        status: int, payload: dict, started: float, outcome: str, *, close: bool = False
    ) -> JSONResponse:
        ms = (time.perf_counter() - started) * 1000
        stats[outcome] += 1
        stats["max_ms"] = max(stats["max_ms"], round(ms, 3))
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
            return answer(
                401, {"ok": False, "error": "bad signature"}, started, "unauthorized", close=True
            )
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_body:
            return answer(
                413, {"ok": False, "error": "body too large"}, started, "too_large", close=True
            )
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
        try:
            mid, stored = await run_in_threadpool(store.append, raw, message)
        except OSError as exc:
            # the disk (full, failing): retriable, and nothing of the message was kept
            log.error("callback not stored: %s", exc.strerror or exc)
            return answer(
                500, {"ok": False, "error": "message not stored"}, started, "store_failed"
            )
        except (ValueError, RecursionError, UnicodeError):
            # it can never be stored: a refusal Xportcn need not retry
            return answer(
                422, {"ok": False, "error": "message cannot be stored"}, started, "unstorable"
            )
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
                    "callback receiver: closed a connection from %s that did not send its request "
                    "within %.0f s",
                    self.client[0] if self.client else "?",
                    read_timeout,
                )
                self.transport.close()

        def connection_made(self, transport) -> None:  # type: ignore[override]
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
    from xport_etl.normalize.more import parse_detail

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
    from xport_etl.normalize.more import normalize_taobao_refund_detail_pages, to_epoch_ms_time

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
    # (message, reason) of each bad message: they go to the dead letters
    dead: list[tuple[InboxEntry, str]] = field(default_factory=list, compare=False)
    # what each message names, by message id: ("order" | "refund", id)
    names: dict[str, list[tuple[str, str]]] = field(default_factory=dict, compare=False)


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
            # a type that is not text (or not UTF-8 text) is counted under its ascii() form
            label = mtype if isinstance(mtype, str) and _clean_scalar(mtype) else ascii(mtype)
            wanted.unknown[label[:200]] += 1
            continue
        body = message_body(entry.message)
        if body is None:
            wanted.bad += 1
            wanted.dead.append((entry, "messageBody is missing or does not decode to an object"))
            continue
        if mtype == ORDER_REFUND:
            refund_id, order_id = _msg_id(body.get("refundId")), _msg_id(body.get("orderId"))
            if refund_id is None:
                wanted.bad += 1
                wanted.dead.append((entry, "no usable refundId (1-64 letters and digits)"))
                continue
            wanted.names[entry.id] = [("refund", refund_id)] + (
                [("order", order_id)] if order_id is not None else []
            )
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
            field_name = "orderId" if mtype == ORDER_STATUS else "salesOrderId"
            wanted.dead.append((entry, f"no usable {field_name} (1-64 letters and digits)"))
            continue
        wanted.names[entry.id] = [("order", order_id)]
        wanted.orders.setdefault(order_id, {})
    return wanted


def _refund_hints_from_warehouse(settings, refund_ids: list[str]) -> dict[str, dict]:
    """Known order, line and creation time of refunds, from the published warehouse."""
    from xport_etl.load.publish import connect_reader, warehouse_path

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
        return {"segment": 1, "offset": 0, "consumed": 0}
    state = json.loads(path.read_text(encoding="utf-8"))
    # an offset written before the inbox rotated is an offset into its first segment
    state.setdefault("segment", 1)
    return state


def _write_offset(path: Path, state: dict) -> None:
    _write_atomic(path, json.dumps(state, indent=2))


_KINDS = {"taobao_order_detail": "order", "taobao_refund_detail": "refund"}


class _KeyFailures:
    """The client as :func:`pipeline.extract_fanout` sees it, with each key whose detail call
    fails for good (a non-retriable error, 404 included) recorded and then skipped.

    ``extract_fanout`` skips a key answered 404 and fails the window on any other error; a key
    that will never refresh must not hold back every other message, so its error is recorded here
    (the consumer dead-letters the messages naming it) and handed on as a 404. Retriable errors,
    authentication errors and network errors pass through untouched: they stop the batch.
    """

    def __init__(self, client) -> None:
        self._client = client
        self.failed: dict[tuple[str, str], str] = {}

    def request(self, endpoint, *, params=None, body=None):
        from xport_etl.errors import FatalError

        try:
            return self._client.request(endpoint, params=params, body=body)
        except FatalError as exc:
            args = params if params is not None else body or {}
            key = str(args.get(endpoint.detail_param))
            kind = _KINDS.get(endpoint.name, endpoint.name)
            self.failed[(kind, key)] = f"{endpoint.name} {key}: {exc.message} (code {exc.code})"
            raise FatalError(exc.message, endpoint=endpoint.name, code=404) from exc

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def _rejected_keys(settings, manifests: list[str]) -> dict[tuple[str, str], str]:
    """The orders and refunds the publish rejected (``etl_rejects`` rows of the windows just
    landed whose severity is 'rejected'), with the reason."""
    from xport_etl.extract.landing import read_manifest
    from xport_etl.load.publish import connect_reader, warehouse_path

    windows = []
    for path in manifests:
        m = read_manifest(path)
        if m.endpoint in _KINDS:
            windows.append(m.window_id)
    if not windows or not warehouse_path(settings.data_dir).exists():
        return {}
    con = connect_reader(settings.data_dir)
    try:
        columns = {r[0] for r in con.execute("describe etl_rejects").fetchall()}
        severity = "and severity = 'rejected'" if "severity" in columns else ""
        rows = con.execute(
            "select endpoint, record_id, reason from etl_rejects "
            f"where window_id in (select unnest(?::varchar[])) {severity}",
            [windows],
        ).fetchall()
    finally:
        con.close()
    out = {}
    for endpoint, record_id, reason in rows:
        if endpoint in _KINDS and record_id:
            # a line's record id is 'order/line': the order is what a message names
            out[(_KINDS[endpoint], str(record_id).split("/")[0])] = f"rejected: {reason}"
    return out


def _dead_letter(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to the dead letters and fsync (before the offset moves past them)."""
    if not rows:
        return
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # ascii: an unreadable line's bytes and lone surrogates survive as escapes
        data = "".join(json.dumps(r, ensure_ascii=True, default=str) + "\n" for r in rows)
        _write_all(fd, data.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _letter(entry: InboxEntry, reason: str, now: str) -> dict:
    return {
        "dead_at": now,
        "reason": reason,
        "id": entry.id,
        "received_at": entry.received_at,
        "type": entry.type,
        "message": entry.message,
    }


def refresh_from_callbacks(settings, *, client=None) -> dict[str, Any]:
    """Refresh the orders and refunds named by the messages received since the last run.

    Reads the inbox (``<data_dir>/callbacks/``, every segment) from the stored position, calls
    the detail endpoints once per distinct order and refund, publishes, writes what can never be
    refreshed to ``dead-letter.jsonl``, and only then advances the position. Rotated segments
    consumed past and older than the receiver's dedup horizon are then removed.

    A message goes to the dead letters, with its reason, when it is unreadable (a line that does
    not parse), bad (a known type without a usable body or id), or names an order or refund whose
    detail call fails for good (a 404 or another non-retriable error) or whose record the publish
    rejected. A transient failure (network, 5xx, rate limit after retries, authentication) stops
    the batch: nothing is published, dead-lettered or skipped, and the position stays.

    Returns:
        Small counts: ``messages``, ``corrupt`` (unreadable lines), ``bad`` (known type, unusable
        body), ``unknown`` (per message type), ``orders``, ``refunds``, ``rows_written``,
        ``rejects``, ``dead_lettered``, ``segment``, ``offset``.
    """
    from xport_etl.faults import crashpoint
    from xport_etl.run import _make_client, extract_fanout, load_windows

    cdir = callbacks_dir(settings.data_dir)
    cdir.mkdir(parents=True, exist_ok=True)
    offset_path = cdir / OFFSET_FILE
    with open(cdir / "consume.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read_offset(offset_path)
        batch = read_segments(cdir, int(state["segment"]), int(state.get("offset", 0)))
        entries = batch.entries
        wanted = collect(entries)
        result: dict[str, Any] = {
            "messages": len(entries),
            "corrupt": len(batch.corrupt),
            "bad": wanted.bad,
            "unknown": dict(wanted.unknown),
            "orders": len(wanted.orders),
            "refunds": len(wanted.refunds),
            "rows_written": {},
            "rejects": 0,
            "dead_lettered": 0,
            "segment": batch.segment,
            "offset": batch.offset,
        }
        failed: dict[tuple[str, str], str] = {}
        if wanted.orders or wanted.refunds:
            missing = [
                r
                for r, h in wanted.refunds.items()
                if not {"order_id", "line_id", "created_at_ms"} <= h.keys()
            ]
            known = _refund_hints_from_warehouse(settings, missing)
            own_client = client is None
            client = client or _make_client(settings)
            tracked = _KeyFailures(client)
            try:
                paths: list[str] = []
                if wanted.orders:
                    paths += extract_fanout(
                        settings,
                        "taobao_order_detail",
                        client=tracked,
                        keys=[{"key": o, "order_id": o} for o in sorted(wanted.orders)],
                    )
                refund_keys = []
                for refund_id in sorted(wanted.refunds):
                    row = {k: v for k, v in known.get(refund_id, {}).items() if v is not None}
                    row.update(wanted.refunds[refund_id])
                    refund_keys.append({"key": refund_id, "refund_id": refund_id, **row})
                if refund_keys:
                    paths += extract_fanout(
                        settings, "taobao_refund_detail", client=tracked, keys=refund_keys
                    )
            finally:
                if own_client:
                    client.close()
            failed.update(tracked.failed)
            if paths:
                loaded = load_windows(settings, paths)
                result["rows_written"], result["rejects"] = (
                    loaded["rows_written"],
                    loaded["rejects"],
                )
                if loaded["rejects"]:
                    failed.update(_rejected_keys(settings, paths))
        crashpoint("callbacks.published")
        now = datetime.now(UTC).isoformat()
        letters = [
            {
                "dead_at": now,
                "reason": "unreadable inbox line (torn by a crash, or not a message)",
                "line": line.decode("utf-8", "backslashreplace"),
            }
            for line in batch.corrupt
        ]
        letters += [_letter(e, reason, now) for e, reason in wanted.dead]
        for e in entries:
            reasons = [failed[n] for n in wanted.names.get(e.id, ()) if n in failed]
            if reasons:
                letters.append(_letter(e, "; ".join(reasons), now))
        _dead_letter(cdir / DEAD_LETTER_FILE, letters)
        result["dead_lettered"] = len(letters)
        if (batch.segment, batch.offset) != (state["segment"], state.get("offset", 0)):
            _write_offset(
                offset_path,
                {
                    "segment": batch.segment,
                    "offset": batch.offset,
                    "consumed": int(state.get("consumed", 0)) + len(entries),
                    "dead_lettered": int(state.get("dead_lettered", 0)) + len(letters),
                    "updated_at": now,
                },
            )
        _remove_consumed_segments(cdir, batch.segment, settings.callback_dedup_horizon)
    log.info("callbacks consumed: %s", result)
    return result


def _remove_consumed_segments(cdir: Path, segment: int, horizon_s: float) -> None:
    """Remove the rotated segments before ``segment`` (consumed) last written more than
    ``horizon_s`` ago: until then a restarted receiver reads its ids to answer redeliveries."""
    cutoff = time.time() - horizon_s
    for seg in rotated_segments(cdir):
        path = segment_path(cdir, seg)
        if seg < segment:
            with suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    log.info("removed consumed inbox segment %s", path.name)


# ---- CLI


def cmd_serve(args) -> int:
    import uvicorn

    from xport_etl.settings import DEFAULT_ACCESS_SECRET, Settings

    settings = Settings.from_env(data_dir=Path(args.data_dir) if args.data_dir else None)
    if settings.access_secret == DEFAULT_ACCESS_SECRET and not is_loopback(args.host):
        # the sandbox's secret is published in the source: anyone could sign a callback
        print(
            f"error: refusing to receive callbacks on {args.host} with the sandbox's published "
            "secret: set XPORT_ACCESS_SECRET, or listen on 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    if settings.access_secret == DEFAULT_ACCESS_SECRET:
        log.warning("XPORT_ACCESS_SECRET is not set: verifying callbacks with the sandbox's secret")
    inbox_dir = callbacks_dir(settings.data_dir)
    app = create_receiver(
        settings.access_secret,
        inbox_dir,
        max_skew_s=args.max_skew,
        max_body=settings.callback_max_body,
        rotate_bytes=settings.inbox_rotate_bytes,
        seen_horizon_s=settings.callback_dedup_horizon,
    )
    print(
        f"receiving callbacks on http://{args.host}:{args.port}{CALLBACK_PATH} "
        f"into {inbox_dir / INBOX_FILE}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.Server(receiver_config(app, settings, host=args.host, port=args.port)).run()
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
    """``python -m xport_etl.callbacks.receiver serve|consume …`` (the same as ``xport-etl callbacks``)."""
    parser = argparse.ArgumentParser(prog="python -m xport_etl.callbacks.receiver")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["callbacks", *(argv if argv is not None else sys.argv[1:])])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
