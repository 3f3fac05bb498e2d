"""xport_etl.jsonutil.dumps: the one writer of JSON holding Decimals (request bodies, raw_json)."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xport_etl import jsonutil
from xport_etl.jsonutil import dumps
from xport_etl.normalize.pages import parse_page


@pytest.mark.parametrize("floats", ["refuse", "allow"])
def test_decimals_are_written_as_their_exact_text(floats):
    for text in [
        "4.40",
        "0.10",
        "-0.00",
        "1E+2",
        "1.23E-7",
        "0E-7",
        "12345678901234567890.123456789",
        "9" * 5000,
        "1E+100000",
    ]:
        assert dumps(Decimal(text), floats=floats) == text
        assert dumps({"a": [Decimal(text)]}, floats=floats) == f'{{"a":[{text}]}}'
        back = json.loads(dumps([Decimal(text)], floats=floats), parse_float=Decimal, parse_int=Decimal)
        assert str(back[0]) == text


@pytest.mark.parametrize("floats", ["refuse", "allow"])
def test_compact_nested_and_non_ascii_as_itself(floats):
    value = {
        "订单": {
            "标题": "韩版 毛绒",
            "lines": [1, None, True, False, 'a"b\\c\n\x00', ("t", 2)],
            "amount": Decimal("30.80"),
        },
        "empty": {},
        "none": [],
    }
    assert dumps(value, floats=floats) == (
        '{"订单":{"标题":"韩版 毛绒","lines":[1,null,true,false,"a\\"b\\\\c\\n\\u0000",["t",2]],'
        '"amount":30.80},"empty":{},"none":[]}'
    )
    assert dumps(MappingProxyType({"a": Decimal("1.5")}), floats=floats) == '{"a":1.5}'
    assert dumps("x", floats=floats) == '"x"' and dumps(None, floats=floats) == "null"


def test_a_string_cannot_forge_a_number():
    for s in ["x\x00dec:1\x00", "\x00dec0123456789abcdef:1\x00", "\\u0000dec:1", "4.40"]:
        assert json.loads(dumps({"s": s, "d": Decimal("1")})) == {"s": s, "d": 1}


def test_refuse_mode_refuses_floats_and_non_finite_decimals():
    for value in [1.5, {"a": 0.1}, [{"b": [1, 2.0]}], (float("nan"),), {"x": float("inf")}]:
        with pytest.raises(TypeError, match="float"):
            dumps(value)
    for text in ["NaN", "sNaN", "Infinity", "-Infinity"]:
        with pytest.raises(TypeError, match="non-finite"):
            dumps({"a": Decimal(text)})


def test_allow_mode_writes_floats_and_non_finite_values_as_python_reads_them():
    assert dumps([1.5, float("nan"), float("inf"), float("-inf")], floats="allow") == "[1.5,NaN,Infinity,-Infinity]"
    assert (
        dumps([Decimal("NaN"), Decimal("-sNaN"), Decimal("Infinity"), Decimal("-Infinity")], floats="allow")
        == "[NaN,NaN,Infinity,-Infinity]"
    )


def test_allow_mode_keeps_what_a_page_served_with_nan_tokens():
    # the project's parsers read NaN/Infinity as floats (parse_float=Decimal does not see them)
    body = '{"code":200,"data":{"records":[{"a":NaN,"b":-Infinity,"c":12.50,"d":"\\ud800"}]}}'
    records, clean = parse_page(body.encode())
    text = dumps(records[0], floats="allow")
    assert text == '{"a":NaN,"b":-Infinity,"c":12.50,"d":"\ud800"}'  # a lone surrogate as itself
    assert not clean
    back = json.loads(text, parse_float=Decimal)
    assert math.isnan(back["a"]) and back["b"] == float("-inf") and str(back["c"]) == "12.50"


def test_errors():
    with pytest.raises(TypeError):
        dumps({"a": b"bytes"}, floats="allow")
    with pytest.raises(ValueError, match="floats"):
        dumps({}, floats="sometimes")  # type: ignore[arg-type]
    loop: list = []
    loop.append(loop)
    for floats in ("refuse", "allow"):
        with pytest.raises(ValueError, match="Circular"):
            dumps(loop, floats=floats)  # type: ignore[arg-type]


def test_the_marker_is_per_process_random():
    assert len(jsonutil._TOKEN) == 16 and jsonutil._TOKEN in jsonutil._MARK


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: abs(d.adjusted()) < 1000),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_round_trip_is_exact(value):
    text = dumps(value)
    assert text == dumps(value, floats="allow")
    back = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    assert dumps(back) == text  # every Decimal's text (exponent, trailing zeros) survives
    assert back == value
