"""Every run that did its job exits 0 (issue 22.1): an empty night, a window in the future, an
incremental run with nothing new, a backfill of a quiet period, a `load` with nothing landed and a
`callbacks consume` with nothing new each end with a summary that says what they found, never a
traceback. Run through the real CLI against the sandbox (its clock is 2026-06-30; nothing was
ordered before 2025-12 or after the clock)."""

from __future__ import annotations

import json

import pytest

from xport_etl.cli import main

SANDBOX = {"seed": 11, "orders": 40}


@pytest.fixture
def cli(sandbox, tmp_path, capsys, monkeypatch):
    """`cli(*argv)` → (exit code, stdout, stderr), against the module's sandbox, in tmp_path."""
    monkeypatch.setenv("XPORT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("XPORT_DATA_DIR", str(tmp_path))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return run


def _summary(out: str) -> list[str]:
    return out.strip().splitlines()


@pytest.mark.parametrize(
    "argv,windows",
    [
        # one window of each of the 3 list endpoints
        pytest.param(["run", "--start", "2025-01-01", "--end", "2025-01-02"], 3, id="a quiet night"),
        pytest.param(["run", "--start", "2027-01-01", "--end", "2027-01-02"], 3, id="a window in the future"),
        # the refunds' 45-day lookback is two windows of at most 31 days
        pytest.param(["run", "--incremental", "--start", "2025-01-01", "--end", "2025-01-02"], 4, id="incremental"),
        # 14 days in windows of 7: 2 windows of each list endpoint
        pytest.param(["backfill", "--start", "2024-01-01", "--end", "2024-01-15"], 6, id="backfill"),
    ],
)
def test_a_run_that_finds_nothing_exits_0_and_says_so(cli, tmp_path, argv, windows):
    code, out, err = cli(*argv, "--quiet")
    assert code == 0, err
    lines = _summary(out)
    assert lines[0] == f"published {tmp_path / 'warehouse.duckdb'}: 0 records in {windows} windows", out
    assert lines[1:3] == ["  nothing new: no rows changed", "  rejected records             0"]
    run_id = lines[3].split()[1]  # the run's id, and how to see it
    assert lines[3:] == [f"run {run_id} (`xport-etl status --run {run_id}` shows its steps)"]
    # the warehouse it published is readable, every report empty
    code, out, err = cli("report", "spend", "--format", "csv")
    assert (code, out) == (0, "month,platform,currency,orders,goods_amount,shipping_amount,refund_amount,net_spend\n")


def test_a_run_with_records_says_how_many(cli):
    code, out, err = cli("run", "--start", "2026-06-20", "--end", "2026-07-01", "--quiet")
    assert code == 0, err
    head = _summary(out)[0]
    records = int(head.split(": ")[1].split(" records")[0].replace(",", ""))
    assert records > 0 and "fct_orders" in out


def test_load_with_nothing_landed_exits_0(cli, tmp_path):
    code, out, err = cli("load", "--quiet")
    assert code == 0, err
    assert (
        out.strip()
        == f"nothing to load: 0 windows landed under {tmp_path}/raw (`xport-etl run` or `extract` lands them)"
    )


def test_load_of_a_data_directory_that_does_not_exist_is_a_configuration_error(cli, tmp_path):
    code, out, err = cli("load", "--quiet", "--data-dir", str(tmp_path / "typo"))
    assert code == 2 and out == ""
    assert err.startswith(f"error: no data directory {tmp_path / 'typo'}")


def test_load_of_empty_windows_publishes_them_and_exits_0(cli, tmp_path):
    assert cli("extract", "--start", "2025-01-01", "--end", "2025-01-02", "--quiet")[0] == 0
    code, out, err = cli("load", "--quiet")
    assert code == 0, err
    assert _summary(out)[0] == f"published {tmp_path / 'warehouse.duckdb'}: 0 records in 1 window"


def test_callbacks_consume_with_nothing_new_exits_0_and_says_so(cli):
    code, out, err = cli("callbacks", "consume")
    assert code == 0, err
    assert json.loads(out)["messages"] == 0
    assert err.strip() == "callbacks: 0 new messages: nothing to refresh"


def test_the_callbacks_summary_counts_what_was_done():
    from xport_etl.callbacks.cli import consume_summary

    line = consume_summary(
        {
            "messages": 3,
            "orders": 2,
            "refunds": 1,
            "rows_written": {"fct_orders": 2, "fct_refunds": 1},
            "dead_lettered": 1,
        }
    )
    assert line == (
        "callbacks: 3 new messages: 2 orders and 1 refunds refreshed, 3 rows written; "
        "1 dead-lettered (see dead-letter.jsonl under the callbacks folder)"
    )


def test_the_summary_of_an_empty_publish_names_no_table():
    from xport_etl.cli import format_result

    text = format_result({"warehouse": "w.duckdb", "batches": 1, "records": 0, "rows_written": {}, "rejects": 0})
    assert text.splitlines() == [
        "published w.duckdb: 0 records in 1 window",
        "  nothing new: no rows changed",
        "  rejected records             0",
    ]
