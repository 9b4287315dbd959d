"""TUF role files: the names the rest of the tool reads, verifies and builds them by (SPEC §3).

Parsing and the typed model are :mod:`repo_tool.trust.model`, signature counting
:mod:`repo_tool.trust.signatures`, the write checklist :mod:`repo_tool.trust.rules`; this module
verifies a role file against its root and builds new ``signed`` objects (signing them is
:mod:`repo_tool.signing.sign`).  Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repo_tool.core.instant import format_whole_seconds
from repo_tool.errors import UsageError
from repo_tool.trust.model import (
    SPEC_VERSION,
    MetadataError,
    RoleFile,
    Root,
    ThresholdError,
)
from repo_tool.trust.rules import is_safe_name
from repo_tool.trust.signatures import VerificationResult, duplicate_keyids


def check_safe_name(name: str, what: str) -> None:
    """SPEC §2.3: ``[A-Za-z0-9._-]+``, not ``.`` or ``..``."""
    if not is_safe_name(name):
        raise UsageError(f"{what} {name!r} is not a safe name: use only A-Z a-z 0-9 . _ - (and not '.' or '..')")


def check_unique_signatures(role_file: RoleFile, what: str) -> None:
    """Standard TUF: a role file whose ``signatures`` name one key ID twice is invalid."""
    repeated = duplicate_keyids(role_file.signatures)
    if repeated:
        raise MetadataError(f"{what}: key ID {repeated[0]} signs more than once (TUF requires unique key IDs "
                            "in signatures)")


def role_result(data: bytes, signatures: list[dict[str, Any]], root: Root | Mapping[str, Any],
                role: str) -> VerificationResult:
    """The signatures over ``data`` judged by ``role`` as ``root`` (typed, or a well-formed ``signed``
    dict) defines it."""
    return (root if isinstance(root, Root) else Root.of(root)).check(role, data, signatures)


def verify_role(role_file: RoleFile, root: Root | Mapping[str, Any], what: str) -> set[str]:
    """Check the threshold of ``role_file`` against ``root``; return the valid signer IDs."""
    result = role_result(role_file.signed_bytes, role_file.signatures, root, role_file.role)
    if not result.verified:
        raise ThresholdError(
            f"{what}: signature threshold not met for role {role_file.role}: "
            f"{len(result.signed)} valid of {result.threshold} required"
        )
    return set(result.signed)


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
    return _listing_role("snapshot", version, expires, {"targets.json": meta_entry(targets_raw, targets_version)})


def new_timestamp(version: int, expires: int, snapshot_raw: bytes, snapshot_version: int) -> dict[str, Any]:
    return _listing_role("timestamp", version, expires,
                         {"snapshot.json": meta_entry(snapshot_raw, snapshot_version)})


def _listing_role(role: str, version: int, expires: int, meta: dict[str, Any]) -> dict[str, Any]:
    """Snapshot or timestamp: exactly one ``meta`` entry with version, length and sha256 (SPEC §3.2)."""
    return {
        "_type": role,
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": format_whole_seconds(expires),
        "meta": meta,
    }


def target_entry(length: int, sha256: str, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"length": length, "hashes": {"sha256": sha256}}
    if custom:
        entry["custom"] = custom
    return entry
