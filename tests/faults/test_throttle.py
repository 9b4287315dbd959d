"""S3 throttling: the fault proxy answers writes with S3's own ``503 SlowDown`` (its XML body),
as S3 does when a prefix gets more requests than it can take.

repo-tool's S3 client (repo_tool/aws.py) uses botocore's ``standard`` retry mode (SlowDown is a
throttling error there: retried with jittered exponential backoff from 1 s) with 5 attempts in all,
unless ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` say otherwise.  A write throttled a few times
goes through; one throttled on every attempt ends the publish with one line, the previous release
still live and whole, and a rerun finishes the job.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repo_tool.aws import AwsSettings
from tests.clirun import Runner, assert_one_line_error
from tests.faults.helpers import NEW, OLD, audit_clean, s3_client_sees
from tests.s3helpers import PASS, SLOW_DOWN, FaultProxy, Request, S3Error, fault_proxy
from tests.test_s3 import BUCKET, S3Repo

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

DEFAULT_ATTEMPTS = 5


class Throttle:
    """A proxy rule: SlowDown for the first ``times(identity)`` attempts of each write it applies to."""

    def __init__(self, times: int | None = None, only: str | None = None) -> None:
        self.times, self.only = times, only
        self.attempts: Counter[tuple[str, ...]] = Counter()
        self.throttled: Counter[tuple[str, ...]] = Counter()
        self._order: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> str | S3Error:
        if not request.is_write or (self.only is not None and not request.key.endswith(self.only)):
            return PASS
        with self._lock:
            identity = request.identity
            self._order.setdefault(identity, len(self._order))
            self.attempts[identity] += 1
            limit = 1 + self._order[identity] % 2 if self.times is None else self.times  # once, twice, once ...
            if self.attempts[identity] > limit:
                return PASS
            self.throttled[identity] += 1
            return SLOW_DOWN


def _resent(proxy: FaultProxy, stored: dict[str, str]) -> list[str]:
    """Writes of objects that were already stored (timestamp.json is replaced by design)."""
    return [r.key for r in proxy.writes()
            if r.key.lstrip("/").split("/", 1)[1] in stored and not r.key.endswith("/timestamp.json")]


def test_retry_settings(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the S3 client is configured with, and that AWS_MAX_ATTEMPTS / AWS_RETRY_MODE win."""
    # botocore-stubs declare none of Config's attributes (botocore sets them from its options).
    assert AwsSettings().client("s3").meta.config.retries == {  # type: ignore[attr-defined]
        "mode": "standard", "total_max_attempts": DEFAULT_ATTEMPTS}
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert AwsSettings().client("s3").meta.config.retries == {  # type: ignore[attr-defined]
        "mode": "adaptive", "total_max_attempts": 2}


def test_every_write_throttled_once_or_twice_is_retried(s3_repo: S3Repo, run: Runner, aws: MotoServer,
                                                        tmp_path: Path) -> None:
    """Every write (PutObject, CreateMultipartUpload, each UploadPart, CompleteMultipartUpload) is
    answered SlowDown once or twice before it goes through: the publish succeeds with default settings."""
    images = s3_repo.images(NEW, big=True)
    throttle = Throttle()
    with fault_proxy(aws.endpoint) as proxy:
        proxy.reset(throttle)
        result = run("publish", *s3_repo.args("--endpoint-url", proxy.url, "--json"), *images)
    assert result.code == 0, result.err
    steps = Counter(identity[0] for identity in throttle.attempts)
    assert steps == {"PutObject": 6, "CreateMultipartUpload": 1, "UploadPart": 2, "CompleteMultipartUpload": 1}
    for identity, attempts in throttle.attempts.items():
        assert attempts == throttle.throttled[identity] + 1, identity  # each retried until it went through
    assert sorted(Counter(throttle.throttled.values()).items()) == [(1, 5), (2, 5)]  # 15 retries in all
    assert s3_client_sees(run, s3_repo, tmp_path / "client") == NEW
    audit_clean(run, *s3_repo.args())


def test_persistent_throttling_of_timestamp_fails_in_one_line_and_a_rerun_converges(
        s3_repo: S3Repo, run: Runner, aws: MotoServer, tmp_path: Path) -> None:
    """timestamp.json answered SlowDown on every attempt (default settings): exit 1 naming the object and
    the throttling after 5 attempts; everything else is stored, nothing of it live; the rerun sends
    only new metadata."""
    images = s3_repo.images(NEW)
    throttle = Throttle(times=1000, only="/timestamp.json")
    with fault_proxy(aws.endpoint) as proxy:
        proxy.reset(throttle)
        failed = run("publish", *s3_repo.args("--endpoint-url", proxy.url, "--json"), *images)
        assert_one_line_error(failed, 1, f"s3://{BUCKET}/metadata/",
                              "/timestamp.json: S3 PutObject failed: SlowDown: Please reduce your request rate.",
                              f"throttled: gave up after {DEFAULT_ATTEMPTS} attempts")
        assert list(throttle.attempts.values()) == [DEFAULT_ATTEMPTS]
        assert s3_client_sees(run, s3_repo, tmp_path / "client") == OLD
        audit_clean(run, *s3_repo.args())

        stored = s3_repo.objects()
        proxy.reset()
        rerun = run("publish", *s3_repo.args("--endpoint-url", proxy.url), *images)
        assert rerun.code == 0, rerun.err
        assert _resent(proxy, stored) == []
        # manifest.json again (its waves count from this run), and metadata past the orphaned version 3
        assert [r.identity[1] for r in proxy.writes()] == ["manifest.json", "4.targets.json", "4.snapshot.json",
                                                           "timestamp.json"]
    assert s3_client_sees(run, s3_repo, tmp_path / "client-after") == NEW


def test_persistent_throttling_of_a_part_with_aws_max_attempts(
        s3_repo: S3Repo, run: Runner, aws: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_MAX_ATTEMPTS=2 and every attempt at the root image's second part throttled: exit 1 naming the
    image object; the multipart upload is aborted (no parts left to pay for); a rerun converges."""
    images = s3_repo.images(NEW, big=True)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    throttle = Throttle(times=1000)
    with fault_proxy(aws.endpoint) as proxy:
        proxy.reset(lambda r: throttle(r) if r.step == "UploadPart" and "partNumber=2" in r.path else PASS)
        failed = run("publish", *s3_repo.args("--endpoint-url", proxy.url, "--json"), *images)
        assert_one_line_error(failed, 1, "-root.img.lz4: S3 upload failed: SlowDown", "gave up after 2 attempts")
        assert list(throttle.attempts.values()) == [2]
        assert s3_repo.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
        assert s3_client_sees(run, s3_repo, tmp_path / "client") == OLD

        monkeypatch.delenv("AWS_MAX_ATTEMPTS")
        stored = s3_repo.objects()
        proxy.reset()
        rerun = run("publish", *s3_repo.args("--endpoint-url", proxy.url), *images)
        assert rerun.code == 0, rerun.err
        assert _resent(proxy, stored) == []
    assert s3_client_sees(run, s3_repo, tmp_path / "client-after") == NEW
    audit_clean(run, *s3_repo.args())
