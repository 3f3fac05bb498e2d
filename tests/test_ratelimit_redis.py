"""The rate-limit budget shared across machines through a real Redis (``XPORT_RATE_LIMIT_URL``).

Each test starts its own ``redis-server`` (the Debian package; ``.ci/run`` installs it) on a free
loopback port with its files in a temporary directory, and skips only when the binary is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers import REDIS_SERVER, free_port
from xport_etl.errors import ConfigError, RateLimiterUnavailableError
from xport_etl.extract.ratelimit import (
    FileRateLimiter,
    RedisRateLimiter,
    limiter_for_settings,
    redis_limiter,
)
from xport_etl.settings import Settings

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (apt-get install redis-server)"
)


@needs_redis
def test_gcra_in_redis_spaces_reservations(redis_server):
    limiter = RedisRateLimiter(redis_server.url, "key-gcra", 10)
    waits = [limiter.reserve() for _ in range(5)]
    # Redis's clock moves a little between calls: each wait is at most the ideal spacing
    for i, wait in enumerate(waits):
        assert i * 0.1 - 0.05 <= wait <= i * 0.1 + 1e-6, waits
    # the key's state lives in Redis under a hash of the key, never the key itself
    import redis

    keys = [k.decode() for k in redis.Redis.from_url(redis_server.url).keys("*")]
    assert len(keys) == 1 and keys[0].startswith("xport:ratelimit:") and "key-gcra" not in keys[0]
    # another access key has its own budget
    assert RedisRateLimiter(redis_server.url, "other-key", 10).reserve() == 0.0


@needs_redis
def test_settings_choose_the_limiter(redis_server, tmp_path):
    file_based = limiter_for_settings(Settings(data_dir=tmp_path, rate_limit=5))
    assert isinstance(file_based, FileRateLimiter)
    shared = limiter_for_settings(Settings(data_dir=tmp_path, rate_limit=5, rate_limit_url=redis_server.url))
    assert isinstance(shared, RedisRateLimiter) and shared.rate == 5
    assert redis_limiter(redis_server.url, Settings().access_key, 5) is shared


def test_rate_limit_url_is_checked_and_redacted(monkeypatch, tmp_path):
    monkeypatch.setenv("XPORT_RATE_LIMIT_URL", "redis://:hunter2@redis.internal:6379/0")
    settings = Settings.from_env(data_dir=tmp_path)
    assert settings.rate_limit_url == "redis://:hunter2@redis.internal:6379/0"
    assert "hunter2" not in repr(settings) and "hunter2" not in json.dumps(settings.redacted())
    assert settings.redacted()["rate_limit_url"] == "redis://redis.internal:6379/0"
    with pytest.raises(ConfigError, match="XPORT_RATE_LIMIT_URL"):
        Settings(rate_limit_url="http://:hunter2@redis.internal/0")
    assert Settings(rate_limit_url="  ").rate_limit_url is None


def test_unreachable_redis_refuses_at_start():
    port = free_port()  # nothing listens there
    with pytest.raises(RateLimiterUnavailableError, match="unreachable") as info:
        RedisRateLimiter(f"redis://:hunter2@127.0.0.1:{port}/0", "k", 10, timeout=1)
    assert "hunter2" not in str(info.value)


@needs_redis
def test_redis_lost_mid_run_stops_the_run(redis_server):
    limiter = RedisRateLimiter(redis_server.url, "key-lost", 100, sleep=lambda s: None)
    limiter.acquire()
    redis_server.stop()
    with pytest.raises(RateLimiterUnavailableError, match="failed"):
        limiter.acquire()


def test_cli_exits_3_when_redis_is_unreachable(tmp_path):
    """A run configured for Redis that cannot reach it stops before any request, exit code 3."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPORT_")}
    env.update(
        {
            "XPORT_DATA_DIR": str(tmp_path / "data"),
            "XPORT_RATE_LIMIT_URL": f"redis://:hunter2@127.0.0.1:{port}/0",
            "XPORT_BASE_URL": f"http://127.0.0.1:{free_port()}",  # never reached
        }
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "xport_etl.cli",
            "extract",
            "-q",
            "--endpoint",
            "taobao_orders",
            "--start",
            "2026-06-01",
            "--end",
            "2026-06-02",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 3, out.stderr
    assert "XPORT_RATE_LIMIT_URL" in out.stderr and "unreachable" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


WORKER = """
import sys, time
from xport_etl.extract.client import XportClient
from xport_etl.settings import Settings
client = XportClient(Settings.from_env())  # XPORT_DATA_DIR, XPORT_RATE_LIMIT(_URL) from the env
assert type(client.limiter).__name__ == "RedisRateLimiter", client.limiter
start_at, duration = float(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
while time.time() < start_at + duration:
    client.limiter.acquire()
    print(time.time(), flush=True)
client.close()
"""


@needs_redis
@pytest.mark.slow
def test_two_machines_share_one_budget_through_redis(redis_server, tmp_path):
    """Two processes, each with its own data directory (two "machines": no shared lock file),
    one access key: together they stay within its rate, measured over 21 seconds."""
    rate, duration = 10.0, 21.0
    start_at = time.time() + 2.0  # both start together, after their imports
    procs = []
    for name in ("a", "b"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("XPORT_")}
        env.update(
            {
                "XPORT_DATA_DIR": str(tmp_path / f"machine-{name}"),
                "XPORT_RATE_LIMIT": str(rate),
                "XPORT_RATE_LIMIT_URL": redis_server.url,
            }
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(start_at), str(duration)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    per_process = []
    for proc in procs:
        out, err = proc.communicate(timeout=duration + 30)
        assert proc.returncode == 0, err[-2000:]
        per_process.append([float(t) for t in out.split()])
    stamps = sorted(t for ts in per_process for t in ts)
    span = stamps[-1] - stamps[0]
    assert span >= 20.0
    # together: at most the budget (burst 1) over the whole span and in every 2-second window
    assert len(stamps) <= rate * span + 1 + 1, (len(stamps), span)
    j = 0
    for i, t in enumerate(stamps):
        while stamps[j] < t - 2.0:
            j += 1
        assert i - j + 1 <= 2 * rate + 2, f"{i - j + 1} requests within 2 s around {t}"
    # and the budget was used, shared by both (separate budgets would send ~2x as many)
    assert len(stamps) >= rate * span * 0.9
    assert min(len(ts) for ts in per_process) >= 0.3 * len(stamps)
    # neither machine fell back to its own lock file
    for name in ("a", "b"):
        assert not (tmp_path / f"machine-{name}" / "state" / "ratelimit").exists()
