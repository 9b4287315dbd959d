"""Private keys as they are found on disk: encrypted ones beside plain ones (REPO_TOOL_KEY_PASSPHRASE
applies to the encrypted ones only), and key files that group or other may read or write (refused,
as ssh's StrictModes refuses them, unless REPO_TOOL_INSECURE_KEYS=1)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from repo_tool.storage.base import LocalStorage
from repo_tool.trust.verifier import load_repo

from .clirun import Runner, assert_one_line_error
from .repohelpers import QS

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPO_TOOL_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("REPO_TOOL_INSECURE_KEYS", raising=False)


def _rotate_to_encrypted_timestamp_key(run: Runner, qs: QS, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An encrypted new timestamp key and 2.root.json listing it, made with REPO_TOOL_KEY_PASSPHRASE set
    throughout: the plain root key signs, and plain keys are added, while the variable is set."""
    monkeypatch.setenv("PASS", PASSPHRASE)
    enc = qs.dir / "keys" / "timestamp-enc.pem"
    assert run("keys", "generate", str(enc), "--passphrase-env", "PASS").code == 0
    assert b"ENCRYPTED" in enc.read_bytes()
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", PASSPHRASE)
    new_root = tmp_path / "2.root.json"
    new_root.write_bytes(qs.root.read_bytes())
    assert run("root", "bump-version", str(new_root)).code == 0
    old_ts_id = json.loads(qs.root.read_bytes())["signed"]["roles"]["timestamp"]["keyids"][0]
    assert run("root", "remove-key", str(new_root), old_ts_id).code == 0
    added = run("root", "add-key", str(new_root), "-k", str(enc), "-r", "timestamp")
    assert added.code == 0, added.err
    # A plain key is added while the variable is set (the snapshot key also signs timestamp now).
    plain = run("root", "add-key", str(new_root), "-k", str(qs.dir / "keys" / "snapshot.pem"), "-r", "snapshot")
    assert plain.code == 0, plain.err
    signed = run("root", "sign", str(new_root), "-k", str(qs.dir / "keys" / "root.pem"))
    assert signed.code == 0, signed.err
    config = qs.config.read_text()
    assert "timestamp: [keys/timestamp.pem]" in config
    qs.config.write_text(config.replace("timestamp: [keys/timestamp.pem]", "timestamp: [keys/timestamp-enc.pem]"))
    return new_root, enc


def test_one_encrypted_key_among_plain_keys_refreshes(run: Runner, qs: QS, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    new_root, _ = _rotate_to_encrypted_timestamp_key(run, qs, tmp_path, monkeypatch)
    result = run("refresh", *qs.args("--root-role", str(new_root)))
    assert result.code == 0, result.err
    repo = load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), 0)
    assert repo.root.version == 2 and repo.timestamp.version == 3
    again = run("refresh", *qs.args())
    assert again.code == 0, again.err


def test_wrong_passphrase_names_the_encrypted_key(run: Runner, qs: QS, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart's timestamp key, encrypted in place (the root is unchanged): a wrong or missing
    passphrase is reported for that file, not for the plain keys loaded before it."""
    key = qs.dir / "keys" / "timestamp.pem"
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    key.chmod(0o600)
    before = sorted(p.name for p in qs.meta.iterdir())
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", "not the passphrase")
    result = run("refresh", *qs.args())
    assert_one_line_error(result, 2, f"wrong passphrase (REPO_TOOL_KEY_PASSPHRASE) for encrypted key {key}",
                          "signers.timestamp")
    for plain in ("root.pem", "snapshot.pem", "targets.pem"):
        assert plain not in result.err
    monkeypatch.delenv("REPO_TOOL_KEY_PASSPHRASE")
    missing = run("refresh", *qs.args())
    assert_one_line_error(missing, 2, str(key), "encrypted", "REPO_TOOL_KEY_PASSPHRASE", "signers.timestamp")
    assert sorted(p.name for p in qs.meta.iterdir()) == before
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", PASSPHRASE)
    result = run("refresh", *qs.args())
    assert result.code == 0, result.err


def test_plain_keys_load_while_the_passphrase_is_set(run: Runner, qs: QS, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPO_TOOL_KEY_PASSPHRASE", PASSPHRASE)
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    for role in ("root", "snapshot", "targets", "timestamp"):
        added = run("root", "add-key", str(root), "-k", f"file:{qs.dir / 'keys' / f'{role}.pem'}", "-r", role)
        assert added.code == 0, added.err
    signed = run("root", "sign", str(root), "-k", str(qs.dir / "keys" / "root.pem"))
    assert signed.code == 0, signed.err
    monkeypatch.setenv("TS_KEY", (qs.dir / "keys" / "timestamp.pem").read_text())
    qs.config.write_text(qs.config.read_text().replace("timestamp: [keys/timestamp.pem]", "timestamp: [envvar:TS_KEY]"))
    refreshed = run("refresh", *qs.args())
    assert refreshed.code == 0, refreshed.err


# --- key file permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o640, 0o604, 0o660, 0o602, 0o620], ids=oct)
def test_refresh_refuses_a_key_file_group_or_other_can_use(run: Runner, qs: QS, mode: int) -> None:
    key = qs.dir / "keys" / "targets.pem"
    key.chmod(mode)
    before = sorted(p.name for p in qs.meta.iterdir())
    result = run("refresh", *qs.args())
    assert_one_line_error(result, 2, f"key file {key} has mode {mode:04o}", "group/other",
                          f"chmod 600 {key}", "signers.targets")
    assert sorted(p.name for p in qs.meta.iterdir()) == before


@pytest.mark.parametrize("spelling", ["{}", "file:{}", "file://{}", "file2:{}"])
def test_root_sign_refuses_a_loose_key_file_in_every_spelling(run: Runner, qs: QS, spelling: str) -> None:
    key = qs.dir / "keys" / "root.pem"
    key.chmod(0o644)
    before = qs.root.read_bytes()
    result = run("root", "sign", str(qs.root), "-k", spelling.format(key))
    assert_one_line_error(result, 2, f"key file {key} has mode 0644", f"chmod 600 {key}")
    added = run("root", "add-key", str(qs.root), "-k", spelling.format(key), "-r", "snapshot")
    assert_one_line_error(added, 2, f"key file {key} has mode 0644")
    assert qs.root.read_bytes() == before


def test_the_mode_checked_is_that_of_the_file_opened(run: Runner, qs: QS, tmp_path: Path) -> None:
    """A symlink (always 0777 itself) to a 0600 key is fine; one to a 0644 key is not."""
    link = tmp_path / "root-link.pem"
    link.symlink_to(qs.dir / "keys" / "root.pem")
    result = run("root", "sign", str(qs.root), "-k", str(link))
    assert result.code == 0, result.err
    (qs.dir / "keys" / "root.pem").chmod(0o640)
    assert_one_line_error(run("root", "sign", str(qs.root), "-k", str(link)), 2, "has mode 0640")


@pytest.mark.parametrize("mode", [0o600, 0o400], ids=oct)
def test_owner_only_key_files_are_used(run: Runner, qs: QS, mode: int) -> None:
    (qs.dir / "keys" / "targets.pem").chmod(mode)
    result = run("refresh", *qs.args())
    assert result.code == 0, result.err


def test_insecure_keys_variable_skips_the_check(run: Runner, qs: QS, monkeypatch: pytest.MonkeyPatch) -> None:
    (qs.dir / "keys" / "targets.pem").chmod(0o644)
    monkeypatch.setenv("REPO_TOOL_INSECURE_KEYS", "1")
    result = run("refresh", *qs.args())
    assert result.code == 0, result.err


def test_environment_keys_and_public_key_files_are_not_checked(run: Runner, qs: QS, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = tmp_path / "new.pem", tmp_path / "new.pub.pem"
    assert run("keys", "generate", str(private), "--public", str(public)).code == 0
    public.chmod(0o644)
    private.chmod(0o644)
    assert run("root", "add-key", str(qs.root), "-k", str(public), "-r", "targets").code == 0
    monkeypatch.setenv("NEW_KEY", private.read_text())
    assert run("root", "add-key", str(qs.root), "-k", "envvar:NEW_KEY", "-r", "snapshot").code == 0
    assert_one_line_error(run("root", "add-key", str(qs.root), "-k", str(private), "-r", "timestamp"), 2,
                          f"key file {private} has mode 0644")


def test_a_directory_given_as_a_key_is_a_read_error(run: Runner, qs: QS, tmp_path: Path) -> None:
    folder = tmp_path / "keys.d"
    folder.mkdir(mode=0o755)
    result = run("root", "sign", str(qs.root), "-k", str(folder))
    assert_one_line_error(result, 2, f"cannot read {folder}")
    assert "mode" not in result.err


def test_keys_this_tool_writes_pass_the_check(run: Runner, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        key = tmp_path / "k.pem"
        assert run("keys", "generate", str(key)).code == 0
    finally:
        os.umask(old)
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    assert run("root", "add-key", str(root), "-k", str(key), "-r", "root").code == 0
    assert run("root", "sign", str(root), "-k", str(key), "--ignore-threshold").code == 0


def test_quickstart_keys_are_owner_only(qs: QS) -> None:
    for key in (qs.dir / "keys").iterdir():
        assert key.stat().st_mode & 0o077 == 0, key
