#!/usr/bin/env python3
"""Cost of reading and writing manifest.json against plain json.loads/json.dumps of the same bytes.

A long-lived repository's manifest grows by one entry per variant/arch per release; this builds one
with UPDATES entries (7 waves each) and the real Release.toml's 82 migration hops, then times, side by
side in one process, best of REPEAT runs:

  baseline:  json.loads(bytes) + json.dumps(obj, indent=2)
  repo-tool: Manifest.from_bytes(bytes) + manifest.to_bytes()   (strict parsing, semver, ns instants)

Usage: python bench/manifest_codec.py [UPDATES] [REPEAT]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from timing import best  # bench/timing.py (scripts run from bench/)

from repo_tool.core.instant import parse_instant
from repo_tool.core.manifest import Images, Manifest
from repo_tool.core.release import parse_release
from repo_tool.core.semver import Version
from repo_tool.core.waves import parse_policy

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "upstream" / "bottlerocket"


def build(count: int) -> bytes:
    policy = parse_policy((ROOT / "waves" / "default-waves.toml").read_text())
    release = parse_release((SHARED / "release" / "Release.toml").read_text())
    manifest = Manifest()
    start = parse_instant("2025-04-03T23:08:37.864228309Z")
    variants = [f"aws-k8s-1.{n}" for n in range(20, 40)]
    i = 0
    while len(manifest.updates) < count:
        version = Version(1, i // 10, i % 10)
        for variant in variants:
            for arch in ("x86_64", "aarch64"):
                if len(manifest.updates) == count:
                    break
                tag = f"bottlerocket-{variant}-{arch}-{version}-abcdef0"
                manifest.add_update(version, version, arch, variant,
                                    Images(f"{tag}-boot.ext4.lz4", f"{tag}-root.ext4.lz4", f"{tag}-root.verity.lz4"))
                manifest.set_waves(variant, arch, version, start, policy)
        i += 1
    manifest.set_migrations(release.migrations)
    return manifest.to_bytes()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    data = build(count)
    baseline = best(lambda: json.dumps(json.loads(data), indent=2), repeat)
    ours = best(lambda: Manifest.from_bytes(data).to_bytes(), repeat)
    assert Manifest.from_bytes(data).to_bytes() == data
    print(f"manifest: {count} updates, {len(data) / 1e6:.2f} MB")
    print(f"baseline json.loads+json.dumps   {baseline * 1000:8.1f} ms")
    print(f"repo-tool parse+serialize        {ours * 1000:8.1f} ms")
    print(f"ratio repo-tool / baseline       {ours / baseline:8.2f}x")


if __name__ == "__main__":
    main()
