"""``CallbackPusher``: the sandbox's side of the message callbacks
(docs/api-contract.md#6-message-callbacks).

Builds signed callbacks for every change in a :class:`~xport_sandbox.world.World` between two
simulated times, on both platforms, and POSTs them to a receiver, behaving as the documentation
says Xportcn does: a message that is not answered HTTP 200 is tried again (here after
``retry_delay_s``, 0 by default; the real service waits 30 minutes) at most 5 more times; delivery
order is not guaranteed (messages are shuffled); the same message can arrive twice (a share is
redelivered).

    pusher = CallbackPusher(world, "http://127.0.0.1:8780/callbacks", secret, seed=1)
    t0 = world.clock; world.advance(7200)
    deliveries = pusher.push_changes(t0, world.clock)

One message per change (bodies [assumed] beyond the documented fields, named as the API's records;
the bodies carry the ids and the new status only, all the contract promises):

- ``TAOBAO_ORDER_STATUS_MODIFY`` ``{"orderId", "status"}``: each status change of a Taobao order,
  its creation included (its lines ship and close with it);
- ``TAOBAO_ORDER_REFUND`` ``{"orderId", "subOrderId", "refundId", "refundStatus"}``: each change of
  a Taobao refund, its opening included;
- ``TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY``: for a ``price_share`` of the status changes, the
  documented body: ``salesOrderId`` (the order's ``orderNo``), snake_case ``subOrders[]`` and
  ``purchaseOrderPriceDTO``;
- ``ALIBABA_ORDER_STATUS_MODIFY`` ``{"orderId", "status"}`` (``messagePlatform`` 1): each status
  change of a 1688 order, its creation included;
- ``ALIBABA_ORDER_REFUND`` ``{"orderId", "refundId", "refundStatus"}``: each change of a 1688
  refund;
- ``ALIBABA_ORDER_PRICE_MODIFY`` ``{"orderId", "totalAmount"}``: for a ``price_share`` of the
  1688 status changes;
- with ``unknown_share``, that share of the status messages go out under a type this project does
  not know (``TAOBAO_ORDER_UNDOCUMENTED_CHANGE``, ``ALIBABA_ORDER_UNDOCUMENTED_CHANGE``), naming
  the same order: a receiver must refresh what they name all the same.

``messageBody`` goes out in both forms the contract allows: a ``string_body_share`` of the messages
of each type (half by default, the first of a type included) carry it as a JSON-encoded string of
the object, the rest as the object itself. The form follows the message's place in build order
among its type, so it is deterministic and independent of the seed.

The envelope's ``timestamp`` is the push time: the simulated time of the change (Xportcn pushes
when a change happens), epoch ms as a string; a receiver checks it against the world's clock
(``create_receiver(clock=...)``). ``clock`` stamps every message with that clock instead.
``Authorization`` is the lower-case hex HMAC-SHA256 of the exact body bytes sent. A retry or a
redelivery sends the identical bytes.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx

from xport_sandbox.common import parse_cst, to_ms
from xport_sandbox.world import World

ORDER_STATUS = "TAOBAO_ORDER_STATUS_MODIFY"
ORDER_PRICE = "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"
ORDER_REFUND = "TAOBAO_ORDER_REFUND"
ALIBABA_STATUS = "ALIBABA_ORDER_STATUS_MODIFY"
ALIBABA_PRICE = "ALIBABA_ORDER_PRICE_MODIFY"
ALIBABA_REFUND = "ALIBABA_ORDER_REFUND"
UNKNOWN_TYPES = {0: "TAOBAO_ORDER_UNDOCUMENTED_CHANGE", 1: "ALIBABA_ORDER_UNDOCUMENTED_CHANGE"}
TAOBAO, ALIBABA = 0, 1
MAX_TRIES = 6  # the first delivery and at most 5 retries [doc]


@dataclass
class Delivery:
    """One POST of a message (a redelivery is a Delivery of its own, ``duplicate=True``)."""

    message: dict  # the envelope as sent: ``messageBody`` may be a JSON string
    body: bytes
    id: str  # sha256 of the body, as the receiver's content id
    duplicate: bool = False
    status: int | None = None  # the last HTTP status, None if the connection failed
    tries: int = 0

    @property
    def delivered(self) -> bool:
        return self.status == 200

    @property
    def message_body(self) -> dict:
        """The message body as an object, whichever form it was sent in."""
        body = self.message["messageBody"]
        return json.loads(body, parse_float=Decimal) if isinstance(body, str) else body


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def message_bytes(message: dict) -> bytes:
    """The body bytes a message is sent as (and signed over)."""
    return _dumps(message).encode("utf-8")


class CallbackPusher:
    """Signs and POSTs callbacks for a world's changes.

    Args:
        world: the sandbox world.
        url: the receiver's URL (``http://127.0.0.1:8780/callbacks``).
        secret: the access secret that keys the HMAC.
        seed: seeds the shuffle, the redeliveries, the price and the unknown-type messages.
        duplicate_share: share of messages delivered a second time.
        price_share: share of status changes that also get a price-modify message.
        unknown_share: share of status messages sent under a type the project does not know.
        string_body_share: share of each type's messages whose ``messageBody`` is sent as a
            JSON-encoded string (the 1st, 3rd, 5th … at 0.5), by build order.
        max_tries: tries per delivery (first + retries).
        retry_delay_s: pause before a retry.
        clock: None stamps each message with the simulated time of its change; a clock (epoch
            seconds) stamps every message with its time instead.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        world: World,
        url: str,
        secret: str,
        *,
        seed: int = 0,
        duplicate_share: float = 0.2,
        price_share: float = 0.1,
        unknown_share: float = 0.0,
        string_body_share: float = 0.5,
        max_tries: int = MAX_TRIES,
        retry_delay_s: float = 0.0,
        clock: Callable[[], float] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.world, self.url, self._key = world, url, secret.encode("utf-8")
        self.rng = random.Random(seed)
        self.duplicate_share, self.price_share, self.unknown_share = duplicate_share, price_share, unknown_share
        if not 0.0 <= string_body_share <= 1.0:
            raise ValueError(f"string_body_share must be within [0, 1], not {string_body_share}")
        self.string_body_share = string_body_share
        self._built: Counter[str] = Counter()  # envelopes built per type: the next body's form
        self.max_tries, self.retry_delay_s, self.clock = max_tries, retry_delay_s, clock
        self._transport = transport

    # -- building

    def envelope(
        self,
        message_type: str,
        body: dict,
        platform: int = TAOBAO,
        *,
        as_string: bool | None = None,
        at_ms: int | None = None,
    ) -> dict:
        """One callback pushed at ``at_ms`` (epoch ms; the clock's now when None or when the
        pusher has a ``clock``); ``as_string`` None lets ``string_body_share`` pick the body's form."""
        k = self._built[message_type]
        self._built[message_type] += 1
        if as_string is None:
            # the k-th of a type is a string when the running count of strings steps up: exactly
            # ceil(n * share) of the first n, spread evenly (a Fraction: no float drift)
            share = Fraction(str(self.string_body_share))
            as_string = math.ceil((k + 1) * share) > math.ceil(k * share)
        if self.clock is not None or at_ms is None:
            at_ms = int((self.clock or time.time)() * 1000)
        return {
            "messageType": message_type,
            "messageBody": _dumps(body) if as_string else body,
            "messagePlatform": platform,
            "timestamp": str(at_ms),
        }

    def sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def _status_type(self, platform: int, known: str) -> str:
        return UNKNOWN_TYPES[platform] if self.unknown_share and self.rng.random() < self.unknown_share else known

    def messages_between(self, start: datetime, end: datetime) -> list[dict]:
        """Callbacks for every change in ``[start, end)`` (simulated time, tz-aware), both
        platforms, in time order of the change (Taobao first, then 1688)."""
        lo, hi = to_ms(start), to_ms(end)
        with self.world.lock:
            clock_ms = self.world.clock_ms
        built: list[tuple[int, int, dict]] = []  # (time ms, order of build, envelope)

        def add(at_ms: int, message_type: str, body: dict, platform: int) -> None:
            built.append((at_ms, len(built), self.envelope(message_type, body, platform, at_ms=at_ms)))

        store = self.world.taobao
        for i, transitions in _changes(store, -(-lo // 1000), hi, clock_ms):
            detail = store.detail(i)
            for at_s, status in transitions:
                mtype = self._status_type(TAOBAO, ORDER_STATUS)
                add(at_s * 1000, mtype, {"orderId": str(detail.order_id), "status": status}, TAOBAO)
                if self.rng.random() < self.price_share:
                    order = self.world.taobao_order(detail.order_id)
                    if order is not None:
                        add(at_s * 1000, ORDER_PRICE, _price_body(order), TAOBAO)
        for refund, order, history in self.world.iter_taobao_refunds():
            line = order.lines[refund.line_index]
            for changed_ms, status in history:
                if lo <= changed_ms < hi:
                    body = {
                        "orderId": str(order.order_id),
                        "subOrderId": str(line.sub_order_id),
                        "refundId": refund.refund_id,
                        "refundStatus": status,
                    }
                    add(changed_ms, ORDER_REFUND, body, TAOBAO)
        from xport_sandbox.alibaba import REFUND_STATUSES, STATUSES

        store_1688 = self.world.alibaba
        for i, transitions in _changes(store_1688, -(-lo // 1000), hi, clock_ms):
            detail = store_1688.detail(i)
            for at_s, status in transitions:
                mtype = self._status_type(ALIBABA, ALIBABA_STATUS)
                add(at_s * 1000, mtype, {"orderId": str(detail.order_id), "status": STATUSES[status]}, ALIBABA)
                if self.rng.random() < self.price_share:
                    total = str(Decimal(detail.goods_cents + detail.shipping_cents) / 100)  # money as text
                    add(at_s * 1000, ALIBABA_PRICE, {"orderId": str(detail.order_id), "totalAmount": total}, ALIBABA)
        for refund, order, history in self.world.iter_1688_refunds():
            for changed_s, status in history:
                if lo <= changed_s * 1000 < hi:
                    body = {
                        "orderId": str(order.order_id),
                        "refundId": refund.refund_id,
                        "refundStatus": REFUND_STATUSES[status],
                    }
                    add(changed_s * 1000, ALIBABA_REFUND, body, ALIBABA)
        return [envelope for _at, _n, envelope in sorted(built, key=lambda b: (b[0], b[1]))]

    # -- sending

    def push(self, messages: list[dict], *, client: httpx.Client | None = None) -> list[Delivery]:
        """Deliver ``messages`` shuffled, a share of them twice; returns every delivery made."""
        deliveries = []
        for message in messages:
            body = message_bytes(message)
            deliveries.append(Delivery(message, body, hashlib.sha256(body).hexdigest()))
        deliveries += [
            Delivery(d.message, d.body, d.id, duplicate=True)
            for d in deliveries
            if self.rng.random() < self.duplicate_share
        ]
        self.rng.shuffle(deliveries)
        own = client is None
        client = client or httpx.Client(timeout=5.0, transport=self._transport)
        try:
            for d in deliveries:
                self._deliver(client, d)
        finally:
            if own:
                client.close()
        return deliveries

    def _deliver(self, client: httpx.Client, d: Delivery) -> None:
        headers = {"Content-Type": "application/json", "Authorization": self.sign(d.body)}
        while d.tries < self.max_tries:
            if d.tries:
                time.sleep(self.retry_delay_s)
            d.tries += 1
            try:
                d.status = client.post(self.url, content=d.body, headers=headers).status_code
            except httpx.TransportError:
                d.status = None
            if d.status == 200:
                return

    def push_changes(self, start: datetime, end: datetime) -> list[Delivery]:
        """:meth:`messages_between` then :meth:`push`."""
        return self.push(self.messages_between(start, end))


def _changes(store: Any, lo_s: int, hi_ms: int, clock_ms: int):
    """``(order index, [(epoch s, status), ...])`` of the orders of a store (Taobao or 1688) with
    status changes in ``[lo_s, hi_ms)`` that have happened by ``clock_ms``: their plans' transitions."""
    end_s = -(-min(hi_ms, clock_ms + 1) // 1000)  # exclusive, in whole seconds
    for i in range(store.count_visible(min(hi_ms - 1, clock_ms))):
        a, b = store.trans_off[i], store.trans_off[i + 1]
        first = bisect.bisect_left(store.trans_t, lo_s, a, b)
        last = bisect.bisect_left(store.trans_t, end_s, a, b)
        if first < last:
            yield i, [(store.trans_t[k], store.trans_s[k]) for k in range(first, last)]


def _price_body(order: dict) -> dict:
    """The documented price-modify body of an order (docs/api-contract.md#6-message-callbacks), from
    its ``TaoBaoOrderVO``: ``salesOrderId`` is the order's ``orderNo``."""
    subs = order.get("subOrderVOS") or []
    return {
        "salesOrderId": str(order["orderNo"]),
        "subOrders": [
            {
                "purchase_order_outer_id": s.get("taobaoPurchaseId"),
                "purchase_order_line_outer_id": s.get("taobaoSubPurchaseId"),
                "product_amount": s.get("purchaseAmount"),
                "logistic_company_name": s.get("logisticCompanyName"),
                "logistic_number": s.get("logisticNumber"),
                "quantity": s.get("quantity"),
            }
            for s in subs
        ],
        "purchaseOrderPriceDTO": {
            "purchaseAmount": order.get("purchaseAmount"),
            "domesticPostFee": order.get("domesticPostFee"),
            "currency": order.get("purchaseCurrency"),
            "updateTime": parse_cst(order["updateTime"]) * 1000,
        },
    }
