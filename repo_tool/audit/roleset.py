"""The role files one audit judges, and whether a node's load verified them (:class:`RoleSet`).

Most audits look at a repository the client load verified (:meth:`RoleSet.verified_by`).  When a
node refuses the repository the audit still looks at the files as stored: parsed and
shape-checked, *not* verified (:meth:`RoleSet.as_stored`, ``verified`` False), so that every other
problem is named too.  The checks take a RoleSet, never a :class:`~repo_tool.trust.verifier.Repo`,
so nothing in the audit holds unverified files under the type that means "verified".

Must not: verify, or decide anything about a file; read storage but through the trust layer's
target lookup and checked read.  The one place a ``Repo`` is built from unverified files is
:func:`_lookup_index`, private to this module: the trust layer has no target lookup over role files
that are not verified (what it would need is said there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from repo_tool.storage.base import Storage
from repo_tool.trust.metadata import RoleFile
from repo_tool.trust.verifier import Repo, Target, read_target

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
    _index: Repo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def verified_by(cls, meta: Storage, repo: Repo) -> RoleSet:
        """The role files a client load verified."""
        return cls(meta, repo.roots, repo.timestamp, repo.snapshot, repo.targets, True, repo.delegated, repo)

    @classmethod
    def as_stored(cls, meta: Storage, roots: list[RoleFile], top: TopRoles, now: int) -> RoleSet:
        """Timestamp, snapshot and targets (``top``) parsed as stored, not verified (no delegated role is read)."""
        return cls(meta, roots, *top, False, _index=_lookup_index(meta, roots, top, now))

    @property
    def root(self) -> RoleFile:
        return self.roots[-1]

    @property
    def consistent(self) -> bool:
        return self._repo().consistent

    def role_files(self) -> list[tuple[RoleFile, str]]:
        """Timestamp, snapshot and targets with their file names in the metadata dir."""
        return self._repo().role_files()

    def find(self, name: str) -> Target | None:
        """The target ``name`` as a client resolves it (in targets, then delegated roles)."""
        return self._repo().find(name)

    def object_name(self, target: Target) -> str:
        """Where ``target`` is stored under the targets base URL."""
        return self._repo().object_name(target)

    def read_target(self, store: Storage, name: str) -> bytes | None:
        """A small listed target's bytes, checked against its listed length and hashes; None if not listed."""
        return read_target(self._repo(), store, name)

    def _repo(self) -> Repo:
        assert self._index is not None  # both constructors set it
        return self._index


def _lookup_index(meta: Storage, roots: list[RoleFile], top: TopRoles, now: int) -> Repo:
    """A ``Repo`` over unverified files, used only to look targets up and name files (as the audit did).

    What the trust layer should offer instead: target lookup over a targets role and its delegations
    (``find(targets, name, naming)``), ``object_name(target, consistent, naming)`` and
    ``fetch_target`` taking those, none of them implying that the role files were verified."""
    return Repo(meta, roots, *top, [], now, False)
