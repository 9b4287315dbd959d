"""``repo-tool node``: the updog-compatible node client (SPEC §9).

Global options (paths) come first, then updog's own command line, parsed as
updog parses it: one subcommand, flags before or after it, every flag accepted
by every subcommand, anything else a usage error.  As updog, every failure
exits 1 with one line on stderr.  What each command does is :mod:`repo_tool.node.updog`'s and
:mod:`repo_tool.node.gpt`'s; this module parses updog's arguments and prints.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from repo_tool.cli.hints import hint_for, usage_message
from repo_tool.cli.node_help import UPDOG_COMMANDS, command_help, complete_updog, flag_items, given_command
from repo_tool.cli.progress import progress_line
from repo_tool.core.semver import Version
from repo_tool.errors import RepoToolError, VersionError
from repo_tool.node import gpt
from repo_tool.node import updog as node

COMMANDS = tuple(UPDOG_COMMANDS)
SIZE_FLAGS = {"--boot-size": "boot", "--root-size": "root", "--hash-size": "hash", "--private-size": "private"}
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}

USAGE = (
    "usage: repo-tool node [GLOBAL OPTIONS] COMMAND [-a|--all] [-i|--image VERSION] [-n|--now|--ignore-waves] "
    "[-r|--reboot] [-j|--json] [--variant VARIANT] [--log-level LEVEL]; COMMAND is one of " + ", ".join(COMMANDS)
)


class NodeFailed(RepoToolError):
    """Any node failure: updog exits 1 for usage, configuration and verification errors alike."""

    exit_code = 1


class _Args:
    def __init__(self) -> None:
        self.command: str | None = None
        self.flags = node.Flags()
        self.path: Path | None = None
        self.sizes: dict[str, int] = {}


def parse_size(text: str, flag: str) -> int:
    number = text.rstrip("BbKkMmGgIi")
    unit = text[len(number):].lower()
    if not number.isdigit() or unit not in _UNITS:
        raise NodeFailed(f"{flag}: expected a size such as 512MiB or 1GiB, found {text!r}")
    return int(number) * _UNITS[unit]


def parse_updog_args(args: list[str]) -> _Args:
    """updog's argument loop (plus a path and sizes for ``make-disk``)."""
    parsed = _Args()
    values: dict[str, object] = {}
    it = iter(args)

    def value(flag: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise NodeFailed(f"{flag} needs a value; {USAGE}") from None

    for arg in it:
        if arg in ("-a", "--all"):
            values["all"] = True
        elif arg in ("-i", "--image"):
            text = value(arg)
            try:
                values["image"] = Version.parse(text)
            except VersionError as exc:
                raise NodeFailed(f"--image: {exc.message}") from None
        elif arg in ("-n", "--now", "--ignore-waves"):
            values["ignore_waves"] = True
        elif arg in ("-r", "--reboot"):
            values["reboot"] = True
        elif arg in ("-j", "--json"):
            values["json"] = True
        elif arg == "--variant":
            values["variant"] = value(arg)
        elif arg == "--log-level":
            level = value(arg)
            if level.lower() not in node.LOG_LEVELS:  # log's LevelFilter: case-insensitive
                raise NodeFailed(f"--log-level: expected one of {', '.join(node.LOG_LEVELS)}, found {level!r}")
            values["log_level"] = level.lower()
        elif arg in SIZE_FLAGS:
            parsed.sizes[SIZE_FLAGS[arg]] = parse_size(value(arg), arg)
        elif hint_for(arg):
            raise NodeFailed(f"{hint_for(arg)} (see 'repo-tool node --help')")
        elif arg.startswith("-"):
            raise NodeFailed(f"unknown flag {arg!r}; {USAGE}")
        elif parsed.command is None:
            if arg not in COMMANDS:
                raise NodeFailed(f"unknown command {arg!r}; {USAGE}")
            parsed.command = arg
        elif parsed.command == "make-disk" and parsed.path is None:
            parsed.path = Path(arg)
        else:
            raise NodeFailed(f"unexpected argument {arg!r}: only one command is allowed; {USAGE}")
    if parsed.command is None:
        raise NodeFailed(f"no command given; {USAGE}")
    if parsed.sizes and parsed.command != "make-disk":
        raise NodeFailed(f"size flags are only for make-disk; {USAGE}")
    if parsed.command == "make-disk" and parsed.path is None:
        raise NodeFailed("make-disk needs the PATH of the disk image to create")
    parsed.flags = node.Flags(**values)  # type: ignore[arg-type]
    return parsed


class _UpdogCommand(click.Command):
    """Errors in the global options are usage errors too, and updog exits 1 for those."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise NodeFailed(f"{usage_message(exc)} (see 'repo-tool node --help')") from None

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """``-x``: updog's flags too; after updog's command only those (the global options come first)."""
        args = ctx.params.get("args") or ()
        own = [] if given_command(args) else super().shell_complete(ctx, incomplete)
        return [*own, *flag_items(args, incomplete)]


@click.command(
    "node",
    cls=_UpdogCommand,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    short_help="Node client mirroring updog: check, stage, apply, revert.",
)
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=node.NodePaths.config,
              show_default=True, help="updog.toml (not repo-tool.yaml: REPO_TOOL_CONFIG does not apply).")
@click.option("--trusted-root", type=click.Path(path_type=Path), default=node.NodePaths.trusted_root,
              show_default=True, help="The root.json the node trusts.")
@click.option("--os-release", type=click.Path(path_type=Path), default=node.NodePaths.os_release,
              show_default=True, help="os-release with VERSION_ID and VARIANT_ID.")
@click.option("--disk", type=click.Path(path_type=Path), default=None,
              help="GPT disk image or device [default: the disk holding /].")
@click.option("--active-set", type=click.Choice(["A", "B"]), default=None,
              help="The running partition set [default: discovered on a host; A for a disk image].")
@click.option("--metadata-cache", type=click.Path(path_type=Path), default=node.NodePaths.metadata_cache,
              show_default=True, help="updog's metadata cache, written by an update for the migrator "
              "(downloads are also kept in its .fetched/ and reused when a verified parent lists their sha256).")
@click.option("--migrations-dir", type=click.Path(path_type=Path), default=node.NodePaths.migrations_dir,
              show_default=True, help="Where migrations and manifest.json are saved as <sha256>.<name>.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="Opt-in: keep trusted metadata here so rollback protection survives reboots.")
@click.option("--reboot-command", default="shutdown -r", show_default=True, help="Run by -r/--reboot.")
@click.option("--arch", default=None, help="Host architecture [default: this machine's].")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, shell_complete=complete_updog)
def node_cmd(config_path: Path, trusted_root: Path, os_release: Path, disk: Path | None, active_set: str | None,
             metadata_cache: Path, migrations_dir: Path, state_dir: Path | None, reboot_command: str,
             arch: str | None, args: tuple[str, ...]) -> None:
    """Run an updog command against a TUF repository and a GPT disk.

    \b
    Commands: check-update (alias whats), update, update-image, update-apply, update-revert, prepare,
    status [--json], make-disk PATH [--boot-size S --root-size S --hash-size S --private-size S],
    boot (what GRUB does next), mark-successful-boot, rollback-to-inactive (signpost's).
    Flags: -a/--all, -i/--image VERSION, -n/--now/--ignore-waves, -r/--reboot, -j/--json,
    --variant VARIANT, --log-level trace|debug|info|warn|error.
    Flags and output are updog's (-j/--json included): 'repo-tool node COMMAND --help' for each.
    """
    if "--help" in args:  # updog parses its own flags: click never sees this one
        command = given_command(args)
        click.echo(command_help(command) if command else click.get_current_context().get_help())
        return
    now = time.time_ns()  # one instant for every expiry check of this command (SPEC §9.5)
    try:
        parsed = parse_updog_args(list(args))
        try:
            reboot = tuple(shlex.split(reboot_command))
        except ValueError as exc:
            raise NodeFailed(f"--reboot-command: {exc}") from None
        if not reboot:
            raise NodeFailed("--reboot-command: empty command")
        paths = node.NodePaths(
            config=config_path, trusted_root=trusted_root, os_release=os_release, disk=disk,
            active_set=active_set,  # type: ignore[arg-type]
            metadata_cache=metadata_cache, migrations_dir=migrations_dir, state_dir=state_dir,
            reboot_command=reboot, arch=arch,
        )
        line = progress_line(parsed.flags.json)
        out = node.Output(err_sink=line.note, progress=line)
        _run(parsed, paths, now, out)
    except NodeFailed:
        raise
    except RepoToolError as exc:
        raise NodeFailed(exc.message) from None
    for text in out.stdout:
        click.echo(text, nl=not text.endswith("\n"))
    if out.code:
        raise click.exceptions.Exit(out.code)


def _run(parsed: _Args, paths: node.NodePaths, now: int, out: node.Output) -> node.Output:
    flags, command = parsed.flags, parsed.command
    if command == "prepare":
        return out
    if command == "make-disk":
        assert parsed.path is not None
        sizes = {f"{k}_size": v for k, v in parsed.sizes.items()}
        made = gpt.make_disk(parsed.path, gpt.DiskLayout(**sizes))
        report = gpt.status(made, "A")
        sizes_text = ", ".join(f"{kind} {getattr(made.sets['A'], kind).size}" for kind in node.IMAGE_ORDER)
        out.out(node.json_text(report) if flags.json else f"created {parsed.path}: sets A and B ({sizes_text} bytes "
                f"each), set A active")
        return out
    if command == "status":
        report = node.disk_status(paths)
        if flags.json:
            out.out(node.json_text(report))
        else:
            out.stdout.extend(node.status_text(report))
        return out
    if command == "update-apply":
        node.update_apply(paths, flags)
        return out
    if command == "update-revert":
        node.update_revert(paths)
        return out
    if command == "boot":
        chosen = node.simulate_boot(paths)
        out.out(f"GRUB boots set {chosen} (pass --active-set {chosen} to act as the node running it)" if chosen
                else "GRUB finds no bootable set")
        if chosen is None:
            out.code = 1
        return out
    if command == "mark-successful-boot":
        node.mark_successful_boot(paths)
        return out
    if command == "rollback-to-inactive":
        node.rollback_to_inactive(paths)
        return out
    session = node.open_session(paths, flags, now)
    if command in ("check-update", "whats"):
        node.check_update(session, flags, out)
    elif command in ("update", "update-image"):
        node.update(session, flags, out, apply=command == "update")
    return out
