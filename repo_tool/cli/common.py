"""Helpers shared by the CLI commands: the clock read, option values, output, AWS options, progress.

Only command-line concerns live here (a flag's name in a message, click's context, the terminal);
reading and parsing input files is the library's (:mod:`repo_tool.publish.inputs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from repo_tool.aws import AwsSettings
from repo_tool.config import EXPIRING_ROLES, Expiry, parse_expiry
from repo_tool.core.instant import parse_time_arg
from repo_tool.core.manifest import dumps_pretty
from repo_tool.core.semver import Version
from repo_tool.errors import RepoToolError, UsageError


def now_ns() -> int:
    """The one clock read of a command: every 'now' it needs derives from this value."""
    return time.time_ns()


def parse_version_option(text: str, flag: str) -> Version:
    try:
        return Version.parse(text)
    except RepoToolError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def parse_time_option(text: str, now: int, flag: str) -> int:
    try:
        return parse_time_arg(text, now)
    except RepoToolError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def echo_json(obj: Any) -> None:
    """CLI JSON: the manifest layout plus one newline."""
    click.echo(dumps_pretty(obj))


def warn(message: str) -> None:
    click.echo(f"repo-tool: warning: {message}", err=True)


# --- AWS options and publish progress -------------------------------------------------------


def aws_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--profile`` and ``--endpoint-url``, kept in the click context for :func:`aws_settings`."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        ctx.meta[f"repo_tool.{param.name}"] = value or None
        return value

    for decorator in reversed([
        click.option("--profile", default=None, expose_value=False, callback=remember, metavar="NAME",
                     help="AWS profile for S3 and KMS (default: AWS_PROFILE / the standard chain)."),
        click.option("--endpoint-url", default=None, expose_value=False, callback=remember, metavar="URL",
                     help="S3 endpoint (S3-compatible stores, test servers); default: AWS_ENDPOINT_URL_S3 / "
                          "AWS_ENDPOINT_URL / AWS."),
    ]):
        func = decorator(func)
    return func


def aws_settings() -> AwsSettings:
    """The AWS settings given on the current command line."""
    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    return AwsSettings(meta.get("repo_tool.profile"), meta.get("repo_tool.endpoint_url"))


def expires_options(start: str = "now") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--targets-expires``, ``--snapshot-expires``, ``--timestamp-expires`` (tuftool's names), kept in
    the click context for :func:`expires_given`: they override the config's ``expiration``.  ``start``
    names what an offset counts from on this command (``now``, ``--release-start-time (else now)``)."""

    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is not None:
            ctx.meta.setdefault("repo_tool.expires", {})[str(param.name).removesuffix("_expires")] = value
        return value

    helps = {role: f"The same for {role}.json." for role in EXPIRING_ROLES}
    helps[EXPIRING_ROLES[0]] = (f"When the new {EXPIRING_ROLES[0]}.json expires, over the config's expiration: an "
                                f"offset ('in 4 weeks') from {start}, or an RFC 3339 time.")

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for role in reversed(EXPIRING_ROLES):
            func = click.option(f"--{role}-expires", default=None, expose_value=False, callback=remember,
                                metavar="TIME", help=helps[role])(func)
        return func

    return decorate


def expires_given() -> dict[str, Expiry]:
    """The expirations given on the current command line (``--targets-expires`` ...), by role."""
    ctx = click.get_current_context(silent=True)
    given: dict[str, str] = ctx.meta.get("repo_tool.expires", {}) if ctx is not None else {}
    return {role: parse_expiry(text, f"--{role}-expires", instants=True) for role, text in given.items()}
