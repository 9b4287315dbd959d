"""The audit's key table lists every key of every root in the chain, retired ones too (issue 17)."""

from __future__ import annotations

from pathlib import Path

from .clirun import Runner
from .repohelpers import make_quickstart
from .test_root_show import rotate_root_key


def test_keys_of_older_roots_are_listed_as_retired(run: Runner, tmp_path: Path) -> None:
    qs = make_quickstart(tmp_path / "q")
    rotated, old_root_id, new_id = rotate_root_key(run, qs, tmp_path)
    assert run("refresh", *qs.args("--root-role", str(rotated))).code == 0

    report_path = tmp_path / "audit.md"
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                 "--targets", "none", "--json", "--report", str(report_path))
    assert result.code == 0, result.err
    report = result.json()
    keys = {k["keyid"]: k for k in report["keys"]}
    assert keys[old_root_id]["current"] is False and keys[old_root_id]["root_versions"] == [1]
    assert keys[old_root_id]["roles"] == []
    assert keys[new_id]["current"] is True and keys[new_id]["root_versions"] == [2]
    assert keys[new_id]["roles"] == ["root"]
    others = [k for k in keys.values() if k["keyid"] not in (old_root_id, new_id)]
    assert len(others) == 3 and all(k["root_versions"] == [1, 2] and k["current"] for k in others)
    retired = [f["message"] for f in report["findings"] if "retired" in f["message"]]
    assert retired == [f"key {old_root_id[:16]}… (ed25519) is retired: held by root v1 (root), not by the "
                       "current root v2"]
    rows = [line for line in report_path.read_text().splitlines() if line.startswith(f"| `{old_root_id[:16]}")]
    assert len(rows) == 1 and rows[0].endswith("| v1 | **retired** |")


def test_a_single_root_lists_its_keys_as_current(run: Runner, tmp_path: Path) -> None:
    qs = make_quickstart(tmp_path / "q")
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                 "--targets", "none", "--json")
    keys = result.json()["keys"]
    assert len(keys) == 4 and all(k["current"] and k["root_versions"] == [1] for k in keys)
    assert not [f for f in result.json()["findings"] if "retired" in f["message"]]
