"""The help and shell completion of ``repo-tool node``'s updog commands (``node COMMAND --help``).

updog parses its own command line (``node_cmd.parse_updog_args``), so click cannot describe or
complete its commands and flags: this module does, from one table.  It must not parse or run them.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem

# updog's commands (and repo-tool's own, marked so): the arguments after the name, what it does, its flags.
UPDOG_COMMANDS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "check-update": ("", "Show the update updog would choose (exit 1 if none).", ("-a", "-i", "-n", "-j", "--variant")),
    "whats": ("", "Alias of check-update.", ("-a", "-i", "-n", "-j", "--variant")),
    "update": ("", "Download, verify and stage the chosen update into the inactive partition set, then make it "
                   "the next boot (as signpost does).", ("-i", "-n", "-r", "-j", "--variant")),
    "update-image": ("", "Like update, but do not make the staged set the next boot.", ("-i", "-n", "-j", "--variant")),
    "update-apply": ("", "Make the staged set the next boot (after update-image); prints nothing.", ("-r",)),
    "update-revert": ("", "Undo update-apply: the active set boots next again.", ()),
    "prepare": ("", "Nothing (kept for updog compatibility).", ()),
    "status": ("", "repo-tool's own: each set's priority, tries left and successful flag, the active set and the "
                   "next boot.", ("-j",)),
    "make-disk": (" PATH", "repo-tool's own: a new sparse GPT disk image with sets A and B, A active (never "
                           "overwrites).", ("--boot-size", "--root-size", "--hash-size", "--private-size", "-j")),
    "boot": ("", "repo-tool's own: what GRUB does at the next boot (decrements tries left); pass --active-set to "
                 "act as the node running the set it boots.", ()),
    "mark-successful-boot": ("", "What the booted system marks after a good boot (signpost's "
                                 "mark-successful-boot).", ()),
    "rollback-to-inactive": ("", "signpost's rollback-to-inactive: boot the other set next, if it would boot.", ()),
}

# Every flag, by its spellings (every command accepts every flag, as updog; the table above lists
# those that change what a command does).
UPDOG_FLAGS: dict[str, tuple[tuple[str, ...], str]] = {
    "-a": (("-a", "--all"), "All applicable updates, older and current ones too (ignores version_lock and -i)."),
    "-i": (("-i", "--image"), "VERSION: this version, whatever version_lock and the waves say."),
    "-n": (("-n", "--now", "--ignore-waves"), "Ignore the wave schedule."),
    "-r": (("-r", "--reboot"), "Run --reboot-command when done."),
    "-j": (("-j", "--json"), "JSON output."),
    "--variant": (("--variant",), "VARIANT: instead of os-release's VARIANT_ID."),
    "--log-level": (("--log-level",), "trace|debug|info|warn|error (default info)."),
    "--boot-size": (("--boot-size",), "SIZE of each boot partition, e.g. 40MiB."),
    "--root-size": (("--root-size",), "SIZE of each root partition, e.g. 1GiB."),
    "--hash-size": (("--hash-size",), "SIZE of each verity hash partition."),
    "--private-size": (("--private-size",), "SIZE of the private partition."),
}


def command_help(command: str) -> str:
    """``repo-tool node COMMAND --help``: usage, what it does, its flags."""
    arguments, summary, flags = UPDOG_COMMANDS[command]
    lines = [f"Usage: repo-tool node [GLOBAL OPTIONS] {command}{arguments} [FLAGS]", "", f"  {summary}", ""]
    shown = flags + tuple(f for f in ("--log-level",) if f not in flags)
    lines.append("Flags (updog's; every command accepts every flag):")
    rows = [(", ".join(UPDOG_FLAGS[flag][0]), UPDOG_FLAGS[flag][1]) for flag in shown]
    width = max(len(names) for names, _ in rows)
    lines += [f"  {names.ljust(width)}  {text}" for names, text in rows]
    lines += ["", "GLOBAL OPTIONS (paths, --disk, --reboot-command ...): see 'repo-tool node --help'."]
    return "\n".join(lines)


def given_command(args: tuple[str, ...] | list[str]) -> str | None:
    return next((arg for arg in args if arg in UPDOG_COMMANDS), None)


def flag_items(args: tuple[str, ...] | list[str], incomplete: str) -> list[CompletionItem]:
    """The updog flags starting with ``incomplete`` (with nothing typed: those of the command given)."""
    command = given_command(args)
    chosen = UPDOG_COMMANDS[command][2] if command is not None and not incomplete else tuple(UPDOG_FLAGS)
    return [CompletionItem(name, help=UPDOG_FLAGS[flag][1]) for flag in chosen for name in UPDOG_FLAGS[flag][0]
            if name.startswith(incomplete)]


def complete_updog(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """A command name until one is given; then make-disk's PATH, or flags (``-x`` is completed by
    the command's ``shell_complete``, which adds :func:`flag_items`)."""
    given: tuple[str, ...] = tuple(ctx.params.get(param.name or "") or ())
    command = given_command(given)
    if command is None:
        return [CompletionItem(name, help=UPDOG_COMMANDS[name][1]) for name in UPDOG_COMMANDS
                if name.startswith(incomplete)]
    if command == "make-disk" and given[-1] == "make-disk":
        return [CompletionItem(incomplete, type="file")]
    return flag_items(given, incomplete)
