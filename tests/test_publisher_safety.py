"""Publisher safety: never publish what nodes cannot install, and a plan that sees what the run sees.

Driven through the CLI against a real quickstart repository (local; the moto S3 server where
storage matters).  Each test failed on the code before the publisher-safety change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import lz4.frame
import pytest

from repo_tool.core.manifest import Manifest
from repo_tool.core.selection import find_migrations
from repo_tool.core.semver import Version
from repo_tool.publish.quickstart import MIGRATION
from tests.clirun import Run, Runner, assert_one_line_error
from tests.repohelpers import ARCH, QS, VARIANT, tree_state, write_images
from tests.test_s3 import S3Repo, repo  # noqa: F401  (the S3 repository fixture)

pytest_plugins = ["tests.motoserver"]

V = Version.parse


def _manifest(qs: QS) -> Manifest:
    return Manifest.from_bytes(json.dumps(qs.manifest()))


def _release(path: Path, version: str, steps: dict[str, list[str]]) -> Path:
    lines = "".join(f'"{key}" = {json.dumps(names)}\n' for key, names in steps.items())
    path.write_text(f'version = "{version}"\n\n[migrations]\n{lines}')
    return path


# --- the migration chain is a publish invariant ----------------------------------------------------------


@pytest.mark.parametrize("plan", [False, True])
def test_a_release_nodes_cannot_reach_is_refused_and_nothing_is_written(qs: QS, run: Runner, tmp_path: Path,
                                                                       plan: bool) -> None:
    images = write_images(tmp_path / "img", "1.2.1", after=None)  # a Release.toml without the new step
    before = tree_state(qs.dir / "repo")
    result = run("publish", *qs.args("--version", "1.2.1", *images, *(["--plan"] if plan else [])))
    assert_one_line_error(result, 2, "1.1.0 and 1.2.1 are not connected", '"(1.1.0, 1.2.1)" = []',
                          "--release-config", "(and 1 more pair(s))")
    assert tree_state(qs.dir / "repo") == before
    # Without any Release.toml at all: the same refusal.
    bare = [a for a in images if not a.endswith("Release.toml") and a != "--release-config"]
    assert_one_line_error(run("publish", *qs.args("--version", "1.2.1", *bare)), 2, '"(1.1.0, 1.2.1)" = []')
    assert tree_state(qs.dir / "repo") == before


def test_release_toml_with_only_the_newest_step_keeps_the_older_steps(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.1", after=None)
    release = _release(tmp_path / "Release.toml", "1.2.1", {"(1.1.0, 1.2.1)": []})  # only the newest step
    result = run("publish", *qs.args("--version", "1.2.1", *images, "--release-config", str(release)))
    assert result.code == 0, result.err
    manifest = _manifest(qs)
    assert manifest.migrations == {(V("1.0.0"), V("1.1.0")): [MIGRATION], (V("1.1.0"), V("1.2.1")): []}
    # Nodes on 1.0.0 still reach 1.2.1 (and come back), running the 1.1.0 migration.
    assert find_migrations(V("1.0.0"), V("1.2.1"), manifest.migrations) == [MIGRATION]
    assert find_migrations(V("1.2.1"), V("1.0.0"), manifest.migrations) == [MIGRATION]
    assert run("audit", *qs.args(), "--targets", "none").code == 0


def test_a_step_listed_again_with_other_migrations_replaces_the_live_one_with_a_warning(
        qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    release = _release(tmp_path / "Release.toml", "1.2.0", {"(1.0.0, 1.1.0)": [], "(1.1.0, 1.2.0)": []})
    result = run("publish", *qs.args("--version", "1.2.0", *images, "--release-config", str(release)))
    assert result.code == 0, result.err
    assert "migration step (1.0.0, 1.1.0) changes from" in result.err and MIGRATION in result.err
    assert _manifest(qs).migrations[(V("1.0.0"), V("1.1.0"))] == []
    # The same list again: no warning.
    again = run("publish", *qs.args("--version", "1.3.0", *write_images(tmp_path / "i3", "1.3.0"),
                                    "--release-config", str(_release(tmp_path / "R3.toml", "1.3.0", {
                                        "(1.0.0, 1.1.0)": [], "(1.2.0, 1.3.0)": []}))))
    assert again.code == 0, again.err
    assert "changes from" not in again.err


def test_release_toml_version_must_be_the_version_published(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.1")
    release = _release(tmp_path / "Release.toml", "9.9.9", {"(1.1.0, 1.2.1)": []})
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("publish", *qs.args("--version", "1.2.1", *images, "--release-config", str(release))),
                          2, str(release), "version is 9.9.9", "1.2.1 (--version)")
    yaml_file = tmp_path / "release.yaml"
    opts = dict(zip(images[::2], images[1::2], strict=True))
    yaml_file.write_text(f"config: {qs.config}\nversion: 1.2.1\nrelease_config: {release}\nrepos:\n"
                         f"  - {{variant: {VARIANT}, arch: {ARCH}, boot_image: {opts['--boot-image']}, "
                         f"root_image: {opts['--root-image']}, hash_image: {opts['--hash-image']}}}\n")
    assert_one_line_error(run("publish-release", str(yaml_file)), 2, "version is 9.9.9", f"{yaml_file}: version")
    assert tree_state(qs.dir / "repo") == before


def test_publish_release_refuses_a_break_in_any_repository(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0", after=None)
    opts = dict(zip(images[::2], images[1::2], strict=True))
    yaml_file = tmp_path / "release.yaml"
    yaml_file.write_text(f"config: {qs.config}\nversion: 1.2.0\nrelease_config: {opts['--release-config']}\n"
                         f"repos:\n  - {{variant: {VARIANT}, arch: {ARCH}, boot_image: {opts['--boot-image']}, "
                         f"root_image: {opts['--root-image']}, hash_image: {opts['--hash-image']}}}\n")
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("publish-release", str(yaml_file)), 2, f"{VARIANT}/{ARCH}", '"(1.1.0, 1.2.0)" = []')
    assert tree_state(qs.dir / "repo") == before


@pytest.fixture
def broken(qs: QS, run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QS:
    """A live repository as an older publisher could leave it: 1.0.0, 1.1.0 and 1.2.0 listed, and only
    the steps (1.0.0, 1.2.0) and (1.1.0, 1.2.0): nodes on 1.0.0 take the shortcut to 1.2.0, but 1.0.0
    and 1.1.0 are not connected."""
    import repo_tool.hashing
    import repo_tool.publish.live

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "merge_migrations", lambda self, m: self.set_migrations(m) or [])
        patch.setattr(repo_tool.publish.live, "check_edit", lambda before, after: type(
            "Check", (), {"caused": [], "existing": []})())
        release = _release(tmp_path / "old.toml", "1.2.0", {"(1.0.0, 1.2.0)": [], "(1.1.0, 1.2.0)": []})
        images = write_images(tmp_path / "img", "1.2.0")
        planted = run("publish", *qs.args("--version", "1.2.0", *images, "--release-config", str(release)))
        assert planted.code == 0, planted.err
    return qs


@pytest.mark.parametrize("pull", [["set-max-version", "--max-version", "1.1.0"],
                                  ["remove-update", "--version", "1.2.0"]])
def test_a_pull_that_would_strand_nodes_is_refused(broken: QS, run: Runner, pull: list[str]) -> None:
    before = tree_state(broken.dir / "repo")
    result = run(pull[0], *broken.args(*pull[1:]))
    assert_one_line_error(result, 2, "1.0.0 and 1.1.0 are not connected", '"(1.0.0, 1.1.0)" = []',
                          "--allow-broken-chain")
    assert tree_state(broken.dir / "repo") == before
    # An emergency pull of a bad release goes through when asked to, saying what it breaks.
    forced = run(pull[0], *broken.args(*pull[1:], "--allow-broken-chain"))
    assert forced.code == 0, forced.err
    assert "migration chain broken by this edit (--allow-broken-chain)" in forced.err


def test_an_existing_break_is_reported_not_blamed_on_an_unrelated_edit(broken: QS, run: Runner) -> None:
    result = run("remove-update", *broken.args("--version", "1.0.0"))
    assert result.code == 0, result.err
    assert "migration chain already broken" in result.err and "1.0.0 and 1.1.0" in result.err


def test_audit_and_manifest_validate_report_a_broken_chain(broken: QS, run: Runner, tmp_path: Path) -> None:
    result = run("audit", *broken.args(), "--targets", "none", "--json")
    assert result.code == 1
    errors = [f["message"] for f in result.json()["findings"] if f["severity"] == "error"]
    assert errors == [f"{VARIANT} {ARCH}: 1.0.0 and 1.1.0 are not connected, so nodes on one cannot update to the "
                      "other: updog's walk from 1.0.0 stops at 1.0.0 (Reached end of migration chain at 1.0.0 but "
                      'target is 1.1.0); missing step: "(1.0.0, 1.1.0)" = [] (with the migrations it needs; [] if '
                      "none)"]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(broken.manifest()))
    assert_one_line_error(run("manifest", "validate", str(path)), 1, "1.0.0 and 1.1.0 are not connected")


def test_a_live_step_that_does_not_go_forward_is_dropped_by_the_next_publish(
        qs: QS, run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older publisher let "(1.1.0, 1.0.5)" into the live manifest: the next publish must repair it
    (with Release.toml replacing the whole map, it used to), not be blocked by it forever."""
    import repo_tool.publish.live

    with monkeypatch.context() as patch:
        patch.setattr(Manifest, "validate", lambda self: None)
        patch.setattr(repo_tool.publish.live, "check_edit", lambda before, after: type(
            "Check", (), {"caused": [], "existing": []})())
        patch.setattr(Manifest, "merge_migrations", lambda self, m: self.migrations.update(m) or [])
        release = _release(tmp_path / "bad.toml", "1.2.0", {"(1.1.0, 1.0.5)": [], "(1.1.0, 1.2.0)": []})
        planted = run("publish", *broken_args(qs, tmp_path, "1.2.0", release))
        assert planted.code == 0, planted.err
    result = run("publish", *qs.args("--version", "1.3.0", *write_images(tmp_path / "i3", "1.3.0")))
    assert result.code == 0, result.err
    assert "(1.1.0, 1.0.5) of the live manifest does not go forward; it is dropped" in result.err
    assert (V("1.1.0"), V("1.0.5")) not in _manifest(qs).migrations


def broken_args(qs: QS, tmp_path: Path, version: str, release: Path) -> list[str]:
    return qs.args("--version", version, *write_images(tmp_path / f"img-{version}", version), "--release-config",
                   str(release))


def test_a_pull_along_a_good_chain_is_fine(qs: QS, run: Runner, tmp_path: Path) -> None:
    assert run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0"))).code == 0
    result = run("set-max-version", *qs.args("--max-version", "1.1.0"))
    assert result.code == 0, result.err
    assert run("remove-update", *qs.args("--version", "1.2.0")).code == 0


def test_a_break_is_refused_on_s3_and_nothing_is_uploaded(repo: S3Repo, run: Runner, tmp_path: Path) -> None:  # noqa: F811
    images = repo.images("1.2.0")
    bare = images[:images.index("--release-config")]
    before = repo.objects()
    assert_one_line_error(run("publish", *repo.args(), *bare), 2, '"(1.1.0, 1.2.0)" = []')
    assert repo.objects() == before
    assert run("publish", *repo.args(), *images).code == 0


# --- rollout: what halt and pause cannot stop ---------------------------------------------------------------


def test_halt_says_the_initial_wave_is_still_offered_and_pause_on_halted_says_halted(qs: QS, run: Runner) -> None:
    halted = run("rollout", "halt", *qs.args())
    assert halted.code == 0, halted.err
    assert "seed 0" in halted.err and "still offered" in halted.err
    assert "set-max-version" in halted.err and "remove-update --version 1.1.0" in halted.err
    assert_one_line_error(run("rollout", "pause", *qs.args()), 2, "is halted", "rollout reschedule")


def test_halt_of_an_update_without_waves_is_refused(qs: QS, run: Runner, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An update without waves (as a hand-made manifest has it) is offered to every host at once."""
    import repo_tool.core.manifest

    with monkeypatch.context() as patch:
        patch.setattr(repo_tool.core.manifest, "policy_to_waves", lambda policy, start: {})
        assert run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0"))).code == 0
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("rollout", "halt", *qs.args()), 2, "has no waves", "cannot hold anyone back",
                          "set-max-version (below 1.2.0) or remove-update --version 1.2.0")
    assert_one_line_error(run("rollout", "pause", *qs.args()), 2, "has no waves", "nothing to pause",
                          "remove-update --version 1.2.0")
    assert tree_state(qs.dir / "repo") == before


# --- --plan sees what the run sees -------------------------------------------------------------------------


def _plan_and_run(qs: QS, run: Runner, tmp_path: Path, *extra: str) -> Run:
    """Publish 1.2.0 with --plan, then for real: both must fail, with the same line, writing nothing."""
    args = qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0"), *extra)
    before = tree_state(qs.dir / "repo")
    plan = run("publish", *args, "--plan")
    assert plan.code != 0 and plan.err == run("publish", *args).err
    assert tree_state(qs.dir / "repo") == before
    return plan


def test_plan_fails_like_the_run_on_a_missing_key(qs: QS, run: Runner, tmp_path: Path) -> None:
    shutil.move(qs.dir / "keys" / "snapshot.pem", tmp_path / "away.pem")
    assert_one_line_error(_plan_and_run(qs, run, tmp_path), 2, "signers.snapshot", "snapshot.pem")


def test_plan_fails_like_the_run_on_a_key_not_in_the_root(qs: QS, run: Runner, tmp_path: Path) -> None:
    # The snapshot key configured for targets: a key the root does not list for targets.
    qs.config.write_text(qs.config.read_text().replace("keys/targets.pem", "keys/snapshot.pem"))
    assert_one_line_error(_plan_and_run(qs, run, tmp_path), 1, "cannot sign targets: 0 of the 1 required keys",
                          "keys/snapshot.pem")


def test_plan_checks_the_keys_against_the_new_root(qs: QS, run: Runner, tmp_path: Path) -> None:
    """A new root (--root-role) that rotates the targets key while the config still has the old one."""
    new_key = tmp_path / "new-targets.pem"
    assert run("keys", "generate", str(new_key)).code == 0
    new_root = tmp_path / "2.root.json"
    shutil.copy(qs.meta / "1.root.json", new_root)
    assert run("root", "bump-version", str(new_root)).code == 0
    old_id = json.loads(new_root.read_bytes())["signed"]["roles"]["targets"]["keyids"][0]
    assert run("root", "remove-key", str(new_root), old_id, "targets").code == 0
    assert run("root", "add-key", str(new_root), "-k", str(new_key), "-r", "targets").code == 0
    assert run("root", "sign", str(new_root), "-k", str(qs.dir / "keys" / "root.pem")).code == 0
    plan = _plan_and_run(qs, run, tmp_path, "--root-role", str(new_root))
    assert_one_line_error(plan, 1, "cannot sign targets: 0 of the 1 required keys")
    qs.config.write_text(qs.config.read_text().replace("keys/targets.pem", str(new_key)))
    args = qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0"), "--root-role", str(new_root))
    assert run("publish", *args, "--plan").code == 0


def test_plan_fails_like_the_run_on_a_wrong_passphrase(qs: QS, run: Runner, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASS", "right")
    encrypted = tmp_path / "timestamp-enc.pem"
    assert run("keys", "generate", str(encrypted), "--passphrase-env", "PASS").code == 0
    root = qs.dir / "next.root.json"
    shutil.copy(qs.meta / "1.root.json", root)
    assert run("root", "bump-version", str(root)).code == 0
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", "right")
    assert run("root", "add-key", str(root), "-k", str(encrypted), "-r", "timestamp").code == 0
    assert run("root", "sign", str(root), "-k", str(qs.dir / "keys" / "root.pem")).code == 0
    config = qs.config.read_text().replace("keys/timestamp.pem", str(encrypted))
    qs.config.write_text(config)
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", "wrong")
    assert_one_line_error(_plan_and_run(qs, run, tmp_path, "--root-role", str(root)), 2, str(encrypted),
                          "passphrase")
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", "right")
    args = qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0"), "--root-role", str(root))
    assert run("publish", *args, "--plan").code == 0


# --- images are checked as nodes will read them -------------------------------------------------------------


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])


@pytest.mark.parametrize("plan", [False, True])
def test_a_truncated_image_is_refused_and_nothing_is_written(qs: QS, run: Runner, tmp_path: Path, plan: bool) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    root_image = Path(images[images.index("--root-image") + 1])
    _truncate(root_image)
    before = tree_state(qs.dir / "repo")
    result = run("publish", *qs.args("--version", "1.2.0", *images, *(["--plan"] if plan else [])))
    assert_one_line_error(result, 1, str(root_image), "truncated LZ4 frame")
    assert tree_state(qs.dir / "repo") == before


def test_migrations_named_by_release_toml_are_checked_other_targets_are_not(qs: QS, run: Runner,
                                                                          tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0", after=None)
    migration = tmp_path / "migrate_v1.2.0_broken.lz4"
    migration.write_bytes(b"#!/bin/sh\nexit 0\n")  # not compressed: the migrator could not decode it
    kit = tmp_path / "aws-k8s-1.28-x86_64-kmod-kit-v1.2.0.tar.xz"
    kit.write_bytes(b"\xfd7zXZ\x00 not an image")
    release = _release(tmp_path / "Release.toml", "1.2.0", {"(1.1.0, 1.2.0)": [migration.name]})
    args = qs.args("--version", "1.2.0", *images, "--release-config", str(release), "--copy-target", str(kit))
    assert_one_line_error(run("publish", *args, "--copy-target", str(migration)), 1, str(migration),
                          "not an LZ4 frame")
    migration.write_bytes(lz4.frame.compress(b"#!/bin/sh\nexit 0\n"))
    result = run("publish", *args, "--copy-target", str(migration))
    assert result.code == 0, result.err


@pytest.fixture
def truncated_live(qs: QS, run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A live release whose root image is a truncated LZ4 frame, as an older publisher let through."""
    import repo_tool.hashing
    import repo_tool.publish.release

    images = write_images(tmp_path / "img", "1.2.0")
    root_image = Path(images[images.index("--root-image") + 1])
    _truncate(root_image)
    original = repo_tool.hashing.hash_files
    with monkeypatch.context() as patch:
        patch.setattr(repo_tool.publish.release, "hash_files",
                      lambda paths, jobs=None, lz4=(), **_: original(paths, jobs))
        assert run("publish", *qs.args("--version", "1.2.0", *images)).code == 0
    return root_image.name


def test_audit_targets_all_decodes_the_images_the_manifest_names(qs: QS, run: Runner, truncated_live: str) -> None:
    result = run("audit", *qs.args(), "--targets", "all", "--json")
    assert result.code == 1
    errors = [f["message"] for f in result.json()["findings"] if f["severity"] == "error"]
    assert len(errors) == 1 and f"target {truncated_live}" in errors[0] and "truncated LZ4 frame" in errors[0]
    assert run("audit", *qs.args(), "--targets", "none").code == 0  # sha256 and length are as listed


def test_audit_on_s3_decodes_what_it_streams(repo: S3Repo, run: Runner, tmp_path: Path,  # noqa: F811
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import repo_tool.hashing
    import repo_tool.publish.release

    images = repo.images("1.2.0")
    root_image = Path(images[images.index("--root-image") + 1])
    _truncate(root_image)
    original = repo_tool.hashing.hash_files
    assert_one_line_error(run("publish", *repo.args(), *images), 1, "truncated LZ4 frame")
    with monkeypatch.context() as patch:
        patch.setattr(repo_tool.publish.release, "hash_files",
                      lambda paths, jobs=None, lz4=(), **_: original(paths, jobs))
        assert run("publish", *repo.args(), *images).code == 0
    result = run("audit", *repo.args(), "--targets", "all", "--json")
    assert result.code == 1
    errors = [f["message"] for f in result.json()["findings"] if f["severity"] == "error"]
    assert len(errors) == 1 and root_image.name in errors[0] and "truncated LZ4 frame" in errors[0]
