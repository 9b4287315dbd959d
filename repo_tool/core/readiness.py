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
import itertools
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


# --- a whole fleet at once ---------------------------------------------------------------------------
# The same rules for all 2048 seeds, wave by wave instead of seed by seed (the keys sorted once, not
# per seed): what ``rollout status`` computes for every update of every repository.  Each equals the
# per-seed function summed or listed (tests/test_standing.py checks that property on random waves).


def wave_rows(waves: Mapping[int, int]) -> list[tuple[Wave | None, int, int]]:
    """Each wave, lowest first, with its seeds ``first..last`` (those :func:`update_wave` puts in it;
    keys above 2048 are ignored, as upstream); ``None``: no usable key, every seed at once."""
    keys = _usable_keys(waves)
    top = SEED_COUNT - 1
    if not keys:
        return [(None, 0, top)]
    rows: list[tuple[Wave | None, int, int]] = [(Wave("initial", None, None, keys[0], waves[keys[0]]), 0,
                                                 min(keys[0], top))]
    for lower, upper in itertools.pairwise(keys):
        if lower < top:
            rows.append((Wave("general", lower, waves[lower], upper, waves[upper]), lower + 1, min(upper, top)))
    if keys[-1] < top:
        rows.append((Wave("last", keys[-1], waves[keys[-1]], None, None), keys[-1] + 1, top))
    return rows


def offered_count(waves: Mapping[int, int], now: int) -> int:
    """How many seeds of 0..2047 :func:`update_ready` offers the update at ``now``, a wave at a time:
    an initial wave (or none) all of them; a last wave all or none; a general wave all once its end
    has passed, none before its start, else the seeds up to ``(now - start) // tps`` (its end is then
    after its start, so ``tps`` is not negative)."""
    count = 0
    for wave, first, last in wave_rows(waves):
        seeds = last - first + 1
        if wave is None or wave.kind == "initial":
            count += seeds
        elif wave.kind == "last":
            assert wave.start_time is not None
            count += seeds if wave.start_time <= now else 0
        else:
            assert wave.start_time is not None and wave.end_time is not None
            assert wave.start_seed is not None and wave.end_seed is not None
            if wave.end_time <= now:
                count += seeds
            elif wave.start_time <= now:
                tps = time_per_seed(wave.end_time - wave.start_time, wave.end_seed - wave.start_seed)
                reached = last if tps == 0 else min(last, (now - wave.start_time) // tps)
                count += max(0, reached - first + 1)
    return count


def ready_times(waves: Mapping[int, int]) -> list[int | None]:
    """:func:`ready_at` of every seed 0..2047, in order."""
    times: list[int | None] = []
    for wave, first, last in wave_rows(waves):
        if wave is None or wave.kind in ("initial", "last"):
            times += [ready_at_in_wave(wave, first)] * (last - first + 1)
            continue
        assert wave.start_time is not None and wave.end_time is not None
        assert wave.start_seed is not None and wave.end_seed is not None
        start, end = wave.start_time, wave.end_time
        if end - start <= 0:
            times += [end] * (last - first + 1)
            continue
        tps = time_per_seed(end - start, wave.end_seed - wave.start_seed)
        times += [min(end, start + tps * seed) for seed in range(first, last + 1)]
    return times
