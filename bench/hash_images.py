#!/usr/bin/env python3
"""Ingesting a release's three images (SHA-256, and the LZ4 check) against the SHA-256 compute limit.

Writes boot, root and hash images that are real LZ4 frames (64 + 900 + 60 MiB of frames by default,
1 GiB in all; 4 MiB independent blocks as ``lz4`` writes Bottlerocket's images; content that is partly
random, partly text and partly zeros, compression ratio about 2), reads them once so the page cache is
hot for every side, then times, round after round (each round runs every side once, so a noisy
machine slows them all alike), and prints the best of REPEAT rounds with min/median/max:

  compute limit:        openssl speed -evp sha256 -bytes 1048576 (one core hashing a buffer in its
                        cache; openssl's k is 1000 bytes), as the time to hash the three files' bytes
  baseline:             openssl dgst -sha256 boot root hash   (one subprocess, files one after another)
  repo-tool jobs=1:     repo_tool.hashing.hash_files(paths, jobs=1)
  repo-tool jobs=2:     repo_tool.hashing.hash_files(paths, jobs=2)
  ... + LZ4 check:      repo_tool.hashing.hash_files(paths, jobs=2, lz4=paths)   (the P1 target:
                        >= 0.9x the compute limit, i.e. wall <= bytes / (0.9 x limit))

and checks that every digest equals openssl's (and that the check passes).  One file's SHA-256 cannot
be split, so on 2 cores the wall time can never drop below the time to hash the largest file: the
script prints that bound.  Generated images are kept in --dir and reused by later runs (a temporary
directory otherwise).  ``--content-checksum`` writes frames with the content checksum (XXH32) that the
``lz4`` command adds by default; decoding them costs about twice as much.  ``--chunks`` also times
``hash_file(path, chunk)`` for several read sizes (jobs=1 and jobs=2).

Usage: python bench/hash_images.py [--repeat N] [--size-mib MIB] [--layout bottlerocket|even]
                                   [--dir DIR] [--keep] [--content-checksum] [--chunks 65536,1048576,...]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import lz4.frame
from timing import add_json_out, clean_up, write_json_out  # bench/timing.py

from repo_tool.core.lz4frames import LZ4Frames
from repo_tool.hashing import CHUNK, RING, RING_CHUNK, FileDigest, hash_file, hash_files

MIB = 1024 * 1024
STEM = "bottlerocket-aws-k8s-1.28-x86_64-1.0.0-abcdef0"
# The shares of the default 1024 MiB: boot 64, root 900, hash 60 (a Bottlerocket release's proportions).
BOTTLEROCKET = (("boot.ext4.lz4", 64), ("root.ext4.lz4", 900), ("root.verity.lz4", 60))
DEFAULT_CHUNKS = (64 * 1024, 256 * 1024, MIB, 4 * MIB)
OPENSSL_LINE = re.compile(r"^SHA2?-?256\((.*)\)= ([0-9a-f]{64})$")
BLOCK = 4 * MIB  # lz4 -B7, Bottlerocket's block size
SEGMENT = 256 * 1024
# Each 4 MiB block: 16 segments of random bytes (R), text (T) or zeros (Z), rotated from block to block.
PATTERN = "RZRTZRZRZRTZRZRZ"
CHECKSUM_FLAG = 0x04  # FLG bit: content checksum


def layout(total_mib: int, kind: str) -> list[tuple[str, int]]:
    """File names and sizes in bytes, summing to ``total_mib`` MiB."""
    if kind == "even":
        third = total_mib // 3
        return [(name, (total_mib - 2 * third if i == 1 else third) * MIB) for i, (name, _) in enumerate(BOTTLEROCKET)]
    weight = sum(mib for _, mib in BOTTLEROCKET)
    sizes = [(name, mib * total_mib * MIB // weight) for name, mib in BOTTLEROCKET]
    sizes[1] = (sizes[1][0], total_mib * MIB - sizes[0][1] - sizes[2][1])
    return sizes


def write_lz4_image(path: Path, size: int, seed: int, checksum: bool) -> bool:
    """An LZ4 frame of exactly ``size`` bytes at ``path``, of image-like content; False if a file of that
    size and kind (its frame header says whether it has the content checksum) was there and is kept:
    generating 1 GiB of frames takes a few seconds."""
    if path.exists() and path.stat().st_size == size:
        with path.open("rb") as handle:
            head = handle.read(5)
        if head[:4] == b"\x04\x22\x4d\x18" and bool(head[4] & CHECKSUM_FLAG) == checksum:
            return False
    rng = random.Random(seed)
    noise = rng.randbytes(16 * MIB)
    words = [b"usr", b"lib", b"libc.so.6", b"ELF", b"x86_64", b"kubelet", b"containerd", b"systemd", b"etc",
             b"share", b"locale", b"bin", b"sbin", b"python3", b"modules", b"firmware"]
    text = b"".join(b"/".join(rng.choice(words) for _ in range(rng.randint(2, 6))) + b" %d\n" % rng.randrange(1 << 20)
                    for _ in range(200_000))
    zeros = bytes(SEGMENT)
    tail = 4 + (4 if checksum else 0)  # end mark, content checksum
    with path.open("wb") as handle, lz4.frame.LZ4FrameCompressor(
            block_size=lz4.frame.BLOCKSIZE_MAX4MB, block_linked=False, content_checksum=checksum,
            auto_flush=True) as compressor:
        written = handle.write(compressor.begin())
        number = 0
        while size - written - tail > 2 * (BLOCK + 4):  # each block compresses to at most BLOCK + 4 bytes
            parts = []
            for turn, kind in enumerate(PATTERN[number % 16:] + PATTERN[:number % 16]):
                at = (number * 16 + turn) * 2654435761
                parts.append(noise[at % (len(noise) - SEGMENT):][:SEGMENT] if kind == "R"
                             else text[at % (len(text) - SEGMENT):][:SEGMENT] if kind == "T" else zeros)
            block = b"".join(parts)
            written += handle.write(compressor.compress(block))
            number += 1
        # The end: random blocks, which lz4 stores as they are (4-byte header + bytes), sized to land
        # exactly on ``size``.
        left = size - written - tail
        for count in ([left - 4] if left <= BLOCK + 4 else [(left - 8) // 2, left - 8 - (left - 8) // 2]):
            written += handle.write(compressor.compress(noise[:count]))
        written += handle.write(compressor.flush())
        handle.flush()
        os.fsync(handle.fileno())  # no writeback of 1 GiB running on the cores while they are timed
    if path.stat().st_size != size:
        raise SystemExit(f"{path}: wrote {path.stat().st_size} bytes, meant {size}")
    return True


def decoded_size(path: Path) -> int:
    """The decompressed size of ``path``'s frames (decoded by the node's rule; also proves them valid)."""
    frames = LZ4Frames(str(path), MIB)
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MIB):
            frames.check(chunk)
    frames.finish()
    return frames.decoded


def openssl_digests(paths: list[Path]) -> dict[Path, str]:
    out = subprocess.run(["openssl", "dgst", "-sha256", *map(str, paths)],
                         check=True, capture_output=True, text=True).stdout
    digests = {}
    for line in out.splitlines():
        match = OPENSSL_LINE.match(line)
        if match is None:
            raise SystemExit(f"unexpected openssl output: {line!r}")
        digests[Path(match.group(1))] = match.group(2)
    return digests


def openssl_speed() -> float:
    """Bytes per second of ``openssl speed -evp sha256 -bytes 1048576`` (1 s; its ``k`` is 1000 bytes)."""
    out = subprocess.run(["openssl", "speed", "-evp", "sha256", "-bytes", "1048576", "-seconds", "1"],
                         check=True, capture_output=True, text=True).stdout
    last = out.strip().splitlines()[-1].split()
    if not last or last[0].lower() not in ("sha256", "sha2-256") or not last[-1].endswith("k"):
        raise SystemExit(f"unexpected openssl speed output: {out!r}")
    return float(last[-1][:-1]) * 1000


def makespan(sizes: list[int], jobs: int) -> int:
    """Bytes hashed by the busiest thread when files are taken largest first by ``jobs`` threads."""
    loads = [0] * jobs
    for size in sorted(sizes, reverse=True):
        loads[loads.index(min(loads))] += size
    return max(loads)


def hash_chunked(paths: list[Path], chunk: int, jobs: int) -> dict[Path, FileDigest]:
    if jobs == 1:
        return {path: hash_file(path, chunk) for path in paths}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return dict(zip(paths, pool.map(partial(hash_file, chunk=chunk), paths)))


def check(ours: dict[Path, FileDigest], expected: dict[Path, str], sizes: dict[Path, int]) -> None:
    for path, sha in expected.items():
        got = ours[path]
        if got.sha256 != sha or got.length != sizes[path]:
            raise SystemExit(f"{path}: repo-tool {got.sha256} ({got.length} bytes) != openssl {sha}")


def rounds(sides: list[tuple[str, Callable[[], object]]], repeat: int) -> dict[str, list[float]]:
    """Wall times of each side, ``repeat`` rounds of every side in turn."""
    times: dict[str, list[float]] = {label: [] for label, _ in sides}
    for _ in range(repeat):
        for label, fn in sides:
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return times


def spread(values: list[float], scale: float = 1000) -> str:
    return " / ".join(f"{v * scale:.0f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best of them is shown (default 5)")
    parser.add_argument("--size-mib", type=int, default=1024, help="total size of the three files (default 1024)")
    parser.add_argument("--layout", choices=("bottlerocket", "even"), default="bottlerocket",
                        help="bottlerocket: 64/900/60 shares; even: three equal files")
    parser.add_argument("--dir", type=Path, help="where the images are written and kept for the next run "
                                                 "(default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    parser.add_argument("--content-checksum", action="store_true",
                        help="frames with the content checksum, as the lz4 command writes by default")
    parser.add_argument("--chunks", nargs="?", const=",".join(map(str, DEFAULT_CHUNKS)),
                        help="also time hash_file with these chunk sizes (bytes, comma-separated)")
    add_json_out(parser)
    args = parser.parse_args()

    if shutil.which("openssl") is None:
        raise SystemExit("openssl is not on PATH")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="hash-images-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        files = layout(args.size_mib, args.layout)
        paths, written = [], 0
        t0 = time.perf_counter()
        for seed, (name, size) in enumerate(files):
            path = directory / f"{STEM}-{name}"
            written += write_lz4_image(path, size, seed, args.content_checksum)
            paths.append(path)
        made = time.perf_counter() - t0
        decoded = sum(map(decoded_size, paths))
        sizes = {path: size for path, (_, size) in zip(paths, files)}
        total = sum(sizes.values())

        expected = openssl_digests(paths)  # warm-up: every file read once, page cache hot
        for jobs in (1, 2):
            check(hash_files(paths, jobs=jobs), expected, sizes)
            check(hash_files(paths, jobs=jobs, lz4=paths), expected, sizes)

        limits: list[float] = []
        sides: list[tuple[str, Callable[[], object]]] = [
            ("compute limit: openssl speed -evp sha256", lambda: limits.append(openssl_speed())),
            ("baseline: openssl dgst -sha256", lambda: openssl_digests(paths)),
            ("repo-tool hash_files jobs=1", lambda: hash_files(paths, jobs=1)),
            ("repo-tool hash_files jobs=2", lambda: hash_files(paths, jobs=2)),
            ("repo-tool hash_files jobs=2 + LZ4 check", lambda: hash_files(paths, jobs=2, lz4=paths)),
        ]
        times = rounds(sides, args.repeat)
        limit = max(limits)
        limit_s = total / limit
        times[sides[0][0]] = [total / speed for speed in limits]  # as the time to hash these bytes
        best = {label: min(values) for label, values in times.items()}
        base = best[sides[1][0]]

        listing = ", ".join(f"{name} {size / MIB:.0f} MiB" for name, size in files)
        kind = "with" if args.content_checksum else "without"
        origin = f"written in {made:.1f} s" if written else f"reused from {directory}"
        print(f"files: {listing} = {total / MIB:.0f} MiB of LZ4 frames (4 MiB blocks, {kind} content checksum, "
              f"{decoded / MIB:.0f} MiB decoded: ratio {decoded / total:.2f}; {origin})")
        print(f"best of {args.repeat} rounds, each side once per round; nproc {os.cpu_count()}; "
              f"hashing.CHUNK {CHUNK >> 10} KiB, ring {RING} x {RING_CHUNK >> 10} KiB")
        print(f"{'':42} {'best':>8} {'min / median / max ms':>22} {'GB/s':>6} {'vs limit':>9} {'vs dgst':>8}")
        for label, _ in sides:
            seconds = best[label]
            print(f"{label:42} {seconds * 1000:5.0f} ms {spread(times[label]):>22} {total / seconds / 1e9:6.2f} "
                  f"{limit_s / seconds:8.2f}x {base / seconds:7.2f}x")
        check_s = best[sides[4][0]]
        ratio = limit_s / check_s
        print(f"target: ingest with the LZ4 check on 2 cores >= 0.9x the compute limit ({limit / 1e9:.3f} GB/s), "
              f"i.e. <= {limit_s / 0.9 * 1000:.0f} ms: {ratio:.3f}x, {'met' if ratio >= 0.9 else 'NOT met'}")
        largest = makespan(list(sizes.values()), 2)
        print(f"bound on 2 cores: the largest file alone ({largest / total:.0%} of the bytes) takes "
              f">= {largest / limit * 1000:.0f} ms at the compute limit, i.e. <= {total / largest:.2f}x the limit")
        jobs1, jobs2 = best[sides[2][0]], best[sides[3][0]]
        write_json_out(args.json_out, {
            "mib": total / MIB, "repeat": args.repeat, "content_checksum": args.content_checksum,
            "openssl_s": base, "jobs1_s": jobs1, "jobs2_s": jobs2, "check_s": check_s,
            "jobs2_bound_ratio": total / largest * base / jobs1,
            "limit_bytes_per_s": limit, "limit_s": limit_s,
            "check_vs_limit": ratio, "check_vs_openssl": base / check_s,
            "spread_s": {label: [min(v), statistics.median(v), max(v)] for label, v in times.items()},
        })

        if args.chunks:
            print("\nchunk size sweep (hash_file(path, chunk), no check):")
            for chunk in (int(c) for c in args.chunks.split(",")):
                check(hash_chunked(paths, chunk, 1), expected, sizes)
                sweep = rounds([("1", lambda c=chunk: hash_chunked(paths, c, 1)),  # type: ignore[misc]
                                ("2", lambda c=chunk: hash_chunked(paths, c, 2))], args.repeat)  # type: ignore[misc]
                t1, t2 = min(sweep["1"]), min(sweep["2"])
                print(f"  chunk {chunk:>9}  jobs=1 {total / t1 / 1e6:7.1f} MB/s ({base / t1:4.2f}x)"
                      f"   jobs=2 {total / t2 / 1e6:7.1f} MB/s ({base / t2:4.2f}x)")
    finally:
        made_here = [] if args.dir is not None else [directory / f"{STEM}-{name}" for name, _ in files]
        clean_up(directory, args.keep, args.dir is not None, made_here)


if __name__ == "__main__":
    main()
