"""Publishing to S3 against a real moto server process: upload order and headers, idempotent
reruns, fault injection at every write, two publishers at once, KMS signing end to end, and
one-line errors for bad buckets, missing credentials and KMS failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import lz4.frame
import pytest
from botocore.exceptions import ClientError

from repo_tool.publish.quickstart import ARCH, VARIANT, sample_image
from repo_tool.storage.base import ConflictError
from repo_tool.storage.s3 import IMMUTABLE, MULTIPART_THRESHOLD, S3Storage
from tests.clirun import Runner, assert_one_line_error
from tests.repohelpers import release_config
from tests.s3helpers import (
    DROP_AFTER,
    DROP_BEFORE,
    PASS,
    Request,
    bucket_objects,
    fault_proxy,
    node_view,
)

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

BUCKET = "bottlerocket-updates"
META_URL = f"s3://{BUCKET}/metadata/"
TARGETS_URL = f"s3://{BUCKET}/targets/"
REPO_META = f"{META_URL}{VARIANT}/{ARCH}/"


class S3Repo:
    """A quickstart published into the moto bucket, plus images for a next release."""

    def __init__(self, directory: Path, aws: MotoServer) -> None:
        self.dir = directory
        self.aws = aws
        self.s3 = aws.client("s3")

    @property
    def config(self) -> Path:
        return self.dir / "repo-tool.yaml"

    def args(self, *extra: str) -> list[str]:
        return ["--config", str(self.config), "--variant", VARIANT, "--arch", ARCH, *extra]

    def images(self, version: str, big: bool = False) -> list[str]:
        """Image options for ``publish``; ``big`` makes the root image large enough for multipart."""
        folder = self.dir / "images" / version
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for kind, size in (("boot", 64 * 1024), ("root", 256 * 1024), ("hash", 16 * 1024)):
            path = folder / f"bottlerocket-{VARIANT}-{ARCH}-{version}-{kind}.img.lz4"
            data = sample_image(kind, version, size)
            if big and kind == "root":
                data = lz4.frame.compress(os.urandom(MULTIPART_THRESHOLD + 1024 * 1024))
            if not path.exists():
                path.write_bytes(data)
            paths[kind] = path
        return ["--version", version, "--boot-image", str(paths["boot"]), "--root-image", str(paths["root"]),
                "--hash-image", str(paths["hash"]), *release_config(folder, version, after="1.0.0")]

    def view(self, work: Path) -> Any:
        return node_view(self.s3, REPO_META, TARGETS_URL, (self.dir / "root.json").read_bytes(), work,
                         VARIANT, ARCH)

    def objects(self) -> dict[str, str]:
        return bucket_objects(self.s3, BUCKET)


@pytest.fixture
def repo(aws: MotoServer, run: Runner, tmp_path: Path) -> S3Repo:
    result = run("quickstart", str(tmp_path / "qs"), "--metadata-url", META_URL, "--targets-url", TARGETS_URL,
                 "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["metadata_url"] == REPO_META and data["targets_url"] == TARGETS_URL
    assert data["metadata_dir"] is None
    return S3Repo(tmp_path / "qs", aws)


# --- layout, headers, privacy, ngclient ------------------------------------------------------------


def test_quickstart_to_s3_is_read_by_ngclient(repo: S3Repo, tmp_path: Path) -> None:
    view = repo.view(tmp_path / "node")
    assert view.versions == ["1.0.0", "1.1.0"]
    bucket = repo.aws.client("s3").get_bucket_versioning(Bucket=BUCKET)
    assert bucket.get("Status") == "Enabled"  # created with versioning by quickstart


def test_every_object_has_content_type_and_cache_control(repo: S3Repo) -> None:
    keys = repo.objects()
    assert any(k.endswith("/timestamp.json") for k in keys)
    for key in keys:
        head = repo.s3.head_object(Bucket=BUCKET, Key=key)
        name = key.rsplit("/", 1)[-1]
        if name == "timestamp.json":
            assert (head["ContentType"], head["CacheControl"]) == ("application/json", "no-cache")
        elif key.startswith("metadata/"):
            assert name.split(".")[0].isdigit(), key  # only versioned metadata besides timestamp.json
            assert (head["ContentType"], head["CacheControl"]) == ("application/json", IMMUTABLE)
        else:
            assert key.startswith("targets/") and len(name.split(".")[0]) == 64, key
            assert (head["ContentType"], head["CacheControl"]) == ("application/octet-stream", IMMUTABLE)


def test_objects_stay_private(repo: S3Repo) -> None:
    from botocore import UNSIGNED
    from botocore.config import Config

    anonymous = repo.aws.client("s3", config=Config(signature_version=UNSIGNED))
    with pytest.raises(Exception, match=r"403|AccessDenied"):
        anonymous.get_object(Bucket=BUCKET, Key=f"metadata/{VARIANT}/{ARCH}/timestamp.json")


def test_audit_streams_the_bucket(repo: S3Repo, run: Runner) -> None:
    """The auditor on S3: clean, then one flipped byte in an image object is named."""
    clean = run("audit", *repo.args("--json"))
    assert clean.code == 0, clean.out[-2000:]
    assert clean.json()["summary"]["targets_checked"] == clean.json()["summary"]["targets_listed"] > 3
    key = next(k for k in repo.objects() if k.endswith("-root.ext4.lz4"))
    data = bytearray(repo.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[-1] ^= 0x01
    repo.s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))
    tampered = run("audit", *repo.args("--json"))
    assert tampered.code == 1
    errors = [f for f in tampered.json()["findings"] if f["severity"] == "error"]
    assert [f["file"] for f in errors] == [f"s3://{BUCKET}/{key}"] and "does not match" in errors[0]["message"]


def test_http_storage_loads_a_live_repo_read_only(repo: S3Repo, run: Runner, tmp_path: Path) -> None:
    """A live repo behind a plain HTTP URL (here: presigned-free local mirror) can be planned against,
    and writing to it is refused before anything is sent."""
    from tests.repohelpers import serve_directory

    mirror = tmp_path / "mirror"
    for key in repo.objects():
        path = mirror / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(repo.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    with serve_directory(mirror) as url:
        text = repo.config.read_text().replace(META_URL, f"{url}/metadata/").replace(TARGETS_URL, f"{url}/targets/")
        repo.config.write_text(text)
        planned = run("publish", *repo.args("--plan", "--json"), *repo.images("1.2.0"))
        assert planned.code == 0, planned.err
        assert planned.json()["versions"]["snapshot"] == json.loads(
            (mirror / "metadata" / VARIANT / ARCH / "timestamp.json").read_bytes())["signed"]["meta"][
            "snapshot.json"]["version"] + 1
        assert_one_line_error(run("publish", *repo.args(), *repo.images("1.2.0")), 1, "read-only")


# --- idempotence: a rerun sends nothing twice ------------------------------------------------------


def test_republishing_uploads_nothing_and_new_release_only_new_files(
        repo: S3Repo, run: Runner, aws: MotoServer, tmp_path: Path) -> None:
    with fault_proxy(aws.endpoint) as proxy:
        first = run("publish", *repo.args("--endpoint-url", proxy.url), *repo.images("1.2.0"))
        assert first.code == 0, first.err
        puts = {r.key for r in proxy.writes()}
        assert len([k for k in puts if "/targets/" in k]) == 4  # 3 images + manifest.json

        proxy.reset()
        again = run("publish", *repo.args("--endpoint-url", proxy.url), *repo.images("1.2.0"))
        assert again.code == 0 and "already published" in again.err
        as_json = run("publish", *repo.args("--endpoint-url", proxy.url, "--json"), *repo.images("1.2.0"))
        assert as_json.code == 0 and as_json.json()["already_published"] is True
        assert proxy.writes() == []

        # 1.3.0 reuses 1.2.0's boot and hash images: only the root image and manifest.json go up.
        proxy.reset()
        options = repo.images("1.3.0")
        images_120 = repo.images("1.2.0")
        options[options.index("--boot-image") + 1] = images_120[images_120.index("--boot-image") + 1]
        options[options.index("--hash-image") + 1] = images_120[images_120.index("--hash-image") + 1]
        result = run("publish", *repo.args("--endpoint-url", proxy.url), *options)
        assert result.code == 0, result.err
        sent = sorted(r.key.split(".", 1)[1] for r in proxy.writes() if "/targets/" in r.key)
        assert sent == [f"bottlerocket-{VARIANT}-{ARCH}-1.3.0-root.img.lz4", "manifest.json"], sent
    assert repo.view(tmp_path / "node").latest == "1.3.0"


def test_large_image_goes_up_in_parallel_parts(repo: S3Repo, run: Runner, aws: MotoServer, tmp_path: Path) -> None:
    with fault_proxy(aws.endpoint) as proxy:
        result = run("publish", *repo.args("--endpoint-url", proxy.url), *repo.images("1.2.0", big=True))
        assert result.code == 0, result.err
        steps = [r.step for r in proxy.writes()]
    assert steps.count("CreateMultipartUpload") == 1
    assert steps.count("UploadPart") == 2
    assert steps.count("CompleteMultipartUpload") == 1
    root_key = next(k for k in repo.objects() if k.endswith("-root.img.lz4"))
    head = repo.s3.head_object(Bucket=BUCKET, Key=root_key)
    assert head["ContentLength"] == Path(repo.images("1.2.0")[5]).stat().st_size > MULTIPART_THRESHOLD + (1 << 20)
    assert head["CacheControl"] == IMMUTABLE and head["ContentType"] == "application/octet-stream"
    assert repo.view(tmp_path / "node").latest == "1.2.0"  # ngclient checked the sha256 of every image


# --- fault injection: every write fails in turn ----------------------------------------------------


def _order_is_safe(steps: list[Request]) -> None:
    """SPEC §4: every target before any metadata; timestamp.json last."""
    kinds = ["meta" if "/metadata/" in r.key else "target" for r in steps]
    assert "target" not in kinds[kinds.index("meta"):] if "meta" in kinds else True
    metas = [r.key.rsplit("/", 1)[-1] for r in steps if "/metadata/" in r.key]
    assert metas[-1] == "timestamp.json" and metas[0].endswith(".targets.json"), metas


@pytest.mark.parametrize("mode", [DROP_BEFORE, DROP_AFTER])
def test_failure_at_each_write_leaves_a_complete_repo_and_a_rerun_converges(
        repo: S3Repo, run: Runner, aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        mode: str) -> None:
    """For each write of a publish in turn (each PutObject, CreateMultipartUpload, UploadPart,
    CompleteMultipartUpload): DROP_BEFORE: it and every later write never reach S3 (a crash or
    lost network); DROP_AFTER: S3 applies it but the answer is lost (the tool sees a failure)."""
    images = repo.images("1.2.0", big=True)
    baseline = repo.objects()
    timestamp_key = f"metadata/{VARIANT}/{ARCH}/timestamp.json"
    baseline_timestamp = repo.s3.get_object(Bucket=BUCKET, Key=timestamp_key)["Body"].read()
    with fault_proxy(aws.endpoint) as proxy:
        # A clean run to learn how many writes a publish makes, then put the bucket back.
        assert run("publish", *repo.args("--endpoint-url", proxy.url), *images).code == 0
        clean = proxy.writes()
        _order_is_safe(clean)
        steps = len(clean)
        assert steps == 10  # boot, hash, manifest; multipart root (4); targets, snapshot, timestamp
        seen_steps = set()
        for k in range(steps):
            _restore(repo, baseline, timestamp_key, baseline_timestamp)
            monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

            target, tripped = clean[k].identity, threading.Event()

            def rule(request: Request, target: tuple[str, ...] = target, tripped: threading.Event = tripped) -> str:
                if not request.is_write:
                    return PASS
                if request.identity == target:
                    tripped.set()
                    return mode
                return DROP_BEFORE if mode == DROP_BEFORE and tripped.is_set() else PASS

            proxy.reset(rule)
            failed = run("publish", *repo.args("--endpoint-url", proxy.url, "--json"), *images)
            failed_step = next(r for r in proxy.writes() if r.identity == target)
            seen_steps.add(failed_step.step)
            assert_one_line_error(failed, 1)
            is_timestamp = failed_step.key.endswith("/timestamp.json")
            view = repo.view(tmp_path / f"node-{k}")
            assert view.latest == ("1.2.0" if is_timestamp and mode == DROP_AFTER else "1.1.0"), (k, failed_step)

            before_rerun = repo.objects()
            monkeypatch.delenv("AWS_MAX_ATTEMPTS")
            proxy.reset()
            rerun = run("publish", *repo.args("--endpoint-url", proxy.url), *images)
            assert rerun.code == 0, (k, failed_step, rerun.err)
            resent = [r.key for r in proxy.writes() if r.key.lstrip("/").split("/", 1)[1] in before_rerun
                      and not r.key.endswith("/timestamp.json")]
            assert resent == [], (k, failed_step.step, resent)
            assert repo.view(tmp_path / f"node-{k}").latest == "1.2.0"
    assert seen_steps == {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}


def _restore(repo: S3Repo, baseline: dict[str, str], timestamp_key: str, timestamp: bytes) -> None:
    for key in set(repo.objects()) - set(baseline):
        repo.s3.delete_object(Bucket=BUCKET, Key=key)
    repo.s3.put_object(Bucket=BUCKET, Key=timestamp_key, Body=timestamp)
    for upload in repo.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
        repo.s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])


# --- two publishers at once ------------------------------------------------------------------------


def test_two_publishers_exactly_one_wins_and_the_loser_reruns(
        repo: S3Repo, run: Runner, aws: MotoServer, tmp_path: Path) -> None:
    """Both load the same live repo (the proxy holds their first metadata write until both got
    there), then both try to publish; a different version each."""
    arrived: list[Request] = []
    lined_up = threading.Condition()

    def hold(request: Request) -> None:
        if request.method != "PUT" or not request.key.endswith(".targets.json"):
            return
        with lined_up:
            arrived.append(request)
            lined_up.notify_all()
            lined_up.wait_for(lambda: len(arrived) >= 2, timeout=30)
            position = arrived.index(request)
        if position:  # forward the second only once S3 holds the first (no fixed sleep to outrun)
            first = unquote(arrived[0].key).removeprefix(f"/{BUCKET}/")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    repo.s3.head_object(Bucket=BUCKET, Key=first)
                    return
                except ClientError:
                    time.sleep(0.02)
            raise AssertionError(f"{first} never landed")

    versions = ("1.2.0", "1.3.0")
    with fault_proxy(aws.endpoint) as proxy:
        proxy.hold = hold
        procs = [
            subprocess.Popen([sys.executable, "-m", "repo_tool", "publish",
                              *repo.args("--endpoint-url", proxy.url, "--json"),
                              *repo.images(v)], env=aws.subprocess_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for v in versions
        ]
        results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    codes = [code for _, _, code in results]
    assert sorted(codes) == [0, 1], results
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    loser_err = results[loser][1].strip()
    assert len(loser_err.splitlines()) == 1 and "another publisher won" in loser_err, loser_err
    view = repo.view(tmp_path / "node")
    assert view.latest == versions[winner] and versions[loser] not in view.versions

    again = run("publish", *repo.args(), *repo.images(versions[loser]))
    assert again.code == 0, again.err
    assert set(versions) <= set(repo.view(tmp_path / "node").versions)


def test_timestamp_is_replaced_only_if_unchanged(aws: MotoServer) -> None:
    """The If-Match path itself: two storages load timestamp.json; the second swap loses."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="race", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="race", Key="m/timestamp.json", Body=b'{"signed": {"version": 1}}')
    first, second = (S3Storage(s3, "race", "m/") for _ in range(2))
    loaded = first.read("timestamp.json")
    assert second.read("timestamp.json") == loaded
    first.swap("timestamp.json", b'{"signed": {"version": 2}}', loaded)
    with pytest.raises(ConflictError, match="changed since it was loaded"):
        second.swap("timestamp.json", b'{"signed": {"version": 3}}', loaded)
    assert s3.get_object(Bucket="race", Key="m/timestamp.json")["Body"].read() == b'{"signed": {"version": 2}}'
    with pytest.raises(ConflictError, match="already exists with other content"):
        second.create("timestamp.json", b"other")
    assert second.create("timestamp.json", b'{"signed": {"version": 2}}') is False  # same bytes: fine


# --- errors: one line, exit 1, nothing published ---------------------------------------------------


def test_missing_bucket_is_one_line(repo: S3Repo, run: Runner) -> None:
    repo.config.write_text(repo.config.read_text().replace(BUCKET, "no-such-bucket-here"))
    assert_one_line_error(run("publish", *repo.args(), *repo.images("1.2.0")), 1, "no-such-bucket-here",
                          "NoSuchBucket")


def test_missing_credentials_is_one_line(repo: S3Repo, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    before = repo.objects()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert_one_line_error(run("publish", *repo.args(), *repo.images("1.2.0")), 1, "no AWS credentials")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert repo.objects() == before


def test_unknown_profile_is_one_line(repo: S3Repo, run: Runner) -> None:
    # A profile AWS's configuration does not have is an input error (exit 2), like any other bad flag.
    assert_one_line_error(run("refresh", *repo.args("--profile", "nobody")), 2, "nobody")


# --- KMS signing end to end ------------------------------------------------------------------------


def _kms_key(kms: Any, alias: str, spec: str = "RSA_3072") -> str:
    key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec=spec)["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key_id)
    return str(key_id)


def test_publish_signed_with_kms_keys_read_by_ngclient(aws: MotoServer, run: Runner, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # AWS_REGION alone (botocore itself reads only the former)
    kms = aws.client("kms")
    roles = ("root", "targets", "snapshot", "timestamp")
    for role in roles:
        _kms_key(kms, f"tuf-{role}")
    root = tmp_path / "root.json"
    assert run("root", "init", str(root)).code == 0
    for role in roles:
        added = run("root", "add-key", str(root), "-k", f"awskms:alias/tuf-{role}", "-r", role)
        assert added.code == 0, added.err
    assert run("root", "expire", str(root), "in 52 weeks").code == 0
    signed = run("root", "sign", str(root), "-k", "aws-kms:///alias/tuf-root")  # tuftool's spelling
    assert signed.code == 0, signed.err
    entries = json.loads(root.read_bytes())["signed"]["keys"].values()
    assert {(e["keytype"], e["scheme"]) for e in entries} == {("rsa", "rsassa-pss-sha256")}
    config = tmp_path / "repo-tool.yaml"
    config.write_text(
        "repos:\n  prod:\n"
        f"    metadata_url: {META_URL}\n    targets_url: {TARGETS_URL}\n    root: root.json\n"
        "    signers:\n" + "".join(f"      {r}: ['awskms:alias/tuf-{r}']\n" for r in roles)
    )
    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    repo = S3Repo(tmp_path, aws)
    first = run("publish", *repo.args("--init"), *repo.images("1.0.0"))
    assert first.code == 0, first.err
    second = run("publish", *repo.args(), *repo.images("1.1.0"))
    assert second.code == 0, second.err
    assert repo.view(tmp_path / "node").versions == ["1.0.0", "1.1.0"]

    # Every metadata signature is RSA-PSS with a 32-byte salt (what tough requires), checked by hand.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from tests.repohelpers import olpc_canonical

    meta = {k: repo.s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in repo.objects()
            if k.startswith("metadata/")}
    keys = json.loads(root.read_bytes())["signed"]["keys"]
    for key, raw in meta.items():
        doc = json.loads(raw)
        for sig in doc["signatures"]:
            public = serialization.load_pem_public_key(keys[sig["keyid"]]["keyval"]["public"].encode())
            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(bytes.fromhex(sig["sig"]), olpc_canonical(doc["signed"]),
                          padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        assert doc["signatures"], key

    # A KMS failure while signing: one line naming the key, the call and AWS's answer; nothing written.
    kms.disable_key(KeyId=kms.describe_key(KeyId="alias/tuf-timestamp")["KeyMetadata"]["KeyId"])
    before = repo.objects()
    assert_one_line_error(run("refresh", *repo.args()), 1, "awskms:alias/tuf-timestamp", "DescribeKey", "Disabled")
    assert repo.objects() == before


def test_every_repo_command_works_on_s3(repo: S3Repo, run: Runner, tmp_path: Path) -> None:
    images = repo.images("1.2.0")
    opts = dict(zip(images[::2], images[1::2], strict=True))
    release = tmp_path / "release.yaml"
    release.write_text(
        f"config: {repo.config}\nversion: 1.2.0\nrepos:\n"
        f"  - {{variant: {VARIANT}, arch: {ARCH}, boot_image: {opts['--boot-image']}, "
        f"root_image: {opts['--root-image']}, hash_image: {opts['--hash-image']}}}\n"
        f"release_config: {opts['--release-config']}\n"
    )
    for args in (["publish-release", str(release)],
                 ["rollout", "pause", *repo.args()],
                 ["rollout", "resume", *repo.args()],
                 ["set-max-version", *repo.args("--max-version", "1.2.0")],
                 ["remove-update", *repo.args("--version", "1.0.0")],
                 ["refresh", *repo.args()]):
        result = run(*args, "--json")
        assert result.code == 0, (args, result.err)
    view = repo.view(tmp_path / "node")
    assert view.versions == ["1.1.0", "1.2.0"]
    again = run("publish-release", str(release))
    assert again.code == 0 and "already published in every repository" in again.err


def test_a_retried_write_whose_answer_was_lost_is_not_a_conflict(aws: MotoServer, monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """botocore retries a PUT whose answer was lost; S3 already applied the first one, so the
    retry fails its condition.  Create-only and If-Match writes must take that as success."""
    from repo_tool.aws import AwsSettings
    from repo_tool.storage import open_storage

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="retry", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    s3.put_object(Bucket="retry", Key="m/timestamp.json", Body=b"old")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    with fault_proxy(aws.endpoint) as proxy:
        proxy.reset(lambda request: DROP_AFTER if request.is_write and request.index == 0 else PASS)
        store = open_storage("s3://retry/m/", None, AwsSettings(endpoint_url=proxy.url))
        assert store.read("timestamp.json") == b"old"
        store.swap("timestamp.json", b"new", b"old")
        proxy.reset(lambda request: DROP_AFTER if request.is_write and request.index == 0 else PASS)
        store.create("1.snapshot.json", b"snap")
        assert [r.step for r in proxy.writes()] == ["PutObject", "PutObject"]  # the lost one and its retry
    assert s3.get_object(Bucket="retry", Key="m/timestamp.json")["Body"].read() == b"new"
    assert s3.get_object(Bucket="retry", Key="m/1.snapshot.json")["Body"].read() == b"snap"
