"""The merge: staged Parquet batches into a warehouse state, latest state wins.

Merge rule (latest state wins, never arrival order): per key, the version with the greatest
version column wins (``updated_at``; for parcels ``last_event_at``; null is older than any time);
on a tie, the later extraction wins. A parent's children (an order's lines, a parcel's events)
are replaced by the children from the winning version's batch. Each batch's rejects and warnings
replace the ones its window had. Columns that depend on other tables are derived again after
every merge.

Every row the merge writes (a winning version, its children, a rewritten reject, a parcel whose
derived column changed) gets the merging run's id in its lineage column ``run_id``
(:data:`~xport_etl.schemas.RUN_ID`): the table's latest writer.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from xport_etl.load.staging import Batch
from xport_etl.schemas import ETL_REJECTS, FCT_PARCELS, STAGED_TABLES, StagedTable

__all__ = ["MERGE_ROWS", "merge_groups", "merge_rejects", "merge_staged"]


def _cols(spec, prefix: str = "") -> str:
    """The staged columns of ``spec`` (what a Parquet batch holds), comma-separated."""
    return ", ".join(prefix + c for c in spec.staged_columns)


def _insert_cols(spec) -> str:
    """The columns a merge inserts: the staged ones, then the lineage column ``run_id``."""
    return f"{_cols(spec)}, run_id"


def merge_staged(
    con: duckdb.DuckDBPyConnection,
    batches: Sequence[Batch],
    changed: set[str] | None = None,
    *,
    run_id: str | None = None,
) -> dict[str, int]:
    """Merge every staged parent table (and its children) of the batches; rows written per table.

    ``changed``, if given, receives the names of the tables whose rows changed (a parent with
    winning versions, and its children, which are replaced; a table ``_derive`` updated).
    ``run_id``: the merging run's id, written on every row written (None: left null)."""
    written: dict[str, int] = {}
    changed = set() if changed is None else changed
    for staged in STAGED_TABLES.values():
        if staged.parent is None:
            children = [c for c in STAGED_TABLES.values() if c.parent == staged.name]
            for group in merge_groups(batches, staged.name):
                rows = _merge_parent(con, group, staged, children, run_id)
                for table, n in rows.items():
                    written[table] = written.get(table, 0) + n
                if rows.get(staged.spec.name):
                    changed.update([staged.spec.name, *(c.spec.name for c in children)])
    if _derive(con, run_id):
        changed.add(FCT_PARCELS.name)
    return written


MERGE_ROWS = 400_000  # staged rows of a parent table merged in one statement (see merge_groups)


def merge_groups(batches: Sequence[Batch], table: str, limit: int | None = None) -> list[list[Batch]]:
    """The batches in order, cut into consecutive groups of at most ``limit`` staged rows of
    ``table`` (a batch larger than that is a group of its own), each merged in one statement.

    The merge ranks the versions of each key with a window function, which cannot spill: one
    merge of a 1M-order load needs more than 192MB, three merges of a third of it fit in
    ``XPORT_LOAD_MEMORY`` with room to spare. Merging groups one after another gives the same
    result as one merge (each applies "latest version wins, then latest extraction" against what
    is there); only on a full tie (same version, same extraction time) does the later group win,
    where one merge picks either.
    """
    limit = MERGE_ROWS if limit is None else limit
    groups: list[list[Batch]] = []
    rows = 0
    for b in batches:
        n = b.counts.get(table, 0)
        if not groups or (rows + n > limit and groups[-1]):
            groups.append([])
            rows = 0
        groups[-1].append(b)
        rows += n
    return groups


def _merge_parent(con, batches: Sequence[Batch], staged: StagedTable, children, run_id: str | None) -> dict[str, int]:
    """Merge one parent table's staged rows (and their children) of ``batches``.

    The versions are ranked on the keys alone (key, batch, version, extraction time); the rows
    themselves stream from the Parquet files once, into the table, picked by (key, batch), which
    names one row because a batch stages one row per key (its window's winner; the children are
    picked the same way). Ranking the keys rather than whole rows spares copying every staged row
    twice into temp tables (see bench/NOTES.md); memory is bounded by the DuckDB budget,
    ``XPORT_LOAD_MEMORY``, either way."""
    spec = staged.spec
    files = list(dict.fromkeys(f for b in batches for f in b.files.get(staged.name, [])))
    if not files:
        return {}
    key = spec.key
    version = staged.version
    # latest state wins: greatest version (null = oldest), then the later extraction
    con.execute(
        f"""
        create or replace temp table new_keys as
        select {", ".join(key)}, _batch_id, {version}, extracted_at from read_parquet(?, union_by_name = true)
        qualify row_number() over (
            partition by {", ".join(key)}
            order by coalesce({version}, '-infinity'::timestamptz) desc, extracted_at desc
        ) = 1
        """,
        [files],
    )
    on = " and ".join(f"t.{k} = n.{k}" for k in key)
    con.execute(
        f"""
        create or replace temp table winners as
        select {", ".join(f"n.{k}" for k in key)}, n._batch_id from new_keys as n
        left join {spec.name} as t on {on}
        where t.{key[-1]} is null
           or coalesce(n.{version}, '-infinity'::timestamptz) > coalesce(t.{version}, '-infinity'::timestamp)
           or (n.{version} is not distinct from t.{version} and n.extracted_at >= t.extracted_at)
        """
    )
    # the keys merged into this next state (the data checks can be scoped to them: see evaluate_checks);
    # a table of the next state's file, as a run merges in several steps, dropped before the swap
    con.execute(f"create table if not exists _merged_{spec.name} as select {', '.join(key)} from winners limit 0")
    con.execute(f"insert into _merged_{spec.name} select {', '.join(key)} from winners")
    con.execute(f"delete from {spec.name} as t using winners as n where {on}")
    by_key = " and ".join(f"p.{k} = n.{k}" for k in key)
    con.execute(
        f"""
        insert into {spec.name} ({_insert_cols(spec)})
        select {_cols(spec, "p.")}, ?::varchar from read_parquet(?, union_by_name = true) as p
        semi join winners as n on {by_key} and p._batch_id = n._batch_id
        """,
        [run_id, files],
    )
    written = {spec.name: con.execute("select count(*) from winners").fetchall()[0][0]}
    for child in children:
        cspec = child.spec
        link = " and ".join(f"c.{k} = n.{k}" for k in child.parent_key)
        con.execute(f"delete from {cspec.name} as c using winners as n where {link}")
        child_files = list(dict.fromkeys(f for b in batches for f in b.files.get(child.name, [])))
        written[cspec.name] = 0
        if child_files:
            # the winners' children were all deleted above, so the rows inserted are the rows written
            (written[cspec.name],) = con.execute(
                f"""
                insert into {cspec.name} ({_insert_cols(cspec)})
                select {_cols(cspec, "c.")}, ?::varchar
                from read_parquet(?, union_by_name = true) as c
                semi join winners as n on {link} and c._batch_id = n._batch_id
                """,
                [run_id, child_files],
            ).fetchall()[0]
    return written


def _derive(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> int:
    """Columns that depend on other tables, recomputed after every merge.

    1688 parcels are delivered once their order is confirm_goods/success (their steps carry no
    status): ``delivered_at`` is then the time of the parcel's last step. A parcel updated is
    written by the run (``run_id``). Returns the rows updated.
    """
    return con.execute(
        """
        update fct_parcels as p
        set delivered_at = case when o.platform_status in ('confirm_goods', 'success')
                                then p.last_event_at end,
            run_id = ?::varchar
        from fct_orders as o
        where p.platform = '1688' and o.platform = '1688' and o.order_id = p.order_id
          and p.delivered_at is distinct from
              (case when o.platform_status in ('confirm_goods', 'success') then p.last_event_at end)
        """,
        [run_id],
    ).fetchall()[0][0]


def merge_rejects(con: duckdb.DuckDBPyConnection, batches: Sequence[Batch], *, run_id: str | None = None) -> int:
    """Replace each batch's rejects and warnings: re-normalising a window never duplicates them;
    each row written carries ``run_id``. Returns the rejected records (rows of severity 'rejected')."""
    total = 0
    for b in batches:
        con.execute("delete from etl_rejects where endpoint = ? and window_id = ?", [b.endpoint, b.window_id])
        files = b.files.get("rejects", [])
        if files:
            con.execute(
                f"insert into etl_rejects ({_insert_cols(ETL_REJECTS)}) "
                f"select {_cols(ETL_REJECTS)}, ?::varchar from read_parquet(?)",
                [run_id, files],
            )
        total += b.counts.get("rejects", 0)
    return total
