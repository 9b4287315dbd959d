"""What every command that edits a live repository shares on the command line: the repository's
config and location from ``--config/--repo/--variant/--arch``, a plan or a write as the output, and the
report of an outcome (text or JSON): ``publish``, ``rollout``, ``refresh`` ... and ``mirror --resign``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from repo_tool.cli.common import aws_settings, echo_json, expires_given, parse_time_option, warn
from repo_tool.cli.progress import ProgressLine, progress_line
from repo_tool.config import EXPIRING_ROLES, RepoConfig, load_config
from repo_tool.core.instant import format_instant, format_whole_seconds
from repo_tool.core.rollout import Hold, is_held, when_text
from repo_tool.core.schedule import offered_by_text, schedule
from repo_tool.errors import one_line
from repo_tool.publish.editor import Progress
from repo_tool.publish.live import Outcome, Output, PlanOnly, Write
from repo_tool.publish.load import Location
from repo_tool.publish.release import AlreadyPublished

ALLOW_EXPIRED_HELP = ("Load the live repository even if its metadata (root, timestamp, snapshot or targets) has "
                      "expired: signatures, thresholds and hashes are still checked, only the expiry dates are not. "
                      "The files this run writes get fresh expirations (refresh revives an expired repository).")


class ShowProgress(Progress):
    """A write's progress: object names as they are written (a line each, above the progress line),
    and the bytes hashed and sent on the :class:`~repo_tool.cli.progress.ProgressLine` (a terminal only)."""

    def __init__(self, line: ProgressLine | None = None) -> None:
        self.line = line if line is not None else progress_line()

    def wrote(self, name: str) -> None:
        self.line.note(f"wrote {name}")

    def start(self, label: str, total: int) -> None:
        self.line.start(label, total)

    def advance(self, count: int) -> None:
        self.line.advance(count)

    def stop(self) -> None:
        self.line.stop()


def repo_config(config_path: Path, repo_name: str | None) -> RepoConfig:
    """The repository's config, with what the command line puts over it (AWS, expirations)."""
    config = load_config(config_path, repo_name, aws_settings())
    config.expires_given = expires_given()
    return config


def location_of(config_path: str, repo_name: str | None, variant: str, arch: str) -> Location:
    return Location.of(repo_config(Path(config_path), repo_name), variant, arch)


def output_for(plan_only: bool, as_json: bool) -> Output:
    """--plan: a plan; else a write; either shows its progress (hashing; the write's uploads and object
    names) unless the answer is JSON."""
    progress = None if as_json else ShowProgress()
    return PlanOnly(progress) if plan_only else Write(progress)


def already_published(result: AlreadyPublished, as_json: bool, answer: dict[str, Any]) -> None:
    """A rerun of a publish that already landed: nothing to do, a success (exit code 0)."""
    for message in result.warnings:
        warn(message)
    if as_json:
        echo_json({**answer, "already_published": True, "message": result.message, "warnings": list(result.warnings)})
    else:
        click.echo(f"repo-tool: {one_line(result.message)}", err=True)


def wave_rows(waves: dict[int, int], hold: Hold) -> list[str]:
    lines = []
    for row in schedule(waves):
        seeds = f"{row.first_seed}-{row.last_seed}" if row.first_seed != row.last_seed else str(row.first_seed)
        start = when_text(row.start_time, hold, short=True) if row.start_time is not None else "when published"
        end = offered_by_text(row, lambda instant: when_text(instant, hold, short=True))
        lines.append(f"  {row.kind:<8} seeds {seeds:<10} from {start:<32} all by {end}")
    return lines


@dataclass(frozen=True)
class StartSource:
    """What sets the start a command counts from, for the plan's note: the option (None: always the
    time the run runs; publish: the release start, rollout reschedule: the waves' start) and whether
    its value fixes the start (an RFC 3339 time) or counts from the time the command runs."""

    option: str | None = None
    fixed: bool = False

    @classmethod
    def of(cls, option: str, text: str | None, now: int) -> StartSource:
        fixed = text is not None and parse_time_option(text, now, option) == parse_time_option(text, now + 1, option)
        return cls(option, fixed)


def start_lines(outcome: Outcome, source: StartSource) -> list[str]:
    """``start:`` (and ``waves start:`` if the waves count from another instant), and for a plan
    whose start is the time it runs, that the run will count from its own."""
    def line(label: str, ns: int, option: str | None, fixed: bool) -> str:
        if fixed:
            return f"{label}: {format_instant(ns)} ({option})"
        if not outcome.planned_only:
            return f"{label}: {format_instant(ns)}"
        if option is None:
            return f"{label}: {format_instant(ns)} (now: the run counts from the time it runs)"
        return (f"{label}: {format_instant(ns)} (now: the run counts from the time it runs unless {option} gives a "
                f"time; set {option} to {format_instant(ns)} to make it match this plan)")

    waves_start = outcome.waves_start
    if waves_start is None or waves_start == outcome.start:
        return [line("start", outcome.start, source.option, source.fixed)]
    return [line("start", outcome.start, None, False), line("waves start", waves_start, source.option, source.fixed)]


def report(outcome: Outcome, as_json: bool, start: StartSource = StartSource()) -> dict[str, Any]:
    data = {**outcome.to_json(), "start_fixed": start.fixed}
    for message in outcome.warnings:
        warn(message)
    if as_json:
        return data
    loc = outcome.location
    verb = "would publish (plan: nothing written or signed)" if outcome.planned_only else "published"
    if outcome.created:
        verb = "would create the repository and publish (plan: nothing written or signed)" if outcome.planned_only \
            else "created the repository and published"
    click.echo(f"{loc.variant}/{loc.arch} ({loc.meta.url}): {verb}")
    if outcome.manifest_before != outcome.manifest_after:
        click.echo("manifest.json changes:")
        for line in outcome.manifest_diff()[2:]:
            click.echo(f"  {line}")
    if outcome.waves is not None:
        held = any(map(is_held, outcome.waves.values()))
        click.echo(f"waves ({outcome.hold}):" if held else "waves:")
        for line in wave_rows(outcome.waves, outcome.hold):
            click.echo(line)
    if outcome.plan.targets:
        click.echo("targets to add:" if outcome.planned_only else "targets added:")
        for target in outcome.plan.targets:
            link = f"  (a link to {target.source})" if target.link and isinstance(target.source, Path) else ""
            click.echo(f"  {target.name}  {target.length} bytes  sha256 {target.sha256}{link}")
    for name, _ in outcome.plan.roots:
        click.echo(f"root: {name}")
    for line in start_lines(outcome, start):
        click.echo(line)
    given = outcome.location.config.expires_given
    for role in EXPIRING_ROLES:
        click.echo(f"{role}: version {outcome.plan.versions[role]}, "
                   f"expires {format_whole_seconds(outcome.plan.expires[role])}"
                   + (f" (--{role}-expires)" if role in given else ""))
    return data


def show(outcome: Outcome, as_json: bool, start: StartSource = StartSource()) -> None:
    """Report one repository's outcome: text, or the JSON object."""
    data = report(outcome, as_json, start)
    if as_json:
        echo_json(data)
