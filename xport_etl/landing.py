"""Raw pages as received: one gzip-compressed JSON-lines file per endpoint and window.

Layout under the data directory::

    raw/<endpoint>/<window_id>/pages.jsonl.gz   one line per page: the response body as received
    raw/<endpoint>/<window_id>/manifest.json    written last, atomically: the window is complete

A window without a manifest was interrupted and is never normalised. Each line is the page's
body byte for byte, except that line breaks (which JSON only allows as whitespace between tokens)
are replaced by spaces so that one page stays one line. Every later layer (Parquet, DuckDB) can be
rebuilt from these files.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PAGES_FILE = "pages.jsonl.gz"
CONTEXT_FILE = "context.json"  # fan-out windows: what each page was asked for (page → context)
MANIFEST_FILE = "manifest.json"


def window_id(mode: str, start: datetime, end: datetime) -> str:
    """Name a window: ``create_20260101T000000Z_20260201T000000Z``."""
    fmt = "%Y%m%dT%H%M%SZ"
    return f"{mode}_{start.astimezone(UTC):{fmt}}_{end.astimezone(UTC):{fmt}}"


def window_dir(data_dir: Path, endpoint: str, wid: str) -> Path:
    return Path(data_dir) / "raw" / endpoint / wid


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
    def directory(self) -> Path:
        return self._dir

    def bind(self, directory: Path) -> Manifest:
        self._dir = Path(directory)
        return self


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class PageWriter:
    """Writes one window's pages; the window only becomes visible when :meth:`commit` runs.

    Pages go to a ``.partial`` file; ``commit`` closes it, renames it into place and writes the
    manifest atomically, so a crash at any point leaves either the previous complete window or
    no manifest at all.
    """

    def __init__(self, data_dir: Path, manifest: Manifest):
        self.manifest = manifest
        self.dir = window_dir(data_dir, manifest.endpoint, manifest.window_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._partial = self.dir / (PAGES_FILE + ".partial")
        self._file = gzip.open(self._partial, "wb", compresslevel=5)  # noqa: SIM115 (closed by commit/abort)
        self._contexts: dict[int, dict] = {}
        self._count = 0

    def write(self, raw: bytes, context: dict | None = None) -> None:
        """Append one page; ``context`` records what it answered (e.g. the key of a detail call)."""
        self._file.write(raw.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
        self._count += 1
        if context is not None:
            self._contexts[self._count] = context

    def commit(self) -> Path:
        self._file.close()
        with open(self._partial, "rb+") as f:
            os.fsync(f.fileno())
        # the old manifest goes first: from here until the new one is written, the window is
        # incomplete rather than a mix of old manifest and new pages
        (self.dir / MANIFEST_FILE).unlink(missing_ok=True)
        os.replace(self._partial, self.dir / PAGES_FILE)
        if self._contexts:
            _write_atomic(self.dir / CONTEXT_FILE, json.dumps(self._contexts, ensure_ascii=False).encode())
        else:
            (self.dir / CONTEXT_FILE).unlink(missing_ok=True)
        _fsync_dir(self.dir)
        path = self.dir / MANIFEST_FILE
        _write_atomic(path, json.dumps(asdict(self.manifest), indent=2).encode())
        return path

    def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> PageWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def read_manifest(path: Path | str) -> Manifest:
    """Read a window's manifest (give the manifest file or its window directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    data = json.loads(path.read_text())
    return Manifest(**data).bind(path.parent)


def read_pages(directory: Path) -> Iterator[tuple[int, bytes, dict | None]]:
    """Yield ``(page_number, body, context)`` for every landed page of a window, in landing order."""
    directory = Path(directory)
    ctx_path = directory / CONTEXT_FILE
    contexts = {int(k): v for k, v in json.loads(ctx_path.read_text()).items()} if ctx_path.exists() else {}
    with gzip.open(directory / PAGES_FILE, "rb") as f:
        for number, line in enumerate(f, start=1):
            yield number, line.rstrip(b"\n"), contexts.get(number)


def complete_windows(data_dir: Path, endpoint: str | None = None) -> list[Manifest]:
    """Every landed window that has a manifest, oldest extraction first."""
    root = Path(data_dir) / "raw"
    pattern = f"{endpoint}/*/{MANIFEST_FILE}" if endpoint else f"*/*/{MANIFEST_FILE}"
    manifests = [read_manifest(p) for p in root.glob(pattern)]
    return sorted(manifests, key=lambda m: (m.extracted_at, m.endpoint, m.window_id))


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()
