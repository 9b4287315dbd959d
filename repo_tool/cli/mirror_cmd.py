"""``repo-tool mirror``: copy a verified upstream repository (metadata byte for byte, the targets it
needs) to a path or S3, incrementally and in the safe order.  The work is :mod:`repo_tool.mirror.mirror`'s."""

from __future__ import annotations

from pathlib import Path

import click

from repo_tool.audit.anchor import read_trusted_root
from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns
from repo_tool.cli.progress import progress_line
from repo_tool.mirror.mirror import Location, MirrorOptions, mirror
from repo_tool.mirror.versions import parse_versions
from repo_tool.storage import open_storage


@click.command("mirror")
@click.option("--root", "root_path", required=True, type=click.Path(dir_okay=False),
              help="The trusted root.json the source is verified from (the one nodes ship).")
@click.option("--from-metadata-url", required=True, metavar="URL",
              help="The source's variant/arch metadata (path, file://, http(s)://, s3://).")
@click.option("--from-targets-url", required=True, metavar="URL", help="The source's targets.")
@click.option("--to-metadata-url", required=True, metavar="URL",
              help="Where the metadata goes (path, file:// or s3://BUCKET/PREFIX/).")
@click.option("--to-targets-url", required=True, metavar="URL", help="Where the targets go (path, file:// or s3://).")
@click.option("--versions", "versions_text", default=None, metavar="latest|all|SPEC",
              help="Only the targets these manifest versions need (images, manifest.json, migrations): latest, "
                   "all, or a comma list of versions and requirements such as >=1.19.0.  Default: every target.")
@click.option("--plan", is_flag=True, help="Only say what would be copied (objects, bytes, versions); write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@aws_options
def mirror_cmd(root_path: str, from_metadata_url: str, from_targets_url: str, to_metadata_url: str,
               to_targets_url: str, versions_text: str | None, plan: bool, as_json: bool) -> None:
    """Mirror a repository: verify the source as a node does, then copy what the destination lacks
    (targets, roots, snapshot and targets files, timestamp.json last).  A rerun copies nothing new."""
    versions = parse_versions(versions_text) if versions_text is not None else None
    root = read_trusted_root(root_path)
    aws = aws_settings()
    here = Path.cwd()
    source = Location(open_storage(from_metadata_url, here, aws), open_storage(from_targets_url, here, aws))
    destination = Location(open_storage(to_metadata_url, here, aws), open_storage(to_targets_url, here, aws))
    options = MirrorOptions(versions, plan, root.name, progress_line(as_json))
    result = mirror(source, destination, root.data, now_ns(), options)
    if as_json:
        echo_json(result.to_json_obj())
    else:
        click.echo("\n".join(result.text_lines()))
