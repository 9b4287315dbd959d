"""Keys and the root lifecycle: generate, init, add/remove keys, thresholds, offline signing in
turns, rotation by cross-signing and publishing the new root, verification against tough fixtures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from repo_tool.config import load_config, load_expiration_policy
from repo_tool.core.instant import NANOS_PER_SECOND
from repo_tool.signing.keyfiles import load_private_pem
from repo_tool.storage.base import LocalStorage
from repo_tool.trust.keys import keyid_of
from repo_tool.trust.tufjson import canonical
from repo_tool.trust.verifier import load_repo

from .clirun import Runner, assert_one_line_error
from .conftest import BOTTLEROCKET, UPSTREAM
from .repohelpers import ARCH, VARIANT, make_quickstart, tough_rule_violations

TOUGH = UPSTREAM / "tough"


@pytest.mark.parametrize(("keytype", "expected"), [
    ("ed25519", ("ed25519", "ed25519")),
    ("ecdsa", ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256")),
    ("rsa", ("rsa", "rsassa-pss-sha256")),
])
def test_keys_generate(keytype: str, expected: tuple[str, str], run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    result = run("keys", "generate", str(path), "--type", keytype, "--json")
    assert result.code == 0, result.err
    info = result.json()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (info["key"]["keytype"], info["key"]["scheme"]) == expected
    assert info["keyid"] == keyid_of(info["key"])
    assert set(info["key"]) == {"keytype", "scheme", "keyval"}
    if keytype == "rsa":
        private = load_private_pem(path.read_bytes(), "k")
        assert private.public_key().key_size == 3072  # type: ignore[union-attr]
    # Plain output is just the key ID; an existing key is never overwritten.
    assert_one_line_error(run("keys", "generate", str(path)), 2, "already exists")


def test_encrypted_key_needs_passphrase(run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASS", "s3cret")
    path = tmp_path / "enc.pem"
    assert run("keys", "generate", str(path), "--passphrase-env", "PASS").code == 0
    assert b"ENCRYPTED" in path.read_bytes()
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    assert_one_line_error(run("root", "add-key", str(root), "-k", str(path), "-r", "root"), 2,
                          "encrypted", "REPO_TOOL_KEY_PASSPHRASE")
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", "s3cret")
    assert run("root", "add-key", str(root), "-k", str(path), "-r", "root").code == 0


def _make_root(run: Runner, tmp_path: Path, name: str, keys: dict[str, Path], threshold: int = 1) -> Path:
    root = tmp_path / name
    assert run("root", "init", str(root), "--expires", "in 52 weeks").code == 0
    for role in ("root", "snapshot", "targets", "timestamp"):
        assert run("root", "add-key", str(root), "-k", str(keys[role]), "-r", role).code == 0
    return root


def test_root_lifecycle_with_threshold_two_signed_in_turns(run: Runner, tmp_path: Path) -> None:
    keys = {}
    for name in ("a", "b", "c"):
        keys[name] = tmp_path / f"{name}.pem"
        assert run("keys", "generate", str(keys[name]), "--type", "ecdsa").code == 0
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    assert run("root", "add-key", str(root), "-k", str(keys["a"]), "-k", str(keys["b"]), "-r", "root",
               "-r", "targets").code == 0
    assert run("root", "add-key", str(root), "-k", str(keys["c"]), "-r", "snapshot", "-r", "timestamp").code == 0
    assert run("root", "set-threshold", str(root), "root", "2").code == 0
    assert run("root", "expire", str(root), "2030-01-01T00:00:00.9Z").code == 0
    assert json.loads(root.read_bytes())["signed"]["expires"] == "2030-01-01T00:00:00Z"
    # First holder signs: written, but still short; verify fails.
    first = run("root", "sign", str(root), "-k", str(keys["a"]))
    assert first.code == 0 and "still short" in first.out
    assert_one_line_error(run("root", "verify", str(root)), 1, "1 valid of 2 required")
    # Second holder signs later, offline: the first signature is kept.
    second = run("root", "sign", str(root), "-k", str(keys["b"]), "-k", str(keys["a"]))
    assert second.code == 0 and "thresholds met" in second.out
    doc = json.loads(root.read_bytes())
    assert len(doc["signatures"]) == 2
    assert run("root", "verify", str(root)).code == 0
    assert tough_rule_violations(root.read_bytes(), "root") == []
    shown = run("root", "show", str(root), "--json").json()
    assert shown["roles"]["root"]["threshold"] == 2 and len(shown["valid_root_signatures"]) == 2
    # A key that is not a root key does not count: an error, and nothing is written.
    before = root.read_bytes()
    assert_one_line_error(run("root", "sign", str(root), "-k", str(keys["c"])), 1, "not a root key",
                          "nothing written")
    assert root.read_bytes() == before
    # Any edit clears the signatures (they no longer match).
    edited = run("root", "remove-key", str(root), doc["signed"]["roles"]["snapshot"]["keyids"][0][:12], "snapshot")
    assert edited.code == 0 and "clears the 2 existing" in edited.err
    assert json.loads(root.read_bytes())["signatures"] == []
    assert_one_line_error(run("root", "sign", str(root), "-k", str(keys["a"])), 1, "snapshot keys: 0 of 1")


def _keys_and_signed_root(run: Runner, tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    """root.json with one key per role (the targets key also listed for snapshot), signed by its root key."""
    keys = {}
    for role in ("root", "snapshot", "targets", "timestamp", "stranger"):
        keys[role] = tmp_path / f"{role}.pem"
        assert run("keys", "generate", str(keys[role])).code == 0
    root = _make_root(run, tmp_path, "root.json", keys)
    assert run("root", "add-key", str(root), "-k", str(keys["targets"]), "-r", "snapshot").code == 0
    assert run("root", "sign", str(root), "-k", str(keys["root"])).code == 0
    assert len(json.loads(root.read_bytes())["signatures"]) == 1
    return root, keys


def test_sign_with_keys_that_are_not_root_keys_fails_naming_each_and_writes_nothing(
    run: Runner, tmp_path: Path
) -> None:
    root, keys = _keys_and_signed_root(run, tmp_path)
    assert run("root", "set-threshold", str(root), "timestamp", "1").code == 0  # unchanged: still signed
    assert run("root", "expire", str(root), "in 40 weeks").code == 0  # an edit: unsigned now
    before = root.read_bytes()
    assert json.loads(before)["signatures"] == []
    # The root key would sign, but the other two are not root keys: all are checked before anything is written.
    result = run("root", "sign", str(root), "-k", str(keys["root"]), "-k", str(keys["targets"]),
                 "-k", str(keys["stranger"]))
    assert_one_line_error(result, 1, f"key {keys['targets']} is not a root key of {root} "
                          "(it is listed for snapshot, targets)",
                          f"key {keys['stranger']} is not a root key of {root} (it is not in {root} at all)",
                          "nothing written")
    assert str(keys["root"]) not in result.err
    assert root.read_bytes() == before
    # Signing is append-only: a rerun with the right key is fine; a second rerun needs no new signature.
    first = run("root", "sign", str(root), "-k", str(keys["root"]))
    assert first.code == 0 and "added 1 signature(s); thresholds met" in first.out, first.err
    signed = root.read_bytes()
    rerun = run("root", "sign", str(root), "-k", str(keys["root"]))
    assert rerun.code == 0 and rerun.err == "", rerun.err
    assert "no new signature needed" in rerun.out and "thresholds met" in rerun.out
    assert root.read_bytes() == signed


def test_cross_sign_with_keys_that_are_not_root_keys_of_the_old_root_fails(run: Runner, tmp_path: Path) -> None:
    old, keys = _keys_and_signed_root(run, tmp_path)
    new = tmp_path / "2.root.json"
    new.write_bytes(old.read_bytes())
    assert run("root", "bump-version", str(new)).code == 0
    assert run("root", "add-key", str(new), "-k", str(keys["stranger"]), "-r", "root").code == 0
    assert run("root", "sign", str(new), "-k", str(keys["stranger"])).code == 0
    before = new.read_bytes()
    for command in (["root", "cross-sign", str(new), "--old-root", str(old)],
                    ["root", "sign", str(new), "-c", str(old)]):
        wrong_old = run(*command, "-k", str(keys["timestamp"]))
        assert_one_line_error(wrong_old, 1, f"key {keys['timestamp']} is not a root key of {old} "
                              "(it is listed for timestamp)", "nothing written")
        new_only = run(*command, "-k", str(keys["stranger"]), "-k", str(keys["root"]))
        assert_one_line_error(new_only, 1, f"key {keys['stranger']} is not a root key of {old} "
                              f"(it is not in {old} at all", "nothing written")
        assert str(keys["root"]) not in new_only.err and f"but is a root key of {new}" in new_only.err
        assert new.read_bytes() == before
    crossed = run("root", "cross-sign", str(new), "--old-root", str(old), "-k", str(keys["root"]))
    assert crossed.code == 0, crossed.err
    assert run("root", "verify", str(new), "--previous", str(old)).code == 0


def test_a_failed_edit_warns_of_nothing_and_leaves_the_root_as_it_was(run: Runner, tmp_path: Path) -> None:
    root, keys = _keys_and_signed_root(run, tmp_path)
    before = root.read_bytes()
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("not a key\n")
    for source in (str(tmp_path / "missing.pem"), str(bad)):
        result = run("root", "add-key", str(root), "-k", str(keys["stranger"]), "-k", source, "-r", "targets")
        assert_one_line_error(result, 2, source)
        assert "clears" not in result.err
        assert root.read_bytes() == before
    for command in (("remove-key", "00ff"), ("set-version", "0"), ("expire", "soon")):
        result = run("root", command[0], str(root), *command[1:])
        assert result.code == 2 and "clears" not in result.err, result.err
        assert root.read_bytes() == before


def test_an_edit_that_changes_nothing_keeps_the_signatures(run: Runner, tmp_path: Path) -> None:
    root, keys = _keys_and_signed_root(run, tmp_path)
    before = root.read_bytes()
    signed = json.loads(before)["signed"]
    same = [
        ("add-key", "-k", str(keys["targets"]), "-r", "targets", "-r", "snapshot"),
        ("set-threshold", "root", "1"),
        ("set-version", str(signed["version"])),
        ("expire", signed["expires"]),
    ]
    for command in same:
        result = run("root", command[0], str(root), *command[1:])
        assert result.code == 0, result.err
        assert "clears" not in result.err and "unchanged" in result.err and "1 signature(s) kept" in result.err
        assert root.read_bytes() == before
    added = run("root", "add-key", str(root), "-k", str(keys["targets"]), "-r", "targets")
    assert added.out.strip() == keyid_of(json.loads(before)["signed"]["keys"][added.out.strip()])
    # A real change clears the signature, and says so once.
    changed = run("root", "set-threshold", str(root), "targets", "1")
    assert changed.code == 0 and "unchanged" in changed.err
    changed = run("root", "add-key", str(root), "-k", str(keys["stranger"]), "-r", "targets")
    assert changed.code == 0 and changed.err.count("clears the 1 existing signature(s)") == 1, changed.err
    assert json.loads(root.read_bytes())["signatures"] == []
    again = run("root", "add-key", str(root), "-k", str(keys["stranger"]), "-r", "targets")
    assert again.code == 0 and "clears" not in again.err


def test_add_key_reuses_the_existing_spelling_of_a_key(run: Runner, tmp_path: Path) -> None:
    """tough's consistent-snapshots root holds snakeoil.pem's key without the final newline."""
    root = tmp_path / "root.json"
    root.write_bytes((TOUGH / "consistent-snapshots" / "metadata" / "1.root.json").read_bytes())
    before = json.loads(root.read_bytes())["signed"]["keys"]
    key = tmp_path / "snakeoil.pem"  # a private key file must be 0600; the fixture is read-only 0444
    key.write_bytes((TOUGH / "test-keys" / "snakeoil.pem").read_bytes())
    key.chmod(0o600)
    result = run("root", "add-key", str(root), "-k", str(key), "-r", "root")
    assert result.code == 0, result.err
    assert result.out.strip() == "69f069cf595e3f09cbe99a9f0f82127f7c7d2fde859e30fd5c0f2b4fc9c4a507"
    assert json.loads(root.read_bytes())["signed"]["keys"] == before


def test_rotation_cross_signed_root_is_published_and_chain_kept(run: Runner, tmp_path: Path) -> None:
    qs = make_quickstart(tmp_path / "q")
    new_key = tmp_path / "new-root.pem"
    assert run("keys", "generate", str(new_key)).code == 0
    new_root = tmp_path / "2.root.json"
    new_root.write_bytes(qs.root.read_bytes())
    assert run("root", "bump-version", str(new_root), "--expires", "in 52 weeks").code == 0
    old_root_id = json.loads(qs.root.read_bytes())["signed"]["roles"]["root"]["keyids"][0]
    assert run("root", "remove-key", str(new_root), old_root_id).code == 0
    assert run("root", "add-key", str(new_root), "-k", str(new_key), "-r", "root").code == 0
    assert run("root", "sign", str(new_root), "-k", str(new_key)).code == 0
    # Without the old root's signature the rotation does not verify, and publish refuses it.
    assert_one_line_error(run("root", "verify", str(new_root), "--previous", str(qs.root)), 1,
                          "signed by root v1")
    args = ["--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH]
    assert_one_line_error(run("refresh", *args, "--root-role", str(new_root)), 1, "signed by root v1")
    crossed = run("root", "cross-sign", str(new_root), "--old-root", str(qs.root), "-k",
                  str(qs.dir / "keys" / "root.pem"))
    assert crossed.code == 0, crossed.err
    assert run("root", "verify", str(new_root), "--previous", str(qs.root)).code == 0
    assert run("refresh", *args, "--root-role", str(new_root)).code == 0
    assert (qs.meta / "2.root.json").read_bytes() == new_root.read_bytes()
    assert (qs.meta / "1.root.json").exists()
    repo = load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), 0)
    assert [r.version for r in repo.roots] == [1, 2]
    # Later publishes walk the chain from the original trusted root.
    assert run("refresh", *args).code == 0


def test_root_role_files_are_walked_in_the_order_given(run: Runner, tmp_path: Path) -> None:
    """``--root-role`` files are the next roots in the order given: one out of order is named, with
    the version it holds and the one expected; in order, both are published."""
    qs = make_quickstart(tmp_path / "q")
    key = str(qs.dir / "keys" / "root.pem")
    roots: list[Path] = []
    for version in (2, 3):
        path = tmp_path / f"{version}.root.json"
        path.write_bytes((roots[-1] if roots else qs.root).read_bytes())
        assert run("root", "bump-version", str(path)).code == 0
        assert run("root", "sign", str(path), "-k", key).code == 0
        roots.append(path)
    args = ["--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH]
    assert_one_line_error(run("refresh", *args, "--root-role", str(roots[1]), "--root-role", str(roots[0])), 1,
                          str(roots[1]), "holds version 3, expected 2")
    assert not (qs.meta / "2.root.json").exists()
    assert run("refresh", *args, "--root-role", str(roots[0]), "--root-role", str(roots[1])).code == 0
    assert (qs.meta / "3.root.json").read_bytes() == roots[1].read_bytes()


@pytest.mark.parametrize(("fixture", "ok", "needle"), [
    ("simple-rsa/root.json", True, ""),
    ("consistent-snapshots/metadata/1.root.json", True, ""),
    ("pem-encoded-ecdsa-sig-keys/root.json", True, ""),
    ("ecdsa-new-type-sig-keys/root.json", True, ""),
    ("hex-encoded-ecdsa-sig-keys/root.json", True, ""),
    ("expired-root-json-signature/root.json", True, ""),
    ("cross-sign-root/1.root.json", False, "0 valid"),
    ("duplicate-keyid/root.json", False, "duplicate"),
    ("duplicate-sigs/root.json", False, "1 valid of 2"),
    ("duplicate-sig-keys/root.json", False, "1 valid of 2"),
    ("invalid-root-json-signature/root.json", False, "0 valid"),
    ("mismatched-root-json-keyids/root.json", False, "0 valid"),
    ("no-root-json-signatures/root.json", False, "0 valid"),
])
def test_root_verify_matches_tough_on_fixtures(fixture: str, ok: bool, needle: str, run: Runner) -> None:
    result = run("root", "verify", str(TOUGH / fixture))
    if ok:
        assert result.code == 0, result.err
    else:
        assert result.code == 1 and needle in result.err, result.err


def test_production_root_rotation_and_expiry(run: Runner) -> None:
    prod = BOTTLEROCKET / "production-root"
    files = sorted(prod.glob("*.root.json"))
    assert len(files) == 2
    assert run("root", "verify", str(files[1]), "--previous", str(files[0])).code == 0
    assert_one_line_error(run("root", "verify", str(files[1]), "--check-expiry"), 1, "expired")


def test_canonical_matches_tough_fixture_signatures() -> None:
    """Our canonical writer reproduces the bytes tough signed (checked through the signature)."""
    from repo_tool.trust.metadata import verify_role
    from repo_tool.trust.model import parse_role

    for name in ("1.root.json", "1.targets.json", "1.snapshot.json", "timestamp.json"):
        raw = (TOUGH / "consistent-snapshots" / "metadata" / name).read_bytes()
        role = name.split(".")[-2]
        rf = parse_role(raw, role, name)
        root = json.loads((TOUGH / "consistent-snapshots" / "metadata" / "1.root.json").read_bytes())["signed"]
        assert verify_role(rf, root, name)
    assert canonical({"file 1": 1, "file": 2}) == b'{"file 1":1,"file":2}'  # olpc-cjson byte order
    assert canonical({"b": "é\n\"\\", "a": [True, None]}) == b'{"a":[true,null],"b":"\xc3\xa9\n\\"\\\\"}'


def test_infra_toml_and_expiration_policy(tmp_path: Path) -> None:
    policy = load_expiration_policy(BOTTLEROCKET / "pubsys" / "repo-expiration-2w-2w-1w.toml")
    week = 7 * 86400 * NANOS_PER_SECOND
    assert (policy.snapshot, policy.targets, policy.timestamp) == (2 * week, 2 * week, week)
    infra = tmp_path / "Infra.toml"
    infra.write_text(
        '[repo.default]\nmetadata_base_url = "file:///srv/repo/metadata"\ntargets_url = "file:///srv/repo/targets"\n'
        'root_role_url = "file:///srv/root.json"\nroot_role_sha512 = "00"\n'
        'signing_keys = { kms = { key_id = "alias/release" } }\n'
        '[repo.other]\nmetadata_base_url = "x"\n'
    )
    config = load_config(infra, "default")
    assert config.signers["targets"] == ["awskms:alias/release"]
    assert str(config.root) == "/srv/root.json" and config.root_sha512 == "00"
    with pytest.raises(Exception, match="targets_url is required"):
        load_config(infra, "other")
    with pytest.raises(Exception, match="several repos"):
        load_config(infra, None)


@pytest.mark.parametrize(("text", "needle"), [
    ("repos: {dev: {metadata_url: a, targets_url: b}}", "root is required"),
    ("repos: {dev: {metadata_url: a, targets_url: b, root: r, colour: red}}", "unknown key 'colour'"),
    ("repos: {dev: {metadata_url: a, targets_url: b, root: r, expiration: {snapshot: 2 months}}}", "snapshot"),
    ("repos: {dev: {metadata_url: a, targets_url: b, root: r, signers: {admin: [k]}}}", "unknown role 'admin'"),
    ("repos: {}", "no repositories"),
    ("repo: {}", "unknown top-level key"),
])
def test_config_errors_are_one_line(text: str, needle: str, run: Runner, tmp_path: Path) -> None:
    config = tmp_path / "repo-tool.yaml"
    config.write_text(text)
    result = run("refresh", "--config", str(config), "--variant", VARIANT, "--arch", ARCH)
    assert_one_line_error(result, 2, needle, str(config))


def test_shipped_example_config_loads() -> None:
    from .conftest import REPO

    config = load_config(REPO / "keys" / "repo-tool.example.yaml", None)
    assert config.name == "prod"
    assert config.signers["targets"] == [
        "aws-kms:///alias/bottlerocket-targets-1", "awskms:alias/bottlerocket-targets-2"
    ]
    assert config.signers["root"] == []


def _root_with_new_timestamp_key(run: Runner, qs_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """2.root.json, signed by the quickstart's root key, whose timestamp key is a new one."""
    new_ts = tmp_path / "new-timestamp.pem"
    assert run("keys", "generate", str(new_ts)).code == 0
    new_root = tmp_path / "2.root.json"
    new_root.write_bytes((qs_dir / "root.json").read_bytes())
    assert run("root", "bump-version", str(new_root)).code == 0
    old_ts_id = json.loads((qs_dir / "root.json").read_bytes())["signed"]["roles"]["timestamp"]["keyids"][0]
    assert run("root", "remove-key", str(new_root), old_ts_id).code == 0
    assert run("root", "add-key", str(new_root), "-k", str(new_ts), "-r", "timestamp").code == 0
    assert run("root", "sign", str(new_root), "-k", str(qs_dir / "keys" / "root.pem")).code == 0
    return new_root, new_ts


def test_rotation_interrupted_before_timestamp_is_completed_by_a_rerun(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new root (with a new timestamp key) is on storage, the timestamp is not: clients fail.
    Running the same rotation again finishes it."""
    from repo_tool.storage.base import StorageError

    qs = make_quickstart(tmp_path / "q")
    new_root, new_ts = _root_with_new_timestamp_key(run, qs.dir, tmp_path)
    config = qs.config.read_text().replace("timestamp: [keys/timestamp.pem]", f"timestamp: [{new_ts}]")
    qs.config.write_text(config)
    args = ["--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH, "--json"]

    def broken_swap(self: LocalStorage, name: str, data: bytes, expected: bytes | None) -> None:
        raise StorageError(f"{name}: connection lost (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(LocalStorage, "swap", broken_swap)
        assert_one_line_error(run("refresh", *args, "--root-role", str(new_root)), 1, "connection lost")
    assert (qs.meta / "2.root.json").exists()
    assert_one_line_error(run("refresh", *args), 1, "threshold not met for role timestamp")
    resumed = run("refresh", *args, "--root-role", str(new_root))
    assert resumed.code == 0, resumed.err
    assert "resuming a root rotation" in resumed.err
    repo = load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), 0)
    assert repo.root.version == 2 and repo.timestamp.version == 3


def test_a_rotation_that_loses_a_race_publishes_no_root(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publisher B rotates the timestamp key; publisher A lands a refresh while B is writing.
    B must lose before its new root is stored (a live root without its timestamp breaks clients)."""
    import time

    from repo_tool.publish.live import Write
    from repo_tool.publish.load import Location
    from repo_tool.publish.maintenance import refresh

    qs = make_quickstart(tmp_path / "q")
    new_root, new_ts = _root_with_new_timestamp_key(run, qs.dir, tmp_path)
    rotated = qs.dir / "rotated.yaml"
    rotated.write_text(qs.config.read_text().replace("timestamp: [keys/timestamp.pem]", f"timestamp: [{new_ts}]"))
    b_args = ["--config", str(rotated), "--variant", VARIANT, "--arch", ARCH, "--json", "--root-role", str(new_root)]

    create = LocalStorage.create
    landed: list[str] = []

    def create_after_a_lands(self: LocalStorage, name: str, data: bytes) -> bool:
        if not landed and name.endswith(".targets.json"):
            landed.append(name)
            refresh(Location.of(load_config(qs.config, None), VARIANT, ARCH), time.time_ns(), Write())
        return create(self, name, data)

    with monkeypatch.context() as patch:
        patch.setattr(LocalStorage, "create", create_after_a_lands)
        assert_one_line_error(run("refresh", *b_args), 1, "another publisher won", "is now version 3")
    assert not (qs.meta / "2.root.json").exists()
    repo = load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), 0)  # clients still load the repo
    assert repo.root.version == 1 and repo.timestamp.version == 3
    rerun = run("refresh", *b_args)
    assert rerun.code == 0, rerun.err
    assert load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), 0).root.version == 2
