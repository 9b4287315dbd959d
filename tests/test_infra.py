"""``infra create-bucket``, ``infra create-keys`` and ``keys import-kms`` against a real moto server
(another process, over HTTP): idempotent set-up, --plan makes no write call, existing settings
and lifecycle rules are kept, and KMS keys land in a root that then signs and verifies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization

from repo_tool.aws import AwsSettings, ServiceError, forget_clients
from repo_tool.publish.infra import LIFECYCLE_RULE_ID, create_bucket
from repo_tool.trust.keys import ECDSA_P256, RSA_PSS, keyid_of, public_key, same_public_key

from .clirun import Runner, assert_one_line_error, make_runner

if TYPE_CHECKING:  # imported for real by pytest_plugins (so pytest can rewrite its asserts)
    from types_boto3_kms.literals import KeySpecType, KeyUsageTypeType
    from types_boto3_s3.type_defs import LifecycleRuleTypeDef, ServerSideEncryptionRuleTypeDef

    from .motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

BUCKET = "repo-tool-infra-test"
WRITES = ("Create", "Put", "Delete", "Schedule", "Update", "Enable", "Disable", "Tag")


@pytest.fixture
def run(aws: MotoServer, capsys: pytest.CaptureFixture[str]) -> Runner:
    """The CLI in-process, with the moto server's AWS_* environment (``aws``) in effect."""
    return make_runner(capsys)


@pytest.fixture
def calls(aws: MotoServer) -> Iterator[list[str]]:
    """Every S3 and KMS operation the code under test sends through its (cached) clients."""
    forget_clients()
    seen: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        seen.append(event_name.rsplit(".", 1)[-1])

    for service in ("s3", "kms"):
        AwsSettings().client(service).meta.events.register(f"before-call.{service}.*", record)
    yield seen
    forget_clients()


def writes(seen: list[str]) -> list[str]:
    return [name for name in seen if name.startswith(WRITES)]


def bucket_state(aws: MotoServer, bucket: str = BUCKET) -> dict[str, Any]:
    s3 = aws.client("s3")
    return {
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "public_access_block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "encryption": s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"],
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
    }


def bucket_exists(aws: MotoServer, bucket: str = BUCKET) -> bool:
    try:
        aws.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


OUR_RULE: LifecycleRuleTypeDef = {
    "ID": LIFECYCLE_RULE_ID,
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
}


# --- create-bucket ----------------------------------------------------------------------------


def test_create_bucket_plan_writes_nothing(aws: MotoServer, run: Runner, calls: list[str]) -> None:
    result = run("infra", "create-bucket", BUCKET, "--plan")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"would create bucket s3://{BUCKET} in us-west-2"
    assert lines[1] == "would enable versioning"
    assert all(line.startswith("would ") for line in lines) and len(lines) == 5
    assert calls == ["HeadBucket"] and not bucket_exists(aws)

    actions = run("infra", "create-bucket", BUCKET, "--plan", "--json").json()
    assert [a["setting"] for a in actions] == ["bucket", "versioning", "public-access-block", "encryption",
                                               "lifecycle"]
    assert all(a["change"] and not a["done"] for a in actions)
    assert writes(calls) == [] and not bucket_exists(aws)


def test_create_bucket_sets_everything_then_has_nothing_to_do(aws: MotoServer, run: Runner,
                                                              calls: list[str]) -> None:
    result = run("infra", "create-bucket", f"s3://{BUCKET}", "--json")
    assert result.code == 0, result.err
    actions = result.json()
    assert all(a["change"] and a["done"] for a in actions), actions
    assert actions[0]["what"] == f"created bucket s3://{BUCKET} in us-west-2"
    assert writes(calls) == ["CreateBucket", "PutBucketVersioning", "PutPublicAccessBlock", "PutBucketEncryption",
                             "PutBucketLifecycleConfiguration"]
    state = bucket_state(aws)
    assert state == {
        "versioning": "Enabled",
        "public_access_block": {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                                "RestrictPublicBuckets": True},
        "encryption": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}],
        "lifecycle": [OUR_RULE],
    }
    assert aws.client("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "us-west-2"

    # A second run reads, reports every setting as already done, and writes nothing.
    calls.clear()
    again = run("infra", "create-bucket", BUCKET)
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"bucket s3://{BUCKET}: already exists (us-west-2)",
        "versioning: already enabled",
        "public access block: already blocks all public access",
        "encryption: already SSE-S3 (AES256)",
        f"lifecycle: rule {LIFECYCLE_RULE_ID} already aborts incomplete multipart uploads after 7 days",
        "nothing to do",
    ]
    assert writes(calls) == [] and calls[0] == "HeadBucket"
    assert bucket_state(aws) == state
    assert all(not a["change"] and not a["done"] for a in run("infra", "create-bucket", BUCKET, "--json").json())
    assert writes(calls) == []


def test_existing_bucket_keeps_its_rules_and_kms_encryption(aws: MotoServer, run: Runner,
                                                           calls: list[str]) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    kms_key = aws.client("kms").create_key()["KeyMetadata"]["KeyId"]
    kms_default: list[ServerSideEncryptionRuleTypeDef] = [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key},
         "BucketKeyEnabled": True}]
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": kms_default})
    others: list[LifecycleRuleTypeDef] = [
        {"ID": "expire-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "old-versions", "Status": "Enabled", "Filter": {},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 90}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": others})

    plan = run("infra", "create-bucket", BUCKET, "--plan")
    assert plan.code == 0, plan.err
    assert plan.out.splitlines() == [
        f"bucket s3://{BUCKET}: already exists (us-west-2)",
        "would enable versioning (now Suspended)",
        "would block all public access (now off: BlockPublicPolicy, RestrictPublicBuckets)",
        f"encryption: keeping the aws:kms default (key {kms_key}), stronger than SSE-S3",
        f"would add lifecycle rule {LIFECYCLE_RULE_ID} (abort incomplete multipart uploads after 7 days), "
        "keeping 2 other rule(s)",
    ]
    assert writes(calls) == []

    result = run("infra", "create-bucket", BUCKET, "--region", "us-west-2")
    assert result.code == 0, result.err
    assert writes(calls) == ["PutBucketVersioning", "PutPublicAccessBlock", "PutBucketLifecycleConfiguration"]
    state = bucket_state(aws)
    assert state["versioning"] == "Enabled"
    assert all(state["public_access_block"].values())
    assert state["encryption"] == kms_default
    assert state["lifecycle"] == [*others, OUR_RULE]

    calls.clear()
    assert run("infra", "create-bucket", BUCKET).out.splitlines()[-1] == "nothing to do"
    assert writes(calls) == []


def test_an_equivalent_rule_and_a_disabled_own_rule(aws: MotoServer, run: Runner, calls: list[str]) -> None:
    s3 = aws.client("s3")
    assert run("infra", "create-bucket", BUCKET).code == 0
    disabled: LifecycleRuleTypeDef = {**OUR_RULE, "Status": "Disabled"}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [disabled]})
    calls.clear()
    result = run("infra", "create-bucket", BUCKET)
    assert f"lifecycle: updated lifecycle rule {LIFECYCLE_RULE_ID}" in result.out
    assert writes(calls) == ["PutBucketLifecycleConfiguration"]
    assert bucket_state(aws)["lifecycle"] == [OUR_RULE]

    # Someone else's rule that already aborts uploads (sooner) for the whole bucket is enough.
    theirs: LifecycleRuleTypeDef = {"ID": "abort-uploads", "Status": "Enabled", "Filter": {},
              "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [theirs]})
    calls.clear()
    result = run("infra", "create-bucket", BUCKET)
    assert "lifecycle: rule abort-uploads already aborts incomplete multipart uploads after 3 days" in result.out
    assert writes(calls) == []


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_create_bucket_in_another_region(aws: MotoServer, run: Runner, region: str) -> None:
    result = run("infra", "create-bucket", BUCKET, "--region", region)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == f"created bucket s3://{BUCKET} in {region}"
    location = aws.client("s3").get_bucket_location(Bucket=BUCKET)["LocationConstraint"]
    assert (location or "us-east-1") == region
    assert aws.client("s3", region_name=region).get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    again = run("infra", "create-bucket", BUCKET)
    assert again.out.splitlines()[0] == f"bucket s3://{BUCKET}: already exists ({region})"
    assert again.out.splitlines()[-1] == "nothing to do"
    other = "us-west-2" if region != "us-west-2" else "us-east-1"
    assert_one_line_error(run("infra", "create-bucket", BUCKET, "--region", other), 2,
                          f"s3://{BUCKET} already exists in {region}, not in {other}")


def test_bad_bucket_name(run: Runner) -> None:
    assert_one_line_error(run("infra", "create-bucket", "Not_A_Bucket"), 2, "'Not_A_Bucket' is not a valid S3 bucket")


class StubbedAws(AwsSettings):
    def __init__(self, client: Any) -> None:
        super().__init__()
        object.__setattr__(self, "_stubbed", client)

    def client(self, service: Any, profile: str | None = None, region: str | None = None) -> Any:
        return self._stubbed  # type: ignore[attr-defined]


def test_bucket_of_another_account_and_aws_failures(aws: MotoServer) -> None:
    """What moto cannot play: a 403 on HeadBucket (someone else's bucket), a name taken by another
    account, a denied write.  Each is one line naming the bucket, the call and AWS's answer."""
    s3 = aws.client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("head_bucket", "403", "Forbidden", 403)
        with pytest.raises(ServiceError) as err:
            create_bucket(StubbedAws(s3), BUCKET, None, plan=True)
        assert str(err.value).startswith(f"s3://{BUCKET}: S3 HeadBucket failed: 403: Forbidden (the bucket exists")
        assert err.value.exit_code == 1

        stub.add_client_error("head_bucket", "404", "Not Found", 404)
        stub.add_client_error("create_bucket", "BucketAlreadyExists", "The requested bucket name is not available.",
                              409)
        with pytest.raises(ServiceError) as err:
            create_bucket(StubbedAws(s3), BUCKET, None, plan=False)
        assert str(err.value) == (f"s3://{BUCKET}: S3 CreateBucket failed: BucketAlreadyExists: "
                                  "The requested bucket name is not available.")

        stub.add_response("head_bucket", {"BucketRegion": "us-west-2"})
        stub.add_response("get_bucket_versioning", {})
        stub.add_client_error("put_bucket_versioning", "AccessDenied", "Access Denied", 403)
        with pytest.raises(ServiceError) as err:
            create_bucket(StubbedAws(s3), BUCKET, None, plan=False)
        assert str(err.value) == f"s3://{BUCKET}: S3 PutBucketVersioning failed: AccessDenied: Access Denied"
        stub.assert_no_pending_responses()


# --- create-keys ------------------------------------------------------------------------------


def key_count(aws: MotoServer) -> int:
    return len(aws.client("kms").list_keys()["Keys"])


def test_create_keys_plan_then_create_then_reuse(aws: MotoServer, run: Runner, calls: list[str]) -> None:
    plan = run("infra", "create-keys", "tuf-root", "alias/tuf-targets", "--plan")
    assert plan.code == 0, plan.err
    assert plan.out.splitlines() == [
        "would create KMS key alias/tuf-root (RSA_3072, SIGN_VERIFY); signer source awskms:alias/tuf-root",
        "would create KMS key alias/tuf-targets (RSA_3072, SIGN_VERIFY); signer source awskms:alias/tuf-targets",
    ]
    assert writes(calls) == [] and key_count(aws) == 0
    planned = run("infra", "create-keys", "tuf-root", "--plan", "--json").json()
    assert planned == [{"alias": "alias/tuf-root", "key_id": None, "created": False, "uri": "awskms:alias/tuf-root",
                        "key_spec": "RSA_3072", "what": plan.out.splitlines()[0]}]
    assert key_count(aws) == 0

    created = run("infra", "create-keys", "tuf-root", "alias/tuf-targets", "tuf-root", "--json")
    assert created.code == 0, created.err
    first = created.json()
    assert [(k["alias"], k["created"], k["uri"]) for k in first] == [
        ("alias/tuf-root", True, "awskms:alias/tuf-root"), ("alias/tuf-targets", True, "awskms:alias/tuf-targets")]
    assert writes(calls) == ["CreateKey", "CreateAlias", "CreateKey", "CreateAlias"]
    kms = aws.client("kms")
    for key in first:
        meta = kms.describe_key(KeyId=key["alias"])["KeyMetadata"]
        assert meta["KeyId"] == key["key_id"]
        assert (meta["KeyUsage"], meta["KeySpec"], meta["KeyState"]) == ("SIGN_VERIFY", "RSA_3072", "Enabled")
        assert "RSASSA_PSS_SHA_256" in meta["SigningAlgorithms"]
        assert meta["Description"] == f"repo-tool TUF signing key ({key['alias']})"
    assert key_count(aws) == 2

    calls.clear()
    again = run("infra", "create-keys", "alias/tuf-root", "tuf-targets", "--key-spec", "RSA_4096", "--json")
    assert again.code == 0, again.err
    second = again.json()
    assert [(k["key_id"], k["created"], k["key_spec"]) for k in second] == [
        (k["key_id"], False, "RSA_3072") for k in first]
    assert writes(calls) == [] and key_count(aws) == 2
    assert "RSA_3072, kept although --key-spec is RSA_4096" in second[0]["what"]
    human = run("infra", "create-keys", "tuf-root").out
    assert human == (f"alias/tuf-root: already exists (key {first[0]['key_id']}, RSA_3072); "
                     "signer source awskms:alias/tuf-root\n")

    bigger = run("infra", "create-keys", "tuf-snapshot", "--key-spec", "RSA_4096", "--json").json()
    assert bigger[0]["created"] and key_count(aws) == 3
    assert kms.describe_key(KeyId="alias/tuf-snapshot")["KeyMetadata"]["KeySpec"] == "RSA_4096"


def test_create_keys_refuses_an_alias_of_an_unusable_key(aws: MotoServer, run: Runner, calls: list[str]) -> None:
    kms = aws.client("kms")
    secret = kms.create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/secrets", TargetKeyId=secret)
    result = run("infra", "create-keys", "new-key", "secrets")
    assert_one_line_error(result, 1, "key alias/secrets: cannot reuse it", "DescribeKey",
                          f"key {secret} has KeyUsage ENCRYPT_DECRYPT", "SIGN_VERIFY")
    assert writes(calls) == [] and key_count(aws) == 1  # checked before creating anything

    signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_3072")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/off", TargetKeyId=signing)
    kms.disable_key(KeyId=signing)
    assert_one_line_error(run("infra", "create-keys", "off"), 1, "alias/off", f"key {signing} is Disabled")


@pytest.mark.parametrize(("alias", "needle"), [
    ("alias/aws/s3", "reserved for AWS managed keys"),
    ("bad name", "'bad name' is not a valid KMS alias name"),
])
def test_create_keys_bad_alias(run: Runner, alias: str, needle: str) -> None:
    assert_one_line_error(run("infra", "create-keys", alias), 2, needle)


def test_create_keys_usage(run: Runner) -> None:
    assert run("infra", "create-keys").code == 2
    assert run("infra", "create-keys", "x", "--key-spec", "RSA_2048").code == 2


# --- keys import-kms --------------------------------------------------------------------------


def kms_key(aws: MotoServer, alias: str, key_spec: KeySpecType = "RSA_3072",
            usage: KeyUsageTypeType = "SIGN_VERIFY") -> str:
    kms = aws.client("kms")
    key_id: str = kms.create_key(KeyUsage=usage, KeySpec=key_spec)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key_id)
    return key_id


def new_root(run: Runner, path: Path) -> None:
    result = run("root", "init", str(path))
    assert result.code == 0, result.err


def test_import_kms_adds_the_key_to_a_root(aws: MotoServer, run: Runner, tmp_path: Path) -> None:
    key_id = kms_key(aws, "tuf-root")
    root = tmp_path / "root.json"
    new_root(run, root)
    result = run("keys", "import-kms", "alias/tuf-root", "--root", str(root), "-r", "root", "-r", "snapshot",
                 "--json")
    assert result.code == 0, result.err
    info = result.json()
    signed = json.loads(root.read_text())["signed"]
    assert list(signed["keys"]) == [info["keyid"]]
    entry = signed["keys"][info["keyid"]]
    assert info["keyid"] == keyid_of(entry) == info["root_keyid"]
    assert entry == info["key"] and (entry["keytype"], entry["scheme"]) == ("rsa", RSA_PSS)
    assert info["source"] == "awskms:alias/tuf-root" and info["root_changed"] is True
    kms_public = serialization.load_der_public_key(aws.client("kms").get_public_key(KeyId=key_id)["PublicKey"])
    assert same_public_key(public_key(entry), kms_public)
    assert {role: signed["roles"][role]["keyids"] for role in signed["roles"]} == {
        "root": [info["keyid"]], "snapshot": [info["keyid"]], "targets": [], "timestamp": []}

    # The same key by its key ID, in tuftool's spelling: already listed, the file is left alone.
    before = root.read_bytes()
    again = run("keys", "import-kms", f"aws-kms:///{key_id}", "--root", str(root), "-r", "root")
    assert again.code == 0, again.err
    assert again.out.splitlines() == [
        f"keyid: {info['keyid']}",
        f"source: aws-kms:///{key_id}  (a key source for the signers of repo-tool.yaml)",
        "keytype: rsa, scheme: rsassa-pss-sha256",
        f"{root}: already lists key {info['keyid']} for root; unchanged",
    ]
    assert root.read_bytes() == before

    # Plain output without a root: the key ID, the signer source, the key type.
    plain = run("keys", "import-kms", "awskms:alias/tuf-root")
    assert plain.out.splitlines()[0] == f"keyid: {info['keyid']}"
    assert "source: awskms:alias/tuf-root" in plain.out


def test_imported_key_signs_the_root(aws: MotoServer, run: Runner, tmp_path: Path) -> None:
    """The printed source signs: a root whose every role is the KMS key, signed through KMS, verifies.
    Adding a key to a signed root clears its signatures (as root add-key does) and says to sign again."""
    kms_key(aws, "tuf-all")
    root = tmp_path / "root.json"
    new_root(run, root)
    roles = [arg for role in ("root", "snapshot", "targets", "timestamp") for arg in ("-r", role)]
    added = run("keys", "import-kms", "tuf-all", "--root", str(root), *roles)
    assert added.code == 0, added.err
    assert added.out.splitlines()[-1].endswith("the root needs signing again (repo-tool root sign)")
    source = added.out.splitlines()[1].split()[1]
    assert source == "awskms:alias/tuf-all"  # a bare name is an alias name, as in infra create-keys
    signed = run("root", "sign", str(root), "-k", source)
    assert signed.code == 0, signed.err
    assert run("root", "verify", str(root)).code == 0
    assert len(json.loads(root.read_text())["signatures"]) == 1

    kms_key(aws, "tuf-extra", "ECC_NIST_P256")
    extra = run("keys", "import-kms", "alias/tuf-extra", "--root", str(root), "-r", "targets")
    assert extra.code == 0, extra.err
    assert "clears the 1 existing signature(s)" in extra.err
    assert json.loads(root.read_text())["signatures"] == []


def test_import_kms_source_for_a_bare_key_id(aws: MotoServer, run: Runner) -> None:
    key_id = kms_key(aws, "by-id")
    info = run("keys", "import-kms", key_id, "--json").json()
    assert info["source"] == f"awskms:{key_id}" and "root" not in info


def test_import_kms_ecdsa(aws: MotoServer, run: Runner, tmp_path: Path) -> None:
    kms_key(aws, "tuf-ec", "ECC_NIST_P256")
    root = tmp_path / "root.json"
    new_root(run, root)
    info = run("keys", "import-kms", "alias/tuf-ec", "--root", str(root), "-r", "timestamp", "--json").json()
    assert (info["keytype"], info["scheme"]) == (ECDSA_P256, ECDSA_P256)
    signed = json.loads(root.read_text())["signed"]
    assert signed["roles"]["timestamp"]["keyids"] == [info["keyid"]] == [keyid_of(signed["keys"][info["keyid"]])]


def test_import_kms_missing_key(aws: MotoServer, run: Runner, tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    new_root(run, root)
    before = root.read_bytes()
    result = run("keys", "import-kms", "alias/nope", "--root", str(root), "-r", "root")
    assert_one_line_error(result, 1, "key awskms:alias/nope", "AWS KMS GetPublicKey failed", "NotFoundException")
    assert root.read_bytes() == before


def test_import_kms_wrong_usage_or_disabled(aws: MotoServer, run: Runner) -> None:
    secret = kms_key(aws, "secrets", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert_one_line_error(run("keys", "import-kms", "alias/secrets"), 1, "key awskms:alias/secrets",
                          "AWS KMS DescribeKey", f"key {secret} has KeyUsage ENCRYPT_DECRYPT", "SIGN_VERIFY")
    off = kms_key(aws, "off")
    aws.client("kms").disable_key(KeyId=off)
    assert_one_line_error(run("keys", "import-kms", "alias/off"), 1, "key awskms:alias/off",
                          f"key {off} is Disabled")


def test_import_kms_usage(run: Runner, tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    assert_one_line_error(run("keys", "import-kms", "alias/k", "-r", "root"), 2, "--role needs --root")
    assert_one_line_error(run("keys", "import-kms", "alias/k", "--root", str(root)), 2, "--root needs")
    assert_one_line_error(run("keys", "import-kms", "alias/k", "--root", str(root), "-r", "admin"), 2, "admin")
