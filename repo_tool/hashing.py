"""Streaming SHA-256 of local files, several at once, with the LZ4 check of images (SPEC §10.2 step 4,
gap §10.7.5).

``hash_files(paths, jobs, lz4=...)`` reads each file once.  The files named in ``lz4`` are also
decoded as LZ4 frames, from the very buffers that are hashed (not a second pass over the file), by
the node's rule (:class:`repo_tool.core.lz4frames.LZ4Frames`), so an image nodes could not install is
refused when it is published.  :func:`hash_chunks` does the same for a stream already open (the
auditor's).  Digests are those of the bytes read, whatever the path through the code.
It only reads: it writes no file and knows nothing of TUF or of where the files go.

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
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from repo_tool.core.lz4frames import ImageError, LZ4Frames
from repo_tool.errors import UsageError

CHUNK = 1024 * 1024  # bytes per read and per SHA-256 update
PIECE = 256 * 1024  # LZ4 input per decode call and most output per call (the fastest feed, lz4frames)
RING_CHUNK = 2 * 1024 * 1024  # bytes per read and per buffer handed on, for the largest file
RING = 3  # buffers of the largest file being read or waiting for (or in) the decoder
SPIN = 0.002  # seconds a thread waiting for the largest file's next buffer polls before it sleeps
SHARED_MIN = 8 * 1024 * 1024  # a largest file this big has its decoding shared out to the other workers


@dataclass(frozen=True)
class FileDigest:
    path: Path
    length: int
    sha256: str
    mtime_ns: int = 0


def hash_files(paths: Iterable[Path], jobs: int | None = None, lz4: Collection[Path] = ()) -> dict[Path, FileDigest]:
    """Hash every distinct path once, with ``jobs`` threads (default: one per CPU), largest file
    first; each path in ``lz4`` is also decoded as LZ4 frames from the same reads, and
    :class:`ImageError` names the path if nodes could not decode it."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    checked = set(lz4)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(unique)))
    if workers == 1:
        return {path: hash_file(path, lz4=path in checked) for path in unique}
    return _Workers(sorted(unique, key=_size, reverse=True), checked, workers).run(unique)


def hash_file(path: Path, chunk: int = CHUNK, lz4: bool = False) -> FileDigest:
    """One file's length and SHA-256, read ``chunk`` bytes at a time in this thread; decoded as LZ4
    frames too if ``lz4``."""
    return _ingest(path, chunk, lz4)


def hash_chunks(chunks: Iterable[bytes], what: str | None) -> tuple[int, str]:
    """The length and SHA-256 (hex) of a stream of chunks; unless ``what`` is None, its bytes are also
    decoded as LZ4 frames and an :class:`ImageError` naming ``what`` says nodes could not install them.

    The stream is hashed in the calling thread.  Past its first ``SHARED_MIN`` bytes the decoding
    moves to a thread of its own, fed batches of at least ``CHUNK`` bytes through a queue at most
    ``RING`` batches deep, so a large target costs one core's hashing time (a chunk must not be
    changed once yielded).  A stream whose bytes fail to decode is closed at once.
    """
    digest = hashlib.sha256()
    length = 0
    iterator = iter(chunks)
    if what is None:
        for chunk in iterator:
            digest.update(chunk)
            length += len(chunk)
        return length, digest.hexdigest()
    frames = LZ4Frames(what, PIECE)
    decoder: _BatchDecoder | None = None
    try:
        for chunk in iterator:
            digest.update(chunk)
            length += len(chunk)
            if decoder is not None:
                decoder.add(chunk)
            elif length <= SHARED_MIN:
                frames.check(chunk)
            else:
                decoder = _BatchDecoder(frames)
                decoder.add(chunk)
        if decoder is not None:
            decoder.close()
        else:
            frames.finish()
    except ImageError as exc:
        raise _uninstallable(exc) from None
    finally:
        if decoder is not None:
            decoder.stop()
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return length, digest.hexdigest()


def _uninstallable(exc: ImageError) -> ImageError:
    """The decoder's one-line error, saying what it means for the publish."""
    return ImageError(f"{exc}: nodes could not install it")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it reports the error


def _ingest(path: Path, chunk: int, lz4: bool, between: Callable[[], object] | None = None) -> FileDigest:
    """Read, hash and (with ``lz4``) decode one file in this thread, calling ``between`` before each read."""
    frames = LZ4Frames(str(path), PIECE) if lz4 else None
    digest = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    length = 0
    try:
        with path.open("rb", buffering=0) as handle:
            mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
            while True:
                if between is not None:
                    between()
                count = handle.readinto(buffer)
                if not count:
                    break
                digest.update(buffer if count == chunk else view[:count])
                if frames is not None:
                    frames.check(view[:count])
                length += count
        if frames is not None:
            frames.finish()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ImageError as exc:
        raise _uninstallable(exc) from None
    return FileDigest(path, length, digest.hexdigest(), mtime_ns)


class _Workers:
    """``count`` threads ingesting ``order`` (largest first), each file by one thread.

    The first file, when it is checked and at least ``SHARED_MIN`` bytes, is only read and hashed by
    its thread, into a ring of buffers; its decoding (:class:`_SharedCheck`) is done by the other
    threads, before each chunk of their own files and once those are done.  Every thread keeps
    serving it until it is finished, even after a failure, so its hashing thread can never be left
    waiting for a buffer.
    """

    def __init__(self, order: list[Path], checked: set[Path], count: int) -> None:
        first = order[0]
        self.shared = (_SharedCheck(first) if first in checked and _size(first) >= SHARED_MIN else None)
        self.checked = checked
        self.files = iter(order)
        self.lock = threading.Lock()
        self.done: dict[Path, FileDigest] = {}
        self.failed: dict[Path, BaseException] = {}
        self.threads = [threading.Thread(target=self._work, name=f"sha256-{n}", daemon=True) for n in range(count)]

    def run(self, unique: list[Path]) -> dict[Path, FileDigest]:
        for thread in self.threads:
            thread.start()
        for thread in self.threads:
            thread.join()
        for path in unique:  # the first path that failed, as a loop over them would report it
            if path in self.failed:
                raise self.failed[path]
        return {path: self.done[path] for path in unique}

    def _next(self) -> Path | None:
        with self.lock:
            return next(self.files, None)

    def _work(self) -> None:
        shared = self.shared
        serve = None if shared is None else shared.serve
        try:
            while (path := self._next()) is not None:
                try:
                    if shared is not None and path == shared.path:
                        digest = shared.hash()
                    else:
                        digest = _ingest(path, CHUNK, path in self.checked, serve)
                except Exception as exc:  # run() raises the first path's (every file is read, so it is the same one)
                    self.failed[path] = exc
                else:
                    self.done[path] = digest
        finally:
            if shared is not None:
                shared.serve(until_finished=True)


class _SharedCheck:
    """The largest file: its thread reads and hashes it into a ring of ``RING`` buffers and hands each
    buffer on; whichever other thread calls :meth:`serve` decodes the buffers handed on so far, in
    order, and gives them back.  Queue items are ``(index, count)``; a count of 0 ends the file,
    -1 ends it early."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames = LZ4Frames(str(path), PIECE)
        self.buffers = [memoryview(bytearray(RING_CHUNK)) for _ in range(RING)]
        self.free: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in range(RING):
            self.free.put(index)
        self.pending: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self.decoding = threading.Lock()  # held by the thread decoding, so buffers are decoded in order
        self.finished = threading.Event()
        self.error: Exception | None = None
        self.stopped = False  # the check failed: the hashing thread stops reading

    def hash(self) -> FileDigest:
        """Read and hash the file (in the thread that took it), handing each buffer on to the decoders."""
        digest = hashlib.sha256()
        length, end = 0, -1
        try:
            with self.path.open("rb", buffering=0) as handle:
                mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
                while not self.stopped:
                    index = self.free.get()
                    buffer = self.buffers[index]
                    count = handle.readinto(buffer)
                    if not count:
                        self.free.put(index)
                        end = 0
                        break
                    digest.update(buffer if count == len(buffer) else buffer[:count])
                    length += count
                    self.pending.put((index, count))
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        finally:
            self.pending.put((0, end))
        self.serve(until_finished=True)  # help with the last buffers, or wait for whoever decodes them
        if isinstance(self.error, ImageError):
            raise _uninstallable(self.error)
        if self.error is not None:
            raise self.error
        return FileDigest(self.path, length, digest.hexdigest(), mtime_ns)

    def serve(self, until_finished: bool = False) -> None:
        """Decode the buffers handed on so far (with ``until_finished``: until the file has ended)."""
        if self.finished.is_set() or not self.decoding.acquire(blocking=until_finished):
            return  # done, or another thread is decoding
        try:
            while not self.finished.is_set():
                try:
                    index, count = self.pending.get_nowait()
                except queue.Empty:
                    if not until_finished:
                        return
                    index, count = self._wait()
                try:
                    if count > 0 and self.error is None:
                        self.frames.check(self.buffers[index][:count])
                    elif count == 0 and self.error is None:
                        self.frames.finish()
                except Exception as exc:  # raised by hash(), in the thread that took the file
                    self.error, self.stopped = exc, True
                if count <= 0:
                    self.finished.set()
                    return
                self.free.put(index)
        finally:
            self.decoding.release()

    def _wait(self) -> tuple[int, int]:
        """The next buffer, polling for ``SPIN`` seconds before sleeping: a sleeping thread is woken
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


class _BatchDecoder:
    """:class:`LZ4Frames` in a thread of its own, fed lists of chunks of at least ``CHUNK`` bytes."""

    def __init__(self, frames: LZ4Frames) -> None:
        self._frames = frames
        self._batch: list[bytes] = []
        self._batched = 0
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=RING)
        self._error: ImageError | None = None
        self._thread = threading.Thread(target=self._run, name="lz4-check", daemon=True)
        self._thread.start()

    def add(self, chunk: bytes) -> None:
        """Queue ``chunk``; raises the decoder's error once it has failed."""
        if self._error is not None:
            raise self._error
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= CHUNK:
            self._queue.put(self._batch)
            self._batch, self._batched = [], 0

    def close(self) -> None:
        """The stream has ended: wait for the decoder and raise its error."""
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Make the thread end soon and wait for it (after :meth:`close`, or when the stream failed)."""
        if not self._thread.is_alive():
            return
        self._error = self._error or ImageError(f"{self._frames.what}: stopped")
        while True:  # make room, so the end can be queued
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        frames = self._frames
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                for chunk in batch:
                    frames.check(chunk)
            except ImageError as exc:
                self._error = exc
        if self._error is None:
            try:
                frames.finish()
            except ImageError as exc:
                self._error = exc
