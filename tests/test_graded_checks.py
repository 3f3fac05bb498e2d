"""Graded data checks: each check's severity and threshold (declared in its SQL header, overridden by
the operator's settings) decide whether its violations block the publish; every publish's outcomes
are kept in a ledger and mirrored into ``etl_check_results``."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import duckdb
import pytest

from tests.factories.landed import T0, land
from tests.factories.served import order as served_order
from tests.factories.served import page
from tests.factories.warehouse import line, order, valid_world
from xport_etl.errors import ConfigError
from xport_etl.layout import DataLayout
from xport_etl.load.checks import (
    CheckFailedError,
    evaluate_checks,
    parse_check,
    parse_overrides,
    record_checks,
    run_checks,
)
from xport_etl.load.publish import publish
from xport_etl.load.staging import stage_window
from xport_etl.resources import sql_objects
from xport_etl.run.tasks import refresh_warehouse
from xport_etl.settings import Settings

AMOUNT = "chk_fct_orders__amount_equals_lines"
AS_ERROR = {AMOUNT: {"severity": "error", "threshold": 0}}


def mismatched(tmp_path, oid="1", day=0):
    """A staged window with one order whose served amount (99.00) is not the sum of its lines (12.50)."""
    m = land(
        tmp_path,
        [page([served_order(id=oid, purchaseAmount="99.00", updateTime="2026-02-02 00:00:00")])],
        start=T0 + timedelta(days=day),
    )
    return stage_window(tmp_path, m)


def check_results(data_dir):
    reader = duckdb.connect(str(DataLayout.of(data_dir).warehouse), read_only=True)
    try:
        cols = [
            c
            for (c,) in reader.execute(
                "select column_name from information_schema.columns where table_name = 'etl_check_results' "
                "order by ordinal_position"
            ).fetchall()
        ]
        rows = reader.execute("select * from etl_check_results order by checked_at, check_name").fetchall()
    finally:
        reader.close()
    return [dict(zip(cols, r, strict=True)) for r in rows]


def digest(data_dir):
    return hashlib.sha256(DataLayout.of(data_dir).warehouse.read_bytes()).hexdigest()


# ---- declarations


def test_headers_declare_severity_and_threshold_and_default_to_a_blocking_zero():
    assert parse_check("a", "select 1").severity == "error"
    assert parse_check("a", "select 1").threshold == 0
    spec = parse_check("a", "-- money the source computes\n-- severity: warn\n-- threshold: 10\nselect 1")
    assert (spec.severity, spec.threshold) == ("warn", 10)
    with pytest.raises(ValueError, match="severity"):
        parse_check("a", "-- severity: fatal\nselect 1")


def test_the_policy_of_the_shipped_checks():
    specs = {name: parse_check(name, body) for name, body in sql_objects("checks")}
    keys = [n for n in specs if n.endswith(("__unique_key", "__not_null_key", "__has_order", "__has_parcel"))]
    assert len(keys) == 12
    assert all((specs[n].severity, specs[n].threshold) == ("error", 0) for n in keys)
    for name in (AMOUNT, "chk_fct_refunds__amount_within_line"):
        assert specs[name].severity == "warn"
    assert specs["chk_all__no_future_timestamps"].severity == "error"


# ---- operator overrides


def test_an_override_from_the_environment_is_parsed_and_validated():
    s = Settings.from_env({"XPORT_CHECK_OVERRIDES": json.dumps(AS_ERROR)})
    assert s.check_overrides == AS_ERROR
    assert Settings.from_env({}).check_overrides == {}
    assert Settings(check_overrides={AMOUNT: {"threshold": 3}}).check_overrides == {AMOUNT: {"threshold": 3}}


@pytest.mark.parametrize(
    "raw,needle",
    [
        ('{"chk_no_such_check": {"severity": "warn"}}', "chk_no_such_check"),
        ('{"chk_fct_orders__amount_equals_lines": {"severity": "fatal"}}', "fatal"),
        ('{"chk_fct_orders__amount_equals_lines": {"threshold": -1}}', "threshold"),
        ('{"chk_fct_orders__amount_equals_lines": {"threshold": "ten"}}', "threshold"),
        ('{"chk_fct_orders__amount_equals_lines": {"severty": "warn"}}', "severty"),
        ('{"chk_fct_orders__amount_equals_lines": "warn"}', "severity"),
        ("{not json", "XPORT_CHECK_OVERRIDES"),
        ('["chk_fct_orders__amount_equals_lines"]', "XPORT_CHECK_OVERRIDES"),
    ],
)
def test_a_bad_override_is_a_configuration_error(raw, needle):
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env({"XPORT_CHECK_OVERRIDES": raw})


def test_publish_refuses_an_unknown_override(tmp_path):
    with pytest.raises(ConfigError, match="chk_typo"):
        publish(tmp_path, [], check_overrides={"chk_typo": {"severity": "warn"}})
    assert not DataLayout.of(tmp_path).warehouse.exists()
    with pytest.raises(ConfigError, match="chk_typo"):
        parse_overrides({"chk_typo": {}})


# ---- grading


def test_a_threshold_passes_up_to_n_violations_and_fails_above(con):  # noqa: F811
    valid_world(con)
    overrides = {AMOUNT: {"severity": "error", "threshold": 2}}
    for oid in ("3", "4"):
        order(con, oid, datetime(2026, 1, 10), goods="99.00")
        line(con, oid, oid + "1", "10.00")
    result = {r.name: r for r in evaluate_checks(con, overrides=overrides)}[AMOUNT]
    assert (result.violations, result.outcome, result.threshold) == (2, "pass", 2)
    run_checks(con, overrides=overrides)

    order(con, "5", datetime(2026, 1, 10), goods="99.00")
    line(con, "5", "51", "10.00")
    result = {r.name: r for r in evaluate_checks(con, overrides=overrides)}[AMOUNT]
    assert (result.violations, result.outcome) == (3, "error")
    with pytest.raises(CheckFailedError, match=AMOUNT + r".*3 violations"):
        run_checks(con, overrides=overrides)


def test_warn_and_thresholded_checks_run_in_full_and_skipped_ones_say_so(con):  # noqa: F811
    valid_world(con)
    order(con, "3", datetime(2026, 1, 10), goods="99.00")
    line(con, "3", "31", "10.00")
    record_checks(con, evaluate_checks(con))
    results = {r.name: r for r in evaluate_checks(con, changed=set())}
    assert results[AMOUNT].how == "ran" and results[AMOUNT].violations == 1
    assert results["chk_fct_refunds__amount_within_line"].how == "ran"
    skipped = results["chk_fct_orders__unique_key"]
    assert (skipped.how, skipped.outcome, skipped.violations) == ("skipped", "skipped", None)
    # a threshold makes an error check count its violations in full too
    results = {
        r.name: r
        for r in evaluate_checks(con, changed=set(), overrides={"chk_fct_orders__unique_key": {"threshold": 1}})
    }
    assert results["chk_fct_orders__unique_key"].how == "ran"
    # the state did not pass the warn check (it had a violation), so flipping it to an error check
    # runs it in full rather than trusting an earlier pass
    with pytest.raises(CheckFailedError, match=AMOUNT):
        run_checks(con, changed=set(), overrides=AS_ERROR)


# ---- publishing


def test_a_warn_check_with_violations_publishes_and_records_them(tmp_path):
    result = publish(tmp_path, [mismatched(tmp_path)], run_id="run-warn")
    assert result.warehouse == str(DataLayout.of(tmp_path).warehouse)
    rows = check_results(tmp_path)
    assert {r["check_name"] for r in rows} == {name for name, _ in sql_objects("checks")}
    assert {r["run_id"] for r in rows} == {"run-warn"}
    amount = next(r for r in rows if r["check_name"] == AMOUNT)
    assert (amount["severity"], amount["threshold"], amount["violations"], amount["outcome"]) == ("warn", 0, 1, "warn")
    assert json.loads(amount["sample_keys"]) == [["taobao", "1", "99.00", "12.50"]]
    assert isinstance(amount["checked_at"], datetime)
    assert {r["outcome"] for r in rows if r["check_name"] != AMOUNT} == {"pass"}
    # history: the next publish adds its own rows, under a new run id
    publish(tmp_path, [])
    rows = check_results(tmp_path)
    assert len({r["run_id"] for r in rows}) == 2 and len(rows) == 2 * len(sql_objects("checks"))


def test_an_error_check_blocks_and_its_results_appear_after_the_next_successful_publish(tmp_path):
    publish(tmp_path, [mismatched(tmp_path)], run_id="run-1")
    before = digest(tmp_path)
    with pytest.raises(CheckFailedError) as failure:
        publish(tmp_path, [mismatched(tmp_path, oid="2", day=1)], run_id="run-blocked", check_overrides=AS_ERROR)
    message = str(failure.value)
    assert AMOUNT in message and "2 violations" in message and '"2"' in message  # name, count, a sample key
    assert digest(tmp_path) == before
    assert "run-blocked" not in {r["run_id"] for r in check_results(tmp_path)}
    ledger = (tmp_path / "state" / "check_results.jsonl").read_text().splitlines()
    assert {json.loads(x)["run_id"] for x in ledger} == {"run-1", "run-blocked"}

    publish(tmp_path, [], run_id="run-3")
    rows = check_results(tmp_path)
    assert [r["run_id"] for r in rows if r["check_name"] == AMOUNT] == ["run-1", "run-blocked", "run-3"]
    blocked = next(r for r in rows if r["run_id"] == "run-blocked" and r["check_name"] == AMOUNT)
    assert (blocked["severity"], blocked["violations"], blocked["outcome"]) == ("error", 2, "error")
    assert len(json.loads(blocked["sample_keys"])) == 2
    assert len(rows) == 3 * len(sql_objects("checks"))  # mirrored once each, never twice


def test_an_operator_override_flips_a_warn_check_to_error_through_the_pipeline(tmp_path):
    publish(tmp_path, [mismatched(tmp_path)])
    before = digest(tmp_path)
    refresh_warehouse(Settings(data_dir=tmp_path))  # warn: publishes
    settings = Settings.from_env({"XPORT_CHECK_OVERRIDES": json.dumps(AS_ERROR)}, data_dir=tmp_path)
    after_warn = digest(tmp_path)
    assert after_warn != before
    with pytest.raises(CheckFailedError, match=AMOUNT):
        refresh_warehouse(settings)
    assert digest(tmp_path) == after_warn


def test_an_existing_warehouse_without_the_results_table_migrates(tmp_path):
    publish(tmp_path, [mismatched(tmp_path)], run_id="old")
    old = duckdb.connect(str(DataLayout.of(tmp_path).warehouse))  # as published before the table existed
    old.execute("drop table etl_check_results")
    old.execute("delete from etl_settings where key like 'check_results%'")
    old.close()
    publish(tmp_path, [], run_id="new")
    rows = check_results(tmp_path)
    assert {r["run_id"] for r in rows} == {"old", "new"}
    assert len(rows) == 2 * len(sql_objects("checks"))


def test_status_shows_the_last_publishs_checks_with_violations(tmp_path, capsys):
    from xport_etl.cli import main

    publish(tmp_path, [mismatched(tmp_path)])
    assert main(["status", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert AMOUNT in out and "warn" in out
    assert "chk_fct_orders__unique_key" not in out  # passed: not listed
