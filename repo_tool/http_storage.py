"""Read-only storage over HTTP(S): a live repository through its public URL or CDN.

Loading a repo this way is what a node sees, so ``--plan`` and (later) audits
can run against production without credentials.  Like tough's HTTP transport,
403, 404 and 410 mean "not there"; other failures are errors.  Writing is
refused: publishing needs the bucket itself (``s3://``).
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlparse

from repo_tool.errors import ConfigError
from repo_tool.storage import Sent, StorageError, object_name

TIMEOUT = 30
NOT_FOUND = (403, 404, 410)
USER_AGENT = "repo-tool"


class HttpStorage:
    writable = False

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
            raise ConfigError(f"storage URL {url!r}: expected http(s)://HOST/PATH/ without query or fragment")
        self.url = url if url.endswith("/") else url + "/"

    def child(self, *parts: str) -> HttpStorage:
        for part in parts:
            object_name(part)
        return HttpStorage(self.url + "".join(f"{quote(p)}/" for p in parts))

    def describe(self, name: str) -> str:
        return self.url + quote(object_name(name))

    def _open(self, name: str, method: str) -> urllib.request.Request:
        return urllib.request.Request(self.describe(name), method=method, headers={"User-Agent": USER_AGENT})

    def _fetch(self, name: str, method: str, limit: int | None = None) -> tuple[bytes, str | None] | None:
        """The body (up to ``limit`` + 1 bytes) and Content-Length, or None for 403/404/410."""
        try:
            with urllib.request.urlopen(self._open(name, method), timeout=TIMEOUT) as answer:
                data: bytes = answer.read() if limit is None else answer.read(limit + 1)
                return data, answer.headers.get("Content-Length")
        except urllib.error.HTTPError as exc:
            if exc.code in NOT_FOUND:
                return None
            raise StorageError(f"{self.describe(name)}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            why = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
            raise StorageError(f"{self.describe(name)}: {why}") from None

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        answer = self._fetch(name, "GET", limit)
        if answer is None:
            return None
        data, announced = answer
        if limit is not None and len(data) > limit:
            raise StorageError(f"{self.describe(name)}: larger than the {limit}-byte limit")
        if announced is not None and announced.isdigit() and int(announced) != len(data):
            raise StorageError(f"{self.describe(name)}: truncated answer ({len(data)} of {announced} bytes)")
        return data

    def size(self, name: str) -> int | None:
        answer = self._fetch(name, "HEAD")
        if answer is None:
            return None
        length = answer[1]
        if length is None or not length.isdigit():
            raise StorageError(f"{self.describe(name)}: no Content-Length in the answer")
        return int(length)

    def _read_only(self, name: str) -> StorageError:
        return StorageError(f"{self.describe(name)}: HTTP storage is read-only (publish to the s3:// bucket)")

    def create(self, name: str, data: bytes) -> bool:
        raise self._read_only(name)

    def put_file(self, name: str, path: Path, size: int, sent: Sent | None = None) -> bool:
        raise self._read_only(name)

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        raise self._read_only(name)
