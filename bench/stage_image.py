#!/usr/bin/env python3
"""Staging an LZ4 image from a local HTTP server into a file against a shell pipeline (P3).

Creates (or reuses, with ``--dir``) IMAGE.lz4: SIZE MiB (default 1024) of 1 MiB blocks of random,
half-random, text-like and zero bytes (20/15/30/35 %, about 2.4x compressible, like a root
filesystem), compressed with the ``lz4`` command (its defaults: 4 MiB blocks, content checksum).
Serves the directory from an HTTP/1.1 server in a separate process (sendfile, so the server costs
little CPU), checks every side once (output digest = image digest), then times,
side by side in one process, REPEAT rounds taking the sides in turn (the order reversed every other
round; before every run, untimed: OUT removed, ``sync``, 0.5 s pause; page cache warm for IMAGE.lz4):

  baseline:   bash -c 'tee >(openssl dgst -sha256 >/dev/null) < IMAGE.lz4 | lz4 -dc > OUT'
  repo-tool:  Transport.stream(URL) -> staging.checked(length, sha256) -> staging.write_image(OUT)
              (HTTP with keep-alive and limits; SHA-256 in a reader thread, LZ4 decoding in a second
              thread, pwrite in the caller's thread with writeback started every FLUSH_EVERY bytes;
              fsync at the end)

and prints the best and median time and the best MB/s of decompressed output.  write_image fsyncs
and the baseline does not, so the baseline is also timed followed by ``sync OUT`` (coreutils fsync
of that file).  Finally one repo-tool run in a child process reports its peak RSS (VmHWM).

``--flush-every 0`` turns off write_image's flush-behind (to see what it buys).

Usage: python bench/stage_image.py [--repeat N] [--size-mib MIB] [--dir DIR] [--keep] [--flush-every MIB]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from timing import add_json_out, best, clean_up, write_json_out  # bench/timing.py (scripts run from bench/)

from repo_tool.hashing import hash_file
from repo_tool.node import staging
from repo_tool.node.staging import OUT_CHUNK, OUT_DEPTH, QUEUE_DEPTH, checked, write_image
from repo_tool.storage.transport import CHUNK, Transport

MIB = 1024 * 1024
IMAGE = "IMAGE.lz4"
INFO = "IMAGE.json"  # size and SHA-256 of the decompressed image and of IMAGE.lz4
RECIPE = 2  # bumped when make_image changes, so a reused --dir is remade
WORDS = [
    b"usr", b"lib", b"bin", b"etc", b"share", b"systemd", b"kubelet", b"containerd", b"bottlerocket", b"x86_64",
    b"aarch64", b"config", b"json", b"toml", b"so", b"ELF", b"static", b"const", b"return", b"struct", b"void",
    b"int", b"char", b"unsigned", b"if", b"else", b"for", b"while", b"GLIBC_2.34", b"libc.so.6", b"error",
    b"warning", b"info", b"debug", b"version", b"release", b"variant", b"image", b"root", b"boot", b"hash",
    b"verity", b"dm-0", b"nvme0n1p3",
]


def text_block(rng: random.Random) -> bytes:
    out = bytearray()
    while len(out) < MIB:
        line = b" ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12)))
        out += line + b" %d\n" % rng.randrange(1 << 32)
    return bytes(out[:MIB])


def make_image(directory: Path, size_mib: int) -> dict[str, Any]:
    """IMAGE.lz4 of ``size_mib`` MiB (made with the lz4 command) and its INFO; reused if present."""
    info_path, packed = directory / INFO, directory / IMAGE
    if info_path.exists() and packed.exists():
        info: dict[str, Any] = json.loads(info_path.read_text())
        if (info.get("recipe"), info["size"], info["packed_size"]) == (RECIPE, size_mib * MIB,
                                                                       packed.stat().st_size):
            return info
    rng = random.Random(3)
    texts = [text_block(rng) for _ in range(8)]
    raw = directory / "IMAGE"
    digest = hashlib.sha256()
    with raw.open("wb") as handle:
        for _ in range(size_mib):
            kind = rng.random()
            if kind < 0.20:
                block = os.urandom(MIB)  # compressed code, firmware, other lz4/xz payloads
            elif kind < 0.50:
                block = texts[rng.randrange(len(texts))]  # text, ELF symbol tables, configs (about 2x)
            elif kind < 0.65:
                block = os.urandom(MIB // 2) + bytes(MIB // 2)  # half-used filesystem blocks
            else:
                block = bytes(MIB)  # free space
            digest.update(block)
            handle.write(block)
    subprocess.run(["lz4", "-q", "-f", str(raw), str(packed)], check=True)
    raw.unlink()
    packed_sha = hash_file(packed).sha256
    info = {"recipe": RECIPE, "size": size_mib * MIB, "sha256": digest.hexdigest(),
            "packed_size": packed.stat().st_size, "packed_sha256": packed_sha}
    info_path.write_text(json.dumps(info))
    return info


def serve(directory: Path) -> None:
    """``--serve``: HTTP/1.1 GET of the files in ``directory`` via sendfile; prints the port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = directory / unquote(urlsplit(self.path).path.lstrip("/"))
            if not path.is_file():
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with path.open("rb") as handle:
                self.connection.sendfile(handle)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def stage(url: str, out: Path, info: dict[str, Any]) -> int:
    """The repo-tool side: download, verify and decompress into ``out``."""
    length, size = int(info["packed_size"]), int(info["size"])
    with Transport({"seed": "42", "version": "1.19.0"}) as transport:
        stream = transport.stream(url, length)
        if stream is None:
            raise SystemExit(f"{url}: not found")
        return write_image(checked(stream, length, str(info["packed_sha256"]), IMAGE), out, 0, 2 * size, IMAGE)


def child(url: str, out: Path, info_path: Path) -> None:
    """``--child``: one repo-tool run; prints its time and peak RSS as JSON."""
    info = json.loads(info_path.read_text())
    before = vm_hwm_kib()
    t0 = time.perf_counter()
    written = stage(url, out, info)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "written": written, "hwm_before_kib": before, "hwm_kib": vm_hwm_kib(),
                      "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timed runs per side (default 3)")
    parser.add_argument("--size-mib", type=int, default=1024, help="decompressed image size (default 1024)")
    parser.add_argument("--dir", type=Path, help="where to make or reuse IMAGE.lz4 (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    parser.add_argument("--flush-every", type=int, metavar="MIB",
                        help=f"write_image's FLUSH_EVERY in MiB (default {staging.FLUSH_EVERY >> 20}; 0 = off)")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, metavar=("URL", "OUT", "INFO", "FLUSH"), help=argparse.SUPPRESS)
    add_json_out(parser)
    args = parser.parse_args()
    if args.flush_every is not None:
        staging.FLUSH_EVERY = args.flush_every << 20
    if args.serve:
        serve(args.serve)
        return
    if args.child:
        staging.FLUSH_EVERY = int(args.child[3])
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return

    for tool in ("lz4", "openssl", "bash", "sync"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="stage-image-"))
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "OUT"
    made = [out] if args.dir and (directory / IMAGE).exists() else [out, directory / IMAGE, directory / INFO]
    server = None
    try:
        info = make_image(directory, args.size_mib)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(directory)], stdout=subprocess.PIPE,
                                  text=True)
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/{IMAGE}"
        pipeline = f"tee >(openssl dgst -sha256 >/dev/null) < {directory / IMAGE} | lz4 -dc > {out}"

        def baseline() -> None:
            subprocess.run(["bash", "-c", pipeline], check=True)

        def baseline_synced() -> None:
            subprocess.run(["bash", "-c", f"{pipeline} && sync {out}"], check=True)

        def repo_tool() -> None:
            stage(url, out, info)

        def fresh() -> None:  # every run starts from a missing OUT and a quiet disk
            out.unlink(missing_ok=True)
            os.sync()
            time.sleep(0.5)

        runs = [("baseline (shell pipeline)", baseline), ("baseline + sync OUT", baseline_synced),
                ("repo-tool (HTTP, sha256, lz4, fsync)", repo_tool)]
        for label, fn in runs:  # warm-up and correctness
            fresh()
            fn()
            if out.stat().st_size != info["size"] or hash_file(out).sha256 != info["sha256"]:
                raise SystemExit(f"{label}: OUT differs from the image")
        times: dict[str, list[float]] = {label: [] for label, _ in runs}
        for round_ in range(args.repeat):
            for label, fn in runs if round_ % 2 == 0 else runs[::-1]:
                times[label].append(best(fn, 1, prepare=fresh))

        print(f"image: {info['size'] / MIB:.0f} MiB decompressed, IMAGE.lz4 {info['packed_size'] / MIB:.0f} MiB "
              f"(ratio {info['size'] / info['packed_size']:.2f}x); {args.repeat} rounds; nproc {os.cpu_count()}; "
              f"transport chunk {CHUNK >> 10} KiB, queue {QUEUE_DEPTH}, decode/write piece {OUT_CHUNK >> 20} MiB, "
              f"queue {OUT_DEPTH}, flush every {staging.FLUSH_EVERY >> 20} MiB")
        fastest = {label: min(values) for label, values in times.items()}
        base, synced, ours = (fastest[label] for label, _ in runs)
        for label, _ in runs:
            seconds = fastest[label]
            print(f"{label:38} best {seconds * 1000:7.1f} ms (median {statistics.median(times[label]) * 1000:7.1f})"
                  f" {info['size'] / seconds / 1e6:7.1f} MB/s   vs baseline {base / seconds:5.2f}x")
        print(f"repo-tool vs baseline: {base / ours:.2f}x; vs baseline + sync OUT: {synced / ours:.2f}x "
              f"(target >= 0.8x)")

        fresh()
        report = subprocess.run([sys.executable, __file__, "--child", url, str(out), str(directory / INFO),
                                 str(staging.FLUSH_EVERY)], check=True, capture_output=True, text=True).stdout
        peak = json.loads(report)
        print(f"repo-tool child process: {peak['seconds'] * 1000:.1f} ms, peak RSS (VmHWM) "
              f"{peak['hwm_kib'] / 1024:.1f} MiB (interpreter and imports before staging: "
              f"{peak['hwm_before_kib'] / 1024:.1f} MiB)")
        write_json_out(args.json_out, {"mib": info["size"] / MIB, "packed_mib": info["packed_size"] / MIB,
                                       "repeat": args.repeat, "pipeline_s": base, "pipeline_sync_s": synced,
                                       "stage_s": ours, "peak_rss_mib": peak["hwm_kib"] / 1024})
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        clean_up(directory, args.keep, args.dir is not None, made)


if __name__ == "__main__":
    main()
