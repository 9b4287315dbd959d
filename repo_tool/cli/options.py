"""Options several commands share: --config (REPO_TOOL_CONFIG), --repo, --wave-policy, --json; completions.

Completion callbacks run in the shell's completion request: they must never fail or print, only
return fewer suggestions.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from click.shell_completion import CompletionItem

from repo_tool.cli.common import echo_json
from repo_tool.config import BUILTIN_POLICIES
from repo_tool.errors import RepoToolError, VerificationError

CONFIG_ENV = "REPO_TOOL_CONFIG"
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def complete_policy(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The shipped wave policy names, and files (a policy may be a TOML or YAML file)."""
    names = [CompletionItem(name, help="shipped wave policy") for name in BUILTIN_POLICIES
             if name.startswith(incomplete)]
    # bash: a file item first (it clears the list), then the names; files complete when no name matches
    return [CompletionItem(incomplete, type="file"), *names]


def complete_repo(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The repository names of the config given on the command line (or REPO_TOOL_CONFIG)."""
    from repo_tool.config import repo_names

    path = ctx.params.get("config_path") or os.environ.get(CONFIG_ENV)
    if not path:
        return []
    try:
        names = repo_names(Path(path))
    except Exception:  # a config being written, unreadable or wrong: no suggestions, never an error
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def config_option(help_text: str, *, required: bool = False) -> Decorator:
    """``--config FILE`` (``config_path``), defaulting to $REPO_TOOL_CONFIG."""
    return click.option("--config", "config_path", required=required, envvar=CONFIG_ENV, show_envvar=True,
                        type=click.Path(dir_okay=False), help=help_text, callback=_note_config_from_env)


_CONFIG_FROM_ENV = "repo_tool.config_from_env"  # in ctx.meta, which every context of one run shares


def _note_config_from_env(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and ctx.get_parameter_source("config_path") is ParameterSource.ENVIRONMENT:
        ctx.meta[_CONFIG_FROM_ENV] = value
    return value


def traced_to_env(ctx: click.Context, exc: RepoToolError) -> RepoToolError:
    """``exc`` with ``(from REPO_TOOL_CONFIG)`` after the config file its message starts with, when that
    file came from the variable and not the command line: a user who never typed the name sees where it
    came from."""
    value = ctx.meta.get(_CONFIG_FROM_ENV)
    if not value:
        return exc
    for name in dict.fromkeys((value, str(Path(value)))):
        if exc.message.startswith(f"{name}:"):
            return exc.reworded(f"{name} (from {CONFIG_ENV}){exc.message[len(name):]}")
    return exc


def config_on_command_line(ctx: click.Context) -> bool:
    """Whether --config was given on the command line (not taken from REPO_TOOL_CONFIG), for commands
    where other options replace a config: those win over the environment, not over --config."""
    return ctx.get_parameter_source("config_path") is not ParameterSource.ENVIRONMENT


def repo_option(help_text: str = "Repository name in the config (if several).", **extra: Any) -> Decorator:
    """``--repo NAME`` (``repo_name``), completing the names of the config's repositories."""
    extra.setdefault("default", None)
    return click.option("--repo", extra.pop("name", "repo_name"), shell_complete=complete_repo, help=help_text,
                        **extra)


def json_option(help_text: str = "Print the result as JSON.") -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


@contextlib.contextmanager
def json_verdict(as_json: bool, **fields: Any) -> Iterator[None]:
    """A check that fails, with --json: its verdict ``{**fields, "ok": false, "result": "fail", "error": ...}``
    on stdout, then the error line on stderr and the exit code as without --json (``result`` as audit's)."""
    try:
        yield
    except VerificationError as exc:
        if as_json:
            echo_json({**fields, "ok": False, "result": "fail", "error": exc.message})
        raise
