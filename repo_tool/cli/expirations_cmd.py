"""``check-expirations``: pubsys's ``check-repo-expirations`` over every variant/arch repository.

The check is :mod:`repo_tool.audit.expirations`', the table :mod:`repo_tool.audit.report`'s; this
module only chooses the repositories from the options and prints.
"""

from __future__ import annotations

from pathlib import Path

import click

from repo_tool.audit.anchor import read_trusted_root
from repo_tool.audit.expirations import DEFAULT_WITHIN, RepoRef, RepoResult, check_expirations, config_refs
from repo_tool.audit.report import expirations_text
from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns, parse_time_option
from repo_tool.cli.options import config_on_command_line, config_option, repo_option
from repo_tool.config import load_config, repo_names
from repo_tool.core.instant import add_offset
from repo_tool.errors import RepoToolError, UsageError, one_line
from repo_tool.storage import open_storage


@click.command("check-expirations")
@click.option("--within", "within_text", default=DEFAULT_WITHIN, show_default=True,
              help="Flag roles expiring inside this window: '3 days', '36 hours', '2 weeks'.")
@click.option("--at", "at_text", default=None,
              help="Check as of this instant: RFC 3339, 'now' or an offset such as 'in 2 days' (default: now).")
@config_option("repo-tool.yaml, or a pubsys Infra.toml (--metadata-url wins over REPO_TOOL_CONFIG).")
@repo_option("Repository name in the config; repeat for several (default: every one).", name="repo_names_given",
             multiple=True)
@click.option("--metadata-url", default=None,
              help="Instead of --config: one repository's metadata URL (.../VARIANT/ARCH/).")
@click.option("--root", "root_path", default=None, type=click.Path(dir_okay=False),
              help="With --metadata-url: the trusted root.json.")
@click.option("--variant", "variants", multiple=True,
              help="With --config: check this variant (pair each --variant with an --arch; repeat).")
@click.option("--arch", "arches", multiple=True, help="Architecture paired with the --variant at the same position.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@aws_options
def check_expirations_cmd(within_text: str, at_text: str | None, config_path: str | None,
                          repo_names_given: tuple[str, ...], metadata_url: str | None, root_path: str | None,
                          variants: tuple[str, ...], arches: tuple[str, ...], as_json: bool) -> None:
    """Report when each role of every repository expires; exit 1 if any expires within the window.

    Repositories are loaded without expiry checks (signatures, versions and hashes are still
    verified).  With --config and no --variant/--arch, each repository's variants: list is used,
    or the VARIANT/ARCH/ repositories below metadata_url are discovered (local or s3://).
    Exit 0: nothing expires within the window; 1: a role expires within it or has expired, or a
    repository failed to load; 2: usage or configuration error.
    """
    now = now_ns()
    at = now if at_text is None else parse_time_option(at_text, now, "--at")
    try:
        within = add_offset(at, within_text) - at
    except RepoToolError as exc:
        raise UsageError(f"--within: {exc.message}") from None
    if len(variants) != len(arches):
        raise UsageError("--variant and --arch go in pairs: give as many of each")
    pairs = list(zip(variants, arches))
    refs: list[RepoRef | RepoResult] = []
    if metadata_url is not None and not config_on_command_line(click.get_current_context()):
        config_path = None  # --metadata-url wins over REPO_TOOL_CONFIG
    if metadata_url is not None:
        if config_path is not None:
            raise UsageError("give either --config or --metadata-url, not both")
        if root_path is None:
            raise UsageError("--metadata-url needs --root ROOT.json (the trusted root)")
        if repo_names_given or pairs:
            raise UsageError("--repo, --variant and --arch go with --config; --metadata-url names one repository")
        meta = open_storage(metadata_url, None, aws_settings())
        root = read_trusted_root(root_path)  # before anything is checked: a wrong --root is exit 2
        refs.append(RepoRef(None, None, None, meta, root.data, root.name))
    elif config_path is not None:
        if root_path is not None:
            raise UsageError("--root goes with --metadata-url; with --config the repo's root: is used")
        path = Path(config_path)
        for name in dict.fromkeys(repo_names_given or repo_names(path)):
            refs += config_refs(load_config(path, name, aws_settings()), pairs)
    else:
        raise UsageError("give --config FILE (every configured repository) or --metadata-url URL --root ROOT.json")
    report = check_expirations(refs, at, within, within_text)
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo("\n".join(expirations_text(report)))
    # The summary (or the JSON) is on stdout, once; stderr has one error line per repository that did not
    # load.  The exit code says the rest (1: something is flagged or failed), without another line.
    for result in report.failed:
        click.echo(f"repo-tool: error: {one_line(result.ref.label)}: {one_line(str(result.error))}", err=True)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)
