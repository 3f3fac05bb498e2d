"""What a callback message says (docs/api-contract.md#6-message-callbacks): the one reader of its
JSON, of its body, platform and push time, and of the orders and refunds it names.

Everything here reads bytes an outsider signed: nothing raises on any JSON value, numbers are read
with ASCII digits and a bounded length (:func:`xport_etl.numbers.ascii_int`), and an id is kept
only when it is 1-64 ASCII letters and digits (it becomes a request parameter, never SQL text).

A message names what changed whatever its type (docs/api-contract.md#6-message-callbacks): a body
member ``orderId`` names an order of the message's platform, ``refundId`` a refund, and on Taobao
``salesOrderId`` an order by its ``orderNo``. The types this project knows are listed in
:data:`KNOWN_TYPES` with the member their body must carry; a known type whose body names nothing
usable is a bad message; any other type is counted as unknown, and what it names is refreshed all
the same.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NamedTuple

from xport_etl.numbers import ascii_int

TAOBAO, ALIBABA = 0, 1
PLATFORMS = {TAOBAO: "taobao", ALIBABA: "1688"}

TAOBAO_ORDER_STATUS = "TAOBAO_ORDER_STATUS_MODIFY"
TAOBAO_ORDER_PRICE = "TAOBAO_ORDER_BUYER_VIEW_ORDER_PRICE_MODIFY"
TAOBAO_ORDER_REFUND = "TAOBAO_ORDER_REFUND"
ALIBABA_ORDER_STATUS = "ALIBABA_ORDER_STATUS_MODIFY"
ALIBABA_ORDER_PRICE = "ALIBABA_ORDER_PRICE_MODIFY"
ALIBABA_ORDER_REFUND = "ALIBABA_ORDER_REFUND"

# (platform, type) -> the body members of which it must carry at least one usable id
KNOWN_TYPES: dict[tuple[int, str], tuple[str, ...]] = {
    (TAOBAO, TAOBAO_ORDER_STATUS): ("orderId",),
    # the documented price body names the order by salesOrderId, its orderNo
    (TAOBAO, TAOBAO_ORDER_PRICE): ("salesOrderId", "orderId"),
    (TAOBAO, TAOBAO_ORDER_REFUND): ("refundId",),
    (ALIBABA, ALIBABA_ORDER_STATUS): ("orderId",),
    (ALIBABA, ALIBABA_ORDER_PRICE): ("orderId",),
    (ALIBABA, ALIBABA_ORDER_REFUND): ("refundId",),
}

ORDER, ORDER_NO, REFUND = "order", "order_no", "refund"
# body member -> what it names, per platform (salesOrderId is the Taobao orderNo only)
_NAMING = {
    TAOBAO: (("orderId", ORDER), ("salesOrderId", ORDER_NO), ("refundId", REFUND)),
    ALIBABA: (("orderId", ORDER), ("refundId", REFUND)),
}

_ID = re.compile(r"[0-9A-Za-z]{1,64}")
# a JSON integer longer than this is kept as a Decimal: Python's int() of a long digit string is
# quadratic and refuses more than 4,300 digits; a Decimal is built in linear time
_LONG_INT = 64


class Name(NamedTuple):
    """What a message names: ``platform`` ``"taobao"``/``"1688"``, ``kind`` ``"order"``,
    ``"order_no"`` or ``"refund"``, and the id."""

    platform: str
    kind: str
    id: str


def _parse_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _LONG_INT else Decimal(text)


def parse_message(text: str | bytes) -> Any:
    """The one JSON reader of callback text (a request body, an inbox line's body, a string
    ``messageBody``): decimals exact (``Decimal``), an integer of any length read in linear time.

    Raises:
        ValueError: not JSON (or not UTF-8).
        RecursionError: nested past the decoder's limit.
    """
    return json.loads(text, parse_float=Decimal, parse_int=_parse_int)


def message_body(message: dict) -> dict | None:
    """The ``messageBody`` of a callback as an object, whichever form it arrived in.

    Xportcn sends the body as a JSON object or as a JSON-encoded string of that object
    (docs/api-contract.md#6-message-callbacks). A string is decoded once, with decimals kept exact
    as in the object form; a string holding a string (encoded twice) is not decoded again.

    Returns:
        The body, or None when it is missing, not an object, or a string that does not decode to
        an object (the caller counts such a message as bad).
    """
    body = message.get("messageBody")
    if isinstance(body, str):
        try:
            body = parse_message(body)
        except (ValueError, RecursionError):
            # not JSON, or nested past the decoder's limit: a bad message, never a crash
            return None
    return body if isinstance(body, dict) else None


def message_type(message: dict) -> str:
    """``messageType`` as a label that can be counted and printed: the text itself when it is
    short, printable text, else its ``ascii()`` form (200 characters at most)."""
    value = message.get("messageType")
    if isinstance(value, str) and len(value) <= 200 and value.isprintable():
        return value
    return ascii(value)[:200]


def message_platform(message: dict) -> int | None:
    """``messagePlatform`` as 0 (Taobao) or 1 (1688), from a number or a string of one digit.

    A missing or null platform is the platform of a known type's name (``ALIBABA_…`` is 1688),
    else 0 (Taobao). Anything else (a boolean, another number, other text) is None.
    """
    value = message.get("messagePlatform")
    if value is None:
        mtype = message.get("messageType")
        return ALIBABA if isinstance(mtype, str) and (ALIBABA, mtype) in KNOWN_TYPES else TAOBAO
    if isinstance(value, str) and len(value) > 8:
        return None
    number = ascii_int(value, max_digits=1)
    return number if number in (TAOBAO, ALIBABA) else None


def message_id(value: Any) -> str | None:
    """An id from a message body: a string of 1-64 ASCII letters and digits (surrounding spaces
    dropped) or a JSON integer of at most 64 digits; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and len(value) <= 200:
        value = value.strip()
        if _ID.fullmatch(value):
            return value
    return None


def message_time(value: Any) -> float | None:
    """Epoch seconds from a callback ``timestamp``: epoch milliseconds, or seconds when below
    10^11; a string of ASCII digits (at most 16) or a JSON number (a fraction allowed); else None."""
    if isinstance(value, str):
        value = ascii_int(value, max_digits=16)
    elif isinstance(value, Decimal):
        # bounded before converting: 1e999999 is a valid JSON number
        value = float(value) if value.is_finite() and 0 <= value < 10**16 else None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        value = None
    if value is None or not 0 <= value < 10**16:
        return None
    return value / 1000 if value >= 10**11 else float(value)


def names(message: dict) -> tuple[int | None, dict | None, list[Name]]:
    """The platform, the decoded body and the orders and refunds a message names, in body order.

    A body member that is not a usable id names nothing (a known type without any usable id of
    the members it must carry is a bad message: :func:`is_known`).
    """
    platform = message_platform(message)
    body = message_body(message)
    if platform is None or body is None:
        return platform, body, []
    label = PLATFORMS[platform]
    found = []
    for member, kind in _NAMING[platform]:
        value = message_id(body.get(member))
        if value is not None:
            found.append(Name(label, kind, value))
    return platform, body, found


def is_known(platform: int | None, message: dict) -> bool:
    """Whether this (platform, ``messageType``) is one the project knows."""
    mtype = message.get("messageType")
    return isinstance(mtype, str) and (platform, mtype) in KNOWN_TYPES


def required_members(platform: int | None, message: dict) -> tuple[str, ...]:
    """The members a known type's body must carry (one of them, as a usable id)."""
    mtype = message.get("messageType")
    if platform is None or not isinstance(mtype, str):
        return ()
    return KNOWN_TYPES.get((platform, mtype), ())
