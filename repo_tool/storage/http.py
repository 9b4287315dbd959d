"""Read-only storage over HTTP(S): a live repository through its public URL or CDN.

Loading a repo this way is what a node sees, so ``--plan`` and (later) audits
can run against production without credentials.  Requests go through the node's
transport (:mod:`repo_tool.storage.transport`: tough's retries, kept-alive connections,
403/404/410 mean "not there", truncated answers refused); its failures are
StorageErrors here.  Writing is refused: publishing needs the bucket itself (``s3://``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

from repo_tool.errors import ConfigError, UnreachableError
from repo_tool.storage.base import STREAM_CHUNK, Sent, StorageError, StorageUnreachableError, object_name
from repo_tool.storage.transport import FetchError, Transport


class HttpStorage:
    writable = False

    def __init__(self, url: str, transport: Transport | None = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ConfigError(f"storage URL {url!r}: expected http(s)://HOST/PATH/ without query or fragment")
        self.url = url if url.endswith("/") else url + "/"
        self._transport = transport or Transport()

    def child(self, *parts: str) -> HttpStorage:
        for part in parts:
            object_name(part)
        return HttpStorage(self.url + "".join(f"{quote(p)}/" for p in parts), self._transport)

    def describe(self, name: str) -> str:
        return self.url + quote(object_name(name))

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        try:
            return self._transport.fetch(self.describe(name), limit)
        except FetchError as exc:
            raise _storage_error(exc) from None

    def stream(self, name: str, limit: int, chunk: int = STREAM_CHUNK) -> Iterator[bytes] | None:
        try:
            chunks = self._transport.stream(self.describe(name), limit, chunk)
        except FetchError as exc:
            raise _storage_error(exc) from None
        return None if chunks is None else _storage_errors(chunks)

    def size(self, name: str) -> int | None:
        try:
            return self._transport.size(self.describe(name))
        except FetchError as exc:
            raise _storage_error(exc) from None

    def _read_only(self, name: str) -> StorageError:
        return StorageError(f"{self.describe(name)}: HTTP storage is read-only (publish to the s3:// bucket)")

    def create(self, name: str, data: bytes) -> bool:
        raise self._read_only(name)

    def put_file(self, name: str, path: Path, size: int, sent: Sent | None = None) -> bool:
        raise self._read_only(name)

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        raise self._read_only(name)


def _storage_error(exc: FetchError) -> StorageError:
    """The transport's failure as this storage's, keeping whether the server could be reached at all."""
    return (StorageUnreachableError if isinstance(exc, UnreachableError) else StorageError)(exc.message)


def _storage_errors(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except FetchError as exc:
        raise _storage_error(exc) from None
