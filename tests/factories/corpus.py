"""The bad-input corpus (``tests/corpus/*.json``): each case a window of landed pages for one
endpoint and what must come out of it (what the expectations mean: ``tests/test_bad_input.py``).

Page bodies are built from a case's page: ``records`` (a list page envelope), ``data`` (an
envelope around it), ``envelope`` (serialised as is) or ``raw`` (text as is). Then ``nest``
markers become that many nested ``[``/``]``, ``replace_text`` markers are replaced in the text,
and ``bad_bytes`` markers are replaced by raw (hex) bytes, e.g. invalid UTF-8.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from xport_etl import jsonutil

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def _cases() -> list[dict]:
    """Every case of every corpus file, each with its file's name (``file``)."""
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        for case in json.loads(path.read_text(), parse_float=Decimal)["cases"]:
            case["file"] = path.stem
            cases.append(case)
    return cases


CASES = _cases()
RECORD_CASES = [c for c in CASES if c["level"] == "record"]
PAGE_CASES = [c for c in CASES if c["level"] == "page"]


def body(case: dict, page: dict) -> bytes:
    """The bytes of one of ``case``'s pages."""
    if "records" in page:
        data = {"records": page["records"], "total": len(page["records"]), "size": 100, "current": 1, "pages": 1}
        text = jsonutil.dumps({"requestId": "r", "code": 200, "msg": "成功", "data": data}, floats="allow")
    elif "data" in page:
        text = jsonutil.dumps({"requestId": "r", "code": 200, "msg": "成功", "data": page["data"]}, floats="allow")
    elif "envelope" in page:
        text = jsonutil.dumps(page["envelope"], floats="allow")
    else:
        text = page["raw"]
    for marker, depth in case.get("nest", {}).items():
        text = text.replace(marker, "[" * depth + "]" * depth)
    for marker, replacement in case.get("replace_text", {}).items():
        assert marker in text, marker
        text = text.replace(marker, replacement)
    raw = text.encode("utf-8")
    for marker, hex_bytes in case.get("bad_bytes", {}).items():
        assert marker.encode() in raw, marker
        raw = raw.replace(marker.encode(), bytes.fromhex(hex_bytes))
    return raw


def pages(case: dict) -> list[tuple[int, bytes, dict | None]]:
    """``case``'s window as a normaliser reads it: ``(page number from 1, bytes, context)``."""
    return [(n, body(case, p), p.get("context")) for n, p in enumerate(case["pages"], start=1)]
