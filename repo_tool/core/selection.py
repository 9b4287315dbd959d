"""Which update a node picks, and which migrations it runs (SPEC §8).

:func:`select` reproduces updog's ``applicable_updates`` + ``update_required``
and also records, for every update in the manifest, why it was kept or
dropped, so "why is my node not updating?" has an answer.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import MANIFEST_NAME, Manifest, MigrationKey, Update, migration_key_text
from repo_tool.core.readiness import check_seed, ready_at_in_wave, update_wave
from repo_tool.core.rollout import HELD, wave_held
from repo_tool.core.semver import Version
from repo_tool.errors import ConfigError, MigrationError, VersionError

LATEST = "latest"


def parse_version_lock(text: str) -> Version | None:
    """updog's ``version_lock``: exactly ``latest`` (None), else one leading ``v`` stripped and strict semver."""
    if text == LATEST:
        return None
    candidate = text[1:] if text.startswith("v") else text
    try:
        return Version.parse(candidate)
    except VersionError:
        raise ConfigError(f"Bad version string '{text}' in config") from None


@dataclass(frozen=True)
class Host:
    """The node asking: its variant (``VARIANT_ID``), arch, running version (``VERSION_ID``) and wave seed."""

    variant: str
    arch: str
    current: Version
    seed: int


@dataclass(frozen=True)
class Overrides:
    """What changes updog's default choice (the newest applicable update): ``version_lock`` from
    updog.toml, ``force_version`` from ``--image`` (which bypasses the lock), ``ignore_waves`` from
    updog.toml or ``--now``."""

    version_lock: str = LATEST
    force_version: Version | None = None
    ignore_waves: bool = False


@dataclass(frozen=True)
class Considered:
    """One manifest update as the host saw it."""

    update: Update
    kept: bool
    why: str
    ready_at: int | None  # None: offered as soon as published (or waves ignored), or held by a pause or halt

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "variant": self.update.variant,
            "arch": self.update.arch,
            "version": str(self.update.version),
            "max_version": str(self.update.max_version),
            "kept": self.kept,
            "why": self.why,
            "ready_at": None if self.ready_at is None else format_instant(self.ready_at),
        }


@dataclass(frozen=True)
class Selection:
    """The outcome of an update check."""

    update: Update | None
    current: Version
    decision: str
    considered: list[Considered] = field(default_factory=list)

    @property
    def downgrade(self) -> bool:
        return self.update is not None and self.update.version < self.current

    @property
    def applicable(self) -> list[Update]:
        """``applicable_updates``: kept updates, highest version first (stable for ties)."""
        return _applicable(self.considered)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "update": None if self.update is None else self.update.to_json_obj(),
            "downgrade": self.downgrade,
            "decision": self.decision,
            "reasons": [c.to_json_obj() for c in self.considered],
        }


def _applicable(considered: list[Considered]) -> list[Update]:
    # sorted() with reverse=True keeps equal versions in manifest order (SPEC §8.1 Decision).
    return sorted((c.update for c in considered if c.kept), key=lambda u: u.version, reverse=True)


def _consider(update: Update, host: Host, now: int, ignore_waves: bool) -> Considered:
    variant, arch, seed = host.variant, host.arch, host.seed
    if update.variant != variant:
        return Considered(update, False, f"variant {update.variant} is not the host's variant {variant}", None)
    if update.arch != arch:
        return Considered(update, False, f"arch {update.arch} is not the host's arch {arch}", None)
    if update.pulled:
        return Considered(
            update, False, f"version {update.version} is above its max_version {update.max_version}", None
        )
    if ignore_waves:
        return Considered(update, True, "applicable (waves ignored)", None)
    wave = update_wave(update.waves, seed)
    when = ready_at_in_wave(wave, seed)
    if wave is None:
        return Considered(update, True, "applicable (no waves: offered to every seed)", None)
    if wave.kind == "initial":
        return Considered(update, True, f"applicable (seed {seed} is in the initial wave: offered at once)", None)
    assert when is not None
    where = f"seed {seed} is in the {wave.kind} wave starting at seed {wave.start_seed}"
    if when <= now:
        return Considered(update, True, f"applicable ({where}, offered since {format_instant(when)})", when)
    if wave_held(wave):
        return Considered(update, False, f"wave not reached: {where}, {HELD} (repo-tool rollout)", None)
    return Considered(update, False, f"wave not reached: {where}, offered from {format_instant(when)}", when)


def select(manifest: Manifest, host: Host, now: int, overrides: Overrides = Overrides()) -> Selection:
    """updog's choice (SPEC §8.2) for ``host`` at ``now``, with the reason for every update."""
    check_seed(host.seed)
    considered = [_consider(u, host, now, overrides.ignore_waves) for u in manifest.updates]
    applicable = _applicable(considered)
    current, version_lock, force_version = host.current, overrides.version_lock, overrides.force_version

    def result(update: Update | None, decision: str) -> Selection:
        return Selection(update, current, decision, considered)

    none_applicable = "no update in the manifest is applicable to this host"
    if force_version is not None:
        for update in applicable:
            if update.version == force_version:
                return result(update, f"version {force_version} requested with --image")
        return result(None, none_applicable if not applicable else
                      f"no applicable update has the requested version {force_version}")
    # Only now (--image bypasses version_lock entirely), but even with nothing applicable, as updog.
    lock = parse_version_lock(version_lock)
    if not applicable:
        return result(None, none_applicable)
    if lock is not None:
        if lock == current:
            return result(None, f"version_lock {version_lock} is the current version")
        for update in applicable:
            if update.version == lock:
                return result(update, f"version_lock {version_lock} selects {lock}")
        return result(None, f"no applicable update has the locked version {lock}")
    for update in applicable:
        if current < update.version:
            return result(update, f"{update.version} is the highest applicable version above {current}")
        if current > update.max_version:
            return result(
                update,
                f"current version {current} is above max_version {update.max_version}, "
                f"so the highest applicable update {update.version} is offered",
            )
    return result(None, f"no applicable update is newer than the current version {current}")


def find_migrations(
    from_version: Version, to_version: Version, migrations: Mapping[MigrationKey, list[str]]
) -> list[str]:
    """Migration target names from one version to another, reversed for a downgrade (SPEC §8.3)."""
    return MigrationChain(migrations).names(from_version, to_version)


class MigrationChain:
    """updog's migration walk over one ``migrations`` map (SPEC §8.3), indexed once by the version a
    step starts from, so that many walks (every pair of a manifest's versions) stay cheap."""

    def __init__(self, migrations: Mapping[MigrationKey, list[str]]) -> None:
        self._migrations = migrations
        self._ends: dict[Version, list[Version]] = {}
        for start, end in migrations:
            self._ends.setdefault(start, []).append(end)
        for ends in self._ends.values():
            ends.sort()
        self._stops: dict[Version, dict[Version, tuple[Version, str] | None]] = {}

    def names(self, from_version: Version, to_version: Version) -> list[str]:
        """The migrations a node runs from ``from_version`` to ``to_version``; :class:`MigrationError`
        (updog's message) if the walk cannot get there."""
        if from_version == to_version:
            return []
        low, high = sorted((from_version, to_version))
        names = [name for key in self.steps(low, high) for name in self._migrations[key]]
        return names if from_version < to_version else names[::-1]

    def steps(self, low: Version, high: Version) -> list[MigrationKey]:
        """The steps (migration keys) of the walk from ``low`` up to ``high``; :class:`MigrationError`
        (updog's message) if it cannot get there."""
        steps, _, error = self._walk(low, high)
        if error is not None:
            raise MigrationError(error)
        return steps

    def stop(self, low: Version, high: Version) -> tuple[Version, str] | None:
        """None if the walk from ``low`` reaches ``high``; else the version it stops at, and why.
        Remembered for every version the walk passes (a walk from there to ``high`` is the rest of
        this one), so checking every pair of n versions costs O(n²) steps, not O(n³)."""
        known = self._stops.setdefault(high, {})
        passed: list[Version] = []
        version = low
        result: tuple[Version, str] | None
        while True:
            if version in known:
                result = known[version]
                break
            if version == high:
                result = None
                break
            passed.append(version)
            steps, end, error = self._walk(version, high, limit=1)
            if error is not None:
                result = (end, error)
                break
            version = steps[0][1]
        for seen in passed:
            known[seen] = result
        return result

    def _walk(self, low: Version, high: Version, limit: int = 0) -> tuple[list[MigrationKey], Version, str | None]:
        """The steps from ``low`` towards ``high`` (at most ``limit`` of them, if given), the version
        reached, and updog's error if the walk cannot go on."""
        steps: list[MigrationKey] = []
        version = low
        while version != high and not (limit and len(steps) >= limit):
            ends = self._ends.get(version, [])
            i = bisect.bisect_right(ends, high)  # shortcuts win: the largest end that does not pass high
            if i == 0:
                return steps, version, f"Reached end of migration chain at {version} but target is {high}"
            best = (version, ends[i - 1])
            if best[1] <= version:
                return steps, version, (f"migration key {migration_key_text(best)!r} does not move forward; "
                                        "the migration chain has a cycle or a backward step")
            steps.append(best)
            version = best[1]
        return steps, version, None


def retrieve_list(current: Version, target: Version, migrations: Mapping[MigrationKey, list[str]]) -> list[str]:
    """What updog downloads and caches before an update: the forward list plus ``manifest.json``."""
    low, high = sorted((current, target))
    return [*find_migrations(low, high, migrations), MANIFEST_NAME]
