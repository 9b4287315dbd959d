"""Which client is imitated: tough (updog) or a standard TUF client (python-tuf), as two policy objects.

Everything the two clients do differently is a field or a method of :class:`Policy`, and
:data:`TOUGH` and :data:`TUF` are the two instances: how target names resolve, which hashes are
required and checked, which targets entries are usable, whether a key ID may sign twice, how
delegated paths match, whether TAP 15 succinct roles are read, how far the root walk may go, and
whether an unreachable ``N+1.root.json`` ends the walk.  Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from repo_tool.trust.delegations import DelegatedRole, Delegations, delegations_of
from repo_tool.trust.metadata import check_unique_signatures
from repo_tool.trust.model import (
    MetadataError,
    RoleFile,
    TargetError,
    parse_role,
    targets_map,
)

Naming = Literal["tough", "tuf"]


@dataclass(frozen=True)
class Policy:
    """The behaviour of one client.  ``unreachable_ends_walk``: whether a request for ``N+1.root.json``
    that cannot reach the server ends the root walk (tough) or fails the load (python-tuf ends it only
    on 403/404: someone who can refuse one connection must not hide a root rotation; a publisher too
    must know the newest root).  ``eager``: load every delegated role at load time (tough)."""

    name: Naming
    unreachable_ends_walk: bool
    eager: bool

    @property
    def tough(self) -> bool:
        return self.name == "tough"

    # -- parsing and signatures ------------------------------------------------------------

    def parse(self, raw: bytes, role: str, what: str) -> RoleFile:
        """Parse a role file as this client would: a standard TUF client also refuses a file whose
        ``signatures`` name one key ID twice (tough counts that key once)."""
        role_file = parse_role(raw, role, what)
        if not self.tough:
            check_unique_signatures(role_file, what)
        return role_file

    def stops_root_walk(self, updates: int, max_updates: int) -> bool:
        """Spec 5.3.3: past the client's bound a standard client goes on with the newest root so
        far (python-tuf); tough walks on and fails past it (:func:`walk_roots`)."""
        return not self.tough and updates >= max_updates

    # -- names, hashes, entries -------------------------------------------------------------

    def resolve(self, name: str) -> str:
        return resolve_name(name) if self.tough else name

    def listed_targets(self, role_file: RoleFile) -> dict[str, tuple[str, Any]]:
        """Resolved name -> (name as listed, entry as received); built once per role file."""
        key = f"listed:{self.name}"
        listed: dict[str, tuple[str, Any]] | None = role_file.view(key)
        if listed is None:
            entries = targets_map(role_file)
            if self.tough:
                listed = {resolve_name(name): (name, entry) for name, entry in entries.items()}
            else:
                listed = {name: (name, entry) for name, entry in entries.items()}
            role_file.keep_view(key, listed)
        return listed

    @property
    def requires_sha256(self) -> bool:
        """A targets entry without a sha256 of 64 hex digits is unusable (updog), and so its whole file."""
        return self.tough

    def check_hashes(self, raw: bytes, hashes: object, what: str) -> None:
        """A listing's hashes against ``raw``: sha256 must match (tough requires it); a standard
        client checks every algorithm listed."""
        if not isinstance(hashes, dict) or not hashes:
            raise MetadataError(f"{what}: the listing's hashes are not an object")
        if self.tough and "sha256" not in hashes:
            raise MetadataError(f"{what}: the listing has no sha256 hash (tough requires sha256)")
        for algorithm in ["sha256"] if self.tough else list(hashes):
            expected = hashes[algorithm]
            try:
                actual = hashlib.new(algorithm, raw).hexdigest()
            except (ValueError, TypeError):
                raise MetadataError(f"{what}: unsupported hash algorithm {algorithm!r}") from None
            if not isinstance(expected, str) or actual != expected.lower():
                raise MetadataError(f"{what}: {algorithm} does not match the one listed")

    def object_name(self, name: str, hashes: dict[str, str], consistent: bool) -> str:
        """Where a target is stored under the targets base URL."""
        if not consistent:
            return name
        if self.tough:  # tough: the hash in front of the whole (resolved) name
            return f"{hashes['sha256']}.{name}"
        head, _, tail = name.rpartition("/")  # TUF: on the last path segment, first hash
        digest = next(iter(hashes.values()))
        return f"{head}/{digest}.{tail}" if head else f"{digest}.{tail}"

    # -- delegations -------------------------------------------------------------------------

    def delegations(self, role_file: RoleFile, what: str) -> Delegations | None:
        return delegations_of(role_file, what, succinct=not self.tough)

    def delegations_for(self, role_file: RoleFile, target: str, what: str) -> list[DelegatedRole]:
        """The delegations of ``role_file`` whose paths cover ``target``, in order; or (standard TUF
        only) the one hashed bin of ``succinct_roles`` (TAP 15) that ``target`` falls in, a terminating one."""
        delegations = self.delegations(role_file, what)
        if delegations is None:
            return []
        bins = delegations.succinct_roles
        if bins is None:
            return [role for role in delegations.roles if self.covers(role, target)]
        bits = bins.bit_length
        bin_number = int.from_bytes(hashlib.sha256(target.encode("utf-8")).digest()[:4], "big") >> (32 - bits)
        name = f"{bins.name_prefix}-{bin_number:0{len(f'{2 ** bits - 1:x}')}x}"
        return [DelegatedRole.of({**bins.entry, "name": name, "terminating": True})]

    def covers(self, role: DelegatedRole, target: str) -> bool:
        if role.paths is not None:
            if self.tough:  # globset: '*' also matches '/'
                return any(fnmatch.fnmatchcase(target, p) for p in role.paths)
            segments = target.split("/")
            for pattern in role.paths:
                parts = pattern.split("/")
                if len(parts) == len(segments) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts)):
                    return True
            return False
        if role.path_hash_prefixes is not None:
            digest = hashlib.sha256(target.encode("utf-8")).hexdigest()
            return any(digest.startswith(p) for p in role.path_hash_prefixes)
        return False


TOUGH = Policy("tough", unreachable_ends_walk=True, eager=True)
TUF = Policy("tuf", unreachable_ends_walk=False, eager=False)
# tough's rules, except that a root request that cannot reach the server fails instead of ending the
# walk: the publisher must know the newest root before it signs, and the auditor reports it.
TOUGH_STRICT_WALK = Policy("tough", unreachable_ends_walk=False, eager=True)


def policy_for(naming: Naming | Policy) -> Policy:
    """The policy a ``naming`` string (the old spelling) or a policy names."""
    if isinstance(naming, Policy):
        return naming
    return TOUGH if naming == "tough" else TUF


def resolve_name(name: str) -> str:
    """tough's ``TargetName``: ``.`` and empty segments dropped, ``..`` pops (never above the top)."""
    if "/" not in name and name not in ("", ".", ".."):
        return name  # a plain file name, as nearly every target is (10,000 of them load in a publish)
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise TargetError(f"target name {name!r} resolves to nothing")
    return "/".join(parts)
