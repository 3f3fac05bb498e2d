"""The records of the Taobao order fast path that the Python reference reads: finding, in a page
the text scan flagged, the records that hold a number literal a double may not keep exactly or an
unsafe escape, and cutting a record's own text out of its page (:class:`PageRecords`), so that
such a record costs about its own size, not its page's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from xport_etl.normalize.pages import first_wins, loads_exact, parse_page, record_texts, texts_clean
from xport_etl.normalize.taobao_orders_shapes import INEXACT_NUMBER


class ParsedPages(Protocol):
    """Where a page parsed whole is counted (the fast path's ``SqlStats``)."""

    parsed_pages: int


class _Inexact(Decimal):
    """A number literal a double may not hold exactly (three or more decimals, an exponent)."""


_INEXACT_LITERAL = re.compile(r"\.[0-9]{3}|[eE]")
_UNSAFE_CHAR = re.compile("[\x00\ud800-\udfff]")
_INEXACT_RECORD = re.compile(INEXACT_NUMBER.encode())
# a number with a fraction or an exponent (or NaN, Infinity) in DuckDB's text of a value: DuckDB
# re-wrote it from a double (12.50 → 12.5), so the text is not the literal served (strings may
# match too: those records just go to the reference)
INEXACT_TEXT = re.compile(r"[0-9][.eE]|NaN|Infinity")


def _number(text: str) -> Decimal:
    return _Inexact(text) if _INEXACT_LITERAL.search(text) else Decimal(text)


def page_bodies(seqs: np.ndarray, bodies: pa.Array) -> Callable[[int], bytes]:
    """Page number → that page's text as bytes, sliced from the chunk's Arrow buffers (no
    decoding to a Python str and back)."""
    offsets = np.frombuffer(bodies.buffers()[1], np.int64)[bodies.offset : bodies.offset + len(bodies) + 1]
    data = bodies.buffers()[2]
    where = {seq: k for k, seq in enumerate(seqs.tolist())}

    def body(seq: int) -> bytes:
        k = where[seq]
        return data.slice(int(offsets[k]), int(offsets[k + 1] - offsets[k])).to_pybytes().rstrip(b"\n")

    return body


class PageRecords:
    """The records of one page that the reference reads: each parsed alone from its exact text
    (:func:`xport_etl.normalize.pages.record_texts`), so that a record costs about its own size;
    or, when that is not certain to read as the whole page does, the page parsed whole (once)."""

    def __init__(self, body: bytes, stats: ParsedPages) -> None:
        self.body, self.stats = body, stats
        self.texts = record_texts(body)

    def records(self, idxs: list[int]) -> tuple[list[tuple[int, Any]], bool]:
        """``(position, record)`` of the records at ``idxs`` (in page order), and whether the
        page is clean (:func:`xport_etl.normalize.pages.parse_envelope`).

        Raises:
            PageError: the reference cannot read the page.
            IndexError: a position beyond the page's records.
        """
        if self.texts is not None and idxs[-1] < len(self.texts):
            texts = [bytes(self.texts[i]) for i in idxs]
            return [(i, loads_exact(text)) for i, text in zip(idxs, texts, strict=True)], texts_clean(texts)
        self.stats.parsed_pages += 1
        records, clean = parse_page(self.body)
        return [(i, records[i]) for i in idxs], clean

    def suspects(self) -> list[int] | None:
        """The positions of the page's records that hold a number literal a double may not hold,
        a NUL or a lone surrogate (in a value or a member name); None when Python cannot read
        the page's records (the reference then reads the page whole, and says why)."""
        if self.texts is None:
            self.stats.parsed_pages += 1
            return suspect_records(self.body)
        # valid UTF-8 holds no NUL and no surrogate, and a JSON string no raw control character:
        # only a number or a \\u escape can make a record one
        return [
            idx
            for idx, text in enumerate(map(bytes, self.texts))
            if (_INEXACT_RECORD.search(text) or b"\\u" in text)
            and _suspect(json.loads(text, parse_float=_number, object_pairs_hook=first_wins))
        ]


def suspect_records(body: bytes) -> list[int] | None:
    """:meth:`PageRecords.suspects` of a page parsed whole."""
    try:
        data = json.loads(body.decode("utf-8"), parse_float=_number, object_pairs_hook=first_wins)["data"]["records"]
    except (ValueError, RecursionError, TypeError, KeyError):
        return None
    if not isinstance(data, list):
        return None
    return [idx for idx, rec in enumerate(data) if _suspect(rec)]


def _suspect(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            for key, item in v.items():
                if _UNSAFE_CHAR.search(key):
                    return True
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, _Inexact) or (isinstance(v, str) and _UNSAFE_CHAR.search(v)):
            return True
    return False
