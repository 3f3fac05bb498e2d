"""The C library's allocator, tuned for staging: fewer glibc arenas, and free memory handed back.

A load stages windows with DuckDB and Arrow on several threads, then merges them into the next
state on others (bench/NOTES.md, "Memory"). glibc's malloc gives threads that allocate at once
arenas of their own (up to eight a core) and keeps what they free for their reuse, so memory a
staging thread freed stayed resident while the merge allocated afresh: at 1M orders landed as one
window, that is what took the peak past 500 MB. Both helpers are no-ops with another C library.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any

from xport_etl.settings import malloc_arenas_chosen

# glibc malloc arenas once staging starts: two kept the 1M peak as low but cost ~3% CPU (the
# staging threads' allocations contended for one arena); four cost none measurable (bench/NOTES.md)
ARENAS = 4
_M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


@functools.cache
def _libc(name: str) -> Callable[..., Any] | None:
    """A function of the process's C library, or None if it has none by that name."""
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def bound_arenas() -> bool:
    """Cap glibc's malloc at :data:`ARENAS` arenas for the rest of the process, unless the caller
    chose (``MALLOC_ARENA_MAX``, or ``malloc.arena_max`` in ``GLIBC_TUNABLES``); returns whether
    the cap was set. Called when staging starts, before its threads: glibc counts its arenas once,
    when a thread first finds none free (a process that already made nine keeps them)."""
    mallopt = _libc("mallopt")
    if mallopt is None or malloc_arenas_chosen():
        return False
    return bool(mallopt(_M_ARENA_MAX, ARENAS))


def trim() -> None:
    """Hand the memory glibc's arenas hold free back to the system (``malloc_trim``; ~10 ms): after
    a window's DuckDB tables are dropped and after the staging database is closed, so that the next
    window and the merge start from what is in use, not from what was."""
    malloc_trim = _libc("malloc_trim")
    if malloc_trim is not None:
        malloc_trim(0)
