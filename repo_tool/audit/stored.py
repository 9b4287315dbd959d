"""What the audit reads from storage itself: the root chain from ``1.root.json``, and the files as stored.

:func:`root_chain` is the trust layer's one root-chain walk
(:func:`~repo_tool.trust.trusted.walk_roots`, from ``1.root.json`` rather than from the trusted
root) with what ends it turned into findings: a gap, a chain that ends below the trusted root, a
copy of the trusted root that differs.  :func:`read_as_stored` parses timestamp, snapshot and
targets without verifying them (the client load refused them) so the other checks still run.

Must not: verify anything the trust layer does not (every signature and version check is its), or
write to storage.
"""

from __future__ import annotations

import sys

from repo_tool.audit.findings import Report
from repo_tool.audit.roleset import RoleSet
from repo_tool.errors import RepoToolError
from repo_tool.storage.base import Storage
from repo_tool.trust.model import SIZE_LIMITS, MetadataError, RoleFile, meta_version, parse_role
from repo_tool.trust.verifier import (
    TIMESTAMP,
    TOUGH_STRICT_WALK,
    RootFiles,
    WalkBounds,
    role_file_name,
    verify_trusted_root,
    walk_roots,
)

ROOT_GAP_PROBE = 8  # after a missing N.root.json, how many later versions are probed
FIRST_ROOT = "1.root.json"


def root_chain(meta: Storage, trusted_root: bytes, trusted_name: str, report: Report) -> list[RoleFile]:
    """Every ``N.root.json`` from 1 up, each verified against the one before and itself (the trust
    layer's walk); the walk's end, a version below the trusted one and a differing copy of the trusted
    root are findings.  The roots that verified are returned, oldest first."""
    chain: list[RoleFile] = []
    try:
        trusted = verify_trusted_root(trusted_root, trusted_name)
    except RepoToolError as exc:
        report.add("error", "root-chain", trusted_name, exc.message)
        return chain

    def read(name: str) -> bytes | None:
        return meta.read(name, SIZE_LIMITS["root"])

    def on_root(current: RoleFile) -> None:
        name = meta.describe(f"{current.version}.root.json")
        if current.version == trusted.version and current.raw != trusted_root:
            same = current.signed_bytes == trusted.signed_bytes
            report.add("info" if same else "error", "root-chain", name,
                       f"formatted differently from the trusted root {trusted_name} (same signed content)" if same
                       else f"differs from the trusted root {trusted_name} of the same version")
        chain.append(current)

    try:
        raw = read(FIRST_ROOT)
        absent = 1
        if raw is not None:
            first = verify_trusted_root(raw, meta.describe(FIRST_ROOT))
            if first.version != 1:  # the walk would start past the versions below it, never asking for them
                raise MetadataError(f"{meta.describe(FIRST_ROOT)}: holds version {first.version}, expected 1")
            walk = walk_roots(first, RootFiles(read, meta.describe, meta.url), TOUGH_STRICT_WALK,
                              WalkBounds(sys.maxsize), on_root)
            absent = walk.newest.version + 1  # the walk ended normally: walk.ended, this one is not available
        _missing(meta, absent, trusted.version, report)
    except RepoToolError as exc:  # the next root could not be read, or did not verify: the chain ends
        report.add("error", "root-chain", meta.describe(f"{chain[-1].version + 1 if chain else 1}.root.json"),
                   exc.message)
    report.root_versions = [r.version for r in chain]
    if chain and chain[-1].version < trusted.version:
        report.add("error", "root-chain", meta.url,
                   f"the published chain ends at version {chain[-1].version}, below the trusted root's "
                   f"{trusted.version}")
    return chain


def _missing(meta: Storage, version: int, trusted_version: int, report: Report) -> None:
    """``version.root.json`` is not there: a finding if later ones are (a gap), or if the trusted root
    is at least that version."""
    name = f"{version}.root.json"
    later = _later_roots(meta, version, report)
    if later:
        report.add("error", "root-chain", meta.describe(name),
                   f"missing in the middle of the root chain ({later[0]}.root.json exists); clients "
                   f"holding an older root cannot walk past it and the migrator's cache is incomplete")
    elif version <= trusted_version:
        report.add("error", "root-chain", meta.describe(name),
                   f"missing: every root up to the trusted version {trusted_version} must stay published")


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


def read_as_stored(report: Report, meta: Storage, chain: list[RoleFile]) -> RoleSet | None:
    """The timestamp, snapshot and targets as stored, parsed without the load's checks, so the
    rest of the audit can still look at them; each file that cannot be read is named.  The names are
    the trust layer's (:func:`~repo_tool.trust.trusted.role_file_name`, the listed version
    :func:`~repo_tool.trust.model.meta_version`); nothing read here is verified."""
    if not chain:
        return None
    newest = chain[-1]
    consistent = newest.root(meta.describe(f"{newest.version}.root.json")).consistent_snapshot
    files: list[RoleFile] = []
    parent: RoleFile | None = None
    for role in ("timestamp", "snapshot", "targets"):
        if parent is None:
            name = TIMESTAMP
        else:
            try:
                version = meta_version(parent, f"{role}.json", parent.role)
            except RepoToolError:
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
    return RoleSet.as_stored(meta, chain, (files[0], files[1], files[2]))
