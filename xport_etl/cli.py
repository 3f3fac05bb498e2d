"""``xport-etl``: every pipeline step without Airflow.

Exit codes: 0 success; 1 unexpected error (a bug: the traceback is printed); 2 bad arguments or
configuration; 3 the API failed (unreachable, bad credentials, retries exhausted) or the shared
rate-limit store (``XPORT_RATE_LIMIT_URL``, Redis) could not be reached; 4 an error data
check failed (nothing was published); 5 bad input data that stopped a window (a malformed page);
6 stale data (``status --check-freshness``).

Times given without an offset (``--start 2026-01-01``) are read in the reporting time zone
(``XPORT_REPORT_TZ``, default Asia/Shanghai: the merchant's business calendar, the same one the
monthly reports use). Give an explicit offset (``2026-01-01T00:00:00+00:00``) to mean UTC.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import traceback
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

EXAMPLES = """examples:
  xport-etl sandbox --port 8765 --seed 7 --orders 2000     serve the sandbox API
  xport-etl check                                          one signed request: what works, what to fix
  xport-etl run --start 2026-01-01 --end 2026-07-01        extract + load a creation-time window
  xport-etl report spend --format csv                      print a report
  xport-etl callbacks serve --port 8780                    receive message callbacks
  xport-etl dashboard --out report.html                    the dashboard as one HTML file
  xport-etl airflow install-dags --to $AIRFLOW_HOME/dags   copy the DAG files into Airflow
"""


class UsageError(Exception):
    """Bad arguments: exit code 2 with a one-line message."""


def _parse_time(text: str, tz: str) -> datetime:
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            value = datetime(d.year, d.month, d.day)
        else:
            value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"not a date or time: {text!r} (use 2026-01-01 or 2026-01-01T08:00:00+08:00)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value


def _settings(args):
    from xport_etl.settings import Settings

    return Settings.from_env(
        base_url=args.base_url,
        access_key=args.access_key,
        user_id=args.user_id,
        data_dir=Path(args.data_dir) if args.data_dir else None,
        rate_limit=args.rate_limit,
        report_tz=args.report_tz,
        sign_recipe=getattr(args, "sign_recipe", None),
    )


class _PageProgress:
    """Rich progress bar fed by the pipeline's progress events (pages and records, with rates)."""

    def __init__(self, quiet: bool = False):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[records]} records"), TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(), disable=quiet or not sys.stderr.isatty(), transient=False,
        )
        self.tasks: dict[str, int] = {}
        self._lock = threading.Lock()  # `run` pages several windows at once, on threads

    def __call__(self, event: dict) -> None:
        if event.get("event") != "page":
            return
        with self._lock:
            self._page(event)

    def _page(self, event: dict) -> None:
        key = f"{event['endpoint']} {event['window']}"
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(key, total=event.get("pages") or None, records=0, rate="")
        task_id = self.tasks[key]
        task = self.progress.tasks[task_id]
        rate = f"{event['records'] / task.elapsed:,.0f} rec/s" if task.elapsed else ""
        self.progress.update(task_id, completed=event["page"], total=event.get("pages") or None,
                             records=f"{event['records']:,}", rate=rate)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)


def cmd_extract(args) -> int:
    from xport_etl.pipeline import extract_window

    s = _settings(args)
    with _PageProgress(args.quiet) as progress:
        path = extract_window(s, args.endpoint, _parse_time(args.start, s.report_tz),
                              _parse_time(args.end, s.report_tz), mode=args.mode, progress=progress)
    print(path)
    return 0


def cmd_load(args) -> int:
    from xport_etl.landing import complete_windows
    from xport_etl.pipeline import load_windows
    from xport_etl.storage import redact

    s = _settings(args)
    manifests = args.manifest or [str(m.directory / "manifest.json")
                                  for m in complete_windows(s.data_dir, raw_url=s.raw_url)]
    if not manifests:
        where = redact(s.raw_url) if s.raw_url else f"{s.data_dir}/raw"
        raise UsageError(f"nothing landed under {where}: run `xport-etl extract` first")
    result = load_windows(s, manifests)
    print(f"published {result['warehouse']}: {result['rows_written']}, {result['rejects']} rejects")
    return 0


def cmd_run(args) -> int:
    from datetime import timedelta

    from xport_etl.pipeline import run_window

    s = _settings(args)
    with _PageProgress(args.quiet) as progress:
        result = run_window(s, _parse_time(args.start, s.report_tz), _parse_time(args.end, s.report_tz),
                            mode=args.mode, incremental=args.incremental,
                            chunk=timedelta(days=args.chunk_days), progress=progress)
    print(f"published {result['warehouse']}: {result['rows_written']}, {result['rejects']} rejects")
    return 0


def cmd_backfill(args) -> int:
    args.incremental = False
    return cmd_run(args)


def cmd_status(args) -> int:
    from xport_etl.reports import format_rows
    from xport_etl.status import check_freshness, freshness, last_checks, last_runs

    s = _settings(args)
    if args.check_freshness is not None:  # for cron / monitoring: exit 6 when stale
        rows = check_freshness(s.data_dir, args.check_freshness)
        print(format_rows("freshness", list(rows[0]), [tuple(r.values()) for r in rows], args.format))
        return 0
    run_id, checks = last_checks(s.data_dir)
    for title, rows in (("last runs", last_runs(s.data_dir, args.limit)), ("freshness", freshness(s.data_dir)),
                        (f"checks with violations in the last publish ({run_id})", checks)):
        if not rows:
            print(f"{title}: none" if run_id and title.startswith("checks") else f"{title}: none yet under {s.data_dir}")
            continue
        columns = list(rows[0])
        print(format_rows(title, columns, [tuple(r[c] for c in columns) for r in rows], args.format))
    return 0


def cmd_report(args) -> int:
    from xport_etl.reports import render_report

    print(render_report(_settings(args), args.name, args.format))
    return 0


def cmd_check(args) -> int:
    from xport_etl.check import check_connection, format_json

    report = check_connection(_settings(args))
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


def cmd_demo(args) -> int:
    from xport_etl.demo import run_demo

    return run_demo(args.demo_args)


def cmd_airflow_install_dags(args) -> int:
    import shutil

    from xport_etl.resources import dag_files

    target = Path(args.to).expanduser()
    files = dag_files()
    if not files:
        raise UsageError("this installation carries no DAG files (a broken install?)")
    target.mkdir(parents=True, exist_ok=True)
    for src in files:
        dest = target / src.name
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)  # the DAG processor never reads a half-written file
        print(dest)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xport-etl", description="Xportcn orders → DuckDB reporting pipeline, without Airflow.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection and storage (default: environment, then the sandbox)")
    g.add_argument("--base-url", help="API base URL (env XPORT_BASE_URL), e.g. https://www.xportcn.com/api")
    g.add_argument("--access-key", help="AccessKey (env XPORT_ACCESS_KEY); the secret comes only from XPORT_ACCESS_SECRET")
    g.add_argument("--user-id", help="user-id header (env XPORT_USER_ID), e.g. 1000001")
    g.add_argument("--data-dir", help="raw pages, Parquet and warehouse.duckdb (env XPORT_DATA_DIR, default ./data)")
    g.add_argument("--rate-limit", type=float, help="requests per second for this access key (env XPORT_RATE_LIMIT, default 10)")
    g.add_argument("--report-tz", help="reporting time zone (env XPORT_REPORT_TZ, default Asia/Shanghai)")
    g.add_argument("--sign-recipe", help="signing recipe (env XPORT_SIGN_RECIPE, default query), e.g. concat; "
                   "`xport-etl check` says which one the API accepts")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g.add_argument("-v", "--verbose", action="store_true", help="log each step")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from xport_etl.sandbox.cli import register as register_sandbox

    register_sandbox(sub)
    from xport_etl.callbacks import register as register_callbacks

    register_callbacks(sub)
    from xport_etl.dashboard import register as register_dashboard

    register_dashboard(sub)
    from xport_etl.docs import register as register_docs

    register_docs(sub)

    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--start", required=True, help="window start, inclusive, e.g. 2026-01-01")
    window.add_argument("--end", required=True, help="window end, exclusive, e.g. 2026-07-01")
    window.add_argument("--mode", default="create", choices=("create", "update"),
                        help="filter on creation time (default) or update time")

    p = sub.add_parser("extract", parents=[common, window], help="land one endpoint's raw pages for a window",
                       description="Page one endpoint for a window and land the raw pages; prints the manifest path.\n"
                                   "example: xport-etl extract --endpoint taobao_orders --start 2026-06-01 --end 2026-07-01",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", default="taobao_orders", help="endpoint name (default taobao_orders)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("load", parents=[common], help="normalise landed windows and publish the warehouse",
                       description="Normalise landed windows to Parquet and publish them into DuckDB atomically.\n"
                                   "example: xport-etl load            (every landed window)",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", action="append", help="a landed window's manifest.json (repeatable; default: all)")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("run", parents=[common, window], help="extract + load every endpoint for a window",
                       description="Extract every implemented endpoint for a window (in chunks) and publish.\n"
                                   "example: xport-etl run --start 2026-01-01 --end 2026-07-01",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunk-days", type=int, default=31, help="split the window into chunks of this many days (default 31)")
    p.add_argument("--incremental", action="store_true",
                   help="each list endpoint reads its declared incremental window for the interval "
                        "(update time, or creation time with a lookback), as the hourly DAG does")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("backfill", parents=[common, window], help="load a past period in bounded windows",
                       description="Extract and publish a past period by creation time, in bounded windows, "
                                   "idempotently and resumably (run the same command again after a crash).\n"
                                   "example: xport-etl backfill --start 2025-01-01 --end 2026-01-01 --chunk-days 7",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunk-days", type=int, default=7, help="window size in days (default 7)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("status", parents=[common], help="the last runs and how fresh each table is",
                       description="Show the last runs from the run ledger and each fact table's freshness.\n"
                                   "example: xport-etl status --limit 5",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=15, help="how many runs to show (default 15)")
    p.add_argument("--check-freshness", type=float, metavar="HOURS",
                   help="exit 6 if a fact table's feeding endpoints have not succeeded within HOURS, e.g. 26")
    p.add_argument("--format", default="table", choices=("table", "csv", "json"), help="output format (default table)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", parents=[common], help="print a report",
                       description="Print a report view from the published warehouse.\n"
                                   "example: xport-etl report spend --format csv",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", help="report name, e.g. spend (= rpt_spend_monthly)")
    p.add_argument("--format", default="table", choices=("table", "csv", "json"), help="output format (default table)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("check", parents=[common], help="diagnose first contact with the API",
                       description="Send one cheap signed request (one record of the Taobao order list) and "
                                   "report, one line each: reachable (DNS, TLS, connect), clock skew, signature "
                                   "accepted (trying the other shipped recipes if refused), user-id accepted, "
                                   "envelope and paging shapes, rate-limit headers. Exit 0 all good, 2 bad "
                                   "configuration, 3 the API refused or could not be reached.\n"
                                   "example: XPORT_BASE_URL=https://www.xportcn.com/api xport-etl check",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", default="text", choices=("text", "json"), help="output format (default text)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("airflow", help="deploy into an Airflow installation",
                       description="Deploy into Airflow. The DAG files import the provider "
                                   "(`pip install xport-airflow-provider`), which registers the `xport` "
                                   "connection type (see docs/deploy-airflow.md).\n"
                                   "example: xport-etl airflow install-dags --to $AIRFLOW_HOME/dags",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    airflow_sub = p.add_subparsers(dest="airflow_command", metavar="ACTION", required=True)
    q = airflow_sub.add_parser("install-dags", help="copy this version's DAG files into a DAGs folder",
                               description="Copy this version's DAG files into DIR (Airflow's "
                                           "[core] dags_folder, or a folder synced to it), replacing older copies; prints each path.\n"
                                           "example: xport-etl airflow install-dags --to $AIRFLOW_HOME/dags",
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("--to", required=True, metavar="DIR", help="the DAGs folder (created if missing)")
    q.set_defaults(func=cmd_airflow_install_dags)

    p = sub.add_parser("demo", help="start the sandbox, run the DAGs through Airflow, print the reports",
                       description="What `make demo` runs. Options after `demo` go to the demo "
                                   "(see `python -m xport_etl.demo --help`).\n"
                                   "example: xport-etl demo --orders 3000 --fresh",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "command", None) == "demo":
        args.demo_args = extra  # everything after `demo` is the demo's own (see its --help)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_command(args)


def run_command(args) -> int:
    from xport_etl.errors import (
        AuthenticationError,
        ConfigError,
        RateLimiterUnavailableError,
        XportError,
    )
    from xport_etl.load import CheckFailedError
    from xport_etl.normalize import PageError
    from xport_etl.status import StaleDataError

    try:
        return args.func(args)
    except (UsageError, ConfigError, KeyError) as exc:
        _fail(str(exc).strip("'\""), "see `xport-etl {} --help`".format(getattr(args, "command", "")))
        return 2
    except FileNotFoundError as exc:
        _fail(str(exc), "check --data-dir / XPORT_DATA_DIR")
        return 2
    except AuthenticationError as exc:
        _fail(str(exc), "check XPORT_ACCESS_KEY, XPORT_ACCESS_SECRET, XPORT_USER_ID and the machine clock")
        return 3
    except RateLimiterUnavailableError as exc:
        _fail(str(exc), "start Redis or fix XPORT_RATE_LIMIT_URL (unset it to share the budget through a "
                        "lock file on this machine only)")
        return 3
    except XportError as exc:
        _fail(str(exc), "is the API reachable at XPORT_BASE_URL? (`xport-etl sandbox` starts a local one)")
        return 3
    except CheckFailedError as exc:
        _fail(str(exc), "the published warehouse is unchanged; see sql/checks/ for what each check means "
                        "and docs/data-checks.md for XPORT_CHECK_OVERRIDES")
        return 4
    except StaleDataError as exc:
        _fail(str(exc), "see `xport-etl status` for the last runs and their errors")
        return 6
    except PageError as exc:
        _fail(str(exc), "the window's raw pages are kept under raw/; re-run the window to fetch it again")
        return 5
    except BrokenPipeError:  # `xport-etl report … | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        _fail("interrupted", "re-run the same command: windows are replaced, never duplicated")
        return 130
    except Exception:
        traceback.print_exc()
        return 1


def _fail(message: str, hint: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    print(f"hint: {hint}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
