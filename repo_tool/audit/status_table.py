"""``rollout status`` as a terminal table: one line per variant/arch/update, a bar for the offered share.

It renders :meth:`repo_tool.audit.rollout_status.FleetStatus.rows` (the JSON rows), so the table
and ``--json`` can never disagree.  Times are UTC to the minute; a wave start a pause or halt moved
away is shown as the hold, never as its far-future date.  Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from repo_tool.audit.expiry import remaining_text
from repo_tool.audit.rollout_status import FAILED, NO_UPDATE
from repo_tool.core.instant import format_instant, parse_instant

BAR_WIDTH = 16
HELD = ("paused", "halted")
HEADER = ("REPOSITORY", "VERSION", "STATE", "OFFERED", "WAVE", "NEXT WAVE", "ALL OFFERED BY", "MAX", "EXPIRES")


def bar(fraction: float, width: int = BAR_WIDTH, unicode: bool = True) -> str:
    """``fraction`` of ``width`` cells filled (a share above 0 shows at least one cell, below 1 at most
    ``width - 1``: 1 of 2048 seeds is not nothing, 2047 is not everyone)."""
    filled = round(fraction * width)
    if fraction > 0:
        filled = max(1, filled)
    if fraction < 1:
        filled = min(width - 1, filled)
    full, empty = ("█", "░") if unicode else ("#", "-")
    return full * filled + empty * (width - filled)


def percent(fraction: float) -> str:
    """The offered share as the table and the page print it: ``12.3%``; a share that one decimal would
    round to 0 or 100 is ``<0.1%`` or ``>99.9%`` (one seed of 2048 is not nobody)."""
    if fraction <= 0 or fraction >= 1:
        return "0%" if fraction <= 0 else "100%"
    text = f"{fraction * 100:.1f}%"
    return "<0.1%" if text == "0.0%" else ">99.9%" if text == "100.0%" else text


def minute(text: str | None) -> str:
    """An RFC 3339 instant as ``2026-12-06 01:00`` (UTC, to the minute); ``-`` for none."""
    if text is None:
        return "-"
    stamp = format_instant(parse_instant(text))
    return f"{stamp[:10]} {stamp[11:16]}"


def _label(row: Mapping[str, Any]) -> str:
    pair = f"{row['variant']}/{row['arch']}" if row["variant"] is not None else row["metadata_url"]
    return pair if row["repo"] is None else f"{row['repo']} {pair}"


def _state(row: Mapping[str, Any]) -> str:
    if row["state"] == "paused" and row["paused_since"]:
        return f"paused since {minute(row['paused_since'])}"
    if row["state"] == "pulled":
        return f"pulled (max {row['max_version']})"
    return str(row["state"])


def next_wave_text(row: Mapping[str, Any]) -> str:
    """NEXT WAVE: when the next wave starts, ``paused``/``halted`` for a held update, else ``-``."""
    if row["state"] in HELD:
        return str(row["state"])
    return minute(row["next_wave_at"])


def all_offered_text(row: Mapping[str, Any]) -> str:
    """ALL OFFERED BY: when the last seed is offered, ``when published`` for an update offered to every
    seed at once, ``-`` where no such time is known (held, pulled, failed, no update)."""
    if row["state"] in (*HELD, "pulled", FAILED, NO_UPDATE):
        return "-"
    return "when published" if row["complete_at"] is None else minute(row["complete_at"])


def wave_text(row: Mapping[str, Any]) -> str:
    """WAVE: ``3 of 7``, the timed waves started of those there are (the initial wave, 0, is not
    counted; ``waves show`` numbers them so); ``no waves``; ``-`` for a pulled update."""
    if row["wave_count"] <= 1:
        return "no waves"
    return "-" if row["current_wave"] is None else f"{row['current_wave']} of {row['wave_count'] - 1}"


def _expires(row: Mapping[str, Any], at: int) -> str:
    if row["expires_at"] is None:
        return "-"
    text = minute(row["expires_at"])
    if row["expiry"] == "expired":
        return f"{text} EXPIRED"
    if row["expiry"] == "soon":
        return f"{text} ! in {remaining_text(parse_instant(row['expires_at']) - at)}"
    return text


def _line(row: Mapping[str, Any], at: int, unicode: bool) -> tuple[str, ...]:
    if row["state"] == FAILED:
        return (_label(row), "-", "FAILED", "", "", "", "", "", _expires(row, at))
    if row["version"] is None:
        return (_label(row), "-", "no update", "", "", "", "", "", _expires(row, at))
    offered = f"{bar(row['fleet_fraction'], unicode=unicode)} {percent(row['fleet_fraction']):>6} " \
              f"{row['seeds_offered']:>4}/{row['seed_count']}"
    return (_label(row), row["version"], _state(row), offered, wave_text(row), next_wave_text(row),
            all_offered_text(row), row["max_version"], _expires(row, at))


def status_table(rows: Sequence[Mapping[str, Any]], at: int, summary: str, unicode: bool = True) -> list[str]:
    """The lines of the table: a heading, the header, a line per row, the summary (the reasons of
    failures are the command's error lines, on stderr)."""
    lines = [f"rollout status at {format_instant(at)} (times UTC)"]
    table = [HEADER, *(_line(row, at, unicode) for row in rows)]
    widths = [max(len(line[c]) for line in table) for c in range(len(HEADER))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]
    lines.append(f"summary: {summary}")
    return lines
