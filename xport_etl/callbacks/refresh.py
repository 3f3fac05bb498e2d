"""The consumer: read the inbox from its offset, collect the orders and refunds the messages
name, fetch their details and publish them in one run; the offset advances only after a
successful publish, unreadable messages go to the dead-letter file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xport_etl import jsonutil
from xport_etl.callbacks.inbox import (
    DEAD_LETTER_FILE,
    OFFSET_FILE,
    InboxEntry,
    _clean_scalar,
    _write_all,
    callbacks_dir,
    read_segments,
    rotated_segments,
    segment_path,
)
from xport_etl.callbacks.receiver import (
    _ID,
    KNOWN_TYPES,
    ORDER_REFUND,
    ORDER_STATUS,
    log,
    message_body,
    message_platform,
)
from xport_etl.fsutil import fsync_dir, write_atomic

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
            wanted.names[entry.id] = [("refund", refund_id)] + ([("order", order_id)] if order_id is not None else [])
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
        order_id = _msg_id(body.get("orderId") if mtype == ORDER_STATUS else body.get("salesOrderId"))
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
    write_atomic(path, json.dumps(state, indent=2), mode=None)


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
        # ascii: an unreadable line's bytes and lone surrogates survive as escapes; a message's
        # numbers stay numbers, exact, so a dead letter can be replayed as it came
        data = "".join(jsonutil.dumps(r, floats="allow", ascii=True) + "\n" for r in rows)
        _write_all(fd, data.encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


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
    from xport_etl.run import client_for, extract_fanout, load_windows

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
            missing = [r for r, h in wanted.refunds.items() if not {"order_id", "line_id", "created_at_ms"} <= h.keys()]
            known = _refund_hints_from_warehouse(settings, missing)
            with client_for(settings, client) as client:
                tracked = _KeyFailures(client)
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
                    paths += extract_fanout(settings, "taobao_refund_detail", client=tracked, keys=refund_keys)
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
