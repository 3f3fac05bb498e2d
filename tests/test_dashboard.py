"""The HTML dashboard: built from a warehouse loaded from a small sandbox world, checked as a file
(self-contained, no network references), against the report views and their table macros (it
keeps no copy of a report's SQL; in another zone it shows the macros' rows, in the warehouse's zone
the views'; a warehouse published before the macros gains them on its next publish), and in a real headless browser
(Debian's chromium): every chart drew an SVG, the stuck-orders table has rows, no script errors,
with the network off.
A screenshot is kept as test-artifacts/dashboard.png."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import struct
import subprocess
import time
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.factories.warehouse import as_published_before_the_report_macros
from xport_etl.load.connect import connect_reader
from xport_etl.report import dashboard
from xport_etl.report.dashboard import (
    build_dashboard,
    collect,
    monthly_report,
    monthly_reports,
    warehouse_tz,
)
from xport_etl.report.views import reports
from xport_etl.settings import Settings

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHART_IDS = (
    "chart-spend",
    "chart-channels",
    "chart-refunds",
    "chart-after-sale",
    "chart-fulfilment",
    "chart-carriers",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    # network off: every host name fails to resolve and any proxying goes to a closed port, so
    # the page can only draw from what the file itself holds
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)


@pytest.fixture(scope="module")
def data_dir(sandbox_warehouse):
    """A published warehouse from a small world: both platforms, refunds, parcels, stuck orders
    (the session's: copy it to change it)."""
    return sandbox_warehouse


@pytest.fixture(scope="module")
def built(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dashboard-html") / "dashboard.html"
    t0 = time.perf_counter()
    path = build_dashboard(data_dir, out)
    elapsed = time.perf_counter() - t0
    print(f"dashboard rendered in {elapsed:.2f}s, {path.stat().st_size / 1e6:.1f} MB")
    assert elapsed < 30
    return path


# --- the data ----------------------------------------------------------------------------------


def test_warehouse_has_what_the_dashboard_shows(data_dir):
    d = collect(data_dir)
    assert {r["platform"] for r in d.spend} == {"taobao", "1688"}
    assert sum(r["refund_amount"] for r in d.spend) > 0
    assert d.carriers and d.fulfilment and d.after_sale and d.channels
    con = connect_reader(data_dir)
    try:
        stuck = _rows(con, "select * from rpt_stuck_orders")
    finally:
        con.close()
    assert d.stuck_total == len(stuck) > 0
    # the page holds each platform/carrier/currency group's first rows, in the view's order
    assert [r for r in stuck if r in d.stuck] == d.stuck
    for group in {(r["platform"], r["carrier"], r["currency"]) for r in stuck}:
        rows = [r for r in stuck if (r["platform"], r["carrier"], r["currency"]) == group]
        assert [r for r in d.stuck if (r["platform"], r["carrier"], r["currency"]) == group] == rows[
            : dashboard.STUCK_LIMIT
        ]
    assert d.last_load is not None and d.row_counts["fct_orders"] > 0


@pytest.mark.parametrize("view", sorted(monthly_reports()))
def test_the_macros_at_the_warehouse_zone_equal_the_views(data_dir, view):
    con = connect_reader(data_dir)
    try:
        tz = warehouse_tz(con)
        from_view = monthly_report(con, view, tz, use_view=True)
        from_macro = monthly_report(con, view, tz, use_view=False)
    finally:
        con.close()
    assert from_view and from_macro == from_view


def _rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, list(params))
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]


def test_the_dashboard_keeps_no_copy_of_a_reports_sql():
    """Issue 16: a report's SQL exists once, in sql/reports/; the dashboard calls its table macro."""
    source = Path(dashboard.__file__).read_text(encoding="utf-8")
    queries = [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"\bselect\b", node.value, re.I)
    ]
    # months are bucketed in one query of its own only: refund counts, which no report has
    assert [q for q in queries if "date_trunc(" in q or "timezone(" in q] == [dashboard._REFUND_COUNTS_SQL]
    assert source.count("date_trunc(") == 1
    assert set(re.findall(r"\bfct_\w+", dashboard._REFUND_COUNTS_SQL)) == {"fct_refunds"}
    monthly = ("rpt_after_sale_monthly", "rpt_fulfilment_monthly", "rpt_spend_by_channel_monthly", "rpt_spend_monthly")
    assert monthly_reports() == {v: f"{v}_at" for v in monthly}


@pytest.mark.parametrize("tz", ["UTC", "America/Los_Angeles"])
def test_figures_in_another_zone_are_the_macros_rows(data_dir, tz):
    d = collect(data_dir, report_tz=tz)
    con = connect_reader(data_dir)
    try:
        macro = {
            v: [r for r in _rows(con, f"select * from {m}(?)", [tz]) if r["month"] is not None]
            for v, m in monthly_reports().items()
        }
        at_home = _rows(con, "select * from rpt_spend_monthly")
    finally:
        con.close()
    assert d.report_tz == tz != d.warehouse_tz
    assert d.spend == macro["rpt_spend_monthly"]
    assert d.channels == macro["rpt_spend_by_channel_monthly"]
    assert d.fulfilment == macro["rpt_fulfilment_monthly"]
    assert d.after_sale == macro["rpt_after_sale_monthly"]
    assert d.spend != at_home  # the zone moved some months


def test_figures_in_the_warehouse_zone_are_the_views_rows(data_dir):
    d = collect(data_dir)
    con = connect_reader(data_dir)
    try:
        views = {v: _rows(con, f"select * from {v}") for v in monthly_reports()}
        at_literal_zone = {v: _rows(con, f"select * from {m}('Asia/Shanghai')") for v, m in monthly_reports().items()}
    finally:
        con.close()
    assert d.report_tz == d.warehouse_tz == "Asia/Shanghai"
    assert all(views.values()) and at_literal_zone == views
    assert d.spend == views["rpt_spend_monthly"]
    assert d.channels == views["rpt_spend_by_channel_monthly"]
    assert d.fulfilment == views["rpt_fulfilment_monthly"]
    assert d.after_sale == views["rpt_after_sale_monthly"]


def _view_state(data_dir) -> dict:
    con = connect_reader(data_dir)
    try:
        return {
            r.name: (con.execute(f"describe {r.name}").fetchall(), con.execute(f"select * from {r.name}").fetchall())
            for r in reports()
        }
    finally:
        con.close()


def _macros(data_dir) -> set[tuple[str, str]]:
    con = connect_reader(data_dir)
    try:
        return set(
            con.execute(
                "select database_name, function_name from duckdb_functions() "
                "where function_type = 'table_macro' and function_name like 'rpt_%'"
            ).fetchall()
        )
    finally:
        con.close()


def test_a_warehouse_published_before_the_macros_gains_them_on_its_next_publish(data_dir, tmp_path):
    import duckdb

    from xport_etl.layout import DataLayout
    from xport_etl.run.tasks import refresh_warehouse

    upgraded = _view_state(data_dir)
    assert _macros(data_dir) == {("warehouse", m) for m in monthly_reports().values()}
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    shutil.copyfile(DataLayout.of(data_dir).warehouse, DataLayout.of(old_dir).warehouse)
    con = duckdb.connect(str(DataLayout.of(old_dir).warehouse))
    try:
        as_published_before_the_report_macros(con)
    finally:
        con.close()
    assert _macros(old_dir) == set()
    assert _view_state(old_dir) == upgraded  # the previous version's views: same columns, types, rows

    refresh_warehouse(Settings(data_dir=old_dir))  # the next publish (the reports DAG's refresh)
    assert _macros(old_dir) == {("warehouse", m) for m in monthly_reports().values()}
    assert _view_state(old_dir) == upgraded
    refresh_warehouse(Settings(data_dir=old_dir))  # and every publish after it replaces them
    assert _view_state(old_dir) == upgraded


def test_another_time_zone_moves_month_buckets_but_not_totals(data_dir):
    shanghai = collect(data_dir, report_tz="Asia/Shanghai")
    la = collect(data_dir, report_tz="America/Los_Angeles")
    assert la.warehouse_tz == "Asia/Shanghai"

    def by_month(d):
        return {(r["month"], r["platform"]): r["orders"] for r in d.spend}

    assert sum(by_month(la).values()) == sum(by_month(shanghai).values())
    assert by_month(la) != by_month(shanghai)  # orders near midnight change month
    # the zone is a bound parameter: a hostile zone name is rejected before any query
    with pytest.raises(ValueError, match="unknown time zone"):
        collect(data_dir, report_tz="UTC'; drop table fct_orders; --")


def test_the_page_opens_on_the_months_in_start_inclusive_end_exclusive_and_holds_them_all(data_dir, tmp_path):
    everything = collect(data_dir)
    d = collect(data_dir, start=date(2026, 2, 1), end=date(2026, 4, 1))
    assert len(d.months) > 2 and d.months == everything.months  # every month, to widen the period in the page
    assert (d.spend, d.fulfilment, d.after_sale) == (everything.spend, everything.fulfilment, everything.after_sale)
    assert dashboard.page_data(d)["initial"] == {
        "from": "2026-02-01",
        "to": "2026-03-01",
        "platform": "",
        "currency": "CNY",
        "carrier": "",
    }
    html = build_dashboard(
        data_dir, tmp_path / "r.html", start=date(2026, 2, 1), end=date(2026, 4, 1), report_tz="America/Los_Angeles"
    ).read_text()
    assert "2026-02 – 2026-03" in html and "America/Los_Angeles" in html
    assert "warehouse views use Asia/Shanghai" in html
    with pytest.raises(ValueError, match="empty date range"):
        collect(data_dir, start=date(2026, 4, 1), end=date(2026, 4, 1))


# --- the file ----------------------------------------------------------------------------------


def test_load_quality_lists_every_endpoint_of_the_recent_runs(data_dir):
    d = collect(data_dir)
    assert {r["endpoint"] for r in d.quality} >= {"taobao_orders", "alibaba_orders"}
    for r in d.quality:
        assert r["runs"] > 0 and r["rejected"] >= 0 and r["warnings"] >= 0


def test_load_quality_shows_rejected_and_warnings_and_the_fields_that_warned(tmp_path):
    from tests.factories.landed import land
    from tests.factories.served import order, page, sub
    from xport_etl.run.state import load_windows

    records = [
        order(id="1", receiver="{x"),
        order(id="2", receiver=5, subOrderVOS=[sub(logisticNumber={"a": 1})]),
        order(id=None),
    ]
    m = land(tmp_path, [page(records)])
    load_windows(Settings(data_dir=tmp_path), [m.directory / "manifest.json"])
    d = collect(tmp_path)
    (row,) = d.quality
    # (records: what extraction counted; these pages were written by hand)
    assert (row["endpoint"], row["runs"], row["rejected"], row["warnings"]) == ("taobao_orders", 1, 1, 3)
    assert row["warned_fields"] == "receiver (2), subOrderVOS[].logisticNumber (1)"
    html = dashboard.render_html(d)
    assert 'id="load-quality-table"' in html and "subOrderVOS[].logisticNumber (1)" in html


def _markup_outside_scripts(html: str) -> str:
    return re.sub(r"(<script\b[^>]*>).*?(</script>)", r"\1\2", html, flags=re.S | re.I)


def test_html_is_self_contained(built):
    html = built.read_text(encoding="utf-8")
    markup = _markup_outside_scripts(html)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", markup, re.I)
    assert not re.search(r"<link\b", markup, re.I)
    assert not re.search(r"<img\b|<iframe\b|@import|@font-face", markup, re.I)
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", markup, re.I)
    assert not re.search(r"url\(\s*[\"']?\s*(?:https?:)?//", markup, re.I)
    assert "https://" not in markup and "http://" not in markup
    # plotly.js itself is inline (the bundle is megabytes), and so is every figure
    assert len(html) > 1_000_000 and "Plotly" in html
    for chart in CHART_IDS:
        assert f'<div class="chart" id="{chart}"' in html
    data = json.loads(re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S)[1])
    assert data["stuck"] and data["spend"] and data["channels"] and data["months"]
    for control in ("from", "to", "platform", "currency", "carrier"):
        assert f'<select id="filter-{control}">' in html
    # header facts
    assert "warehouse.duckdb" in html and "Asia/Shanghai" in html and "last successful load" in html
    assert "UTC" in html and "orders" in html


def test_cli_writes_the_dashboard_and_registers_its_command(data_dir, tmp_path, capsys):
    from xport_etl.cli import build_parser, main

    out = tmp_path / "cli.html"
    assert (
        main(
            [
                "dashboard",
                "--out",
                str(out),
                "--data-dir",
                str(data_dir),
                "--start",
                "2026-01",
                "--end",
                "2026-07",
                "--report-tz",
                "Asia/Shanghai",
            ]
        )
        == 0
    )
    assert out.exists() and str(out) in capsys.readouterr().out
    assert main(["dashboard", "--out", str(out), "--data-dir", str(data_dir), "--report-tz", "Mars/Olympus"]) == 2
    assert main(["dashboard", "--out", str(out), "--data-dir", str(tmp_path / "none")]) == 2

    parser = build_parser()
    args = parser.parse_args(["dashboard", "--out", "x.html", "--start", "2026-01"])
    assert args.func is dashboard.cmd_dashboard and args.start == date(2026, 1, 1) and args.end is None
    assert "--report-tz" in parser._subparsers._group_actions[0].choices["dashboard"].format_help()


# --- in a browser ------------------------------------------------------------------------------


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).exists():
        if os.environ.get("XPORT_REQUIRE_BROWSER"):  # CI installs chromium: a skip there would hide a failure
            pytest.fail(f"XPORT_REQUIRE_BROWSER is set but chromium is not at {found}")
        pytest.skip(
            "chromium is not installed (CI installs it: apt-get install -y chromium); "
            "the browser checks of the dashboard need a real browser"
        )
    return found


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    cmd = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


class _DomSummary(HTMLParser):
    """Per chart div: its attributes and whether an ``svg.main-svg`` is inside; the stuck table's
    body rows; the error box."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.charts: dict[str, dict] = {}
        self.open_chart: list[tuple[str, int]] = []
        self.stuck_rows = 0
        self.in_stuck_body = None
        self.errors_attrs: dict | None = None
        self.errors_text = ""
        self.in_errors = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "div" and "chart" in classes and (a.get("id") or "").startswith("chart-"):
            self.charts[a["id"]] = {"attrs": a, "svg": False}
            self.open_chart.append((a["id"], len(self.stack)))
        if tag == "svg" and "main-svg" in classes:
            for chart_id, _ in self.open_chart:
                self.charts[chart_id]["svg"] = True
        if tag == "table" and a.get("id") == "stuck-table":
            self.in_stuck_body = len(self.stack)
        if tag == "tr" and self.in_stuck_body is not None and "tbody" in self.stack[self.in_stuck_body :]:
            self.stuck_rows += 1
        if tag == "pre" and a.get("id") == "dashboard-errors":
            self.errors_attrs = a
            self.in_errors = True
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID or tag not in self.stack:
            return
        while self.stack:
            if self.stack.pop() == tag:
                break
        # an element opened at stack depth d is closed once the stack is back to d entries
        self.open_chart = [(c, d) for c, d in self.open_chart if len(self.stack) > d]
        if self.in_stuck_body is not None and len(self.stack) <= self.in_stuck_body:
            self.in_stuck_body = None
        if tag == "pre":
            self.in_errors = False

    def handle_data(self, data):
        if self.in_errors:
            self.errors_text += data


def _dom(tmp_path: Path, page: Path) -> _DomSummary:
    result = _run_chromium(tmp_path, "--dump-dom", page.resolve().as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    summary = _DomSummary()
    summary.feed(result.stdout)
    summary.close()
    summary.raw = result.stdout
    return summary


@pytest.mark.slow  # a real browser (chromium)
def test_every_chart_draws_in_a_real_browser_with_the_network_off(built, tmp_path):
    t0 = time.perf_counter()
    dom = _dom(tmp_path, built)
    print(f"chromium --dump-dom: {time.perf_counter() - t0:.1f}s")
    assert dom.errors_attrs is not None, "the error box is missing from the page"
    assert dom.errors_attrs.get("data-count") == "0" and not dom.errors_text.strip(), (
        f"script errors in the page: {dom.errors_text.strip()}"
    )
    assert set(dom.charts) == set(CHART_IDS)
    for chart_id, chart in dom.charts.items():
        assert chart["attrs"].get("data-rendered") == "1", f"{chart_id} did not finish drawing"
        assert chart["svg"], f"{chart_id} has no svg.main-svg"
    assert f'data-charts-rendered="{len(CHART_IDS)}"' in dom.raw
    assert dom.stuck_rows > 0
    assert dom.stuck_rows <= dashboard.STUCK_LIMIT


@pytest.mark.slow  # a real browser (chromium)
def test_a_script_error_is_visible_in_the_dom(built, tmp_path):
    """The harness above would notice: a page with a failing script and a chart that cannot draw."""
    broken = tmp_path / "broken.html"
    html = built.read_text(encoding="utf-8")
    html = html.replace("</body>", '<script>throw new Error("boom from test");</script></body>')
    broken.write_text(html, encoding="utf-8")
    dom = _dom(tmp_path, broken)
    assert dom.errors_attrs.get("data-count") == "1"
    assert "boom from test" in dom.errors_text


@pytest.mark.slow  # a real browser (chromium)
def test_screenshot_at_1280_px(built, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    result = _run_chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400", built.resolve().as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 2400)
    assert len(data) > 100_000  # charts, not a blank page


# --- the filters, driven in the browser --------------------------------------------------------


class Page:
    """One page in a headless Chromium, driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: commands on the browser's fd 3, replies on its fd 4; JSON
    messages ended by NUL), with the network off as above. No driver library: what a person does
    with the page's controls is done here by the page's own DOM (select an option, fire
    ``change``), and what it shows is read back from the DOM and from Plotly's drawn traces."""

    def __init__(self, tmp_path: Path, url: str):
        import select as _select

        self._select = _select
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def plug():  # in the child, before exec: the pipes become its fds 3 and 4
            os.dup2(commands_r, 3)
            os.dup2(replies_w, 4)

        profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=plug,
            pass_fds=(3, 4),
        )
        os.close(commands_r)
        os.close(replies_w)
        self._next, self._buffer = 0, b""
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60):
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next:
                    assert "error" not in reply, reply["error"]
                    return reply["result"]
            left = deadline - time.monotonic()
            assert left > 0, f"no reply to {method} within {timeout} s"
            if self._select.select([self._replies], [], [], left)[0]:
                chunk = os.read(self._replies, 1 << 20)
                assert chunk, "the browser closed the pipe"
                self._buffer += chunk

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited), as JSON."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait(self, condition: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        # (a page still loading may have no body yet: not there yet, rather than an error)
        while not self.js(f"(() => {{ try {{ return Boolean({condition}); }} catch (e) {{ return false; }} }})()"):
            assert time.monotonic() < deadline, f"the page never got to: {condition}"
            time.sleep(0.05)

    def renders(self) -> int:
        return int(self.js("document.body.getAttribute('data-render-count') || '0'"))

    def choose(self, **controls: str) -> None:
        """Select each control's option (``filter-<name>``) as a person would, one change at a
        time, and wait for the page to draw."""
        for name, value in controls.items():
            before = self.renders()
            found = self.js(
                f"""(() => {{
                    const el = document.getElementById("filter-{name}");
                    if (![...el.options].some(o => o.value === {json.dumps(value)})) return false;
                    el.value = {json.dumps(value)};
                    el.dispatchEvent(new Event("change", {{bubbles: true}}));
                    return true;
                }})()"""
            )
            assert found, f"filter-{name} offers no option {value!r}"
            self.wait(f"Number(document.body.getAttribute('data-render-count')) > {before}")

    def shown(self) -> dict:
        """What the page shows: the KPI cards' texts, every chart's drawn traces, the stuck rows."""
        return self.js(
            """(() => {
                const kpis = {};
                document.querySelectorAll(".kpi").forEach(k => {
                    kpis[k.id] = [k.querySelector(".value").textContent, k.querySelector(".note").textContent];
                });
                const charts = {};
                document.querySelectorAll(".chart").forEach(c => {
                    charts[c.id] = (c.data || []).map(t => ({name: t.name, x: t.x, y: t.y, meta: t.meta || null}));
                });
                const stuck = [...document.querySelectorAll("#stuck-table tbody tr")].map(
                    tr => [tr.getAttribute("data-order"), tr.getAttribute("data-tracking")]);
                return {kpis, charts, stuck, more: document.getElementById("stuck-more").textContent,
                        errors: window.__dashboardErrors, rendered: document.body.getAttribute("data-charts-rendered")};
            })()"""
        )

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._commands)
        os.close(self._replies)


@pytest.fixture(scope="module")
def mixed_dir(data_dir, tmp_path_factory):
    """The sandbox warehouse plus a few orders in another currency (the sandbox has only CNY):
    orders and a refund in USD, one stuck; so that the currency control has something to choose."""
    import duckdb

    from xport_etl.layout import DataLayout

    directory = tmp_path_factory.mktemp("dashboard-mixed")
    shutil.copyfile(DataLayout.of(data_dir).warehouse, DataLayout.of(directory).warehouse)
    con = duckdb.connect(str(DataLayout.of(directory).warehouse))
    try:
        as_of = con.execute("select max(updated_at) from fct_orders").fetchone()[0]
        for i, (days, status, channel) in enumerate(
            [(40, "shipped", "shopee"), (70, "completed", "lazada"), (5, "paid", "shopee")]
        ):
            created = as_of - timedelta(days=days)
            con.execute(
                "insert into fct_orders (platform, order_id, status, order_source, currency, goods_amount, "
                "shipping_amount, total_amount, line_count, created_at, paid_at, updated_at) "
                "values ('taobao', ?, ?, ?, 'USD', ?, 1.25, ? + 1.25, 1, ?, ?, ?)",
                [f"usd-{i}", status, channel, 100 + i * 10.5, 100 + i * 10.5, created, created, created],
            )
        con.execute(
            "insert into fct_refunds (platform, refund_id, order_id, line_id, status, refund_amount, currency, "
            "created_at, updated_at) values ('taobao', 'usd-r', 'usd-0', 'x', 'succeeded', 20.10, 'USD', ?, ?)",
            [as_of - timedelta(days=30), as_of - timedelta(days=30)],
        )
    finally:
        con.close()
    return directory


LEAD_TIME_STAGES = ("created_to_paid", "paid_to_first_event", "first_event_to_delivered")


def _expected(con, f: dict) -> dict:
    """What the page must show for the filters ``f``, from the report views filtered by SQL."""

    def rows(sql, params=()):
        return _rows(con, sql, params)

    period = "month between ?::date and ?::date"
    plat = "(? = '' or platform = ?)"
    carr = "(? = '' or carrier = ?)"
    p = [f["from"], f["to"], f["platform"], f["platform"]]
    spend = rows(f"select * from rpt_spend_monthly where {period} and {plat} and currency = ?", [*p, f["currency"]])
    channels = rows(
        f"select month, order_source, sum(net_spend) as net from rpt_spend_by_channel_monthly "
        f"where {period} and {plat} and currency = ? group by all",
        [*p, f["currency"]],
    )
    after = rows(f"select * from rpt_after_sale_monthly where {period} and {plat}", p)
    fulfil = rows(f"select * from rpt_fulfilment_monthly where {period} and {plat}", p)
    carriers = rows(f"select * from rpt_carrier_performance where {carr}", [f["carrier"], f["carrier"]])
    stuck_where = f"{plat} and {carr} and currency = ?"
    stuck_params = [f["platform"], f["platform"], f["carrier"], f["carrier"], f["currency"]]
    stuck = con.execute(
        f"select order_id, coalesce(tracking_number, '') from rpt_stuck_orders where {stuck_where} limit ?",
        [*stuck_params, dashboard.STUCK_LIMIT],
    ).fetchall()
    stuck_total = con.execute(f"select count(*) from rpt_stuck_orders where {stuck_where}", stuck_params).fetchone()[0]
    refund_counts = rows(
        "select date_trunc('month', timezone('Asia/Shanghai', timezone('UTC', created_at)))::date as month, "
        "count(*) as n from fct_refunds where status = 'succeeded' and (? = '' or platform = ?) group by all",
        [f["platform"], f["platform"]],
    )
    return {
        "spend": spend,
        "channels": channels,
        "after": after,
        "fulfil": fulfil,
        "carriers": carriers,
        "stuck": [list(r) for r in stuck],
        "stuck_total": stuck_total,
        "refund_counts": {
            r["month"].isoformat()[:7]: r["n"] for r in refund_counts if f["from"] <= r["month"].isoformat() <= f["to"]
        },
    }


def _money_text(total, currency: str) -> str:
    sign = {"CNY": "¥", "USD": "$"}[currency]
    cents = int(total * 100)
    return ("-" if cents < 0 else "") + f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def _by_month(rows: list[dict], value) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r["month"].isoformat()[:7]] = out.get(r["month"].isoformat()[:7], 0) + value(r)
    return out


def _assert_page_equals_views(shown: dict, want: dict, f: dict) -> None:
    charts, kpis = shown["charts"], shown["kpis"]
    assert shown["errors"] == [] and shown["rendered"] == str(len(CHART_IDS))
    spend = want["spend"]
    # KPI cards
    net = sum((r["net_spend"] for r in spend), Decimal(0))
    refunded = sum((r["refund_amount"] for r in spend), Decimal(0))
    orders = sum(r["orders"] for r in spend)
    assert kpis["kpi-net"] == [_money_text(net, f["currency"]), f"{orders:,} orders, cancelled excluded"]
    assert kpis["kpi-refunded"][0] == _money_text(refunded, f["currency"])
    lines = sum(r["lines"] for r in want["after"])
    refunded_lines = sum(r["refunded_lines"] for r in want["after"])
    assert kpis["kpi-refund-rate"][1] == f"{refunded_lines:,} of {lines:,} order lines"
    if lines:
        assert abs(float(kpis["kpi-refund-rate"][0].rstrip("%")) - 100 * refunded_lines / lines) <= 0.0051
    parcels = sum(r["parcels"] for r in want["carriers"])
    delivered = sum(r["delivered"] for r in want["carriers"])
    assert kpis["kpi-delivered"][1] == f"{delivered:,} of {parcels:,} parcels (all time)"
    assert kpis["kpi-stuck"][0] == f"{want['stuck_total']:,}"
    # monthly spend: one bar trace per platform shown (goods + shipping), and the net spend line
    bars = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in charts["chart-spend"] if "gross" in t["name"]}
    for platform in {r["platform"] for r in spend}:
        gross = _by_month(
            [r for r in spend if r["platform"] == platform], lambda r: r["goods_amount"] + r["shipping_amount"]
        )
        label = dashboard.PLATFORM_LABELS[platform]
        assert {m: v for m, v in bars.pop(f"{label} gross").items() if v} == {
            m: float(v) for m, v in gross.items() if v
        }
    assert bars == {}, f"platforms drawn that the filter excludes: {list(bars)}"
    (line,) = [t for t in charts["chart-spend"] if t["name"].startswith("net spend")]
    assert dict(zip(line["x"], line["y"], strict=True)) == {
        m: float(v) for m, v in _by_month(spend, lambda r: r["net_spend"]).items()
    }
    # by sales channel
    drawn = {(m, t["name"]): y for t in charts["chart-channels"] for m, y in zip(t["x"], t["y"], strict=True) if y}
    assert drawn == {
        (r["month"].isoformat()[:7], r["order_source"]): float(r["net"]) for r in want["channels"] if r["net"]
    }
    # refunds: amounts by platform, the count line
    refund_bars = {
        (m, t["name"]): y
        for t in charts["chart-refunds"]
        if t["name"] != "refunds (count)"
        for m, y in zip(t["x"], t["y"], strict=True)
        if y
    }
    assert refund_bars == {
        (r["month"].isoformat()[:7], dashboard.PLATFORM_LABELS[r["platform"]]): float(r["refund_amount"])
        for r in spend
        if r["refund_amount"]
    }
    (count_line,) = [t for t in charts["chart-refunds"] if t["name"] == "refunds (count)"]
    assert {m: n for m, n in zip(count_line["x"], count_line["y"], strict=True) if n} == want["refund_counts"]
    # after-sale rate and fulfilment lead times: the view's rows of the platforms shown
    rates = {(m, t["name"]): y for t in charts["chart-after-sale"] for m, y in zip(t["x"], t["y"], strict=True)}
    assert {k: v for k, v in rates.items() if v is not None} == {
        (r["month"].isoformat()[:7], dashboard.PLATFORM_LABELS[r["platform"]]): r["refund_rate"] for r in want["after"]
    }
    lead = {
        (m, t["name"], t["meta"]): y
        for t in charts["chart-fulfilment"]
        for m, y in zip(t["x"], t["y"], strict=True)
        if y is not None
    }
    assert lead == {
        (r["month"].isoformat()[:7], f"{dashboard.PLATFORM_LABELS[r['platform']]} {q}", f"{stage}_{q}_h"): r[
            f"{stage}_{q}_h"
        ]
        for r in want["fulfil"]
        for stage in LEAD_TIME_STAGES
        for q in ("p50", "p90")
        if r[f"{stage}_{q}_h"] is not None
    }
    # carriers
    per = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in charts["chart-carriers"]}
    assert per["delivered"] == {r["carrier"]: r["delivered"] for r in want["carriers"]}
    assert per["failed / rejected"] == {r["carrier"]: r["failed"] for r in want["carriers"]}
    assert per["transit p50"] == {r["carrier"]: r["transit_p50_h"] for r in want["carriers"]}
    # the stuck list: the view's first rows for these filters, in its order, and how many in all
    assert shown["stuck"] == want["stuck"]
    assert (f"of {want['stuck_total']:,}" in shown["more"]) or shown["more"] in (
        f"{want['stuck_total']:,} in all.",
        "Nothing stuck.",
    )


@pytest.mark.slow  # a real browser (chromium)
def test_the_filters_in_the_page_equal_the_views_filtered_the_same_way(mixed_dir, tmp_path):
    """Issue 27.3: period, platform, currency and carrier chosen in the page, in a real browser with
    the network off; every KPI, chart trace and stuck row equals the report views filtered the same
    way in SQL."""
    from xport_etl.load.connect import connect_reader as reader

    page_file = build_dashboard(mixed_dir, tmp_path / "filters.html")
    con = reader(mixed_dir)
    page = Page(tmp_path, page_file.resolve().as_uri())
    try:
        page.wait("document.body.getAttribute('data-render-count') === '1'")
        months = page.js("window.__dashboard.data.months")
        carrier = con.execute(
            "select carrier from rpt_stuck_orders where carrier is not null and platform = 'taobao' "
            "group by all order by count(*) desc limit 1"
        ).fetchone()[0]
        f = {"from": months[0], "to": months[-1], "platform": "", "currency": "CNY", "carrier": ""}
        _assert_page_equals_views(page.shown(), _expected(con, f), f)  # as it opens: everything, in CNY
        steps = [
            {"platform": "taobao"},
            {"from": months[1], "to": months[3]},
            {"carrier": carrier},
            {"platform": "1688"},
            {"currency": "USD", "platform": "", "carrier": ""},
            {"from": months[-2], "to": months[-1]},
        ]
        for step in steps:
            page.choose(**step)
            f.update(step)
            assert page.js("window.__dashboard.filters()") == f
            shown = page.shown()
            _assert_page_equals_views(shown, _expected(con, f), f)
        assert shown["kpis"]["kpi-net"][0].startswith("$")  # the USD rows, on their own
        before = page.renders()
        page.js("document.getElementById('filter-reset').click()")
        page.wait(f"Number(document.body.getAttribute('data-render-count')) > {before}")
        f = {"from": months[0], "to": months[-1], "platform": "", "currency": "CNY", "carrier": ""}
        _assert_page_equals_views(page.shown(), _expected(con, f), f)
    finally:
        page.close()
        con.close()


@pytest.mark.slow  # a real browser (chromium)
def test_an_empty_warehouse_draws_without_errors(tmp_path):
    """No months, no currency, no carrier: the controls are empty and every chart says so."""
    from xport_etl.run.tasks import refresh_warehouse

    data = tmp_path / "empty"
    data.mkdir()
    refresh_warehouse(Settings(data_dir=data))
    page = build_dashboard(data, tmp_path / "empty.html")
    assert dashboard.page_data(collect(data))["initial"]["from"] == ""
    dom = _dom(tmp_path, page)
    assert dom.errors_attrs.get("data-count") == "0", dom.errors_text
    assert f'data-charts-rendered="{len(CHART_IDS)}"' in dom.raw and dom.stuck_rows == 0
    assert "no data for these filters" in dom.raw and "Nothing stuck." in dom.raw
