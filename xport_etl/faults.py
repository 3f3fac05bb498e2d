"""Crash points for the kill tests: ``XPORT_CRASH_AT=<point>:<n>`` makes the process SIGKILL
itself the n-th time it reaches ``<point>`` (no cleanup, no atexit: a real crash).

The points sit between the steps whose ordering makes a crash safe (a page written, a window
committed, a Parquet table written, a merge done, the swap about to happen…), so a kill test
can crash at each of them deterministically instead of at a random time. Unset, a crash point
costs one dictionary lookup. In a staging worker process the point kills the pipeline process
as well (hits are counted per process).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from xport_etl.settings import crash_at, pipeline_pid

_hits: Counter[str] = Counter()


def crashpoint(name: str) -> None:
    spec = crash_at()
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _hits[name] += 1
    if _hits[name] == int(nth or 1):
        parent = pipeline_pid()  # a staging worker: the pipeline dies too
        if parent:
            os.kill(parent, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
