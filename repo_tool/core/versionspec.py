"""Which updates ``--versions`` chooses from an upstream manifest, and what they need: their images,
``manifest.json`` and the migrations nodes run to reach them (pure: a manifest in, names and steps out).
A mirror copies those targets; a re-root publishes them with the steps.

``--versions`` is ``latest`` (the newest update of each variant/arch), ``all`` (every update), or a
comma list of versions (``1.19.0``) and requirements (``>=1.19.0``, ``<2.0.0``, ``<=1.19`` for every
1.19.x): a version is chosen if it is one of those listed, or if it meets every requirement given.
The migration walk is updog's (:class:`repo_tool.core.selection.MigrationChain`): for each chosen
update, the migrations of the walk from every lower version the manifest lists for its variant/arch
(where nodes may be running).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from repo_tool.core.chain import offered
from repo_tool.core.manifest import MANIFEST_NAME, Manifest, MigrationKey, Update
from repo_tool.core.selection import LATEST, MigrationChain
from repo_tool.core.semver import Version
from repo_tool.errors import MigrationError, UsageError, VersionError

ALL = "all"
_NOTHING = Version.parse("0.0.0")  # a node below every release: offered the version updog picks
_SHORT = re.compile(r"\d+(\.\d+)?")  # a requirement's bound without its patch (or minor) number
_OPERATORS: dict[str, Callable[[Version, Version], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt, "=": operator.eq,
}


@dataclass(frozen=True)
class VersionSpec:
    """A parsed ``--versions``: ``latest``, ``all``, or exact versions and requirements."""

    text: str
    exact: frozenset[Version] = frozenset()
    requirements: tuple[tuple[str, Version], ...] = ()

    def chooses(self, version: Version) -> bool:
        if self.text in (ALL, LATEST):
            return True
        if version in self.exact:
            return True
        return bool(self.requirements) and all(_OPERATORS[op](version, bound) for op, bound in self.requirements)


def parse_versions(text: str, flag: str = "--versions") -> VersionSpec:
    """``text`` as a :class:`VersionSpec`; a :class:`UsageError` naming ``flag`` if it is not one."""
    text = text.strip()
    if text in (ALL, LATEST):
        return VersionSpec(text)
    exact: set[Version] = set()
    requirements: list[tuple[str, Version]] = []
    for item in (part.strip() for part in text.split(",")):
        op = next((op for op in _OPERATORS if item.startswith(op)), "")
        bare = item[len(op):].strip().removeprefix("v")
        if op and _SHORT.fullmatch(bare):  # a bound may leave out its minor or patch number
            requirements += _short_bound(op, bare)
            continue
        try:
            version = Version.parse(bare)
        except VersionError:
            raise UsageError(f"{flag}: {item!r} is not a version or a requirement such as >=1.19.0 "
                             "(expected latest, all, or a comma list)") from None
        if op:
            requirements.append((op, version))
        else:
            exact.add(version)
    return VersionSpec(text, frozenset(exact), tuple(requirements))


def _short_bound(op: str, bare: str) -> list[tuple[str, Version]]:
    """A bound without its patch (or minor) number stands for every version it names, as in npm and
    Cargo: ``>=1.19`` and ``<1.19`` from 1.19.0, ``<=1.19`` up to every 1.19.x (``<1.20.0``), ``>1.19`` past
    them (``>=1.20.0``), ``==1.19`` exactly those."""
    numbers = [int(n) for n in bare.split(".")]
    low = Version.parse(".".join(map(str, [*numbers, 0, 0][:3])))
    numbers[-1] += 1
    high = Version.parse(".".join(map(str, [*numbers, 0, 0][:3])))
    return {">=": [(">=", low)], "<": [("<", low)], "<=": [("<", high)], ">": [(">=", high)],
            "==": [(">=", low), ("<", high)], "=": [(">=", low), ("<", high)]}[op]


def chosen_updates(manifest: Manifest, spec: VersionSpec) -> list[Update]:
    """The manifest's updates ``spec`` chooses, in manifest order.  ``latest``: per variant/arch the
    version updog offers (waves aside: the newest not above its ``max_version``), else the newest listed."""
    if spec.text == LATEST:
        latest: dict[tuple[str, str], Version] = {}
        for update in manifest.updates:
            group = (update.variant, update.arch)
            if group not in latest:
                newest = max(u.version for u in manifest.updates if (u.variant, u.arch) == group)
                latest[group] = offered(manifest, update.variant, update.arch, _NOTHING) or newest
        return [u for u in manifest.updates if u.version == latest[(u.variant, u.arch)]]
    return [u for u in manifest.updates if spec.chooses(u.version)]


def offered_now(manifest: Manifest) -> list[Update]:
    """The release nodes are offered now, per variant/arch (``latest``): what a mirror must always hold."""
    return chosen_updates(manifest, VersionSpec(LATEST))


def required_targets(manifest: Manifest) -> list[str]:
    """The targets nodes need now: ``manifest.json``, the images of :func:`offered_now` and the
    migrations to it.  A partial mirror without one of them sends nodes to an image it does not hold."""
    return needed_targets(manifest, offered_now(manifest))


def needed_steps(manifest: Manifest, updates: list[Update]) -> dict[MigrationKey, list[str]]:
    """The migration steps (key: names) of the walks to each of ``updates`` from every lower version
    listed for its variant/arch, in walk order (a walk that breaks is left out: the publisher's chain
    check reports breaks; a mirror copies what upstream has)."""
    chain = MigrationChain(manifest.migrations)
    steps: dict[MigrationKey, list[str]] = {}
    for update in updates:
        lower = {u.version for u in manifest.updates
                 if (u.variant, u.arch) == (update.variant, update.arch) and u.version < update.version}
        for version in sorted(lower):
            try:
                keys = chain.steps(version, update.version)
            except MigrationError:
                continue
            steps.update((key, list(manifest.migrations[key])) for key in keys)
    return steps


def needed_targets(manifest: Manifest, updates: list[Update]) -> list[str]:
    """``manifest.json``, the images of ``updates`` and the migrations of :func:`needed_steps`."""
    names = [MANIFEST_NAME]
    for update in updates:
        names += [update.images.boot, update.images.root, update.images.hash]
    for step in needed_steps(manifest, updates).values():
        names += step
    return list(dict.fromkeys(names))
