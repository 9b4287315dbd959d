"""The write checklist (SPEC §3.2) and tough's re-serialization rules, in one place.

:func:`write_problems` is the publisher's self-check of every file it is about to write;
:func:`tree_findings` is the one walk over a ``signed`` tree for what tough would not read back
the same (nulls, floats, non-NFC text, ``"custom"`` members), which the write checklist and the
auditor (``tough_refusals``) both judge.  Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from repo_tool.trust.keys import keyid_of
from repo_tool.trust.lines import all_match, lines_of
from repo_tool.trust.model import (
    SHA256_HEX_LOWER,
    SIZE_LIMITS,
    SPEC_VERSION,
    TOP_ROLES,
    MetadataError,
    Root,
    SignedPart,
    is_int,
    parse_built_role,
    parse_role,
    parse_root,
)
from repo_tool.trust.signatures import duplicate_keyids

SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SAFE_NAMES = lines_of(SAFE_NAME)
_SHA256_LINES = lines_of(SHA256_HEX_LOWER)

FindingKind = Literal["null", "float", "string", "name", "custom"]


@dataclass(frozen=True)
class TreeFinding:
    """One thing in a ``signed`` tree tough would not read back as written.  ``path`` is written
    ``signed.targets.NAME.custom`` / ``signed.x[0]``; ``value`` is the node (for ``name``, the member name)."""

    kind: FindingKind
    path: str
    value: Any


def is_safe_name(name: str) -> bool:
    """SPEC §2.3: ``[A-Za-z0-9._-]+``, not ``.`` or ``..``."""
    return SAFE_NAME.fullmatch(name) is not None and name not in (".", "..")


def tree_findings(value: Any, path: str = "signed", opaque_target_custom: bool = False) -> Iterator[TreeFinding]:
    """Every null, float, non-NFC string and member name, and every ``"custom"`` member (kind
    ``custom``, with its value) in ``value``.  ``opaque_target_custom``: do not look inside the
    ``custom`` of a target (``signed.targets.NAME.custom``: tough keeps it as opaque JSON).
    Scalars that cannot be a finding (ASCII strings, integers, booleans) are not visited."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        here, node = stack.pop()
        if node is None:
            yield TreeFinding("null", here, node)
        elif isinstance(node, float):
            yield TreeFinding("float", here, node)
        elif isinstance(node, str):
            if not node.isascii() and not unicodedata.is_normalized("NFC", node):
                yield TreeFinding("string", here, node)
        elif isinstance(node, dict):
            for key, child in node.items():
                if not key.isascii() and not unicodedata.is_normalized("NFC", key):
                    yield TreeFinding("name", here, key)
                if key == "custom":
                    yield TreeFinding("custom", f"{here}.{key}", child)
                    if opaque_target_custom and here.startswith(f"{path}.targets."):
                        continue
                if child is None or isinstance(child, (dict, list, float)) or (
                    isinstance(child, str) and not child.isascii()
                ):
                    stack.append((f"{here}.{key}", child))
        elif isinstance(node, list):
            stack.extend((f"{here}[{i}]", child) for i, child in enumerate(node))


def write_problems(raw: bytes, role: str, root: Mapping[str, Any] | None, built: SignedPart | None = None
                   ) -> list[str]:
    """Every SPEC §3.2 rule ``raw`` breaks (empty list = fine).  ``root`` verifies signatures
    (a root file is checked against itself when ``root`` is None).  ``built``: the ``signed``
    object ``raw`` was just built from, which spares a second canonical encode (the bytes are
    still parsed and checked: :func:`~repo_tool.trust.model.parse_built_role`)."""
    problems: list[str] = []
    try:
        rf = parse_role(raw, role, role) if built is None else parse_built_role(raw, role, role, built)
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
        result = Root.of(root).check(role, rf.signed_bytes, rf.signatures)
        if not result.verified:
            problems.append(f"signature threshold not met for role {role}: {len(result.signed)} valid of "
                            f"{result.threshold} required")
    return problems


_TREE_MESSAGES = {"null": "contains JSON null", "float": "contains a float"}


def _tree_problems(value: Any) -> list[str]:
    problems: list[str] = []
    for finding in tree_findings(value):
        if finding.kind == "string":
            problems.append(f"string {finding.value!r} is not NFC")
        elif finding.kind == "name":
            problems.append(f"member name {finding.value!r} is not NFC")
        elif finding.kind == "custom":
            if finding.value == {}:
                problems.append('contains "custom": {}')
        else:
            problems.append(_TREE_MESSAGES[finding.kind])
    return problems


def _root_problems(signed: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if signed.get("consistent_snapshot") is not True:
        problems.append("consistent_snapshot must be true")
    try:
        root = parse_root(signed, "root")
    except MetadataError as exc:
        return [*problems, exc.message]
    for keyid, entry in root.keys.items():
        if keyid != keyid_of(entry):
            problems.append(f"key ID {keyid} is not the sha256 of its entry")
    if set(root.roles) != set(TOP_ROLES):
        problems.append(f"roles must be exactly {', '.join(TOP_ROLES)}")
    for role in TOP_ROLES:
        role_def = root.roles[role]
        keyids = role_def.keyids
        if len(set(keyids)) != len(keyids):
            problems.append(f"roles.{role}.keyids lists a key twice")
        missing = [k for k in keyids if k not in root.keys]
        if missing:
            problems.append(f"roles.{role} lists key IDs not in keys: {', '.join(missing)}")
        if role_def.threshold > len(keyids):
            problems.append(f"roles.{role}.threshold {role_def.threshold} is above its {len(keyids)} keys")
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
    if _targets_fine(targets):
        return _delegations_problems(signed)
    fullmatch = SAFE_NAME.fullmatch
    for name, entry in targets.items():
        if not fullmatch(name) or name in (".", ".."):
            problems.append(f"target name {name!r} is outside the safe set")
        problems.extend(_entry_problems(name, entry, check_digest=True))
    return problems + _delegations_problems(signed)


def _entry_problems(name: str, entry: Any, check_digest: bool) -> list[str]:
    """The SPEC §3.2 rules one targets entry breaks (its name's apart).  ``check_digest`` False: the
    sha256 digest's form is left to the caller, which matches all of them at once."""
    if type(entry) is not dict or not is_int(entry.get("length")):
        return [f"target {name}: length missing"]
    problems = []
    hashes = entry.get("hashes")
    if type(hashes) is not dict or not hashes or next(iter(hashes)) != "sha256" or not (
            _is_sha256(hashes["sha256"]) if check_digest else type(hashes["sha256"]) is str):
        problems.append(f"target {name}: hashes must start with sha256")
    if "custom" in entry and (not isinstance(entry["custom"], dict) or not entry["custom"]):
        problems.append(f"target {name}: custom must be a non-empty object when present")
    return problems


def _delegations_problems(signed: dict[str, Any]) -> list[str]:
    delegations = signed.get("delegations")
    if delegations is not None and delegations != {"keys": {}, "roles": []}:
        return ["delegations are not written by this tool"]
    return []


def _targets_fine(targets: dict[str, Any]) -> bool:
    """True when every entry passes :func:`_targets_problems`' checks: the same per-entry rule
    (:func:`_entry_problems`), with names and digests matched joined, one pass each (a publish
    checks 10,000)."""
    if not all_match(_SAFE_NAMES, list(targets)) or "." in targets or ".." in targets:
        return False
    digests = []
    for name, entry in targets.items():
        if _entry_problems(name, entry, check_digest=False):
            return False
        digests.append(entry["hashes"]["sha256"])
    return all_match(_SHA256_LINES, digests)


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256_HEX_LOWER.fullmatch(value) is not None
