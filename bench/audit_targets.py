#!/usr/bin/env python3
"""P6: ``repo-tool audit --targets all`` (every target streamed, hashed and LZ4-checked) against ``openssl dgst``.

Makes (or reuses, with ``--dir``) a quickstart repository with one more release, 1.2.0, whose three
images are LZ4 frames of Bottlerocket's shape (boot 64 + root 900 + hash 60 MiB by default, 1 GiB in
all; written by bench/hash_images.py's ``write_lz4_image``) published with ``repo-tool publish``.
Serves the repository from an HTTP/1.1 server in a separate process (GET and HEAD, sendfile), reads
every target once (page cache hot), then times, REPEAT rounds taking the sides in turn (each round
runs every side once, so a noisy machine slows them all alike):

  baseline:          openssl dgst -sha256 over every listed target's object file (one process)
  local all / none:  repo-tool audit --metadata-url DIR --targets-url DIR --root root.json --targets all
                     (then --targets none: the fixed cost, subtracted)
  http all / none:   the same with http://127.0.0.1:PORT/ URLs

Every audit runs as its own process with its stderr on a pseudo-terminal, so the progress line is
drawn as a user sees it (the script checks that it was, and that every audit exited 0); its peak
RSS comes from ``os.wait4``.  The audit's target phase is best(all) - best(none); the ratio is
openssl's time / that phase (higher is better, as P1's "x dgst").  Targets: >= 1.0x locally, >= 0.95x
over HTTP, peak RSS < 150 MiB.

Usage: python bench/audit_targets.py [--repeat N] [--size-mib MIB] [--jobs N] [--dir DIR] [--keep]
                                     [--json-out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hash_images import STEM, layout, write_lz4_image  # bench/hash_images.py
from timing import add_json_out, clean_up, write_json_out  # bench/timing.py (scripts run from bench/)

MIB = 1 << 20
VARIANT, ARCH = "aws-k8s-1.28", "x86_64"
VERSION = "1.2.0"
REPO_TOOL = Path(sys.executable).with_name("repo-tool")


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the files under the server's directory, bodies sent with sendfile."""

    protocol_version = "HTTP/1.1"
    directory = Path()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _file(self) -> Path | None:
        path = self.directory / unquote(urlsplit(self.path).path.lstrip("/"))
        if not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()
        return path

    def do_HEAD(self) -> None:
        self._file()

    def do_GET(self) -> None:
        path = self._file()
        if path is not None:
            with path.open("rb") as handle:
                self.connection.sendfile(handle)


def serve(directory: Path) -> None:
    """``--serve``: the HTTP server (prints its port)."""
    Handler.directory = directory
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


@contextlib.contextmanager
def served(directory: Path) -> Iterator[str]:
    """This script's ``--serve`` of ``directory`` as a separate process, for as long as the block runs:
    its base URL (http://127.0.0.1:PORT)."""
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}"
    finally:
        server.terminate()
        server.wait()


def run_cli(args: list[str], check: bool = True) -> str:
    done = subprocess.run([str(REPO_TOOL), *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"repo-tool {' '.join(args)}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    return done.stdout


def make_repo(directory: Path, size_mib: int) -> Path:
    """A quickstart in ``directory/qs`` with 1.2.0's images (``size_mib`` MiB of frames) published;
    reused when a previous run made the same."""
    qs = directory / "qs"
    marker = directory / "audit-targets.json"
    recipe = {"size_mib": size_mib, "version": VERSION}
    if qs.exists() and marker.exists() and json.loads(marker.read_text()) == recipe:
        return qs
    shutil.rmtree(qs, ignore_errors=True)
    run_cli(["quickstart", str(qs)])
    images = directory / "images"
    images.mkdir(exist_ok=True)
    paths = []
    for seed, (name, size) in enumerate(layout(size_mib, "bottlerocket")):
        path = images / f"{STEM}-{name}".replace("1.0.0", VERSION)
        write_lz4_image(path, size, seed, checksum=False)
        paths.append(path)
    release = directory / "Release.toml"
    release.write_text(f'version = "{VERSION}"\n\n[migrations]\n"(1.1.0, {VERSION})" = []\n')
    run_cli(["publish", "--config", str(qs / "repo-tool.yaml"), "--variant", VARIANT, "--arch", ARCH,
             "--version", VERSION, "--boot-image", str(paths[0]), "--root-image", str(paths[1]),
             "--hash-image", str(paths[2]), "--release-config", str(release)])
    shutil.rmtree(images)
    marker.write_text(json.dumps(recipe))
    return qs


def target_files(qs: Path) -> list[Path]:
    """Every target the newest targets.json lists, as its object file (consistent snapshot names)."""
    meta = qs / "repo" / "metadata" / VARIANT / ARCH
    timestamp = json.loads((meta / "timestamp.json").read_bytes())
    snapshot_v = timestamp["signed"]["meta"]["snapshot.json"]["version"]
    snapshot = json.loads((meta / f"{snapshot_v}.snapshot.json").read_bytes())
    targets_v = snapshot["signed"]["meta"]["targets.json"]["version"]
    listed = json.loads((meta / f"{targets_v}.targets.json").read_bytes())["signed"]["targets"]
    return [qs / "repo" / "targets" / f"{entry['hashes']['sha256']}.{name}" for name, entry in sorted(listed.items())]


# Run by a small interpreter (not forked from this big process, whose size a forked child's peak RSS
# would start from): spawns the command with stdout on /dev/null, waits for it with os.wait4 and prints
# its wall time, exit code, peak RSS (KiB) and CPU seconds.
SPAWN = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print(json.dumps([wall, os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime]))
"""


class Child:
    """One process with its stderr on a pseudo-terminal (drained in a thread): wall time, exit code,
    peak RSS, CPU time and what it drew on the terminal."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-S", "-c", SPAWN, *argv], stdout=subprocess.PIPE,
                                stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        chunks: list[bytes] = []

        def drain() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        out, _ = proc.communicate()
        reader.join(5)
        os.close(master)
        self.stderr = b"".join(chunks).decode(errors="replace")
        if proc.returncode != 0:
            raise SystemExit(f"{argv[0]}: could not be run: {self.stderr[-400:]}")
        self.wall, self.code, maxrss_kib, self.cpu = json.loads(out)
        self.rss_mib = maxrss_kib / 1024


def audit_argv(meta: str, targets: str, root: Path, mode: str, jobs: int | None) -> list[str]:
    extra = ["--jobs", str(jobs)] if jobs else []
    return [str(REPO_TOOL), "audit", "--metadata-url", meta, "--targets-url", targets, "--root", str(root),
            "--targets", mode, *extra]


def spread(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:.0f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best of them is shown (default 5)")
    parser.add_argument("--size-mib", type=int, default=1024, help="total size of 1.2.0's images (default 1024)")
    parser.add_argument("--jobs", type=int, default=None, help="audit --jobs (default: the audit's default)")
    parser.add_argument("--dir", type=Path, help="where the repository is made and kept for the next run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    add_json_out(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if shutil.which("openssl") is None:
        raise SystemExit("openssl is not on PATH")
    directory = args.dir or Path(tempfile.mkdtemp(prefix="audit-targets-"))
    directory.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        t0 = time.perf_counter()
        qs = make_repo(directory, args.size_mib)
        made = time.perf_counter() - t0
        files = target_files(qs)
        total = sum(p.stat().st_size for p in files)
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(qs / "repo")], stdout=subprocess.PIPE,
                                  text=True)
        assert server.stdout is not None
        base_url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        meta_dir, targets_dir = qs / "repo" / "metadata" / VARIANT / ARCH, qs / "repo" / "targets"
        where = {"local": (str(meta_dir), str(targets_dir)),
                 "http": (f"{base_url}/metadata/{VARIANT}/{ARCH}/", f"{base_url}/targets/")}
        root = qs / "root.json"
        openssl = [str(shutil.which("openssl")), "dgst", "-sha256", *map(str, files)]
        sides: list[tuple[str, list[str]]] = [("openssl dgst -sha256", openssl)]
        for kind, (meta, targets) in where.items():
            for mode in ("all", "none"):
                sides.append((f"{kind} {mode}", audit_argv(meta, targets, root, mode, args.jobs)))
        for label, argv in sides:  # warm-up (page cache hot) and correctness
            child = Child(argv)
            if child.code != 0:
                raise SystemExit(f"{label}: exit {child.code}: {child.stderr.strip()[-800:]}")
            if label.endswith(" all") and "MiB/s" not in child.stderr:
                raise SystemExit(f"{label}: no progress line on the terminal: {child.stderr[-400:]!r}")
        times: dict[str, list[float]] = {label: [] for label, _ in sides}
        rss: dict[str, list[float]] = {label: [] for label, _ in sides}
        cpu: dict[str, list[float]] = {label: [] for label, _ in sides}
        for round_ in range(args.repeat):
            for label, argv in sides if round_ % 2 == 0 else sides[::-1]:
                child = Child(argv)
                if child.code != 0:
                    raise SystemExit(f"{label}: exit {child.code}: {child.stderr.strip()[-800:]}")
                times[label].append(child.wall)
                rss[label].append(child.rss_mib)
                cpu[label].append(child.cpu)
        best = {label: min(values) for label, values in times.items()}
        base = best["openssl dgst -sha256"]
        images = ", ".join(f"{p.stat().st_size / MIB:.0f}" for p in files if p.stat().st_size > MIB)
        print(f"targets: {len(files)} files, {total / MIB:.0f} MiB ({images} MiB images); repository "
              f"{'made' if made > 5 else 'reused'} in {made:.1f} s; {args.repeat} rounds; nproc {os.cpu_count()}; "
              f"audit --jobs {args.jobs or 'default'}")
        print(f"{'':22} {'best':>8} {'min / median / max ms':>22} {'peak RSS':>9} {'CPU (min)':>10}")
        for label, _ in sides:
            print(f"{label:22} {best[label] * 1000:5.0f} ms {spread(times[label]):>22} {max(rss[label]):6.0f} MiB "
                  f"{min(cpu[label]) * 1000:7.0f} ms")
        figures: dict[str, Any] = {"mib": total / MIB, "repeat": args.repeat, "openssl_s": base,
                                   "spread_s": {k: [min(v), statistics.median(v), max(v)] for k, v in times.items()},
                                   "cpu_s": {k: min(v) for k, v in cpu.items()}}
        for kind, target in (("local", 1.0), ("http", 0.95)):
            phase = best[f"{kind} all"] - best[f"{kind} none"]
            ratio = base / phase
            rounds = [base / (a - n) for a, n in zip(times[f"{kind} all"], times[f"{kind} none"]) if a > n]
            peak = max(rss[f"{kind} all"])
            print(f"{kind}: target phase {phase * 1000:.0f} ms (best all - best none): {ratio:.2f}x openssl "
                  f"(per round {min(rounds):.2f} / {statistics.median(rounds):.2f} / {max(rounds):.2f}); "
                  f"target >= {target}x: {'met' if ratio >= target else 'NOT met'}; peak RSS {peak:.0f} MiB "
                  f"(< 150: {'met' if peak < 150 else 'NOT met'})")
            figures[kind] = {"all_s": best[f"{kind} all"], "none_s": best[f"{kind} none"], "phase_s": phase,
                             "ratio": ratio, "round_ratios": rounds, "peak_rss_mib": peak}
        write_json_out(args.json_out, figures)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        clean_up(directory, args.keep, args.dir is not None, [])  # a --dir keeps the repository for the next run


if __name__ == "__main__":
    main()
