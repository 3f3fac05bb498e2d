"""Numbers from the outside world: ASCII digits only, bounded length.

``str.isdigit()`` is true for ``"²"`` (which ``int()`` refuses) and ``int()`` accepts
Arabic-Indic digits (``int("٣") == 3``), underscores (``int("1_0") == 10``) and thousands of
digits (quadratic time, and a ``ValueError`` past Python's 4,300-digit limit); ``int()`` of a
``Decimal("1e9999999")`` runs for minutes. Every integer read from an API response, a callback
message, a file the pipeline did not write itself or a setting goes through :func:`ascii_int`,
which accepts only what a JSON integer or a plain string of ASCII digits can mean and answers
None for anything else, in time proportional to the input's length (never more than
``max_digits`` of it is converted). A decimal setting or option (``30``, ``2.5``, ``1e3``) goes
through :func:`parse_number`: ``float()`` also takes ``inf``, ``nan``, ``1_000`` and ``٣``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

__all__ = ["ascii_int", "parse_number"]

_ASCII_INT = re.compile(r"[+-]?[0-9]+")
# a number as a person writes it, in ASCII: float() also takes "inf", "nan", "1_000" and "٣"
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")


def parse_number(text: str) -> float | None:
    """``text`` as a finite float when it is a plain ASCII decimal number (``30``, ``2.5``,
    ``1e3``), else None (``inf``, ``nan``, ``1_000``, Unicode digits, ``1e999``)."""
    text = text.strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def ascii_int(value: Any, *, max_digits: int = 18, signed: bool = False) -> int | None:
    """``value`` as an ``int`` when it is one, else None.

    Accepted: an ``int`` (not a ``bool``); a ``str`` of ASCII digits with surrounding whitespace
    and, with ``signed``, one leading sign; an integral finite ``Decimal`` or ``float``. At most
    ``max_digits`` digits (leading zeros included for strings), so the value is bounded by
    ``10**max_digits``; a negative value only with ``signed``.

    Args:
        value: what was parsed from the outside.
        max_digits: the longest number accepted (18 keeps every value inside a BIGINT).
        signed: whether a negative value is acceptable.

    Returns:
        The integer, or None when ``value`` is not an integer of that shape.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
        if number.bit_length() > max_digits * 4 or len(str(abs(number))) > max_digits:
            return None
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > max_digits + 1 or not _ASCII_INT.fullmatch(text):
            return None
        digits = text.lstrip("+-")
        if len(digits) > max_digits:
            return None
        number = int(text)
    elif isinstance(value, Decimal | float):
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                return None
            value = Decimal(value)
        if not value.is_finite():
            return None
        # adjusted() is the exponent of the leading digit: bounded before any conversion
        if value != 0 and value.adjusted() >= max_digits:
            return None
        if value != value.to_integral_value():
            return None
        number = int(value)
    else:
        return None
    if number < 0 and not signed:
        return None
    return number
