"""Review fixes of issue 17 on the audit commands and the CLI conventions: paths said once, ``ok`` in
every verdict, a wrong ``--root`` refused up front, library errors under ``--debug``, YAML and
REPO_TOOL_CONFIG messages, retired keys' roles, help hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from .clirun import Runner, assert_one_line_error
from .repohelpers import QS

REFUSED = "http://127.0.0.1:9/m/"  # the discard port: nothing listens, the connection is refused


def _audit(run: Runner, qs: QS, *extra: str, meta: str | None = None, root: str | None = None) -> list[str]:
    result = run("audit", "--metadata-url", meta or str(qs.meta), "--targets-url", str(qs.targets),
                 "--root", root or str(qs.root), "--targets", "none", *extra)
    return [line for line in result.out.splitlines() if line.startswith(("ERROR", "WARNING", "INFO"))]


def test_an_unreachable_repository_names_each_file_once(run: Runner, qs: QS) -> None:
    lines = _audit(run, qs, meta=REFUSED)
    chain = [line for line in lines if "root-chain" in line]
    assert len(chain) == 1 and chain[0].count(f"{REFUSED}1.root.json") == 1, chain


def test_an_empty_directory_names_itself_once(run: Runner, qs: QS, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    lines = _audit(run, qs, meta=str(empty))
    load = [line for line in lines if " load " in line]
    assert load and all(line.count(empty.as_uri()) == 1 for line in load), load


def test_audit_diff_names_an_empty_side_once(run: Runner, qs: QS, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("audit-diff", str(empty), str(qs.meta), "--root", str(qs.root))
    assert_one_line_error(result, 1, "OLD", "timestamp.json not found")
    assert result.err.count(empty.as_uri()) == 1, result.err


def test_audit_json_has_ok_and_the_metadata_url(run: Runner, qs: QS, tmp_path: Path) -> None:
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                 "--targets", "none", "--json")
    report = result.json()
    assert result.code == 0 and report["ok"] is True and report["result"] == "pass"
    assert report["metadata_url"] == report["repository"]["metadata_url"] == qs.meta.as_uri() + "/"
    (qs.meta / "timestamp.json").write_text("{}")
    failed = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                 "--targets", "none", "--json")
    assert failed.code == 1 and failed.json()["ok"] is False and failed.json()["result"] == "fail"


def test_check_expirations_json_has_ok(run: Runner, qs: QS) -> None:
    result = run("check-expirations", "--metadata-url", str(qs.meta), "--root", str(qs.root), "--json")
    assert result.code == 0 and result.json()["ok"] is True and result.json()["result"] == "ok"
    soon = run("check-expirations", "--metadata-url", str(qs.meta), "--root", str(qs.root), "--json",
               "--within", "400 days")
    assert soon.code == 1 and soon.json()["ok"] is False and soon.json()["result"] == "expiring"


@pytest.mark.parametrize("command", ["audit", "audit-diff", "check-expirations"])
@pytest.mark.parametrize("wrong", ["keys/root.pem", "missing.json", "repo-tool.yaml"])
def test_a_wrong_root_is_one_usage_error_naming_the_flag(run: Runner, qs: QS, command: str, wrong: str) -> None:
    root = str(qs.dir / wrong)
    args = {"audit": ["audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--targets", "none"],
            "audit-diff": ["audit-diff", str(qs.meta), str(qs.meta)],
            "check-expirations": ["check-expirations", "--metadata-url", str(qs.meta)]}[command]
    result = run(*args, "--root", root)
    assert_one_line_error(result, 2, f"--root {root}: ")
    assert result.err.count(root) == 1 and result.out == "", result.err


def test_a_root_not_signed_by_its_own_keys_is_refused_up_front(run: Runner, qs: QS, tmp_path: Path) -> None:
    import json

    doc = json.loads(qs.root.read_bytes())
    doc["signatures"] = []
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(json.dumps(doc))
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(unsigned))
    assert_one_line_error(result, 2, f"--root {unsigned}: not a trusted root")
