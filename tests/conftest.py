"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import serve


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest):
    """A served world for the module, described by the module's `SANDBOX` dict.

    `SANDBOX = {"seed": 5, "orders": 300}` (plus any `SandboxServer` keyword, e.g.
    `"access_secret"`) is passed to `tests.helpers.serve`. tests/sandbox/ has its own fixture.
    """
    with serve(**request.module.SANDBOX) as server:
        yield server


# ---- readers on DuckDB 1.x (tests/test_duckdb1_readers.py, tests/e2e/test_wheel_install.py)

# what a reader outside this project runs: the newest DuckDB 1.x with its CLI, and a BI tool's
# SQLAlchemy driver with the newest SQLAlchemy whose column reflection works (duckdb_engine#1391)
READER_PINS = ("duckdb==1.5.6", "duckdb-cli==1.5.6", "duckdb-engine==0.17.0", "SQLAlchemy==2.0.44")
# the oldest DuckDB that opens the warehouse (the storage version v1.0.0 it is written in)
OLDEST_READER_PIN = "duckdb==1.0.0"


@dataclass(frozen=True)
class DuckDB1Readers:
    """A virtual environment of :data:`READER_PINS`, and :data:`OLDEST_READER_PIN` installed apart."""

    python: Path  # the venv's interpreter: duckdb 1.5.6, duckdb_engine, SQLAlchemy
    bin: Path  # the venv's scripts: the DuckDB CLI `duckdb`
    oldest: Path  # a folder to put first on PYTHONPATH: duckdb 1.0.0

    def run(self, script: str, *args: str, oldest: bool = False, timeout: float = 120) -> str:
        """Run ``script`` with the venv's Python (duckdb 1.0.0 first on the path when ``oldest``);
        its stdout, or a failed test naming what it printed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        if oldest:
            env["PYTHONPATH"] = str(self.oldest)
        out = subprocess.run(
            [str(self.python), "-c", script, *args], env=env, capture_output=True, text=True, timeout=timeout
        )
        if out.returncode != 0:
            pytest.fail(f"the DuckDB 1.x reader failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
        return out.stdout


@pytest.fixture(scope="session")
def duckdb1_readers(tmp_path_factory: pytest.TempPathFactory) -> DuckDB1Readers:
    """Readers on DuckDB 1.x, installed from the package index once per test session (a few
    seconds with pip's cache): a venv without pip of its own, filled by this pip (``--python``)."""
    root = tmp_path_factory.mktemp("duckdb1")
    venv, oldest = root / "venv", root / "oldest"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    for cmd in (
        [*pip, "--python", str(python), "install", "--quiet", *READER_PINS],
        [*pip, "install", "--quiet", "--no-deps", "--target", str(oldest), OLDEST_READER_PIN],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            pytest.fail(f"$ {' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return DuckDB1Readers(python=python, bin=venv / "bin", oldest=oldest)
