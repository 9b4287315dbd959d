"""The KMS signer (repo_tool.signing.kms_signer) against the moto server over HTTP: what it signs
verifies with securesystemslib's own key.verify_signature (and as tough verifies); it sends only the
SHA-256 digest; keys it cannot sign with are refused in one line naming them; and it depends on no
securesystemslib internals (it is a plain Signer subclass, checked over the whole package)."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives.serialization import load_der_public_key
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import CryptoSigner, Signer, SSlibKey

import repo_tool
from repo_tool.aws import ServiceError
from repo_tool.errors import ConfigError
from repo_tool.signing.kms_signer import KmsSigner
from repo_tool.signing.signers import load_signer
from repo_tool.trust.keys import verify

from .clirun import Runner, assert_one_line_error, make_runner

if TYPE_CHECKING:  # imported for real by pytest_plugins (so pytest can rewrite its asserts)
    from types_boto3_kms.client import KMSClient
    from types_boto3_kms.literals import KeySpecType, KeyUsageTypeType

    from .motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

# Above the 4096 bytes KMS signs as a whole message: only a digest can be sent.
PAYLOAD = b'{"signed":{"_type":"targets","targets":{' + b"x" * 10_000 + b"}}}"
SPECS = [("RSA_2048", "rsassa-pss-sha256"), ("RSA_3072", "rsassa-pss-sha256"), ("RSA_4096", "rsassa-pss-sha256"),
         ("ECC_NIST_P256", "ecdsa-sha2-nistp256")]


def new_key(kms: KMSClient, spec: KeySpecType, usage: KeyUsageTypeType = "SIGN_VERIFY", alias: str = "") -> str:
    key_id = kms.create_key(KeyUsage=usage, KeySpec=spec)["KeyMetadata"]["KeyId"]
    if alias:
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key_id)
    return key_id


def sslib_public(kms: KMSClient, key_id: str, scheme: str, keyid: str | None = None) -> SSlibKey:
    """The key's public half as securesystemslib builds it itself from GetPublicKey's DER (with its own
    default key ID unless ``keyid`` is given: the signature names its key by ID)."""
    der = kms.get_public_key(KeyId=key_id)["PublicKey"]
    return SSlibKey.from_crypto(load_der_public_key(der), keyid=keyid, scheme=scheme)


@pytest.mark.parametrize(("spec", "scheme"), SPECS)
def test_signature_verifies_with_securesystemslib(aws: MotoServer, spec: KeySpecType, scheme: str) -> None:
    kms = aws.client("kms")
    key_id = new_key(kms, spec)
    public = sslib_public(kms, key_id, scheme)
    signature = KmsSigner(kms, key_id, public).sign(PAYLOAD)
    assert signature.keyid == public.keyid
    public.verify_signature(signature, PAYLOAD)
    with pytest.raises(UnverifiedSignatureError):
        public.verify_signature(signature, PAYLOAD + b" ")
    # ... and as tough verifies (PSS salt 32, DER ECDSA): the check the publisher makes after signing.
    entry = {"keytype": public.keytype, "scheme": public.scheme, "keyval": dict(public.keyval)}
    assert verify(entry, signature.signature, PAYLOAD)


@pytest.mark.parametrize("source", ["awskms:alias/tuf", "aws-kms:///alias/tuf", "aws-kms://signer/alias/tuf"])
def test_key_sources_sign(aws: MotoServer, source: str) -> None:
    """The signer sources a config names, through load_signer and through Signer.from_priv_key_uri's
    contract (KmsSigner.from_priv_key_uri), a tuftool source with a profile included."""
    # A named profile takes its credentials from the profile, not from AWS_ACCESS_KEY_ID (botocore's rule).
    aws.config_file.write_text("[profile signer]\nregion = us-west-2\naws_access_key_id = testing\n"
                               "aws_secret_access_key = testing\n")
    kms = aws.client("kms")
    key_id = new_key(kms, "ECC_NIST_P256", alias="tuf")
    loaded = load_signer(source)
    assert isinstance(loaded.signer, KmsSigner)
    public = sslib_public(kms, key_id, "ecdsa-sha2-nistp256", loaded.keyid)
    public.verify_signature(loaded.signer.sign(PAYLOAD), PAYLOAD)
    public.verify_signature(KmsSigner.from_priv_key_uri(source, public).sign(PAYLOAD), PAYLOAD)


def test_sends_the_digest_and_pads_rsa_to_the_modulus(aws: MotoServer) -> None:
    """What goes to KMS (Stubber checks the parameters): the SHA-256 digest, MessageType DIGEST.  A
    signature KMS returns one byte short (a leading zero) is left-padded to the modulus length."""
    kms = aws.client("kms")
    public = sslib_public(kms, new_key(kms, "RSA_3072"), "rsassa-pss-sha256")
    signer = KmsSigner(kms, "alias/stubbed", public)
    with Stubber(kms) as stub:
        stub.add_response("sign", {"Signature": b"\x01" * 383, "SigningAlgorithm": "RSASSA_PSS_SHA_256"}, {
            "KeyId": "alias/stubbed", "Message": hashlib.sha256(PAYLOAD).digest(), "MessageType": "DIGEST",
            "SigningAlgorithm": "RSASSA_PSS_SHA_256"})
        signature = signer.sign(PAYLOAD)
    assert bytes.fromhex(signature.signature) == b"\x00" + b"\x01" * 383


def test_a_scheme_kms_cannot_sign_is_refused(aws: MotoServer) -> None:
    ed25519 = CryptoSigner.generate_ed25519().public_key
    assert isinstance(ed25519, SSlibKey)
    with pytest.raises(ConfigError, match="KMS key alias/x: cannot sign with scheme 'ed25519'"):
        KmsSigner(aws.client("kms"), "alias/x", ed25519)
    with pytest.raises(ValueError, match="not an AWS KMS key source"):
        KmsSigner.from_priv_key_uri("file:key.pem", ed25519)


@pytest.mark.parametrize(("spec", "usage", "needle"), [
    ("RSA_2048", "ENCRYPT_DECRYPT", "has KeyUsage ENCRYPT_DECRYPT (KeySpec RSA_2048)"),
    ("ECC_NIST_P384", "SIGN_VERIFY", "is a ECC_NIST_P384 key; tough verifies only RSA"),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "is a ECC_SECG_P256K1 key"),
])
def test_a_key_that_cannot_sign_is_refused_in_one_line(aws: MotoServer, capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path, spec: KeySpecType, usage: KeyUsageTypeType,
                                                       needle: str) -> None:
    key_id = new_key(aws.client("kms"), spec, usage, alias="wrong")
    with pytest.raises(ConfigError) as err:
        load_signer("awskms:alias/wrong")
    assert str(err.value).startswith("key awskms:alias/wrong: key "), err.value
    assert key_id in str(err.value) and needle in str(err.value)
    # Through the CLI: adding it to a root fails before the root is touched.
    run: Runner = make_runner(capsys)
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    before = root.read_bytes()
    assert_one_line_error(run("root", "add-key", str(root), "-k", "awskms:alias/wrong", "-r", "root"), 2,
                          "awskms:alias/wrong", key_id, needle)
    assert root.read_bytes() == before


def test_sign_failure_is_one_line_naming_the_key(aws: MotoServer) -> None:
    """What KMS answers to Sign (a key disabled since it was loaded: moto does not play that) is reported
    as botocore's error by the signer, and in one line naming the key by the publisher."""
    new_key(aws.client("kms"), "RSA_3072", alias="later-off")
    loaded = load_signer("awskms:alias/later-off")
    assert isinstance(loaded.signer, KmsSigner)
    with Stubber(loaded.signer.client) as stub:
        stub.add_client_error("sign", "DisabledException", "arn:aws:kms:us-west-2:1:key/k is disabled.", 400)
        with pytest.raises(ServiceError) as err:
            loaded.sign_hex(PAYLOAD)
    assert str(err.value) == ("key awskms:alias/later-off: signing failed: AWS KMS Sign failed: DisabledException: "
                              "arn:aws:kms:us-west-2:1:key/k is disabled.")


def _private_uses(tree: ast.AST) -> set[str]:
    """``X._name`` attribute uses (dunders aside) on anything but ``self``/``cls``."""
    return {f"{ast.unparse(node.value)}.{node.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))}


def test_no_securesystemslib_internals_are_used() -> None:
    """Every module that imports securesystemslib uses only public names, subclasses only the abstract
    Signer, and touches no private attribute of another object; KmsSigner's own private attributes are
    none the Signer base class has."""
    package = Path(repo_tool.__file__).parent
    users = 0
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("securesystemslib"):
                assert not any(part.startswith("_") for part in (node.module or "").split(".")), path
                assert not any(alias.name.startswith("_") for alias in node.names), path
                imported |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("securesystemslib") for alias in node.names), path
        if not imported:
            continue
        users += 1
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base) for base in node.bases} & imported
                assert bases <= {"Signer"}, f"{path}: {node.name} subclasses {bases}"
        assert _private_uses(tree) == set(), path
    assert users >= 2  # signers.py and kms_signer.py at least
    own = {name for name in KmsSigner.__init__.__code__.co_names if name.startswith("_")}
    inherited = {name for name in dir(Signer) if name.startswith("_") and not name.startswith("__")}
    assert own and not own & inherited
