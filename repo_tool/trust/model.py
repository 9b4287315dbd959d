"""The typed TUF model: role files parsed once into frozen objects (SPEC §3).

A :class:`RoleFile` keeps the exact bytes received and the ``signed`` object as parsed from them
(signatures are checked over the canonical JSON of ``signed`` exactly as received, and entries a
publish does not touch are carried over byte for byte); the typed views of it (:class:`Root`,
:class:`MetaFile`, :class:`TargetFile`, and those of :mod:`~repo_tool.trust.delegations`) are
built from that object when first asked for and kept.  A 10,000-entry targets map is not turned
into 10,000 objects: a :class:`TargetFile` is built for the entry looked up.

Frozen means: the dataclasses are frozen, and ``RoleFile.signed`` and ``signatures`` (plain JSON
values, kept as parsed so they can be carried over byte for byte) must not be changed in place --
the signed bytes and the typed views are computed once from them.  Copy the object to edit it.

Each view is checked as it is built, with the same messages the checks always had; the shape
checks are the ones tough makes when it parses (:class:`Root` refuses what tough refuses), while the
choices that differ between tough and a standard TUF client are :mod:`repo_tool.trust.policy`'s.
Nothing here reads files, the network or the clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeGuard

from repo_tool.core.instant import parse_instant
from repo_tool.errors import InstantError, VerificationError
from repo_tool.trust.keys import keyid_of, tough_key_problem
from repo_tool.trust.lines import all_match, lines_of
from repo_tool.trust.signatures import VerificationResult, check_signatures
from repo_tool.trust.tufjson import JSONFormatError, canonical, loads_canonical, loads_plain

TOP_ROLES = ("root", "snapshot", "targets", "timestamp")
SPEC_VERSION = "1.0.0"
MAX_VERSION = 2**64 - 1
MIB = 1024 * 1024
MAX_ROOT_UPDATES = 1024
HEX = re.compile(r"[0-9a-fA-F]*")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")  # what tough reads (either case)
SHA256_HEX_LOWER = re.compile(r"[0-9a-f]{64}")  # what this tool writes (SPEC §3.2)


@dataclass(frozen=True)
class Limits:
    """tough's default ``Limits`` (SPEC §3.5, §9.5): the most a client downloads per role file."""

    root: int = MIB
    timestamp: int = MIB
    snapshot: int = MIB  # only when timestamp lists no length
    targets: int = 10 * MIB  # only when snapshot lists no length (also for delegated roles)
    max_root_updates: int = MAX_ROOT_UPDATES

    def by_role(self) -> dict[str, int]:
        return {"root": self.root, "timestamp": self.timestamp, "snapshot": self.snapshot, "targets": self.targets}


# tough's default Limits by role name: what a node will download at most.
SIZE_LIMITS = Limits().by_role()


class MetadataError(VerificationError):
    """A role file is malformed, badly signed, expired or inconsistent."""


class ThresholdError(VerificationError):
    """Not enough valid signatures for a role."""


class TargetError(VerificationError):
    """A target is not listed, or its listing cannot be used."""


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer: an ``int`` that is not a ``bool``."""
    return type(value) is int


_SHA256_HEX_LINES = lines_of(SHA256_HEX)


def is_hex(text: str) -> bool:
    """Hex digits in whole bytes (key IDs and signatures as tough parses them)."""
    return HEX.fullmatch(text) is not None and not len(text) % 2


@dataclass(frozen=True)
class RoleDef:
    """A role as a root (or a delegation) defines it: its key IDs and threshold."""

    keyids: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class Root:
    """The typed ``signed`` of a root: key entries by key ID (as written), the four roles."""

    keys: Mapping[str, Any]
    roles: Mapping[str, RoleDef]
    consistent_snapshot: bool

    @classmethod
    def of(cls, signed: Mapping[str, Any]) -> Root:
        """A view of a root whose shape is known good (built here, or checked by :func:`parse_root`)."""
        roles = {name: RoleDef(tuple(d["keyids"]), int(d["threshold"])) for name, d in signed["roles"].items()}
        return cls(signed["keys"], roles, signed.get("consistent_snapshot") is True)

    def keyids(self, role: str) -> set[str]:
        """The lower-case key IDs listed for ``role``."""
        return {k.lower() for k in self.roles[role].keyids}

    def check(self, role: str, data: bytes, signatures: list[dict[str, Any]]) -> VerificationResult:
        role_def = self.roles[role]
        return check_signatures(data, signatures, self.keys, role_def.keyids, role_def.threshold)


@dataclass(frozen=True)
class RoleFile:
    """One parsed role file: the exact bytes, the envelope, and its ``signed`` object."""

    role: str
    raw: bytes
    signed: dict[str, Any]
    signatures: list[dict[str, Any]]
    _views: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # typed views, built once
    _signed_bytes: bytes | None = field(default=None, repr=False, compare=False)  # known at parse time, if so

    @property
    def version(self) -> int:
        return int(self.signed["version"])

    @cached_property
    def expires(self) -> int:
        return expires_ns(self.signed, self.role)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @cached_property
    def signed_bytes(self) -> bytes:
        """The canonical JSON of ``signed`` as received: what its signatures sign (a slice of
        :attr:`raw` when the file is in canonical form, as every file this tool writes is)."""
        return self._signed_bytes if self._signed_bytes is not None else canonical(self.signed)

    def root(self, what: str) -> Root:
        """This root's typed view, checked as tough checks it (:func:`parse_root`) the first time."""
        if "root" not in self._views:
            self._views["root"] = parse_root(self.signed, what)
        root: Root = self._views["root"]
        return root

    def view(self, name: str) -> Any:
        return self._views.get(name)

    def keep_view(self, name: str, value: Any) -> None:
        self._views[name] = value


@dataclass(frozen=True)
class SignedPart:
    """The ``signed`` object of a role file being built, and ``canonical(value)``: the bytes signed.
    Made by :meth:`of` only, so that ``encoded`` is always the encoding of ``value``."""

    value: dict[str, Any]
    encoded: bytes

    @classmethod
    def of(cls, value: dict[str, Any]) -> SignedPart:
        return cls(value, canonical(value))


def envelope_bytes(signed_bytes: bytes, signatures: list[dict[str, Any]]) -> bytes:
    """The whole file in canonical form: ``{"signatures":[...],"signed":{...}}`` + newline.

    Canonical form is a valid way to write any TUF file, it is what gets hashed
    anyway, and it lets us reuse the bytes that were signed instead of encoding
    a large targets.json a second time.
    """
    return _ENVELOPE_HEAD + canonical(signatures) + _ENVELOPE_SIGNED + signed_bytes + b"}\n"


_ENVELOPE_HEAD, _ENVELOPE_SIGNED = b'{"signatures":', b',"signed":'


def parse_role(raw: bytes, role: str, what: str) -> RoleFile:
    """Parse and shape-check a role file (no signature check)."""
    try:
        envelope, encoded = loads_canonical(raw, what)
    except JSONFormatError as exc:
        raise MetadataError(exc.message) from None
    return _role_file(envelope, raw, role, what, _signed_slice(envelope, encoded))


def parse_built_role(raw: bytes, role: str, what: str, built: SignedPart) -> RoleFile:
    """:func:`parse_role` of a file this run has just built from ``built``: same result, same
    refusals, but without a second canonical encode of a large ``signed``.

    If ``raw`` parses (:func:`~repo_tool.trust.tufjson.loads_plain`) to an envelope whose
    ``signed`` equals ``built.value`` and ``raw`` is ``envelope_bytes(built.encoded, <its
    signatures>)``, then its ``signed`` part is ``canonical(built.value)``: a name written twice
    in it would have left the parsed object shorter than ``built.value``, so unequal; no other
    part can hold one (each is the canonical encoding of a parsed value).  Then ``built.encoded``
    is what the signatures sign.  Otherwise (or on any refusal) this is :func:`parse_role`."""
    envelope = loads_plain(raw)
    if (isinstance(envelope, dict) and envelope.keys() == {"signatures", "signed"}
            and envelope["signed"] == built.value and isinstance(envelope["signatures"], list)):
        try:
            same = raw == envelope_bytes(built.encoded, envelope["signatures"])
        except JSONFormatError:
            same = False
        if same:
            return _role_file(envelope, raw, role, what, built.encoded)
    return parse_role(raw, role, what)


def _signed_slice(envelope: Any, encoded: bytes | None) -> bytes | None:
    """``canonical(envelope["signed"])`` cut out of ``encoded`` (``canonical(envelope)``) when the
    envelope has just its two members, else None (then it is encoded when first needed)."""
    if encoded is None or not isinstance(envelope, dict) or envelope.keys() != {"signatures", "signed"}:
        return None
    try:
        head = _ENVELOPE_HEAD + canonical(envelope["signatures"]) + _ENVELOPE_SIGNED
    except JSONFormatError:
        return None
    return encoded[len(head):-1] if encoded.startswith(head) and encoded.endswith(b"}") else None


def _role_file(envelope: Any, raw: bytes, role: str, what: str, signed_bytes: bytes | None) -> RoleFile:
    """The shape checks of :func:`parse_role` on a parsed envelope."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signed"), dict):
        raise MetadataError(f"{what}: not a TUF envelope (no 'signed' object)")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not all(
        isinstance(s, dict) and isinstance(s.get("keyid"), str) and isinstance(s.get("sig"), str) for s in signatures
    ):
        raise MetadataError(f"{what}: 'signatures' must be a list of {{keyid, sig}} objects")
    for sig in signatures:
        if not is_hex(sig["keyid"]) or not is_hex(sig["sig"]):
            raise MetadataError(f"{what}: signature by {sig['keyid'][:16]!r} is not hex (tough rejects the file)")
    signed = envelope["signed"]
    if signed.get("_type") != role:
        raise MetadataError(f"{what}: _type is {signed.get('_type')!r}, expected {role!r}")
    version = signed.get("version")
    if not is_int(version) or not 1 <= version <= MAX_VERSION:
        raise MetadataError(f"{what}: version must be an integer in 1..2^64-1, found {version!r}")
    if not isinstance(signed.get("spec_version"), str):
        raise MetadataError(f"{what}: spec_version missing")
    role_file = RoleFile(role, raw, signed, signatures, _signed_bytes=signed_bytes)
    expires_ns(signed, what)
    return role_file


def expires_ns(signed: Mapping[str, Any], what: str) -> int:
    value = signed.get("expires")
    if not isinstance(value, str):
        raise MetadataError(f"{what}: expires missing or not a string")
    try:
        return parse_instant(value)
    except InstantError as exc:
        raise MetadataError(f"{what}: expires: {exc.message}") from None


def parse_root(signed: Mapping[str, Any], what: str) -> Root:
    """What tough checks when it parses a root: key IDs match their entries, roles well formed."""
    keys = signed.get("keys")
    roles = signed.get("roles")
    if not isinstance(keys, dict) or not isinstance(roles, dict):
        raise MetadataError(f"{what}: root needs 'keys' and 'roles' objects")
    if not isinstance(signed.get("consistent_snapshot"), bool):
        raise MetadataError(f"{what}: consistent_snapshot must be true or false")
    extra = sorted(set(roles) - set(TOP_ROLES))
    if extra:
        raise MetadataError(f"{what}: unknown role {extra[0]!r} in roles (tough rejects the file)")
    check_key_entries(keys, what, in_root=True)
    for role in TOP_ROLES:
        role_def = roles.get(role)
        if not isinstance(role_def, dict):
            raise MetadataError(f"{what}: roles.{role} missing")
        keyids, threshold = role_def.get("keyids"), role_def.get("threshold")
        if not isinstance(keyids, list) or not all(isinstance(k, str) for k in keyids):
            raise MetadataError(f"{what}: roles.{role}.keyids must be a list of key IDs")
        bad = [k for k in keyids if not is_hex(k)]
        if bad:
            raise MetadataError(f"{what}: roles.{role}.keyids holds {bad[0]!r}, not hex (tough rejects the file)")
        if not is_int(threshold) or threshold < 1:
            raise MetadataError(f"{what}: roles.{role}.threshold must be an integer >= 1")
    return Root.of(signed)


def check_key_entries(keys: Mapping[str, Any], what: str, in_root: bool) -> None:
    """Every key entry is one tough reads, under the key ID that is its sha256: a root's ``keys``
    (``in_root``: the messages say tough rejects the whole file) or a role's ``delegations.keys``."""
    for keyid, entry in keys.items():
        if not isinstance(entry, dict):
            raise MetadataError(f"{what}: key {keyid} is not an object" if in_root else f"{what}: key {keyid}: not "
                                "an object")
        problem = tough_key_problem(entry)
        if problem:
            raise MetadataError(f"{what}: key {keyid}: {problem}" + (" (tough rejects the whole file)" if in_root
                                                                      else ""))
        actual = keyid_of(entry)
        if actual != keyid.lower():
            raise MetadataError(f"{what}: key ID {keyid} does not match its key"
                                + (f" (sha256 is {actual})" if in_root else ""))


# --- snapshot and timestamp listings ------------------------------------------------------------


@dataclass(frozen=True)
class MetaFile:
    """One ``meta`` entry of a timestamp or snapshot: the listed version, and length and hashes if listed."""

    version: int
    length: int | None
    hashes: Any  # checked against the bytes (policy.check_hashes), as listed


def meta_version(role_file: RoleFile, name: str, what: str) -> int:
    """The version ``role_file`` (a timestamp or snapshot) lists for ``name``."""
    meta = role_file.signed.get("meta")
    entry = meta.get(name) if isinstance(meta, dict) else None
    version = entry.get("version") if isinstance(entry, dict) else None
    if not is_int(version) or version < 1:
        raise MetadataError(f"{what}: meta has no valid {name} version")
    return version


def meta_file(role_file: RoleFile, name: str, what: str) -> MetaFile:
    """The typed ``meta`` entry for ``name``: version (required), length (a non-negative integer if listed)."""
    version = meta_version(role_file, name, what)
    entry = role_file.signed["meta"][name]
    length, hashes = entry.get("length"), entry.get("hashes")
    if length is not None and (not is_int(length) or length < 0):
        raise MetadataError(f"{what}: the listed length of {name} is not a non-negative integer")
    return MetaFile(version, length, hashes)


# --- targets and delegations ---------------------------------------------------------------------


@dataclass(frozen=True)
class TargetFile:
    """One entry of a targets map, checked (:func:`target_problem`)."""

    length: int
    hashes: dict[str, str]  # as listed
    custom: Any


def target_problem(entry: Any, require_sha256: bool) -> str | None:
    """What makes a targets entry unusable (tough refuses the whole file over it), or None."""
    problem = _shape_problem(entry, require_sha256)
    if problem is None and require_sha256 and not SHA256_HEX.fullmatch(sha256 := entry["hashes"]["sha256"]):
        return f": sha256 {sha256!r} is not 64 hex digits (tough rejects the file)"
    return problem


def all_usable(entries: Iterable[Any], require_sha256: bool) -> bool:
    """True when :func:`target_problem` finds nothing in any of ``entries``: the same rule, with the
    digests matched joined in one pass instead of one regex a target (a publish loads 10,000)."""
    digests: list[str] = []
    for entry in entries:
        if _shape_problem(entry, require_sha256) is not None:
            return False
        if require_sha256:
            digests.append(entry["hashes"]["sha256"])
    return not digests or all_match(_SHA256_HEX_LINES, digests)


def _shape_problem(entry: Any, require_sha256: bool) -> str | None:
    """:func:`target_problem` but for the sha256 digest's form (its caller checks that, one entry or
    all of them at once)."""
    if type(entry) is not dict:
        return " is not an object"
    length, hashes = entry.get("length"), entry.get("hashes")
    if not is_int(length) or length < 0:
        return " has no valid length"
    if type(hashes) is not dict or not hashes:
        return " has no valid hashes"
    for value in hashes.values():  # a loop, not all(<generator>): this runs for 10,000 entries in a publish
        if type(value) is not str:
            return " has no valid hashes"
    if require_sha256 and "sha256" not in hashes:
        return " has no sha256 hash (updog requires sha256)"
    return None


def target_file(entry: Any, require_sha256: bool, what: str) -> TargetFile:
    problem = target_problem(entry, require_sha256)
    if problem is not None:
        raise MetadataError(f"{what}{problem}")
    return TargetFile(entry["length"], entry["hashes"], entry.get("custom"))


def targets_map(role_file: RoleFile) -> dict[str, Any]:
    """The ``targets`` object of a targets role, entries as received (typed when looked up)."""
    listed = role_file.signed.get("targets")
    if not isinstance(listed, dict):
        raise MetadataError(f"{role_file.role} metadata: 'targets' is not an object")
    return listed
