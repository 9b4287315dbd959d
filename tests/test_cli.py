"""The command-line contract of the core issue: forms, outputs, exit codes, one-line errors."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repo_tool.cli import main
from repo_tool.core.manifest import EMPTY_MANIFEST_BYTES, Manifest

from .clirun import Runner, assert_one_line_error
from .conftest import BOTTLEROCKET, MANIFESTS, REPO, UPDOG_TESTS
from .repohelpers import QS

START = "2025-04-03T23:08:37.864228309Z"


# --- waves -------------------------------------------------------------------------


def test_waves_show_table(run: Runner) -> None:
    result = run("waves", "show", str(REPO / "waves" / "default-waves.toml"), "--start", START)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[1].split()[:5] == ["wave", "seeds", "fleet", "%", "start_after"]
    row = lines[3].split()
    assert row[:6] == ["1", "1-20", "1", "1", "hour", "2025-04-04T00:08:37.864228309Z"]
    assert lines[-1].split()[:4] == ["7", "1844-2047", "100", "6"]


def test_waves_show_json_is_the_manifest_map(run: Runner) -> None:
    result = run("waves", "show", "default", "--start", START, "--json")
    assert result.code == 0
    assert result.out.endswith("}\n")
    assert result.json()["waves"] == {
        "0": "2025-04-04T00:08:37.864228309Z", "20": "2025-04-04T03:08:37.864228309Z",
        "102": "2025-04-04T23:08:37.864228309Z", "307": "2025-04-05T23:08:37.864228309Z",
        "819": "2025-04-07T23:08:37.864228309Z", "1228": "2025-04-08T23:08:37.864228309Z",
        "1843": "2025-04-09T23:08:37.864228309Z"}
    assert list(result.json()["waves"]) == ["0", "20", "102", "307", "819", "1228", "1843"]


def test_waves_show_ohno_minutes(run: Runner) -> None:
    result = run("waves", "show", str(REPO / "waves" / "ohno.toml"), "--start", "2025-01-01T00:00:00Z", "--json")
    assert result.code == 0
    assert result.json()["waves"] == {
        "0": "2025-01-01T00:30:00Z", "102": "2025-01-01T01:00:00Z", "512": "2025-01-01T02:00:00Z",
        "1024": "2025-01-01T02:30:00Z", "1843": "2025-01-01T03:00:00Z"}


def test_waves_ready_at(run: Runner) -> None:
    result = run("waves", "ready-at", "default", "--start", START, "--seed", "150", "--json")
    assert result.code == 0
    data = result.json()
    assert data["seed"] == 150
    # wave 102 -> 307 from +1d to +2d: tps = 86400 s / 205, target = start + 1d + 150 * tps
    assert data["ready_at"] == "2025-04-05T16:42:17.376423409Z"
    assert data["wave"]["first_seed"] == 103 and data["wave"]["last_seed"] == 307
    text = run("waves", "ready-at", "default", "--start", START, "--seed", "2000")
    assert "offered from 2025-04-09T23:08:37.864228309Z" in text.out
    initial = run("waves", "ready-at", "default", "--start", START, "--seed", "0", "--json").json()
    assert initial["immediately"] is True and initial["ready_at"] == START


def test_waves_simulate_text_and_plots(run: Runner, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png, svg = tmp_path / "curve.png", tmp_path / "curve.svg"
    result = run("waves", "simulate", "ohno", "--start", START, "--fleet", "500", "--random-seed", "7",
                 "--plot", str(png))
    assert result.code == 0
    assert "100% |" in result.out and "#" in result.out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert run("waves", "simulate", "ohno", "--start", START, "--plot", str(svg)).code == 0
    assert b"<svg" in svg.read_bytes()[:500]
    data = run("waves", "simulate", "default", "--start", START, "--fleet", "2048", "--random-seed", "1",
               "--json").json()
    milestones = {m["fraction"]: m for m in data["milestones"]}
    assert milestones[1.0]["all_seeds"] == "2025-04-09T23:08:37.864228309Z"
    fractions = [point["all_seeds"] for point in data["series"]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("waves", "show", "default"), ("--start",)),
        (("waves", "show", "nope.toml", "--start", "now"), ("nope.toml",)),
        (("waves", "show", "default", "--start", "2025-13-01T00:00:00Z"), ("--start", "month 13")),
        (("waves", "ready-at", "default", "--start", "now", "--seed", "2048"), ("--seed", "0 to 2047")),
        (("waves", "ready-at", "default", "--start", "now", "--seed", "x"), ("--seed",)),
        (("waves", "simulate", "default", "--start", "now", "--plot", "x.pdf"), ("--plot", ".png or .svg")),
        (("waves", "bogus"), ("bogus",)),
    ],
)
def test_waves_usage_errors(run: Runner, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    assert_one_line_error(run(*args), 2, *needles)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 0\n",
         "wave 1: fleet_percentage must be between 1 and 100"),
        ("[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 101\n", "found 101"),
        ("[[waves]]\nstart_after = '2 hours'\nfleet_percentage = 10\n[[waves]]\nstart_after = '1 hour'\n"
         "fleet_percentage = 100\n", "wave 2 (start_after '1 hour') does not start after wave 1 ('2 hours')"),
        ("[[waves]]\nstart_after = '1 month'\nfleet_percentage = 10\n", "unknown unit 'month'"),
        ("[[waves]]\nstart_after = '1 hour'\n", "missing key 'fleet_percentage'"),
    ],
)
def test_bad_policy_files(run: Runner, tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    assert_one_line_error(run("waves", "show", str(path), "--start", START), 2, str(path), needle)


# --- manifest ----------------------------------------------------------------------


def test_manifest_updata_workflow(run: Runner, tmp_path: Path) -> None:
    path = str(tmp_path / "manifest.json")
    assert run("manifest", "init", path).code == 0
    assert Path(path).read_bytes() == EMPTY_MANIFEST_BYTES
    assert_one_line_error(run("manifest", "init", path), 2, "already exists")
    add = ("manifest", "add-update", path, "-f", "aws-k8s-1.28", "-a", "x86_64", "-b", "boot.lz4", "-r",
           "root.lz4", "-h", "hash.lz4")
    assert run(*add, "-v", "1.26.0").code == 0
    assert run(*add, "-v", "1.26.1").code == 0
    assert_one_line_error(run(*add, "-v", "1.26.1"), 2, "already exists")
    assert_one_line_error(run(*add, "-v", "v1.26.2"), 2, "--version", "invalid version 'v1.26.2'")
    assert run("manifest", "set-waves", path, "-l", "aws-k8s-1.28", "-a", "x86_64", "-v", "1.26.1", "-w",
               "default", "--start-at", START).code == 0
    assert run("manifest", "set-migrations", path, "--from", str(BOTTLEROCKET / "release" / "Release.toml")).code == 0
    doc = json.loads(Path(path).read_bytes())
    assert [u["max_version"] for u in doc["updates"]] == ["1.26.1", "1.26.1"]
    assert doc["updates"][1]["waves"]["1843"] == "2025-04-09T23:08:37.864228309Z"
    assert len(doc["migrations"]) == 82
    assert not Path(path).read_bytes().endswith(b"\n")
    assert run("manifest", "validate", path).code == 0
    assert run("manifest", "set-max-version", path, "-m", "1.26.0").code == 0
    removed = run("manifest", "remove-update", path, "-l", "aws-k8s-1.28", "-a", "x86_64", "-v", "1.26.1")
    assert removed.code == 0 and "max_version" in removed.err
    shown = run("manifest", "show", path, "--json")
    assert shown.out == Path(path).read_text() + "\n"
    assert [str(u.version) for u in Manifest.from_bytes(Path(path).read_bytes()).updates] == ["1.26.0"]


def test_set_migrations_updata_spelling(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    shutil.copy(UPDOG_TESTS / "example.json", path)
    assert run("manifest", "set-migrations", "-f", str(UPDOG_TESTS / "release.toml"), "-t", str(path)).code == 0
    assert list(json.loads(path.read_bytes())["migrations"]) == ["(0.0.0, 0.0.1)", "(0.0.0, 0.0.2)",
                                                                  "(0.0.2, 0.0.3)"]
    assert_one_line_error(run("manifest", "set-migrations", "-f", str(UPDOG_TESTS / "release.toml")), 2, "FILE")


def test_failed_edit_leaves_file_untouched(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    shutil.copy(UPDOG_TESTS / "example.json", path)
    before = path.read_bytes()
    policy = tmp_path / "p.toml"
    policy.write_text("[[waves]]\nstart_after = '2 hours'\nfleet_percentage = 10\n[[waves]]\n"
                      "start_after = '1 hour'\nfleet_percentage = 100\n")
    result = run("manifest", "set-waves", str(path), "-l", "bottlerocket-aws-eks", "-a", "x86_64", "-v", "1.13.0",
                 "-w", str(policy))
    assert_one_line_error(result, 2, "p.toml: wave 2 (start_after '1 hour') does not start after wave 1")
    result = run("manifest", "set-waves", str(path), "-l", "bottlerocket-aws-eks", "-a", "x86_64", "-v", "9.0.0",
                 "-w", "default")
    assert_one_line_error(result, 2, "no update for bottlerocket-aws-eks x86_64 9.0.0")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "p.toml"]  # no temp files left


def test_validate_exit_codes(run: Runner, tmp_path: Path) -> None:
    assert_one_line_error(run("manifest", "validate", str(UPDOG_TESTS / "bad-bound.json")), 1,
                          "bad-bound.json", "Bad bound field: 234ab32")
    assert_one_line_error(run("manifest", "validate", str(UPDOG_TESTS / "duplicate-bound.json")), 1,
                          "Duplicate key ID: 0")
    assert_one_line_error(run("manifest", "validate", str(tmp_path / "missing.json")), 2, "cannot read manifest")
    unordered = tmp_path / "u.json"
    doc = json.loads((UPDOG_TESTS / "example.json").read_bytes())
    doc["updates"][0]["waves"]["1024"] = "2019-10-01T00:00:00Z"
    unordered.write_text(json.dumps(doc))
    assert_one_line_error(run("manifest", "validate", str(unordered)), 1, str(unordered),
                          'updates[0] (bottlerocket-aws-eks x86_64 1.13.0): waves: "1024" (2019-10-01T00:00:00Z) '
                          'does not start after "500"')
    assert run("manifest", "validate", str(UPDOG_TESTS / "example.json")).code == 0


def test_select_json_and_reasons(run: Runner) -> None:
    result = run("manifest", "select", str(UPDOG_TESTS / "multiple_x86_64.json"), "--variant",
                 "bottlerocket-aws-eks", "--arch", "x86_64", "--current", "1.10.0", "--seed", "123", "--json")
    assert result.code == 0
    data = result.json()
    assert data["update"]["version"] == "1.15.0" and data["downgrade"] is False
    assert list(data["update"]) == ["variant", "arch", "version", "max_version", "waves", "images"]
    reasons = data["reasons"]
    assert [r["kept"] for r in reasons] == [True, False, True, False]
    assert "above its max_version" in reasons[1]["why"] and "arch aarch64" in reasons[3]["why"]


def test_select_downgrade_and_waiting(run: Runner) -> None:
    down = run("manifest", "select", str(UPDOG_TESTS / "example_3_x86_64.json"), "--variant", "aws-k8s-1.15",
               "--arch", "x86_64", "--current", "0.1.3", "--seed", "1487")
    assert down.code == 0 and "(downgrade from 0.1.3)" in down.out
    waiting = run("manifest", "select", str(UPDOG_TESTS / "example.json"), "--variant", "bottlerocket-aws-eks",
                  "--arch", "x86_64", "--current", "1.12.0", "--seed", "700", "--at", "2019-10-06T16:00:00Z",
                  "--json").json()
    assert waiting["update"] is None
    assert waiting["reasons"][0]["why"].startswith("wave not reached")
    assert waiting["reasons"][0]["ready_at"] == "2019-10-08T15:00:00Z"
    assert_one_line_error(run("manifest", "select", str(UPDOG_TESTS / "example.json"), "--variant", "x",
                              "--current", "1.0.0", "--seed", "3000"), 2, "--seed")
    assert_one_line_error(run("manifest", "select", str(UPDOG_TESTS / "example.json"), "--variant", "x",
                              "--current", "1.0.0", "--seed", "3", "--version-lock", "1.13"), 2,
                          "Bad version string '1.13' in config")


def test_migrations_command(run: Runner) -> None:
    path = str(MANIFESTS / "update_metadata-tests" / "migrations.json")
    result = run("manifest", "migrations", path, "--from", "1.0.0", "--to", "1.5.0")
    assert result.out.split() == ["migration_1.1.0_a", "migration_1.1.0_b", "migration_1.5.0_shortcut"]
    data = run("manifest", "migrations", path, "--from", "1.5.0", "--to", "1.0.0", "--json").json()
    assert data["direction"] == "backward"
    assert data["retrieve"][-1] == "manifest.json"
    assert_one_line_error(run("manifest", "migrations", path, "--from", "1.0.0", "--to", "1.3.0"), 2,
                          "Reached end of migration chain at 1.2.0 but target is 1.3.0")


def test_module_entry_point_has_no_traceback(tmp_path: Path) -> None:
    """The real process: `python -m repo_tool`, exit codes and stderr as a user sees them."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    ok = subprocess.run([sys.executable, "-m", "repo_tool", "waves", "show", "ohno", "--start", START],
                        capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0 and "180 minutes" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "repo_tool", "manifest", "show", str(tmp_path / "none.json")],
                         capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("repo-tool: error: cannot read manifest") and "Traceback" not in bad.stderr


def test_image_bypasses_a_malformed_version_lock(run: Runner) -> None:
    result = run("manifest", "select", str(UPDOG_TESTS / "multiple_x86_64.json"), "--variant", "bottlerocket-aws-eks",
                 "--arch", "x86_64", "--current", "1.10.0", "--seed", "5", "--image", "1.13.0", "--version-lock",
                 "1.13", "--json")
    assert result.code == 0
    assert result.json()["update"]["version"] == "1.13.0"


def test_no_match_edits_warn_and_leave_the_file(run: Runner, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    shutil.copy(UPDOG_TESTS / "example.json", path)
    before = path.read_bytes()
    removed = run("manifest", "remove-update", str(path), "-l", "nope", "-a", "x86_64", "-v", "1.0.0")
    assert removed.code == 0 and "nothing removed" in removed.err
    capped = run("manifest", "set-max-version", str(path), "-m", "2.0.0", "--variant", "nope")
    assert capped.code == 0 and "nothing changed" in capped.err
    assert path.read_bytes() == before


def test_edits_do_not_validate_more_than_upstream(run: Runner, tmp_path: Path) -> None:
    """A backward migration key is refused by validate/set-migrations, not by unrelated edits (Decision 4)."""
    path = tmp_path / "m.json"
    doc = json.loads((UPDOG_TESTS / "example.json").read_bytes())
    doc["migrations"]["(1.13.0, 1.12.0)"] = []
    path.write_text(json.dumps(doc))
    assert run("manifest", "set-max-version", str(path), "-m", "1.21.0").code == 0
    assert run("manifest", "validate", str(path)).code == 1


@pytest.mark.parametrize(
    "args",
    [
        ("manifest", "select", str(UPDOG_TESTS / "example.json"), "--variant", "x", "--seed", "1",
         "--current", "1" * 5000 + ".0.0"),
        ("manifest", "select", str(UPDOG_TESTS / "example.json"), "--variant", "x", "--seed", "1",
         "--current", "1.0.0", "--at", "9" * 5000 + " days"),
        ("waves", "show", "default", "--start", "+" + "1" * 5000 + "-01-01T00:00:00Z"),
    ],
)
def test_absurd_arguments_are_usage_errors(run: Runner, args: tuple[str, ...]) -> None:
    result = run(*args)
    assert_one_line_error(result, 2)
    assert "internal error" not in result.err


LONG = "n" * 300  # over NAME_MAX: pathlib's exists()/is_file()/is_dir() raise ENAMETOOLONG (Python < 3.14)


@pytest.mark.parametrize(
    "args",
    [
        ("audit-diff", "qs/repo/metadata/aws-k8s-1.28/x86_64", LONG),
        ("quickstart", LONG),
        ("root", "init", LONG),
        ("root", "verify", LONG),
        ("keys", "generate", f"qs/{LONG}"),
        ("publish", "--config", "qs/repo-tool.yaml", "--variant", "aws-k8s-1.28", "--arch", "x86_64", "--version",
         "1.2.0", "--boot-image", LONG, "--root-image", LONG, "--hash-image", LONG),
    ],
    ids=lambda args: " ".join(a for a in args if a != LONG and not a.startswith("qs/")),
)
def test_a_file_name_too_long_is_a_one_line_usage_error(run: Runner, qs: QS, args: tuple[str, ...],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the CLI fuzzer (audit-diff crashed): every command that asks whether a file exists."""
    monkeypatch.chdir(qs.dir.parent)
    result = run(*args)
    assert_one_line_error(result, 2, "File name too long", LONG)


def test_keys_generate_leaves_no_key_when_the_public_file_cannot_be_written(run: Runner, tmp_path: Path) -> None:
    result = run("keys", "generate", str(tmp_path / "new.pem"), f"--public={tmp_path / LONG}")
    assert_one_line_error(result, 2, "--public", "File name too long")
    assert sorted(tmp_path.iterdir()) == []


def test_names_up_to_name_max_can_be_written(run: Runner, tmp_path: Path) -> None:
    """The temp file beside a long name (".NAME.XXXXXXXX.tmp") must not be what goes over NAME_MAX."""
    key = tmp_path / ("k" * 251 + ".pem")
    assert run("keys", "generate", str(key)).code == 0
    assert run("root", "init", str(tmp_path / ("r" * 250 + ".json"))).code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert len(list(tmp_path.iterdir())) == 2


@settings(max_examples=150)
@given(
    start=st.text(max_size=30),
    seed=st.text(alphabet="0123456789-+x ", max_size=6),
    current=st.text(alphabet="0123456789.-+av", max_size=12),
    lock=st.text(alphabet="0123456789.vlatesL", max_size=10),
)
def test_cli_never_crashes_on_odd_arguments(start: str, seed: str, current: str, lock: str) -> None:
    for args in (
        ["waves", "ready-at", "ohno", "--start", start, "--seed", seed],
        ["manifest", "select", str(UPDOG_TESTS / "multiple_x86_64.json"), "--variant", "bottlerocket-aws-eks",
         "--arch", "x86_64", "--current", current, "--seed", seed, "--version-lock", lock, "--at", start],
    ):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        assert code in (0, 2), err.getvalue()
        assert "internal error" not in err.getvalue()
        assert "Traceback" not in err.getvalue()


def test_commands_load_on_demand_and_misspellings_get_a_suggestion() -> None:
    """A node's `repo-tool node` imports neither the publisher's signers nor boto3; an unknown command
    still gets click's suggestion although nothing is loaded yet."""
    probe = ("import sys; from repo_tool.cli import main\n"
             "try:\n    main(['node', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('boto3', 'repo_tool.signing.signers', 'repo_tool.publish.live')"
             " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
    wrong = subprocess.run([sys.executable, "-m", "repo_tool", "nod"], capture_output=True, text=True, check=False)
    assert wrong.returncode == 2
    assert wrong.stderr == "repo-tool: error: No such command 'nod'. Did you mean 'node'? (see 'repo-tool --help')\n"
    sub = subprocess.run([sys.executable, "-m", "repo_tool", "rollout", "paus"], capture_output=True, text=True,
                         check=False)
    assert (sub.returncode, sub.stderr) == (2, "repo-tool: error: No such command 'paus'. Did you mean 'pause' or "
                                               "'status'? "
                                               "(see 'repo-tool rollout --help')\n")
