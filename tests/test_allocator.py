"""xport_etl.allocator: glibc's malloc arenas capped when staging starts (unless the caller chose),
and free memory handed back; each probe runs in a fresh interpreter (the cap is process-wide)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

import pytest

from xport_etl import allocator

pytestmark = pytest.mark.skipif(
    not hasattr(ctypes.CDLL(None), "malloc_stats"), reason="glibc's malloc only (malloc_stats counts its arenas)"
)

# eight threads, all alive at once, each allocating: glibc gives each a new arena up to its cap;
# malloc_stats prints one "Arena N:" block per arena on stderr
PROBE = """
import ctypes, sys, threading
from xport_etl import allocator
print(allocator.bound_arenas() if sys.argv[1] == "bound" else None, flush=True)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    libc.malloc(1000)
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
allocator.trim()
libc.malloc_stats()
"""


def _arenas(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout.strip(), out.stderr.count("Arena ")


def test_staging_caps_glibc_arenas_however_many_threads_allocate():
    assert _arenas("free")[1] > allocator.ARENAS  # (the probe can tell: uncapped, threads get arenas of their own)
    assert _arenas("bound") == ("True", allocator.ARENAS)


def test_arenas_the_caller_chose_are_kept():
    assert _arenas("bound", MALLOC_ARENA_MAX="6") == ("False", 6)
    assert _arenas("bound", GLIBC_TUNABLES="glibc.malloc.arena_max=2") == ("False", 2)
