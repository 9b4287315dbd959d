"""Private keys as they are found on disk: encrypted ones beside plain ones (REPO_TOOL_KEY_PASSPHRASE
applies to the encrypted ones only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from repo_tool.storage import LocalStorage
from repo_tool.verifier import load_repo

from .clirun import Runner, assert_one_line_error
from .repohelpers import QS

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_key_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPO_TOOL_KEY_PASSPHRASE", raising=False)


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

