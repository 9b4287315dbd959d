"""A real SIGKILL at every write step of `repo-tool mirror` into a local path (tests/faults/killpoint.py):
after each, python-tuf's ngclient and this tool's node load the destination and agree on the previous
mirror state or the new one, files there before are untouched until the new timestamp.json is in place,
and the same mirror run again converges to a copy of the source; the same into S3 (moto), where the
killed run's objects are found, not uploaded again."""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repo_tool.storage.s3 import STREAM_PART_SIZE
from tests.clirun import Runner
from tests.faults.helpers import (
    NEW,
    OLD,
    Killed,
    KillServer,
    audit_clean,
    killed_at,
    local_client_sees,
    s3_client_sees,
    temp_files,
    write_images,
)
from tests.repohelpers import ARCH, QS, VARIANT, copy_quickstart, serve_directory, tree_state
from tests.s3helpers import fault_proxy
from tests.test_s3 import BUCKET, REPO_META, TARGETS_URL, S3Repo, _restore

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

TIMESTAMP_KEY = f"metadata/{VARIANT}/{ARCH}/timestamp.json"

PUT_IN_PLACE = ("after-replace", "after-link", "after-rename")
# 1.2.0's 4 new targets (three 3-chunk images, manifest.json), then 3.targets.json and 3.snapshot.json
# (write-once links) and timestamp.json (replaced): each written to a temp file, fsynced, put in place
# (a step before and one after), its directory fsynced.
EXPECTED_STEPS = Counter({"write": 13, "fsync": 7, "before-link": 6, "after-link": 6, "before-replace": 1,
                          "after-replace": 1, "fsync-dir": 7})


def _live(killed: Killed, meta: Path) -> bool:
    """The new timestamp.json was in place when the process died."""
    return any(s.kind in PUT_IN_PLACE and s.detail == f"{meta}/timestamp.json" for s in killed.steps)


class Mirror:
    """The quickstart served over HTTP as the source; destinations under ``work``."""

    def __init__(self, qs: QS, url: str, work: Path) -> None:
        self.qs, self.url, self.work = qs, url, work

    def args(self, dest: Path) -> list[str]:
        return ["mirror", "--root", str(self.qs.root),
                "--from-metadata-url", f"{self.url}/metadata/{VARIANT}/{ARCH}/",
                "--from-targets-url", f"{self.url}/targets/",
                "--to-metadata-url", str(meta(dest)), "--to-targets-url", str(dest / "targets")]


def meta(dest: Path) -> Path:
    return dest / "metadata" / VARIANT / ARCH


def _same_as_source(qs: QS, dest: Path) -> None:
    """Every metadata file at the destination is the source's byte for byte, the timestamp included,
    and every target the source lists is there under its content address."""
    for path in meta(dest).iterdir():
        if not temp_files(meta(dest)) or path not in temp_files(meta(dest)):
            assert path.read_bytes() == (qs.meta / path.name).read_bytes(), path.name
    assert (meta(dest) / "timestamp.json").read_bytes() == (qs.meta / "timestamp.json").read_bytes()
    targets = qs.newest("targets")["signed"]["targets"]
    for name, entry in targets.items():
        stored = f"{entry['hashes']['sha256']}.{name}"
        assert (dest / "targets" / stored).read_bytes() == (qs.targets / stored).read_bytes(), stored


@pytest.fixture
def source(template: QS, tmp_path: Path) -> Iterator[Mirror]:
    qs = copy_quickstart(template, tmp_path / "source")
    with serve_directory(qs.dir / "repo") as url:
        yield Mirror(qs, url, tmp_path)


@pytest.mark.long
def test_sigkill_at_every_write_step_of_a_mirror_run(source: Mirror, run: Runner, kill_server: KillServer,
                                                      tmp_path: Path) -> None:
    # The previous mirror state: the source at 1.1.0; then upstream publishes 1.2.0.
    previous = tmp_path / "previous"
    first = run(*source.args(previous))
    assert first.code == 0, first.err
    # Images of 2.2 MB of noise: three 1 MiB chunks each, so some kills land inside a target's copy.
    done = run("publish", *source.qs.args(*write_images(tmp_path / "img", NEW, 2_200_000, noise=True)))
    assert done.code == 0, done.err

    dest = tmp_path / "dest"
    trace = tmp_path / "trace"
    shutil.copytree(previous, dest)
    clean = kill_server.run(0, source.args(dest), trace)
    assert clean.returncode == 0, clean.stderr
    assert Counter(step.kind for step in clean.steps) == EXPECTED_STEPS, clean.steps
    # Targets first, then the versioned metadata, timestamp.json last.
    assert [str(s) for s in clean.steps[-8:]] == [
        f"before-link {meta(dest)}/3.snapshot.json", f"after-link {meta(dest)}/3.snapshot.json",
        f"fsync-dir {meta(dest)}", f"write {clean.steps[-5].detail}", f"fsync {clean.steps[-5].detail}",
        f"before-replace {meta(dest)}/timestamp.json", f"after-replace {meta(dest)}/timestamp.json",
        f"fsync-dir {meta(dest)}"]
    assert all("/targets/" in s.detail or (s.kind == "fsync-dir" and s.detail.endswith("/targets"))
               for s in clean.steps[:-15]), clean.steps
    _same_as_source(source.qs, dest)
    points = clean.kill_points()
    assert points, "the mirror run wrote nothing"
    before = tree_state(previous)

    for number, point in enumerate(points, 1):
        shutil.rmtree(dest)
        shutil.copytree(previous, dest)
        killed, where = killed_at(kill_server, number, point, source.args(dest), trace)
        live = _live(killed, meta(dest))
        seen = local_client_sees(run, tmp_path / f"client-{number}", source.qs.root, meta(dest), dest / "targets")
        assert seen == (NEW if live else OLD), where
        if not live:  # only new files: every file of the previous state untouched
            after = tree_state(dest)
            assert {name: after[name] for name in before} == before, where

        rerun = run(*source.args(dest))
        assert rerun.code == 0, (where, rerun.err)
        _same_as_source(source.qs, dest)
        seen = local_client_sees(run, tmp_path / f"client-{number}-rerun", source.qs.root, meta(dest),
                                 dest / "targets")
        assert seen == NEW, where
        audit_clean(run, "--root", str(source.qs.root), "--metadata-url", str(meta(dest)),
                    "--targets-url", str(dest / "targets"))


@pytest.mark.long
def test_sigkill_during_a_first_mirror_leaves_nothing_a_client_would_load(source: Mirror, run: Runner,
                                                                           kill_server: KillServer,
                                                                           tmp_path: Path) -> None:
    """Into an empty destination: until timestamp.json is in place there is no repository (a client
    finds no timestamp.json), after it the whole copy; a rerun converges."""
    dest = tmp_path / "dest"
    trace = tmp_path / "trace"
    clean = kill_server.run(0, source.args(dest), trace)
    assert clean.returncode == 0, clean.stderr
    for number, point in enumerate(clean.kill_points(), 1):
        shutil.rmtree(dest, ignore_errors=True)
        killed, where = killed_at(kill_server, number, point, source.args(dest), trace)
        if _live(killed, meta(dest)):
            seen = local_client_sees(run, tmp_path / f"client-{number}", source.qs.root, meta(dest), dest / "targets")
            assert seen == OLD, where
        else:
            assert not (meta(dest) / "timestamp.json").exists(), where
        rerun = run(*source.args(dest))
        assert rerun.code == 0, (where, rerun.err)
        _same_as_source(source.qs, dest)



def _s3_steps(parts: int) -> Counter[str]:
    """The S3 steps of a mirror run (each write request killed just before it is sent and just after
    its answer): 1.2.0's boot, hash and manifest.json (one part each) and its root image (``parts``
    parts) staged as multipart uploads (Create, UploadPart each) and completed once all are sent, then
    N.targets.json, N.snapshot.json and timestamp.json (PutObject)."""
    writes = Counter({"PutObject": 3, "CreateMultipartUpload": 4, "UploadPart": parts + 3,
                      "CompleteMultipartUpload": 4})
    return Counter({f"{when} {op}": n for op, n in writes.items() for when in ("before-send", "after-call")})


@pytest.mark.long
def test_sigkill_at_every_s3_write_step_of_a_mirror_run(source: Mirror, run: Runner, aws: MotoServer,
                                                         kill_server: KillServer, tmp_path: Path) -> None:
    bucket = S3Repo(source.qs.dir, aws)  # the mirror, where tests/test_s3.py's repositories live
    bucket.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    args = [*source.args(tmp_path / "unused")[:-4], "--to-metadata-url", REPO_META, "--to-targets-url", TARGETS_URL]
    first = run(*args)
    assert first.code == 0, first.err
    baseline = bucket.objects()
    baseline_timestamp = bucket.s3.get_object(Bucket=BUCKET, Key=TIMESTAMP_KEY)["Body"].read()
    images = bucket.images(NEW, big=True)  # the root image goes multipart
    done = run("publish", *source.qs.args(*images))
    assert done.code == 0, done.err
    parts = math.ceil(Path(images[images.index("--root-image") + 1]).stat().st_size / STREAM_PART_SIZE)

    env = aws.subprocess_env()
    trace = tmp_path / "trace"
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

            stored = bucket.objects()
            proxy.reset()
            rerun = run(*args, "--endpoint-url", proxy.url)
            assert rerun.code == 0, (where, rerun.err)
            again = [r.key for r in proxy.writes() if r.key.split("/", 2)[2] in stored
                     and not r.key.endswith("/timestamp.json")]
            assert again == [], (where, again)  # what the killed run stored is found, not written again
            if live:
                assert proxy.writes() == [], where
            assert bucket.s3.get_object(Bucket=BUCKET, Key=TIMESTAMP_KEY)["Body"].read() == (
                source.qs.meta / "timestamp.json").read_bytes(), where
            assert s3_client_sees(run, bucket, tmp_path / f"client-{number}-rerun") == NEW, where
