"""A ledger of JSON lines kept as objects under a storage URL: :class:`StoredLines`, the object
store's :class:`xport_etl.ledger.JsonLines`.

An object store has no append. Each append is one object, and the objects are numbered:
``seq/<n>.jsonl`` (twelve digits), where ``n`` is taken with a conditional create, so two hosts
appending at once get two numbers and neither line is lost; the numbers are dense (an appender
starts one past the highest it knows and goes up on each refusal), so a reader that has read
up to ``n`` knows it has everything up to ``n``. ``head`` holds a recent number, so an append
costs one read, one create and one write, not a listing of every number.

Reading the whole ledger from a fresh host would be one object per append ever made, so every
:data:`CHECKPOINT_EVERY`-th append also writes ``checkpoint/<n>.jsonl.gz``: every line up to
``n`` with its number (``{"seq": n, "row": {...}}``, gzip), built from the previous checkpoint
and the objects since. The objects the previous checkpoint covered, and the checkpoints before it,
are then deleted: a reader needs the newest checkpoint and the objects after it (one listing
and a few reads). A position (:meth:`StoredLines.read`'s ``offset``) is a number: the last
object read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from isal import igzip

from xport_etl.store import Store

__all__ = ["CHECKPOINT_EVERY", "StoredLines"]

CHECKPOINT_EVERY = 64  # appends between checkpoints: what a reader reads at most beside one checkpoint
_SEQ, _CHECKPOINT, _HEAD = "seq", "checkpoint", "head"


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


class StoredLines:
    """An append-only ledger of JSON objects under ``store`` (the same API as
    :class:`xport_etl.ledger.JsonLines`; positions are object numbers, not byte offsets)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"StoredLines({self.store.shown!r})"

    # ---- appending

    def _last(self) -> int:
        """The highest number taken (a listing: when ``head`` is missing or behind)."""
        keys = self.store.keys(_SEQ)
        last = _number(keys[-1]) if keys else 0
        checkpoints = self.store.keys(_CHECKPOINT)
        return max(last, _number(checkpoints[-1]) if checkpoints else 0)

    def append(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append ``rows`` as one object; returns its number. On the store when this returns."""
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        if not text:
            return 0
        head = self.store.get(_HEAD)
        n = (int(head.data) if head is not None and head.data.strip().isdigit() else self._last()) + 1
        while self.store.create(_seq_key(n), text) is None:
            n = max(n, self._last()) + 1  # another appender took it: one past the highest taken
        self.store.put(_HEAD, str(n).encode())
        if n % CHECKPOINT_EVERY == 0:
            self._checkpoint(n)
        return n

    def _checkpoint(self, n: int) -> None:
        older = self.store.keys(_CHECKPOINT)
        lines: list[bytes] = []
        start = 0
        if older:
            start = _number(older[-1])
            blob = self.store.get(older[-1])
            if blob is not None:
                lines.append(igzip.decompress(blob.data))
        keys = [_seq_key(m) for m in range(start + 1, n + 1)]
        found = self.store.get_many(keys)
        if len(found) != len(keys):
            return  # a number below n is missing (deleted by hand): leave the objects as they are
        for key in keys:
            m = _number(key)
            lines += [
                json.dumps({"seq": m, "row": row}, ensure_ascii=False).encode() + b"\n" for row in _rows(found[key])
            ]
        self.store.create(f"{_CHECKPOINT}/{n:012d}.jsonl.gz", igzip.compress(b"".join(lines), compresslevel=1))
        # what the previous checkpoint covered (a reader needs only the newest and what follows
        # it), and the checkpoints before the previous one
        self.store.delete([k for k in self.store.keys(_SEQ) if _number(k) <= start])
        self.store.delete(older[:-1])

    # ---- reading

    def read(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """The rows after object number ``offset``, and the number of the last object read.

        An offset past the last object (a ledger that was replaced) reads from the start."""
        rows, end = self._read(offset)
        if end == offset and offset and offset > self._last():
            return self._read(0)
        return rows, end

    def _read(self, offset: int) -> tuple[list[dict[str, Any]], int]:
        rows: list[dict[str, Any]] = []
        end = offset
        checkpoints = self.store.keys(_CHECKPOINT)
        if checkpoints and _number(checkpoints[-1]) > offset:
            blob = self.store.get(checkpoints[-1])
            if blob is not None:
                for line in igzip.decompress(blob.data).splitlines():
                    item = json.loads(line)
                    if item["seq"] > offset:
                        rows.append(item["row"])
                end = _number(checkpoints[-1])
        keys = self.store.keys(_SEQ, after=_seq_key(end))
        found = self.store.get_many(keys)
        for key in keys:  # in order; one deleted since the listing was in a checkpoint read above
            if key in found:
                rows += _rows(found[key])
                end = _number(key)
        return rows, end
