"""Root files and key files on disk: what the ``root`` and ``keys`` commands do, less the printing.

:mod:`repo_tool.signing.rootfile` edits a root in memory (keys, thresholds, signatures); this module
reads the file, applies an edit, writes the file back only when it changed (an edit clears the
signatures, so an edit that changes nothing keeps them), signs in turns and cross-signs, verifies a
root as a node would, and writes new key files.  Each function returns what happened; it must not
print or read the clock (the caller passes ``now``), and it leaves the TUF rules to
:mod:`repo_tool.trust` and the root editing to ``rootfile``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from repo_tool.core.instant import format_whole_seconds
from repo_tool.errors import ConfigError, UsageError, VerificationError
from repo_tool.localfs import stat_or_none, write_atomic
from repo_tool.signing.keyfiles import GeneratedKey, generate_private, write_private_key
from repo_tool.signing.rootfile import (
    SignResult,
    check_root_keys,
    new_root,
    read_root_file,
    root_file_bytes,
    sign,
)
from repo_tool.signing.signers import load_signer
from repo_tool.trust.model import TOP_ROLES, RoleFile
from repo_tool.trust.verifier import verify_next_root, verify_trusted_root

T = TypeVar("T")


def write_root_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically (mode 0644: a root is public)."""
    try:
        write_atomic(path, data, mode=0o644)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


def refuse_overwrite(path: Path, force: bool) -> None:
    """A :class:`UsageError` if ``path`` exists and ``force`` is not given."""
    if stat_or_none(path) is not None and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")


def init_root_file(path: Path, expires: int, version: int, threshold: int, force: bool) -> None:
    """A new, unsigned root at ``path`` (refused if the file exists, unless ``force``)."""
    refuse_overwrite(path, force)
    write_root_file(path, root_file_bytes(new_root(expires, version, threshold)))


@dataclass(frozen=True)
class RootEdit:
    """What an edit did to a root file: written or not, and its signatures cleared or kept."""

    written: bool
    signatures: int  # the file's signatures before: cleared if written, else kept


def edit_root_file(path: Path, change: Callable[[dict[str, Any]], T]) -> tuple[T, RootEdit]:
    """Apply ``change`` to a copy of the root's ``signed`` and write it, unsigned (the signatures no
    longer match), only if it changed; return what ``change`` returned and what was done."""
    root = read_root_file(path)
    signed = copy.deepcopy(root.signed)
    value = change(signed)
    if signed == root.signed:
        return value, RootEdit(False, len(root.signatures))
    write_root_file(path, root_file_bytes(signed))
    return value, RootEdit(True, len(root.signatures))


def set_expires(signed: dict[str, Any], expires: int) -> None:
    signed["expires"] = format_whole_seconds(expires)


def set_version(signed: dict[str, Any], version: int) -> None:
    signed["version"] = version


def bump_version(signed: dict[str, Any], expires: int | None = None) -> int:
    """Version + 1 (the start of a rotation), and a new expiry if given; return the new version."""
    signed["version"] = int(str(signed["version"])) + 1
    if expires is not None:
        set_expires(signed, expires)
    return int(signed["version"])


@dataclass(frozen=True)
class RootSigning:
    """Signatures added in memory to the root at ``path``; :meth:`save` writes them."""

    path: Path
    result: SignResult
    keys_given: int

    @property
    def summary(self) -> str:
        """What signing did, for people: ``added 1 signature(s)``, or that nothing was needed."""
        result = self.result
        already = self.keys_given - len(result.added) - len(result.skipped)
        if not result.added:
            return "no new signature needed (every key given has signed already)"
        had = f" ({already} key(s) had signed already)" if already else ""
        return f"added {len(result.added)} signature(s){had}"

    @property
    def shortfall(self) -> str:
        """The thresholds still short, ``what: have of need; ...`` (empty when all are met)."""
        return "; ".join(f"{what}: {have} of {need}" for what, (have, need) in self.result.missing.items())

    def save(self, ignore_threshold: bool = False) -> None:
        """Write the signed root, unless signing added and dropped nothing (a rerun leaves the file
        alone).  A role with fewer keys than its threshold can never be met: refused unless
        ``ignore_threshold``; short signatures are fine (the next key holder signs)."""
        result = self.result
        if not ignore_threshold and any(what.endswith("keys") for what in result.missing):
            raise VerificationError(f"{self.path}: thresholds cannot be met ({self.shortfall}); nothing written")
        if result.added or result.dropped:
            write_root_file(self.path, result.data)


def sign_root_file(path: Path, sources: tuple[str, ...] | list[str], old_root: Path | None = None) -> RootSigning:
    """Sign the root at ``path`` with each key source (with ``old_root``, the root it replaces:
    cross-signing with that root's keys).  Every key must be a root key of the signing root before
    any signs: a wrong key is an error, not a silent no-op.  Nothing is written (see :meth:`RootSigning.save`)."""
    root = read_root_file(path)
    cross = read_root_file(old_root).signed if old_root else None
    if cross is not None and int(cross["version"]) + 1 != root.version:
        raise UsageError(f"{old_root} is version {cross['version']}; {path} must be version {cross['version']} + 1")
    signers = [load_signer(source) for source in sources]
    if cross is not None:
        check_root_keys(signers, cross, str(old_root), root.signed, str(path))
    else:
        check_root_keys(signers, root.signed, str(path))
    return RootSigning(path, sign(root, signers, cross), len(signers))


def verify_root_file(path: Path, previous: Path | None, now: int | None) -> RoleFile:
    """Verify a root as tough would: its parsing rules and its own thresholds, with ``previous`` the
    rotation from that root (version + 1, signed by its root keys too), and every role's threshold
    reachable; with ``now``, also that it has not expired.  Raise :class:`VerificationError` if not."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise UsageError(f"{path}: empty file")
    if previous is not None:
        old = verify_trusted_root(read_root_file(previous).raw, str(previous))
        root = verify_next_root(old, raw, str(path))
    else:
        root = verify_trusted_root(raw, str(path))
    for role in TOP_ROLES:
        role_def = root.signed["roles"][role]
        if role_def["threshold"] > len(role_def["keyids"]):
            raise VerificationError(f"{path}: {role} threshold {role_def['threshold']} exceeds its "
                                    f"{len(role_def['keyids'])} keys")
    if now is not None and root.expires <= now:
        raise VerificationError(f"{path}: expired at {root.signed['expires']}")
    return root


def describe_text(info: dict[str, Any]) -> list[str]:
    """``root show``'s lines for :func:`~repo_tool.signing.rootfile.describe`'s summary."""
    lines = [f"root version {info['version']}, expires {info['expires']}, spec {info['spec_version']}"]
    keys = info["keys"]
    for role, role_info in info["roles"].items():
        lines.append(f"{role}: threshold {role_info['threshold']} of {len(role_info['keyids'])}")
        for keyid in role_info["keyids"]:
            lines.append(f"  {keyid}  {keys.get(keyid, {}).get('keytype', 'MISSING')}")
    threshold = info["root_threshold"]
    met = "met" if threshold["met"] else "NOT met"
    lines.append(f"signatures: {len(info['signatures'])}; root threshold {threshold['threshold']}: "
                 f"{threshold['valid']} valid root signature(s), {met}")
    for sig in info["signed_by"]:
        listed = f"listed for {', '.join(sig['roles'])}" if sig["roles"] else "listed for no role"
        lines.append(f"  {sig['keyid']}  {sig['status']}" + ("" if sig["status"] == "unknown key" else f", {listed}"))
    return lines


def generate_key_files(path: Path, keytype: str, passphrase: bytes | None, public_path: Path | None) -> GeneratedKey:
    """A new private key at ``path`` (mode 0600, encrypted with ``passphrase`` if given) and, if
    ``public_path``, its public key PEM there; if that cannot be written the private key goes too."""
    private = generate_private(keytype)
    generated = write_private_key(path, private, passphrase)
    if public_path is not None:
        from cryptography.hazmat.primitives import serialization

        pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        try:
            write_atomic(public_path, pem, mode=0o644)
        except OSError as exc:  # the new private key goes too: no key half-made
            path.unlink()
            raise UsageError(f"--public {public_path}: cannot write: {exc.strerror or exc}") from None
    return generated
