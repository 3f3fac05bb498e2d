"""The data dictionary (``xport_etl.report.docs``): the committed files are current, and what they say
agrees with a real warehouse built from the sandbox and with the warehouse contract, ``docs/warehouse.md``
(``XPORT_WAREHOUSE_MD`` points the check at another copy)."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from xport_etl.layout import DataLayout
from xport_etl.report import docs
from xport_etl.report.views import reports
from xport_etl.resources import SQL_DIR
from xport_etl.settings import Settings

REPO = Path(__file__).resolve().parent.parent
WAREHOUSE_MD = Path(os.environ.get("XPORT_WAREHOUSE_MD", REPO / "docs" / "warehouse.md"))
STALE = (
    "{} is not what `xport-etl docs` generates now (a schema, view or status mapping changed): "
    "run `xport-etl docs` and commit the result"
)


def parse_dictionary(markdown: str) -> dict[str, dict[str, tuple[str, bool]]]:
    """``object → {column: (type, contract)}``, read back from the generated Markdown."""
    objects: dict[str, dict[str, tuple[str, bool]]] = {}
    current = None
    for line in markdown.splitlines():
        if m := re.fullmatch(r"### `(\w+)`", line):
            current = objects.setdefault(m[1], {})
        elif line.startswith("#"):
            current = None
        elif current is not None and (m := re.match(r"\| `(\w+)` \| ([^|]+?) \| (contract|addition) \|", line)):
            assert m[1] not in current, f"column {m[1]} listed twice"
            current[m[1]] = (m[2], m[3] == "contract")
    return objects


def analyst_facing(name: str) -> bool:
    return name.startswith(("fct_", "rpt_")) or name in ("etl_runs", "etl_rejects", "etl_check_results", "etl_settings")


@pytest.fixture(scope="module")
def markdown() -> str:
    return docs.build_dictionary("md")


@pytest.fixture(scope="module")
def warehouse(sandbox_warehouse) -> Path:
    """A warehouse from a small sandbox run over real HTTP (every endpoint, both platforms; the
    session's: copy it to change it)."""
    return DataLayout.of(sandbox_warehouse).warehouse


def test_committed_dictionary_is_current(markdown):
    for fmt, name in docs.FILES.items():
        path = SQL_DIR / name
        assert path.exists(), STALE.format(f"sql/{name} is missing; it")
        expected = markdown if fmt == "md" else docs.build_dictionary(fmt)
        assert path.read_text(encoding="utf-8") == expected, STALE.format(f"sql/{name}")


def test_dictionary_matches_a_real_warehouse(markdown, warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'main' order by table_name, ordinal_position"
        ).fetchall()
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables").fetchall())
        assert con.execute("select count(*) from fct_orders").fetchone()[0] > 0
    finally:
        con.close()
    actual: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in rows:
        if analyst_facing(table):
            actual.setdefault(table, []).append((column, type_))

    parsed = parse_dictionary(markdown)  # the rendered text, so a broken renderer fails here
    assert sorted(parsed) == sorted(actual), "objects in the dictionary differ from the warehouse's"
    for name, columns in actual.items():
        listed = [(c, t) for c, (t, _) in parsed[name].items()]
        assert listed == columns, f"{name}: dictionary {listed} != warehouse {columns}"
        assert kinds[name] == ("VIEW" if name.startswith("rpt_") else "BASE TABLE"), name

    model = {o.name: o for s in docs.sections() for o in s.objects}  # and the generator's model
    assert {n: [(c.name, c.type) for c in o.columns] for n, o in model.items()} == actual


def test_every_view_column_has_a_meaning(markdown):
    assert docs.UNDOCUMENTED not in markdown, "a view column has no entry in docs.VIEW_COLUMNS"
    described = docs.view_columns()
    assert set(docs.VIEW_COLUMNS) == set(described), "VIEW_COLUMNS names a view that does not exist"
    for view, meanings in docs.VIEW_COLUMNS.items():
        stale = set(meanings) - {c for c, _ in described[view]}
        assert not stale, f"docs.VIEW_COLUMNS[{view!r}] documents columns the view no longer has: {stale}"
    for obj in (o for s in docs.sections() for o in s.objects):
        assert obj.doc.strip(), f"{obj.name} has no description"
        assert all(c.doc.strip() for c in obj.columns), f"{obj.name} has a column without a meaning"


def parse_warehouse_md(text: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``docs/warehouse.md`` → (fact table → its column names, report view → the columns its bullet names)."""
    tables: dict[str, set[str]] = {}
    views: dict[str, set[str]] = {}
    current = None
    bullet = None
    for line in text.splitlines():
        if m := re.match(r"`(fct_\w+)` — ", line):
            current = tables.setdefault(m[1], set())
        elif current is not None and line.startswith("| `"):
            first_cell = line.split("|")[1]
            current.update(re.findall(r"`(\w+)`", first_cell))
        if m := re.match(r"- `(rpt_\w+)` — ", line):
            bullet = views.setdefault(m[1], set())
            line = line[m.end() :]
        elif not line.startswith("  "):
            bullet = None
        if bullet is not None:
            bullet.update(re.findall(r"`([a-z_0-9]+)`", line))
    return tables, views


def test_every_warehouse_md_column_is_in_the_dictionary(markdown):
    if not WAREHOUSE_MD.exists():
        pytest.skip(f"the warehouse contract is not at {WAREHOUSE_MD} (set XPORT_WAREHOUSE_MD)")
    tables, views = parse_warehouse_md(WAREHOUSE_MD.read_text(encoding="utf-8"))
    assert set(tables) == {"fct_orders", "fct_order_lines", "fct_refunds", "fct_parcels", "fct_parcel_events"}
    assert all(len(cols) >= 7 for cols in tables.values()), tables  # the parser really read the tables
    parsed = parse_dictionary(markdown)
    for table, columns in tables.items():
        assert table in parsed, f"{table} (docs/warehouse.md) is missing from the dictionary"
        missing = columns - set(parsed[table])
        assert not missing, f"{table}: docs/warehouse.md columns missing from the dictionary: {missing}"
        contract = {c for c, (_, public) in parsed[table].items() if public}
        assert contract == columns, (
            f"{table}: columns marked contract {sorted(contract)} differ from docs/warehouse.md {sorted(columns)}"
        )
    assert set(views) <= set(parsed) and len(views) == 5, views
    for view, columns in views.items():
        not_contract = {c for c in columns if not parsed[view].get(c, ("", False))[1]}
        assert not not_contract, f"{view}: docs/warehouse.md names {not_contract}, not contract columns here"


def test_status_mappings_come_from_the_normalisers(markdown):
    from xport_etl.normalize.refunds import ALIBABA_REFUND_STATUS
    from xport_etl.normalize.taobao_orders import TAOBAO_ORDER_STATUS

    for code, unified in TAOBAO_ORDER_STATUS.items():
        row = next(line for line in markdown.splitlines() if line.startswith(f"| `{unified}` |"))
        assert f"`{code}`" in row.split("|")[2]
    for status in (s for s in ALIBABA_REFUND_STATUS if s):
        assert f"`{status}`" in markdown


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.tags, self.external = set(), set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.add(attrs.get("href"))
        if tag in ("script", "link", "img") or (attrs.get("src") or "").startswith("http"):
            self.external.append(tag)


def test_html_is_one_self_contained_page_with_a_table_of_contents(markdown):
    page = docs.build_dictionary("html")
    parser = _Collect()
    parser.feed(page)
    names = set(parse_dictionary(markdown))
    assert names <= parser.ids, names - parser.ids
    assert {f"#{n}" for n in names} <= parser.hrefs  # the table of contents links every object
    assert all(h.startswith("#") for h in parser.hrefs)
    assert not parser.external and "<style>" in page
    assert parser.tags.count("table") == len(names) + 2  # one per object, two status mappings


def test_cli_writes_the_requested_formats(tmp_path, capsys):
    from xport_etl.cli import build_parser, main

    assert main(["docs", "--out", str(tmp_path / "md"), "--format", "md"]) == 0
    assert [p.name for p in (tmp_path / "md").iterdir()] == ["DATA_DICTIONARY.md"]

    args = build_parser().parse_args(["docs", "--out", str(tmp_path / "both")])
    assert args.func is docs.cmd_docs
    assert args.func(args) == 0
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == ["DATA_DICTIONARY.md", "data_dictionary.html"]
    assert "data_dictionary.html" in capsys.readouterr().out
    with pytest.raises(ValueError):
        docs.build_dictionary("pdf")


# ---- the warehouse describes itself (issue 27.1)


def warehouse_comments(path: Path) -> dict[tuple[str, str, str | None], str | None]:
    """Every comment of the warehouse's own objects, read by a plain read-only DuckDB connection
    (what a BI tool sees): ``(kind, object, column) → comment``."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for name, comment in con.execute("select table_name, comment from duckdb_tables()").fetchall():
            out[("table", name, None)] = comment
        for name, comment in con.execute("select view_name, comment from duckdb_views() where not internal").fetchall():
            out[("view", name, None)] = comment
        for name, column, comment, is_view in con.execute(
            "select table_name, column_name, comment, table_name in (select view_name from duckdb_views()) "
            "from duckdb_columns() where not internal"
        ).fetchall():
            out[("view" if is_view else "table", name, column)] = comment
        for name, comment in con.execute(
            "select distinct function_name, comment from duckdb_functions() "
            "where function_type = 'table_macro' and not internal"
        ).fetchall():
            out[("macro", name, None)] = comment
        return out
    finally:
        con.close()


def dictionary_comments() -> dict[tuple[str, str, str | None], str]:
    """What the data dictionary says of each object and column, keyed as :func:`warehouse_comments`."""
    out: dict[tuple[str, str, str | None], str] = {}
    for obj in (o for s in docs.sections() for o in s.objects):
        out[(obj.kind, obj.name, None)] = obj.doc
        out.update({(obj.kind, obj.name, c.name): c.doc for c in obj.columns})
        if obj.macro:
            out[("macro", obj.macro, None)] = next(r for r in reports() if r.name == obj.name).macro_doc
    return out


def test_every_object_and_column_carries_the_dictionarys_text_as_its_comment(warehouse):
    found = warehouse_comments(warehouse)
    expected = dictionary_comments()
    assert set(found) == set(expected), "the warehouse's objects and the dictionary's differ"
    assert all(text and text.strip() for text in found.values()), "an object or column without a comment"
    assert found == expected
    assert found[("table", "fct_orders", "order_id")] == "Taobao: the xportcn order `id`; 1688: `orderId`"
    assert found[("view", "rpt_spend_monthly", None)].startswith("Monthly spend per platform and currency")
    assert "stuck" in found[("table", "etl_settings", "key")]


def _strip_comments(path: Path) -> None:
    """What a warehouse published before the comments holds: none (every object's is null)."""
    con = duckdb.connect(str(path))
    try:
        kinds = {"table": "table", "view": "view", "macro": "macro table"}
        for (kind, name, column), comment in warehouse_comments_of(con).items():
            if comment is None:
                continue
            target = f"column {name}.{column}" if column else f"{kinds[kind]} {name}"
            con.execute(f"comment on {target} is null")
    finally:
        con.close()


def warehouse_comments_of(con) -> dict:
    from xport_etl.report.views import current_comments

    return current_comments(con)


def test_a_warehouse_published_before_the_comments_gains_them_on_its_next_publish(warehouse, tmp_path):
    import shutil

    from xport_etl.run.tasks import refresh_warehouse

    old = tmp_path / "old"
    old.mkdir()
    shutil.copyfile(warehouse, DataLayout.of(old).warehouse)
    _strip_comments(DataLayout.of(old).warehouse)
    con = duckdb.connect(str(DataLayout.of(old).warehouse))  # nor the view and the setting issue 27 added
    try:
        con.execute("drop view rpt_spend_by_channel_monthly")
        con.execute("delete from etl_settings where key = 'stuck_recent_days'")
    finally:
        con.close()
    before = warehouse_comments(DataLayout.of(old).warehouse)
    assert before and set(before.values()) == {None}
    refresh_warehouse(Settings(data_dir=old, stuck_recent_days=45))  # the next publish (the reports DAG's)
    assert warehouse_comments(DataLayout.of(old).warehouse) == dictionary_comments()
    con = duckdb.connect(str(DataLayout.of(old).warehouse), read_only=True)
    try:
        assert con.execute("select value from etl_settings where key = 'stuck_recent_days'").fetchall() == [("45",)]
        assert con.execute("select count(*) from rpt_spend_by_channel_monthly").fetchone()[0] > 0
    finally:
        con.close()


def test_comments_are_sql_string_literals_whatever_they_hold():
    from xport_etl.report.views import sql_string

    con = duckdb.connect()
    try:
        con.execute("create table t (a int)")
        for text in ("it's", "a ''quoted'' word", "back\\slash; drop table t; --", "多字节 ✓"):
            con.execute(f"comment on column t.a is {sql_string(text)}")
            assert con.execute("select comment from duckdb_columns() where table_name = 't'").fetchone()[0] == text
    finally:
        con.close()
