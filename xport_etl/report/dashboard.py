"""A self-contained HTML dashboard of the published warehouse.

``build_dashboard(data_dir, out_path)`` reads ``warehouse.duckdb`` read-only and writes one HTML
file that opens without a network: plotly.js is embedded inline, there are no CDN scripts, web
fonts or images. It shows monthly spend by platform with net spend, refunds, fulfilment lead
times, the after-sale (refund) rate, carrier performance, the stuck orders to chase, and the load
quality per endpoint: records rejected and records loaded with a warning in recent runs.

Months are calendar months in the reporting time zone. When that zone is the warehouse's own
(``etl_settings.report_tz``) the monthly figures come straight from the ``rpt_*`` views; for any
other zone, from the views' table macros (``rpt_spend_monthly_at(tz)``: the same SQL, in
``sql/reports/``) with the zone as a bound query parameter. The dashboard keeps no copy of a
report's SQL; its one query of its own is the refund counts (no report has them).

Test hooks: every chart is a ``<div class="chart" id="chart-…">`` that gets ``data-rendered="1"``
once ``Plotly.newPlot`` resolves; ``window.__dashboardErrors`` collects script errors, which are
also written into ``<pre id="dashboard-errors">`` so a DOM dump shows them.

CLI: ``xport-etl dashboard --out report.html --data-dir data`` (:func:`register` adds the
command to the ``xport-etl`` parser).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb

from xport_etl.fsutil import write_atomic
from xport_etl.load.publish import (
    DEFAULT_REPORT_TZ,
    WAREHOUSE_TZ_SQL,
    connect_reader,
    reports,
    warehouse_path,
)
from xport_etl.report.reports import parse_month
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

MONTHLY_REPORTS: dict[str, str] = {r.name: r.macro for r in reports() if r.macro}  # view → its macro

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
# successful runs in the QUALITY_DAYS before the latest run, per endpoint, and the fields that
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
    from {rejects}
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
    select r.endpoint, count(*) as runs, sum(r.records) as records, sum(r.rejected) as rejected,
           sum({warnings}) as warnings, max(r.finished_at) as last_run, any_value(t.fields) as warned_fields
    from recent as r
    left join top_fields as t using (endpoint)
    group by r.endpoint
)
select * from final order by endpoint
"""


def load_quality(con: duckdb.DuckDBPyConnection, days: int = QUALITY_DAYS) -> list[dict]:
    """Per endpoint, its successful runs in the ``days`` before the latest run: records, rejected
    records, records loaded with a warning, and the fields that warned most."""
    have = {
        (r[0], r[1])
        for r in con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_name in ('etl_runs', 'etl_rejects')"
        ).fetchall()
    }
    # a warehouse not yet published by a version that keeps warnings has neither column
    sql = _QUALITY_SQL.replace(
        "{warnings}", "r.warnings" if ("etl_runs", "warnings") in have else "null::integer"
    ).replace(
        "{rejects}",
        "etl_rejects"
        if ("etl_rejects", "severity") in have
        else "(select null::varchar as endpoint, null::varchar as field, null::varchar as severity, "
        "null::timestamp as rejected_at where false)",
    )
    return _records(con.execute(sql, [days, days]))


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


def define_missing_macros(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Define, for this connection only, the report macros the warehouse lacks: one published by a
    version before them, until its next publish adds them. Temporary macros, from the same
    ``sql/reports`` files the publish creates them from (nothing is written to the warehouse).
    Returns the macros defined."""
    have = {
        r[0]
        for r in con.execute(
            "select function_name from duckdb_functions() where function_type = 'table_macro'"
        ).fetchall()
    }
    defined = []
    for report in reports():
        if report.macro and report.macro not in have:
            con.execute(report.create_macro(temp=True))
            defined.append(report.macro)
    return defined


def monthly_report(con: duckdb.DuckDBPyConnection, view: str, tz: str, *, use_view: bool | None = None) -> list[dict]:
    """Rows of a monthly report in zone ``tz``: from the view when it already uses ``tz``, else from
    the view's table macro (``rpt_spend_monthly_at(tz)``, the same SQL) with ``tz`` bound as a
    parameter (never spliced into the SQL text)."""
    if view not in MONTHLY_REPORTS:
        raise KeyError(f"not a monthly report: {view!r}")
    if use_view is None:
        use_view = tz == warehouse_tz(con)
    if use_view:
        return _records(con.execute(f"select * from {view}"))  # view name from MONTHLY_REPORTS only
    define_missing_macros(con)
    macro = MONTHLY_REPORTS[view]  # a `-- macro:` name of a sql/reports file
    return _records(con.execute(f"select * from {macro}(?)", [tz]))


# --- collecting the data ------------------------------------------------------------------------


@dataclass
class DashboardData:
    warehouse: Path
    report_tz: str
    warehouse_tz: str
    start: date | None
    end: date | None
    last_load: datetime | None
    row_counts: dict[str, int]
    spend: list[dict]
    refund_counts: list[dict]
    fulfilment: list[dict]
    after_sale: list[dict]
    carriers: list[dict]
    stuck: list[dict]
    stuck_total: int
    as_of: datetime | None
    other_currencies: list[str] = field(default_factory=list)
    quality: list[dict] = field(default_factory=list)

    @property
    def months(self) -> list[date]:
        found = {
            r["month"]
            for rows in (self.spend, self.fulfilment, self.after_sale, self.refund_counts)
            for r in rows
            if r["month"] is not None
        }
        return sorted(found)


def _in_range(rows: list[dict], start: date | None, end: date | None) -> list[dict]:
    return [
        r
        for r in rows
        if r["month"] is not None and (start is None or r["month"] >= start) and (end is None or r["month"] < end)
    ]


def collect(
    data_dir: Path, *, start: date | None = None, end: date | None = None, report_tz: str = DEFAULT_TZ
) -> DashboardData:
    """Everything the dashboard shows, read from the published warehouse over one read-only
    connection (one consistent state even if a load publishes meanwhile)."""
    check_tz(report_tz)
    if start and end and start >= end:
        raise ValueError(f"empty date range: start {start} is not before end {end}")
    con = connect_reader(data_dir)
    try:
        wh_tz = warehouse_tz(con)
        use_view = report_tz == wh_tz
        spend_all = monthly_report(con, "rpt_spend_monthly", report_tz, use_view=use_view)
        other = sorted({r["currency"] for r in spend_all if r["currency"] != "CNY"}, key=str)
        last_load = con.execute("select max(finished_at) from etl_runs where outcome = 'success'").fetchall()[0][0]
        counts = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in COUNTED_TABLES}
        stuck_total = con.execute("select count(*) from rpt_stuck_orders").fetchall()[0][0]
        stuck = _records(
            con.execute(
                "select * from rpt_stuck_orders order by hours_stuck desc, platform, order_id limit ?", [STUCK_LIMIT]
            )
        )
        as_of = con.execute(
            "select greatest((select max(updated_at) from fct_orders), (select max(event_at) from fct_parcel_events))"
        ).fetchall()[0][0]
        return DashboardData(
            warehouse=warehouse_path(data_dir).resolve(),
            report_tz=report_tz,
            warehouse_tz=wh_tz,
            start=start,
            end=end,
            last_load=last_load,
            row_counts=counts,
            spend=_in_range([r for r in spend_all if r["currency"] == "CNY"], start, end),
            refund_counts=_in_range(_records(con.execute(_REFUND_COUNTS_SQL, [report_tz])), start, end),
            fulfilment=_in_range(
                monthly_report(con, "rpt_fulfilment_monthly", report_tz, use_view=use_view), start, end
            ),
            after_sale=_in_range(
                monthly_report(con, "rpt_after_sale_monthly", report_tz, use_view=use_view), start, end
            ),
            carriers=_records(con.execute("select * from rpt_carrier_performance")),
            stuck=stuck,
            stuck_total=stuck_total,
            as_of=as_of,
            other_currencies=other,
            quality=load_quality(con),
        )
    finally:
        con.close()


# --- figures ------------------------------------------------------------------------------------


def _f(value) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, (Decimal, int, float)) else value


def _month_label(m: date) -> str:
    return m.strftime("%Y-%m")


def _platforms(rows: list[dict]) -> list[str]:
    seen = {r["platform"] for r in rows}
    return [p for p in PLATFORMS if p in seen] + sorted(seen - set(PLATFORMS), key=str)


def _color(platform: str) -> str:
    if platform in PLATFORM_COLORS:
        return PLATFORM_COLORS[platform]
    return OTHER_COLORS[hash(platform) % len(OTHER_COLORS)]


def _by_month_platform(rows: list[dict]) -> dict[tuple[date, str], dict]:
    return {(r["month"], r["platform"]): r for r in rows}


def _base_layout(months: list[str], tz: str, *, height: int = 340, **extra) -> dict:
    layout = {
        "template": "plotly_white",
        "height": height,
        "autosize": True,
        "margin": {"l": 70, "r": 20, "t": 36, "b": 48},
        "font": {"family": FONT, "size": 12, "color": INK},
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "left",
            "x": 0,
            "font": {"size": 11},
            "bgcolor": "rgba(0,0,0,0)",
            "traceorder": "normal",
        },
        "hovermode": "x unified",
        "hoverlabel": {"font": {"family": FONT, "size": 12}},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "xaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": months,
            "title": {"text": f"month ({tz})", "font": {"size": 11, "color": MUTED}},
        },
    }
    layout.update(extra)
    return layout


def _empty(layout: dict) -> dict:
    layout.setdefault("annotations", []).append(
        {
            "text": "no data in this date range",
            "showarrow": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "font": {"size": 14, "color": MUTED},
        }
    )
    return layout


def spend_figure(d: DashboardData) -> dict:
    months = sorted({r["month"] for r in d.spend})
    labels = [_month_label(m) for m in months]
    idx = _by_month_platform(d.spend)
    traces = []
    for p in _platforms(d.spend):
        rows = [idx.get((m, p)) for m in months]
        traces.append(
            {
                "type": "bar",
                "name": f"{PLATFORM_LABELS.get(p, p)} gross",
                "x": labels,
                "y": [_f(r["goods_amount"] + r["shipping_amount"]) if r else 0 for r in rows],
                "customdata": [
                    [_f(r["goods_amount"]), _f(r["shipping_amount"]), r["orders"]] if r else [0, 0, 0] for r in rows
                ],
                "marker": {"color": _color(p)},
                "hovertemplate": "¥%{y:,.2f} (goods ¥%{customdata[0]:,.2f} + shipping ¥%{customdata[1]:,.2f}, "
                "%{customdata[2]} orders)<extra>" + PLATFORM_LABELS.get(p, p) + "</extra>",
            }
        )
    net: defaultdict[Any, Decimal] = defaultdict(Decimal)
    for r in d.spend:
        net[r["month"]] += r["net_spend"]
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "net spend (all platforms)",
            "x": labels,
            "y": [_f(net[m]) for m in months],
            "line": {"color": INK, "width": 2.5},
            "marker": {"size": 7},
            "hovertemplate": "¥%{y:,.2f}<extra>net spend</extra>",
        }
    )
    layout = _base_layout(
        labels,
        d.report_tz,
        barmode="stack",
        yaxis={"title": {"text": "spend (CNY)"}, "tickprefix": "¥", "tickformat": ",.0f", "rangemode": "tozero"},
    )
    return {"data": traces, "layout": layout if months else _empty(layout)}


def refunds_figure(d: DashboardData) -> dict:
    months = sorted({r["month"] for r in d.spend} | {r["month"] for r in d.refund_counts})
    labels = [_month_label(m) for m in months]
    idx = _by_month_platform(d.spend)
    counts: defaultdict[Any, int] = defaultdict(int)
    for r in d.refund_counts:
        counts[r["month"]] += r["succeeded"]
    traces = []
    for p in _platforms(d.spend):
        traces.append(
            {
                "type": "bar",
                "name": PLATFORM_LABELS.get(p, p),
                "x": labels,
                "y": [_f(idx[(m, p)]["refund_amount"]) if (m, p) in idx else 0 for m in months],
                "marker": {"color": _color(p)},
                "hovertemplate": "¥%{y:,.2f}<extra>" + PLATFORM_LABELS.get(p, p) + "</extra>",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "refunds (count)",
            "x": labels,
            "y": [counts[m] for m in months],
            "yaxis": "y2",
            "line": {"color": INK, "width": 2, "dash": "dot"},
            "marker": {"size": 6},
            "hovertemplate": "%{y} refunds<extra>succeeded refunds</extra>",
        }
    )
    layout = _base_layout(
        labels,
        d.report_tz,
        barmode="stack",
        yaxis={"title": {"text": "refunded (CNY)"}, "tickprefix": "¥", "tickformat": ",.0f", "rangemode": "tozero"},
        yaxis2={
            "title": {"text": "refunds (count)"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickformat": ",d",
            "dtick": max(1, -(-max(counts.values(), default=0) // 5)),
        },
    )
    layout["margin"]["r"] = 60
    return {"data": traces, "layout": layout if months else _empty(layout)}


def after_sale_figure(d: DashboardData) -> dict:
    months = sorted({r["month"] for r in d.after_sale})
    labels = [_month_label(m) for m in months]
    idx = _by_month_platform(d.after_sale)
    traces = []
    for p in _platforms(d.after_sale):
        rows = [idx.get((m, p)) for m in months]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": PLATFORM_LABELS.get(p, p),
                "x": labels,
                "y": [_f(r["refund_rate"]) if r else None for r in rows],
                "customdata": [
                    [r["refunded_lines"], r["lines"], _f(r["refund_amount"])] if r else [0, 0, 0] for r in rows
                ],
                "line": {"color": _color(p), "width": 2.5},
                "marker": {"size": 7},
                "hovertemplate": "%{y:.2%} (%{customdata[0]} of %{customdata[1]} lines, ¥%{customdata[2]:,.2f})"
                "<extra>" + PLATFORM_LABELS.get(p, p) + "</extra>",
            }
        )
    layout = _base_layout(
        labels,
        d.report_tz,
        yaxis={"title": {"text": "refunded lines (% of lines)"}, "tickformat": ".1%", "rangemode": "tozero"},
    )
    return {"data": traces, "layout": layout if months else _empty(layout)}


STAGES = (
    ("created_to_paid", "created → paid"),
    ("paid_to_first_event", "paid → first parcel event"),
    ("first_event_to_delivered", "first event → delivered"),
)


def fulfilment_figure(d: DashboardData) -> dict:
    months = sorted({r["month"] for r in d.fulfilment})
    labels = [_month_label(m) for m in months]
    idx = _by_month_platform(d.fulfilment)
    traces = []
    gap = 0.06
    width = (1 - 2 * gap) / 3
    layout = _base_layout(labels, d.report_tz, height=340)
    layout.pop("xaxis")
    layout["annotations"] = []
    for i, (key, title) in enumerate(STAGES, start=1):
        suffix = "" if i == 1 else str(i)
        x0 = (i - 1) * (width + gap)
        layout[f"xaxis{suffix}"] = {
            "domain": [x0, x0 + width],
            "anchor": f"y{suffix}",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": labels,
            "title": {"text": f"month ({d.report_tz})", "font": {"size": 11, "color": MUTED}},
        }
        layout[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "rangemode": "tozero",
            "ticksuffix": " h",
            "title": {"text": "hours" if i == 1 else ""},
        }
        layout["annotations"].append(
            {
                "text": f"<b>{title}</b>",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": x0 + width / 2,
                "y": 1.0,
                "yanchor": "bottom",
                "xanchor": "center",
                "font": {"size": 12},
            }
        )
        for p in _platforms(d.fulfilment):
            for q, dash in (("p50", "solid"), ("p90", "dash")):
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "x": labels,
                        "y": [_f(idx[(m, p)][f"{key}_{q}_h"]) if (m, p) in idx else None for m in months],
                        "name": f"{PLATFORM_LABELS.get(p, p)} {q}",
                        "legendgroup": f"{p}-{q}",
                        "showlegend": i == 1,
                        "xaxis": f"x{suffix}",
                        "yaxis": f"y{suffix}",
                        "line": {"color": _color(p), "dash": dash, "width": 2 if q == "p50" else 1.5},
                        "marker": {"size": 5},
                        "hovertemplate": "%{y:,.1f} h<extra>" + f"{PLATFORM_LABELS.get(p, p)} {q}" + "</extra>",
                    }
                )
    layout["legend"]["y"] = 1.1
    layout["margin"]["t"] = 56
    if not months:
        _empty(layout)
    return {"data": traces, "layout": layout}


def carrier_figure(d: DashboardData) -> dict:
    rows = d.carriers
    names = [r["carrier"] for r in rows]
    delivered = [r["delivered"] for r in rows]
    failed = [r["failed"] for r in rows]
    open_ = [r["parcels"] - r["delivered"] - r["failed"] for r in rows]
    rate_text = [f"{_f(r['delivery_rate']):.1%}" if r["delivery_rate"] is not None else "" for r in rows]
    traces: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "delivered",
            "x": names,
            "y": delivered,
            "marker": {"color": "#16a34a"},
            "hovertemplate": "%{y} delivered<extra></extra>",
        },
        {
            "type": "bar",
            "name": "in transit",
            "x": names,
            "y": open_,
            "marker": {"color": "#cbd5e1"},
            "hovertemplate": "%{y} in transit<extra></extra>",
        },
        {
            "type": "bar",
            "name": "failed / rejected",
            "x": names,
            "y": failed,
            "marker": {"color": "#dc2626"},
            "text": rate_text,
            "textposition": "outside",
            "textfont": {"size": 11, "color": INK},
            "cliponaxis": False,
            "hovertemplate": "%{y} failed<extra></extra>",
        },
        {
            "type": "bar",
            "name": "transit p50",
            "x": names,
            "y": [_f(r["transit_p50_h"]) for r in rows],
            "xaxis": "x2",
            "yaxis": "y2",
            "marker": {"color": "#0d9488"},
            "hovertemplate": "%{y:,.1f} h<extra>p50</extra>",
        },
        {
            "type": "bar",
            "name": "transit p90",
            "x": names,
            "y": [_f(r["transit_p90_h"]) for r in rows],
            "xaxis": "x2",
            "yaxis": "y2",
            "marker": {"color": "#99f6e4"},
            "hovertemplate": "%{y:,.1f} h<extra>p90</extra>",
        },
    ]
    layout = _base_layout(names, d.report_tz, height=360, barmode="stack", hovermode="x")
    layout["xaxis"] = {
        "domain": [0, 0.47],
        "anchor": "y",
        "type": "category",
        "title": {"text": "carrier (label: delivery rate)", "font": {"size": 11, "color": MUTED}},
    }
    layout["yaxis"] = {"anchor": "x", "title": {"text": "parcels"}, "rangemode": "tozero", "tickformat": ",d"}
    layout["xaxis2"] = {
        "domain": [0.55, 1],
        "anchor": "y2",
        "type": "category",
        "title": {"text": "carrier", "font": {"size": 11, "color": MUTED}},
    }
    layout["yaxis2"] = {
        "anchor": "x2",
        "title": {"text": "first event → delivered (hours)"},
        "rangemode": "tozero",
        "ticksuffix": " h",
    }
    # the transit bars are grouped side by side, the parcel bars stacked: one offset group with
    # explicit bases stacks them while barmode "group" sets p50 and p90 side by side
    for t in traces[3:]:
        t["offsetgroup"] = t["name"]
    base = [0] * len(rows)
    for t in traces[:3]:
        t["offsetgroup"] = "parcels"
        t["base"] = list(base)
        base = [b + y for b, y in zip(base, t["y"], strict=True)]
    layout["barmode"] = "group"
    layout["annotations"] = [
        {
            "text": "<b>parcels by outcome</b>",
            "showarrow": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.235,
            "y": 1.0,
            "yanchor": "bottom",
            "xanchor": "center",
            "font": {"size": 12},
        },
        {
            "text": "<b>transit time p50 / p90</b>",
            "showarrow": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.775,
            "y": 1.0,
            "yanchor": "bottom",
            "xanchor": "center",
            "font": {"size": 12},
        },
    ]
    layout["legend"]["y"] = 1.1
    layout["margin"]["t"] = 56
    if not rows:
        _empty(layout)
    return {"data": traces, "layout": layout}


# --- HTML ---------------------------------------------------------------------------------------


def _money(value) -> str:
    return f"¥{_f(value) or 0:,.2f}"


def _fmt_time(value: datetime | None, tz: str) -> str:
    if value is None:
        return ""
    local = value.replace(tzinfo=UTC).astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M")


def _kpis(d: DashboardData) -> list[dict]:
    net = sum((r["net_spend"] for r in d.spend), Decimal(0))
    orders = sum(r["orders"] for r in d.spend)
    refunds = sum((r["refund_amount"] for r in d.spend), Decimal(0))
    lines = sum(r["lines"] for r in d.after_sale)
    refunded = sum(r["refunded_lines"] for r in d.after_sale)
    parcels = sum(r["parcels"] for r in d.carriers)
    delivered = sum(r["delivered"] for r in d.carriers)
    return [
        {"label": "net spend", "value": _money(net), "note": f"{orders:,} orders, cancelled excluded"},
        {"label": "refunded", "value": _money(refunds), "note": "succeeded refunds"},
        {
            "label": "refund rate",
            "value": f"{refunded / lines:.2%}" if lines else "–",
            "note": f"{refunded:,} of {lines:,} order lines",
        },
        {
            "label": "parcels delivered",
            "value": f"{delivered / parcels:.1%}" if parcels else "–",
            "note": f"{delivered:,} of {parcels:,} parcels (all time)",
        },
        {
            "label": "stuck",
            "value": f"{d.stuck_total:,}",
            "note": "orders and parcels to chase",
            "alert": d.stuck_total > 0,
        },
    ]


def _range_text(d: DashboardData) -> str:
    months = d.months
    shown = f"{_month_label(months[0])} – {_month_label(months[-1])}" if months else "no months"
    if d.start is None and d.end is None:
        return f"{shown} (all months)"
    lo = _month_label(d.start) if d.start else "…"
    hi = _month_label(d.end) if d.end else "…"
    return f"{shown} (filter: months in [{lo}, {hi}))"


def _stuck_rows(d: DashboardData) -> list[dict]:
    kinds = {"paid_no_parcel_event": "paid, no parcel event", "parcel_no_progress": "parcel stalled"}
    out = []
    for r in d.stuck:
        hours = _f(r["hours_stuck"]) or 0.0
        out.append(
            {
                "kind": kinds.get(r["kind"], r["kind"]),
                "kind_class": r["kind"].replace("_", "-"),
                "platform": PLATFORM_LABELS.get(r["platform"], r["platform"]),
                "order_id": r["order_id"],
                "tracking_number": r["tracking_number"] or "",
                "carrier": r["carrier"] or "",
                "status": r["status"] or "",
                "paid_at": _fmt_time(r["paid_at"], d.report_tz),
                "last_event_at": _fmt_time(r["last_event_at"], d.report_tz),
                "last_status": r["last_status"] or "",
                "hours": f"{hours:,.1f} h",
                "days": f"{hours / 24:,.1f} d",
            }
        )
    return out


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


def _template() -> str:
    """The page's Jinja template (``templates/dashboard.html``, shipped as package data)."""
    from importlib import resources

    return resources.files(__package__).joinpath("templates", "dashboard.html").read_text(encoding="utf-8")


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


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # keep the inline bundle from closing its own <script> element early
    return js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def render_html(d: DashboardData) -> str:
    from jinja2 import Environment

    charts: list[dict[str, Any]] = [
        {
            "id": "spend",
            "title": "Monthly spend by platform",
            "sub": "Goods + shipping of non-cancelled orders by order-creation month, stacked by platform; "
            "the line is net spend (after succeeded refunds), CNY.",
            "fig": spend_figure(d),
        },
        {
            "id": "refunds",
            "title": "Refunds by month",
            "sub": "Succeeded refunds by refund-creation month: amount by platform (bars, CNY) and count (line).",
            "fig": refunds_figure(d),
        },
        {
            "id": "after-sale",
            "title": "After-sale (refund) rate",
            "sub": "Share of order lines with a succeeded refund, by order-creation month and platform.",
            "fig": after_sale_figure(d),
        },
        {
            "id": "carriers",
            "title": "Carrier performance",
            "sub": "All parcels in the warehouse: outcome per carrier (label: delivery rate) and transit time "
            "from first event to delivery.",
            "fig": carrier_figure(d),
        },
        {
            "id": "fulfilment",
            "title": "Fulfilment lead times",
            "wide": True,
            "sub": "Hours per stage by order-creation month: median (p50, solid) and 90th percentile (p90, dashed).",
            "fig": fulfilment_figure(d),
        },
    ]
    # the spend chart spans the full width, then two pairs, then the three-stage lead times
    charts[0]["wide"] = True
    order = [charts[0], charts[1], charts[2], charts[4], charts[3]]
    order[-1]["wide"] = True
    row_text = " · ".join(f"{name.removeprefix('fct_')} {count:,}" for name, count in d.row_counts.items())
    last = (
        f"{_fmt_time(d.last_load, d.report_tz)} ({d.report_tz}) · {d.last_load:%Y-%m-%d %H:%M} UTC"
        if d.last_load
        else "never"
    )
    env = Environment(autoescape=True)
    template = env.from_string(_template())
    from markupsafe import Markup

    return template.render(
        font=Markup(FONT),
        warehouse=str(d.warehouse),
        range_text=_range_text(d),
        report_tz=d.report_tz,
        warehouse_tz=d.warehouse_tz,
        last_load=last,
        row_text=row_text,
        generated=datetime.now(UTC).astimezone(ZoneInfo(d.report_tz)).strftime("%Y-%m-%d %H:%M ") + d.report_tz,
        other_currencies=d.other_currencies,
        kpis=_kpis(d),
        charts=order,
        stuck=_stuck_rows(d),
        quality=_quality_rows(d),
        quality_days=QUALITY_DAYS,
        stuck_total=d.stuck_total,
        stuck_rest=max(d.stuck_total - len(d.stuck), 0),
        as_of=_fmt_time(d.as_of, d.report_tz) or "–",
        plotly_js=Markup(_plotly_js()),
        figures_json=Markup(_script_json({f"chart-{c['id']}": c["fig"] for c in order})),
    )


def build_dashboard(
    data_dir: Path, out_path: Path, *, start: date | None = None, end: date | None = None, report_tz: str = DEFAULT_TZ
) -> Path:
    """Write the dashboard of the warehouse under ``data_dir`` to ``out_path`` (one HTML file,
    no network needed to open it). Months shown: those whose first day is in ``[start, end)``
    (either bound optional), as calendar months in ``report_tz``. Returns the path written."""
    data = collect(Path(data_dir), start=start, end=end, report_tz=report_tz)
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
    from xport_etl.settings import Settings

    if args.report_tz:
        try:
            check_tz(args.report_tz)  # the dashboard's own wording for a bad --report-tz
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    settings = Settings.from_env(data_dir=Path(args.data_dir) if args.data_dir else None, report_tz=args.report_tz)
    data_dir, tz = settings.data_dir, settings.report_tz
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
        "--start", type=parse_month, help="first month shown, inclusive, e.g. 2026-01 (default: the earliest)"
    )
    p.add_argument(
        "--end", type=parse_month, help="month after the last shown, exclusive, e.g. 2026-07 (default: the latest)"
    )
    p.add_argument("--report-tz", help="time zone of the report months (env XPORT_REPORT_TZ, default Asia/Shanghai)")
    p.add_argument("--data-dir", help="directory holding warehouse.duckdb (env XPORT_DATA_DIR, default ./data)")
    p.set_defaults(func=cmd_dashboard, command="dashboard")
    return p
