"""Staging images: length and SHA-256 checks, LZ4 frames written at an offset with bounded memory,
errors from either thread, and the whole path from a real HTTP server into a disk image."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import lz4.frame
import pytest

from repo_tool.errors import VerificationError
from repo_tool.node import staging
from repo_tool.node.staging import OUT_CHUNK, OUT_DEPTH, ImageError, checked, write_image
from repo_tool.storage.transport import Transport
from tests.test_transport import serve

MIB = 1 << 20
PATTERN = b"\xa5"


def image(seed: int = 1) -> bytes:
    """Random, zero and text-like parts, as a root filesystem has."""
    text = b"".join(b"/usr/lib/libfoo.so.%d: ELF 64-bit LSB shared object\n" % i for i in range(20_000))
    return os.urandom(MIB + seed) + bytes(3 * MIB) + text + os.urandom(100_000) + bytes(12345)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def disk(path: Path, size: int) -> Path:
    path.write_bytes(PATTERN * size)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "image-reader"]


@pytest.mark.parametrize(("chunk", "flush_every"), [(65_537, 0), (MIB, MIB)])
def test_round_trip_at_an_offset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int,
                                 flush_every: int) -> None:
    monkeypatch.setattr(staging, "FLUSH_EVERY", flush_every)
    data = image()
    packed = lz4.frame.compress(data[:2 * MIB]) + lz4.frame.compress(data[2 * MIB:], content_checksum=True)
    offset, capacity = 3 * MIB + 512, len(data) + MIB
    device = disk(tmp_path / "disk.img", offset + capacity + MIB)
    written = write_image(checked(pieces(packed, chunk), len(packed), sha(packed), "root image"), device, offset,
                          capacity, "root image")
    assert written == len(data)
    after = device.read_bytes()
    assert after[offset:offset + written] == data
    assert after[:offset] == PATTERN * offset
    assert after[offset + written:] == PATTERN * (len(after) - offset - written)
    assert readers() == []


def test_tiny_chunks_and_exact_capacity(tmp_path: Path) -> None:
    data = b"bottlerocket " * 50
    packed = lz4.frame.compress(data)
    device = disk(tmp_path / "part", len(data))
    assert write_image(iter(pieces(packed, 1)), device, 0, len(data), "boot image") == len(data)
    assert device.read_bytes() == data


def test_missing_device_is_created_and_a_bad_path_is_one_line(tmp_path: Path) -> None:
    packed = lz4.frame.compress(b"hash tree")
    assert write_image([packed], tmp_path / "new", 4, 100, "hash image") == 9
    assert (tmp_path / "new").read_bytes() == b"\0\0\0\0hash tree"
    with pytest.raises(ImageError, match=r"^hash image: cannot open .*/nowhere/part: No such file or directory$"):
        write_image([packed], tmp_path / "nowhere" / "part", 0, 100, "hash image")


# --- checked: length and SHA-256 -------------------------------------------------------------------


def test_checked_passes_matching_data_through() -> None:
    data = os.urandom(10_000)
    assert b"".join(checked(pieces(data, 999), len(data), sha(data).upper(), "x")) == data


def test_flipped_byte_is_a_hash_mismatch(tmp_path: Path) -> None:
    data = image()
    packed = bytearray(lz4.frame.compress(data))
    packed[1000] ^= 1  # inside a stored (incompressible) block: lz4 cannot notice
    flipped = bytes(packed)
    expected = sha(lz4.frame.compress(data))
    message = rf"^root image: SHA-256 mismatch: expected {expected}, got {sha(flipped)}$"
    with pytest.raises(ImageError, match=message):
        list(checked(pieces(flipped, MIB), len(flipped), expected, "root image"))
    device = disk(tmp_path / "disk.img", len(data))
    with pytest.raises(ImageError, match=message) as caught:
        write_image(checked(pieces(flipped, MIB), len(flipped), expected, "root image"), device, 0, len(data),
                    "root image")
    assert isinstance(caught.value, VerificationError) and caught.value.exit_code == 1
    assert readers() == []


def test_longer_than_announced_fails_as_soon_as_it_is() -> None:
    data = os.urandom(5000)
    passed: list[bytes] = []
    with pytest.raises(ImageError, match=r"^boot image: more than the expected 2500 bytes$"):
        passed.extend(checked(pieces(data, 1000), 2500, sha(data), "boot image"))
    assert len(passed) == 2


def test_shorter_than_announced_fails(tmp_path: Path) -> None:
    packed = lz4.frame.compress(image())
    with pytest.raises(ImageError, match=rf"^boot image: expected {len(packed) + 1} bytes, got {len(packed)}$"):
        write_image(checked(pieces(packed, MIB), len(packed) + 1, sha(packed), "boot image"), tmp_path / "d", 0,
                    10 * MIB, "boot image")


def test_checked_closes_the_download_when_abandoned() -> None:
    closed: list[bool] = []

    def download() -> Iterator[bytes]:
        try:
            yield from [b"a", b"b", b"c"]
        finally:
            closed.append(True)

    passing = checked(download(), 3, sha(b"abc"), "x")
    next(passing)
    passing.close()
    assert closed == [True]


# --- LZ4 decoding and the partition bound ----------------------------------------------------------


def test_not_lz4_is_refused_up_front(tmp_path: Path) -> None:
    device = disk(tmp_path / "disk.img", 1000)
    with pytest.raises(ImageError, match=r"^root image: not an LZ4 frame \(starts with 50 4b 03 04, "
                                         r"expected 04 22 4d 18\)$"):
        write_image([b"PK\x03\x04 a zip file"], device, 0, 1000, "root image")
    with pytest.raises(ImageError, match=r"starts with 04 22, expected"):
        write_image([b"\x04", b"\x22"], device, 0, 1000, "root image")
    with pytest.raises(ImageError, match=r"starts with nothing, expected"):
        write_image([], device, 0, 1000, "root image")
    assert device.read_bytes() == PATTERN * 1000


def test_broken_frames(tmp_path: Path) -> None:
    data = image()
    packed = lz4.frame.compress(data, content_checksum=True)
    device = tmp_path / "disk.img"
    with pytest.raises(ImageError, match=r"^root image: truncated LZ4 frame$"):
        write_image(pieces(packed[:-3], MIB), device, 0, 2 * len(data), "root image")
    with pytest.raises(ImageError, match=r"^root image: invalid LZ4 data \(.*\)$"):
        write_image(pieces(packed + b"trailing junk", MIB), device, 0, 2 * len(data), "root image")
    corrupt = bytearray(packed)
    corrupt[-2] ^= 0xFF  # the content checksum
    with pytest.raises(ImageError, match=r"invalid LZ4 data \(.*contentChecksum_invalid"):
        write_image(pieces(bytes(corrupt), MIB), device, 0, 2 * len(data), "root image")


def test_partition_too_small(tmp_path: Path) -> None:
    data = image()
    packed = lz4.frame.compress(data)
    offset, capacity = 4096, len(data) - 1
    device = disk(tmp_path / "disk.img", offset + len(data) + 4096)
    with pytest.raises(ImageError, match=rf"^partition too small: root image decompresses to more than {capacity} "
                                         r"bytes$"):
        write_image(checked(pieces(packed, 65536), len(packed), sha(packed), "root image"), device, offset,
                    capacity, "root image")
    after = device.read_bytes()
    assert after[:offset] == PATTERN * offset
    assert after[offset + capacity:] == PATTERN * (len(after) - offset - capacity)
    assert readers() == []


def zeros_stream(mib: int, chunk: int) -> list[bytes]:
    """An LZ4 frame of ``mib`` MiB of zeros, built without holding them, cut into ``chunk``-byte pieces."""
    block = bytes(MIB)
    with lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB) as compressor:
        packed = compressor.begin() + b"".join(compressor.compress(block) for _ in range(mib)) + compressor.flush()
    return pieces(packed, chunk)


def test_highly_compressible_image_stays_in_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.exists(os.devnull):
        pytest.skip("no /dev/null")
    chunks = zeros_stream(256, 65536)
    assert sum(map(len, chunks)) < 2 * MIB  # each 64 KiB chunk expands to about 16 MiB
    writes: list[int] = []
    real_write = staging._write

    def counting(fd: int, data: bytes, position: int, device: Path, what: str) -> None:
        writes.append(len(data))
        real_write(fd, data, position, device, what)

    monkeypatch.setattr(staging, "_write", counting)
    tracemalloc.start()
    try:
        written = write_image(iter(chunks), Path(os.devnull), 0, 256 * MIB, "root image")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == 256 * MIB == sum(writes)
    assert max(writes) <= OUT_CHUNK
    # decoded pieces: OUT_DEPTH queued, one being written, one being queued, one being decoded (and
    # lz4's copy of it); the small compressed chunks are noise.  Nothing close to the 256 MiB.
    assert peak < (OUT_DEPTH + 4) * OUT_CHUNK + 4 * MIB, peak


# --- the reader thread -----------------------------------------------------------------------------


def test_download_errors_propagate_from_the_reader_thread(tmp_path: Path) -> None:
    packed = lz4.frame.compress(image())
    boom = ConnectionResetError("network gone")

    def download() -> Iterator[bytes]:
        yield packed[:MIB]
        raise boom

    with pytest.raises(ConnectionResetError) as caught:
        write_image(download(), tmp_path / "disk.img", 0, 100 * MIB, "root image")
    assert caught.value is boom
    assert readers() == []


def test_writer_errors_stop_the_reader_thread(tmp_path: Path) -> None:
    closed = threading.Event()
    with lz4.frame.LZ4FrameCompressor(block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False) as compressor:
        header, block = compressor.begin(), compressor.compress(bytes(4 * MIB))
    assert block

    def endless() -> Iterator[bytes]:
        try:
            yield header
            while True:  # blocks of 4 MiB of zeros for ever
                yield block
        finally:
            closed.set()

    with pytest.raises(ImageError, match="partition too small: root image decompresses to more than 10485760 bytes"):
        write_image(endless(), tmp_path / "disk.img", 0, 10 * MIB, "root image")
    assert closed.is_set()
    assert readers() == []


# --- end to end over HTTP --------------------------------------------------------------------------


def test_download_resumed_and_staged_into_a_disk_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("repo_tool.storage.transport.time.sleep", lambda seconds: None)
    data = image()
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as server, Transport({"seed": "42"}) as transport:
        packed = server.put("abc.root.ext4.lz4", lz4.frame.compress(data))
        server.behaviour.drop_after = len(packed) // 2
        stream = transport.stream(f"{server.url}/abc.root.ext4.lz4", len(packed))
        assert stream is not None
        device = disk(tmp_path / "disk.img", 3 * len(data))
        assert write_image(checked(stream, len(packed), sha(packed), "root image"), device, len(data), len(data),
                           "root image") == len(data)
        assert [s.range for s in server.behaviour.seen] == [None, f"bytes={len(packed) // 2}-"]
    after = device.read_bytes()
    assert after[len(data):2 * len(data)] == data
    assert after[:len(data)] == after[2 * len(data):] == PATTERN * len(data)
