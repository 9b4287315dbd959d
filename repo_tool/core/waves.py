"""Wave policies and the policy -> ``waves`` map conversion (SPEC §6).

A policy is Bottlerocket's TOML (``[[waves]]`` tables with ``start_after`` and
``fleet_percentage``), read unchanged, or the same structure in YAML.  The
conversion follows ``update_metadata::Manifest::set_waves`` exactly: the first
key is 0, each entry's percentage gives the *next* key (``p * 2048 // 100``),
and the seed computed after the last entry is never inserted.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repo_tool.core.instant import add_offset, format_instant
from repo_tool.core.toml import load_toml
from repo_tool.core.yamlfile import load_yaml
from repo_tool.errors import OffsetError, PolicyError, WavesUnorderedError

MAX_SEED = 2048


@dataclass(frozen=True)
class PolicyWave:
    """One ``[[waves]]`` entry: the wave starts ``start_after`` the release start and
    ends when ``fleet_percentage`` percent of the fleet (cumulative) has been offered the update."""

    start_after: str
    fleet_percentage: int


@dataclass(frozen=True)
class WavePolicy:
    waves: tuple[PolicyWave, ...]

    def seeds(self) -> list[int]:
        """The wave keys this policy produces, in policy order (first is always 0)."""
        keys = [0]
        for wave in self.waves[:-1]:
            keys.append(percentage_to_seed(wave.fleet_percentage))
        return keys


def percentage_to_seed(percentage: int) -> int:
    """``(p as f32 / 100.0 * 2048.0) as u32`` upstream; equal to ``p * 2048 // 100`` for 1..100."""
    return percentage * MAX_SEED // 100


def parse_policy(text: str, source: str = "policy.toml") -> WavePolicy:
    """Parse a policy from TOML, or YAML when ``source`` ends in ``.yaml``/``.yml``; validate it."""
    is_yaml = source.endswith((".yaml", ".yml"))
    data = load_yaml(text, PolicyError) if is_yaml else load_toml(text, PolicyError)
    policy = policy_from_obj(data)
    validate_policy(policy)
    return policy


def policy_from_obj(data: Any) -> WavePolicy:
    """Build a policy from parsed TOML/YAML data, rejecting unknown or missing keys."""
    if not isinstance(data, Mapping):
        raise PolicyError("expected a table with a 'waves' array")
    unknown = [key for key in data if key != "waves"]
    if unknown:
        raise PolicyError(f"unknown key {unknown[0]!r} (a policy has only 'waves')")
    entries = data.get("waves")
    if entries is None:
        raise PolicyError("missing key 'waves' (an array of [[waves]] tables)")
    if not isinstance(entries, list) or not entries:
        raise PolicyError("'waves' must be a non-empty array of [[waves]] tables")
    waves = []
    for i, entry in enumerate(entries):
        where = wave_name(i)
        if not isinstance(entry, Mapping):
            raise PolicyError(f"{where}: expected a table with start_after and fleet_percentage")
        extra = [key for key in entry if key not in ("start_after", "fleet_percentage")]
        if extra:
            raise PolicyError(f"{where}: unknown key {extra[0]!r}")
        for key in ("start_after", "fleet_percentage"):
            if key not in entry:
                raise PolicyError(f"{where}: missing key {key!r}")
        start_after, percentage = entry["start_after"], entry["fleet_percentage"]
        if not isinstance(start_after, str):
            raise PolicyError(f"{where}: start_after: expected a string such as '4 hours', found {start_after!r}")
        if isinstance(percentage, bool) or not isinstance(percentage, int):
            raise PolicyError(f"{where}: fleet_percentage: expected an integer 1-100, found {percentage!r}")
        waves.append(PolicyWave(start_after, percentage))
    return WavePolicy(tuple(waves))


def wave_name(index: int) -> str:
    """How messages name the policy entry at ``index`` (from 0): ``wave 3`` is the third ``[[waves]]``
    table, and the row numbered 3 in ``waves show``."""
    return f"wave {index + 1}"


def _check_percentage(percentage: int, where: str) -> None:
    """Upstream's ``InvalidFleetPercentage``, in words."""
    if not 1 <= percentage <= 100:
        raise PolicyError(f"{where}: fleet_percentage must be between 1 and 100 (the share of the fleet "
                          f"offered the update by the end of the wave), found {percentage}")


def policy_to_waves(policy: WavePolicy, start: int) -> dict[int, int]:
    """The ``waves`` map for an update released at ``start`` (SPEC §6.4 steps 1-3)."""
    waves: dict[int, int] = {}
    seed = 0
    for i, wave in enumerate(policy.waves):
        where = wave_name(i)
        _check_percentage(wave.fleet_percentage, where)
        try:
            waves[seed] = add_offset(start, wave.start_after)
        except OffsetError as exc:
            raise PolicyError(f"{where}: start_after: {exc}") from None
        seed = percentage_to_seed(wave.fleet_percentage)
    return dict(sorted(waves.items()))


def first_unordered(waves: Mapping[int, int]) -> tuple[int, int] | None:
    """The first pair of adjacent keys (by seed) whose times do not strictly increase."""
    keys = sorted(waves)
    for lower, upper in itertools.pairwise(keys):
        if not waves[lower] < waves[upper]:
            return lower, upper
    return None


def check_waves_ordered(waves: Mapping[int, int]) -> None:
    """Upstream's ``WavesUnordered`` check, in the manifest's terms: unless the times strictly increase
    with the seed keys, a :class:`WavesUnorderedError` naming the two keys (``waves["1024"]``)."""
    pair = first_unordered(waves)
    if pair is not None:
        lower, upper = pair
        raise WavesUnorderedError(
            f'waves: "{upper}" ({format_instant(waves[upper])}) does not start after "{lower}" '
            f"({format_instant(waves[lower])}): each wave must start after the wave of the lower seed"
        )


def validate_policy(policy: WavePolicy) -> None:
    """Every error ``set_waves`` could raise for this policy, whatever the start time, worded as the
    policy file's entries; and (stricter than upstream, which only fails when the times end up out of
    order) a fleet_percentage below the one before it.  Equal percentages are allowed as upstream
    allows them: the two waves share one seed key and the later start_after wins."""
    for i, (before, wave) in enumerate(itertools.pairwise(policy.waves), start=1):
        if wave.fleet_percentage < before.fleet_percentage:
            raise PolicyError(
                f"{wave_name(i)} (fleet_percentage {wave.fleet_percentage}) is below {wave_name(i - 1)}'s "
                f"{before.fleet_percentage}: fleet_percentage is the share of the fleet offered the update "
                "by the end of a wave, so it must not decrease from one wave to the next"
            )
    waves = policy_to_waves(policy, 0)
    pair = first_unordered(waves)
    if pair is not None:
        entry_of_key = {seed: i for i, seed in enumerate(policy.seeds())}  # later entries win, as upstream
        lower, upper = (entry_of_key[key] for key in pair)
        raise PolicyError(
            f"{wave_name(upper)} (start_after {policy.waves[upper].start_after!r}) does not start after "
            f"{wave_name(lower)} ({policy.waves[lower].start_after!r}): start_after must increase from one "
            "wave to the next"
        )
