"""Private keys on disk: generate, write (0600), read and decrypt PEM key files.

An encrypted PEM key is decrypted with the passphrase in ``REPO_TOOL_KEY_PASSPHRASE``, which
plain keys ignore (one config may mix both).  A private key read from a file is refused, as
ssh's StrictModes refuses it, when group or other may read or write the file (``mode & 0o077``);
``REPO_TOOL_INSECURE_KEYS=1`` skips that check.  Keys this tool writes are 0600.

The only home of private-key code besides the signer sources (:mod:`repo_tool.signing.signers`);
public keys and signature checks are :mod:`repo_tool.trust.keys`.  Nothing here signs or
touches a repository.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from repo_tool.localfs import stat_or_none, write_atomic
from repo_tool.trust.keys import KeyError_, entry_for_public, key_data_problem, keyid_of

PASSPHRASE_VARIABLE = "REPO_TOOL_KEY_PASSPHRASE"
INSECURE_KEYS_VARIABLE = "REPO_TOOL_INSECURE_KEYS"


@dataclass(frozen=True)
class GeneratedKey:
    path: Path
    entry: dict[str, Any]
    keyid: str


def generate_private(keytype: str) -> PrivateKeyTypes:
    if keytype == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if keytype == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if keytype == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise KeyError_(f"unknown key type {keytype!r}: use ed25519, ecdsa or rsa")


def private_pem(private: PrivateKeyTypes, passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_private_key(path: Path, private: PrivateKeyTypes, passphrase: bytes | None = None,
                      overwrite: bool = False) -> GeneratedKey:
    """Write a PKCS#8 PEM private key with mode 0600 (atomically) and return its public entry."""
    if stat_or_none(path) is not None and not overwrite:
        raise KeyError_(f"{path}: already exists; refusing to overwrite a key")
    entry = entry_for_public(private.public_key())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, private_pem(private, passphrase), mode=0o600)
    except OSError as exc:
        raise KeyError_(f"{path}: cannot write: {exc.strerror or exc}") from None
    return GeneratedKey(path, entry, keyid_of(entry))


def load_private_pem(data: bytes, where: str, passphrase: bytes | None = None,
                     passphrase_from: str = PASSPHRASE_VARIABLE) -> PrivateKeyTypes:
    """Read a PEM private key (PKCS#8 or PKCS#1/SEC1).  ``passphrase`` (taken from ``passphrase_from``)
    applies only to an encrypted key: a plain key loads whether or not one is given."""
    try:
        return serialization.load_pem_private_key(data, None)
    except TypeError:  # with no password, cryptography raises TypeError only for an encrypted key
        pass
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyError_(f"{where}: cannot read private key: {key_data_problem(exc)}") from None
    if not passphrase:
        raise KeyError_(f"{where}: the private key is encrypted; set {passphrase_from}")
    try:
        return serialization.load_pem_private_key(data, passphrase)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        raise KeyError_(f"wrong passphrase ({passphrase_from}) for encrypted key {where}") from None


def env_passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_VARIABLE)
    return value.encode() if value else None


def read_private_key_file(path: Path) -> bytes:
    """The bytes of the private key file ``path``, refused (like ssh's StrictModes) when group or
    other may read or write it, unless ``REPO_TOOL_INSECURE_KEYS=1``.  The mode checked is that of
    the file opened (``fstat`` of the descriptor read), so it cannot be swapped in between."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise KeyError_(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        loose = stat.S_IMODE(mode) & 0o077
        if loose and not stat.S_ISDIR(mode) and os.name == "posix" and not insecure_keys_allowed():
            raise KeyError_(f"key file {path} has mode {stat.S_IMODE(mode):04o} (group/other can read or "
                            f"write it); run: chmod 600 {shlex.quote(str(path))}")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise KeyError_(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def insecure_keys_allowed() -> bool:
    """``REPO_TOOL_INSECURE_KEYS=1``: use private key files whatever their mode."""
    return os.environ.get(INSECURE_KEYS_VARIABLE) == "1"
