"""The ``repo-tool`` command line: a thin click layer over the library.

Every expected failure is a :class:`~repo_tool.errors.RepoToolError` printed as
one line (``repo-tool: error: ...``) with its exit code: 2 for bad input, 1
for verification failures.  No traceback reaches the user.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from repo_tool import __version__
from repo_tool.cli.audit_cmd import audit_cmd
from repo_tool.cli.audit_diff_cmd import audit_diff_cmd
from repo_tool.cli.expirations_cmd import check_expirations_cmd
from repo_tool.cli.infra_cmd import infra
from repo_tool.cli.manifest_cmd import manifest
from repo_tool.cli.node_cmd import node_cmd
from repo_tool.cli.publish_cmd import COMMANDS as PUBLISH_COMMANDS
from repo_tool.cli.quickstart_cmd import quickstart_cmd
from repo_tool.cli.root_cmd import keys_group, root_group
from repo_tool.cli.tuf_client_cmd import tuf_client_cmd
from repo_tool.cli.waves_cmd import waves
from repo_tool.errors import RepoToolError


@click.group(context_settings={"help_option_names": ["--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="repo-tool")
def cli() -> None:
    """Publish, roll out, verify and consume Bottlerocket TUF update repositories."""


cli.add_command(waves)
cli.add_command(manifest)
cli.add_command(keys_group)
cli.add_command(root_group)
cli.add_command(quickstart_cmd)
cli.add_command(infra)
cli.add_command(node_cmd)
cli.add_command(tuf_client_cmd)
cli.add_command(audit_cmd)
cli.add_command(audit_diff_cmd)
cli.add_command(check_expirations_cmd)
for _command in PUBLISH_COMMANDS:
    cli.add_command(_command)


def _fail(message: str, code: int) -> None:
    click.echo(f"repo-tool: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    # Libraries (securesystemslib's AWS signer, botocore) log failures we already report in one line.
    logging.getLogger().addHandler(logging.NullHandler())
    logging.lastResort = None
    try:
        code = cli.main(args=argv, prog_name="repo-tool", standalone_mode=False)
    except RepoToolError as exc:
        if exc.exit_code == 0:  # nothing to do (e.g. a rerun of a publish that already landed)
            click.echo(f"repo-tool: {exc.message}", err=True)
            sys.exit(0)
        _fail(exc.message, exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        sys.exit(2)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(f"{exc.format_message()}{where}", exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # Output was cut short by the reader (e.g. `| head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line, keep the traceback for REPO_TOOL_DEBUG
        if os.environ.get("REPO_TOOL_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set REPO_TOOL_DEBUG=1 for a traceback)", 1)
    sys.exit(code if isinstance(code, int) else 0)
