"""A load re-runs the data checks over the tables it changed; the rest of the state passed them
when it was published (recorded per check text in ``etl_settings``)."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from tests.factories.landed import T0, land
from tests.factories.served import order, page
from tests.factories.warehouse import PLANTED, valid_world
from xport_etl.layout import DataLayout
from xport_etl.load.checks import CheckFailedError, record_checks, run_checks
from xport_etl.load.publish import publish
from xport_etl.load.staging import stage_window
from xport_etl.resources import sql_objects


def test_a_check_is_skipped_only_when_its_tables_are_unchanged_and_it_passed_this_text(con):  # noqa: F811
    valid_world(con)
    # nothing recorded yet (a warehouse published before checks were recorded): every check runs
    assert set(run_checks(con, changed=set()).values()) == {"ran"}
    record_checks(con)
    done = run_checks(con, changed=set())
    # the warn checks always run in full (they report the whole state's count); the others skip
    warn = {"chk_fct_orders__amount_equals_lines", "chk_fct_refunds__amount_within_line"}
    assert {n for n, how in done.items() if how == "ran"} == warn
    assert {how for n, how in done.items() if n not in warn} == {"skipped"}
    done = run_checks(con, changed={"fct_parcel_events"})
    assert done["chk_fct_parcel_events__not_null_key"] == "ran" and done["chk_fct_orders__unique_key"] == "skipped"

    PLANTED["chk_fct_parcel_events__not_null_key"](con)
    with pytest.raises(CheckFailedError, match="chk_fct_parcel_events__not_null_key"):
        run_checks(con, changed={"fct_parcel_events"})
    with pytest.raises(CheckFailedError, match="chk_fct_parcel_events__not_null_key"):
        run_checks(con)  # None: every check
    # a check whose text changed since this state passed it runs again, changed table or not
    con.execute(
        "update etl_settings set value = 'older text' where key = 'check_passed:chk_fct_parcel_events__not_null_key'"
    )
    with pytest.raises(CheckFailedError, match="chk_fct_parcel_events__not_null_key"):
        run_checks(con, changed=set())


def test_publish_records_the_checks_the_state_passed(tmp_path):
    publish(tmp_path, [stage_window(tmp_path, land(tmp_path, [page([order(id="1")])]))])
    reader = duckdb.connect(str(DataLayout.of(tmp_path).warehouse), read_only=True)
    try:
        recorded = {
            k for (k,) in reader.execute("select key from etl_settings where key like 'check_passed:%'").fetchall()
        }
    finally:
        reader.close()
    assert recorded == {f"check_passed:{name}" for name, _ in sql_objects("checks")}


def test_a_scoped_check_reads_the_merged_keys_and_finds_a_violation_there(con):  # noqa: F811
    valid_world(con)
    record_checks(con)
    # a duplicate event of parcel P1: a scoped check sees it only when P1 was merged by this load
    PLANTED["chk_fct_parcel_events__unique_key"](con)
    done = run_checks(con, changed={"fct_parcel_events"})  # nothing merged: no key to re-check
    assert done["chk_fct_parcel_events__unique_key"] == "ran on the merged keys"
    con.execute("create temp table _merged_fct_parcels as select 'taobao' as platform, 'P1' as tracking_number")
    con.execute("insert into _merged_fct_parcels select platform, tracking_number from fct_parcels")
    with pytest.raises(CheckFailedError, match="chk_fct_parcel_events__unique_key"):
        run_checks(con, changed={"fct_parcel_events"})
    # a check whose text this state did not pass runs in full, scope or not
    con.execute("drop table _merged_fct_parcels")
    con.execute("delete from etl_settings where key = 'check_passed:chk_fct_parcel_events__unique_key'")
    with pytest.raises(CheckFailedError, match="chk_fct_parcel_events__unique_key"):
        run_checks(con, changed={"fct_parcel_events"})


def test_a_load_that_breaks_a_scoped_check_is_not_published(tmp_path):
    # the second publish runs chk_fct_orders__amount_equals_lines on the merged order only
    publish(tmp_path, [stage_window(tmp_path, land(tmp_path, [page([order(id="1")])]))])
    broken = order(id="3", purchaseAmount="99.00", updateTime="2026-02-02 00:00:00")
    m = land(tmp_path, [page([broken])], start=T0 + timedelta(days=1))
    # a warn check by default (it publishes: see test_graded_checks); as an error check with no
    # threshold it may run on the merged keys, and the one broken order stops the publish
    as_error = {"chk_fct_orders__amount_equals_lines": {"severity": "error"}}
    with pytest.raises(CheckFailedError, match="amount_equals_lines"):
        publish(tmp_path, [stage_window(tmp_path, m)], check_overrides=as_error)
