"""Window arithmetic: bounds in UTC, windows cut into chunks, a period cut into bounded runs, and
the window a stream's cursor reads for an incremental run's data interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from xport_etl.settings import Settings
from xport_etl.streams import graph

DEFAULT_CHUNK = timedelta(days=31)  # the longest list window (one manifest, one checkpoint)
DEFAULT_RUN = timedelta(days=31)  # the period one bounded run of `run` loads and publishes

Window = tuple[str, str, datetime, datetime]  # (stream, mode, start, end): one list window of a run


def utc(dt: datetime) -> datetime:
    """``dt`` in UTC; a bound without a time zone is refused."""
    if dt.tzinfo is None:
        raise ValueError(f"window bound {dt!r} has no time zone")
    return dt.astimezone(UTC)


def split_window(start: datetime, end: datetime, chunk: timedelta) -> list[tuple[datetime, datetime]]:
    out, lo = [], start
    while lo < end:
        hi = min(lo + chunk, end)
        out.append((lo, hi))
        lo = hi
    return out


def interval_window(
    settings: Settings,
    endpoint: str,
    start: datetime,
    end: datetime,
    *,
    lookback: timedelta = timedelta(0),
    now: datetime | None = None,
) -> tuple[str, datetime, datetime]:
    """The window an incremental run reads for the data interval ``[start, end)``.

    A stream whose cursor reads the ``"update"`` window reads what changed in the interval; one
    whose cursor reads ``"create"`` re-reads its cursor's ``lookback`` before the interval
    (records keep changing after they are created); a stream without a cursor reads by
    creation. ``lookback`` widens either (a first load, a backfill). The window ends
    ``settings.safety_lag`` before ``now``: the newest writes may not be visible yet.

    Returns:
        ``(mode, window_start, window_end)``.
    """
    cursor = graph.stream(endpoint).cursor
    mode = cursor.window if cursor else "create"
    start, end = utc(start), utc(end)
    now = utc(now) if now else datetime.now(UTC)
    end = min(end, now - timedelta(seconds=settings.safety_lag))
    start = start - (cursor.lookback if cursor else timedelta(0)) - lookback
    if end <= start:
        raise ValueError(f"{endpoint}: the interval ends within the safety lag of now; nothing to read yet")
    return mode, start, end


def bounded_runs(
    settings: Settings,
    start: datetime,
    end: datetime,
    lists: list[str],
    *,
    mode: str,
    incremental: bool,
    chunk: timedelta,
    span: timedelta,
) -> list[list[Window]]:
    """The list windows of a command, as bounded runs: ``[start, end)`` cut into runs of ``span``,
    the newest first, each the windows of ``chunk`` of every stream of ``lists`` read by ``mode``;
    or, ``incremental``, one run of each stream's cursor window for the interval
    (:func:`interval_window`)."""
    start, end = utc(start), utc(end)
    runs: list[list[Window]] = []
    if incremental:
        windows: list[Window] = []
        for e in lists:
            m, lo, hi = interval_window(settings, e, start, end)
            windows += [(e, m, a, b) for a, b in split_window(lo, hi, chunk)]
        runs.append(windows)
    else:
        for lo, hi in reversed(split_window(start, end, max(span, chunk))):
            runs.append([(e, mode, a, b) for e in lists for a, b in split_window(lo, hi, chunk)])
    return runs
