"""The callback inbox: every accepted message appended as one JSON line (fsync'd) to rotating
segments in the data layout's ``callbacks`` folder (``<data_dir>/callbacks/``), read back from an offset; duplicates recognised by
content id.

Under a storage URL (:class:`ObjectInbox`) each message is one object instead,
``callbacks/inbox/<content id>.json`` holding the same line, created only if there is none of that
id (a conditional create: a redelivery is recognised by the store itself, whichever receiver
host takes it). The consumer, on any host, reads what is in ``inbox/`` and, once it has published
what the messages name, moves each to ``consumed/<id>.json``: what is left in ``inbox/`` is its
position. A redelivery of a consumed message finds it there and is answered ``duplicate``; consumed
messages are kept for the dedup horizon, then deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from xport_etl.callbacks.messages import parse_message
from xport_etl.fsutil import fsync_dir, write_atomic
from xport_etl.normalize.pages import has_surrogates

log = logging.getLogger("xport_etl.callbacks")
INBOX_FILE = "inbox.jsonl"
SEGMENT_FILE = "inbox.segment"
LOCK_FILE = "inbox.lock"
OFFSET_FILE = "offset.json"
DEAD_LETTER_FILE = "dead-letter.jsonl"
DEFAULT_ROTATE_BYTES = 64 << 20
# Xportcn retries a failed message after 30 minutes, at most 5 times
# (docs/api-contract.md#6-message-callbacks): a redelivery comes within about 2.5 h of the first
# try. A day covers that with room for a receiver that was down for hours; the count bounds memory
# whatever the rate (about 200 bytes an id)
DEFAULT_SEEN_HORIZON_S = 86_400.0
SEEN_MAX = 2_000_000
_SEGMENT = re.compile(r"inbox\.([0-9]{6,18})\.jsonl")


def content_id(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# ---- the inbox


@dataclass
class InboxEntry:
    """One stored message: ``message`` is the parsed body (decimals kept exact)."""

    id: str
    received_at: str
    type: str | None
    message: dict
    body: str = ""  # the raw body as received (for a dead letter whose message cannot be written)


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
            fsync_dir(self.dir)

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
        fsync_dir(self.dir)
        os.close(self._fd)
        self._fd = -1
        self._open_active()
        write_atomic(self.dir / SEGMENT_FILE, f"{seg + 1}\n", mode=None)
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


INBOX_PREFIX, CONSUMED_PREFIX, DEAD_LETTER_PREFIX = "inbox", "consumed", "dead-letter"


def message_key(prefix: str, mid: str) -> str:
    """The object of message ``mid`` (a content id) under ``prefix`` of the callbacks' store."""
    return f"{prefix}/{mid}.json"


class ObjectInbox:
    """The inbox under a storage URL: each message one object, created once (see the module's
    docstring). The receiver answers 200 only once the object is in the store.

    Args:
        store: the layout's ``callbacks`` under the storage URL.
        clock: epoch seconds (the line's ``received_at``).
    """

    def __init__(self, store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._clock = clock
        # ids this receiver stored (for its health page; the dedup memory is the store's)
        self.seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def append(self, raw: bytes, message: dict) -> tuple[str, bool]:
        """Store one message unless already stored or consumed; ``(content id, stored now)``.

        Raises:
            OSError: the store could not take it (the receiver answers 500: Xportcn retries).
        """
        mid = content_id(raw)
        data = _inbox_line(mid, raw, message, self._clock())
        key = message_key(INBOX_PREFIX, mid)
        if self.store.create(key, data) is None:
            return mid, False
        if self.store.exists(message_key(CONSUMED_PREFIX, mid)):  # a redelivery of a consumed message
            self.store.delete([key])
            return mid, False
        with self._lock:
            self.seen[mid] = self._clock()
            while len(self.seen) > SEEN_MAX:
                self.seen.popitem(last=False)
        return mid, True

    def pending(self) -> tuple[list[InboxEntry], list[bytes], list[str]]:
        """The messages waiting to be consumed, oldest received first; the unreadable ones; and
        every key read (what :meth:`consumed` moves on)."""
        keys = self.store.keys(INBOX_PREFIX)
        found = self.store.get_many(keys)
        entries, bad = _parse_lines(b"\n".join(found[k] for k in keys if k in found))
        entries.sort(key=lambda e: (e.received_at, e.id))
        return entries, bad, [k for k in keys if k in found]

    def consumed(self, keys: list[str]) -> None:
        """Move these inbox objects to ``consumed/`` (a copy, then the delete)."""
        for key in keys:
            blob = self.store.get(key)
            if blob is not None:
                self.store.put(f"{CONSUMED_PREFIX}/{key.rsplit('/', 1)[-1]}", blob.data)
        self.store.delete(keys)

    def forget_consumed(self, horizon_s: float) -> int:
        """Delete the consumed messages older than ``horizon_s`` (no redelivery comes that late);
        how many."""
        cutoff = self._clock() - horizon_s
        old = [k for k, (_size, mtime) in self.store.sizes(CONSUMED_PREFIX).items() if mtime < cutoff]
        self.store.delete(old)
        return len(old)

    def close(self) -> None:
        pass


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


def _parse_lines(data: bytes) -> tuple[list[InboxEntry], list[bytes]]:
    entries, bad = [], []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            message = parse_message(row["body"])
            if not isinstance(message, dict) or not isinstance(row["id"], str):
                raise ValueError("not a message")
        except (ValueError, KeyError, TypeError, RecursionError):
            bad.append(line)
            continue
        received = row.get("received_at")
        kind = row.get("type")
        entries.append(
            InboxEntry(
                row["id"],
                received if isinstance(received, str) else "",
                kind if isinstance(kind, str) else None,
                message,
                row["body"],
            )
        )
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
    files: list[tuple[int, Path, IO[bytes] | None]] = []
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
                        raise ValueError(f"inbox segment {path.name} is missing but was never consumed") from None
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
