"""Paging one window of a list stream: page it, land each page, notice data that moved
while it was paged (docs/api-contract.md#41-moving-data), and catch up with what changed."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from xport_etl.errors import ConfigError
from xport_etl.extract.endpoints import (
    ASSUMED,
    ApiAssumptions,
    endpoints_for,
    format_window_value,
    parse_alibaba_time,
    window_params,
)
from xport_etl.extract.landing import Manifest, PageWriter, utc_now_iso, window_id
from xport_etl.faults import crashpoint
from xport_etl.ledger import _run_row, append_run
from xport_etl.run import Progress
from xport_etl.run.windows import utc
from xport_etl.run_ids import new_run_id
from xport_etl.settings import Settings
from xport_etl.streams import graph
from xport_etl.streams.spec import WindowSpec

log = logging.getLogger(__name__)

MAX_PASSES = 3  # passes over a window whose data moves while it is paged


def _make_client(settings: Settings):
    from xport_etl.extract.client import XportClient

    return XportClient(settings)


@contextlib.contextmanager
def client_for(settings: Settings, client=None) -> Iterator:
    """``client`` as it is, or a new client for ``settings`` that is closed on leaving."""
    if client is not None:
        yield client
        return
    own = _make_client(settings)
    try:
        yield own
    finally:
        own.close()


def extract_window(
    settings: Settings,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    mode: str = "create",
    client=None,
    progress: Progress | None = None,
    run_id: str | None = None,
) -> str:
    """Page ``endpoint`` for records whose ``mode`` time is in ``[start, end)`` and land the pages.

    ``run_id``: the run this extraction is part of (:mod:`xport_etl.run.steps`), which a failure's
    row in the run ledger names (default: a new id). The manifest's own ``run_id`` names this
    extraction alone (``etl_runs.extraction_id``).

    Returns:
        The path of the landed window's manifest (a small string, fit for XCom).
    """
    from xport_etl.extract.paginators import PageNumberPaginator

    spec = endpoints_for(settings.assumptions)[endpoint]
    start, end = utc(start), utc(end)
    if end <= start:
        raise ConfigError(f"empty window: end {end.isoformat()} is not after start {start.isoformat()}")
    if mode not in spec.windows:
        raise ConfigError(f"endpoint {endpoint} has no {mode!r} window; it has {sorted(spec.windows)}")
    filters = window_params(spec.windows[mode], start, end, assumptions=settings.assumptions)
    cursor = graph.stream(endpoint).cursor
    wid = window_id(mode, start, end)
    manifest = Manifest(
        endpoint=endpoint,
        mode=mode,
        window_id=wid,
        window_start=start.isoformat(),
        window_end=end.isoformat(),
        run_id=uuid.uuid4().hex,
        extracted_at=utc_now_iso(),
    )
    with client_for(settings, client) as client:
        before = client.stats.as_dict()
        paginator = PageNumberPaginator(
            page_size=settings.page_size, in_body=spec.pages_in_body, max_pages=settings.max_pages
        )
        try:
            with PageWriter(settings.layout, manifest) as writer:
                for attempt in range(1, MAX_PASSES + 1):
                    drift = _page_window(client, spec, cursor, filters, paginator, writer, manifest, progress)
                    if drift is None:
                        break
                    manifest.drift_repages += 1
                    log.warning(
                        "%s %s: data moved while paging (%s); paging the window again (%d/%d)",
                        endpoint,
                        wid,
                        drift,
                        attempt,
                        MAX_PASSES,
                    )
                else:
                    # every pass saw the data move: keep all passes (the normaliser merges them, latest
                    # state wins) and say so; the next run of this window settles it
                    manifest.extra["inconsistent"] = drift
                    log.warning("%s %s: still moving after %d passes; landed all passes", endpoint, wid, MAX_PASSES)
                if cursor is not None and mode != cursor.window and manifest.extra.get("pass_start"):
                    _catch_up(client, spec, spec.windows[cursor.window], filters, paginator, writer, manifest)
                count_requests(manifest, before, client.stats.as_dict())
                manifest.finished_at = utc_now_iso()
                crashpoint("extract.commit")
                path = writer.commit()
        except Exception as exc:
            row = _run_row(manifest, run_id=run_id or new_run_id(), outcome="failed", error=str(exc))
            append_run(settings.layout, row)
            raise
    log.info("landed %s %s: %d pages, %d records", endpoint, wid, manifest.pages, manifest.records)
    return str(path)


def _page_window(client, spec, cursor, filters, paginator, writer, manifest, progress) -> str | None:
    """One pass over the window's pages, landing each; returns why the pass is inconsistent, or
    None. Pages are newest first (docs/api-contract.md#41-moving-data), so records created or
    changed while we page shift between pages: the server's ``total`` changes between the first
    and last page, or the pass saw fewer distinct records than it reported (one shifted onto the
    next page is seen twice, and another is missed), or more distinct ids than it reported.

    Every record counts, whether its key is usable or not (:func:`~xport_etl.extract.paginators.record_identities`): a record
    without a usable id (a corrupt one the normaliser will reject) counts as itself, by its
    content, so a window holding several of them is not mistaken for a moving one and paged
    again. Movement is judged on what can move: the total, and the records the pass could tell
    apart. Records served beyond ``total`` without a usable id (corrupt copies) are no sign of
    movement; more distinct *ids* than ``total`` is."""
    from xport_etl.extract.paginators import KEYED, paginate, record_identities

    first_total = last_total = None
    seen: set[tuple] = set()
    ids = 0
    version = cursor.field if cursor is not None else None
    for page in _land(paginate(client, spec, filters, paginator=paginator), writer, manifest):
        if first_total is None:
            first_total = page.total
            # the newest update on the first page: a lower bound of the server's clock when this
            # pass began (no clock of ours is involved), for the catch-up query after the pass
            stamps = page.values(version, spec.members_in) if version else []
            window = spec.windows[cursor.window] if version else None
            manifest.extra["pass_start"] = pass_start(stamps, window, client.assumptions) if window else None
        last_total = manifest.total = page.total
        if spec.primary_key:
            for identity in record_identities(page, spec.primary_key, spec.members_in):
                if identity not in seen:
                    seen.add(identity)
                    ids += identity[0] == KEYED
        if progress:
            progress(
                {
                    "event": "page",
                    "endpoint": spec.name,
                    "window": manifest.window_id,
                    "page": page.number,
                    "pages": page.pages,
                    "records": manifest.records,
                    "total": page.total,
                }
            )
    if first_total != last_total:
        return f"total changed from {first_total} to {last_total} while paging"
    if spec.primary_key and last_total is not None:
        unkeyed = f" ({len(seen) - ids} without a usable id)" if len(seen) > ids else ""
        if len(seen) < last_total:
            return f"saw {len(seen)} distinct records{unkeyed} but the server reported {last_total}"
        if ids > last_total:
            return f"saw {ids} distinct ids but the server reported {last_total} records"
    return None


def _land(pages, writer, manifest):
    """Land each page as it arrives (a checkpoint for resume) and count it; yield it on."""
    for page in pages:
        writer.write(page.raw)
        crashpoint("extract.page")
        manifest.pages += 1
        manifest.records += len(page.outline)
        yield page


def pass_start(stamps: Iterable[Any], window: WindowSpec, assumptions: ApiAssumptions = ASSUMED) -> str | int | None:
    """The newest of a page's update times (its stream's cursor field), written as the cursor's
    ``window`` wants it.

    The times may come in either API format (1688 writes ``yyyyMMddHHmmssSSS±hhmm`` too,
    docs/api-contract.md#57-1688-orders), so they are compared as times, not as text; unreadable
    ones are skipped.
    """
    times = []
    for stamp in stamps:
        if isinstance(stamp, str) and stamp:
            try:
                times.append(parse_alibaba_time(stamp, assumptions=assumptions))
            except (ValueError, OverflowError):
                continue
    if not times:
        return None
    return format_window_value(max(times), window.time_format, assumptions=assumptions)


def _catch_up(client, spec, window: WindowSpec, filters, paginator, writer, manifest) -> None:
    """Land what changed in the window while it was paged.

    Pages are ordered by creation time, so a record whose status changes after its page was read
    stays where it was and the pass cannot notice. One more query for the same creation window
    restricted to records updated since the first page's newest update (a lower bound of the
    server's clock when the pass began) returns exactly those (``window``: the stream's cursor's);
    the normaliser keeps their latest state. Streams whose cursor names no update field (the
    Taobao refund list filters on creation only) rely on the next run.
    """
    from xport_etl.extract.paginators import paginate

    since = manifest.extra["pass_start"]
    query = {**filters, window.start_field: since}
    found = 0
    for page in _land(paginate(client, spec, query, paginator=paginator), writer, manifest):
        found += len(page.outline)
    manifest.extra["catch_up_records"] = found


def count_requests(manifest: Manifest, before: dict, after: dict) -> None:
    """The requests, retries and 429s a window cost, from its client's counts before and after."""
    manifest.requests = int(after.get("requests", 0) - before.get("requests", 0))
    manifest.retries = int(after.get("retries", 0) - before.get("retries", 0))
    manifest.http_429 = int(after.get("http_429", 0) - before.get("http_429", 0))
