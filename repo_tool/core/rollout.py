"""Rollout control on a published update's waves: pause, resume, halt, reschedule (pure).

updog offers an update to a host once its seed's wave has started and its
place in the wave is reached (SPEC §7).  Moving a wave start far into the
future therefore stops it, and moving it back resumes it:

* **pause** at ``now``: every wave that has not started yet gets a start in
  the far future (the in-progress wave stops too, because its end moves away).
  The original starts are returned so they can be kept and restored.
* **resume** at ``now``: the paused starts are restored, shifted by the length
  of the pause, so the remaining waves keep their spacing.
* **halt**: every wave moves to the far future; hosts already updated stay
  updated, nobody else is offered the update until it is rescheduled.
* **reschedule**: the publisher puts new waves from a policy on the update;
  here only a pause of the old ones is forgotten.

Seed 0 (the Initial wave) is offered an update as soon as it is published,
whatever the times (upstream quirk), so it cannot be paused.

A pause is remembered in the custom data of the ``manifest.json`` target, under
``"repo-tool"``: :func:`pauses_of` reads the records and :func:`with_pauses` puts
them back.  :func:`apply` runs one :class:`Action` on one update's
:class:`Rollout` and returns the :class:`Change`.

Must not: read files, the network or the clock (``now`` is passed in), or edit
the manifest itself (the publisher puts the returned waves on the update).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from repo_tool.core.instant import NANOS_PER_SECOND, format_instant, parse_instant
from repo_tool.core.readiness import SEED_COUNT, Wave, update_wave
from repo_tool.core.semver import Version
from repo_tool.errors import InstantError, UsageError

# Far enough that no host will reach it, near enough for every RFC 3339 reader.
PAUSED_AT = parse_instant("9000-01-01T00:00:00Z")

CUSTOM_KEY = "repo-tool"
"""The key of this tool's data in the ``custom`` object of the ``manifest.json`` target."""

PULL = "set-max-version (below {version}) or remove-update --version {version}"
"""The commands that stop the hosts a pause or halt cannot: those that pull the update."""


def paused_waves(waves: Mapping[int, int], now: int) -> tuple[dict[int, int], dict[int, int]]:
    """Return ``(new_waves, held)``: the waves with unstarted starts moved far away, and the
    original starts that were moved (empty if nothing was left to pause)."""
    held = {bound: start for bound, start in waves.items() if start > now and start < PAUSED_AT}
    new = dict(waves)
    for i, bound in enumerate(sorted(held)):
        new[bound] = PAUSED_AT + i * NANOS_PER_SECOND
    return new, held


def resumed_waves(waves: Mapping[int, int], held: Mapping[int, int], paused_at: int, now: int) -> dict[int, int]:
    """Restore held wave starts shifted by the pause length ``now - paused_at``."""
    shift = max(0, now - paused_at)
    new = dict(waves)
    for bound, start in held.items():
        if bound in new:
            new[bound] = start + shift
    return new


def halted_waves(waves: Mapping[int, int]) -> dict[int, int]:
    """Every wave start moved to the far future (keys kept, order kept)."""
    return {bound: PAUSED_AT + i * NANOS_PER_SECOND for i, bound in enumerate(sorted(waves))}


def is_paused(waves: Mapping[int, int]) -> bool:
    return any(start >= PAUSED_AT for start in waves.values())


def offered_regardless(waves: Mapping[int, int]) -> int:
    """The highest seed that updog offers the update to at once, whatever the wave times: the
    initial wave (seeds 0 up to the smallest wave key), or every seed when there is no usable wave."""
    wave = update_wave(waves, 0)
    if wave is None:
        return SEED_COUNT - 1
    return SEED_COUNT - 1 if wave.end_seed is None else min(wave.end_seed, SEED_COUNT - 1)


# --- the actions on one update ----------------------------------------------------------------


def rollout_key(variant: str, arch: str, version: Version) -> str:
    """How messages name one update, and the key of its pause record: ``<variant> <arch> <version>``."""
    return f"{variant} {arch} {version}"


class Action(Enum):
    """What ``repo-tool rollout`` does to one published update (its subcommand names)."""

    PAUSE = "pause"
    RESUME = "resume"
    HALT = "halt"
    RESCHEDULE = "reschedule"


@dataclass(frozen=True)
class Rollout:
    """One published update's rollout: its waves, and the pause records of every update by key."""

    key: str  # "<variant> <arch> <version>", in messages and as the key of its pause record
    version: Version
    waves: dict[int, int]
    pauses: dict[str, Any]  # key -> {"paused_at": RFC 3339, "waves": {bound: RFC 3339}}, as stored


@dataclass(frozen=True)
class Change:
    """What an :class:`Action` makes of a :class:`Rollout`: the update's new waves, the new pause
    records, and what it cannot do (hosts still offered the update)."""

    waves: dict[int, int]
    pauses: dict[str, Any]
    warnings: list[str]


def apply(action: Action, rollout: Rollout, now: int) -> Change:
    """Run ``action`` on ``rollout`` at ``now``; :class:`~repo_tool.errors.UsageError` if it cannot."""
    return _STEPS[action](rollout, now)


def _pause(rollout: Rollout, now: int) -> Change:
    key, waves = rollout.key, rollout.waves
    if key in rollout.pauses:
        raise UsageError(f"{key} is already paused (since {rollout.pauses[key]['paused_at']})")
    if not waves:
        raise UsageError(f"{key} has no waves: updog offers it to every host at once, so there is nothing to "
                         f"pause; pull it with {PULL.format(version=rollout.version)}")
    if is_paused(waves):
        raise UsageError(f"{key} is halted: there is nothing to pause; start it again with rollout reschedule")
    new_waves, held = paused_waves(waves, now)
    if not held:
        raise UsageError(f"{key}: every wave has already started; nothing left to pause (use halt)")
    record = {"paused_at": format_instant(now), "waves": {str(k): format_instant(v) for k, v in sorted(held.items())}}
    return Change(new_waves, {**rollout.pauses, key: record}, [still_offered(rollout, new_waves)])


def _resume(rollout: Rollout, now: int) -> Change:
    pauses = dict(rollout.pauses)
    record = pauses.pop(rollout.key, None)
    if record is None:
        raise UsageError(f"{rollout.key} is not paused")
    try:
        held = {int(k): parse_instant(v) for k, v in record["waves"].items()}
        paused_at = parse_instant(record["paused_at"])
    except (TypeError, KeyError, AttributeError, ValueError, InstantError):
        raise UsageError(f"{rollout.key}: its pause record is not one this tool writes (edited by hand?): "
                         "start it again with rollout reschedule") from None
    return Change(resumed_waves(rollout.waves, held, paused_at, now), pauses, [])


def _halt(rollout: Rollout, now: int) -> Change:
    if not rollout.waves:
        raise UsageError(f"{rollout.key} has no waves: updog offers it to every host at once, so halting its "
                         f"waves cannot hold anyone back; pull it with {PULL.format(version=rollout.version)}")
    waves = halted_waves(rollout.waves)
    return Change(waves, _forget(rollout), [still_offered(rollout, waves)])


def _reschedule(rollout: Rollout, now: int) -> Change:
    """The waves are already the policy's (the publisher set them on the manifest): forget a pause."""
    return Change(dict(rollout.waves), _forget(rollout), [])


def _forget(rollout: Rollout) -> dict[str, Any]:
    return {key: record for key, record in rollout.pauses.items() if key != rollout.key}


_STEPS: dict[Action, Callable[[Rollout, int], Change]] = {
    Action.PAUSE: _pause,
    Action.RESUME: _resume,
    Action.HALT: _halt,
    Action.RESCHEDULE: _reschedule,
}


def still_offered(rollout: Rollout, waves: Mapping[int, int]) -> str:
    """Who a pause or halt cannot stop: updog offers the initial wave at once (SPEC §7)."""
    last = offered_regardless(waves)
    seeds = "seed 0 (the initial wave) is" if last == 0 else f"seeds 0-{last} (the initial wave) are"
    return (f"{rollout.key}: {seeds} still offered the update: updog offers the initial wave at "
            f"once, whatever the wave times; to stop those hosts too, pull it with "
            f"{PULL.format(version=rollout.version)}")


# --- how a held wave reads ------------------------------------------------------------------------

@dataclass(frozen=True)
class Hold:
    """Why an update's waves are held back: ``paused`` (``since`` when) or ``halted``, or ``paused or
    halted`` where the pause records are not at hand (a manifest file read on its own)."""

    state: str
    since: str | None = None

    def __str__(self) -> str:
        return f"{self.state} since {self.since}" if self.since else self.state


HELD = Hold("paused or halted")


def is_held(instant: int) -> bool:
    """Whether ``instant`` is a wave start a pause or halt moved away (not a date to show anyone)."""
    return instant >= PAUSED_AT


def hold_of(pauses: Mapping[str, Any], key: str) -> Hold:
    """How the held waves of the update ``key`` read, given every pause record of its repository:
    paused since its record's time, or halted without one (a halt keeps no record)."""
    record = pauses.get(key)
    if not isinstance(record, Mapping):
        return Hold("halted")
    since = record.get("paused_at")
    try:
        return Hold("paused", format_instant(parse_instant(since)) if isinstance(since, str) else None)
    except InstantError:  # a hand-edited record: paused, since when is not known
        return Hold("paused")


def when_text(instant: int, hold: Hold = HELD, short: bool = False) -> str:
    """A wave time for people: the instant, or the hold (``short``: without its time) for one a pause
    or halt moved away, never the far-future date that stands for it."""
    if not is_held(instant):
        return format_instant(instant)
    return hold.state if short else str(hold)


def wave_held(wave: Wave | None) -> bool:
    """Whether the hosts of ``wave`` not offered the update yet wait for a pause or halt to end: its
    start or end was moved away (a host's place in a wave whose end was moved is a meaningless date)."""
    return wave is not None and any(t is not None and is_held(t) for t in (wave.start_time, wave.end_time))


# --- where the pause records are kept ------------------------------------------------------------


def pauses_of(custom: object) -> dict[str, Any]:
    """The pause records in the ``custom`` data of the ``manifest.json`` target, as listed (none where
    that data is absent or not the objects this tool writes: signed, but hand-edited)."""
    tool = custom.get(CUSTOM_KEY) if isinstance(custom, Mapping) else None
    paused = tool.get("paused") if isinstance(tool, Mapping) else None
    return dict(paused) if isinstance(paused, Mapping) else {}


def with_pauses(custom: Mapping[str, Any], pauses: Mapping[str, Any]) -> dict[str, Any]:
    """``custom`` with its pause records replaced by ``pauses`` (the tool's entry dropped when empty)."""
    result = dict(custom)
    tool = dict(result.get(CUSTOM_KEY, {}))
    if pauses:
        tool["paused"] = dict(pauses)
    else:
        tool.pop("paused", None)
    if tool:
        result[CUSTOM_KEY] = tool
    else:
        result.pop(CUSTOM_KEY, None)
    return result
