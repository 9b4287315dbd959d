"""``infra create-bucket`` and ``infra create-keys``: the AWS resources a repository needs, set up
idempotently (a rerun changes nothing and says so; ``--plan`` only reads).

Every AWS call is :mod:`repo_tool.publish.infra`'s; this module only prints its actions.
"""

from __future__ import annotations

from dataclasses import asdict

import click

from repo_tool.cli.common import aws_options, aws_settings, echo_json
from repo_tool.publish.infra import create_bucket, create_keys


@click.group("infra")
def infra() -> None:
    """Create the S3 bucket and KMS signing keys of a repository (idempotent; --plan only reads)."""


@infra.command("create-bucket")
@click.argument("bucket")
@click.option("--region", default=None, metavar="REGION",
              help="Region of a new bucket (default: the configured AWS region).")
@click.option("--plan", is_flag=True, help="Only read: print what would be done, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the actions as a JSON list.")
@aws_options
def create_bucket_cmd(bucket: str, region: str | None, plan: bool, as_json: bool) -> None:
    """Create BUCKET, or bring an existing one up to date: versioning on, all public access
    blocked, default encryption (SSE-S3; an SSE-KMS default is kept), and a lifecycle rule that
    aborts incomplete multipart uploads after 7 days (other lifecycle rules are kept)."""
    actions = create_bucket(aws_settings(), bucket, region, plan)
    if as_json:
        echo_json([asdict(action) for action in actions])
        return
    for action in actions:
        click.echo(action.what)
    if not any(action.change for action in actions):
        click.echo("nothing to do")


@infra.command("create-keys")
@click.argument("aliases", metavar="ALIAS...", nargs=-1, required=True)
@click.option("--key-spec", type=click.Choice(["RSA_3072", "RSA_4096"]), default="RSA_3072", show_default=True,
              help="Key spec of new keys (signing scheme rsassa-pss-sha256).")
@click.option("--plan", is_flag=True, help="Only read: print what would be done, create nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as a JSON list.")
@aws_options
def create_keys_cmd(aliases: tuple[str, ...], key_spec: str, plan: bool, as_json: bool) -> None:
    """Create an asymmetric SIGN_VERIFY KMS key for each ALIAS ('name' or 'alias/name') that does
    not exist yet; reuse (after checking) the key of an existing alias.  Prints each key's signer
    source (awskms:alias/NAME) for the signers of repo-tool.yaml."""
    results = create_keys(aws_settings(), list(aliases), plan, key_spec)
    if as_json:
        echo_json([asdict(result) for result in results])
        return
    for result in results:
        click.echo(result.what)
