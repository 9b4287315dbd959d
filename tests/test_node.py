"""The node client end to end: a quickstart repo served over HTTP on 127.0.0.1, a GPT disk
image made by ``node make-disk``, and updog's commands run through the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import lz4.frame
import pytest

from repo_tool.config import load_config
from repo_tool.core.gptprio import Flags
from repo_tool.core.manifest import Manifest
from repo_tool.core.selection import Host, select
from repo_tool.core.semver import Version
from repo_tool.node import updog as node
from repo_tool.node.gpt import Disk
from repo_tool.publish.live import Write
from repo_tool.publish.load import Location
from repo_tool.publish.maintenance import edit_manifest
from repo_tool.trust.verifier import ExpiredError
from tests.clirun import Runner
from tests.repohelpers import ARCH, QS, VARIANT, make_quickstart, serve_directory, write_node_config

MIB = 1 << 20
NOT_BOOTABLE = Flags(priority=0, tries_left=0, successful=False)
ACTIVE_AT_START = Flags(priority=1, tries_left=0, successful=True)


@dataclass
class Node:
    dir: Path
    qs: QS
    url: str
    log: list[str]
    run: Runner

    @property
    def disk(self) -> Path:
        return self.dir / "disk.img"

    @property
    def updog_toml(self) -> Path:
        return self.dir / "updog.toml"

    def configure(self, seed: int = 0, version_lock: str = "latest", ignore_waves: bool = False,
                  current: str = "1.0.0") -> None:
        write_node_config(self.dir, f"{self.url}/metadata/{VARIANT}/{ARCH}/", f"{self.url}/targets/", seed,
                          version_lock, ignore_waves, current)

    def paths(self, **extra: Any) -> node.NodePaths:
        return node.NodePaths(config=self.updog_toml, trusted_root=self.qs.root, os_release=self.dir / "os-release",
                              disk=self.disk, metadata_cache=self.dir / "cache",
                              migrations_dir=self.dir / "migrations", reboot_command=("true",), arch=ARCH, **extra)

    def __call__(self, *args: str, state: bool = False) -> Any:
        extra = ["--state-dir", str(self.dir / "state")] if state else []
        return self.run("node", "--config", str(self.updog_toml), "--trusted-root", str(self.qs.root),
                        "--os-release", str(self.dir / "os-release"), "--disk", str(self.disk),
                        "--metadata-cache", str(self.dir / "cache"), "--migrations-dir", str(self.dir / "migrations"),
                        "--reboot-command", "true", "--arch", ARCH, *extra, *args)

    def flags(self) -> tuple[Flags, Flags]:
        disk = Disk.open(self.disk)
        return disk.flags("A"), disk.flags("B")

    def target_path(self, name: str) -> Path:
        entry = self.qs.newest("targets")["signed"]["targets"][name]
        return self.qs.targets / f"{entry['hashes']['sha256']}.{name}"


@pytest.fixture
def served(tmp_path: Path, run: Runner) -> Iterator[Node]:
    qs = make_quickstart(tmp_path / "qs")
    log: list[str] = []
    with serve_directory(qs.dir / "repo", log) as url:
        n = Node(tmp_path, qs, url, log, run)
        n.configure()
        made = run("node", "make-disk", str(n.disk), "--boot-size", "4MiB", "--root-size", "16MiB",
                   "--hash-size", "1MiB", "--private-size", "1MiB")
        assert made.code == 0, made.err
        yield n


def _decompressed(n: Node, name: str) -> bytes:
    data: bytes = lz4.frame.decompress(n.target_path(name).read_bytes())
    return data


def _partition_bytes(n: Node, set_name: str, kind: str, length: int) -> bytes:
    part = getattr(Disk.open(n.disk).sets[set_name], kind)  # type: ignore[index]
    with n.disk.open("rb") as handle:
        handle.seek(part.offset)
        return handle.read(length)


def _images(n: Node, version: str) -> dict[str, str]:
    update = next(u for u in n.qs.manifest()["updates"] if u["version"] == version)
    images: dict[str, str] = update["images"]
    return images


def _query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(path).query, keep_blank_values=True)


# --- the happy path ----------------------------------------------------------------------


def test_update_stages_applies_and_reverts_like_signpost(served: Node) -> None:
    n = served
    check = n("check-update", "-n")
    assert (check.code, check.out) == (0, f"{VARIANT} 1.1.0\n"), check.err
    done = n("update", "--ignore-waves")
    assert done.code == 0, done.err
    assert done.out == f"Update applied: {VARIANT} 1.1.0\n"
    assert "Starting update to 1.1.0" in done.err

    # The inactive set holds exactly the decompressed images; set A is untouched.
    for kind, name in _images(n, "1.1.0").items():
        expected = _decompressed(n, name)
        assert _partition_bytes(n, "B", kind, len(expected)) == expected, kind
        assert _partition_bytes(n, "A", kind, 4096) == bytes(4096), kind
    a, b = n.flags()
    assert b == Flags(priority=2, tries_left=1, successful=False)
    assert a == Flags(priority=1, tries_left=0, successful=True)
    status = n("status", "--json")
    assert status.code == 0, status.err
    report = status.json()
    assert (report["active"], report["next"]) == ("A", "B")
    assert report["sets"]["B"] == {**report["sets"]["B"], "priority": 2, "tries_left": 1, "successful": False}
    root_b = report["sets"]["B"]["partitions"]["root"]
    assert root_b["size"] == 16 * MIB and root_b["offset"] % MIB == 0

    # Migrations and the manifest are cached as <sha256>.<name>; metadata under versioned names.
    cached = sorted(p.name for p in (n.dir / "migrations").iterdir())
    manifest_sha = n.target_path("manifest.json").name.split(".")[0]
    assert f"{manifest_sha}.manifest.json" in cached
    assert any(name.endswith(".migrate_v1.1.0_sample-settings.lz4") for name in cached)
    assert {"1.root.json", "timestamp.json"} <= {p.name for p in (n.dir / "cache").iterdir()}

    # updog's query parameters: seed and version always; target and migrations on image downloads.
    ts = next(p for p in n.log if p.startswith(f"/metadata/{VARIANT}/{ARCH}/timestamp.json"))
    assert urlparse(ts).query == "seed=0&version=1.0.0"
    root_image = next(p for p in n.log if _images(n, "1.1.0")["root"] in p)
    assert urlparse(root_image).query == (
        "migrations=migrate_v1.1.0_sample-settings.lz4%2Cmanifest.json&seed=0&target=1.1.0&version=1.0.0"
    )

    reverted = n("update-revert")
    assert (reverted.code, reverted.out) == (0, ""), reverted.err
    a, b = n.flags()
    assert b == Flags(priority=0, tries_left=1, successful=False)
    assert a == Flags(priority=2, tries_left=0, successful=True)
    assert n("status", "--json").json()["next"] == "A"


def test_boot_cycle_and_rollback(served: Node) -> None:
    """update, GRUB boots B (tries_left 1 -> 0), B marks itself good; then signpost's rollback."""
    n = served
    assert n("update", "-n").code == 0
    booted = n("boot")
    assert booted.out.startswith("GRUB boots set B")
    assert n("--active-set", "B", "mark-successful-boot").code == 0
    report = n("--active-set", "B", "status", "--json").json()
    assert (report["active"], report["next"], report["ever_booted"]) == ("B", "B", True)
    assert report["sets"]["B"]["successful"] is True and report["sets"]["B"]["tries_left"] == 0
    assert n("--active-set", "B", "rollback-to-inactive").code == 0
    report = n("--active-set", "B", "status", "--json").json()
    assert report["next"] == "A"
    assert (report["sets"]["A"]["priority"], report["sets"]["B"]["priority"]) == (2, 1)


def test_update_image_then_apply(served: Node) -> None:
    n = served
    staged = n("update-image", "-n", "--json")
    assert staged.code == 0, staged.err
    assert staged.json()["version"] == "1.1.0" and staged.json()["downgrade"] is False
    _, b = n.flags()
    assert b == Flags(priority=0, tries_left=1, successful=False)  # valid, not chosen
    assert n("status", "--json").json()["next"] == "A"
    applied = n("update-apply", "-r")
    assert (applied.code, applied.out) == (0, ""), applied.err
    assert n("status", "--json").json()["next"] == "B"
    again = n("update-apply")
    assert again.code == 1 and "already marked for upgrade" in again.err


def test_second_check_makes_at_most_two_requests(served: Node) -> None:
    n = served
    assert n("check-update", "-n").code == 0
    n.log.clear()
    assert n("check-update", "-n").code == 0
    assert len(n.log) <= 2, n.log
    assert [urlparse(p).path.rsplit("/", 1)[-1] for p in n.log] == ["2.root.json", "timestamp.json"]


def test_json_shapes_and_messages(served: Node) -> None:
    n = served
    one = n("check-update", "-n", "-j")
    assert one.code == 0
    obj = one.json()
    assert list(obj) == ["variant", "arch", "version", "max_version", "waves", "images", "downgrade"]
    assert one.out.endswith("}\n")
    everything = n("whats", "--all", "-n", "--json")
    assert [u["version"] for u in everything.json()] == ["1.1.0", "1.0.0"]
    assert "downgrade" not in everything.json()[0]
    listed = n("whats", "-a", "-n")
    assert listed.out == "" and listed.err.splitlines() == [f"{VARIANT} 1.1.0", f"{VARIANT} 1.0.0"]

    n.configure(current="1.1.0")
    none = n("check-update", "-n")
    assert (none.code, none.out, none.err.strip()) == (1, "", "No update available")
    nothing = n("update", "-n")
    assert (nothing.code, nothing.out, nothing.err.strip()) == (0, "", "No update required")
    down = n("check-update", "-n", "--image", "1.0.0")
    assert down.out == f"{VARIANT} 1.0.0 (downgrade from 1.1.0)\n"
    staged = n("update", "-n", "-i", "1.0.0")
    assert "Starting downgrade to 1.0.0 from 1.1.0" in staged.err
    assert staged.out == f"Update applied: {VARIANT} 1.0.0 (downgrade from 1.1.0)\n"


def test_version_lock_and_variant(served: Node) -> None:
    n = served
    n.configure(version_lock="1.13")
    listed = n("whats", "-a", "-n", "--json")  # updog's list_updates never reads version_lock
    assert listed.code == 0 and [u["version"] for u in listed.json()] == ["1.1.0", "1.0.0"]
    nothing = n("update", "-n", "--variant", "aws-ecs-2")  # the lock is parsed even with nothing applicable
    assert nothing.code == 1 and "Bad version string '1.13' in config" in nothing.err
    n.configure(version_lock="v1.1.0")
    assert n("check-update", "-n").out == f"{VARIANT} 1.1.0\n"
    n.configure(version_lock="1.0.0")
    assert n("check-update", "-n").code == 1
    n.configure(version_lock="1.1")
    bad = n("check-update", "-n")
    assert bad.code == 1 and "Bad version string '1.1' in config" in bad.err
    n.configure()
    other = n("check-update", "-n", "--variant", "aws-ecs-2")
    assert other.code == 1 and "No update available" in other.err


def test_seeds_and_times_choose_what_the_core_says(served: Node) -> None:
    """Every node decision over a spread of seeds and times equals SPEC §8 computed by the core."""
    n = served
    manifest = Manifest.from_bytes(json.dumps(n.qs.manifest()).encode())
    update = next(u for u in manifest.updates if str(u.version) == "1.1.0")
    times = sorted(update.waves.values())
    instants = [times[0] - 1, times[1] + 1, times[-1] + 1]
    seen = set()
    for seed in (0, 1, 100, 500, 1024, 2047):
        n.configure(seed=seed)
        for now in instants:
            expected = select(manifest, Host(VARIANT, ARCH, Version.parse("1.0.0"), seed), now)
            out = node.Output()
            session = node.open_session(n.paths(), node.Flags(), now)
            node.check_update(session, node.Flags(), out)
            got = out.stdout[0].split()[1] if out.stdout else None
            assert got == (str(expected.update.version) if expected.update else None), (seed, now)
            seen.add(got)
    assert seen == {None, "1.1.0"}  # the spread really covers both outcomes


def test_usage_errors_exit_1_with_one_line(served: Node) -> None:
    n = served
    for args, needle in [(("update", "check-update"), "only one command"), (("-t", "update"), "unknown flag '-t'"),
                         (("--log-level", "loud", "status"), "--log-level"),
                         (("frobnicate",), "unknown command"), ((), "no command given"),
                         (("check-update", "--image", "v1.0"), "--image")]:
        result = n(*args)
        assert result.code == 1, args
        assert len(result.err.strip().splitlines()) == 1 and needle in result.err, result.err
        assert "Traceback" not in result.err


def test_global_option_errors_exit_1(served: Node, run: Runner) -> None:
    for args, needle in [(("--active-set", "C", "status"), "--active-set"), (("--reboot-command", "", "status"),
                          "--reboot-command"), (("--config",), "--config")]:
        result = run("node", *args)
        assert result.code == 1 and len(result.err.strip().splitlines()) == 1 and needle in result.err, result.err
    assert served("--log-level", "DEBUG", "status").code == 0


def test_disk_commands_need_no_network(served: Node) -> None:
    n = served
    n.updog_toml.write_text("not toml at all [")
    assert n("update-apply").code == 1  # InactiveNotValid: nothing staged, but no network or config needed
    assert "has not been marked valid for upgrade" in n("update-apply").err
    assert n("update-revert").code == 0
    assert n("prepare").code == 0
    assert n("status").out.splitlines()[-1] == "Next: Set A"


# --- attacks: each refused with a clear error, nothing made bootable ----------------------


def _assert_nothing_bootable(n: Node) -> None:
    a, b = n.flags()
    assert a == ACTIVE_AT_START
    assert not b.will_boot
    assert n("status", "--json").json()["next"] == "A"


def _fails(n: Node, *needles: str, args: tuple[str, ...] = ("update", "-n"), state: bool = False) -> None:
    result = n(*args, state=state)
    assert result.code == 1, result.out
    lines = result.err.strip().splitlines()
    assert lines and lines[-1].startswith("repo-tool: error: "), result.err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    assert "Traceback" not in result.err
    _assert_nothing_bootable(n)


def test_tampered_image_byte(served: Node) -> None:
    path = served.target_path(_images(served, "1.1.0")["boot"])
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _fails(served, "boot image", "SHA-256 mismatch")
    assert "Starting update to 1.1.0" in served("update", "-n").err  # shown before the failure
    _, b = served.flags()
    assert b == NOT_BOOTABLE  # cleared before the first byte was written


def test_longer_image(served: Node) -> None:
    path = served.target_path(_images(served, "1.1.0")["hash"])
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + b"\0" * 100)
    _fails(served, "root.verity.lz4", f"exceeds the {size}-byte limit")


def test_shorter_image(served: Node) -> None:
    path = served.target_path(_images(served, "1.1.0")["root"])
    path.write_bytes(path.read_bytes()[:-100])
    _fails(served, "root image", "bytes")


def test_missing_image_object(served: Node) -> None:
    served.target_path(_images(served, "1.1.0")["root"]).unlink()
    _fails(served, "root image", "not found")


def test_partition_too_small(served: Node) -> None:
    served.disk.unlink()
    assert served("make-disk", str(served.disk), "--root-size", "4MiB", "--boot-size", "4MiB",
                  "--hash-size", "1MiB", "--private-size", "1MiB").code == 0
    _fails(served, "partition too small")


def test_manifest_naming_an_unlisted_target(served: Node) -> None:
    n = served
    location = Location.of(load_config(n.qs.config, None, None), VARIANT, ARCH)

    def point_at_missing(manifest: Manifest) -> list[str]:
        update = next(u for u in manifest.updates if str(u.version) == "1.1.0")
        update.images.root = "not-a-target-root.ext4.lz4"
        return []

    edit_manifest(location, time.time_ns(), Write(), point_at_missing)
    _fails(n, "'not-a-target-root.ext4.lz4' is not listed")


def test_tampered_metadata_is_refused(served: Node) -> None:
    n = served
    targets_v = n.qs.newest("snapshot")["signed"]["meta"]["targets.json"]["version"]
    path = n.qs.meta / f"{targets_v}.targets.json"
    raw = path.read_bytes()
    expires = json.loads(raw)["signed"]["expires"].encode()
    path.write_bytes(raw.replace(expires, b"2999" + expires[4:]))  # same length, other bytes
    _fails(n, f"{targets_v}.targets.json", "sha256 does not match")


@pytest.mark.parametrize("role", ["snapshot", "targets"])
def test_replayed_older_role_file(served: Node, role: str) -> None:
    """An older, validly signed snapshot or targets file served under the newest name (a replay /
    mix-and-match): the listing's sha256 in the newer parent refuses it."""
    n = served
    parent = "timestamp" if role == "snapshot" else "snapshot"
    version = n.qs.newest(parent)["signed"]["meta"][f"{role}.json"]["version"]
    (n.qs.meta / f"{version}.{role}.json").write_bytes((n.qs.meta / f"{version - 1}.{role}.json").read_bytes())
    _fails(n, f"{version}.{role}.json", "does not match")


def test_signatures_below_threshold(served: Node) -> None:
    path = served.qs.meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    doc["signatures"] = []
    path.write_text(json.dumps(doc))
    _fails(served, "threshold not met for role timestamp")


def test_endless_data(served: Node) -> None:
    path = served.qs.meta / "timestamp.json"
    path.write_bytes(path.read_bytes() + b" " * (1 << 20))
    _fails(served, "timestamp.json", "limit")


def test_expired_timestamp_freeze(served: Node) -> None:
    n = served
    expires = n.qs.newest("timestamp")["signed"]["expires"]
    from repo_tool.core.instant import parse_instant
    with pytest.raises(ExpiredError, match="timestamp metadata expired"):
        node.open_session(n.paths(), node.Flags(), parse_instant(expires) + 1)


def test_rollback_refused_with_a_state_dir(served: Node) -> None:
    """updog keeps no state, so a replayed older timestamp is accepted by it; with --state-dir the
    node remembers the newest timestamp and refuses the replay."""
    n = served
    old = (n.qs.meta / "timestamp.json").read_bytes()
    assert n("check-update", "-n", state=True).code == 0
    refreshed = n.run("refresh", "--config", str(n.qs.config), "--variant", VARIANT, "--arch", ARCH)
    assert refreshed.code == 0, refreshed.err
    assert n("check-update", "-n", state=True).code == 0
    (n.qs.meta / "timestamp.json").write_bytes(old)
    _fails(n, "older than the trusted version", args=("update", "-n"), state=True)
    assert n("check-update", "-n").code == 0  # updog behaviour without the opt-in store


def _rotate_timestamp_key(n: Node) -> Path:
    """Publish root 2, which replaces the timestamp key; returns 2.root.json."""
    new_ts = n.dir / "new-timestamp.pem"
    assert n.run("keys", "generate", str(new_ts)).code == 0
    new_root = n.dir / "2.root.json"
    new_root.write_bytes(n.qs.root.read_bytes())
    old_id = json.loads(n.qs.root.read_bytes())["signed"]["roles"]["timestamp"]["keyids"][0]
    for args in (("root", "bump-version", str(new_root)), ("root", "remove-key", str(new_root), old_id),
                 ("root", "add-key", str(new_root), "-k", str(new_ts), "-r", "timestamp"),
                 ("root", "sign", str(new_root), "-k", str(n.qs.dir / "keys" / "root.pem"))):
        assert n.run(*args).code == 0, args
    n.qs.config.write_text(n.qs.config.read_text().replace("timestamp: [keys/timestamp.pem]", f"timestamp: [{new_ts}]"))
    rotated = n.run("refresh", "--config", str(n.qs.config), "--variant", VARIANT, "--arch", ARCH,
                    "--root-role", str(new_root))
    assert rotated.code == 0, rotated.err
    return new_root


def test_rotated_out_timestamp_key(served: Node) -> None:
    """Root 2 replaces the timestamp key; a timestamp signed by the old key is then refused."""
    n = served
    old_ts = (n.qs.meta / "timestamp.json").read_bytes()
    _rotate_timestamp_key(n)
    assert n("check-update", "-n").code == 0
    (n.qs.meta / "timestamp.json").write_bytes(old_ts)
    _fails(n, "timestamp.json", "threshold not met for role timestamp")


def test_update_caches_the_whole_root_chain(served: Node) -> None:
    """A node shipped with root 2 still caches 1.root.json for the migrator (updog copies 1..N)."""
    n = served
    new_root = _rotate_timestamp_key(n)
    n.qs.root.write_bytes(new_root.read_bytes())  # the node now ships root 2
    assert n("update", "-n").code == 0
    cached = {p.name for p in (n.dir / "cache").iterdir()}
    assert {"1.root.json", "2.root.json", "timestamp.json"} <= cached
    assert (n.dir / "cache" / "1.root.json").read_bytes() == (n.qs.meta / "1.root.json").read_bytes()


def test_checks_leave_updogs_cache_alone(served: Node) -> None:
    """The migrator reads the metadata cache after the reboot: a later check must not move it."""
    n = served
    assert n("update-image", "-n").code == 0
    cache = n.dir / "cache"
    before = {p.name: p.read_bytes() for p in cache.iterdir() if p.is_file()}
    assert n.run("refresh", "--config", str(n.qs.config), "--variant", VARIANT, "--arch", ARCH).code == 0
    assert n("whats", "--all", "-n", "--json").code == 0
    assert {p.name: p.read_bytes() for p in cache.iterdir() if p.is_file()} == before


def test_sha256_of_staged_partition_matches_manifest_images(served: Node) -> None:
    """The bytes updog writes are the decompression of exactly the listed target (length and sha256)."""
    n = served
    assert n("update", "-n").code == 0
    name = _images(n, "1.1.0")["root"]
    entry = n.qs.newest("targets")["signed"]["targets"][name]
    raw = n.target_path(name).read_bytes()
    assert len(raw) == entry["length"] and hashlib.sha256(raw).hexdigest() == entry["hashes"]["sha256"]


@pytest.fixture
def loop_device(served: Node) -> Iterator[str]:
    """``served``'s disk image attached as a real block device (needs root and losetup)."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("a loop device needs root and losetup")
    attached = subprocess.run(["losetup", "-f", "--show", str(served.disk)], capture_output=True, text=True,
                              check=False)
    if attached.returncode != 0:
        pytest.skip(f"losetup cannot attach here: {attached.stderr.strip()}")
    device = attached.stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_staging_into_a_block_device(served: Node, loop_device: str) -> None:
    """The same update on a real block device (BLKSSZGET, no truncation, fsync of the device); a
    device that does not hold the running system is written only when --active-set names the
    running set."""
    n = served

    def node_on_device(*args: str) -> Any:
        return n.run("node", "--config", str(n.updog_toml), "--trusted-root", str(n.qs.root), "--os-release",
                     str(n.dir / "os-release"), "--disk", loop_device, "--metadata-cache", str(n.dir / "cache"),
                     "--migrations-dir", str(n.dir / "migrations"), "--arch", ARCH, *args)

    refused = node_on_device("update", "-n")
    assert refused.code == 1 and "pass --active-set A|B" in refused.err
    done = node_on_device("--active-set", "A", "update", "-n")
    assert done.code == 0, done.err
    report = node_on_device("--active-set", "A", "status", "--json").json()
    assert (report["active"], report["next"]) == ("A", "B")
    for kind, name in _images(n, "1.1.0").items():
        expected = _decompressed(n, name)
        assert _partition_bytes(n, "B", kind, len(expected)) == expected, kind  # read back through the file
