#!/usr/bin/env python3
"""Cost of publishing one release into a repository that already lists 10,000 targets.

Builds, in a temporary directory, a quickstart repository (dev keys, signed root, config, two
releases) and adds TARGETS fake targets (``bottlerocket-aws-k8s-1.28-x86_64-1.0.N-abcdef0-root.ext4.lz4``
and friends, a few bytes each, files written to the targets directory) in one signed commit.  Then
times, side by side in one process, best of REPEAT runs:

  baseline:  json.load + json.dump of that repository's newest N.targets.json (read file, write file)
  repo-tool: repo_tool.publish.release.publish(..., Write(), ...) of one new version (three tiny images):
             verified load (root chain, timestamp, snapshot, the 10k targets.json, manifest.json),
             manifest edit and waves, signing of targets/snapshot/timestamp, the SPEC §3.2 self-check,
             and the ordered, fsynced writes.  Image hashing is excluded (``hash_files`` is replaced
             by a lookup of digests computed beforehand).

Every timed publish runs against a fresh copy of the 10k repository (copied and flushed to disk with
``os.sync``, untimed, before each run), so versions do not pile up and the publish's fsyncs write
only what it writes.  ``--profile`` also runs one publish under cProfile and prints the
top 15 entries by cumulative time
(and the top 10 by own time), after one run split into timed phases without the profiler.

Usage: python bench/publish_10k.py [--targets N] [--repeat N] [--profile] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import itertools
import json
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from timing import add_json_out, best, clean_up, write_json_out  # bench/timing.py (scripts run from bench/)

import repo_tool.publish.editor
import repo_tool.publish.release
from repo_tool.config import load_config
from repo_tool.core.instant import NANOS_PER_SECOND
from repo_tool.core.semver import Version
from repo_tool.hashing import FileDigest, hash_files
from repo_tool.publish import quickstart
from repo_tool.publish.editor import NewTarget, write_plan
from repo_tool.publish.inputs import load_policy
from repo_tool.publish.live import LiveEdit, Outcome, Write, live_edit
from repo_tool.publish.load import Location, load_live
from repo_tool.publish.release import AlreadyPublished, PublishOptions, ReleaseImages, add_release, publish

VARIANT, ARCH = quickstart.VARIANT, quickstart.ARCH
KINDS = ("boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4")
NEW_VERSION = "2.0.0"


def fake_targets(count: int) -> Iterable[tuple[str, bytes]]:
    for i in range(count):
        name = f"bottlerocket-{VARIANT}-{ARCH}-1.0.{i // 3}-abcdef0-{KINDS[i % 3]}"
        yield name, f"fake {name}\n".encode()


def build_template(directory: Path, count: int, now: int) -> Path:
    """A quickstart repository plus ``count`` extra targets; returns its newest N.targets.json."""
    policy = load_policy("default")[0]
    qs = quickstart.run(directory, now, policy)
    assert qs.targets_dir is not None and qs.metadata_dir is not None  # a local repository
    location = Location.of(load_config(qs.config, None), VARIANT, ARCH)
    with live_edit(location, now, Write()) as edit:
        for name, data in fake_targets(count):
            target = NewTarget(name, len(data), hashlib.sha256(data).hexdigest(), data)
            edit.editor.add_target(target)
            # Plain writes (no fsync per file): the object files only need to exist.
            (qs.targets_dir / target.object_name).write_bytes(data)
        edit.editor.added = []  # their files are in place already; write_plan adds only the metadata
    outcome, loaded = edit.outcome, edit.loaded
    name = outcome.plan.targets_file[0]
    newest = qs.metadata_dir / name
    listed = len(json.loads(newest.read_bytes())["signed"]["targets"])
    print(f"repository: {listed} targets, {name} is {newest.stat().st_size / 1e6:.2f} MB "
          f"({len(loaded.repo.targets.signed['targets']) if loaded.repo else 0} before the fake ones)")
    return newest


def release_images(directory: Path) -> ReleaseImages:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"bottlerocket-{VARIANT}-{ARCH}-{NEW_VERSION}-1234567"
    paths = []
    for kind in KINDS:
        path = directory / f"{stem}-{kind}"
        path.write_bytes(f"tiny image {path.name}\n".encode() * 16)
        paths.append(path)
    boot, root, hash_image = paths
    return ReleaseImages(VARIANT, ARCH, boot, root, hash_image)


def phases(run_dir: Path, images: ReleaseImages, options: PublishOptions, now: int,
           digests: dict[Path, FileDigest]) -> None:
    """publish() split into its steps, timed without a profiler (one run)."""
    location = Location.of(load_config(run_dir / "repo-tool.yaml", None), VARIANT, ARCH)
    marks = [("start", time.perf_counter())]
    load_live(location, now)
    marks.append(("load_live: verified load (root, timestamp, snapshot, targets, manifest)", time.perf_counter()))
    edit = LiveEdit.open(location, now, options.load)
    add_release(edit, images, options, digests)
    marks.append(("LiveEdit.open (load_live again, as above) + add_release: target listing + manifest edit",
                  time.perf_counter()))
    checks: list[float] = []
    real_self_check = repo_tool.publish.editor.self_check

    def timed_self_check(*args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        real_self_check(*args, **kwargs)
        checks.append(time.perf_counter() - t0)

    repo_tool.publish.editor.self_check = timed_self_check
    try:
        outcome = edit.build(Write())
    finally:
        repo_tool.publish.editor.self_check = real_self_check
    marks.append(("LiveEdit.build(Write()): manifest bytes, sign 3 roles, self-check", time.perf_counter()))
    write_plan(outcome.plan, location.meta, location.targets)
    marks.append(("write_plan: 4 targets + 3 metadata files, fsynced", time.perf_counter()))
    print("phases of one publish (no profiler; publish() runs load_live once, here it runs twice):")
    for (_, before), (label, after) in itertools.pairwise(marks):
        print(f"  {(after - before) * 1000:8.1f} ms  {label}")
    print(f"  {checks[0] * 1000:8.1f} ms    of which self_check (parse + SPEC §3.2 checks + verify of the 3 roles)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=10_000, help="fake targets to add (default 10000)")
    parser.add_argument("--repeat", type=int, default=5, help="best of N timed runs (default 5)")
    parser.add_argument("--profile", action="store_true", help="phase timings + cProfile of one publish")
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    add_json_out(parser)
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="publish-10k-"))
    try:
        now = time.time_ns()
        template = work / "template"
        t0 = time.perf_counter()
        newest = build_template(template, args.targets, now)
        print(f"setup: {time.perf_counter() - t0:.1f} s (untimed)")
        images = release_images(work / "images")
        digests = hash_files(images.files())
        # Release.toml's one step joins the new version to quickstart's newest (the chain invariant).
        options = PublishOptions(Version.parse(NEW_VERSION), load_policy("default")[0], now + NANOS_PER_SECOND,
                                 {(Version.parse("1.1.0"), Version.parse(NEW_VERSION)): []})
        run_dir = work / "run"

        def fresh_copy() -> None:
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.copytree(template, run_dir)
            # Flush the copy (10,000 target files) now, untimed: on ext4 the publish's first fsync
            # commits the journal, and would otherwise write this copy's dirty pages as well.
            os.sync()

        def run_publish() -> Outcome:
            location = Location.of(load_config(run_dir / "repo-tool.yaml", None), VARIANT, ARCH)
            outcome = publish(location, now + NANOS_PER_SECOND, Write(), images, options)
            assert not isinstance(outcome, AlreadyPublished), outcome.message
            return outcome

        def run_baseline() -> None:
            with newest.open("rb") as handle:
                value = json.load(handle)
            with (work / "baseline.json").open("w") as handle:
                json.dump(value, handle)

        # Hashing is excluded: publish() looks the digests up instead of reading the images.
        # (patched by name: the release module imports hash_files, it does not export it)
        real_hash_files = getattr(repo_tool.publish.release, "hash_files")  # noqa: B009

        def precomputed(paths: Iterable[Path], jobs: int | None = None, lz4: Iterable[Path] = (),
                        progress: object = None) -> dict[Path, FileDigest]:
            return {path: digests[path] for path in paths}

        setattr(repo_tool.publish.release, "hash_files", precomputed)  # noqa: B010
        try:
            fresh_copy()
            outcome = run_publish()  # warm-up, and a check that the release went in
            assert not outcome.planned_only and outcome.plan.versions["targets"] == 4, outcome.plan.versions
            added = [t.name for t in outcome.plan.targets]
            assert sorted(added) == sorted([*(p.name for p in images.files()), "manifest.json"]), added
            run_baseline()
            baseline = best(run_baseline, args.repeat)
            ours = best(run_publish, args.repeat, prepare=fresh_copy)
            print(f"baseline json.load+json.dump of {newest.name}   {baseline * 1000:8.1f} ms")
            print(f"repo-tool publish (no hashing)               {ours * 1000:8.1f} ms")
            print(f"ratio repo-tool / baseline                    {ours / baseline:8.2f}x   (target <= 2x, issue 16)")
            write_json_out(args.json_out, {"targets": len(json.loads(newest.read_bytes())["signed"]["targets"]),
                                           "repeat": args.repeat, "baseline_s": baseline, "publish_s": ours})
            if args.profile:
                fresh_copy()
                phases(run_dir, images, options, now + NANOS_PER_SECOND, digests)
                fresh_copy()
                profiler = cProfile.Profile()
                profiler.runcall(run_publish)
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("cumulative").print_stats(15)
                stats.sort_stats("tottime").print_stats(10)
                print(out.getvalue())
        finally:
            setattr(repo_tool.publish.release, "hash_files", real_hash_files)  # noqa: B010
    finally:
        clean_up(work, args.keep, args.dir is not None,
                 [work / name for name in ("template", "run", "images", "baseline.json")])


if __name__ == "__main__":
    main()
