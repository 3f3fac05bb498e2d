"""A command's plan is named by a digest of its parameters (``state/plans/<digest>.json``): the same
command resumes an unfinished plan only if the engine builds the very same parameters. These are
the digests the code before the stream graph and the engine split (270972b) computed for the same
commands, so a plan a crashed run of that code left behind is resumed, not started over."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from xport_etl.run import engine
from xport_etl.settings import Settings

CST = timezone(timedelta(hours=8))
COMMANDS = [
    ({"start": datetime(2026, 1, 1, tzinfo=CST), "end": datetime(2026, 7, 1, tzinfo=CST)}, "016ba31dc7637f40"),
    (
        {
            "start": datetime(2026, 1, 1, tzinfo=CST),
            "end": datetime(2026, 7, 1, tzinfo=CST),
            "chunk": timedelta(days=7),
            "span": timedelta(days=31),
        },
        "9fcebc39203050b5",
    ),
    (
        {"start": datetime(2026, 3, 1, tzinfo=UTC), "end": datetime(2026, 3, 2, tzinfo=UTC), "incremental": True},
        "d8602cff79637008",
    ),
    (
        {
            "start": datetime(2026, 1, 1, tzinfo=CST),
            "end": datetime(2026, 2, 1, tzinfo=CST),
            "endpoints": ["taobao_orders", "taobao_refunds", "alibaba_orders", "alibaba_refunds"],
        },
        "a695696958171dd0",
    ),
]


class _Opened(Exception):
    pass


@pytest.mark.parametrize(("command", "digest"), COMMANDS, ids=["run", "backfill", "incremental", "some streams"])
def test_a_plan_written_before_is_found_again(command, digest, tmp_path, monkeypatch):
    params = []

    def capture(data_dir, p):
        params.append(p)
        raise _Opened

    monkeypatch.setattr(engine.RunPlan, "open", staticmethod(capture))
    with pytest.raises(_Opened):
        engine.run_window(Settings(data_dir=tmp_path), **command)
    assert hashlib.sha256(json.dumps(params[0], sort_keys=True, default=str).encode()).hexdigest()[:16] == digest
