"""The audit's checks of each role file: signatures and thresholds, keys, tough's rules, sizes, expiry.

Each function looks at one role file (or one root's keys) and adds findings and table rows to the
:class:`~repo_tool.audit.findings.Report`; none stops at a problem.  The TUF rules these apply are
the trust layer's: who signed is :func:`~repo_tool.trust.metadata.role_result` (one
``VerificationResult``), a root's keys and roles its typed :class:`~repo_tool.trust.model.Root`,
tough's re-serialization :func:`~repo_tool.trust.rules.tree_findings`; the expiry rule is
:mod:`repo_tool.audit.expiry`.  What is left here is only how the audit words them, and the two
observations that are the audit's own (named in :func:`tough_refusals` and :func:`role_key_problems`).
Must not: read storage, or verify beyond reporting (the client load in :mod:`repo_tool.audit.run`
decides whether a node accepts the repository).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repo_tool.audit.expiry import Expiry, expiry_status, remaining_text
from repo_tool.audit.findings import Report, Severity, held_roles_text
from repo_tool.audit.roleset import RoleSet
from repo_tool.core.instant import format_instant, parse_instant
from repo_tool.errors import InstantError
from repo_tool.storage.base import Storage
from repo_tool.trust.keys import KeyError_, public_key
from repo_tool.trust.metadata import role_result
from repo_tool.trust.model import SIZE_LIMITS, SPEC_VERSION, RoleFile, Root
from repo_tool.trust.rules import tree_findings
from repo_tool.trust.signatures import duplicate_keyids


def role_row(report: Report, role_file: RoleFile, root: RoleFile, file: str,
             previous_root: RoleFile | None = None) -> None:
    """Who signed ``role_file`` (by ``root``; a rotated root also by ``previous_root``), its row in the
    roles table, and the findings: threshold, unknown signatures, role keys, spec_version.  The roots
    are verified ones (the chain's or the load's), so their typed views exist."""
    role = role_file.role
    typed = root.root(file)
    listed = [k.lower() for k in typed.roles[role].keyids]
    result = role_result(role_file.signed_bytes, role_file.signatures, typed, role)
    good = result.signed
    unknown = [s["keyid"] for s in role_file.signatures if s["keyid"].lower() not in good]
    if previous_root is not None:  # a rotated root is also signed by old root keys: those are expected
        old_good = role_result(role_file.signed_bytes, role_file.signatures, previous_root.root(file), role).signed
        unknown = [k for k in unknown if k.lower() not in old_good]
    duplicate_signatures(report, role_file, file)
    for problem in role_key_problems(typed, role, listed):
        report.add("warning", "keys", file, problem)
    for keyid in unknown:
        report.add("warning", "signatures", file,
                   f"signature by key {keyid[:16]}… that is not a valid signature by a key listed for {role}")
    if not result.verified:
        report.add("error", "signatures", file,
                   f"threshold not met for {role}: {len(good)} valid signature(s) of {result.threshold} required")
    report.roles.append({
        "role": role, "file": file, "version": role_file.version, "expires": format_instant(role_file.expires),
        "spec_version": role_file.signed.get("spec_version"), "threshold": result.threshold,
        "signed_by": sorted(good), "not_signed": [k for k in listed if k not in good],
        "unknown_signatures": len(unknown),
    })
    if role_file.signed.get("spec_version") != SPEC_VERSION:
        report.add("info", "compatibility", file, f"spec_version {role_file.signed.get('spec_version')!r}: "
                   "pubsys and tuftool cannot edit this file (they require \"1.0.0\")")


def duplicate_signatures(report: Report, role_file: RoleFile, file: str) -> None:
    for keyid in duplicate_keyids(role_file.signatures):
        report.add("error", "signatures", file, f"key ID {keyid} signs more than once: python-tuf and other "
                   "standard TUF clients refuse the file (tough counts the key once)")


def role_key_problems(root: Root, role: str, listed: list[str]) -> list[str]:
    """A role definition's key IDs (lower case) the root does not hold, or that repeat (warnings).

    The audit's own observation: tough reads such a root (the trust layer's parse allows it), and
    the write checklist (:func:`~repo_tool.trust.rules.write_problems`) refuses it for the files this
    tool writes, with its own wording; here it is a warning about a root someone else may have written."""
    problems = []
    held_ids = {x.lower() for x in root.keys}
    for keyid in [k for k in listed if k not in held_ids]:
        problems.append(f"role {role} lists key ID {keyid[:16]}… that the root does not hold")
    if len(set(listed)) != len(listed):
        problems.append(f"role {role} lists a key ID twice")
    return problems


def key_bits(entry: dict[str, Any]) -> int | None:
    """The size of a key entry's public key (RSA modulus, EC curve, 256 for ed25519); None if unreadable
    (a column of the keys table, not a rule)."""
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


def key_rows(report: Report, roots: Sequence[tuple[RoleFile, str]]) -> None:
    """Every key any root of the chain holds (``roots``: each root and its file name, oldest first, the
    current one last): its row in the keys table (type, size, its roles in the current root, the root
    versions that held it and its roles in each, whether the current root still does) and its problems.
    A key only older roots held is retired: listed too (an auditor wants to see which keys once signed
    and as what), with an info.
    The roots are verified: their typed views checked every key entry (a key tough refuses, or a key ID
    that is not the sha256 of its entry, fails the root in the chain walk and the load, named there)."""
    if not roots:
        return
    current, current_file = roots[-1]
    held: dict[str, dict[str, Any]] = {}  # lower-case key ID -> row, in the order first seen
    for root_file, file in roots:
        typed = root_file.root(file)
        for keyid, entry in typed.keys.items():
            member_of = [r for r, d in typed.roles.items() if keyid.lower() in [k.lower() for k in d.keyids]]
            row = held.setdefault(keyid.lower(), {"keyid": keyid, "keytype": entry.get("keytype"),
                                                  "scheme": entry.get("scheme"), "bits": key_bits(entry)})
            row.update(roles=member_of if root_file is current else [], current=root_file is current)
            row.setdefault("root_versions", []).append(root_file.version)
            row.setdefault("held_roles", []).append({"root_version": root_file.version, "roles": member_of})
    for row in held.values():
        if row["current"] and not row["roles"]:
            report.add("info", "keys", current_file, f"key {row['keyid'][:16]}… is listed but used by no role")
        elif not row["current"]:
            versions = ", ".join(f"v{v}" for v in row["root_versions"])
            report.add("info", "keys", current_file, f"key {row['keyid'][:16]}… ({row['keytype']}) is retired: "
                       f"held by root {versions} ({held_roles_text(row['held_roles'], always_versions=False)}), "
                       f"not by the current root v{current.version}")
        report.keys.append(row)


def tough_refusals(role_file: RoleFile) -> list[str]:
    """Why tough's re-serialization of this file would differ from the signed bytes (so its
    signature fails on a node), or why tough cannot parse it at all.

    The tree is walked once, by the trust layer (:func:`~repo_tool.trust.rules.tree_findings`, the
    walk the publisher's self-check also judges); this only words its findings.  Two checks stay
    the audit's own, as the write side has no counterpart to share: how tough re-serializes an
    ``expires`` this tool never writes (fractions, offsets; the publisher only writes whole seconds
    with ``Z``), and the ``delegations`` members tough drops (the publisher writes no delegations)."""
    problems: list[str] = []
    expires = role_file.signed.get("expires")
    try:
        if isinstance(expires, str) and format_instant(parse_instant(expires)) != expires:
            problems.append(f"expires {expires!r} is re-serialized as {format_instant(parse_instant(expires))!r}")
    except InstantError:
        problems.append(f"expires {expires!r} cannot be parsed")
    for found in tree_findings(role_file.signed, "signed", opaque_target_custom=True):
        if found.kind == "null":
            problems.append(f"{found.path} is null")
        elif found.kind == "string":
            problems.append(f"{found.path}: string is not NFC")
        elif found.kind == "name":
            problems.append(f"{found.path}: member name {found.value!r} is not NFC")
        elif (found.kind == "custom" and found.path[: -len(".custom")].startswith("signed.targets.")
              and (not isinstance(found.value, dict) or found.value == {})):
            # tough keeps custom as opaque JSON (nulls inside survive), but {} is dropped
            # and anything that is not an object is refused
            problems.append(f"{found.path} is {json.dumps(found.value)} (tough drops an empty custom and "
                            "refuses one that is not an object)")
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


def tough_rules(report: Report, role_file: RoleFile, file: str) -> None:
    """What makes tough refuse a file that a spec-following client may accept (SPEC §3.4 rule 8)."""
    for problem in tough_refusals(role_file):
        report.add("error", "tough", file, f"updog will reject this file: {problem}")
    if len(role_file.raw) > SIZE_LIMITS[role_file.role]:
        fatal = role_file.role in ("root", "timestamp")  # the others are bounded by a listed length instead
        report.add("error" if fatal else "warning", "size", file, f"{len(role_file.raw)} bytes is over tough's "
                   f"default {SIZE_LIMITS[role_file.role]}-byte limit" + ("" if fatal else
                   " (fine only while its parent lists its length)"))
    elif len(role_file.raw) > 0.8 * SIZE_LIMITS[role_file.role]:
        report.add("warning", "size", file, f"{len(role_file.raw)} bytes is over 80 % of tough's "
                   f"{SIZE_LIMITS[role_file.role]}-byte limit")


def meta_completeness(report: Report, role_file: RoleFile, file: str) -> None:
    """tough <= 0.17.1 (older hosts) requires length and hashes in timestamp meta; without a length
    even tough 0.19 caps the listed file at its default size limit."""
    listed = {"timestamp": "snapshot.json", "snapshot": "targets.json"}.get(role_file.role)
    meta = role_file.signed.get("meta")
    entry = meta.get(listed) if listed and isinstance(meta, dict) else None
    if not isinstance(entry, dict):
        return
    missing = [f for f in ("length", "hashes") if f not in entry]
    if missing:
        severity: Severity = "warning" if role_file.role == "timestamp" else "info"
        report.add(severity, "compatibility", file, f"meta.{listed} has no {' or '.join(missing)}: older updog "
                   "(tough <= 0.17.1) refuses it, and without a length tough reads at most its default limit")


def expiries(report: Report, files: RoleSet, meta: Storage) -> None:
    """The expiry calendar: every role's expiry against the report's instant and window."""
    named = [(files.root, f"{files.root.version}.root.json"), *files.role_files()]
    named += [(f, f"delegated role {n}") for n, f in files.delegated.items()]
    for role_file, name in named:
        left = role_file.expires - report.at
        status = expiry_status(role_file.expires, report.at, report.window)
        report.expiries.append({"role": role_file.role, "file": meta.describe(name),
                                "expires": format_instant(role_file.expires), "remaining": remaining_text(left),
                                "status": status.value, "expires_ns": role_file.expires})
        if status is Expiry.EXPIRED:
            report.add("error", "expiry", meta.describe(name), f"{role_file.role} expired at "
                       f"{format_instant(role_file.expires)}: nodes refuse the repository")
        elif status is Expiry.SOON:
            report.add("warning", "expiry", meta.describe(name), f"{role_file.role} expires in "
                       f"{remaining_text(left)} ({format_instant(role_file.expires)}), inside the "
                       f"{report.window_text} window")
