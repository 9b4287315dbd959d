"""When a host with a given seed is offered an update (SPEC §7), to the nanosecond.

This mirrors ``update_metadata::Update::update_wave`` / ``update_ready`` as
Bottlerocket nodes run them, quirks included:

* the *Initial* wave (seeds at or below the smallest key) is ready at once,
  even before the first wave time;
* within a *General* wave the host's target is ``start_time + tps * seed`` with
  the **absolute** seed, where ``tps`` is chrono's truncating ``TimeDelta / i32``;
* keys above 2048 are never used.

:func:`ready_at` gives the instant from which :func:`update_ready` is true for
good (readiness never flips back as time grows), which is what schedules,
``why`` answers and simulations use.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from repo_tool.core.instant import NANOS_PER_SECOND
from repo_tool.core.waves import MAX_SEED
from repo_tool.errors import SeedError

SEED_COUNT = MAX_SEED  # valid host seeds are 0..2047

WaveKind = Literal["initial", "general", "last"]


@dataclass(frozen=True)
class Wave:
    """The wave a seed falls in.  ``start_*`` is None for Initial, ``end_*`` for Last."""

    kind: WaveKind
    start_seed: int | None
    start_time: int | None
    end_seed: int | None
    end_time: int | None


def check_seed(seed: object) -> int:
    """SPEC Decision 3: a seed must be an integer in 0..2047."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_COUNT:
        raise SeedError(f"seed {seed!r} is out of range: a host seed is an integer from 0 to {SEED_COUNT - 1}")
    return seed


def _usable_keys(waves: Mapping[int, int]) -> list[int]:
    return sorted(k for k in waves if 0 <= k <= MAX_SEED)


def update_wave(waves: Mapping[int, int], seed: int) -> Wave | None:
    """The wave of ``seed``: start = largest key < seed, end = smallest key in [seed, 2048]."""
    check_seed(seed)
    keys = _usable_keys(waves)
    i = bisect.bisect_left(keys, seed)  # keys[:i] < seed <= keys[i:]
    start = keys[i - 1] if i > 0 else None
    end = keys[i] if i < len(keys) else None
    if start is None and end is None:
        return None
    if start is None:
        assert end is not None
        return Wave("initial", None, None, end, waves[end])
    if end is None:
        return Wave("last", start, waves[start], None, None)
    return Wave("general", start, waves[start], end, waves[end])


def time_per_seed(duration: int, seeds: int) -> int:
    """chrono ``TimeDelta / i32`` for a positive duration: seconds and nanos divided apart."""
    secs, nanos = divmod(duration, NANOS_PER_SECOND)
    return (secs // seeds) * NANOS_PER_SECOND + ((secs % seeds) * NANOS_PER_SECOND) // seeds + nanos // seeds


def ready_at_in_wave(wave: Wave | None, seed: int) -> int | None:
    """The instant from which the seed is ready; None means ready as soon as published."""
    if wave is None or wave.kind == "initial":
        return None
    assert wave.start_time is not None
    if wave.kind == "last":
        return wave.start_time
    assert wave.end_time is not None and wave.end_seed is not None and wave.start_seed is not None
    duration = wave.end_time - wave.start_time
    if duration <= 0:
        # Unordered waves (only in hand-made manifests): it is ready once the end has passed.
        return wave.end_time
    target = wave.start_time + time_per_seed(duration, wave.end_seed - wave.start_seed) * seed
    return min(wave.end_time, target)


def ready_at(waves: Mapping[int, int], seed: int) -> int | None:
    """When ``update_ready(waves, seed, now)`` becomes (and stays) true; None = always."""
    return ready_at_in_wave(update_wave(waves, seed), seed)


def update_ready(waves: Mapping[int, int], seed: int, now: int) -> bool:
    """Upstream's algorithm, step by step (SPEC §7)."""
    wave = update_wave(waves, seed)
    if wave is None:
        return True
    if wave.kind == "last":
        assert wave.start_time is not None
        return wave.start_time <= now  # passed; a Last wave that has not passed has not started
    assert wave.end_time is not None
    if wave.end_time <= now:
        return True
    if wave.kind == "initial":
        return True
    assert wave.start_time is not None and wave.start_seed is not None and wave.end_seed is not None
    if not wave.start_time <= now:
        return False
    tps = time_per_seed(wave.end_time - wave.start_time, wave.end_seed - wave.start_seed)
    return now >= wave.start_time + tps * seed
