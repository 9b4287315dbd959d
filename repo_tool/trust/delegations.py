"""Delegations in the typed model: a targets role's ``delegations`` parsed once (SPEC §3.3, TAP 15).

A delegation whose key IDs or threshold are malformed still parses (its role cannot verify, and
saying so waits until it is verified: a role never walked is never judged); a repeated, empty or
top-level name fails the whole role.  Nothing here does I/O, and path matching is the policy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repo_tool.trust.model import TOP_ROLES, MetadataError, RoleFile, check_key_entries, is_int


@dataclass(frozen=True)
class DelegatedRole:
    """One delegation.  ``keyids``/``threshold`` are None when malformed: the role cannot verify,
    and saying so is left to the moment it is verified (a role never walked is never judged)."""

    name: str
    keyids: tuple[str, ...] | None
    threshold: int | None
    paths: tuple[str, ...] | None
    path_hash_prefixes: tuple[str, ...] | None
    terminating: bool
    entry: Mapping[str, Any]  # as received

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> DelegatedRole:
        keyids, threshold = entry.get("keyids"), entry.get("threshold")
        paths, prefixes = entry.get("paths"), entry.get("path_hash_prefixes")
        return cls(
            entry["name"],
            tuple(keyids) if isinstance(keyids, list) and all(isinstance(k, str) for k in keyids) else None,
            threshold if is_int(threshold) and threshold >= 1 else None,
            tuple(p for p in paths if isinstance(p, str)) if isinstance(paths, list) else None,
            tuple(p for p in prefixes if isinstance(p, str)) if isinstance(prefixes, list) else None,
            entry.get("terminating") is True,
            entry,
        )


@dataclass(frozen=True)
class SuccinctRoles:
    """TAP 15 hashed bins: ``2**bit_length`` roles named ``name_prefix-<bin in hex>``."""

    bit_length: int
    name_prefix: str
    entry: Mapping[str, Any]


@dataclass(frozen=True)
class Delegations:
    """A targets role's ``delegations``: its keys (checked when first used) and its roles."""

    keys: Any
    roles: tuple[DelegatedRole, ...]
    succinct_roles: SuccinctRoles | None
    has_roles: bool  # a ``roles`` member is present (with succinct_roles, python-tuf refuses the file)


def delegations_of(role_file: RoleFile, what: str, succinct: bool) -> Delegations | None:
    """The delegations of ``role_file`` (None if it has none).  A name delegated twice by one role is
    refused, as tough (``DelegatedRolesNotConsistent``) and python-tuf refuse it; so is an empty name or
    a top-level role's (python-tuf refuses those; its file would stand where the client keeps that role).
    ``succinct``: read ``succinct_roles`` (standard TUF) instead of ``roles`` when present."""
    key = f"delegations:{succinct}"
    cached = role_file.view(key)
    if cached is not None:
        return cached if isinstance(cached, Delegations) else None
    result = _parse_delegations(role_file.signed.get("delegations"), what, succinct)
    role_file.keep_view(key, result if result is not None else False)
    return result


def _parse_delegations(delegations: Any, what: str, succinct: bool) -> Delegations | None:
    if delegations is None:
        return None
    if succinct and isinstance(delegations, dict) and "succinct_roles" in delegations:
        bins = delegations["succinct_roles"]
        bits, prefix = (bins.get(k) if isinstance(bins, dict) else None for k in ("bit_length", "name_prefix"))
        if "roles" in delegations or not is_int(bits) or not 1 <= bits <= 32 or not isinstance(prefix, str):
            raise MetadataError(f"{what}: succinct_roles needs a bit_length of 1..32 and a name_prefix, and no "
                                "roles")
        return Delegations(delegations.get("keys"), (), SuccinctRoles(bits, prefix, bins), False)
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
    return Delegations(delegations.get("keys"), tuple(DelegatedRole.of(r) for r in roles), None, True)


def delegation_keys(role_file: RoleFile, what: str) -> Mapping[str, Any]:
    """The checked ``delegations.keys`` of a delegating role (key ID -> entry)."""
    cached = role_file.view("delegation keys")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    delegations = role_file.signed.get("delegations")
    keys = delegations.get("keys") if isinstance(delegations, dict) else None
    if not isinstance(keys, dict):
        raise MetadataError(f"{what}: delegations.keys must be an object")
    check_key_entries(keys, what, in_root=False)
    role_file.keep_view("delegation keys", keys)
    return keys
