"""End to end under faults: a whole run (every endpoint, both platforms) against a sandbox whose
gateway misbehaves still lands a warehouse equal to the truth; a fault that outlasts the retry
policy fails the run with a message naming the endpoint, the envelope code and the request id,
and the next run, faults gone, recovers."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta

import pytest

from tests.helpers import assert_warehouse_equals_truth
from xport_etl.errors import RetriableError
from xport_etl.extract.client import RetryPolicy, XportClient
from xport_etl.run import engine as engine_run
from xport_etl.run import lander as lander_run
from xport_etl.run import paging as paging_run
from xport_etl.run import windows as windows_run
from xport_etl.settings import Settings
from xport_sandbox.faults import FAULT_KINDS, PROFILES, FaultProfile
from xport_sandbox.testing import SandboxServer
from xport_sandbox.world import WorldConfig

WORLD = WorldConfig(seed=11, orders=300)


class FastClients:
    """Makes ``xport_etl.run.paging._make_client`` build clients with a quick retry policy and a sleep that
    records what was asked (``Retry-After`` included) but waits at most 20 ms."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.delays: list[float] = []
        self.clients: list[XportClient] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.delays.append(seconds)
        time.sleep(min(seconds, 0.02))

    def __call__(self, settings: Settings) -> XportClient:
        client = XportClient(settings, retry=self.policy, sleep=self.sleep)
        self.clients.append(client)
        return client

    def stat(self, name: str) -> float:
        return sum(c.stats.as_dict()[name] for c in self.clients)


@pytest.fixture
def fast(monkeypatch):
    def install(**policy) -> FastClients:
        clients = FastClients(RetryPolicy(initial_delay=0.01, max_delay=0.05, **policy))
        monkeypatch.setattr(paging_run, "_make_client", clients)
        return clients

    return install


def run(sandbox: SandboxServer, data_dir, **settings) -> dict:
    world = sandbox.world
    s = Settings(base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, **settings)
    return engine_run.run_window(s, world.config.start, world.clock + timedelta(days=30))


def test_flaky_run_equals_truth(fast, tmp_path) -> None:
    clients = fast()  # the default 6 tries
    with SandboxServer(WORLD, faults="flaky", fault_seed=1) as sandbox:
        run(sandbox, tmp_path, timeout=5)
        counts = assert_warehouse_equals_truth(tmp_path, sandbox.world)
        stats = sandbox.stats()
    assert min(counts.values()) > 0
    faults = stats["faults"]
    assert set(faults) == set(PROFILES["flaky"].weights), faults
    assert 0.05 < sum(faults.values()) / stats["requests"] < 0.15
    assert clients.stat("retries") == sum(faults.values())  # every fault cost exactly one retry
    assert 1.0 in clients.delays  # Retry-After: 1 honoured


def test_nasty_run_equals_truth(fast, tmp_path) -> None:
    # 25 % of requests fail independently: 10 tries make giving up on one of a run's ~850
    # requests a one-in-a-thousand event (with the default 6 it would be ~1 run in 5)
    clients = fast(max_tries=10)
    with SandboxServer(WORLD, faults="nasty", fault_seed=1) as sandbox:
        started = time.monotonic()
        run(sandbox, tmp_path, timeout=0.5)  # a "slow" answer (2 s) times out
        elapsed = time.monotonic() - started
        assert_warehouse_equals_truth(tmp_path, sandbox.world)
        stats = sandbox.stats()
    faults = stats["faults"]
    assert set(faults) == set(FAULT_KINDS) | {"drift"}, faults
    assert faults["drift"] == PROFILES["nasty"].drift_requests
    assert 0.18 < (sum(faults.values()) - faults["drift"]) / stats["requests"] < 0.32
    assert clients.stat("transport_errors") >= faults["drop"] + faults["slow"]
    assert clients.stat("malformed_bodies") == faults["cutoff"]
    assert elapsed < 30


def test_fault_outlasting_retries_fails_clearly_then_recovers(fast, tmp_path) -> None:
    clients = fast(max_tries=4)
    broken = FaultProfile("broken", always={"/v2/alibaba/order/page": "envelope_500"})
    with SandboxServer(WORLD, faults=broken) as sandbox:
        with pytest.raises(RetriableError) as info:
            run(sandbox, tmp_path, timeout=5)
        message = str(info.value)
        assert "alibaba_orders" in message and "code=500" in message
        assert re.search(r"request_id=[0-9a-f]{32}", message), message
        assert "gave up after 4 attempts" in message
        ledger = [json.loads(line) for line in (tmp_path / "state" / "runs.jsonl").read_text().splitlines()]
        failed = [r for r in ledger if r["outcome"] == "failed"]
        assert failed and {r["endpoint"] for r in failed} == {"alibaba_orders"}
        assert all("code=500" in r["error"] for r in failed)
        # bounded: exactly max_tries requests for each broken window paged (the windows already
        # in flight when the first one gave up), and no window started after that
        windows = len(
            windows_run.split_window(
                sandbox.world.config.start, sandbox.world.clock + timedelta(days=30), windows_run.DEFAULT_CHUNK
            )
        )
        assert 1 <= len(failed) <= lander_run.EXTRACT_WORKERS < windows
        assert sandbox.stats()["endpoints"]["/v2/alibaba/order/page"]["requests"] == 4 * len(failed)
        assert clients.stat("retries") == 3 * len(failed)

        sandbox.set_faults("none")
        run(sandbox, tmp_path, timeout=5)  # the same command again: resumes and completes
        assert_warehouse_equals_truth(tmp_path, sandbox.world)
