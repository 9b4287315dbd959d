"""PKCS#11 hardware keys (a YubiKey, a smart card, an HSM; SoftHSM2 in the tests): ``hsm:`` key sources,
signed through securesystemslib's :class:`~securesystemslib.signer.HSMSigner`.

A source is written as HSMSigner's URIs are: ``hsm:[KEYID][?label=TOKEN]``:

* ``KEYID``: the key's PKCS#11 ``CKA_ID`` as a decimal number (``pkcs11-tool --id 01`` is 1,
  ``--id 0a`` is 10); without it, 2 (a YubiKey's PIV slot 9c, HSMSigner's default);
* ``TOKEN``: the token's label (URL-quoted, ``+`` for a space); without it, the only initialised
  token the module offers.

The PKCS#11 module (the token's shared library) is the file environment variable ``PYKCS11LIB``
names, as HSMSigner reads it (SoftHSM2: ``/usr/lib/softhsm/libsofthsm2.so``; YubiKey:
``libykcs11.so``).  The user PIN comes from environment variable ``REPO_TOOL_HSM_PIN``, else it
is asked on the terminal (only when standard input is one); it is held in memory for the signer
and never printed.  Loading a key logs in once, so a wrong PIN, a missing token or key, or a key
tough would not accept (only ECDSA P-256, ``ecdsa-sha2-nistp256``) is refused, in one line naming
the source, before anything is signed or written.

python-pkcs11 (the ``hsm`` extra) is imported only when an ``hsm:`` source is used.  This module
must not build :class:`~repo_tool.signing.signers.KeySigner` (``signers`` does) nor decide which
keys sign a role (``sign`` does).
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from securesystemslib.signer import HSMSigner, Key, SecretsHandler, Signature, Signer, SSlibKey

from repo_tool.errors import ConfigError, IOFailedError
from repo_tool.trust.keys import KeyError_, entry_for_public, keyid_of

if TYPE_CHECKING:
    import pkcs11

SOURCE_PREFIX = "hsm:"
MODULE_ENV = "PYKCS11LIB"  # HSMSigner's
PIN_ENV = "REPO_TOOL_HSM_PIN"
DEFAULT_KEYID = HSMSigner.SCHEME_KEYID  # 2: a YubiKey's PIV slot 9c
INSTALL_HINT = "pip install 'bottlerocket-repo-tool[hsm]'"
MODULE_HINT = "e.g. /usr/lib/softhsm/libsofthsm2.so for SoftHSM2, libykcs11.so for a YubiKey"


# Each HSMSigner.sign loads the module anew and the module object, when freed, finalises the PKCS#11
# library for the whole process: one token operation at a time, so a signature made in one thread is not
# cut off by another thread's finalise.
_TOKEN_LOCK = threading.RLock()


class SerialSigner(Signer):
    """An :class:`HSMSigner` used under :data:`_TOKEN_LOCK` (it wraps one rather than subclassing it:
    securesystemslib's signers are used through their public interface only)."""

    def __init__(self, inner: HSMSigner) -> None:
        self._inner = inner
        self.hsm_keyid: int = inner.hsm_keyid
        self.token_label: str | None = inner.token_label

    @property
    def public_key(self) -> Key:
        return self._inner.public_key

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri: str, public_key: Key,
                          secrets_handler: SecretsHandler | None = None) -> SerialSigner:
        return cls(HSMSigner.from_priv_key_uri(priv_key_uri, public_key, secrets_handler))

    def sign(self, payload: bytes) -> Signature:
        with _TOKEN_LOCK:
            return self._inner.sign(payload)


class TokenError(IOFailedError):
    """The PKCS#11 module or token failed in a way no input explains (a device pulled out ...): exit 1."""


@dataclass(frozen=True)
class HsmKey:
    """A key an ``hsm:`` source names: its ``CKA_ID`` and the token label (None: the only token)."""

    keyid: int
    token: str | None = None

    @property
    def source(self) -> str:
        """The source as HSMSigner writes it: ``hsm:KEYID`` and, with a token label, ``?label=TOKEN``."""
        label = f"?{urlencode({'label': self.token})}" if self.token else ""
        return f"{SOURCE_PREFIX}{self.keyid}{label}"


def is_source(text: str) -> bool:
    return text.startswith(SOURCE_PREFIX)


def parse_source(source: str) -> HsmKey:
    """The key ``hsm:[KEYID][?label=TOKEN]`` names; a :class:`ConfigError` for anything else."""
    if not is_source(source):
        raise ConfigError(f"key {source}: not a PKCS#11 key source (hsm:[KEYID][?label=TOKEN])")
    parts = urlsplit(source)
    if parts.netloc or parts.fragment:
        raise ConfigError(f"key {source}: expected hsm:[KEYID][?label=TOKEN]")
    keyid = DEFAULT_KEYID
    if parts.path:
        if not parts.path.isdigit() or not parts.path.isascii():
            raise ConfigError(f"key {source}: KEYID {parts.path!r} is not a decimal number "
                              "(the key's CKA_ID: pkcs11-tool --id 01 is 1, --id 0a is 10)")
        keyid = int(parts.path)
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(f"key {source}: expected hsm:[KEYID][?label=TOKEN]") from None
    unknown = sorted({name for name, _ in query} - {"label"})
    if unknown:
        raise ConfigError(f"key {source}: unknown parameter(s) {', '.join(unknown)} (only ?label=TOKEN)")
    if len(query) > 1:
        raise ConfigError(f"key {source}: label given {len(query)} times")
    token = dict(query).get("label")
    if token == "":
        raise ConfigError(f"key {source}: empty token label")
    return HsmKey(keyid, token)


def key_source(text: str, token: str | None = None) -> str:
    """The source for what ``keys import-hsm`` was given: an ``hsm:`` source, or a bare KEYID, with
    ``token`` (``--token``) as its label."""
    key = parse_source(text if is_source(text) else f"{SOURCE_PREFIX}{text}")
    if token is not None:
        if key.token is not None and key.token != token:
            raise ConfigError(f"key {text}: names token {key.token!r}, --token {token!r}")
        key = HsmKey(key.keyid, token)
    return key.source


def source_of(signer: object, given: str) -> str:
    """The source naming the token an :func:`load`-ed signer signs with (``?label=`` its label, even where
    ``given`` named no token, as HSMSigner.import_ writes it); ``given`` for any other signer."""
    if isinstance(signer, SerialSigner):
        return HsmKey(signer.hsm_keyid, signer.token_label or None).source
    return given


def load(source: str) -> tuple[dict[str, Any], ec.EllipticCurvePublicKey, SerialSigner]:
    """The key ``source`` names on its token: (its key entry, its public key, an HSMSigner that signs
    with it).  Logs in (the PIN checked here, once) and checks the private key is there and is one
    tough accepts; every failure is one line naming ``source``."""
    with _TOKEN_LOCK:
        return _load(source)


def _load(source: str) -> tuple[dict[str, Any], ec.EllipticCurvePublicKey, SerialSigner]:
    key = parse_source(source)
    pkcs11_mod = _pkcs11(source)
    lib = _module(source, pkcs11_mod)
    token = _token(source, key, lib, pkcs11_mod)
    label = f"token {token.label!r}"
    pin = _pin(source, label)
    try:
        with token.open(user_pin=pin) as session:
            public = _public_key(source, key, label, session, pkcs11_mod)
    except pkcs11_mod.exceptions.PinIncorrect:
        raise ConfigError(f"key {source}: wrong PIN for {label} ({_pin_origin()})") from None
    except (pkcs11_mod.exceptions.PinInvalid, pkcs11_mod.exceptions.PinLenRange):
        raise ConfigError(f"key {source}: the PIN for {label} is not a valid PIN ({_pin_origin()})") from None
    except (pkcs11_mod.exceptions.PinLocked, pkcs11_mod.exceptions.PinExpired) as exc:
        state = "locked" if isinstance(exc, pkcs11_mod.exceptions.PinLocked) else "expired"
        raise ConfigError(f"key {source}: the user PIN of {label} is {state} (reset it with the SO PIN)") from None
    except pkcs11_mod.exceptions.PKCS11Error as exc:
        raise TokenError(f"key {source}: {label}: PKCS#11 {_pkcs11_reason(exc)}") from None
    try:
        entry = entry_for_public(public)
    except KeyError_ as exc:
        raise ConfigError(f"key {source}: {exc.message}") from None
    sslib_key = SSlibKey(keyid_of(entry), entry["keytype"], entry["scheme"], dict(entry["keyval"]))
    # The label the token has (not only the one the source gave, if any): signing opens the same token.
    signer = SerialSigner(HSMSigner(key.keyid, sslib_key, lambda _what: pin, token.label))
    return entry, public, signer


def _pkcs11(source: str) -> Any:
    try:
        import pkcs11
        import pkcs11.util.ec
    except ImportError:
        raise ConfigError(f"key {source}: PKCS#11 keys need python-pkcs11: {INSTALL_HINT}") from None
    installed = importlib.metadata.version("securesystemslib")
    if tuple(int(part) for part in re.findall(r"\d+", installed)[:2]) < (1, 5):  # 1.3, 1.4: PyKCS11
        raise ConfigError(f"key {source}: PKCS#11 keys need securesystemslib 1.5 or newer (it signs through "
                          f"python-pkcs11 from then on; {installed} is installed): {INSTALL_HINT}")
    return pkcs11


def _module(source: str, pkcs11_mod: Any) -> Any:
    """The PKCS#11 module ``PYKCS11LIB`` names, loaded."""
    path = os.environ.get(MODULE_ENV)
    if not path:
        raise ConfigError(f"key {source}: set {MODULE_ENV} to the token's PKCS#11 module ({MODULE_HINT})")
    if not Path(path).is_file():
        why = "not a file" if Path(path).exists() else "no such file"
        raise ConfigError(f"key {source}: PKCS#11 module {path} ({MODULE_ENV}): {why}")
    try:
        return pkcs11_mod.lib(path)
    except pkcs11_mod.exceptions.PKCS11Error as exc:
        raise ConfigError(f"key {source}: cannot load PKCS#11 module {path} ({MODULE_ENV}): "
                          f"{_pkcs11_reason(exc)}") from None


def _token(source: str, key: HsmKey, lib: Any, pkcs11_mod: Any) -> pkcs11.Token:
    """The initialised token the source names (or the only one)."""
    module = os.environ.get(MODULE_ENV)
    flags = pkcs11_mod.TokenFlag.TOKEN_INITIALIZED
    try:
        token: pkcs11.Token = lib.get_token(token_label=key.token, token_flags=flags)
        return token
    except pkcs11_mod.exceptions.NoSuchToken:
        labels = _labels(lib, flags)
        have = f"its tokens: {', '.join(labels)}" if labels else "it offers no initialised token (is the device in?)"
        named = f"no initialised token labelled {key.token!r}" if key.token else "no initialised token"
        raise ConfigError(f"key {source}: {named} in PKCS#11 module {module} ({have})") from None
    except pkcs11_mod.exceptions.MultipleTokensReturned:
        labels = _labels(lib, flags)
        raise ConfigError(f"key {source}: PKCS#11 module {module} offers {len(labels)} tokens "
                          f"({', '.join(labels)}); name one with ?label=TOKEN") from None
    except pkcs11_mod.exceptions.PKCS11Error as exc:
        raise TokenError(f"key {source}: PKCS#11 module {module}: {_pkcs11_reason(exc)}") from None


def _labels(lib: Any, flags: Any) -> list[str]:
    try:
        return [repr(token.label) for token in lib.get_tokens(token_flags=flags)]
    except Exception:
        return []


def _pin(source: str, label: str) -> str:
    """The user PIN: ``REPO_TOOL_HSM_PIN``, else asked on the terminal (never echoed, never logged)."""
    pin = os.environ.get(PIN_ENV)
    if pin:
        return pin
    if not sys.stdin.isatty():
        raise ConfigError(f"key {source}: no PIN for {label}: set {PIN_ENV} or run on a terminal")
    try:
        pin = getpass.getpass(f"PIN for {label} (key {source}): ")
    except (EOFError, KeyboardInterrupt):
        pin = ""
    if not pin:
        raise ConfigError(f"key {source}: no PIN given for {label}")
    return pin


def _pin_origin() -> str:
    return f"from {PIN_ENV}" if os.environ.get(PIN_ENV) else "as typed"


def _public_key(source: str, key: HsmKey, label: str, session: pkcs11.Session,
                pkcs11_mod: Any) -> ec.EllipticCurvePublicKey:
    """The public key of the key pair with ``CKA_ID`` ``key.keyid``, once its private key is known to be
    there and to be an EC key on P-256 (the only ECDSA curve tough accepts)."""
    exc_ = pkcs11_mod.exceptions
    id_bytes = pkcs11_mod.util.biginteger(key.keyid)
    where = f"{label} has no private key with id {key.keyid} (CKA_ID {id_bytes.hex()})"
    try:
        private = session.get_key(object_class=pkcs11_mod.ObjectClass.PRIVATE_KEY, id=id_bytes)
    except exc_.NoSuchKey:
        raise ConfigError(f"key {source}: {where} ({_key_list(session, pkcs11_mod)})") from None
    except exc_.MultipleObjectsReturned:
        raise ConfigError(f"key {source}: {label} has several private keys with id {key.keyid}; "
                          "give each key its own id") from None
    if private.key_type != pkcs11_mod.KeyType.EC:
        name = getattr(private.key_type, "name", str(private.key_type))
        raise ConfigError(f"key {source}: the key with id {key.keyid} on {label} is of type {name}; tough "
                          "accepts only ECDSA P-256 "
                          "(ecdsa-sha2-nistp256) from a PKCS#11 token")
    try:
        pub = session.get_key(object_class=pkcs11_mod.ObjectClass.PUBLIC_KEY, key_type=pkcs11_mod.KeyType.EC,
                              id=id_bytes)
    except exc_.NoSuchKey:
        raise ConfigError(f"key {source}: {label} holds the private key with id {key.keyid} but no public key "
                          "object with that id (write it to the token: pkcs11-tool --write-object)") from None
    except exc_.MultipleObjectsReturned:
        raise ConfigError(f"key {source}: {label} has several public keys with id {key.keyid}") from None
    public = load_der_public_key(pkcs11_mod.util.ec.encode_ec_public_key(pub))
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ConfigError(f"key {source}: the public key with id {key.keyid} on {label} is not an EC key")
    if not isinstance(public.curve, ec.SECP256R1):
        raise ConfigError(f"key {source}: the key with id {key.keyid} on {label} is ECDSA {public.curve.name}; "
                          "tough accepts only "
                          "P-256 (secp256r1, ecdsa-sha2-nistp256)")
    return public


def _key_list(session: pkcs11.Session, pkcs11_mod: Any) -> str:
    """``its keys: 1 'root1', 3 'p384'`` (each private key's id as a decimal KEYID, and label)."""
    attribute = pkcs11_mod.Attribute
    keys = []
    try:
        for obj in session.get_objects({attribute.CLASS: pkcs11_mod.ObjectClass.PRIVATE_KEY}):
            raw = obj[attribute.ID]
            keys.append(f"{int.from_bytes(raw, 'big') if raw else '-'} {obj[attribute.LABEL]!r}")
    except Exception:
        return "its keys cannot be listed"
    return f"its private keys: {', '.join(keys)}" if keys else "it holds no private key"


def _pkcs11_reason(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text and text != type(exc).__name__ else type(exc).__name__
