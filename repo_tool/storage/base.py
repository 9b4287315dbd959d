"""Where repositories live: one reading protocol and one small storage interface, no TUF.

A :class:`Reader` is named bytes under one location (``url``): ``read(name, limit)`` answers
the bytes, None when the object does not exist (tough's 403/404/410), and an error beyond
``limit`` bytes; ``describe(name)`` says where ``name`` is, for messages.  Every reading side
shares it: the storages below, and a node's :class:`repo_tool.storage.http.RemoteDir`.

A :class:`Storage` is a :class:`Reader` over a flat namespace of objects under a base location (a
metadata directory ``<base>/<variant>/<arch>/`` or the shared ``targets/``).  The operations it
adds are the ones the upload rules of SPEC §4 need:

* ``stream`` (a large object in bounded chunks),
* ``size`` (to skip content-addressed objects already present),
* ``create`` (write-once: fails if the object exists with other bytes),
* ``put_file`` (write-once copy of a local file, streamed),
* ``put_stream`` (write-once copy of chunks from elsewhere, only once they are all in: a
  :class:`~repo_tool.storage.staging.Streamable` storage, local or S3),
* ``swap`` (replace ``timestamp.json`` only if it still holds what we loaded).

Local and S3 storages can also list the directories right below them (:class:`Listable`:
``list_dirs``), which ``check-expirations`` uses to discover ``<variant>/<arch>/`` repositories;
the :class:`Storage` protocol itself does not require it.

``file://`` URLs and plain paths are served by :class:`LocalStorage`,
``s3://BUCKET/PREFIX/`` by :class:`repo_tool.storage.s3.S3Storage`, and ``http(s)://``
(read-only: a live repo through its public URL or CDN) by
:class:`repo_tool.storage.http.HttpStorage`.  This module imports none of them: only
:func:`repo_tool.storage.open_storage` chooses a backend.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

from repo_tool.core.reader import Reader
from repo_tool.errors import IOFailedError, UnreachableError, UsageError, VerificationError
from repo_tool.localfs import fsync_dir, make_temp, write_atomic

if TYPE_CHECKING:  # the staging protocol is its own module, which takes Sent from this one
    from repo_tool.storage.staging import Staged

COPY_CHUNK = 8 * 1024 * 1024


class StorageError(IOFailedError):
    """A storage operation failed or found something it must not overwrite."""


class StorageUnreachableError(StorageError, UnreachableError):
    """The storage's endpoint could not be reached at all (nothing was asked of it)."""


class ConflictError(StorageError):
    """Another publisher changed the repository since it was loaded."""


STREAM_CHUNK = 1 << 20
Sent = Callable[[int], None]
"""Called with a byte count as parts of a file are stored (from several threads at once)."""


class Storage(Reader, Protocol):
    """A :class:`Reader` that also streams, sizes and (when ``writable``) stores objects."""

    writable: bool

    def child(self, *parts: str) -> Storage: ...

    def stream(self, name: str, limit: int, chunk: int = STREAM_CHUNK) -> Iterator[bytes] | None:
        """The object in chunks (None if missing); more than ``limit`` bytes is an error."""
        ...

    def size(self, name: str) -> int | None: ...

    def create(self, name: str, data: bytes) -> bool: ...

    def put_file(self, name: str, path: Path, size: int, sent: Sent | None = None) -> bool: ...

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None: ...


@runtime_checkable
class Listable(Protocol):
    """A storage that can list the "directories" right below it (local directories, S3 common
    prefixes under the prefix), so repositories ``<variant>/<arch>/`` can be discovered.  Kept out of
    :class:`Storage`: publishing never lists, and ``http(s)://`` storage cannot."""

    def list_dirs(self) -> list[str]:
        """Names of the sub-directories, sorted; none (not an error) if the location does not exist."""
        ...


@runtime_checkable
class Linkable(Protocol):
    """A storage that can hold a target as a link to the publisher's file instead of a copy
    (``--link-target``): a local directory, by hard link.  S3 and HTTP storage cannot."""

    def link_problem(self, path: Path) -> str | None:
        """Why ``path`` cannot be linked here (the text does not name ``path``), or None if it can."""
        ...

    def link_file(self, name: str, path: Path, size: int, check: Callable[[os.stat_result], None]) -> bool:
        """Store ``name`` as a hard link to ``path``, write-once (False if ``name`` is already stored
        with ``size`` bytes); ``check`` sees the linked file before ``name`` appears and may refuse it."""
        ...


@dataclass
class _LocalStaged:
    """A local object held in a temporary file beside its name, linked to the name on commit."""

    store: LocalStorage
    name: str
    tmp: Path
    size: int

    def commit(self) -> bool:
        try:
            try:
                os.link(self.tmp, self.store._path(self.name))
            except FileExistsError:
                return already_sized(self.store, self.name, self.store.size(self.name), self.size)
            fsync_dir(self.store.root)
            return True
        except OSError as exc:
            raise StorageError(f"{self.store.describe(self.name)}: cannot write: {exc.strerror or exc}") from None
        finally:
            self.discard()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


class LinkRefusedError(UsageError):
    """``--link-target``: the targets directory cannot hold a link to this file (a copy can)."""


def _link_refused(root: Path, exc: OSError) -> str | None:
    """Why a hard link failed where a copy would not (without the linked file's path, which the
    caller names), or None for other failures: another file system or mount, the kernel's
    ``fs.protected_hardlinks`` (a file the publisher does not own), too many links, none at all."""
    if exc.errno == errno.EXDEV:
        return f"cannot link into {root}: {exc.strerror} (another file system or mount)"
    if exc.errno == errno.EPERM:
        return f"cannot link into {root}: {exc.strerror} (fs.protected_hardlinks: only files you own)"
    if exc.errno in (errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP):
        return f"cannot link into {root}: {exc.strerror}"
    return None


class LocalStorage:
    """A local directory.  Writes go to a temporary file in the same directory, are
    fsynced, then linked (write-once) or renamed (swap) into place."""

    writable = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.resolve().as_uri() + "/"

    def child(self, *parts: str) -> LocalStorage:
        return LocalStorage(self.root.joinpath(*parts))

    def describe(self, name: str) -> str:
        return str(self.root / name)

    def list_dirs(self) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self.root) if entry.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StorageError(f"{self.root}: cannot list: {exc.strerror or exc}") from None

    def _path(self, name: str) -> Path:
        return self.root / object_name(name)

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        try:
            with self._path(name).open("rb") as handle:
                data = handle.read() if limit is None else handle.read(limit + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"{self.describe(name)}: {exc.strerror}") from None
        if limit is not None and len(data) > limit:
            raise oversized(self.describe(name), limit)
        return data

    def stream(self, name: str, limit: int, chunk: int = STREAM_CHUNK) -> Iterator[bytes] | None:
        try:
            handle = self._path(name).open("rb")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"{self.describe(name)}: {exc.strerror}") from None

        def failed(exc: Exception) -> StorageError:
            return StorageError(f"{self.describe(name)}: {getattr(exc, 'strerror', None) or exc}")

        return limited_chunks(handle, limit, chunk, ReadErrors(self.describe(name), failed))

    def size(self, name: str) -> int | None:
        try:
            return self._path(name).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"{self.describe(name)}: {exc.strerror or exc}") from None

    def _link_new(self, name: str, fill: bytes | Path, sent: Sent | None = None) -> bool:
        """Write to a temp file, fsync, hard-link to ``name``; False if ``name`` already existed."""
        try:
            return self._link_new_unchecked(name, fill, sent)
        except OSError as exc:
            raise StorageError(f"{self.describe(name)}: cannot write: {exc.strerror or exc}") from None

    def _link_new_unchecked(self, name: str, fill: bytes | Path, sent: Sent | None) -> bool:
        path = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp(self.root, name)
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(fill, bytes):
                    handle.write(fill)
                else:
                    with fill.open("rb") as source:
                        _copy(source, handle, sent)
                handle.flush()
                os.fchmod(handle.fileno(), 0o644)
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            fsync_dir(self.root)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def create(self, name: str, data: bytes) -> bool:
        """Write-once.  True if written; False if identical bytes were already there."""
        return self._link_new(name, data) or already_stored(self, name, data)

    def put_file(self, name: str, path: Path, size: int, sent: Sent | None = None) -> bool:
        existing = self.size(name)
        if existing is not None:
            return already_sized(self, name, existing, size)
        return self._link_new(name, path, sent)

    def put_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None) -> bool:
        staged = self.stage_stream(name, chunks, size, sent)
        return False if staged is None else staged.commit()

    def stage_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None
                     ) -> Staged | None:
        existing = self.size(name)
        if existing is not None:
            already_sized(self, name, existing, size)
            return None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = make_temp(self.root, name)
        except OSError as exc:
            raise StorageError(f"{self.describe(name)}: cannot write: {exc.strerror or exc}") from None
        staged = _LocalStaged(self, name, Path(tmp), size)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:  # to the end: the producer's last check runs before it is kept
                    handle.write(chunk)
                    if sent:
                        sent(len(chunk))
                handle.flush()
                os.fchmod(handle.fileno(), 0o644)
                os.fsync(handle.fileno())
        except OSError as exc:
            staged.discard()
            raise StorageError(f"{self.describe(name)}: cannot write: {exc.strerror or exc}") from None
        except BaseException:
            staged.discard()
            raise
        return staged

    def link_problem(self, path: Path) -> str | None:
        """Tries the link (to a temporary name, removed at once) where the targets go: comparing
        devices misses bind mounts and ``fs.protected_hardlinks``.  Before the targets directory
        exists, the nearest directory that does stands in for it (the same mount).  Failures a
        copy would share (no write access) are left to the run to report."""
        where = self.root
        while not where.exists() and where.parent != where:
            where = where.parent
        try:
            fd, tmp = make_temp(where, path.name)
            os.close(fd)
            os.unlink(tmp)
        except OSError:
            return None
        try:
            os.link(path, tmp)
        except OSError as exc:
            return _link_refused(self.root, exc)
        os.unlink(tmp)
        return None

    def link_file(self, name: str, path: Path, size: int, check: Callable[[os.stat_result], None]) -> bool:
        """A hard link under a temporary name first, checked (its inode is now fixed), then linked
        to ``name`` (never replacing it) and the temporary name removed: ``name`` never shows a file
        ``check`` refused, and a failure leaves nothing behind."""
        existing = self.size(name)
        if existing is not None:
            return already_sized(self, name, existing, size)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = make_temp(self.root, name)
            os.close(fd)
            os.unlink(tmp)
            os.link(path, tmp)
        except OSError as exc:
            problem = _link_refused(self.root, exc)
            if problem is not None:
                raise LinkRefusedError(f"--link-target {path}: {problem}; use --copy-target to store a copy") from None
            raise StorageError(f"{path}: cannot link into {self.root}: {exc.strerror or exc}") from None
        try:
            check(os.stat(tmp))
            try:
                os.link(tmp, self._path(name))
            except FileExistsError:
                return already_sized(self, name, self.size(name), size)
            except OSError as exc:
                raise StorageError(f"{self.describe(name)}: cannot link: {exc.strerror or exc}") from None
            fsync_dir(self.root)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        current = self.read(name)
        if current != expected:
            raise ConflictError(
                f"{self.describe(name)} changed since it was loaded (another publisher?)",
                retry="load again and retry",
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path(name), data, mode=0o644)
        except OSError as exc:
            raise StorageError(f"{self.describe(name)}: cannot write: {exc.strerror or exc}") from None


class TooLargeError(VerificationError):
    """An object larger than the most a reader takes of it (tough's limits): the repository is bad,
    not the connection, so reading it again would not help."""


def oversized(where: str, limit: int) -> TooLargeError:
    """The error for an object larger than the most a caller will read of it."""
    return TooLargeError(f"{where}: larger than the {limit}-byte limit")


@dataclass(frozen=True)
class ReadErrors:
    """How one bounded read (:func:`limited_chunks`) words its failures: what it reads (``where``), a
    read error in the reader's own words (``failed(exc)``), and the error one byte past the limit
    (``too_large(where, limit)``)."""

    where: str
    failed: Callable[[Exception], Exception]
    too_large: Callable[[str, int], Exception] = oversized


def limited_chunks(body: BinaryIO | Any, limit: int | None, chunk: int, errors: ReadErrors) -> Iterator[bytes]:
    """Chunks of at most ``chunk`` bytes read from ``body`` (closed at the end), never more than ``limit``
    bytes in all (None: no bound): one byte past it raises ``errors.too_large``, a read error
    ``errors.failed``."""
    total = 0
    try:
        while True:
            try:
                data: bytes = body.read(chunk if limit is None else min(chunk, limit + 1 - total))
            except Exception as exc:
                raise errors.failed(exc) from None
            if not data:
                return
            total += len(data)
            if limit is not None and total > limit:
                raise errors.too_large(errors.where, limit)
            yield data
    finally:
        body.close()


def object_name(name: str) -> str:
    """``name`` if it is one plain object name (no ``/``, not ``.``/``..``, not empty)."""
    if not name or "/" in name or name in (".", ".."):
        raise VerificationError(f"refusing object name {name!r}")
    return name


def already_stored(store: Storage, name: str, data: bytes) -> bool:
    """After a create-only write found ``name`` taken: False if it holds ``data``, else a conflict."""
    if store.read(name) != data:
        raise ConflictError(f"{store.describe(name)} already exists with other content (another publisher?)")
    return False


def already_sized(store: Storage, name: str, existing: int | None, size: int) -> bool:
    """A content-addressed object found stored: False (nothing to send) if its size is right."""
    if existing != size:
        raise ConflictError(f"{store.describe(name)} exists with {existing} bytes, expected {size}")
    return False


def _copy(source: BinaryIO, target: BinaryIO, sent: Sent | None) -> None:
    while chunk := source.read(COPY_CHUNK):
        target.write(chunk)
        if sent:
            sent(len(chunk))
