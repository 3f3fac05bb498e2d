"""Where a consume of the callbacks inbox keeps what outlives it on one disk: its position in the
inbox's segments (``offset.json``), the dead letters (``dead-letter.jsonl``), and the removal of
consumed segments (:func:`xport_etl.callbacks.refresh.refresh_from_callbacks`). Under a storage URL
the same are objects (:mod:`xport_etl.callbacks.inbox`)."""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from pathlib import Path

from xport_etl import jsonutil
from xport_etl.callbacks.inbox import InboxEntry, _write_all, rotated_segments, segment_path
from xport_etl.callbacks.receiver import log
from xport_etl.fsutil import fsync_dir, write_atomic

__all__ = ["dead_letter", "dead_letter_lines", "read_offset", "remove_consumed_segments", "write_offset"]


def read_offset(path: Path) -> dict:
    if not path.exists():
        return {"segment": 1, "offset": 0, "consumed": 0}
    state = json.loads(path.read_text(encoding="utf-8"))
    # an offset written before the inbox rotated is an offset into its first segment
    state.setdefault("segment", 1)
    return state


def write_offset(path: Path, state: dict) -> None:
    write_atomic(path, json.dumps(state, indent=2), mode=None)


def dead_letter_lines(rows: list[dict], entries: dict[str, InboxEntry]) -> bytes:
    """The dead letters as ASCII JSON lines.

    A message that cannot be written as JSON (nested past the encoder's reach) is written with
    its raw body text instead, so a dead letter is never lost to its own content.
    """
    lines = []
    for row in rows:
        try:
            # ascii: an unreadable line's bytes and lone surrogates survive as escapes; a message's
            # numbers stay numbers, exact, so a dead letter can be replayed as it came
            lines.append(jsonutil.dumps(row, floats="allow", ascii=True))
        except (ValueError, TypeError, RecursionError):
            entry = entries.get(row.get("id", ""))
            row = {**row, "message": None, "body": entry.body if entry is not None else None}
            lines.append(jsonutil.dumps(row, floats="allow", ascii=True))
    return "".join(line + "\n" for line in lines).encode("ascii")


def dead_letter(path: Path, rows: list[dict], entries: dict[str, InboxEntry]) -> None:
    """Append ``rows`` to the dead letters and fsync (before the offset moves past them)."""
    if not rows:
        return
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        _write_all(fd, dead_letter_lines(rows, entries))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def remove_consumed_segments(cdir: Path, segment: int, horizon_s: float) -> None:
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
