#!/usr/bin/env python3
"""Throughput of storing target files into S3 (a local moto server) against plain boto3 uploads.

Starts a fresh moto server (``tests/motoserver.py``, a separate process on 127.0.0.1), creates a
bucket, writes random-byte target files to a temporary directory, and times, side by side in one
process, best of REPEAT runs (in rounds that take each contender in turn), each run into a fresh
key prefix (the previous run's objects are deleted, untimed, before the next run):

  baseline:           boto3 ``upload_file`` for each file, one file after another (default
                      TransferConfig: multipart from 8 MiB, up to 10 parts of a file at once)
  boto3 pool:         the same ``upload_file`` calls from a ThreadPool of UPLOAD_JOBS files at once
  repo-tool jobs=1:   ``repo_tool.publish.editor.write_targets(targets, S3Storage, Progress(), jobs=1)``
  repo-tool:          the same with jobs=UPLOAD_JOBS (what ``publish`` does): UPLOAD_JOBS files at
                      once, files >= MULTIPART_THRESHOLD as multipart uploads with PART_JOBS parts at
                      once, each object first probed with HEAD (skipped if stored with that size)

for two cases: a release (large images plus a small one; ``--release-mib``) and many small files
(``--small-count`` files of ``--small-mib``).  Then it republishes the same unchanged files into the
prefix repo-tool last wrote, counting the requests its S3 client sends (a botocore ``before-send``
hook): a republish must send no PutObject/UploadPart, only HEADs.

moto on localhost is CPU bound (Python parses every request, computes the MD5 ETag of every body
and copies the parts on completion) and shares the machine's cores with the client, so the MB/s are
not S3 numbers: they compare the clients' request patterns against one slow server.  The script
prints the CPU seconds the client and the server used per run to show where the time goes.

Usage: python bench/upload_s3.py [--repeat N] [--release-mib 64,24,4] [--small-count 40]
                                 [--small-mib 1] [--baseline-checksums default|when_required]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timing import add_json_out, best, write_json_out, write_random  # bench/timing.py (scripts run from bench/)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.motoserver

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from repo_tool.aws import AwsSettings
from repo_tool.hashing import hash_files
from repo_tool.publish.editor import UPLOAD_JOBS, NewTarget, Progress, write_targets
from repo_tool.storage import open_storage
from repo_tool.storage.s3 import MULTIPART_THRESHOLD, PART_JOBS
from tests.motoserver import MotoServer

MIB = 1024 * 1024
# TransferConfig's default part concurrency (set in its __init__; the type stubs do not declare it).
MAX_CONCURRENCY: int = getattr(TransferConfig(), "max_concurrency")  # noqa: B009
BUCKET = "bench-targets"
STEM = "bottlerocket-aws-k8s-1.28-x86_64-1.0.0-abcdef0"
RELEASE_KINDS = ("root.ext4.lz4", "boot.ext4.lz4", "root.verity.lz4")
UPLOADS = {"PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")




def make_targets(directory: Path, files: list[tuple[str, int]]) -> list[NewTarget]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, size in files:
        path = directory / name
        write_random(path, size)
        paths.append(path)
    digests = hash_files(paths)
    return [NewTarget(p.name, digests[p].length, digests[p].sha256, p, digests[p].mtime_ns) for p in paths]


class Requests:
    """Counts the requests a boto3 client sends (every attempt), by operation, and their body bytes."""

    def __init__(self, client: Any) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        client.meta.events.register("before-send.s3.*", self._seen)

    def _seen(self, request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        length = int(request.headers.get("Content-Length") or 0)
        with self.lock:
            self.calls[operation] += 1
            self.bytes[operation] += length

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.bytes.clear()

    def uploaded(self) -> int:
        return sum(self.bytes[op] for op in ("PutObject", "UploadPart"))

    def summary(self) -> str:
        return ", ".join(f"{op} {n}" for op, n in sorted(self.calls.items()))


class CountingProgress(Progress):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0

    def advance(self, count: int) -> None:
        with self.lock:
            self.total += count


def server_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Sample:
    wall: float
    client_cpu: float
    server_cpu: float
    requests: str


class Bench:
    def __init__(self, server: MotoServer, admin: Any) -> None:
        self.server = server
        self.admin = admin  # a separate client for setup and cleanup (not counted, not timed)
        self.runs = 0
        self.prefix = ""

    def fresh_prefix(self) -> None:
        """Delete the last run's objects, then move on to a new prefix."""
        if self.prefix:
            pages = self.admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=self.prefix)
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.admin.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})
        self.runs += 1
        self.prefix = f"run-{self.runs}/targets/"

    def check_stored(self, targets: list[NewTarget]) -> None:
        pages = self.admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=self.prefix)
        stored = {item["Key"]: item["Size"] for page in pages for item in page.get("Contents", [])}
        expected = {self.prefix + t.object_name: t.length for t in targets}
        if stored != expected:
            raise SystemExit(f"{self.prefix}: stored {stored} != expected {expected}")

    def measure(self, runs: list[tuple[Callable[[], None], Requests]], repeat: int,
                targets: list[NewTarget]) -> list[Sample]:
        """Per run, the best of ``repeat``; rounds interleave the runs so that load from other
        processes hits them alike.  Each run goes into a fresh prefix and is checked afterwards;
        one checked warm-up run each comes first."""
        for fn, _ in runs:
            self.fresh_prefix()
            fn()
            self.check_stored(targets)
        samples: list[list[Sample]] = [[] for _ in runs]
        for _ in range(repeat):
            for (fn, requests), kept in zip(runs, samples):

                def timed(fn: Callable[[], None] = fn, requests: Requests = requests,
                          kept: list[Sample] = kept) -> None:
                    requests.reset()
                    pid = self.server.pid or 0
                    cpu0, srv0, t0 = time.process_time(), server_cpu(pid), time.perf_counter()
                    fn()
                    wall = time.perf_counter() - t0
                    kept.append(Sample(wall, time.process_time() - cpu0, server_cpu(pid) - srv0, requests.summary()))

                best(timed, 1, prepare=self.fresh_prefix)  # its clock also covers the CPU readings: use timed()'s
                self.check_stored(targets)
        return [min(kept, key=lambda sample: sample.wall) for kept in samples]


def run_case(bench: Bench, label: str, targets: list[NewTarget], repeat: int, aws: AwsSettings,
             ours_requests: Requests, boto_client: Any, boto_requests: Requests) -> dict[str, float]:
    total = sum(t.length for t in targets)
    transfer = TransferConfig()

    def boto_one(target: NewTarget) -> None:
        boto_client.upload_file(str(target.source), BUCKET, bench.prefix + target.object_name, Config=transfer)

    def boto_sequential() -> None:
        for target in targets:
            boto_one(target)

    def boto_pool() -> None:
        with ThreadPoolExecutor(UPLOAD_JOBS) as pool:
            list(pool.map(boto_one, targets))

    def repo_tool(jobs: int) -> Callable[[], None]:
        def run() -> None:
            progress = CountingProgress()
            write_targets(targets, open_storage(f"s3://{BUCKET}/{bench.prefix}", None, aws), progress, jobs)
            assert progress.total == total, (progress.total, total)
        return run

    runs = [
        ("baseline: boto3 upload_file, files one by one", boto_sequential, boto_requests),
        (f"boto3 upload_file, ThreadPool of {UPLOAD_JOBS} files", boto_pool, boto_requests),
        ("repo-tool write_targets jobs=1", repo_tool(1), ours_requests),
        (f"repo-tool write_targets jobs={UPLOAD_JOBS} (publish)", repo_tool(UPLOAD_JOBS), ours_requests),
    ]
    listing = ", ".join(f"{t.length / MIB:g}" for t in targets) if len(targets) <= 4 else \
        f"{len(targets)} x {targets[0].length / MIB:g}"
    print(f"\n{label}: {len(targets)} files ({listing} MiB) = {total / MIB:.0f} MiB; best of {repeat}, "
          "interleaved, each run into a fresh prefix")
    samples = bench.measure([(fn, requests) for _, fn, requests in runs], repeat, targets)
    base = samples[0].wall
    print(f"  {'':46} {'time':>9} {'MB/s':>7} {'vs baseline':>11}   {'CPU s client+moto':>17}")
    for (name, _, _), sample in zip(runs, samples):
        print(f"  {name:46} {sample.wall * 1000:6.0f} ms {total / sample.wall / 1e6:7.1f} "
              f"{base / sample.wall:10.2f}x   {sample.client_cpu:6.2f} + {sample.server_cpu:5.2f}   "
              f"[{sample.requests}]")
    print(f"  ratio repo-tool (jobs={UPLOAD_JOBS}) / baseline, MB/s: {base / samples[-1].wall:.2f}x")

    # (d) republish the unchanged files into the prefix repo-tool wrote last.
    ours_requests.reset()
    progress = CountingProgress()
    t0 = time.perf_counter()
    write_targets(targets, open_storage(f"s3://{BUCKET}/{bench.prefix}", None, aws), progress)
    wall = time.perf_counter() - t0
    uploads = sum(ours_requests.calls[op] for op in UPLOADS)
    if uploads or ours_requests.uploaded():
        raise SystemExit(f"republish uploaded: {ours_requests.summary()}")
    print(f"  republish: {ours_requests.uploaded()} bytes of targets uploaded, "
          f"{ours_requests.calls['HeadObject']} HEAD requests ({ours_requests.summary()}), {wall * 1000:.0f} ms")
    return {"files": len(targets), "mib": total / MIB, "baseline_s": base, "boto3_pool_s": samples[1].wall,
            "repo_tool_s": samples[-1].wall, "republish_bytes": ours_requests.uploaded(), "republish_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="best of N timed runs (default 5)")
    parser.add_argument("--release-mib", default="64,24,4",
                        help="sizes of the release's images in MiB, comma-separated (default 64,24,4)")
    parser.add_argument("--small-count", type=int, default=40, help="files in the many-small-files case (default 40)")
    parser.add_argument("--small-mib", type=float, default=1, help="size of each small file in MiB (default 1)")
    parser.add_argument("--baseline-checksums", choices=("default", "when_required"), default="default",
                        help="boto3 baseline's request_checksum_calculation: boto3's default (a CRC32 of every "
                             "body) or when_required, as repo-tool's client (default: default)")
    add_json_out(parser)
    args = parser.parse_args()

    release_sizes = [round(float(mib) * MIB) for mib in args.release_mib.split(",")]
    directory = Path(tempfile.mkdtemp(prefix="upload-s3-"))
    try:
        release = make_targets(directory / "release", [
            (f"{STEM}-{RELEASE_KINDS[i % 3]}{'' if i < 3 else f'.{i}'}", size) for i, size in enumerate(release_sizes)
        ])
        small = make_targets(directory / "small", [
            (f"{STEM}-small-{i:03}.bin", round(args.small_mib * MIB)) for i in range(args.small_count)
        ])
        with MotoServer() as server:
            for name in [k for k in os.environ if k.startswith("AWS_")]:
                del os.environ[name]
            os.environ.update(server.env())
            admin = server.client("s3")
            admin.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
            aws = AwsSettings(endpoint_url=server.endpoint)
            # Plain boto3 (default retries, default checksums unless told otherwise); the pool only
            # needs room for UPLOAD_JOBS transfers of TransferConfig().max_concurrency parts each.
            checksums = {"request_checksum_calculation": args.baseline_checksums}
            if args.baseline_checksums == "default":
                checksums = {}
            boto_client = boto3.session.Session().client(
                "s3", endpoint_url=server.endpoint,
                config=Config(max_pool_connections=UPLOAD_JOBS * MAX_CONCURRENCY, **checksums))
            boto_requests = Requests(boto_client)
            ours_requests = Requests(aws.client("s3"))  # the cached client S3Storage.from_url uses
            bench = Bench(server, admin)
            print(f"moto {server.endpoint} (pid {server.pid}); nproc {os.cpu_count()}; UPLOAD_JOBS {UPLOAD_JOBS}, "
                  f"PART_JOBS {PART_JOBS}, MULTIPART_THRESHOLD {MULTIPART_THRESHOLD // MIB} MiB; boto3 "
                  f"{boto3.__version__} TransferConfig defaults (multipart from "
                  f"{TransferConfig().multipart_threshold // MIB} MiB, {MAX_CONCURRENCY} threads), "
                  f"baseline checksums: {args.baseline_checksums}")
            print("NOTE: moto on localhost is CPU bound and shares the cores with this client: these MB/s are "
                  "not S3 numbers, only a comparison of request patterns against one slow local server.")
            figures = {
                "release": run_case(bench, "release", release, args.repeat, aws, ours_requests, boto_client,
                                    boto_requests),
                "small": run_case(bench, "many small files", small, args.repeat, aws, ours_requests, boto_client,
                                  boto_requests),
            }
            write_json_out(args.json_out, {"repeat": args.repeat, **figures})
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
