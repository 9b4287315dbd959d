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


def test_a_retired_key_shows_the_roles_it_held(run: Runner, tmp_path: Path) -> None:
    from .repohelpers import make_quickstart
    from .test_root_show import rotate_root_key

    qs = make_quickstart(tmp_path / "q")
    rotated, old_id, new_id = rotate_root_key(run, qs, tmp_path)
    assert run("refresh", *qs.args("--root-role", str(rotated))).code == 0
    for report_name in ("audit.md", "audit.html"):
        result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets),
                     "--root", str(qs.root), "--targets", "none", "--json", "--report", str(tmp_path / report_name))
        assert result.code == 0, result.err
    keys = {k["keyid"]: k for k in result.json()["keys"]}
    assert keys[old_id]["roles"] == [] and keys[old_id]["held_roles"] == [{"root_version": 1, "roles": ["root"]}]
    assert keys[new_id]["held_roles"] == [{"root_version": 2, "roles": ["root"]}]
    row = [line for line in (tmp_path / "audit.md").read_text().splitlines() if line.startswith(f"| `{old_id[:16]}")]
    assert len(row) == 1 and "| root (v1) |" in row[0], row
    html = (tmp_path / "audit.html").read_text()
    old_row = html[html.index(f'title="{old_id}"'):]
    assert "<td>root (v1)</td>" in old_row[:old_row.index("</tr>")]


def test_roles_held_per_root_version_read_as_one_cell() -> None:
    from repo_tool.audit.findings import held_roles_text

    held = [{"root_version": 1, "roles": ["timestamp"]}, {"root_version": 2, "roles": ["timestamp", "snapshot"]},
            {"root_version": 3, "roles": []}]
    assert held_roles_text(held) == "timestamp (v1, v2), snapshot (v2), no role (v3)"
    same = [{"root_version": 1, "roles": ["root"]}, {"root_version": 2, "roles": ["root"]}]
    assert held_roles_text(same, always_versions=False) == "root"
    assert held_roles_text(same) == "root (v1, v2)"
    assert held_roles_text(None) == held_roles_text([{"bad": 1}]) == "—"


def test_debug_shows_the_library_exception_behind_an_error(run: Runner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("x: [\n")
    result = run("--debug", "waves", "show", str(bad), "--start", "now")
    assert result.code == 2
    assert "yaml.parser.ParserError" in result.err and "yaml/parser.py" in result.err, result.err
    assert result.err.strip().splitlines()[-1].startswith(f"repo-tool: error: {bad}: invalid YAML")


def test_yaml_errors_say_what_and_where_without_pyyaml_internals(run: Runner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for text, why in [("x: [\n", "expected the node content, but found '<stream end>' (at line 2, column 1)"),
                      ("a: 1\na: 2\n", "found duplicate key 'a' (at line 2, column 1)"),
                      ("a: b: c\n", "mapping values are not allowed here (at line 1, column 5)"),
                      ("a: \x07\n", "unacceptable character '\\x07': special characters are not allowed "
                                   "(at character 4)")]:
        bad.write_text(text)
        result = run("waves", "show", str(bad), "--start", "now")
        assert_one_line_error(result, 2, f"{bad}: invalid YAML: {why}")
        assert "<unicode string>" not in result.err and "while parsing" not in result.err


def test_a_config_from_repo_tool_config_is_traced_to_the_variable(run: Runner, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nonexist.yaml"
    monkeypatch.setenv("REPO_TOOL_CONFIG", str(missing))
    result = run("refresh", "--variant", "v", "--arch", "x86_64")
    assert_one_line_error(result, 2, f"{missing} (from REPO_TOOL_CONFIG): cannot read: ")
    given = run("refresh", "--config", str(missing), "--variant", "v", "--arch", "x86_64")
    assert_one_line_error(given, 2, f"{missing}: cannot read: ")
    assert "REPO_TOOL_CONFIG" not in given.err
    broken = tmp_path / "broken.yaml"
    broken.write_text("repos: [\n")
    monkeypatch.setenv("REPO_TOOL_CONFIG", str(broken))
    result = run("audit", "--variant", "v", "--arch", "x86_64")
    assert_one_line_error(result, 2, f"{broken} (from REPO_TOOL_CONFIG): invalid YAML: ")


def test_root_help_says_r_is_role_only_where_there_is_an_r(run: Runner) -> None:
    removed = run("root", "remove-key", "--help")
    assert removed.code == 0 and "-r" not in removed.out.split("Options:")[1], removed.out
    assert "-r/--role" in run("root", "add-key", "--help").out
    signing = run("root", "sign", "--help").out
    assert "-c/--cross-sign" in signing and "-r/--role" not in signing
    assert "-r is --role in its commands" in " ".join(run("root", "--help").out.split())


def test_manifest_add_update_h_alone_says_h_is_hash(run: Runner) -> None:
    result = run("manifest", "add-update", "-h")
    assert_one_line_error(result, 2, "Option '-h' requires an argument", "-h is --hash here", "--help")
