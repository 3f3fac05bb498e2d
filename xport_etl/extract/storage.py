"""Where the raw landing layer lives: a local directory or any fsspec URL.

``XPORT_RAW_URL`` names it (see :mod:`xport_etl.settings`); unset, it is ``<data_dir>/raw``. A
plain path or a ``file://`` URL stays on the local file system (``pathlib``, fsync and
``os.replace``); anything else (``s3://bucket/prefix``, ``gs://…``, ``abfs://…``) goes through
fsspec, so several machines can land windows that one writer loads.

Credentials and endpoints never come from the URL: fsspec and its back ends read them from their
usual places (for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_PROFILE``, instance roles, or fsspec's ``FSSPEC_S3_*`` configuration). A URL carrying a
user, a password or a query string is refused, and :func:`redact` is what logs and errors show.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from xport_etl.errors import BadInputError, ConfigError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "PathOutsideError",
    "check_url",
    "check_writable",
    "contained",
    "exists",
    "filesystem",
    "is_local",
    "join",
    "local_path",
    "located",
    "normalize",
    "redact",
    "to_path",
]

_LOCAL_PROTOCOLS = {"file", "local"}
WRITE_CHECK = ".xport-write-check"  # the empty object check_writable puts at a remote root
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")

PathLike = Any  # pathlib.Path, upath.UPath or str


def protocol(url: PathLike) -> str:
    """The URL's protocol (``"s3"``), ``"file"`` for a plain path; chained URLs
    (``simplecache::s3://…``) by their first member."""
    text = str(url)
    if "::" in text:
        text = text.split("::", 1)[0] + "://"
    m = _SCHEME.match(text)
    return m.group(1).lower() if m else "file"


def is_local(url: PathLike) -> bool:
    """True for a plain path or a ``file://`` / ``local://`` URL."""
    if isinstance(url, Path):  # upath's local paths are Path subclasses; its remote ones are not
        return True
    return protocol(url) in _LOCAL_PROTOCOLS


def local_path(url: PathLike) -> Path:
    """The local path a plain path or ``file://`` URL names (``~`` expanded)."""
    if isinstance(url, Path):
        return Path(url)
    text = str(url)
    m = _SCHEME.match(text)
    if m:
        text = text[m.end() :]
        if not text.startswith("/"):  # file://localhost/x or file://relative
            host, _, rest = text.partition("/")
            text = "/" + rest if host in ("", "localhost") else text
    return Path(text).expanduser()


def to_path(url: PathLike):
    """A path object for ``url``: :class:`pathlib.Path` if local, else a
    :class:`upath.UPath` (``/``, ``exists()``, ``stat()``, ``open()``; ``str()`` is the URL)."""
    if is_local(url):
        return local_path(url)
    from upath import UPath

    return UPath(str(url))


def normalize(url: str) -> str:
    """``url`` without surrounding blanks and trailing slashes (``s3://`` itself is kept)."""
    return re.sub(r"(?<![:/])/+$", "", url.strip())


def join(base: PathLike, *parts: str) -> str:
    """``base/part/…`` as a string, without doubling slashes."""
    return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])


def redact(url: PathLike | None) -> str:
    """``url`` without user info, query or fragment: what logs and error messages may show."""
    if url is None:
        return ""
    text = str(url)
    if is_local(text) and not _SCHEME.match(text):
        return text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_url(url: str, *, name: str = "XPORT_RAW_URL") -> None:
    """Refuse a storage URL that carries credentials or options (they belong in the
    environment, where they are never logged), or names no bucket or path.

    Raises:
        ConfigError: with the URL redacted.
    """
    if is_local(url) and not _SCHEME.match(url):
        return
    try:
        parts = urlsplit(url)
        has_userinfo = bool(parts.username or parts.password)
    except ValueError:  # an unparseable port, say
        raise ConfigError(f"{name} is not a valid URL: {redact(url)!r}") from None
    if has_userinfo or parts.query or parts.fragment:
        raise ConfigError(
            f"{name} must not contain credentials or options ({redact(url)!r}); give them in the "
            "environment instead (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, …)"
        )
    if not is_local(url) and not (parts.netloc or parts.path.strip("/")):
        raise ConfigError(f"{name} names no bucket or path: {redact(url)!r}")


def filesystem(url: PathLike) -> tuple[AbstractFileSystem, str]:
    """The fsspec file system of ``url`` and the path within it (``fsspec.core.url_to_fs``).

    Raises:
        ConfigError: the protocol is unknown or its package (e.g. ``s3fs``) is not installed.
    """
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(str(url))
    except (ImportError, ValueError) as exc:
        # fsspec's own messages name the protocol and the package to install, never the options
        extra = "; install `xport-etl[s3]`" if isinstance(exc, ImportError) and protocol(url) in ("s3", "s3a") else ""
        raise ConfigError(f"cannot open {redact(url)!r}: {exc}{extra}") from None


def located(exc: OSError, url: PathLike, doing: str) -> OSError:
    """``exc`` again (same class where possible) with the redacted ``url`` in its message: an
    object store's own message ("The specified bucket does not exist") does not say where."""
    message = f"{doing} {redact(url)}: {exc}"
    try:
        return type(exc)(message)
    except TypeError:
        return OSError(message)


# what to do about a landed window xport-etl did not write (PathOutsideError, landing.ManifestError)
FOREIGN_WINDOW_HINT = (
    "xport-etl did not write this window: move its directory out of the raw root (and check "
    "who may write to XPORT_RAW_URL), then extract the window again; nothing was loaded"
)


class PathOutsideError(BadInputError):
    """A path derived from data (a window id, an endpoint name) that resolves outside the
    directory it must stay in."""

    hint = FOREIGN_WINDOW_HINT
    permanent = True


def contained(root: PathLike, path: PathLike) -> Path:
    """``path``, resolved, if it lies under ``root`` (resolved too: symlinks followed).

    Raises:
        PathOutsideError: it does not; nothing is written or deleted there.
    """
    base = Path(root).resolve()
    resolved = Path(path).resolve()
    if resolved != base and base not in resolved.parents:
        raise PathOutsideError(f"refusing to touch {path}: it is outside {base}")
    return resolved


def exists(url: PathLike) -> bool:
    """Whether the file or directory ``url`` exists now (remote listings are not cached)."""
    if is_local(url):
        return local_path(url).exists()
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    return fs.exists(path)


def check_writable(root: PathLike) -> None:
    """Fail now, not after a window of API requests, if a remote ``root`` cannot take objects:
    put an empty :data:`WRITE_CHECK` object there (a missing bucket, a wrong endpoint or missing
    PutObject rights show up here). An object store's bucket probes (HEAD bucket) need rights a
    least-privilege writer may not have, so the check is the write itself; the object is
    overwritten by the next check and never read. A local root is created where needed.

    Raises:
        OSError: what the store said, with the redacted URL (:func:`located`).
    """
    if is_local(root):
        return
    fs, path = filesystem(root)
    try:
        fs.pipe_file(f"{path.rstrip('/')}/{WRITE_CHECK}", b"")
    except OSError as exc:
        raise located(exc, root, "cannot write to the raw store at") from exc
