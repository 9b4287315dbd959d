#!/usr/bin/env python3
"""Load: one release published into many variant/arch repositories (``publish-release``).

Builds a quickstart setup (dev keys, config) and REPOS new variant/arch repositories (30 variants x
2 arches = 60 by default; each created with release 1.0.0 by one ``publish-release --init``), then
times, side by
side, REPEAT rounds of each, every round on a fresh copy of the created repositories (copied,
untimed):

  repo-tool:  one ``repo-tool publish-release RELEASE.yaml`` process: release 1.1.0 (three images per
              repository plus one migration shared by all) into every repository; all plans built
              and checked before anything is written; the shared migration hashed and written once
  baseline:   ``repo-tool publish`` of the same release, one process per repository, one after
              another (what a release without publish-release takes)

Both sides are checked: every repository's manifest lists 1.1.0 with its own images afterwards.
Prints the best wall time of each, the peak RSS (from ``os.wait4`` in a small launcher process, see
tests/load/launcher.py) and the bytes written.  ``--image-mib`` gives each repository's release
images that many MiB of random bytes in Bottlerocket's shares (boot 6 %, root 88 %, hash 6 %;
default: a few KiB each); it needs about 3 x repos x MIB of free disk (the images, the targets each
round copies, and the copies of the repositories).

``--json-out``: ``publish_release_s``, ``baseline_s`` (the sequential publishes), ``rss_mib`` (of
publish-release) and more.

Usage: python bench/publish_many.py [--repos N] [--image-mib MIB] [--repeat N] [--dir DIR] [--keep]
                                    [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from timing import add_json_out, clean_up, write_json_out  # bench/timing.py (scripts run from bench/)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.load

from tests.load.kit import PUBLISH_ARCHES, PUBLISH_VARIANTS, REPO_TOOL, Launch, launch, write_images, write_release
from tests.repohelpers import QS, make_quickstart, release_config

DEADLINE_S = 3600
MIB = 1 << 20
SHARED = "migrate_v1.1.0_shared-settings.lz4"


def _check(qs: QS, images: dict[tuple[str, str], dict[str, Path]]) -> None:
    """Every repository's newest manifest offers 1.1.0 with its own images (plain json reads)."""
    for (variant, arch), files in images.items():
        meta = qs.dir / "repo" / "metadata" / variant / arch
        timestamp = json.loads((meta / "timestamp.json").read_bytes())
        snapshot_v = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        snapshot = json.loads((meta / f"{snapshot_v}.snapshot.json").read_bytes())
        targets_v = snapshot["signed"]["meta"]["targets.json"]["version"]
        targets = json.loads((meta / f"{targets_v}.targets.json").read_bytes())["signed"]["targets"]
        sha = targets["manifest.json"]["hashes"]["sha256"]
        manifest = json.loads((qs.targets / f"{sha}.manifest.json").read_bytes())
        offered = {u["version"]: u["images"] for u in manifest["updates"]
                   if (u["variant"], u["arch"]) == (variant, arch)}
        if offered.get("1.1.0") != {kind: p.name for kind, p in files.items()} or SHARED not in targets:
            raise SystemExit(f"{variant}/{arch}: 1.1.0 is not published as expected")


def _ok(run: Launch, what: str) -> Launch:
    for child in run.children:
        if child.code != 0:
            raise SystemExit(f"{what}: exit {child.code}: {child.stderr.strip()[-500:]}")
    return run


def _bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    most = len(PUBLISH_VARIANTS) * len(PUBLISH_ARCHES)
    parser.add_argument("--repos", type=int, default=most,
                        help=f"variant/arch repositories, {len(PUBLISH_ARCHES)} arches per variant (at most {most})")
    parser.add_argument("--image-mib", type=float, default=0, help="MiB of images per repository (default: tiny)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    add_json_out(parser)
    args = parser.parse_args()
    if not 1 <= args.repos <= most:
        parser.error(f"--repos: 1 to {most}")
    pairs = [(v, a) for v in PUBLISH_VARIANTS for a in PUBLISH_ARCHES][: args.repos]
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-publish-many-"))
    work.mkdir(parents=True, exist_ok=True)
    need = 3 * len(pairs) * args.image_mib * MIB
    if need > shutil.disk_usage(work).free:
        raise SystemExit(f"--image-mib {args.image_mib}: about {need / (1 << 30):.1f} GiB needed in {work}, "
                         f"{shutil.disk_usage(work).free / (1 << 30):.1f} GiB free")
    run_dir = work / "publish-many"
    shutil.rmtree(run_dir, ignore_errors=True)
    made = [run_dir]
    try:
        created = make_quickstart(run_dir / "created")
        tiny = {pair: write_images(run_dir / "images" / "1.0.0" / "-".join(pair), *pair, "1.0.0") for pair in pairs}
        release = {pair: write_images(run_dir / "images" / "1.1.0" / "-".join(pair), *pair, "1.1.0",
                                      int(args.image_mib * MIB)) for pair in pairs}
        shared = run_dir / SHARED
        shared.write_bytes(b"\x04\x22\x4d\x18" + b"shared migration" * 64)
        create = write_release(run_dir / "create.yaml", created.config, "1.0.0", tiny)
        created_run = _ok(launch([[*REPO_TOOL, "publish-release", str(create), "--init", "--json"]],
                                 run_dir / "create-run", DEADLINE_S), "creating the repositories")
        release_bytes = sum(p.stat().st_size for files in release.values() for p in files.values())

        results: dict[str, list[tuple[Launch, int]]] = {"repo-tool publish-release": [],
                                                        "baseline: publish x repos": []}
        for rep in range(args.repeat):
            for name, runs in results.items():
                copy = run_dir / "round"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(created.dir, copy)
                qs = QS(copy)
                before = _bytes(copy / "repo")
                if name.startswith("repo-tool"):
                    yaml_file = write_release(run_dir / "release.yaml", qs.config, "1.1.0", release, [shared])
                    argvs = [[*REPO_TOOL, "publish-release", str(yaml_file), "--json"]]
                    run = launch(argvs, run_dir / f"release-{rep}", DEADLINE_S)
                else:
                    argvs = [[*REPO_TOOL, "publish", "--config", str(qs.config), "--variant", variant, "--arch", arch,
                              "--version", "1.1.0", "--boot-image", str(files["boot"]), "--root-image",
                              str(files["root"]), "--hash-image", str(files["hash"]), "--copy-target", str(shared),
                              *release_config(run_dir, "1.1.0", after="1.0.0"), "--json"]
                             for (variant, arch), files in release.items()]
                    run = launch(argvs, run_dir / f"sequential-{rep}", DEADLINE_S, sequential=True)
                _ok(run, name)
                _check(qs, release)
                runs.append((run, _bytes(copy / "repo") - before))
    finally:
        clean_up(work, args.keep, args.dir is not None, made)

    print(f"release 1.1.0 into {len(pairs)} variant/arch repositories, "
          f"{release_bytes / MIB:.1f} MiB of images; best of {args.repeat}")
    print(f"(creating them: one publish-release --init, {created_run.wall_s:.2f} s, peak RSS "
          f"{created_run.children[0].maxrss_mib:.1f} MiB)")
    print(f"{'':28} {'wall s':>8} {'processes':>10} {'peak RSS MiB':>13} {'MiB written':>12}")
    figures: dict[str, object] = {"repos": len(pairs), "image_mib_per_repo": args.image_mib, "repeat": args.repeat}
    for name, done in results.items():
        wall = min(run.wall_s for run, _ in done)
        rss = max(c.maxrss_mib for run, _ in done for c in run.children)
        written = max(w for _, w in done) / MIB
        print(f"{name:28} {wall:>8.2f} {len(done[0][0].children):>10} {rss:>13.1f} {written:>12.2f}")
        key = "publish_release" if name.startswith("repo-tool") else "baseline"
        figures.update({f"{key}_s": round(wall, 3), f"{key}_rss_max_mib": round(rss, 1),
                        f"{key}_written_mib": round(written, 1)})
    walls = {name: min(run.wall_s for run, _ in done) for name, done in results.items()}
    ratio = walls["baseline: publish x repos"] / walls["repo-tool publish-release"]
    figures["speedup"] = round(ratio, 2)
    figures["rss_mib"] = figures["publish_release_rss_max_mib"]
    figures["create_s"] = round(created_run.wall_s, 3)
    print(f"publish-release vs one publish per repository: {ratio:.2f}x faster")
    write_json_out(args.json_out, figures)


if __name__ == "__main__":
    main()
