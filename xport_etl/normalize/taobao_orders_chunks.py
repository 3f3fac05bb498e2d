"""Landed Taobao order pages into the fast path (:class:`~xport_etl.normalize.taobao_orders_sql.TaobaoOrdersSql`)
in bounded chunks: whole lines of ``pages.jsonl.gz`` read into a reused buffer, split into Arrow
arrays without a copy, fed by one thread or several (:func:`feed_window`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from xport_etl.extract.landing import open_pages
from xport_etl.normalize.taobao_orders_sql import TaobaoOrdersSql

# decompressed JSON handed to DuckDB at a time (24 MB): bigger chunks cost less CPU a page and more
# memory, and beyond 24 MB the CPU saved is small; see bench/NOTES.md
CHUNK_BYTES = 24 * 2**20
READ_BYTES = 2**20


class ChunkReader:
    """Whole lines of a landed window's pages (a local directory or a storage URL: see
    :func:`xport_etl.extract.landing.open_pages`), in chunks, for one reader or several at once.

    Each caller reads into a buffer of its own (:meth:`read`), which it reuses: the pages are
    decompressed 1 MB at a time straight into it, and the chunk is a view of it, valid until the
    caller reads again (the normaliser is done with a chunk by then: DuckDB has parsed it into
    its own tables). So a reader holds one chunk of text, not two: a single large ``read`` of a
    gzip file holds several times what it returns, and joining read blocks into a chunk would hold
    it twice. Reading is serial (a lock); what the readers do with their chunks is not."""

    def __init__(self, directory, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self._file = open_pages(directory).__enter__()
        self._lock = threading.Lock()
        self._tail = b""  # the start of a line the last chunk cut off
        self._first = 1  # the page number of the next line
        self._eof = self._stopped = False

    def read(self, buf: bytearray) -> tuple[int, memoryview] | None:
        """The next chunk into ``buf`` (grown to ``chunk_bytes`` when smaller, so a reader that
        finds nothing left allocates nothing, and for a line longer than it): ``(first page
        number, whole lines)``; None when every line was read (or :meth:`stop` was called)."""
        with self._lock:
            if self._stopped or (self._eof and not self._tail):
                return None
            if len(buf) < self.chunk_bytes:
                buf += bytes(self.chunk_bytes - len(buf))
            pos = len(self._tail)
            while pos > len(buf):
                buf += bytes(len(buf))
            buf[:pos] = self._tail
            while True:
                while not self._eof and pos < len(buf):
                    n = self._file.readinto(memoryview(buf)[pos : pos + READ_BYTES])
                    if not n:
                        self._eof = True
                        break
                    pos += n
                cut = buf.rfind(b"\n", 0, pos) + 1
                if cut or self._eof:
                    break
                buf += bytes(len(buf))  # no whole line in the buffer yet: a longer one
            if not cut:  # the last line, without its newline (or nothing at all)
                if not pos:
                    return None
                if pos == len(buf):
                    buf += b"\n"
                else:
                    buf[pos : pos + 1] = b"\n"
                pos += 1
                cut = pos
            self._tail = bytes(buf[cut:pos])
            first = self._first
            self._first += buf.count(b"\n", 0, cut)
            return first, memoryview(buf)[:cut]

    def stop(self) -> None:
        """No more chunks for anyone (a reader failed: the window fails)."""
        with self._lock:
            self._stopped = True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_chunks(directory, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(first page number, whole lines)`` from a landed window's pages, one reused buffer
    of ``chunk_bytes`` (:class:`ChunkReader`): each chunk is released when the next is asked for."""
    buf = bytearray()
    with ChunkReader(directory, chunk_bytes) as reader:
        while (got := reader.read(buf)) is not None:
            first, whole = got
            yield first, whole
            whole.release()


def split_lines(first: int, data: bytes | memoryview) -> tuple[np.ndarray, pa.Array]:
    """Whole lines → (page numbers, a zero-copy Arrow binary array of the lines)."""
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    offsets = np.concatenate([[0], ends]).astype(np.int64)
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    return np.arange(first, first + len(ends), dtype=np.int64), lines


def feed_window(
    norm: TaobaoOrdersSql,
    directory,
    chunk_bytes: int = CHUNK_BYTES,
    run: Callable[[Callable[[Any], None]], None] | None = None,
) -> None:
    """Every page of a landed window, in bounded chunks.

    ``run``: chunks on several threads at once. ``run(work)`` calls ``work(con)`` once on each of
    its threads, ``con`` a cursor of the window's database that thread owns, and returns when
    every call has: the calls share the window's chunks, each in a buffer of its own (so a window
    holds one chunk of text a thread). Without it, the chunks are fed one after another on the
    window's connection. Either way the window's result is the same: its chunks are independent
    until :meth:`TaobaoOrdersSql.finish`, and an error is the one the first failing chunk (in
    page order) raises, as when the chunks are fed in order.
    """
    if run is None:
        for first, data in iter_chunks(directory, chunk_bytes):
            feed_bytes(norm, first, data)
        return
    failed: list[tuple[int, BaseException]] = []
    with ChunkReader(directory, chunk_bytes) as reader:

        def work(con) -> None:
            buf = bytearray()
            while (got := reader.read(buf)) is not None:
                first, data = got
                try:
                    feed_bytes(norm, first, data, con=con)
                except BaseException as exc:  # noqa: BLE001 - raised below, the first in page order
                    failed.append((first, exc))
                    reader.stop()  # later chunks do not matter: the window fails
                    return  # (the error's traceback still holds views of the buffer: no release)
                data.release()

        run(work)
    if failed:
        raise min(failed, key=lambda f: f[0])[1]


def feed_bytes(norm: TaobaoOrdersSql, first: int, data: bytes | memoryview, con=None) -> None:
    seqs, lines = split_lines(first, data)
    feed_lines(norm, seqs, lines, con=con)


def feed_lines(norm: TaobaoOrdersSql, seqs: np.ndarray, lines: pa.Array, con=None) -> None:
    """Pages as a binary array (each ending in a newline); those that are not UTF-8 go to Python."""
    try:
        norm.feed(seqs, lines.cast(pa.large_string()), con=con)
        return
    except pa.ArrowInvalid:  # bytes that are not UTF-8 somewhere: find the pages
        pass
    run: list[tuple[int, bytes]] = []  # UTF-8 pages in a row; the others go to Python in order

    def flush() -> None:
        if run:
            norm.feed(
                np.array([s for s, _ in run], np.int64),
                pa.array([b for _, b in run], pa.large_binary()).cast(pa.large_string()),
                con=con,
            )
            run.clear()

    for seq, line in zip(seqs.tolist(), lines.to_pylist(), strict=True):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            flush()
            norm.feed_python(seq, line.rstrip(b"\n"), "not utf-8", con=con)
        else:
            run.append((seq, line))
    flush()


def feed_pages(norm: TaobaoOrdersSql, pages: Iterable[tuple[int, bytes, Any]]) -> None:
    """Landed ``(page, body, context)`` triples held in memory (tests; small windows)."""
    seqs, lines = [], []
    for page_no, body, _ctx in pages:
        seqs.append(page_no)
        lines.append(body.replace(b"\n", b" ") + b"\n")
    if lines:
        feed_lines(norm, np.array(seqs, np.int64), pa.array(lines, pa.large_binary()))
