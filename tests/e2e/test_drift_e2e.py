"""Paging drift end to end (docs/api-contract.md#41-moving-data): while a run pages, the sandbox's
clock jumps (the ``drift`` profile: an hour before each of the first four list pages), so orders are
created and statuses change mid-paging; the run notices, pages the window again once the world holds
still, and lands exactly the truth at its cut-off (the world clock after the burst)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

from tests.helpers import assert_warehouse_equals_truth
from xport_etl.extract.landing import read_pages
from xport_etl.run.engine import run_window
from xport_etl.schemas import FCT_ORDER_LINES, FCT_ORDERS
from xport_etl.settings import Settings
from xport_sandbox.faults import PROFILES
from xport_sandbox.testing import SandboxServer
from xport_sandbox.truth import truth_tables
from xport_sandbox.world import CST, WorldConfig

DRIFT = PROFILES["drift"]


# The burst must hit the order windows, which notice it and page again. Paged at once (the
# default), the Taobao refund list would take some of the burst's pages: it has no update-time
# filter to catch up with, so a refund created after its only page is read waits for the next
# run, as docs/api-contract.md#41-moving-data
# leaves it, and the warehouse would lag the truth at the cut-off by it.
ONE_WINDOW_AT_A_TIME = 1  # Settings.extract_workers


def world_config(clock: datetime) -> WorldConfig:
    # a month of 600 orders: every list fits one window, and an hour brings orders and changes
    return WorldConfig(seed=11, orders=600, clock=clock, start=clock - timedelta(days=30))


def statuses(world) -> dict[str, str]:
    t = truth_tables(world)["fct_orders"]
    return dict(zip(t["order_id"].to_pylist(), t["status"].to_pylist(), strict=True))


def drive(sandbox: SandboxServer, data_dir, **kwargs) -> None:
    world = sandbox.world
    settings = Settings(
        base_url=sandbox.base_url, data_dir=data_dir, rate_limit=0, extract_workers=ONE_WINDOW_AT_A_TIME
    )
    # one window per list endpoint (not monthly chunks), so the burst hits the newest orders
    run_window(
        settings,
        world.config.start,
        world.clock + timedelta(days=30),
        chunk=timedelta(days=400),
        **kwargs,
    )


def manifests(data_dir, endpoint: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(data_dir.glob(f"raw/{endpoint}/*/manifest.json"))]


def test_orders_created_and_changed_while_paging_land_as_the_truth_at_cut_off(tmp_path) -> None:
    with SandboxServer(world_config(datetime(2026, 7, 1, 14, tzinfo=CST)), faults="drift") as sandbox:
        world = sandbox.world
        start_clock, before = world.clock_ms, statuses(world)
        drive(sandbox, tmp_path)

        # the drift really happened: the clock jumped, orders were created, statuses changed
        assert sandbox.stats()["faults"] == {"drift": DRIFT.drift_requests}
        assert world.clock_ms == start_clock + DRIFT.drift_requests * DRIFT.drift_step_s * 1000
        after = statuses(world)
        assert len(after) > len(before)
        assert any(before[o] != s for o, s in after.items() if o in before)

        # ... and the run's result is the truth at its cut-off (the clock after the burst)
        assert_warehouse_equals_truth(tmp_path, world)

    (orders,) = manifests(tmp_path, "taobao_orders")
    assert orders["drift_repages"] >= 1 and "inconsistent" not in orders["extra"]
    ledger = [json.loads(line) for line in (tmp_path / "state" / "runs.jsonl").read_text().splitlines()]
    assert any(
        r["endpoint"] == "taobao_orders" and r["drift_repages"] >= 1 and r["outcome"] == "success" for r in ledger
    )


def test_statuses_changing_while_paging_without_new_orders(tmp_path) -> None:
    # at midnight CST hardly an order is placed, but paid orders keep shipping and unpaid ones
    # keep being cancelled: the burst changes statuses and leaves `total` where it was
    with SandboxServer(world_config(datetime(2026, 7, 1, 0, tzinfo=CST)), faults="drift") as sandbox:
        world = sandbox.world
        before = statuses(world)
        drive(sandbox, tmp_path)
        after = statuses(world)
        assert len(after) == len(before)  # the premise: no new orders
        assert sum(before[o] != s for o, s in after.items()) > 0  # but statuses moved
        assert_warehouse_equals_truth(tmp_path, world)


def test_a_window_holding_records_without_ids_is_paged_once_and_lands_the_truth(tmp_path) -> None:
    # issue 24: null ids counted as one made a window with two or more of them look "moving", and
    # every window was paged three times (all three passes landed and normalised)
    # (the Taobao order list alone: the 1688 world is empty, so fct_orders is all Taobao)
    clock = datetime(2026, 7, 1, 14, tzinfo=CST)
    config = dataclasses.replace(world_config(clock), null_id_copies=0.02, orders_1688=0)
    with SandboxServer(config) as sandbox:
        drive(sandbox, tmp_path, endpoints=("taobao_orders",))
        served = sandbox.stats()["endpoints"]["/open/purchase/page"]["requests"]
        assert_warehouse_equals_truth(tmp_path, sandbox.world, tables=(FCT_ORDERS, FCT_ORDER_LINES))

    (orders,) = manifests(tmp_path, "taobao_orders")
    window = tmp_path / "raw" / "taobao_orders" / orders["window_id"]
    landed = [r for _, body, _ in read_pages(window) for r in json.loads(body)["data"]["records"]]
    assert sum(r["id"] is None for r in landed) >= 5  # the premise: several records without an id
    minimum = -(-orders["total"] // 100)  # ceil(total / pageSize)
    assert orders["drift_repages"] == 0 and "inconsistent" not in orders["extra"]
    assert served == orders["pages"] == minimum + 1  # one pass, and the catch-up query after it
