"""A local directory of metadata files: updog's metadata cache or a TUF client's trusted state.

Implements the verifier's ``Store`` protocol (:mod:`repo_tool.trust`); it stores bytes by name
and knows nothing of TUF: what may be kept there is the verifier's decision.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from repo_tool.errors import VerificationError
from repo_tool.localfs import write_atomic
from repo_tool.storage.base import StorageError


class DirectoryStore:
    """A local directory of metadata files: updog's cache or a client's trusted state.

    Names are single path segments (role names are percent-quoted); files are
    written atomically, so a crash leaves either the old or the new file.
    """

    def __init__(self, path: Path, best_effort: bool = False) -> None:
        self.path = path
        self.best_effort = best_effort  # a store that only saves downloads: failing to write is not an error

    def _file(self, name: str) -> Path:
        if not name or "/" in name or name in (".", ".."):
            raise VerificationError(f"refusing metadata file name {name!r}")
        return self.path / name

    def get(self, name: str) -> bytes | None:
        try:
            return self._file(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if self.best_effort:
                return None
            raise StorageError(f"{self._file(name)}: cannot read: {exc.strerror or exc}") from None

    def put(self, name: str, raw: bytes) -> None:
        target = self._file(name)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                if target.read_bytes() == raw:
                    return
            write_atomic(target, raw, mode=0o644)
        except OSError as exc:
            if self.best_effort:
                return
            raise StorageError(f"{target}: cannot write: {exc.strerror or exc}") from None

    def remove(self, name: str) -> None:
        try:
            os.unlink(self._file(name))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"{self._file(name)}: cannot remove: {exc.strerror or exc}") from None
