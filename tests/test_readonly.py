"""Least privilege for readers, and no user-supplied value spliced into SQL text.

- A reader's connection (:func:`xport_etl.load.connect.connect_reader`, what analysts, reports and the
  fan-out queries use) cannot change the warehouse, nor write files into the data directory.
- Every ``execute``/``sql``/``executemany`` call in ``xport_etl/`` whose SQL is an f-string (or
  built with ``%``/``.format``/``+``) splices only reviewed expressions: table, column and view
  names from ``schemas.py`` / ``sql/`` file names, fixed constants, ``sql/`` file contents. A new
  splice fails :func:`test_sql_text_splices_only_reviewed_expressions` until it is reviewed and
  added to :data:`REVIEWED_SPLICES` with where its value comes from.
- Hostile report names given to the CLI are refused (exit code 2) and change nothing.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import duckdb
import pytest

from xport_etl.cli import main
from xport_etl.layout import DataLayout
from xport_etl.load.connect import connect_reader

PACKAGE = Path(__file__).resolve().parents[1] / "xport_etl"


def _state(data_dir: Path) -> tuple[str, list[str]]:
    """The warehouse's bytes and every file under the data directory."""
    digest = hashlib.sha256(DataLayout.of(data_dir).warehouse.read_bytes()).hexdigest()
    return digest, sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))


WRITES = {
    "insert": "insert into fct_orders (platform, order_id) values ('taobao', 'x')",
    "update": "update fct_orders set status = 'cancelled'",
    "delete": "delete from fct_orders",
    "create table": "create table evil (a int)",
    "create view": "create view evil as select 1",
    "drop table": "drop table fct_orders",
    "drop view": "drop view rpt_spend_monthly",
    "alter": "alter table fct_orders add column evil int",
    "truncate": "truncate fct_order_lines",
    "attach new file": "attach '{dir}/evil.duckdb' as evil",
    "detach main and attach writable": "attach '{dir}/warehouse.duckdb' as rw (read_only false)",
    "create sequence": "create sequence evil_seq",
}
# a read-only DuckDB database still lets a connection write outside it; connect_reader must
# disable external access (enable_external_access = false) to stop these
FILE_WRITES = {
    "attach writable new file": "attach '{dir}/evil2.duckdb' as evil2 (read_only false)",
    "copy query to csv": "copy (select * from fct_orders) to '{dir}/orders.csv'",
    "copy table to parquet": "copy fct_orders to '{dir}/orders.parquet' (format parquet)",
    "export database": "export database '{dir}/dump'",
}


@pytest.mark.parametrize("sql", WRITES.values(), ids=WRITES.keys())
def test_reader_cannot_modify_the_warehouse(published, sql):
    before = _state(published)
    con = connect_reader(published)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(sql.format(dir=published))
        assert con.execute("select count(*) from fct_orders").fetchall() == [(2,)]
    finally:
        con.close()
    assert _state(published) == before


@pytest.mark.parametrize("sql", FILE_WRITES.values(), ids=FILE_WRITES.keys())
def test_reader_cannot_write_files(published, sql):
    before = _state(published)
    con = connect_reader(published)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(sql.format(dir=published))
    finally:
        con.close()
    assert _state(published) == before


def test_reader_still_reads_reports(published):
    con = connect_reader(published)
    try:
        assert con.execute("select count(*) from fct_orders").fetchall() == [(2,)]
        con.execute("select * from rpt_spend_monthly").fetchall()
    finally:
        con.close()


# ---- no user-supplied value spliced into SQL text

# (module, expression spliced into SQL text) → where its value comes from
REVIEWED_SPLICES = {
    (
        "taobao_orders_sql.py",
        "_order_cols(self.offset_s)",
    ): "column expressions in taobao_orders_sql.py (an int offset)",
    ("taobao_orders_sql.py", "_order_cols(self.window.offset_s)"): "column expressions in taobao_orders_sql.py",
    ("taobao_orders_sql.py", "_line_cols()"): "column expressions written in taobao_orders_sql.py",
    ("taobao_orders_sql.py", "_warn_cols('l', LINE_WARN)"): "column expressions of the LINE_WARN constant's names",
    ("taobao_orders_sql.py", "_warn_cols('r', ORDER_WARN)"): "column expressions of the ORDER_WARN constant's names",
    ("taobao_orders_sql.py", "', '.join((f'w_{n}' for n in ORDER_WARN))"): "column names from the ORDER_WARN constant",
    ("taobao_orders_sql.py", "', '.join((f'w_{n}' for n in LINE_WARN))"): "column names from the LINE_WARN constant",
    ("taobao_orders_sql.py", "', '.join(('null::varchar' for _ in ORDER_WARN))"): "constant null literals",
    ("taobao_orders_sql.py", "', '.join(('null::varchar' for _ in LINE_WARN))"): "constant null literals",
    ("taobao_orders_sql.py", "any_warn"): "a condition on column names from the ORDER_WARN constant",
    ("taobao_orders_sql.py", "any_line_warn"): "a condition on column names from the LINE_WARN constant",
    ("taobao_orders_sql.py", "skip"): "a constant clause over page sequence numbers (ints) the SQL itself returned",
    ("taobao_orders_sql.py", "TRAILING_COMMA"): "a regular-expression constant in taobao_orders_sql.py",
    ("taobao_orders_sql.py", "self.schema"): "the window's own schema: a constant prefix and a uuid4 hex",
    ("taobao_orders_sql.py", "self.out_orders"): "the window's own table name (self.schema + a constant)",
    ("taobao_orders_sql.py", "self.out_lines"): "the window's own table name (self.schema + a constant)",
    ("taobao_orders_sql.py", "self.orders"): "a chunk's own table name: self.schema + an int page number",
    ("taobao_orders_sql.py", "self.lines"): "a chunk's own table name: self.schema + an int page number",
    ("taobao_orders_sql.py", "c.orders"): "a chunk's own table name: self.schema + an int page number",
    ("taobao_orders_sql.py", "c.lines"): "a chunk's own table name: self.schema + an int page number",
    ("taobao_orders_sql.py", "keys"): "a union of the window's own table names",
    ("taobao_orders_sql.py", "SUSPECT"): "a constant tuple of reason names in taobao_orders_sql.py",
    ("taobao_orders_sql.py", "', '.join(map(str, whole))"): "page sequence numbers (ints) the SQL itself returned",
    ("taobao_orders_sql.py", "STRUCTURE"): "json.dumps of the field-name constants in normalize_sql.py",
    ("taobao_orders_sql.py", "where"): "a constant clause (bad_json) in normalize_sql.py",
    ("taobao_orders_sql.py", "UNSAFE_ESCAPE"): "a regular-expression constant in normalize_sql.py",
    ("taobao_orders_sql.py", "INEXACT_NUMBER"): "a regular-expression constant in normalize_sql.py",
    ("taobao_orders_sql.py", "MAYBE_INEXACT[0]"): "a regular-expression constant in normalize_sql.py",
    ("taobao_orders_sql.py", "MAYBE_INEXACT[1]"): "a regular-expression constant in normalize_sql.py",
    (
        "taobao_orders_sql.py",
        "'where seq not in (select seq from bad_json)' if skip_bad_json else ''",
    ): "constant clauses",
    ("taobao_orders_sql.py", "table"): "the window's own reference-row tables (self.schema + a constant)",
    ("staging.py", "source"): "TaobaoOrdersSql.out_orders / out_lines: the window's own table names",
    ("staging.py", "select"): "column names of a schemas.py TableSpec, or '?' for a parameter",
    ("publish.py", "spec.name"): "TableSpec names in schemas.py",
    ("merge.py", "spec.name"): "TableSpec names in schemas.py",
    ("migrate.py", "spec.name"): "TableSpec names in schemas.py",
    ("ledger.py", "spec.name"): "TableSpec names in schemas.py (ETL_RUNS, ETL_CHECK_RESULTS)",
    ("migrate.py", "col.name"): "Column names in schemas.py",
    ("migrate.py", "col.duckdb_type"): "types mapped in schemas.py",
    ("views.py", "report.name"): "view name: a sql/reports/*.sql file stem",
    ("views.py", "report.select"): "a sql/reports file, or `select * from <its macro>(WAREHOUSE_TZ_SQL)`",
    ("checks.py", "query"): "a sql/checks file, or it wrapped in CTEs of STAGED_TABLES names and keys (_scoped)",
    ("checks.py", "SAMPLE_ROWS"): "an int constant in checks.py",
    ("merge.py", "', '.join(key)"): "TableSpec.key in schemas.py",
    ("merge.py", "version"): "StagedTable.version in schemas.py",
    ("merge.py", "on"): "join condition built from TableSpec.key",
    ("merge.py", "key[-1]"): "TableSpec.key in schemas.py",
    ("merge.py", "', '.join((f'n.{k}' for k in key))"): "TableSpec.key in schemas.py",
    ("merge.py", "by_key"): "join condition built from TableSpec.key",
    ("merge.py", "_cols(spec, 'p.')"): "column names in schemas.py",
    ("merge.py", "_cols(spec)"): "column names in schemas.py",
    ("merge.py", "cspec.name"): "TableSpec names in schemas.py",
    ("merge.py", "_cols(cspec, 'c.')"): "column names in schemas.py",
    ("merge.py", "_cols(cspec)"): "column names in schemas.py",
    ("merge.py", "link"): "join condition built from StagedTable.parent_key",
    ("merge.py", "_cols(ETL_REJECTS)"): "column names in schemas.py",
    ("merge.py", "_insert_cols(spec)"): "column names in schemas.py (the lineage column's value a parameter)",
    ("merge.py", "_insert_cols(cspec)"): "column names in schemas.py (the lineage column's value a parameter)",
    ("merge.py", "_insert_cols(ETL_REJECTS)"): "column names in schemas.py (the lineage column's value a parameter)",
    ("publish.py", "merged"): "'_merged_' and a TableSpec name in schemas.py",
    ("publish.py", "', '.join(key)"): "TableSpec.key or StagedTable.parent_key in schemas.py",
    ("publish.py", "on"): "join condition built from TableSpec.key or StagedTable.parent_key",
    ("ledger.py", "', '.join(cols)"): "ETL_RUNS and ETL_CHECK_RESULTS column names in schemas.py",
    ("ledger.py", "', '.join(('?' for _ in cols))"): "placeholders only",
    ("views.py", "target"): "describe_objects: TableSpec/Column names in schemas.py, sql/reports file stems, "
    "their view columns and `-- macro:` names",
    ("views.py", "sql_string(text)"): "a schemas.py or sql/reports doc text, quoted as a SQL string literal",
    ("reports.py", "view"): "resolve(): only sql/reports/*.sql file stems",
    ("reports.py", "where"): "filter_clause(): FILTER_COLUMNS names, fixed operators and ? placeholders",
    ("dashboard.py", "view"): "checked against monthly_reports() keys first",
    ("dashboard.py", "macro"): "a monthly_reports() value: a sql/reports file's `-- macro:` name",
    ("dashboard.py", "WAREHOUSE_TZ_SQL"): "a constant expression in report/views.py",
    ("dashboard.py", "t"): "COUNTED_TABLES constant (FACT_TABLES and etl_rejects)",
    ("demo.py", "t"): "FACT_TABLES constant",
    ("status.py", "spec.name"): "TableSpec names in schemas.py",
    ("status.py", "source"): "TableSpec names in schemas.py",
    ("docs.py", "report.name"): "view name: a sql/reports/*.sql file stem",
    ("taobao_orders_sql.py", "orders"): "a union of the window's own table names",
    ("taobao_orders_sql.py", "lines"): "a union of the window's own table names",
}
SQL_METHODS = {"execute", "executemany", "sql", "query"}


def _splices(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, expression) for each value put into the SQL text of a DB call."""
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_METHODS
            and node.args
        ):
            continue
        sql = node.args[0]
        if isinstance(sql, ast.JoinedStr):
            found += [(node.lineno, ast.unparse(v.value)) for v in sql.values if isinstance(v, ast.FormattedValue)]
        elif isinstance(sql, ast.BinOp) and isinstance(sql.op, (ast.Mod, ast.Add)):
            found.append((node.lineno, f"<{type(sql.op).__name__} built SQL> {ast.unparse(sql)}"))
        elif isinstance(sql, ast.Call) and isinstance(sql.func, ast.Attribute) and sql.func.attr == "format":
            found.append((node.lineno, f"<.format built SQL> {ast.unparse(sql)}"))
    return found


def test_sql_text_splices_only_reviewed_expressions():
    unreviewed = []
    seen = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, expr in _splices(ast.parse(path.read_text(), filename=str(path))):
            key = (path.name, expr)
            seen.add(key)
            if key not in REVIEWED_SPLICES:
                unreviewed.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {expr}")
    assert unreviewed == [], "SQL text built from unreviewed values (use ? parameters):\n" + "\n".join(unreviewed)
    assert ("reports.py", "view") in seen  # the audit does see the splices it reviews


def test_the_audit_flags_a_spliced_value():
    code = 'con.execute(f"select * from t where name = \'{name}\'")\ncon.sql("select %s" % x)\n'
    assert [e for _line, e in _splices(ast.parse(code))] == ["name", "<Mod built SQL> 'select %s' % x"]


HOSTILE_NAMES = [
    "spend; drop table fct_orders",
    "rpt_spend_monthly; drop table fct_orders",
    "spend' or '1'='1",
    "fct_orders",
    "etl_settings",
    "information_schema.tables",
    "rpt_spend_monthly union select * from etl_runs",
    "../../etc/passwd",
    "",
    "spend\n; delete from fct_orders",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_cli_refuses_hostile_report_names_and_changes_nothing(published, name, capsys):
    before = _state(published)
    assert main(["report", name, "--data-dir", str(published), "-q"]) == 2
    err = capsys.readouterr().err
    assert "unknown report" in err and "spend" in err
    assert _state(published) == before
    con = duckdb.connect(str(DataLayout.of(published).warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from fct_orders").fetchall() == [(2,)]
    finally:
        con.close()


def test_cli_report_still_works(published, capsys):
    assert main(["report", "spend", "--data-dir", str(published), "--format", "csv", "-q"]) == 0
    assert capsys.readouterr().out.startswith("month,")
