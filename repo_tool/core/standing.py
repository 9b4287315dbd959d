"""Where one published update stands in its rollout at an instant (``rollout status``), pure.

For each update of a variant/arch: its :data:`State`, how many of the 2048 seeds updog offers it to
at ``at`` (:func:`repo_tool.core.readiness.offered_count`: the node's own ``update_ready`` rule
applied a wave at a time, equal to asking it seed by seed, and so to ``waves ready-at`` summed), the
wave in progress, when the next one starts and when the last seed is offered.  The states, first match wins:

* ``pulled``: its version is above its ``max_version`` (:attr:`Update.pulled`); updog offers it to no seed;
* ``halted`` / ``paused``: a wave start was moved away by ``rollout halt`` / ``pause``
  (:func:`repo_tool.core.rollout.hold_of` tells which from the pause records);
* ``complete``: every seed is offered it;
* ``scheduled``: no timed wave has started (only the initial wave, offered at once, has it);
* ``rolling``: otherwise.

:func:`standings` picks what a status shows for one variant/arch: the newest update, the newest
not pulled, and every other one still under way (not complete, not pulled).

Must not: read files, the network or the clock (``at`` is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import Manifest, Update
from repo_tool.core.readiness import SEED_COUNT, offered_count, ready_times
from repo_tool.core.rollout import Hold, hold_of, is_held, rollout_key
from repo_tool.core.schedule import ScheduleRow, schedule

State = Literal["rolling", "complete", "paused", "halted", "pulled", "scheduled"]
STATES: tuple[State, ...] = ("rolling", "complete", "paused", "halted", "pulled", "scheduled")
UNDER_WAY: frozenset[str] = frozenset({"rolling", "paused", "halted", "scheduled"})


@dataclass(frozen=True)
class WaveSpan:
    """One wave on the timeline: seeds ``first_seed..last_seed``, offered from ``start`` (None: as soon
    as published) and to all of them by ``end`` (None: at ``start``, or at once); ``held``: a pause or
    halt moved its start or end away (those times are then not dates to show)."""

    index: int
    kind: str
    first_seed: int
    last_seed: int
    start: int | None
    end: int | None
    held: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "wave": self.index,
            "kind": self.kind,
            "seeds": [self.first_seed, self.last_seed],
            "starts_at": _instant(self.start, self.held),
            "offered_by": _instant(self.end, self.held),
            "held": self.held,
        }


@dataclass(frozen=True)
class Standing:
    """Where ``update`` stands at ``at``."""

    update: Update
    at: int
    state: State
    seeds_offered: int
    hold: Hold | None  # paused (since when); None otherwise
    waves: tuple[WaveSpan, ...]
    current_wave: int | None  # index into ``waves`` of the last one started; None: pulled
    next_wave_at: int | None
    next_seed_at: int | None  # when the next seed is offered (a wave can start before its first seed)
    complete_at: int | None  # when the last seed is offered (None: held, pulled or offered at once)

    @property
    def fleet_fraction(self) -> float:
        return self.seeds_offered / SEED_COUNT

    def to_json(self) -> dict[str, Any]:
        return {
            "version": str(self.update.version),
            "max_version": str(self.update.max_version),
            "state": self.state,
            "seeds_offered": self.seeds_offered,
            "seed_count": SEED_COUNT,
            "fleet_fraction": self.fleet_fraction,
            "current_wave": self.current_wave,
            "wave_count": len(self.waves),
            "next_wave_at": None if self.next_wave_at is None else format_instant(self.next_wave_at),
            "next_seed_at": None if self.next_seed_at is None else format_instant(self.next_seed_at),
            "complete_at": None if self.complete_at is None else format_instant(self.complete_at),
            "paused_since": self.hold.since if self.hold is not None else None,
            "waves": [w.to_json() for w in self.waves],
        }


def _instant(value: int | None, held: bool) -> str | None:
    return None if value is None or (held and is_held(value)) else format_instant(value)


def _span(index: int, row: ScheduleRow) -> WaveSpan:
    if row.kind in ("initial", "none"):  # offered at once, whatever the times: nothing to hold
        return WaveSpan(index, row.kind, row.first_seed, row.last_seed, None, None, False)
    times = [t for t in (row.start_time, row.end_time) if t is not None]
    return WaveSpan(index, row.kind, row.first_seed, row.last_seed, row.start_time, row.all_offered_by,
                    any(is_held(t) for t in times))


def _complete_at_once(update: Update, at: int) -> bool:
    """Whether :func:`standing` would call ``update`` complete, found without listing every seed's
    ready time: not pulled, no wave time held, and every seed offered."""
    return (not update.pulled and not any(is_held(t) for t in update.waves.values())
            and offered_count(update.waves, at) == SEED_COUNT)


def standing(update: Update, pauses: Mapping[str, Any], at: int) -> Standing:
    """Where ``update`` stands at ``at``; ``pauses``: its repository's pause records
    (:func:`repo_tool.core.rollout.pauses_of`), which tell a pause from a halt."""
    spans = tuple(_span(i, row) for i, row in enumerate(schedule(update.waves)))
    held = any(span.held for span in spans)
    hold = hold_of(pauses, rollout_key(update.variant, update.arch, update.version)) if held else None
    if update.pulled:
        return Standing(update, at, "pulled", 0, None, spans, None, None, None, None)
    offered = offered_count(update.waves, at)
    started = [s.index for s in spans if s.start is None or (not is_held(s.start) and s.start <= at)]
    upcoming = [s.start for s in spans if s.start is not None and not is_held(s.start) and s.start > at]
    readies = [t for t in ready_times(update.waves) if t is not None]
    complete_at = None if held or not readies else max(readies)
    next_seed_at = min((t for t in readies if t > at and not is_held(t)), default=None)
    state: State
    if hold is not None:
        state = "paused" if hold.state == "paused" else "halted"
    elif offered == SEED_COUNT:
        state = "complete"
        upcoming, next_seed_at = [], None  # hand-made unordered waves can leave a start after the end
    elif started == [0] and upcoming:
        state = "scheduled"
    else:
        state = "rolling"
    return Standing(update, at, state, offered, hold if state == "paused" else None, spans, max(started, default=0),
                    min(upcoming, default=None), next_seed_at, complete_at)


def standings(manifest: Manifest, variant: str, arch: str, pauses: Mapping[str, Any], at: int) -> list[Standing]:
    """What a status shows for ``variant``/``arch``, newest first: the newest update (whatever its
    state), the newest one not pulled (what nodes are offered once their wave comes, when a newer one
    was pulled) and every other one still under way.  A complete update is found so without listing
    its seeds' ready times (:func:`_complete_at_once`), so old releases cost little."""
    mine = sorted((u for u in manifest.updates if (u.variant, u.arch) == (variant, arch)),
                  key=lambda u: u.version, reverse=True)
    live = next((u for u in mine if not u.pulled), None)
    result = []
    for i, update in enumerate(mine):
        if i and update is not live and (update.pulled or _complete_at_once(update, at)):
            continue
        found = standing(update, pauses, at)
        if i == 0 or update is live or found.state in UNDER_WAY:
            result.append(found)
    return result


def pairs_of(manifest: Manifest) -> Sequence[tuple[str, str]]:
    """The variant/arch pairs ``manifest`` has updates for, in first-seen order."""
    return list(dict.fromkeys((u.variant, u.arch) for u in manifest.updates))
