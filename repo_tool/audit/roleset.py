"""The role files one audit judges, and whether a node's load verified them (:class:`RoleSet`).

Most audits look at a repository the client load verified (:meth:`RoleSet.verified_by`).  When a
node refuses the repository the audit still looks at the files as stored: parsed and
shape-checked, *not* verified (:meth:`RoleSet.as_stored`, ``verified`` False), so that every other
problem is named too.  The checks take a RoleSet, never a :class:`~repo_tool.trust.lookup.Repo`,
and files as stored are never held as a ``Repo`` (the type that means "verified"): targets are
looked up, named and fetched through the trust layer's functions over role files
(:func:`~repo_tool.trust.lookup.find_target`, ``object_name``, ``fetch_target``).

Must not: verify, or decide anything about a file; read storage but through the trust layer's
target lookup and checked read.  No delegated role of files as stored is read: a lookup that
reaches one fails with a :class:`~repo_tool.trust.model.MetadataError` the checks report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from repo_tool.storage.base import Storage
from repo_tool.trust.delegations import DelegatedRole
from repo_tool.trust.model import MetadataError, RoleFile
from repo_tool.trust.verifier import (
    TOUGH,
    Repo,
    Target,
    fetch_target,
    find_target,
    object_name,
    role_file_name,
)

TopRoles = tuple[RoleFile, RoleFile, RoleFile]
"""Timestamp, snapshot and targets, in that order (the order a client loads them)."""


@dataclass(frozen=True)
class RoleSet:
    """Roots (oldest first), timestamp, snapshot, targets and delegated roles of one repository."""

    meta: Storage
    roots: list[RoleFile]
    timestamp: RoleFile
    snapshot: RoleFile
    targets: RoleFile
    verified: bool  # False: parsed as stored, a node refuses them
    delegated: Mapping[str, RoleFile] = field(default_factory=dict)
    _repo: Repo | None = field(default=None, repr=False, compare=False)  # the load's, when verified

    @classmethod
    def verified_by(cls, meta: Storage, repo: Repo) -> RoleSet:
        """The role files a client load verified."""
        return cls(meta, repo.roots, repo.timestamp, repo.snapshot, repo.targets, True, repo.delegated, repo)

    @classmethod
    def as_stored(cls, meta: Storage, roots: list[RoleFile], top: TopRoles) -> RoleSet:
        """Timestamp, snapshot and targets (``top``) parsed as stored, not verified (no delegated role is read)."""
        return cls(meta, roots, *top, False)

    @property
    def root(self) -> RoleFile:
        return self.roots[-1]

    @property
    def consistent(self) -> bool:
        return self.root.root(self.meta.describe(f"{self.root.version}.root.json")).consistent_snapshot

    def role_files(self) -> list[tuple[RoleFile, str]]:
        """Timestamp, snapshot and targets with their file names in the metadata dir."""
        return [(f, role_file_name(f.role, f.version, self.consistent))
                for f in (self.timestamp, self.snapshot, self.targets)]

    def find(self, name: str) -> Target | None:
        """The target ``name`` as a client resolves it (in targets, then delegated roles)."""
        if self._repo is not None:
            return self._repo.find(name)
        return find_target(self.targets, name, TOUGH, self._what, _not_read)

    def object_name(self, target: Target) -> str:
        """Where ``target`` is stored under the targets base URL."""
        return object_name(target, TOUGH, self.consistent)

    def read_target(self, store: Storage, name: str) -> bytes | None:
        """A small listed target's bytes, checked against its listed length and hashes; None if not listed."""
        target = self.find(name)
        return None if target is None else fetch_target(store, target, TOUGH, self.consistent)

    def _what(self, role: str) -> str:
        """A role file of the set as messages name it (only targets: no delegated role is read)."""
        return self.meta.describe(role_file_name(role, self.targets.version, self.consistent))


def _not_read(parent: RoleFile, parent_name: str, role: DelegatedRole) -> RoleFile:
    """Files as stored: a delegated role is not read (what delegates to it is not verified)."""
    raise MetadataError(f"delegated role {role.name!r} (delegated by {parent_name!r}) is not read: nodes "
                        "refuse this repository's metadata, so what it delegates cannot be looked up")
