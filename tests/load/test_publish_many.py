"""``publish-release`` of one version into 60 variant/arch repositories (30 variants x 2 arches) in
one process: every repository created, then the release (10 MiB of images per repository, 600 MiB
in all) published into all of them at once; each loads with python-tuf's ngclient and lists the new
version, the shared migration is written once, and the publisher's memory stays bounded.
Full-size figures and a baseline: ``bench/publish_many.py``."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from tuf.ngclient import Updater

from tests.load.kit import (
    REPO_TOOL,
    RecordProperty,
    launch,
    publish_pairs,
    write_images,
    write_release,
)
from tests.repohelpers import make_quickstart, serve_directory

pytestmark = pytest.mark.long

DEADLINE_S = 120
RSS_BOUND_MIB = 500  # generous: the publisher measures well below it
IMAGE_BYTES = 10 << 20  # per repository: 600 MiB of images in all, more than the bound
SHARED = "migrate_v1.1.0_shared-settings.lz4"
METADATA = re.compile(r"^(\d+\.(root|snapshot|targets)|timestamp)\.json$")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_release_into_sixty_repos(tmp_path: Path, record_property: RecordProperty) -> None:
    qs = make_quickstart(tmp_path / "qs")
    pairs = publish_pairs()
    assert len(pairs) == 60
    releases = {version: {pair: write_images(tmp_path / "images" / version / "-".join(pair), *pair, version, size)
                          for pair in pairs} for version, size in (("1.0.0", 0), ("1.1.0", IMAGE_BYTES))}
    shared = tmp_path / SHARED
    shared.write_bytes(b"\x04\x22\x4d\x18" + b"shared migration" * 64)
    create = write_release(tmp_path / "create.yaml", qs.config, "1.0.0", releases["1.0.0"])
    publish = write_release(tmp_path / "release.yaml", qs.config, "1.1.0", releases["1.1.0"], [shared])

    runs = launch([[*REPO_TOOL, "publish-release", str(create), "--init", "--json"]], tmp_path / "create", DEADLINE_S)
    assert runs.children[0].code == 0, runs.children[0].stderr
    result = launch([[*REPO_TOOL, "publish-release", str(publish), "--json"]], tmp_path / "publish", DEADLINE_S)
    child = result.children[0]
    assert (child.code, child.timed_out) == (0, False), child.stderr
    report = json.loads(child.stdout)
    assert report["version"] == "1.1.0"
    assert [(r["variant"], r["arch"]) for r in report["repos"]] == pairs

    # Shared targets are written once; each repository's own images once each.
    # Shared targets are written once; each repository's own images and manifest once each; each
    # repository's targets, snapshot and timestamp.
    written = Counter(name for r in report["repos"] for name in r["written"] if not METADATA.match(name))
    assert [n for n in written if SHARED in n] == [f"targets/{_sha256(shared)}.{SHARED}"]
    assert set(written.values()) == {1} and len(written) == 1 + 60 * 4
    for r, files in zip(report["repos"], releases["1.1.0"].values()):
        added = {t["name"] for t in r["targets_added"]}
        assert {p.name for p in files.values()} | {SHARED, "manifest.json"} == added, r["variant"]
        assert {f"targets/{_sha256(p)}.{p.name}" for p in files.values()} <= set(r["written"]), r["variant"]
        assert {n for n in r["written"] if METADATA.match(n)} == {"2.targets.json", "2.snapshot.json", "timestamp.json"}
    assert len(list(qs.targets.glob(f"*.{SHARED}"))) == 1

    # Every repository loads with ngclient over HTTP and offers 1.1.0 with its own images.
    with serve_directory(qs.dir / "repo") as url:
        for (variant, arch), files in releases["1.1.0"].items():
            cache = tmp_path / "ngclient" / variant / arch
            cache.mkdir(parents=True)
            updater = Updater(metadata_dir=str(cache), metadata_base_url=f"{url}/metadata/{variant}/{arch}/",
                              target_base_url=f"{url}/targets/", target_dir=str(cache),
                              bootstrap=qs.root.read_bytes())
            updater.refresh()
            info = updater.get_targetinfo("manifest.json")
            assert info is not None and updater.get_targetinfo(SHARED) is not None, (variant, arch)
            manifest = json.loads(Path(updater.download_target(info)).read_bytes())
            updates = {u["version"]: u for u in manifest["updates"] if (u["variant"], u["arch"]) == (variant, arch)}
            assert sorted(updates) == ["1.0.0", "1.1.0"], (variant, arch)
            assert updates["1.1.0"]["images"] == {kind: p.name for kind, p in files.items()}

    # Memory is bounded: the images (more bytes than the bound) are streamed, not held.
    peak = child.maxrss_mib
    assert len(pairs) * IMAGE_BYTES > RSS_BOUND_MIB << 20
    assert result.launcher_hwm_kib < child.maxrss_kib and peak < RSS_BOUND_MIB, peak
    record_property("create_wall_s", round(runs.wall_s, 3))
    record_property("publish_wall_s", round(result.wall_s, 3))
    record_property("publish_rss_mib", round(peak, 1))
    print(f"\npublish-release into {len(pairs)} repos: {result.wall_s:.1f} s, peak RSS {peak:.1f} MiB "
          f"(creating them: {runs.wall_s:.1f} s, {runs.children[0].maxrss_mib:.1f} MiB)")
