"""Streaming SHA-256 of local files, several at once, with the LZ4 check of images (SPEC §10.2 step 4,
gap §10.7.5).

``hash_files(paths, jobs, lz4=...)`` reads each file once.  The files named in ``lz4`` are also
decoded as LZ4 frames, from the very buffers that are hashed (not a second pass over the file), by
the node's rule (:class:`repo_tool.core.lz4frames.LZ4Frames`), so an image nodes could not install is
refused when it is published.  :func:`hash_streams` does the same for streams of chunks (the
auditor's downloads, from any storage), on the same threads and with the same sharing of the largest
one's check; :func:`hash_chunks` for one stream.  The bytes are reported to a
:class:`~repo_tool.core.progress.Progress` as they are read.  Digests are those of the bytes read,
whatever the path through the code.  It only reads: it writes no file and knows nothing of TUF or of
where the files go.

Why it is built this way: measured on the 2-core VM this was written on (OpenSSL 3.0 with SHA-NI,
python-lz4 4.4.5), on ``bench/hash_images.py``'s release of LZ4 frames (boot 64 + root 900 + hash
60 MiB; 4 MiB blocks, compression ratio ~2):

* The goal is the SHA-256 compute limit of one core (``openssl speed -evp sha256 -bytes 1048576``:
  2.0 GB/s).  The root image is 88% of the bytes and one file's SHA-256 cannot be split, so its
  thread only reads and hashes; the check runs on the other core and never makes it wait.
* SHA-256 keeps that speed only on bytes already in the core's cache: over a 1 MiB buffer the same
  thread has just filled with ``readinto`` it runs at 2.0 GB/s, plus 0.09-0.12 s per GB for the copy
  out of the page cache (1.62-1.67 GB/s in all); over a memory map (bytes from RAM, page faults)
  1.2-1.3 GB/s, even with another thread decoding just ahead in the same map 1.4 GB/s; over buffers a
  reader thread filled (bytes in the other core's cache) 1.3-1.66 GB/s.  So each file is read by the
  thread that hashes it (the previous design hashed memory-mapped windows in place).
* Decoding costs ~0.35 s of CPU per GB of input (:mod:`repo_tool.core.lz4frames`).  The largest checked
  file's thread hands its buffers on (a ring of ``RING`` x ``RING_CHUNK``); the other threads decode
  them, in order and before anything else, between the ``CHUNK``-sized reads of their own files (read,
  hashed and decoded in one thread), then wait for more.  A fixed set of ``jobs`` threads, not a
  decoder (and a reader) thread per file: with three or four busy threads on two cores the root
  image's hashing lost its core part of the time (658-706 ms for the release against 603-622 ms).
* The ring's size is a compromise measured on the root image: with 2 MiB buffers its hashing thread
  took 597-601 ms against 571 ms reading into one buffer (a ring's buffers are cold when they are
  refilled); with smaller or fewer buffers it waited for the decoder (1 MiB x 2: 683 ms) or paid a
  hand-over per buffer (256 KiB x 4: 744 ms).
* A thread waiting for the next buffer polls for ``SPIN`` seconds before it sleeps: waking a sleeping
  thread is a futex wake and, on a VM, an inter-processor interrupt, which cost the hashing thread
  25-30 ms of CPU over the root image.
* hashlib, ``readinto`` and liblz4 release the GIL, but python-lz4 holds it while it copies each
  decoded piece into a ``bytes`` (checked: a thread's pauses while another decodes 200 MiB in one call
  reach 210 ms; with hashlib, 12 ms), so a decoder costs a thread hashing beside it 2.5% with 1 MiB
  updates, 6% with 256 KiB ones; with ``PIECE`` = 256 KiB each hold is short.
* Memory: per thread one ``CHUNK`` buffer and one liblz4 decoder (two block buffers, 4 MiB each for
  4 MiB blocks), plus the ring, whatever the file sizes or compression ratio.

Result (bench/RESULTS.md, issue 15): with the check, 0.875-0.90x the compute limit on 2 cores (the
target is 0.9x), 1.09-1.11x ``openssl dgst``; without it 0.92-0.93x.  Frames with a content checksum
(XXH32, the ``lz4`` command's default) take liblz4 ~1 s of CPU per GB to decode, in order on one core:
0.54x.

Streams (issue 17, the audit): the same threads and sharing over chunks a storage returns (no ring
of buffers: a chunk is handed on as it is, ``STREAM_RING`` at most out at once); a stream that is a
local file (``Stream.path``) is read as a file here is (the storage's fresh chunks cost 40% more page
faults, and 0.95-0.98x ``openssl dgst`` against 1.07-1.08x).  Over HTTP from a local server the
three images' check costs about 1.6 s of CPU a GiB (``perf``: python-lz4's copies of decoded pieces
and the socket reads as much as the hashing), so two cores cannot keep up with ``openssl dgst``.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from repo_tool.core.lz4frames import ImageError, LZ4Frames
from repo_tool.core.progress import NO_PROGRESS, Progress
from repo_tool.errors import UsageError

CHUNK = 1024 * 1024  # bytes per read and per SHA-256 update
PIECE = 256 * 1024  # LZ4 input per decode call and most output per call (the fastest feed, lz4frames)
RING_CHUNK = 2 * 1024 * 1024  # bytes per read and per buffer handed on, for the largest file
RING = 3  # buffers of the largest file being read or waiting for (or in) the decoder
STREAM_RING = 8  # chunks of the largest stream waiting for (or in) the decoder: 8 MiB of 1 MiB chunks, as
# many bytes as the files' ring and a little more, since a stream's chunks may be smaller
SPIN = 0.002  # seconds a thread waiting for the largest file's next buffer polls before it sleeps
SHARED_MIN = 8 * 1024 * 1024  # a largest file this big has its decoding shared out to the other workers

Buffer = bytes | bytearray | memoryview
K = TypeVar("K")
R = TypeVar("R")


@dataclass(frozen=True)
class FileDigest:
    path: Path
    length: int
    sha256: str
    mtime_ns: int = 0


@dataclass(frozen=True)
class Stream:
    """One stream for :func:`hash_streams`: ``open()`` starts it and gives its chunks (None: there is
    nothing there); ``size``, the bytes expected, orders the work (largest first); with ``lz4`` its
    bytes are also decoded as LZ4 frames, ``what`` naming it in the error."""

    what: str
    size: int
    open: Callable[[], Iterable[Buffer] | None]
    lz4: bool = False
    path: Path | None = None  # a local file: read into reused buffers as hash_files reads (``open`` unused)


StreamResult = tuple[int, str] | None | Exception
"""Of one stream: its length and SHA-256 (hex), None if it was not there, or what stopped it."""


def hash_files(paths: Iterable[Path], jobs: int | None = None, lz4: Collection[Path] = (), *,
               progress: Progress = NO_PROGRESS) -> dict[Path, FileDigest]:
    """Hash every distinct path once, with ``jobs`` threads (default: one per CPU), largest file
    first; each path in ``lz4`` is also decoded as LZ4 frames from the same reads, and
    :class:`ImageError` names the path if nodes could not decode it.  The bytes read are reported to
    ``progress`` as the job "hashing"."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    checked = set(lz4)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(unique)))
    progress.start("hashing", sum(map(_size, unique)))
    try:
        if workers == 1:
            return {path: _ingest(path, CHUNK, _named(path, checked), progress=progress.advance) for path in unique}
        order = sorted(unique, key=_size, reverse=True)
        first = order[0]
        shared = (_SharedCheck(str(first), progress.advance) if first in checked and _size(first) >= SHARED_MIN
                  else None)

        def work(path: Path, serve: Callable[[], object] | None) -> FileDigest:
            if shared is not None and path == first:
                return _shared_file(path, shared)
            return _ingest(path, CHUNK, _named(path, checked), serve, progress.advance)

        done = _Workers(order, workers, work, shared).run()
    finally:
        progress.stop()
    for path in unique:  # the first path that failed, as a loop over them would report it
        result = done[path]
        if isinstance(result, Exception):
            raise result
    return {path: result for path in unique if isinstance(result := done[path], FileDigest)}


def hash_file(path: Path, chunk: int = CHUNK, lz4: bool = False) -> FileDigest:
    """One file's length and SHA-256, read ``chunk`` bytes at a time in this thread; decoded as LZ4
    frames too if ``lz4``."""
    return _ingest(path, chunk, str(path) if lz4 else None)


def hash_streams(streams: Sequence[Stream], jobs: int, progress: Progress = NO_PROGRESS) -> list[StreamResult]:
    """Hash every stream once, with at most ``jobs`` streams open at once, largest first, as
    :func:`hash_files` hashes files (the largest checked stream's decoding shared out to the other
    threads); the results in the order of ``streams``.  Every chunk's length is reported to
    ``progress`` (the caller starts and stops the job).  A chunk must not change once yielded; a
    stream is closed as soon as it fails."""
    if not streams:
        return []
    order = sorted(range(len(streams)), key=lambda i: streams[i].size, reverse=True)
    first = order[0]
    shared = (_SharedCheck(streams[first].what, progress.advance, RING if streams[first].path else STREAM_RING)
              if jobs > 1 and streams[first].lz4 and streams[first].size >= SHARED_MIN else None)

    def work(index: int, serve: Callable[[], object] | None) -> StreamResult:
        stream = streams[index]
        try:
            if stream.path is not None:
                return _local(stream, shared if index == first else None, serve, progress)
            chunks = stream.open()
            if chunks is None:
                return None
            iterator = iter(chunks)
            try:
                if shared is not None and index == first:
                    return shared.hash(lambda _: next(iterator, b""))
                frames = LZ4Frames(stream.what, PIECE) if stream.lz4 else None
                return _digest(iterator, frames, serve, progress.advance)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except ImageError as exc:
            raise exc if exc.message.endswith(UNINSTALLABLE) else _uninstallable(exc) from None
        finally:
            if shared is not None and index == first:
                shared.close()

    results = _Workers(order, max(1, min(jobs, len(streams) + (shared is not None))), work, shared).run()
    return [results[index] for index in range(len(streams))]


def _local(stream: Stream, shared: _SharedCheck | None, serve: Callable[[], object] | None,
           progress: Progress) -> StreamResult:
    """A stream that is a local file (``stream.path``), hashed as :func:`hash_files` hashes files; None
    if it is not there."""
    assert stream.path is not None
    try:
        stream.path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if shared is not None:
        digest = _shared_file(stream.path, shared)
    else:
        digest = _ingest(stream.path, CHUNK, stream.what if stream.lz4 else None, serve, progress.advance)
    return digest.length, digest.sha256


def hash_chunks(chunks: Iterable[Buffer], what: str | None) -> tuple[int, str]:
    """The length and SHA-256 (hex) of a stream of chunks; unless ``what`` is None, its bytes are also
    decoded as LZ4 frames, in a second thread (:func:`hash_streams`), and an :class:`ImageError` naming
    ``what`` says nodes could not install them (the stream is closed at once).  A chunk must not be
    changed once yielded."""
    if what is None:
        return _digest(chunks, None)
    result = hash_streams([Stream(what, SHARED_MIN, lambda: chunks, lz4=True)], 2)[0]
    if isinstance(result, Exception):
        raise result
    assert result is not None
    return result


UNINSTALLABLE = ": nodes could not install it"


def _uninstallable(exc: ImageError) -> ImageError:
    """The decoder's one-line error, saying what it means for the publish."""
    return ImageError(f"{exc}{UNINSTALLABLE}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it reports the error


def _digest(chunks: Iterable[Buffer], frames: LZ4Frames | None, between: Callable[[], object] | None = None,
            progress: Callable[[int], object] | None = None) -> tuple[int, str]:
    """Hash (and decode, given ``frames``) ``chunks`` in this thread, calling ``between`` and
    ``progress`` (with its length) after each."""
    digest = hashlib.sha256()
    length = 0
    for chunk in chunks:
        digest.update(chunk)
        if frames is not None:
            frames.check(chunk)
        length += len(chunk)
        if progress is not None:
            progress(len(chunk))
        if between is not None:
            between()
    if frames is not None:
        frames.finish()
    return length, digest.hexdigest()


def _reads(handle: io.RawIOBase, size: int) -> Iterator[Buffer]:
    """The file's bytes, read into one buffer of ``size`` bytes again and again (each chunk is gone
    once the next is asked for)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    while count := handle.readinto(buffer):
        yield buffer if count == size else view[:count]


def _named(path: Path, checked: Collection[Path]) -> str | None:
    return str(path) if path in checked else None


def _ingest(path: Path, chunk: int, lz4: str | None, between: Callable[[], object] | None = None,
            progress: Callable[[int], object] | None = None) -> FileDigest:
    """Read, hash and (unless ``lz4`` is None, naming the file in errors) decode one file in this
    thread, calling ``between`` and ``progress`` after each read."""
    frames = LZ4Frames(lz4, PIECE) if lz4 is not None else None
    try:
        with path.open("rb", buffering=0) as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
            length, sha256 = _digest(_reads(handle, chunk), frames, between, progress)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ImageError as exc:
        raise _uninstallable(exc) from None
    return FileDigest(path, length, sha256, mtime_ns)


def _shared_file(path: Path, shared: _SharedCheck) -> FileDigest:
    """The largest file: read and hashed in this thread into a ring of buffers, decoded by the others."""
    buffers = [memoryview(bytearray(RING_CHUNK)) for _ in range(shared.slots)]
    try:
        with path.open("rb", buffering=0) as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns

            def read(index: int) -> Buffer:
                buffer = buffers[index]
                count = handle.readinto(buffer)
                return buffer if count == len(buffer) else buffer[:count]

            length, sha256 = shared.hash(read)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        shared.close()
    return FileDigest(path, length, sha256, mtime_ns)


class _Workers(Generic[K, R]):
    """``count`` threads running ``work(key, serve)`` over ``order`` (largest first), each key by one
    thread; a key's result is what ``work`` returned or the exception it raised.

    With ``shared`` (the first key's decoding, :class:`_SharedCheck`), ``serve`` decodes its buffers
    handed on so far, and the threads call it between the chunks of their own keys; every thread keeps
    serving it until it is finished, even after a failure, so its hashing thread can never be left
    waiting for a buffer.
    """

    def __init__(self, order: list[K], count: int, work: Callable[[K, Callable[[], object] | None], R],
                 shared: _SharedCheck | None) -> None:
        self.work = work
        self.shared = shared
        self.keys = iter(order)
        self.lock = threading.Lock()
        self.results: dict[K, R | Exception] = {}
        self.threads = [threading.Thread(target=self._work, name=f"sha256-{n}", daemon=True) for n in range(count)]

    def run(self) -> dict[K, R | Exception]:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join()
        return self.results

    def _next(self) -> K | None:
        with self.lock:
            return next(self.keys, None)

    def _work(self) -> None:
        shared = self.shared
        serve = None if shared is None else shared.serve
        try:
            while (key := self._next()) is not None:
                try:
                    self.results[key] = self.work(key, serve)
                except Exception as exc:  # the caller raises or reports it
                    self.results[key] = exc
        finally:
            if shared is not None:
                shared.serve(until_finished=True)


class _SharedCheck:
    """The largest checked file or stream: its thread hashes it chunk by chunk (:meth:`hash`) and hands
    each chunk on; whichever other thread calls :meth:`serve` decodes the chunks handed on so far, in
    order.  At most ``slots`` chunks are out at once (``RING`` for a file): each holds a slot of the
    ring (for a file, the buffer it is read into) until it is decoded.  Queue items are
    ``(slot, chunk)``; a chunk of None ends the stream (slot 0) or ends it early (-1)."""

    def __init__(self, what: str, progress: Callable[[int], object] | None = None, slots: int = 0) -> None:
        self.progress = progress
        self.frames = LZ4Frames(what, PIECE)
        self.free: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.slots = slots or RING
        for index in range(self.slots):
            self.free.put(index)
        self.pending: queue.SimpleQueue[tuple[int, Buffer | None]] = queue.SimpleQueue()
        self.decoding = threading.Lock()  # held by the thread decoding, so chunks are decoded in order
        self.finished = threading.Event()
        self.ended = False  # the end is queued
        self.error: Exception | None = None
        self.stopped = False  # the check failed: the hashing thread stops reading

    def hash(self, read: Callable[[int], Buffer]) -> tuple[int, str]:
        """Hash what ``read(slot)`` gives (the next bytes, in ring ``slot``; empty at the end) in the
        thread that called this, handing each chunk on to the decoders; return its length and SHA-256."""
        digest = hashlib.sha256()
        length, end = 0, -1
        try:
            while not self.stopped:
                index = self.free.get()
                chunk = read(index)
                if not len(chunk):
                    self.free.put(index)
                    end = 0
                    break
                digest.update(chunk)
                length += len(chunk)
                self.pending.put((index, chunk))
                if self.progress is not None:
                    self.progress(len(chunk))
        finally:
            self.ended = True
            self.pending.put((end, None))
        self.serve(until_finished=True)  # help with the last chunks, or wait for whoever decodes them
        if isinstance(self.error, ImageError):
            raise _uninstallable(self.error)
        if self.error is not None:
            raise self.error
        return length, digest.hexdigest()

    def close(self) -> None:
        """The hashing thread is done with the stream (or never started it): end it if :meth:`hash` did not."""
        if not self.ended:
            self.ended = True
            self.pending.put((-1, None))

    def serve(self, until_finished: bool = False) -> None:
        """Decode the chunks handed on so far (with ``until_finished``: until the stream has ended)."""
        if self.finished.is_set() or not self.decoding.acquire(blocking=until_finished):
            return  # done, or another thread is decoding
        try:
            while not self.finished.is_set():
                try:
                    index, chunk = self.pending.get_nowait()
                except queue.Empty:
                    if not until_finished:
                        return
                    index, chunk = self._wait()
                try:
                    if chunk is not None and self.error is None:
                        self.frames.check(chunk)
                    elif chunk is None and index == 0 and self.error is None:
                        self.frames.finish()
                except Exception as exc:  # raised by hash(), in the thread that took the stream
                    self.error, self.stopped = exc, True
                if chunk is None:
                    self.finished.set()
                    return
                self.free.put(index)
        finally:
            self.decoding.release()

    def _wait(self) -> tuple[int, Buffer | None]:
        """The next chunk, polling for ``SPIN`` seconds before sleeping: a sleeping thread is woken
        by the hashing thread, and on this (virtual) machine the wake-up cost the hashing thread 25 ms
        of CPU over the root image (1 GB); the polling thread only spends time it would sleep."""
        deadline = time.perf_counter() + SPIN
        while time.perf_counter() < deadline:
            time.sleep(0)  # lets the GIL go
            try:
                return self.pending.get_nowait()
            except queue.Empty:
                continue
        return self.pending.get()
