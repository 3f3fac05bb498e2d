"""Objects under one storage URL: the one module that knows how an object store is written.

With ``XPORT_STORAGE_URL`` set, every durable kind of state (:mod:`xport_etl.layout`) is kept as
objects under that URL, and hosts share nothing else. What they need from the store is small, and
:class:`Store` is all of it:

- :meth:`~Store.get` an object with its *etag* (what changes whenever the object is written);
- :meth:`~Store.put` one, whole (every write of an object is atomic: a reader sees the old bytes or
  the new, never a part);
- :meth:`~Store.create`: write it only if there is no object of that key (**if-none-match**), and
  :meth:`~Store.replace`: only if it is still the object of a given etag (**if-match**). These two
  *conditional writes* are what makes the store safe for several writers without a lock server:
  the first writer of a warehouse version's commit wins and the other merges again onto it, a
  lease changes hands only from the holder a successor saw, a ledger's next number is taken once;
- :meth:`~Store.keys` under a prefix (sorted, optionally after a key), :meth:`~Store.delete`,
  :meth:`~Store.upload` and :meth:`~Store.download` of large files.

Two back ends:

- **S3 and S3-compatible stores** (``s3://bucket/prefix``: AWS S3, MinIO, Cloudflare R2, Ceph RGW,
  …), through s3fs and its botocore client. Conditional writes are S3's ``If-None-Match: *`` and
  ``If-Match: <etag>`` on ``PutObject`` (AWS since 2024; check that your store honours them: one
  that ignores them would let two publishers both win). Credentials, endpoint and region come from
  the usual places (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
  ``AWS_PROFILE``, an instance or IRSA role, ``FSSPEC_S3_*``), never from the URL.
- **A local directory** (a path or ``file://``): one machine, several scratch directories (tests,
  a single host that wants the object layout). ``create`` is a hard link of a complete temporary
  file (which fails if the name exists) and ``replace`` compares and renames under an ``flock``:
  both need a local file system, not a network one.

Any other protocol is refused (:func:`check_storage_url`): a store without conditional writes
cannot keep two writers from losing each other's work, and xport-etl does not pretend it can.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xport_etl.errors import ConfigError
from xport_etl.extract import storage
from xport_etl.fsutil import fsync_dir, write_atomic

__all__ = ["SUPPORTED", "Blob", "Store", "check_storage_url", "open_store"]

S3_PROTOCOLS = ("s3", "s3a")
# parts of a multipart upload in flight at once: each is held in memory (s3fs reads 50 MB parts;
# its default of 10 held 500 MB beside a publish uploading a 1M-order warehouse)
UPLOAD_CONCURRENCY = 4
SUPPORTED = ("s3", "file")  # what check_storage_url accepts, as docs name it


@dataclass(frozen=True)
class Blob:
    """An object's bytes and its etag (the version a conditional write names)."""

    data: bytes
    etag: str


def check_storage_url(url: str, name: str = "XPORT_STORAGE_URL") -> None:
    """Refuse a storage URL with credentials or options in it (:func:`storage.check_url`), or whose
    protocol has no conditional writes xport-etl can use.

    Raises:
        ConfigError: naming ``name``, with the URL redacted.
    """
    storage.check_url(url, name=name)
    proto = storage.protocol(url)
    if not storage.is_local(url) and proto not in S3_PROTOCOLS:
        raise ConfigError(
            f"{name}: {storage.redact(url)!r} is a {proto}:// store, which xport-etl cannot write "
            "conditionally (two publishers could lose each other's rows)",
            hint="use an S3 or S3-compatible bucket (s3://bucket/prefix: AWS, MinIO, R2, Ceph) or a local directory",
        )


def open_store(url: str) -> Store:
    """The :class:`Store` of ``url`` (checked by :func:`check_storage_url`)."""
    check_storage_url(url)
    if storage.is_local(url):
        return LocalStore(storage.local_path(url))
    return S3Store(url)


class Store:
    """Objects under one root; keys are ``/``-separated and relative to the root."""

    url: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shown!r})"

    @property
    def shown(self) -> str:
        """The root as logs and messages may show it (no credentials)."""
        return storage.redact(self.url)

    def where(self, key: str) -> str:
        """The URL of ``key`` as messages show it."""
        return storage.join(self.shown, key)

    def child(self, prefix: str) -> Store:
        """The store rooted at ``prefix`` under this one."""
        raise NotImplementedError

    def get(self, key: str) -> Blob | None:
        """The object and its etag, or None if there is none."""
        raise NotImplementedError

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The objects of ``keys`` that exist, by key (read at once where the store allows)."""
        found = {}
        for key in keys:
            blob = self.get(key)
            if blob is not None:
                found[key] = blob.data
        return found

    def put(self, key: str, data: bytes) -> str:
        """Write the object whole (replacing any); its new etag."""
        raise NotImplementedError

    def create(self, key: str, data: bytes) -> str | None:
        """Write the object only if there is none of that key; its etag, or None if there was one."""
        raise NotImplementedError

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        """Write the object only if it is still the one of ``etag``; its new etag, or None if it
        changed or is gone."""
        raise NotImplementedError

    def keys(self, prefix: str = "", *, after: str | None = None) -> list[str]:
        """Every key in the folder ``prefix`` and below (relative to the root), sorted; only those
        after ``after``."""
        raise NotImplementedError

    def sizes(self, prefix: str = "", *, after: str | None = None) -> dict[str, tuple[int, float]]:
        """Every key under ``prefix`` (only those after ``after``) with its size and last-modified
        time (epoch seconds): one listing, as :meth:`keys`."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def delete(self, keys: Iterable[str]) -> None:
        """Delete these objects (those already gone are fine)."""
        raise NotImplementedError

    def upload(self, path: Path, key: str) -> None:
        """Write the local file ``path`` as the object ``key`` (multipart when large)."""
        raise NotImplementedError

    def download(self, key: str, path: Path) -> None:
        """Copy the object to the local file ``path``, atomically (a temporary name, then a rename).

        Raises:
            FileNotFoundError: there is no such object.
        """
        raise NotImplementedError

    def upload_many(self, files: dict[str, Path]) -> None:
        """:meth:`upload` each local file to its key (at once where the store allows)."""
        for key, path in files.items():
            self.upload(path, key)

    def download_many(self, files: dict[str, Path]) -> None:
        """:meth:`download` each key to its local file (at once where the store allows)."""
        for key, path in files.items():
            self.download(key, path)


# ---- a local directory


def _etag(st: os.stat_result) -> str:
    # every write is a new file (write_atomic, link): a new inode, a new modification time
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


class LocalStore(Store):
    """Objects as files under a local directory (one machine's file system)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = str(self.root)

    def child(self, prefix: str) -> LocalStore:
        return LocalStore(self._path(prefix))

    def _path(self, key: str) -> Path:
        parts = [p for p in key.split("/") if p]
        if any(p in (".", "..") or p.startswith(".") for p in parts):
            raise ValueError(f"not a plain key: {key!r}")
        return self.root.joinpath(*parts)

    def get(self, key: str) -> Blob | None:
        try:
            with open(self._path(key), "rb") as f:
                return Blob(f.read(), _etag(os.fstat(f.fileno())))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, mode=None)
        return _etag(path.stat())

    def create(self, key: str, data: bytes) -> str | None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        write_atomic(tmp, data, mode=None)
        try:
            os.link(tmp, path)  # atomic, and refused if the name exists
        except FileExistsError:
            return None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return _etag(path.stat())

    @contextlib.contextmanager
    def _locked(self, path: Path):
        lock = path.with_name(f".{path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        path = self._path(key)
        if not path.parent.is_dir():
            return None
        with self._locked(path):
            try:
                if _etag(path.stat()) != etag:
                    return None
            except FileNotFoundError:
                return None
            write_atomic(path, data, mode=None)
            return _etag(path.stat())

    def keys(self, prefix: str = "", *, after: str | None = None) -> list[str]:
        return sorted(self.sizes(prefix, after=after))

    def sizes(self, prefix: str = "", *, after: str | None = None) -> dict[str, tuple[int, float]]:
        base = self._path(prefix) if prefix.strip("/") else self.root
        found: dict[str, tuple[int, float]] = {}
        if not base.is_dir():
            return found
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):  # temporary files and locks
                    continue
                path = Path(dirpath, name)
                key = path.relative_to(self.root).as_posix()
                if after is not None and key <= after:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    found[key] = (st.st_size, st.st_mtime)
        return found

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            path.with_name(f".{path.name}.lock").unlink(missing_ok=True)
            # folders left empty go too (an object store has no folders to leave behind)
            for parent in path.parents:
                if parent == self.root or self.root not in parent.parents:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break

    def upload(self, path: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(target.parent)

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such object", self.where(key))
        _copy_into(path, lambda tmp: shutil.copyfile(source, tmp))


def _copy_into(path: Path, fill) -> None:
    """``fill(tmp)`` writes a temporary file beside ``path``, which then takes its place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    try:
        fill(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---- S3 and S3-compatible stores


def _conflict(exc: OSError, *, gone: bool) -> bool:
    """Whether a conditional PutObject failed on its condition: 412 Precondition Failed (s3fs
    raises FileExistsError for If-None-Match and EINVAL for If-Match), 409 ConditionalRequestConflict
    (another conditional write of the key in flight), or (``gone``: If-Match) 404, the object deleted."""
    if isinstance(exc, FileExistsError) or (gone and isinstance(exc, FileNotFoundError)):
        return True
    if isinstance(exc, FileNotFoundError):  # If-None-Match into a bucket that is not there
        return False
    return exc.errno == errno.EINVAL or "ConditionalRequestConflict" in str(exc) or "PreconditionFailed" in str(exc)


class S3Store(Store):
    """Objects under ``s3://bucket/prefix`` (s3fs; conditional writes through its botocore client)."""

    def __init__(self, url: str) -> None:
        self.url = storage.normalize(url)
        self.fs, path = storage.filesystem(self.url)
        self.bucket, _, prefix = path.partition("/")
        self.prefix = prefix.strip("/")

    def child(self, prefix: str) -> S3Store:
        return S3Store(storage.join(self.url, prefix))

    def _key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key.strip("/")) if p)

    def _path(self, key: str) -> str:
        return f"{self.bucket}/{self._key(key)}"

    def _call(self, method: str, **kwargs) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, self.fs._call_s3, method, Bucket=self.bucket, **kwargs)

    def _failed(self, exc: OSError, key: str, doing: str) -> OSError:
        return storage.located(exc, self.where(key), doing)

    def get(self, key: str) -> Blob | None:
        from fsspec.asyn import sync

        async def fetch():
            response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self._key(key))
            body = response["Body"]
            try:
                return Blob(await body.read(), response["ETag"])
            finally:
                body.close()

        try:
            return sync(self.fs.loop, fetch)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed(exc, key, "cannot read") from exc

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        paths = {self._path(k): k for k in keys}
        if not paths:
            return {}
        try:
            found = self.fs.cat(list(paths), on_error="omit")
        except OSError as exc:
            raise self._failed(exc, "", "cannot read under") from exc
        return {paths[self.fs._strip_protocol(p)]: data for p, data in found.items()}

    def _put(self, key: str, data: bytes, **condition: str) -> str | None:
        try:
            response = self._call("put_object", Key=self._key(key), Body=data, **condition)
        except OSError as exc:
            if condition and _conflict(exc, gone="IfMatch" in condition):
                return None
            raise self._failed(exc, key, "cannot write") from exc
        return response["ETag"]

    def put(self, key: str, data: bytes) -> str:
        etag = self._put(key, data)
        assert etag is not None
        return etag

    def create(self, key: str, data: bytes) -> str | None:
        return self._put(key, data, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, etag: str) -> str | None:
        return self._put(key, data, IfMatch=etag)

    def _listing(self, prefix: str, after: str | None) -> Iterable[dict]:
        base = self._key(prefix)
        if base:  # a prefix is a folder: "a" lists a/…, not ab/…
            base += "/"
        kwargs: dict[str, Any] = {"Prefix": base}
        if after is not None:
            kwargs["StartAfter"] = self._key(after)
        while True:
            try:
                page = self._call("list_objects_v2", **kwargs)
            except OSError as exc:
                raise self._failed(exc, prefix, "cannot list") from exc
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def keys(self, prefix: str = "", *, after: str | None = None) -> list[str]:
        return sorted(self._relative(o["Key"]) for o in self._listing(prefix, after))

    def sizes(self, prefix: str = "", *, after: str | None = None) -> dict[str, tuple[int, float]]:
        return {
            self._relative(o["Key"]): (int(o["Size"]), o["LastModified"].timestamp())
            for o in self._listing(prefix, after)
        }

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._failed(exc, key, "cannot read") from exc
        return True

    def delete(self, keys: Iterable[str]) -> None:
        paths = [self._path(k) for k in keys]
        if paths:
            try:
                self.fs.rm(paths)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise self._failed(exc, "", "cannot delete under") from exc

    def upload(self, path: Path, key: str) -> None:
        try:
            self.fs.put_file(str(path), self._path(key), max_concurrency=UPLOAD_CONCURRENCY)
        except OSError as exc:
            raise self._failed(exc, key, "cannot upload to") from exc

    def upload_many(self, files: dict[str, Path]) -> None:
        if files:
            try:
                self.fs.put(
                    [str(p) for p in files.values()],
                    [self._path(k) for k in files],
                    max_concurrency=UPLOAD_CONCURRENCY,
                )
            except OSError as exc:
                raise self._failed(exc, "", "cannot upload to") from exc

    def download_many(self, files: dict[str, Path]) -> None:
        """The files are new (a fresh folder): written in place, not through a temporary name."""
        for path in files.values():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if files:
            try:
                self.fs.get([self._path(k) for k in files], [str(p) for p in files.values()])
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise self._failed(exc, "", "cannot download from") from exc

    def download(self, key: str, path: Path) -> None:
        try:
            _copy_into(path, lambda tmp: self.fs.get_file(self._path(key), str(tmp)))
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._failed(exc, key, "cannot download") from exc
