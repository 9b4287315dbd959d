"""Storage: bytes by name, no TUF.  A repository's metadata and targets live behind one small
interface (``base.Storage``, a ``base.Reader`` of named bytes); this ``__init__`` is the only place
that picks a backend for a URL, and it imports a backend (and :mod:`repo_tool.aws`) only when a URL
asks for it, so a node that reads over HTTP never loads the S3 code.

* ``base`` — the ``Reader`` and ``Storage`` protocols, errors, the local directory backend, shared
  upload rules;
* ``staging`` — staged writes: objects streamed in whole but shown only once a whole job verified;
* ``s3`` — Amazon S3 and S3-compatible services (boto3), with conditional writes;
* ``http`` — ``RemoteDir`` (a node's base URL over ``transport``) and the read-only ``HttpStorage`` on it;
* ``transport`` — the HTTP(S)/file client nodes use (retries, resumes, limits), as updog's reqwest;
* ``proxy`` — the transport's proxies, from the environment as reqwest reads them;
* ``directory`` — a local directory of metadata files: updog's cache or a TUF client's trusted state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from repo_tool.errors import ConfigError
from repo_tool.localfs import user_path
from repo_tool.storage.base import LocalStorage, Storage

if TYPE_CHECKING:
    from repo_tool.aws import AwsSettings


def open_storage(url: str, base_dir: Path | None = None, aws: AwsSettings | None = None) -> Storage:
    """A storage for ``url``: a path (relative to ``base_dir``), ``file://``, ``s3://`` or ``http(s)://``."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and os.name == "nt"):
        raw = unquote(parsed.path) if parsed.scheme == "file" else url
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            raw = parsed.netloc + raw  # file://relative/path, as tuftool writes it
        path = user_path(raw)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return LocalStorage(path)
    if parsed.scheme == "s3":
        from repo_tool.aws import AwsSettings
        from repo_tool.storage.s3 import S3Storage

        return S3Storage.from_url(url, aws or AwsSettings())
    if parsed.scheme in ("http", "https"):
        from repo_tool.storage.http import HttpStorage

        return HttpStorage(url)
    raise ConfigError(f"storage URL {url!r}: scheme {parsed.scheme!r} is not supported (use a path, file://, s3:// "
                      "or http(s)://)")
