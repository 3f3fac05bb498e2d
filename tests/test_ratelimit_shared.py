"""The machine-wide rate limiter: processes (like Airflow tasks) share one budget per access key."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from xport_etl.extract.ratelimit import FileRateLimiter, shared_limiter

WORKER = """
import sys, time
from xport_etl.extract.ratelimit import shared_limiter
limiter = shared_limiter(sys.argv[1], "key-under-test", float(sys.argv[2]))
for _ in range(int(sys.argv[3])):
    limiter.acquire()
    print(time.time(), flush=True)
"""


def test_processes_share_one_budget(tmp_path):
    rate, per_process, processes = 40.0, 12, 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path), str(rate), str(per_process)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    stamps = sorted(float(t) for p in procs for t in p.communicate(timeout=60)[0].split())
    assert len(stamps) == processes * per_process
    # 36 requests at 40/s take at least 35/40 s together; three private budgets would take ~0.3 s
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) / rate * 0.95


def test_threads_and_fake_clock_follow_gcra(tmp_path):
    now = [1000.0]
    limiter = FileRateLimiter(tmp_path / "k.tat", 10, clock=lambda: now[0], sleep=lambda s: None)
    waits = [limiter.reserve() for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    now[0] += 10  # idle: the budget refills
    assert limiter.reserve() == 0.0


def test_file_is_named_by_a_hash_not_the_key(tmp_path):
    limiter = shared_limiter(tmp_path, "secret-looking-access-key", 5)
    assert "secret-looking-access-key" not in str(limiter.path)
    assert shared_limiter(tmp_path, "secret-looking-access-key", 5) is limiter
    start = time.time()
    limiter.acquire()
    assert time.time() - start < 0.5
