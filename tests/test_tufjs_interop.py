"""Interoperability: the npm client tuf-js reads a repository written by repo-tool.

A quickstart repository (ed25519 keys, consistent snapshots) is served over HTTP
from this process; ``tests/tufjs/check.mjs`` refreshes its metadata from the
trusted root with tuf-js, then downloads and verifies the named targets.  Skipped
when ``node``/``npm`` are not on PATH; ``tests/tufjs/node_modules`` is installed
from the committed lockfile on first use.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .repohelpers import serve_directory

TUFJS = Path(__file__).resolve().parent / "tufjs"
CHECK = TUFJS / "check.mjs"


@dataclass
class Served:
    """A quickstart repository and the URLs it is served at."""

    quickstart: dict[str, Any]
    metadata_url: str
    targets_url: str
    requests: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return Path(self.quickstart["root"])

    @property
    def metadata_dir(self) -> Path:
        return Path(self.quickstart["metadata_dir"])

    @property
    def targets_dir(self) -> Path:
        return Path(self.quickstart["targets_dir"])

    def newest_targets(self) -> dict[str, Any]:
        """The ``targets`` map of the highest-versioned N.targets.json."""
        versions = [int(p.name.split(".")[0]) for p in self.metadata_dir.glob("*.targets.json")]
        doc = json.loads((self.metadata_dir / f"{max(versions)}.targets.json").read_bytes())
        targets: dict[str, Any] = doc["signed"]["targets"]
        return targets

    def stored(self, name: str) -> Path:
        """The object in targets_dir that the newest targets metadata lists for ``name``."""
        sha256 = self.newest_targets()[name]["hashes"]["sha256"]
        return self.targets_dir / f"{sha256}.{name}"


@dataclass
class Check:
    code: int
    out: dict[str, Any]
    stderr: str
    downloads: Path


@pytest.fixture(scope="session")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("tuf-js interop needs node and npm on PATH")
    if not (TUFJS / "node_modules" / "tuf-js" / "package.json").is_file():
        install = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TUFJS,
                                 capture_output=True, text=True, check=False)
        if install.returncode != 0:
            pytest.fail(f"npm ci in {TUFJS} failed:\n{install.stdout}{install.stderr}")
    return node


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Served]:
    made = subprocess.run([sys.executable, "-m", "repo_tool", "quickstart", str(tmp_path / "qs"), "--json"],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    quickstart: dict[str, Any] = json.loads(made.stdout)
    requests: list[str] = []
    with serve_directory(Path(quickstart["metadata_dir"]), requests) as metadata_url, \
            serve_directory(Path(quickstart["targets_dir"]), requests) as targets_url:
        yield Served(quickstart, metadata_url, targets_url, requests)


def check(node: str, repo: Served, work: Path, *names: str) -> Check:
    result = subprocess.run([node, str(CHECK), repo.metadata_url, repo.targets_url, str(repo.root), str(work), *names],
                            capture_output=True, text=True, timeout=60, check=False)
    lines = result.stdout.splitlines()
    assert lines, f"check.mjs printed nothing (exit {result.returncode}):\n{result.stderr}"
    return Check(result.returncode, json.loads(lines[-1]), result.stderr, work / "targets")


def test_manifest_downloads_and_matches_the_stored_object(node: str, repo: Served, tmp_path: Path) -> None:
    stored = repo.stored("manifest.json")
    result = check(node, repo, tmp_path / "client", "manifest.json")
    assert result.code == 0, result.stderr
    data = stored.read_bytes()
    assert result.out == {"ok": True, "targets": {"manifest.json": {
        "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}}}
    assert (result.downloads / "manifest.json").read_bytes() == data
    # Consistent snapshot: the target was fetched by its hash-prefixed name.
    assert f"/{stored.name}" in repo.requests


def test_newest_release_images_download_and_verify(node: str, repo: Served, tmp_path: Path) -> None:
    manifest = json.loads(repo.stored("manifest.json").read_bytes())
    newest = manifest["updates"][-1]
    assert newest["version"] == repo.quickstart["versions"][-1]
    images = [newest["images"][kind] for kind in ("boot", "root", "hash")]
    result = check(node, repo, tmp_path / "client", *images)
    assert result.code == 0, result.stderr
    listed = repo.newest_targets()
    assert result.out["ok"] is True
    assert result.out["targets"] == {name: {"length": listed[name]["length"],
                                            "sha256": listed[name]["hashes"]["sha256"]} for name in images}
    for name in images:
        assert (result.downloads / quote(name, safe="")).read_bytes() == repo.stored(name).read_bytes()


def test_tampered_manifest_is_refused(node: str, repo: Served, tmp_path: Path) -> None:
    stored = repo.stored("manifest.json")
    listed = repo.newest_targets()["manifest.json"]["hashes"]["sha256"]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    result = check(node, repo, tmp_path / "client", "manifest.json")
    assert result.code != 0
    # Refresh succeeded (metadata untouched); the download itself was refused.
    assert result.out["ok"] is False and result.out["target"] == "manifest.json", result.out
    assert result.out["error"].startswith(f"LengthOrHashMismatchError: Expected hash {listed} but got "), result.out
    assert not (result.downloads / "manifest.json").exists()
