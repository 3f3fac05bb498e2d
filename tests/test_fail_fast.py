"""Mistakes on our side fail fast: wrong credentials or a machine clock more than 600 s off make
the very first request fail, with no retry (the sandbox sees exactly one request) and a message
that says what to fix. Retrying would not help and would only burn the shared rate budget."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from xport_etl.errors import AuthenticationError
from xport_etl.extract.auth import XportAuth, now_ms
from xport_etl.extract.client import XportClient
from xport_etl.extract.endpoints import ENDPOINTS
from xport_etl.run import engine as engine_run
from xport_etl.settings import Settings
from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import WorldConfig

WORLD = WorldConfig(seed=5, orders=100)
SKEW_MS = 700_000  # beyond the 600 s window


def run(sandbox: SandboxServer, data_dir, **settings) -> None:
    s = Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, **settings)
    world = sandbox.world
    engine_run.run_window(s, world.config.start, world.clock + timedelta(days=1))


def assert_one_request(sandbox: SandboxServer, code: int = 401) -> None:
    stats = sandbox.stats()
    assert stats["requests"] == 1, stats
    (endpoint,) = stats["endpoints"].values()
    assert endpoint["codes"] == {str(code): 1}


def test_wrong_secret_fails_fast_naming_the_credentials(tmp_path, no_sleep) -> None:
    with SandboxServer(WORLD) as sandbox:
        with pytest.raises(AuthenticationError) as info:
            run(sandbox, tmp_path, access_secret="not-the-secret")
        assert_one_request(sandbox)
    message = str(info.value)
    assert "XPORT_ACCESS_SECRET" in message and "bad signature" in message
    assert "endpoint=taobao_orders" in message and "code=401" in message
    assert info.value.attempts == 1 and "gave up" not in message
    assert "not-the-secret" not in message and DEFAULT_ACCESS_SECRET not in message
    assert no_sleep == []


def test_wrong_access_key_fails_fast(tmp_path, no_sleep) -> None:
    with SandboxServer(WORLD) as sandbox:
        with pytest.raises(AuthenticationError, match="XPORT_ACCESS_KEY"):
            run(sandbox, tmp_path, access_key="0" * 32)
        assert_one_request(sandbox)


def test_wrong_user_id_fails_fast(tmp_path, no_sleep) -> None:
    with SandboxServer(WORLD) as sandbox:
        with pytest.raises(AuthenticationError, match="XPORT_USER_ID"):
            run(sandbox, tmp_path, user_id="999")
        assert_one_request(sandbox, code=403)


@pytest.mark.parametrize("skew_ms", [SKEW_MS, -SKEW_MS])
def test_stale_client_clock_fails_fast_naming_the_clock(skew_ms) -> None:
    with SandboxServer(WORLD) as sandbox:
        settings = Settings(base_url=sandbox.base_url, rate_limit=0)
        auth = XportAuth(
            DEFAULT_ACCESS_KEY,
            DEFAULT_ACCESS_SECRET,
            DEFAULT_USER_ID,
            clock=lambda: now_ms() + skew_ms,
        )
        sleeps: list[float] = []
        with (
            XportClient(settings, auth=auth, sleep=sleeps.append) as client,
            pytest.raises(AuthenticationError) as info,
        ):
            client.request(ENDPOINTS["taobao_orders"], body={"pageNo": 1, "pageSize": 10})
        assert_one_request(sandbox)
    assert "sync the machine clock" in str(info.value) and "600" in str(info.value)
    assert info.value.attempts == 1 and sleeps == []


def test_stale_clock_fails_a_whole_run_fast(tmp_path, no_sleep) -> None:
    # the server's real clock 700 s ahead is the client's clock 700 s behind
    with SandboxServer(WORLD, real_clock=lambda: time.time() + SKEW_MS / 1000) as sandbox:
        with pytest.raises(AuthenticationError, match="sync the machine clock"):
            run(sandbox, tmp_path)
        assert_one_request(sandbox)
    assert no_sleep == []
    ledger = (tmp_path / "state" / "runs.jsonl").read_text()
    assert '"outcome": "failed"' in ledger and "machine clock" in ledger
