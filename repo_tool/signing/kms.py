"""AWS KMS signing keys: how a user names one, and whether one can sign what tough verifies.

The one parser of KMS key names: signer sources (``awskms:KEY``, tuftool's ``aws-kms://[PROFILE]/KEY``),
the key references ``keys import-kms`` takes (key ID, key ARN, alias ARN, ``alias/NAME``, or a bare
NAME meaning ``alias/NAME``) and the alias names ``infra create-keys`` creates; and the one reading
of DescribeKey's and GetPublicKey's answers (state, usage, spec, signing algorithms).

It must not load private keys or sign (:mod:`repo_tool.signing.signers` and
:mod:`repo_tool.signing.kms_signer` do), nor create keys
(:mod:`repo_tool.publish.infra` does).  Parsing is pure; only :func:`describe_key` calls AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repo_tool.aws import AwsSettings, ServiceError, error_code, reason
from repo_tool.errors import ConfigError, UsageError

if TYPE_CHECKING:  # types-boto3[kms] (dev only)
    from types_boto3_kms.type_defs import KeyMetadataTypeDef

SOURCE_PREFIX = "awskms:"  # securesystemslib's spelling, and this tool's
TUFTOOL_PREFIX = "aws-kms://"  # tuftool's: aws-kms://[PROFILE]/KEY
_KEY_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ALIAS_NAME = re.compile(r"^[a-zA-Z0-9/_-]{1,250}$")


@dataclass(frozen=True)
class KmsKey:
    """A KMS key as KMS takes it (key ID, key ARN, alias ARN or ``alias/NAME``), and the AWS profile a
    tuftool source names (None: the settings' profile)."""

    key_id: str
    profile: str | None = None

    @property
    def source(self) -> str:
        """The signer source for repo-tool.yaml: ``awskms:KEY``."""
        return f"{SOURCE_PREFIX}{self.key_id}"


def is_source(text: str) -> bool:
    """Whether ``text`` is written as a KMS signer source (``awskms:`` or ``aws-kms://``)."""
    return text.startswith((SOURCE_PREFIX, TUFTOOL_PREFIX))


def parse_source(source: str) -> KmsKey | None:
    """The key an ``awskms:KEY`` or ``aws-kms://[PROFILE]/KEY`` signer source names; None for a source
    of another kind; a :class:`ConfigError` for a tuftool source without a key."""
    if source.startswith(TUFTOOL_PREFIX):
        profile, _, key = source[len(TUFTOOL_PREFIX):].partition("/")
        if not key:
            raise ConfigError(f"key source {source!r}: expected aws-kms://[PROFILE]/KEY-ID")
        return KmsKey(key, profile or None)
    if source.startswith(SOURCE_PREFIX):
        return KmsKey(source[len(SOURCE_PREFIX):])
    return None


def key_source(text: str) -> str:
    """The signer source for what ``keys import-kms`` was given: a signer source as written; a key ID,
    key ARN, alias ARN or ``alias/NAME`` as is; a bare NAME as the alias NAME (as ``infra create-keys``)."""
    if is_source(text):
        return text
    if text.startswith(("alias/", "arn:", "mrk-")) or _KEY_UUID.match(text):
        return f"{SOURCE_PREFIX}{text}"
    return f"{SOURCE_PREFIX}alias/{text}"


def alias_name(text: str) -> str:
    """``NAME`` or ``alias/NAME`` as ``alias/NAME``; raise :class:`UsageError` for one KMS refuses."""
    name = text[len("alias/"):] if text.startswith("alias/") else text
    if not _ALIAS_NAME.match(name):
        raise UsageError(f"{text!r} is not a valid KMS alias name (letters, digits, / _ -)")
    if name.startswith("aws/"):
        raise UsageError(f"{text!r}: alias names starting with aws/ are reserved for AWS managed keys")
    return f"alias/{name}"


# --- DescribeKey's answer -------------------------------------------------------------------


def key_state(meta: Mapping[str, Any]) -> str:
    """The key's state in DescribeKey's KeyMetadata (older answers give only ``Enabled``)."""
    return str(meta.get("KeyState") or ("Enabled" if meta.get("Enabled", True) else "Disabled"))


def signing_key_problem(meta: Mapping[str, Any]) -> str | None:
    """Why the KMS key described by ``meta`` cannot sign TUF metadata tough verifies, or None.  ``meta`` is
    DescribeKey's KeyMetadata or GetPublicKey's answer (both give KeyUsage, KeySpec, SigningAlgorithms;
    the latter no state: it reads as Enabled)."""
    key_id = meta.get("KeyId", "?")
    spec = str(meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "?")
    usage = meta.get("KeyUsage") or ("ENCRYPT_DECRYPT" if spec == "SYMMETRIC_DEFAULT" else "?")
    state = key_state(meta)
    if state != "Enabled":
        hint = " (cancel the deletion and enable it)" if state == "PendingDeletion" else " (aws kms enable-key)"
        return f"key {key_id} is {state}, not Enabled{hint}"
    if usage != "SIGN_VERIFY":
        return (f"key {key_id} has KeyUsage {usage} (KeySpec {spec}); TUF signing needs an asymmetric "
                "SIGN_VERIFY key (RSA_2048..RSA_4096 or ECC_NIST_P256)")
    needed = "RSASSA_PSS_SHA_256" if spec.startswith("RSA_") else "ECDSA_SHA_256" if spec == "ECC_NIST_P256" else None
    if needed is None:
        return f"key {key_id} is a {spec} key; tough verifies only RSA (RSASSA-PSS) and ECC_NIST_P256 keys"
    offered = [str(a) for a in meta.get("SigningAlgorithms") or []]
    if needed not in offered:
        return f"key {key_id} ({spec}) does not offer {needed} (it offers {', '.join(offered) or 'nothing'})"
    return None


def describe_key(aws: AwsSettings, key: str, label: str, profile: str | None = None) -> KeyMetadataTypeDef | None:
    """DescribeKey's KeyMetadata, or None if the key (or alias) does not exist."""
    kms = aws.client("kms", profile)
    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except Exception as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise ServiceError(f"key {label}: AWS KMS DescribeKey failed: {reason(exc)}") from None
    return meta
