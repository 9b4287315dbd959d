"""Set up the AWS resources a repository needs: the S3 bucket and the KMS signing keys.

Both operations are idempotent: they read the current state and change only what differs from
the wanted state, so running them again is safe and reports that nothing is left to do.  With
``plan=True`` they make no write calls at all and report what they would do.

The bucket gets versioning, all four public access blocks, default encryption (SSE-S3; an existing
SSE-KMS default is kept, it is stronger) and a lifecycle rule that aborts incomplete multipart
uploads after 7 days (other lifecycle rules are kept).  Each KMS key is an asymmetric SIGN_VERIFY
key reached through an alias; an existing alias is reused after checking that it can sign TUF
metadata the way tough verifies it.  KMS key names and DescribeKey's answer are read by
:mod:`repo_tool.signing.kms`; this module must not sign, nor write repository content.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repo_tool.aws import AwsSettings, ServiceError, error_code, http_status, reason
from repo_tool.errors import UsageError
from repo_tool.signing.kms import SOURCE_PREFIX, alias_name, describe_key, signing_key_problem
from repo_tool.storage.s3 import valid_bucket_name

if TYPE_CHECKING:  # types-boto3[s3,kms] (dev only)
    from types_boto3_kms.literals import KeySpecType
    from types_boto3_kms.type_defs import KeyMetadataTypeDef
    from types_boto3_s3.client import S3Client

LIFECYCLE_RULE_ID = "repo-tool-abort-incomplete-multipart"
ABORT_MULTIPART_DAYS = 7
PUBLIC_ACCESS_BLOCK = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
US_EAST_1 = "us-east-1"

# Asymmetric KMS key specs tough can verify, and the signing algorithm each must offer.
KEY_SPECS: tuple[KeySpecType, ...] = ("RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256")
DEFAULT_KEY_SPEC = "RSA_3072"



@dataclass(frozen=True)
class Action:
    """One setting of the bucket: what was (or would be) done, as one line."""

    setting: str  # bucket, versioning, public-access-block, encryption, lifecycle
    what: str
    change: bool  # the setting differed from the wanted state
    done: bool  # ...and this run changed it (never under plan)


@dataclass(frozen=True)
class KeyResult:
    """One KMS signing key: its alias, key ID (None if it would be created) and signer source."""

    alias: str  # alias/NAME
    key_id: str | None
    created: bool
    uri: str  # the key source for repo-tool.yaml signers: awskms:alias/NAME
    key_spec: str
    what: str


# --- S3 bucket ------------------------------------------------------------------------------


def create_bucket(aws: AwsSettings, bucket: str, region: str | None, plan: bool) -> list[Action]:
    """Make sure ``bucket`` exists with the settings a repository bucket needs (see the module doc)."""
    bucket = bucket_name(bucket)
    s3 = aws.client("s3")
    head = _s3_call(bucket, "HeadBucket", s3.head_bucket, absent=("404", "NoSuchBucket", "NotFound"), Bucket=bucket)
    actions: list[Action] = []
    if head is None:
        where = region or _client_region(s3)
        if plan:  # nothing to read: every setting of a new bucket would be set
            actions.append(Action("bucket", f"would create bucket s3://{bucket} in {where}", True, False))
            return actions + [Action(setting, f"would {verb}", True, False) for setting, verb in _NEW_BUCKET_PLAN]
        if where != _client_region(s3):
            s3 = aws.client("s3", region=where)  # a bucket is created through its own region's endpoint
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if where != US_EAST_1:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": where}
        created = _s3_call(bucket, "CreateBucket", s3.create_bucket, absent=("BucketAlreadyOwnedByYou",), **kwargs)
        if created is None:  # created meanwhile by another run of ours: fine
            actions.append(Action("bucket", f"bucket s3://{bucket}: already exists ({where})", False, False))
        else:
            actions.append(Action("bucket", f"created bucket s3://{bucket} in {where}", True, True))
    else:
        where = str(head.get("BucketRegion") or region or _client_region(s3))
        if region and where != region:
            raise UsageError(f"s3://{bucket} already exists in {where}, not in {region} (--region)")
        if where != _client_region(s3):
            s3 = aws.client("s3", region=where)
        actions.append(Action("bucket", f"bucket s3://{bucket}: already exists ({where})", False, False))
    for step in (_versioning, _public_access_block, _encryption, _lifecycle):
        actions.append(step(s3, bucket, plan))
    return actions


_NEW_BUCKET_PLAN = (
    ("versioning", "enable versioning"),
    ("public-access-block", "block all public access (" + ", ".join(PUBLIC_ACCESS_BLOCK) + ")"),
    ("encryption", "set default encryption SSE-S3 (AES256, bucket key)"),
    ("lifecycle", f"add lifecycle rule {LIFECYCLE_RULE_ID} (abort incomplete multipart uploads after "
                  f"{ABORT_MULTIPART_DAYS} days)"),
)


def bucket_name(text: str) -> str:
    """``BUCKET`` or ``s3://BUCKET[/]``; raise :class:`UsageError` for a name S3 refuses."""
    name = text[len("s3://"):] if text.startswith("s3://") else text
    name = name.rstrip("/")
    if not valid_bucket_name(name):
        raise UsageError(f"{text!r} is not a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and ending "
                         "with a letter or digit)")
    return name


def _versioning(s3: S3Client, bucket: str, plan: bool) -> Action:
    status = _s3_call(bucket, "GetBucketVersioning", s3.get_bucket_versioning, Bucket=bucket) or {}
    current = status.get("Status")
    if current == "Enabled":
        return Action("versioning", "versioning: already enabled", False, False)
    if plan:
        return Action("versioning", f"would enable versioning (now {current or 'never enabled'})", True, False)
    _s3_call(bucket, "PutBucketVersioning", s3.put_bucket_versioning, Bucket=bucket,
             VersioningConfiguration={"Status": "Enabled"})
    return Action("versioning", f"versioning: enabled (was {current or 'never enabled'})", True, True)


def _public_access_block(s3: S3Client, bucket: str, plan: bool) -> Action:
    answer = _s3_call(bucket, "GetPublicAccessBlock", s3.get_public_access_block,
                      absent=("NoSuchPublicAccessBlockConfiguration",), Bucket=bucket)
    current = (answer or {}).get("PublicAccessBlockConfiguration") or {}
    missing = [name for name in PUBLIC_ACCESS_BLOCK if current.get(name) is not True]
    if not missing:
        return Action("public-access-block", "public access block: already blocks all public access", False, False)
    if plan:
        return Action("public-access-block", f"would block all public access (now off: {', '.join(missing)})",
                      True, False)
    _s3_call(bucket, "PutPublicAccessBlock", s3.put_public_access_block, Bucket=bucket,
             PublicAccessBlockConfiguration=dict.fromkeys(PUBLIC_ACCESS_BLOCK, True))
    return Action("public-access-block", f"public access block: blocked all public access (was off: "
                                         f"{', '.join(missing)})", True, True)


def _encryption(s3: S3Client, bucket: str, plan: bool) -> Action:
    answer = _s3_call(bucket, "GetBucketEncryption", s3.get_bucket_encryption,
                      absent=("ServerSideEncryptionConfigurationNotFoundError",), Bucket=bucket)
    rules = ((answer or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or []
    default = (rules[0].get("ApplyServerSideEncryptionByDefault") or {}) if rules else {}
    algorithm = default.get("SSEAlgorithm")
    if algorithm == "AES256":  # a bucket key only matters for SSE-KMS: any SSE-S3 default is what we want
        return Action("encryption", "encryption: already SSE-S3 (AES256)", False, False)
    if isinstance(algorithm, str) and algorithm.startswith("aws:kms"):
        key = default.get("KMSMasterKeyID")
        return Action("encryption", f"encryption: keeping the {algorithm} default"
                                    f"{f' (key {key})' if key else ''}, stronger than SSE-S3", False, False)
    now = f" (now {algorithm})" if algorithm else " (now none)"
    if plan:
        return Action("encryption", f"would set default encryption SSE-S3 (AES256, bucket key){now}", True, False)
    _s3_call(bucket, "PutBucketEncryption", s3.put_bucket_encryption, Bucket=bucket,
             ServerSideEncryptionConfiguration={"Rules": [{
                 "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                 "BucketKeyEnabled": True,
             }]})
    return Action("encryption", "encryption: set default SSE-S3 (AES256, bucket key)", True, True)


def _our_rule() -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
    }


def _aborts_uploads(rule: dict[str, Any]) -> bool:
    """An enabled rule over the whole bucket that aborts incomplete uploads within our 7 days."""
    whole_bucket = rule.get("Filter") in (None, {}, {"Prefix": ""}) and not rule.get("Prefix")
    days = (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
    return (rule.get("Status") == "Enabled" and whole_bucket and isinstance(days, int)
            and 0 < days <= ABORT_MULTIPART_DAYS)


def _lifecycle(s3: S3Client, bucket: str, plan: bool) -> Action:
    answer = _s3_call(bucket, "GetBucketLifecycleConfiguration", s3.get_bucket_lifecycle_configuration,
                      absent=("NoSuchLifecycleConfiguration",), Bucket=bucket) or {}
    rules: list[dict[str, Any]] = list(answer.get("Rules") or [])
    covering = [rule for rule in rules if _aborts_uploads(rule)]
    ours = [rule for rule in covering if rule.get("ID") == LIFECYCLE_RULE_ID] or covering
    if ours:
        name = ours[0].get("ID") or "(no ID)"
        return Action("lifecycle", f"lifecycle: rule {name} already aborts incomplete multipart uploads "
                                   f"after {ours[0]['AbortIncompleteMultipartUpload']['DaysAfterInitiation']} "
                                   "days", False, False)
    replaced = any(rule.get("ID") == LIFECYCLE_RULE_ID for rule in rules)
    kept = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
    verb = "update" if replaced else "add"
    others = f", keeping {len(kept)} other rule(s)" if kept else ""
    text = (f"lifecycle rule {LIFECYCLE_RULE_ID} (abort incomplete multipart uploads after "
            f"{ABORT_MULTIPART_DAYS} days){others}")
    if plan:
        return Action("lifecycle", f"would {verb} {text}", True, False)
    config: dict[str, Any] = {"Bucket": bucket, "LifecycleConfiguration": {"Rules": [*kept, _our_rule()]}}
    if answer.get("TransitionDefaultMinimumObjectSize"):  # a bucket-wide setting that a put without it resets
        config["TransitionDefaultMinimumObjectSize"] = answer["TransitionDefaultMinimumObjectSize"]
    _s3_call(bucket, "PutBucketLifecycleConfiguration", s3.put_bucket_lifecycle_configuration, **config)
    return Action("lifecycle", f"lifecycle: {'updated' if replaced else 'added'} {text}", True, True)


def _s3_call(bucket: str, name: str, call: Callable[..., Any], absent: tuple[str, ...] = (),
             **kwargs: Any) -> dict[str, Any] | None:
    """``call(**kwargs)``; None when AWS answers one of the ``absent`` codes; else a one-line ServiceError."""
    try:
        answer: dict[str, Any] = call(**kwargs)
    except Exception as exc:  # botocore ClientError, credentials, connection errors ...
        if error_code(exc) in absent:
            return None
        hint = ""
        if name == "HeadBucket" and http_status(exc) == 403:
            hint = " (the bucket exists but these credentials may not use it: another account owns it, or a " \
                   "policy denies access)"
        raise ServiceError(f"s3://{bucket}: S3 {name} failed: {reason(exc)}{hint}") from None
    return answer


def _client_region(client: S3Client) -> str:
    return str(client.meta.region_name or US_EAST_1)


# --- KMS keys -------------------------------------------------------------------------------


def create_keys(aws: AwsSettings, aliases: list[str], plan: bool, key_spec: str = DEFAULT_KEY_SPEC) -> list[KeyResult]:
    """One SIGN_VERIFY key per alias: an existing alias is checked and reused, a missing one created.

    Every alias is checked before any key is created, so a bad existing alias changes nothing."""
    wanted = next((known for known in KEY_SPECS if known == key_spec), None)
    if wanted is None:
        raise UsageError(f"key spec {key_spec!r}: use one of {', '.join(KEY_SPECS)}")
    names = list(dict.fromkeys(alias_name(alias) for alias in aliases))
    found: dict[str, KeyMetadataTypeDef | None] = {}
    for name in names:
        meta = describe_key(aws, name, name)
        if meta is not None:
            problem = signing_key_problem(meta)
            if problem:
                raise ServiceError(f"key {name}: cannot reuse it for TUF signing (AWS KMS DescribeKey): {problem}")
        found[name] = meta
    results: list[KeyResult] = []
    for name in names:
        uri = f"{SOURCE_PREFIX}{name}"
        meta = found[name]
        if meta is not None:
            spec = str(meta.get("KeySpec") or meta.get("CustomerMasterKeySpec"))
            kept = f", kept although --key-spec is {key_spec}" if spec != key_spec else ""
            results.append(KeyResult(name, str(meta["KeyId"]), False, uri, spec,
                                     f"{name}: already exists (key {meta['KeyId']}, {spec}{kept}); "
                                     f"signer source {uri}"))
        elif plan:
            results.append(KeyResult(name, None, False, uri, key_spec,
                                     f"would create KMS key {name} ({key_spec}, SIGN_VERIFY); signer source {uri}"))
        else:
            key_id = _create_key(aws, name, wanted)
            results.append(KeyResult(name, key_id, True, uri, key_spec,
                                     f"created KMS key {name}: {key_id} ({key_spec}); signer source {uri}"))
    return results


def _create_key(aws: AwsSettings, name: str, key_spec: KeySpecType) -> str:
    kms = aws.client("kms")
    try:
        answer = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=key_spec,
                                Description=f"repo-tool TUF signing key ({name})")
    except Exception as exc:
        raise ServiceError(f"key {name}: AWS KMS CreateKey failed: {reason(exc)}") from None
    key_id = str(answer["KeyMetadata"]["KeyId"])
    try:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    except Exception as exc:
        # Do not leave an unnamed key behind (keys cost money): schedule its deletion, the shortest wait.
        try:
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
            cleanup = f"key {key_id} scheduled for deletion"
        except Exception as again:
            cleanup = f"key {key_id} left in place (ScheduleKeyDeletion failed: {reason(again)})"
        raise ServiceError(f"key {name}: AWS KMS CreateAlias failed: {reason(exc)}; {cleanup}") from None
    return key_id
