"""Wave schedules for people: seed ranges per wave, and the share of a fleet offered over time."""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from repo_tool.core.readiness import SEED_COUNT, WaveKind, ready_at, wave_rows
from repo_tool.core.waves import WavePolicy, policy_to_waves


@dataclass(frozen=True)
class ScheduleRow:
    """A run of seeds sharing one wave: seeds ``first_seed..last_seed``.

    Hosts in the row are offered the update from ``start_time`` (None: as soon
    as it is published) and all of them by ``end_time`` (None: at start_time).
    ``offset``/``percentage`` name the policy entry behind the row, when known.
    """

    kind: WaveKind | Literal["none"]
    first_seed: int
    last_seed: int
    start_time: int | None
    end_time: int | None
    offset: str | None = None
    percentage: int | None = None

    @property
    def cumulative_fraction(self) -> float:
        return (self.last_seed + 1) / SEED_COUNT

    @property
    def all_offered_by(self) -> int | None:
        """When every host of the row has been offered the update (None: when it is published)."""
        if self.kind in ("initial", "none"):
            return None
        return self.end_time if self.end_time is not None else self.start_time


def offered_by_text(row: ScheduleRow, when: Callable[[int], str]) -> str:
    """When every host of ``row`` has been offered the update, for people: ``when`` of that instant,
    or ``when published (initial wave)`` for seeds updog offers it to at once whatever the times
    (neither a wave time nor a pause holds them)."""
    offered_by = row.all_offered_by
    if offered_by is not None:
        return when(offered_by)
    return "when published (no waves)" if row.kind == "none" else f"when published ({row.kind} wave)"


def schedule(waves: Mapping[int, int]) -> list[ScheduleRow]:
    """The waves map as rows of seeds, lowest first (keys above 2048 are ignored, as upstream)."""
    return [ScheduleRow("none", first, last, None, None) if wave is None else
            ScheduleRow(wave.kind, first, last, wave.start_time, wave.end_time)
            for wave, first, last in wave_rows(waves)]


def policy_schedule(policy: WavePolicy, start: int) -> tuple[dict[int, int], list[ScheduleRow]]:
    """The waves map of ``policy`` released at ``start``, and its rows labelled with the policy entries."""
    waves = policy_to_waves(policy, start)
    entry_of_key = dict(zip(policy.seeds(), policy.waves))  # later entries win, as upstream
    rows = []
    for row in schedule(waves):
        entry = entry_of_key.get(row.first_seed - 1) if row.kind in ("general", "last") else None
        if entry is None:
            rows.append(row)
        else:
            rows.append(dataclasses.replace(row, offset=entry.start_after, percentage=entry.fleet_percentage))
    return waves, rows


@dataclass(frozen=True)
class FleetCurve:
    """When the hosts of a fleet are offered an update.

    ``times`` are the distinct finite ready instants, ascending, and ``reached[i]`` the number of
    hosts ready at ``times[i]`` (cumulative, including the ``always_ready`` ones).  Seeds take only
    2048 values, so a fleet of millions costs 2048 readiness computations.
    """

    times: tuple[int, ...]
    reached: tuple[int, ...]
    always_ready: int
    size: int

    @classmethod
    def of(cls, waves: Mapping[int, int], seeds: Iterable[int]) -> FleetCurve:
        hosts_per_time: Counter[int] = Counter()
        always = size = 0
        for seed, hosts in Counter(seeds).items():
            when = ready_at(waves, seed)
            size += hosts
            if when is None:
                always += hosts
            else:
                hosts_per_time[when] += hosts
        times = sorted(hosts_per_time)
        reached = list(itertools.accumulate((hosts_per_time[t] for t in times), initial=always))[1:]
        return cls(tuple(times), tuple(reached), always, size)

    def fraction_at(self, now: int) -> float:
        """Share of the fleet offered the update at ``now``."""
        if self.size == 0:
            return 0.0
        i = bisect.bisect_right(self.times, now)
        return (self.reached[i - 1] if i else self.always_ready) / self.size

    def time_to_reach(self, fraction: float) -> int | None:
        """The first instant at which at least ``fraction`` of the fleet is offered it (None: at once)."""
        needed = math.ceil(fraction * self.size - 1e-9)
        if needed <= self.always_ready:
            return None
        i = bisect.bisect_left(self.reached, needed)
        return self.times[min(i, len(self.times) - 1)]


def sample_times(start: int, end: int, count: int) -> Sequence[int]:
    """``count`` evenly spaced instants from ``start`` to ``end`` inclusive."""
    if count < 2 or end <= start:
        return [start]
    step = (end - start) / (count - 1)
    return [start + round(i * step) for i in range(count)]
