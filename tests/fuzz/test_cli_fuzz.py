"""Random command lines for every command and subcommand of ``repo-tool``.

The command tree is walked from ``repo_tool.cli.cli``, so a new command or option is fuzzed without
touching this file.  Each argv is drawn from the command's real option names (long, short, ``--x=v``
and secondary forms), values suited to each option's type, random text, and paths in a fresh
directory: a quickstart setup, policies, Release.toml, manifests, a node's updog.toml/os-release and
a GPT disk image, files that do not exist, and files of garbage.  It runs in-process through click's
CliRunner over ``repo_tool.cli.main``, without --debug (which prints a traceback for every error), so
a bug surfaces as main's one "internal error" line naming the exception.  The property: exit code 0,
1 or 2, no exception but SystemExit, no traceback, no internal error, and at most one error line,
the last one.

Safety, since a fuzzed command may publish, stage an update or reboot:
* the working directory and HOME are a new temporary directory per example, and no drawn value
  can leave it (random text never holds '/', and is never '.' or '..'; fixed values are relative
  paths in it or ``{tmp}``-based URLs);
* ``rollout status --watch`` only gets values it refuses (a valid one runs until interrupted);
* ``repo-tool node`` always gets ``--disk``, ``--config``, ``--trusted-root``, ``--os-release``,
  ``--metadata-cache``, ``--migrations-dir`` in the temporary directory and ``--reboot-command true``
  (a drawn reboot command is one of a few harmless ones);
* AWS: dummy credentials, AWS_EC2_METADATA_DISABLED=true, no config files, one attempt, and
  AWS_ENDPOINT_URL on a local port that refuses connections, so S3 and KMS calls never leave the host;
  ``http://`` values point at that port too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from repo_tool import aws
from repo_tool.cli import cli, main
from repo_tool.cli.node_cmd import COMMANDS as NODE_COMMANDS
from repo_tool.cli.node_cmd import SIZE_FLAGS, USAGE
from repo_tool.node import gpt

from ..conftest import BOTTLEROCKET, MANIFESTS, REPO
from ..repohelpers import QS, make_quickstart
from .strategies import INTERESTING_STRINGS, outcome, raw_inputs

# --- the command tree ------------------------------------------------------------------------


def command_tree(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path: groups (run without a subcommand too) and leaf commands."""
    found = [path]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the top-level group imports its commands on demand
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += command_tree(command, (*path, name))
        else:
            found.append((*path, name))
    return found


def resolve(path: tuple[str, ...]) -> list[click.Command]:
    """The commands along ``path``, the top-level group first."""
    chain: list[click.Command] = [cli]
    for name in path:
        parent = chain[-1]
        assert isinstance(parent, click.Group)
        command = parent.get_command(click.Context(parent), name)
        assert command is not None, name
        chain.append(command)
    return chain


COMMANDS = command_tree()

# --- the files a command line may name ---------------------------------------------------------

QS_FILES = ("qs", "qs/repo-tool.yaml", "qs/root.json", "qs/keys/root.pem", "qs/keys/targets.pem",
            "qs/keys/timestamp.pem", "qs/repo/metadata", "qs/repo/metadata/aws-k8s-1.28/x86_64",
            "qs/repo/metadata/aws-k8s-1.28/x86_64/1.root.json", "qs/repo/metadata/aws-k8s-1.28/x86_64/timestamp.json",
            "qs/repo/targets", "qs/images/1.1.0", "qs/images/1.1.0/migrate_v1.1.0_sample-settings.lz4")
IMAGES = tuple(f"qs/images/1.1.0/bottlerocket-aws-k8s-1.28-x86_64-1.1.0-7fbd210-{kind}" for kind in
               ("boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"))
FIXED_FILES = {
    "policy.toml": (REPO / "waves" / "default-waves.toml").read_bytes(),
    "policy.yaml": b"waves:\n  - {start_after: 1 hour, fleet_percentage: 10}\n"
                   b"  - {start_after: 1 day, fleet_percentage: 100}\n",
    "Release.toml": (BOTTLEROCKET / "release" / "Release.toml").read_bytes(),
    "manifest.json": (MANIFESTS / "updog-tests" / "example.json").read_bytes(),
    "migrations.json": (MANIFESTS / "update_metadata-tests" / "migrations.json").read_bytes(),
    "expiration.toml": (BOTTLEROCKET / "pubsys" / "repo-expiration-2w-2w-1w.toml").read_bytes(),
    "production-1.root.json": (BOTTLEROCKET / "production-root" / "1.root.json").read_bytes(),
    "production-2.root.json": (BOTTLEROCKET / "production-root" / "2.root.json").read_bytes(),
    "updog.toml": b'metadata_base_url = "qs/repo/metadata/aws-k8s-1.28/x86_64/"\n'
                  b'targets_base_url = "qs/repo/targets/"\nseed = 42\nversion_lock = "latest"\nignore_waves = true\n',
    "os-release": b"VERSION_ID=1.0.0\nVARIANT_ID=aws-k8s-1.28\n",
    "release.yaml": b"version: 1.2.0\nconfig: qs/repo-tool.yaml\nrelease_config: Release.toml\nrepos:\n"
                    b"  - {variant: aws-k8s-1.28, arch: x86_64, boot_image: " + IMAGES[0].encode() +
                    b", root_image: " + IMAGES[1].encode() + b", hash_image: " + IMAGES[2].encode() + b"}\n",
    "Infra.toml": b'[repo.default]\nmetadata_base_url = "qs/repo/metadata/"\ntargets_url = "qs/repo/targets/"\n'
                  b'root_role_url = "qs/root.json"\nsigning_keys = { file = { path = "qs/keys/root.pem" } }\n',
    "empty": b"",
}
# Garbage: random bytes and byte edits of real inputs.  Never of a publisher config or release file:
# a byte edit can turn "repo/metadata" into "/metadata", and a publish must not write outside tmp.
GARBAGE_FILES = ("garbage", "garbage.json", "garbage.toml", "garbage.yaml", "garbage.pem")
GARBAGE_BASES = [FIXED_FILES[name] for name in ("policy.toml", "Release.toml", "manifest.json", "updog.toml",
                                               "os-release", "production-1.root.json")]
OTHER_FILES = ("disk.img", "dir", "dir/file")
MISSING = ("missing", "missing.json", "new-dir/new-file", "out.json", "out.md", "out.html", "out.png", "new.pem",
           "new-root.json", "new.img", "cache", "migrations", "state", "qs/new")
PATHS = (*QS_FILES, *IMAGES, *FIXED_FILES, *GARBAGE_FILES, *OTHER_FILES, *MISSING)
URLS = ("{tmp}/qs/repo/metadata/aws-k8s-1.28/x86_64", "file://{tmp}/qs/repo/targets/", "file://{tmp}/missing-repo/",
        "http://127.0.0.1:{port}/metadata/", "https://127.0.0.1:{port}/", "s3://repo-tool-fuzz/metadata/",
        "s3://", "ftp://x/", "file://host/x", "awskms:alias/repo-tool-fuzz", "aws-kms://default/alias/x",
        "envvar:REPO_TOOL_FUZZ_UNSET", "file:qs/keys/root.pem", "qs/repo/metadata/aws-k8s-1.28/x86_64/")
HARMLESS_REBOOT = ("true", "false", "", "'unclosed", "repo-tool-no-such-command-fuzz", "true --flag")

# --- values -----------------------------------------------------------------------------------

# No '/' (nothing can name a place outside the working directory), no NUL (argv cannot hold one), no
# lone surrogates (CliRunner's streams are strict UTF-8, unlike a real stderr); line breaks and other
# control characters are in (errors quote them escaped).
SAFE_TEXT = st.text(st.characters(exclude_characters="/\0", exclude_categories=["Cs"]),
                    max_size=16).filter(lambda t: t not in (".", ".."))
safe_strings = st.sampled_from([t for t in INTERESTING_STRINGS if "/" not in t and t.isprintable()
                                and t not in (".", "..")])
paths = st.sampled_from(PATHS)
strings = paths | st.sampled_from(URLS) | safe_strings | SAFE_TEXT | st.sampled_from(
    ["default", "ohno", "slow-roll", "accelerated", "dev", "aws-k8s-1.28", "x86_64", "1.0.0", "1.1.0", "1.2.0",
     "now", "in 1 day", "2 weeks", "all", "none", "sample:1", "sample:0", "A", "B", "targets", "root", "-", "--"])
integers = st.integers(-3, 5).map(str) | st.sampled_from(["2047", "2048", "4294967296", "99999999999999999999999",
                                                          "0x10", "1e3", ""])


# Plausible values by parameter name, so that whole command lines get past the first check and into
# the command (a new option still gets the generic values of its type).
TIMES = ["2024-01-01T00:00:00Z", "2030-06-01T12:00:00Z", "now", "in 2 hours", "3 days", "2 weeks", "1 hour"]
ROOTS = ["qs/root.json", "qs/repo/metadata/aws-k8s-1.28/x86_64/1.root.json", "production-1.root.json",
         "production-2.root.json"]
HINTS: list[tuple[str, list[str]]] = [
    (r"config", ["qs/repo-tool.yaml", "Infra.toml", "updog.toml"]),
    (r"os_release", ["os-release"]),
    (r"^disk$", ["disk.img", "new.img"]),
    (r"repo_name", ["dev", "default"]),
    (r"^variants?$", ["aws-k8s-1.28", "aws-dev"]),
    (r"^arch(es)?$", ["x86_64", "aarch64"]),
    (r"^(version_text|max_version_text|max_text|image_text|current_text|from_text|to_text)$",
     ["1.0.0", "1.1.0", "1.2.0", "2.0.0-rc.1", "1.1"]),
    (r"_image$|^(boot|root|hash_|copy_targets|link_targets)$", [*IMAGES, QS_FILES[-1]]),
    (r"release_(config|path)|^to_path$", ["Release.toml", "manifest.json"]),
    (r"release_file", ["release.yaml"]),
    (r"policy", ["default", "ohno", "policy.toml", "policy.yaml"]),
    (r"start|at_text|time_text|expires|within", TIMES),
    (r"root_path|old_root|previous|trusted_root|root_roles|^root$", ROOTS),
    (r"^(sources|key)$", ["qs/keys/root.pem", "file:qs/keys/targets.pem", "qs/keys/timestamp.pem",
                          "awskms:alias/repo-tool-fuzz", "envvar:REPO_TOOL_FUZZ_UNSET"]),
    (r"url", list(URLS)),
    (r"^file$", ["manifest.json", "migrations.json", "out.json"]),
    (r"^path$", ["qs/root.json", "new-root.json", "new.pem", "qs/keys/root.pem"]),
    (r"_dir$|^directory$|cache", ["state", "cache", "new-dir", "dir", "qs/new"]),
    (r"^(old|new)$", ["qs/repo/metadata/aws-k8s-1.28/x86_64", "{tmp}/qs/repo/metadata/aws-k8s-1.28/x86_64"]),
    (r"target_names", ["manifest.json", "missing"]),
    (r"targets_text", ["all", "none", "sample:1", "sample:0", "sample:x"]),
    (r"_path$", ["out.md", "out.html", "out.png", "new.pem", "out.json"]),
    (r"version_lock", ["latest", "1.1.0", "v1.1.0"]),
]


def values_for(param: click.Parameter) -> st.SearchStrategy[str]:
    name = param.name or ""
    if name == "reboot_command":
        return st.sampled_from(HARMLESS_REBOOT)
    if name == "watch":  # a valid --watch reads until interrupted: only values it refuses
        return st.sampled_from(["0", "-1", "x", "", "1.5", "99999999999999999999999"])
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.sampled_from([str(c) for c in kind.choices]) | SAFE_TEXT
    if isinstance(kind, (click.types.IntParamType, click.types.FloatParamType)):
        return integers | SAFE_TEXT
    generic = paths | SAFE_TEXT if isinstance(kind, click.Path) else strings
    hints = [value for pattern, values in HINTS if re.search(pattern, name) for value in values]
    return st.one_of(st.sampled_from(hints), st.sampled_from(hints), generic) if hints else generic


NODE_FLAGS = sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", USAGE)) | set(SIZE_FLAGS) | {"-t", "--timestamp"})
# USAGE's "[-i|--image VERSION]": the flags of a group with an upper-case word take a value.
NODE_VALUE_FLAGS = {flag for group in re.findall(r"\[([^]]*)\]", USAGE) if re.search(r"\b[A-Z]{2,}\b", group)
                    for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", group)}
NODE_VALUES = ["1.1.0", "1.0.0", "v1", "debug", "TRACE", "bogus", "512MiB", "1G", "0", "4KiB", "9999999G", "new.img",
               "disk.img", "aws-k8s-1.28"]
node_tokens = st.sampled_from([*NODE_COMMANDS, *NODE_FLAGS]) | st.sampled_from(NODE_VALUES) | SAFE_TEXT


@st.composite
def node_lines(draw: st.DrawFn) -> list[str]:
    """updog's own command line: one command with flags around it (a value after each flag that
    takes one, as USAGE shows them), or a soup of its tokens."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.lists(node_tokens, max_size=6))
    tokens = [draw(st.sampled_from(NODE_COMMANDS))]
    if tokens[0] == "make-disk" and draw(st.integers(0, 5)):
        tokens.append(draw(st.sampled_from(["new.img", "disk.img", "dir"]) | SAFE_TEXT))
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(st.sampled_from(NODE_FLAGS))
        takes_value = flag in SIZE_FLAGS or flag in NODE_VALUE_FLAGS
        at = draw(st.integers(0, len(tokens)))
        tokens[at:at] = [flag, draw(st.sampled_from(NODE_VALUES) | SAFE_TEXT)] if takes_value else [flag]
    return tokens


@st.composite
def option_tokens(draw: st.DrawFn, option: click.Option) -> list[str]:
    names = [*option.opts, *option.secondary_opts]
    name = draw(st.sampled_from(names))
    if option.is_flag or option.count:
        return [name]
    count = max(option.nargs, 1)
    given_values = [draw(values_for(option)) for _ in range(count)]
    if count == 1 and name.startswith("--") and draw(st.integers(0, 5)) == 0:
        return [f"{name}={given_values[0]}"]
    if draw(st.integers(0, 15)) == 0 and option.name != "reboot_command":
        return [name]  # value left out: the next token (if any) becomes the value
    return [name, *given_values]


@st.composite
def command_tokens(draw: st.DrawFn, command: click.Command) -> list[str]:
    """Positional values (one short, exact, or one more), then options inserted anywhere between
    them: either a few random ones (repeats possible) or most of the command's options (a line that
    could work), plus a required option nine times in ten.  An option and its value stay together
    (only a value left out on purpose lets the next token become the value)."""
    options = [p for p in command.params if isinstance(p, click.Option)]
    arguments = [] if isinstance(command, click.Group) else [p for p in command.params if isinstance(p, click.Argument)]
    unprocessed = any(a.type is click.UNPROCESSED for a in arguments)
    groups: list[list[str]] = []
    for argument in arguments:
        if argument.type is click.UNPROCESSED:
            groups += [[token] for token in draw(node_lines())]
        elif argument.nargs == -1:
            groups += [[value] for value in draw(st.lists(values_for(argument), max_size=3))]
        else:
            groups += [[draw(values_for(argument))] for _ in range(argument.nargs)]
    if groups and draw(st.integers(0, 6)) == 0:
        groups.pop(draw(st.integers(0, len(groups) - 1)))
    elif not isinstance(command, click.Group) and draw(st.integers(0, 8)) == 0:
        groups.append([draw(strings)])
    if draw(st.booleans()):  # most options (a flag one time in three), each with a plausible value
        chosen = [o for o in options if not o.is_eager and draw(st.integers(0, 7)) != 0 and
                  (not o.is_flag or draw(st.integers(0, 2)) == 0)]
    else:
        chosen = [o for o in options if o.required and draw(st.integers(0, 9))]
    chosen += [draw(st.sampled_from(options)) for _ in range(draw(st.integers(0, 3)))] if options else []
    for option in chosen:
        at = 0 if unprocessed else draw(st.integers(0, len(groups)))  # node: its own options come first
        groups.insert(at, draw(option_tokens(option)))
    if draw(st.integers(0, 20)) == 0:
        extra = draw(st.sampled_from(["--help", "--bogus-option", "-Z", "--", "--version"]))
        groups.insert(draw(st.integers(0, len(groups))), [extra])
    return [token for group in groups for token in group]


SAFE_NODE_PREFIX = ["--config", "updog.toml", "--trusted-root", "qs/root.json", "--os-release", "os-release",
                    "--disk", "disk.img", "--metadata-cache", "cache", "--migrations-dir", "migrations",
                    "--reboot-command", "true"]


@st.composite
def argvs(draw: st.DrawFn, path: tuple[str, ...]) -> list[str]:
    """The command path with tokens for its last command (and sometimes for a group on the way:
    always for a group with required options, such as tuf-client)."""
    chain = resolve(path)
    argv: list[str] = []
    for depth, command in enumerate(chain):
        if depth:
            argv.append(path[depth - 1])
        if command.name == "node":
            argv += SAFE_NODE_PREFIX
        last = depth == len(chain) - 1
        group_options = depth > 0 and bool(command.params) and (
            any(p.required for p in command.params) or draw(st.integers(0, 3)) == 0)
        if last or group_options:
            argv += draw(command_tokens(command))
    return argv


# --- running ------------------------------------------------------------------------------------


@dataclass
class Setup:
    template: QS
    port: int
    shared: Path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("cli-fuzz")
    template = make_quickstart(base / "qs")
    with socket.socket() as closed:  # bound, never listening: every connection is refused at once
        closed.bind(("127.0.0.1", 0))
        yield Setup(template, closed.getsockname()[1], base)
    aws.forget_clients()


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def environment(setup: Setup, home: Path) -> dict[str, str | None]:
    env: dict[str, str | None] = {key: None for key in os.environ if key.startswith(("AWS_", "REPO_TOOL_"))
                                  or key.lower() in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")}
    env.update({
        "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "fuzz", "AWS_SECRET_ACCESS_KEY": "fuzz", "AWS_DEFAULT_REGION": "us-west-2",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
        "AWS_CONFIG_FILE": str(setup.shared / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(setup.shared / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{setup.port}",
        "MPLCONFIGDIR": str(setup.shared / "matplotlib"),  # waves simulate --plot: one font cache, not one per HOME
    })
    return env


def populate(tmp: Path, setup: Setup, argv: list[str], garbage: dict[str, bytes]) -> None:
    """Create only what the command line names (a quickstart copy is the expensive part)."""
    joined = "\0".join(argv)
    if "qs" in joined or any(name in joined for name in ("updog.toml", "release.yaml", "Infra.toml")):
        shutil.copytree(setup.template.dir, tmp / "qs", symlinks=True)
    for name, data in FIXED_FILES.items():
        (tmp / name).write_bytes(data)
    for name, data in garbage.items():
        (tmp / name).write_bytes(data)
    (tmp / "dir").mkdir()
    (tmp / "dir" / "file").write_bytes(b"x")
    if "disk.img" in joined:
        gpt.make_disk(tmp / "disk.img", gpt.DiskLayout(boot_size=4 * gpt.MIB, root_size=16 * gpt.MIB,
                                                       hash_size=gpt.MIB, private_size=gpt.MIB))


def substitute(argv: list[str], tmp: Path, port: int) -> list[str]:
    """``{tmp}`` and ``{port}`` filled in, after checking that no token names a place outside the
    temporary directory (the guard behind the module docstring's promise)."""
    for token in argv:
        value = token.partition("=")[2] if token.startswith("--") else token
        assert value.startswith("{tmp}") or not Path(value).is_absolute(), token
        assert ".." not in Path(value).parts, token
        assert not re.search(r"file://(?!\{tmp\}|host/)", value), token  # (HOME is the tmp dir too)
    return [t.replace("{tmp}", str(tmp)).replace("{port}", str(port)) for t in argv]


def run(argv: list[str], env: dict[str, str | None] | None = None) -> Result:
    """``main(argv)`` under CliRunner (which records SystemExit as the exit code and keeps any other
    exception); the whole environment is restored afterwards (the node exports HTTPS_PROXY)."""
    @click.command()
    def entry() -> None:
        main(argv)

    saved = dict(os.environ)
    try:
        return CliRunner(catch_exceptions=True).invoke(entry, [], env=env)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def check_result(argv: list[str], result: Result) -> None:
    shown = f"repo-tool {' '.join(argv)}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{shown}: {type(result.exception).__name__}: {result.exception}") from result.exception
    assert result.exit_code in (0, 1, 2), (shown, result.exit_code, result.output)
    assert "Traceback" not in result.output, (shown, result.output)
    assert "internal error" not in result.stderr, (shown, result.stderr)
    lines = result.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("repo-tool: error:")]
    assert len(errors) <= 1, (shown, result.stderr)
    if errors:  # the error is one line, and it is the last thing said
        assert errors[0] == len(lines) - 1, (shown, result.stderr)
        assert result.exit_code in (1, 2), (shown, result.stderr)
    outcome(f"exit {result.exit_code}{' (error line)' if errors else ''}")
    said = (lines or result.stdout.splitlines() or [""])[-1]  # what it ended with, for the statistics
    outcome(f"said: {re.sub(r'[0-9a-f]{8,}|/tmp/[^ ]+', '…', said)[:70]}")


# A share of the profile's examples per command (ci: 300 // 8 = 37 each; default: 100 // 8 = 12), as
# one example runs a whole command (a few ms to 0.7 s): every command is covered (about 2,000 lines
# under ci, in some 30 s on 2 cores) and the directory stays within its time budget.
PER_COMMAND = max(8, settings().max_examples // 8)


# Names the kernel refuses (ENAMETOOLONG: a component over 255 bytes, a path over 4096), where pathlib's
# exists()/is_file() raise instead of answering False (Python < 3.14).
LONG_NAMES = ("n" * 300, "qs/" + "n" * 300, "n" * 300 + "/file", "/".join(["n" * 200] * 25))


@st.composite
def with_a_long_name(draw: st.DrawFn, argv: list[str]) -> list[str]:
    """``argv`` with, one time in five, one of its file names (or an ``--x=FILE`` value) made too long."""
    spots = [i for i, token in enumerate(argv) if token.partition("=")[2 if token.startswith("--") else 0] in PATHS]
    if not spots or draw(st.integers(0, 4)):
        return argv
    at = draw(st.sampled_from(spots))
    head, sep, _ = argv[at].rpartition("=") if argv[at].startswith("--") else ("", "", argv[at])
    return [*argv[:at], head + sep + draw(st.sampled_from(LONG_NAMES)), *argv[at + 1:]]


def fuzz_command(setup: Setup, path: tuple[str, ...], data: st.DataObject, factory: pytest.TempPathFactory) -> None:
    argv = data.draw(argvs(path).flatmap(with_a_long_name), label="argv")
    garbage = {name: data.draw(raw_inputs(GARBAGE_BASES), label=name) for name in GARBAGE_FILES
               if name in "\0".join(argv)}
    tmp = factory.mktemp("argv")
    try:
        populate(tmp, setup, argv, garbage)
        argv = substitute(argv, tmp, setup.port)
        with working_directory(tmp):
            result = run(argv, environment(setup, tmp))
        check_result(argv, result)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Commands with the most behind their options (and the node's GPT staging) get twice the share; a
# group run without its subcommand (a usage error or help) gets half, and so does quickstart, which
# builds a whole setup (about 0.7 s) when the drawn line is valid.
BUSY = {("node",), ("publish",), ("publish-release",), ("audit",), ("tuf-client", "download"), ("refresh",)}
GROUPS = [p for p in COMMANDS if isinstance(resolve(p)[-1], click.Group)]
LEAVES = [p for p in COMMANDS if p not in GROUPS and p not in BUSY and p != ("quickstart",)]


def command_id(path: tuple[str, ...]) -> str:
    return " ".join(path) or "-"


@pytest.mark.parametrize("path", LEAVES, ids=command_id)
@settings(max_examples=PER_COMMAND)
@given(data=st.data())
def test_random_command_lines_never_crash(setup: Setup, tmp_path_factory: pytest.TempPathFactory,
                                         path: tuple[str, ...], data: st.DataObject) -> None:
    fuzz_command(setup, path, data, tmp_path_factory)


@pytest.mark.parametrize("path", sorted(BUSY), ids=command_id)
@settings(max_examples=2 * PER_COMMAND)
@given(data=st.data())
def test_random_lines_of_the_busiest_commands_never_crash(setup: Setup, tmp_path_factory: pytest.TempPathFactory,
                                                         path: tuple[str, ...], data: st.DataObject) -> None:
    fuzz_command(setup, path, data, tmp_path_factory)


@pytest.mark.parametrize("path", [*GROUPS, ("quickstart",)], ids=command_id)
@settings(max_examples=max(4, PER_COMMAND // 2))
@given(data=st.data())
def test_random_group_and_quickstart_lines_never_crash(setup: Setup, tmp_path_factory: pytest.TempPathFactory,
                                                      path: tuple[str, ...], data: st.DataObject) -> None:
    fuzz_command(setup, path, data, tmp_path_factory)


def test_the_tree_covers_every_command() -> None:
    """The walk finds the commands the README lists (so a broken walk cannot pass quietly)."""
    names = {" ".join(p) for p in COMMANDS}
    for expected in ("publish", "publish-release", "refresh", "rollout pause", "rollout reschedule", "rollout status",
                     "node", "audit", "audit-diff", "check-expirations", "tuf-client download", "waves simulate",
                     "manifest select", "root cross-sign", "keys import-kms", "infra create-keys", "quickstart",
                     "set-max-version"):
        assert expected in names, expected


def test_a_valid_line_runs(setup: Setup, tmp_path: Path) -> None:
    """The harness itself: a command line that should work does (exit 0, output, no error line)."""
    argv = ["waves", "show", "policy.toml", "--start", "2024-01-01T00:00:00Z"]
    populate(tmp_path, setup, argv, {})
    with working_directory(tmp_path):
        result = run(argv)
    check_result(argv, result)
    assert result.exit_code == 0 and "2024-01-0" in result.output


@pytest.mark.parametrize("debug", [True, False])
def test_the_harness_reports_a_crash(setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     debug: bool) -> None:
    """A command that crashes fails the check: with REPO_TOOL_DEBUG=1 by its traceback, else (how the
    fuzzer runs) by main()'s "internal error" line."""
    def crash(spec: str) -> Any:
        raise TypeError("boom")

    monkeypatch.setattr("repo_tool.cli.waves_cmd.load_policy", crash)
    argv = ["waves", "show", "policy.toml", "--start", "now"]
    populate(tmp_path, setup, argv, {})
    env = environment(setup, tmp_path)
    env["REPO_TOOL_DEBUG"] = "1" if debug else None
    with working_directory(tmp_path):
        result = run(argv, env)
    with pytest.raises(AssertionError, match="TypeError" if debug else "internal error"):
        check_result(argv, result)


def node_safety(argv: list[str]) -> dict[str, Any]:
    """What the forced node options leave in effect (for the test below)."""
    context = resolve(("node",))[1].make_context("node", argv[1:])
    return dict(context.params)


@given(argv=argvs(("node",)))
def test_fuzzed_node_lines_keep_the_safe_paths(argv: list[str]) -> None:
    """Whatever the fuzzer adds, the node acts on tmp paths and a harmless reboot command."""
    try:
        params = node_safety(argv)
    except Exception:  # the node command refuses the line: nothing runs
        return
    for key in ("config_path", "trusted_root", "os_release", "disk", "metadata_cache", "migrations_dir", "state_dir"):
        value = params[key]
        assert value is None or not Path(value).is_absolute(), (key, value)
    assert params["reboot_command"] in HARMLESS_REBOOT


def one_line_stderr(setup: Setup, tmp: Path, argv: list[str]) -> list[str]:
    populate(tmp, setup, argv, {})
    with working_directory(tmp):
        result = run(argv, environment(setup, tmp))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    return result.stderr.splitlines()


@pytest.mark.parametrize(("argv", "escaped"), [
    (["waves", "show", "policy\n.toml", "--start", "now"], "policy\\n.toml"),  # a RepoToolError quoting it
    (["manifest", "show", "dir\n\x1b[2J"], "dir\\n\\x1b[2J"),
    (["root", "add-key", "qs/root.json", "-k", "qs/keys/root\r.pem", "-r", "root"], "qs/keys/root\\r.pem"),
])
def test_errors_quoting_line_breaks_stay_on_one_line(setup: Setup, tmp_path: Path, argv: list[str],
                                                     escaped: str) -> None:
    """Found by the fuzzers (a migration key holding a line break, a file name): RepoToolError writes
    what it quotes escaped, so the error is one line and cannot drive the terminal."""
    lines = one_line_stderr(setup, tmp_path, argv)
    errors = [line for line in lines if line.startswith("repo-tool: error: ")]
    assert errors == [lines[-1]] and escaped in lines[-1], lines


@pytest.mark.parametrize("argv", [
    ["root", "add-key", "qs/root.json", "-k", "qs/keys/root.pem"],  # "Choose from:\n\troot,\n\tsnapshot ..."
    ["manifest", "show", "manifest.json", "\n"],  # "Got unexpected extra argument (\n)"
])
def test_click_choice_lists_and_line_breaks_stay_on_one_line(setup: Setup, tmp_path: Path, argv: list[str]) -> None:
    lines = one_line_stderr(setup, tmp_path, argv)
    assert len(lines) == 1, lines


@pytest.mark.parametrize(("argv", "needle"), [
    (["manifest", "set-migrations", "-f", "Release.toml", ""], "cannot read manifest"),  # was an AssertionError
])
def test_command_lines_the_fuzzer_found(setup: Setup, tmp_path: Path, argv: list[str], needle: str) -> None:
    populate(tmp_path, setup, argv, {})
    with working_directory(tmp_path):
        result = run(argv, environment(setup, tmp_path))
    check_result(argv, result)
    assert result.exit_code == 2 and needle in result.stderr, result.output
