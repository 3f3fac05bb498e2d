"""The bad-input corpus (``tests/corpus/*.json``) through every endpoint's normaliser, then end to
end through Parquet and the published warehouse.

Each corpus case is a window of landed pages for one endpoint and what must come out of it:

- ``level: record`` — the bad records become rejects with the exact ``record_id`` and a reason
  (prefix match), and every good record of the same pages is in the output with the exact
  values listed (Decimals and times compared as text). An expected reject with ``severity:
  warning`` is a record that loads (it is listed in the rows too) with its ``field`` named and
  that field's value (``raw``) as the row's raw JSON; without ``severity`` it is ``rejected``;
- ``level: page`` — the window raises ``PageError`` whose message contains ``page_error``.

The rule deciding which is which is in the :mod:`xport_etl.normalize.values` module docstring.
How a case's page bodies are built: ``tests/factories/corpus.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.factories.corpus import CASES, PAGE_CASES, RECORD_CASES, pages
from xport_etl.extract.landing import Manifest, PageWriter, read_manifest, window_id
from xport_etl.layout import DataLayout
from xport_etl.load.publish import publish
from xport_etl.load.staging import _normalizers, stage_window
from xport_etl.normalize.pages import to_table
from xport_etl.normalize.values import PageError
from xport_etl.schemas import ETL_REJECTS, STAGED_TABLES
from xport_etl.streams.graph import STREAMS

NOW = datetime(2026, 7, 1)


def _id(case: dict) -> str:
    return f"{case['file']}:{case['name']}"


def normalize(case: dict, rejected_at: datetime = NOW):
    fn = _normalizers()[case["endpoint"]]
    return fn(pages(case), endpoint=case["endpoint"], window_id="w1", rejected_at=rejected_at)


def _text(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def assert_rows(actual: dict[str, list[dict]], expected: dict[str, list[dict]]) -> None:
    """Each expected table has exactly the expected rows (in order), with the listed values."""
    for table, rows in expected.items():
        got = actual.get(table, [])
        assert len(got) == len(rows), f"{table}: {len(got)} rows, expected {len(rows)}: {got}"
        for want, row in zip(rows, got, strict=True):
            assert {k: _text(row[k]) for k in want} == want, table
    for table in set(actual) - set(expected):
        assert actual[table] == [], f"unexpected {table} rows: {actual[table]}"


def assert_rejects(actual: list[dict], expected: list[dict]) -> None:
    assert [r["record_id"] for r in actual] == [e["record_id"] for e in expected], actual
    for got, want in zip(actual, expected, strict=True):
        assert got["reason"].startswith(want["reason"]), (got["reason"], want["reason"])
        assert got["raw_json"] and got["window_id"] == "w1" and got["rejected_at"] == NOW
        assert (got["severity"], got["field"]) == (want.get("severity", "rejected"), want.get("field")), got
        if "raw" in want:
            assert json.loads(got["raw_json"], parse_float=Decimal) == want["raw"], got["raw_json"]


def test_the_corpus_covers_every_normaliser_and_both_levels():
    assert set(_normalizers()) - {"taobao_orders_legacy"} <= {c["endpoint"] for c in CASES}
    assert len(RECORD_CASES) >= 100 and len(PAGE_CASES) >= 15
    names = [_id(c) for c in CASES]
    assert len(names) == len(set(names))


def test_each_normaliser_writes_only_the_tables_its_stream_declares():
    written: dict[str, set[str]] = {}
    for case in RECORD_CASES:
        out = normalize(case)
        written.setdefault(case["endpoint"], set()).update(
            STAGED_TABLES[t].spec.name for t, rows in out.tables.items() if rows
        )
    assert all(written.values()) and set(written) >= {s.name for s in STREAMS.values() if s.scheduled}
    for endpoint, tables in written.items():
        assert tables <= set(STREAMS[endpoint].tables), endpoint


@pytest.mark.parametrize("case", RECORD_CASES, ids=_id)
def test_record_level_problem_is_a_reject_and_the_rest_of_the_page_loads(case):
    out = normalize(case)
    assert_rejects(out.rejects, case["expect"]["rejects"])
    assert_rows(out.tables, case["expect"]["rows"])
    # the staged tables accept every row: Parquet writing cannot crash on what came through
    for table, rows in out.tables.items():
        to_table(rows, STAGED_TABLES[table].spec.arrow_schema())
    to_table(out.rejects, ETL_REJECTS.arrow_schema())
    for reject in out.rejects:  # the raw record is kept as JSON, even when unreadable
        json.loads(reject["raw_json"], parse_int=Decimal, parse_float=Decimal)


@pytest.mark.parametrize("case", PAGE_CASES, ids=_id)
def test_page_level_problem_fails_the_window(case):
    with pytest.raises(PageError) as info:
        normalize(case)
    assert case["expect"]["page_error"] in str(info.value)
    assert len(str(info.value)) < 400  # a reason, not the page


def test_raw_json_of_a_reject_is_the_record_as_served():
    (case,) = [c for c in CASES if c["name"] == "money is 1e30"]
    out = normalize(case)
    (reject,) = out.rejects
    assert json.loads(reject["raw_json"], parse_float=Decimal) == case["pages"][0]["records"][0]


# ---- end to end: land every record-level case as its own window, stage, publish


def _land(data_dir: Path, case: dict, n: int) -> Manifest:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)
    wid = window_id("create", start, start + timedelta(days=1))
    m = Manifest(
        endpoint=case["endpoint"],
        mode="create",
        window_id=wid,
        window_start=start.isoformat(),
        window_end=(start + timedelta(days=1)).isoformat(),
        run_id=f"run-{n}",
        extracted_at=datetime.now(UTC).isoformat(),
    )
    with PageWriter(data_dir, m) as writer:
        for _n, raw, ctx in pages(case):
            writer.write(raw, context=ctx)
        path = writer.commit()
    return read_manifest(path)


def _key(table: str, row: dict) -> tuple:
    return tuple(row[k] for k in STAGED_TABLES[table].spec.key if k in row)


@pytest.mark.slow  # stages and publishes every corpus case
def test_end_to_end_rejects_land_with_reason_and_raw_json_and_good_records_load(tmp_path):
    manifests = [(case, _land(tmp_path, case, n)) for n, case in enumerate(RECORD_CASES)]
    batches = [stage_window(tmp_path, m) for _c, m in manifests]
    result = publish(tmp_path, batches)
    expected = [r for c in RECORD_CASES for r in c["expect"]["rejects"]]
    assert result.rejects == sum(1 for r in expected if r.get("severity", "rejected") == "rejected")
    assert sum(b.counts["warnings"] for b in batches) == len(
        {
            (c["name"], r["record_id"])
            for c in RECORD_CASES
            for r in c["expect"]["rejects"]
            if r.get("severity") == "warning"
        }
    )

    con = duckdb.connect(str(DataLayout.of(tmp_path).warehouse), read_only=True)
    try:
        for case, m in manifests:
            got = con.execute(
                "select record_id, reason, raw_json, severity, field from etl_rejects "
                "where endpoint = ? and window_id = ? order by page, rowid",
                [case["endpoint"], m.window_id],
            ).fetchall()
            want = case["expect"]["rejects"]
            assert [r[0] for r in got] == [w["record_id"] for w in want], _id(case)
            for (_rid, reason, raw, severity, field), w in zip(got, want, strict=True):
                assert reason.startswith(w["reason"]), _id(case)
                assert (severity, field) == (w.get("severity", "rejected"), w.get("field")), _id(case)
                json.loads(raw, parse_int=Decimal, parse_float=Decimal)
            # the raw JSON is the record as served (where the record was readable)
            first = case["pages"][0].get("records", [None])[0]
            if (
                isinstance(first, dict)
                and got
                and got[0][0] == first.get("id")
                and got[0][3] == "rejected"
                and not case.get("bad_bytes")
                and not case.get("replace_text")
            ):
                assert json.loads(got[0][2], parse_int=Decimal, parse_float=Decimal) == first, _id(case)
        # every good record is in its fact table, with the listed values
        checked = 0
        for case in RECORD_CASES:
            for table, rows in case["expect"]["rows"].items():
                spec = STAGED_TABLES[table].spec
                for want in rows:
                    keys = [k for k in spec.key if k in want]
                    where = " and ".join(f"{k} = ?" for k in keys)
                    found = con.execute(
                        f"select * from {spec.name} where {where}",  # noqa: S608 (names from schemas.py)
                        [want[k] for k in keys],
                    ).fetchall()
                    assert found, f"{_id(case)}: no {spec.name} row for {want}"
                    cols = [d[0] for d in con.description]
                    row = dict(zip(cols, found[0], strict=True))
                    for col, value in want.items():
                        assert _text(row[col]) == value, f"{_id(case)}: {spec.name}.{col}"
                    checked += 1
        assert checked > 100
    finally:
        con.close()
