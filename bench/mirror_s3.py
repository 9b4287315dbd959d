#!/usr/bin/env python3
"""P7: ``repo-tool mirror`` of a 1 GiB release from a local HTTP server into the moto S3 server, against
a plain boto3 loop that streams the same objects from the same server into S3.

Makes (or reuses, with ``--dir``) bench/audit_targets.py's repository: a quickstart plus a 1.2.0 release
of LZ4 images of Bottlerocket's shape (64 + 900 + 60 MiB) published with ``repo-tool publish``, served
by audit_targets.py's HTTP server (``--serve``, a separate process); the moto server runs as a process
too (tests/motoserver.py, as bench/upload_s3.py uses it).  A first mirror run (untimed) fixes the list
of objects a mirror copies; then REPEAT rounds take the sides in turn (odd rounds in reverse order),
each run into a fresh S3 prefix (the last run's objects deleted first) and checked afterwards
(every object of the list there, with its size):

  baseline: a small boto3 script as a process (``BASELINE``): for each object, urllib GET from the HTTP
            server, then ``s3.upload_fileobj(response, ...)`` (boto3 defaults: TransferConfig, checksums)
  ours:     repo-tool mirror --root ... --from-metadata-url http://... --from-targets-url http://...
            --to-metadata-url s3://... --to-targets-url s3://... --endpoint-url ... (verifies the source,
            checks every target's length and sha256 as it streams, timestamp.json last)

  plan:     the same with ``--plan`` into an empty prefix (verify the source, HEAD each object, copy
            nothing): the mirror's fixed cost, shown to say where the time goes

All run as processes under audit_targets.py's ``Child`` (wall, peak RSS from ``os.wait4``, CPU);
moto's CPU is read from /proc.  The ratio is best(baseline) / best(ours) (target >= 0.9x), peak RSS of
the mirror < 150 MiB.  Last, the mirror runs again into the prefix it filled, through tests/s3helpers.py's
proxy (which records every request): a rerun with nothing new must send no PUT/POST and at most one HEAD
per object.  moto on localhost is CPU-bound and shares the 2 cores with the client and the HTTP server:
the MB/s are not S3's, only a comparison of two clients against one slow local server.

Usage: python bench/mirror_s3.py [--repeat N] [--size-mib MIB] [--dir DIR] [--keep] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
from audit_targets import ARCH, REPO_TOOL, VARIANT, Child, make_repo, served, spread  # bench/audit_targets.py
from timing import add_json_out, clean_up, write_json_out  # bench/timing.py (scripts run from bench/)
from upload_s3 import server_cpu  # bench/upload_s3.py (puts the repo root on sys.path, for tests.*)

from tests.motoserver import MotoServer
from tests.s3helpers import fault_proxy

MIB = 1 << 20
BUCKET = "bench-mirror"


# The baseline, run as its own small process (only boto3 and urllib imported, as a user's script would):
# argv[1] a JSON file [[url, key], ...], argv[2] the bucket; endpoint and credentials from the environment.
BASELINE = """
import json, sys, urllib.request
import boto3
s3 = boto3.session.Session().client("s3")
for url, key in json.load(open(sys.argv[1])):
    with urllib.request.urlopen(url) as response:
        s3.upload_fileobj(response, sys.argv[2], key)
"""


class S3Side:
    """The bucket seen by an uncounted admin client: listing, checking and emptying run prefixes."""

    def __init__(self, server: MotoServer) -> None:
        self.admin: Any = server.client("s3")  # uncounted, untimed
        self.admin.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        self.runs = 0
        self.prefix = ""

    def listed(self, prefix: str) -> dict[str, int]:
        pages = self.admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {item["Key"][len(prefix):]: item["Size"] for page in pages for item in page.get("Contents", [])}

    def fresh(self) -> str:
        """Empty the last run's prefix, then move on to a new one."""
        if self.prefix:
            keys = [{"Key": self.prefix + k} for k in self.listed(self.prefix)]
            for i in range(0, len(keys), 1000):
                self.admin.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
        self.runs += 1
        self.prefix = f"run-{self.runs}/"
        return self.prefix


def mirror_argv(root: Path, base_url: str, prefix: str, endpoint: str) -> list[str]:
    return [str(REPO_TOOL), "mirror", "--root", str(root),
            "--from-metadata-url", f"{base_url}/metadata/{VARIANT}/{ARCH}/",
            "--from-targets-url", f"{base_url}/targets/",
            "--to-metadata-url", f"s3://{BUCKET}/{prefix}metadata/",
            "--to-targets-url", f"s3://{BUCKET}/{prefix}targets/",
            "--endpoint-url", endpoint]


def run_child(label: str, argv: list[str]) -> Child:
    child = Child(argv)
    if child.code != 0:
        raise SystemExit(f"{label}: exit {child.code}: {child.stderr.strip()[-800:]}")
    return child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of them is shown (default 3)")
    parser.add_argument("--size-mib", type=int, default=1024, help="total size of 1.2.0's images (default 1024)")
    parser.add_argument("--dir", type=Path, help="where the repository is made and kept for the next run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir afterwards")
    add_json_out(parser)
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="mirror-s3-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        qs = make_repo(directory, args.size_mib)
        made = time.perf_counter() - t0
        with served(qs / "repo") as base_url, MotoServer() as moto:
            for name in [k for k in os.environ if k.startswith("AWS_")]:
                del os.environ[name]
            os.environ.update(moto.env())
            s3 = S3Side(moto)
            root = qs / "root.json"
            # The first mirror (untimed) fixes what a mirror copies; the baseline copies the same.
            prefix = s3.fresh()
            first = run_child("mirror", mirror_argv(root, base_url, prefix, moto.endpoint))
            if "MiB/s" not in first.stderr and "%" not in first.stderr:
                print(f"note: no progress line seen on the terminal: {first.stderr[-200:]!r}")
            expected = s3.listed(prefix)
            listing = directory / "baseline.json"

            def sources(prefix: str) -> list[tuple[str, str]]:
                pairs = []
                for key in expected:
                    area, name = key.split("/", 1)
                    where = f"metadata/{VARIANT}/{ARCH}" if area == "metadata" else "targets"
                    pairs.append((f"{base_url}/{where}/{name}", prefix + key))
                return pairs

            total = sum(expected.values())
            sides = ("baseline", "ours", "plan")
            times: dict[str, list[float]] = {s: [] for s in sides}
            rss: dict[str, list[float]] = {s: [] for s in sides}
            cpu: dict[str, list[float]] = {s: [] for s in sides}
            moto_cpu: dict[str, list[float]] = {s: [] for s in sides}
            for round_ in range(args.repeat + 1):  # round 0: the baseline's warm-up (ours had it)
                order = sides if round_ % 2 == 0 else sides[::-1]
                for side in order:
                    if round_ == 0 and side == "ours":
                        continue
                    prefix = s3.fresh()
                    if side == "baseline":
                        listing.write_text(json.dumps(sources(prefix)))
                        argv = [sys.executable, "-c", BASELINE, str(listing), BUCKET]
                    else:
                        argv = mirror_argv(root, base_url, prefix, moto.endpoint)
                        argv += ["--plan"] if side == "plan" else []
                    before = server_cpu(moto.pid or 0)
                    child = run_child(side, argv)
                    used = server_cpu(moto.pid or 0) - before
                    stored = s3.listed(prefix)
                    if stored != ({} if side == "plan" else expected):
                        raise SystemExit(f"{side}: {prefix} holds {stored}, expected {expected}")
                    if round_ > 0:
                        times[side].append(child.wall)
                        rss[side].append(child.rss_mib)
                        cpu[side].append(child.cpu)
                        moto_cpu[side].append(used)
            # The rerun: into a prefix a mirror filled (the last run's, if that was ours).
            if order[-1] != "ours":
                prefix = s3.fresh()
                run_child("mirror", mirror_argv(root, base_url, prefix, moto.endpoint))
            with fault_proxy(moto.endpoint) as proxy:
                before = server_cpu(moto.pid or 0)
                rerun = run_child("mirror rerun", mirror_argv(root, base_url, prefix, proxy.url))
                rerun_moto = server_cpu(moto.pid or 0) - before
                requests = Counter(r.step for r in proxy.requests)
                heads = Counter(r.key for r in proxy.requests if r.method == "HEAD")
            writes = sum(n for step, n in requests.items() if step not in ("HeadObject", "GetObject", "GET"))
            if s3.listed(prefix) != expected:
                raise SystemExit("rerun: the destination changed")
        best = {side: min(values) for side, values in times.items()}
        ratio = best["baseline"] / best["ours"]
        rounds = [b / o for b, o in zip(times["baseline"], times["ours"])]
        peak = max(rss["ours"])
        images = ", ".join(f"{size / MIB:.0f}" for size in expected.values() if size > MIB)
        print(f"objects: {len(expected)}, {total / MIB:.0f} MiB ({images} MiB images); repository "
              f"{'made' if made > 5 else 'reused'} in {made:.1f} s; {args.repeat} rounds; nproc {os.cpu_count()}; "
              f"boto3 {boto3.__version__}")
        print("NOTE: moto on localhost is CPU-bound and shares the 2 cores with the client and the HTTP server: "
              "these MB/s are not S3's, only two clients compared against one slow local server.")
        print(f"{'':10} {'best':>8} {'MB/s':>6} {'min / median / max ms':>24} {'peak RSS':>9} "
              f"{'CPU client':>11} {'CPU moto':>9}")
        for side in sides:
            rate = "-" if side == "plan" else f"{total / best[side] / 1e6:.1f}"  # the plan copies nothing
            print(f"{side:10} {best[side] * 1000:5.0f} ms {rate:>6} {spread(times[side]):>24} "
                  f"{max(rss[side]):6.0f} MiB {min(cpu[side]):9.2f} s {min(moto_cpu[side]):7.2f} s")
        print(f"ratio baseline / ours: {ratio:.2f}x (per round {min(rounds):.2f} / {statistics.median(rounds):.2f} / "
              f"{max(rounds):.2f}); target >= 0.9x: {'met' if ratio >= 0.9 else 'NOT met'}; peak RSS {peak:.0f} MiB "
              f"(< 150: {'met' if peak < 150 else 'NOT met'})")
        phase = best["ours"] - best["plan"]
        print(f"mirror copy phase (best ours - best plan): {phase * 1000:.0f} ms; baseline / that phase "
              f"{best['baseline'] / phase:.2f}x")
        most_heads = max(heads.values(), default=0)
        print(f"rerun, nothing new: {rerun.wall * 1000:.0f} ms, requests to S3: "
              f"{', '.join(f'{k} {v}' for k, v in sorted(requests.items())) or 'none'}; writes {writes}; "
              f"HEAD per object at most {most_heads} ({len(expected)} objects); CPU client {rerun.cpu:.2f} s, "
              f"moto {rerun_moto:.2f} s")
        figures: dict[str, Any] = {
            "mib": total / MIB, "objects": len(expected), "repeat": args.repeat,
            "baseline_s": best["baseline"], "mirror_s": best["ours"], "ratio": ratio, "round_ratios": rounds,
            "spread_s": {k: [min(v), statistics.median(v), max(v)] for k, v in times.items()},
            "cpu_s": {k: min(v) for k, v in cpu.items()}, "moto_cpu_s": {k: min(v) for k, v in moto_cpu.items()},
            "plan_s": best["plan"], "peak_rss_mib": peak, "baseline_rss_mib": max(rss["baseline"]),
            "rerun_requests": dict(requests), "rerun_writes": writes, "rerun_max_heads_per_object": most_heads,
            "rerun_s": rerun.wall,
        }
        write_json_out(args.json_out, figures)
    finally:
        clean_up(directory, args.keep, args.dir is not None, [])  # a --dir keeps the repository for the next run


if __name__ == "__main__":
    main()
