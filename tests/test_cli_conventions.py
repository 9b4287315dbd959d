"""CLI conventions over the whole command tree: --help everywhere, -h's hint, help on every option,
--json on every command that reports a result, shell completion, REPO_TOOL_CONFIG and --debug."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from repo_tool import aws
from repo_tool.cli import cli
from repo_tool.cli.node_help import UPDOG_COMMANDS
from repo_tool.config import BUILTIN_POLICIES

from .clirun import Run, Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT


def walk(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command of the tree with its path, groups included, commands loaded on demand too."""
    yield path, group
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))
        else:
            yield (*path, name), command


TREE = list(walk())
# node's own commands are parsed by node itself (updog's command line), not by click
PATHS = [path for path, _ in TREE] + [("node", name) for name in UPDOG_COMMANDS]
LEAVES = {" ".join(path): command for path, command in TREE if not isinstance(command, click.Group)}
EXITS_ONE = ("node", "tuf-client")  # every failure exits 1 there, usage errors too (updog, the conformance protocol)


def test_the_walk_finds_lazy_commands_and_node_commands() -> None:
    names = {" ".join(path) for path in PATHS}
    for expected in ("publish", "tuf-client init", "tuf-client download", "node", "node check-update",
                     "node make-disk", "manifest add-update", "root verify", "keys import-kms", "rollout reschedule"):
        assert expected in names, expected
    assert len(PATHS) > 60


@pytest.mark.parametrize("path", PATHS, ids=lambda path: " ".join(path) or "-")
def test_help_works_on_every_command_path(run: Runner, path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.code == 0, result.err
    assert result.err == ""
    first = result.out.splitlines()[0]
    assert first.startswith("Usage: repo-tool"), first
    assert all(word in first for word in path), first


def test_help_through_the_real_cli_process() -> None:
    """The console entry, in its own process: the paths that failed before (a group's required option,
    node's own command line)."""
    for path in (("tuf-client", "init"), ("tuf-client", "download"), ("node", "update")):
        done = subprocess.run([sys.executable, "-m", "repo_tool", *path, "--help"], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert done.stdout.startswith("Usage: repo-tool"), done.stdout


def test_tuf_client_commands_still_need_metadata_dir(run: Runner, tmp_path: Path) -> None:
    """--metadata-dir is checked by each command now, not by the group (so `COMMAND --help` works)."""
    for command in ("refresh", "download"):
        assert_one_line_error(run("tuf-client", "--metadata-url", "file:///x/", command), 1,
                              f"{command} needs --metadata-dir")
    assert_one_line_error(run("tuf-client", "init", str(tmp_path / "root.json")), 1, "init needs --metadata-dir")


@pytest.mark.parametrize("path", [p for p in PATHS if p != ("manifest", "add-update")],
                         ids=lambda path: " ".join(path) or "-")
def test_h_is_refused_with_a_hint_to_use_help(run: Runner, path: tuple[str, ...]) -> None:
    result = run(*path, "-h")
    code = 1 if path[:1] in (("node",), ("tuf-client",)) else 2
    assert_one_line_error(result, code, "-h is not short for --help", "updata's -h/--hash", "--help')")


def test_h_is_updatas_hash_in_manifest_add_update_and_the_top_help_says_so(run: Runner) -> None:
    result = run("manifest", "add-update", "-h")
    assert_one_line_error(result, 2, "'-h' requires an argument")
    top = run("--help")
    assert "not -h: 'manifest add-update' keeps -h as updata's -h/--hash" in flat(top.out)


def test_a_late_debug_is_pointed_before_the_command(run: Runner) -> None:
    assert_one_line_error(run("waves", "show", "default", "--debug"), 2, "--debug goes before the command")
    assert_one_line_error(run("node", "status", "--debug"), 1, "--debug goes before the command")


def test_every_option_has_help() -> None:
    missing = [f"{' '.join(path)} {'/'.join(param.opts)}" for path, command in TREE for param in command.params
               if isinstance(param, click.Option) and not param.help]
    assert missing == []


def test_flags_with_two_meanings_say_which_in_their_help(run: Runner) -> None:
    """`-r/--root` is a root image in manifest add-update (also --root-image), --role in root add-key;
    --root is a trusted root.json elsewhere; each manifest and root command says whose flags it follows."""
    add = run("manifest", "add-update", "--help").out
    assert "-r, --root, --root-image TEXT" in add and "not a root.json, not --role" in flat(add)
    assert "-h, --hash, --hash-image TEXT" in add
    for path in PATHS:
        if path[:1] == ("manifest",):
            assert "Flags follow Bottlerocket's updata" in flat(run(*path, "--help").out), path
        if path[:1] == ("root",):
            assert "follow tuftool root" in flat(run(*path, "--help").out), path
    assert "trusted root.json file" in flat(run("audit", "--help").out)
    assert "Flag names follow pubsys repo's" in flat(run("publish", "--help").out)
    assert "a version in 'migrations'" in flat(run("manifest", "set-migrations", "--help").out)
    assert "REPO_TOOL_CONFIG does not apply" in flat(run("node", "--help").out)


# --- --json -----------------------------------------------------------------------------------

# Commands that report a result without --json, and why.  Groups only list their commands.
WITHOUT_JSON = {
    "node": "speaks updog's output format: updog's own -j/--json after the command (check-update, update, status)",
    "tuf-client init": "the tuf-conformance suite's client protocol fixes its options and output",
    "tuf-client refresh": "the tuf-conformance suite's client protocol fixes its options and output",
    "tuf-client download": "the tuf-conformance suite's client protocol fixes its options and output",
}


def test_every_command_that_reports_a_result_has_json_or_says_why_not() -> None:
    without = {name for name, command in LEAVES.items()
               if not any("--json" in param.opts for param in command.params)}
    assert without == set(WITHOUT_JSON)
    for name in ("root verify", "manifest validate", "root sign", "manifest add-update"):
        assert name not in without


# --- completion -------------------------------------------------------------------------------


def complete(run: Runner, monkeypatch: pytest.MonkeyPatch, line: str, **env: str) -> list[str]:
    """bash's completion request for ``line`` (the cursor at its end): click's env-var protocol."""
    monkeypatch.setenv("_REPO_TOOL_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", line)
    monkeypatch.setenv("COMP_CWORD", str(len(line.split(" ")) - 1))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run()
    assert result.code == 0 and result.err == "", result.err
    return [line for line in result.out.splitlines() if line]


def flat(text: str) -> str:
    """Help text with its wrapping undone."""
    return " ".join(text.split())


def plain(items: list[str]) -> list[str]:
    return [item.partition(",")[2] for item in items if item.startswith("plain,")]


def test_policy_names_complete(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = complete(run, monkeypatch, "repo-tool waves show ")
    assert plain(everything) == list(BUILTIN_POLICIES)
    assert everything[0] == "file,"  # a policy file completes too
    assert plain(complete(run, monkeypatch, "repo-tool publish --wave-policy sl")) == ["slow-roll"]
    assert plain(complete(run, monkeypatch, "repo-tool rollout reschedule --wave-policy a")) == ["accelerated"]
    assert plain(complete(run, monkeypatch, "repo-tool manifest set-waves m.json -w o")) == ["ohno"]
    assert plain(complete(run, monkeypatch, "repo-tool quickstart d --wave-policy de")) == ["default"]


def two_repo_config(qs: QS) -> Path:
    text = qs.config.read_text()
    body = text[text.index("  dev:"):]
    path = qs.dir / "two.yaml"
    path.write_text("repos:\n" + body + body.replace("  dev:", "  prod:", 1))
    return path


def test_repo_names_complete_from_the_config(run: Runner, monkeypatch: pytest.MonkeyPatch, qs: QS) -> None:
    config = two_repo_config(qs)
    assert plain(complete(run, monkeypatch, f"repo-tool publish --config {config} --repo ")) == ["dev", "prod"]
    assert plain(complete(run, monkeypatch, f"repo-tool audit --config {config} --repo p")) == ["prod"]
    assert plain(complete(run, monkeypatch, "repo-tool refresh --repo ", REPO_TOOL_CONFIG=str(config))) == \
        ["dev", "prod"]
    assert plain(complete(run, monkeypatch, f"repo-tool check-expirations --config {config} --repo d")) == ["dev"]
    # a missing or broken config: no suggestions, and no error in the shell
    assert complete(run, monkeypatch, f"repo-tool refresh --config {qs.dir}/missing.yaml --repo ") == []
    assert complete(run, monkeypatch, f"repo-tool refresh --config {qs.root} --repo ") == []


def test_node_commands_and_flags_complete(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    assert plain(complete(run, monkeypatch, "repo-tool node ")) == list(UPDOG_COMMANDS)
    assert plain(complete(run, monkeypatch, "repo-tool node --disk d.img up")) == [
        "update", "update-image", "update-apply", "update-revert"]
    assert plain(complete(run, monkeypatch, "repo-tool node update --re")) == ["--reboot"]
    assert plain(complete(run, monkeypatch, "repo-tool node update ")) == [
        "-i", "--image", "-n", "--now", "--ignore-waves", "-r", "--reboot", "-j", "--json", "--variant"]
    assert "--trusted-root" in plain(complete(run, monkeypatch, "repo-tool node --tr"))
    assert complete(run, monkeypatch, "repo-tool node make-disk ") == ["file,"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_scripts_of_the_readme(shell: str) -> None:
    env = {"_REPO_TOOL_COMPLETE": f"{shell}_source", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "repo_tool"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"_REPO_TOOL_COMPLETE={shell}_complete" in done.stdout.replace('"', "").replace("'", "")


# --- REPO_TOOL_CONFIG ---------------------------------------------------------------------------


def test_repo_tool_config_is_the_default_config_and_help_says_so(run: Runner, monkeypatch: pytest.MonkeyPatch,
                                                                 qs: QS) -> None:
    for command in ("publish", "refresh", "rollout pause", "audit", "check-expirations", "publish-release"):
        assert "env var: REPO_TOOL_CONFIG" in flat(run(*command.split(), "--help").out), command
    assert_one_line_error(run("refresh", "--variant", VARIANT, "--arch", ARCH, "--plan"), 2, "--config")
    monkeypatch.setenv("REPO_TOOL_CONFIG", str(qs.config))
    planned = run("refresh", "--variant", VARIANT, "--arch", ARCH, "--plan", "--json")
    assert planned.code == 0, planned.err
    assert planned.json()["planned_only"] is True
    audited = run("audit", "--variant", VARIANT, "--arch", ARCH, "--targets", "none", "--json")
    assert audited.code == 0 and audited.json()["result"] == "pass", audited.err
    checked = run("check-expirations", "--json")
    assert checked.code == 0, checked.err


def test_explicit_options_win_over_repo_tool_config(run: Runner, monkeypatch: pytest.MonkeyPatch, qs: QS) -> None:
    """--metadata-url (audit, check-expirations) replaces the config; a release file's config: too."""
    monkeypatch.setenv("REPO_TOOL_CONFIG", str(qs.dir / "missing.yaml"))
    audited = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                  "--targets", "none")
    assert audited.code == 0, audited.err
    checked = run("check-expirations", "--metadata-url", str(qs.meta), "--root", str(qs.root))
    assert checked.code == 0, checked.err
    # on the command line, --config and --metadata-url still conflict
    assert_one_line_error(run("audit", "--config", str(qs.config), "--metadata-url", str(qs.meta), "--targets-url",
                              str(qs.targets), "--root", str(qs.root)), 2, "--config replaces")


def release_file(qs: QS, with_config: bool) -> Path:
    images = sorted((qs.dir / "images" / "1.1.0").glob("bottlerocket-*"))
    boot, root, verity = (next(str(p) for p in images if p.name.endswith(end))
                          for end in ("boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"))
    path = qs.dir / ("with.yaml" if with_config else "without.yaml")
    path.write_text(f"version: 1.1.0\n{'config: repo-tool.yaml' if with_config else ''}\nrepos:\n"
                    f"  - {{variant: {VARIANT}, arch: {ARCH}, boot_image: {boot}, root_image: {root}, "
                    f"hash_image: {verity}}}\n")
    return path


def test_publish_release_takes_repo_tool_config_after_the_release_files_own(run: Runner,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            qs: QS) -> None:
    monkeypatch.setenv("REPO_TOOL_CONFIG", str(qs.dir / "missing.yaml"))
    own = run("publish-release", str(release_file(qs, True)), "--plan", "--json")
    assert own.code == 0, own.err
    assert own.json()["already_published"] is True
    assert_one_line_error(run("publish-release", str(release_file(qs, False)), "--plan"), 2, "missing.yaml")
    monkeypatch.setenv("REPO_TOOL_CONFIG", str(qs.config))
    result = run("publish-release", str(release_file(qs, False)), "--plan", "--json")
    assert result.code == 0, result.err
    assert result.json()["already_published"] is True  # what the config's repository says


# --- --debug ----------------------------------------------------------------------------------


def assert_traceback_then_error(result: Run, code: int, needle: str) -> None:
    assert result.code == code, result.err
    assert "Traceback (most recent call last)" in result.err
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("repo-tool: error: ") and needle in last, result.err


def test_debug_prints_a_traceback_and_keeps_the_exit_code(run: Runner, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    bad = tmp_path / "root.json"
    bad.write_text('{"signed": {}, "signatures": []}')
    quiet = run("root", "verify", str(bad))
    assert_one_line_error(quiet, 1, str(bad))
    assert_traceback_then_error(run("--debug", "root", "verify", str(bad)), 1, str(bad))
    missing = run("--debug", "waves", "show", str(tmp_path / "nope.toml"), "--start", "now")
    assert_traceback_then_error(missing, 2, "nope.toml")
    monkeypatch.setenv("REPO_TOOL_DEBUG", "1")
    assert_traceback_then_error(run("root", "verify", str(bad)), 1, str(bad))
    monkeypatch.setenv("REPO_TOOL_DEBUG", "0")
    assert_one_line_error(run("root", "verify", str(bad)), 1, str(bad))


def test_debug_shows_the_traceback_of_an_internal_error(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(spec: str) -> None:
        raise TypeError("boom")

    monkeypatch.setattr("repo_tool.cli.waves_cmd.load_policy", crash)
    assert_one_line_error(run("waves", "show", "default", "--start", "now"), 1,
                          "internal error: TypeError: boom (run with --debug for a traceback)")
    result = run("--debug", "waves", "show", "default", "--start", "now")
    assert_traceback_then_error(result, 1, "internal error: TypeError: boom")
    assert 'raise TypeError("boom")' in result.err


@pytest.fixture
def refused_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """AWS calls to a local port that refuses connections, two attempts each."""
    with socket.socket() as closed:  # bound, never listening
        closed.bind(("127.0.0.1", 0))
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-west-2", "AWS_EC2_METADATA_DISABLED": "true",
                           "AWS_MAX_ATTEMPTS": "2", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed.getsockname()[1]}",
                           "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        yield
    aws.forget_clients()


@pytest.mark.usefixtures("refused_aws")
def test_debug_shows_library_logs_and_is_quiet_without_it(run: Runner) -> None:
    handlers = list(logging.getLogger().handlers)
    args = ("audit-diff", "s3://repo-tool-debug/a/", "s3://repo-tool-debug/b/")
    loud = run("--debug", *args)
    assert_traceback_then_error(loud, 1, "Could not connect")
    assert "DEBUG repo_tool: repo-tool " in loud.err
    assert "INFO botocore.credentials: Found credentials in environment variables" in loud.err
    assert "DEBUG botocore.retries.standard: Retry needed" in loud.err  # retries and throttling show
    assert logging.getLogger().handlers == handlers  # nothing left behind for the next run in this process
    assert_one_line_error(run(*args), 1, "Could not connect")
