"""Signing role files: choose the configured keys a root lists for a role, sign, check the threshold.

The signing half of :mod:`repo_tool.trust.metadata` (which only reads, builds and verifies):
it needs signer objects (securesystemslib, KMS), which nothing a node loads may import.
Nothing here reads or writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repo_tool.errors import VerificationError
from repo_tool.signing.signers import KeySigner
from repo_tool.trust.keys import verify
from repo_tool.trust.model import SignedPart, ThresholdError, envelope_bytes


@dataclass
class SigningReport:
    role: str
    signed_by: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def append_signatures(data: bytes, signatures: list[dict[str, Any]], candidates: dict[str, Any],
                      signers: list[KeySigner]) -> tuple[list[str], list[str]]:
    """Append to ``signatures`` one signature over ``data`` per signer whose key is among
    ``candidates`` (key ID → entry) and has not signed yet.  Each new signature is verified as
    tough would (a KMS or HSM back end with the wrong padding is caught here, not on the nodes).
    Return (key IDs added, sources skipped because their key is not a candidate)."""
    chosen, skipped = choose_signers(candidates, signers, signatures)
    added: list[str] = []
    for signer, keyid in chosen:
        sig = signer.sign_hex(data)
        if not verify(candidates[keyid], sig, data):
            raise VerificationError(f"key {signer.source}: produced a signature that does not verify "
                                    "(RSA must be PSS with a 32-byte salt, ECDSA DER over SHA-256)")
        signatures.append({"keyid": keyid, "sig": sig})
        added.append(keyid)
    return added, skipped


def choose_signers(candidates: dict[str, Any], signers: list[KeySigner],
                   signatures: Sequence[dict[str, Any]] = ()) -> tuple[list[tuple[KeySigner, str]], list[str]]:
    """The signers that would add a signature: one per key among ``candidates`` (key ID -> entry)
    that has not signed yet, with its key ID; and the sources skipped because their key is not one."""
    have = {s["keyid"].lower() for s in signatures}
    chosen: list[tuple[KeySigner, str]] = []
    skipped: list[str] = []
    for signer in signers:
        keyid = signer.keyid_in(candidates)
        if keyid is None:
            skipped.append(signer.source)
        elif keyid.lower() not in have:
            chosen.append((signer, keyid))
            have.add(keyid.lower())
    return chosen, skipped


def sign_role(
    part: SignedPart,
    root: dict[str, Any],
    signers: list[KeySigner],
    sign: bool = True,
) -> tuple[bytes, SigningReport]:
    """Sign ``part`` (a ``signed`` object and its canonical bytes) with every signer whose key the
    root lists for the role; return file bytes.  Raise :class:`ThresholdError` if the threshold is
    not met.  ``sign`` False (a plan): the same choice of keys and the same threshold check, no
    signature."""
    role = str(part.value["_type"])
    data = part.encoded
    role_keyids = list(root["roles"][role]["keyids"])
    role_keys = {k: root["keys"][k] for k in role_keyids if k in root["keys"]}
    signatures: list[dict[str, Any]] = []
    if sign:
        added, skipped = append_signatures(data, signatures, role_keys, signers)
    else:
        chosen, skipped = choose_signers(role_keys, signers)
        added = [keyid for _, keyid in chosen]
    report = SigningReport(role, added, skipped)
    threshold = int(root["roles"][role]["threshold"])
    if len(added) < threshold:
        raise ThresholdError(
            f"cannot sign {role}: {len(added)} of the {threshold} required keys available "
            f"(root lists {len(role_keyids)} keys for {role}; configured keys that are not among them: "
            f"{', '.join(report.skipped) or 'none'})"
        )
    return envelope_bytes(data, signatures), report
