"""Raw pages as received: one gzip-compressed JSON-lines file per endpoint and window.

Layout under the raw root (the data layout's ``raw``: ``<data_dir>/raw`` unless ``XPORT_RAW_URL``
names another directory or an fsspec URL such as ``s3://bucket/raw``; see :mod:`xport_etl.layout`
and :mod:`xport_etl.extract.storage`)::

    <raw>/<endpoint>/<window_id>/pages.jsonl.gz   one line per page: the response body as received
    <raw>/<endpoint>/<window_id>/context.json     fan-out windows: what each page was asked for
    <raw>/<endpoint>/<window_id>/manifest.json    written last, atomically: the window is complete

A window without a manifest was interrupted and is never normalised. Each line is the page's
body byte for byte, except that line breaks (which JSON only allows as whitespace between tokens)
are replaced by spaces so that one page stays one line. Every later layer (Parquet, DuckDB) can be
rebuilt from these files.

A manifest is read as untrusted input (the raw root may be a bucket other machines write to): its
endpoint and ``window_id`` must be plain names (:func:`check_window`) naming the directory it was
found in, or it is refused with a :class:`ManifestError`; no path is ever built from a name that
could climb out of the data directory. Raw pages, contexts and manifests hold receivers' names,
phones and addresses: they are written 0600, in window directories made 0700.

On a local disk every file is written to a temporary name, fsynced and renamed into place. On an
object store (no rename, but every PUT is atomic per object) the pages are spooled to the local
data directory while the window is paged and uploaded at commit, in the same order: the old
manifest is deleted, then the pages, the context and finally the new manifest are written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from isal import igzip, igzip_lib

from xport_etl.errors import BadInputError, NotFoundError
from xport_etl.extract import storage
from xport_etl.fsutil import fsync_dir, write_atomic
from xport_etl.layout import DataLayout, Where
from xport_etl.numbers import ascii_int

PAGES_FILE = "pages.jsonl.gz"
CONTEXT_FILE = "context.json"  # fan-out windows: what each page was asked for (page → context)
MANIFEST_FILE = "manifest.json"
COMPRESS_LEVEL = 1  # ISA-L gzip level (0-3) of landed pages (see PageWriter)


# what an endpoint, a mode and a window id may look like: plain names, never a path
ENDPOINT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MODE_NAME = re.compile(r"^[a-z]{1,16}$")
WINDOW_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
FILE_MODE = 0o600  # raw pages, contexts, manifests: personal data, for the pipeline's user only
DIR_MODE = 0o700


class ManifestError(BadInputError):
    """A manifest that xport-etl did not write: not JSON, missing fields, or names that are not
    plain names (``window_id`` such as ``x/../../tmp/evil``). The window is not loaded."""

    hint = storage.FOREIGN_WINDOW_HINT
    permanent = True


def check_window(endpoint: object, wid: object, mode: object = "create", *, where: object = None) -> None:
    """Refuse an endpoint, window id or mode that is not a plain name (a path in disguise).

    Raises:
        ManifestError: naming the bad value and, if given, where it was read.
    """
    at = f" in {storage.redact(where)}" if where is not None else ""
    for what, value, pattern in (
        ("endpoint", endpoint, ENDPOINT_NAME),
        ("window_id", wid, WINDOW_ID),
        ("mode", mode, MODE_NAME),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ManifestError(
                f"refusing a manifest{at}: {what} {value!r} is not a plain name (expected {pattern.pattern})"
            )


def _manifest_from(data: object, directory) -> Manifest:
    """A :class:`Manifest` from the parsed JSON of the manifest found in ``directory``, checked."""
    if not isinstance(data, dict):
        raise ManifestError(f"refusing the manifest in {storage.redact(directory)}: not a JSON object")
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise ManifestError(f"refusing the manifest in {storage.redact(directory)}: {exc}") from None
    check_window(manifest.endpoint, manifest.window_id, manifest.mode, where=directory)
    # a manifest speaks for the window directory it sits in, and no other
    parts = str(directory).rstrip("/").split("/")
    if parts[-2:] != [manifest.endpoint, manifest.window_id]:
        raise ManifestError(
            f"refusing the manifest in {storage.redact(directory)}: it names window "
            f"{manifest.endpoint}/{manifest.window_id}, not the directory it is in"
        )
    return manifest.bind(directory)


def window_id(mode: str, start: datetime, end: datetime) -> str:
    """Name a window: ``create_20260101T000000Z_20260201T000000Z``."""
    fmt = "%Y%m%dT%H%M%SZ"
    return f"{mode}_{start.astimezone(UTC):{fmt}}_{end.astimezone(UTC):{fmt}}"


def window_dir(data_dir: Where, endpoint: str, wid: str, *, raw_url: str | None = None):
    """A window's directory under the layout's raw root (a ``Path`` locally, a ``UPath`` on a
    remote store)."""
    return DataLayout.of(data_dir, raw_url).raw / endpoint / wid


@dataclass
class Manifest:
    """What was landed for one window, and how the extraction went."""

    endpoint: str
    mode: str
    window_id: str
    window_start: str  # ISO-8601 UTC
    window_end: str
    run_id: str
    extracted_at: str  # when paging started: the state of the data is "as of" this instant
    finished_at: str = ""
    pages: int = 0
    records: int = 0
    total: int | None = None
    requests: int = 0
    retries: int = 0
    http_429: int = 0
    drift_repages: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def directory(self):
        """The window's directory: a ``Path`` locally, a ``UPath`` on a remote store (both take
        ``/``; ``str()`` of either is what :func:`read_manifest` and :func:`read_pages` accept)."""
        return self._dir

    def bind(self, directory) -> Manifest:
        self._dir = storage.to_path(directory)
        return self


def _private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents 0700 (``mkdir(parents=True)`` gives the parents
    the umask's mode); directories that exist keep theirs."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another window's writer made it first
            p.mkdir(mode=DIR_MODE)
            os.chmod(p, DIR_MODE)
    path.mkdir(parents=True, exist_ok=True)


def _remote_rm(fs, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # deleting what is not there is fine
        fs.rm_file(path)


class PageWriter:
    """Writes one window's pages; the window only becomes visible when :meth:`commit` runs.

    Pages go to a ``.partial`` file (next to the window locally; under the layout's ``spool`` for a
    remote raw root); ``commit`` closes it, moves it into place and writes the manifest last,
    so a crash at any point leaves either the previous complete window or no manifest at all.

    Args:
        data_dir: the data directory, its :class:`~xport_etl.layout.DataLayout` or the settings
            (the raw root is their layout's, unless ``raw_url``).
        manifest: the window's manifest, filled in while paging.
        raw_url: the raw root (a path or fsspec URL, ``Settings.raw_url``); None: the default.
    """

    def __init__(self, data_dir: Where, manifest: Manifest, *, raw_url: str | None = None):
        check_window(manifest.endpoint, manifest.window_id, manifest.mode)
        self.manifest = manifest
        layout = DataLayout.of(data_dir, raw_url)
        self.dir = window_dir(layout, manifest.endpoint, manifest.window_id)
        self.remote = not storage.is_local(self.dir)
        if self.remote:
            # before any page is asked for: a store that cannot take the window fails the run
            # now, not at commit after the window's requests were spent
            storage.check_writable(layout.raw)
            spool = layout.spool / manifest.endpoint
            _private_dirs(spool)
            self._partial = spool / f"{manifest.window_id}.{PAGES_FILE}.partial"
        else:
            _private_dirs(self.dir)
            self._partial = self.dir / (PAGES_FILE + ".partial")
        # created 0600 before a byte is written, whatever the process umask
        os.close(os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE))
        os.chmod(self._partial, FILE_MODE)
        # ISA-L's gzip (isal.igzip: the same gzip format, any gzip reader reads it): at its level 1
        # it writes and reads order pages several times faster than zlib at level 3, for a few
        # percent more bytes; landing and staging are on every run's hot path (bench/NOTES.md)
        self._file = igzip.open(self._partial, "wb", compresslevel=COMPRESS_LEVEL)  # noqa: SIM115 (closed by commit/abort)
        self._contexts: dict[int, dict] = {}
        self._count = 0

    def write(self, raw: bytes, context: dict | None = None) -> None:
        """Append one page; ``context`` records what it answered (e.g. the key of a detail call)."""
        self._file.write(raw.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
        self._count += 1
        if context is not None:
            self._contexts[self._count] = context

    def commit(self):
        """Make the window visible; returns its manifest's path (``Path`` or ``UPath``)."""
        self._file.close()
        self.manifest.pages = self._count  # the file's page count: what the load checks it against
        if self.remote:
            return self._commit_remote()
        with open(self._partial, "rb+") as f:
            os.fsync(f.fileno())
        # the old manifest goes first: from here until the new one is written, the window is
        # incomplete rather than a mix of old manifest and new pages
        (self.dir / MANIFEST_FILE).unlink(missing_ok=True)
        os.replace(self._partial, self.dir / PAGES_FILE)
        if self._contexts:
            write_atomic(self.dir / CONTEXT_FILE, json.dumps(self._contexts, ensure_ascii=False).encode())
        else:
            (self.dir / CONTEXT_FILE).unlink(missing_ok=True)
        fsync_dir(self.dir)
        path = self.dir / MANIFEST_FILE
        write_atomic(path, json.dumps(asdict(self.manifest), indent=2).encode())
        return path

    def _commit_remote(self):
        # an object store has no rename, but each PUT replaces one object atomically: the same
        # order as on disk, with the manifest (the commit marker) deleted first and written last
        fs, root = storage.filesystem(self.dir)
        try:
            _remote_rm(fs, f"{root}/{MANIFEST_FILE}")
            fs.put_file(str(self._partial), f"{root}/{PAGES_FILE}")
            if self._contexts:
                fs.pipe_file(f"{root}/{CONTEXT_FILE}", json.dumps(self._contexts, ensure_ascii=False).encode())
            else:
                _remote_rm(fs, f"{root}/{CONTEXT_FILE}")
            fs.pipe_file(f"{root}/{MANIFEST_FILE}", json.dumps(asdict(self.manifest), indent=2).encode())
        except OSError as exc:
            raise storage.located(exc, self.dir, "cannot land the window at") from exc
        finally:
            fs.invalidate_cache(root)
        self._partial.unlink(missing_ok=True)
        return self.dir / MANIFEST_FILE

    def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> PageWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def _manifest_location(path) -> tuple[str, str]:
    """``(window directory, manifest file)`` of a remote manifest file or window directory."""
    text = str(path).rstrip("/")
    if text.endswith("/" + MANIFEST_FILE):
        return text[: -len(MANIFEST_FILE) - 1], text
    return text, f"{text}/{MANIFEST_FILE}"


def read_manifest(path) -> Manifest:
    """Read a window's manifest (give the manifest file or its window directory, as a path or
    URL).

    Raises:
        NotFoundError: there is no manifest there (``load --manifest`` given a wrong path).
        ManifestError: the manifest is not one xport-etl wrote.
    """
    try:
        if storage.is_local(path):
            path = storage.local_path(path)
            if path.is_dir():
                path = path / MANIFEST_FILE
            return _manifest_from(_parse_json(path.read_bytes(), path), path.parent)
        directory, file = _manifest_location(path)
        fs, fpath = storage.filesystem(file)
        return _manifest_from(_parse_json(fs.cat_file(fpath), file), directory)
    except FileNotFoundError:
        raise NotFoundError(
            f"no manifest at {storage.redact(path)}", hint="check --manifest and --data-dir / XPORT_DATA_DIR"
        ) from None


def _parse_json(raw: bytes, where) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ManifestError(f"refusing the manifest {storage.redact(where)}: not JSON") from None


class PagesUnreadableError(BadInputError):
    """A window's ``pages.jsonl.gz`` that cannot be read to its end: cut short (a copy or a sync
    that stopped, a disk that filled), corrupt, or not gzip at all. Raised by the reader of
    :func:`open_pages` at the point it fails; the load that read it publishes nothing.

    Attributes:
        path: the file (redacted when remote).
        endpoint, window_id: the window it holds.
    """

    def __init__(self, path: str, endpoint: str, window_id: str, reason: str):
        super().__init__(f"the raw pages of {endpoint} window {window_id} cannot be read ({reason}): {path}")
        self.path, self.endpoint, self.window_id, self.reason = path, endpoint, window_id, reason
        self.hint = f"{self.again()}; nothing was published"

    def context(self) -> str:  # the message names the window: no `[endpoint=…]` after it
        return ""

    def __reduce__(self):  # the Python normalisers run in worker processes: it crosses back pickled
        return type(self), (self.path, self.endpoint, self.window_id, self.reason)

    def again(self) -> str:
        """How to land this window again: the ``extract`` command for a list window, or what to do
        for a fan-out window (its keys come from the warehouse, not from a time window)."""
        m = _WINDOW_ID_TIMES.match(self.window_id)
        if m is None:
            return (
                f"move {self.endpoint}/{self.window_id} out of the raw root and run `xport-etl load`; "
                "the next `xport-etl run` asks again for what can still change"
            )
        mode, lo, hi = m.group(1), *(_stamp(t) for t in m.groups()[1:])
        return (
            f"land the window again with `xport-etl extract --endpoint {self.endpoint} --mode {mode} "
            f"--start {lo} --end {hi}` (it replaces the file), then run `xport-etl load`"
        )


_WINDOW_ID_TIMES = re.compile(r"^([a-z]+)_(\d{8}T\d{6})Z_(\d{8}T\d{6})Z$")  # what window_id() writes


def _stamp(text: str) -> str:
    return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).isoformat()


# what reading a damaged gzip file raises: cut short, a bad header or checksum, a corrupt stream
_ISAL_ERROR = cast(type[Exception], igzip_lib.IsalError)  # (its stub declares an instance)
_DAMAGED = (EOFError, igzip.BadGzipFile, _ISAL_ERROR, zlib.error)


class _Pages(igzip.GzipFile):
    """The decompressed pages of one window; closes the (remote) file it reads when closed. A
    damaged file raises :class:`PagesUnreadableError` naming the file and the window, from
    whichever read finds the damage."""

    def __init__(self, raw: IO[bytes], where: str):
        self._raw, self._where = raw, where
        try:
            super().__init__(fileobj=raw, mode="rb")
        except BaseException:
            raw.close()
            raise

    def _damaged(self, exc: BaseException) -> PagesUnreadableError:
        parts = self._where.rstrip("/").split("/")
        reason = "the file ends too early" if isinstance(exc, EOFError) else str(exc) or type(exc).__name__
        return PagesUnreadableError(f"{self._where}/{PAGES_FILE}", parts[-2], parts[-1], reason)

    def read(self, size=-1):
        try:
            return super().read(size)
        except _DAMAGED as exc:
            raise self._damaged(exc) from None

    def read1(self, size=-1):
        try:
            return super().read1(size)
        except _DAMAGED as exc:
            raise self._damaged(exc) from None

    def readinto(self, b):
        try:
            return super().readinto(b)
        except _DAMAGED as exc:
            raise self._damaged(exc) from None

    def readline(self, size=-1):
        try:
            return super().readline(size)
        except _DAMAGED as exc:
            raise self._damaged(exc) from None

    def peek(self, n):
        try:
            return super().peek(n)
        except _DAMAGED as exc:
            raise self._damaged(exc) from None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def open_pages(directory) -> igzip.GzipFile:
    """Open a window's pages for reading: the DECOMPRESSED ``pages.jsonl`` (one page a line).

    A binary file object and a context manager; closing it closes the underlying local or
    remote file. ``directory`` is the window's directory as a path, ``UPath`` or URL
    (``Manifest.directory``, or its ``str``). A damaged file (cut short, corrupt, not gzip)
    raises :class:`PagesUnreadableError` when the damage is read.
    """
    if storage.is_local(directory):
        local = storage.local_path(directory)
        raw: IO[bytes] = open(local / PAGES_FILE, "rb")  # noqa: SIM115 (closed with the reader)
        pages, size = _Pages(raw, str(local)), os.fstat(raw.fileno()).st_size
    else:
        fs, root = storage.filesystem(directory)
        path = f"{root.rstrip('/')}/{PAGES_FILE}"
        pages, size = _Pages(fs.open(path, "rb"), storage.redact(directory)), fs.size(path)
    if not size:  # gzip reads an empty file as no pages; PageWriter's smallest file is a header and a trailer
        pages.close()
        raise pages._damaged(EOFError())
    return pages


def check_page_count(manifest: Manifest, read: int) -> None:
    """Refuse a window whose ``pages.jsonl.gz`` holds other than the pages its manifest counted
    (:meth:`PageWriter.commit` writes the count): a valid file that is not this window's (a copy
    of another window's, an older or shorter one restored over it) would otherwise load what it
    holds and lose the rest without a word. A manifest without a count (0) is not checked.

    Raises:
        PagesUnreadableError: naming the file, the window, both counts and how to land it again.
    """
    if manifest.pages and read != manifest.pages:
        d = manifest.directory
        where = str(storage.local_path(d)) if storage.is_local(d) else storage.redact(d)
        raise PagesUnreadableError(
            f"{where}/{PAGES_FILE}",
            manifest.endpoint,
            manifest.window_id,
            f"it holds {read:,} page{'' if read == 1 else 's'} where its manifest counted {manifest.pages:,}",
        )


def _read_contexts(directory) -> dict[int, Any]:
    if storage.is_local(directory):
        ctx_path = storage.local_path(directory) / CONTEXT_FILE
        if not ctx_path.exists():
            return {}
        text = ctx_path.read_bytes()
    else:
        fs, root = storage.filesystem(directory)
        try:
            text = fs.cat_file(f"{root.rstrip('/')}/{CONTEXT_FILE}")
        except FileNotFoundError:
            return {}
    # the raw root may be shared storage: the file is read as untrusted, as a manifest is
    refusing = f"refusing the page contexts in {storage.redact(directory)}"
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        raise ManifestError(f"{refusing}: not JSON") from None
    if not isinstance(found, dict):
        raise ManifestError(f"{refusing}: not a JSON object")
    contexts: dict[int, Any] = {}
    for key, value in found.items():
        number = ascii_int(key, max_digits=9)
        if number is None:
            raise ManifestError(f"{refusing}: {key[:40]!r} is not a page number")
        contexts[number] = value
    return contexts


def read_pages(directory) -> Iterator[tuple[int, bytes, dict | None]]:
    """Yield ``(page_number, body, context)`` for every landed page of a window, in landing order."""
    contexts = _read_contexts(directory)
    with open_pages(directory) as f:
        for number, line in enumerate(f, start=1):
            yield number, line.rstrip(b"\n"), contexts.get(number)


def complete_windows(data_dir: Where, endpoint: str | None = None, *, raw_url: str | None = None) -> list[Manifest]:
    """Every landed window that has a manifest, oldest extraction first.

    Args:
        data_dir: the data directory, its :class:`~xport_etl.layout.DataLayout` or the settings
            (the raw root is their layout's, unless ``raw_url``).
        endpoint: only this endpoint's windows.
        raw_url: the raw root (a path or fsspec URL, ``Settings.raw_url``).
    """
    root = DataLayout.of(data_dir, raw_url).raw
    if storage.is_local(root):
        pattern = f"{endpoint}/*/{MANIFEST_FILE}" if endpoint else f"*/*/{MANIFEST_FILE}"
        manifests = [read_manifest(p) for p in root.glob(pattern)]
    else:
        manifests = _remote_windows(str(root), endpoint)
    return sorted(manifests, key=lambda m: (m.extracted_at, m.endpoint, m.window_id))


def _remote_windows(root_url: str, endpoint: str | None) -> list[Manifest]:
    # one flat listing of the prefix (an object store lists keys, not directories), then one
    # concurrent fetch of every manifest
    fs, root = storage.filesystem(root_url)
    root = root.rstrip("/")
    base = f"{root}/{endpoint}" if endpoint else root
    fs.invalidate_cache(base)
    try:
        keys = fs.find(base)
    except FileNotFoundError:
        return []
    depth = 2 if endpoint else 3  # [<endpoint>/]<window>/manifest.json below base
    files = [k for k in keys if k.endswith("/" + MANIFEST_FILE) and len(k[len(base) + 1 :].split("/")) == depth]
    if not files:
        return []
    blobs = fs.cat(files)
    return [
        _manifest_from(_parse_json(blobs[key], key), fs.unstrip_protocol(key[: -len(MANIFEST_FILE) - 1]))
        for key in files
    ]


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()
