"""The sandbox accepts one configured signing recipe and checks timestamps in that recipe's unit.

The signatures here are computed from the contract's text, not with the client's signer."""

from __future__ import annotations

import hashlib
import secrets
import time

import httpx
import pytest

from tests.factories.sandbox import signed_headers
from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import WorldConfig

PAGE = "/open/purchase/page"
TINY = WorldConfig(orders=20)


def concat_headers(ts: str | None = None, *, secret: str = DEFAULT_ACCESS_SECRET, user_id: str = DEFAULT_USER_ID):
    """md5(ak + ts + nonce + secret), ts in epoch seconds (docs/api-contract.md#11-signing-recipes,
    the second recipe)."""
    ts = ts or str(int(time.time()))
    nonce = secrets.token_hex(16)
    signature = hashlib.md5((DEFAULT_ACCESS_KEY + ts + nonce + secret).encode()).hexdigest().upper()
    return {
        "access-key": DEFAULT_ACCESS_KEY,
        "timestamp": ts,
        "nonce-str": nonce,
        "user-id": user_id,
        "signature": signature,
    }


def code(server: SandboxServer, headers: dict) -> tuple[int, str]:
    body = httpx.post(server.base_url + PAGE, json={"pageNo": 1, "pageSize": 1}, headers=headers).json()
    return body["code"], body["msg"]


@pytest.fixture(scope="module")
def concat_sandbox():
    with SandboxServer(TINY, sign_recipe="concat") as server:
        yield server


def test_concat_sandbox_accepts_the_concat_recipe_in_seconds(concat_sandbox):
    assert code(concat_sandbox, concat_headers())[0] == 200
    # today's recipe is refused (a 13-digit timestamp is not seconds)
    refused, msg = code(concat_sandbox, signed_headers())
    assert refused == 401 and "seconds" in msg
    # a seconds timestamp with the query recipe's signature: bad signature
    ts = str(int(time.time()))
    refused, msg = code(concat_sandbox, signed_headers(timestamp=ts))
    assert refused == 401 and "signature" in msg


def test_concat_sandbox_checks_the_window_in_seconds(concat_sandbox):
    now = int(time.time())
    assert code(concat_sandbox, concat_headers(str(now - 590)))[0] == 200
    refused, msg = code(concat_sandbox, concat_headers(str(now - 610)))
    assert refused == 401 and "600 s" in msg
    assert code(concat_sandbox, concat_headers(str(now + 610)))[0] == 401


def test_wrong_secret_and_unknown_user_id_with_the_concat_recipe(concat_sandbox):
    assert code(concat_sandbox, concat_headers(secret="nope"))[0] == 401
    assert code(concat_sandbox, concat_headers(user_id="999"))[0] == 403


def test_default_recipe_is_todays():
    with SandboxServer(TINY) as server:
        assert code(server, signed_headers())[0] == 200
        assert code(server, concat_headers())[0] == 401


def test_unknown_recipe_is_refused_at_start():
    with pytest.raises(ValueError, match="query, concat"):
        SandboxServer(TINY, sign_recipe="sha1")


def test_sandbox_cli_has_a_sign_recipe_option():
    from xport_sandbox.cli import build_parser

    args = build_parser().parse_args(["serve", "--sign-recipe", "concat"])
    assert args.sign_recipe == "concat"
    assert build_parser().parse_args(["serve"]).sign_recipe == "query"
