"""xport_etl.numbers.ascii_int: ASCII digits only, bounded, never slow."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xport_etl.numbers import ascii_int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (42, 42),
        ("42", 42),
        (" 42 ", 42),
        ("007", 7),
        (Decimal("12"), 12),
        (Decimal("1.2E+1"), 12),
        (12.0, 12),
        (True, None),
        ("²", None),
        ("٣", None),
        ("1_0", None),
        ("1.5", None),
        (Decimal("1.5"), None),
        ("", None),
        (None, None),
        ([1], None),
        ("-3", None),
        (-3, None),
        (float("nan"), None),
        (Decimal("NaN"), None),
        (Decimal("Infinity"), None),
        ("9" * 19, None),
        (10**19, None),
    ],
)
def test_ascii_int(value, expected):
    assert ascii_int(value) == expected


def test_signed_values_only_when_asked():
    assert ascii_int("-3", signed=True) == -3
    assert ascii_int(-3, signed=True) == -3
    assert ascii_int("+3") == 3


def test_huge_inputs_answer_at_once():
    started = time.process_time()
    assert ascii_int(Decimal("1e9999999")) is None
    assert ascii_int(Decimal("1e-9999999")) is None
    assert ascii_int("9" * 5000) is None
    assert ascii_int(10**5000) is None
    assert time.process_time() - started < 0.5


@given(st.text(max_size=40))
def test_any_text_is_an_int_or_none_and_round_trips(text):
    got = ascii_int(text)
    if got is not None:
        assert text.strip().lstrip("+").isascii()
        assert got == int(text.strip())
