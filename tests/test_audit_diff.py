"""``repo-tool audit-diff``: a copy of the quickstart's metadata (OLD) against the repository after real
CLI edits (NEW) names exactly the changes made: refresh, rollout and max_version edits, a root
rotation, a publish with migrations; failures are one-line errors with the project's exit codes."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import lz4.frame
import pytest

from repo_tool.audit.diff import diff_manifests
from repo_tool.core.manifest import Manifest
from repo_tool.core.semver import Version

from .clirun import Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT, make_quickstart, serve_directory

FAR_FUTURE = 4_000_000_000 * 1_000_000_000  # 2096


@pytest.fixture
def old(qs: QS, tmp_path: Path) -> Path:
    """The metadata as it was before the test changes the repository."""
    return Path(shutil.copytree(qs.meta, tmp_path / "old"))


def audit(run: Runner, qs: QS, old: Path | str, *extra: str) -> dict[str, Any]:
    result = run("audit-diff", str(old), str(qs.meta), "--targets-url", str(qs.targets), "--json", *extra)
    assert result.code == 0, result.err
    data: dict[str, Any] = result.json()
    return data


def changed_roles(data: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {r["role"]: (r["old"]["version"], r["new"]["version"]) for r in data["roles"] if r["changed"]}


def versions(qs: QS) -> dict[str, int]:
    return {role: qs.newest(role)["signed"]["version"] for role in ("timestamp", "snapshot", "targets")}


NO_MANIFEST_CHANGES: dict[str, Any] = {
    "updates_added": [], "updates_removed": [], "waves_changed": [], "max_version_changed": [],
    "migrations_added": {}, "migrations_removed": {}, "migrations_changed": {},
}


def test_identical_snapshots_have_no_changes(run: Runner, qs: QS, old: Path) -> None:
    data = audit(run, qs, old)
    assert data["changed"] is False
    assert changed_roles(data) == {}
    assert [r["role"] for r in data["roles"]] == ["root", "timestamp", "snapshot", "targets"]
    assert data["roots"] == {"added": [], "removed": [], "differ": []}
    assert data["targets"] == {"added": {}, "removed": {}, "changed": {}}
    assert data["manifest"]["compared"] is True and data["manifest"]["changes"] == NO_MANIFEST_CHANGES
    for side, path in (("old", old), ("new", qs.meta)):
        assert data[side]["anchor_is_own_root"] is True
        assert data[side]["anchor"] == str(path / "1.root.json")
        assert data[side]["root_versions"] == [1] and data[side]["expired"] == []
    text = run("audit-diff", str(old), str(qs.meta), "--targets-url", str(qs.targets))
    assert text.code == 0, text.err
    assert text.out.count("the snapshot's own root") == 2
    assert text.out.rstrip().endswith("no changes") and "manifest: unchanged" in text.out


def test_refresh_changes_only_versions_and_expiries(run: Runner, qs: QS, old: Path) -> None:
    before = versions(qs)
    assert run("refresh", *qs.args()).code == 0
    data = audit(run, qs, old)
    after = versions(qs)
    assert changed_roles(data) == {role: (before[role], after[role]) for role in before}
    assert all(after[role] == before[role] + 1 for role in before)
    assert data["roots"]["added"] == [] and data["targets"] == {"added": {}, "removed": {}, "changed": {}}
    assert data["manifest"]["changes"] == NO_MANIFEST_CHANGES
    targets = next(r for r in data["roles"] if r["role"] == "targets")
    assert targets["new"]["expires"] == qs.newest("targets")["signed"]["expires"]
    assert data["changed"] is True


def test_rollout_pause_and_max_version(run: Runner, qs: QS, old: Path) -> None:
    manifest_before = qs.manifest()
    assert run("rollout", "pause", *qs.args()).code == 0
    assert run("set-max-version", *qs.args("--max-version", "1.0.0")).code == 0
    manifest_after = qs.manifest()
    data = audit(run, qs, old)
    changes = data["manifest"]["changes"]
    assert changes["updates_added"] == [] and changes["updates_removed"] == []
    # Only the newest update had waves to pause; both updates' max_version went 1.1.0 -> 1.0.0.
    paused = next(u for u in manifest_after["updates"] if u["version"] == "1.1.0")
    was = next(u for u in manifest_before["updates"] if u["version"] == "1.1.0")
    assert changes["waves_changed"] == [
        {"variant": VARIANT, "arch": ARCH, "version": "1.1.0", "old": was["waves"], "new": paused["waves"]}]
    assert changes["max_version_changed"] == [
        {"variant": VARIANT, "arch": ARCH, "version": v, "old": "1.1.0", "new": "1.0.0"} for v in ("1.0.0", "1.1.0")]
    assert changes["migrations_added"] == {} and changes["migrations_removed"] == {}
    # The one target that changed is manifest.json (bytes, and the pause marker in its custom data).
    assert list(data["targets"]["changed"]) == ["manifest.json"]
    entry = qs.newest("targets")["signed"]["targets"]["manifest.json"]
    new = data["targets"]["changed"]["manifest.json"]["new"]
    assert new == {"length": entry["length"], "sha256": entry["hashes"]["sha256"], "custom": entry["custom"]}
    assert data["targets"]["added"] == {} and data["targets"]["removed"] == {}
    text = run("audit-diff", str(old), str(qs.meta), "--targets-url", str(qs.targets)).out
    assert f"~ waves of {VARIANT} {ARCH} 1.1.0:" in text
    assert f"~ max_version of {VARIANT} {ARCH} 1.0.0: 1.1.0 -> 1.0.0" in text
    assert "~ manifest.json: length" in text and "custom none -> {" in text


def test_root_rotation_with_new_keys_and_threshold(run: Runner, qs: QS, old: Path, tmp_path: Path) -> None:
    keys = [tmp_path / "root-a.pem", tmp_path / "root-b.pem"]
    for key in keys:
        assert run("keys", "generate", str(key)).code == 0
    new_root = tmp_path / "2.root.json"
    new_root.write_bytes(qs.root.read_bytes())
    assert run("root", "bump-version", str(new_root), "--expires", "in 52 weeks").code == 0
    old_signed = json.loads(qs.root.read_bytes())["signed"]
    old_root_id = old_signed["roles"]["root"]["keyids"][0]
    assert run("root", "remove-key", str(new_root), old_root_id).code == 0
    added = run("root", "add-key", str(new_root), "-k", str(keys[0]), "-k", str(keys[1]), "-r", "root")
    assert added.code == 0, added.err
    assert run("root", "set-threshold", str(new_root), "root", "2").code == 0
    assert run("root", "sign", str(new_root), "-k", str(keys[0]), "-k", str(keys[1])).code == 0
    assert run("root", "cross-sign", str(new_root), "--old-root", str(qs.root), "-k",
               str(qs.dir / "keys" / "root.pem")).code == 0
    before = versions(qs)
    assert run("refresh", *qs.args("--root-role", str(new_root))).code == 0

    data = audit(run, qs, old, "--root", str(qs.root))
    new_signed = json.loads(new_root.read_bytes())["signed"]
    new_ids = sorted(set(new_signed["roles"]["root"]["keyids"]))
    assert len(new_ids) == 2 and old_root_id not in new_ids
    assert data["roots"] == {
        "added": [{
            "version": 2,
            "expires": new_signed["expires"],
            "compared_with": 1,
            "keys_added": {"root": [{"keyid": k, "keytype": "ed25519", "scheme": "ed25519"} for k in new_ids]},
            "keys_removed": {"root": [{"keyid": old_root_id, "keytype": "ed25519", "scheme": "ed25519"}]},
            "thresholds": {"root": {"old": 1, "new": 2}},
        }],
        "removed": [], "differ": [],
    }
    assert changed_roles(data) == {"root": (1, 2), **{role: (v, v + 1) for role, v in before.items()}}
    for side in ("old", "new"):
        assert data[side]["anchor"] == str(qs.root) and data[side]["anchor_is_own_root"] is False
    assert data["old"]["root_versions"] == [1] and data["new"]["root_versions"] == [1, 2]
    assert data["targets"] == {"added": {}, "removed": {}, "changed": {}}
    assert data["manifest"]["changes"] == NO_MANIFEST_CHANGES
    # Anchored in each snapshot's own root, the chain and the rotation read the same.
    own = audit(run, qs, old)
    assert own["roots"] == data["roots"] and own["new"]["anchor_is_own_root"] is True
    text = run("audit-diff", str(old), str(qs.meta), "--root", str(qs.root)).out
    assert "+ root v2" in text and "root: threshold 1 -> 2" in text
    assert f"root: - key {old_root_id} (ed25519, ed25519)" in text
    assert all(f"root: + key {k} (ed25519, ed25519)" in text for k in new_ids)
    assert "the snapshot's own root" not in text and "manifest: not compared (no --targets-url)" in text


def write_images(directory: Path, version: str) -> tuple[list[str], list[str]]:
    """(publish arguments, target names) of a release's three images."""
    directory.mkdir(parents=True, exist_ok=True)
    args, names = [], []
    for kind, suffix in (("boot", "boot.ext4.lz4"), ("root", "root.ext4.lz4"), ("hash", "root.verity.lz4")):
        path = directory / f"bottlerocket-{VARIANT}-{ARCH}-{version}-0123abc-{suffix}"
        path.write_bytes(lz4.frame.compress(f"{kind} {version}\n".encode() * 1000))
        args += [f"--{kind}-image", str(path)]
        names.append(path.name)
    return args, names


def test_publish_of_a_new_version(run: Runner, qs: QS, old: Path, tmp_path: Path) -> None:
    args, names = write_images(tmp_path / "img", "1.2.0")
    migration = tmp_path / "migrate_v1.2.0_audit.lz4"
    migration.write_bytes(lz4.frame.compress(b"#!/bin/sh\nexit 0\n"))
    release = tmp_path / "Release.toml"  # its step joins the manifest's: (1.0.0, 1.1.0) stays
    release.write_text(f'version = "1.2.0"\n[migrations]\n"(1.1.0, 1.2.0)" = ["{migration.name}"]\n')
    published = run("publish", *qs.args("--version", "1.2.0", *args, "--release-config", str(release),
                                        "--copy-target", str(migration)))
    assert published.code == 0, published.err
    data = audit(run, qs, old)
    listed = qs.newest("targets")["signed"]["targets"]
    assert sorted(data["targets"]["added"]) == sorted([*names, migration.name])
    for name, entry in data["targets"]["added"].items():
        assert entry == {"length": listed[name]["length"], "sha256": listed[name]["hashes"]["sha256"],
                         "custom": listed[name].get("custom")}
    assert list(data["targets"]["changed"]) == ["manifest.json"] and data["targets"]["removed"] == {}
    assert data["manifest"]["changes"] == {
        "updates_added": [{"variant": VARIANT, "arch": ARCH, "version": "1.2.0"}],
        "updates_removed": [],
        "waves_changed": [],
        "max_version_changed": [{"variant": VARIANT, "arch": ARCH, "version": v, "old": "1.1.0", "new": "1.2.0"}
                                for v in ("1.0.0", "1.1.0")],
        "migrations_added": {"(1.1.0, 1.2.0)": [migration.name]},
        "migrations_removed": {},
        "migrations_changed": {},
    }
    assert data["roots"]["added"] == [] and "root" not in changed_roles(data)
    text = run("audit-diff", str(old), str(qs.meta), "--targets-url", str(qs.targets)).out
    assert f"+ update {VARIANT} {ARCH} 1.2.0" in text
    assert f"+ migration (1.1.0, 1.2.0): {migration.name}" in text
    assert "- migration" not in text
    assert "targets: 4 added, 0 removed, 1 changed" in text
    assert all(f"  + {name} (" in text for name in names)


def test_metadata_only_without_targets_url(run: Runner, qs: QS, old: Path) -> None:
    assert run("rollout", "pause", *qs.args()).code == 0
    result = run("audit-diff", str(old), str(qs.meta), "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["manifest"] == {"compared": False, "old_note": "not compared (no --targets-url)",
                                "new_note": "not compared (no --targets-url)", "changes": None}
    assert list(data["targets"]["changed"]) == ["manifest.json"]
    text = run("audit-diff", str(old), str(qs.meta)).out
    assert "manifest: not compared (no --targets-url); only metadata was compared" in text


def test_expired_snapshots_are_still_compared(run: Runner, qs: QS, old: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    assert run("refresh", *qs.args()).code == 0
    # (repo_tool.cli.audit_diff_cmd as an attribute path is the click command, not the module)
    monkeypatch.setattr(importlib.import_module("repo_tool.cli.audit_diff_cmd"), "now_ns", lambda: FAR_FUTURE)
    data = audit(run, qs, old)
    for side in ("old", "new"):
        assert data[side]["expired"] == ["root", "snapshot", "targets", "timestamp"]
    assert set(changed_roles(data)) == {"timestamp", "snapshot", "targets"}
    text = run("audit-diff", str(old), str(qs.meta)).out
    assert "OLD expired: root, snapshot, targets, timestamp" in text


def test_http_snapshot(run: Runner, qs: QS, old: Path) -> None:
    assert run("set-max-version", *qs.args("--max-version", "1.0.0")).code == 0
    local = audit(run, qs, old)
    with serve_directory(old) as url:
        data = audit(run, qs, url + "/")
    assert data["old"]["metadata_url"] == url + "/" and data["old"]["anchor"] == f"{url}/1.root.json"
    for key in ("roles", "roots", "targets", "manifest"):
        assert data[key] == local[key]


def test_verification_failures_exit_one(run: Runner, qs: QS, old: Path, tmp_path: Path) -> None:
    # A tampered snapshot: the error names the side.
    snapshot = qs.meta / f"{versions(qs)['snapshot']}.snapshot.json"
    doc = json.loads(snapshot.read_bytes())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"
    snapshot.write_text(json.dumps(doc))
    assert_one_line_error(run("audit-diff", str(old), str(qs.meta)), 1, "NEW", str(qs.meta.resolve()))
    # Another repository's root does not anchor this one.
    other = make_quickstart(tmp_path / "other")
    assert_one_line_error(run("audit-diff", str(old), str(old), "--root", str(other.root)), 1, "OLD")


def test_usage_errors_exit_two(run: Runner, qs: QS, old: Path, tmp_path: Path) -> None:
    assert_one_line_error(run("audit-diff", str(old), str(tmp_path / "missing")), 2, "NEW", "not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run("audit-diff", str(empty), str(old)), 2, "OLD", "1.root.json", "--root")
    assert_one_line_error(run("audit-diff", str(old), str(old), "--root", str(tmp_path / "nope.json")), 2,
                          "--root")
    assert_one_line_error(run("audit-diff", str(old), "ftp://example.com/x"), 2, "ftp")
    assert run("audit-diff", str(old)).code == 2


def test_manifest_diff_is_pure_and_keyed_by_update() -> None:
    def manifest(migrations: str, max_version: str) -> Manifest:
        return Manifest.from_bytes(json.dumps({
            "updates": [{"variant": VARIANT, "arch": ARCH, "version": "1.0.0", "max_version": max_version,
                         "waves": {"100": "2030-01-01T00:00:00Z"},
                         "images": {"boot": "b", "root": "r", "hash": "h"}}],
            "migrations": {"(1.0.0, 1.1.0)": [migrations]},
        }))

    result = diff_manifests(manifest("a", "1.0.0"), manifest("b", "1.1.0"))
    assert result.to_json()["migrations_changed"] == {"(1.0.0, 1.1.0)": {"old": ["a"], "new": ["b"]}}
    assert [(u.version, old, new) for u, old, new in result.max_versions] == [(Version.parse("1.0.0"), "1.0.0",
                                                                                "1.1.0")]
    assert diff_manifests(manifest("a", "1.0.0"), manifest("a", "1.0.0")).changed is False
