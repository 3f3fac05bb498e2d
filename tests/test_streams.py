"""The stream declarations and the graph walked from them.

Each stream is declared once (xport_etl/streams/); ``run``'s order, the fan-outs, the CLI's
choices, the tables' feeds, the normaliser registry and the DAG's groups come from the
declarations. These tests hold the graph to what the code before it spelled out by hand (so run
plans written before still resume), check every reference a declaration makes (normaliser, key
query, tables), and show the graph refusing a bad declaration.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta

import pytest

from xport_etl.normalize.registry import NORMALIZERS, resolve
from xport_etl.resources import SQL_DIR
from xport_etl.streams import alibaba, graph, taobao
from xport_etl.streams.graph import STREAMS, _catalogue
from xport_etl.streams.spec import Cursor, EndpointSpec, FanOut, Platform, StreamSpec
from xport_etl.tables import FACT_TABLES

# what run.py spelled out before the graph: a plan's digest hashes this order, so it must not move
RUN_ORDER = (
    "taobao_orders",
    "alibaba_orders",
    "taobao_refunds",
    "taobao_logistics",
    "alibaba_refunds",
    "alibaba_logistics",
)
# what report/status.py spelled out: the list endpoints whose success keeps each table fresh
FEEDS = {
    "fct_orders": ("taobao_orders", "alibaba_orders"),
    "fct_order_lines": ("taobao_orders", "alibaba_orders"),
    "fct_refunds": ("taobao_refunds", "alibaba_orders"),
    "fct_parcels": ("taobao_orders", "alibaba_orders"),
    "fct_parcel_events": ("taobao_orders", "alibaba_orders"),
}


def test_run_order_is_the_order_plans_were_written_in():
    assert graph.run_order() == RUN_ORDER
    assert graph.lists(RUN_ORDER) == list(RUN_ORDER[:3]) and graph.fanouts(RUN_ORDER) == list(RUN_ORDER[3:])


def test_every_parent_runs_before_its_children():
    order = graph.run_order()
    for name in order:
        fanout = STREAMS[name].fanout
        if fanout is not None:
            assert order.index(fanout.parent) < order.index(name)
        assert {c.name for c in graph.children(name)} <= set(order)


def test_scheduled_streams_and_the_ones_read_on_demand():
    on_demand = {s.name for s in STREAMS.values() if not s.scheduled}
    assert on_demand == {"taobao_orders_legacy", "taobao_order_detail", "taobao_refund_detail"}
    assert graph.extractable() == ("taobao_orders", "taobao_orders_legacy", "taobao_refunds", "alibaba_orders")


@pytest.mark.parametrize("table", FACT_TABLES)
def test_feeds_are_the_list_streams_at_the_root(table):
    assert graph.feeds(table) == FEEDS[table]


def test_the_dag_groups_are_the_platforms():
    groups = [(p.group, [s.short for s in streams]) for p, streams in graph.platforms()]
    assert groups == [("taobao", ["orders", "refunds", "logistics"]), ("alibaba", ["orders", "refunds", "logistics"])]
    assert graph.root("alibaba_logistics").name == "alibaba_orders"


def test_every_normaliser_reference_resolves():
    assert set(NORMALIZERS) == set(STREAMS)
    for s in STREAMS.values():
        assert callable(NORMALIZERS[s.name]) and NORMALIZERS[s.name] is resolve(s.normalizer)
    with pytest.raises(ValueError, match="xport_etl.normalize"):
        resolve("os:system")


def test_only_the_taobao_order_shape_takes_the_fast_path():
    # the DuckDB twin (normalize/taobao_orders_sql.py) is the twin of this one normaliser
    twin = "xport_etl.normalize.taobao_orders:normalize_taobao_pages"
    fast = {s.name for s in STREAMS.values() if s.fast_path}
    assert fast == {"taobao_orders", "taobao_orders_legacy"}
    assert all(STREAMS[name].normalizer == twin for name in fast)


def test_every_key_query_is_a_fan_out_s_and_exists():
    declared = {s.fanout.keys for s in STREAMS.values() if s.fanout is not None}
    assert all((SQL_DIR / keys).is_file() for keys in declared)
    assert {f"fanout/{p.name}" for p in (SQL_DIR / "fanout").glob("*.sql")} == declared


def test_declared_tables_are_fact_tables_and_every_fact_table_is_written():
    written = {t for s in STREAMS.values() for t in s.tables}
    assert written == set(FACT_TABLES)
    assert {t for s in STREAMS.values() if s.scheduled for t in s.tables} == set(FACT_TABLES)


def test_the_graph_draws_itself():
    assert graph.draw() == (
        "taobao   taobao_orders ─→ taobao_logistics\n"
        "         taobao_refunds\n"
        "1688     alibaba_orders ┬→ alibaba_refunds\n"
        "                        └→ alibaba_logistics\n"
    )


def test_the_declarations_import_without_the_heavy_libraries():
    code = (
        "import json, sys; import xport_etl.streams.graph; "
        "print(json.dumps([m for m in ('pyarrow', 'duckdb', 'pandas', 'httpx') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# ---- bad declarations are refused

LIST = taobao.STREAMS[0]
FAN = alibaba.STREAMS[1]


def test_a_stream_is_named_by_its_platform():
    with pytest.raises(ValueError, match="not named taobao_"):
        replace(LIST, endpoint=replace(LIST.endpoint, name="orders"))


def test_a_cursor_reads_a_window_its_endpoint_has():
    with pytest.raises(ValueError, match="cursor's window 'modify'"):
        replace(LIST, cursor=Cursor("modify"))


def test_a_stream_is_read_by_window_or_by_key():
    with pytest.raises(ValueError, match="not both"):
        replace(LIST, fanout=FAN.fanout)
    with pytest.raises(ValueError, match="detail_param"):
        replace(FAN, endpoint=replace(FAN.endpoint, detail_param=None))


def test_a_normaliser_is_module_colon_function():
    with pytest.raises(ValueError, match="module:function"):
        replace(LIST, normalizer="normalize_taobao_pages")


def test_the_catalogue_refuses_twins_and_unknown_parents():
    with pytest.raises(ValueError, match="declared twice"):
        _catalogue(taobao.STREAMS, taobao.STREAMS[:1])
    orphan = replace(FAN, fanout=FanOut("alibaba_orders", "fanout/alibaba_refunds.sql", "refunds"))
    with pytest.raises(ValueError, match="parent 'alibaba_orders' is not a scheduled stream declared before it"):
        _catalogue((orphan,), alibaba.STREAMS[:1])
    on_demand = replace(FAN, fanout=FanOut("taobao_orders_legacy", "fanout/x.sql", "x"))
    with pytest.raises(ValueError, match="not a scheduled stream"):
        _catalogue(taobao.STREAMS, (on_demand,))


def test_adding_a_stream_is_one_declaration():
    # what README's "where to add what" promises: a declaration joins the graph, run and the DAG
    shop = Platform("shop", group="shop", title="a third platform")
    orders = StreamSpec(
        platform=shop,
        endpoint=EndpointSpec(
            name="shop_orders",
            path="/shop/orders",
            method="GET",
            paging="page_number_query",
            windows={"create": LIST.endpoint.windows["create"]},
        ),
        cursor=Cursor("create", lookback=timedelta(days=1)),
        normalizer="xport_etl.normalize.taobao_orders:normalize_taobao_pages",
        tables=("fct_orders",),
    )
    found = _catalogue(taobao.STREAMS, alibaba.STREAMS, (orders,))
    assert list(found)[-1] == "shop_orders" and found["shop_orders"].scheduled


def test_readme_draws_the_graph_as_it_is():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert graph.draw() in readme, "README's stream graph is not graph.draw()'s"


def test_the_streams_other_steps_name_are_declared():
    # the callbacks re-read what a message names through these streams; check asks the order list
    from xport_etl.callbacks import refresh
    from xport_etl.extract import diagnose as check

    named = {endpoint for endpoint, _ in refresh.FETCH.values()} | set(refresh._REJECTED)
    named |= {refresh.ALIBABA_ORDERS, check.ENDPOINT}
    assert named <= set(STREAMS)
