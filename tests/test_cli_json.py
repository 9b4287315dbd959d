"""--json of the manifest and root commands: the result the text shows, with stable keys; a failed
check's verdict on stdout and its one error line on stderr, with the same exit code as without."""

from __future__ import annotations

import json
from pathlib import Path

from repo_tool.core.manifest import EMPTY_MANIFEST_BYTES

from .clirun import Runner, assert_one_line_error
from .conftest import BOTTLEROCKET, UPDOG_TESTS
from .repohelpers import QS

RELEASE_TOML = BOTTLEROCKET / "release" / "Release.toml"


def test_manifest_edits_print_their_result_as_json(run: Runner, tmp_path: Path) -> None:
    file = str(tmp_path / "manifest.json")
    assert run("manifest", "init", file, "--json").json() == {"file": file, "written": True}
    update = ("-l", "aws-dev", "-v", "1.0.0", "-a", "x86_64")
    added = run("manifest", "add-update", file, "-f", "aws-dev", "-v", "1.0.0", "-a", "x86_64", "-b", "boot.lz4",
                "--root-image", "root.lz4", "-h", "hash.lz4", "--json").json()
    assert added == {"file": file, "warnings": [], "added": {
        "variant": "aws-dev", "arch": "x86_64", "version": "1.0.0", "max_version": "1.0.0", "waves": {},
        "images": {"boot": "boot.lz4", "root": "root.lz4", "hash": "hash.lz4"}}}
    waved = run("manifest", "set-waves", file, *update, "-w", "default", "--start-at", "2025-01-01T00:00:00Z",
                "--json").json()
    assert waved["policy"].startswith("default") and waved["start"] == "2025-01-01T00:00:00Z"
    assert waved["update"]["waves"] == json.loads(Path(file).read_bytes())["updates"][0]["waves"] != {}
    assert run("manifest", "set-max-version", file, "-m", "1.5.0", "--json").json() == {
        "file": file, "max_version": "1.5.0", "updates": 1}
    none = run("manifest", "set-max-version", file, "-m", "1.5.0", "-l", "other", "--json")
    assert none.json()["updates"] == 0 and "nothing changed" in none.err
    migrated = run("manifest", "set-migrations", file, "-f", str(RELEASE_TOML), "--json").json()
    assert migrated["file"] == file and migrated["release"] == str(RELEASE_TOML) and migrated["migrations"] > 0
    assert run("manifest", "remove-update", file, *update, "--json").json() == {
        "file": file, "removed": True, "variant": "aws-dev", "arch": "x86_64", "version": "1.0.0", "warnings": []}
    again = run("manifest", "remove-update", file, *update, "--json")
    assert again.code == 0 and again.json()["removed"] is False


def test_manifest_validate_json_verdict(run: Runner, tmp_path: Path) -> None:
    good = str(UPDOG_TESTS / "example.json")
    result = run("manifest", "validate", good, "--json")
    assert result.code == 0, result.err
    assert result.json() == {"file": good, "ok": True, "result": "pass", "updates": 1, "migration_hops": 2}
    bad = tmp_path / "bad.json"
    bad.write_bytes(EMPTY_MANIFEST_BYTES.replace(b"[]", b"[1]", 1))
    failed = run("manifest", "validate", str(bad), "--json")
    assert_one_line_error(failed, 1, str(bad))
    verdict = failed.json()
    assert verdict["file"] == str(bad) and verdict["ok"] is False and verdict["result"] == "fail"
    assert verdict["error"] in failed.err
    # not a verdict: the file cannot be read (usage, exit 2): only the error line
    missing = run("manifest", "validate", str(tmp_path / "missing.json"), "--json")
    assert_one_line_error(missing, 2, "missing.json")
    assert missing.out == ""


def test_root_commands_print_their_result_as_json(run: Runner, tmp_path: Path) -> None:
    root = str(tmp_path / "root.json")
    keys = {}
    for name in ("a", "b"):
        path = str(tmp_path / f"{name}.pem")
        keys[name] = (path, run("keys", "generate", path, "--json").json()["keyid"])
    made = run("root", "init", root, "--expires", "2030-01-01T00:00:00Z", "--json").json()
    assert made == {"path": root, "version": 1, "expires": "2030-01-01T00:00:00Z"}
    added = run("root", "add-key", root, "-k", keys["a"][0], "-r", "root", "-r", "targets", "-r", "snapshot",
                "-r", "timestamp", "--json").json()
    assert added == {"path": root, "keyids": [keys["a"][1]], "roles": ["root", "targets", "snapshot", "timestamp"],
                     "changed": True, "signatures_cleared": 0}
    signed = run("root", "sign", root, "-k", keys["a"][0], "--json").json()
    assert signed == {"path": root, "signed_with": None, "added": [keys["a"][1]], "dropped": 0,
                      "thresholds_met": True, "missing": {}, "changed": True}
    expired = run("root", "expire", root, "2031-01-01T00:00:00Z", "--json").json()
    assert expired == {"path": root, "expires": "2031-01-01T00:00:00Z", "changed": True, "signatures_cleared": 1}
    same = run("root", "set-version", root, "1", "--json").json()
    assert same == {"path": root, "version": 1, "changed": False, "signatures_cleared": 0}
    assert run("root", "set-threshold", root, "targets", "1", "--json").json()["changed"] is False
    run("root", "sign", root, "-k", keys["a"][0])
    new = str(tmp_path / "2.root.json")
    Path(new).write_bytes(Path(root).read_bytes())
    bumped = run("root", "bump-version", new, "--json").json()
    assert bumped == {"path": new, "version": 2, "changed": True, "signatures_cleared": 1}
    run("root", "add-key", new, "-k", keys["b"][0], "-r", "root")
    assert run("root", "remove-key", new, keys["a"][1], "root", "--json").json() == {
        "path": new, "keyid": keys["a"][1], "role": "root", "changed": True, "signatures_cleared": 0}
    run("root", "sign", new, "-k", keys["b"][0])
    crossed = run("root", "cross-sign", new, "--old-root", root, "-k", keys["a"][0], "--json").json()
    assert crossed["signed_with"] == root and crossed["added"] == [keys["a"][1]]
    verified = run("root", "verify", new, "--previous", root, "--check-expiry", "--json")
    assert verified.code == 0, verified.err
    assert verified.json() == {"path": new, "file": new, "ok": True, "result": "pass", "version": 2,
                               "expires": "2031-01-01T00:00:00Z", "previous": root, "expiry_checked": True}


def test_root_sign_json_short_of_threshold(run: Runner, tmp_path: Path) -> None:
    root = str(tmp_path / "root.json")
    run("root", "init", root)
    for name in ("a", "b"):
        run("keys", "generate", str(tmp_path / f"{name}.pem"))
        run("root", "add-key", root, "-k", str(tmp_path / f"{name}.pem"), "-r", "root", "-r", "targets",
            "-r", "snapshot", "-r", "timestamp")
    run("root", "set-threshold", root, "root", "2")
    result = run("root", "sign", root, "-k", str(tmp_path / "a.pem"), "--json")
    assert result.code == 0, result.err
    assert result.json()["thresholds_met"] is False
    assert result.json()["missing"] == {"root signatures": {"have": 1, "need": 2}}
    assert "not valid yet" in result.err


def test_root_verify_json_verdict(run: Runner, qs: QS, tmp_path: Path) -> None:
    result = run("root", "verify", str(qs.root), "--json")
    assert result.code == 0 and result.json()["ok"] is True, result.err
    tampered = tmp_path / "root.json"
    data = json.loads(qs.root.read_bytes())
    data["signed"]["version"] = 7
    tampered.write_text(json.dumps(data))
    failed = run("root", "verify", str(tampered), "--json")
    assert_one_line_error(failed, 1, str(tampered))
    assert failed.json() == {"path": str(tampered), "file": str(tampered), "ok": False, "result": "fail",
                             "error": failed.err.strip().removeprefix("repo-tool: error: ")}
