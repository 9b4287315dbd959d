"""The options of commands that read many variant/arch repositories (``check-expirations``,
``rollout status``): a config's repositories, or one repository by URL, and which pairs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from repo_tool.audit.anchor import read_trusted_root
from repo_tool.audit.fleet import RepoRef, Unlisted, config_refs
from repo_tool.cli.common import aws_options, aws_settings, now_ns, parse_time_option
from repo_tool.cli.options import config_on_command_line, config_option, repo_option
from repo_tool.config import load_config, repo_names
from repo_tool.core.instant import add_offset
from repo_tool.errors import RepoToolError, UsageError, one_line
from repo_tool.storage import open_storage

Pairs = list[tuple[str, str]]


def fleet_options(targets: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config``, ``--repo`` (repeatable), ``--metadata-url`` [``--targets-url``] ``--root``,
    ``--variant``/``--arch`` (repeatable pairs) and the AWS options."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func = aws_options(func)
        func = click.option("--arch", "arches", multiple=True,
                            help="Architecture paired with the --variant at the same position.")(func)
        func = click.option("--variant", "variants", multiple=True,
                            help="This variant only (pair each --variant with an --arch; repeat)." if targets else
                            "With --config: check this variant (pair each --variant with an --arch; repeat).")(func)
        func = click.option("--root", "root_path", default=None, type=click.Path(dir_okay=False),
                            help="With --metadata-url: the trusted root.json.")(func)
        if targets:
            func = click.option("--targets-url", default=None,
                                help="With --metadata-url: the repository's targets URL.")(func)
        func = click.option("--metadata-url", default=None,
                            help="Instead of --config: one repository's metadata URL (.../VARIANT/ARCH/).")(func)
        func = repo_option("Repository name in the config; repeat for several (default: every one).",
                           name="repo_names_given", multiple=True)(func)
        return config_option("repo-tool.yaml, or a pubsys Infra.toml (--metadata-url wins over REPO_TOOL_CONFIG).")(
            func)

    return decorate


def at_and_within(at_text: str | None, within_text: str) -> tuple[int, int]:
    """``--at`` (default now) and the length of the ``--within`` window counted from it, in ns."""
    now = now_ns()
    at = now if at_text is None else parse_time_option(at_text, now, "--at")
    try:
        return at, add_offset(at, within_text) - at
    except RepoToolError as exc:
        raise UsageError(f"--within: {exc.message}") from None


def echo_failures(failures: Iterable[tuple[RepoRef, str | None]]) -> None:
    """One error line on stderr per repository that failed, naming it (the others are still reported on
    stdout; the exit code says the rest, without another line)."""
    for ref, error in failures:
        click.echo(f"repo-tool: error: {one_line(ref.label)}: {one_line(str(error))}", err=True)


def fleet_refs(config_path: str | None, repo_names_given: tuple[str, ...], metadata_url: str | None,
               root_path: str | None, variants: tuple[str, ...], arches: tuple[str, ...],
               targets_url: str | None = None, with_targets: bool = False) -> tuple[list[RepoRef | Unlisted], Pairs]:
    """The repositories the options name, and the pairs given.  With ``with_targets`` (a command that
    reads ``manifest.json``), ``--metadata-url`` needs ``--targets-url`` and the pairs choose among
    the variant/arch pairs its manifest lists; otherwise they go with ``--config`` only."""
    if len(variants) != len(arches):
        raise UsageError("--variant and --arch go in pairs: give as many of each")
    pairs = list(zip(variants, arches))
    if metadata_url is not None and not config_on_command_line(click.get_current_context()):
        config_path = None  # --metadata-url wins over REPO_TOOL_CONFIG
    if metadata_url is not None:
        if config_path is not None:
            raise UsageError("give either --config or --metadata-url, not both")
        if root_path is None:
            raise UsageError("--metadata-url needs --root ROOT.json (the trusted root)")
        if with_targets and targets_url is None:
            raise UsageError("--metadata-url needs --targets-url URL (where manifest.json is read from)")
        if repo_names_given or (pairs and not with_targets):
            raise UsageError("--repo, --variant and --arch go with --config; --metadata-url names one repository")
        meta = open_storage(metadata_url, None, aws_settings())
        root = read_trusted_root(root_path)  # before anything is checked: a wrong --root is exit 2
        targets = open_storage(targets_url, None, aws_settings()) if targets_url is not None else None
        return [RepoRef(None, None, None, meta, root.data, root.name, targets)], pairs
    one = f"--metadata-url URL {'--targets-url URL ' if with_targets else ''}--root ROOT.json"
    if config_path is None:
        raise UsageError(f"give --config FILE (every configured repository) or {one}")
    if root_path is not None or targets_url is not None:
        given = "--root" if root_path is not None else "--targets-url"
        raise UsageError(f"{given} goes with --metadata-url; with --config the repository's own is used")
    path = Path(config_path)
    refs: list[RepoRef | Unlisted] = []
    for name in dict.fromkeys(repo_names_given or repo_names(path)):
        refs += config_refs(load_config(path, name, aws_settings()), pairs, with_targets=with_targets)
    return refs, pairs
