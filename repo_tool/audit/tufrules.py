"""The TUF and tough rules the audit still applies itself, kept together to be replaced as one.

Each function here re-implements a rule the trust layer also has (issue 16: "the same rule lives
in several places").  They were moved here from the audit's checks verbatim, behaviour and every
finding text unchanged, and each is marked ``Replaced by`` with the trust-layer function that is
to take its place once the typed model lands.  Call signatures stay small (role files, storage,
the report) so that the swap touches only this module and its callers' one line each.

Must not: grow new rules (a rule belongs in the trust layer; this module is where the audit's
copies wait to go) or format findings beyond the texts they already had.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repo_tool.audit.findings import Report
from repo_tool.audit.roleset import RoleSet
from repo_tool.core.instant import format_instant, parse_instant
from repo_tool.errors import InstantError, RepoToolError
from repo_tool.storage.base import Storage
from repo_tool.trust.keys import KeyError_, keyid_of, public_key, tough_key_problem
from repo_tool.trust.metadata import SIZE_LIMITS, RoleFile, parse_role, valid_signers
from repo_tool.trust.tufjson import canonical
from repo_tool.trust.verifier import role_file_name, verify_next_root, verify_trusted_root

ROOT_GAP_PROBE = 8  # after a missing N.root.json, how many later versions are probed


# --- valid signers and threshold ---------------------------------------------------------------


@dataclass(frozen=True)
class Signers:
    """Who signed one role file, as its root sees it."""

    listed: list[str]  # key IDs the root lists for the role (lower case)
    threshold: Any  # the root's threshold for the role, as written (0 if absent)
    good: set[str]  # listed key IDs whose signature verifies
    unknown: list[str]  # key IDs of the other signatures (minus a previous root's valid ones)

    @property
    def met(self) -> bool:
        return not len(self.good) < self.threshold


def role_signers(role_file: RoleFile, root: dict[str, Any], previous_root: dict[str, Any] | None = None) -> Signers:
    """Valid signers of ``role_file`` by ``root`` (a rotated root: also signed by ``previous_root``).

    Replaced by: the trust layer's ``VerificationResult`` (threshold, signed, unsigned, missing), the
    one answer to "is this signed enough" (today ``trust.metadata.valid_signers``/``verify_role``)."""
    role = role_file.role
    role_def = root.get("roles", {}).get(role, {}) if isinstance(root.get("roles"), dict) else {}
    listed = [k.lower() for k in role_def.get("keyids", []) if isinstance(k, str)]
    threshold = role_def.get("threshold", 0)
    signed_bytes = canonical(role_file.signed)
    good = valid_signers(signed_bytes, role_file.signatures, root, role) if listed else set()
    unknown = [s["keyid"] for s in role_file.signatures if s["keyid"].lower() not in good]
    if previous_root is not None:  # a rotated root is also signed by old root keys: those are expected
        old_good = valid_signers(signed_bytes, role_file.signatures, previous_root, role)
        unknown = [k for k in unknown if k.lower() not in old_good]
    return Signers(listed, threshold, good, unknown)


# --- key entries and role definitions ----------------------------------------------------------


def role_key_problems(root: dict[str, Any], role: str, listed: list[str]) -> list[str]:
    """A role definition's key IDs the root does not hold, or that repeat (warnings).

    Replaced by: the typed root model's key/role checks (today ``trust.metadata._root_problems``)."""
    problems = []
    held = root.get("keys")
    held_ids = {x.lower() for x in held} if isinstance(held, dict) else set()
    for keyid in [k for k in listed if k not in held_ids]:
        problems.append(f"role {role} lists key ID {keyid[:16]}… that the root does not hold")
    if len(set(listed)) != len(listed):
        problems.append(f"role {role} lists a key ID twice")
    return problems


def key_bits(entry: dict[str, Any]) -> int | None:
    """The size of a key entry's public key (RSA modulus, EC curve, 256 for ed25519); None if unreadable.

    Replaced by: the typed model's public key (today ``trust.keys.public_key``)."""
    bits: int | None = None
    try:
        key = public_key(entry)
        if isinstance(key, rsa.RSAPublicKey):
            bits = key.key_size
        elif isinstance(key, ec.EllipticCurvePublicKey):
            bits = key.curve.key_size
        elif isinstance(key, ed25519.Ed25519PublicKey):
            bits = 256
    except KeyError_:
        pass
    return bits


def key_entry_problem(keyid: str, entry: dict[str, Any]) -> str | None:
    """Why tough refuses a root because of this key entry, or why its key ID is wrong (an error).

    Replaced by: the trust layer's key-entry check (today ``trust.metadata.check_root_shape``, which
    raises on the first such entry instead of naming each)."""
    problem = tough_key_problem(entry)
    if problem:
        return f"key {keyid[:16]}…: {problem} (tough refuses the whole file)"
    if keyid_of(entry) != keyid.lower():
        return f"key ID {keyid[:16]}… is not the sha256 of its entry"
    return None


# --- tough's re-serialization ------------------------------------------------------------------


def tough_refusals(role_file: RoleFile) -> list[str]:
    """Why tough's re-serialization of this file would differ from the signed bytes (so its
    signature fails on a node), or why tough cannot parse it at all.

    Replaced by: the trust layer's tough-rules module, one walk for the publisher's self-check and
    the auditor (today a second copy is ``trust.metadata.write_problems``/``_tree_problems``)."""
    problems: list[str] = []
    expires = role_file.signed.get("expires")
    try:
        if isinstance(expires, str) and format_instant(parse_instant(expires)) != expires:
            problems.append(f"expires {expires!r} is re-serialized as {format_instant(parse_instant(expires))!r}")
    except InstantError:
        problems.append(f"expires {expires!r} cannot be parsed")
    stack: list[tuple[str, Any]] = [("signed", role_file.signed)]
    while stack:
        path, node = stack.pop()
        if node is None:
            problems.append(f"{path} is null")
        elif isinstance(node, str):
            if not node.isascii() and not unicodedata.is_normalized("NFC", node):
                problems.append(f"{path}: string is not NFC")
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(node))
        elif isinstance(node, dict):
            for key, child in node.items():
                if not key.isascii() and not unicodedata.is_normalized("NFC", key):
                    problems.append(f"{path}: member name {key!r} is not NFC")
                if key == "custom" and path.startswith("signed.targets."):
                    # tough keeps custom as opaque JSON (nulls inside survive), but {} is dropped
                    # and anything that is not an object is refused
                    if not isinstance(child, dict) or child == {}:
                        problems.append(f"{path}.custom is {json.dumps(child)} (tough drops an empty custom and "
                                        "refuses one that is not an object)")
                    continue
                stack.append((f"{path}.{key}", child))
    delegations = role_file.signed.get("delegations")
    if isinstance(delegations, dict):
        extra = sorted(set(delegations) - {"keys", "roles"})
        if extra:
            problems.append(f"delegations has fields tough drops: {', '.join(extra)}")
        known = {"name", "keyids", "threshold", "paths", "path_hash_prefixes", "terminating"}
        for entry in delegations.get("roles", []) if isinstance(delegations.get("roles"), list) else []:
            if isinstance(entry, dict) and set(entry) - known:
                problems.append(f"delegated role {entry.get('name')!r} has fields tough drops: "
                                f"{', '.join(sorted(set(entry) - known))}")
    return problems


# --- the root chain ----------------------------------------------------------------------------


def _later_roots(meta: Storage, missing: int, report: Report) -> list[int]:
    """Versions above a missing ``N.root.json`` that exist (a gap in the chain)."""
    found = []
    for version in range(missing + 1, missing + 1 + ROOT_GAP_PROBE):
        try:
            if meta.size(f"{version}.root.json") is not None:
                found.append(version)
        except RepoToolError as exc:
            report.add("warning", "root-chain", meta.describe(f"{version}.root.json"),
                       f"cannot tell whether it exists: {exc.message}")
            break
    return found


def root_chain(meta: Storage, trusted_root: bytes, trusted_name: str, report: Report) -> list[RoleFile]:
    """Every ``N.root.json`` from 1 up, each verified against the one before and itself.

    Replaced by: the trust layer's one root-chain walk (today ``trust.verifier._Loader._walk_roots``,
    which starts at the trusted root, not at 1, and stops at the first problem), with the audit
    turning what it reports (a gap, a version below the trusted one) into these findings."""
    chain: list[RoleFile] = []
    try:
        trusted = verify_trusted_root(trusted_root, trusted_name)
    except RepoToolError as exc:
        report.add("error", "root-chain", trusted_name, exc.message)
        return chain
    version = 1
    while True:
        name = f"{version}.root.json"
        try:
            raw = meta.read(name, SIZE_LIMITS["root"])
        except RepoToolError as exc:
            report.add("error", "root-chain", meta.describe(name), exc.message)
            break
        if raw is None:
            later = _later_roots(meta, version, report)
            if later:
                report.add("error", "root-chain", meta.describe(name),
                           f"missing in the middle of the root chain ({later[0]}.root.json exists); clients "
                           f"holding an older root cannot walk past it and the migrator's cache is incomplete")
            elif version <= trusted.version:
                report.add("error", "root-chain", meta.describe(name),
                           f"missing: every root up to the trusted version {trusted.version} must stay published")
            break
        try:
            current = verify_trusted_root(raw, meta.describe(name)) if version == 1 else verify_next_root(
                chain[-1], raw, meta.describe(name))
        except RepoToolError as exc:
            report.add("error", "root-chain", meta.describe(name), exc.message)
            break
        if current.version == trusted.version and raw != trusted_root:
            same = canonical(current.signed) == canonical(trusted.signed)
            report.add("info" if same else "error", "root-chain", meta.describe(name),
                       f"formatted differently from the trusted root {trusted_name} (same signed content)" if same
                       else f"differs from the trusted root {trusted_name} of the same version")
        chain.append(current)
        version += 1
    report.root_versions = [r.version for r in chain]
    if chain and chain[-1].version < trusted.version:
        report.add("error", "root-chain", meta.url,
                   f"the published chain ends at version {chain[-1].version}, below the trusted root's "
                   f"{trusted.version}")
    return chain


# --- the files as stored -----------------------------------------------------------------------


def read_as_stored(report: Report, meta: Storage, chain: list[RoleFile], now: int) -> RoleSet | None:
    """The timestamp, snapshot and targets as stored, parsed without the load's checks, so the
    rest of the audit can still look at them; each file that cannot be read is named.

    Replaced by: the trusted set's parse step without verification (today the loader's
    timestamp -> snapshot -> targets order, ``_meta_version`` and ``role_file_name`` in
    ``trust.verifier``), returning the audit's :class:`RoleSet`."""
    if not chain:
        return None
    consistent = chain[-1].signed.get("consistent_snapshot") is True
    files: list[RoleFile] = []
    parent: RoleFile | None = None
    for role in ("timestamp", "snapshot", "targets"):
        if parent is None:
            name = "timestamp.json"
        else:
            meta_map = parent.signed.get("meta")
            entry = meta_map.get(f"{role}.json") if isinstance(meta_map, dict) else None
            version = entry.get("version") if isinstance(entry, dict) else None
            if not isinstance(version, int):
                report.add("error", "load", meta.describe(role_file_name(parent.role, parent.version, consistent)),
                           f"lists no {role}.json version")
                return None
            name = role_file_name(role, version, consistent)
        try:
            raw = meta.read(name, SIZE_LIMITS[role] * 16)
            if raw is None:
                report.add("error", "load", meta.describe(name), "not found")
                return None
            parent = parse_role(raw, role, meta.describe(name))
        except RepoToolError as exc:
            report.add("error", "load", meta.describe(name), exc.message)
            return None
        files.append(parent)
    return RoleSet.as_stored(meta, chain, (files[0], files[1], files[2]), now)
