"""The ``repo-tool`` command line: a thin click layer over the library.

Every expected failure is a :class:`~repo_tool.errors.RepoToolError` printed as
one line (``repo-tool: error: ...``) with its exit code: 2 for usage and configuration
errors, 1 when the repository is bad or I/O failed.  No traceback reaches the user unless they
ask for one with ``--debug`` (or ``REPO_TOOL_DEBUG=1``), which also shows the libraries' logs.

Each command parses its options, calls one library function and prints what it returns; no command
module holds library work (checks, file formats, text renderings), and nothing outside ``cli``
imports it.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from repo_tool import __version__
from repo_tool.cli.hints import usage_message
from repo_tool.cli.lazy import LazyGroup
from repo_tool.errors import RepoToolError, one_line

# Each command's module is imported when that command runs (or help lists it), not all of them at
# start: a node's `repo-tool node` then loads the verifier and transport but not the publisher's
# signers, securesystemslib and boto3 (about a quarter of a second and 24 MiB per run).
COMMANDS = {
    "audit": "audit_cmd:audit_cmd",
    "audit-diff": "audit_diff_cmd:audit_diff_cmd",
    "check-expirations": "expirations_cmd:check_expirations_cmd",
    "download": "download_cmd:download_cmd",
    "infra": "infra_cmd:infra",
    "keys": "root_cmd:keys_group",
    "manifest": "manifest_cmd:manifest",
    "mirror": "mirror_cmd:mirror_cmd",
    "node": "node_cmd:node_cmd",
    "publish": "publish_cmd:publish_cmd",
    "publish-release": "publish_cmd:publish_release_cmd",
    "quickstart": "quickstart_cmd:quickstart_cmd",
    "refresh": "publish_cmd:refresh_cmd",
    "remove-update": "publish_cmd:remove_update_cmd",
    "rollout": "rollout_cmd:rollout_group",
    "root": "root_cmd:root_group",
    "set-max-version": "publish_cmd:set_max_version_cmd",
    "tuf-client": "tuf_client_cmd:tuf_client_cmd",
    "waves": "waves_cmd:waves",
}


class _LazyGroup(LazyGroup):
    """The top group: its commands imported from ``COMMANDS`` on first use, errors traced to
    REPO_TOOL_CONFIG, and suggestions from every command name."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except RepoToolError as exc:
            from repo_tool.cli.options import traced_to_env

            traced = traced_to_env(ctx, exc)
            if traced is exc:
                raise
            raise traced from exc


EPILOG = """\b
Conventions:
  --help   on every command; not -h: 'manifest add-update' keeps -h as
           updata's -h/--hash.
  --json   on every command that reports a result; errors stay one line
           on stderr.
  --debug  before the command (or REPO_TOOL_DEBUG=1): library logs (AWS
           retries and throttling too) and a traceback on error.
  REPO_TOOL_CONFIG  the default --config (repo-tool.yaml or Infra.toml).
  Flags follow the upstream tool a command mirrors (its help says so):
  manifest = updata, root = tuftool, node = updog, publish = pubsys repo.
  Shell completion (bash, zsh, fish), e.g. in ~/.bashrc:
    eval "$(_REPO_TOOL_COMPLETE=bash_source repo-tool)"
Exit codes: 0 done, 1 verification or I/O failed, 2 usage or config error.
"""


class _Debug:
    """--debug / REPO_TOOL_DEBUG for this run: library logs on stderr and tracebacks on error."""

    on = False
    handler: logging.Handler | None = None

    @classmethod
    def start(cls) -> None:
        if cls.on:
            return
        cls.on = True
        cls.handler = logging.StreamHandler(sys.stderr)
        cls.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(cls.handler)
        for name, level in _DEBUG_LEVELS.items():
            logging.getLogger(name).setLevel(level)
        logging.getLogger("repo_tool").debug("repo-tool %s, Python %s", __version__, sys.version.split()[0])

    @classmethod
    def stop(cls) -> None:
        if cls.handler is not None:
            logging.getLogger().removeHandler(cls.handler)
            for name in _DEBUG_LEVELS:
                logging.getLogger(name).setLevel(logging.NOTSET)
        cls.on, cls.handler = False, None


# Ours in full; botocore's requests and credentials at INFO and its retry decisions (throttling,
# retries, attempts used up) at DEBUG; urllib3's connection pool at INFO.
_DEBUG_LEVELS = {"repo_tool": logging.DEBUG, "botocore": logging.INFO, "botocore.retries": logging.DEBUG,
                 "botocore.retryhandler": logging.DEBUG, "urllib3": logging.INFO, "securesystemslib": logging.INFO}


_QUIET = logging.NullHandler()


def _debug_option(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _Debug.start()


@click.group(cls=_LazyGroup, lazy=COMMANDS, epilog=EPILOG,
             context_settings={"help_option_names": ["--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="repo-tool")
@click.option("--debug", is_flag=True, expose_value=False, callback=_debug_option,
              help="Show library logs and a traceback on error, on stderr (env: REPO_TOOL_DEBUG=1).")
def cli() -> None:
    """Publish, roll out, verify and consume Bottlerocket TUF update repositories."""


def _fail(message: str, code: int, exc: BaseException | None = None) -> None:
    if exc is not None and _Debug.on:
        _print_chain(exc)
    # click puts a missing option's choices on lines of their own ("Choose from:\n\troot,\n\t...");
    # anything else unprintable that a message quotes is escaped, so the error stays one line.
    click.echo(f"repo-tool: error: {one_line(message.replace(chr(10) + chr(9), ' '))}", err=True)
    sys.exit(code)


def _print_chain(exc: BaseException) -> None:
    """The traceback of ``exc`` and of every exception it was raised from or while handling: our errors
    are raised ``from None`` to keep the message one line, which would hide the library's exception
    (botocore's, PyYAML's ...) and its frames, exactly what --debug is for."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__suppress_context__ = False
        current = current.__cause__ or current.__context__
    traceback.print_exception(exc)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    # Libraries (securesystemslib's AWS signer, botocore) log failures we already report in one line;
    # --debug shows them.
    logging.getLogger().addHandler(_QUIET)  # once: the same handler on every run in a process
    logging.lastResort = None
    if os.environ.get("REPO_TOOL_DEBUG", "").lower() not in ("", "0", "false", "no"):
        _Debug.start()
    try:
        _run(argv)
    finally:
        _Debug.stop()


def _run(argv: list[str] | None) -> None:
    try:
        code = cli.main(args=argv, prog_name="repo-tool", standalone_mode=False)
    except RepoToolError as exc:  # success is never an exception: every RepoToolError is a failure
        _fail(exc.message, exc.exit_code, exc)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        sys.exit(2)
    except click.ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(f"{usage_message(exc)}{where}", exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted", 130)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        # Output was cut short by the reader (e.g. `| head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:  # a bug: say so in one line; --debug shows the traceback
        hint = "" if _Debug.on else " (run with --debug for a traceback)"
        _fail(f"internal error: {type(exc).__name__}: {exc}{hint}", 1, exc)
    sys.exit(code if isinstance(code, int) else 0)
