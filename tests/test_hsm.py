"""PKCS#11 keys (``hsm:`` sources, ``keys import-hsm``) on a SoftHSM2 token made in a temporary directory:
a root signed 2 of 3 across the token's P-256 key and two key files, published with ``--root-role``
with the token also signing timestamp, and read by python-tuf, this tool's node and tuf-js; bad PINs,
tokens, keys and modules each refused in one line, writing nothing.

Needs Debian's ``softhsm2`` (the token and its module) and ``opensc`` (``pkcs11-tool`` makes the keys on
it); the tests skip, naming the package, where they are missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_tool.storage.base import LocalStorage
from repo_tool.trust.verifier import load_repo

from .clirun import Runner, assert_one_line_error
from .faults.helpers import local_client_sees
from .repohelpers import make_quickstart, serve_directory, tough_rule_violations, tree_state
from .test_tufjs_interop import (
    Served,
    check,
    node,  # noqa: F401  (the session fixture: node and tuf-js installed)
)

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "repo-tool test"  # a space: the source spells it label=repo-tool+test
PIN = "s3cret-PIN"
P256, P384, RSA = 1, 3, 4  # CKA_IDs (decimal KEYIDs) of the keys made on the token


@dataclass(frozen=True)
class Token:
    conf: Path
    source: str  # the P-256 key's source, as keys import-hsm prints it

    def key(self, keyid: int, label: str = TOKEN) -> str:
        return f"hsm:{keyid}?label={label.replace(' ', '+')}"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (apt-get install {package})")
    return path


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Token]:
    """A SoftHSM2 token of its own (its own config and token directory) holding a P-256, a P-384 and an
    RSA key pair; PYKCS11LIB, SOFTHSM2_CONF and REPO_TOOL_HSM_PIN set for the module's tests."""
    softhsm = _tool("softhsm2-util", "softhsm2")
    tool = _tool("pkcs11-tool", "opensc")
    if not MODULE.is_file():
        pytest.skip(f"{MODULE} is missing (apt-get install softhsm2)")
    home = tmp_path_factory.mktemp("softhsm")
    (home / "tokens").mkdir()
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {home / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}

    def call(*args: str) -> None:
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"

    call(softhsm, "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "87654321")
    for keyid, keytype, label in ((P256, "EC:prime256v1", "root1"), (P384, "EC:secp384r1", "p384"),
                                  (RSA, "rsa:2048", "rsa")):
        call(tool, "--module", str(MODULE), "--token-label", TOKEN, "--login", "--pin", PIN, "--keypairgen",
             "--key-type", keytype, "--id", f"{keyid:02x}", "--label", label)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        patch.setenv("PYKCS11LIB", str(MODULE))
        patch.setenv("REPO_TOOL_HSM_PIN", PIN)
        yield Token(conf, f"hsm:{P256}?label=repo-tool+test")


def test_import_sign_two_of_three_publish_and_every_client_accepts(
        token: Token, run: Runner, tmp_path: Path, node: str) -> None:  # noqa: F811  (the imported fixture)
    qs = make_quickstart(tmp_path / "qs")
    old_root_key = str(qs.dir / "keys" / "root.pem")
    files = [tmp_path / "holder-b.pem", tmp_path / "holder-c.pem"]
    for path in files:
        assert run("keys", "generate", str(path), "--type", "ecdsa").code == 0
    # Root v2: three root holders (the token's key and two key files), threshold 2; the token's key
    # also signs timestamp.
    new_root = tmp_path / "2.root.json"
    new_root.write_bytes(qs.root.read_bytes())
    assert run("root", "bump-version", str(new_root), "--expires", "in 52 weeks").code == 0
    old = json.loads(qs.root.read_bytes())["signed"]["roles"]
    assert run("root", "remove-key", str(new_root), old["root"]["keyids"][0], "root").code == 0
    assert run("root", "remove-key", str(new_root), old["timestamp"]["keyids"][0], "timestamp").code == 0
    imported = run("keys", "import-hsm", str(P256), "--token", TOKEN, "--root", str(new_root), "-r", "root",
                   "-r", "timestamp", "--json")
    assert imported.code == 0, imported.err
    info = imported.json()
    assert info["source"] == token.source
    assert (info["keytype"], info["scheme"]) == ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256")
    assert info["root_changed"] is True and info["root_keyid"] == info["keyid"]
    assert run("root", "add-key", str(new_root), *[a for f in files for a in ("-k", str(f))], "-r", "root").code == 0
    assert run("root", "set-threshold", str(new_root), "root", "2").code == 0
    roles = json.loads(new_root.read_bytes())["signed"]["roles"]
    assert info["keyid"] in roles["root"]["keyids"] and roles["timestamp"]["keyids"] == [info["keyid"]]
    assert len(roles["root"]["keyids"]) == 3
    # Holders sign in turn, the token first: one signature is not enough, the second file key's is.
    first = run("root", "sign", str(new_root), "-k", token.source, "--json")
    assert first.code == 0, first.err
    assert first.json()["added"] == [info["keyid"]] and first.json()["thresholds_met"] is False
    second = run("root", "sign", str(new_root), "-k", str(files[0]), "--json")
    assert second.code == 0 and second.json()["thresholds_met"] is True, second.err
    assert run("root", "verify", str(new_root)).code == 0
    # Rotation: the old root's key cross-signs; then the next refresh publishes v2, its timestamp
    # signed on the token (hsm: as a config signer).
    assert run("root", "cross-sign", str(new_root), "--old-root", str(qs.root), "-k", old_root_key).code == 0
    assert run("root", "verify", str(new_root), "--previous", str(qs.root)).code == 0
    config = qs.config.read_text()
    assert "timestamp: [keys/timestamp.pem]" in config
    qs.config.write_text(config.replace("timestamp: [keys/timestamp.pem]", f"timestamp: ['{token.source}']"))
    refreshed = run("refresh", *qs.args("--root-role", str(new_root)))
    assert refreshed.code == 0, refreshed.err
    assert (qs.meta / "2.root.json").read_bytes() == new_root.read_bytes()
    timestamp = json.loads((qs.meta / "timestamp.json").read_bytes())
    assert [s["keyid"] for s in timestamp["signatures"]] == [info["keyid"]]
    for path in qs.meta.glob("*.json"):
        role = "timestamp" if path.name == "timestamp.json" else path.name.split(".")[1]
        assert tough_rule_violations(path.read_bytes(), role) == [], path.name
    repo = load_repo(LocalStorage(qs.meta), qs.root.read_bytes(), 0)
    assert [r.version for r in repo.roots] == [1, 2]
    # python-tuf and this tool's node, from the v1 root, walk to v2 and accept the token's timestamp;
    # so does tuf-js.
    newest = qs.manifest()["updates"][-1]
    assert local_client_sees(run, tmp_path / "clients", qs.root, qs.meta, qs.targets) == newest["version"]
    with serve_directory(qs.meta) as meta_url, serve_directory(qs.targets) as targets_url:
        served = Served({"root": str(qs.root), "metadata_dir": str(qs.meta), "targets_dir": str(qs.targets)},
                        meta_url, targets_url)
        result = check(node, served, tmp_path / "tufjs", "manifest.json")
        assert result.code == 0, result.stderr
        assert set(result.out["targets"]) == {"manifest.json"}


def _file_root(run: Runner, tmp_path: Path) -> Path:
    """A root listing a key file for every role (so signing with a token key changes nothing)."""
    key = tmp_path / "k.pem"
    assert run("keys", "generate", str(key)).code == 0
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    for role in ("root", "snapshot", "targets", "timestamp"):
        assert run("root", "add-key", str(root), "-k", str(key), "-r", role).code == 0
    return root


@pytest.mark.parametrize(("env", "source", "needles"), [
    ({"REPO_TOOL_HSM_PIN": "0000"}, None, ["wrong PIN for token 'repo-tool test'", "REPO_TOOL_HSM_PIN"]),
    ({}, "hsm:1?label=no+such+token", ["no initialised token labelled 'no such token'", "'repo-tool test'"]),
    ({}, "hsm:7?label=repo-tool+test", ["no private key with id 7", "1 'root1'"]),
    ({}, "hsm:3?label=repo-tool+test", ["secp384r1", "only P-256"]),
    ({}, "hsm:4?label=repo-tool+test", ["of type RSA", "only ECDSA P-256"]),
    ({"PYKCS11LIB": ""}, None, ["set PYKCS11LIB"]),
    ({"PYKCS11LIB": "/nonexistent/libpkcs11.so"}, None, ["/nonexistent/libpkcs11.so (PYKCS11LIB): no such file"]),
    ({"REPO_TOOL_HSM_PIN": ""}, None, ["no PIN", "REPO_TOOL_HSM_PIN"]),  # stdin is no terminal here
    ({}, "hsm:one", ["KEYID 'one' is not a decimal number"]),
    ({}, "hsm:1?slot=2", ["unknown parameter(s) slot"]),
])
def test_bad_token_pin_key_or_module_is_one_line_and_writes_nothing(
        token: Token, run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
        source: str | None, needles: list[str]) -> None:
    root = _file_root(run, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    source = source or token.source
    before = tree_state(tmp_path)
    assert_one_line_error(run("root", "sign", str(root), "-k", source), 2, f"key {source}: ", *needles)
    assert_one_line_error(run("keys", "import-hsm", source, "--root", str(root), "-r", "root"), 2, *needles)
    assert_one_line_error(run("root", "add-key", str(root), "-k", source, "-r", "targets"), 2, *needles)
    assert tree_state(tmp_path) == before


def test_import_hsm_usage(token: Token, run: Runner, tmp_path: Path) -> None:
    # A bare KEYID and --token make the source; the same key read twice is one key, the root unchanged.
    root = _file_root(run, tmp_path)
    assert run("keys", "import-hsm", "1", "--token", TOKEN, "--root", str(root), "-r", "targets").code == 0
    before = tree_state(tmp_path)
    again = run("keys", "import-hsm", token.source, "--root", str(root), "-r", "targets")
    assert again.code == 0 and "already lists" in again.out, again.err
    assert tree_state(tmp_path) == before
    # Without --token the only initialised token is used, and the printed source names it.
    plain = run("keys", "import-hsm", "1")
    assert plain.code == 0 and f"source: {token.source} " in plain.out
    assert_one_line_error(run("keys", "import-hsm", "hsm:1?label=other", "--token", TOKEN), 2,
                          "names token 'other', --token 'repo-tool test'")
    assert_one_line_error(run("keys", "import-hsm", "1", "--root", str(root)), 2, "--root needs at least one --role")


def test_pin_asked_on_a_terminal_is_not_echoed(token: Token, tmp_path: Path) -> None:
    """Without REPO_TOOL_HSM_PIN the PIN is asked on the terminal (a pty here), with echo off."""
    env = {k: v for k, v in os.environ.items() if k != "REPO_TOOL_HSM_PIN"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: repo-tool on the pty
        os.execve(sys.executable, [sys.executable, "-m", "repo_tool", "keys", "import-hsm", token.source, "--json"],
                  env)
    output = b""
    asked = False
    while True:
        ready, _, _ = select.select([fd], [], [], 60)
        assert ready, f"no answer from repo-tool: {output!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        output += chunk
        if not asked and b"PIN for token 'repo-tool test'" in output:
            os.write(fd, f"{PIN}\n".encode())
            asked = True
    _, status = os.waitpid(pid, 0)
    text = output.decode()
    assert asked and os.waitstatus_to_exitcode(status) == 0, text
    assert PIN not in text
    assert json.loads(text[text.index("{"):])["source"] == token.source
