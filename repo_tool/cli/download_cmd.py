"""``repo-tool download``: verified targets of one repository into a folder (tuftool ``download``).

The work is :func:`repo_tool.mirror.download.download`'s; this module turns the options into its
request and prints what it returns.
"""

from __future__ import annotations

from pathlib import Path

import click

from repo_tool.audit.anchor import read_trusted_root
from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns
from repo_tool.cli.progress import progress_line
from repo_tool.localfs import user_path
from repo_tool.mirror.download import DownloadRequest, download
from repo_tool.storage import open_storage


@click.command("download")
@click.option("--root", "root_path", required=True, type=click.Path(dir_okay=False),
              help="The trusted root.json the repository is verified from (the one nodes ship).")
@click.option("--metadata-url", required=True,
              help="The variant/arch repository's metadata (path, file://, http(s)://, s3://BUCKET/PREFIX/).")
@click.option("--targets-url", required=True, help="The repository's targets (path, file://, http(s)://, s3://).")
@click.option("--version", "version", default=None, metavar="X",
              help="Download the boot, root and hash images of release X (or 'latest') that manifest.json lists.")
@click.option("--target", "names", multiple=True, metavar="NAME",
              help="Download this target (repeat for several); instead of --version.")
@click.option("--variant", default=None,
              help="With --version: the variant whose release it is, when manifest.json has several.")
@click.option("--arch", default=None,
              help="With --version: the architecture whose release it is, when manifest.json has several.")
@click.option("--force", is_flag=True,
              help="Replace files in OUTDIR that hold other bytes (default: refuse; identical ones are kept).")
@click.option("--json", "as_json", is_flag=True, help="Print the files (name, size, sha256, skipped) as JSON.")
@click.argument("outdir", type=click.Path(file_okay=False))
@aws_options
def download_cmd(root_path: str, metadata_url: str, targets_url: str, version: str | None,
                 names: tuple[str, ...], variant: str | None, arch: str | None, force: bool, as_json: bool,
                 outdir: str) -> None:
    """Download targets into OUTDIR under their plain names, verified as a node verifies them.

    The repository is loaded from the trusted --root by tough's rules; each target is streamed into
    a temporary file in OUTDIR, its length and sha256 checked, and only then given its name.  A file
    in OUTDIR that already holds the target is not downloaded again.  Exit 0 done; 1 the repository
    or a target failed verification, or a read or write failed; 2 usage error (an unknown --target
    or --version among them).
    """
    now = now_ns()
    root = read_trusted_root(root_path)
    aws = aws_settings()
    request = DownloadRequest(
        metadata=open_storage(metadata_url, Path.cwd(), aws), targets=open_storage(targets_url, Path.cwd(), aws),
        root=root.data, root_name=root.name, outdir=user_path(outdir, "OUTDIR"), names=names, version=version,
        variant=variant, arch=arch, force=force)
    result = download(request, now, progress_line(as_json))
    if as_json:
        echo_json(result.to_json_obj())
        return
    for saved in result.files:
        state = "kept (identical)" if saved.skipped else "downloaded"
        click.echo(f"{state:<16}  {saved.name}  {saved.size} bytes  sha256 {saved.sha256}")
    click.echo(f"{len(result.files)} file(s) in {result.outdir}, {result.downloaded_bytes} bytes downloaded")
