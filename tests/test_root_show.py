"""``root show`` lists who signed: each signature's key, the roles that list it, whether it verifies, and
the root threshold (issue 17: its help said so, it printed a count)."""

from __future__ import annotations

import json
from pathlib import Path

from .clirun import Runner
from .repohelpers import QS, make_quickstart


def rotate_root_key(run: Runner, qs: QS, directory: Path) -> tuple[Path, str, str]:
    """Root v2 of ``qs`` with a new root key, signed by it and cross-signed by the old one: its path,
    the old root key ID and the new one."""
    old_id = json.loads(qs.root.read_bytes())["signed"]["roles"]["root"]["keyids"][0]
    new_key = directory / "new-root.pem"
    new_id = run("keys", "generate", str(new_key)).out.strip()
    rotated = directory / "2.root.json"
    rotated.write_bytes(qs.root.read_bytes())
    assert run("root", "bump-version", str(rotated)).code == 0
    assert run("root", "remove-key", str(rotated), old_id).code == 0
    assert run("root", "add-key", str(rotated), "-k", str(new_key), "-r", "root").code == 0
    assert run("root", "sign", str(rotated), "-k", str(new_key)).code == 0
    assert run("root", "cross-sign", str(rotated), "--old-root", str(qs.root), "-k",
               str(qs.dir / "keys" / "root.pem")).code == 0
    return rotated, old_id, new_id


def test_root_show_lists_each_signature_with_roles_and_status(run: Runner, tmp_path: Path) -> None:
    qs = make_quickstart(tmp_path / "q")
    targets_id = json.loads(qs.root.read_bytes())["signed"]["roles"]["targets"]["keyids"][0]
    rotated, root_id, new_id = rotate_root_key(run, qs, tmp_path)
    # A targets key signing too (a valid signature that does not count for root), and a forged one.
    doc = json.loads(rotated.read_bytes())
    doc["signatures"].append({"keyid": targets_id, "sig": doc["signatures"][0]["sig"]})
    rotated.write_text(json.dumps(doc))

    shown = run("root", "show", str(rotated), "--json")
    assert shown.code == 0, shown.err
    by_key = {s["keyid"]: s for s in shown.json()["signed_by"]}
    assert by_key[new_id] == {"keyid": new_id, "roles": ["root"], "status": "valid"}
    assert by_key[root_id] == {"keyid": root_id, "roles": [], "status": "unknown key"}  # the old root's key
    assert by_key[targets_id] == {"keyid": targets_id, "roles": ["targets"], "status": "invalid"}
    assert shown.json()["root_threshold"] == {"threshold": 1, "valid": 1, "met": True}

    text = run("root", "show", str(rotated)).out.splitlines()
    assert "signatures: 3; root threshold 1: 1 valid root signature(s), met" in text
    assert f"  {new_id}  valid, listed for root" in text
    assert f"  {root_id}  unknown key" in text
    assert f"  {targets_id}  invalid, listed for targets" in text


def test_root_show_says_when_the_threshold_is_not_met(run: Runner, tmp_path: Path) -> None:
    qs = make_quickstart(tmp_path / "q")
    assert run("root", "set-threshold", str(qs.root), "root", "2").code == 0  # clears the signatures
    shown = run("root", "show", str(qs.root), "--json").json()
    assert shown["signed_by"] == [] and shown["root_threshold"] == {"threshold": 2, "valid": 0, "met": False}
    assert "signatures: 0; root threshold 2: 0 valid root signature(s), NOT met" in run("root", "show",
                                                                                         str(qs.root)).out
