"""Local file writes that are never seen half-done: temp file, fsync, rename, fsync dir.

Shared by every layer that writes a local file (the local storage, the node's caches, make-disk); it
knows nothing of what it writes and never reads a file's content.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from repo_tool.errors import InputError, UsageError

# The temporary files of make_temp (write_atomic, LocalStorage, make-disk): ".NAME.<8 random>.tmp".
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def user_path(raw: str, where: str = "") -> Path:
    """``raw`` as a path with ``~`` / ``~user`` expanded; an unknown user (or no home) is an input error
    naming the value (``where``: the flag or field it came from), not Python's RuntimeError."""
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # "Could not determine home directory."
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}{raw}: cannot expand '~': no such user or no home directory") from None


def make_temp(directory: str | os.PathLike[str], name: str) -> tuple[int, str]:
    """A new temporary file in ``directory`` for ``name`` (an open fd and its path), the kind
    leftover_temp_files finds.  Only 40 characters of the name go into it, so the temp name fits
    NAME_MAX (255) whenever the name itself does."""
    return tempfile.mkstemp(prefix=f".{name[:40]}.", suffix=".tmp", dir=directory)


def write_atomic(path: str | os.PathLike[str], data: bytes | Iterable[bytes], mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (bytes, or chunks as they are produced) atomically.

    The new file keeps the mode of the file it replaces (or ``mode``, or 0644
    for a new file).  On any failure the old file is left exactly as it was
    and the temporary file is removed.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if mode is None:
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
        except FileNotFoundError:
            mode = 0o644
    fd, tmp_name = make_temp(directory, target.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in [data] if isinstance(data, bytes) else data:
                handle.write(chunk)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_dir(directory)


def stat_or_none(path: str | os.PathLike[str], what: str = "") -> os.stat_result | None:
    """What is at ``path`` (symlinks followed), or None when nothing is.  pathlib's ``exists()`` and
    ``is_file()`` raise OSError for a name too long or a directory that cannot be searched (Python
    < 3.14); here those become one usage error naming ``what`` and the path."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UsageError(f"{what}{path}: {exc.strerror or exc}") from None


def fsync_dir(directory: Path) -> None:
    """Make a new or renamed name in ``directory`` durable, best effort (not every file system can)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def leftover_temp_files(directory: Path) -> list[str]:
    """Names of the temporary files in ``directory``: left by a write that was killed (SIGKILL, power
    loss), or of a write still running in another process.  Nothing reads them; none is removed here."""
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if _TEMP_NAME.match(e.name) and e.is_file(follow_symlinks=False))
    except OSError:
        return []
