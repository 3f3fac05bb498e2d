// The dashboard's figures, drawn and redrawn in the page from the report rows it embeds
// (<script id="dashboard-data">): every control (period, platform, currency, carrier) filters
// those rows and the figures are computed from what is left, with no server. Money is held in
// whole cents and summed as integers, so a filtered total is the view's sum to the cent.
//
// Test hooks: each chart div gets data-rendered="1" once drawn; <body data-render-count> counts
// the complete (re)draws and data-charts-rendered the charts of the last one; window.__dashboard
// exposes the current filters and the figures' data.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("dashboard-data").textContent);
  var CONFIG = {
    displaylogo: false, responsive: true, displayModeBar: "hover",
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  };
  var CURRENCY_SIGNS = {CNY: "¥", USD: "$", EUR: "€", HKD: "HK$", JPY: "JP¥", GBP: "£"};
  var STAGES = [
    ["created_to_paid", "created → paid"],
    ["paid_to_first_event", "paid → first parcel event"],
    ["first_event_to_delivered", "first event → delivered"],
  ];

  // ---- helpers

  function $(id) { return document.getElementById(id); }

  function unique(values) {
    var seen = {}, out = [];
    values.forEach(function (v) { if (!Object.prototype.hasOwnProperty.call(seen, v)) { seen[v] = 1; out.push(v); } });
    return out;
  }

  function sorted(values) { return unique(values).sort(); }

  function label(month) { return month.slice(0, 7); }

  function platformLabel(p) { return D.platform_labels[p] || p; }

  function color(name, i) {
    return D.platform_colors[name] || D.other_colors[i % D.other_colors.length];
  }

  function platformsOf(rows) {
    var seen = unique(rows.map(function (r) { return r.platform; }));
    var known = D.platforms.filter(function (p) { return seen.indexOf(p) >= 0; });
    return known.concat(seen.filter(function (p) { return known.indexOf(p) < 0; }).sort());
  }

  function sum(rows, key) {
    return rows.reduce(function (total, r) { return total + (r[key] || 0); }, 0);
  }

  // whole cents as text with thousands separators: exact, no float in between
  function money(cents, currency) {
    var sign = cents < 0 ? "-" : "";
    var abs = Math.abs(cents);
    var whole = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var frac = String(abs % 100).padStart(2, "0");
    return sign + (CURRENCY_SIGNS[currency] || currency + " ") + whole + "." + frac;
  }

  function count(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  function percent(part, whole, digits) {
    return whole ? (100 * part / whole).toFixed(digits) + "%" : "–";
  }

  // ---- the filters

  function filters() {
    return {
      from: $("filter-from").value,
      to: $("filter-to").value,
      platform: $("filter-platform").value,
      currency: $("filter-currency").value,
      carrier: $("filter-carrier").value,
    };
  }

  function inPeriod(f) {
    return function (r) { return r.month >= f.from && r.month <= f.to; };
  }

  function onPlatform(f) {
    return function (r) { return !f.platform || r.platform === f.platform; };
  }

  function inCurrency(f) {
    return function (r) { return r.currency === f.currency; };
  }

  function ofCarrier(f) {
    return function (r) { return !f.carrier || r.carrier === f.carrier; };
  }

  function where(rows) {
    var tests = Array.prototype.slice.call(arguments, 1);
    return rows.filter(function (r) { return tests.every(function (t) { return t(r); }); });
  }

  // ---- layouts

  function baseLayout(months, extra) {
    var layout = {
      template: "plotly_white",
      height: 340,
      autosize: true,
      margin: {l: 70, r: 20, t: 36, b: 48},
      font: {family: D.font, size: 12, color: D.ink},
      legend: {orientation: "h", yanchor: "bottom", y: 1.02, xanchor: "left", x: 0, font: {size: 11},
               bgcolor: "rgba(0,0,0,0)", traceorder: "normal"},
      hovermode: "x unified",
      hoverlabel: {font: {family: D.font, size: 12}},
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      xaxis: {type: "category", categoryorder: "array", categoryarray: months,
              title: {text: "month (" + D.tz + ")", font: {size: 11, color: D.muted}}},
    };
    Object.keys(extra || {}).forEach(function (k) { layout[k] = extra[k]; });
    return layout;
  }

  function empty(layout, text) {
    layout.annotations = (layout.annotations || []).concat([{
      text: text || "no data for these filters", showarrow: false, xref: "paper", yref: "paper",
      x: 0.5, y: 0.5, font: {size: 14, color: D.muted},
    }]);
    return layout;
  }

  function moneyAxis(title, currency) {
    return {title: {text: title + " (" + currency + ")"}, tickprefix: CURRENCY_SIGNS[currency] || "",
            tickformat: ",.0f", rangemode: "tozero"};
  }

  // ---- figures

  function spendFigure(f) {
    var rows = where(D.spend, inPeriod(f), onPlatform(f), inCurrency(f));
    var months = sorted(rows.map(function (r) { return r.month; }));
    var labels = months.map(label);
    var traces = platformsOf(rows).map(function (p, i) {
      var byMonth = {};
      rows.filter(function (r) { return r.platform === p; }).forEach(function (r) { byMonth[r.month] = r; });
      return {
        type: "bar",
        name: platformLabel(p) + " gross",
        x: labels,
        y: months.map(function (m) { var r = byMonth[m]; return r ? (r.goods_amount + r.shipping_amount) / 100 : 0; }),
        customdata: months.map(function (m) {
          var r = byMonth[m];
          return r ? [r.goods_amount / 100, r.shipping_amount / 100, r.orders] : [0, 0, 0];
        }),
        marker: {color: color(p, i)},
        hovertemplate: "%{y:,.2f} (goods %{customdata[0]:,.2f} + shipping %{customdata[1]:,.2f}, " +
          "%{customdata[2]} orders)<extra>" + platformLabel(p) + "</extra>",
      };
    });
    traces.push({
      type: "scatter",
      mode: "lines+markers",
      name: "net spend (" + (f.platform ? platformLabel(f.platform) : "all platforms") + ")",
      x: labels,
      y: months.map(function (m) { return sum(rows.filter(function (r) { return r.month === m; }), "net_spend") / 100; }),
      line: {color: D.ink, width: 2.5},
      marker: {size: 7},
      hovertemplate: "%{y:,.2f}<extra>net spend</extra>",
    });
    var layout = baseLayout(labels, {barmode: "stack", yaxis: moneyAxis("spend", f.currency)});
    return {data: traces, layout: months.length ? layout : empty(layout)};
  }

  function channelsFigure(f) {
    var rows = where(D.channels, inPeriod(f), onPlatform(f), inCurrency(f));
    var months = sorted(rows.map(function (r) { return r.month; }));
    var labels = months.map(label);
    var totals = {};
    rows.forEach(function (r) { totals[r.order_source] = (totals[r.order_source] || 0) + r.net_spend; });
    var channels = Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a] || (a < b ? -1 : 1); });
    var traces = channels.map(function (c, i) {
      var cells = months.map(function (m) {
        return rows.filter(function (r) { return r.month === m && r.order_source === c; });
      });
      return {
        type: "bar",
        name: c,
        x: labels,
        y: cells.map(function (cell) { return sum(cell, "net_spend") / 100; }),
        customdata: cells.map(function (cell) {
          return [sum(cell, "orders"), (sum(cell, "goods_amount") + sum(cell, "shipping_amount")) / 100,
                  sum(cell, "refund_amount") / 100];
        }),
        marker: {color: D.other_colors.concat(["#64748b", "#16a34a", "#f43f5e", "#0ea5e9"])[i % 8]},
        hovertemplate: "%{y:,.2f} net (%{customdata[0]} orders, gross %{customdata[1]:,.2f}, refunds " +
          "%{customdata[2]:,.2f})<extra>" + c + "</extra>",
      };
    });
    var layout = baseLayout(labels, {barmode: "relative", yaxis: moneyAxis("net spend", f.currency)});
    return {data: traces, layout: months.length ? layout : empty(layout)};
  }

  function refundsFigure(f) {
    var spend = where(D.spend, inPeriod(f), onPlatform(f), inCurrency(f));
    var counts = where(D.refund_counts, inPeriod(f), onPlatform(f));
    var months = sorted(spend.map(function (r) { return r.month; }).concat(counts.map(function (r) { return r.month; })));
    var labels = months.map(label);
    var traces = platformsOf(spend).map(function (p, i) {
      return {
        type: "bar",
        name: platformLabel(p),
        x: labels,
        y: months.map(function (m) {
          return sum(spend.filter(function (r) { return r.platform === p && r.month === m; }), "refund_amount") / 100;
        }),
        marker: {color: color(p, i)},
        hovertemplate: "%{y:,.2f}<extra>" + platformLabel(p) + "</extra>",
      };
    });
    var n = months.map(function (m) { return sum(counts.filter(function (r) { return r.month === m; }), "succeeded"); });
    traces.push({
      type: "scatter", mode: "lines+markers", name: "refunds (count)", x: labels, y: n, yaxis: "y2",
      line: {color: D.ink, width: 2, dash: "dot"}, marker: {size: 6},
      hovertemplate: "%{y} refunds<extra>succeeded refunds</extra>",
    });
    var layout = baseLayout(labels, {
      barmode: "stack",
      yaxis: moneyAxis("refunded", f.currency),
      yaxis2: {title: {text: "refunds (count)"}, overlaying: "y", side: "right", rangemode: "tozero",
               showgrid: false, tickformat: ",d", dtick: Math.max(1, Math.ceil(Math.max.apply(null, n.concat([0])) / 5))},
    });
    layout.margin.r = 60;
    return {data: traces, layout: months.length ? layout : empty(layout)};
  }

  function afterSaleFigure(f) {
    var rows = where(D.after_sale, inPeriod(f), onPlatform(f));
    var months = sorted(rows.map(function (r) { return r.month; }));
    var labels = months.map(label);
    var traces = platformsOf(rows).map(function (p, i) {
      var byMonth = {};
      rows.filter(function (r) { return r.platform === p; }).forEach(function (r) { byMonth[r.month] = r; });
      return {
        type: "scatter",
        mode: "lines+markers",
        name: platformLabel(p),
        x: labels,
        y: months.map(function (m) { return byMonth[m] ? byMonth[m].refund_rate : null; }),
        customdata: months.map(function (m) {
          var r = byMonth[m];
          return r ? [r.refunded_lines, r.lines, r.refund_amount / 100] : [0, 0, 0];
        }),
        line: {color: color(p, i), width: 2.5},
        marker: {size: 7},
        hovertemplate: "%{y:.2%} (%{customdata[0]} of %{customdata[1]} lines, %{customdata[2]:,.2f})<extra>" +
          platformLabel(p) + "</extra>",
      };
    });
    var layout = baseLayout(labels, {
      yaxis: {title: {text: "refunded lines (% of lines)"}, tickformat: ".1%", rangemode: "tozero"},
    });
    return {data: traces, layout: months.length ? layout : empty(layout)};
  }

  function fulfilmentFigure(f) {
    var rows = where(D.fulfilment, inPeriod(f), onPlatform(f));
    var months = sorted(rows.map(function (r) { return r.month; }));
    var labels = months.map(label);
    var gap = 0.06, width = (1 - 2 * gap) / 3;
    var layout = baseLayout(labels);
    delete layout.xaxis;
    layout.annotations = [];
    var traces = [];
    STAGES.forEach(function (stage, k) {
      var i = k + 1, suffix = i === 1 ? "" : String(i), x0 = k * (width + gap);
      layout["xaxis" + suffix] = {
        domain: [x0, x0 + width], anchor: "y" + suffix, type: "category", categoryorder: "array",
        categoryarray: labels, title: {text: "month (" + D.tz + ")", font: {size: 11, color: D.muted}},
      };
      layout["yaxis" + suffix] = {anchor: "x" + suffix, rangemode: "tozero", ticksuffix: " h",
                                  title: {text: i === 1 ? "hours" : ""}};
      layout.annotations.push({
        text: "<b>" + stage[1] + "</b>", showarrow: false, xref: "paper", yref: "paper",
        x: x0 + width / 2, y: 1.0, yanchor: "bottom", xanchor: "center", font: {size: 12},
      });
      platformsOf(rows).forEach(function (p, j) {
        var byMonth = {};
        rows.filter(function (r) { return r.platform === p; }).forEach(function (r) { byMonth[r.month] = r; });
        [["p50", "solid"], ["p90", "dash"]].forEach(function (q) {
          traces.push({
            type: "scatter", mode: "lines+markers",
            x: labels,
            y: months.map(function (m) { return byMonth[m] ? byMonth[m][stage[0] + "_" + q[0] + "_h"] : null; }),
            name: platformLabel(p) + " " + q[0],
            legendgroup: p + "-" + q[0],
            showlegend: i === 1,
            xaxis: "x" + suffix, yaxis: "y" + suffix,
            line: {color: color(p, j), dash: q[1], width: q[0] === "p50" ? 2 : 1.5},
            marker: {size: 5},
            hovertemplate: "%{y:,.1f} h<extra>" + platformLabel(p) + " " + q[0] + "</extra>",
            meta: stage[0] + "_" + q[0] + "_h",
          });
        });
      });
    });
    layout.legend.y = 1.1;
    layout.margin.t = 56;
    return {data: traces, layout: months.length ? layout : empty(layout)};
  }

  function carriersFigure(f) {
    var rows = where(D.carrier_rows, ofCarrier(f));
    var names = rows.map(function (r) { return r.carrier; });
    var parcels = [
      ["delivered", rows.map(function (r) { return r.delivered; }), "#16a34a"],
      ["in transit", rows.map(function (r) { return r.parcels - r.delivered - r.failed; }), "#cbd5e1"],
      ["failed / rejected", rows.map(function (r) { return r.failed; }), "#dc2626"],
    ];
    var base = rows.map(function () { return 0; });
    var traces = parcels.map(function (t, k) {
      var trace = {
        type: "bar", name: t[0], x: names, y: t[1], marker: {color: t[2]}, offsetgroup: "parcels", base: base.slice(),
        hovertemplate: "%{y} " + t[0] + "<extra></extra>",
      };
      if (k === 2) {
        trace.text = rows.map(function (r) { return r.delivery_rate === null ? "" : (100 * r.delivery_rate).toFixed(1) + "%"; });
        trace.textposition = "outside";
        trace.textfont = {size: 11, color: D.ink};
        trace.cliponaxis = false;
      }
      base = base.map(function (b, i) { return b + t[1][i]; });
      return trace;
    });
    [["transit p50", "transit_p50_h", "#0d9488"], ["transit p90", "transit_p90_h", "#99f6e4"]].forEach(function (t) {
      traces.push({
        type: "bar", name: t[0], x: names, y: rows.map(function (r) { return r[t[1]]; }), xaxis: "x2", yaxis: "y2",
        marker: {color: t[2]}, offsetgroup: t[0], hovertemplate: "%{y:,.1f} h<extra>" + t[0].slice(8) + "</extra>",
      });
    });
    var layout = baseLayout(names, {barmode: "group", hovermode: "x", height: 360});
    layout.xaxis = {domain: [0, 0.47], anchor: "y", type: "category",
                    title: {text: "carrier (label: delivery rate)", font: {size: 11, color: D.muted}}};
    layout.yaxis = {anchor: "x", title: {text: "parcels"}, rangemode: "tozero", tickformat: ",d"};
    layout.xaxis2 = {domain: [0.55, 1], anchor: "y2", type: "category", title: {text: "carrier", font: {size: 11, color: D.muted}}};
    layout.yaxis2 = {anchor: "x2", title: {text: "first event → delivered (hours)"}, rangemode: "tozero", ticksuffix: " h"};
    layout.annotations = [
      {text: "<b>parcels by outcome</b>", showarrow: false, xref: "paper", yref: "paper", x: 0.235, y: 1.0,
       yanchor: "bottom", xanchor: "center", font: {size: 12}},
      {text: "<b>transit time p50 / p90</b>", showarrow: false, xref: "paper", yref: "paper", x: 0.775, y: 1.0,
       yanchor: "bottom", xanchor: "center", font: {size: 12}},
    ];
    layout.legend.y = 1.1;
    layout.margin.t = 56;
    return {data: traces, layout: rows.length ? layout : empty(layout)};
  }

  var FIGURES = {
    "chart-spend": spendFigure,
    "chart-channels": channelsFigure,
    "chart-refunds": refundsFigure,
    "chart-after-sale": afterSaleFigure,
    "chart-fulfilment": fulfilmentFigure,
    "chart-carriers": carriersFigure,
  };

  // ---- KPIs, the stuck list

  function setKpi(id, value, note, alert) {
    var el = $(id);
    el.querySelector(".value").textContent = value;
    el.querySelector(".note").textContent = note;
    el.classList.toggle("alert", !!alert);
  }

  function stuckOf(f) {
    return function (r) { return onPlatform(f)(r) && ofCarrier(f)(r) && inCurrency(f)(r); };
  }

  function kpis(f) {
    var spend = where(D.spend, inPeriod(f), onPlatform(f), inCurrency(f));
    var lines = where(D.after_sale, inPeriod(f), onPlatform(f));
    var carriers = where(D.carrier_rows, ofCarrier(f));
    var stuck = D.stuck_counts.filter(stuckOf(f));
    var values = {
      net_spend: sum(spend, "net_spend"),
      orders: sum(spend, "orders"),
      refund_amount: sum(spend, "refund_amount"),
      lines: sum(lines, "lines"),
      refunded_lines: sum(lines, "refunded_lines"),
      parcels: sum(carriers, "parcels"),
      delivered: sum(carriers, "delivered"),
      stuck: sum(stuck, "n"),
    };
    setKpi("kpi-net", money(values.net_spend, f.currency), count(values.orders) + " orders, cancelled excluded");
    setKpi("kpi-refunded", money(values.refund_amount, f.currency), "succeeded refunds");
    setKpi("kpi-refund-rate", percent(values.refunded_lines, values.lines, 2),
           count(values.refunded_lines) + " of " + count(values.lines) + " order lines");
    setKpi("kpi-delivered", percent(values.delivered, values.parcels, 1),
           count(values.delivered) + " of " + count(values.parcels) + " parcels (all time)");
    setKpi("kpi-stuck", count(values.stuck), "orders and parcels to chase", values.stuck > 0);
    return values;
  }

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function stuckList(f) {
    var rows = D.stuck.filter(stuckOf(f)).slice(0, D.stuck_limit);
    var counts = D.stuck_counts.filter(stuckOf(f));
    var total = sum(counts, "n");
    var body = $("stuck-table").querySelector("tbody");
    body.textContent = "";
    rows.forEach(function (r, i) {
      var tr = document.createElement("tr");
      var badge = document.createElement("span");
      badge.className = "badge " + r.kind.replace(/_/g, "-");
      badge.textContent = D.stuck_kinds[r.kind] || r.kind;
      var kind = cell("");
      kind.appendChild(badge);
      [cell(String(i + 1), "num"), kind, cell(platformLabel(r.platform)), cell(r.order_id, "mono"),
       cell(r.tracking_number, "mono"), cell(r.carrier || ""), cell(r.status),
       cell(r.amount_at_risk === null ? "" : money(r.amount_at_risk, r.currency), "num"),
       cell(r.stage_started_at), cell(r.last_status),
       cell(r.overdue_h === null ? "" : (r.overdue_h / 24).toFixed(1) + " d", "num"),
       cell(r.priority === null ? "" : Number(r.priority).toLocaleString("en-US", {maximumFractionDigits: 1}), "num"),
      ].forEach(function (td) { tr.appendChild(td); });
      tr.setAttribute("data-order", r.order_id);
      tr.setAttribute("data-tracking", r.tracking_number);
      body.appendChild(tr);
    });
    var byKind = {};
    counts.forEach(function (c) { byKind[c.kind] = (byKind[c.kind] || 0) + c.n; });
    $("stuck-kinds").textContent = Object.keys(D.stuck_kinds).filter(function (k) { return byKind[k]; })
      .map(function (k) { return D.stuck_kinds[k] + " " + count(byKind[k]); }).join(" · ");
    $("stuck-more").textContent = !total ? "Nothing stuck." :
      total > rows.length
        ? "… and " + count(total - rows.length) + " more (showing the top " + rows.length + " of " + count(total) +
          " by priority). Full list: xport-etl report stuck_orders (with --platform, --currency, --carrier)."
        : count(total) + " in all.";
    return {rows: rows.map(function (r) { return [r.order_id, r.tracking_number]; }), total: total};
  }

  // ---- drawing

  var renders = 0;

  function render() {
    var f = filters();
    $("range-text").textContent = f.from ? label(f.from) + " – " + label(f.to) : "no months";
    var shown = {filters: f, kpis: kpis(f), stuck: stuckList(f), figures: {}};
    var ids = Object.keys(FIGURES);
    var drawn = ids.map(function (id) {
      var el = $(id);
      el.setAttribute("data-rendered", "0");
      var fig;
      try {
        fig = FIGURES[id](f);
      } catch (err) {
        window.__reportDashboardError(id + ": " + (err && err.message ? err.message : err));
        return Promise.resolve();
      }
      shown.figures[id] = fig.data;
      return Plotly.react(el, fig.data, fig.layout, CONFIG).then(function () {
        el.setAttribute("data-rendered", "1");
      }, function (err) {
        window.__reportDashboardError(id + ": " + (err && err.message ? err.message : err));
      });
    });
    window.__dashboard.shown = shown;
    return Promise.all(drawn).then(function () {
      renders += 1;
      document.body.setAttribute("data-charts-rendered", String(
        ids.filter(function (id) { return $(id).getAttribute("data-rendered") === "1"; }).length));
      document.body.setAttribute("data-render-count", String(renders));
    });
  }

  function keepPeriodInOrder(event) {
    var from = $("filter-from"), to = $("filter-to");
    if (from.value > to.value) {
      if (event && event.target === to) from.value = to.value; else to.value = from.value;
    }
  }

  function reset() {
    $("filter-from").value = D.initial.from;
    $("filter-to").value = D.initial.to;
    $("filter-platform").value = D.initial.platform;
    $("filter-currency").value = D.initial.currency;
    $("filter-carrier").value = D.initial.carrier;
    render();
  }

  window.__dashboard = {filters: filters, render: render, data: D, shown: null};
  document.body.setAttribute("data-charts", String(Object.keys(FIGURES).length));
  ["filter-from", "filter-to", "filter-platform", "filter-currency", "filter-carrier"].forEach(function (id) {
    $(id).addEventListener("change", function (event) { keepPeriodInOrder(event); render(); });
  });
  $("filter-reset").addEventListener("click", reset);
  render();
})();
