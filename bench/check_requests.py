#!/usr/bin/env python3
"""P4: HTTP requests and wall time of a node's ``check-update`` when nothing is new.

Makes a quickstart repository, serves it over HTTP on 127.0.0.1 from a separate process (a
``http.server`` that counts requests), and runs ``repo-tool node check-update -n`` as a real
process, side by side:

  baseline (updog):  every run starts from an empty metadata cache, as updog starts from a fresh
                     datastore each run: the root probe, timestamp, snapshot, targets and manifest
  repo-tool:         the second and later runs with the cache the first run left: the root probe
                     and ``timestamp.json``; snapshot, targets and manifest.json come from the cache
                     because the freshly verified timestamp/snapshot list their sha256

Prints the requests per check (target: at most 2) and the best-of-REPEAT wall times.

Usage: python bench/check_requests.py [--repeat N] [--keep] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import add_json_out, clean_up, write_json_out

REPO_TOOL = [sys.executable, "-m", "repo_tool"]

SERVER = r"""
import http.server, sys, functools
count = 0
class H(http.server.SimpleHTTPRequestHandler):
    def log_request(self, *a):
        global count
        count += 1
        with open(sys.argv[2], "w") as f:
            f.write(str(count))
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    add_json_out(parser)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-check-"))
    work.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    qs = work / "qs"
    if not qs.exists():
        subprocess.run([*REPO_TOOL, "quickstart", str(qs)], check=True, capture_output=True)
        made.append(qs)
    counter = work / "requests.count"
    made.append(counter)
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(qs / "repo"), str(counter)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        config = work / "updog.toml"
        config.write_text(f'metadata_base_url = "{url}/metadata/aws-k8s-1.28/x86_64/"\n'
                          f'targets_base_url = "{url}/targets/"\nseed = 42\nversion_lock = "latest"\n'
                          "ignore_waves = false\n")
        release = work / "os-release"
        release.write_text("VERSION_ID=1.0.0\nVARIANT_ID=aws-k8s-1.28\n")
        cache = work / "cache"
        made += [config, release, cache, work / "migrations"]

        def check() -> tuple[float, int]:
            before = int(counter.read_text()) if counter.exists() else 0
            t0 = time.perf_counter()
            done = subprocess.run([*REPO_TOOL, "node", "--config", str(config), "--trusted-root", str(qs / "root.json"),
                                   "--os-release", str(release), "--metadata-cache", str(cache),
                                   "--migrations-dir", str(work / "migrations"), "--arch", "x86_64",
                                   "check-update", "-n"], check=False, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"check-update failed: {done.stderr.strip()}")
            return elapsed, int(counter.read_text()) - before

        def cold() -> tuple[float, int]:
            shutil.rmtree(cache, ignore_errors=True)
            return check()

        rows = {"baseline (fresh cache, as updog)": [cold() for _ in range(args.repeat)]}
        check()  # leaves the cache a second check finds
        rows["repo-tool (second check)"] = [check() for _ in range(args.repeat)]
        print(f"{'':36} {'requests':>9} {'best wall s':>12}")
        for name, results in rows.items():
            print(f"{name:36} {max(r for _, r in results):>9} {min(t for t, _ in results):>12.3f}")
        base = max(r for _, r in rows["baseline (fresh cache, as updog)"])
        ours = max(r for _, r in rows["repo-tool (second check)"])
        print(f"requests: {ours} vs {base} (target: at most 2)")
        write_json_out(args.json_out, {
            "baseline_requests": base, "second_check_requests": ours,
            "baseline_s": min(t for t, _ in rows["baseline (fresh cache, as updog)"]),
            "second_check_s": min(t for t, _ in rows["repo-tool (second check)"])})
    finally:
        server.terminate()
        server.wait()
        clean_up(work, args.keep, args.dir is not None, made)


if __name__ == "__main__":
    main()
