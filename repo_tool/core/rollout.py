"""Rollout control on a published update's waves: pause, resume, halt (pure).

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

Seed 0 (the Initial wave) is offered an update as soon as it is published,
whatever the times (upstream quirk), so it cannot be paused.
"""

from __future__ import annotations

from collections.abc import Mapping

from repo_tool.core.instant import NANOS_PER_SECOND, parse_instant
from repo_tool.core.readiness import SEED_COUNT, update_wave

# Far enough that no host will reach it, near enough for every RFC 3339 reader.
PAUSED_AT = parse_instant("9000-01-01T00:00:00Z")


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
