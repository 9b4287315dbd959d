"""Root role lifecycle, like ``tuftool root`` (SPEC §10.5).

Operations work on a root *file* (envelope) and return new file bytes.  Every
edit that changes the root clears the signatures (they no longer match); :func:`sign`
appends one signature per key so key holders can sign one after another, offline,
and :func:`check_root_keys` refuses, before anything is signed, a key that is not a root key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from repo_tool.core.instant import format_whole_seconds
from repo_tool.errors import ConfigError, UsageError, VerificationError
from repo_tool.signing.sign import append_signatures
from repo_tool.signing.signers import KeySigner, load_signer
from repo_tool.trust.keys import (
    KeyError_,
    entry_for_public,
    key_data_problem,
    keyid_of,
    public_key,
    same_public_key,
    verify,
)
from repo_tool.trust.metadata import role_result
from repo_tool.trust.model import SPEC_VERSION, TOP_ROLES, MetadataError, RoleFile, Root, parse_role, parse_root
from repo_tool.trust.tufjson import canonical, pretty

ROOT_EXPIRY_DEFAULT = "52 weeks"


def new_root(expires: int, version: int = 1, threshold: int = 1) -> dict[str, Any]:
    return {
        "_type": "root",
        "spec_version": SPEC_VERSION,
        "consistent_snapshot": True,
        "version": version,
        "expires": format_whole_seconds(expires),
        "keys": {},
        "roles": {role: {"keyids": [], "threshold": threshold} for role in TOP_ROLES},
    }


def root_file_bytes(signed: dict[str, Any], signatures: list[dict[str, Any]] | None = None) -> bytes:
    """Root files are small and handled by people: pretty JSON (any formatting is valid TUF)."""
    return pretty({"signed": signed, "signatures": signatures or []})


def read_root_file(path: Path) -> RoleFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        root = parse_role(raw, "root", str(path))
        parse_root(root.signed, str(path))
    except MetadataError as exc:
        raise ConfigError(exc.message) from None
    return root


def _check_role(role: str) -> None:
    if role not in TOP_ROLES:
        raise UsageError(f"unknown role {role!r} (roles: {', '.join(TOP_ROLES)})")


def load_public_entry(source: str, base_dir: Path | None = None) -> dict[str, Any]:
    """A key entry from a public key PEM file, or from any private key source."""
    path = Path(source[5:] if source.startswith("file:") else source)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        data = path.read_bytes() if path.is_file() else b""
    except OSError:
        data = b""
    if b"-----BEGIN PUBLIC KEY-----" in data:
        try:
            return entry_for_public(serialization.load_pem_public_key(data))
        except ValueError as exc:
            raise ConfigError(f"key {source}: cannot read public key: {key_data_problem(exc)}") from None
        except KeyError_ as exc:
            raise ConfigError(f"key {source}: {exc}") from None
    return load_signer(source, base_dir).entry


def add_key(signed: dict[str, Any], entry: dict[str, Any], roles: list[str]) -> str:
    """Add ``entry`` to ``keys`` (reusing an existing spelling of the same key) and to ``roles``."""
    for role in roles:
        _check_role(role)
    keyid = keyid_of(entry)
    new_public = public_key(entry)
    for existing_id, existing in signed["keys"].items():
        try:
            if same_public_key(public_key(existing), new_public):
                keyid = existing_id
                break
        except KeyError_:
            continue
    else:
        signed["keys"][keyid] = entry
    for role in roles:
        keyids = signed["roles"][role]["keyids"]
        if keyid not in keyids:
            keyids.append(keyid)
    return str(keyid)


def remove_key(signed: dict[str, Any], keyid: str, role: str | None) -> str:
    """Remove the key ``keyid`` (a unique prefix) from ``role``, or from every role and the key list;
    return its full key ID."""
    matches = [k for k in signed["keys"] if k.startswith(keyid.lower())]
    listed = {k for r in TOP_ROLES for k in signed["roles"][r]["keyids"] if k.startswith(keyid.lower())}
    found = sorted(set(matches) | listed)
    if not found:
        raise UsageError(f"no key {keyid} in the root")
    if len(found) > 1:
        raise UsageError(f"key ID prefix {keyid} matches {len(found)} keys; give more digits")
    full: str = found[0]
    if role is not None:
        _check_role(role)
        if full not in signed["roles"][role]["keyids"]:
            raise UsageError(f"key {full} is not a {role} key")
        signed["roles"][role]["keyids"].remove(full)
        if not any(full in signed["roles"][r]["keyids"] for r in TOP_ROLES):
            signed["keys"].pop(full, None)
        return full
    for r in TOP_ROLES:
        if full in signed["roles"][r]["keyids"]:
            signed["roles"][r]["keyids"].remove(full)
    signed["keys"].pop(full, None)
    return full


def set_threshold(signed: dict[str, Any], role: str, threshold: int) -> None:
    _check_role(role)
    if threshold < 1:
        raise UsageError("threshold must be at least 1")
    signed["roles"][role]["threshold"] = threshold


@dataclass
class SignResult:
    data: bytes
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: dict[str, tuple[int, int]] = field(default_factory=dict)
    dropped: int = 0


def threshold_shortfalls(signed: dict[str, Any], signatures: list[dict[str, Any]],
                         signing_root: dict[str, Any] | None = None) -> dict[str, tuple[int, int]]:
    """Roles whose key list is shorter than the threshold, and root when its signatures fall short;
    ``role -> (have, need)``."""
    short: dict[str, tuple[int, int]] = {}
    root = Root.of(signed)
    for role in TOP_ROLES:
        have, need = len(root.roles[role].keyids), root.roles[role].threshold
        if have < need:
            short[f"{role} keys"] = (have, need)
    data = canonical(signed)
    judged = [("root signatures", root)]
    if signing_root is not None:
        judged.append(("signatures by the previous root", Root.of(signing_root)))
    for label, judge in judged:
        result = judge.check("root", data, signatures)
        if not result.verified:
            short[label] = (len(result.signed), result.threshold)
    return short


def _root_keys(signed: dict[str, Any]) -> dict[str, Any]:
    """The root keys of a root: key ID -> entry, for the key IDs its root role lists."""
    root = Root.of(signed)
    root_ids = set(root.roles["root"].keyids)
    return {k: v for k, v in root.keys.items() if k in root_ids}


def roles_of(signed: dict[str, Any], keyid: str) -> list[str]:
    """The top-level roles ``signed`` (a root) lists ``keyid`` for, in TOP_ROLES order (case-insensitive)."""
    root = Root.of(signed)
    return [role for role in TOP_ROLES if keyid.lower() in root.keyids(role)]


def check_root_keys(signers: list[KeySigner], signing_root: dict[str, Any], root_name: str,
                    other_root: dict[str, Any] | None = None, other_name: str = "") -> None:
    """Raise :class:`VerificationError` naming every signer whose key is not a root key of
    ``signing_root`` (read from ``root_name``) and the roles that root does list it for.  ``other_root``
    (with cross-signing, the new root) only adds a hint when the key is a root key there.  Checked
    before anything is signed or written, so a wrong key costs nothing."""
    problems = []
    candidates = _root_keys(signing_root)
    for signer in signers:
        if signer.keyid_in(candidates) is not None:
            continue
        keyid = signer.keyid_in(signing_root["keys"]) or signer.keyid
        roles = roles_of(signing_root, keyid)
        if "root" in roles:
            where = f"it is listed for {', '.join(roles)} but {root_name} has no key entry for it"
        elif roles:
            where = f"it is listed for {', '.join(roles)}"
        elif keyid in signing_root["keys"]:
            where = f"it is in {root_name} but listed for no role"
        else:
            where = f"it is not in {root_name} at all"
        if other_root is not None:
            other_id = signer.keyid_in(other_root["keys"])
            if other_id is not None and "root" in roles_of(other_root, other_id):
                where += f", but is a root key of {other_name}: use 'root sign' without the old root"
        problems.append(f"key {signer.source} is not a root key of {root_name} ({where})")
    if problems:
        raise VerificationError(f"{'; '.join(problems)}; nothing written")


def sign(root: RoleFile, signers: list[KeySigner], cross_root: dict[str, Any] | None = None) -> SignResult:
    """Append a signature by each signer whose key is a root key of this root (or, with
    ``cross_root``, of the previous root).  Existing valid signatures are kept.  Signers that are
    not root keys are skipped (``SignResult.skipped``); :func:`check_root_keys` refuses them first."""
    signed = root.signed
    data = canonical(signed)
    candidates = _root_keys(cross_root if cross_root is not None else signed)
    # Keep only signatures that still verify (by this root's or the previous root's root keys):
    # an edited root invalidates them, and a stale one must not block its key from signing again.
    verifiers = [signed] if cross_root is None else [signed, cross_root]
    valid_ids = set().union(*(role_result(data, root.signatures, r, "root").signed for r in verifiers))
    signatures = [dict(s) for s in root.signatures if s["keyid"].lower() in valid_ids]
    result = SignResult(b"")
    result.dropped = len(root.signatures) - len(signatures)
    result.added, result.skipped = append_signatures(data, signatures, candidates, signers)
    result.data = root_file_bytes(signed, signatures)
    result.missing = threshold_shortfalls(signed, signatures, cross_root)
    return result


def describe(root: RoleFile) -> dict[str, Any]:
    """A summary for ``root show``: version, expiry, keys per role, and who signed: each signature's
    key ID, the roles of this root that list the key, and whether it verifies (``valid``, ``invalid``,
    or ``unknown key``: not a key of this root, e.g. the previous root's when cross-signed), with the
    root role's threshold met or not."""
    signed = root.signed
    typed = Root.of(signed)
    roles = {role: {"threshold": typed.roles[role].threshold, "keyids": list(typed.roles[role].keyids)}
             for role in TOP_ROLES}
    data = canonical(signed)
    result = typed.check("root", data, root.signatures)
    keys = {k.lower(): v for k, v in typed.keys.items()}
    signed_by = []
    for sig in root.signatures:
        keyid = str(sig["keyid"])
        entry = keys.get(keyid.lower())
        status = "unknown key" if entry is None else "valid" if verify(entry, sig.get("sig"), data) else "invalid"
        listed_for = [role for role in TOP_ROLES if keyid.lower() in (k.lower() for k in typed.roles[role].keyids)]
        signed_by.append({"keyid": keyid, "roles": listed_for, "status": status})
    return {
        "version": signed["version"],
        "expires": signed["expires"],
        "spec_version": signed.get("spec_version"),
        "consistent_snapshot": signed.get("consistent_snapshot"),
        "keys": {k: {"keytype": v.get("keytype"), "scheme": v.get("scheme")} for k, v in signed["keys"].items()},
        "roles": roles,
        "signatures": [s["keyid"] for s in root.signatures],
        "signed_by": signed_by,
        "valid_root_signatures": sorted(result.signed),
        "root_threshold": {"threshold": result.threshold, "valid": len(result.signed), "met": result.verified},
    }
