"""A click group whose subcommands are imported when one runs or help lists them.

``repo-tool`` itself and ``repo-tool rollout`` are such groups: a read-only command (``rollout
status``, ``node``) then loads the reader it needs, not the publisher's signers, securesystemslib and
boto3 (about a quarter of a second per run).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A group whose commands are ``lazy``: name -> ``"module:attribute"`` below ``repo_tool.cli``."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attribute = self.lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(f"repo_tool.cli.{module}"), attribute)
            assert isinstance(command, click.Command) and command.name == cmd_name, cmd_name
            self.add_command(command)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                             list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:  # click suggests only from the commands loaded so far: all of them here
            close = difflib.get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if close and args[0] not in self.lazy and "Did you mean" not in exc.message:
                suggestion = " or ".join(repr(name) for name in close)
                raise click.UsageError(f"{exc.message} Did you mean {suggestion}?", exc.ctx) from None
            raise
