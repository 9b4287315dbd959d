"""Publishing: quickstart, publish, plan, failures that leave the repo untouched, maintenance,
tough rules on every written file, python-tuf ngclient interop, continuing a tough-made repo."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from repo_tool.core.instant import NANOS_PER_SECOND, parse_instant
from repo_tool.core.manifest import Manifest
from repo_tool.core.readiness import update_ready
from repo_tool.signing.signers import role_signers
from repo_tool.storage.base import LocalStorage
from repo_tool.trust.rules import write_problems
from repo_tool.trust.verifier import load_repo

from .clirun import Runner, assert_one_line_error
from .conftest import UPSTREAM
from .repohelpers import (
    ARCH,
    QS,
    VARIANT,
    make_quickstart,
    olpc_canonical,
    serve_directory,
    tough_repo_with_infra_toml,
    tough_rule_violations,
    tree_state,
    write_images,
)

DAY = 86400 * NANOS_PER_SECOND
TOUGH = UPSTREAM / "tough"


def trusted_load(qs: QS, now: int | None = None) -> Any:
    from repo_tool.cli.common import now_ns

    return load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), now or now_ns())


# --- quickstart ------------------------------------------------------------------------


def test_quickstart_json_and_layout(run: Runner, tmp_path: Path) -> None:
    result = run("quickstart", str(tmp_path / "q"), "--json")
    assert result.code == 0, result.err
    info = result.json()
    assert {"config", "root", "metadata_dir", "targets_dir", "variant", "arch", "versions"} <= set(info)
    assert info["versions"] == ["1.0.0", "1.1.0"]
    meta = Path(info["metadata_dir"])
    assert sorted(p.name for p in meta.iterdir()) == [
        "1.root.json", "1.snapshot.json", "1.targets.json", "2.snapshot.json", "2.targets.json", "timestamp.json"
    ]
    for key in Path(info["directory"], "keys").iterdir():
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (meta / "1.root.json").read_bytes() == Path(info["root"]).read_bytes()
    qs = QS(Path(info["directory"]))
    manifest = Manifest.from_bytes(json.dumps(qs.manifest()).encode())
    assert [str(u.version) for u in manifest.updates] == ["1.0.0", "1.1.0"]
    assert {str(k[0]): v for k, v in manifest.migrations.items()} == {"1.0.0": ["migrate_v1.1.0_sample-settings.lz4"]}
    listed = qs.newest("targets")["signed"]["targets"]
    for name in manifest.target_names():
        entry = listed[name]
        stored = qs.targets / f"{entry['hashes']['sha256']}.{name}"
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == entry["hashes"]["sha256"]
        assert stored.stat().st_size == entry["length"]
    # A second quickstart into the same directory is refused.
    assert_one_line_error(run("quickstart", str(tmp_path / "q")), 2, "not empty")


# --- tough rules on every written file ---------------------------------------------------


def test_every_file_written_obeys_the_tough_rules(qs: QS, run: Runner, tmp_path: Path) -> None:
    assert run("rollout", "pause", *qs.args()).code == 0
    assert run("rollout", "resume", *qs.args()).code == 0
    assert run("refresh", *qs.args()).code == 0
    assert run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0"))).code == 0
    root = json.loads(qs.root.read_bytes())["signed"]
    files = sorted(qs.meta.iterdir())
    assert len(files) >= 12
    for path in files:
        role = path.name.split(".")[-2]
        raw = path.read_bytes()
        assert tough_rule_violations(raw, role) == [], path.name
        assert write_problems(raw, role, None if role == "root" else root) == [], path.name
        # Every signature verifies over canonical(signed) as an independent writer makes it.
        doc = json.loads(raw)
        keys = doc["signed"]["keys"] if role == "root" else root["keys"]
        for sig in doc["signatures"]:
            public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[sig["keyid"]]["keyval"]["public"]))
            public.verify(bytes.fromhex(sig["sig"]), olpc_canonical(doc["signed"]))


# --- publish and plan ------------------------------------------------------------------------


def test_publish_adds_release_and_plan_writes_nothing(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    before = tree_state(qs.dir)
    planned = run("publish", *qs.args("--version", "v1.2.0", *images, "--plan", "--json"))
    assert planned.code == 0, planned.err
    assert tree_state(qs.dir) == before
    plan = planned.json()
    assert plan["planned_only"] is True and plan["versions"] == {"targets": 3, "snapshot": 3, "timestamp": 3}
    assert {t["name"] for t in plan["targets_added"]} >= {Path(a).name for a in images[1:6:2]}
    assert plan["manifest_changed"] is True and len(plan["waves"]) == 7
    text = run("publish", *qs.args("--version", "1.2.0", *images, "--plan"))
    assert "+      \"version\": \"1.2.0\"," in text.out and "targets to add:" in text.out

    done = run("publish", *qs.args("--version", "1.2.0", *images, "--json"))
    assert done.code == 0, done.err
    assert done.json()["written"][-1] == "timestamp.json"
    repo = trusted_load(qs)
    assert (repo.targets.version, repo.snapshot.version, repo.timestamp.version) == (3, 3, 3)
    manifest = qs.manifest()
    assert manifest["updates"][-1]["version"] == "1.2.0"
    assert all(u["max_version"] == "1.2.0" for u in manifest["updates"])
    # Publishing the same version with the same files again is a no-op (a rerun); with other
    # files it is refused.  Nothing changes either way.
    state = tree_state(qs.dir)
    again = run("publish", *qs.args("--version", "1.2.0", *images))
    assert again.code == 0 and "1.2.0 is already published with these files; nothing to do" in again.err
    assert tree_state(qs.dir) == state
    other = list(images)
    other[other.index("--boot-image") + 1] = images[images.index("--root-image") + 1]
    assert_one_line_error(run("publish", *qs.args("--version", "1.2.0", *other)), 2, "1.2.0 already exists")
    assert tree_state(qs.dir) == state


def test_existing_targets_are_kept_verbatim_and_not_rehashed(qs: QS, run: Runner, tmp_path: Path) -> None:
    old = qs.newest("targets")["signed"]["targets"]
    assert run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "i", "1.2.0"))).code == 0
    new = qs.newest("targets")["signed"]["targets"]
    for name, entry in old.items():
        if name != "manifest.json":
            assert new[name] == entry


def test_release_start_time_and_wave_policy(qs: QS, run: Runner, tmp_path: Path) -> None:
    result = run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "i", "1.2.0"),
                                     "--wave-policy", "accelerated", "--release-start-time",
                                     "2030-01-01T00:00:00Z", "--json"))
    assert result.code == 0, result.err
    assert result.json()["waves"] == {
        "0": "2030-01-01T01:00:00Z", "61": "2030-01-01T04:00:00Z", "245": "2030-01-01T08:00:00Z",
        "819": "2030-01-01T16:00:00Z", "1638": "2030-01-02T00:00:00Z",
    }


# --- failures leave the repo exactly as it was ------------------------------------------------


def _config_with(qs: QS, old: str, new: str) -> None:
    text = qs.config.read_text()
    assert old in text
    qs.config.write_text(text.replace(old, new))


@pytest.mark.parametrize("case", ["bad-image", "missing-key", "threshold", "wrong-root", "unsafe-name"])
def test_failed_publish_leaves_repo_untouched(case: str, qs: QS, run: Runner, tmp_path: Path,
                                              template: QS) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    needle = {"bad-image": "no-such.lz4", "missing-key": "keys/targets.pem",
              "threshold": "0 of the 1 required", "wrong-root": "signature threshold not met",
              "unsafe-name": "not a safe name"}[case]
    code = 2
    if case == "bad-image":
        images[1] = str(tmp_path / "no-such.lz4")
    elif case == "missing-key":
        (qs.dir / "keys" / "targets.pem").unlink()
    elif case == "threshold":
        _config_with(qs, "targets: [keys/targets.pem]", "targets: [keys/snapshot.pem]")
        code = 1
    elif case == "wrong-root":
        other = make_quickstart(tmp_path / "other")
        _config_with(qs, "root: root.json", f"root: {other.root}")
        code = 1
    elif case == "unsafe-name":
        bad = tmp_path / "img" / "bad name.lz4"
        bad.write_bytes(b"x")
        images[1] = str(bad)
    before = tree_state(qs.dir / "repo")
    result = run("publish", *qs.args("--version", "1.2.0", *images))
    assert_one_line_error(result, code, needle)
    assert tree_state(qs.dir / "repo") == before


def test_expired_live_repo_is_refused_unless_allowed(qs: QS, run: Runner, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from repo_tool.cli import publish_cmd

    later = trusted_load(qs).timestamp.expires + 1
    monkeypatch.setattr(publish_cmd, "now_ns", lambda: later)
    images = write_images(tmp_path / "img", "1.2.0")
    before = tree_state(qs.dir / "repo")
    result = run("publish", *qs.args("--version", "1.2.0", *images))
    assert_one_line_error(result, 1, "timestamp metadata expired", "--allow-expired")
    assert tree_state(qs.dir / "repo") == before
    refreshed = run("refresh", *qs.args("--unsafe"))
    assert refreshed.code == 0, refreshed.err
    assert trusted_load(qs, later).timestamp.expires > later


def test_init_is_explicit(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    assert_one_line_error(run("publish", *qs.args("--version", "1.2.0", *images, "--init")), 2,
                          "already initialised")
    shutil.rmtree(qs.dir / "repo")
    assert_one_line_error(run("publish", *qs.args("--version", "1.2.0", *images)), 1,
                          "timestamp.json not found", "--init")
    assert not (qs.dir / "repo" / "metadata" / VARIANT).exists() or not any(qs.meta.iterdir())
    assert run("publish", *qs.args("--version", "1.2.0", *images, "--init")).code == 0
    assert trusted_load(qs).targets.version == 1


def test_concurrent_publisher_loses_cleanly(qs: QS, tmp_path: Path) -> None:
    from repo_tool.config import load_config
    from repo_tool.publish.live import Write
    from repo_tool.publish.load import Location
    from repo_tool.publish.maintenance import refresh
    from repo_tool.storage.base import ConflictError

    location = Location.of(load_config(qs.config, None), VARIANT, ARCH)
    from repo_tool.cli.common import now_ns
    from repo_tool.publish.editor import RepoEditor, write_plan
    from repo_tool.publish.load import load_live

    now = now_ns()
    loaded = load_live(location, now)
    first = RepoEditor(loaded.root, loaded.repo).build(role_signers(location.config), now,
                                                       location.config.expirations, now, location.meta)
    refresh(location, now + NANOS_PER_SECOND, Write())  # another publisher wins
    state = tree_state(qs.meta)
    with pytest.raises(ConflictError, match="already exists with other content"):
        write_plan(first, location.meta, location.targets)
    assert tree_state(qs.meta) == state


# --- maintenance ------------------------------------------------------------------------------


def test_rollout_pause_resume_halt_reschedule(qs: QS, run: Runner) -> None:
    from repo_tool.cli.common import now_ns

    def waves() -> dict[int, int]:
        update = qs.manifest()["updates"][-1]
        return {int(k): parse_instant(v) for k, v in update["waves"].items()}

    original = waves()
    assert run("rollout", "pause", *qs.args()).code == 0
    paused = waves()
    later = now_ns() + 30 * DAY
    assert not update_ready(paused, 1000, later) and update_ready(original, 1000, later)
    assert update_ready(paused, 0, later)  # seed 0 (Initial) cannot be held back: upstream quirk
    custom = qs.newest("targets")["signed"]["targets"]["manifest.json"]["custom"]
    assert "repo-tool" in custom
    assert_one_line_error(run("rollout", "pause", *qs.args()), 2, "already paused")
    assert run("rollout", "resume", *qs.args()).code == 0
    resumed = waves()
    shift = {resumed[k] - original[k] for k in original}
    assert len(shift) == 1 and 0 <= shift.pop() < 60 * NANOS_PER_SECOND
    assert "custom" not in qs.newest("targets")["signed"]["targets"]["manifest.json"]
    assert run("rollout", "halt", *qs.args("--version", "1.1.0")).code == 0
    assert not update_ready(waves(), 2047, later)
    assert run("rollout", "reschedule", *qs.args("--wave-policy", "ohno")).code == 0
    assert update_ready(waves(), 2047, now_ns() + DAY)
    assert trusted_load(qs).targets.version == 6


def test_set_max_version_and_remove_update(qs: QS, run: Runner) -> None:
    assert run("set-max-version", *qs.args("--max-version", "1.0.0")).code == 0
    assert {u["max_version"] for u in qs.manifest()["updates"]} == {"1.0.0"}
    removed = run("remove-update", *qs.args("--version", "1.1.0"))
    assert removed.code == 0, removed.err
    assert [u["version"] for u in qs.manifest()["updates"]] == ["1.0.0"]
    # The pulled release's images stay listed and stored (additive repository).
    assert any("1.1.0" in name for name in qs.newest("targets")["signed"]["targets"])
    assert_one_line_error(run("remove-update", *qs.args("--version", "9.9.9")), 2, "no update")


def test_refresh_bumps_versions_and_keeps_targets(qs: QS, run: Runner) -> None:
    before = qs.newest("targets")["signed"]["targets"]
    result = run("refresh", *qs.args("--json"))
    assert result.code == 0, result.err
    assert result.json()["versions"] == {"targets": 3, "snapshot": 3, "timestamp": 3}
    assert qs.newest("targets")["signed"]["targets"] == before


def test_pubsys_unix_second_versions_are_continued(qs: QS, run: Runner) -> None:
    """A repo whose versions are UNIX seconds (pubsys) gets version + 1, not 1 or now."""
    from repo_tool.cli.common import now_ns
    from repo_tool.config import load_config
    from repo_tool.publish.editor import RepoEditor, write_plan
    from repo_tool.publish.load import Location, load_live

    location = Location.of(load_config(qs.config, None), VARIANT, ARCH)
    loaded = load_live(location, now_ns())
    assert loaded.repo is not None
    loaded.repo.targets.signed["version"] = 1589485577
    loaded.repo.snapshot.signed["version"] = 1589485577
    loaded.repo.timestamp.signed["version"] = 1589485577
    editor = RepoEditor(loaded.root, loaded.repo)
    plan = editor.build(role_signers(location.config), now_ns(), location.config.expirations)
    write_plan(plan, location.meta, location.targets)
    assert trusted_load(qs).timestamp.version == 1589485578
    assert run("refresh", *qs.args()).code == 0
    repo = trusted_load(qs)
    assert (repo.targets.version, repo.snapshot.version, repo.timestamp.version) == (1589485579,) * 3


# --- many repos in one run -------------------------------------------------------------------------


def test_publish_release_many_repos_shared_targets_once(qs: QS, run: Runner, tmp_path: Path) -> None:
    shared = tmp_path / "migrate_v1.2.0_shared.lz4"
    shared.write_bytes(lz4.frame.compress(b"migration"))
    entries = []
    for variant, arch in ((VARIANT, "aarch64"), ("aws-ecs-2", "x86_64")):
        imgs = write_images(tmp_path / variant / arch, "1.2.0", variant, arch)
        entries.append({"variant": variant, "arch": arch, "boot_image": imgs[1], "root_image": imgs[3],
                        "hash_image": imgs[5], "copy_targets": [str(shared)]})
    release = tmp_path / "release.yaml"
    import yaml

    release.write_text(yaml.safe_dump({"version": "1.2.0", "config": str(qs.config), "repos": entries}))
    planned = run("publish-release", str(release), "--plan", "--init", "--json")
    assert planned.code == 0, planned.err
    assert not (qs.dir / "repo" / "metadata" / "aws-ecs-2").exists()
    done = run("publish-release", str(release), "--init", "--json")
    assert done.code == 0, done.err
    results = done.json()["repos"]
    written = [name for r in results for name in r["written"] if "migrate_v1.2.0_shared" in name]
    assert len(written) == 1
    for variant, arch in ((VARIANT, "aarch64"), ("aws-ecs-2", "x86_64")):
        repo = load_repo(LocalStorage(qs.dir / "repo" / "metadata" / variant / arch), qs.root.read_bytes(),
                         parse_instant("2026-01-01T00:00:00Z"))
        assert "migrate_v1.2.0_shared.lz4" in repo.targets.signed["targets"]
    # One bad entry: nothing at all is written.
    entries.append({"variant": "aws-dev", "arch": "x86_64", "boot_image": "nope", "root_image": "nope",
                    "hash_image": "nope"})
    release.write_text(yaml.safe_dump({"version": "1.3.0", "config": str(qs.config), "repos": entries}))
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("publish-release", str(release)), 2, "nope")
    assert tree_state(qs.dir / "repo") == before


# --- python-tuf's ngclient reads what we publish ----------------------------------------------------


@pytest.fixture
def served(qs: QS) -> Iterator[str]:
    with serve_directory(qs.dir / "repo") as url:
        yield url


def test_ngclient_reads_manifest_and_images(qs: QS, served: str, tmp_path: Path, run: Runner) -> None:
    from tuf.ngclient import Updater

    assert run("rollout", "pause", *qs.args()).code == 0  # a repo that went through several edits
    cache, downloads = tmp_path / "cache", tmp_path / "dl"
    cache.mkdir()
    downloads.mkdir()
    updater = Updater(
        metadata_dir=str(cache),
        metadata_base_url=f"{served}/metadata/{VARIANT}/{ARCH}/",
        target_base_url=f"{served}/targets/",
        target_dir=str(downloads),
        bootstrap=qs.root.read_bytes(),
    )
    updater.refresh()
    manifest = updater.get_targetinfo("manifest.json")
    assert manifest is not None
    data = Path(updater.download_target(manifest)).read_bytes()
    images = json.loads(data)["updates"][-1]["images"]
    for kind in ("boot", "root", "hash"):
        info = updater.get_targetinfo(images[kind])
        assert info is not None
        path = Path(updater.download_target(info))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info.hashes["sha256"]
        assert lz4.frame.decompress(path.read_bytes()).startswith(b"bottlerocket sample")


# --- continuing a repository made by tough ------------------------------------------------------------


def test_continue_tough_consistent_snapshots_repo(run: Runner, tmp_path: Path) -> None:
    source = TOUGH / "consistent-snapshots"
    key = tmp_path / "snakeoil.pem"  # a private key file must be 0600; the fixture is read-only 0444
    shutil.copyfile(TOUGH / "test-keys" / "snakeoil.pem", key)
    key.chmod(0o600)
    config, meta = tough_repo_with_infra_toml(tmp_path, source, f'{{ file = {{ path = "{key}" }} }}')
    images = write_images(tmp_path / "img", "1.0.0")
    args = ["--config", str(config), "--variant", VARIANT, "--arch", ARCH, "--version", "1.0.0", *images]
    assert_one_line_error(run("publish", *args), 1, "no manifest.json target", "--new-manifest")
    result = run("publish", *args, "--new-manifest")
    assert result.code == 0, result.err
    trusted = (source / "metadata" / "1.root.json").read_bytes()
    repo = load_repo(LocalStorage(meta), trusted, parse_instant("2026-11-21T00:00:00Z"))
    assert (repo.targets.version, repo.snapshot.version, repo.timestamp.version) == (2, 2, 2)
    original = json.loads((source / "metadata" / "1.targets.json").read_bytes())["signed"]
    for name, entry in original["targets"].items():
        assert repo.targets.signed["targets"][name] == entry
    assert repo.targets.signed["delegations"] == {"keys": {}, "roles": []}
    # The old files are untouched, and the key ID of tough's PEM spelling is reused.
    for path in (source / "metadata").iterdir():
        if path.name != "timestamp.json":
            assert (meta / path.name).read_bytes() == path.read_bytes()
    assert {s["keyid"] for s in repo.targets.signatures} == {
        "69f069cf595e3f09cbe99a9f0f82127f7c7d2fde859e30fd5c0f2b4fc9c4a507"
    }
    for path in meta.iterdir():
        if path.name[0] in "2t":
            assert tough_rule_violations(path.read_bytes(), path.name.split(".")[-2]) == []


def test_unsupported_storage_and_env_key(qs: QS, run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config_with(qs, "metadata_url: repo/metadata", "metadata_url: ftp://example/repo")
    assert_one_line_error(run("refresh", *qs.args()), 2, "ftp")
    _config_with(qs, "metadata_url: ftp://example/repo", "metadata_url: repo/metadata")
    monkeypatch.setenv("TS_KEY", (qs.dir / "keys" / "timestamp.pem").read_text())
    _config_with(qs, "timestamp: [keys/timestamp.pem]", "timestamp: [envvar:TS_KEY]")
    assert run("refresh", *qs.args()).code == 0
    monkeypatch.delenv("TS_KEY")
    assert_one_line_error(run("refresh", *qs.args()), 2, "TS_KEY is not set")


def test_keys_are_private(tmp_path: Path) -> None:
    qs = make_quickstart(tmp_path / "q")
    assert stat.S_IMODE(os.stat(qs.dir / "keys").st_mode) == 0o700


# --- review findings: convergence, expiry, missing targets, unpublished roots -------------------


def test_rerun_converges_after_a_failure_before_timestamp(qs: QS, run: Runner, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish that dies after V.targets.json/V.snapshot.json but before timestamp.json leaves
    orphans no client reads; the next run skips their versions instead of failing."""
    from repo_tool.storage.base import StorageError

    images = write_images(tmp_path / "img", "1.2.0")

    def broken_swap(self: LocalStorage, name: str, data: bytes, expected: bytes | None) -> None:
        raise StorageError(f"{name}: disk full (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(LocalStorage, "swap", broken_swap)
        assert_one_line_error(run("publish", *qs.args("--version", "1.2.0", *images, "--json")), 1, "disk full")
    assert (qs.meta / "3.targets.json").exists()
    assert trusted_load(qs).targets.version == 2  # clients still see the old, valid repo
    result = run("publish", *qs.args("--version", "1.2.0", *images, "--json"))
    assert result.code == 0, result.err
    assert result.json()["versions"] == {"targets": 4, "snapshot": 4, "timestamp": 3}
    repo = trusted_load(qs)
    assert (repo.targets.version, repo.timestamp.version) == (4, 3)


def test_already_expired_metadata_is_never_written(qs: QS, run: Runner, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from repo_tool.config import RepoConfig

    images = write_images(tmp_path / "img", "1.2.0")
    before = tree_state(qs.dir / "repo")
    args = qs.args("--version", "1.2.0", *images, "--release-start-time", "2020-01-01T00:00:00Z")
    assert_one_line_error(run("publish", *args), 2, "would expire", "a later start")  # the input, named
    real = RepoConfig.expirations_from
    monkeypatch.setattr(RepoConfig, "expirations_from", lambda self, start, *rest: real(self, start))
    assert_one_line_error(run("publish", *args), 1, "would be expired already")  # the self-check, still there
    assert tree_state(qs.dir / "repo") == before


def test_manifest_must_not_name_unlisted_targets(qs: QS, run: Runner, tmp_path: Path) -> None:
    release = tmp_path / "Release.toml"
    release.write_text('version = "1.2.0"\n[migrations]\n"(1.1.0, 1.2.0)" = ["migrate_v1.2.0_missing.lz4"]\n')
    images = write_images(tmp_path / "img", "1.2.0")
    result = run("publish", *qs.args("--version", "1.2.0", *images, "--release-config", str(release)))
    assert_one_line_error(result, 2, "migrate_v1.2.0_missing.lz4", "--copy-target")


def test_unpublished_trusted_root_must_chain_from_the_published_one(qs: QS, run: Runner, tmp_path: Path) -> None:
    rogue = tmp_path / "2.root.json"
    rogue.write_bytes(qs.root.read_bytes())
    assert run("root", "bump-version", str(rogue)).code == 0
    assert run("root", "sign", str(rogue), "-k", str(qs.dir / "keys" / "root.pem")).code == 0
    _config_with(qs, "root: root.json", f"root: {rogue}")
    # v2 is signed by its own (unchanged) root key, which v1 also lists: a valid rotation.
    assert run("refresh", *qs.args()).code == 0
    assert (qs.meta / "2.root.json").read_bytes() == rogue.read_bytes()
    # A different v2 than the published one is refused.
    other = tmp_path / "other-2.root.json"
    other.write_bytes(rogue.read_bytes())
    assert run("root", "expire", str(other), "in 40 weeks").code == 0
    assert run("root", "sign", str(other), "-k", str(qs.dir / "keys" / "root.pem")).code == 0
    _config_with(qs, f"root: {rogue}", f"root: {other}")
    assert_one_line_error(run("refresh", *qs.args()), 1, "differs from the trusted root")


def test_spaced_hex_signature_is_refused(qs: QS) -> None:
    from repo_tool.trust.verifier import verify_trusted_root

    doc = json.loads(qs.root.read_bytes())
    sig = doc["signatures"][0]["sig"]
    doc["signatures"][0]["sig"] = " ".join(sig[i:i + 2] for i in range(0, len(sig), 2))
    with pytest.raises(Exception, match="not hex"):
        verify_trusted_root(json.dumps(doc).encode(), "root.json")


def test_plan_loads_every_key_signs_nothing_and_fails_where_the_run_would(qs: QS, run: Runner,
                                                                         tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    before = tree_state(qs.dir)
    planned = run("publish", *qs.args("--version", "1.2.0", *images, "--plan", "--json"))
    assert planned.code == 0, planned.err
    assert planned.json()["signed"] is False
    assert tree_state(qs.dir) == before
    shutil.rmtree(qs.dir / "keys")  # a plan needs the keys the run needs (it used to say "would publish")
    before = tree_state(qs.dir)
    plan = run("publish", *qs.args("--version", "1.2.0", *images, "--plan", "--json"))
    assert_one_line_error(plan, 2, "keys/")
    assert plan.err == run("publish", *qs.args("--version", "1.2.0", *images)).err
    assert tree_state(qs.dir) == before


def test_kms_source_errors_name_the_key(qs: QS, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without AWS credentials/endpoint the KMS call fails: one line naming the key and the call."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    _config_with(qs, "timestamp: [keys/timestamp.pem]", "timestamp: ['aws-kms:///alias/ts']")
    assert_one_line_error(run("refresh", *qs.args("--json")), 1, "aws-kms:///alias/ts", "GetPublicKey")
