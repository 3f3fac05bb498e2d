"""Build ``released.tar.gz``: a data directory written by an earlier commit of xport-etl, the
state ``tests/upgrade/test_upgrade.py`` upgrades in place.

The fixture is what the code before the library's modules were split (issue 25) leaves: a ``run``
of every stream over the sandbox world :data:`SANDBOX` at its starting clock, published; then,
the clock :data:`ADVANCE` seconds on, the same command again, killed (``XPORT_CRASH_AT``
:data:`CRASH_AT`) with part of its work merged into a next state. Both by the code of
``--checkout`` (that commit's xport_etl, imported from its checkout; the sandbox is this tree's).
``fixture.json`` says which commit and the killed command's period. It is built once, by hand,
and committed: rebuilding it from a later commit would test nothing.

    git worktree add /tmp/xport-released fa83d8e
    .venv/bin/python tests/upgrade/build_fixture.py --checkout /tmp/xport-released
    git worktree remove /tmp/xport-released

Host-scoped files (locks, spill) are left out; everything durable is in (docs/operations.md,
*The data directory*). The data directory is written at :data:`ROOT` and must be read there: its
plans and batch markers hold absolute paths (a data directory is upgraded in place, not moved),
so the builder and the test take :data:`LOCK` around it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SANDBOX = {"seed": 5, "orders": 100}
HOST_SCOPED = ("warehouse.lock", "state/run.lock", "state/ratelimit", "tmp", "spool")
ADVANCE = 5 * 24 * 3600  # seconds of the sandbox's clock between the published run and the killed one
CRASH_AT = "publish.merged:2"  # the killed run: its second merge into its next state done
ROOT = Path(tempfile.gettempdir()) / "xport-etl-released" / "data"  # where the fixture was written
LOCK = ROOT.parent.with_suffix(".lock")  # one user of ROOT at a time


@contextmanager
def at_root() -> Iterator[Path]:
    """:data:`ROOT`, empty and this process's until the block ends (an ``flock`` on :data:`LOCK`)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            shutil.rmtree(ROOT.parent, ignore_errors=True)
            ROOT.mkdir(parents=True)
            yield ROOT
        finally:
            shutil.rmtree(ROOT.parent, ignore_errors=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(checkout: Path, out: Path) -> None:
    sys.path.insert(0, str(HERE.parent.parent))
    from tests.factories.sandbox import serve

    commit = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with serve(**SANDBOX) as sandbox, at_root() as data:
        world = sandbox.world
        env = {**os.environ, "PYTHONPATH": str(checkout), "XPORT_RATE_LIMIT": "0", "XPORT_WORKERS": "1"}
        env.pop("XPORT_CRASH_AT", None)
        cli = [sys.executable, "-m", "xport_etl.cli", "run", "--quiet", "--base-url", sandbox.base_url]
        cli += ["--data-dir", str(data), "--start", world.config.start.isoformat()]
        subprocess.run([*cli, "--end", (world.clock + timedelta(days=30)).isoformat()], env=env, check=True)
        sandbox.advance(ADVANCE)
        end = (world.clock + timedelta(days=30)).isoformat()
        killed = subprocess.run([*cli, "--end", end], env={**env, "XPORT_CRASH_AT": CRASH_AT})
        assert killed.returncode < 0, f"the second run was to be killed at {CRASH_AT}: exit {killed.returncode}"
        fixture = {"commit": commit, "sandbox": SANDBOX, "advance": ADVANCE, "crash_at": CRASH_AT, "end": end}
        (data.parent / "fixture.json").write_text(json.dumps(fixture, indent=2) + "\n")
        with tarfile.open(out, "w:gz") as tar:
            tar.add(data.parent / "fixture.json", arcname="fixture.json")
            for path in sorted(data.rglob("*")):
                rel = path.relative_to(data).as_posix()
                if path.is_file() and not any(rel == h or rel.startswith(h + "/") for h in HOST_SCOPED):
                    tar.add(path, arcname=f"data/{rel}")
    print(f"{out}: written by {commit} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="a checkout of the commit that writes the state")
    parser.add_argument("--out", type=Path, default=HERE / "released.tar.gz")
    a = parser.parse_args()
    build(a.checkout.resolve(), a.out)
