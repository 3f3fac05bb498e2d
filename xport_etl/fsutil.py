"""Durable writes on the local file system (write a temporary file, fsync, rename, fsync the
folder) and the exclusive file lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

PRIVATE = 0o600  # raw pages, manifests, ledgers and state: for the pipeline's user only


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename in it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, data: bytes | str, mode: int | None = PRIVATE) -> None:
    """Replace ``path`` with ``data`` (``str`` is written as UTF-8) so a reader or a crash sees the
    old content or the new, never a part, and the new content is on disk when this returns.

    ``mode``: the file's permissions whatever the umask; None: as ``open()`` creates a file
    (0666 less the umask). The temporary name holds the process and thread id, so two writers of
    one path never share it.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
        with open(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)  # an older tmp file keeps its mode through O_CREAT
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing, its folder too), held for the block;
    waits for the holder. The kernel releases it when the process dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
