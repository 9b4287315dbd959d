"""``core.standing``: an update's state and seeds offered at an instant, on the edge cases updog's rules
allow (no waves, keys above 2048, a lone key, unordered hand-made waves, an instant before publish,
held, pulled, hand-edited pause records).  Every count is checked against updog's ``update_ready``
asked for each seed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.instant import NANOS_PER_SECOND, format_instant, parse_instant
from repo_tool.core.manifest import Images, Manifest, Update
from repo_tool.core.readiness import SEED_COUNT, offered_count, ready_at, ready_times, update_ready
from repo_tool.core.rollout import Action, Rollout, apply, halted_waves, hold_of, paused_waves, pauses_of
from repo_tool.core.semver import Version
from repo_tool.core.standing import standing, standings
from repo_tool.errors import UsageError

HOUR = 3600 * NANOS_PER_SECOND
DAY = 24 * HOUR
T = parse_instant("2026-12-01T00:00:00Z")
KEY = "v x86_64 1.0.0"


def update(waves: dict[int, int], version: str = "1.0.0", max_version: str = "1.0.0") -> Update:
    return Update("v", "x86_64", Version.parse(version), Version.parse(max_version), waves, Images("b", "r", "h"))


def brute(waves: dict[int, int], at: int) -> int:
    return sum(1 for seed in range(SEED_COUNT) if update_ready(waves, seed, at))


STEPS = {0: T, 512: T + DAY, 1024: T + 2 * DAY, 2048: T + 3 * DAY}


@pytest.mark.parametrize(("name", "waves", "at", "state"), [
    ("no waves", {}, T, "complete"),
    ("only keys above 2048 (ignored, as updog)", {3000: T + DAY}, T, "complete"),
    ("a lone key 0, before", {0: T + DAY}, T, "scheduled"),
    ("a lone key 0, after", {0: T + DAY}, T + 2 * DAY, "complete"),
    ("a lone key 2048: the initial wave is everyone", {2048: T + DAY}, T, "complete"),
    ("an instant before publish", STEPS, T - 10 * DAY, "scheduled"),
    ("inside the second wave", STEPS, T + DAY + HOUR, "rolling"),
    ("at the last wave's end", STEPS, T + 3 * DAY, "complete"),
    ("two waves starting together", {0: T, 512: T, 2048: T + DAY}, T + HOUR, "rolling"),
    ("unordered, hand made", {0: T + 3 * DAY, 512: T + 2 * DAY, 1024: T + DAY}, T + DAY + HOUR, "rolling"),
    ("unordered, all passed", {0: T + 3 * DAY, 512: T + 2 * DAY, 1024: T + DAY}, T + 4 * DAY, "complete"),
])
def test_counts_are_updogs_seed_by_seed(name: str, waves: dict[int, int], at: int, state: str) -> None:
    found = standing(update(waves), {}, at)
    assert found.seeds_offered == brute(waves, at), name
    assert found.state == state, name
    if state == "complete":
        assert found.next_wave_at is None and found.next_seed_at is None
    if found.next_seed_at is not None:  # the next seed is offered then, not a nanosecond before
        assert brute(waves, found.next_seed_at) > found.seeds_offered == brute(waves, found.next_seed_at - 1)


def test_unordered_waves_complete_have_no_next_wave_after_their_end() -> None:
    found = standing(update({0: T + 3 * DAY, 512: T + 2 * DAY, 1024: T + DAY}), {}, T + 3 * DAY + HOUR)
    assert (found.state, found.next_wave_at, found.next_seed_at) == ("complete", None, None)


def test_paused_halted_and_pulled() -> None:
    at = T + DAY + HOUR
    paused, held = paused_waves(STEPS, at)
    pauses = {KEY: {"paused_at": format_instant(at), "waves": {str(k): format_instant(v) for k, v in held.items()}}}
    found = standing(update(paused), pauses, at + HOUR)
    assert (found.state, found.seeds_offered) == ("paused", brute(paused, at + HOUR))
    assert found.to_json()["paused_since"] == format_instant(at)
    assert found.complete_at is None and found.next_wave_at is None and found.next_seed_at is None
    assert [w.held for w in found.waves] == [False, False, True, True]  # the one in progress: its end moved
    halted = standing(update(halted_waves(STEPS)), {}, at)
    assert (halted.state, halted.seeds_offered, halted.to_json()["paused_since"]) == ("halted", 1, None)
    pulled = standing(update(paused, "1.1.0", "1.0.0"), pauses, at)  # paused, then pulled: pulled wins
    assert (pulled.state, pulled.seeds_offered, pulled.to_json()["paused_since"]) == ("pulled", 0, None)


def test_hand_edited_pause_records_neither_crash_nor_invent_a_time() -> None:
    assert pauses_of({"repo-tool": "x"}) == {} and pauses_of({"repo-tool": {"paused": [1]}}) == {}
    assert str(hold_of({KEY: {"paused_at": "yesterday"}}, KEY)) == "paused"
    assert str(hold_of({KEY: "x"}, KEY)) == "halted"
    paused, _ = paused_waves(STEPS, T + HOUR)
    found = standing(update(paused), {KEY: {"paused_at": "yesterday"}}, T + 2 * HOUR)
    assert (found.state, found.to_json()["paused_since"]) == ("paused", None)
    with pytest.raises(UsageError, match="pause record is not one this tool writes"):
        apply(Action.RESUME, Rollout(KEY, Version.parse("1.0.0"), paused, {KEY: {"paused_at": "yesterday"}}), T)


def test_what_is_shown_for_a_variant() -> None:
    old = {0: T - 10 * DAY, 2048: T - 9 * DAY}
    manifest = Manifest(updates=[update(old, "1.0.0", "1.2.0"), update(old, "1.1.0", "1.2.0"),
                                 update(STEPS, "1.2.0", "1.2.0")], migrations={})
    shown: Any = [(str(s.update.version), s.state) for s in standings(manifest, "v", "x86_64", {}, T + HOUR)]
    assert shown == [("1.2.0", "rolling")]  # old releases complete: not shown
    for u in manifest.updates:
        u.max_version = Version.parse("1.1.0")  # 1.2.0 pulled: 1.1.0 is what nodes get, shown too
    shown = [(str(s.update.version), s.state) for s in standings(manifest, "v", "x86_64", {}, T + HOUR)]
    assert shown == [("1.2.0", "pulled"), ("1.1.0", "complete")]
    assert standings(manifest, "other", "x86_64", {}, T) == []


# The whole-fleet functions against updog's per-seed rule, on any waves: ordered or not, keys above
# 2048, starts shared, times a nanosecond apart or days.
instants = st.integers(T - 10**15, T + 10**15) | st.integers(T - 5, T + 5)
wave_maps = st.dictionaries(st.integers(0, 2100) | st.sampled_from([0, 1, 2047, 2048, 2049]), instants, max_size=8)


@given(wave_maps, instants)
def test_offered_count_is_update_ready_summed_over_every_seed(waves: dict[int, int], now: int) -> None:
    assert offered_count(waves, now) == brute(waves, now)


@given(wave_maps)
def test_ready_times_are_ready_at_of_every_seed(waves: dict[int, int]) -> None:
    assert ready_times(waves) == [ready_at(waves, seed) for seed in range(SEED_COUNT)]


def test_a_held_update_is_shown_even_at_an_instant_past_its_held_waves() -> None:
    """``--at 9000-01-02``: the stand-in times of a halt have passed, but the update is still halted."""
    manifest = Manifest(updates=[update(halted_waves(STEPS), "1.0.0", "1.1.0"), update(STEPS, "1.1.0", "1.1.0")])
    far = parse_instant("9000-01-02T00:00:00Z")
    shown = [(str(s.update.version), s.state) for s in standings(manifest, "v", "x86_64", {}, far)]
    assert shown == [("1.1.0", "complete"), ("1.0.0", "halted")]
