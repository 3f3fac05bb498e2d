"""The object store every durable state lives in under ``XPORT_STORAGE_URL`` (``xport_etl/store.py``)
and the ledgers kept there (``xport_etl/stored_lines.py``): the same behaviour from a local
directory and from an S3 bucket (moto's server over real HTTP), conditional writes that let
exactly one of two writers win, and URLs that never carry credentials.
"""

from __future__ import annotations

import threading

import pytest

from tests.helpers import Counted
from xport_etl import stored_lines
from xport_etl.errors import ConfigError
from xport_etl.layout import DataLayout
from xport_etl.ledger import JsonLines, ledger_of
from xport_etl.settings import Settings
from xport_etl.store import LocalStore, S3Store, open_store
from xport_etl.stored_lines import StoredLines


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(str(tmp_path / "bucket"))
    return open_store(request.getfixturevalue("s3_url"))


def test_objects_are_written_whole_and_read_with_their_etag(store):
    assert store.get("a/b.json") is None and not store.exists("a/b.json")
    first = store.put("a/b.json", b"one")
    blob = store.get("a/b.json")
    assert blob.data == b"one" and blob.etag == first and store.exists("a/b.json")
    second = store.put("a/b.json", b"two")
    assert second != first and store.get("a/b.json").data == b"two"


def test_create_is_won_once(store):
    assert store.create("commits/1.json", b"mine") is not None
    assert store.create("commits/1.json", b"theirs") is None  # the first writer won
    assert store.get("commits/1.json").data == b"mine"


def test_replace_only_the_object_it_saw(store):
    store.put("lease", b"v1")
    seen = store.get("lease")
    newer = store.replace("lease", b"v2", seen.etag)
    assert newer is not None and store.get("lease").data == b"v2"
    assert store.replace("lease", b"v3", seen.etag) is None  # it changed since: refused
    assert store.get("lease").data == b"v2"
    assert store.replace("nothing-here", b"x", newer) is None


def test_listing_is_sorted_by_folder_and_after_a_key(store):
    for key in ("seq/003", "seq/001", "seq/002", "seqx/001", "other/1"):
        store.put(key, b".")
    assert store.keys("seq") == ["seq/001", "seq/002", "seq/003"]  # a folder, not a prefix of seqx
    assert store.keys("seq", after="seq/001") == ["seq/002", "seq/003"]
    assert set(store.sizes("seq")) == {"seq/001", "seq/002", "seq/003"}
    assert store.child("seq").keys() == ["001", "002", "003"]
    assert store.get_many(["seq/001", "seq/009"]) == {"seq/001": b"."}
    store.delete(["seq/001", "seq/009"])
    assert store.keys("seq") == ["seq/002", "seq/003"]


def test_files_go_up_and_come_down(store, tmp_path):
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 4096)
    store.upload(src, "warehouse/v/1.duckdb")
    store.download("warehouse/v/1.duckdb", tmp_path / "copy" / "w.duckdb")
    assert (tmp_path / "copy" / "w.duckdb").read_bytes() == src.read_bytes()
    with pytest.raises(FileNotFoundError):
        store.download("warehouse/v/2.duckdb", tmp_path / "copy" / "x")
    assert not (tmp_path / "copy" / "x").exists()


def test_an_upload_holds_at_most_four_parts_in_memory(s3_url, tmp_path, monkeypatch):
    from s3fs import S3FileSystem

    store = open_store(s3_url)
    src = tmp_path / "w.duckdb"
    src.write_bytes(b"x" * (11 << 20))
    held = []
    real = S3FileSystem._upload_file_part_concurrent

    async def parts(self, bucket, key, mpu, f0, chunksize, callback=None, max_concurrency=None):
        held.append((max_concurrency or self.max_concurrency) * chunksize)
        return await real(self, bucket, key, mpu, f0, chunksize, max_concurrency=max_concurrency)

    monkeypatch.setattr(S3FileSystem, "_upload_file_part_concurrent", parts)
    monkeypatch.setattr("s3fs.core.calculate_chunksize", lambda size, chunksize=None: 5 << 20)  # a multipart upload
    store.upload(src, "warehouse/v/1.duckdb")
    store.upload_many({"p/1.parquet": src})
    assert held == [4 * (5 << 20)] * 2  # s3fs's default would hold 10 parts (500 MB of 50 MB parts)
    assert store.get("warehouse/v/1.duckdb").data == src.read_bytes()


def test_two_writers_racing_for_one_key_one_wins(tmp_path):
    store = open_store(str(tmp_path / "bucket"))
    wins = []

    def race(i: int) -> None:
        if store.create("commit", str(i).encode()) is not None:
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and store.get("commit").data == str(wins[0]).encode()


def test_storage_urls_are_checked(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore) and isinstance(open_store("s3://b/x"), S3Store)
    for url, words in (
        ("s3://AKIAX:topsecret@bucket/x", "credentials"),
        ("s3://bucket/x?secret=topsecret", "credentials"),
        ("gs://bucket/x", "conditionally"),
        ("memory://x", "conditionally"),
    ):
        with pytest.raises(ConfigError, match=words) as info:
            Settings(data_dir=tmp_path, storage_url=url)
        assert "topsecret" not in str(info.value)
    s = Settings.from_env({"XPORT_DATA_DIR": str(tmp_path), "XPORT_STORAGE_URL": " s3://bucket/xport/ "})
    assert s.storage_url == "s3://bucket/xport" and s.layout.stored
    assert str(s.layout.raw) == "s3://bucket/xport/raw"  # the raw pages follow, unless XPORT_RAW_URL
    assert str(Settings(data_dir=tmp_path, storage_url="s3://b/x", raw_url="s3://r/raw").layout.raw) == "s3://r/raw"
    assert s.layout.store("warehouse").shown == "s3://bucket/xport/warehouse"
    assert not Settings(data_dir=tmp_path).layout.stored  # the embedded default: everything here


# ---- the ledgers under a storage URL


def test_the_ledgers_follow_the_storage_url(tmp_path):
    assert isinstance(ledger_of(tmp_path, "runs"), JsonLines)
    stored = DataLayout(tmp_path / "scratch", storage_url=str(tmp_path / "bucket"))
    assert isinstance(ledger_of(stored, "runs"), StoredLines)
    ledger_of(stored, "runs").append([{"a": 1}])
    assert (tmp_path / "bucket" / "ledger" / "runs" / "seq").is_dir()
    assert not (tmp_path / "scratch").exists()  # nothing of it on the host


def test_a_stored_ledger_reads_what_was_appended_from_a_position(store):
    ledger = StoredLines(store.child("ledger/runs"))
    assert ledger.read() == ([], 0)
    first = ledger.append([{"n": 1}, {"n": 2}])
    second = ledger.append([{"n": 3}])
    assert (first, second) == (1, 2)
    assert ledger.read() == ([{"n": 1}, {"n": 2}, {"n": 3}], 2)
    assert ledger.read(1) == ([{"n": 3}], 2)
    assert ledger.read(2) == ([], 2)
    assert ledger.read(99) == ([{"n": 1}, {"n": 2}, {"n": 3}], 2)  # a replaced ledger: from the start
    assert ledger.append([]) == 0


def test_appenders_on_several_hosts_lose_nothing_and_checkpoints_keep_it_all(tmp_path, monkeypatch):
    monkeypatch.setattr(stored_lines, "CHECKPOINT_EVERY", 8)
    # compacted at once, so no tip is ever trusted (a tip is only safe while objects are kept)
    monkeypatch.setattr(stored_lines, "DELETE_AFTER_S", 0.0)
    monkeypatch.setattr(stored_lines, "TIP_FOR_S", -1.0)
    root = tmp_path / "bucket"
    errors = []

    def host(h: int) -> None:
        ledger = StoredLines(open_store(str(root)))  # each its own store object, as hosts are
        try:
            for i in range(10):
                ledger.append([{"host": h, "i": i}])
        except Exception as exc:  # pragma: no cover (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=host, args=(h,)) for h in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ledger = StoredLines(open_store(str(root)))
    rows, end = ledger.read()
    assert end == 40 and sorted((r["host"], r["i"]) for r in rows) == [(h, i) for h in range(4) for i in range(10)]
    # each host's rows in the order it appended them
    for h in range(4):
        assert [r["i"] for r in rows if r["host"] == h] == list(range(10))
    store = open_store(str(root))
    assert store.keys("checkpoint") and len(store.keys("seq")) < 40  # compacted, old objects gone
    # a reader that stopped before the objects it had not read were compacted away
    later, _ = ledger.read(5)
    assert later == rows[5:]
    ledger.append([{"host": 9, "i": 0}])
    assert ledger.read(end) == ([{"host": 9, "i": 0}], 41)


# ---- what the stored ledgers cost in requests


@pytest.fixture
def fresh_process(monkeypatch):
    """Forget the ledgers' tips (what a new process knows); returns the function that does it."""
    monkeypatch.setattr(stored_lines, "_tips", {})
    return lambda: stored_lines._tips.clear()


def test_an_append_is_one_request(tmp_path, fresh_process):
    store = Counted(tmp_path / "bucket")
    ledger = StoredLines(store)
    ledger.append([{"n": 0}])
    fresh_process()
    store.requests.clear()
    ledger.append([{"n": 1}])  # a new process: one listing finds the highest number, then the create
    assert store.requests == {"list": 1, "create": 1}
    for n in range(2, 20):
        store.requests.clear()
        assert ledger.append([{"n": n}]) == n + 1
        assert store.requests == {"create": 1}, n  # no read-modify-write of a head object
    # another process appended meanwhile: the refused create, one listing, the create
    mine = dict(stored_lines._tips)
    fresh_process()
    StoredLines(store).append([{"n": "elsewhere"}])
    stored_lines._tips.update(mine)  # this process's tip: one behind
    store.requests.clear()
    assert ledger.append([{"n": 21}]) == 22
    assert store.requests == {"create": 2, "list": 1}
    assert [r["n"] for r in ledger.read()[0]] == [*range(20), "elsewhere", 21]


def test_objects_a_checkpoint_covers_stay_until_no_tip_can_be_behind_them(tmp_path, fresh_process, monkeypatch):
    monkeypatch.setattr(stored_lines, "CHECKPOINT_EVERY", 4)
    store = Counted(tmp_path / "bucket")
    ledger = StoredLines(store)
    for n in range(12):
        ledger.append([{"n": n}])
    assert len(store.keys("checkpoint")) == 2 and len(store.keys("seq")) == 12  # young: all kept
    monkeypatch.setattr(stored_lines, "DELETE_AFTER_S", -1.0)  # an hour later
    for n in range(12, 16):
        ledger.append([{"n": n}])
    assert store.keys("seq")[0] == "seq/000000000013.jsonl"  # what the checkpoint before the newest covered went
    fresh_process()
    assert [r["n"] for r in StoredLines(store).read()[0]] == list(range(16))


def test_a_hosts_read_costs_what_was_appended_since_not_the_history(tmp_path, fresh_process, monkeypatch):
    monkeypatch.setattr(stored_lines, "CHECKPOINT_EVERY", 8)
    monkeypatch.setattr(stored_lines, "DELETE_AFTER_S", -1.0)
    monkeypatch.setattr(stored_lines, "TIP_FOR_S", -1.0)
    store = Counted(tmp_path / "bucket")
    writer = StoredLines(store)
    for n in range(200):
        writer.append([{"n": n}])
    host = StoredLines(store, cache=tmp_path / "host" / "runs.jsonl")
    store.requests.clear()
    rows, end = host.read()  # the first read on a host: the newest checkpoint and what follows it
    assert [r["n"] for r in rows] == list(range(200)) and end == 200
    assert store.requests["get"] <= 1 + 8 and store.requests["list"] == 2
    total = 200
    for history in (0, 300):  # the same cost after 300 more appends
        for n in range(history):
            writer.append([{"n": total + n}])
        total += history
        host.read()
        for since in (0, 3):
            for _ in range(since):
                writer.append([{"n": "new"}])
            total += since
            store.requests.clear()
            rows, end = host.read()
            assert store.requests == ({"list": 1, "get": since} if since else {"list": 1}), (history, since)
            assert end == total and len(rows) == total
    fresh_process()
    assert StoredLines(store).read() == host.read()  # the cache holds what the store holds
    assert host.read(end - 2) == ([{"n": "new"}, {"n": "new"}], end)


def test_a_host_cache_of_a_ledger_replaced_since_is_dropped(tmp_path, fresh_process):
    store = Counted(tmp_path / "bucket")
    host = StoredLines(store, cache=tmp_path / "host" / "runs.jsonl")
    StoredLines(store).append([{"n": 1}])
    StoredLines(store).append([{"n": 2}])
    assert host.read()[0] == [{"n": 1}, {"n": 2}]
    store.delete(store.keys())  # the ledger restored from an older backup, then appended to
    fresh_process()
    StoredLines(store).append([{"v": "restored"}])
    fresh_process()
    assert host.read() == ([{"v": "restored"}], 1)
