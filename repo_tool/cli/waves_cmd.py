"""``repo-tool waves ...``: look at a wave policy before it is used on a release.

Schedules, readiness and fleet curves are :mod:`repo_tool.core`'s; this module lays them out as
tables, a text chart and JSON, and must not compute a rollout itself.
"""

from __future__ import annotations

import random

import click

from repo_tool.cli.common import echo_json, now_ns, parse_time_option
from repo_tool.cli.options import complete_policy
from repo_tool.core.instant import NANOS_PER_HOUR, NANOS_PER_MINUTE, format_duration, format_instant
from repo_tool.core.readiness import SEED_COUNT, check_seed, ready_at, update_wave
from repo_tool.core.schedule import FleetCurve, ScheduleRow, offered_by_text, policy_schedule, sample_times
from repo_tool.errors import RepoToolError, UsageError
from repo_tool.publish.inputs import load_policy

POLICY_HELP = "Policy file (TOML or YAML) or a shipped policy name: default, accelerated, slow-roll, ohno."
START_HELP = "Release start: RFC 3339, 'now', or an offset from now such as 'in 2 hours'."
POLICY = click.argument("policy", shell_complete=complete_policy)
MILESTONES = (0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.99, 1.0)


@click.group()
def waves() -> None:
    """Wave policies: schedules, per-seed readiness, fleet simulations."""


def _seeds_text(row: ScheduleRow) -> str:
    return str(row.first_seed) if row.first_seed == row.last_seed else f"{row.first_seed}-{row.last_seed}"


def _row_json(index: int, row: ScheduleRow) -> dict[str, object]:
    offered_by = row.all_offered_by
    return {
        "wave": index,
        "kind": row.kind,
        "first_seed": row.first_seed,
        "last_seed": row.last_seed,
        "fleet_percentage": row.percentage,
        "cumulative_fraction": round(row.cumulative_fraction, 6),
        "start_after": row.offset,
        "start": None if row.start_time is None else format_instant(row.start_time),
        "all_offered_by": None if offered_by is None else format_instant(offered_by),
    }


@waves.command("show")
@POLICY
@click.option("--start", "start_text", required=True, help=START_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON; its 'waves' is the map as manifest.json stores it.")
def show(policy: str, start_text: str, as_json: bool) -> None:
    """The waves a policy produces for a release starting at --start."""
    wave_policy, label = load_policy(policy)
    start = parse_time_option(start_text, now_ns(), "--start")
    wave_map, rows = policy_schedule(wave_policy, start)
    if as_json:
        echo_json(
            {
                "policy": label,
                "start": format_instant(start),
                "waves": {str(k): format_instant(v) for k, v in wave_map.items()},
                "schedule": [_row_json(i, row) for i, row in enumerate(rows)],
            }
        )
        return
    click.echo(f"policy {label}, release start {format_instant(start)}")
    header = ("wave", "seeds", "fleet %", "start_after", "starts", "all offered by")
    table = []
    for i, row in enumerate(rows):
        percent = f"{row.percentage}" if row.percentage is not None else f"{100 * row.cumulative_fraction:.2f}"
        done = offered_by_text(row, format_instant) + ("  (last wave: all at once)" if row.kind == "last" else "")
        if row.start_time is None:
            starts, offset = "when published", "-"
        else:
            starts, offset = format_instant(row.start_time), row.offset or format_duration(row.start_time - start)
        table.append((str(i), _seeds_text(row), percent, offset, starts, done))
    widths = [max(len(r[c]) for r in (header, *table)) for c in range(len(header))]
    for line in (header, *table):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())


@waves.command("ready-at")
@POLICY
@click.option("--start", "start_text", required=True, help=START_HELP)
@click.option("--seed", type=int, required=True, help="Host seed, 0-2047 (settings.updates.seed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ready_at_cmd(policy: str, start_text: str, seed: int, as_json: bool) -> None:
    """When a host with --seed is offered an update released at --start."""
    wave_policy, label = load_policy(policy)
    try:
        check_seed(seed)
    except RepoToolError as exc:
        raise UsageError(f"--seed: {exc}") from None
    start = parse_time_option(start_text, now_ns(), "--start")
    wave_map, rows = policy_schedule(wave_policy, start)
    wave = update_wave(wave_map, seed)
    when = ready_at(wave_map, seed)
    index, row = next((i, r) for i, r in enumerate(rows) if r.first_seed <= seed <= r.last_seed)
    offered = start if when is None else when
    if as_json:
        echo_json(
            {
                "seed": seed,
                "ready_at": format_instant(offered),
                "immediately": when is None,
                "wave": _row_json(index, row),
                "wave_start": None if wave is None or wave.start_time is None else format_instant(wave.start_time),
                "wave_end": None if wave is None or wave.end_time is None else format_instant(wave.end_time),
                "policy": label,
                "start": format_instant(start),
            }
        )
        return
    if when is None:
        click.echo(f"seed {seed}: wave {index} ({row.kind}), offered as soon as the update is published")
    else:
        click.echo(
            f"seed {seed}: wave {index} ({row.kind}, seeds {_seeds_text(row)}), offered from "
            f"{format_instant(when)} (release start + {format_duration(when - start)})"
        )


def _chart(curves: list[tuple[str, FleetCurve]], start: int, end: int, width: int = 64, height: int = 12) -> list[str]:
    """A text chart: one column per instant, '#' for the fleet share offered, '.' for all seeds only."""
    times = sample_times(start, end, width)
    fleet, exact = curves[0][1], curves[-1][1]
    lines = []
    for level in range(height, 0, -1):
        threshold = level / height
        cells = []
        for t in times:
            if fleet.fraction_at(t) >= threshold - 1e-9:
                cells.append("#")
            elif exact.fraction_at(t) >= threshold - 1e-9:
                cells.append(".")
            else:
                cells.append(" ")
        label = f"{round(100 * threshold):3d}%" if level in (height, height // 2) else "    "
        lines.append(f"{label} |{''.join(cells)}")
    lines.append("     +" + "-" * len(times))
    left, right = "+0", "+" + format_duration(end - start, NANOS_PER_MINUTE)
    mid = "+" + format_duration((end - start) // 2, NANOS_PER_MINUTE)
    axis = left.ljust(len(times) // 2 - len(mid) // 2) + mid
    lines.append("      " + axis.ljust(len(times) - len(right)) + right)
    return lines


@waves.command("simulate")
@POLICY
@click.option("--start", "start_text", required=True, help=START_HELP)
@click.option("--fleet", type=click.IntRange(min=1, max=10_000_000), default=1000, show_default=True,
              help="Number of hosts, each with a random seed.")
@click.option("--random-seed", type=int, default=None, help="Seed for drawing host seeds (repeatable runs).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Also draw the curves to a .png or .svg file (needs the 'plot' extra).")
@click.option("--json", "as_json", is_flag=True, help="Print milestones and the sampled curve as JSON.")
def simulate(policy: str, start_text: str, fleet: int, random_seed: int | None, plot_path: str | None,
             as_json: bool) -> None:
    """Share of a fleet of random seeds offered the update over time."""
    if plot_path is not None and not plot_path.lower().endswith((".png", ".svg")):
        raise UsageError(f"--plot: {plot_path}: the file name must end in .png or .svg")
    wave_policy, label = load_policy(policy)
    start = parse_time_option(start_text, now_ns(), "--start")
    wave_map, _ = policy_schedule(wave_policy, start)
    rng = random.Random(random_seed)
    sample = FleetCurve.of(wave_map, rng.choices(range(SEED_COUNT), k=fleet))
    exact = FleetCurve.of(wave_map, range(SEED_COUNT))
    last = max(exact.times, default=start)
    end = max(last + (last - start) // 20, start + NANOS_PER_HOUR)
    curves = [(f"fleet of {fleet}", sample), ("all 2048 seeds", exact)]

    def when(curve: FleetCurve, fraction: float) -> int:
        reached = curve.time_to_reach(fraction)
        return start if reached is None else reached

    if plot_path is not None:
        from repo_tool.cli.plot import plot_curves

        plot_curves(plot_path, curves, start, end, f"{label}: share of the fleet offered the update")
    if as_json:
        echo_json(
            {
                "policy": label,
                "start": format_instant(start),
                "fleet": fleet,
                "random_seed": random_seed,
                "milestones": [
                    {
                        "fraction": f,
                        "fleet": format_instant(when(sample, f)),
                        "all_seeds": format_instant(when(exact, f)),
                    }
                    for f in MILESTONES
                ],
                "series": [
                    {"time": format_instant(t), "fleet": round(sample.fraction_at(t), 6),
                     "all_seeds": round(exact.fraction_at(t), 6)}
                    for t in sample_times(start, end, 200)
                ],
            }
        )
        return
    click.echo(f"policy {label}, release start {format_instant(start)}, fleet of {fleet} random seeds")
    click.echo("'#' share of the fleet offered the update, '.' share of all 2048 seeds")
    for line in _chart(curves, start, end):
        click.echo(line)
    click.echo("")
    click.echo(f"{'share':>6}  {'fleet offered by':<28}  {'all seeds offered by':<28}")
    for f in MILESTONES:
        fleet_when, exact_when = when(sample, f), when(exact, f)
        click.echo(
            f"{100 * f:5.0f}%  {'+' + format_duration(fleet_when - start, NANOS_PER_MINUTE):<28}  "
            f"{'+' + format_duration(exact_when - start, NANOS_PER_MINUTE):<28}"
        )
    if plot_path is not None:
        click.echo(f"plot written to {plot_path}")
