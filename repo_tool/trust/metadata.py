"""TUF role files as plain JSON objects: read, verify, build, sign, check (SPEC §3).

Nothing here does I/O.  Role files are handled as dicts parsed from the exact
bytes received, so a repository written by tough/pubsys is verified as tough
verifies it (signatures over the canonical JSON of ``signed`` as received,
fractional-second ``expires`` accepted) and every entry this tool carries over
from an existing file stays byte-for-byte what it was.

Size: just over 450 lines, reading and writing role files side by side; the architecture issue
(16) replaces the dicts with a typed model and moves the write checklist beside the tough rules.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from repo_tool.core.instant import format_whole_seconds, parse_instant
from repo_tool.errors import InstantError, UsageError, VerificationError
from repo_tool.trust.keys import keyid_of, tough_key_problem, verify
from repo_tool.trust.tufjson import JSONFormatError, canonical, loads

TOP_ROLES = ("root", "snapshot", "targets", "timestamp")
SPEC_VERSION = "1.0.0"
MAX_VERSION = 2**64 - 1
MIB = 1024 * 1024
# tough's default Limits (SPEC §3.5): what a node will download at most.
SIZE_LIMITS = {"root": MIB, "timestamp": MIB, "snapshot": MIB, "targets": 10 * MIB}
MAX_ROOT_UPDATES = 1024
_HEX = re.compile(r"[0-9a-fA-F]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")


class MetadataError(VerificationError):
    """A role file is malformed, badly signed, expired or inconsistent."""


class ThresholdError(VerificationError):
    """Not enough valid signatures for a role."""


def check_safe_name(name: str, what: str) -> None:
    """SPEC §2.3: ``[A-Za-z0-9._-]+``, not ``.`` or ``..``."""
    if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise UsageError(f"{what} {name!r} is not a safe name: use only A-Z a-z 0-9 . _ - (and not '.' or '..')")


@dataclass
class RoleFile:
    """One parsed role file: the exact bytes, the envelope, and its ``signed`` object."""

    role: str
    raw: bytes
    signed: dict[str, Any]
    signatures: list[dict[str, Any]]

    @property
    def version(self) -> int:
        return int(self.signed["version"])

    @property
    def expires(self) -> int:
        return expires_ns(self.signed, self.role)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def parse_role(raw: bytes, role: str, what: str) -> RoleFile:
    """Parse and shape-check a role file (no signature check)."""
    try:
        envelope = loads(raw, what)
    except JSONFormatError as exc:
        raise MetadataError(exc.message) from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signed"), dict):
        raise MetadataError(f"{what}: not a TUF envelope (no 'signed' object)")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not all(
        isinstance(s, dict) and isinstance(s.get("keyid"), str) and isinstance(s.get("sig"), str) for s in signatures
    ):
        raise MetadataError(f"{what}: 'signatures' must be a list of {{keyid, sig}} objects")
    for sig in signatures:
        if not _HEX.fullmatch(sig["keyid"]) or len(sig["keyid"]) % 2 or not _HEX.fullmatch(sig["sig"]) or len(
                sig["sig"]) % 2:
            raise MetadataError(f"{what}: signature by {sig['keyid'][:16]!r} is not hex (tough rejects the file)")
    signed = envelope["signed"]
    if signed.get("_type") != role:
        raise MetadataError(f"{what}: _type is {signed.get('_type')!r}, expected {role!r}")
    version = signed.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise MetadataError(f"{what}: version must be an integer in 1..2^64-1, found {version!r}")
    if not isinstance(signed.get("spec_version"), str):
        raise MetadataError(f"{what}: spec_version missing")
    expires_ns(signed, what)
    return RoleFile(role, raw, signed, signatures)


def expires_ns(signed: dict[str, Any], what: str) -> int:
    value = signed.get("expires")
    if not isinstance(value, str):
        raise MetadataError(f"{what}: expires missing or not a string")
    try:
        return parse_instant(value)
    except InstantError as exc:
        raise MetadataError(f"{what}: expires: {exc.message}") from None


# --- root and signatures --------------------------------------------------------


def check_root_shape(signed: dict[str, Any], what: str) -> None:
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
    for keyid, entry in keys.items():
        if not isinstance(entry, dict):
            raise MetadataError(f"{what}: key {keyid} is not an object")
        problem = tough_key_problem(entry)
        if problem:
            raise MetadataError(f"{what}: key {keyid}: {problem} (tough rejects the whole file)")
        if keyid_of(entry) != keyid.lower():
            raise MetadataError(f"{what}: key ID {keyid} does not match its key (sha256 is {keyid_of(entry)})")
    for role in TOP_ROLES:
        role_def = roles.get(role)
        if not isinstance(role_def, dict):
            raise MetadataError(f"{what}: roles.{role} missing")
        keyids, threshold = role_def.get("keyids"), role_def.get("threshold")
        if not isinstance(keyids, list) or not all(isinstance(k, str) for k in keyids):
            raise MetadataError(f"{what}: roles.{role}.keyids must be a list of key IDs")
        bad = [k for k in keyids if not _HEX.fullmatch(k) or len(k) % 2]
        if bad:
            raise MetadataError(f"{what}: roles.{role}.keyids holds {bad[0]!r}, not hex (tough rejects the file)")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise MetadataError(f"{what}: roles.{role}.threshold must be an integer >= 1")


def duplicate_keyids(signatures: list[dict[str, Any]]) -> list[str]:
    """Key IDs (lower-case, in order of first repeat) that sign more than once in ``signatures``.

    The TUF specification says key IDs in ``signatures`` MUST be unique, and python-tuf refuses such
    a file; tough counts a key once however often it signs.  Upper and lower case name the same key
    here (tough and this tool match key IDs without regard to case)."""
    seen: set[str] = set()
    repeated: list[str] = []
    for sig in signatures:
        keyid = sig["keyid"].lower()
        if keyid in seen and keyid not in repeated:
            repeated.append(keyid)
        seen.add(keyid)
    return repeated


def check_unique_signatures(role_file: RoleFile, what: str) -> None:
    """Standard TUF: a role file whose ``signatures`` name one key ID twice is invalid."""
    repeated = duplicate_keyids(role_file.signatures)
    if repeated:
        raise MetadataError(f"{what}: key ID {repeated[0]} signs more than once (TUF requires unique key IDs "
                            "in signatures)")


def valid_signers(signed_bytes: bytes, signatures: list[dict[str, Any]], root: dict[str, Any], role: str) -> set[str]:
    """Distinct key IDs listed for ``role`` in ``root`` whose signature over ``signed_bytes`` verifies."""
    role_def = root["roles"][role]
    allowed = {k.lower() for k in role_def["keyids"]}
    keys = {k.lower(): v for k, v in root["keys"].items()}
    good: set[str] = set()
    for sig in signatures:
        keyid = sig["keyid"].lower()
        if keyid in good or keyid not in allowed or keyid not in keys:
            continue
        if verify(keys[keyid], sig["sig"], signed_bytes):
            good.add(keyid)
    return good


def verify_role(role_file: RoleFile, root: dict[str, Any], what: str) -> set[str]:
    """Check the threshold of ``role_file`` against ``root``; return the valid signer IDs."""
    good = valid_signers(canonical(role_file.signed), role_file.signatures, root, role_file.role)
    threshold = int(root["roles"][role_file.role]["threshold"])
    if len(good) < threshold:
        raise ThresholdError(
            f"{what}: signature threshold not met for role {role_file.role}: "
            f"{len(good)} valid of {threshold} required"
        )
    return good


# --- building -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expirations:
    """Offsets (ns) from the start instant for the three frequently re-signed roles (SPEC §10.3)."""

    snapshot: int
    targets: int
    timestamp: int


def meta_entry(raw: bytes, version: int) -> dict[str, Any]:
    return {"length": len(raw), "hashes": {"sha256": hashlib.sha256(raw).hexdigest()}, "version": version}


def new_targets(version: int, expires: int, targets: dict[str, Any], delegations: Any = None) -> dict[str, Any]:
    signed: dict[str, Any] = {
        "_type": "targets",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": format_whole_seconds(expires),
        "targets": targets,
    }
    if delegations is not None:
        signed["delegations"] = delegations
    return signed


def new_snapshot(version: int, expires: int, targets_raw: bytes, targets_version: int) -> dict[str, Any]:
    return _listing_role("snapshot", version, expires, "targets.json", targets_raw, targets_version)


def new_timestamp(version: int, expires: int, snapshot_raw: bytes, snapshot_version: int) -> dict[str, Any]:
    return _listing_role("timestamp", version, expires, "snapshot.json", snapshot_raw, snapshot_version)


def _listing_role(role: str, version: int, expires: int, name: str, raw: bytes, listed_version: int) -> dict[str, Any]:
    """Snapshot or timestamp: exactly one ``meta`` entry with version, length and sha256 (SPEC §3.2)."""
    return {
        "_type": role,
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": format_whole_seconds(expires),
        "meta": {name: meta_entry(raw, listed_version)},
    }


def target_entry(length: int, sha256: str, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"length": length, "hashes": {"sha256": sha256}}
    if custom:
        entry["custom"] = custom
    return entry


def envelope_bytes(signed_bytes: bytes, signatures: list[dict[str, Any]]) -> bytes:
    """The whole file in canonical form: ``{"signatures":[...],"signed":{...}}`` + newline.

    Canonical form is a valid way to write any TUF file, it is what gets hashed
    anyway, and it lets us reuse the bytes that were signed instead of encoding
    a large targets.json a second time.
    """
    return b'{"signatures":' + canonical(signatures) + b',"signed":' + signed_bytes + b"}\n"


# --- the write checklist (SPEC §3.2) ------------------------------------------------------


def write_problems(raw: bytes, role: str, root: dict[str, Any] | None) -> list[str]:
    """Every SPEC §3.2 rule ``raw`` breaks (empty list = fine).  ``root`` verifies signatures
    (a root file is checked against itself when ``root`` is None)."""
    problems: list[str] = []
    try:
        rf = parse_role(raw, role, role)
    except MetadataError as exc:
        return [exc.message]
    signed = rf.signed
    if signed.get("spec_version") != SPEC_VERSION:
        problems.append(f"spec_version is {signed.get('spec_version')!r}, must be {SPEC_VERSION!r}")
    expires = signed.get("expires")
    if not isinstance(expires, str) or len(expires) != 20 or not expires.endswith("Z") or "." in expires:
        problems.append(f"expires {expires!r} is not whole seconds with Z")
    # Nulls, non-NFC text and "custom": {} can only be present if these bytes are (the file was
    # parsed without floats); only then walk the tree.
    if not raw.isascii() or b"null" in raw or re.search(rb'"custom"\s*:\s*\{\s*\}', raw):
        problems.extend(_tree_problems(signed))
    if len(raw) > SIZE_LIMITS[role]:
        problems.append(f"{len(raw)} bytes is over tough's {SIZE_LIMITS[role]}-byte limit for {role}")
    if role == "root":
        problems.extend(_root_problems(signed))
        root = signed
    elif role == "timestamp":
        problems.extend(_meta_problems(signed, "snapshot.json"))
    elif role == "snapshot":
        problems.extend(_meta_problems(signed, "targets.json"))
    elif role == "targets":
        problems.extend(_targets_problems(signed))
    if root is not None and not problems:
        problems.extend(f"key ID {keyid} signs more than once" for keyid in duplicate_keyids(rf.signatures))
        # tough verifies over its re-serialization of what it parsed: so must we.
        good = valid_signers(canonical(signed), rf.signatures, root, role)
        threshold = int(root["roles"][role]["threshold"])
        if len(good) < threshold:
            problems.append(f"signature threshold not met for role {role}: {len(good)} valid of {threshold} required")
    return problems


def _tree_problems(value: Any) -> list[str]:
    problems: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if node is None:
            problems.append("contains JSON null")
        elif isinstance(node, float):
            problems.append("contains a float")
        elif isinstance(node, str):
            if not node.isascii() and not unicodedata.is_normalized("NFC", node):
                problems.append(f"string {node!r} is not NFC")
        elif isinstance(node, dict):
            if "custom" in node and node["custom"] == {}:
                problems.append('contains "custom": {}')
            for key, child in node.items():
                if not key.isascii() and not unicodedata.is_normalized("NFC", key):
                    problems.append(f"member name {key!r} is not NFC")
                if child is None or isinstance(child, (dict, list, float)) or (
                    isinstance(child, str) and not child.isascii()
                ):
                    stack.append(child)
        elif isinstance(node, list):
            stack.extend(node)
    return problems


def _root_problems(signed: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if signed.get("consistent_snapshot") is not True:
        problems.append("consistent_snapshot must be true")
    try:
        check_root_shape(signed, "root")
    except MetadataError as exc:
        return [*problems, exc.message]
    for keyid, entry in signed["keys"].items():
        if keyid != keyid_of(entry):
            problems.append(f"key ID {keyid} is not the sha256 of its entry")
    if set(signed["roles"]) != set(TOP_ROLES):
        problems.append(f"roles must be exactly {', '.join(TOP_ROLES)}")
    for role in TOP_ROLES:
        role_def = signed["roles"][role]
        keyids = role_def["keyids"]
        if len(set(keyids)) != len(keyids):
            problems.append(f"roles.{role}.keyids lists a key twice")
        missing = [k for k in keyids if k not in signed["keys"]]
        if missing:
            problems.append(f"roles.{role} lists key IDs not in keys: {', '.join(missing)}")
        if role_def["threshold"] > len(keyids):
            problems.append(f"roles.{role}.threshold {role_def['threshold']} is above its {len(keyids)} keys")
    return problems


def _meta_problems(signed: dict[str, Any], name: str) -> list[str]:
    meta = signed.get("meta")
    if not isinstance(meta, dict) or set(meta) != {name}:
        return [f"meta must hold exactly {name}"]
    entry = meta[name]
    if not isinstance(entry, dict) or set(entry) != {"version", "length", "hashes"}:
        return [f"meta.{name} must be exactly version, length, hashes"]
    hashes = entry["hashes"]
    if not isinstance(hashes, dict) or list(hashes) != ["sha256"] or not _is_sha256(hashes["sha256"]):
        return [f"meta.{name}.hashes must be exactly a sha256 hex digest"]
    return []


def _targets_problems(signed: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    targets = signed.get("targets")
    if not isinstance(targets, dict):
        return ["targets must be an object"]
    for name, entry in targets.items():
        if not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
            problems.append(f"target name {name!r} is outside the safe set")
        if not isinstance(entry, dict) or type(entry.get("length")) is not int:
            problems.append(f"target {name}: length missing")
            continue
        hashes = entry.get("hashes")
        if not isinstance(hashes, dict) or not hashes or next(iter(hashes)) != "sha256" or not _is_sha256(
            hashes["sha256"]
        ):
            problems.append(f"target {name}: hashes must start with sha256")
        if "custom" in entry:
            custom = entry["custom"]
            if not isinstance(custom, dict) or not custom:
                problems.append(f"target {name}: custom must be a non-empty object when present")
    delegations = signed.get("delegations")
    if delegations is not None and delegations != {"keys": {}, "roles": []}:
        problems.append("delegations are not written by this tool")
    return problems


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None
