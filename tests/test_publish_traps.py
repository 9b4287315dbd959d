"""Small traps of the publishing commands (issue 17): one flag, one meaning (refresh's --allow-expired,
--link-target), publish-release --init beside existing repositories, the start a plan assumes,
pulling every update, expirations on the command line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from repo_tool.cli.common import now_ns
from repo_tool.core.instant import NANOS_PER_SECOND, parse_instant
from repo_tool.localfs import leftover_temp_files
from repo_tool.storage.base import LocalStorage, StorageError
from repo_tool.trust.verifier import read_target

from .clirun import Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT, make_quickstart, tree_state, write_images
from .test_publish import DAY, trusted_load

# --- refresh: --allow-expired, and --unsafe a deprecated alias ----------------------------------


def test_refresh_allow_expired_and_deprecated_unsafe(qs: QS, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    from repo_tool.cli import publish_cmd

    later = trusted_load(qs).timestamp.expires + 1
    monkeypatch.setattr(publish_cmd, "now_ns", lambda: later)
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("refresh", *qs.args()), 1, "expired", "--allow-expired")
    assert tree_state(qs.dir / "repo") == before
    planned = run("refresh", *qs.args("--allow-expired", "--plan"))
    assert planned.code == 0, planned.err
    assert "--unsafe" not in run("refresh", "--help").out  # hidden: one flag, one meaning
    help_text = " ".join(run("refresh", "--help").out.split())
    assert "--allow-expired" in help_text and "only the expiry dates are not" in help_text
    old = run("refresh", *qs.args("--unsafe"))
    assert old.code == 0, old.err
    assert "--unsafe is deprecated" in old.err and "--allow-expired" in old.err
    assert trusted_load(qs, later).timestamp.expires > later


# --- expirations on the command line ------------------------------------------------------------


def test_expires_flags_override_the_config(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    start = "2030-01-01T00:00:00Z"
    planned = run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", start, "--plan", "--json",
                                      "--targets-expires", "in 3 weeks", "--timestamp-expires", "2030-01-02T12:00:00Z"))
    assert planned.code == 0, planned.err
    assert planned.json()["expires"] == {"targets": "2030-01-22T00:00:00Z", "snapshot": "2030-01-15T00:00:00Z",
                                         "timestamp": "2030-01-02T12:00:00Z"}  # snapshot: the config's 2 weeks
    text = run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", start, "--plan",
                                   "--targets-expires", "in 3 weeks"))
    assert "targets: version 3, expires 2030-01-22T00:00:00Z (--targets-expires)" in text.out
    # Every command that signs takes them; a real run writes them.
    refreshed = run("refresh", *qs.args("--snapshot-expires", "2 days", "--json"))
    assert refreshed.code == 0, refreshed.err
    snapshot_expires = parse_instant(qs.newest("snapshot")["signed"]["expires"])
    assert abs(snapshot_expires - (now_ns() + 2 * DAY)) < 60 * NANOS_PER_SECOND
    for command in (["set-max-version", "--max-version", "1.1.0"], ["rollout", "pause"], ["remove-update"]):
        assert "--timestamp-expires" in run(*command, "--help").out
    assert "--targets-expires" in run("publish-release", "--help").out
    # A bad value: one line naming the flag, exit 2, nothing written.
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("refresh", *qs.args("--targets-expires", "soon")), 2, "--targets-expires", "RFC 3339")
    assert_one_line_error(run("refresh", *qs.args("--targets-expires", "2031-13-01T00:00:00Z")), 2,
                          "--targets-expires", "month 13")
    # An instant already past: an input error naming the flag.
    assert_one_line_error(run("refresh", *qs.args("--timestamp-expires", "2001-01-01T00:00:00Z")), 2,
                          "--timestamp-expires 2001-01-01T00:00:00Z is in the past")
    assert tree_state(qs.dir / "repo") == before


# --- the start a plan assumes -------------------------------------------------------------------------


def _manifest_sha(result: dict[str, Any]) -> str:
    return str(next(t["sha256"] for t in result["targets_added"] if t["name"] == "manifest.json"))


def test_plan_shows_its_start_and_a_fixed_start_makes_plan_and_run_agree(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    before = now_ns()
    planned = run("publish", *qs.args("--version", "1.2.0", *images, "--plan", "--json"))
    assert planned.code == 0, planned.err
    plan = planned.json()
    assert before <= parse_instant(plan["start"]) <= now_ns() and plan["start_fixed"] is False
    assert plan["waves_start"] == plan["start"]
    text = run("publish", *qs.args("--version", "1.2.0", *images, "--plan")).out
    start_line = next(line for line in text.splitlines() if line.startswith("start: "))
    assert "the run counts from the time it runs unless --release-start-time gives a time" in start_line
    assert f"set --release-start-time to {start_line.split()[1]} to make it match this plan" in start_line
    # The start the plan shows, given back, makes the run write exactly the planned manifest.
    assumed = plan["start"]
    fixed = run("publish", *qs.args("--version", "1.2.0", *images, "--plan", "--json", "--release-start-time",
                                    assumed)).json()
    assert fixed["start"] == assumed and fixed["start_fixed"] is True
    assert _manifest_sha(fixed) == _manifest_sha(plan)
    done = run("publish", *qs.args("--version", "1.2.0", *images, "--json", "--release-start-time", assumed))
    assert done.code == 0, done.err
    assert _manifest_sha(done.json()) == _manifest_sha(plan)
    assert done.json()["expires"] == plan["expires"]
    # An offset still counts from now: not fixed.
    later = run("rollout", "reschedule", *qs.args("--wave-policy", "ohno", "--start", "in 2 hours", "--plan"))
    assert later.code == 0, later.err
    assert "waves start: " in later.out and "set --start to" in later.out
    pinned = run("rollout", "reschedule", *qs.args("--wave-policy", "ohno", "--start", "2031-01-01T00:00:00Z",
                                                   "--plan", "--json")).json()
    assert pinned["waves_start"] == "2031-01-01T00:00:00Z" and pinned["start_fixed"] is True
    refresh_plan = run("refresh", *qs.args("--plan")).out
    assert "(now: the run counts from the time it runs)" in refresh_plan


# --- pulling every update ------------------------------------------------------------------------------


def test_set_max_version_says_what_it_pulls_and_pulling_all_needs_a_flag(qs: QS, run: Runner) -> None:
    before = tree_state(qs.dir / "repo")
    refused = run("set-max-version", *qs.args("--max-version", "0.1.0"))
    assert_one_line_error(refused, 2, "--max-version 0.1.0 is below every", "1.0.0, 1.1.0", "--allow-pull-all")
    assert_one_line_error(run("set-max-version", *qs.args("--max-version", "0.1.0", "--plan")), 2, "--allow-pull-all")
    assert tree_state(qs.dir / "repo") == before
    one = run("set-max-version", *qs.args("--max-version", "1.0.0", "--json"))
    assert one.code == 0, one.err
    warning = "--max-version 1.0.0 pulls 1 update(s) that were offered (1.1.0): nodes on them are offered 1.0.0"
    assert any(w.startswith(warning) for w in one.json()["warnings"])
    assert f"repo-tool: warning: {warning}" in one.err
    everything = run("set-max-version", *qs.args("--max-version", "0.1.0", "--allow-pull-all"))
    assert everything.code == 0, everything.err
    warned = [line for line in everything.err.splitlines() if "warning" in line]
    assert any("pulls 1 update(s) (1.0.0) and is below every" in w and "offered no update at all" in w
               for w in warned), everything.err
    assert {u["max_version"] for u in qs.manifest()["updates"]} == {"0.1.0"}
    # Raising it again pulls nothing and says nothing about pulls.
    back = run("set-max-version", *qs.args("--max-version", "1.1.0", "--json"))
    assert back.code == 0 and not [w for w in back.json()["warnings"] if "pulls" in w]


# --- publish-release --init beside existing repositories ----------------------------------------


def _release_file(qs: QS, tmp_path: Path, version: str, arches: tuple[str, ...]) -> Path:
    entries = []
    for arch in arches:
        imgs = write_images(tmp_path / arch, version, VARIANT, arch)
        entries.append({"variant": VARIANT, "arch": arch, "boot_image": imgs[1], "root_image": imgs[3],
                        "hash_image": imgs[5]})
    release = tmp_path / "release.yaml"
    release.write_text(yaml.safe_dump({"version": version, "config": str(qs.config), "repos": entries,
                                       "release_config": imgs[7]}))
    return release


def test_publish_release_init_creates_new_arches_and_continues_existing(qs: QS, run: Runner, tmp_path: Path) -> None:
    release = _release_file(qs, tmp_path, "1.2.0", (ARCH, "aarch64"))
    aarch64 = qs.dir / "repo" / "metadata" / VARIANT / "aarch64"
    planned = run("publish-release", str(release), "--init", "--plan")
    assert planned.code == 0, planned.err
    heads = [line for line in planned.out.splitlines() if line.startswith(f"{VARIANT}/")]
    assert heads[0].endswith("): would publish (plan: nothing written or signed)"), heads
    assert heads[1].startswith(f"{VARIANT}/aarch64 ") and heads[1].endswith(
        "): would create the repository and publish (plan: nothing written or signed)"), heads
    assert not aarch64.exists()
    done = run("publish-release", str(release), "--init", "--json")
    assert done.code == 0, done.err
    created = {r["arch"]: r["created"] for r in done.json()["repos"]}
    assert created == {ARCH: False, "aarch64": True}
    assert trusted_load(qs).targets.version == 3  # x86_64 continued
    assert [u["version"] for u in qs.manifest()["updates"]] == ["1.0.0", "1.1.0", "1.2.0"]
    assert (aarch64 / "timestamp.json").exists() and (aarch64 / "1.root.json").exists()
    # Without --init a missing repository is still an error naming the flag.
    again = _release_file(qs, tmp_path / "b", "1.3.0", (ARCH, "arm64e"))
    assert_one_line_error(run("publish-release", str(again)), 1, "arm64e", "--init")


def test_publish_release_init_refuses_a_half_made_repository(qs: QS, run: Runner, tmp_path: Path) -> None:
    release = _release_file(qs, tmp_path, "1.2.0", (ARCH, "aarch64"))
    other = make_quickstart(tmp_path / "other")
    half = qs.dir / "repo" / "metadata" / VARIANT / "aarch64"
    half.mkdir(parents=True)
    shutil.copy(other.root, half / "1.root.json")  # a root of its own, and no timestamp.json
    before = tree_state(qs.dir / "repo")
    result = run("publish-release", str(release), "--init")
    assert_one_line_error(result, 2, "aarch64", "1.root.json exists but timestamp.json does not", "half there")
    assert tree_state(qs.dir / "repo") == before


# --- --link-target: a link, where the storage can hold one ------------------------------------------


def _kit(tmp_path: Path, name: str = "kmod-kit-v1.2.0.tar.xz") -> Path:
    kit = tmp_path / "build" / name
    kit.parent.mkdir(parents=True, exist_ok=True)
    kit.write_bytes(b"kernel module kit\n" * 100)
    kit.chmod(0o644)
    return kit


def test_link_target_is_a_hard_link_and_copy_target_a_copy(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    kit, extra = _kit(tmp_path), _kit(tmp_path, "extra-v1.2.0.tar")
    args = ("--version", "1.2.0", *images, "--link-target", str(kit), "--copy-target", str(extra))
    planned = run("publish", *qs.args(*args, "--plan", "--json"))
    assert planned.code == 0, planned.err
    links = {t["name"]: t["link"] for t in planned.json()["targets_added"]}
    assert links[kit.name] is True and links[extra.name] is False
    assert f"(a link to {kit})" in run("publish", *qs.args(*args, "--plan")).out
    done = run("publish", *qs.args(*args, "--json"))
    assert done.code == 0, done.err
    entry = qs.newest("targets")["signed"]["targets"][kit.name]
    stored = qs.targets / f"{entry['hashes']['sha256']}.{kit.name}"
    assert stored.samefile(kit) and not stored.is_symlink()
    copied = qs.targets / f"{qs.newest('targets')['signed']['targets'][extra.name]['hashes']['sha256']}.{extra.name}"
    assert not copied.samefile(extra)
    assert leftover_temp_files(qs.targets) == []
    # A hard link outlives the build directory: the repository still serves the target.
    data = kit.read_bytes()
    shutil.rmtree(kit.parent)
    assert stored.read_bytes() == data and read_target(trusted_load(qs), LocalStorage(qs.targets), kit.name) == data


def test_link_target_whose_file_changed_after_hashing_is_refused(qs: QS, run: Runner, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from repo_tool import hashing
    from repo_tool.publish import release

    images = write_images(tmp_path / "img", "1.2.0")
    kit = _kit(tmp_path)
    real = hashing.hash_files

    def hash_then_touch(*args: Any, **kwargs: Any) -> Any:
        digests = real(*args, **kwargs)
        kit.write_bytes(kit.read_bytes() + b"rebuilt")
        return digests

    monkeypatch.setattr(release, "hash_files", hash_then_touch)
    before = tree_state(qs.meta)
    result = run("publish", *qs.args("--version", "1.2.0", *images, "--link-target", str(kit), "--json"))
    assert_one_line_error(result, 1, str(kit), "changed after it was hashed")
    assert not [p for p in qs.targets.iterdir() if p.name.endswith(kit.name)]
    assert leftover_temp_files(qs.targets) == []
    assert tree_state(qs.meta) == before


def test_link_file_checks_the_linked_inode_before_the_name_appears(tmp_path: Path) -> None:
    source = _kit(tmp_path)
    store = LocalStorage(tmp_path / "targets")

    def refuse(info: os.stat_result) -> None:
        assert info.st_ino == source.stat().st_ino
        raise StorageError("changed after it was hashed")

    with pytest.raises(StorageError, match="changed after"):
        store.link_file("abc.kit", source, source.stat().st_size, refuse)
    assert list((tmp_path / "targets").iterdir()) == []
    assert store.link_file("abc.kit", source, source.stat().st_size, lambda info: None) is True
    assert store.link_file("abc.kit", source, source.stat().st_size, lambda info: None) is False  # already stored
    assert (tmp_path / "targets" / "abc.kit").samefile(source)


@pytest.mark.parametrize("targets_url", ["s3://bucket/targets/", "https://updates.example.net/targets/"])
def test_link_target_is_refused_where_the_storage_cannot_link(qs: QS, run: Runner, tmp_path: Path,
                                                              targets_url: str) -> None:
    text = qs.config.read_text()
    qs.config.write_text(text.replace("targets_url: ", f"targets_url: {targets_url}  # was: ", 1))
    images = write_images(tmp_path / "img", "1.2.0")
    result = run("publish", *qs.args("--version", "1.2.0", *images, "--link-target", str(_kit(tmp_path)), "--plan"))
    assert_one_line_error(result, 2, "--link-target", targets_url, "cannot hold links", "use --copy-target")


def test_link_target_across_file_systems_is_refused(qs: QS, run: Runner, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to link from")
    kit = shm / f"kit-{os.getpid()}-v1.2.0.tar"
    kit.write_bytes(b"kit")
    try:
        images = write_images(tmp_path / "img", "1.2.0")
        result = run("publish", *qs.args("--version", "1.2.0", *images, "--link-target", str(kit)))
        assert_one_line_error(result, 2, f"--link-target {kit}", "another file system", "use --copy-target")
    finally:
        kit.unlink()
