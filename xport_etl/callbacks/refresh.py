"""The consumer (``xport-etl callbacks consume``, the ``xport_callbacks`` DAG): read the inbox from
its position, re-read every order and refund the messages name, publish them in one load, write
what can never be used to the dead letters, and only then move the position.

What a message names (:mod:`xport_etl.callbacks.messages`) is re-read the way a scheduled run
reads it, so the rows are the same, every column (docs/api-contract.md#6-message-callbacks):

- a Taobao order (``orderId``): the order detail ``/open/order/detail``, one call per order;
- a Taobao order by its ``orderNo`` (a price correction's ``salesOrderId``): the order list
  ``/open/purchase/page`` with the ``orderNo`` filter, one call per order;
- a Taobao refund (``refundId``): the refund list ``/open/order/refund/queryList`` with the
  ``refundId`` filter, one call per refund (the refund detail lacks the list's ids and times), and
  the order that holds it;
- a 1688 order (``orderId``): there is no 1688 order detail, so ONE window of the 1688 order list
  on its modify time, for all the 1688 orders of the run: from the accepted message age
  (``callback_max_age``, which covers Xportcn's retries) before the oldest of their messages'
  push times to as long after the newest, so a change pushed 2.5 h late is still in it. An order
  the window does not hold is asked by its creation second when the warehouse knows it;
- a 1688 refund (``refundId``): ``/alibaba/refund/info``, its currency that of its order (the
  window's record, else the warehouse's), and the order that holds it (through the window).

One run makes one call per Taobao order or refund, one 1688 window, one call per 1688 refund, and
one publish. Nothing a message says is trusted beyond the ids: the API is asked for the state.

A consume with messages to act on is a run (:mod:`xport_etl.run.steps`): its fan-outs, window,
publish and rows carry its id (the CLI makes one; the DAG passes its DAG run's), and its ``run``
step says how many messages it read and dead-lettered. A consume that finds no new message does
nothing and records nothing (the DAG asks every five minutes).

Failures: a key that fails for good (an error that is not retriable, a list with no record for it,
an answer of the wrong shape, a record the publish rejects) dead-letters the messages naming it;
so does a message that cannot be read at all (any exception while reading it). A transient
failure (network, HTTP 5xx or 429 after the client's retries, an authentication error) stops the
batch: nothing is published or dead-lettered and the position stays for the next run.
"""

from __future__ import annotations

import fcntl
import uuid
from collections import Counter
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from xport_etl.callbacks.consumed import (
    dead_letter,
    dead_letter_lines,
    read_offset,
    remove_consumed_segments,
    write_offset,
)
from xport_etl.callbacks.inbox import (
    DEAD_LETTER_FILE,
    OFFSET_FILE,
    InboxEntry,
    _epoch,
    read_segments,
)
from xport_etl.callbacks.messages import (
    ALIBABA,
    ORDER,
    ORDER_NO,
    REFUND,
    Name,
    is_known,
    message_id,
    message_time,
    message_type,
    names,
    required_members,
)
from xport_etl.callbacks.receiver import DEFAULT_MAX_AGE_S, id_horizon, log

# how each name is re-read: the endpoint, and the list filter it is asked by (None: a detail
# endpoint, asked by its own parameter)
FETCH: dict[tuple[str, str], tuple[str, str | None]] = {
    ("taobao", REFUND): ("taobao_refunds", "refundId"),
    ("taobao", ORDER_NO): ("taobao_orders", "orderNo"),
    ("taobao", ORDER): ("taobao_order_detail", None),
    ("1688", REFUND): ("alibaba_refunds", None),
}
ALIBABA_ORDERS = "alibaba_orders"
# push times past this are no times (a window must be a range of datetimes): 3000-01-01
_LAST_STAMP = 32_503_680_000
# how far a push time may be from its receipt before it is taken for no time (see _push_time)
_STAMP_BEFORE_S, _STAMP_AFTER_S = 7 * 86_400, 86_400
# body member -> the kind of name it gives (what a known type must carry)
_MEMBER_KIND = {"orderId": ORDER, "salesOrderId": ORDER_NO, "refundId": REFUND}


# ---- reading the messages


@dataclass
class _Wanted:
    """What a batch of messages names, and what could not be used."""

    names: dict[str, list[Name]] = field(default_factory=dict)  # message id -> what it names
    unknown: Counter = field(default_factory=Counter)
    bad: int = 0
    # (message, reason) of each message that goes to the dead letters now
    dead: list[tuple[InboxEntry, str]] = field(default_factory=list, compare=False)
    # push times (epoch s) of the messages naming a 1688 order or refund
    stamps: list[float] = field(default_factory=list)
    # a 1688 refund id -> the order id named beside it
    refund_orders: dict[str, str] = field(default_factory=dict)

    def ids(self, platform: str, kind: str) -> list[str]:
        """The distinct ids of that platform and kind, sorted."""
        return sorted(
            {n.id for found in self.names.values() for n in found if (n.platform, n.kind) == (platform, kind)}
        )

    def bad_message(self, entry: InboxEntry, reason: str) -> None:
        self.bad += 1
        self.dead.append((entry, reason))


def collect(entries: Iterable[InboxEntry], max_age_s: float = DEFAULT_MAX_AGE_S) -> _Wanted:
    """The orders and refunds the messages name (each message counted once by id), the unknown
    types by type, and the bad messages with their reason.

    A message of any type names what its body names; a known type whose body is unusable, or
    names nothing of what it must carry, is bad (and what else it names is still refreshed). A
    message whose reading raises anything at all is dead-lettered with the error: one message
    never stops the batch.
    """
    wanted, seen = _Wanted(), set()
    for entry in entries:
        if entry.id in seen:
            continue
        seen.add(entry.id)
        try:
            _collect_one(entry, wanted, max_age_s)
        except Exception as exc:  # the contract of this loop: no message stops the batch
            wanted.names.pop(entry.id, None)
            wanted.dead.append((entry, f"cannot be read: {type(exc).__name__}: {str(exc)[:200]}"))
    return wanted


def _push_time(message: dict, received_at: str, max_age_s: float) -> float | None:
    """When a message was pushed (epoch s): its ``timestamp``. The receiver accepted it within
    ``max_age_s`` of receipt; a line no receiver of this version checked may hold any time, so a
    timestamp more than a week (or the accepted age, if longer) before its receipt or a day after
    it counts as the time it was received (the 1688 window stays a few hours, not years, wide);
    None if neither is known."""
    received = _epoch(received_at) or None
    stamp = message_time(message.get("timestamp"))
    if received is not None and not 0 < received < _LAST_STAMP:
        received = None
    if stamp is not None and not 0 < stamp < _LAST_STAMP:
        stamp = None
    if stamp is None or received is None:
        return stamp if stamp is not None else received
    earliest = received - max(max_age_s, _STAMP_BEFORE_S)
    return stamp if earliest <= stamp <= received + _STAMP_AFTER_S else received


def _collect_one(entry: InboxEntry, wanted: _Wanted, max_age_s: float) -> None:
    message = entry.message
    platform, body, found = names(message)
    if not is_known(platform, message):
        # counted by type, so that a change in what Xportcn sends shows up; what it names is
        # refreshed all the same
        wanted.unknown[message_type(message)] += 1
    elif body is None:
        wanted.bad_message(entry, "messageBody is missing or does not decode to an object")
        return
    else:
        required = required_members(platform, message)
        if not any(n.kind in {_MEMBER_KIND[m] for m in required} for n in found):
            wanted.bad_message(entry, f"no usable {' or '.join(required)} (1-64 letters and digits)")
    if not found:
        return
    wanted.names[entry.id] = found
    if platform == ALIBABA:
        stamp = _push_time(message, entry.received_at, max_age_s)
        if stamp is not None:
            wanted.stamps.append(stamp)
        orders = [n.id for n in found if n.kind == ORDER]
        for n in found:
            if n.kind == REFUND and orders:
                wanted.refund_orders.setdefault(n.id, orders[0])


# ---- asking the API


class _Tracker:
    """The client as :func:`~xport_etl.run.fanout.extract_fanout` and
    :func:`~xport_etl.run.paging.extract_window` see it, reading what each answer holds and
    recording each key that fails for good.

    ``extract_fanout`` skips a key answered 404 and fails its window on any other error; a key
    that will never refresh must not hold back every other message, so its error (a non-retriable
    error, a list answer without a record for the key, an answer of the wrong shape) is recorded
    here and handed on as a 404. Retriable errors, authentication errors and network errors pass
    through untouched: they stop the batch.
    """

    def __init__(self, client, keyed: dict[str, tuple[str, str, str]]) -> None:
        self._client = client
        # endpoint name -> (platform, kind, the request parameter holding the id)
        self._keyed = keyed
        self.failed: dict[Name, str] = {}
        # what the answers said: a Taobao refund's orders, an orderNo's order ids, a 1688 refund's
        # order, and each 1688 order of the order list with its currency
        self.implied: dict[Name, list[Name]] = {}
        self.orders_1688: dict[str, str | None] = {}

    def request(self, endpoint, *, params=None, body=None):
        from xport_etl.errors import FatalError, RetriableError

        args = params if params is not None else body or {}
        key = self._name(endpoint, args)
        try:
            response = self._client.request(endpoint, params=params, body=body)
        except FatalError as exc:
            if key is None:
                raise
            self._fail(key, f"{endpoint.name} {key.id}: {exc.message} (code {exc.code})")
            raise FatalError(exc.message, endpoint=endpoint.name, code=404) from exc
        try:
            missing = self._read(endpoint, key, response)
        except RetriableError:
            raise
        except Exception as exc:  # an answer of the wrong shape (BadPageError, ...)
            if key is None:
                return response  # a window's page: the paginator judges it
            missing = f"an answer that cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
        if missing is not None and key is not None:
            self._fail(key, f"{endpoint.name} {key.id}: {missing}")
            raise FatalError(missing, endpoint=endpoint.name, code=404)
        return response

    def _fail(self, key: Name, reason: str) -> None:
        self.failed.setdefault(key, reason)

    def _name(self, endpoint, args: dict) -> Name | None:
        found = self._keyed.get(endpoint.name)
        if found is None:
            return None
        platform, kind, param = found
        value = args.get(param)
        return None if value is None else Name(platform, kind, str(value))

    def _read(self, endpoint, key: Name | None, response) -> str | None:
        """Note what the answer holds; the reason it holds nothing for ``key``, else None."""
        from xport_etl.extract.paginators import PageNumberPaginator

        if not endpoint.is_paged:
            data = response.outline
            if not isinstance(data, dict) or not data:
                return "the answer holds no record"
            if key is not None and (key.platform, key.kind) == ("1688", REFUND):
                order = message_id(data.get("orderId"))
                if order is None and isinstance(response.data, dict):
                    order = message_id(response.data.get("orderId"))
                if order is not None:
                    self.implied[key] = [Name("1688", ORDER, order)]
            return None
        page = PageNumberPaginator().parse(response, 1, endpoint.records_path)
        if endpoint.name == ALIBABA_ORDERS:
            ids = page.values("orderId", endpoint.members_in)
            currencies = page.values("currency", endpoint.members_in)
            for value, currency in zip(ids, currencies, strict=True):
                order = message_id(value)
                if order is not None:
                    self.orders_1688[order] = currency if isinstance(currency, str) else None
        if key is None:
            return None
        param = self._keyed[endpoint.name][2]
        # the records the filter asked for (a server that ignores the filter answers others)
        mine = [message_id(v) == key.id for v in page.values(param)]
        if not any(mine):
            return "the list holds no record for it"
        implied_field = {("taobao", REFUND): "orderId", ("taobao", ORDER_NO): "id"}.get((key.platform, key.kind))
        if implied_field is not None:
            values = [message_id(v) for v, ok in zip(page.values(implied_field), mine, strict=True) if ok]
            self.implied[key] = [Name("taobao", ORDER, o) for o in values if o is not None]
        return None

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def _warehouse(settings, sql: str, ids: list[str]) -> list[tuple]:
    """Rows of ``sql`` (``$1``: the list of ids) from the published warehouse, if any."""
    from xport_etl.load.connect import connect_reader
    from xport_etl.load.published import PublishedWarehouse

    if not ids or not PublishedWarehouse(settings).exists():
        return []
    con = connect_reader(settings.layout)
    try:
        return con.execute(sql, [ids]).fetchall()
    finally:
        con.close()


def _taobao_orders_by_no(settings, order_nos: list[str]) -> dict[str, str]:
    rows = _warehouse(
        settings,
        "select order_no, order_id from fct_orders where platform = 'taobao' "
        "and order_no in (select unnest($1::varchar[]))",
        order_nos,
    )
    return {str(no): str(oid) for no, oid in rows}


def _known_1688_orders(settings, order_ids: list[str]) -> dict[str, tuple[int | None, str | None]]:
    """Creation time (epoch ms) and currency of 1688 orders the warehouse holds."""
    rows = _warehouse(
        settings,
        "select order_id, epoch_ms(created_at), currency from fct_orders where platform = '1688' "
        "and order_id in (select unnest($1::varchar[]))",
        order_ids,
    )
    return {str(r[0]): (r[1], r[2]) for r in rows}


def _known_1688_refunds(settings, refund_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """Order and line of 1688 refunds the warehouse holds (the refund row, else the item naming it)."""
    rows = _warehouse(
        settings,
        "select refund_id, order_id, line_id from fct_order_lines where platform = '1688' "
        "and refund_id in (select unnest($1::varchar[])) "
        "union all select refund_id, order_id, line_id from fct_refunds where platform = '1688' "
        "and refund_id in (select unnest($1::varchar[]))",
        refund_ids,
    )
    return {str(r[0]): (r[1], r[2]) for r in rows}


def _window_1688(settings, stamps: list[float]) -> tuple[datetime, datetime]:
    """The modify-time window that holds every change the 1688 messages can be about."""
    age = timedelta(seconds=settings.callback_max_age)
    if not stamps:
        now = datetime.now(UTC)
        return now - age, now + age
    lo = datetime.fromtimestamp(min(stamps), UTC)
    hi = datetime.fromtimestamp(max(stamps), UTC)
    return lo - age, hi + age + timedelta(seconds=1)


def _fetch(settings, wanted: _Wanted, client, result: dict[str, Any], run_id: str) -> tuple[list[str], _Tracker]:
    """Ask the API for everything ``wanted`` names; the landed manifests and what was learnt."""
    from xport_etl.errors import BadPageError, FatalError, PaginationError
    from xport_etl.extract.endpoints import endpoints_for
    from xport_etl.run import fanout as fanouts
    from xport_etl.run import paging

    specs = endpoints_for(settings.assumptions)
    keyed = {
        endpoint: (platform, kind, by or specs[endpoint].detail_param or "")
        for (platform, kind), (endpoint, by) in FETCH.items()
    }
    tracked = _Tracker(client, keyed)
    paths: list[str] = []

    def fanout(platform: str, kind: str, keys: list[dict[str, Any]]) -> None:
        if keys:
            endpoint, by = FETCH[(platform, kind)]
            paths.extend(fanouts.extract_fanout(settings, endpoint, keys=keys, by=by, client=tracked, run_id=run_id))

    def window_1688(start: datetime, end: datetime, mode: str) -> str | None:
        """Land a window of the 1688 list; None (and what it showed forgotten) if refused for good."""
        seen = dict(tracked.orders_1688)
        try:
            paths.append(
                paging.extract_window(settings, ALIBABA_ORDERS, start, end, mode=mode, client=tracked, run_id=run_id)
            )
        except (FatalError, BadPageError, PaginationError) as exc:
            tracked.orders_1688 = seen  # nothing of it lands: nothing of it was found
            return f"the 1688 order list refused the window: {str(exc)[:200]}"
        return None

    def implied(platform: str, kind: str) -> set[str]:
        return {
            n.id
            for key, found in tracked.implied.items()
            if (key.platform, key.kind) == (platform, kind)
            for n in found
            if n.kind == ORDER
        }

    # Taobao: refunds first (they name their orders), then orders by number, then by id
    fanout("taobao", REFUND, [{"key": r, "refund_id": r} for r in wanted.ids("taobao", REFUND)])
    taobao_orders = set(wanted.ids("taobao", ORDER)) | implied("taobao", REFUND)
    by_no = _taobao_orders_by_no(settings, wanted.ids("taobao", ORDER_NO))
    order_nos = [no for no in wanted.ids("taobao", ORDER_NO) if by_no.get(no) not in taobao_orders]
    for no in set(wanted.ids("taobao", ORDER_NO)) - set(order_nos):
        tracked.implied[Name("taobao", ORDER_NO, no)] = [Name("taobao", ORDER, by_no[no])]
    fanout("taobao", ORDER_NO, [{"key": no, "order_no": no} for no in order_nos])
    fanout("taobao", ORDER, [{"key": o, "order_id": o} for o in sorted(taobao_orders)])

    # 1688: one window of the order list, then the refunds, then what the window did not hold
    orders_1688 = set(wanted.ids("1688", ORDER))
    refunds_1688 = wanted.ids("1688", REFUND)
    if orders_1688 or refunds_1688:
        lo, hi = _window_1688(settings, wanted.stamps)
        result["window_1688"] = [lo.isoformat(), hi.isoformat()]
        # refused for good: the 1688 orders it should hold are asked one by one below, and
        # dead-lettered with this reason if that fails too; the rest goes on
        refused = window_1688(lo, hi, "update")
        known_refunds = _known_1688_refunds(settings, refunds_1688)
        named_orders = {r: wanted.refund_orders.get(r) or known_refunds.get(r, (None, None))[0] for r in refunds_1688}
        known_orders = _known_1688_orders(
            settings, sorted(orders_1688 | {o for o in named_orders.values() if o is not None})
        )
        keys: list[dict[str, Any]] = []
        for refund in refunds_1688:
            holder = named_orders[refund]
            currency = tracked.orders_1688.get(holder) if holder is not None else None
            if currency is None and holder is not None and holder in known_orders:
                currency = known_orders[holder][1]
            line = known_refunds.get(refund, (None, None))[1]
            keys.append({"key": refund, "refund_id": refund, "order_id": holder, "line_id": line, "currency": currency})
        fanout("1688", REFUND, keys)
        orders_1688 |= implied("1688", REFUND)
        missing = sorted(orders_1688 - set(tracked.orders_1688))
        known_orders.update(_known_1688_orders(settings, [o for o in missing if o not in known_orders]))
        for order in missing:
            created = known_orders.get(order, (None, None))[0]
            if created is not None:
                # not changed in the window (or its message was later still): its creation second
                at = datetime.fromtimestamp(created // 1000, UTC)
                window_1688(at, at + timedelta(seconds=1), "create")
            if order not in tracked.orders_1688:
                where = refused or f"not in the order list modified {lo:%F %T}/{hi:%F %T} UTC"
                tracked._fail(
                    Name("1688", ORDER, order),
                    f"1688 order {order}: {where}" + ("" if created is None else " nor created in its second"),
                )
    result["orders"] = len(taobao_orders) + len(order_nos) + len(orders_1688)
    result["refunds"] = len(wanted.ids("taobao", REFUND)) + len(refunds_1688)
    return paths, tracked


# the endpoints whose rejected records are what a message names: (platform, kind)
_REJECTED = {
    "taobao_order_detail": ("taobao", ORDER),
    "taobao_orders": ("taobao", ORDER),
    "taobao_refunds": ("taobao", REFUND),
    ALIBABA_ORDERS: ("1688", ORDER),
    "alibaba_refunds": ("1688", REFUND),
}


def _rejected_keys(settings, manifests: list[str]) -> dict[Name, str]:
    """The orders and refunds the publish rejected (``etl_rejects`` rows of the windows just
    landed whose severity is 'rejected'), with the reason."""
    from xport_etl.extract.landing import read_manifest
    from xport_etl.load.connect import connect_reader
    from xport_etl.load.published import PublishedWarehouse

    windows = []
    for path in manifests:
        m = read_manifest(path)
        if m.endpoint in _REJECTED:
            windows.append(m.window_id)
    if not windows or not PublishedWarehouse(settings).exists():
        return {}
    con = connect_reader(settings.layout)
    try:
        rows = con.execute(
            "select endpoint, record_id, reason from etl_rejects "
            "where window_id in (select unnest($1::varchar[])) and severity = 'rejected'",
            [windows],
        ).fetchall()
    finally:
        con.close()
    out = {}
    for endpoint, record_id, reason in rows:
        if endpoint in _REJECTED and record_id:
            platform, kind = _REJECTED[endpoint]
            # a line's record id is 'order/line': the order is what a message names
            out[Name(platform, kind, str(record_id).split("/")[0])] = f"rejected: {reason}"
    return out


def _letter(entry: InboxEntry, reason: str, now: str) -> dict:
    return {
        "dead_at": now,
        "reason": reason,
        "id": entry.id,
        "received_at": entry.received_at,
        "type": entry.type,
        "message": entry.message,
    }


def refresh_from_callbacks(
    settings, *, client=None, run_id: str | None = None, command: str = "xport-etl callbacks consume"
) -> dict[str, Any]:
    """Refresh the orders and refunds named by the messages received since the last run.

    Reads the inbox (the data layout's ``callbacks``, every segment) from the stored position, re-reads
    what the messages name (see the module's docstring), publishes, writes what can never be
    refreshed to ``dead-letter.jsonl``, and only then advances the position. Rotated segments
    consumed past and older than the receiver's dedup horizon are then removed.

    A message goes to the dead letters, with its reason, when it is unreadable (a line that does
    not parse, or reading it raises), bad (a known type without a usable body or id), or names an
    order or refund that cannot be re-read for good (a non-retriable error, no record in the list
    asked, a record the publish rejected). A transient failure (network, 5xx, rate limit after
    retries, authentication) stops the batch: nothing is published, dead-lettered or skipped, and
    the position stays.

    With messages to act on, the consume is run ``run_id`` (default: a new id; ``command`` names it
    in its ``run`` step).

    Returns:
        Small counts: ``messages``, ``corrupt`` (unreadable lines), ``bad`` (known type, unusable
        body), ``unknown`` (per message type), ``orders`` and ``refunds`` (distinct ones re-read),
        ``rows_written``, ``rejects``, ``dead_lettered``, ``segment``, ``offset`` (and
        ``window_1688``, the 1688 order list window asked, when there was one), ``run_id`` (None
        when there was no message).
    """
    if settings.layout.stored:
        return _refresh_stored(settings, client, run_id, command)
    cdir = settings.layout.callbacks
    cdir.mkdir(parents=True, exist_ok=True)
    offset_path = cdir / OFFSET_FILE
    with open(cdir / "consume.lock", "w") as lock, ExitStack() as recording:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_offset(offset_path)
        batch = read_segments(cdir, int(state["segment"]), int(state.get("offset", 0)))
        entries = batch.entries
        run, run_id = _as_run(recording, settings, bool(entries or batch.corrupt), run_id, command)
        position = {"segment": batch.segment, "offset": batch.offset}
        result, letters, now = _refresh(settings, entries, batch.corrupt, client, position, run_id)
        dead_letter(cdir / DEAD_LETTER_FILE, letters, {e.id: e for e in entries})
        if (batch.segment, batch.offset) != (state["segment"], state.get("offset", 0)):
            write_offset(
                offset_path,
                {
                    "segment": batch.segment,
                    "offset": batch.offset,
                    "consumed": int(state.get("consumed", 0)) + len(entries),
                    "dead_lettered": int(state.get("dead_lettered", 0)) + len(letters),
                    "updated_at": now,
                },
            )
        remove_consumed_segments(
            cdir, batch.segment, id_horizon(settings.callback_dedup_horizon, settings.callback_max_age)
        )
        run.update(
            messages=len(entries), dead_lettered=len(letters), orders=result["orders"], refunds=result["refunds"]
        )
    log.info("callbacks consumed: %s", result)
    return result


def _as_run(
    recording, settings, any_message: bool, run_id: str | None, command: str
) -> tuple[dict[str, Any], str | None]:
    """A consume with messages is a run: its ``run`` step entered on ``recording`` (an ExitStack:
    recorded when the consume ends, failed if it raises) and its id (``run_id``, else a new one);
    a consume without is none (an empty step info, None)."""
    from xport_etl.run.steps import step
    from xport_etl.run_ids import new_run_id

    if not any_message:
        return {}, None
    run_id = run_id or new_run_id()
    return recording.enter_context(step(settings.layout, run_id, "run", command=command)), run_id


def _refresh(
    settings, entries: list[InboxEntry], corrupt: list[bytes], client, position: dict[str, Any], run_id: str | None
) -> tuple[dict[str, Any], list[dict], str]:
    """Refresh what ``entries`` name and publish it, as run ``run_id``. Returns the result (the
    counts, then ``position``), the dead letters to write (what can never be used, and the
    unreadable lines ``corrupt``) and the time they are dated."""
    from xport_etl.faults import crashpoint
    from xport_etl.run import paging
    from xport_etl.run import state as run_state

    wanted = collect(entries, settings.callback_max_age)
    named = {n for found in wanted.names.values() for n in found}
    result: dict[str, Any] = {
        "messages": len(entries),
        "corrupt": len(corrupt),
        "bad": wanted.bad,
        "unknown": dict(wanted.unknown),
        "orders": 0,
        "refunds": 0,
        "rows_written": {},
        "rejects": 0,
        "dead_lettered": 0,
        **position,
        "run_id": run_id,
    }
    failed: dict[Name, str] = {}
    implied: dict[Name, list[Name]] = {}
    if named:
        assert run_id is not None  # (named ⊆ entries)
        with paging.client_for(settings, client) as client:
            paths, tracked = _fetch(settings, wanted, client, result, run_id)
        failed.update(tracked.failed)
        implied = tracked.implied
        if paths:
            loaded = run_state.load_windows(settings, paths, run_id=run_id)
            result["rows_written"], result["rejects"] = loaded["rows_written"], loaded["rejects"]
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
        for line in corrupt
    ]
    letters += [_letter(e, reason, now) for e, reason in wanted.dead]
    dead_ids = {e.id for e, _reason in wanted.dead}
    for e in entries:
        if e.id in dead_ids:
            continue
        reasons = []
        for n in wanted.names.get(e.id, ()):
            for m in (n, *implied.get(n, ())):
                if m in failed and failed[m] not in reasons:
                    reasons.append(failed[m])
        if reasons:
            letters.append(_letter(e, "; ".join(reasons), now))
            dead_ids.add(e.id)
    result["dead_lettered"] = len(letters)
    return result, letters, now


def _refresh_stored(settings, client, run_id: str | None, command: str) -> dict[str, Any]:
    """:func:`refresh_from_callbacks` under a storage URL: the messages in the store's ``inbox/``,
    consumed by one host at a time (a lease), moved to ``consumed/`` once published; a run as on
    one disk."""
    from xport_etl.callbacks.inbox import DEAD_LETTER_PREFIX, ObjectInbox
    from xport_etl.run.lease import Lease

    store = settings.layout.store("callbacks")
    inbox = ObjectInbox(store)
    lease = Lease(store.child("consumer"), settings.run_lease, store.where("consumer"))
    lease.acquire(wait=True)
    try:
        with ExitStack() as recording:
            entries, corrupt, keys = inbox.pending()
            run, run_id = _as_run(recording, settings, bool(entries or corrupt), run_id, command)
            position = {"segment": None, "offset": None}
            result, letters, now = _refresh(settings, entries, corrupt, client, position, run_id)
            lease.check()  # another consumer took over: it consumes these too, nothing is moved twice
            if letters:
                text = dead_letter_lines(letters, {e.id: e for e in entries})
                store.put(f"{DEAD_LETTER_PREFIX}/{now.replace(':', '')}-{uuid.uuid4().hex[:8]}.jsonl", text)
            inbox.consumed(keys)
            result["pending"] = len(store.keys("inbox"))
            inbox.forget_consumed(id_horizon(settings.callback_dedup_horizon, settings.callback_max_age))
            run.update(
                messages=len(entries), dead_lettered=len(letters), orders=result["orders"], refunds=result["refunds"]
            )
    finally:
        lease.release()
    log.info("callbacks consumed: %s", result)
    return result
