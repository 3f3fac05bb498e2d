"""Fan-out streams: the keys a run must (re)fetch, chosen by the stream's key query from the run's
next state, and one detail call per key, landed ``FANOUT_BATCH`` keys a window."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from xport_etl.errors import ConfigError
from xport_etl.extract.endpoints import endpoints_for
from xport_etl.extract.landing import Manifest, PageWriter, utc_now_iso
from xport_etl.faults import crashpoint
from xport_etl.ledger import _run_row, append_run
from xport_etl.run import Progress
from xport_etl.run.paging import client_for, count_requests
from xport_etl.run.steps import step
from xport_etl.run_ids import new_run_id
from xport_etl.settings import Settings
from xport_etl.streams import graph

FANOUT_BATCH = 2000  # keys per landed fan-out window (the unit of checkpointing)
FANOUT_WORKERS = 4  # concurrent detail calls; the shared rate limiter paces them


def _fanout(endpoint: str):
    fanout = graph.stream(endpoint).fanout
    if fanout is None:
        raise ConfigError(f"{endpoint} is not a fan-out: it has no key query")
    return fanout


def fanout_keys(settings: Settings, endpoint: str, state=None) -> tuple[list[dict[str, Any]], datetime | None]:
    """The keys a fan-out endpoint must (re)fetch, from the run's next state ``state`` (what the
    run has loaded so far, unpublished) if it has one, else from the published warehouse.

    Each row has ``key`` (the detail call's parameter) and context columns (parent ids) that are
    landed with the page. The query is ``sql/fanout/<endpoint>.sql``: it asks only for what can
    still change (a delivered parcel or a finished refund is not fetched again), and something
    that can still change only once the API's clock has moved ``settings.refetch_after`` seconds
    since its last fetch. The API's clock is the latest order update the warehouse has seen: it
    follows the real API's "now" and the sandbox's simulated one alike.

    Returns:
        The key rows, and the API clock they were chosen at (None for an empty warehouse).
    """
    from xport_etl.load.connect import connect_reader
    from xport_etl.load.published import PublishedWarehouse
    from xport_etl.resources import SQL_DIR

    if state is not None and state.exists():
        con = state.connect_reader()
    elif PublishedWarehouse(settings).exists():
        con = connect_reader(settings.layout)
    else:
        return [], None
    try:
        data_now = con.execute("select max(updated_at) from fct_orders").fetchall()[0][0]
        params = {"data_now": data_now or datetime(1970, 1, 1), "refetch_s": float(settings.refetch_after)}
        sql = (SQL_DIR / _fanout(endpoint).keys).read_text()
        cur = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()], data_now
    finally:
        con.close()


def extract_fanout(
    settings: Settings,
    endpoint: str,
    *,
    keys: Sequence[dict[str, Any]] | None = None,
    by: str | None = None,
    state=None,
    client=None,
    progress: Progress | None = None,
    on_landed: Callable[[str], None] | None = None,
    run_id: str | None = None,
) -> list[str]:
    """Call a detail endpoint once per key and land the answers, ``FANOUT_BATCH`` keys a window.

    The keys are ``keys`` if given, else what :func:`fanout_keys` chooses from the run's next
    state ``state`` (or the published warehouse). ``by`` asks a list endpoint instead, one page
    per key through that filter (``refundId`` of the Taobao refund list, ``orderNo`` of the order
    list: a key names at most one record), landed as a list page.

    A key the server does not know (code 404) is skipped and counted; any other failure fails
    the window, and windows already landed stay landed.

    The call is a ``fanout`` step of run ``run_id`` (default: a new id) in the run ledger
    (:func:`~xport_etl.run.steps.step`): the keys, windows, requests and records, and a failure.

    Returns:
        The manifest paths of the landed windows (possibly none).
    """
    run_id = run_id or new_run_id()
    with step(settings.layout, run_id, "fanout", endpoint=endpoint) as info:
        return _extract_fanout(settings, endpoint, keys, by, state, client, progress, on_landed, run_id, info)


def _extract_fanout(settings, endpoint, keys, by, state, client, progress, on_landed, run_id, info) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    from xport_etl.errors import FatalError

    spec = endpoints_for(settings.assumptions)[endpoint]
    data_now = None
    if keys is None:
        keys, data_now = fanout_keys(settings, endpoint, state)
    keys = list(keys)
    info.update(keys=len(keys), windows=0, requests=0, records=0, not_found=0)
    if not keys:
        return []
    stamp = datetime.now(UTC)
    paths = []

    param = by or spec.detail_param
    if param is None:
        raise ConfigError(f"endpoint {endpoint} takes no key: name the filter to ask it by")
    in_body = spec.pages_in_body if spec.is_paged else spec.method == "POST"

    def call(row: dict[str, Any]):
        args: dict[str, Any] = {param: row["key"]}
        if spec.is_paged:
            args.update(pageNo=1, pageSize=settings.page_size)
        try:
            if in_body:
                return client.request(spec, body=args)
            return client.request(spec, params=args)
        except FatalError as exc:
            if exc.code == 404:
                return None
            raise

    with client_for(settings, client) as client, ThreadPoolExecutor(max_workers=FANOUT_WORKERS) as pool:
        first = client.stats.as_dict()
        for n, lo in enumerate(range(0, len(keys), FANOUT_BATCH)):
            chunk = keys[lo : lo + FANOUT_BATCH]
            wid = f"keys_{stamp:%Y%m%dT%H%M%S%fZ}_{n:04d}"
            manifest = Manifest(
                endpoint=endpoint,
                mode="keys",
                window_id=wid,
                window_start=stamp.isoformat(),
                window_end=stamp.isoformat(),
                run_id=uuid.uuid4().hex,
                extracted_at=utc_now_iso(),
            )
            if data_now is not None:
                manifest.extra["data_clock"] = data_now.isoformat()
            before = client.stats.as_dict()
            try:
                with PageWriter(settings.layout, manifest) as writer:
                    for done, (row, response) in enumerate(zip(chunk, pool.map(call, chunk), strict=True), 1):
                        if response is None:
                            manifest.extra["not_found"] = manifest.extra.get("not_found", 0) + 1
                        else:
                            context = {k: (None if v is None else str(v)) for k, v in row.items()}
                            writer.write(response.raw, context=context)
                            crashpoint("fanout.page")
                            manifest.pages += 1
                            manifest.records += 1
                        # a page event per 50 keys answered, and one for the last
                        if progress and (done % 50 == 0 or done == len(chunk)):
                            progress(
                                {
                                    "event": "page",
                                    "endpoint": endpoint,
                                    "window": wid,
                                    "page": done,
                                    "pages": len(chunk),
                                    "records": manifest.records,
                                    "total": len(chunk),
                                }
                            )
                    count_requests(manifest, before, client.stats.as_dict())
                    manifest.finished_at = utc_now_iso()
                    paths.append(str(writer.commit()))
                    if on_landed:
                        on_landed(paths[-1])
            except Exception as exc:
                append_run(settings.layout, _run_row(manifest, run_id=run_id, outcome="failed", error=str(exc)))
                info["requests"] = int(client.stats.as_dict()["requests"] - first["requests"])
                raise
            info["windows"] += 1
            info["records"] += manifest.records
            info["not_found"] += manifest.extra.get("not_found", 0)
        info["requests"] = int(client.stats.as_dict()["requests"] - first["requests"])
    return paths
