"""The scalar parsers of :mod:`xport_etl.normalize.values` on the contract's awkward values: money,
fen amounts, epoch times (every parser on any JSON value: ``test_properties.py``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from xport_etl.normalize.values import RejectError, to_epoch_ms_time, to_fen_money, to_money


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [
        (1999, Decimal("19.99")),
        ("5", Decimal("0.05")),
        (0, Decimal("0.00")),
        ("100", Decimal("1.00")),
        (Decimal("300"), Decimal("3.00")),
        (123456789012345678, Decimal("1234567890123456.78")),
        (None, None),
        ("", None),
    ],
)
def test_fen_to_yuan_exactly(fen, yuan):
    got = to_fen_money(fen, "refundPayment")
    assert got == yuan
    if yuan is not None:
        assert str(got) == str(yuan)  # two decimals, no float noise


@pytest.mark.parametrize("bad", [12.5, Decimal("12.5"), "12.5", "-5", -5, "5 fen", True, [1], 10**20])
def test_fen_rejects_fractions_and_junk(bad):
    with pytest.raises(RejectError, match="refundPayment"):
        to_fen_money(bad, "refundPayment")


def test_epoch_ms_and_seconds():
    assert to_epoch_ms_time(1767225600000, "t") == datetime(2026, 1, 1)
    assert to_epoch_ms_time("1767225600123", "t") == datetime(2026, 1, 1, 0, 0, 0, 123000)
    assert to_epoch_ms_time("1767225600", "t") == datetime(2026, 1, 1)  # 10 digits: seconds
    assert to_epoch_ms_time(1767225600, "t") == datetime(2026, 1, 1)
    assert to_epoch_ms_time(Decimal("1767225600000"), "t") == datetime(2026, 1, 1)
    assert to_epoch_ms_time(None, "t") is None
    assert to_epoch_ms_time("", "t") is None
    assert to_epoch_ms_time(0, "t") is None  # the Java default of an unset long


@pytest.mark.parametrize("bad", [17672256000, "176722560", "1767225600000.5", -1767225600000, "2026-01-01", True, 1.5])
def test_epoch_rejects_other_widths_and_junk(bad):
    with pytest.raises(RejectError, match="createTime"):
        to_epoch_ms_time(bad, "createTime")


@pytest.mark.parametrize(
    "value,reason",
    [
        ("12.345", "more than two decimals"),
        ("abc", "not an amount"),
        (True, "not an amount"),
        ("1e400", "not an amount"),
        (Decimal("1e17"), "out of range"),
    ],
)
def test_bad_money_is_rejected_with_a_reason(value, reason):
    with pytest.raises(RejectError, match=reason):
        to_money(value, "purchaseAmount")
