"""What to say when a conventional option is used where it is not one: ``-h`` and a late ``--debug``."""

from __future__ import annotations

import click

HELP_HINT = "-h is not short for --help (only 'manifest add-update' has -h: updata's -h/--hash)"
DEBUG_HINT = "--debug goes before the command: repo-tool --debug COMMAND ..."


def hint_for(option: str) -> str | None:
    """The hint for an unknown ``option``, if it is one people reach for by habit."""
    return {"-h": HELP_HINT, "--debug": DEBUG_HINT}.get(option)


HASH_HINT = "-h is --hash here (updata's -h/--hash, the verity hash image); help is --help"


def usage_message(exc: click.ClickException) -> str:
    """click's message for an error, or the hint when the unknown option is ``-h`` or ``--debug``, or
    ``-h`` lacks its value where it is ``--hash`` (``manifest add-update -h`` asking for help)."""
    if isinstance(exc, click.NoSuchOption):
        return hint_for(exc.option_name) or exc.format_message()
    if isinstance(exc, click.BadOptionUsage) and exc.option_name == "-h":
        return f"{exc.format_message()} {HASH_HINT}"
    return exc.format_message()
