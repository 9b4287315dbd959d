"""The load's shell: fetch role files and feed them to the trusted set (SPEC §3.4/§3.5).

:func:`open_repo` (and its keyword spelling :func:`load_repo`) walks the root chain from a trusted
root, then the timestamp, the snapshot and targets it lists, and (eagerly for tough, on demand for
a standard client) delegated roles; every verification is a step of :mod:`repo_tool.trust.trusted`.
The bytes come from a :class:`~repo_tool.trust.lookup.Source` (the one read protocol,
:class:`~repo_tool.core.reader.Reader`); two optional stores change where
bytes come from, never what is trusted:

* ``cache`` (updog's metadata cache, versioned names): every verified file is written there, and a
  file whose sha256 the freshly verified parent lists, or a root that verifies in the chain, is
  taken from it instead of the network.
* ``state`` (a standard client's metadata dir, plain names ``root.json``, ``timestamp.json`` ...):
  the last trusted versions; a new one must not be older (rollback protection across runs, the root
  included: a chain that ends below the trusted root is refused), and keys rotated in root discard
  what they signed (fast-forward recovery, TUF 5.3.11).

The clock is never read here: ``now`` is passed in.  Nothing here knows a storage backend.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, TypedDict
from urllib.parse import quote

from repo_tool.errors import VerificationError
from repo_tool.trust.delegations import DelegatedRole
from repo_tool.trust.lookup import MAX_DELEGATIONS, Repo, Source, Store
from repo_tool.trust.model import Limits, MetadataError, RoleFile, meta_file
from repo_tool.trust.policy import TOUGH, Naming, Policy, policy_for
from repo_tool.trust.trusted import (
    TIMESTAMP,
    ExpiredError,
    Listed,
    RepoMissingError,
    RollbackError,
    RootFiles,
    Verify,
    WalkBounds,
    accept_listed,
    by_delegation,
    by_root,
    check_snapshot_rollback,
    check_tough_entries,
    delegation_key,
    expiry_problem,
    role_file_name,
    rotated_fast_forward_keys,
    update_timestamp,
    verify_next_root,
    verify_trusted_root,
    walk_roots,
)

if TYPE_CHECKING:  # typing.Unpack is Python 3.11
    from typing_extensions import Unpack

MAX_DELEGATION_ENTRIES = 4 * MAX_DELEGATIONS  # delegations in all (a role may be delegated more than once)


@dataclass(frozen=True)
class LoadOptions:
    """How a load runs, beyond which client it imitates.  ``max_root_version`` stops the root walk
    early; ``eager`` (None: the policy's) loads every delegated role now."""

    safe: bool = True
    trusted_root_name: str = "trusted root"
    max_root_version: int | None = None
    limits: Limits = field(default_factory=Limits)
    cache: Store | None = None
    state: Store | None = None
    eager: bool | None = None


class LoadKeywords(TypedDict, total=False):
    """:func:`load_repo`'s keywords: the fields of :class:`LoadOptions`, the policy by name, and
    ``unreachable_ends_walk`` (a change to that policy)."""

    safe: bool
    trusted_root_name: str
    max_root_version: int | None
    naming: Naming
    limits: Limits | None
    cache: Store | None
    state: Store | None
    eager: bool | None
    unreachable_ends_walk: bool | None


def load_repo(meta: Source, trusted_root: bytes | None, now: int, **keywords: Unpack[LoadKeywords]) -> Repo:
    """:func:`open_repo` with its policy and options as keywords.  ``trusted_root`` may be None only
    with a ``state`` holding ``root.json``."""
    policy = policy_for(keywords.get("naming", "tough"))
    ends_walk = keywords.get("unreachable_ends_walk")
    if ends_walk is not None and ends_walk != policy.unreachable_ends_walk:
        policy = replace(policy, unreachable_ends_walk=ends_walk)
    options = LoadOptions(
        safe=keywords.get("safe", True), trusted_root_name=keywords.get("trusted_root_name", "trusted root"),
        max_root_version=keywords.get("max_root_version"), limits=keywords.get("limits") or Limits(),
        cache=keywords.get("cache"), state=keywords.get("state"), eager=keywords.get("eager"),
    )
    return open_repo(meta, trusted_root, now, policy, options)


def open_repo(meta: Source, trusted_root: bytes | None, now: int, policy: Policy = TOUGH,
              options: LoadOptions = LoadOptions()) -> Repo:
    """Load and fully verify the repository at ``meta`` (SPEC §3.5) as ``policy``'s client does."""
    loader = _Loader(meta, now, policy, options)
    repo = loader.load(trusted_root)
    if options.eager if options.eager is not None else policy.eager:
        loader.load_all_delegations(repo)
    return repo


@dataclass(frozen=True)
class _Wanted:
    """A role file to fetch as ``parent`` lists it: ``role`` (``snapshot``, ``targets``, ``delegated``),
    the most read when the listing gives no length, its name in the listing (``role.json`` unless
    given), the trusted copy held (if any) and the trusted file it must not roll back from."""

    parent: RoleFile
    role: str
    default_limit: int
    listed_name: str | None = None
    trusted: RoleFile | None = None
    rollback_from: RoleFile | None = None


class _Loader:
    def __init__(self, meta: Source, now: int, policy: Policy, options: LoadOptions) -> None:
        self.meta = meta
        self.now = now
        self.policy = policy
        self.options = options
        self.limits = options.limits
        self.cache = options.cache
        self.state = options.state
        self.stored_root: RoleFile | None = None  # the state's trusted root (raised as the walk trusts newer ones)
        # (role, delegator, key IDs, threshold) of every delegation a loaded role was verified against
        self.verified_delegations: set[tuple[str, str, tuple[str, ...], str]] = set()
        self.expired: list[str] = []

    # -- expiry and storage --------------------------------------------------------------

    def _check_expiry(self, role_file: RoleFile, what: str) -> None:
        problem = expiry_problem(role_file, self.now)
        if problem is not None:
            if self.options.safe:
                raise ExpiredError(f"{what}: {problem}")
            self.expired.append(role_file.role)

    def _fetch(self, name: str, limit: int) -> bytes | None:
        raw = self.meta.read(name, limit)
        if raw is not None and len(raw) > limit:
            raise MetadataError(f"{self.meta.describe(name)}: larger than the {limit}-byte limit")
        return raw

    def _keep(self, cache_name: str, state_name: str, raw: bytes) -> None:
        if self.cache is not None:
            self.cache.put(cache_name, raw)
        if self.state is not None:
            self.state.put(state_name, raw)

    # -- root -----------------------------------------------------------------------------

    def _walk_roots(self, trusted_root: bytes | None) -> list[RoleFile]:
        start, trusted_name = trusted_root, self.options.trusted_root_name
        stored = self.state.get("root.json") if self.state is not None else None
        if stored is not None:  # only a root that verifies by itself counts (a damaged state is ignored)
            with contextlib.suppress(VerificationError):
                self.stored_root = verify_trusted_root(stored, "trusted root.json", self.policy)
        if stored is not None and start is None:  # a given trusted root (a node's shipped root) is the anchor
            start, trusted_name = stored, str(self.state.path / "root.json")  # type: ignore[union-attr]
        if start is None:
            raise VerificationError(f"no trusted root: {trusted_name} not found")
        first = verify_trusted_root(start, trusted_name, self.policy)
        files = RootFiles(lambda name: self._fetch(name, self.limits.root), self.meta.describe, self.meta.url,
                          self._cached_root)
        walk = walk_roots(first, files, self.policy,
                          WalkBounds(self.limits.max_root_updates, self.options.max_root_version), self._trust_root)
        self._check_root_rollback(walk.newest, walk.ended)
        return walk.roots

    def _check_root_rollback(self, newest: RoleFile, ended: str) -> None:
        """The chain ends at ``newest`` (however the walk ended): a trusted state that holds a newer
        root was sent back in time (the newer root files hidden, or their requests made to fail)."""
        if self.stored_root is not None and self.stored_root.version > newest.version:
            assert self.state is not None
            raise RollbackError(f"{self.meta.url}: root version {newest.version} is older than the trusted root "
                                f"version {self.stored_root.version} in {self.state.path / 'root.json'} ({ended}; "
                                "rollback attack?)")

    def _trust_root(self, root: RoleFile) -> None:
        """Cache ``root``; keep it, verified in the chain, as the state's trusted root (TUF 5.3.8),
        unless the state already trusts that version or a newer one (a walk from an older shipped
        root passes through roots the state is past: never step it back).  When ``root`` changes the
        timestamp or snapshot keys of the root trusted so far, the trusted timestamp and snapshot go."""
        if self.cache is not None:
            self.cache.put(f"{root.version}.root.json", root.raw)
        if self.state is None:
            return
        old = self.stored_root
        if old is not None and old.version >= root.version:
            return
        if old is not None and rotated_fast_forward_keys(old, root):
            self.state.remove(TIMESTAMP)
            self.state.remove("snapshot.json")
        self.state.put("root.json", root.raw)
        self.stored_root = root

    def _cached_root(self, current: RoleFile, name: str) -> RoleFile | None:
        raw = self.cache.get(name) if self.cache is not None else None
        if raw is None:
            return None
        try:
            return verify_next_root(current, raw, name, self.policy)
        except VerificationError:
            return None  # a stale or damaged cache entry: ask the server

    # -- the load ------------------------------------------------------------------------

    def load(self, trusted_root: bytes | None) -> Repo:
        roots = self._walk_roots(trusted_root)
        root = roots[-1]
        self._check_expiry(root, self.meta.describe(f"{root.version}.root.json"))
        consistent = root.root(str(root.role)).consistent_snapshot

        trusted_ts = self._trusted("timestamp", by_root(root))
        raw_ts = self._fetch(TIMESTAMP, self.limits.timestamp)
        if raw_ts is None:
            raise RepoMissingError(f"no repository at {self.meta.url}: {TIMESTAMP} not found")
        timestamp = update_timestamp(root, raw_ts, self.meta.describe(TIMESTAMP), self.policy, trusted_ts)
        self._check_expiry(timestamp, self.meta.describe(TIMESTAMP))
        if not self.policy.tough and self.state is not None:  # spec 5.4.5: trusted before the snapshot is
            self.state.put(TIMESTAMP, timestamp.raw)  # fetched, so a failure there keeps it (python-tuf)

        trusted_snapshot = self._trusted("snapshot", by_root(root))
        snapshot = self._listed(_Wanted(timestamp, "snapshot", self.limits.snapshot, trusted=trusted_snapshot,
                                        rollback_from=trusted_snapshot), consistent, by_root(root))
        trusted_targets = self._trusted("targets", by_root(root))
        targets = self._listed(_Wanted(snapshot, "targets", self.limits.targets, trusted=trusted_targets), consistent,
                               by_root(root))
        if self.policy.tough:  # tough parses every entry at load: length and sha256 are required
            check_tough_entries(targets, self.policy,
                                self.meta.describe(role_file_name("targets", targets.version, consistent)))
        if self.state is not None or self.cache is not None:
            self._keep(TIMESTAMP, TIMESTAMP, timestamp.raw)
        return Repo(self.meta, roots, timestamp, snapshot, targets, self.expired, self.now, self.options.safe,
                    self.policy, self.limits, {}, self)

    def _trusted(self, role: str, verify: Verify, name: str | None = None) -> RoleFile | None:
        """The stored trusted ``role`` (file ``name``) if it still verifies (keys rotated away make it
        untrusted: fast-forward recovery)."""
        raw = self.state.get(name or f"{role}.json") if self.state is not None else None
        if raw is None:
            return None
        what = f"trusted {role}.json" if name is None else role
        try:
            role_file = self.policy.parse(raw, "targets" if name is not None else role, what)
            verify(role_file, what)
        except VerificationError:
            return None
        return role_file

    def _listed(self, wanted: _Wanted, consistent: bool, verify: Verify) -> RoleFile:
        """Fetch the role file ``wanted.parent`` lists (snapshot from timestamp, targets and delegated
        roles from snapshot) and check it against the listing: length, hashes, version, signatures,
        no rollback from ``wanted.rollback_from``, expiry; only then is it kept."""
        parent, role, default_limit, listed_name = wanted.parent, wanted.role, wanted.default_limit, wanted.listed_name
        trusted, rollback_from = wanted.trusted, wanted.rollback_from
        listed = listed_name or f"{role}.json"
        parent_what = "timestamp" if parent.role == "timestamp" else f"snapshot v{parent.version}"
        listing = meta_file(parent, listed, parent_what)
        name = role_file_name(listed[: -len(".json")], listing.version, consistent)
        what = self.meta.describe(name)
        raw = None
        # Bytes already held locally are used when the parent's hash proves they are the listed ones
        # (or, for the trusted state, when they are the very version listed and still verify).
        if trusted is not None and trusted.version == listing.version and (
                listing.hashes is None or _sha256_ok(trusted.raw, listing.hashes)):
            raw = trusted.raw
        elif self.cache is not None and listing.hashes is not None:
            cached = self.cache.get(name)
            if cached is not None and _sha256_ok(cached, listing.hashes) and (
                    listing.length is None or len(cached) <= listing.length):
                raw = cached
        if raw is None:
            raw = self._fetch(name, listing.length if listing.length is not None else default_limit)
            if raw is None:
                raise MetadataError(f"{what}: not found (the repository is incomplete)")
        role_file = accept_listed(raw, Listed(listing, role, what, parent_what), self.policy, verify)
        if rollback_from is not None:  # before it is kept: a refused one must not become trusted
            check_snapshot_rollback(rollback_from, role_file)
        self._check_expiry(role_file, what)
        self._keep(name, role_file_name(listed[: -len(".json")], listing.version, consistent=False), raw)
        return role_file

    # -- delegations ---------------------------------------------------------------------

    def delegated_role(self, repo: Repo, parent: RoleFile, parent_name: str, role: DelegatedRole) -> RoleFile:
        """Role ``role.name`` as ``parent`` (role ``parent_name``) delegates it.  The file is fetched
        once, but it is verified against the delegation of the path in use every time: a role two
        roles delegate (a "diamond") has no authority on a path whose keys did not sign it (as tough,
        which verifies each delegation; python-tuf and the conformance suite ask the same).  Within one
        load a parent's file is fixed, so a verdict is kept per delegation (role, delegator, key IDs,
        threshold) and a lookup does not verify the same role against the same keys again."""
        name = role.name
        delegation = delegation_key(parent_name, role)
        verify = by_delegation(parent, parent_name, role)
        loaded = repo.delegated.get(name)
        if loaded is not None:
            if delegation not in self.verified_delegations:
                verify(loaded, repo.what(name))
                self.verified_delegations.add(delegation)
            return loaded
        listed = f"{name}.json"
        meta = repo.snapshot.signed.get("meta")
        if not isinstance(meta, dict) or listed not in meta:
            raise MetadataError(f"snapshot v{repo.snapshot.version} does not list delegated role {name!r}")
        trusted = self._trusted(name, verify, f"{quote(name, safe='')}.json")
        role_file = self._listed(_Wanted(repo.snapshot, "delegated", self.limits.targets, listed, trusted),
                                 repo.consistent, verify)
        repo.delegated[name] = role_file
        self.verified_delegations.add(delegation)
        return role_file

    def load_all_delegations(self, repo: Repo) -> None:
        """tough: every delegated role is fetched at load, and each may list only targets its
        paths cover.  Like tough, every delegation is checked, also a second one of a role already
        loaded (a "diamond"): its keys must have signed the role and its paths must cover what it lists."""
        todo: list[tuple[RoleFile, str]] = [(repo.targets, "targets")]
        seen = {"targets"}
        covered: set[tuple[str, str, str]] = set()  # (role, its paths, its hash prefixes) checked already
        entries = 0
        while todo:
            role_file, role_name = todo.pop(0)
            delegations = self.policy.delegations(role_file, repo.what(role_name))
            for child in delegations.roles if delegations is not None else ():
                name = child.name
                entries += 1
                if entries > MAX_DELEGATION_ENTRIES:  # each is checked against its role: bound the work
                    raise MetadataError(f"{self.meta.url}: more than {MAX_DELEGATION_ENTRIES} delegations")
                loaded = self.delegated_role(repo, role_file, role_name, child)
                coverage = (name, repr(child.entry.get("paths")), repr(child.entry.get("path_hash_prefixes")))
                if coverage not in covered:
                    for key in self.policy.listed_targets(loaded):
                        if not self.policy.covers(child, key):
                            raise MetadataError(f"{repo.what(name)}: lists {key!r}, outside the paths "
                                                f"{role_name!r} delegates to {name!r}")
                    covered.add(coverage)
                if name not in seen:
                    seen.add(name)
                    todo.append((loaded, name))
                    if len(seen) > MAX_DELEGATIONS + 1:
                        raise MetadataError(f"{self.meta.url}: more than {MAX_DELEGATIONS} delegated roles")


def _sha256_ok(raw: bytes, hashes: object) -> bool:
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        return False
    return hashlib.sha256(raw).hexdigest() == str(hashes["sha256"]).lower()
