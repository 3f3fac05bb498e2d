"""Tables that never lie (issue 22.2): every table the CLI prints shows every value whole, at any
terminal width, on a terminal and piped, for empty and large results.

The oracle is the command's own ``--format csv``: the screen is read back into records (the rich
table's rows, or the one-block-per-row layout it falls back to) and must equal the CSV's, value
for value, with the columns in the same order. Most widths run in-process (``COLUMNS`` is how a
terminal's width reaches :func:`shutil.get_terminal_size`, the same call the pty run makes); each
command family also runs once in a real pseudo-terminal sized with ``TIOCSWINSZ``, as a person
runs it, and once piped.

The commands that print tables: ``report NAME`` for every report, ``status`` (its three
sections), ``status --section …``, ``status --check-freshness`` and ``status --run ID`` (a run's
trace: six sections, each alone with ``--section``). (``check`` prints one line a step,
``run``/``load`` a few summary lines: no tables.)
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from xport_etl.cli import main
from xport_etl.report.reports import format_rows, report_views, shown

SANDBOX = {"seed": 5, "orders": 20}  # serves the quiet night of the `empty` warehouse
WIDTHS = (60, 80, 120, 200)
REPORTS = sorted(name for name in report_views() if not name.startswith("rpt_"))
STATUS_SECTIONS = ("runs", "freshness", "checks")
TITLES = {"runs": "last runs", "freshness": "freshness", "checks": "checks with violations"}
TRACE_SECTIONS = ("run", "steps", "windows", "tables", "rejects", "checks")
TRACE_TITLES = {
    "steps": "steps",
    "windows": "windows (etl_runs)",
    "tables": "rows written per table",
    "rejects": "rejects and warnings",
    "checks": "checks of its publishes",
}
LONG_ERROR = "the API answered 500 three times in a row\nsecond line of the error " + "x" * 150


@pytest.fixture(scope="module")
def warehouses(sandbox, sandbox_warehouse, tmp_path_factory):
    """Two data directories built once: ``full`` (the session's published sandbox world, plus a
    window whose amounts disagree so that a check warns and a record is rejected, a failed run with a long two-line
    error) and ``empty`` (a run of a quiet night: a warehouse with every table empty)."""
    from tests.factories.landed import land
    from tests.factories.served import order, page
    from xport_etl.ledger import append_run
    from xport_etl.run.engine import run_window
    from xport_etl.settings import Settings

    full = Path(shutil.copytree(sandbox_warehouse, tmp_path_factory.mktemp("full") / "data"))
    empty = tmp_path_factory.mktemp("empty")
    settings = Settings(base_url=sandbox.base_url, data_dir=empty, rate_limit=0)
    start_at, end_at = (datetime.fromisoformat(f"{t}T00:00:00+08:00") for t in ("2025-01-01", "2025-01-02"))
    run_window(settings, start_at, end_at, chunk=timedelta(days=400), span=timedelta(days=400))  # one run
    # lines sum to 12.50: the amount check warns; an order without an id is rejected
    land(full, [page([order(id="9", purchaseAmount="99.00"), order(id=None)])])
    assert main(["load", "--quiet", "--data-dir", str(full)]) == 0
    append_run(
        full,
        {
            "run_id": "r",
            "endpoint": "taobao_orders",
            "window_id": "w",
            "outcome": "failed",
            "error": LONG_ERROR,
            "finished_at": datetime.now(UTC).isoformat(),
            "pages": 0,
            "records": 0,
        },
    )
    return {"full": full, "empty": empty}


# ---- reading a screen back


def _cells(line: str, bar: str) -> list[str]:
    return [c.strip() for c in line.strip()[1:-1].split(bar)]


def screen_records(text: str, columns: list[str]) -> list[tuple[str, ...]] | None:
    """The records shown on ``text`` under exactly ``columns``, as a table or as blocks; None when
    neither a table with that header nor blocks of those columns are on the screen."""
    lines = text.splitlines()
    names = [shown(c) for c in columns]
    found: list[tuple[str, ...]] | None = None
    header: list[str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("┃"):
            header = _cells(line, "┃")
            if header == names:
                found = found or []
        elif line.startswith("│") and header == names:
            assert found is not None
            found.append(tuple(_cells(line, "│")))
        elif re.fullmatch(r"── row [\d,]+ of [\d,]+ ──", line):
            record, i = _block(lines, i + 1, names)
            if record is not None:
                found = (found or []) + [record]
                continue
        i += 1
    return found


def _block(lines: list[str], i: int, names: list[str]) -> tuple[tuple[str, ...] | None, int]:
    """One block starting at ``lines[i]``: ``name  value`` lines, or ``name`` then the value on
    the next line (indented by two spaces when it fits the terminal), in the columns' order."""
    pad = max(len(n) for n in names)
    values = []
    for k, name in enumerate(names):
        if i >= len(lines) or not lines[i].startswith(name):
            return None, i
        rest = lines[i][len(name) :]
        following = names[k + 1] if k + 1 < len(names) else None
        if rest.strip():  # the value beside its name, after the padding
            assert rest.startswith(" " * (pad - len(name) + 2)), lines[i]
            values.append(rest[pad - len(name) + 2 :])
            i += 1
        elif (
            i + 1 < len(lines)
            and not _starts_field(lines[i + 1], following)
            and not lines[i + 1].startswith(("── row", "(one block"))
        ):
            values.append(lines[i + 1].removeprefix("  "))  # moved to its own line
            i += 2
        else:
            values.append("")
            i += 1
    return tuple(values), i


def _starts_field(line: str, name: str | None) -> bool:
    return name is not None and (line == name or line.startswith(name + "  "))


def _csv(text: str) -> tuple[list[str], list[tuple[str, ...]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], [tuple(shown(v) for v in r) for r in rows[1:]]


def assert_whole(screen: str, width: int | None, *sections: tuple[str, str]) -> None:
    """Every value of each ``(title, CSV)`` section is on the screen, whole, in its record and
    column; no line is wider than the terminal unless it holds one value that alone is."""
    values: set[str] = set()
    for title, csv_text in sections:
        columns, rows = _csv(csv_text)
        assert title in screen, (title, screen[:300])
        values |= {v for r in rows for v in r}
        if rows:
            got = screen_records(screen, columns)
            assert got is not None, f"no table or blocks with columns {columns}:\n{screen[:2000]}"
            assert sorted(got) == sorted(rows)
        else:
            for name in columns:  # an empty result still names its columns
                assert re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", screen), (name, screen)
    if width is not None:
        for line in screen.splitlines():
            assert len(line) <= width or line.strip() in values, (width, line)
    if "(one block per row" in screen:
        assert "--format csv prints one line per row)" in screen


def _has_rows(csv_text: str) -> bool:
    return len(csv_text.strip().splitlines()) > 1


def _cli(capsys, monkeypatch, width: int | None, *argv: str) -> tuple[int, str]:
    if width is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(width))
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return code, out


# ---- every report, every status view, every width, in-process


@pytest.mark.parametrize("which", ["full", "empty"])
@pytest.mark.parametrize("name", REPORTS)
def test_every_report_is_whole_at_every_width(warehouses, capsys, monkeypatch, name, which):
    data = ["--data-dir", str(warehouses[which])]
    _, csv_text = _cli(capsys, monkeypatch, None, "report", name, "--format", "csv", *data)
    if which == "full":
        assert _has_rows(csv_text), f"the sandbox's world gives {name} no rows: the test would prove little"
    for width in (*WIDTHS, None):
        _, screen = _cli(capsys, monkeypatch, width, "report", name, *data)
        assert_whole(screen, width, (report_views()[name], csv_text))


@pytest.mark.parametrize("which", ["full", "empty"])
def test_every_status_section_is_whole_at_every_width(warehouses, capsys, monkeypatch, which):
    data = ["--data-dir", str(warehouses[which])]
    csvs = {
        s: _cli(capsys, monkeypatch, None, "status", "--format", "csv", "--section", s, *data)[1]
        for s in STATUS_SECTIONS
    }
    if which == "full":
        assert all(_has_rows(text) for text in csvs.values()), csvs  # every section has rows
    titled = [(TITLES[section], text) for section, text in csvs.items() if _has_rows(text)]
    for width in (*WIDTHS, None):
        _, screen = _cli(capsys, monkeypatch, width, "status", *data)
        assert "(None)" not in screen
        assert_whole(screen, width, *titled)
        for title, text in titled:
            section = next(s for s, t in TITLES.items() if t == title)
            _, alone = _cli(capsys, monkeypatch, width, "status", "--section", section, *data)
            assert_whole(alone, width, (title, text))
    if which == "full":
        assert LONG_ERROR.split("\n")[1] in screen  # the failed run's error is shown, escaped onto one line


def test_the_freshness_check_is_whole_at_every_width(warehouses, capsys, monkeypatch):
    data = ["--check-freshness", "1000", "--data-dir", str(warehouses["full"])]
    _, csv_text = _cli(capsys, monkeypatch, None, "status", *data, "--format", "csv")
    for width in (*WIDTHS, None):
        _, screen = _cli(capsys, monkeypatch, width, "status", *data)
        assert_whole(screen, width, ("freshness", csv_text))


def test_status_before_any_publish_says_so_without_none(tmp_path, capsys, monkeypatch):
    _, screen = _cli(capsys, monkeypatch, 200, "status", "--data-dir", str(tmp_path))
    assert screen.splitlines() == [
        f"last runs: none yet under {tmp_path}",
        f"freshness: none yet under {tmp_path}",
        f"checks: no publish yet under {tmp_path}",
    ]


def _run_ids(capsys, monkeypatch, data: list[str]) -> list[str]:
    _, out = _cli(capsys, monkeypatch, None, "status", "--format", "json", "--section", "runs", *data)
    return [r["run_id"] for r in json.loads(out)["runs"]]


def _trace_csvs(capsys, monkeypatch, run_id: str, data: list[str]) -> list[tuple[str, str]]:
    """``(title, CSV)`` of each section of ``status --run run_id`` that has rows."""
    out = []
    for section in TRACE_SECTIONS:
        argv = ("status", "--run", run_id, "--format", "csv", "--section", section, *data)
        text = _cli(capsys, monkeypatch, None, *argv)[1]
        if _has_rows(text):
            out.append((f"run {run_id}" if section == "run" else TRACE_TITLES[section], text))
    return out


@pytest.mark.parametrize("which", ["full", "empty"])
def test_every_runs_trace_is_whole_at_every_width(warehouses, capsys, monkeypatch, which):
    """``status --run ID`` for every run (a `run` with fan-outs, a `load` whose check warns and whose
    record is rejected, a failed window with a long error; a quiet night's run), every section."""
    data = ["--data-dir", str(warehouses[which])]
    seen: set[str] = set()
    for run_id in _run_ids(capsys, monkeypatch, data):
        titled = _trace_csvs(capsys, monkeypatch, run_id, data)
        seen |= {title for title, _ in titled}
        for width in (*WIDTHS, None):
            _, screen = _cli(capsys, monkeypatch, width, "status", "--run", run_id, *data)
            assert "(None)" not in screen
            assert_whole(screen, width, *titled)
        _, alone = _cli(capsys, monkeypatch, 80, "status", "--run", run_id, "--section", "windows", *data)
        assert_whole(alone, 80, *[(t, c) for t, c in titled if t == TRACE_TITLES["windows"]])
    if which == "full":
        assert set(TRACE_TITLES.values()) <= seen, seen  # every section had rows in some run
        _, screen = _cli(capsys, monkeypatch, 120, "status", "--run", "r", *data)
        assert LONG_ERROR.split("\n")[1] in screen  # the failed window's error, escaped onto one line


def test_a_trace_in_a_real_terminal(warehouses, capsys, monkeypatch):
    data = ["--data-dir", str(warehouses["full"])]
    for run_id in [r for r in _run_ids(capsys, monkeypatch, data) if r != "r"]:  # the load, the run
        screen = _in_pty(["status", "--run", run_id, *data], 80)
        assert_whole(screen, 80, *_trace_csvs(capsys, monkeypatch, run_id, data))


# ---- the rendering itself, with hostile and large values


def _hostile_rows(n: int) -> list[tuple]:
    return [
        (
            f"2006577511{i:010d}",
            Decimal("123456789012345678.90") * (i + 1),
            -i,
            1e-7 * i,
            "中通快递" * (i % 3),
            "[red]not markup[/] [/]" if i % 2 else ":smile: [bold]",
            "a\nb\x1b[31mred\u202eevil" if i % 5 == 0 else "x" * (i % 170),
            None,
            datetime(2026, 6, 1, 12, 0, i % 60),
            True,
        )
        for i in range(n)
    ]


HOSTILE_COLUMNS = ["order_id", "amount", "delta", "rate", "carrier", "markup", "note", "nothing", "at", "flag"]


@pytest.mark.parametrize("width", [*WIDTHS, 400, None])
def test_hostile_and_large_values_are_shown_whole(width):
    rows = _hostile_rows(2000)  # a large result: 0.1 s to render
    screen = format_rows("t", HOSTILE_COLUMNS, rows, width=width)
    csv_text = format_rows("t", HOSTILE_COLUMNS, rows, "csv")
    assert_whole(screen, width, ("t", csv_text))
    assert "\x1b" not in screen and "\u202e" not in screen  # nothing a terminal would act on
    assert "a\\nb\\x1b[31mred\\u202eevil" in screen


def test_a_table_that_fits_is_a_table_with_numbers_right_aligned():
    rows = [("a", Decimal("190"), 1.5), ("bb", Decimal("2.00"), 22.25)]
    text = format_rows("t", ["k", "shipped_orders", "hours"], rows, width=80)
    assert text.splitlines()[1].startswith("┏") and "one block" not in text
    line = next(line for line in text.splitlines() if "22.25" in line)
    assert line.split("│")[2] == "           2.00 " and line.split("│")[3] == " 22.25 "


def test_markup_in_a_value_is_text_not_a_style():
    text = format_rows("t", ["v"], [("[/]",), ("[bold]x[/bold]",)], width=80)
    assert "[/]" in text and "[bold]x[/bold]" in text


# ---- as a person runs it: a real pseudo-terminal, and a pipe


def _in_pty(argv: list[str], columns: int) -> str:
    """Run ``xport-etl argv`` with its stdout on a pseudo-terminal ``columns`` wide (stdin on it
    too, stderr separate); return what the terminal received, line breaks as ``\\n``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "xport_etl.cli", *argv],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    with proc:  # closes its stderr pipe
        err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait(timeout=60) == 0, err
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.mark.parametrize(
    "argv,columns",
    [
        (["report", "stuck_orders"], 60),
        (["report", "fulfilment"], 120),
        (["status"], 80),
        (["status", "--check-freshness", "1000"], 200),
    ],
)
def test_in_a_real_terminal(warehouses, capsys, monkeypatch, argv, columns):
    data = ["--data-dir", str(warehouses["full"])]
    screen = _in_pty([*argv, *data], columns)
    if argv[0] == "report":
        _, csv_text = _cli(capsys, monkeypatch, None, *argv, "--format", "csv", *data)
        assert_whole(screen, columns, (report_views()[argv[1]], csv_text))
    elif "--check-freshness" in argv:
        _, csv_text = _cli(capsys, monkeypatch, None, *argv, "--format", "csv", *data)
        assert_whole(screen, columns, ("freshness", csv_text))
    else:
        sections = [
            (TITLES[s], _cli(capsys, monkeypatch, None, "status", "--format", "csv", "--section", s, *data)[1])
            for s in STATUS_SECTIONS
        ]
        assert_whole(screen, columns, *sections)


def test_piped_a_table_is_as_wide_as_it_needs(warehouses, capsys, monkeypatch):
    data = ["--data-dir", str(warehouses["full"])]
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run(
        [sys.executable, "-m", "xport_etl.cli", "report", "fulfilment", *data], capture_output=True, env=env, check=True
    )
    screen = done.stdout.decode()
    assert "one block" not in screen and max(len(line) for line in screen.splitlines()) > 200
    _, csv_text = _cli(capsys, monkeypatch, None, "report", "fulfilment", "--format", "csv", *data)
    assert_whole(screen, None, ("rpt_fulfilment_monthly", csv_text))


def test_a_terminal_that_cannot_print_box_drawing_gets_ascii_and_escapes(warehouses, monkeypatch):
    # PYTHONIOENCODING=ascii or a latin-1 terminal: no traceback, every value whole (escaped)
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["report", "carrier_performance", "--data-dir", str(warehouses["full"])]) == 0
    sys.stdout.flush()
    screen = raw.getvalue().decode("ascii")
    assert screen.splitlines()[1].startswith("+===") and "| carrier " in screen
    lines = screen.splitlines()
    assert len({len(line) for line in lines[1:]}) == 1  # the columns line up: escapes are measured as printed
    assert re.search(r"\| (\\u[0-9a-f]{4})+ +\|", screen)  # a carrier's name, escaped
