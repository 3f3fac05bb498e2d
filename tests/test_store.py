"""The object store every durable state lives in under ``XPORT_STORAGE_URL`` (``xport_etl/store.py``)
and the ledgers kept there (``xport_etl/stored_lines.py``): the same behaviour from a local
directory and from an S3 bucket (moto's server over real HTTP), conditional writes that let
exactly one of two writers win, and URLs that never carry credentials.
"""

from __future__ import annotations

import threading

import pytest

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
