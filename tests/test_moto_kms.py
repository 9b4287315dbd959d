"""The moto test server is a real HTTP server in another process, and its KMS signing is fixed:
the publisher's KMS signer (sign a locally computed digest with MessageType=DIGEST) produces
signatures that verify locally with the AWS KMS parameters tough expects (RSASSA-PSS with MGF1-SHA256
and a 32-byte salt; DER ECDSA over SHA-256). Stock moto fails exactly that, which is proven here too."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from repo_tool.signing.signers import load_signer

if TYPE_CHECKING:  # imported for real by pytest_plugins (so pytest can rewrite its asserts)
    from types_boto3_kms.client import KMSClient
    from types_boto3_kms.literals import KeySpecType, MessageTypeType, SigningAlgorithmSpecType

    from .motoserver import MotoServer

# The moto_server/aws fixtures (importing them by name would trip ruff F811 on every use).
pytest_plugins = ["tests.motoserver"]

PAYLOAD = b'{"signed":{"_type":"timestamp","version":1}}'

# (KMS KeySpec, securesystemslib scheme, KMS SigningAlgorithm)
KEYS = [
    pytest.param("RSA_3072", "rsassa-pss-sha256", "RSASSA_PSS_SHA_256", id="rsa-pss"),
    pytest.param("ECC_NIST_P256", "ecdsa-sha2-nistp256", "ECDSA_SHA_256", id="ecdsa-p256"),
]


def verify_locally(public_der: bytes, signature: bytes, payload: bytes) -> None:
    """Verify as tough does (raises InvalidSignature): PSS salt = digest length, ECDSA DER over SHA-256."""
    public_key = serialization.load_der_public_key(public_der)
    if isinstance(public_key, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public_key.verify(signature, payload, pss, hashes.SHA256())
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    else:
        raise TypeError(f"unexpected key type {type(public_key).__name__}")


def create_key(kms: KMSClient, key_spec: KeySpecType) -> str:
    return kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=key_spec)["KeyMetadata"]["KeyId"]


def kms_signature(key_id: str, scheme: str, payload: bytes) -> bytes:
    """Sign the way the publisher does: its KMS signer, from the environment's boto3 configuration."""
    signer = load_signer(f"awskms:{key_id}").signer
    assert signer.public_key.scheme == scheme
    return bytes.fromhex(signer.sign(payload).signature)


def test_server_is_a_separate_process_on_loopback(moto_server: MotoServer) -> None:
    assert moto_server.endpoint.startswith("http://127.0.0.1:")
    assert moto_server.pid not in (None, os.getpid())
    # From a clean state: moto 5.1's data.json fails (500) once it holds an object uploaded in parts with
    # CRC32 checksums, as boto3's own upload_fileobj uploads them (and repo-tool's multipart uploads do).
    moto_server.reset()
    with urllib.request.urlopen(f"{moto_server.endpoint}/moto-api/data.json", timeout=5) as response:
        assert response.status == 200


def test_env_points_boto3_at_the_server(aws: MotoServer) -> None:
    env = aws.env()
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-west-2"
    assert all(os.environ[k] == v for k, v in env.items())
    kms = boto3.client("kms")  # the default session, configured only by the environment
    assert kms.meta.endpoint_url == aws.endpoint
    key_id = create_key(kms, "ECC_NIST_P256")
    assert [k["KeyId"] for k in aws.client("kms").list_keys()["Keys"]] == [key_id]
    sub = aws.subprocess_env({"HOME": "/nonexistent", "AWS_PROFILE": "developer", "AWS_ENDPOINT_URL_S3": "x"})
    assert sub == {"HOME": "/nonexistent", **env}


def test_reset_isolates_tests(aws: MotoServer) -> None:
    assert aws.client("kms").list_keys()["Keys"] == []
    assert aws.client("s3").list_buckets()["Buckets"] == []


@pytest.mark.parametrize(("key_spec", "scheme", "algorithm"), KEYS)
def test_kms_signature_verifies_locally(aws: MotoServer, key_spec: KeySpecType, scheme: str,
                                       algorithm: SigningAlgorithmSpecType) -> None:
    kms = aws.client("kms")
    key_id = create_key(kms, key_spec)
    signature = kms_signature(key_id, scheme, PAYLOAD)
    public_der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    verify_locally(public_der, signature, PAYLOAD)
    with pytest.raises(InvalidSignature):
        verify_locally(public_der, signature, PAYLOAD + b" ")
    # moto's Verify is consistent with its Sign, for the digest and for the raw message.
    digest = hashlib.sha256(PAYLOAD).digest()
    types: tuple[tuple[bytes, MessageTypeType], ...] = ((digest, "DIGEST"), (PAYLOAD, "RAW"))
    for message, message_type in types:
        result = kms.verify(
            KeyId=key_id, Message=message, MessageType=message_type, Signature=signature, SigningAlgorithm=algorithm
        )
        assert result["SignatureValid"], message_type
    bad = kms.verify(KeyId=key_id, Message=digest, MessageType="RAW", Signature=signature, SigningAlgorithm=algorithm)
    assert not bad["SignatureValid"]


@pytest.mark.parametrize(("key_spec", "scheme", "algorithm"), KEYS)
def test_raw_message_signature_verifies_locally(aws: MotoServer, key_spec: KeySpecType, scheme: str,
                                               algorithm: SigningAlgorithmSpecType) -> None:
    kms = aws.client("kms")
    key_id = create_key(kms, key_spec)
    signature = kms.sign(KeyId=key_id, Message=PAYLOAD, MessageType="RAW", SigningAlgorithm=algorithm)["Signature"]
    verify_locally(kms.get_public_key(KeyId=key_id)["PublicKey"], signature, PAYLOAD)


def test_digest_of_the_wrong_length_is_rejected(aws: MotoServer) -> None:
    kms = aws.client("kms")
    key_id = create_key(kms, "RSA_2048")
    with pytest.raises(ClientError) as err:
        kms.sign(KeyId=key_id, Message=b"\0" * 31, MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert err.value.response["Error"]["Code"] == "ValidationException"


@pytest.fixture(scope="module")
def unpatched_server() -> Iterator[MotoServer]:
    from .motoserver import MotoServer

    with MotoServer(patched=False) as server:
        yield server


@pytest.mark.parametrize(("key_spec", "scheme", "algorithm"), KEYS)
def test_stock_moto_signatures_do_not_verify(
    unpatched_server: MotoServer, monkeypatch: pytest.MonkeyPatch, key_spec: KeySpecType, scheme: str,
    algorithm: SigningAlgorithmSpecType,
) -> None:
    """Why the launcher patches moto: stock moto hashes the DIGEST again, and its own Verify hides it."""
    for name, value in unpatched_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    kms = unpatched_server.client("kms")
    key_id = create_key(kms, key_spec)
    signature = kms_signature(key_id, scheme, PAYLOAD)
    with pytest.raises(InvalidSignature):
        verify_locally(kms.get_public_key(KeyId=key_id)["PublicKey"], signature, PAYLOAD)
    result = kms.verify(
        KeyId=key_id,
        Message=hashlib.sha256(PAYLOAD).digest(),
        MessageType="DIGEST",
        Signature=signature,
        SigningAlgorithm=algorithm,
    )
    assert result["SignatureValid"]  # moto agrees with itself, so only a local check finds the bug


def test_s3_create_only_writes_and_private_objects(aws: MotoServer) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="repo-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="repo-bucket", Key="1.root.json", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="repo-bucket", Key="1.root.json", Body=b"second", IfNoneMatch="*")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.get_object(Bucket="repo-bucket", Key="1.root.json")["Body"].read() == b"first"

    anonymous = aws.client("s3", config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as err:
        anonymous.get_object(Bucket="repo-bucket", Key="1.root.json")
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(f"{aws.endpoint}/repo-bucket/1.root.json", timeout=5)
    assert http_err.value.code == 403


def test_stock_moto_rsa_pss_uses_the_maximum_salt(unpatched_server: MotoServer) -> None:
    """Why the launcher also fixes RAW RSA-PSS: stock moto's salt is not the 32 bytes AWS (and tough) use."""
    kms = unpatched_server.client("kms")
    key_id = create_key(kms, "RSA_2048")
    signature = kms.sign(KeyId=key_id, Message=PAYLOAD, MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256")
    public_der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    with pytest.raises(InvalidSignature):
        verify_locally(public_der, signature["Signature"], PAYLOAD)
    public_key = serialization.load_der_public_key(public_der)
    assert isinstance(public_key, rsa.RSAPublicKey)
    max_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    public_key.verify(signature["Signature"], PAYLOAD, max_salt, hashes.SHA256())
