"""One-line errors in plain words (issue 17): no class name (ours, upstream's or a library's) reaches
the user, and a file is named once, not ``f: ... f ...``."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from repo_tool.errors import ConfigError, mentions

from .clirun import Run, Runner, assert_one_line_error
from .conftest import UPDOG_TESTS
from .repohelpers import QS

CLASS_NAME = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b")  # BadOffset, WavesUnordered, MalformedFraming
START = "2025-04-03T00:00:00Z"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A copy of updog's example.json (one update, bottlerocket-aws-eks x86_64 1.13.0)."""
    path = tmp_path / "m.json"
    path.write_bytes((UPDOG_TESTS / "example.json").read_bytes())
    return path


def policy(*entries: tuple[str, int]) -> str:
    return "".join(f"[[waves]]\nstart_after = '{o}'\nfleet_percentage = {p}\n" for o, p in entries)


def _plain(result: Run, code: int, *needles: str) -> str:
    assert_one_line_error(result, code, *needles)
    line = result.err.strip()
    assert not CLASS_NAME.findall(line), line
    return line


@pytest.mark.parametrize(("body", "needle"), [
    (policy(("1 hour", 40), ("2 hours", 20), ("3 hours", 100)),
     "wave 2 (fleet_percentage 20) is below wave 1's 40: fleet_percentage is the share of the fleet offered the "
     "update by the end of a wave, so it must not decrease"),
    (policy(("2 hours", 10), ("1 hour", 100)), "wave 2 (start_after '1 hour') does not start after wave 1 ('2 hours')"),
    (policy(("1 month", 10)), "wave 1: start_after: cannot parse offset '1 month': unknown unit 'month'"),
    (policy(("in 9999999 weeks", 10)), "wave 1: start_after: offset 'in 9999999 weeks' from"),
    (policy(("1 hour", 0)), "wave 1: fleet_percentage must be between 1 and 100"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "invalid TOML: nested too deeply"),
    ("[[waves]\n", "invalid TOML"),
])
def test_bad_wave_policies_name_the_file_and_entry(run: Runner, tmp_path: Path, manifest: Path, body: str,
                                                   needle: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(body)
    line = _plain(run("waves", "show", str(path), "--start", START), 2, needle)
    assert line.startswith(f"repo-tool: error: {path}: ") and line.count(str(path)) == 1
    _plain(run("manifest", "set-waves", str(manifest), "-l", "bottlerocket-aws-eks", "-a", "x86_64", "-v", "1.13.0",
               "-w", str(path), "--start-at", START), 2, f"{path}: {needle}")


def test_unordered_manifest_waves_name_the_update_and_keys(run: Runner, tmp_path: Path) -> None:
    doc = json.loads((UPDOG_TESTS / "example.json").read_bytes())
    doc["updates"][0]["waves"]["1024"] = "2019-10-01T00:00:00Z"
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(doc))
    line = _plain(run("manifest", "validate", str(path)), 1,
                  f'{path}: updates[0] (bottlerocket-aws-eks x86_64 1.13.0): waves: "1024" '
                  '(2019-10-01T00:00:00Z) does not start after "500" (2019-10-07T15:00:00Z)')
    assert "seed" in line and line.count(str(path)) == 1


@pytest.mark.parametrize(("body", "needle"), [
    ('version = "1.0.0"\n[migrations]\n"(1.0, 1.1.0)" = []\n', "migrations: Could not parse OS versions: 1.0, 1.1.0"),
    ('version = "1.0.0"\n[migrations\n', "invalid TOML"),
    ('version = "1.x"\n[migrations]\n', "version"),
])
def test_bad_release_toml(run: Runner, tmp_path: Path, manifest: Path, body: str, needle: str) -> None:
    release = tmp_path / "Release.toml"
    release.write_text(body)
    line = _plain(run("manifest", "set-migrations", str(manifest), "--from", str(release)), 2, str(release), needle)
    assert line.count(str(release)) == 1


def test_config_files_are_named_once(run: Runner, tmp_path: Path) -> None:
    missing = tmp_path / "updog.toml"
    line = _plain(run("node", "--config", str(missing), "check-update"), 1, str(missing), "cannot read")
    assert line.count(str(missing)) == 1  # was "updog.toml: updog.toml: cannot read the updog config"
    infra = tmp_path / "Infra.toml"
    infra.write_text("[repo.a\n")
    _plain(run("refresh", "--config", str(infra), "--variant", "v", "--arch", "x86_64"), 2,
           f"{infra}: invalid TOML")  # was the TOML error without the file


def test_key_files_are_named_once_without_library_internals(run: Runner, qs: QS, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    junk.chmod(0o600)
    line = _plain(run("root", "sign", str(qs.root), "-k", str(junk)), 2, "cannot read private key")
    assert line.count(str(junk)) == 1 and "Tag {" not in line and "See https" not in line
    junk.chmod(0o644)
    line = _plain(run("root", "sign", str(qs.root), "-k", str(junk)), 2, f"key file {junk} has mode 0644")
    assert line.count(str(junk)) == 2  # once as the file at fault, once in the command that fixes it
    public = tmp_path / "public.pem"
    public.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    line = _plain(run("root", "add-key", str(qs.root), "-k", str(public), "-r", "root"), 2,
                  f"key {public}: cannot read public key: Could not deserialize key data")
    assert "Tag {" not in line and "Details" not in line
    missing = tmp_path / "none.pem"
    line = _plain(run("root", "add-key", str(qs.root), "-k", f"file:{missing}", "-r", "root"), 2,
                  f"cannot read {missing}: No such file")
    assert line.count(str(missing)) == 1


def test_a_refused_connection_is_said_in_words(run: Runner, qs: QS) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    result = run("audit", "--metadata-url", url, "--targets-url", url, "--root", str(qs.root), "--json")
    messages = [f["message"] for f in result.json()["findings"]]
    assert any("Connection refused" in m for m in messages), messages
    assert not [m for m in messages if CLASS_NAME.search(m.replace(url, ""))], messages


def test_within_does_not_repeat_a_path_the_message_names() -> None:
    error = ConfigError("cannot read /x/a.toml: No such file or directory")
    assert error.within("/x/a.toml").message == error.message
    assert ConfigError("a.toml: bad").within("a.toml").message == "a.toml: bad"
    assert ConfigError("cannot read /x/a.toml.bak").within("/x/a.toml").message.startswith("/x/a.toml: ")
    assert ConfigError("invalid version '1.x'").within("version").message == "version: invalid version '1.x'"
    assert mentions("key file k.pem has mode 0644", "k.pem") and not mentions("key file kk.pem", "k.pem")


def test_a_home_of_no_user_is_a_config_error_naming_the_field(run: Runner, qs: QS) -> None:
    text = qs.config.read_text()
    qs.config.write_text(text.replace("    root: root.json", "    root: ~nosuchuser-rt/root.json"))
    assert "~nosuchuser-rt" in qs.config.read_text()
    result = run("refresh", "--config", str(qs.config), "--variant", "aws-k8s-1.28", "--arch", "x86_64", "--plan")
    # was "internal error: RuntimeError: Could not determine home directory." (exit 1)
    _plain(result, 2, f"{qs.config}: repos.", ".root: ~nosuchuser-rt/root.json: cannot expand '~'")
