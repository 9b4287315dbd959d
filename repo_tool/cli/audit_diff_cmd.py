"""``repo-tool audit-diff OLD NEW``: what changed between two snapshots of one repository's metadata.

The comparison and its text are :mod:`repo_tool.audit.diff`'s; this module only prints them.
"""

from __future__ import annotations

from pathlib import Path

import click

from repo_tool.audit.diff_load import DiffRequest, audit_diff
from repo_tool.audit.diff_text import text_lines
from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns


@click.command("audit-diff")
@click.argument("old")
@click.argument("new")
@click.option("--root", "root", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Trusted root for both snapshots (default: each snapshot's own 1.root.json).")
@click.option("--targets-url", default=None, metavar="URL",
              help="Targets location shared by both snapshots; needed to compare manifest.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@aws_options
def audit_diff_cmd(old: str, new: str, root: Path | None, targets_url: str | None, as_json: bool) -> None:
    """Compare two snapshots OLD and NEW of one variant/arch repository's metadata (directories,
    file://, s3:// or http(s):// URLs) so a reviewer can sign off a publish: role versions and
    expiries, new roots and their key rotations, targets added/removed/changed and, with
    --targets-url, the manifest's updates, waves, max_version and migrations.

    Both are fully verified (expired metadata is still loaded, and reported).  Exit 0 when both
    load, whatever changed; 1 if either fails verification; 2 for usage errors."""
    result = audit_diff(DiffRequest(old, new, root, targets_url), now_ns(), aws_settings())
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo("\n".join(text_lines(result)))
