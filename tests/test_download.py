"""``repo-tool download``: verified targets of a quickstart repository into a folder, from a path and
over HTTP, by release (--version) and by name (--target); refusals leave nothing behind."""

from __future__ import annotations

import filecmp
import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repo_tool.cli.common import now_ns
from repo_tool.core.manifest import Manifest
from repo_tool.core.progress import Progress
from repo_tool.errors import UsageError
from repo_tool.localfs import leftover_temp_files
from repo_tool.mirror.download import DownloadRequest, choose_update, download
from repo_tool.storage.base import LocalStorage
from tests.clirun import Runner, assert_one_line_error
from tests.repohelpers import ARCH, QS, VARIANT, release_config, run_measured, serve_directory, write_stored_lz4

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]


def locations(qs: QS, base: str | None = None) -> list[str]:
    """``--root``, ``--metadata-url`` and ``--targets-url`` of the quickstart (``base``: its URL)."""
    if base is None:
        return ["--root", str(qs.root), "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets)]
    return ["--root", str(qs.root), "--metadata-url", f"{base}/metadata/{VARIANT}/{ARCH}/",
            "--targets-url", f"{base}/targets/"]


def listed(qs: QS, name: str) -> dict[str, Any]:
    entry: dict[str, Any] = qs.newest("targets")["signed"]["targets"][name]
    return entry


def original(qs: QS, name: str) -> bytes:
    return (qs.targets / f"{listed(qs, name)['hashes']['sha256']}.{name}").read_bytes()


def images(qs: QS, version: str) -> list[str]:
    update = next(u for u in qs.manifest()["updates"] if u["version"] == version)
    return [update["images"][kind] for kind in ("boot", "root", "hash")]


def test_version_downloads_the_release_images_byte_for_byte(run: Runner, qs: QS, tmp_path: Path) -> None:
    out = tmp_path / "out" / "new"  # made, parents too
    result = run("download", *locations(qs), "--version", "1.1.0", "--json", str(out))
    assert result.code == 0, result.err
    report = result.json()
    names = images(qs, "1.1.0")
    assert [f["name"] for f in report["files"]] == names
    assert (report["version"], report["variant"], report["arch"]) == ("1.1.0", VARIANT, ARCH)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # plain names, nothing else
    for entry in report["files"]:
        data = (out / entry["name"]).read_bytes()
        assert data == original(qs, entry["name"])
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["skipped"] is False
    assert report["downloaded_bytes"] == sum(f["size"] for f in report["files"])
    assert images(qs, "1.0.0") != names


def test_latest_is_the_newest_release(run: Runner, qs: QS, tmp_path: Path) -> None:
    result = run("download", *locations(qs), "--version", "latest", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(images(qs, "1.1.0"))
    assert "3 file(s)" in result.out


def test_targets_over_http(run: Runner, qs: QS, tmp_path: Path) -> None:
    wanted = ["manifest.json", images(qs, "1.0.0")[1]]
    with serve_directory(qs.dir / "repo") as url:
        args = [arg for name in [*wanted, wanted[0]] for arg in ("--target", name)]  # once each
        result = run("download", *locations(qs, url), *args, "--json", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert [f["name"] for f in result.json()["files"]] == wanted
    for name in wanted:
        assert (tmp_path / "out" / name).read_bytes() == original(qs, name)


def test_version_over_http(run: Runner, qs: QS, tmp_path: Path) -> None:
    with serve_directory(qs.dir / "repo") as url:
        result = run("download", *locations(qs, url), "--version", "1.0.0", str(tmp_path / "out"))
    assert result.code == 0, result.err
    for name in images(qs, "1.0.0"):
        assert (tmp_path / "out" / name).read_bytes() == original(qs, name)


def test_from_s3(aws: MotoServer, run: Runner, qs: QS, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="updates", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for path in (qs.dir / "repo").rglob("*"):
        if path.is_file():
            s3.put_object(Bucket="updates", Key=f"repo/{path.relative_to(qs.dir / 'repo')}", Body=path.read_bytes())
    result = run("download", *locations(qs, "s3://updates/repo"), "--endpoint-url", aws.endpoint,
                 "--version", "1.1.0", str(tmp_path / "out"))
    assert result.code == 0, result.err
    for name in images(qs, "1.1.0"):
        assert (tmp_path / "out" / name).read_bytes() == original(qs, name)


def test_rerun_keeps_identical_files(run: Runner, qs: QS, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("download", *locations(qs), "--version", "1.1.0", str(out)).code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    log: list[str] = []
    with serve_directory(qs.dir / "repo", log) as url:
        result = run("download", *locations(qs, url), "--version", "1.1.0", "--json", str(out))
    assert result.code == 0, result.err
    report = result.json()
    assert all(f["skipped"] for f in report["files"]) and report["downloaded_bytes"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert not [path for path in log if path.startswith("/targets/") and "manifest.json" not in path]


def test_other_content_is_refused_unless_forced(run: Runner, qs: QS, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    name = images(qs, "1.1.0")[0]
    (out / name).write_bytes(b"something else")
    result = run("download", *locations(qs), "--version", "1.1.0", str(out))
    assert_one_line_error(result, 2, str(out / name), "--force")
    assert [p.name for p in out.iterdir()] == [name]  # checked before anything was downloaded
    assert (out / name).read_bytes() == b"something else"
    result = run("download", *locations(qs), "--version", "1.1.0", "--force", str(out))
    assert result.code == 0, result.err
    assert (out / name).read_bytes() == original(qs, name)


def test_tampered_target_is_refused_and_nothing_written(run: Runner, qs: QS, tmp_path: Path) -> None:
    name = images(qs, "1.1.0")[1]
    stored = qs.targets / f"{listed(qs, name)['hashes']['sha256']}.{name}"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, other bytes
    stored.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    result = run("download", *locations(qs), "--target", name, str(out))
    assert_one_line_error(result, 1, name, "SHA-256")
    assert list(out.iterdir()) == [] and leftover_temp_files(out) == []
    (out / name).write_bytes(b"an older copy")
    result = run("download", *locations(qs), "--target", name, "--force", str(out))
    assert_one_line_error(result, 1, name)
    assert (out / name).read_bytes() == b"an older copy"  # not replaced by what failed
    assert [p.name for p in out.iterdir()] == [name]


def test_longer_target_is_refused(run: Runner, qs: QS, tmp_path: Path) -> None:
    name = "manifest.json"
    stored = qs.targets / f"{listed(qs, name)['hashes']['sha256']}.{name}"
    stored.write_bytes(stored.read_bytes() + b" ")
    result = run("download", *locations(qs), "--target", name, str(tmp_path / "out"))
    assert_one_line_error(result, 1, name)
    assert not (tmp_path / "out" / name).exists()


def test_usage_errors(run: Runner, qs: QS, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    cases = [
        ([], "--version or --target"),
        (["--version", "1.1.0", "--target", "manifest.json"], "--version or --target"),
        (["--target", "no-such-target"], "--target no-such-target: not listed"),
        (["--target", "../manifest.json"], "not a plain file name"),
        (["--version", "9.9.9"], "--version 9.9.9"),
        (["--version", "nine"], "--version"),
        (["--version", "1.1.0", "--variant", "other"], "no update for other/"),
        (["--target", "manifest.json", "--arch", ARCH], "--variant/--arch"),
    ]
    for extra, needle in cases:
        assert_one_line_error(run("download", *locations(qs), *extra, out), 2, needle)
    assert not (tmp_path / "out").exists()
    missing = ["--root", str(tmp_path / "nope.json"), *locations(qs)[2:]]
    assert_one_line_error(run("download", *missing, "--version", "1.1.0", out), 2, "--root")
    (tmp_path / "file").write_text("")
    assert_one_line_error(run("download", *locations(qs), "--version", "1.1.0", str(tmp_path / "file")), 2,
                          "OUTDIR")


def test_repository_failing_verification_is_exit_1(run: Runner, qs: QS, tmp_path: Path) -> None:
    (qs.meta / "timestamp.json").write_bytes(b"{}")
    result = run("download", *locations(qs), "--version", "1.1.0", str(tmp_path / "out"))
    assert_one_line_error(result, 1, "timestamp.json")
    assert not (tmp_path / "out").exists()


class Recorded(Progress):
    def __init__(self) -> None:
        self.jobs: list[tuple[str, int]] = []
        self.done = 0

    def start(self, label: str, total: int) -> None:
        self.jobs.append((label, total))

    def advance(self, count: int) -> None:
        self.done += count


def test_library_reports_the_bytes_downloaded(qs: QS, tmp_path: Path) -> None:
    request = DownloadRequest(LocalStorage(qs.meta), LocalStorage(qs.targets), qs.root.read_bytes(), str(qs.root),
                              tmp_path / "out", version="1.0.0")
    progress = Recorded()
    result = download(request, now_ns(), progress)
    total = sum(listed(qs, name)["length"] for name in images(qs, "1.0.0"))
    assert progress.jobs == [("download", total)] and progress.done == total == result.downloaded_bytes
    again = Recorded()
    assert download(request, now_ns(), again).downloaded_bytes == 0
    assert again.jobs == [("download", 0)] and again.done == 0


def test_memory_stays_bounded(run: Runner, qs: QS, tmp_path: Path) -> None:
    """A release with a 256 MiB root image (an LZ4 frame of sparse zeros), downloaded in a child
    process that reports its own peak RSS: the image is streamed to the file, never held whole."""
    images_dir = tmp_path / "big"
    images_dir.mkdir()
    sizes = {"boot": 16 << 20, "root": 256 << 20, "hash": 8 << 20}
    paths = {kind: write_stored_lz4(images_dir / f"big-1.2.0-{kind}.img.lz4", size) for kind, size in sizes.items()}
    published = run("publish", *qs.args("--version", "1.2.0", "--boot-image", str(paths["boot"]), "--root-image",
                                        str(paths["root"]), "--hash-image", str(paths["hash"]),
                                        *release_config(images_dir, "1.2.0")))
    assert published.code == 0, published.err
    out = tmp_path / "out"
    measured = run_measured("download", *locations(qs), "--version", "1.2.0", str(out))
    assert measured.code == 0, measured.err[-2000:]
    for kind, path in paths.items():
        assert (out / path.name).stat().st_size == path.stat().st_size, kind
        assert filecmp.cmp(out / path.name, path, shallow=False)
    assert measured.peak_mib < 150, measured.peak_mib  # holding the root image alone would take 256 MiB


def _update(variant: str, arch: str, version: str) -> dict[str, Any]:
    return {"variant": variant, "arch": arch, "version": version, "max_version": version, "waves": {},
            "images": {kind: f"{variant}-{arch}-{version}-{kind}" for kind in ("boot", "root", "hash")}}


def test_the_release_of_a_manifest_with_several_variants() -> None:
    manifest = Manifest.from_bytes(json.dumps({"updates": [
        _update("metal-k8s-1.30", "x86_64", "1.20.0"), _update("metal-k8s-1.30", "x86_64", "1.21.0"),
        _update("vmware-k8s-1.30", "x86_64", "1.21.0"), _update("metal-k8s-1.30", "aarch64", "1.21.0"),
    ], "migrations": {}}))
    several = "metal-k8s-1.30/aarch64, metal-k8s-1.30/x86_64, vmware-k8s-1.30/x86_64: choose one with --variant"
    with pytest.raises(UsageError, match=re.escape(several)):
        choose_update(manifest, "1.21.0", None, None)
    with pytest.raises(UsageError, match=re.escape("metal-k8s-1.30/aarch64, metal-k8s-1.30/x86_64")):
        choose_update(manifest, "latest", "metal-k8s-1.30", None)
    chosen = choose_update(manifest, "1.20.0", "metal-k8s-1.30", "x86_64")
    assert chosen.images.root == "metal-k8s-1.30-x86_64-1.20.0-root"
    assert choose_update(manifest, "latest", "metal-k8s-1.30", "x86_64").images.boot == \
        "metal-k8s-1.30-x86_64-1.21.0-boot"
    assert choose_update(manifest, "latest", "vmware-k8s-1.30", None).variant == "vmware-k8s-1.30"
    with pytest.raises(UsageError, match=r"--version 1\.19\.0: .* \(it has 1\.20\.0, 1\.21\.0\)"):
        choose_update(manifest, "1.19.0", "metal-k8s-1.30", "x86_64")
    with pytest.raises(UsageError, match=re.escape("no update for aws-k8s-1.30/any arch")):
        choose_update(manifest, "1.21.0", "aws-k8s-1.30", None)
