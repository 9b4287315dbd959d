"""``check-expirations``: pubsys's ``check-repo-expirations`` over every variant/arch repository.

The check is :mod:`repo_tool.audit.expirations`', the table :mod:`repo_tool.audit.report`'s; this
module only chooses the repositories from the options and prints.
"""

from __future__ import annotations

import click

from repo_tool.audit.expirations import DEFAULT_WITHIN, check_expirations
from repo_tool.audit.report import expirations_text
from repo_tool.cli.common import echo_json
from repo_tool.cli.fleet_options import at_and_within, echo_failures, fleet_options, fleet_refs


@click.command("check-expirations")
@click.option("--within", "within_text", default=DEFAULT_WITHIN, show_default=True,
              help="Flag roles expiring inside this window: '3 days', '36 hours', '2 weeks'.")
@click.option("--at", "at_text", default=None,
              help="Check as of this instant: RFC 3339, 'now' or an offset such as 'in 2 days' (default: now).")
@fleet_options(targets=False)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
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
    at, within = at_and_within(at_text, within_text)
    refs, _ = fleet_refs(config_path, repo_names_given, metadata_url, root_path, variants, arches)
    report = check_expirations(refs, at, within, within_text)
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo("\n".join(expirations_text(report)))
    # The summary (or the JSON) is on stdout, once; stderr has one error line per repository that did not
    # load.  The exit code says the rest (1: something is flagged or failed), without another line.
    echo_failures((result.ref, result.error) for result in report.failed)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)
