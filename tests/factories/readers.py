"""Readers of the warehouse on DuckDB 1.x, as outside tools run them (the ``duckdb1_readers``
fixture of ``tests/conftest.py`` installs them once per session)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

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
