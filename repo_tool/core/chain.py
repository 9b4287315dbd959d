"""The migration chain as an invariant of every manifest edit (SPEC §8.3, pure).

A node moves between two versions of its variant/arch only along updog's migration walk, in either
direction (a downgrade runs the same steps backwards).  So every version a node may run must be
connected by that walk to every version the manifest may send it to: each listed update (the newest
one, a ``version_lock``, a pull that lowers ``max_version``), and back.  A pair that is not is a
:class:`Break`: nodes on one of its versions fail with ``Reached end of migration chain`` and stay
where they are.

:func:`check_edit` compares a manifest before and after an edit (a publish, a pull, a new
``max_version``) and separates the breaks the edit *causes* (to be refused) from those that were
already there (to be reported): a pair involving a version the edit lists for the first time, a pair
whose walk the new migrations break, and a move the edit sends nodes on (a pull, a lower
``max_version``) along a broken walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repo_tool.core.manifest import Manifest, migration_key_text
from repo_tool.core.selection import Host, MigrationChain, Overrides, select
from repo_tool.core.semver import Version

Group = tuple[str, str]  # (variant, arch)


@dataclass(frozen=True, order=True)
class Break:
    """No migration walk between ``low`` and ``high`` in ``variant``/``arch``: it stops at ``end``."""

    variant: str
    arch: str
    low: Version
    high: Version
    end: Version
    reason: str = field(compare=False)

    @property
    def missing_step(self) -> str:
        """The Release.toml line that would let the walk go on (empty: no migration needed)."""
        return f'"{migration_key_text((self.end, self.high))}" = []'

    def describe(self) -> str:
        """One line: which versions, where the walk stops and why (updog's words), the step to add."""
        return (f"{self.variant} {self.arch}: {self.low} and {self.high} are not connected, so nodes on one cannot "
                f"update to the other: updog's walk from {self.low} stops at {self.end} ({self.reason}); missing "
                f"step: {self.missing_step} (with the migrations it needs; [] if none)")


@dataclass
class ChainCheck:
    """What an edit does to the chain: breaks it causes, and breaks it leaves as they were."""

    caused: list[Break]
    existing: list[Break]


def groups(manifest: Manifest) -> dict[Group, set[Version]]:
    """The versions each variant/arch lists."""
    result: dict[Group, set[Version]] = {}
    for update in manifest.updates:
        result.setdefault((update.variant, update.arch), set()).add(update.version)
    return result


def breaks(manifest: Manifest, nodes: dict[Group, set[Version]] | None = None) -> list[Break]:
    """Every unconnected pair of a listed version and a version nodes may run (by default: the
    listed versions), per variant/arch, in version order."""
    chain = MigrationChain(manifest.migrations)
    found: dict[tuple[Group, Version, Version], Break | None] = {}
    listed = groups(manifest)
    for group in sorted(set(listed) | set(nodes or {})):
        targets = listed.get(group, set())
        running = targets | (nodes or {}).get(group, set())
        for a in running:
            for b in targets:
                if a != b:
                    low, high = min(a, b), max(a, b)
                    if (group, low, high) not in found:
                        found[(group, low, high)] = _pair(chain, group, low, high)
    return sorted(b for b in found.values() if b is not None)


def _pair(chain: MigrationChain, group: Group, low: Version, high: Version) -> Break | None:
    stop = chain.stop(low, high)
    return None if stop is None else Break(group[0], group[1], low, high, stop[0], stop[1])


def offered(manifest: Manifest, variant: str, arch: str, current: Version) -> Version | None:
    """The version a node on ``current`` is eventually offered (waves aside), as updog chooses it."""
    update = select(manifest, Host(variant, arch, current, 0), 0, Overrides(ignore_waves=True)).update
    return None if update is None else update.version


def check_edit(before: Manifest, after: Manifest) -> ChainCheck:
    """Compare the chain before and after an edit (see the module docstring)."""
    listed_before, listed_after = groups(before), groups(after)
    nodes = {g: listed_before.get(g, set()) | listed_after.get(g, set())
             for g in set(listed_before) | set(listed_after)}
    old = {(b.variant, b.arch, b.low, b.high) for b in breaks(before)}
    now = breaks(after, nodes)
    by_pair = {(b.variant, b.arch, b.low, b.high): b for b in now}
    caused = {key: b for key, b in by_pair.items() if key not in old}
    for (variant, arch), running in nodes.items():
        for version in running:
            target = offered(after, variant, arch, version)
            if target is None or target == version:
                continue
            if version in listed_before.get((variant, arch), set()) and \
                    offered(before, variant, arch, version) == target:
                continue  # nodes on this version already went there before the edit
            key = (variant, arch, min(version, target), max(version, target))
            if key in by_pair:
                caused[key] = by_pair[key]
    return ChainCheck(sorted(caused.values()), sorted(b for key, b in by_pair.items() if key not in caused))
