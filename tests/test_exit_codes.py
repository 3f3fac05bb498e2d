"""One line, never a traceback (issue 22.6): every documented exit code provoked through the CLI,
and the operator- or data-caused failures that printed a traceback: a cut-short or corrupt
``pages.jsonl.gz``, unbounded settings (``XPORT_TIMEOUT=inf``), out-of-range dates, a missing
optional extra, a corrupt warehouse; and the messages of 22.8 (closing quotes kept, the flag named
when the flag was given)."""

from __future__ import annotations

import gzip
import pickle
import re
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.factories.landed import land
from tests.factories.served import order, page
from xport_etl.cli import build_parser, main

REPO = Path(__file__).resolve().parent.parent


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    """``xport-etl argv`` in-process: (exit code, stdout, stderr); a usage error exits from argparse."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> tuple[str, str]:
    """The ``error:`` and ``hint:`` lines of an expected failure (and nothing else)."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 2, err
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: "), err
    return lines[0], lines[1]


# ---- every documented exit code


def _documented_codes() -> dict[str, set[int]]:
    """The exit codes each document lists: the CLI's docstring, the README, docs/operations.md."""
    import xport_etl.cli

    doc = xport_etl.cli.__doc__ or ""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    readme = readme[readme.index("Exit codes: ") :].split("\n\n")[0]
    operations = (REPO / "docs/operations.md").read_text(encoding="utf-8")
    operations = operations[operations.index("## Exit codes") :].split("\n## ")[0]
    return {
        "cli.py": {int(c) for c in re.findall(r"(?:^|[:;] )(\d) ", doc[doc.index("Exit codes") :].split("\n\n")[0])},
        "README.md": {int(c) for c in re.findall(r"(?:: |; )(\d) ", readme)},
        "docs/operations.md": {int(c) for c in re.findall(r"^\| (\d) \|", operations, re.M)},
    }


def test_the_documents_list_the_same_exit_codes():
    codes = _documented_codes()
    assert codes["cli.py"] == codes["README.md"] == codes["docs/operations.md"] == set(range(9)), codes


def _provoke(code: int, tmp_path: Path, published: Path, monkeypatch, stack: ExitStack) -> list[str]:
    """The argv (and environment) that make the CLI exit with ``code``."""
    tmp_path.mkdir(exist_ok=True)
    data = ["--data-dir", str(published)]
    if code == 0:
        return ["report", "spend", *data]
    if code == 1:  # a bug: anything unexpected
        import xport_etl.report.reports

        def broken(*args, **kwargs):
            raise RuntimeError("a bug")

        monkeypatch.setattr(xport_etl.report.reports, "render_report", broken)
        return ["report", "spend", *data]
    if code == 2:
        monkeypatch.setenv("XPORT_TIMEOUT", "inf")
        return ["status", *data]
    if code == 3:  # nothing listens on port 9: refused at once, no retries in `check`
        return ["check", "--base-url", "http://127.0.0.1:9", "--data-dir", str(tmp_path)]
    if code == 4:
        monkeypatch.setenv("XPORT_CHECK_OVERRIDES", '{"chk_fct_orders__amount_equals_lines": {"severity": "error"}}')
        land(tmp_path, [page([order(id="1", purchaseAmount="99.00")])])  # the lines sum to 12.50
        return ["load", "--quiet", "--data-dir", str(tmp_path)]
    if code == 5:
        m = land(tmp_path, [page([order(id=str(i)) for i in range(50)])])
        pages = m.directory / "pages.jsonl.gz"
        pages.write_bytes(pages.read_bytes()[:-30])  # cut short
        return ["load", "--quiet", "--data-dir", str(tmp_path)]
    if code == 6:
        return ["status", "--check-freshness", "1", "--data-dir", str(tmp_path)]
    if code == 7:
        (tmp_path / "warehouse.duckdb").write_bytes(b"not a database " * 1000)
        return ["report", "spend", "--data-dir", str(tmp_path)]
    if code == 8:
        from xport_etl.run.plan import run_lock

        stack.enter_context(run_lock(tmp_path))  # held by "another run" (another open file: flock refuses it)
        return [
            "run",
            "--start",
            "2026-01-01",
            "--end",
            "2026-01-02",
            "--no-wait",
            "--quiet",
            "--data-dir",
            str(tmp_path),
        ]
    raise AssertionError(code)


@pytest.mark.parametrize("code", range(9))
def test_every_documented_exit_code_through_the_cli(code, tmp_path, published, capsys, monkeypatch):
    with ExitStack() as stack:
        argv = _provoke(code, tmp_path / "fresh", published, monkeypatch, stack)
        got, out, err = _run(capsys, *argv)
    assert got == code, err
    if code == 0:
        assert out.startswith("rpt_spend_monthly") and err == ""
    elif code == 1:
        assert "Traceback" in err and "RuntimeError: a bug" in err
    else:
        _one_line(err)


# ---- a landed file cut short or corrupt: the file, the window, and how to land it again


def _damage(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "cut short":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "corrupt":
        data = bytearray(raw)
        for i in range(20, len(data) - 8, 7):  # the deflate stream, not the header or the trailer
            data[i] ^= 0x5A
        path.write_bytes(bytes(data))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "not gzip":
        path.write_bytes(b"this is not a gzip file at all\n" * 10)
    elif how == "bad checksum":
        path.write_bytes(raw[:-8] + bytes(8))


@pytest.mark.parametrize("sql", ["1", "0"], ids=["sql normaliser", "python normaliser"])
@pytest.mark.parametrize("how", ["cut short", "corrupt", "empty", "not gzip", "bad checksum"])
def test_load_over_a_damaged_pages_file_is_one_line_naming_the_file_the_window_and_the_fix(
    tmp_path, capsys, monkeypatch, how, sql
):
    monkeypatch.setenv("XPORT_SQL_NORMALIZER", sql)
    m = land(tmp_path, [page([order(id=str(i), sellerOrderNumber="x" * 200) for i in range(200)])])
    pages = m.directory / "pages.jsonl.gz"
    _damage(pages, how)
    code, _, err = _run(capsys, "load", "--quiet", "--data-dir", str(tmp_path))
    assert code == 5, err
    error, hint = _one_line(err)
    assert str(pages) in error and f"taobao_orders window {m.window_id}" in error
    command = re.search(r"`(xport-etl extract [^`]+)`", hint)
    assert command is not None and "then run `xport-etl load`" in hint, hint
    args = build_parser().parse_args(shlex.split(command.group(1))[1:])  # the command exists as written
    assert (args.endpoint, args.mode, args.start, args.end) == ("taobao_orders", "create", m.window_start, m.window_end)
    assert not (tmp_path / "warehouse.duckdb").exists()  # nothing was published


def test_a_damaged_fan_out_window_says_to_move_it_aside(tmp_path):
    from xport_etl.extract.landing import PagesUnreadableError

    exc = PagesUnreadableError(
        "raw/taobao_logistics/keys_x/pages.jsonl.gz", "taobao_logistics", "keys_20260601T000000Z_0001", "x"
    )
    assert exc.again().startswith("move taobao_logistics/keys_20260601T000000Z_0001 out of the raw root")
    again = pickle.loads(pickle.dumps(exc))  # it crosses back from a staging process
    assert (type(again), str(again), again.again()) == (PagesUnreadableError, str(exc), exc.again())


def test_an_intact_file_still_reads_whole(tmp_path):
    from xport_etl.extract.landing import open_pages, read_pages

    m = land(tmp_path, [page([order(id="1")]), page([order(id="2")])])
    assert [n for n, _, _ in read_pages(m.directory)] == [1, 2]
    with open_pages(m.directory) as f:
        assert f.read() == gzip.decompress((m.directory / "pages.jsonl.gz").read_bytes())


# ---- settings: bounded, ASCII, named as given


@pytest.mark.parametrize(
    "var,value,needle",
    [
        ("XPORT_TIMEOUT", "inf", "XPORT_TIMEOUT must be a finite number, got 'inf'"),
        ("XPORT_TIMEOUT", "nan", "XPORT_TIMEOUT must be a finite number, got 'nan'"),
        ("XPORT_TIMEOUT", "-5", "XPORT_TIMEOUT must be > 0 seconds, got -5.0"),
        ("XPORT_TIMEOUT", "1e9", "XPORT_TIMEOUT must be at most 3,600 seconds, got 1000000000.0"),
        ("XPORT_RATE_LIMIT", "1e999", "XPORT_RATE_LIMIT must be a finite number, got '1e999'"),
        ("XPORT_SAFETY_LAG", "1e12", "XPORT_SAFETY_LAG must be at most 604,800 seconds"),
        ("XPORT_FRESHNESS_HOURS", "Infinity", "XPORT_FRESHNESS_HOURS must be a finite number, got 'Infinity'"),
        ("XPORT_CALLBACK_READ_TIMEOUT", "1_0", "XPORT_CALLBACK_READ_TIMEOUT must be a finite number, got '1_0'"),
        ("XPORT_WORKERS", "٣", "XPORT_WORKERS must be a positive integer, got '٣'"),
        ("XPORT_WORKERS", "100000", "XPORT_WORKERS must be at most 1,024 workers, got 100000"),
        (
            "XPORT_CALLBACK_MAX_BODY",
            "9" * 5000,
            "XPORT_CALLBACK_MAX_BODY must be a positive integer, got '99999999999999999999'… (5,000 characters)",
        ),
        (
            "XPORT_CALLBACK_MAX_CONNECTIONS",
            "1e3",
            "XPORT_CALLBACK_MAX_CONNECTIONS must be a positive integer, got '1e3'",
        ),
    ],
)
def test_numeric_settings_are_bounded_and_ascii(tmp_path, capsys, monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    code, _, err = _run(capsys, "status", "--data-dir", str(tmp_path))
    assert code == 2
    error, _ = _one_line(err)
    assert error == f"error: {needle}" or error.startswith(f"error: {needle}"), error


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--workers", "0"], "error: --workers must be a positive integer, got 0"),
        (["--workers", "5000"], "error: --workers must be at most 1,024 workers, got 5000"),
        (["--rate-limit", "-1"], "error: --rate-limit must be >= 0 (0 = unlimited), got -1.0"),
        (["--rate-limit", "inf"], "error: xport-etl status: argument --rate-limit: expected a number, got 'inf'"),
        (["--report-tz", "Mars/Olympus"], "error: --report-tz: unknown time zone 'Mars/Olympus' (try 'Asia/Shanghai')"),
        (["--base-url", "ftp://x"], "error: --base-url must be an http(s) URL, got 'ftp://x'"),
        (
            ["--limit", "-3"],
            "error: xport-etl status: argument --limit: expected a whole number from 1 to 100,000, got '-3'",
        ),
        (
            ["--check-freshness", "nan"],
            "error: xport-etl status: argument --check-freshness: expected a number above 0 up to 8784, got 'nan'",
        ),
    ],
)
def test_a_bad_flag_is_named_as_the_flag(tmp_path, capsys, argv, needle):
    code, _, err = _run(capsys, "status", *argv, "--data-dir", str(tmp_path))
    assert code == 2
    error, _ = _one_line(err)
    assert error == needle


def test_the_variable_is_named_when_the_variable_was_set(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XPORT_WORKERS", "0")
    assert _one_line(_run(capsys, "status", "--data-dir", str(tmp_path))[2])[0] == (
        "error: XPORT_WORKERS must be a positive integer, got 0"
    )
    # the flag wins over the variable, and then it is the flag's value that is checked
    assert _run(capsys, "status", "--workers", "2", "--data-dir", str(tmp_path))[0] == 0


@pytest.mark.parametrize(
    "env",
    [{"XPORT_WORKERS": "abc"}, {"XPORT_PAGE_SIZE": "abc"}, {"XPORT_BASE_URL": "ftp://x"}, {"XPORT_REPORT_TZ": "x"}],
)
def test_messages_keep_their_quotes(tmp_path, capsys, monkeypatch, env):
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    error, _ = _one_line(_run(capsys, "status", "--data-dir", str(tmp_path))[2])
    assert error.count("'") % 2 == 0 and re.search(rf"'{re.escape(next(iter(env.values())))}'", error), error


def test_a_missing_key_keeps_its_message_whole(tmp_path, capsys):
    error, _ = _one_line(_run(capsys, "report", "no_such_report", "--data-dir", str(tmp_path))[2])
    assert error.startswith("error: unknown report 'no_such_report'; choose one of: ")


# ---- dates out of range


@pytest.mark.parametrize(
    "start,end,bad",
    [
        ("0001-01-01", "9999-12-31", "0001-01-01"),
        ("2026-01-01", "9999-12-31", "9999-12-31"),
        ("0001-01-01T00:00:00+08:00", "2026-01-01", "0001-01-01T00:00:00+08:00"),
        ("2026-01-01", "9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59-12:00"),
        ("1999-12-31", "2026-01-01", "1999-12-31"),
    ],
)
@pytest.mark.parametrize("command", ["run", "backfill", "extract"])
def test_dates_out_of_range_are_one_line(tmp_path, capsys, command, start, end, bad):
    code, out, err = _run(capsys, command, "--start", start, "--end", end, "--quiet", "--data-dir", str(tmp_path))
    assert code == 2 and out == ""
    error, _ = _one_line(err)
    assert error.startswith(f"error: {bad} is out of range: a window lies between 2000-01-01 and 2100-01-01")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flag,value", [("--chunk-days", "999999999999"), ("--run-days", "0"), ("--chunk-days", "٣")])
def test_window_sizes_are_bounded(tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--start", "2026-01-01", "--end", "2026-01-02", flag, value, "--data-dir", str(tmp_path)])
    assert exit_.value.code == 2
    error, hint = _one_line(capsys.readouterr().err)
    assert f"argument {flag}: expected a whole number from 1 to 36,525" in error
    assert hint == "hint: see `xport-etl run --help`"


# ---- a missing optional extra


def _without(monkeypatch, *modules: str) -> None:
    """Make ``import module`` (and its submodules) fail as it does when the package is not installed."""
    for name in list(sys.modules):
        if name in modules or name.startswith(tuple(m + "." for m in modules)):
            monkeypatch.setitem(sys.modules, name, None)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.parametrize(
    "modules,argv,extra",
    [
        (("plotly", "jinja2", "markupsafe"), ["dashboard", "--out", "{tmp}/d.html"], "dashboard"),
        (("uvicorn", "starlette"), ["callbacks", "serve", "--port", "0"], "callbacks"),
    ],
    ids=["dashboard", "callbacks serve"],
)
def test_a_missing_extra_names_what_to_install(published, capsys, monkeypatch, modules, argv, extra):
    _without(monkeypatch, *modules)
    argv = [a.replace("{tmp}", str(published)) for a in argv]
    code, _, err = _run(capsys, *argv, "--data-dir", str(published))
    assert code == 2, err
    error, hint = _one_line(err)
    command = " ".join(a for a in argv[:2] if not a.startswith("-"))
    assert re.fullmatch(rf"error: `xport-etl {command}` needs ({'|'.join(modules)}), which is not installed", error)
    assert f"pip install 'xport-etl[{extra}]'" in hint


def test_an_s3_raw_root_without_the_s3_extra(tmp_path, capsys, monkeypatch):
    from fsspec.registry import _registry as imported_protocols

    _without(monkeypatch, "s3fs")
    # fsspec keeps the class of a protocol it has imported (an earlier test's s3://): forget it
    for protocol in ("s3", "s3a"):
        monkeypatch.delitem(imported_protocols, protocol, raising=False)
    monkeypatch.setenv("XPORT_RAW_URL", "s3://bucket/raw")
    code, _, err = _run(capsys, "load", "--quiet", "--data-dir", str(tmp_path))
    assert code == 2
    error, _ = _one_line(err)
    assert "s3fs" in error and "install `xport-etl[s3]`" in error


def test_a_redis_budget_without_the_redis_extra(tmp_path, capsys, monkeypatch):
    _without(monkeypatch, "redis")
    monkeypatch.setenv("XPORT_RATE_LIMIT_URL", "redis://127.0.0.1:9/0")
    code, _, err = _run(
        capsys, "run", "--start", "2026-01-01", "--end", "2026-01-02", "--quiet", "--data-dir", str(tmp_path)
    )
    assert code == 2
    assert "pip install 'xport-etl[redis]'" in _one_line(err)[0]


# ---- a corrupt warehouse: move it aside and load


@pytest.mark.parametrize(
    "argv",
    [["report", "spend"], ["status"], ["load", "--quiet"], ["dashboard", "--out", "{tmp}/d.html"]],
    ids=["report", "status", "load", "dashboard"],
)
def test_a_corrupt_warehouse_says_move_it_aside_and_load(published, capsys, argv):
    warehouse = published / "warehouse.duckdb"
    warehouse.write_bytes(b"\x00garbage" * 5000)
    argv = [a.replace("{tmp}", str(published)) for a in argv]
    code, _, err = _run(capsys, *argv, "--data-dir", str(published))
    assert code == 7, err
    error, hint = _one_line(err)
    assert error.startswith(f"error: cannot open the warehouse {warehouse}: ") and "state/next" not in error
    assert hint == (
        "hint: move the file aside and run `xport-etl load`: every landed window is published again from its raw pages"
    )
    if argv[0] == "load":  # and the advice works (once is enough)
        warehouse.rename(published / "warehouse.duckdb.bad")
        assert main(["load", "--quiet", "--data-dir", str(published)]) == 0


def test_a_window_of_no_pages_is_not_damage(tmp_path):
    # a fan-out window whose every key answered 404 lands a gzip stream with nothing in it
    from xport_etl.extract.landing import read_pages

    m = land(tmp_path, [])
    assert (m.directory / "pages.jsonl.gz").stat().st_size > 0
    assert list(read_pages(m.directory)) == []
