"""The one writer of JSON that may hold ``Decimal`` values (request bodies and the records kept in
``etl_rejects.raw_json``), and the one exact reader of JSON from outside (:func:`loads`).

:func:`dumps` writes compact JSON (separators ``,`` and ``:``), non-ASCII as itself, and a
``Decimal`` as its exact text, a bare JSON number (``Decimal("4.40")`` → ``4.40``): money never
goes through a binary float. It is the standard library's encoder; a Decimal leaves it as a
marker string (a random token per process, which no served string can forge), written back as
the number once the text is done.

Floats are the caller's choice:

- ``floats="refuse"`` (request bodies): a float anywhere, or a non-finite Decimal, is a
  ``TypeError``.
- ``floats="allow"`` (a record as parsed, to be kept): a float is written as ``json.dumps``
  writes it; a non-finite one, and a non-finite Decimal, as the bare token ``NaN``,
  ``Infinity`` or ``-Infinity``. The project's parsers (``parse_float=Decimal``) give a float
  only for those tokens, so a record served with one is written back with it, as served. Such
  text is not strict JSON: Python's ``json.loads`` reads it back, DuckDB's JSON functions do not.
  Nothing a ``json.loads`` parse holds makes this mode raise, beyond nesting deeper than the
  interpreter's recursion limit (``RecursionError``); a lone surrogate is written as itself (the
  caller escapes it before encoding the text).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

__all__ = ["dumps", "loads"]

Floats = Literal["refuse", "allow"]

# a Decimal leaves the encoder as the string "<NUL>dec<token>:<its text><NUL>", NUL written \u0000
_TOKEN = secrets.token_hex(8)
_MARK = f"\x00dec{_TOKEN}:"
_WRITTEN_MARK = '"\\u0000dec' + _TOKEN + ":"
_WRITTEN_END = '\\u0000"'


def _numbers(text: str) -> str:
    """``text`` with every marked Decimal written as the bare number (its text has no backslash,
    so the first end marker after a start marker closes it)."""
    parts = text.split(_WRITTEN_MARK)
    out = [parts[0]]
    for part in parts[1:]:
        number, _, rest = part.partition(_WRITTEN_END)
        out += (number, rest)
    return "".join(out)


def _nonfinite(value: Decimal) -> str:
    if value.is_nan():
        return "NaN"
    return "-Infinity" if value.is_signed() else "Infinity"


class _Encoder(json.JSONEncoder):
    def __init__(self, floats: Floats, ascii: bool = False) -> None:
        # allow_nan: a float in "refuse" mode is refused by dumps() itself, as a TypeError
        super().__init__(ensure_ascii=ascii, separators=(",", ":"), allow_nan=True)
        self.allow = floats == "allow"

    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            if o.is_finite():
                return f"{_MARK}{o}\x00"
            if self.allow:
                return f"{_MARK}{_nonfinite(o)}\x00"
            raise TypeError(f"cannot serialise a non-finite Decimal: {o}")
        if isinstance(o, Mapping):
            return dict(o)
        return super().default(o)  # raises TypeError


_ENCODERS: dict[tuple[str, bool], _Encoder] = {
    (floats, ascii): _Encoder(floats, ascii) for floats in ("refuse", "allow") for ascii in (False, True)
}
_SCALARS = frozenset({str, int, bool, type(None), Decimal})


def _has_float(obj: Any) -> bool:
    """Whether a float is among the values of ``obj`` (an acyclic value)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if type(value) in _SCALARS:
            continue
        if isinstance(value, float):
            return True
        if isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
    return False


def dumps(obj: Any, *, floats: Floats = "refuse", ascii: bool = False) -> str:
    """``obj`` as compact JSON text, every ``Decimal`` as its exact text (see the module docstring).

    Dicts and other mappings become objects, lists and tuples arrays; keys as ``json.dumps``
    takes them. ``ascii``: every non-ASCII character (a lone surrogate too) written as a ``\\u``
    escape, so the text is ASCII whatever the value held (the dead letters).

    Raises:
        TypeError: an unsupported type; with ``floats="refuse"`` also a float or a non-finite
            Decimal.
        ValueError: a circular reference; an int beyond Python's int→str digit limit.
        RecursionError: nesting deeper than the interpreter's recursion limit.
    """
    encoder = _ENCODERS.get((floats, ascii))
    if encoder is None:
        raise ValueError(f"floats must be 'refuse' or 'allow', not {floats!r}")
    text = encoder.encode(obj)
    if not encoder.allow and _has_float(obj):  # after encoding: a circular value has raised
        raise TypeError("floats are not allowed here; use Decimal or int")
    return _numbers(text) if _WRITTEN_MARK in text else text


# the longest JSON integer read as an ``int``: below Python's int<->str conversion limit (4,300
# digits), so every int read can be written back; a longer one is read as a Decimal
MAX_INT_DIGITS = 4000


def _big_int(text: str) -> int | Decimal:
    """A JSON integer as an ``int``, or as a ``Decimal`` when it is too long for ``int()``: it then
    rejects its record only (a Decimal integer is never taken for an id or a count)."""
    return int(text) if len(text) <= MAX_INT_DIGITS else Decimal(text)


def loads(text: str | bytes, *, object_pairs_hook: Any = None) -> Any:
    """JSON from outside, exact: every non-integer number a ``Decimal`` (never a binary float),
    ``NaN``/``Infinity`` floats as Python reads them, an integer longer than
    :data:`MAX_INT_DIGITS` digits a ``Decimal``. Time and memory are linear in the text.

    Raises:
        ValueError: not JSON (a ``UnicodeDecodeError`` for bytes that are not UTF-8/16/32), or
            nested deeper than the interpreter can parse (never a ``RecursionError``).
    """
    try:
        try:
            return json.loads(text, parse_float=Decimal, object_pairs_hook=object_pairs_hook)
        except ValueError as exc:
            if isinstance(exc, UnicodeDecodeError):
                raise
            # perhaps an integer beyond int()'s digit limit: once more, keeping long ones as Decimals
            return json.loads(text, parse_float=Decimal, parse_int=_big_int, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise ValueError("JSON nested too deeply to parse") from None
