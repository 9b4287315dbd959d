"""``repo-tool audit``: verify one variant/arch repository end to end and report (exit 1 on any error).

The checks are :mod:`repo_tool.audit.run`'s, the text :mod:`repo_tool.audit.report`'s: this module
only turns options into their arguments and prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from repo_tool.audit.anchor import config_trusted_root, read_trusted_root
from repo_tool.audit.findings import TargetsMode
from repo_tool.audit.options import AuditOptions
from repo_tool.audit.report import render, render_text
from repo_tool.audit.run import audit
from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns, parse_time_option
from repo_tool.cli.options import config_on_command_line, config_option, repo_option
from repo_tool.cli.progress import progress_line
from repo_tool.config import load_config
from repo_tool.core.instant import parse_offset
from repo_tool.errors import ConfigError, OffsetError, UsageError, VerificationError
from repo_tool.localfs import write_atomic
from repo_tool.storage import open_storage

_SAMPLE = re.compile(r"sample:([1-9][0-9]{0,8})")


def parse_targets_mode(text: str) -> TargetsMode:
    if text in ("all", "none", "present"):
        return text  # type: ignore[return-value]
    match = _SAMPLE.fullmatch(text)
    if not match:
        raise UsageError(f"--targets: expected all, present, none or sample:N, found {text!r}")
    return int(match.group(1))


@click.command("audit")
@click.option("--metadata-url", default=None, help="The variant/arch metadata (directory, file://, s3://, https://).")
@click.option("--targets-url", default=None, help="The shared targets location.")
@click.option("--root", "root_path", default=None, type=click.Path(dir_okay=False),
              help="The trusted root.json file (the one nodes ship).")
@config_option("repo-tool.yaml or Infra.toml instead of the three options above (with --variant/--arch); "
               "those options win over REPO_TOOL_CONFIG.")
@repo_option()
@click.option("--variant", default=None, help="Variant (with --config).")
@click.option("--arch", default=None, help="Architecture (with --config).")
@click.option("--targets", "targets_text", default="all", show_default=True,
              help="Which targets to download and check: all, none, sample:N, or present (a partial mirror: "
                   "those stored, and each one nodes need for the release they are offered).")
@click.option("--at", "at_text", default="now", show_default=True,
              help="The instant to judge expiry at (RFC 3339, now, or 'in 2 days').")
@click.option("--within", "within_text", default="3 days", show_default=True,
              help="Expiries inside this window are warnings.")
@click.option("--jobs", type=click.IntRange(min=1, max=64), default=4, show_default=True,
              help="Targets checked at once.")
@click.option("--manifest/--no-manifest", "check_manifest", default=True, show_default=True,
              help="Check manifest.json (--no-manifest for TUF repositories that are not Bottlerocket's).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
              help="Also write a report for people: FILE.md or FILE.html.")
@aws_options
def audit_cmd(metadata_url: str | None, targets_url: str | None, root_path: str | None, config_path: str | None,
              repo_name: str | None, variant: str | None, arch: str | None, targets_text: str, at_text: str,
              within_text: str, jobs: int, check_manifest: bool, as_json: bool, report_path: str | None) -> None:
    """Check a whole repository: root chain, signatures and keys, tough's rules, every target's bytes,
    manifest.json against the targets, and expiries.  Exit 0 clean, 1 with any error."""
    at = parse_time_option(at_text, now_ns(), "--at")
    try:
        window = parse_offset(within_text)
    except OffsetError as exc:
        raise UsageError(f"--within: {exc.message}") from None
    mode = parse_targets_mode(targets_text)
    if report_path is not None and Path(report_path).suffix.lower() not in (".md", ".markdown", ".html", ".htm"):
        raise UsageError(f"--report {report_path}: the name must end in .md or .html")
    aws = aws_settings()
    if (metadata_url or targets_url or root_path) and not config_on_command_line(click.get_current_context()):
        config_path = None  # the options given win over REPO_TOOL_CONFIG
    if config_path is not None:
        if metadata_url or targets_url or root_path:
            raise UsageError("--config replaces --metadata-url/--targets-url/--root: give one or the other")
        if not variant or not arch:
            raise UsageError("--config needs --variant and --arch")
        config = load_config(Path(config_path), repo_name, aws)
        root = config_trusted_root(config)
        meta, targets = config.metadata(variant, arch), config.targets()
    else:
        if not (metadata_url and targets_url and root_path):
            raise UsageError("give --metadata-url, --targets-url and --root (or --config with --variant/--arch)")
        root = read_trusted_root(root_path)  # before anything is audited: a wrong --root is exit 2
        meta = open_storage(metadata_url, Path.cwd(), aws)
        targets = open_storage(targets_url, Path.cwd(), aws)
    options = AuditOptions(window, within_text, mode, jobs, check_manifest, progress=progress_line(as_json))
    report = audit(meta, targets, root, at, options)
    obj = report.to_json_obj()
    if as_json:
        echo_json(obj)
    else:
        click.echo("\n".join(render_text(obj)))
    if report_path is not None:
        try:
            write_atomic(report_path, render(obj, report_path).encode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"--report {report_path}: cannot write: {exc.strerror or exc}") from None
    if not report.ok:
        raise VerificationError(f"audit of {meta.url} found {report.count('error')} error(s)")
