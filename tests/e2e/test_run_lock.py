"""One run at a time on a data directory: a second `xport-etl run` waits for the first (saying
so) or, with --no-wait, refuses with exit code 8. The first run is another real process here,
holding the lock exactly as `run_window` does."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from tests.factories.sandbox import serve
from tests.helpers import assert_warehouse_equals_truth
from xport_sandbox import DEFAULT_ACCESS_KEY, DEFAULT_ACCESS_SECRET, DEFAULT_USER_ID


def _hold(data_dir: str, holding, release) -> None:
    from xport_etl.run.plan import run_lock

    with run_lock(Path(data_dir)):
        holding.set()
        release.wait(60)


def _cli(sandbox, data_dir, *extra):
    world = sandbox.world
    env = {
        **os.environ,
        "XPORT_BASE_URL": sandbox.base_url,
        "XPORT_DATA_DIR": str(data_dir),
        "XPORT_ACCESS_KEY": DEFAULT_ACCESS_KEY,
        "XPORT_ACCESS_SECRET": DEFAULT_ACCESS_SECRET,
        "XPORT_USER_ID": DEFAULT_USER_ID,
        "XPORT_RATE_LIMIT": "0",
    }
    args = [
        sys.executable,
        "-m",
        "xport_etl.cli",
        "run",
        "--quiet",
        "--start",
        world.config.start.isoformat(),
        "--end",
        (world.clock + timedelta(days=1)).isoformat(),
        *extra,
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_run_waits_for_the_first_or_refuses_with_no_wait(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    first = ctx.Process(target=_hold, args=(str(tmp_path), holding, release))
    first.start()
    try:
        assert holding.wait(30)
        with serve(seed=3, orders=60) as sandbox:
            refused = _cli(sandbox, tmp_path, "--no-wait")
            out, err = refused.communicate(timeout=60)
            assert refused.returncode == 8, err
            assert f"another run (pid {first.pid}) is in progress" in err
            assert "Traceback" not in err

            waiting = _cli(sandbox, tmp_path)
            time.sleep(3)
            assert waiting.poll() is None  # still waiting for the first run
            release.set()
            first.join(30)
            out, err = waiting.communicate(timeout=180)
            assert waiting.returncode == 0, err
            assert "waiting for it to finish" in err
            assert_warehouse_equals_truth(tmp_path, sandbox.world)
    finally:
        release.set()
        first.join(30)
