"""The stream graph: every declared stream, and what is derived from walking it.

Streams are declared per platform (:mod:`xport_etl.streams.taobao`, :mod:`xport_etl.streams.alibaba`);
:data:`STREAMS` holds them all, in that order. A fan-out's ``parent`` is an edge. From the graph
come ``run``'s order (:func:`run_order`), which endpoints ``xport-etl extract`` can page
(:func:`extractable`), which list streams keep a table fresh (:func:`feeds`), the ingest DAG's
task groups and wiring (:func:`platforms`, :func:`children`) and the drawing in README and the
DAG's docs (:func:`draw`). Importing this module imports only the declarations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from xport_etl.errors import ConfigError
from xport_etl.streams import alibaba, taobao
from xport_etl.streams.spec import Platform, StreamSpec

__all__ = [
    "STREAMS",
    "children",
    "draw",
    "extractable",
    "feeds",
    "fanouts",
    "lists",
    "platforms",
    "root",
    "run_order",
    "stream",
]


def _catalogue(*declared: tuple[StreamSpec, ...]) -> Mapping[str, StreamSpec]:
    """The streams by name, checked as a graph: unique names, every parent a scheduled stream,
    no cycle (a parent is declared before its children, so following parents always ends)."""
    found: dict[str, StreamSpec] = {}
    for s in (s for group in declared for s in group):
        if s.name in found:
            raise ValueError(f"stream {s.name!r} is declared twice")
        if s.fanout is not None:
            parent = found.get(s.fanout.parent)
            if parent is None or not parent.scheduled:
                raise ValueError(
                    f"{s.name}: its parent {s.fanout.parent!r} is not a scheduled stream declared before it"
                )
        found[s.name] = s
    return MappingProxyType(found)


STREAMS: Mapping[str, StreamSpec] = _catalogue(taobao.STREAMS, alibaba.STREAMS)


def stream(name: str) -> StreamSpec:
    """The stream called ``name``.

    Raises:
        ConfigError: no stream has that name.
    """
    try:
        return STREAMS[name]
    except KeyError:
        raise ConfigError(f"unknown stream {name!r}; known: {', '.join(STREAMS)}") from None


def children(name: str) -> tuple[StreamSpec, ...]:
    """The fan-outs whose keys ``name``'s rows give, in declaration order."""
    return tuple(s for s in STREAMS.values() if s.fanout is not None and s.fanout.parent == name)


def root(name: str) -> StreamSpec:
    """The list stream at the top of ``name``'s fan-out chain (``name``'s own if it is one)."""
    s = stream(name)
    while s.fanout is not None:
        s = STREAMS[s.fanout.parent]
    return s


def _depth(s: StreamSpec) -> int:
    return 0 if s.fanout is None else 1 + _depth(STREAMS[s.fanout.parent])


def run_order() -> tuple[str, ...]:
    """The scheduled streams in the order ``run`` reads them: parents before their children (a
    fan-out's keys come from what its parent loaded); at each depth the streams that have
    children first, then declaration order.

    The order is part of each run plan's identity (``state/plans/<digest>.json``), so that a plan
    written by an earlier version resumes: a new stream goes after the ones at its depth.
    """
    scheduled = [s for s in STREAMS.values() if s.scheduled]
    position = {s.name: i for i, s in enumerate(scheduled)}
    ranked = sorted(scheduled, key=lambda s: (_depth(s), not children(s.name), position[s.name]))
    return tuple(s.name for s in ranked)


def lists(names: Iterable[str]) -> list[str]:
    """Those of ``names`` read by time window (not fan-outs), in the given order."""
    return [n for n in names if stream(n).fanout is None]


def fanouts(names: Iterable[str]) -> list[str]:
    """Those of ``names`` read by key (fan-outs), in the given order."""
    return [n for n in names if stream(n).fanout is not None]


def extractable() -> tuple[str, ...]:
    """The streams ``xport-etl extract`` can page: those with a time window (the others are
    read by key: ``run``'s fan-outs, the callbacks' details)."""
    return tuple(s.name for s in STREAMS.values() if s.endpoint.windows)


def feeds(table: str) -> tuple[str, ...]:
    """The list streams whose windows keep ``table`` fresh: each scheduled stream writing it, or,
    for a fan-out, the list stream its keys come from (a fan-out with nothing in transit fetches
    nothing, and that is not staleness)."""
    found = [root(s.name).name for s in STREAMS.values() if s.scheduled and table in s.tables]
    return tuple(dict.fromkeys(found))


def platforms() -> tuple[tuple[Platform, tuple[StreamSpec, ...]], ...]:
    """Each platform with its scheduled streams, in declaration order: the DAG's task groups."""
    groups: dict[Platform, list[StreamSpec]] = {}
    for s in STREAMS.values():
        if s.scheduled:
            groups.setdefault(s.platform, []).append(s)
    return tuple((p, tuple(found)) for p, found in groups.items())


def draw(
    label: Callable[[StreamSpec], str] = lambda s: s.name, title: Callable[[Platform], str] = lambda p: p.name
) -> str:
    """The scheduled streams as a tree per platform, each fan-out after its parent::

        taobao   taobao_orders ─→ taobao_logistics
                 taobao_refunds
        1688     alibaba_orders ┬→ alibaba_refunds
                                └→ alibaba_logistics

    ``label`` names each stream and ``title`` each platform (the DAG draws its tasks and groups).
    """

    def tree(s: StreamSpec) -> list[str]:
        text, kids = label(s), children(s.name)
        if not kids:
            return [text]
        out = []
        for i, kid in enumerate(kids):
            if len(kids) == 1:
                arrow, rule = " ─→ ", "    "
            elif i < len(kids) - 1:
                arrow, rule = (" ┬→ " if i == 0 else " ├→ "), " │  "
            else:
                arrow, rule = " └→ ", "    "
            first, *rest = tree(kid)
            out.append((text if i == 0 else " " * len(text)) + arrow + first)
            out += [" " * len(text) + rule + line for line in rest]
        return out

    width = max(len(title(p)) for p, _ in platforms()) + 3
    lines = []
    for platform, scheduled in platforms():
        drawn = [line for s in scheduled if s.fanout is None for line in tree(s)]
        lines += [(title(platform) if i == 0 else "").ljust(width) + line for i, line in enumerate(drawn)]
    return "\n".join(lines) + "\n"
