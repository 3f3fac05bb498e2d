"""A self-contained HTML dashboard of the published warehouse.

``build_dashboard(data_dir, out_path)`` reads ``warehouse.duckdb`` read-only and writes one HTML
file that opens without a network: plotly.js is embedded inline, there are no CDN scripts, web
fonts or images. It shows monthly spend by platform with net spend, spend by sales channel,
refunds, fulfilment lead times, the after-sale (refund) rate, carrier performance, the stuck orders
to chase, and the load quality per endpoint: records rejected and records loaded with a warning in
recent runs.

The page filters in itself, with no server: it embeds the report views' rows as JSON and its
script (``templates/dashboard.js``) computes every figure from the rows the controls keep: the
period (months), platform, currency and carrier, each on the figures whose view has that column
(each card says which). Money travels as whole cents and is summed as integers, so a filtered
total equals the view's, filtered the same way, to the cent. The stuck list is embedded as its
counts per platform, carrier, currency and kind, and the first :data:`STUCK_LIMIT` rows of each
platform, carrier and currency: enough to show any filter's first rows and count exactly.

Months are calendar months in the reporting time zone. When that zone is the warehouse's own
(``etl_settings.report_tz``) the monthly figures come straight from the ``rpt_*`` views; for any
other zone, from the views' table macros (``rpt_spend_monthly_at(tz)``: the same SQL, in
``sql/reports/``) with the zone as a bound query parameter. The dashboard keeps no copy of a
report's SQL; its one query of its own is the refund counts (no report has them).

Test hooks: every chart is a ``<div class="chart" id="chart-…">`` that gets ``data-rendered="1"``
once ``Plotly.react`` resolves; ``<body data-render-count>`` counts complete draws (one per filter
change); ``window.__dashboard.shown`` holds the last draw's filters, KPI values, stuck rows and
figure data; ``window.__dashboardErrors`` collects script errors, which are also written into
``<pre id="dashboard-errors">`` so a DOM dump shows them.

CLI: ``xport-etl dashboard --out report.html --data-dir data`` (:func:`register` adds the
command to the ``xport-etl`` parser).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from xport_etl.cliutil import add_setting_flags, settings_from_args
from xport_etl.fsutil import write_atomic
from xport_etl.layout import Where
from xport_etl.load.connect import connect_reader
from xport_etl.load.published import PublishedWarehouse
from xport_etl.report.reports import parse_month
from xport_etl.report.views import WAREHOUSE_TZ_SQL, reports
from xport_etl.settings import DEFAULT_REPORT_TZ
from xport_etl.tables import FACT_TABLES

DEFAULT_TZ = DEFAULT_REPORT_TZ  # the warehouse's default reporting time zone
STUCK_LIMIT = 50
COUNTED_TABLES = (*FACT_TABLES, "etl_rejects")  # row counts on the dashboard
PLATFORMS = ("taobao", "1688")
PLATFORM_LABELS = {"taobao": "Taobao", "1688": "1688"}
PLATFORM_COLORS = {"taobao": "#f97316", "1688": "#2563eb"}
OTHER_COLORS = ("#0d9488", "#9333ea", "#ca8a04", "#db2777")
INK = "#1f2937"
MUTED = "#6b7280"
FONT = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, '
    '"Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", sans-serif'
)

# --- the monthly reports, in a reporting time zone given as a bound parameter --------------------
# Each monthly report's SQL exists once, in sql/reports/: the file is the body of a table macro
# taking the zone (rpt_spend_monthly_at(tz), ...) and the view is that macro at the warehouse's zone.
# The dashboard calls the macro with its own zone bound as a parameter.


def monthly_reports() -> dict[str, str]:
    """The monthly reports: each view of ``sql/reports`` that is a table macro at the warehouse's
    zone, and its macro (``rpt_spend_monthly`` → ``rpt_spend_monthly_at``)."""
    return {r.name: r.macro for r in reports() if r.macro}


# The one query of the dashboard's own: refunds requested and succeeded per refund-creation month,
# for the refunds chart. No report has these counts (rpt_spend_monthly sums succeeded refunds'
# amounts; rpt_after_sale_monthly counts lines per order month), and adding a view for one chart
# would add to the warehouse contract (docs/warehouse.md); so it stays here, zone bound as `?`.
_REFUND_COUNTS_SQL = """
with report_zone as (select ?::varchar as tz)
select date_trunc('month', timezone(z.tz, timezone('UTC', r.created_at)))::date as month,
       r.platform,
       count(*) as requested,
       count(*) filter (where r.status = 'succeeded') as succeeded,
from fct_refunds as r cross join report_zone as z
group by all
order by month, platform
"""


QUALITY_DAYS = 7
# successful runs (distinct run ids: a run loads many windows) in the QUALITY_DAYS before the latest
# run, per endpoint, and the fields that
# warned most (list positions folded: subOrderVOS[3].logisticNumber counts as subOrderVOS[].logisticNumber)
_QUALITY_SQL = """
with
recent as (
    select * from etl_runs
    where outcome = 'success'
      and finished_at >= (select max(finished_at) from etl_runs) - to_days(?::integer)
),
fields as (
    select endpoint, regexp_replace(field, '\\[[0-9]+\\]', '[]', 'g') as field, count(*) as n
    from etl_rejects
    where severity = 'warning'
      and rejected_at >= (select max(finished_at) from etl_runs) - to_days(?::integer)
    group by all
),
top_fields as (
    select endpoint, string_agg(field || ' (' || n || ')', ', ' order by n desc, field) as fields
    from (select *, row_number() over (partition by endpoint order by n desc, field) as rn from fields)
    where rn <= 3
    group by endpoint
),
final as (
    select r.endpoint, count(distinct r.run_id) as runs, sum(r.records) as records, sum(r.rejected) as rejected,
           sum(r.warnings) as warnings, max(r.finished_at) as last_run, any_value(t.fields) as warned_fields
    from recent as r
    left join top_fields as t using (endpoint)
    group by r.endpoint
)
select * from final order by endpoint
"""


def load_quality(con: duckdb.DuckDBPyConnection, days: int = QUALITY_DAYS) -> list[dict]:
    """Per endpoint, its successful runs in the ``days`` before the latest run: records, rejected
    records, records loaded with a warning, and the fields that warned most."""
    return _records(con.execute(_QUALITY_SQL, [days, days]))


def check_tz(tz: str) -> str:
    """The zone name if ``zoneinfo`` knows it; otherwise a ``ValueError`` naming it."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {tz!r} (try 'Asia/Shanghai' or 'UTC')") from None
    return tz


def _records(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def warehouse_tz(con: duckdb.DuckDBPyConnection) -> str:
    """The zone the ``rpt_*`` views bucket months in (``etl_settings.report_tz``, else the default):
    the expression the views pass their macros."""
    return con.execute(f"select {WAREHOUSE_TZ_SQL}").fetchall()[0][0]


def monthly_report(con: duckdb.DuckDBPyConnection, view: str, tz: str, *, use_view: bool | None = None) -> list[dict]:
    """Rows of a monthly report in zone ``tz``: from the view when it already uses ``tz``, else from
    the view's table macro (``rpt_spend_monthly_at(tz)``, the same SQL) with ``tz`` bound as a
    parameter (never spliced into the SQL text)."""
    monthly = monthly_reports()
    if view not in monthly:
        raise KeyError(f"not a monthly report: {view!r}")
    if use_view is None:
        use_view = tz == warehouse_tz(con)
    if use_view:
        return _records(con.execute(f"select * from {view}"))  # view name from monthly_reports() only
    macro = monthly[view]  # a `-- macro:` name of a sql/reports file
    return _records(con.execute(f"select * from {macro}(?)", [tz]))


# --- collecting the data ------------------------------------------------------------------------

# the stuck list as the page needs it: per platform, carrier and currency (the page's stuck filters)
# its rows by kind, and its first STUCK_LIMIT rows in the view's order. Any filter on those three
# is a union of such groups, so its first rows are among the groups' first rows (kept in the view's
# order) and its count is the sum of their counts: the page shows exactly what the view gives.
_STUCK_COUNTS_SQL = """
select platform, carrier, currency, kind, count(*) as n
from rpt_stuck_orders
group by all
order by all
"""
_STUCK_ORDER = "priority desc nulls last, platform, order_id, tracking_number"  # the view's own order
_STUCK_TOP_SQL = f"""
select * exclude (rn)
from (
    select *, row_number() over (partition by platform, carrier, currency order by {_STUCK_ORDER}) as rn
    from rpt_stuck_orders
)
where rn <= ?
order by {_STUCK_ORDER}
"""


@dataclass
class DashboardData:
    """Everything the page holds: the report views' rows (whole: the page filters them itself),
    the header's facts and the initial period (``start`` inclusive, ``end`` exclusive)."""

    warehouse: Path
    report_tz: str
    warehouse_tz: str
    start: date | None
    end: date | None
    last_load: datetime | None
    row_counts: dict[str, int]
    spend: list[dict]
    channels: list[dict]
    refund_counts: list[dict]
    fulfilment: list[dict]
    after_sale: list[dict]
    carriers: list[dict]
    stuck: list[dict]
    stuck_counts: list[dict]
    as_of: datetime | None
    quality: list[dict] = field(default_factory=list)

    @property
    def months(self) -> list[date]:
        found = {
            r["month"]
            for rows in (self.spend, self.channels, self.fulfilment, self.after_sale, self.refund_counts)
            for r in rows
            if r["month"] is not None
        }
        return sorted(found)

    @property
    def stuck_total(self) -> int:
        return sum(r["n"] for r in self.stuck_counts)


def collect(
    data_dir: Where, *, start: date | None = None, end: date | None = None, report_tz: str = DEFAULT_TZ
) -> DashboardData:
    """Everything the dashboard shows, read from the published warehouse over one read-only
    connection (one consistent state even if a load publishes meanwhile). ``start``/``end`` are
    the period the page opens on (months in ``[start, end)``); it holds every month."""
    check_tz(report_tz)
    if start and end and start >= end:
        raise ValueError(f"empty date range: start {start} is not before end {end}")
    con = connect_reader(data_dir)
    try:
        wh_tz = warehouse_tz(con)
        use_view = report_tz == wh_tz

        def monthly(view: str) -> list[dict]:
            return [r for r in monthly_report(con, view, report_tz, use_view=use_view) if r["month"] is not None]

        last_load = con.execute("select max(finished_at) from etl_runs where outcome = 'success'").fetchall()[0][0]
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in COUNTED_TABLES}
        as_of = con.execute(
            "select greatest((select max(updated_at) from fct_orders), (select max(event_at) from fct_parcel_events))"
        ).fetchall()[0][0]
        return DashboardData(
            warehouse=PublishedWarehouse(data_dir).path.resolve(),
            report_tz=report_tz,
            warehouse_tz=wh_tz,
            start=start,
            end=end,
            last_load=last_load,
            row_counts=counts,
            spend=monthly("rpt_spend_monthly"),
            channels=monthly("rpt_spend_by_channel_monthly"),
            refund_counts=[r for r in _records(con.execute(_REFUND_COUNTS_SQL, [report_tz])) if r["month"] is not None],
            fulfilment=monthly("rpt_fulfilment_monthly"),
            after_sale=monthly("rpt_after_sale_monthly"),
            carriers=_records(con.execute("select * from rpt_carrier_performance")),
            stuck=_records(con.execute(_STUCK_TOP_SQL, [STUCK_LIMIT])),
            stuck_counts=_records(con.execute(_STUCK_COUNTS_SQL)),
            as_of=as_of,
            quality=load_quality(con),
        )
    finally:
        con.close()


# --- the page's data ----------------------------------------------------------------------------


def _cents(value) -> int:
    """Money as whole cents: the page sums integers, so a filtered total is exact to the cent."""
    return 0 if value is None else int(Decimal(value).scaleb(2).to_integral_value())


def _num(value) -> float | int | None:
    if value is None or isinstance(value, (int, float)):
        return value
    return float(value)


def _month(value: date) -> str:
    return value.isoformat()


def _fmt_time(value: datetime | None, tz: str) -> str:
    if value is None:
        return ""
    local = value.replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M")


MONEY = ("goods_amount", "shipping_amount", "refund_amount", "net_spend")
STUCK_KINDS = {
    "awaiting_payment": "waiting for payment",
    "paid_no_parcel_event": "not shipped",
    "parcel_no_progress": "parcel stalled",
    "delivery_failed": "delivery attempt failed",
    "refused": "refused by the receiver",
}


def _money_rows(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    return [{"month": _month(r["month"]), **{k: r[k] for k in keys}, **{m: _cents(r[m]) for m in MONEY}} for r in rows]


def _stuck_row(r: dict, tz: str) -> dict:
    return {
        "platform": r["platform"],
        "carrier": r["carrier"],
        "currency": r["currency"],
        "kind": r["kind"],
        "priority": _num(r["priority"]),
        "order_id": r["order_id"],
        "tracking_number": r["tracking_number"] or "",
        "status": r["status"] or "",
        "amount_at_risk": _cents(r["amount_at_risk"]) if r["amount_at_risk"] is not None else None,
        "stage_started_at": _fmt_time(r["stage_started_at"], tz),
        "last_status": r["last_status"] or "",
        "overdue_h": _num(r["overdue_h"]),
    }


def _default_currency(d: DashboardData) -> str:
    """The currency the page opens on: CNY when any spend is in it, else the most common."""
    seen: dict[str, int] = {}
    for r in d.spend:
        seen[r["currency"]] = seen.get(r["currency"], 0) + r["orders"]
    if not seen or "CNY" in seen:
        return "CNY"
    return max(sorted(seen, key=str), key=lambda c: seen[c])


def _initial_period(d: DashboardData) -> tuple[str, str]:
    """The first and last month (inclusive) the page opens on: ``[start, end)`` within the data."""
    months = [m for m in d.months if (d.start is None or m >= d.start) and (d.end is None or m < d.end)]
    if not months:
        months = d.months
    if not months:
        return "", ""
    return _month(months[0]), _month(months[-1])


def page_data(d: DashboardData) -> dict[str, Any]:
    """The JSON the page embeds and filters: the report rows and what its controls offer."""
    first, last = _initial_period(d)
    currencies = sorted({r["currency"] for r in (*d.spend, *d.channels, *d.stuck) if r["currency"]} | {"CNY"})
    carriers = sorted({r["carrier"] for r in (*d.carriers, *d.stuck) if r["carrier"]}, key=str)
    platforms = [p for p in PLATFORMS if p in {r["platform"] for r in (*d.spend, *d.fulfilment, *d.stuck)}]
    return {
        "tz": d.report_tz,
        "months": [_month(m) for m in d.months],
        "platforms": platforms or list(PLATFORMS),
        "platform_labels": PLATFORM_LABELS,
        "platform_colors": PLATFORM_COLORS,
        "other_colors": OTHER_COLORS,
        "currencies": currencies,
        "carriers": carriers,
        "initial": {"from": first, "to": last, "platform": "", "currency": _default_currency(d), "carrier": ""},
        "stuck_limit": STUCK_LIMIT,
        "stuck_kinds": STUCK_KINDS,
        "font": FONT,
        "ink": INK,
        "muted": MUTED,
        "spend": _money_rows(d.spend, ("platform", "currency", "orders")),
        "channels": _money_rows(d.channels, ("platform", "order_source", "currency", "orders")),
        "refund_counts": [
            {"month": _month(r["month"]), "platform": r["platform"], "succeeded": r["succeeded"]}
            for r in d.refund_counts
        ],
        "fulfilment": [
            {k: (_month(v) if k == "month" else _num(v) if k != "platform" else v) for k, v in r.items()}
            for r in d.fulfilment
        ],
        "after_sale": [
            {
                "month": _month(r["month"]),
                "platform": r["platform"],
                "lines": r["lines"],
                "refunded_lines": r["refunded_lines"],
                "refund_rate": _num(r["refund_rate"]),
                "refund_amount": _cents(r["refund_amount"]),
            }
            for r in d.after_sale
        ],
        "carrier_rows": [
            {
                "carrier": r["carrier"],
                "parcels": r["parcels"],
                "delivered": r["delivered"],
                "failed": r["failed"],
                "delivery_rate": _num(r["delivery_rate"]),
                "transit_p50_h": _num(r["transit_p50_h"]),
                "transit_p90_h": _num(r["transit_p90_h"]),
            }
            for r in d.carriers
        ],
        "stuck": [_stuck_row(r, d.report_tz) for r in d.stuck],
        "stuck_counts": d.stuck_counts,
    }


# --- HTML ---------------------------------------------------------------------------------------


def _quality_rows(d: DashboardData) -> list[dict]:
    return [
        {
            "endpoint": r["endpoint"],
            "runs": f"{r['runs']:,}",
            "records": f"{r['records'] or 0:,}",
            "rejected": f"{r['rejected'] or 0:,}",
            "warnings": "–" if r["warnings"] is None else f"{r['warnings']:,}",
            "alert": bool(r["rejected"]),
            "warn": bool(r["warnings"]),
            "last_run": _fmt_time(r["last_run"], d.report_tz),
            "fields": r["warned_fields"] or "",
        }
        for r in d.quality
    ]


def _template(name: str = "dashboard.html") -> str:
    """A file of the page (``templates/``, shipped as package data)."""
    from importlib import resources

    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no '</script>', no HTML comment openers)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _inline_js(js: str) -> str:
    # keep an inline script from closing its own <script> element early
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return _inline_js(get_plotlyjs())


CHARTS = (
    {
        "id": "spend",
        "title": "Monthly spend by platform",
        "sub": "Goods + shipping of non-cancelled orders by order-creation month, stacked by platform; "
        "the line is net spend (after succeeded refunds).",
        "follows": "period, platform, currency",
        "wide": True,
    },
    {
        "id": "channels",
        "title": "Net spend by sales channel",
        "sub": "Net spend by order-creation month and the channel the merchant resells on (order_source), "
        "stacked; refunds count under their order's channel.",
        "follows": "period, platform, currency",
        "wide": True,
    },
    {
        "id": "refunds",
        "title": "Refunds by month",
        "sub": "Succeeded refunds by refund-creation month: amount by platform (bars) and count (line).",
        "follows": "period, platform, currency (the count: period, platform)",
    },
    {
        "id": "after-sale",
        "title": "After-sale (refund) rate",
        "sub": "Share of order lines with a succeeded refund, by order-creation month and platform.",
        "follows": "period, platform",
    },
    {
        "id": "fulfilment",
        "title": "Fulfilment lead times",
        "sub": "Hours per stage by order-creation month: median (p50, solid) and 90th percentile (p90, dashed).",
        "follows": "period, platform",
        "wide": True,
    },
    {
        "id": "carriers",
        "title": "Carrier performance",
        "sub": "All parcels in the warehouse: outcome per carrier (label: delivery rate) and transit time "
        "from first event to delivery.",
        "follows": "carrier (all time, both platforms: the view has neither)",
        "wide": True,
    },
)


def render_html(d: DashboardData) -> str:
    from jinja2 import Environment
    from markupsafe import Markup

    data = page_data(d)
    row_text = " · ".join(f"{name.removeprefix('fct_')} {count:,}" for name, count in d.row_counts.items())
    last = (
        f"{_fmt_time(d.last_load, d.report_tz)} ({d.report_tz}) · {d.last_load:%Y-%m-%d %H:%M} UTC"
        if d.last_load
        else "never"
    )
    first, final = data["initial"]["from"], data["initial"]["to"]
    env = Environment(autoescape=True)
    template = env.from_string(_template())
    return template.render(
        font=Markup(FONT),
        warehouse=str(d.warehouse),
        title_range=f"{first[:7]} – {final[:7]}" if first else "no months",
        report_tz=d.report_tz,
        warehouse_tz=d.warehouse_tz,
        last_load=last,
        row_text=row_text,
        generated=datetime.now(UTC).astimezone(ZoneInfo(d.report_tz)).strftime("%Y-%m-%d %H:%M ") + d.report_tz,
        charts=CHARTS,
        data=data,
        quality=_quality_rows(d),
        quality_days=QUALITY_DAYS,
        as_of=_fmt_time(d.as_of, d.report_tz) or "–",
        plotly_js=Markup(_plotly_js()),
        dashboard_js=Markup(_inline_js(_template("dashboard.js"))),
        data_json=Markup(_script_json(data)),
    )


def build_dashboard(
    data_dir: Where, out_path: Path, *, start: date | None = None, end: date | None = None, report_tz: str = DEFAULT_TZ
) -> Path:
    """Write the dashboard of the warehouse under ``data_dir`` to ``out_path`` (one HTML file,
    no network needed to open it), months as calendar months in ``report_tz``. It holds every
    month and opens on those whose first day is in ``[start, end)`` (either bound optional); its
    period control widens or narrows that. Returns the path written."""
    data = collect(data_dir, start=start, end=end, report_tz=report_tz)
    html = render_html(data)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, html, mode=None)
    return out


# --- CLI ----------------------------------------------------------------------------------------

EXAMPLE = """examples:
  xport-etl dashboard --out report.html
  xport-etl dashboard --out h1.html --start 2026-01 --end 2026-07 --report-tz Asia/Shanghai
  xport-etl dashboard --out report.html --data-dir data
"""


def cmd_dashboard(args) -> int:
    from xport_etl.errors import ConfigError

    if args.report_tz:
        try:
            check_tz(args.report_tz)  # the dashboard's own wording for a bad --report-tz
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    settings = settings_from_args(args)
    data_dir, tz = settings.layout, settings.report_tz
    try:
        if args.start and args.end and args.start >= args.end:
            raise ValueError(f"--start {args.start:%Y-%m} must be before --end {args.end:%Y-%m}")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = build_dashboard(data_dir, dashboard_file(Path(args.out)), start=args.start, end=args.end, report_tz=tz)
    print(out)
    return 0


DASHBOARD_FILE = "dashboard.html"


def dashboard_file(out: Path) -> Path:
    """Where ``--out`` puts the dashboard: a path ending in ``.html`` is the file; an existing
    directory, or a path without a suffix, is a directory to write ``dashboard.html`` into (as
    ``docs --out`` does with its files); any other suffix is refused.

    Raises:
        ConfigError: ``out`` names a file that is not HTML.
    """
    from xport_etl.errors import ConfigError

    if out.is_dir() or not out.suffix:
        return out / DASHBOARD_FILE
    if out.suffix.lower() in (".html", ".htm"):
        return out
    raise ConfigError(f"--out {out}: the dashboard is one HTML file; give a path ending in .html, or a directory")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``dashboard`` command to the ``xport-etl`` sub-parser set; it sets ``func``."""
    p = subparsers.add_parser(
        "dashboard",
        help="write a self-contained HTML dashboard of the warehouse",
        description="Write one self-contained HTML file (charts, no network needed to open it) from the "
        "published warehouse, read-only: spend, refunds, fulfilment lead times, refund rate, "
        "carrier performance and stuck orders.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out",
        required=True,
        help="the HTML file to write (ending in .html), or a directory to write dashboard.html into, e.g. report.html",
    )
    p.add_argument(
        "--start",
        type=parse_month,
        help="the first month the page opens on, e.g. 2026-01 (default: the earliest; the page holds every month "
        "and filters in itself)",
    )
    p.add_argument(
        "--end",
        type=parse_month,
        help="the month after the last one the page opens on, e.g. 2026-07 (default: the latest)",
    )
    add_setting_flags(p, "report_tz", "data_dir")
    p.set_defaults(func=cmd_dashboard, command="dashboard")
    return p
