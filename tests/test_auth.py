"""Signing: fixed vectors, header shape, fresh headers on every request."""

from __future__ import annotations

import collections
import hashlib
import itertools
import re

import httpx
import pytest

from xport_etl.extract.auth import NONCE_ALPHABET, XportAuth, make_nonce, sign

AK = "5a1c0ffee0ddba11deadbeefcafe0001"
SECRET = "sandbox-secret-not-for-production"
NONCE = "abcdefghijABCDEFGHIJ0123456789xy"
TS = "1700000000000"


def test_sign_literal_vector():
    # computed once by hand (md5sum of the base string); a change in the recipe breaks this
    assert sign(AK, NONCE, TS, SECRET) == "562FB1FDA72C3CC25C3F22B4C75650D1"


def test_sign_matches_recipe_by_hand():
    for ak, nonce, ts, secret in [
        (AK, NONCE, TS, SECRET),
        ("ak", "n", "1", "秘密"),  # utf-8, not latin-1
        ("", "", "", ""),
    ]:
        base = f"access-key={ak}&nonce-str={nonce}&timestamp={ts}&secret={secret}"
        expected = hashlib.md5(base.encode("utf-8")).hexdigest().upper()
        assert sign(ak, nonce, ts, secret) == expected
    assert sign("ak", "n", "1", "秘密") == "94EFF3E963EB3A5AB38DADD1C49B68E2"


def test_sign_shape_and_sensitivity():
    s = sign(AK, NONCE, TS, SECRET)
    assert re.fullmatch(r"[0-9A-F]{32}", s)
    assert sign(AK, NONCE, TS, SECRET + "x") != s
    assert sign(AK, NONCE, "1700000000001", SECRET) != s
    assert sign(AK, NONCE[:-1] + "z", TS, SECRET) != s


def test_make_nonce():
    nonces = {make_nonce() for _ in range(200)}
    assert len(nonces) == 200
    for n in nonces:
        assert len(n) == 32
        assert set(n) <= set(NONCE_ALPHABET)


def test_make_nonce_uses_every_character_about_equally():
    # bytes map to the alphabet by rejection sampling: a plain byte % 62 would make the first
    # 8 characters 5/4 as likely as the rest (counts of 62,000 draws: 1,000 expected each)
    counts = collections.Counter("".join(make_nonce() for _ in range(62_000 // 32)))
    assert set(counts) == set(NONCE_ALPHABET)
    first8 = sum(counts[c] for c in NONCE_ALPHABET[:8]) / 8
    rest = sum(counts[c] for c in NONCE_ALPHABET[8:]) / 54
    assert 0.9 < first8 / rest < 1.1
    assert {len(make_nonce(n)) for n in (1, 31, 32, 100)} == {1, 31, 32, 100}


def test_auth_adds_five_headers_fresh_each_request():
    clock = itertools.count(1_700_000_000_000, 7)
    nonces = iter(["a" * 32, "b" * 32])
    auth = XportAuth(AK, SECRET, "1000001", clock=lambda: next(clock), nonce=lambda: next(nonces))
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.headers))
        return httpx.Response(200, json={"code": 200})

    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as c:
        c.get("http://x/a")
        c.get("http://x/a")
    first, second = seen
    assert first["access-key"] == AK
    assert first["user-id"] == "1000001"
    assert first["timestamp"] == "1700000000000"
    assert first["nonce-str"] == "a" * 32
    assert first["signature"] == sign(AK, "a" * 32, "1700000000000", SECRET)
    assert second["timestamp"] == "1700000000007"
    assert second["signature"] == sign(AK, "b" * 32, "1700000000007", SECRET)
    for h in seen:
        assert SECRET not in str(h)


def test_default_clock_is_13_digit_ms():
    h = XportAuth(AK, SECRET, "1").headers()
    assert re.fullmatch(r"\d{13}", h["timestamp"])
    assert re.fullmatch(r"[0-9A-Za-z]{32}", h["nonce-str"])


def test_repr_hides_secret():
    auth = XportAuth(AK, SECRET, "1")
    assert SECRET not in repr(auth)
    assert SECRET not in str(auth)


# -- signing recipes as configuration (the recipe is [assumed], docs/api-contract.md#11-signing-recipes)

TS_S = "1700000000"


def test_shipped_recipes_known_vectors():
    from xport_etl.extract.auth import SIGN_RECIPES

    # md5sum of the base strings, computed outside Python
    query, concat = SIGN_RECIPES["query"], SIGN_RECIPES["concat"]
    assert query.timestamp_unit == "ms" and concat.timestamp_unit == "s"
    assert query.sign(AK, NONCE, TS, SECRET) == "562FB1FDA72C3CC25C3F22B4C75650D1"
    assert concat.sign(AK, NONCE, TS_S, SECRET) == "8BEB721532E0FAAF35A7D85C6C191C2E"
    assert concat.base(AK, NONCE, TS_S, SECRET) == AK + TS_S + NONCE + SECRET


def test_recipe_timestamp_in_its_unit():
    from xport_etl.extract.auth import SIGN_RECIPES

    assert SIGN_RECIPES["query"].timestamp(1_700_000_000_999) == "1700000000999"
    assert SIGN_RECIPES["concat"].timestamp(1_700_000_000_999) == "1700000000"


def test_auth_signs_with_its_recipe_and_sends_the_recipe_unit():
    from xport_etl.extract.auth import SIGN_RECIPES

    auth = XportAuth(
        AK, SECRET, "1", clock=lambda: 1_700_000_000_123, nonce=lambda: NONCE, recipe=SIGN_RECIPES["concat"]
    )
    h = auth.headers()
    assert h["timestamp"] == TS_S
    assert h["signature"] == "8BEB721532E0FAAF35A7D85C6C191C2E"
    # the default is today's recipe
    h = XportAuth(AK, SECRET, "1", clock=lambda: 1_700_000_000_000, nonce=lambda: NONCE).headers()
    assert h["timestamp"] == TS and h["signature"] == "562FB1FDA72C3CC25C3F22B4C75650D1"


def test_resolve_recipe_custom_template_and_unit():
    from xport_etl.extract.auth import resolve_recipe

    assert resolve_recipe("concat").name == "concat"
    custom = resolve_recipe("query", template="{secret}|{access_key}|{nonce}|{timestamp}", timestamp_unit="s")
    assert custom.name == "custom" and custom.timestamp_unit == "s"
    assert custom.sign(AK, NONCE, TS_S, SECRET) == "F7EBF49BB24B36FC7AF28FF439837CF3"
    # a unit alone changes a shipped recipe's unit, keeping its template
    query_s = resolve_recipe("query", timestamp_unit="s")
    assert query_s.timestamp_unit == "s" and query_s.sign(AK, NONCE, TS, SECRET) == sign(AK, NONCE, TS, SECRET)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"name": "hmac"}, "query, concat"),
        ({"name": "query", "template": "{access_key}{nonce}{timestamp}"}, "{secret}"),
        ({"name": "query", "template": "{access_key}{nonce}{timestamp}{secret}{salt}"}, "salt"),
        ({"name": "query", "template": "{secret}{access_key}{nonce}{timestamp"}, "template"),
        ({"name": "query", "timestamp_unit": "us"}, "ms"),
    ],
)
def test_resolve_recipe_refuses_bad_configuration(kwargs, needle):
    from xport_etl.errors import ConfigError
    from xport_etl.extract.auth import resolve_recipe

    name = kwargs.pop("name")
    with pytest.raises(ConfigError) as info:
        resolve_recipe(name, **kwargs)
    assert needle in str(info.value)
