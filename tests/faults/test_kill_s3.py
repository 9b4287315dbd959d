"""A real SIGKILL at every S3 write step of a publish (tests/faults/killpoint.py: just before each
write request is sent and just after its answer arrives), multipart parts included: after each,
python-tuf's ngclient and this tool's node see the old release or the new one, the auditor finds
no error, and the same publish run again finishes the job without uploading a stored target again.

A kill between CreateMultipartUpload and CompleteMultipartUpload leaves an incomplete multipart
upload (no object; S3 bills its parts): the rerun starts a new one rather than touching an upload
another publisher might own, and the bucket's lifecycle rule (set by ``infra create-bucket`` and
quickstart) aborts it after 7 days.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repo_tool.publish.quickstart import ARCH, VARIANT
from tests.clirun import Runner
from tests.faults.helpers import NEW, OLD, KillServer, audit_clean, killpoint, s3_client_sees
from tests.s3helpers import fault_proxy
from tests.test_s3 import BUCKET, S3Repo, _restore

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

TIMESTAMP_KEY = f"metadata/{VARIANT}/{ARCH}/timestamp.json"
# boot, hash and manifest.json (PutObject); the root image in 2 parts (Create, UploadPart x2, Complete);
# then N.targets.json, N.snapshot.json and timestamp.json (PutObject): 10 writes, a step before each
# request is sent and one after its answer.
EXPECTED_STEPS = Counter({
    "before-send PutObject": 6, "after-call PutObject": 6,
    "before-send CreateMultipartUpload": 1, "after-call CreateMultipartUpload": 1,
    "before-send UploadPart": 2, "after-call UploadPart": 2,
    "before-send CompleteMultipartUpload": 1, "after-call CompleteMultipartUpload": 1,
})


@pytest.mark.long
def test_sigkill_at_every_s3_write_step(s3_repo: S3Repo, run: Runner, aws: MotoServer, kill_server: KillServer,
                                        tmp_path: Path) -> None:
    repo = s3_repo
    images = repo.images(NEW, big=True)  # the root image goes multipart
    args = ["publish", *repo.args(), *images]
    env = aws.subprocess_env()
    trace = tmp_path / "trace"
    baseline = repo.objects()
    baseline_timestamp = repo.s3.get_object(Bucket=BUCKET, Key=TIMESTAMP_KEY)["Body"].read()

    clean = killpoint(0, args, trace, env, s3=True)  # a new interpreter: `python -m tests.faults.killpoint`
    assert clean.returncode == 0, clean.stderr
    assert Counter(step.kind for step in clean.steps) == EXPECTED_STEPS, clean.steps
    _restore(repo, baseline, TIMESTAMP_KEY, baseline_timestamp)
    forked = kill_server.run(0, args, trace, env, s3=True)  # the kills below run in its forked children
    assert forked.returncode == 0 and Counter(s.kind for s in forked.steps) == EXPECTED_STEPS, forked.steps
    assert str(clean.last) == f"after-call PutObject /{BUCKET}/{TIMESTAMP_KEY} 200", clean.steps
    lifecycle = repo.s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert any(rule.get("AbortIncompleteMultipartUpload") for rule in lifecycle)

    stale_uploads = 0
    with fault_proxy(aws.endpoint) as proxy:
        for number, point in enumerate(clean.kill_points(), 1):
            _restore(repo, baseline, TIMESTAMP_KEY, baseline_timestamp)
            killed = kill_server.run(point, args, trace, env, s3=True)
            where = f"step {number} ({point}): {killed.steps[-1:]}"
            assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
            assert killed.point == point, where
            live = killed.reached("after-call PutObject", "/timestamp.json 200")
            assert s3_client_sees(run, repo, tmp_path / f"client-{number}") == (NEW if live else OLD), where
            audit_clean(run, *repo.args())

            stored = repo.objects()
            uploads = repo.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
            proxy.reset()
            rerun = run("publish", *repo.args("--endpoint-url", proxy.url), *images)
            assert rerun.code == 0, (where, rerun.err)
            assert ("already published" in rerun.err) == live, (where, rerun.err)
            again = [r.key for r in proxy.writes() if r.key.lstrip("/").split("/", 1)[1] in stored
                     and not r.key.endswith("/timestamp.json")]
            assert again == [], (where, again)
            if live:
                assert proxy.writes() == []
            assert len(uploads) <= 1, where
            left = repo.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
            assert [u["UploadId"] for u in left] == [u["UploadId"] for u in uploads], where  # the rerun's completed
            stale_uploads += len(uploads)
            assert s3_client_sees(run, repo, tmp_path / f"client-{number}-rerun") == NEW, where
    # At least the kills after CreateMultipartUpload's answer, before each part and after its answer,
    # and before CompleteMultipartUpload is sent (more when another thread's step was the kill).
    assert stale_uploads >= 6
