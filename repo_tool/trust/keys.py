"""TUF public key entries and signatures, exactly as tough reads them (SPEC §3.1, §3.4).

A *key entry* is the JSON object stored in a root's ``keys`` map.  Entries this
tool creates are exactly ``{"keytype", "scheme", "keyval": {"public"}}``; entries
read from elsewhere are kept verbatim (extra fields such as
``keyid_hash_algorithms`` included) because the key ID is the SHA-256 of the
canonical JSON of the *whole* entry.

Verification is done here with pyca/cryptography rather than through a generic
library so that it accepts exactly what tough (ring) accepts: RSA-PSS-SHA256
with a 32-byte salt and a 2048-8192-bit modulus, ECDSA P-256 with DER
signatures (PEM SPKI or hex SEC1 public keys), and Ed25519.

Public keys only: private keys, their files and passphrases are
:mod:`repo_tool.signing.keyfiles`.  Nothing here reads files or the environment.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from repo_tool.errors import ConfigError
from repo_tool.trust.tufjson import canonical

KEY_TYPES = ("ed25519", "ecdsa", "rsa")
RSA_PSS = "rsassa-pss-sha256"
ECDSA_P256 = "ecdsa-sha2-nistp256"
ED25519 = "ed25519"
RSA_MIN_BITS, RSA_MAX_BITS = 2048, 8192
PSS_SALT = 32


class KeyError_(ConfigError):
    """A key file or key entry cannot be used."""


def key_data_problem(exc: Exception) -> str:
    """What cryptography says about key data it cannot load, in its first sentence: the rest names
    its parser's internals (``MalformedFraming``, ``Tag { value: 0, ... }``) and a FAQ link."""
    return str(exc).split(". ")[0].splitlines()[0].rstrip(".") if str(exc) else "not key data this tool reads"


def keyid_of(entry: dict[str, Any]) -> str:
    """The TUF key ID: SHA-256 of the canonical JSON of the whole entry."""
    return hashlib.sha256(canonical(entry)).hexdigest()


# --- public keys --------------------------------------------------------------


def entry_for_public(public: PublicKeyTypes) -> dict[str, Any]:
    """A new key entry for ``public`` in the one spelling this tool writes."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"keytype": ED25519, "scheme": ED25519, "keyval": {"public": raw.hex()}}
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if isinstance(public, rsa.RSAPublicKey):
        if not RSA_MIN_BITS <= public.key_size <= RSA_MAX_BITS:
            raise KeyError_(f"RSA key of {public.key_size} bits: tough accepts {RSA_MIN_BITS}-{RSA_MAX_BITS}")
        return {"keytype": "rsa", "scheme": RSA_PSS, "keyval": {"public": pem}}
    if isinstance(public, ec.EllipticCurvePublicKey):
        if not isinstance(public.curve, ec.SECP256R1):
            raise KeyError_(f"ECDSA curve {public.curve.name}: tough accepts only P-256 (secp256r1)")
        return {"keytype": ECDSA_P256, "scheme": ECDSA_P256, "keyval": {"public": pem}}
    raise KeyError_(f"unsupported key type {type(public).__name__}: use ed25519, ecdsa (P-256) or rsa")


def tough_key_problem(entry: object) -> str | None:
    """Why tough would refuse a root holding this key entry, or None (SPEC §3.1 table)."""
    if not isinstance(entry, dict):
        return "key entry is not an object"
    keytype, scheme, keyval = entry.get("keytype"), entry.get("scheme"), entry.get("keyval")
    if not isinstance(keyval, dict) or not isinstance(keyval.get("public"), str):
        return "keyval.public is missing or not a string"
    accepted = {("rsa", RSA_PSS), ("ed25519", ED25519), (ECDSA_P256, ECDSA_P256), ("ecdsa", ECDSA_P256)}
    if not isinstance(keytype, str) or not isinstance(scheme, str) or (keytype, scheme) not in accepted:
        return f"key type {keytype!r} with scheme {scheme!r} is not one tough accepts"
    try:
        public_key(entry)
    except KeyError_ as exc:
        return exc.message
    return None


def public_key(entry: dict[str, Any]) -> PublicKeyTypes:
    """The cryptography public key of an entry (PEM SPKI, or hex for ed25519 / SEC1 ECDSA points)."""
    keyval = entry.get("keyval")
    text = keyval.get("public") if isinstance(keyval, dict) else None
    if not isinstance(text, str):
        raise KeyError_("key entry has no keyval.public string")
    keytype = entry.get("keytype")
    try:
        if keytype == "ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
        if text.startswith("-----BEGIN "):
            if not text.startswith("-----BEGIN PUBLIC KEY-----"):
                raise KeyError_(f"{keytype} public key must be a PEM SubjectPublicKeyInfo (BEGIN PUBLIC KEY)")
            key = serialization.load_pem_public_key(text.encode())
        elif keytype in ("ecdsa", ECDSA_P256):
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(text))
        else:
            raise KeyError_(f"{keytype} public key is not PEM")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyError_(f"{keytype} public key cannot be read: {key_data_problem(exc)}") from None
    if keytype == "rsa":
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyError_("keytype rsa but the PEM holds another kind of key")
        if not RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
            raise KeyError_(f"RSA modulus of {key.key_size} bits is outside {RSA_MIN_BITS}-{RSA_MAX_BITS}")
    elif keytype in ("ecdsa", ECDSA_P256) and (
        not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1)
    ):
        raise KeyError_("ECDSA key is not on P-256")
    return key


def same_public_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    return bool(public_der(a) == public_der(b))


def public_der(key: PublicKeyTypes) -> bytes:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def verify(entry: dict[str, Any], signature_hex: object, data: bytes) -> bool:
    """True iff ``signature_hex`` is a valid signature by ``entry`` over ``data`` as tough checks it."""
    if not isinstance(signature_hex, str):
        return False
    try:
        signature = bytes.fromhex(signature_hex)
        key = public_key(entry)
        scheme = entry.get("scheme")
        if isinstance(key, ed25519.Ed25519PublicKey) and scheme == ED25519:
            key.verify(signature, data)
        elif isinstance(key, rsa.RSAPublicKey) and scheme == RSA_PSS:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT)
            key.verify(signature, data, pss, hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey) and scheme == ECDSA_P256:
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (InvalidSignature, ValueError, KeyError_):
        return False
    return True
