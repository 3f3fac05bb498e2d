"""``CallbackPusher``: the sandbox's side of the message callbacks
(docs/api-contract.md#6-message-callbacks).

Builds signed callbacks for what changed in a :class:`~xport_sandbox.world.World` between two
simulated times and POSTs them to a receiver, behaving as the documentation says Xportcn does:
a message that is not answered HTTP 200 is tried again (here after ``retry_delay_s``, 0 by
default; the real service waits 30 minutes) at most 5 more times; delivery order is not
guaranteed (messages are shuffled); the same message can arrive twice (a share is redelivered).

    pusher = CallbackPusher(world, "http://127.0.0.1:8780/callbacks", secret, seed=1)
    t0 = world.clock; world.advance(86_400)
    deliveries = pusher.push_changes(t0, world.clock)

Messages (bodies [assumed] beyond the documented fields, named as the API's records):

- ``TAOBAO_ORDER_STATUS_MODIFY``: one per order whose ``updateTime`` is in the window (status
  changes, refund changes, new orders): ``{"orderId", "status", "updateTime"}``.
- ``TAOBAO_ORDER_REFUND``: one per refund status change in the window: ``{"orderId",
  "subOrderId", "refundId", "refundStatus", "createTime", "modifiedTime"}`` (epoch ms).
- ``TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY``: for a ``price_share`` of those orders, the
  documented shape: ``salesOrderId``, snake_case ``subOrders[]`` and ``purchaseOrderPriceDTO``.

``messageBody`` goes out in both forms the contract allows: a ``string_body_share`` of the messages
of each type (half by default, the first of a type included) carry it as a JSON-encoded string of
the object, the rest as the object itself. The form follows the message's place in build order
among its type, so it is deterministic and independent of the seed.

The envelope's ``timestamp`` is the real clock (epoch ms as a string), as the receiver checks it
against its own real clock; the simulated times are in the bodies. ``Authorization`` is the
lower-case hex HMAC-SHA256 of the exact body bytes sent. A retry or a redelivery sends the
identical bytes.
"""

from __future__ import annotations

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


class CallbackPusher:
    """Signs and POSTs callbacks for a world's changes.

    Args:
        world: the sandbox world.
        url: the receiver's URL (``http://127.0.0.1:8780/callbacks``).
        secret: the access secret that keys the HMAC.
        seed: seeds the shuffle, the redeliveries and the price messages.
        duplicate_share: share of messages delivered a second time.
        price_share: share of changed orders that also get a price-modify message.
        string_body_share: share of each type's messages whose ``messageBody`` is sent as a
            JSON-encoded string (the 1st, 3rd, 5th … at 0.5), by build order.
        max_tries: tries per delivery (first + retries).
        retry_delay_s: pause before a retry.
        clock: the real clock for the envelope ``timestamp`` (epoch seconds).
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
        string_body_share: float = 0.5,
        max_tries: int = MAX_TRIES,
        retry_delay_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.world, self.url, self._key = world, url, secret.encode("utf-8")
        self.rng = random.Random(seed)
        self.duplicate_share, self.price_share = duplicate_share, price_share
        if not 0.0 <= string_body_share <= 1.0:
            raise ValueError(f"string_body_share must be within [0, 1], not {string_body_share}")
        self.string_body_share = string_body_share
        self._built: Counter[str] = Counter()  # envelopes built per type: the next body's form
        self.max_tries, self.retry_delay_s, self.clock = max_tries, retry_delay_s, clock
        self._transport = transport

    # -- building

    def envelope(self, message_type: str, body: dict, platform: int = 0, *, as_string: bool | None = None) -> dict:
        """One callback; ``as_string`` None lets ``string_body_share`` pick the body's form."""
        k = self._built[message_type]
        self._built[message_type] += 1
        if as_string is None:
            # the k-th of a type is a string when the running count of strings steps up: exactly
            # ceil(n * share) of the first n, spread evenly (a Fraction: no float drift)
            share = Fraction(str(self.string_body_share))
            as_string = math.ceil((k + 1) * share) > math.ceil(k * share)
        return {
            "messageType": message_type,
            "messageBody": _dumps(body) if as_string else body,
            "messagePlatform": platform,
            "timestamp": str(int(self.clock() * 1000)),
        }

    def sign(self, body: bytes) -> str:
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def messages_between(self, start: datetime, end: datetime) -> list[dict]:
        """Callbacks for the Taobao orders and refunds that changed in ``[start, end)`` (simulated
        time, tz-aware), in the world's order (newest order first, then refunds)."""
        out = []
        for order in self.world.taobao_orders(update_start=start, update_end=end):
            out.append(
                self.envelope(
                    ORDER_STATUS,
                    {
                        "orderId": str(order["id"]),
                        "status": order["status"],
                        "updateTime": order["updateTime"],
                    },
                )
            )
            if self.rng.random() < self.price_share:
                out.append(self.envelope(ORDER_PRICE, _price_body(order)))
        lo, hi = to_ms(start), to_ms(end)
        for refund, order, history in self.world.iter_taobao_refunds():
            line = order.lines[refund.line_index]
            for changed_ms, status in history:
                if lo <= changed_ms < hi:
                    out.append(
                        self.envelope(
                            ORDER_REFUND,
                            {
                                "orderId": str(order.order_id),
                                "subOrderId": str(line.sub_order_id),
                                "refundId": refund.refund_id,
                                "refundStatus": status,
                                "createTime": refund.create_ms,
                                "modifiedTime": changed_ms,
                            },
                        )
                    )
        return out

    # -- sending

    def push(self, messages: list[dict], *, client: httpx.Client | None = None) -> list[Delivery]:
        """Deliver ``messages`` shuffled, a share of them twice; returns every delivery made."""
        deliveries = []
        for message in messages:
            body = _dumps(message).encode("utf-8")
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


def _price_body(order: dict) -> dict:
    """The documented price-modify body of an order (docs/api-contract.md#6-message-callbacks), from
    its ``TaoBaoOrderVO``."""
    subs = order.get("subOrderVOS") or []
    return {
        "salesOrderId": str(order["id"]),
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
