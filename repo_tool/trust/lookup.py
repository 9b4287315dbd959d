"""A verified repository, and target lookup through delegations (SPEC §3.5).

:func:`find_target` is the one target lookup: it walks a targets role and its delegations
pre-order (python-tuf's order, ``terminating`` honoured), asking a callback for each delegated
role as the walk reaches it; it implies nothing about whether the role files were verified (the
auditor looks targets up in files a node refused).  :func:`object_name` says where a target is
stored.  :class:`Repo` is what a load returns: the root chain, timestamp, snapshot, targets and the
delegated roles loaded so far; :meth:`Repo.find` is :func:`find_target` with the loader that made
the repo reading each delegated role.  Nothing here fetches by itself: the bytes of a delegated
role come through the :class:`DelegationLoader` (the shell), and expiry is judged against the
``now`` the load was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from repo_tool.core.instant import format_instant
from repo_tool.core.reader import Reader
from repo_tool.trust.delegations import DelegatedRole
from repo_tool.trust.model import Limits, MetadataError, RoleFile, TargetError, target_file
from repo_tool.trust.policy import TOUGH, Policy
from repo_tool.trust.trusted import TIMESTAMP, ExpiredError, role_file_name

MAX_DELEGATIONS = 32

__all__ = ["DelegatedRoleReader", "DelegationLoader", "Repo", "Source", "Store", "Target", "find_target",
           "object_name"]

Source = Reader
"""Where role files come from (a storage location, or a node's HTTP/file base URL): named bytes."""


class Store(Protocol):
    """A local store of metadata files by single-segment name (updog's cache, a client's state)."""

    path: Path

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, raw: bytes) -> None: ...

    def remove(self, name: str) -> None: ...


class DelegationLoader(Protocol):
    """What loads a delegated role as a walk reaches it (the load's shell)."""

    def delegated_role(self, repo: Repo, parent: RoleFile, parent_name: str, role: DelegatedRole) -> RoleFile: ...


@dataclass(frozen=True)
class Target:
    """A listed target as a client resolved it."""

    name: str  # the name looked up (tough: with ``.``/``..`` resolved)
    listed_as: str  # the name as written in the role file
    length: int
    hashes: dict[str, str]  # algorithm -> lower-case hex, as listed (sha256 required in tough mode)
    custom: Any
    role: str

    @property
    def sha256(self) -> str:
        return self.hashes["sha256"]


DelegatedRoleReader = Callable[[RoleFile, str, DelegatedRole], RoleFile]
"""``(parent, parent's role name, delegation) -> role file``: a delegated role as the walk reaches it."""


def find_target(targets: RoleFile, name: str, policy: Policy, what: Callable[[str], str],
                delegated: DelegatedRoleReader) -> Target | None:
    """Look ``name`` up in ``targets`` and (pre-order, each read by ``delegated`` as the walk reaches
    it) its delegations, as ``policy``'s client does; ``what(role)`` names a role file in messages.
    Whether the role files were verified is the caller's to know: this only reads them."""
    key = policy.resolve(name)
    for role_name, role_file in _walk(targets, key, policy, what, delegated):
        listed = policy.listed_targets(role_file)
        if key in listed:
            listed_as, entry = listed[key]
            typed = target_file(entry, policy.requires_sha256, f"{what(role_name)}: target {listed_as!r}")
            return Target(key, listed_as, typed.length, {k: v.lower() for k, v in typed.hashes.items()},
                          typed.custom, role_name)
    return None


def object_name(target: Target, policy: Policy, consistent: bool) -> str:
    """Where ``target`` is stored under the targets base URL."""
    return policy.object_name(target.name, target.hashes, consistent)


def _walk(targets: RoleFile, key: str, policy: Policy, what: Callable[[str], str],
          delegated: DelegatedRoleReader) -> Iterator[tuple[str, RoleFile]]:
    """Pre-order depth-first walk of the roles that may list ``key`` (python-tuf's order)."""
    # (the delegation, or None for targets; the role that delegates it and that role's name)
    stack: list[tuple[DelegatedRole | None, RoleFile | None, str]] = [(None, None, "")]
    visited: set[str] = set()
    while stack and len(visited) <= MAX_DELEGATIONS:
        role, parent, parent_name = stack.pop()
        name = "targets" if role is None else role.name
        if name in visited:
            continue
        role_file = targets if role is None or parent is None else delegated(parent, parent_name, role)
        visited.add(name)
        yield name, role_file
        children: list[tuple[DelegatedRole | None, RoleFile | None, str]] = []
        for child in policy.delegations_for(role_file, key, what(name)):
            children.append((child, role_file, name))
            if child.terminating:
                stack.clear()
                break
        stack.extend(reversed(children))


@dataclass
class Repo:
    """A verified repository."""

    meta: Source
    roots: list[RoleFile]  # trusted root first, newest last
    timestamp: RoleFile
    snapshot: RoleFile
    targets: RoleFile
    expired: list[str] = field(default_factory=list)
    now: int = 0
    safe: bool = True
    policy: Policy = TOUGH
    limits: Limits = field(default_factory=Limits)
    delegated: dict[str, RoleFile] = field(default_factory=dict)
    _loader: DelegationLoader | None = None

    @property
    def root(self) -> RoleFile:
        return self.roots[-1]

    @property
    def consistent(self) -> bool:
        return self.root.root(str(self.root.role)).consistent_snapshot

    @property
    def expires(self) -> int:
        """The earliest expiry of the four top-level roles (targets are readable until then)."""
        return min(r.expires for r in (self.root, self.timestamp, self.snapshot, self.targets))

    def cache_metadata(self, store: Store) -> None:
        """tough's ``Repository::cache`` as updog runs it before an update: every root ``1..N``
        (the ones below the trusted root fetched now), timestamp, snapshot, targets and delegated
        roles under the names the repository uses, so the migrator can load them offline."""
        first = self.roots[0].version
        lower: list[tuple[str, bytes]] = []
        for version in range(1, first):
            name = f"{version}.root.json"
            raw = self.meta.read(name, self.limits.root)
            if raw is None:
                raise MetadataError(f"{self.meta.describe(name)}: not found (needed to cache the whole root chain)")
            lower.append((name, raw))
        files = [*lower, *((f"{r.version}.root.json", r.raw) for r in self.roots)]
        files += [(name, f.raw) for f, name in self.role_files()]
        files += [(role_file_name(name, f.version, self.consistent), f.raw) for name, f in self.delegated.items()]
        for name, raw in files:  # timestamp.json is what makes the rest reachable: it goes last
            if name != TIMESTAMP:
                store.put(name, raw)
        store.put(TIMESTAMP, self.timestamp.raw)

    def role_files(self) -> list[tuple[RoleFile, str]]:
        """Timestamp, snapshot and targets with their file names in the metadata dir."""
        return [(f, role_file_name(f.role, f.version, self.consistent))
                for f in (self.timestamp, self.snapshot, self.targets)]

    def find(self, name: str) -> Target | None:
        """Look ``name`` up in targets and (pre-order, on demand) its delegations."""
        return find_target(self.targets, name, self.policy, self.what, self._delegated_role)

    def require(self, name: str) -> Target:
        target = self.find(name)
        if target is None:
            raise TargetError(f"target {name!r} is not listed in the repository at {self.meta.url}")
        return target

    def object_name(self, target: Target) -> str:
        """Where ``target`` is stored under the targets base URL."""
        return object_name(target, self.policy, self.consistent)

    def check_fresh(self) -> None:
        """Safe mode: targets are only read while every top-level role is unexpired."""
        if self.safe and self.now >= self.expires:
            role = min((self.root, self.timestamp, self.snapshot, self.targets), key=lambda r: r.expires)
            raise ExpiredError(f"{self.what(role.role) if role.role == 'targets' else role.role} metadata expired at "
                               f"{format_instant(role.expires)}; refusing to read targets")

    def what(self, role: str) -> str:
        """A role file as messages name it: its location."""
        version = self.targets.version if role == "targets" else self.delegated[role].version
        return self.meta.describe(role_file_name(role, version, self.consistent))

    def _delegated_role(self, parent: RoleFile, parent_name: str, role: DelegatedRole) -> RoleFile:
        if self._loader is None:
            raise MetadataError(f"{self.meta.url}: delegated role {role.name!r} cannot be loaded (no loader)")
        return self._loader.delegated_role(self, parent, parent_name, role)
