"""A securesystemslib :class:`Signer` over AWS KMS: the SHA-256 digest is computed here and only the
digest is sent to ``kms.sign`` (``MessageType=DIGEST``, so a targets.json above KMS's 4096-byte limit
for whole messages signs too).

RSA keys sign RSASSA-PSS-SHA256 (AWS uses a 32-byte salt, what tough needs), left-padded to the
modulus length; P-256 keys sign ECDSA-SHA256, which KMS returns DER-encoded: the encoding
securesystemslib, python-tuf and tough verify.  Any other scheme is refused when the signer is made.
It must not parse key names (:mod:`repo_tool.signing.kms` does) nor check what a key may sign
(:mod:`repo_tool.signing.signers` does, before making one); it uses only securesystemslib's public API.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey

from repo_tool.aws import AwsSettings
from repo_tool.errors import ConfigError
from repo_tool.signing import kms

if TYPE_CHECKING:  # types-boto3[kms] (dev only)
    from types_boto3_kms.client import KMSClient
    from types_boto3_kms.literals import SigningAlgorithmSpecType

# TUF signature scheme -> KMS SigningAlgorithm: the two KMS key kinds tough verifies.
ALGORITHMS: dict[str, SigningAlgorithmSpecType] = {
    "rsassa-pss-sha256": "RSASSA_PSS_SHA_256",
    "ecdsa-sha2-nistp256": "ECDSA_SHA_256",
}


class KmsSigner(Signer):
    """Signs with KMS key ``key_id`` (key ID, ARN or alias) through ``client``; ``public_key`` is that
    key's public half (GetPublicKey's answer), whose scheme picks the signing algorithm."""

    def __init__(self, client: KMSClient, key_id: str, public_key: SSlibKey) -> None:
        algorithm = ALGORITHMS.get(public_key.scheme)
        if algorithm is None:
            raise ConfigError(f"KMS key {key_id}: cannot sign with scheme {public_key.scheme!r} "
                              f"(use {' or '.join(ALGORITHMS)})")
        self.client = client
        self.key_id = key_id
        self.algorithm = algorithm
        self._public_key = public_key
        public = load_pem_public_key(public_key.keyval["public"].encode())
        # An RSA signature is exactly the modulus long; KMS's may lose leading zero bytes as an integer.
        self._length = (public.key_size + 7) // 8 if isinstance(public, rsa.RSAPublicKey) else 0

    @property
    def public_key(self) -> SSlibKey:
        return self._public_key

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri: str, public_key: Key,
                          secrets_handler: SecretsHandler | None = None) -> KmsSigner:
        """``awskms:KEY`` or ``aws-kms://[PROFILE]/KEY``, on boto3's standard chain (and PROFILE)."""
        key = kms.parse_source(priv_key_uri)
        if key is None:
            raise ValueError(f"{priv_key_uri!r} is not an AWS KMS key source (awskms:KEY or aws-kms://[PROFILE]/KEY)")
        if not isinstance(public_key, SSlibKey):
            raise ValueError(f"{priv_key_uri}: expected an SSlibKey, not {type(public_key).__name__}")
        return cls(AwsSettings(profile=key.profile).client("kms"), key.key_id, public_key)

    def sign(self, payload: bytes) -> Signature:
        """Sign ``payload``; botocore's error (ClientError, NoCredentialsError ...) if KMS does not."""
        answer = self.client.sign(KeyId=self.key_id, Message=hashlib.sha256(payload).digest(),
                                  MessageType="DIGEST", SigningAlgorithm=self.algorithm)
        signature = answer["Signature"].rjust(self._length, b"\0")
        return Signature(self._public_key.keyid, signature.hex())
