"""Writing a verified image into a partition with bounded memory (SPEC §9.5, staging step 3).

A target's download goes through :func:`checked` (length bound, SHA-256 at the end) into
:func:`write_image`, which decodes its LZ4 frames and writes the result at an offset of a block
device or disk image.  Three threads overlap the work through small bounded queues: one pulls the
download (network and SHA-256), one decodes, the caller's thread writes and keeps the writeback
going; memory stays bounded whatever the compression ratio.  Every failure is a one-line
:class:`ImageError` naming the image (the caller then leaves the partition set unbootable); an
exception raised by the download itself (a transport ``FetchError``) propagates unchanged.
It never chooses where to write (the caller gives the inactive set's partition) nor touches the
partition table.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from repo_tool.core.checked import checked as checked  # noqa: PLC0414  (callers import it from here)

# ImageError lives with the decoding rule; re-exported, as callers import it from here.
from repo_tool.core.lz4frames import ImageError as ImageError  # noqa: PLC0414
from repo_tool.core.lz4frames import LZ4Frames

QUEUE_DEPTH = 4  # downloaded chunks waiting for the decoder
OUT_CHUNK = 4 << 20  # decompressed bytes per decode call and write (lz4's largest block size)
OUT_DEPTH = 2  # decompressed pieces waiting to be written
FLUSH_EVERY = 16 << 20  # start writeback of what was written, and drop what was written back, this often


def write_image(chunks: Iterable[bytes], device: Path, offset: int, capacity: int, what: str) -> int:
    """Decode the LZ4 frames in ``chunks`` and write them to ``device`` from byte ``offset`` on, never
    past ``offset + capacity``; fsync; return the decompressed size.

    ``device`` is opened for writing, created if missing, never truncated (a partition of a disk
    image keeps the bytes around it).  ``chunks`` is consumed in a separate thread and closed if
    writing stops early; its exceptions are raised here unchanged.
    """
    if offset < 0 or capacity < 0:
        raise ValueError(f"offset {offset} and capacity {capacity} must not be negative")
    try:
        fd = os.open(device, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ImageError(f"{what}: cannot open {device}: {exc.strerror or exc}") from None
    try:
        with _Reader(_decode_in_thread(chunks, what), OUT_DEPTH) as pieces:
            position, end = offset, offset + capacity
            behind = ahead = offset  # the last two flush points
            for piece in pieces:
                if position + len(piece) > end:
                    raise ImageError(f"partition too small: {what} decompresses to more than {capacity} bytes")
                _write(fd, piece, position, device, what)
                position += len(piece)
                if FLUSH_EVERY and position - ahead >= FLUSH_EVERY:
                    _flush_behind(fd, behind, position)
                    behind, ahead = ahead, position
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: a device that cannot be synced (/dev/null)
                raise ImageError(f"{what}: syncing {device}: {exc.strerror or exc}") from None
        return position - offset
    finally:
        os.close(fd)


def _flush_behind(fd: int, start: int, end: int) -> None:
    """Start writing bytes ``start..end`` back to the disk and drop those already written back from
    the page cache (Linux ``POSIX_FADV_DONTNEED``), so the final fsync has little left to do and the
    image does not fill the node's memory with dirty pages."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with contextlib.suppress(OSError):  # advice only (a pipe or /dev/null refuses it)
            advise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


def _write(fd: int, data: bytes, position: int, device: Path, what: str) -> None:
    view = memoryview(data)
    while view:
        try:
            done = os.pwrite(fd, view, position)
        except OSError as exc:
            raise ImageError(f"{what}: writing {device} at byte {position}: {exc.strerror or exc}") from None
        view = view[done:]
        position += done


def _decode_in_thread(chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
    """:func:`_decoded`, with ``chunks`` pulled by a reader thread of its own."""
    with _Reader(chunks) as downloaded:
        yield from _decoded(downloaded, what)


def _decoded(chunks: Iterable[bytes], what: str) -> Iterator[bytes]:
    """The decompressed bytes of one or more concatenated LZ4 frames, at most OUT_CHUNK at a time
    (the rule is :class:`repo_tool.core.lz4frames.LZ4Frames`, which the publisher's check uses too)."""
    frames = LZ4Frames(what, OUT_CHUNK)
    for chunk in chunks:
        yield from frames.feed(chunk)
    frames.finish()


_END = object()


class _Reader:
    """Pulls ``chunks`` in a thread into a bounded queue; iterate it in the caller's thread.

    An exception from ``chunks`` is re-raised by the iteration; leaving the ``with`` block stops the
    thread (after its current chunk) and waits for it.
    """

    def __init__(self, chunks: Iterable[bytes], depth: int = QUEUE_DEPTH) -> None:
        self._chunks = chunks
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="image-reader", daemon=True)

    def __enter__(self) -> _Reader:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        while True:  # free the queue (and a producer blocked on it)
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def _put(self, item: object) -> bool:
        """Queue ``item``; False once the consumer has gone."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        end: object = _END
        iterator = None
        try:
            iterator = iter(self._chunks)
            for chunk in iterator:
                if not self._put(chunk):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            end = exc
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException as exc:
                    end = exc
        self._put(end)
