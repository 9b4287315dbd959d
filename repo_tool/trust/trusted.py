"""The trusted set: each step of a TUF update as a pure function, bytes in, verified state out (SPEC §3.5).

The root chain (:func:`walk_roots`, the one walk the node, the tuf-client, the auditor and the
publisher use: the bytes of ``N+1.root.json`` come from a ``read`` callback), the timestamp with
its rollback checks, the snapshot and targets a listing names (length, hashes, signatures,
version), delegated roles as their delegation verifies them, expiry against a ``now`` the caller
read once.  Which client is imitated is the :class:`~repo_tool.trust.policy.Policy` passed in.

Nothing here fetches, stores or reads the clock: that is the shell, :mod:`repo_tool.trust.loader`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from repo_tool.core.instant import format_instant
from repo_tool.errors import UnreachableError, VerificationError
from repo_tool.trust.delegations import DelegatedRole, delegation_keys
from repo_tool.trust.metadata import verify_role
from repo_tool.trust.model import (
    MetadataError,
    MetaFile,
    RoleFile,
    ThresholdError,
    all_usable,
    is_int,
    meta_version,
    target_problem,
    targets_map,
)
from repo_tool.trust.policy import TOUGH, Policy
from repo_tool.trust.signatures import check_signatures

TIMESTAMP = "timestamp.json"


class RepoMissingError(VerificationError):
    """No repository at the location (``timestamp.json`` not found)."""


class ExpiredError(VerificationError):
    """Metadata is past its ``expires`` and the load is in Safe mode."""


class RollbackError(VerificationError):
    """Newer trusted metadata was seen before: the repository went back in time."""


def role_file_name(role: str, version: int, consistent: bool) -> str:
    """A role file's name in the metadata dir: ``timestamp.json`` always; the others (delegated
    roles percent-quoted) with a ``V.`` prefix in a consistent-snapshot repository."""
    base = f"{quote(role, safe='')}.json"
    return f"{version}.{base}" if consistent and role != "timestamp" else base


def expiry_problem(role_file: RoleFile, now: int) -> str | None:
    """Why ``role_file`` is no longer valid at ``now``, or None."""
    if now > role_file.expires:
        return f"{role_file.role} metadata expired at {format_instant(role_file.expires)}"
    return None


# --- the root chain ------------------------------------------------------------------------------


def verify_trusted_root(raw: bytes, what: str, policy: Policy = TOUGH) -> RoleFile:
    """Parse a trusted root and check that it meets its own root threshold."""
    root = policy.parse(raw, "root", what)
    verify_role(root, root.root(what), what)
    return root


def verify_next_root(current: RoleFile, raw: bytes, what: str, policy: Policy = TOUGH) -> RoleFile:
    """``raw`` must be version current+1, signed by a threshold of the old root and of itself."""
    new = policy.parse(raw, "root", what)
    typed = new.root(what)
    if new.version != current.version + 1:
        raise MetadataError(f"{what}: holds version {new.version}, expected {current.version + 1}")
    verify_role(new, current.root(what), f"{what} (signed by root v{current.version})")
    verify_role(new, typed, f"{what} (self-signed)")
    return new


@dataclass(frozen=True)
class RootWalk:
    """A walked chain: the roots trusted, oldest first, and what ended the walk (for messages)."""

    roots: list[RoleFile]
    ended: str

    @property
    def newest(self) -> RoleFile:
        return self.roots[-1]


@dataclass(frozen=True)
class RootFiles:
    """Where a root walk reads ``N+1.root.json``: ``read(name)`` gives a file's bytes or None when it
    is not there; ``describe(name)`` names it in messages, ``where`` the repository; ``cached(current,
    name)`` may supply an already held root (verified by the caller)."""

    read: Callable[[str], bytes | None]
    describe: Callable[[str], str] = str
    where: str = "the repository"
    cached: Callable[[RoleFile, str], RoleFile | None] | None = None


@dataclass(frozen=True)
class WalkBounds:
    """How far a root walk goes: at most ``max_updates`` new roots (past it tough fails and a
    standard client goes on with the newest so far); ``max_version`` stops it early (to recover a
    rotation whose new root was published but not its timestamp)."""

    max_updates: int
    max_version: int | None = None


def walk_roots(start: RoleFile, files: RootFiles, policy: Policy, bounds: WalkBounds,
               on_root: Callable[[RoleFile], None] | None = None) -> RootWalk:
    """Walk ``N+1.root.json`` from the verified root ``start`` (SPEC §3.5, TUF 5.3): each one
    exactly N+1, signed by a threshold of the old root and of itself.  A file that is not there ends
    the walk; an :class:`UnreachableError` from ``files.read`` ends it if
    ``policy.unreachable_ends_walk``, else it propagates.  ``on_root`` sees every root trusted,
    ``start`` first."""
    read, describe, where, cached = files.read, files.describe, files.where, files.cached
    max_updates, max_version = bounds.max_updates, bounds.max_version
    roots = [start]
    if on_root is not None:
        on_root(start)
    updates = 0
    ended = "the walk's end"
    while max_version is None or roots[-1].version < max_version:
        if policy.stops_root_walk(updates, max_updates):
            break
        name = f"{roots[-1].version + 1}.root.json"
        new = cached(roots[-1], name) if cached is not None else None
        if new is None:
            try:
                raw = read(name)
            except UnreachableError:  # a request that never reached the server ends the walk
                if not policy.unreachable_ends_walk:
                    raise
                ended = f"{name} could not be fetched"
                break
            if raw is None:
                ended = f"{name} is not available"
                break
            new = verify_next_root(roots[-1], raw, describe(name), policy)
        updates += 1
        if updates > max_updates:
            raise MetadataError(f"{where}: more than {max_updates} root updates")
        roots.append(new)
        if on_root is not None:
            on_root(new)
    return RootWalk(roots, ended)


def rotated_fast_forward_keys(old: RoleFile, new: RoleFile) -> bool:
    """``new`` changes the timestamp or snapshot keys of ``old``: what they signed is no longer
    trusted (TUF 5.3.11: recovery from a fast-forward attack, also when only the snapshot key was
    rotated)."""
    old_root, new_root = old.root(str(old.role)), new.root(str(new.role))
    return any(old_root.keyids(role) != new_root.keyids(role) for role in ("timestamp", "snapshot"))


# --- timestamp, snapshot, targets ------------------------------------------------------------------


def update_timestamp(root: RoleFile, raw: bytes, what: str, policy: Policy, trusted: RoleFile | None) -> RoleFile:
    """A new timestamp, verified by ``root`` and checked against the trusted one (if any): not older,
    and not listing an older snapshot.  The same version as trusted: the trusted one is kept."""
    timestamp = policy.parse(raw, "timestamp", what)
    verify_role(timestamp, root.root(what), what)
    if trusted is None:
        return timestamp
    if timestamp.version < trusted.version:
        raise RollbackError(f"{what}: version {timestamp.version} is older than the trusted version "
                            f"{trusted.version} (rollback attack?)")
    if timestamp.version == trusted.version:
        return trusted  # nothing new; keep what was trusted
    if meta_version(timestamp, "snapshot.json", "timestamp") < meta_version(trusted, "snapshot.json",
                                                                              "trusted timestamp"):
        raise RollbackError(f"{what}: lists an older snapshot than the trusted timestamp (rollback attack?)")
    return timestamp


def check_snapshot_rollback(old: RoleFile, new: RoleFile) -> None:
    """A new snapshot must list every role the trusted one lists (root aside), none of them older."""
    old_meta, new_meta = old.signed.get("meta"), new.signed.get("meta")
    if not isinstance(old_meta, dict) or not isinstance(new_meta, dict):
        return
    for name, entry in old_meta.items():
        if not isinstance(entry, dict) or name == "root.json":
            continue
        if name not in new_meta:
            raise RollbackError(f"snapshot version {new.version} no longer lists {name} (rollback attack?)")
        newer = new_meta[name].get("version") if isinstance(new_meta[name], dict) else None
        if is_int(newer) and is_int(entry.get("version")) and newer < entry["version"]:
            raise RollbackError(f"snapshot version {new.version} lists {name} version {newer}, older than the "
                                f"trusted {entry['version']} (rollback attack?)")


Verify = Callable[[RoleFile, str], None]


@dataclass(frozen=True)
class Listed:
    """A role file as its parent lists it: the listing (``meta``), the role (``snapshot``, ``targets``
    or ``delegated``), the file's name in messages (``what``) and the parent's (``parent_what``)."""

    meta: MetaFile
    role: str
    what: str
    parent_what: str


def accept_listed(raw: bytes, listed: Listed, policy: Policy, verify: Verify) -> RoleFile:
    """The role file a listing names, from ``raw``: its length (at most the listed one), its hashes,
    its signatures (``verify``) and the listed version."""
    listing, role, what, parent_what = listed.meta, listed.role, listed.what, listed.parent_what
    if listing.length is not None and len(raw) > listing.length:
        raise MetadataError(f"{what}: {len(raw)} bytes, more than the {listing.length} listed")
    if listing.hashes is not None:
        policy.check_hashes(raw, listing.hashes, what)
    role_file = policy.parse(raw, "snapshot" if role == "snapshot" else "targets", what)
    verify(role_file, what)
    if role_file.version != listing.version:
        raise MetadataError(f"{what}: version {role_file.version}, {parent_what} says {listing.version}")
    return role_file


def by_root(root: RoleFile) -> Verify:
    """Verification of a top-level role by ``root``."""
    def verify(role_file: RoleFile, what: str) -> None:
        verify_role(role_file, root.root(what), what)
    return verify


def by_delegation(parent: RoleFile, parent_name: str, role: DelegatedRole) -> Verify:
    """Verification of delegated role ``role.name`` as ``parent`` (role ``parent_name``) delegates it."""
    def verify(role_file: RoleFile, what: str) -> None:
        if role.keyids is None or role.threshold is None:
            raise MetadataError(f"{what}: delegation of {role.name!r} by {parent_name!r} needs keyids and a "
                                "threshold >= 1")
        keys = delegation_keys(parent, f"delegations of {parent_name}")
        result = check_signatures(role_file.signed_bytes, role_file.signatures, keys, role.keyids, role.threshold)
        if not result.verified:
            raise ThresholdError(f"{what}: signature threshold not met for delegated role {role.name!r} as "
                                 f"{parent_name!r} delegates it: {len(result.signed)} valid of {role.threshold} "
                                 "required")
    return verify


def delegation_key(parent_name: str, role: DelegatedRole) -> tuple[str, str, tuple[str, ...], str]:
    """What a delegation verdict depends on within one load: (role, delegator, key IDs, threshold)."""
    keyids: Any = role.entry.get("keyids")
    return (role.name, parent_name, tuple(map(repr, keyids)) if isinstance(keyids, list) else (),
            repr(role.entry.get("threshold")))


def check_tough_entries(role_file: RoleFile, policy: Policy, what: str) -> None:
    """Every entry of ``role_file``'s targets is one tough parses, checked without building a
    ``Target`` for each (a publish loads 10,000 of them)."""
    require_sha256 = policy.requires_sha256
    entries = targets_map(role_file)
    if all_usable(entries.values(), require_sha256):
        return
    # Every entry as listed (tough parses each one), also one whose name resolves to another's.
    for listed_as, entry in entries.items():
        found = target_problem(entry, require_sha256)
        if found is not None:
            raise MetadataError(f"{what}: target {listed_as!r}{found}")
