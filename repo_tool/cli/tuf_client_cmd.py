"""``repo-tool tuf-client``: the tuf-conformance client protocol (``CLIENT-CLI.md``).

Global options in any order, then one of ``init TRUSTED_ROOT``, ``refresh`` or ``download``::

    repo-tool tuf-client --metadata-dir DIR init ROOT.json
    repo-tool tuf-client --metadata-url URL --metadata-dir DIR refresh
    repo-tool tuf-client --metadata-url URL --metadata-dir DIR --target-name PATH \\
        --target-dir TDIR --target-base-url TURL download

As the protocol requires, every failure exits 1 (usage errors too), with one line on stderr.
The client is :mod:`repo_tool.node.tuf_client`; this module only maps the protocol onto it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from repo_tool.cli.hints import usage_message
from repo_tool.errors import RepoToolError
from repo_tool.node import tuf_client
from repo_tool.storage.transport import Transport


class TufClientFailed(RepoToolError):
    """Any failure of the client: the protocol wants exit code 1 for all of them."""

    exit_code = 1


class _UsageError(click.UsageError):
    exit_code = 1


def _exit_one(exc: click.UsageError | RepoToolError) -> Exception:
    if isinstance(exc, click.UsageError):
        return _UsageError(usage_message(exc), exc.ctx)
    return TufClientFailed(exc.message)


class _ExitOne(click.Group):
    """A group whose every failure, a usage error included, exits 1."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except (click.UsageError, RepoToolError) as exc:
            raise _exit_one(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.UsageError, RepoToolError) as exc:
            raise _exit_one(exc) from None


class _Options:
    def __init__(self, metadata_dir: Path | None, metadata_url: str | None, target_names: tuple[str, ...],
                 target_dir: Path | None, target_base_url: str | None) -> None:
        self.metadata_dir = metadata_dir
        self.metadata_url = metadata_url
        self.target_names = target_names
        self.target_dir = target_dir
        self.target_base_url = target_base_url
        self.now = time.time_ns()  # once per run: a faked clock (libfaketime) is honoured

    def need(self, value: object, flag: str, command: str) -> None:
        if value is None or value == ():
            raise click.UsageError(f"{command} needs {flag}")

    def directory(self, command: str) -> Path:
        """--metadata-dir, which every command needs (checked by each, so that `COMMAND --help` works)."""
        self.need(self.metadata_dir, "--metadata-dir", command)
        assert self.metadata_dir is not None
        return self.metadata_dir


@click.group("tuf-client", cls=_ExitOne, no_args_is_help=False)
@click.option("--metadata-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Trusted metadata, under plain names (root.json, timestamp.json ...); required.")
@click.option("--metadata-url", help="Base URL of the repository's metadata (http, https or file).")
@click.option("--target-name", "target_names", multiple=True, help="TUF target path to download (repeatable).")
@click.option("--target-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where verified targets are stored.")
@click.option("--target-base-url", help="Base URL of the repository's targets.")
@click.pass_context
def tuf_client_cmd(ctx: click.Context, metadata_dir: Path | None, metadata_url: str | None,
                   target_names: tuple[str, ...], target_dir: Path | None, target_base_url: str | None) -> None:
    """A standard TUF client speaking the tuf-conformance client protocol.

    Its options and output are the protocol's (CLIENT-CLI.md), so it has no --json, and every
    failure exits 1."""
    ctx.obj = _Options(metadata_dir, metadata_url, target_names, target_dir, target_base_url)


@tuf_client_cmd.command("init")
@click.argument("trusted_root", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def init_cmd(opts: _Options, trusted_root: Path) -> None:
    """Start trusting TRUSTED_ROOT (copied to METADATA_DIR/root.json; no requests)."""
    path = tuf_client.init(opts.directory("init"), trusted_root)
    click.echo(f"initialized {path}")


@tuf_client_cmd.command("refresh")
@click.pass_obj
def refresh_cmd(opts: _Options) -> None:
    """Update the trusted metadata from METADATA_URL."""
    directory = opts.directory("refresh")
    opts.need(opts.metadata_url, "--metadata-url", "refresh")
    assert opts.metadata_url is not None
    with Transport() as transport:
        repo = tuf_client.refresh(tuf_client.Remote(opts.metadata_url, directory), opts.now, transport)
    click.echo(f"refreshed {directory}: root v{repo.root.version}, timestamp v{repo.timestamp.version}, "
               f"snapshot v{repo.snapshot.version}, targets v{repo.targets.version}")


@tuf_client_cmd.command("download")
@click.pass_obj
def download_cmd(opts: _Options) -> None:
    """Refresh, then download each --target-name verified into --target-dir."""
    directory = opts.directory("download")
    opts.need(opts.metadata_url, "--metadata-url", "download")
    opts.need(opts.target_names, "--target-name", "download")
    opts.need(opts.target_dir, "--target-dir", "download")
    opts.need(opts.target_base_url, "--target-base-url", "download")
    assert opts.metadata_url is not None and opts.target_dir is not None and opts.target_base_url is not None
    with Transport() as transport:
        done = tuf_client.download(tuf_client.Remote(opts.metadata_url, directory),
                                   tuf_client.TargetPlace(opts.target_base_url, opts.target_dir), opts.target_names,
                                   opts.now, transport)
    for item in done:
        click.echo(f"{item.name}: {'already verified at' if item.cached else 'downloaded to'} {item.path}")
