"""Streaming SHA-256 of local files, several at once (SPEC §10.2 step 4, gap §10.7.5).

Each file is read once in large chunks into one reused buffer per worker, so
memory stays at ``jobs × CHUNK`` whatever the file sizes.  hashlib releases
the GIL while hashing large buffers, so threads hash on all cores.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repo_tool.errors import UsageError

CHUNK = 256 * 1024
# Large files are hashed straight from a read-only memory map, one window at a time (no copy into
# a buffer); each window is dropped from this process after use, so resident memory stays small.
MMAP_MIN = 8 * 1024 * 1024
WINDOW = 64 * 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    path: Path
    length: int
    sha256: str
    mtime_ns: int = 0


def hash_file(path: Path, chunk: int = CHUNK) -> FileDigest:
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    length = 0
    try:
        with path.open("rb", buffering=0) as handle:
            info = os.fstat(handle.fileno())
            mtime_ns = info.st_mtime_ns
            if info.st_size >= MMAP_MIN and hasattr(mmap, "MADV_DONTNEED"):
                length = _hash_mapped(handle.fileno(), info.st_size, digest)
                return FileDigest(path, length, digest.hexdigest(), mtime_ns)
            while True:
                count = handle.readinto(buffer)
                if not count:
                    break
                digest.update(view[:count])
                length += count
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    return FileDigest(path, length, digest.hexdigest(), mtime_ns)


def _hash_mapped(fd: int, size: int, digest: Any) -> int:
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            for offset in range(0, size, WINDOW):
                end = min(offset + WINDOW, size)
                digest.update(view[offset:end])
                mapped.madvise(mmap.MADV_DONTNEED, offset, end - offset)
        finally:
            view.release()
    return size


def hash_files(paths: Iterable[Path], jobs: int | None = None) -> dict[Path, FileDigest]:
    """Hash every distinct path once, ``jobs`` at a time (default: one per CPU)."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    workers = max(1, min(jobs or os.cpu_count() or 1, len(unique)))
    if workers == 1:
        return {path: hash_file(path) for path in unique}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256") as pool:
        return dict(zip(unique, pool.map(hash_file, unique)))
