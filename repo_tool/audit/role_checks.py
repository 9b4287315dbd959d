"""The audit's checks of each role file: signatures and thresholds, keys, tough's rules, sizes, expiry.

Each function looks at one role file (or one root's keys) and adds findings and table rows to the
:class:`~repo_tool.audit.findings.Report`; none stops at a problem.  The TUF rules these apply
come from :mod:`repo_tool.audit.tufrules` (to be replaced by the trust layer's) and the expiry
rule from :mod:`repo_tool.audit.expiry`.  Must not: read storage, or verify beyond reporting
(the client load in :mod:`repo_tool.audit.run` decides whether a node accepts the repository).
"""

from __future__ import annotations

from typing import Any

from repo_tool.audit.expiry import Expiry, expiry_status, remaining_text
from repo_tool.audit.findings import Report, Severity
from repo_tool.audit.roleset import RoleSet
from repo_tool.audit.tufrules import key_bits, key_entry_problem, role_key_problems, role_signers, tough_refusals
from repo_tool.core.instant import format_instant
from repo_tool.storage.base import Storage
from repo_tool.trust.metadata import SIZE_LIMITS, SPEC_VERSION, RoleFile, duplicate_keyids


def role_row(report: Report, role_file: RoleFile, root: dict[str, Any], file: str,
             previous_root: dict[str, Any] | None = None) -> None:
    """Who signed ``role_file`` (by ``root``; a rotated root also by ``previous_root``), its row in the
    roles table, and the findings: threshold, unknown signatures, role keys, spec_version."""
    role = role_file.role
    signers = role_signers(role_file, root, previous_root)
    listed, good, unknown = signers.listed, signers.good, signers.unknown
    duplicate_signatures(report, role_file, file)
    for problem in role_key_problems(root, role, listed):
        report.add("warning", "keys", file, problem)
    for keyid in unknown:
        report.add("warning", "signatures", file,
                   f"signature by key {keyid[:16]}… that is not a valid signature by a key listed for {role}")
    if not signers.met:
        report.add("error", "signatures", file,
                   f"threshold not met for {role}: {len(good)} valid signature(s) of {signers.threshold} required")
    report.roles.append({
        "role": role, "file": file, "version": role_file.version, "expires": format_instant(role_file.expires),
        "spec_version": role_file.signed.get("spec_version"), "threshold": signers.threshold,
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


def key_rows(report: Report, root: RoleFile, file: str) -> None:
    """Every key the root holds: its row in the keys table (type, size, roles) and its problems."""
    keys = root.signed.get("keys", {})
    roles = root.signed.get("roles", {})
    for keyid, entry in keys.items():
        member_of = [r for r, d in roles.items() if keyid.lower() in [k.lower() for k in d.get("keyids", [])]]
        bits = key_bits(entry)
        problem = key_entry_problem(keyid, entry)
        if problem:
            report.add("error", "keys", file, problem)
        if not member_of:
            report.add("info", "keys", file, f"key {keyid[:16]}… is listed but used by no role")
        report.keys.append({"keyid": keyid, "keytype": entry.get("keytype"), "scheme": entry.get("scheme"),
                            "bits": bits, "roles": member_of})


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
