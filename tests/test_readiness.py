"""update_ready exactly as update_metadata computes it (SPEC §7, §11.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.instant import NANOS_PER_HOUR, CivilTime
from repo_tool.core.readiness import check_seed, ready_at, time_per_seed, update_ready, update_wave
from repo_tool.errors import SeedError

T = CivilTime(2000, 1, 1).instant()
MS = 1_000_000


def test_no_waves_is_always_ready() -> None:  # §11.1 #1
    assert update_ready({}, 100, T)
    assert update_ready({}, 100, 0)
    assert ready_at({}, 100) is None


def test_single_wave_one_millisecond_per_seed() -> None:  # §11.1 #2
    waves = {0: T, 2048: T + 2048 * MS}
    assert time_per_seed(2048 * MS, 2048) == 999_999  # chrono's truncation: 1 ns below 1 ms
    for seed in (100, 200, 300, 400):
        assert not update_ready(waves, seed, T + (seed - 1) * MS)
        assert update_ready(waves, seed, T + seed * MS)
    assert not update_ready(waves, 100, T + 99_999_899)
    assert update_ready(waves, 100, T + 99_999_900)
    assert ready_at(waves, 100) == T + 99_999_900


WAVES3 = {0: T, 50: T + 200 * MS, 100: T + 1024 * MS, 1024: T + 4096 * MS}


def test_second_wave_target_past_wave_end() -> None:  # §11.1 #3, seed 60
    wave = update_wave(WAVES3, 60)
    assert wave is not None and (wave.kind, wave.start_seed, wave.end_seed) == ("general", 50, 100)
    for ms in range(0, 1024, 2):
        assert not update_ready(WAVES3, 60, T + ms * MS)
    assert not update_ready(WAVES3, 60, T + 1024 * MS - 1)
    for ms in range(1024, 4097, 8):
        assert update_ready(WAVES3, 60, T + ms * MS)
    assert ready_at(WAVES3, 60) == T + 1024 * MS


def test_third_wave_absolute_seed() -> None:  # §11.1 #3, seed 148
    assert time_per_seed(3072 * MS, 924) == 3_324_675
    for ms in range(0, 1024, 4):
        assert not update_ready(WAVES3, 148, T + ms * MS)
    assert not update_ready(WAVES3, 148, T + 1_516_051_899)
    assert update_ready(WAVES3, 148, T + 1_516_051_900)
    assert ready_at(WAVES3, 148) == T + 1_516_051_900


def test_last_wave_passed() -> None:  # §11.1 #4
    waves = {0: T - 3 * NANOS_PER_HOUR, 256: T - 2 * NANOS_PER_HOUR, 512: T - NANOS_PER_HOUR}
    wave = update_wave(waves, 1024)
    assert wave is not None and wave.kind == "last"
    assert update_ready(waves, 1024, T)


def test_initial_wave_quirk_and_general_not_started() -> None:  # §11.1 #5
    now = CivilTime(2024, 6, 1).instant()
    waves = {0: now, 1024: now + NANOS_PER_HOUR, 2048: now + NANOS_PER_HOUR}
    assert update_ready(waves, 0, now)
    assert update_ready(waves, 0, now - 10 * NANOS_PER_HOUR)  # even before the first wave time
    assert not update_ready(waves, 2000, now)


def test_seed_equal_to_key_belongs_to_the_wave_ending_there() -> None:
    wave = update_wave(WAVES3, 50)
    assert wave is not None and (wave.start_seed, wave.end_seed) == (0, 50)


def test_keys_above_2048_are_ignored() -> None:
    waves = {0: T, 858993459: T + NANOS_PER_HOUR}
    wave = update_wave(waves, 123)
    assert wave is not None and wave.kind == "last" and wave.start_time == T
    assert update_wave({5000: T}, 0) is None


@pytest.mark.parametrize("seed", [-1, 2048, 5000, 1.5, "7", True])
def test_seed_out_of_range_is_a_clear_error(seed: object) -> None:  # Decision 3
    with pytest.raises(SeedError, match="0 to 2047"):
        check_seed(seed)
    with pytest.raises(SeedError):
        update_ready(WAVES3, seed, T)  # type: ignore[arg-type]


instants = st.integers(min_value=T - 10**15, max_value=T + 10**15)
wave_maps = st.dictionaries(st.integers(0, 2100), instants, max_size=8)
seeds = st.integers(0, 2047)


@given(wave_maps, seeds, instants, instants)
def test_readiness_never_flips_back(waves: dict[int, int], seed: int, t1: int, t2: int) -> None:
    early, late = sorted((t1, t2))
    if update_ready(waves, seed, early):
        assert update_ready(waves, seed, late)


@given(wave_maps, seeds, instants)
def test_ready_at_is_exactly_the_readiness_threshold(waves: dict[int, int], seed: int, now: int) -> None:
    when = ready_at(waves, seed)
    assert update_ready(waves, seed, now) == (when is None or now >= when)
    if when is not None:
        assert update_ready(waves, seed, when)
        assert not update_ready(waves, seed, when - 1)


@given(st.lists(st.integers(1, 100), min_size=1, max_size=8, unique=True).map(sorted), seeds,
       st.lists(st.integers(1, 10**14), min_size=8, max_size=8))
def test_ready_at_never_later_than_its_wave_end(percentages: list[int], seed: int, gaps: list[int]) -> None:
    keys = [0] + [p * 2048 // 100 for p in percentages[:-1]]
    times, t = [], T
    for gap in gaps[: len(keys)]:
        t += gap
        times.append(t)
    waves = dict(zip(keys, times))
    wave = update_wave(waves, seed)
    when = ready_at(waves, seed)
    assert wave is not None
    if wave.kind == "general":
        assert when is not None and wave.start_time is not None and wave.end_time is not None
        assert wave.start_time <= when <= wave.end_time
    elif wave.kind == "last":
        assert when == wave.start_time
    else:
        assert when is None


def test_fleet_curve_counts_hosts() -> None:
    from repo_tool.core.schedule import FleetCurve

    waves = {0: T, 100: T + 100 * MS, 200: T + 200 * MS}
    curve = FleetCurve.of(waves, [0, 0, 50, 150, 150, 1000, 1000, 1000])
    assert curve.size == 8
    assert curve.always_ready == 2  # seed 0: initial wave
    assert curve.fraction_at(T - 1) == 2 / 8
    assert curve.fraction_at(T + 200 * MS) == 1.0
    assert curve.time_to_reach(0.25) is None
    assert curve.time_to_reach(1.0) == T + 200 * MS
    when_50 = ready_at(waves, 50)
    assert when_50 is not None
    assert curve.time_to_reach(3 / 8) == when_50
    assert curve.fraction_at(when_50) == 3 / 8
    assert curve.fraction_at(when_50 - 1) == 2 / 8
