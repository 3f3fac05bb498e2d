"""Every durable state under one storage URL (``XPORT_STORAGE_URL``), hosts sharing nothing else.

Each "host" is a data directory of its own (its scratch and cache), started empty unless said
otherwise; the storage URL is a local directory here (the object store's semantics, conditional
writes included: ``xport_etl/store.py``), and an S3 bucket on moto's server in
``tests/e2e/test_no_shared_disk.py``. Every warehouse read on a host is compared with the
sandbox's truth, or with the same data published on one disk the way it always was.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tests.helpers import Counted, assert_warehouse_equals_truth
from xport_etl.cli import main
from xport_etl.errors import LeaseLostError, RunInProgressError
from xport_etl.layout import DataLayout
from xport_etl.ledger import ledger_of, read_runs
from xport_etl.load import published as published_module
from xport_etl.load.publish import NextState
from xport_etl.load.published import GC_AFTER_S, PublishedWarehouse, StoredWarehouse
from xport_etl.load.stored_state import StoredNextState
from xport_etl.report.reports import render_report
from xport_etl.run import tasks
from xport_etl.run.engine import run_window
from xport_etl.run.lease import LEASE_KEY, Lease
from xport_etl.run.paging import extract_window
from xport_etl.run.state import load_windows, merge_windows, next_state, run_key
from xport_etl.schemas import FCT_ORDER_LINES, FCT_ORDERS
from xport_etl.settings import Settings
from xport_etl.store import open_store
from xport_etl.streams import graph

# the served world of the `sandbox` fixture (tests/conftest.py)
SANDBOX = {"seed": 23, "orders": 300}


class Hosts:
    """Hosts that share only the storage URL: ``hosts.new()`` is the settings of a fresh one."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root, self.base_url = root, base_url
        self.storage = root / "bucket"
        self.count = 0

    def new(self, **settings) -> Settings:
        self.count += 1
        return Settings(
            base_url=self.base_url,
            data_dir=self.root / f"host{self.count}",
            storage_url=str(self.storage),
            rate_limit=0,
            workers=1,
            **settings,
        )

    def pulled(self) -> Path:
        """A fresh host's pull of the published warehouse, as a data directory holding it."""
        reader = self.new()
        into = self.root / f"reader{self.count}"
        assert main(["pull", "--to", str(into / "warehouse.duckdb"), "--data-dir", str(reader.data_dir), "-q"]) == 0
        return into


@pytest.fixture
def hosts(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("XPORT_STORAGE_URL", str(tmp_path / "bucket"))  # for the CLI's settings
    monkeypatch.setenv("XPORT_BASE_URL", sandbox.base_url)
    return Hosts(tmp_path, sandbox.base_url)


def _period(world) -> tuple:
    return world.config.start, world.clock + timedelta(days=1)


# ---- a run on one host, read on others


def test_a_run_on_one_host_is_read_on_hosts_with_empty_disks(hosts, sandbox, capsys, monkeypatch):
    world = sandbox.world
    a = hosts.new()
    run_window(a, *_period(world))
    stored = open_store(str(hosts.storage))
    assert {k.split("/")[0] for k in stored.keys("")} >= {"raw", "parquet", "warehouse", "ledger", "state"}
    # nothing durable on the host: no raw pages, no ledgers, no plans there
    assert not DataLayout.of(a.data_dir).raw.exists() and not DataLayout.of(a.data_dir).runs.exists()
    assert not any(DataLayout.of(a.data_dir).plans.glob("*.json"))

    downloads = []
    real = published_module.StoredWarehouse.refresh

    def counted(self):
        before = self.local_seq()
        commit = real(self)
        if commit is not None and before != commit["seq"]:
            downloads.append(self.layout.data_dir.name)
        return commit

    monkeypatch.setattr(published_module.StoredWarehouse, "refresh", counted)
    # the host that published last has the newest version: it never downloads it
    assert PublishedWarehouse(a.layout).exists() and downloads == []
    assert_warehouse_equals_truth(a.data_dir, world)

    b = hosts.new()  # a reader with an empty disk: status, report, dashboard, pull
    assert main(["status", "--data-dir", str(b.data_dir)]) == 0
    out = capsys.readouterr().out
    assert "fct_orders" in out and "taobao_orders" in out
    assert downloads == [b.data_dir.name]  # once, then its copy is the newest
    assert "net_spend" in render_report(b, "spend", "csv")
    assert main(["dashboard", "--out", str(hosts.root / "d.html"), "--data-dir", str(b.data_dir)]) == 0
    assert downloads == [b.data_dir.name]
    assert_warehouse_equals_truth(b.data_dir, world)
    assert_warehouse_equals_truth(hosts.pulled(), world)

    # a scheduled pull downloads only what is new
    target = hosts.root / "bi" / "warehouse.duckdb"
    for _ in range(2):
        assert main(["pull", "--to", str(target), "--data-dir", str(hosts.new().data_dir)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[-2].startswith("pulled version") and "already holds version" in said[-1]
    assert json.loads(target.with_name("warehouse.duckdb.version").read_text())["seq"] > 0


def test_the_dag_tasks_each_on_a_host_of_its_own(hosts, sandbox):
    """What ``xport_ingest`` does, each task call on a fresh host (its own empty data directory):
    the loads merge into the run's next state in storage, each fan-out reads its keys from that
    next state rebuilt on its host, and the publish (on yet another host) publishes it once."""
    world = sandbox.world
    key = run_key("xport_ingest", "manual__1")
    start, end = _period(world)
    for name in graph.run_order():
        if graph.stream(name).fanout is None:
            manifests = tasks.extract_interval(hosts.new(), name, start - timedelta(days=1), end)
        else:
            manifests = tasks.extract_fanout_for_run(hosts.new(), name, key)
        assert all(m.startswith(str(hosts.storage)) for m in manifests)  # references any host can read
        if manifests:
            tasks.load_into_run(hosts.new(), manifests, key)
    assert not StoredWarehouse(hosts.new().layout).exists()  # nothing published before the publish task
    result = tasks.publish_run(hosts.new(), key)
    assert result["batches"] > 0
    assert tasks.publish_run(hosts.new(), key)["batches"] == 0  # a retried publish publishes nothing
    assert_warehouse_equals_truth(hosts.pulled(), world)
    assert StoredWarehouse(hosts.new().layout).latest()["seq"] == 1
    assert not open_store(str(hosts.storage)).keys("state/next")  # the run's objects went with its publish


def test_a_host_whose_copy_of_a_next_state_was_cut_short_rebuilds_it(hosts, sandbox):
    world = sandbox.world
    a = hosts.new()
    manifests = tasks.extract_interval(a, "taobao_orders", *_period(world))
    state = next_state(a, "run-cut")
    merge_windows(a, state, manifests)
    assert isinstance(state, StoredNextState)
    orders = duckdb.connect(str(state.path), read_only=True).execute("select count(*) from fct_orders").fetchone()
    # a crash in the middle of a merge leaves the copy marked unclean: never trusted again
    copy = json.loads(state.copy_path.read_text())
    state.copy_path.write_text(json.dumps({**copy, "clean": False}))
    con = state.connect_reader()
    try:
        assert con.execute("select count(*) from fct_orders").fetchone() == orders
    finally:
        con.close()
    assert json.loads(state.copy_path.read_text())["clean"]
    with pytest.raises(ValueError, match="StoredNextState"):
        NextState(a.layout, "run-x")  # the one-disk class refuses a storage URL


def test_an_hourly_run_reads_back_nothing_it_wrote_and_costs_the_same_after_more_history(hosts, sandbox, monkeypatch):
    """The requests of an hourly run on the host that ran the last one: its publish reads no merge
    record this host wrote, and the run ledger costs the same after 200 more lines of history."""
    from xport_etl import store as store_module

    world = sandbox.world
    a = hosts.new()
    run_window(a, *_period(world))
    counted = Counted(hosts.storage)
    monkeypatch.setattr(
        store_module, "open_store", lambda url: counted.child(str(Path(url).relative_to(hosts.storage)))
    )
    hour = (world.clock - timedelta(hours=1), world.clock + timedelta(days=1))

    def hourly() -> list[tuple[str, str]]:
        read_runs(a.layout)  # the same start: this host has read the ledger to its end
        del counted.log[:]
        run_window(a, *hour, incremental=True)
        return list(counted.log)

    first = hourly()
    ledger = [r for r in first if "/ledger/runs" in r[1]]
    assert ledger and not [r for r in first if "/merges/" in r[1] and r[0] == "get"]
    other = hosts.new()  # more history, from another host, then read once here
    for i in range(200):
        ledger_of(other.layout, "runs").append([{"step": "x", "run_id": f"old-{i}"}])
    second = hourly()
    assert [r[0] for r in second if "/ledger/runs" in r[1]] == [r[0] for r in ledger]
    assert len(second) == len(first)


# ---- a local deployment moved onto a storage URL


def test_a_local_data_directory_is_imported_and_runs_on_from_there(hosts, sandbox, tmp_path, capsys):
    """``storage import``: a deployment that ran on one disk goes on under a storage URL without a
    rebuild: the next hourly run on a fresh host, then a pull, equal the truth; the ledgers came too."""
    world = sandbox.world
    local = Settings(base_url=hosts.base_url, data_dir=tmp_path / "local", rate_limit=0, workers=1)
    run_window(local, *_period(world))
    local_runs = read_runs(local.layout)
    before = {p: p.read_bytes() for p in local.data_dir.rglob("*") if p.is_file() and p.suffix != ".lock"}
    assert main(["storage", "import", "--from", str(local.data_dir), "--data-dir", str(hosts.new().data_dir)]) == 0
    assert "as version 1" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in before} == before  # the local directory is not changed
    # a second import into the same storage URL is refused: one line and a hint, exit 2
    assert main(["storage", "import", "--from", str(local.data_dir), "--data-dir", str(hosts.new().data_dir)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "already has a published warehouse (version 1" in err[0] and err[1].startswith("hint:")
    # the next hourly run, on a host with an empty scratch directory
    b = hosts.new()
    run_window(b, world.clock - timedelta(hours=1), world.clock + timedelta(days=1), incremental=True)
    pulled = hosts.pulled()
    assert_warehouse_equals_truth(pulled, world)
    assert StoredWarehouse(hosts.new().layout).latest()["seq"] == 2
    con = duckdb.connect(str(DataLayout.of(pulled).warehouse), read_only=True)
    try:
        runs = {r[0] for r in con.execute("select distinct run_id from etl_runs").fetchall()}
    finally:
        con.close()
    assert {r["run_id"] for r in local_runs} < runs  # the local history, and the run after the import


def test_an_import_carries_the_callback_messages_not_yet_consumed_and_the_raw_pages(published, tmp_path):
    from xport_etl.callbacks.inbox import InboxStore, ObjectInbox

    inbox = InboxStore(DataLayout(published).callbacks, clock=lambda: 1_780_000_000.0)
    raw = b'{"messageType": "ORDER_STATUS", "messagePlatform": "TAOBAO", "orderId": "1"}'
    mid, stored = inbox.append(raw, json.loads(raw))
    inbox.close()
    assert stored
    host = Settings(data_dir=tmp_path / "host", storage_url=str(tmp_path / "bucket"))
    from xport_etl.errors import ConfigError
    from xport_etl.stored_import import import_data_dir

    result = import_data_dir(host, published, with_raw=True)
    assert result["callbacks"] == {"messages": 1, "unreadable": 0} and result["raw_files"] >= 2
    entries, bad, _keys = ObjectInbox(host.layout.store("callbacks")).pending()
    assert [(e.id, e.body) for e in entries] == [(mid, raw.decode())] and not bad
    assert entries[0].received_at.startswith("2026-05-28")  # received when it was, not at the import
    local_raw = {p.relative_to(DataLayout(published).raw).as_posix() for p in DataLayout(published).raw.rglob("*.gz")}
    assert local_raw and local_raw <= set(host.layout.store("raw").keys())
    with pytest.raises(ConfigError, match="already has a published warehouse"):
        import_data_dir(host, published)


def test_an_import_needs_a_storage_url_and_something_published(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XPORT_STORAGE_URL", raising=False)
    (tmp_path / "empty").mkdir()
    assert main(["storage", "import", "--from", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "h")]) == 2
    assert "none is set" in capsys.readouterr().err
    monkeypatch.setenv("XPORT_STORAGE_URL", str(tmp_path / "bucket"))
    assert main(["storage", "import", "--from", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "h")]) == 2
    assert "nothing is published in" in capsys.readouterr().err
    assert not (tmp_path / "bucket").exists()


# ---- publishers on different hosts


def _facts(data_dir: Path) -> dict[str, set]:
    con = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        return {
            spec.name: set(con.execute(f"select {', '.join(spec.public_columns)} from {spec.name}").fetchall())
            for spec in (FCT_ORDERS, FCT_ORDER_LINES)
        }
    finally:
        con.close()


def test_two_publishers_racing_on_different_hosts_lose_nothing(hosts, sandbox, tmp_path, monkeypatch, caplog):
    world = sandbox.world
    a, b = hosts.new(), hosts.new()
    lo, hi = _period(world)
    mid = lo + (hi - lo) / 2
    windows = {
        "a": [extract_window(a, "taobao_orders", lo, mid), extract_window(a, "alibaba_orders", lo, hi)],
        "b": [extract_window(b, "taobao_orders", mid, hi)],
    }
    states = {"a": next_state(a, "run-a"), "b": next_state(b, "run-b")}
    merge_windows(a, states["a"], windows["a"])
    merge_windows(b, states["b"], windows["b"])
    # both reach the commit of version 1 together: exactly one wins it
    barrier = threading.Barrier(2, timeout=60)
    waited: set[str] = set()

    def crashpoint(name: str) -> None:
        if name == "publish.commit" and threading.current_thread().name not in waited:
            waited.add(threading.current_thread().name)
            barrier.wait()

    monkeypatch.setattr(published_module, "crashpoint", crashpoint)
    results: dict[str, object] = {}

    def publish(host: str, settings: Settings) -> None:
        try:
            results[host] = states[host].publish(runs=[])
        except Exception as exc:  # pragma: no cover (reported below)
            results[host] = exc

    with caplog.at_level(logging.WARNING, logger="xport_etl.load.stored_state"):
        threads = [threading.Thread(target=publish, args=(h, s), name=h) for h, s in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not any(isinstance(r, Exception) for r in results.values()), results
    assert "published version 1 first: merging this run again onto it" in caplog.text
    warehouse = StoredWarehouse(hosts.new().layout)
    assert warehouse.latest()["seq"] == 2 and warehouse.commit_of(1)["host"]

    # the same windows published on one disk, the way it always was
    one_disk = Settings(base_url=hosts.base_url, data_dir=tmp_path / "one-disk", rate_limit=0, workers=1)
    local_windows = [
        extract_window(one_disk, "taobao_orders", lo, mid),
        extract_window(one_disk, "alibaba_orders", lo, hi),
        extract_window(one_disk, "taobao_orders", mid, hi),
    ]
    load_windows(one_disk, local_windows)
    assert _facts(hosts.pulled()) == _facts(one_disk.data_dir)


def test_old_versions_go_once_two_newer_are_published_and_an_hour_old(tmp_path):
    def host(n: int) -> Settings:
        return Settings(data_dir=tmp_path / f"host{n}", storage_url=str(tmp_path / "bucket"), workers=1)

    for n in range(4):  # four publishes (of an empty warehouse, re-checked), each from a host of its own
        tasks.refresh_warehouse(host(n))
    warehouse = StoredWarehouse(host(9).layout)
    assert warehouse.latest()["seq"] == 4
    assert len(warehouse.store.keys("v")) == 4
    assert warehouse.collect_garbage() == []  # none is an hour old yet
    gone = warehouse.collect_garbage(now=time.time() + GC_AFTER_S + 1)
    assert sorted(warehouse.store.keys("v")) == sorted(warehouse.commit_of(s)["file"] for s in (4, 3))
    assert sorted(gone) == sorted(warehouse.commit_of(s)["file"] for s in (1, 2))
    assert len(warehouse.store.keys("commits")) == 4  # the publish history stays
    assert warehouse.exists() and warehouse.local_seq() == 4  # a reader still gets the newest


# ---- the run lease


def test_one_run_at_a_time_across_hosts_and_a_dead_holder_is_taken_over(tmp_path, caplog):
    store = open_store(str(tmp_path / "bucket"))
    first = Lease(store, 60, "the bucket")
    first.acquire()
    with pytest.raises(RunInProgressError, match=r"another run \(host .*, pid \d+\) holds the lease"):
        Lease(store, 60, "the bucket").acquire(wait=False)
    first.release()
    second = Lease(store, 60, "the bucket")
    second.acquire(wait=False)  # released: free at once
    second._stop.set()  # the host dies: no more renewals, no release
    second._thread.join()
    doc = json.loads(store.get(LEASE_KEY).data)
    with pytest.raises(RunInProgressError):  # within its period it is still held
        Lease(store, 60, "the bucket").acquire(wait=False)
    # long expired by this host's clock (more than a period past expires_at): taken over at once
    store.put(LEASE_KEY, json.dumps({**doc, "expires_at": "2020-01-01T00:00:00+00:00"}).encode())
    with caplog.at_level(logging.WARNING, logger="xport_etl.run.lease"):
        third = Lease(store, 60, "the bucket")
        third.acquire(wait=False)
    assert "took over the run lease" in caplog.text
    third.release()


def test_a_lease_not_renewed_for_a_period_is_taken_over_whatever_the_clocks_say(tmp_path):
    store = open_store(str(tmp_path / "bucket"))
    # a holder whose clock runs a day ahead: its lease looks valid for a day, but it stopped changing
    ahead = Lease(store, 0.6, "the bucket")
    ahead.acquire()
    ahead._stop.set()
    ahead._thread.join()
    doc = json.loads(store.get(LEASE_KEY).data)
    store.put(LEASE_KEY, json.dumps({**doc, "expires_at": "2100-01-01T00:00:00+00:00", "ttl": 0.6}).encode())
    started = time.monotonic()
    successor = Lease(store, 0.6, "the bucket")
    successor.acquire()  # waits until it has seen the lease unchanged for a period
    assert time.monotonic() - started >= 0.6
    assert json.loads(store.get(LEASE_KEY).data)["owner"] == successor.owner
    successor.release()


def test_a_holder_whose_lease_was_taken_over_stops(tmp_path):
    store = open_store(str(tmp_path / "bucket"))
    holder = Lease(store, 0.6, "the bucket")
    holder.acquire()
    holder.check()
    store.put(LEASE_KEY, b'{"owner": "another host"}')  # taken over while this one was frozen
    deadline = time.monotonic() + 10
    while not holder.lost.is_set():
        assert time.monotonic() < deadline, "the holder never noticed"
        time.sleep(0.05)
    with pytest.raises(LeaseLostError, match="another host took over the run lease"):
        holder.check()
    holder.release()
    assert json.loads(store.get(LEASE_KEY).data) == {"owner": "another host"}  # not released over it
