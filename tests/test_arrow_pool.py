"""Importing xport_etl picks Arrow's allocator (ARROW_DEFAULT_MEMORY_POOL, read when pyarrow is
first imported): the system allocator by default, whatever the caller chose otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = "import xport_etl, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _backend(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_importing_xport_etl_first_selects_the_system_allocator():
    assert _backend() == "system"


def test_an_allocator_the_caller_chose_is_kept():
    assert _backend(ARROW_DEFAULT_MEMORY_POOL="mimalloc") == "mimalloc"
