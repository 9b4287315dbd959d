"""Named files over the node's transport: :class:`RemoteDir`, and :class:`HttpStorage` built on it.

:class:`RemoteDir` is a directory of files at a base URL (http(s)://, ``file://`` or a local path) read
through a :class:`~repo_tool.storage.transport.Transport`, as a node reads its metadata and targets base
URLs: tough's retries, kept-alive connections, 403/404/410 mean "not there", truncated answers refused,
and the transport's :class:`~repo_tool.storage.transport.FetchError` as it is.

:class:`HttpStorage` is the read-only :class:`~repo_tool.storage.base.Storage` of a live repository
through its public URL or CDN: a :class:`RemoteDir` at an http(s):// URL whose failures are
StorageErrors.  Loading a repo this way is what a node sees, so ``--plan`` and audits can run against
production without credentials.  Writing is refused: publishing needs the bucket itself (``s3://``).

Both are :class:`~repo_tool.core.reader.Reader`\\ s (named bytes: ``url``, ``read``, ``describe``);
neither knows anything of TUF.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlparse, urlsplit

from repo_tool.core.reader import Reader
from repo_tool.errors import ConfigError, UnreachableError
from repo_tool.storage.base import STREAM_CHUNK, Sent, StorageError, StorageUnreachableError, TooLargeError, object_name
from repo_tool.storage.transport import CHUNK, AnswerTooLargeError, FetchError, Transport


class RemoteDir:
    """A directory of files at a base URL (http(s)://, file:// or a local path), read through ``transport``.

    Names are appended percent-quoted (``/`` kept, as tough joins path-like target names).
    """

    def __init__(self, base_url: str, transport: Transport) -> None:
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https", "file", ""):
            raise ConfigError(f"{base_url}: unsupported URL scheme {scheme!r} (expected http, https or file)")
        self.url = base_url if base_url.endswith("/") else base_url + "/"
        self.transport = transport
        self._plain_path = scheme == ""

    def location(self, name: str) -> str:
        """The URL (or path) of ``name`` without the query."""
        return self.url + (name if self._plain_path else quote(name))

    def describe(self, name: str) -> str:
        """The full URL of ``name`` as requested, query included (for messages)."""
        return self.transport.with_query(self.location(name))

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        return self.transport.fetch(self.location(name), limit)

    def stream(self, name: str, limit: int | None, chunk: int = CHUNK) -> Iterator[bytes] | None:
        return self.transport.stream(self.location(name), limit, chunk)

    def size(self, name: str) -> int | None:
        """The size of ``name`` (a HEAD request for http(s)), or None if it is not there."""
        return self.transport.size(self.location(name))


class HttpStorage:
    """The read-only storage at an http(s):// URL: a :class:`RemoteDir` whose failures are StorageErrors."""

    writable = False

    def __init__(self, url: str, transport: Transport | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ConfigError(f"storage URL {url!r}: expected http(s)://HOST/PATH/ without query or fragment")
        self._dir = RemoteDir(url, transport or Transport())
        self.url = self._dir.url

    def child(self, *parts: str) -> HttpStorage:
        for part in parts:
            object_name(part)
        return HttpStorage(self.url + "".join(f"{quote(p)}/" for p in parts), self._dir.transport)

    def describe(self, name: str) -> str:
        return self._dir.location(object_name(name))

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        with _storage_errors():
            return self._dir.read(object_name(name), limit)

    def stream(self, name: str, limit: int, chunk: int = STREAM_CHUNK) -> Iterator[bytes] | None:
        with _storage_errors():
            chunks = self._dir.stream(object_name(name), limit, chunk)
        return None if chunks is None else _storage_error_chunks(chunks)

    def size(self, name: str) -> int | None:
        with _storage_errors():
            return self._dir.size(object_name(name))

    def _read_only(self, name: str) -> StorageError:
        return StorageError(f"{self.describe(name)}: HTTP storage is read-only (publish to the s3:// bucket)")

    def create(self, name: str, data: bytes) -> bool:
        raise self._read_only(name)

    def put_file(self, name: str, path: Path, size: int, sent: Sent | None = None) -> bool:
        raise self._read_only(name)

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        raise self._read_only(name)


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """The transport's failure as this storage's, keeping whether the server could be reached at all."""
    try:
        yield
    except AnswerTooLargeError as exc:
        raise TooLargeError(exc.message) from None
    except FetchError as exc:
        raise (StorageUnreachableError if isinstance(exc, UnreachableError) else StorageError)(exc.message) from None


def _storage_error_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    with _storage_errors():
        yield from chunks


if TYPE_CHECKING:  # both are the one read protocol: checked by mypy, nothing at run time
    _REMOTE_DIR: type[Reader] = RemoteDir
    _HTTP_STORAGE: type[Reader] = HttpStorage
