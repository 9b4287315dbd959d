"""A real SIGKILL at every write step of `repo-tool mirror --resign` (re-root) into a local repository
(tests/faults/killpoint.py): upstream (its own quickstart, served over HTTP) is published into the
operator's repository, on the operator's keys.  After each kill python-tuf's ngclient and this tool's
node, both trusting the operator's root, load the operator's repository and agree on the previous state
or the new one (for the first run, --init: no repository at all until timestamp.json is in place); files
there before are untouched until then; and the same command run again converges: exit 0, the new
release live, the auditor clean with the operator's root, and what the killed run stored found, not
written again.  The same into S3 (moto), each write request killed before it is sent and after its
answer."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from repo_tool.storage.s3 import STREAM_PART_SIZE
from tests.clirun import Run, Runner
from tests.faults.helpers import (
    NEW,
    OLD,
    Killed,
    KillServer,
    audit_clean,
    killed_at,
    local_client_sees,
    s3_client_sees,
    write_images,
)
from tests.repohelpers import ARCH, QS, VARIANT, copy_quickstart, make_quickstart, serve_directory, tree_state
from tests.s3helpers import FaultProxy, fault_proxy
from tests.test_mirror import Source
from tests.test_s3 import BUCKET, META_URL, REPO_META, TARGETS_URL, S3Repo, _restore

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

TIMESTAMP_KEY = f"metadata/{VARIANT}/{ARCH}/timestamp.json"

# The first run (--init) stores upstream's 1.1.0: its 3 images, the migration of the step from 1.0.0 and
# manifest.json (one write each), then 1.targets.json, 1.snapshot.json, 1.root.json (write-once links) and
# timestamp.json (replaced): each written to a temp file, fsynced, put in place (a step before and one
# after), its directory fsynced.
FIRST_STEPS = Counter({"write": 9, "fsync": 9, "before-link": 8, "after-link": 8, "before-replace": 1,
                       "after-replace": 1, "fsync-dir": 9})
# Adding 1.2.0: its 3 images (three chunks each, as they stream in) and manifest.json, 2.targets.json,
# 2.snapshot.json, timestamp.json.
ADD_STEPS = Counter({"write": 13, "fsync": 7, "before-link": 6, "after-link": 6, "before-replace": 1,
                     "after-replace": 1, "fsync-dir": 7})


@dataclass
class Reroot:
    """Upstream served over HTTP; the operator's config, keys and root (a quickstart whose repository
    the tests remove or restore)."""

    upstream: Source
    operator: QS

    def args(self, *extra: str) -> list[str]:
        return ["mirror", *self.upstream.from_args(), "--resign", "--config", str(self.operator.config),
                "--variant", VARIANT, "--arch", ARCH, *extra]

    @property
    def repo(self) -> Path:
        return self.operator.dir / "repo"

    def live(self, killed: Killed) -> bool:
        """The operator's new timestamp.json was in place when the process died."""
        return killed.reached("after-replace", f"{self.operator.meta}/timestamp.json")

    def sees(self, run: Runner, work: Path) -> str:
        """What ngclient and the node (they must agree) see with the operator's root."""
        op = self.operator
        return local_client_sees(run, work, op.root, op.meta, op.targets)

    def audit(self, run: Runner) -> None:
        op = self.operator
        audit_clean(run, "--root", str(op.root), "--metadata-url", str(op.meta), "--targets-url", str(op.targets))

    def rerun(self, run: Runner, where: str, *extra: str) -> Run:
        """The same command again (``--json``): exit 0, nothing the killed run stored written again."""
        stored = set(tree_state(self.repo)) if self.repo.exists() else set()
        done = run(*self.args(*extra, "--json"))
        assert done.code == 0, (where, done.err)
        written = [n if n.startswith("targets/") else f"metadata/{VARIANT}/{ARCH}/{n}"
                   for n in done.json().get("written", []) if n != "timestamp.json"]
        again = [name for name in written if name in stored]
        assert again == [], (where, again)  # targets found, metadata files (write-once) never overwritten
        return done


@pytest.fixture
def reroot(template: QS, tmp_path: Path) -> Iterator[Reroot]:
    upstream = make_quickstart(tmp_path / "upstream")  # other keys than the operator's
    operator = copy_quickstart(template, tmp_path / "operator")
    shutil.rmtree(operator.dir / "repo")
    with serve_directory(upstream.dir / "repo") as url:
        yield Reroot(Source(upstream, url), operator)


def _clean_run(kill_server: KillServer, reroot: Reroot, args: list[str], trace: Path,
               expected: Counter[str]) -> list[str]:
    """A run that is not killed: its steps counted (``expected`` of each kind), every target stored
    before the first metadata file, timestamp.json put in place last; its kill points."""
    clean = kill_server.run(0, args, trace)
    assert clean.returncode == 0, clean.stderr
    assert Counter(s.kind for s in clean.steps) == expected, clean.steps
    meta, targets = reroot.operator.meta, reroot.operator.targets
    first_meta = next(i for i, s in enumerate(clean.steps) if s.detail.startswith(f"{meta}/"))
    assert all(s.detail.startswith(f"{targets}") for s in clean.steps[:first_meta]), clean.steps
    assert all(s.detail.startswith(f"{meta}") for s in clean.steps[first_meta:]), clean.steps
    assert [str(s) for s in clean.steps[-3:]] == [
        f"before-replace {meta}/timestamp.json", f"after-replace {meta}/timestamp.json", f"fsync-dir {meta}"]
    return clean.kill_points()


@pytest.mark.long
def test_sigkill_at_every_write_step_of_a_first_reroot(reroot: Reroot, run: Runner, kill_server: KillServer,
                                                       tmp_path: Path) -> None:
    """``--init``: until timestamp.json is in place a client finds no repository; after it, the whole of
    upstream's 1.1.0 on the operator's root; the same ``--init`` run again converges."""
    args = reroot.args("--init")
    trace = tmp_path / "trace"
    points = _clean_run(kill_server, reroot, args, trace, FIRST_STEPS)
    assert reroot.sees(run, tmp_path / "client-clean") == OLD
    for number, point in enumerate(points, 1):
        shutil.rmtree(reroot.repo)
        killed, where = killed_at(kill_server, number, point, args, trace)
        if reroot.live(killed):
            assert reroot.sees(run, tmp_path / f"client-{number}") == OLD, where
        else:
            assert not (reroot.operator.meta / "timestamp.json").exists(), where
        rerun = reroot.rerun(run, where, "--init")
        assert rerun.json().get("already_published", False) == reroot.live(killed), (where, rerun.out)
        assert reroot.sees(run, tmp_path / f"client-{number}-rerun") == OLD, where
        reroot.audit(run)


@pytest.mark.long
def test_sigkill_at_every_write_step_of_a_reroot_adding_a_release(reroot: Reroot, run: Runner,
                                                                   kill_server: KillServer, tmp_path: Path) -> None:
    """The operator's repository at upstream's 1.1.0; upstream publishes 1.2.0 (a step from 1.1.0 in its
    Release.toml); the re-root adding it is killed at each step: clients see 1.1.0 (every file of it
    untouched) or 1.2.0, and the same run again converges to 1.2.0."""
    first = run(*reroot.args("--init"))
    assert first.code == 0, first.err
    previous = tmp_path / "previous"
    shutil.copytree(reroot.repo, previous)
    before = tree_state(previous)
    # Images of 2.2 MB of noise: streamed from upstream in three 1 MiB chunks each, so some kills land
    # inside a target's copy.
    done = run("publish", *reroot.upstream.qs.args(*write_images(tmp_path / "img", NEW, 2_200_000, noise=True)))
    assert done.code == 0, done.err

    args = reroot.args()
    trace = tmp_path / "trace"
    points = _clean_run(kill_server, reroot, args, trace, ADD_STEPS)
    assert reroot.sees(run, tmp_path / "client-clean") == NEW
    for number, point in enumerate(points, 1):
        shutil.rmtree(reroot.repo)
        shutil.copytree(previous, reroot.repo)
        killed, where = killed_at(kill_server, number, point, args, trace)
        live = reroot.live(killed)
        assert reroot.sees(run, tmp_path / f"client-{number}") == (NEW if live else OLD), where
        if not live:  # only new files: every file of the previous state untouched
            after = tree_state(reroot.repo)
            assert {name: after[name] for name in before} == before, where
        rerun = reroot.rerun(run, where)
        assert rerun.json().get("already_published", False) == live, (where, rerun.out)
        assert reroot.sees(run, tmp_path / f"client-{number}-rerun") == NEW, where
        reroot.audit(run)


def test_a_first_reroot_killed_after_its_timestamp_is_rerun_as_is(reroot: Reroot, run: Runner,
                                                                    kill_server: KillServer, tmp_path: Path) -> None:
    """Killed just after timestamp.json is in place (before its directory is fsynced) the repository is
    whole; the operator (or a cron job) runs the same ``--init`` command again: exit 0, nothing to do."""
    killed = kill_server.run("after-replace#1", reroot.args("--init"), tmp_path / "trace")
    assert reroot.live(killed), killed.steps[-1:]
    rerun = reroot.rerun(run, "after-replace#1", "--init")
    assert rerun.json()["already_published"] and "nothing to do" in rerun.json()["message"], rerun.out
    assert reroot.sees(run, tmp_path / "client") == OLD


def _s3_steps(parts: int) -> Counter[str]:
    """The S3 steps of a re-root adding 1.2.0 (each write request killed just before it is sent and just
    after its answer): its boot and hash images and manifest.json (one part each) and its root image
    (``parts`` parts) staged as multipart uploads (Create, UploadPart each), completed once all are sent,
    then 2.targets.json, 2.snapshot.json and timestamp.json (PutObject)."""
    writes = Counter({"PutObject": 3, "CreateMultipartUpload": 4, "UploadPart": parts + 3,
                      "CompleteMultipartUpload": 4})
    return Counter({f"{when} {op}": n for op, n in writes.items() for when in ("before-send", "after-call")})


def _operator_in_s3(reroot: Reroot, aws: MotoServer) -> S3Repo:
    """The operator's config pointed at a new moto bucket; the bucket (its view and client checks trust
    the operator's root.json)."""
    bucket = S3Repo(reroot.operator.dir, aws)
    bucket.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    config = yaml.safe_load(reroot.operator.config.read_text())
    for repo in config["repos"].values():
        repo["metadata_url"], repo["targets_url"] = META_URL, TARGETS_URL
    reroot.operator.config.write_text(yaml.safe_dump(config))
    return bucket


def _s3_rerun(run: Runner, reroot: Reroot, bucket: S3Repo, proxy: FaultProxy, where: str, live: bool,
              *extra: str) -> None:
    """The same command again through the proxy: exit 0; the targets the killed run stored found, not
    uploaded again (nothing written at all if its timestamp.json had landed); no object it stored
    changed (a metadata file it stored, 1.root.json, is only offered again with ``If-None-Match: *``,
    the write-once rule); the auditor clean with the operator's root."""
    stored = bucket.objects()
    proxy.reset()
    rerun = run(*reroot.args(*extra), "--json", "--endpoint-url", proxy.url)
    assert rerun.code == 0, (where, rerun.err)
    assert rerun.json().get("already_published", False) == live, (where, rerun.out)
    keys = [r.key.split("/", 2)[2] for r in proxy.writes()]
    again = [key for key in keys if key in stored and key.startswith("targets/")]
    assert again == [], (where, again)
    after = bucket.objects()
    changed = [key for key, etag in stored.items() if after.get(key) != etag and key != TIMESTAMP_KEY]
    assert changed == [], (where, changed)
    if live:
        assert keys == [], where
    audit_clean(run, "--root", str(reroot.operator.root), "--metadata-url", REPO_META, "--targets-url", TARGETS_URL,
                "--endpoint-url", bucket.aws.endpoint)


@pytest.mark.long
def test_sigkill_at_every_s3_write_step_of_a_first_reroot(reroot: Reroot, run: Runner, aws: MotoServer,
                                                          kill_server: KillServer, tmp_path: Path) -> None:
    """``--init`` into an empty bucket: no timestamp.json until the last PutObject; a rerun converges."""
    bucket = _operator_in_s3(reroot, aws)
    args, env, trace = reroot.args("--init"), aws.subprocess_env(), tmp_path / "trace"
    clean = kill_server.run(0, args, trace, env, s3=True)
    assert clean.returncode == 0, clean.stderr
    # 5 targets (3 images, a migration, manifest.json) staged as one-part multipart uploads and completed
    # once all are sent; 1.targets.json, 1.snapshot.json, 1.root.json, timestamp.json.
    writes = Counter({"PutObject": 4, "CreateMultipartUpload": 5, "UploadPart": 5, "CompleteMultipartUpload": 5})
    assert Counter(step.kind for step in clean.steps) == Counter(
        {f"{when} {op}": n for op, n in writes.items() for when in ("before-send", "after-call")}), clean.steps
    assert str(clean.last) == f"after-call PutObject /{BUCKET}/{TIMESTAMP_KEY} 200", clean.steps
    with fault_proxy(aws.endpoint) as proxy:
        for number, point in enumerate(clean.kill_points(), 1):
            for key in bucket.objects():
                bucket.s3.delete_object(Bucket=BUCKET, Key=key)
            killed, where = killed_at(kill_server, number, point, args, trace, env, s3=True)
            live = killed.reached("after-call PutObject", "/timestamp.json 200")
            if live:
                assert s3_client_sees(run, bucket, tmp_path / f"client-{number}") == OLD, where
            else:
                assert TIMESTAMP_KEY not in bucket.objects(), where
            _s3_rerun(run, reroot, bucket, proxy, where, live, "--init")
            assert s3_client_sees(run, bucket, tmp_path / f"client-{number}-rerun") == OLD, where


@pytest.mark.long
def test_sigkill_at_every_s3_write_step_of_a_reroot_adding_a_release(reroot: Reroot, run: Runner, aws: MotoServer,
                                                                      kill_server: KillServer, tmp_path: Path) -> None:
    """The operator's repository in a moto bucket at upstream's 1.1.0; the re-root adding 1.2.0 (its root
    image streamed from upstream's HTTP into a multipart upload) killed at each S3 write: clients see 1.1.0
    or 1.2.0; the same run again converges, finding what the killed run stored (not uploading it again)."""
    bucket = _operator_in_s3(reroot, aws)
    first = run(*reroot.args("--init"))
    assert first.code == 0, first.err
    baseline = bucket.objects()
    baseline_timestamp = bucket.s3.get_object(Bucket=BUCKET, Key=TIMESTAMP_KEY)["Body"].read()
    images = bucket.images(NEW, big=True)  # the root image streams into a multipart upload
    done = run("publish", *reroot.upstream.qs.args(*images))
    assert done.code == 0, done.err
    parts = math.ceil(Path(images[images.index("--root-image") + 1]).stat().st_size / STREAM_PART_SIZE)
    assert parts > 1

    args, env, trace = reroot.args(), aws.subprocess_env(), tmp_path / "trace"
    clean = kill_server.run(0, args, trace, env, s3=True)
    assert clean.returncode == 0, clean.stderr
    assert Counter(step.kind for step in clean.steps) == _s3_steps(parts), clean.steps
    assert str(clean.last) == f"after-call PutObject /{BUCKET}/{TIMESTAMP_KEY} 200", clean.steps
    with fault_proxy(aws.endpoint) as proxy:
        for number, point in enumerate(clean.kill_points(), 1):
            _restore(bucket, baseline, TIMESTAMP_KEY, baseline_timestamp)
            killed, where = killed_at(kill_server, number, point, args, trace, env, s3=True)
            live = killed.reached("after-call PutObject", "/timestamp.json 200")
            assert s3_client_sees(run, bucket, tmp_path / f"client-{number}") == (NEW if live else OLD), where
            _s3_rerun(run, reroot, bucket, proxy, where, live)
            assert s3_client_sees(run, bucket, tmp_path / f"client-{number}-rerun") == NEW, where
