"""The TUF client: load and verify a repository as tough (updog) or a standard TUF client does.

One module used by the publisher (verified load of the live repo), the node
client and the auditor.  It follows SPEC §3.4/§3.5:

* the trusted root verifies itself; ``N+1.root.json`` is walked (exactly N+1,
  signed by a threshold of the old root and of itself; 403/404/410, or a
  request that cannot even start, ends the walk; past ``max_root_updates``
  tough fails, a standard client goes on with the newest root so far);
* ``timestamp.json``, then the snapshot and targets it lists, each checked
  against the listing's length (an upper bound while reading), sha256 and
  version, each signature threshold met, each expiry checked (Safe mode);
* delegated targets roles (only foreign repos have them): tough loads them all
  at load time and refuses a role listing a target outside its paths; a
  standard client walks them on demand (pre-order, ``terminating`` honoured);
* signatures are checked over the canonical JSON of ``signed`` exactly as
  received, so fractional-second ``expires``, ``keyid_hash_algorithms`` and
  other fields python-tuf would drop or refuse keep verifying as tough does.

Two optional local stores change where bytes come from, never what is trusted:

* ``cache`` (updog's metadata cache, versioned names): every verified file is
  written there, and a file whose sha256 the freshly verified parent lists, or
  a root that verifies in the chain, is taken from it instead of the network.
* ``state`` (a standard client's metadata dir, plain names ``root.json``,
  ``timestamp.json`` ...): the last trusted versions; a new one must not be
  older (rollback protection across runs, the root included: a chain that
  ends below the trusted root is refused), and keys rotated in root discard
  what they signed; a new timestamp or snapshot key discards the trusted
  timestamp and snapshot (fast-forward recovery, TUF 5.3.11).

Size: about 880 lines, four concerns in one module (the trust state machine, ``Store``,
target lookup with delegations, target fetch).  It stays whole until the architecture issue (16)
splits it into a pure trusted set, its stores and its lookup, with the tough and standard-TUF
behaviours as policy objects instead of the ``naming`` string passed through.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

from repo_tool.core.instant import format_instant
from repo_tool.errors import UnreachableError, VerificationError
from repo_tool.trust.keys import keyid_of, tough_key_problem
from repo_tool.trust.metadata import (
    MAX_ROOT_UPDATES,
    MIB,
    TOP_ROLES,
    MetadataError,
    RoleFile,
    ThresholdError,
    check_root_shape,
    check_unique_signatures,
    parse_role,
    valid_signers,
    verify_role,
)
from repo_tool.trust.tufjson import canonical

TIMESTAMP = "timestamp.json"
MAX_DELEGATIONS = 32
MAX_DELEGATION_ENTRIES = 4 * MAX_DELEGATIONS  # delegations in all (a role may be delegated more than once)
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
Naming = Literal["tough", "tuf"]


class RepoMissingError(VerificationError):
    """No repository at the location (``timestamp.json`` not found)."""


class ExpiredError(VerificationError):
    """Metadata is past its ``expires`` and the load is in Safe mode."""


class RollbackError(VerificationError):
    """Newer trusted metadata was seen before: the repository went back in time."""


class TargetError(VerificationError):
    """A target is not listed, or its listing cannot be used."""


class Source(Protocol):
    """Where role files come from: a storage location, or a node's HTTP/file base URL."""

    url: str

    def read(self, name: str, limit: int | None = None) -> bytes | None: ...

    def describe(self, name: str) -> str: ...


@dataclass(frozen=True)
class Limits:
    """tough's default ``Limits`` (SPEC §9.5): the most a client downloads per role file."""

    root: int = MIB
    timestamp: int = MIB
    snapshot: int = MIB  # only when timestamp lists no length
    targets: int = 10 * MIB  # only when snapshot lists no length (also for delegated roles)
    max_root_updates: int = MAX_ROOT_UPDATES


class Store(Protocol):
    """A local store of metadata files by single-segment name (updog's cache, a client's state)."""

    path: Path

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, raw: bytes) -> None: ...

    def remove(self, name: str) -> None: ...


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
    naming: Naming = "tough"
    limits: Limits = field(default_factory=Limits)
    delegated: dict[str, RoleFile] = field(default_factory=dict)
    _loader: _Loader | None = None

    @property
    def root(self) -> RoleFile:
        return self.roots[-1]

    @property
    def consistent(self) -> bool:
        return self.root.signed.get("consistent_snapshot") is True

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
        key = resolve_name(name) if self.naming == "tough" else name
        for role_name, role_file in self._walk(key):
            listed = _listed_targets(role_file, self.naming)
            if key in listed:
                return _target(key, listed[key], role_file, role_name, self.naming, self._what(role_name))
        return None

    def require(self, name: str) -> Target:
        target = self.find(name)
        if target is None:
            raise TargetError(f"target {name!r} is not listed in the repository at {self.meta.url}")
        return target

    def object_name(self, target: Target) -> str:
        """Where ``target`` is stored under the targets base URL."""
        if not self.consistent:
            return target.name
        if self.naming == "tough":  # tough: the hash in front of the whole (resolved) name
            return f"{target.sha256}.{target.name}"
        head, _, tail = target.name.rpartition("/")  # TUF: on the last path segment, first hash
        digest = next(iter(target.hashes.values()))
        return f"{head}/{digest}.{tail}" if head else f"{digest}.{tail}"

    def check_fresh(self) -> None:
        """Safe mode: targets are only read while every top-level role is unexpired."""
        if self.safe and self.now >= self.expires:
            role = min((self.root, self.timestamp, self.snapshot, self.targets), key=lambda r: r.expires)
            raise ExpiredError(f"{self._what(role.role) if role.role == 'targets' else role.role} metadata expired at "
                               f"{format_instant(role.expires)}; refusing to read targets")

    def _what(self, role: str) -> str:
        version = self.targets.version if role == "targets" else self.delegated[role].version
        return self.meta.describe(role_file_name(role, version, self.consistent))

    def _walk(self, key: str) -> Iterator[tuple[str, RoleFile]]:
        """Pre-order depth-first walk of the roles that may list ``key`` (python-tuf's order);
        delegated roles are loaded as the walk reaches them."""
        # (role name, its delegation entry, the role that delegates it and that role's name)
        stack: list[tuple[str, dict[str, Any] | None, RoleFile | None, str]] = [("targets", None, None, "")]
        visited: set[str] = set()
        while stack and len(visited) <= MAX_DELEGATIONS:
            name, entry, parent, parent_name = stack.pop()
            if name in visited:
                continue
            if parent is None:
                role_file = self.targets
            else:
                assert self._loader is not None and entry is not None
                role_file = self._loader.delegated_role(self, name, parent, parent_name, entry)
            visited.add(name)
            yield name, role_file
            children: list[tuple[str, dict[str, Any] | None, RoleFile | None, str]] = []
            for child in _delegations_for(role_file, key, self.naming, self._what(name)):
                children.append((child["name"], child, role_file, name))
                if child.get("terminating") is True:
                    stack.clear()
                    break
            stack.extend(reversed(children))


# --- helpers on role files ---------------------------------------------------------------


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


def role_file_name(role: str, version: int, consistent: bool) -> str:
    """A role file's name in the metadata dir: ``timestamp.json`` always; the others (delegated
    roles percent-quoted) with a ``V.`` prefix in a consistent-snapshot repository."""
    base = f"{quote(role, safe='')}.json"
    return f"{version}.{base}" if consistent and role != "timestamp" else base


def _listed_targets(role_file: RoleFile, naming: Naming) -> dict[str, tuple[str, Any]]:
    listed = role_file.signed.get("targets")
    if not isinstance(listed, dict):
        raise MetadataError(f"{role_file.role} metadata: 'targets' is not an object")
    if naming != "tough":
        return {name: (name, entry) for name, entry in listed.items()}
    return {resolve_name(name): (name, entry) for name, entry in listed.items()}


def _entry_problem(entry: Any, naming: Naming) -> str | None:
    """What makes a targets entry unusable (tough refuses the whole file over it), or None.
    Entries come from JSON, so ``type(x) is int`` is an int that is not a bool."""
    if type(entry) is not dict:
        return " is not an object"
    length, hashes = entry.get("length"), entry.get("hashes")
    if type(length) is not int or length < 0:
        return " has no valid length"
    if type(hashes) is not dict or not hashes or not all(type(value) is str for value in hashes.values()):
        return " has no valid hashes"
    if naming == "tough":
        sha256 = hashes.get("sha256")
        if sha256 is None:
            return " has no sha256 hash (updog requires sha256)"
        if not _SHA256_HEX.fullmatch(sha256):
            return f": sha256 {sha256!r} is not 64 hex digits (tough rejects the file)"
    return None


def _target(key: str, listed: tuple[str, Any], role_file: RoleFile, role: str, naming: Naming, what: str) -> Target:
    listed_as, entry = listed
    problem = _entry_problem(entry, naming)
    if problem is not None:
        raise MetadataError(f"{what}: target {listed_as!r}{problem}")
    hashes = entry["hashes"]
    return Target(key, listed_as, entry["length"], {k: v.lower() for k, v in hashes.items()}, entry.get("custom"),
                  role)


def _check_tough_entries(role_file: RoleFile, what: str) -> None:
    """Every entry of ``role_file``'s targets is one tough parses, checked without building a
    ``Target`` for each (a publish loads 10,000 of them)."""
    for listed_as, entry in _listed_targets(role_file, "tough").values():
        problem = _entry_problem(entry, "tough")
        if problem is not None:
            raise MetadataError(f"{what}: target {listed_as!r}{problem}")


def _delegated_roles(role_file: RoleFile, what: str) -> list[dict[str, Any]]:
    """The delegations of ``role_file``.  A name delegated twice by one role is refused, as tough
    (``DelegatedRolesNotConsistent``) and python-tuf refuse it; so is an empty name or a top-level
    role's (python-tuf refuses those; its file would stand where the client keeps that role)."""
    delegations = role_file.signed.get("delegations")
    if delegations is None:
        return []
    roles = delegations.get("roles") if isinstance(delegations, dict) else None
    if not isinstance(roles, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in roles):
        raise MetadataError(f"{what}: delegations.roles must be a list of named roles")
    names: set[str] = set()
    for role in roles:
        name = role["name"]
        if not name or name in TOP_ROLES:
            raise MetadataError(f"{what}: a delegated role cannot be named {name!r}")
        if name in names:
            raise MetadataError(f"{what}: delegates {name!r} more than once")
        names.add(name)
    return roles


def _delegations_for(role_file: RoleFile, target: str, naming: Naming, what: str) -> list[dict[str, Any]]:
    """The delegations of ``role_file`` whose paths cover ``target``, in order; or (standard TUF only)
    the one hashed bin of ``succinct_roles`` (TAP 15) that ``target`` falls in, a terminating one."""
    delegations = role_file.signed.get("delegations")
    if naming != "tuf" or not isinstance(delegations, dict) or "succinct_roles" not in delegations:
        return [role for role in _delegated_roles(role_file, what) if _covers(role, target, naming)]
    succinct = delegations["succinct_roles"]
    bits, prefix = (succinct.get(k) if isinstance(succinct, dict) else None for k in ("bit_length", "name_prefix"))
    if "roles" in delegations or not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 32 \
            or not isinstance(prefix, str):
        raise MetadataError(f"{what}: succinct_roles needs a bit_length of 1..32 and a name_prefix, and no roles")
    bin_number = int.from_bytes(hashlib.sha256(target.encode("utf-8")).digest()[:4], "big") >> (32 - bits)
    return [{**succinct, "name": f"{prefix}-{bin_number:0{len(f'{2 ** bits - 1:x}')}x}", "terminating": True}]


def _covers(role: dict[str, Any], target: str, naming: Naming) -> bool:
    paths, prefixes = role.get("paths"), role.get("path_hash_prefixes")
    if isinstance(paths, list):
        if naming == "tough":  # globset: '*' also matches '/'
            return any(isinstance(p, str) and fnmatch.fnmatchcase(target, p) for p in paths)
        segments = target.split("/")
        for pattern in paths:
            if not isinstance(pattern, str):
                continue
            parts = pattern.split("/")
            if len(parts) == len(segments) and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts)):
                return True
        return False
    if isinstance(prefixes, list):
        digest = hashlib.sha256(target.encode("utf-8")).hexdigest()
        return any(isinstance(p, str) and digest.startswith(p) for p in prefixes)
    return False


def check_hashes(raw: bytes, hashes: object, naming: Naming, what: str) -> None:
    """A listing's hashes against ``raw``: sha256 must match (tough requires it); a standard
    client checks every algorithm listed."""
    if not isinstance(hashes, dict) or not hashes:
        raise MetadataError(f"{what}: the listing's hashes are not an object")
    if naming == "tough" and "sha256" not in hashes:
        raise MetadataError(f"{what}: the listing has no sha256 hash (tough requires sha256)")
    names = ["sha256"] if naming == "tough" else list(hashes)
    for algorithm in names:
        expected = hashes[algorithm]
        try:
            actual = hashlib.new(algorithm, raw).hexdigest()
        except (ValueError, TypeError):
            raise MetadataError(f"{what}: unsupported hash algorithm {algorithm!r}") from None
        if not isinstance(expected, str) or actual != expected.lower():
            raise MetadataError(f"{what}: {algorithm} does not match the one listed")


# --- loading -----------------------------------------------------------------------------


def parse_as(raw: bytes, role: str, what: str, naming: Naming) -> RoleFile:
    """Parse a role file as the client ``naming`` names would: a standard TUF client also refuses a
    file whose ``signatures`` name one key ID twice (tough counts that key once)."""
    role_file = parse_role(raw, role, what)
    if naming == "tuf":
        check_unique_signatures(role_file, what)
    return role_file


def verify_trusted_root(raw: bytes, what: str, naming: Naming = "tough") -> RoleFile:
    """Parse a trusted root and check that it meets its own root threshold."""
    root = parse_as(raw, "root", what, naming)
    check_root_shape(root.signed, what)
    verify_role(root, root.signed, what)
    return root


def verify_next_root(current: RoleFile, raw: bytes, what: str, naming: Naming = "tough") -> RoleFile:
    """``raw`` must be version current+1, signed by a threshold of the old root and of itself."""
    new = parse_as(raw, "root", what, naming)
    check_root_shape(new.signed, what)
    if new.version != current.version + 1:
        raise MetadataError(f"{what}: holds version {new.version}, expected {current.version + 1}")
    verify_role(new, current.signed, f"{what} (signed by root v{current.version})")
    verify_role(new, new.signed, f"{what} (self-signed)")
    return new


def load_repo(
    meta: Source,
    trusted_root: bytes | None,
    now: int,
    safe: bool = True,
    trusted_root_name: str = "trusted root",
    max_root_version: int | None = None,
    *,
    naming: Naming = "tough",
    limits: Limits | None = None,
    cache: Store | None = None,
    state: Store | None = None,
    eager: bool | None = None,
    unreachable_ends_walk: bool | None = None,
) -> Repo:
    """Load and fully verify the repository at ``meta`` (SPEC §3.5).

    ``trusted_root`` may be None only with a ``state`` holding ``root.json``.
    ``max_root_version`` stops the root walk early (to recover a rotation whose
    new root was published but not its timestamp).  ``eager`` loads every
    delegated role now (tough's behaviour; the default in tough naming).  ``unreachable_ends_walk``:
    whether a request for ``N+1.root.json`` that cannot reach the server ends the walk (tough, so the
    default in tough naming) or fails the load (python-tuf ends it only on 403/404: someone who can
    refuse one connection must not hide a root rotation; a publisher too must know the newest root)."""
    ends_walk = naming == "tough" if unreachable_ends_walk is None else unreachable_ends_walk
    loader = _Loader(meta, now, safe, naming, limits or Limits(), cache, state, ends_walk)
    repo = loader.load(trusted_root, trusted_root_name, max_root_version)
    if eager if eager is not None else naming == "tough":
        loader.load_all_delegations(repo)
    return repo


class _Loader:
    def __init__(self, meta: Source, now: int, safe: bool, naming: Naming, limits: Limits,
                 cache: Store | None, state: Store | None, unreachable_ends_walk: bool) -> None:
        self.meta = meta
        self.now = now
        self.safe = safe
        self.naming = naming
        self.limits = limits
        self.cache = cache
        self.state = state
        self.stored_root: RoleFile | None = None  # the state's trusted root (raised as the walk trusts newer ones)
        # (role, delegator, key IDs, threshold) of every delegation a loaded role was verified against
        self.verified_delegations: set[tuple[str, str, tuple[str, ...], str]] = set()
        self.expired: list[str] = []
        self.unreachable_ends_walk = unreachable_ends_walk

    # -- expiry and storage --------------------------------------------------------------

    def _check_expiry(self, role_file: RoleFile, what: str) -> None:
        if self.now > role_file.expires:
            if self.safe:
                raise ExpiredError(f"{what}: {role_file.role} metadata expired at {format_instant(role_file.expires)}")
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

    def _walk_roots(self, trusted_root: bytes | None, trusted_name: str, max_version: int | None) -> list[RoleFile]:
        start = trusted_root
        stored = self.state.get("root.json") if self.state is not None else None
        if stored is not None:  # only a root that verifies by itself counts (a damaged state is ignored)
            with contextlib.suppress(VerificationError):
                self.stored_root = verify_trusted_root(stored, "trusted root.json", self.naming)
        if stored is not None and start is None:  # a given trusted root (a node's shipped root) is the anchor
            start, trusted_name = stored, str(self.state.path / "root.json")  # type: ignore[union-attr]
        if start is None:
            raise VerificationError(f"no trusted root: {trusted_name} not found")
        roots = [verify_trusted_root(start, trusted_name, self.naming)]
        if self.cache is not None:
            self.cache.put(f"{roots[0].version}.root.json", start)
        self._trust_root(roots[0])
        updates = 0
        ended = "the walk's end"
        while max_version is None or roots[-1].version < max_version:
            if self.naming == "tuf" and updates >= self.limits.max_root_updates:
                break  # spec 5.3.3: past the client's bound, go on with the newest root so far (python-tuf)
            name = f"{roots[-1].version + 1}.root.json"
            new = self._cached_root(roots[-1], name)
            if new is None:
                try:
                    raw = self._fetch(name, self.limits.root)
                except UnreachableError:  # a request that never reached the server ends the walk
                    if not self.unreachable_ends_walk:
                        raise
                    ended = f"{name} could not be fetched"
                    break
                if raw is None:
                    ended = f"{name} is not available"
                    break
                new = verify_next_root(roots[-1], raw, self.meta.describe(name), self.naming)
            updates += 1
            if updates > self.limits.max_root_updates:
                raise MetadataError(f"{self.meta.url}: more than {self.limits.max_root_updates} root updates")
            roots.append(new)
            if self.cache is not None:
                self.cache.put(name, new.raw)
            self._trust_root(new)
        self._check_root_rollback(roots[-1], ended)
        return roots

    def _check_root_rollback(self, newest: RoleFile, ended: str) -> None:
        """The chain ends at ``newest`` (however the walk ended): a trusted state that holds a newer
        root was sent back in time (the newer root files hidden, or their requests made to fail)."""
        if self.stored_root is not None and self.stored_root.version > newest.version:
            assert self.state is not None
            raise RollbackError(f"{self.meta.url}: root version {newest.version} is older than the trusted root "
                                f"version {self.stored_root.version} in {self.state.path / 'root.json'} ({ended}; "
                                "rollback attack?)")

    def _trust_root(self, root: RoleFile) -> None:
        """Keep ``root``, verified in the chain, as the state's trusted root (TUF 5.3.8), unless the
        state already trusts that version or a newer one (a walk from an older shipped root passes
        through roots the state is past: never step it back).  When ``root`` changes the timestamp or
        snapshot keys of the root trusted so far, the trusted timestamp and snapshot go first (TUF
        5.3.11: recovery from a fast-forward attack, also when only the snapshot key was rotated)."""
        if self.state is None:
            return
        old = self.stored_root
        if old is not None and old.version >= root.version:
            return
        if old is not None and any(
                _role_keyids(old, role) != _role_keyids(root, role) for role in ("timestamp", "snapshot")):
            self.state.remove(TIMESTAMP)
            self.state.remove("snapshot.json")
        self.state.put("root.json", root.raw)
        self.stored_root = root

    def _cached_root(self, current: RoleFile, name: str) -> RoleFile | None:
        raw = self.cache.get(name) if self.cache is not None else None
        if raw is None:
            return None
        try:
            return verify_next_root(current, raw, name, self.naming)
        except VerificationError:
            return None  # a stale or damaged cache entry: ask the server

    # -- the load ------------------------------------------------------------------------

    def load(self, trusted_root: bytes | None, trusted_name: str, max_root_version: int | None) -> Repo:
        roots = self._walk_roots(trusted_root, trusted_name, max_root_version)
        root = roots[-1]
        self._check_expiry(root, self.meta.describe(f"{root.version}.root.json"))
        consistent = root.signed.get("consistent_snapshot") is True

        trusted_ts = self._trusted("timestamp", root)
        raw_ts = self._fetch(TIMESTAMP, self.limits.timestamp)
        if raw_ts is None:
            raise RepoMissingError(f"no repository at {self.meta.url}: {TIMESTAMP} not found")
        timestamp = parse_as(raw_ts, "timestamp", self.meta.describe(TIMESTAMP), self.naming)
        verify_role(timestamp, root.signed, self.meta.describe(TIMESTAMP))
        if trusted_ts is not None:
            if timestamp.version < trusted_ts.version:
                raise RollbackError(f"{self.meta.describe(TIMESTAMP)}: version {timestamp.version} is older than "
                                    f"the trusted version {trusted_ts.version} (rollback attack?)")
            if timestamp.version == trusted_ts.version:
                timestamp = trusted_ts  # nothing new; keep what was trusted
            elif _meta_version(timestamp, "snapshot.json", "timestamp") < _meta_version(
                    trusted_ts, "snapshot.json", "trusted timestamp"):
                raise RollbackError(f"{self.meta.describe(TIMESTAMP)}: lists an older snapshot than the trusted "
                                    f"timestamp (rollback attack?)")
        self._check_expiry(timestamp, self.meta.describe(TIMESTAMP))
        if self.naming == "tuf" and self.state is not None:  # spec 5.4.5: trusted before the snapshot is
            self.state.put(TIMESTAMP, timestamp.raw)  # fetched, so a failure there keeps it (python-tuf)

        trusted_snapshot = self._trusted("snapshot", root)
        # The rollback check comes before the snapshot is kept: a refused one must not become trusted.
        rollback = None if trusted_snapshot is None else functools.partial(self._check_snapshot_rollback,
                                                                            trusted_snapshot)
        snapshot = self._listed(timestamp, "snapshot", root, consistent, self.limits.snapshot, trusted_snapshot,
                                check=rollback)
        trusted_targets = self._trusted("targets", root)
        targets = self._listed(snapshot, "targets", root, consistent, self.limits.targets, trusted_targets)
        if self.naming == "tough":  # tough parses every entry at load: length and sha256 are required
            _check_tough_entries(targets, self.meta.describe(role_file_name("targets", targets.version, consistent)))
        if self.state is not None or self.cache is not None:
            self._keep(TIMESTAMP, TIMESTAMP, timestamp.raw)
        return Repo(self.meta, roots, timestamp, snapshot, targets, self.expired, self.now, self.safe,
                    self.naming, self.limits, {}, self)

    def _trusted(self, role: str, root: RoleFile) -> RoleFile | None:
        """The stored trusted ``role`` if it still verifies with the current root (keys rotated
        away make it untrusted: fast-forward recovery)."""
        raw = self.state.get(f"{role}.json") if self.state is not None else None
        if raw is None:
            return None
        try:
            role_file = parse_as(raw, role, f"trusted {role}.json", self.naming)
            verify_role(role_file, root.signed, f"trusted {role}.json")
        except VerificationError:
            return None
        return role_file

    def _check_snapshot_rollback(self, old: RoleFile, new: RoleFile) -> None:
        old_meta, new_meta = old.signed.get("meta"), new.signed.get("meta")
        if not isinstance(old_meta, dict) or not isinstance(new_meta, dict):
            return
        for name, entry in old_meta.items():
            if not isinstance(entry, dict) or name == "root.json":
                continue
            if name not in new_meta:
                raise RollbackError(f"snapshot version {new.version} no longer lists {name} (rollback attack?)")
            newer = new_meta[name].get("version") if isinstance(new_meta[name], dict) else None
            if isinstance(newer, int) and isinstance(entry.get("version"), int) and newer < entry["version"]:
                raise RollbackError(f"snapshot version {new.version} lists {name} version {newer}, older than the "
                                    f"trusted {entry['version']} (rollback attack?)")

    def _listed(self, parent: RoleFile, role: str, key_source: RoleFile, consistent: bool, default_limit: int,
                trusted: RoleFile | None, listed_name: str | None = None, verify: Callable[[RoleFile, str], None]
                | None = None, check: Callable[[RoleFile], None] | None = None) -> RoleFile:
        """Fetch the role file ``parent`` lists (snapshot from timestamp, targets and delegated
        roles from snapshot) and check it against the listing: length, hashes, version,
        signatures, ``check`` (if any), expiry; only then is it kept."""
        listed = listed_name or f"{role}.json"
        parent_what = "timestamp" if parent.role == "timestamp" else f"snapshot v{parent.version}"
        version = _meta_version(parent, listed, parent_what)
        entry = parent.signed["meta"][listed]
        length, hashes = entry.get("length"), entry.get("hashes")
        if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
            raise MetadataError(f"{parent_what}: the listed length of {listed} is not a non-negative integer")
        name = role_file_name(listed[: -len(".json")], version, consistent)
        what = self.meta.describe(name)
        raw = None
        # Bytes already held locally are used when the parent's hash proves they are the listed ones
        # (or, for the trusted state, when they are the very version listed and still verify).
        if trusted is not None and trusted.version == version and (hashes is None or _hash_ok(trusted.raw, hashes)):
            raw = trusted.raw
        elif self.cache is not None and hashes is not None:
            cached = self.cache.get(name)
            if cached is not None and _hash_ok(cached, hashes) and (length is None or len(cached) <= length):
                raw = cached
        if raw is None:
            raw = self._fetch(name, length if length is not None else default_limit)
            if raw is None:
                raise MetadataError(f"{what}: not found (the repository is incomplete)")
        if length is not None and len(raw) > length:
            raise MetadataError(f"{what}: {len(raw)} bytes, more than the {length} listed")
        if hashes is not None:
            check_hashes(raw, hashes, self.naming, what)
        role_file = parse_as(raw, "snapshot" if role == "snapshot" else "targets", what, self.naming)
        if verify is not None:
            verify(role_file, what)
        else:
            verify_role(role_file, key_source.signed, what)
        if role_file.version != version:
            raise MetadataError(f"{what}: version {role_file.version}, {parent_what} says {version}")
        if check is not None:
            check(role_file)
        self._check_expiry(role_file, what)
        self._keep(name, role_file_name(listed[: -len(".json")], version, consistent=False), raw)
        return role_file

    # -- delegations ---------------------------------------------------------------------

    def delegated_role(self, repo: Repo, name: str, parent: RoleFile, parent_name: str,
                       entry: dict[str, Any]) -> RoleFile:
        """Role ``name`` as ``parent`` (role ``parent_name``) delegates it in ``entry``.  The file is
        fetched once, but it is verified against the delegation of the path in use every time: a role
        two roles delegate (a "diamond") has no authority on a path whose keys did not sign it (as
        tough, which verifies each delegation; python-tuf and the conformance suite ask the same).
        Within one load a parent's file is fixed, so a verdict is kept per delegation (role, delegator,
        key IDs, threshold) and a lookup does not verify the same role against the same keys again."""
        keyids = entry.get("keyids")
        threshold = entry.get("threshold")
        delegation = (name, parent_name, tuple(map(repr, keyids)) if isinstance(keyids, list) else (), repr(threshold))

        def verify(role_file: RoleFile, what: str) -> None:
            if not isinstance(keyids, list) or not all(isinstance(k, str) for k in keyids) \
                    or not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
                raise MetadataError(f"{what}: delegation of {name!r} by {parent_name!r} needs keyids and a "
                                    "threshold >= 1")
            keys = _delegation_keys(parent, f"delegations of {parent_name}")
            pseudo_root = {"keys": keys, "roles": {"targets": {"keyids": keyids, "threshold": threshold}}}
            good = valid_signers(canonical(role_file.signed), role_file.signatures, pseudo_root, "targets")
            if len(good) < threshold:
                raise ThresholdError(f"{what}: signature threshold not met for delegated role {name!r} as "
                                     f"{parent_name!r} delegates it: {len(good)} valid of {threshold} required")

        loaded = repo.delegated.get(name)
        if loaded is not None:
            if delegation not in self.verified_delegations:
                verify(loaded, repo._what(name))
                self.verified_delegations.add(delegation)
            return loaded
        listed = f"{name}.json"
        meta = repo.snapshot.signed.get("meta")
        if not isinstance(meta, dict) or listed not in meta:
            raise MetadataError(f"snapshot v{repo.snapshot.version} does not list delegated role {name!r}")
        trusted = None
        if self.state is not None:
            raw = self.state.get(f"{quote(name, safe='')}.json")
            if raw is not None:
                with contextlib.suppress(VerificationError):
                    candidate = parse_as(raw, "targets", name, self.naming)
                    verify(candidate, name)
                    trusted = candidate
        role_file = self._listed(repo.snapshot, "delegated", repo.root, repo.consistent, self.limits.targets,
                                 trusted, listed, verify)
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
            for child in _delegated_roles(role_file, repo._what(role_name)):
                name = child["name"]
                entries += 1
                if entries > MAX_DELEGATION_ENTRIES:  # each is checked against its role: bound the work
                    raise MetadataError(f"{self.meta.url}: more than {MAX_DELEGATION_ENTRIES} delegations")
                loaded = self.delegated_role(repo, name, role_file, role_name, child)
                coverage = (name, repr(child.get("paths")), repr(child.get("path_hash_prefixes")))
                if coverage not in covered:
                    for key in _listed_targets(loaded, self.naming):
                        if not _covers(child, key, self.naming):
                            raise MetadataError(f"{repo._what(name)}: lists {key!r}, outside the paths "
                                                f"{role_name!r} delegates to {name!r}")
                    covered.add(coverage)
                if name not in seen:
                    seen.add(name)
                    todo.append((loaded, name))
                    if len(seen) > MAX_DELEGATIONS + 1:
                        raise MetadataError(f"{self.meta.url}: more than {MAX_DELEGATIONS} delegated roles")


def _delegation_keys(parent: RoleFile, what: str) -> dict[str, Any]:
    delegations = parent.signed.get("delegations")
    keys = delegations.get("keys") if isinstance(delegations, dict) else None
    if not isinstance(keys, dict):
        raise MetadataError(f"{what}: delegations.keys must be an object")
    for keyid, key in keys.items():
        problem = tough_key_problem(key) if isinstance(key, dict) else "not an object"
        if problem:
            raise MetadataError(f"{what}: key {keyid}: {problem}")
        if keyid_of(key) != keyid.lower():
            raise MetadataError(f"{what}: key ID {keyid} does not match its key")
    return keys


def _role_keyids(root: RoleFile, role: str) -> set[str]:
    return {k.lower() for k in root.signed["roles"][role]["keyids"]}


def _hash_ok(raw: bytes, hashes: object) -> bool:
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        return False
    return hashlib.sha256(raw).hexdigest() == str(hashes["sha256"]).lower()


def _meta_version(role_file: RoleFile, name: str, what: str) -> int:
    meta = role_file.signed.get("meta")
    entry = meta.get(name) if isinstance(meta, dict) else None
    version = entry.get("version") if isinstance(entry, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise MetadataError(f"{what}: meta has no valid {name} version")
    return version


def read_target(repo: Repo, targets_store: Source, name: str) -> bytes | None:
    """Download a small target fully verified; None if it is not listed."""
    target = repo.find(name)
    return None if target is None else fetch_target(repo, targets_store, target)


def fetch_target(repo: Repo, targets_store: Source, target: Target) -> bytes:
    """A (small) listed target's bytes, read whole and checked: its length and the listed hashes."""
    object_name = repo.object_name(target)
    data = targets_store.read(object_name, target.length)
    if data is None:
        raise TargetError(f"target {target.name}: {targets_store.describe(object_name)} not found")
    if len(data) != target.length:
        raise TargetError(f"target {target.name}: {targets_store.describe(object_name)} is {len(data)} bytes, "
                          f"{target.length} listed")
    check_hashes(data, target.hashes, repo.naming, f"target {target.name}: {targets_store.describe(object_name)}")
    return data


def stored_copy(path: Path, target: Target, naming: Naming) -> bytes | None:
    """The bytes of ``path`` if it already holds ``target`` (its length and the listed hashes, as
    ``naming`` checks them), else None: a verified copy need not be downloaded again."""
    try:
        with path.open("rb") as handle:
            data = handle.read(target.length + 1)
    except OSError:
        return None
    if len(data) != target.length:
        return None
    try:
        check_hashes(data, target.hashes, naming, str(path))
    except VerificationError:
        return None
    return data
