"""Signing key sources (SPEC §10.6) resolved to securesystemslib signers.

Accepted forms of a key source:

* ``PATH``, ``file:PATH``, ``file://PATH`` (tuftool strips the 7 characters of
  ``file://``), ``file2:PATH`` (securesystemslib's spelling): a PEM private key
  (PKCS#8, PKCS#1 or SEC1), encrypted ones with ``REPO_TOOL_KEY_PASSPHRASE`` (plain keys
  ignore it).  The file must not be readable or writable by group or other (``chmod 600``,
  as ssh's StrictModes demands); ``REPO_TOOL_INSECURE_KEYS=1`` skips that check;
* ``envvar:NAME``: the PEM text is in environment variable NAME (pubsys ``env``; no mode check);
* ``awskms:KEY`` (securesystemslib) or ``aws-kms://[PROFILE]/KEY`` (tuftool):
  an AWS KMS key id, alias or ARN, signed through :class:`~repo_tool.signing.kms_signer.KmsSigner`;
* ``aws-ssm://[PROFILE]/NAME`` (tuftool) or ``ssm:NAME`` (pubsys' exact name): a PEM private key in an
  SSM SecureString parameter (:mod:`repo_tool.signing.ssm`), held in memory only.
* ``hsm:[KEYID][?label=TOKEN]``: a key on a PKCS#11 token (module from ``PYKCS11LIB``, PIN from
  ``REPO_TOOL_HSM_PIN`` or the terminal), signed through securesystemslib's HSMSigner
  (:mod:`repo_tool.signing.hsm`).

Relative paths are taken from ``base_dir`` (the directory of the config file).
:func:`role_signers` loads the keys a :class:`~repo_tool.config.RepoConfig` lists (the config holds
only the source strings).  This module must not parse KMS key names or read DescribeKey's answer
itself (:mod:`repo_tool.signing.kms` does), nor decide thresholds (the trust rules do).
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from securesystemslib.signer import CryptoSigner, Signer, SSlibKey

from repo_tool.aws import AwsSettings, ServiceError, reason
from repo_tool.errors import ConfigError, RepoToolError, mentions
from repo_tool.signing import hsm, kms, ssm
from repo_tool.signing.keyfiles import env_passphrase, load_private_pem, read_private_key_file
from repo_tool.signing.kms_signer import KmsSigner
from repo_tool.trust.keys import KeyError_, entry_for_public, keyid_of, public_key, same_public_key
from repo_tool.trust.model import TOP_ROLES

if TYPE_CHECKING:  # types-boto3[kms] (dev only)
    from types_boto3_kms.client import KMSClient


class KeySources(Protocol):
    """What signing needs of a configuration (a :class:`~repo_tool.config.RepoConfig`): the key
    sources per role, where relative paths start, the AWS settings, and names for messages.  A
    protocol, so that signing does not import the configuration (nor what it imports)."""

    @property
    def source(self) -> Path: ...
    @property
    def name(self) -> str: ...
    @property
    def signers(self) -> dict[str, list[str]]: ...
    @property
    def base_dir(self) -> Path: ...
    @property
    def aws(self) -> AwsSettings: ...


@dataclass
class KeySigner:
    """One usable signing key: where it came from, its public entry, and the signer."""

    source: str
    entry: dict[str, Any]
    public: PublicKeyTypes
    signer: Signer

    @property
    def keyid(self) -> str:
        return keyid_of(self.entry)

    def sign_hex(self, data: bytes) -> str:
        try:
            return self.signer.sign(data).signature
        except Exception as exc:  # signer back ends raise their own types (botocore, ...)
            raise ServiceError(f"key {self.source}: signing failed: {_signing_reason(exc)}") from None

    def keyid_in(self, keys: dict[str, Any]) -> str | None:
        """The key ID this key has in a root's ``keys`` map (any spelling of the same key), or None."""
        own = self.keyid
        if own in keys:
            return own
        for keyid, entry in keys.items():
            try:
                if same_public_key(public_key(entry), self.public):
                    return str(keyid)
            except KeyError_:
                continue
        return None


def load_signer(source: str, base_dir: Path | None = None, aws: AwsSettings | None = None) -> KeySigner:
    """Resolve one key source to a signer; raise :class:`ConfigError` naming the source."""
    key = kms.parse_source(source)
    if key is not None:
        return _kms_signer(source, key.key_id, aws or AwsSettings(), key.profile)
    parameter = ssm.parse_source(source)
    if parameter is not None:
        pem = ssm.read_private_pem(source, parameter, aws or AwsSettings())
        return _crypto_signer(source, pem, f"SSM parameter {parameter.parameter}")
    if hsm.is_source(source):  # a PKCS#11 token: hsm:[KEYID][?label=TOKEN] (signing/hsm.py)
        return KeySigner(source, *hsm.load(source))
    scheme, sep, rest = source.partition(":")
    if not sep or len(scheme) == 1 or "/" in scheme or "." in scheme:  # a plain path (or C:\ on Windows)
        scheme, rest = "file", source
    if scheme in ("file", "file2"):
        if rest.startswith("//"):
            rest = rest[2:]
        path = Path(rest)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            data = read_private_key_file(path)
        except KeyError_ as exc:
            raise _key_error(source, str(path), exc) from None
        return _crypto_signer(source, data, str(path))
    if scheme == "envvar":
        value = os.environ.get(rest)
        if not value:
            raise ConfigError(f"key {source}: environment variable {rest} is not set")
        return _crypto_signer(source, value.encode(), f"${rest}")
    raise ConfigError(f"key {source}: unknown key source scheme {scheme!r} (use a path, file:, envvar:, awskms:, "
                      "aws-kms://, aws-ssm://, ssm:, hsm:)")


def load_kms_signer(source: str, aws: AwsSettings) -> KeySigner:
    """The signer of KMS signer source ``source``, after GetPublicKey and, to explain what it cannot tell
    (a disabled key, the wrong key usage), DescribeKey: what ``keys import-kms`` reports."""
    key = kms.parse_source(source)
    if key is None:
        raise ConfigError(f"key {source}: not an AWS KMS key source (awskms:KEY or aws-kms://[PROFILE]/KEY)")
    failure: ConfigError | None = None
    try:
        signer: KeySigner | None = load_signer(source, None, aws)
    except ConfigError as exc:  # GetPublicKey answered, but the key is no TUF key
        signer, failure = None, exc
    try:
        meta = kms.describe_key(aws, key.key_id, source, key.profile)
    except ServiceError:
        meta = None  # not allowed to describe (kms:DescribeKey): GetPublicKey's answer stands
    problem = kms.signing_key_problem(meta) if meta is not None else None
    if problem:
        raise ServiceError(f"key {source}: AWS KMS DescribeKey: {problem}")
    if failure is not None:
        raise failure
    assert signer is not None
    return signer


class KeyRing:
    """The keys a configuration names, each loaded once (a key may serve several roles, and one
    configuration several variant/arch repositories)."""

    def __init__(self, config: KeySources) -> None:
        self.config = config
        self._loaded: dict[str, KeySigner] = {}

    def role_signers(self, roles: tuple[str, ...] = TOP_ROLES) -> dict[str, list[KeySigner]]:
        """Each role's signers, in the configured order; an error names the config, repo and role."""
        config = self.config
        result: dict[str, list[KeySigner]] = {}
        for role in roles:
            loaded = []
            for source in config.signers.get(role, []):
                if source not in self._loaded:
                    try:
                        self._loaded[source] = load_signer(source, config.base_dir, config.aws)
                    except RepoToolError as exc:
                        raise exc.within(f"{config.source}: repo {config.name}: signers.{role}") from None
                loaded.append(self._loaded[source])
            result[role] = loaded
        return result


_rings: weakref.WeakKeyDictionary[KeySources, KeyRing] = weakref.WeakKeyDictionary()
_rings_lock = threading.Lock()


def role_signers(config: KeySources, roles: tuple[str, ...] = TOP_ROLES) -> dict[str, list[KeySigner]]:
    """The signers ``config`` lists for ``roles``; each key is loaded once while ``config`` lives
    (its :class:`KeyRing`), however many repositories of it are signed."""
    with _rings_lock:
        ring = _rings.get(config)
        if ring is None:
            ring = _rings[config] = KeyRing(config)
    return ring.role_signers(roles)


def _sslib_key(entry: dict[str, Any]) -> SSlibKey:
    return SSlibKey(keyid_of(entry), entry["keytype"], entry["scheme"], dict(entry["keyval"]))


def _key_error(source: str, where: str, exc: KeyError_) -> ConfigError:
    """``key SOURCE: ...`` for a key that could not be read from ``where`` (its file or variable),
    naming the key once: not ``key k.pem: k.pem: ...`` (the file is added where it is not the source
    as written: a path relative to the config file)."""
    message = exc.message
    if message.startswith(f"{where}: "):
        label = source if where == source else f"{source} ({where})"
        return ConfigError(f"key {label}: {message[len(where) + 2:]}")
    return ConfigError(message if mentions(message, where) else f"key {source}: {message}")


def _crypto_signer(source: str, pem: bytes, where: str) -> KeySigner:
    try:
        private = load_private_pem(pem, where, env_passphrase())
        entry = entry_for_public(private.public_key())
    except KeyError_ as exc:
        raise _key_error(source, where, exc) from None
    return KeySigner(source, entry, private.public_key(), CryptoSigner(private, _sslib_key(entry)))


def _kms_signer(source: str, key_id: str, aws: AwsSettings, profile: str | None) -> KeySigner:
    """An AWS KMS key (:class:`KmsSigner`) on a boto3 session of ``profile`` (or the settings' profile;
    else the default chain: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL ...).  A key that cannot sign
    what tough verifies (its usage, spec or algorithms, in GetPublicKey's answer) is refused here."""
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        client = aws.client("kms", profile)
    except RepoToolError as exc:  # an unknown profile, no region ...: say which key needed it
        raise exc.within(f"key {source}") from None
    try:
        answer = client.get_public_key(KeyId=key_id)
    except Exception as exc:  # botocore errors: say which key, which call, what AWS answered
        raise ServiceError(f"key {source}: AWS KMS GetPublicKey failed: {reason(exc)}") from None
    _check_key_state(source, key_id, client)
    problem = kms.signing_key_problem(answer)
    if problem:
        raise ConfigError(f"key {source}: {problem}")
    try:
        public = load_der_public_key(answer["PublicKey"])
        entry = entry_for_public(public)
    except (KeyError_, ValueError) as exc:
        raise ConfigError(f"key {source}: KMS key cannot sign TUF metadata tough accepts: {exc}") from None
    signer = KmsSigner(client, str(answer.get("KeyId") or key_id), _sslib_key(entry))
    return KeySigner(source, entry, public, signer)


def _check_key_state(source: str, key_id: str, client: KMSClient) -> None:
    """Refuse a key that is not Enabled before anything is built or uploaded.  Signing roles
    often lack kms:DescribeKey; then Sign itself reports the problem."""
    try:
        meta = client.describe_key(KeyId=key_id)["KeyMetadata"]
    except Exception:
        return
    state = kms.key_state(meta)
    if state != "Enabled":
        raise ServiceError(f"key {source}: AWS KMS DescribeKey: key {meta.get('KeyId', key_id)} is {state}, "
                           "not Enabled (it cannot sign)")


def _signing_reason(exc: Exception) -> str:
    """What AWS answered to Sign, or the error."""
    if getattr(exc, "response", None) is not None:
        return f"AWS KMS Sign failed: {reason(exc)}"
    return reason(exc)
