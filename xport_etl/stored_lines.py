"""A ledger of JSON lines kept as objects under a storage URL: :class:`StoredLines`, the object
store's :class:`xport_etl.ledger.JsonLines`.

An object store has no append. Each append is one object, and the objects are numbered:
``seq/<n>.jsonl`` (twelve digits), where ``n`` is taken with a conditional create, so two hosts
appending at once get two numbers and neither line is lost. Every appender takes one past a number
it has seen taken, so the numbers are dense and a reader that has read up to ``n`` has everything
up to ``n``.

**An append is one request** (the create), given a recent *tip*: the highest number this process
has seen taken (by its own appends or reads) within :data:`TIP_FOR_S`. Without one (the first
append of a process), or when the create is refused (another appender took that number), one
listing finds the highest number taken. A tip is trusted only that long because an object is
never deleted before it is :data:`DELETE_AFTER_S` old (see below): a create at one past a recent
tip can never fill the place of an object compacted away.

Reading the whole ledger from a fresh host would be one object per append ever made, so every
:data:`CHECKPOINT_EVERY`-th append also writes ``checkpoint/<n>.jsonl.gz``: every line up to
``n`` with its number (``{"seq": n, "row": {...}}``, gzip). The objects the previous checkpoint
covered (once :data:`DELETE_AFTER_S` old), and the checkpoints before it, are then deleted: a
reader needs the newest checkpoint and the objects after it.

**Each host keeps what it has read** (``cache``: a file of the host's scratch, the layout's
``ledger_cache``): every line with its number, up to the number it last read, and that object's
size and time as the store listed them. The objects are written once and never change, so a read
on a host that has read before is one listing (the objects from its last one on: that one must
still be there, unchanged, or the cache is dropped and the ledger read again from its newest
checkpoint) and one request per object appended since. A publish mirrors the whole run ledger into
``etl_runs``; with the cache its requests grow with the appends since this host's last read, not
with the history. A position (:meth:`StoredLines.read`'s ``offset``) is a number: the last object
read.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from isal import igzip

from xport_etl.fsutil import write_atomic
from xport_etl.store import Store

__all__ = ["CHECKPOINT_EVERY", "DELETE_AFTER_S", "TIP_FOR_S", "StoredLines"]

CHECKPOINT_EVERY = 64  # appends between checkpoints: what a reader reads at most beside one checkpoint
DELETE_AFTER_S = 3600.0  # how old an object a checkpoint covers must be before it is deleted
TIP_FOR_S = 600.0  # how long a process trusts the highest number it saw taken (leaves 50 min of clock skew)
_SEQ, _CHECKPOINT = "seq", "checkpoint"

# store URL → (the highest number this process saw taken, time.monotonic() when it did)
_tips: dict[str, tuple[int, float]] = {}
_tips_lock = threading.Lock()


def _seq_key(n: int) -> str:
    return f"{_SEQ}/{n:012d}.jsonl"


def _number(key: str) -> int:
    return int(key.rsplit("/", 1)[-1].split(".", 1)[0])


def _rows(data: bytes) -> list[dict[str, Any]]:
    rows = []
    for line in data.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # cannot be torn (a whole object is written at once); kept as JsonLines reads
            continue
    return rows


Numbered = list[tuple[int, dict[str, Any]]]  # (object number, row)


class StoredLines:
    """An append-only ledger of JSON objects under ``store`` (the same API as
    :class:`xport_etl.ledger.JsonLines`; positions are object numbers, not byte offsets).

    Args:
        store: the ledger's objects.
        cache: this host's file of what it has read (see the module's docstring), or None.
    """

    def __init__(self, store: Store, cache: Path | None = None) -> None:
        self.store = store
        self.cache = None if cache is None else Path(cache)

    def __repr__(self) -> str:
        return f"StoredLines({self.store.shown!r})"

    # ---- the tip

    def _tip(self) -> int | None:
        with _tips_lock:
            seen = _tips.get(self.store.url)
        if seen is None or time.monotonic() - seen[1] > TIP_FOR_S:
            return None
        return seen[0]

    def _saw(self, n: int) -> None:
        with _tips_lock:
            seen = _tips.get(self.store.url)
            if seen is None or n >= seen[0] or time.monotonic() - seen[1] > TIP_FOR_S:
                _tips[self.store.url] = (n, time.monotonic())

    def _last(self, after: int | None = None) -> int:
        """The highest number taken (one listing; the checkpoints' when no object is left)."""
        keys = self.store.keys(_SEQ, after=None if after is None else _seq_key(after))
        if keys:
            return _number(keys[-1])
        if after is not None:
            return after
        checkpoints = self.store.keys(_CHECKPOINT)
        return _number(checkpoints[-1]) if checkpoints else 0

    # ---- appending

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append ``rows`` as one object; returns its number. On the store when this returns."""
        rows = list(rows)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        if not text:
            return 0
        tip = self._tip()
        n = (self._last() if tip is None else tip) + 1
        while self.store.create(_seq_key(n), text) is None:
            n = self._last(after=n) + 1  # another appender took it: one past the highest taken
        self._saw(n)
        if n % CHECKPOINT_EVERY == 0:
            self._checkpoint(n, rows)
        return n

    def seed(self, rows: Iterable[dict[str, Any]]) -> bool:
        """Write ``rows`` as the ledger's first object (a history imported from a local ledger,
        :mod:`xport_etl.stored_import`): True if written or already there (an import run again),
        False if the ledger holds anything else."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        if not text:
            return True
        if self.store.keys(_CHECKPOINT):
            return False
        if self.store.create(_seq_key(1), text) is None:
            blob = self.store.get(_seq_key(1))
            return blob is not None and blob.data == text
        self._saw(1)
        return True

    def _checkpoint(self, n: int, rows: list[dict[str, Any]]) -> None:
        older = self.store.keys(_CHECKPOINT)
        start = _number(older[-1]) if older else 0
        cached = self._cached()
        if cached is not None and cached[0] == n - 1:  # this host has read every line before this one
            numbered = [*cached[2], *((n, r) for r in rows)]
        else:
            numbered = []
            if older:
                blob = self.store.get(older[-1])
                if blob is not None:
                    numbered = _checkpoint_rows(blob.data)
            keys = [_seq_key(m) for m in range(start + 1, n + 1)]
            found = self.store.get_many(keys)
            if len(found) != len(keys):
                return  # a number below n is missing (deleted by hand): leave the objects as they are
            numbered += [(_number(k), r) for k in keys for r in _rows(found[k])]
        lines = [json.dumps({"seq": m, "row": r}, ensure_ascii=False).encode() + b"\n" for m, r in numbered]
        self.store.create(f"{_CHECKPOINT}/{n:012d}.jsonl.gz", igzip.compress(b"".join(lines), compresslevel=1))
        # what the previous checkpoint covered (a reader needs only the newest and what follows
        # it) once old enough that no appender's tip can be behind it, and the checkpoints before
        # the previous one
        cutoff = time.time() - DELETE_AFTER_S
        self.store.delete(
            [k for k, (_size, mtime) in self.store.sizes(_SEQ).items() if _number(k) <= start and mtime < cutoff]
        )
        self.store.delete(older[:-1])

    # ---- reading

    def read(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The rows after object number ``offset``, and the number of the last object read.

        An offset past the last object (a ledger that was replaced) reads from the start."""
        numbered, end = self._read()
        self._saw(end)
        if offset > end:
            offset = 0
        return [r for m, r in numbered if m > offset], end

    def _read(self) -> tuple[Numbered, int]:
        """Every line with its number, and the number of the last object: this host's cache and
        what was appended since, or the whole ledger."""
        cached = self._cached()
        if cached is not None:
            end, seen, numbered = cached
            listed = self.store.sizes(_SEQ, after=_seq_key(end - 1)) if end else None
            if listed is not None and listed.get(_seq_key(end)) == seen:
                keys = sorted(k for k in listed if _number(k) > end)
                found = self.store.get_many(keys)
                if all(k in found for k in keys):  # else compacted since the listing: read it all
                    numbered = numbered + [(_number(k), r) for k in keys for r in _rows(found[k])]
                    if keys:
                        self._keep(numbered, _number(keys[-1]), listed[keys[-1]])
                    return numbered, _number(keys[-1]) if keys else end
        return self._read_all()

    def _read_all(self) -> tuple[Numbered, int]:
        numbered: Numbered = []
        end = 0
        checkpoints = self.store.keys(_CHECKPOINT)
        if checkpoints:
            blob = self.store.get(checkpoints[-1])
            if blob is not None:
                numbered = _checkpoint_rows(blob.data)
                end = _number(checkpoints[-1])
        listed = self.store.sizes(_SEQ, after=_seq_key(end - 1) if end else None)
        keys = sorted(k for k in listed if _number(k) > end)
        found = self.store.get_many(keys)
        for key in keys:  # in order; one deleted since the listing was in the checkpoint read above
            if key in found:
                numbered += [(_number(key), r) for r in _rows(found[key])]
                end = _number(key)
        if end:
            self._keep(numbered, end, listed.get(_seq_key(end)))
        return numbered, end

    # ---- this host's cache

    def _cached(self) -> tuple[int, Any, Numbered] | None:
        """What this host has read: the last number, that object's (size, time) as listed, and
        every line with its number; None if nothing (or no cache)."""
        if self.cache is None:
            return None
        try:
            with open(self.cache, "rb") as f:
                head = json.loads(f.readline())
                numbered = [(item["seq"], item["row"]) for item in map(json.loads, f)]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        seen = head.get("seen")
        return int(head["end"]), None if seen is None else tuple(seen), numbered

    def _keep(self, numbered: Numbered, end: int, seen: Any) -> None:
        """Make ``numbered`` (every line up to ``end``) this host's cache; ``seen``: the (size,
        time) of object ``end`` as listed (None: not known, the next read reads it all)."""
        if self.cache is None:
            return
        head = json.dumps({"end": end, "seen": None if seen is None else list(seen)}).encode() + b"\n"
        body = b"".join(
            json.dumps({"seq": m, "row": r}, ensure_ascii=False).encode() + b"\n" for m, r in numbered if m <= end
        )
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.cache, head + body)


def _checkpoint_rows(data: bytes) -> Numbered:
    return [(item["seq"], item["row"]) for item in map(json.loads, igzip.decompress(data).splitlines())]
