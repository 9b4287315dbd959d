"""Hashing release files with the LZ4 check (repo_tool.hashing, repo_tool.core.lz4frames): digests equal
hashlib's on every path through the code (one thread, several, the largest file's decoding shared out
to the other threads, streams), and an image nodes could not install is refused with one line naming
it, whichever path found it.  No timings here: speed is measured by bench/hash_images.py."""

from __future__ import annotations

import hashlib
import os
import random
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import lz4.frame
import pytest

from repo_tool import hashing
from repo_tool.core.lz4frames import LZ4_MAGIC, ImageError, LZ4Frames
from repo_tool.errors import UsageError

KIB = 1024
MIB = 1024 * KIB
UNINSTALLABLE = ": nodes could not install it"


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffers and thresholds scaled down, so files of a few hundred KiB take every path: several
    reads per file, the shared ring of the largest file (wrapping around), pieces split across reads."""
    monkeypatch.setattr(hashing, "CHUNK", 16 * KIB)
    monkeypatch.setattr(hashing, "RING_CHUNK", 8 * KIB)
    monkeypatch.setattr(hashing, "PIECE", 4 * KIB)
    monkeypatch.setattr(hashing, "SHARED_MIN", 64 * KIB)


def content(size: int, seed: int) -> bytes:
    """Random, zero and text-like stretches: a compression ratio of about 2, as an image has."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        kind = rng.randrange(3)
        part = (rng.randbytes(3000) if kind == 0 else bytes(5000) if kind == 1
                else b"".join(b"/usr/lib/libfoo.so.%d\n" % rng.randrange(1000) for _ in range(150)))
        parts.append(part)
        total += len(part)
    return b"".join(parts)[:size]


def frame(data: bytes, **options: object) -> bytes:
    packed: bytes = lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB, **options)
    return packed


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def release(tmp_path: Path) -> dict[Path, bytes]:
    """A small release: a root image large enough for the shared ring, boot and hash images below it."""
    files = {
        tmp_path / "root.img.lz4": frame(content(600 * KIB, 1)),
        tmp_path / "boot.img.lz4": frame(content(40 * KIB, 2), content_checksum=True),
        tmp_path / "hash.img.lz4": frame(content(30 * KIB, 3)),
    }
    for path, data in files.items():
        path.write_bytes(data)
    return files


def bad_images(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Files nodes could not install, each with the message its check must give (after the path)."""
    good = frame(content(1200 * KIB, 4), block_checksum=True)  # larger than any file of the release
    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0x55  # inside a block: its block checksum no longer matches
    cases = {
        "truncated": (good[:-7], r"truncated LZ4 frame"),
        "corrupted block": (bytes(corrupt), r"invalid LZ4 data \(LZ4F_decompress failed with code: "
                                            r"ERROR_blockChecksum_invalid\)"),
        "not LZ4": (b"PK\x03\x04" + bytes(1200 * KIB), r"not an LZ4 frame \(starts with 50 4b 03 04, "
                                                      r"expected 04 22 4d 18\)"),
        "empty": (b"", r"not an LZ4 frame \(starts with nothing, expected 04 22 4d 18\)"),
        "trailing junk": (good + b"trailing junk", r"invalid LZ4 data \(LZ4F_decompress failed with code: "
                                          r"ERROR_frameType_unknown\)"),
    }
    made = {}
    for name, (data, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.img.lz4"
        path.write_bytes(data)
        made[name] = (path, message)
    return made


def pieces(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """``data`` cut into pieces of the given sizes, cycling through them."""
    start, turn = 0, 0
    while start < len(data):
        size = sizes[turn % len(sizes)]
        yield data[start:start + size]
        start, turn = start + size, turn + 1


# --- digests ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2, 3])
@pytest.mark.parametrize("check", [False, True])
def test_digests_equal_hashlib(release: dict[Path, bytes], jobs: int, check: bool) -> None:
    paths = list(release)
    got = hashing.hash_files(paths, jobs=jobs, lz4=paths if check else ())
    assert list(got) == paths  # in the order given, whatever order they were read in
    for path, data in release.items():
        assert (got[path].length, got[path].sha256) == (len(data), sha(data))
        assert got[path].mtime_ns == path.stat().st_mtime_ns


@pytest.mark.parametrize("jobs", [1, 2])
def test_digests_of_files_that_are_not_lz4_without_the_check(tmp_path: Path, jobs: int) -> None:
    """Files outside ``lz4`` are only hashed: any bytes, any size (empty, one chunk, many, a partial last
    chunk), the largest one too."""
    files = {tmp_path / f"f{size}": os.urandom(size) for size in (0, 1, 16 * KIB, 100 * KIB + 3, 700 * KIB)}
    for path, data in files.items():
        path.write_bytes(data)
    paths = [*files, next(iter(files))]  # a repeated path is hashed once
    got = hashing.hash_files(paths, jobs=jobs, lz4=[])
    assert {path: (d.length, d.sha256) for path, d in got.items()} == {p: (len(d), sha(d)) for p, d in files.items()}


def test_only_the_named_paths_are_checked(release: dict[Path, bytes], tmp_path: Path) -> None:
    plain = tmp_path / "plain.bin"
    plain.write_bytes(os.urandom(900 * KIB))  # the largest file, not LZ4, not checked
    got = hashing.hash_files([plain, *release], jobs=2, lz4=list(release))
    assert got[plain].sha256 == sha(plain.read_bytes())
    assert hashing.hash_files([], jobs=2, lz4=[plain]) == {}


def test_concatenated_frames_are_one_valid_image(tmp_path: Path) -> None:
    first, second = content(200 * KIB, 5), content(150 * KIB, 6)
    data = frame(first) + frame(second, content_checksum=True)
    path = tmp_path / "two-frames.img.lz4"
    path.write_bytes(data)
    for jobs in (1, 2):
        got = hashing.hash_files([path], jobs=jobs, lz4=[path])
        assert (got[path].length, got[path].sha256) == (len(data), sha(data))
    assert hashing.hash_chunks(pieces(data, [1000, 7, 70 * KIB]), "two frames") == (len(data), sha(data))


@pytest.mark.parametrize("sizes", [[1], [3, 5000], [64 * KIB], [1 << 30]])
def test_hash_chunks_equals_hashlib(release: dict[Path, bytes], sizes: list[int]) -> None:
    for data in release.values():
        assert hashing.hash_chunks(pieces(data, sizes), "image") == (len(data), sha(data))
        assert hashing.hash_chunks(pieces(data, sizes), None) == (len(data), sha(data))
    assert hashing.hash_chunks([], None) == (0, sha(b""))


def test_hash_chunks_without_a_name_does_not_check(tmp_path: Path) -> None:
    data = b"not lz4 at all" * 10_000
    assert hashing.hash_chunks(pieces(data, [4096]), None) == (len(data), sha(data))


# --- images nodes could not install ---------------------------------------------------------------------


@pytest.mark.parametrize("case", ["truncated", "corrupted block", "not LZ4", "empty", "trailing junk"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_hash_files_refuses_a_bad_image(release: dict[Path, bytes], tmp_path: Path, case: str, jobs: int) -> None:
    path, message = bad_images(tmp_path)[case]
    paths = [*release, path]
    with pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: {message}{UNINSTALLABLE}$") as caught:
        hashing.hash_files(paths, jobs=jobs, lz4=paths)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 1
    assert hashing.hash_files(paths, jobs=jobs)[path].sha256 == sha(path.read_bytes())  # not checked: hashed


@pytest.mark.parametrize("case", ["truncated", "corrupted block", "not LZ4", "trailing junk"])
def test_the_largest_file_is_refused_through_the_shared_check(release: dict[Path, bytes], tmp_path: Path,
                                                               case: str) -> None:
    """The bad image is the largest file, so with 2 threads its decoding is done by the other thread
    (hashing.SHARED_MIN is 64 KiB here); the error names it all the same."""
    path, message = bad_images(tmp_path)[case]
    assert path.stat().st_size > max(len(data) for data in release.values())
    paths = [*release, path]
    for jobs in (2, 3):
        with pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: {message}{UNINSTALLABLE}$"):
            hashing.hash_files(paths, jobs=jobs, lz4=paths)


@pytest.mark.parametrize("case", ["truncated", "corrupted block", "not LZ4", "empty", "trailing junk"])
@pytest.mark.parametrize("sizes", [[1000], [7, 100 * KIB], [1 << 30]])
def test_hash_chunks_refuses_a_bad_image(tmp_path: Path, case: str, sizes: list[int]) -> None:
    path, message = bad_images(tmp_path)[case]
    with pytest.raises(ImageError, match=rf"^root image: {message}{UNINSTALLABLE}$") as caught:
        hashing.hash_chunks(pieces(path.read_bytes(), sizes), "root image")
    assert "\n" not in str(caught.value)


def test_hash_chunks_stops_reading_a_stream_that_failed() -> None:
    """Past SHARED_MIN the check runs in a thread of its own; once it fails, the stream is closed early."""
    valid = frame(content(300 * KIB, 9))
    assert len(valid) > hashing.SHARED_MIN
    read: list[int] = []
    closed: list[bool] = []

    def stream() -> Iterator[bytes]:
        try:
            yield from pieces(valid, [8 * KIB])
            for _ in range(10_000):  # after the frame: junk where the next frame's magic should be
                read.append(8 * KIB)
                yield b"junk" * (2 * KIB)
        finally:
            closed.append(True)

    with pytest.raises(ImageError, match=r"^big: invalid LZ4 data \(.*ERROR_frameType_unknown\)"):
        hashing.hash_chunks(stream(), "big")
    assert closed == [True]
    assert len(read) < 1000


def test_a_failure_elsewhere_does_not_leave_the_shared_check_waiting(release: dict[Path, bytes],
                                                                      tmp_path: Path) -> None:
    missing = tmp_path / "missing.img.lz4"
    paths = [*release, missing]
    for jobs in (2, 3):
        with pytest.raises(UsageError, match=rf"^{re.escape(str(missing))}: cannot read: No such file or directory$"):
            hashing.hash_files(paths, jobs=jobs, lz4=paths)


def test_the_first_bad_path_is_reported(release: dict[Path, bytes], tmp_path: Path) -> None:
    bad = bad_images(tmp_path)
    first, second = bad["truncated"][0], bad["not LZ4"][0]
    with pytest.raises(ImageError, match=rf"^{re.escape(str(first))}: truncated"):
        hashing.hash_files([first, *release, second], jobs=2, lz4=[first, second, *release])
    with pytest.raises(ImageError, match=rf"^{re.escape(str(second))}: not an LZ4 frame"):
        hashing.hash_files([second, *release, first], jobs=2, lz4=[first, second, *release])


# --- bounded memory and the decoder's rule ---------------------------------------------------------------


def zeros_frame(mib: int) -> bytes:
    """An LZ4 frame of ``mib`` MiB of zeros in 4 MiB blocks (about 4 KiB per MiB)."""
    block = bytes(MIB)
    with lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB) as compressor:
        header = compressor.begin()
        packed: bytes = header + b"".join(compressor.compress(block) for _ in range(mib)) + compressor.flush()
    return packed


@pytest.mark.parametrize("jobs", [1, 2])
def test_memory_stays_bounded_whatever_the_ratio(tmp_path: Path, jobs: int) -> None:
    """512 MiB of zeros in a 2 MiB file: decoded in pieces of at most PIECE bytes, never held whole."""
    path = tmp_path / "zeros.img.lz4"
    path.write_bytes(zeros_frame(512))
    other = tmp_path / "small.img.lz4"
    other.write_bytes(zeros_frame(64))
    tracemalloc.start()
    try:
        got = hashing.hash_files([path, other], jobs=jobs, lz4=[path, other])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got[path].sha256 == sha(path.read_bytes())
    assert peak < 4 * MIB, peak


def test_decoder_yields_bounded_pieces_whatever_the_split() -> None:
    data = content(300 * KIB, 7)
    packed = frame(data) + frame(data[:1000])
    for sizes in ([1], [2, 3, 5], [64 * KIB], [len(packed)]):
        frames = LZ4Frames("x", 10 * KIB)
        out = [piece for chunk in pieces(packed, sizes) for piece in frames.feed(chunk)]
        frames.finish()
        assert b"".join(out) == data + data[:1000]
        assert max(map(len, out)) <= 10 * KIB
        assert frames.decoded == len(data) + 1000


def test_decoder_keeps_no_reference_to_the_buffer_it_was_fed() -> None:
    """The publisher refills its buffers once they are decoded: the decoder must copy what it keeps."""
    packed = frame(content(200 * KIB, 8))
    frames = LZ4Frames("x", 4 * KIB)
    buffer = bytearray(5000)
    out: list[bytes] = []
    for start in range(0, len(packed), len(buffer)):
        count = len(packed[start:start + len(buffer)])
        buffer[:count] = packed[start:start + count]
        out += frames.feed(memoryview(buffer)[:count])
        buffer[:] = bytes(len(buffer))  # reused at once
    frames.finish()
    assert b"".join(out) == content(200 * KIB, 8)
    assert packed[:4] == LZ4_MAGIC
