#!/usr/bin/env python3
"""Throughput of hashing a release's three images against ``openssl dgst -sha256``.

Writes boot, root and hash images of random bytes (64 + 900 + 60 MiB by default, >= 1 GiB in all)
to a temporary directory, reads them once so the page cache is hot for every side, then times,
side by side in one process, best of REPEAT runs:

  baseline:            openssl dgst -sha256 boot root hash   (one subprocess, files one after another)
  repo-tool jobs=1:    repo_tool.hashing.hash_files(paths, jobs=1)
  repo-tool jobs=2:    repo_tool.hashing.hash_files(paths, jobs=2)

and checks that every digest equals openssl's.  SHA-256 of one file cannot be split, so with threads
the wall time can never drop below the time to hash the largest file (or, for equal files, the
busiest thread's share): the script prints that bound.
``--chunks`` also times ``hash_file(path, chunk)`` for several read sizes (jobs=1 and jobs=2).

Usage: python bench/hash_images.py [--repeat N] [--size-mib MIB] [--layout bottlerocket|even]
                                   [--dir DIR] [--keep] [--chunks 65536,1048576,...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from timing import add_json_out, best, clean_up, write_json_out, write_random  # bench/timing.py

from repo_tool.hashing import CHUNK, FileDigest, hash_file, hash_files

MIB = 1024 * 1024
STEM = "bottlerocket-aws-k8s-1.28-x86_64-1.0.0-abcdef0"
# The shares of the default 1024 MiB: boot 64, root 900, hash 60 (a Bottlerocket release's proportions).
BOTTLEROCKET = (("boot.ext4", 64), ("root.ext4", 900), ("root.verity", 60))
DEFAULT_CHUNKS = (64 * 1024, 256 * 1024, MIB, 4 * MIB, 16 * MIB)
OPENSSL_LINE = re.compile(r"^SHA2?-?256\((.*)\)= ([0-9a-f]{64})$")


def layout(total_mib: int, kind: str) -> list[tuple[str, int]]:
    """File names and sizes in bytes, summing to ``total_mib`` MiB."""
    if kind == "even":
        third = total_mib // 3
        return [(name, (total_mib - 2 * third if i == 1 else third) * MIB) for i, (name, _) in enumerate(BOTTLEROCKET)]
    weight = sum(mib for _, mib in BOTTLEROCKET)
    sizes = [(name, mib * total_mib * MIB // weight) for name, mib in BOTTLEROCKET]
    sizes[1] = (sizes[1][0], total_mib * MIB - sizes[0][1] - sizes[2][1])
    return sizes




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


def makespan(sizes: list[int], jobs: int) -> int:
    """Bytes hashed by the busiest thread when a pool takes the files in order (as ``pool.map`` does)."""
    loads = [0] * jobs
    for size in sizes:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timed runs (default 3)")
    parser.add_argument("--size-mib", type=int, default=1024, help="total size of the three files (default 1024)")
    parser.add_argument("--layout", choices=("bottlerocket", "even"), default="bottlerocket",
                        help="bottlerocket: 64/900/60 shares; even: three equal files")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
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
        paths = []
        for name, size in files:
            path = directory / f"{STEM}-{name}"
            write_random(path, size)
            paths.append(path)
        sizes = {path: size for path, (_, size) in zip(paths, files)}
        total = sum(sizes.values())

        expected = openssl_digests(paths)  # warm-up: every file read once, page cache hot
        check(hash_files(paths, jobs=1), expected, sizes)
        check(hash_files(paths, jobs=2), expected, sizes)

        runs = [
            ("baseline openssl dgst -sha256", lambda: openssl_digests(paths)),
            ("repo-tool hash_files jobs=1", lambda: hash_files(paths, jobs=1)),
            ("repo-tool hash_files jobs=2", lambda: hash_files(paths, jobs=2)),
        ]
        times = [best(fn, args.repeat) for _, fn in runs]
        base = times[0]
        listing = ", ".join(f"{name} {size / MIB:.0f} MiB" for name, size in files)
        print(f"files: {listing} = {total / MIB:.0f} MiB; best of {args.repeat}; nproc {os.cpu_count()}; "
              f"hashing.CHUNK {CHUNK} bytes")
        for (label, _), seconds in zip(runs, times):
            print(f"{label:34} {seconds * 1000:8.1f} ms {total / seconds / 1e6:8.1f} MB/s"
                  f"   ratio vs openssl {base / seconds:5.2f}x")
        bound = total / makespan(list(sizes.values()), 2)
        print(f"bound for jobs=2: whole files on 2 threads (largest {max(sizes.values()) / total:.0%} of the bytes) "
              f"take at least 1/{bound:.2f} of the jobs=1 time, i.e. <= {bound * base / times[1]:.2f}x openssl here")
        write_json_out(args.json_out, {"mib": total / MIB, "repeat": args.repeat, "openssl_s": base,
                                       "jobs1_s": times[1], "jobs2_s": times[2],
                                       "jobs2_bound_ratio": bound * base / times[1]})

        if args.chunks:
            print("\nchunk size sweep (hash_file(path, chunk)):")
            for chunk in (int(c) for c in args.chunks.split(",")):
                check(hash_chunked(paths, chunk, 1), expected, sizes)
                t1 = best(lambda c=chunk: hash_chunked(paths, c, 1), args.repeat)  # type: ignore[misc]
                t2 = best(lambda c=chunk: hash_chunked(paths, c, 2), args.repeat)  # type: ignore[misc]
                print(f"  chunk {chunk:>9}  jobs=1 {total / t1 / 1e6:7.1f} MB/s ({base / t1:4.2f}x)"
                      f"   jobs=2 {total / t2 / 1e6:7.1f} MB/s ({base / t2:4.2f}x)")
    finally:
        clean_up(directory, args.keep, args.dir is not None,
                 [directory / f"{STEM}-{name}" for name, _ in layout(args.size_mib, args.layout)])


if __name__ == "__main__":
    main()
