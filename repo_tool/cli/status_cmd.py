"""``rollout status``: where every variant/arch repository's releases stand, as a table, JSON or a page.

The reading is :mod:`repo_tool.audit.rollout_status`', the table :mod:`repo_tool.audit.status_table`'s
and the page :mod:`repo_tool.audit.status_page`'s; this module parses the options, repeats the
reading under ``--watch`` and prints.
"""

from __future__ import annotations

import os
import sys
import time
from typing import NoReturn

import click

from repo_tool.audit.fleet import RepoRef, Unlisted
from repo_tool.audit.rollout_status import WITHIN, FleetStatus, fleet_status
from repo_tool.audit.status_table import status_table
from repo_tool.cli.common import echo_json, now_ns
from repo_tool.cli.fleet_options import Pairs, at_and_within, echo_failures, fleet_options, fleet_refs
from repo_tool.errors import ConfigError, RepoToolError, UsageError, one_line
from repo_tool.localfs import write_atomic

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear the screen


@click.command("status")
@fleet_options(targets=True)
@click.option("--at", "at_text", default=None,
              help="As of this instant: RFC 3339, 'now' or an offset such as 'in 2 days' (default: now).")
@click.option("--within", "within_text", default=WITHIN, show_default=True,
              help="Flag metadata expiring inside this window: '3 days', '36 hours'.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON list: one object per variant/arch/update (with --watch: one list per line).")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="Also write a self-contained page (no scripts, nothing fetched) to this file.")
@click.option("--watch", type=click.IntRange(min=1, max=86400), default=None, metavar="SECONDS",
              help="Read again every SECONDS and redraw (the page, if written, reloads itself); Ctrl-C stops.")
def rollout_status_cmd(config_path: str | None, repo_names_given: tuple[str, ...], metadata_url: str | None,
                       targets_url: str | None, root_path: str | None, variants: tuple[str, ...],
                       arches: tuple[str, ...], at_text: str | None, within_text: str, as_json: bool,
                       html_path: str | None, watch: int | None) -> None:
    """Where each release stands in its rollout, in every variant/arch repository.

    \b
    For each repository, loaded and verified as a node loads it: the newest update
    and every other one still under way, with its state (rolling, complete, paused,
    halted, pulled: above max_version, scheduled: no timed wave started), the seeds
    of 0-2047 offered it now (updog's readiness, seed by seed: what 'waves ready-at'
    says), the wave in progress, when the next wave starts and when every seed is
    offered it, max_version and the earliest metadata expiry.
    With --config and no --variant/--arch: each repository's variants: list, or the
    VARIANT/ARCH/ repositories below metadata_url (local or s3://).
    Exit 0: every repository verified; 1: one failed verification or has expired
    (the others are still shown); 2: usage or configuration error.
    """
    if watch is not None and at_text is not None:
        raise UsageError("--watch shows the rollout as it moves: leave out --at")
    at, within = at_and_within(at_text, within_text)

    def read() -> tuple[list[RepoRef | Unlisted], Pairs]:
        return fleet_refs(config_path, repo_names_given, metadata_url, root_path, variants, arches, targets_url,
                          with_targets=True)

    if watch is None:
        try:
            shown = _show(*read(), at, within, as_json, html_path, None)
        except KeyboardInterrupt:
            click.echo("repo-tool: error: aborted", err=True)
            _stop(None)
        _fail(shown)
        return
    clear = CLEAR if sys.stdout.isatty() and not as_json else ""
    status: FleetStatus | None = None
    try:
        while True:  # the config is read again each time: a repository published meanwhile is shown
            try:
                status = _show(*read(), now_ns(), within, as_json, html_path, watch, clear)
            except RepoToolError as exc:  # e.g. the config caught half-saved: said, and read again next time
                if status is None:
                    raise
                click.echo(f"repo-tool: error: {one_line(exc.message)} (reading again in {watch} s)", err=True)
            time.sleep(watch)
    except KeyboardInterrupt:
        _stop(status)


def _stop(status: FleetStatus | None) -> NoReturn:
    """Ctrl-C: under --watch the exit code of the last reading shown, else 130 (as for any interrupt).
    Reads still in flight (a slow server) are not waited for: this command writes nothing but the
    page, which is only ever replaced whole."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130 if status is None else status.exit_code)


def _show(refs: list[RepoRef | Unlisted], pairs: Pairs, at: int, within: int, as_json: bool, html_path: str | None,
          refresh: int | None, clear: str = "") -> FleetStatus:
    """Read every repository and show the result; under --watch (``refresh``) the screen is cleared
    in the same write as the new table, so it never stands empty while the repositories load."""
    status = fleet_status(refs, at, within, pairs)
    rows = status.rows()
    if as_json:
        echo_json(rows) if refresh is None else click.echo(_compact(rows))
    else:
        lines = status_table(rows, at, status.summary(), _unicode())
        if refresh is not None:
            lines.append(f"every {refresh} s; Ctrl-C stops")
        click.echo(clear + "\n".join(lines))
    echo_failures((failed.ref, failed.error) for failed in status.failed)
    if html_path is not None:
        from repo_tool.audit.status_page import render_page

        try:
            write_atomic(html_path, render_page(rows, at, within, refresh).encode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"--html {html_path}: cannot write: {exc.strerror or exc}") from None
    return status


def _fail(status: FleetStatus) -> None:
    """Exit 1 if a repository failed (its reason is already on stderr, one line each)."""
    if status.exit_code:
        click.get_current_context().exit(status.exit_code)


def _compact(rows: object) -> str:
    import json

    return json.dumps(rows, separators=(",", ":"), ensure_ascii=False)


def _unicode() -> bool:
    """Whether stdout can show the bar's block characters."""
    encoding = getattr(sys.stdout, "encoding", None) or ""
    return encoding.lower().replace("-", "") in ("utf8", "utf16", "utf32")
