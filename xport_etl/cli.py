"""``xport-etl``: every pipeline step without Airflow.

Exit codes: 0 success; 1 unexpected error (a bug: the traceback is printed); 2 bad arguments or
configuration; 3 the API failed (unreachable, bad credentials, retries exhausted) or the shared
rate-limit store (``XPORT_RATE_LIMIT_URL``, Redis) could not be reached; 4 an error data
check failed (nothing was published); 5 bad input data that stopped a window (a malformed page, or a
landed manifest xport-etl did not write); 6 stale data (``status --check-freshness``); 7 the local
files cannot be used (the data directory or ``--out`` not writable, a file where a directory should
be, the disk full, the warehouse not a DuckDB file); 8 another run is in progress on the data
directory (``run``/``backfill --no-wait``). Every expected failure is one ``error:`` line and one
``hint:`` line on stderr; only a bug prints a traceback (exit 1).

Files the CLI creates get the umask ``XPORT_UMASK`` (default 077: 0600 files, 0700 directories);
see docs/operations.md.

Progress goes to stderr: bars on a terminal, one line per window and step (landed, staged,
published) otherwise, nothing with ``--quiet``. Results go to stdout.

Times given without an offset (``--start 2026-01-01``) are read in the reporting time zone
(``XPORT_REPORT_TZ``, default Asia/Shanghai: the merchant's business calendar, the same one the
monthly reports use). Give an explicit offset (``2026-01-01T00:00:00+00:00``) to mean UTC.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from xport_etl.cliutil import UsageError, _fail, add_setting_flags, int_arg, pipeline_settings, run_command

if TYPE_CHECKING:
    from rich.progress import TaskID

EXAMPLES = """examples:
  xport-etl check                                          one signed request: what works, what to fix
  xport-etl run --start 2026-01-01 --end 2026-07-01        extract + load a creation-time window
  xport-etl report spend --format csv                      print a report
  xport-etl callbacks serve --port 8780                    receive message callbacks
  xport-etl dashboard --out report.html                    the dashboard as one HTML file
  xport-etl airflow install-dags --to $AIRFLOW_HOME/dags   copy the DAG files into Airflow
"""


# the dates a window may span, as typed: Taobao's first order is from 2003, and a window far in the
# future is a typo (`9999-12-31` would be 95,000 windows of 31 days, and times past the year 9999 in
# UTC do not exist); a window in the near future is allowed (it is empty, and says so)
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)
DAYS = int_arg(1, 36_525)  # --chunk-days, --run-days: at most the 100 years a window can span


def _parse_time(text: str, tz: str) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            value = datetime(d.year, d.month, d.day)
        else:
            value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"not a date or time: {text!r} (use 2026-01-01 or 2026-01-01T08:00:00+08:00)") from exc
    if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:  # the wall-clock value: no conversion overflows
        raise UsageError(
            f"{text} is out of range: a window lies between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} "
            "(the API holds nothing older; a later date is a typo)"
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value


# the settings every pipeline command takes as a flag (their declarations in xport_etl.settings)
COMMON_SETTINGS = ("base_url", "access_key", "user_id", "data_dir", "rate_limit", "report_tz", "sign_recipe", "workers")


def _window(args, s) -> tuple[datetime, datetime]:
    """``--start`` and ``--end`` as aware times; refuses an empty or reversed window."""
    start, end = _parse_time(args.start, s.report_tz), _parse_time(args.end, s.report_tz)
    if end <= start:
        raise UsageError(f"--end {args.end} is not after --start {args.start}: the window [start, end) is empty")
    return start, end


_WINDOW = re.compile(r"^([a-z]+)_(\d{8}T\d{6})Z_(\d{8}T\d{6})Z$")
_KEYS = re.compile(r"^keys_\d{8}T\d{6}\d*Z_(\d{4})$")


def window_label(endpoint: str, wid: str, tz: str = "UTC") -> str:
    """What a person reads for a window: its dates in the reporting time zone, as typed.

    ``create_20260531T160000Z_20260607T160000Z`` in Asia/Shanghai is ``2026-06-01 → 2026-06-08``
    (the end exclusive, as ``--end``); a bound that is not a midnight shows its time; an update
    window says so; a fan-out window is ``details, batch 2``.
    """
    m = _WINDOW.match(wid)
    if m:
        zone = ZoneInfo(tz)
        lo, hi = (datetime.strptime(t, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).astimezone(zone) for t in m.groups()[1:])
        midnight = all((t.hour, t.minute, t.second) == (0, 0, 0) for t in (lo, hi))
        fmt = "%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M"
        kind = "" if m.group(1) == "create" else f"{m.group(1)}d "
        return f"{endpoint} {kind}{lo:{fmt}} → {hi:{fmt}}"
    k = _KEYS.match(wid)
    if k:
        return f"{endpoint} details, batch {int(k.group(1)) + 1}"
    return f"{endpoint} {wid}"


class _PageProgress:
    """Shows the pipeline's progress events on stderr (results go to stdout).

    On a terminal: a bar per window (pages, records, rate), and one for each publish; every bar is
    completed when its window is staged or the command ends well. Otherwise (piped, under cron):
    one line per window and step, ``HH:MM:SS landed|staged|publishing|published …``, so that a log
    shows what happened and when, without ``-v``. ``--quiet``: nothing.

    Events (dicts from :mod:`xport_etl.run`'s steps): ``page`` (endpoint, window, page, pages, records),
    ``staged`` (endpoint, window), ``publish`` (``phase`` "start" with ``batches``, then "done"
    with ``rows_written``/``seconds``; without a phase: one line), ``resume`` (plan), ``run``
    (``message``). Unknown events and fields are ignored.
    """

    def __init__(self, quiet: bool = False, report_tz: str = "UTC", *, stream=None, interactive: bool | None = None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.stream = stream or sys.stderr
        self.interactive = (self.stream.isatty() if interactive is None else interactive) and not quiet
        self.quiet = quiet
        self.tz = report_tz
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[records]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(file=self.stream),
            disable=not self.interactive,
            transient=False,
        )
        self.windows: dict[str, dict] = {}
        self._publish_task: TaskID | None = None
        self._lock = threading.Lock()  # `run` pages several windows at once, on threads

    def __call__(self, event: dict) -> None:
        if self.quiet:
            return
        handler = getattr(self, f"_on_{event.get('event')}", None)
        if handler is not None:
            with self._lock:
                handler(event)

    def _say(self, text: str) -> None:
        if self.interactive:
            self.progress.console.print(text, highlight=False)
        else:
            print(f"{time.strftime('%H:%M:%S')} {text}", file=self.stream, flush=True)

    def _window(self, event: dict) -> dict:
        key = f"{event.get('endpoint')}/{event.get('window')}"
        if key not in self.windows:
            label = window_label(str(event.get("endpoint")), str(event.get("window")), self.tz)
            self.windows[key] = {
                "label": label,
                "page": 0,
                "pages": None,
                "records": 0,
                "landed": False,
                "task": None,
                "started": time.monotonic(),
            }
        return self.windows[key]

    def _on_page(self, event: dict) -> None:
        w = self._window(event)
        w.update(
            page=event.get("page") or w["page"],
            pages=event.get("pages") or w["pages"],
            records=event.get("records") or w["records"],
        )
        if self.interactive:
            elapsed = time.monotonic() - w["started"]
            rate = f"{w['records'] / elapsed:,.0f} rec/s" if elapsed > 0 else ""
            if w["task"] is None:
                w["task"] = self.progress.add_task(w["label"], total=w["pages"], records="", rate="")
            self.progress.update(
                w["task"], completed=w["page"], total=w["pages"], records=f"{w['records']:,} records", rate=rate
            )
        elif w["pages"] and w["page"] >= w["pages"]:
            self._landed(w)

    def _landed(self, w: dict) -> None:
        if w["landed"]:
            return
        w["landed"] = True
        if w["task"] is not None:
            total = w["pages"] or w["page"] or 1
            self.progress.update(w["task"], total=total, completed=total)
        elif not self.interactive and w["page"]:  # a window first heard of when staged: its staged line says it
            pages = f"{w['page']:,} page{'' if w['page'] == 1 else 's'}"
            self._say(f"landed {w['label']}: {pages}, {w['records']:,} record{'' if w['records'] == 1 else 's'}")

    def _on_staged(self, event: dict) -> None:
        w = self._window(event)
        self._landed(w)
        if not self.interactive:
            self._say(f"staged {w['label']}")

    def _on_publish(self, event: dict) -> None:
        phase = event.get("phase")
        batches = event.get("batches")
        what = f"{batches} window{'s' if batches != 1 else ''}" if batches is not None else "the warehouse"
        if phase == "start":
            if self.interactive:
                self._publish_task = self.progress.add_task(f"publish {what}", total=None, records="", rate="")
            else:
                self._say(f"publishing {what}")
            return
        rows = event.get("rows_written") or {}
        seconds = event.get("seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
        summary = f"published {what}{took}: {sum(rows.values()):,} rows written" if rows else f"published {what}{took}"
        if self._publish_task is not None:
            self.progress.update(self._publish_task, total=1, completed=1, description=summary)
            self._publish_task = None
        else:
            self._say(summary)

    def _on_resume(self, event: dict) -> None:
        run = f" {event['run_id']}" if event.get("run_id") else ""
        self._say(f"resuming an unfinished run{run} (plan {event.get('plan')})")

    def _on_run(self, event: dict) -> None:
        if event.get("message"):
            self._say(str(event["message"]))

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:  # the command ended well: every window it touched is landed
            with self._lock:
                for w in self.windows.values():
                    self._landed(w)
                if self._publish_task is not None:
                    self.progress.update(self._publish_task, total=1, completed=1)
        self.progress.__exit__(exc_type, *exc)


def _count(n: int, what: str) -> str:
    """``1 record``, ``2,345 records``."""
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def format_result(result: dict) -> str:
    """A load's or run's outcome for people: where it went, how many records in how many windows,
    then rows written per table. A run that found nothing (a quiet night, a window in the future,
    an incremental run with nothing new) says so: it did its job, and its command exits 0."""
    lines = []
    if result.get("resumed"):
        lines.append("resumed an unfinished run")
    if not result.get("warehouse"):
        lines.append("nothing was published: no window was landed")
        return "\n".join(lines + _run_line(result))
    batches = result.get("batches") or 0
    records = result.get("records")
    landed = (
        f"{_count(records, 'record')} in {_count(batches, 'window')}"
        if records is not None
        else _count(batches, "window")
    )
    lines.append(f"published {result['warehouse']}: {landed}")
    rows = dict(sorted((result.get("rows_written") or {}).items()))
    width = max([len("rejected records"), *(len(t) for t in rows)])
    if rows:
        lines += [f"  {table:<{width}}  {n:>12,} rows" for table, n in rows.items()]
    else:
        lines.append("  nothing new: no rows changed" if not records else "  no rows changed")
    lines.append(f"  {'rejected records':<{width}}  {result.get('rejects', 0):>12,}")
    return "\n".join(lines + _run_line(result))


def _run_line(result: dict) -> list[str]:
    """The run's id and how to see its trace, when the result names it."""
    run_id = result.get("run_id")
    return [f"run {run_id} (`xport-etl status --run {run_id}` shows its steps)"] if run_id else []


def cmd_extract(args) -> int:
    from xport_etl.run.paging import extract_window
    from xport_etl.run_ids import new_run_id

    s = pipeline_settings(args)
    start, end = _window(args, s)
    with _PageProgress(args.quiet, s.report_tz) as progress:  # its run is on record if it fails
        path = extract_window(s, args.endpoint, start, end, mode=args.mode, progress=progress, run_id=new_run_id())
    print(path)
    return 0


def cmd_load(args) -> int:
    from xport_etl.extract.landing import complete_windows
    from xport_etl.run.state import load_windows
    from xport_etl.run.steps import step
    from xport_etl.run_ids import new_run_id

    s = pipeline_settings(args)
    manifests = args.manifest or [str(m.directory / "manifest.json") for m in complete_windows(s.layout)]
    if not manifests:  # nothing to do is not a failure (cron runs `load` on an empty night too)
        where = s.layout.raw_shown
        if s.raw_url is None and s.storage_url is None and not s.data_dir.is_dir():  # a typo in --data-dir is, though
            raise UsageError(f"no data directory {s.data_dir}: check --data-dir / XPORT_DATA_DIR")
        print(f"nothing to load: 0 windows landed under {where} (`xport-etl run` or `extract` lands them)")
        return 0
    run_id = new_run_id()
    with _PageProgress(args.quiet, s.report_tz) as progress, step(s.layout, run_id, "run", command="xport-etl load"):
        result = load_windows(s, manifests, progress=progress, run_id=run_id)
    print(format_result(result))
    return 0


def cmd_pull(args) -> int:
    from xport_etl.load.published import PublishedWarehouse

    s = pipeline_settings(args)
    print(PublishedWarehouse(s.layout).pull(Path(args.to)))
    return 0


def cmd_storage_import(args) -> int:
    from xport_etl.stored_import import describe, import_data_dir

    s = pipeline_settings(args)
    print(describe(import_data_dir(s, Path(args.source).expanduser(), with_raw=args.with_raw)))
    return 0


def cmd_run(args) -> int:
    from datetime import timedelta

    from xport_etl.run.engine import run_window
    from xport_etl.run_ids import new_run_id

    s = pipeline_settings(args)
    start, end = _window(args, s)
    with _PageProgress(args.quiet, s.report_tz) as progress:
        result = run_window(
            s,
            start,
            end,
            mode=args.mode,
            incremental=args.incremental,
            chunk=timedelta(days=args.chunk_days),
            span=timedelta(days=args.run_days),
            wait=not args.no_wait,
            progress=progress,
            run_id=new_run_id(),
            command=f"xport-etl {args.command}",
        )
    print(format_result(result))
    return 0


def cmd_backfill(args) -> int:
    args.incremental = False
    return cmd_run(args)


def cmd_check(args) -> int:
    from xport_etl.extract.diagnose import check_connection
    from xport_etl.extract.diagnosis import format_json

    report = check_connection(pipeline_settings(args))
    if args.format == "json":
        print(format_json(report))
    else:
        print(report.format_text(unicode=_can_print("✓✗–")))
    if not report.ok:
        first = report.failed[0]
        _fail(f"{first.name}: {first.detail}", first.hint or "see the report above")
    return report.exit_code


def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def cmd_airflow_install_dags(args) -> int:

    from xport_etl.resources import dag_files, install_dags

    files = dag_files()
    if not files:
        raise UsageError("this installation carries no DAG files (a broken install?)")
    # 0644 files in 0755 folders whatever XPORT_UMASK: the DAG processor may run as another user
    for dest in install_dags(Path(args.to).expanduser(), files):
        print(dest)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as every other failure: one ``error:`` line and one
    ``hint:`` line naming the command's ``--help``, exit 2 (not the whole usage block)."""

    def error(self, message: str):
        _fail(f"{self.prog}: {message}", f"see `{self.prog} --help`")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``xport-etl`` parser, the library's only one: every user command is a subcommand here.

    The pipeline's commands are defined below; those that live beside their step (``callbacks``,
    ``dashboard``, ``docs``, and ``status`` and ``report``, which take the pipeline's shared
    flags as ``parents``) come from their module's ``register(subparsers)``, which adds the
    command to this parser's sub-parser set and sets ``func`` (run through
    :func:`~xport_etl.cliutil.run_command`). No other module builds an ``ArgumentParser``
    (tests/test_cli_help.py checks it). An option or positional that takes one of a fixed set of
    values declares ``choices`` (or a metavar listing them), so that ``--help`` lists them.
    """
    from xport_etl.callbacks import cli as callbacks_cli
    from xport_etl.report import dashboard, docs, reports, status
    from xport_etl.streams import graph

    parser = _Parser(
        prog="xport-etl",
        description="Xportcn orders → DuckDB reporting pipeline, without Airflow.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = _Parser(add_help=False)
    g = common.add_argument_group("connection and storage (default: environment, then the sandbox)")
    add_setting_flags(g, *COMMON_SETTINGS)
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g.add_argument("-v", "--verbose", action="store_true", help="log each step")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    window = _Parser(add_help=False)
    window.add_argument("--start", required=True, help="window start, inclusive, e.g. 2026-01-01")
    window.add_argument("--end", required=True, help="window end, exclusive, e.g. 2026-07-01")
    window.add_argument(
        "--mode",
        default="create",
        choices=("create", "update"),
        help="filter on creation time (default) or update time",
    )

    # the streams with a time window (the others are read by key: run's fan-outs, the callbacks' details)
    extractable = graph.extractable()
    p = sub.add_parser(
        "extract",
        parents=[common, window],
        help="land one endpoint's raw pages for a window",
        description="Page one endpoint for a window and land the raw pages; prints the manifest path.\n"
        f"example: xport-etl extract --endpoint {extractable[0]} --start 2026-06-01 --end 2026-07-01",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--endpoint",
        default=extractable[0],
        choices=extractable,
        help=f"endpoint name (default {extractable[0]})",
    )
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser(
        "load",
        parents=[common],
        help="normalise landed windows and publish the warehouse",
        description="Normalise landed windows to Parquet and publish them into DuckDB atomically.\n"
        "example: xport-etl load            (every landed window)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--manifest", action="append", help="a landed window's manifest.json (repeatable; default: all)")
    p.set_defaults(func=cmd_load)

    no_wait = (
        "when another run or backfill is in progress on the same data directory, refuse (exit 8) "
        "instead of waiting for it to finish"
    )
    run_days = (
        "each bounded run loads this many days (lists, then their fan-outs) and publishes once, "
        "newest first, so the latest period is readable while older ones load (default 31)"
    )
    p = sub.add_parser(
        "run",
        parents=[common, window],
        help="extract + load every endpoint for a window",
        description="Extract every implemented endpoint for a window and publish it, in bounded "
        "runs (newest first) that each publish once.\n"
        "example: xport-etl run --start 2026-01-01 --end 2026-07-01",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--chunk-days", type=DAYS, default=31, help="split the window into chunks of this many days (default 31)"
    )
    p.add_argument("--run-days", type=DAYS, default=31, help=run_days)
    p.add_argument("--no-wait", action="store_true", help=no_wait)
    p.add_argument(
        "--incremental",
        action="store_true",
        help="each list endpoint reads its declared incremental window for the interval "
        "(update time, or creation time with a lookback), as the hourly DAG does",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "backfill",
        parents=[common, window],
        help="load a past period in bounded windows",
        description="Extract and publish a past period by creation time, in bounded runs "
        "(newest first, each published once), idempotently and resumably (run the "
        "same command again after a crash).\n"
        "example: xport-etl backfill --start 2025-01-01 --end 2026-01-01 --chunk-days 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--chunk-days", type=DAYS, default=7, help="window size in days (default 7)")
    p.add_argument("--run-days", type=DAYS, default=31, help=run_days)
    p.add_argument("--no-wait", action="store_true", help=no_wait)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser(
        "pull",
        parents=[common],
        help="write the published warehouse to a local file",
        description="Write the published warehouse to FILE, atomically: what an analyst or a BI "
        "server opens read-only. Under a storage URL (XPORT_STORAGE_URL) it downloads the newest "
        "version, and does nothing when FILE already holds it (FILE.version says which it holds), "
        "so a scheduled pull only downloads what is new.\n"
        "example: XPORT_STORAGE_URL=s3://bucket/xport xport-etl pull --to /srv/bi/warehouse.duckdb",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--to", required=True, metavar="FILE", help="the local file to write, e.g. --to warehouse.duckdb")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser(
        "storage",
        help="move a local deployment onto a storage URL",
        description="Commands for the storage URL (XPORT_STORAGE_URL).\n"
        "example: XPORT_STORAGE_URL=s3://bucket/xport xport-etl storage import --from /srv/xport/data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    storage_sub = p.add_subparsers(dest="storage_command", metavar="COMMAND", required=True)
    q = storage_sub.add_parser(
        "import",
        parents=[common],
        help="publish a local data directory under the storage URL, as its first version",
        description="Publish a local data directory's warehouse under the storage URL as its first "
        "version, with its run and check ledgers and its callback messages not yet consumed, so "
        "that the next run on any host goes on from there (nothing is rebuilt). Refused, with "
        "nothing written, if the storage URL already has a published version. The local "
        "directory is not changed.\n"
        "example: XPORT_STORAGE_URL=s3://bucket/xport xport-etl storage import --from /srv/xport/data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--from", dest="source", required=True, metavar="DIR", help="the local deployment's data directory")
    q.add_argument(
        "--with-raw", action="store_true", help="also copy the raw pages (the audit trail; not needed to run on)"
    )
    q.set_defaults(func=cmd_storage_import)

    # beside their step, with the pipeline's shared flags
    status.register(sub, parents=[common])
    reports.register(sub, parents=[common])

    p = sub.add_parser(
        "check",
        parents=[common],
        help="diagnose first contact with the API",
        description="Send one cheap signed request (one record of the Taobao order list) and "
        "report, one line each: reachable (DNS, TLS, connect), clock skew, signature "
        "accepted (trying the other shipped recipes if refused), user-id accepted, "
        "envelope and paging shapes, rate-limit headers. Exit 0 all good, 2 bad "
        "configuration, 3 the API refused or could not be reached.\n"
        "example: XPORT_BASE_URL=https://www.xportcn.com/api xport-etl check",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", default="text", choices=("text", "json"), help="output format (default text)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "airflow",
        help="deploy into an Airflow installation",
        description="Deploy into Airflow. The DAG files import the provider "
        "(`pip install xport-airflow-provider`), which registers the `xport` "
        "connection type (see docs/deploy-airflow.md).\n"
        "example: xport-etl airflow install-dags --to $AIRFLOW_HOME/dags",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    airflow_sub = p.add_subparsers(dest="airflow_command", required=True)
    q = airflow_sub.add_parser(
        "install-dags",
        help="copy this version's DAG files into a DAGs folder",
        description="Copy this version's DAG files into DIR (Airflow's "
        "[core] dags_folder, or a folder synced to it), replacing older copies; prints each path.\n"
        "example: xport-etl airflow install-dags --to $AIRFLOW_HOME/dags",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("--to", required=True, metavar="DIR", help="the DAGs folder (created if missing)")
    q.set_defaults(func=cmd_airflow_install_dags)

    for register in (callbacks_cli.register, dashboard.register, docs.register):
        register(sub)

    return parser


def main(argv: list[str] | None = None) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):  # a value this terminal cannot encode is escaped, not a traceback
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
