"""``repo-tool mirror`` (issue 18, item 1) on quickstart repositories: plan against run, --versions,
incremental reruns, and the refusals (a tampered target, a destination newer than the source), with
the streaming writes of both storages."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repo_tool.core.manifest import Manifest
from repo_tool.core.progress import NO_PROGRESS, Progress
from repo_tool.core.semver import Version
from repo_tool.core.versionspec import chosen_updates, parse_versions
from repo_tool.errors import UsageError
from repo_tool.mirror.mirror import Location, MirrorOptions, mirror
from repo_tool.storage.base import LocalStorage, StorageError
from repo_tool.storage.s3 import MULTIPART_THRESHOLD, S3Storage
from repo_tool.storage.staging import Staged, StagedBatch
from repo_tool.trust.model import TargetError
from repo_tool.trust.verifier import ExpiredError, load_repo

from .clirun import Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT, copy_quickstart, serve_directory, tree_state
from .test_root_show import rotate_root_key

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]


def mirror_args(qs: QS, dst: Path, *extra: str) -> list[str]:
    return ["mirror", "--root", str(qs.root), "--from-metadata-url", str(qs.meta), "--from-targets-url",
            str(qs.targets), "--to-metadata-url", str(dst / "meta"), "--to-targets-url", str(dst / "targets"), *extra]


def listed_objects(qs: QS) -> dict[str, str]:
    """Object name -> target name of every target the newest targets.json lists (plain json)."""
    targets = qs.newest("targets")["signed"]["targets"]
    return {f"{entry['hashes']['sha256']}.{name}": name for name, entry in targets.items()}


def test_plan_writes_nothing_and_the_run_copies_what_it_said(run: Runner, qs: QS, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    planned = run(*mirror_args(qs, dst, "--plan", "--json"))
    assert planned.code == 0, planned.err
    assert not dst.exists()
    plan = planned.json()
    assert plan["plan"] is True and plan["versions"] == ["1.0.0", "1.1.0"]
    assert plan["previous_timestamp_version"] is None and plan["skipped"] == 0
    done = run(*mirror_args(qs, dst, "--json")).json()
    assert {k: v for k, v in done.items() if k != "plan"} == {k: v for k, v in plan.items() if k != "plan"}
    assert sorted(os.listdir(dst / "targets")) == sorted(listed_objects(qs))
    timestamp = json.loads((qs.meta / "timestamp.json").read_bytes())["signed"]
    snapshot_version = timestamp["meta"]["snapshot.json"]["version"]
    for name in ("1.root.json", "timestamp.json", f"{snapshot_version}.snapshot.json"):
        assert (dst / "meta" / name).read_bytes() == (qs.meta / name).read_bytes()  # byte for byte
    copied = sum((dst / "targets" / name).stat().st_size for name in os.listdir(dst / "targets"))
    assert done["categories"]["targets"]["copied_bytes"] == copied
    # a node's load of the mirror, from upstream's root
    repo = load_repo(LocalStorage(dst / "meta"), qs.root.read_bytes(), timestamp_now())
    assert repo.timestamp.version == timestamp["version"]
    text = run(*mirror_args(qs, dst))
    assert text.code == 0 and "total: copied 0 objects, 0 bytes" in text.out, text.out


def timestamp_now() -> int:
    from repo_tool.cli.common import now_ns

    return now_ns()


def test_rerun_copies_nothing_and_a_new_timestamp_only_metadata(run: Runner, qs: QS, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    assert run(*mirror_args(qs, dst)).code == 0
    before = tree_state(dst)
    again = run(*mirror_args(qs, dst, "--json")).json()
    assert again["copied"] == 0 and again["copied_bytes"] == 0 and again["skipped"] > 0
    assert tree_state(dst) == before
    assert run("refresh", *qs.args()).code == 0  # upstream re-signs: new targets, snapshot, timestamp
    moved = run(*mirror_args(qs, dst, "--json")).json()
    assert moved["categories"]["targets"]["copied"] == 0
    assert moved["categories"]["metadata"]["copied"] == 3
    assert moved["timestamp_version"] == moved["previous_timestamp_version"] + 1
    assert (dst / "meta" / "timestamp.json").read_bytes() == (qs.meta / "timestamp.json").read_bytes()


def test_versions_choose_the_images_manifest_and_migrations(run: Runner, qs: QS, tmp_path: Path) -> None:
    manifest = qs.manifest()
    by_version = {u["version"]: set(u["images"].values()) for u in manifest["updates"]}
    migrations = {name for names in manifest["migrations"].values() for name in names}
    assert migrations, "the quickstart has a migration to 1.1.0"
    cases = {"latest": {"1.1.0"}, ">=1.0.1": {"1.1.0"}, "1.0.0,1.1.0": {"1.0.0", "1.1.0"},
             "all": {"1.0.0", "1.1.0"}}
    for spec, versions in cases.items():
        dst = tmp_path / spec.replace(">", "gt").replace(",", "_")
        result = run(*mirror_args(qs, dst, "--versions", spec, "--json"))
        assert result.code == 0, result.err
        assert result.json()["versions"] == sorted(versions)
        names = {listed_objects(qs)[name] for name in os.listdir(dst / "targets")}
        wanted = {"manifest.json"} | set().union(*(by_version[v] for v in versions))
        if "1.1.0" in versions:
            wanted |= migrations  # the walk from 1.0.0 up to it
        assert names == wanted, spec
    assert_one_line_error(run(*mirror_args(qs, tmp_path / "bad", "--versions", "1.x")), 2, "--versions", "1.x")
    assert_one_line_error(run(*mirror_args(qs, tmp_path / "none", "--versions", ">=9.0.0")), 2, "--versions")
    # Without the release nodes are offered the copied manifest would send them to images not there.
    assert_one_line_error(run(*mirror_args(qs, tmp_path / "old", "--versions", "1.0.0")), 2,
                          "--versions 1.0.0: leaves out 1.1.0 (aws-k8s-1.28/x86_64), the release the source's "
                          "manifest.json offers nodes now", "--versions 1.0.0,1.1.0")
    assert not [p for p in ("bad", "none", "old") if (tmp_path / p).exists()]


def test_version_spec_parsing() -> None:
    spec = parse_versions(">=1.19.0, <2.0.0, 1.2.3")
    assert spec.chooses(Version.parse("1.2.3")) and spec.chooses(Version.parse("1.20.1"))
    assert not spec.chooses(Version.parse("2.0.0")) and not spec.chooses(Version.parse("1.18.9"))
    assert parse_versions("v1.0.0").exact == frozenset({Version.parse("1.0.0")})
    # A bound may leave out its minor or patch number (was refused: "'>=9.0' is not a version ...")
    assert parse_versions(">=1.19").requirements == ((">=", Version.parse("1.19.0")),)
    assert parse_versions("<2").requirements == (("<", Version.parse("2.0.0")),)
    with pytest.raises(UsageError, match=r"'1\.19' is not a version"):  # an exact version stays whole
        parse_versions("1.19")
    # A short bound stands for every version it names (review: <=1.19 left out 1.19.5).
    versions = [Version.parse(v) for v in ("1.18.9", "1.19.0", "1.19.5", "1.20.0")]
    for text, chosen in {"<=1.19": ["1.18.9", "1.19.0", "1.19.5"], ">1.19": ["1.20.0"], "<1.19": ["1.18.9"],
                         "==1.19": ["1.19.0", "1.19.5"], ">=1.19": ["1.19.0", "1.19.5", "1.20.0"],
                         "<=1": ["1.18.9", "1.19.0", "1.19.5", "1.20.0"]}.items():
        assert [str(v) for v in versions if parse_versions(text).chooses(v)] == chosen, text


def test_tampered_target_is_refused_and_never_stored(run: Runner, qs: QS, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    objects = listed_objects(qs)
    victim = next(name for name, target in objects.items() if "root.ext4" in target)
    path = qs.targets / victim
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # same length, other bytes
    path.write_bytes(bytes(data))
    result = run(*mirror_args(qs, dst))
    assert_one_line_error(result, 1, victim, "SHA-256 mismatch")
    assert not (dst / "targets" / victim).exists()
    assert not (dst / "meta").exists() or not os.listdir(dst / "meta")  # no metadata written
    assert not [n for n in os.listdir(dst / "targets") if n.startswith(".")]  # no temp file left


def test_destination_newer_than_the_source_is_refused(run: Runner, qs: QS, tmp_path: Path) -> None:
    old = copy_quickstart(qs, tmp_path / "old")
    assert run("refresh", *qs.args()).code == 0
    dst = tmp_path / "dst"
    assert run(*mirror_args(qs, dst)).code == 0
    before = tree_state(dst)
    result = run(*mirror_args(old, dst))
    assert_one_line_error(result, 1, "timestamp.json", "newer than the source")
    assert tree_state(dst) == before
    plan = run(*mirror_args(old, dst, "--plan"))
    assert plan.code == 1


def test_source_that_fails_verification_writes_nothing(run: Runner, qs: QS, tmp_path: Path) -> None:
    other = tmp_path / "other-root.json"
    shutil.copy(qs.root, other)
    raw = json.loads(other.read_bytes())
    raw["signed"]["version"] = 7  # no longer meets its own threshold
    other.write_text(json.dumps(raw))
    dst = tmp_path / "dst"
    args = mirror_args(qs, dst)
    args[args.index("--root") + 1] = str(other)
    assert_one_line_error(run(*args), 2, "--root", str(other))
    timestamp = qs.meta / "timestamp.json"
    forged = json.loads(timestamp.read_bytes())
    forged["signed"]["version"] += 1  # its signatures no longer match
    timestamp.write_text(json.dumps(forged))
    assert_one_line_error(run(*mirror_args(qs, dst)), 1, "timestamp.json")
    assert not dst.exists()


def stream(pieces: list[bytes], fail: bool) -> Iterator[bytes]:
    """``pieces``, then (``fail``) the error a check raises after the last chunk."""
    yield from pieces
    if fail:
        raise TargetError("bad bytes")


def test_local_put_stream_commits_only_a_checked_stream(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "t")

    def chunks(fail: bool) -> Iterator[bytes]:
        return stream([b"a" * 10], fail)

    with pytest.raises(TargetError):
        store.put_stream("x", chunks(True), 10)
    assert store.size("x") is None and os.listdir(tmp_path / "t") == []
    assert store.put_stream("x", chunks(False), 10) is True
    assert store.put_stream("x", chunks(True), 10) is False  # already there: nothing read


def test_s3_put_stream_multipart(aws: MotoServer) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="mirror", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    store = S3Storage(s3, "mirror", "targets/")
    size = MULTIPART_THRESHOLD + 3 * 1024 * 1024 + 5
    block = os.urandom(1 << 20)
    data = (block * (size // len(block) + 1))[:size]

    def chunks(fail: bool) -> Iterator[bytes]:
        return stream([data[offset:offset + (1 << 20)] for offset in range(0, size, 1 << 20)], fail)

    sent: list[int] = []
    with pytest.raises(TargetError):
        store.put_stream("big", chunks(True), size)
    assert store.size("big") is None
    assert s3.list_multipart_uploads(Bucket="mirror").get("Uploads", []) == []
    assert store.put_stream("big", chunks(False), size, sent.append) is True
    assert sum(sent) == size
    body = s3.get_object(Bucket="mirror", Key="targets/big")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    def small(fail: bool) -> Iterator[bytes]:
        return stream([b"y" * 10], fail)

    with pytest.raises(TargetError):
        store.put_stream("small", small(True), 10)
    assert store.size("small") is None
    assert store.put_stream("small", small(False), 10) is True
    assert store.put_stream("small", small(True), 10) is False


def test_staged_objects_show_only_when_committed(aws: MotoServer, tmp_path: Path) -> None:
    """stage_stream takes every chunk (a failing stream raises, nothing kept) but shows nothing until
    commit; a discarded one leaves nothing (no temporary file, no multipart upload); a name stored
    meanwhile with the same size makes the commit a no-op (False), with another size an error."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="stage", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    size = MULTIPART_THRESHOLD + 5
    data = os.urandom(size)

    def chunks(fail: bool = False, payload: bytes = data) -> Iterator[bytes]:
        return stream([payload[offset:offset + (1 << 20)] for offset in range(0, len(payload), 1 << 20)], fail)

    def temp_files() -> list[str]:
        return [name for name in os.listdir(tmp_path / "local") if name.startswith(".")]

    for store, pending in ((LocalStorage(tmp_path / "local"), temp_files),
                           (S3Storage(s3, "stage", "t/"),
                            lambda: [u["Key"] for u in s3.list_multipart_uploads(Bucket="stage").get("Uploads", [])])):
        for name, payload in (("big", data), ("small", b"s" * 10)):
            with pytest.raises(TargetError):
                store.stage_stream(name, chunks(True, payload), len(payload))
            assert store.size(name) is None and pending() == [], store.url
            batch = StagedBatch()
            assert batch.stage(store, name, chunks(payload=payload), len(payload)) is True
            assert store.size(name) is None, store.url  # staged: not visible
            batch.discard()
            assert store.size(name) is None and pending() == [], store.url
            assert batch.stage(store, name, chunks(payload=payload), len(payload)) is True
            batch.commit()
            assert store.read(name) == payload and pending() == [], store.url
            assert batch.stage(store, name, chunks(True, payload), len(payload)) is False  # there: nothing read
        staged = store.stage_stream("race", chunks(payload=b"r" * 10), 10)
        assert staged is not None
        assert store.put_stream("race", chunks(payload=b"R" * 10), 10)  # another run stored it meanwhile
        assert staged.commit() is False and store.read("race") == b"R" * 10
        other = store.stage_stream("race2", chunks(payload=b"r" * 10), 10)
        assert other is not None and store.put_stream("race2", chunks(payload=b"R" * 11), 11)
        with pytest.raises(StorageError):
            other.commit()
        assert pending() == []


def test_mirror_to_s3_then_rerun_and_refresh(run: Runner, qs: QS, aws: MotoServer, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="mirror", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    args = ["mirror", "--root", str(qs.root), "--from-metadata-url", str(qs.meta), "--from-targets-url",
            str(qs.targets), "--to-metadata-url", "s3://mirror/meta/aws-k8s-1.28/x86_64/", "--to-targets-url",
            "s3://mirror/targets/", "--json"]
    first = run(*args)
    assert first.code == 0, first.err
    assert first.json()["categories"]["targets"]["copied"] == len(listed_objects(qs))
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="mirror")["Contents"]}
    assert {f"targets/{name}" for name in listed_objects(qs)} <= keys
    stored = s3.get_object(Bucket="mirror", Key="meta/aws-k8s-1.28/x86_64/timestamp.json")["Body"].read()
    assert stored == (qs.meta / "timestamp.json").read_bytes()
    assert run(*args).json()["copied_bytes"] == 0
    assert run("refresh", *qs.args()).code == 0
    moved = run(*args).json()
    assert moved["categories"]["metadata"]["copied"] == 3 and moved["categories"]["targets"]["copied"] == 0
    stored = s3.get_object(Bucket="mirror", Key="meta/aws-k8s-1.28/x86_64/timestamp.json")["Body"].read()
    assert stored == (qs.meta / "timestamp.json").read_bytes()


class CountingStorage(LocalStorage):
    """A destination that records every call the mirror makes of it."""

    def __init__(self, root: Path, calls: list[str]) -> None:
        super().__init__(root)
        self.calls = calls

    def size(self, name: str) -> int | None:
        self.calls.append(f"size {name}")
        return super().size(name)

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        self.calls.append(f"read {name}")
        return super().read(name, limit)

    def create(self, name: str, data: bytes) -> bool:
        self.calls.append(f"create {name}")
        return super().create(name, data)

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        self.calls.append(f"swap {name}")
        super().swap(name, data, expected)

    def put_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Any = None) -> bool:
        self.calls.append(f"put {name}")
        return super().put_stream(name, chunks, size, sent)

    def stage_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Any = None) -> Staged | None:
        self.calls.append(f"put {name}")
        return super().stage_stream(name, chunks, size, sent)


def test_rerun_asks_one_size_per_object_and_writes_nothing(qs: QS, tmp_path: Path) -> None:
    source = Location(LocalStorage(qs.meta), LocalStorage(qs.targets))
    calls: list[str] = []
    destination = Location(CountingStorage(tmp_path / "meta", calls), CountingStorage(tmp_path / "targets", calls))
    root = qs.root.read_bytes()
    first = mirror(source, destination, root, timestamp_now())
    writes = [call.split()[0] for call in calls if call.split()[0] in ("put", "create", "swap")]
    copied_targets = first.counts["targets"].copied
    created = first.totals().copied - copied_targets - 1
    assert writes == ["put"] * 8 + ["create"] * 3 + ["swap"] == ["put"] * copied_targets + ["create"] * created + [
        "swap"]  # targets first, timestamp last
    calls.clear()
    again = mirror(source, destination, root, timestamp_now(), MirrorOptions(progress=NO_PROGRESS))
    assert again.totals().copied == 0
    assert sorted(calls) == sorted(["read timestamp.json", *(f"size {item}" for item in _objects(tmp_path))])


def _objects(tmp_path: Path) -> list[str]:
    return [p.name for d in ("meta", "targets") for p in (tmp_path / d).iterdir() if p.name != "timestamp.json"]


def test_destination_holding_other_metadata_is_refused_before_any_write(run: Runner, qs: QS, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    (dst / "meta").mkdir(parents=True)
    (dst / "meta" / "1.root.json").write_bytes(b"{}")
    result = run(*mirror_args(qs, dst))
    assert_one_line_error(result, 1, "1.root.json", "other bytes")
    assert os.listdir(dst / "meta") == ["1.root.json"] and not (dst / "targets").exists()


def test_http_source_and_an_expired_source(run: Runner, qs: QS, tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    with serve_directory(qs.dir / "repo") as base:
        args = mirror_args(qs, dst, "--versions", "latest", "--json")
        args[args.index("--from-metadata-url") + 1] = f"{base}/metadata/{VARIANT}/{ARCH}/"
        args[args.index("--from-targets-url") + 1] = f"{base}/targets/"
        result = run(*args)
    assert result.code == 0, result.err
    assert result.json()["versions"] == ["1.1.0"]
    assert (dst / "meta" / "timestamp.json").read_bytes() == (qs.meta / "timestamp.json").read_bytes()
    later = timestamp_now() + 400 * 24 * 3600 * 10**9  # past every expiry
    source = Location(LocalStorage(qs.meta), LocalStorage(qs.targets))
    fresh = Location(LocalStorage(tmp_path / "m2"), LocalStorage(tmp_path / "t2"))
    with pytest.raises(ExpiredError):
        mirror(source, fresh, qs.root.read_bytes(), later)
    assert not (tmp_path / "m2").exists() and not (tmp_path / "t2").exists()


def test_every_root_is_copied_also_those_below_the_trusted_root(run: Runner, qs: QS, tmp_path: Path) -> None:
    rotated, _, _ = rotate_root_key(run, qs, tmp_path)
    shutil.copy(rotated, qs.meta / "2.root.json")
    for trusted in (qs.root, rotated):  # upstream's first root, or the newest one
        dst = tmp_path / f"dst-{trusted.name}"
        args = mirror_args(qs, dst, "--json")
        args[args.index("--root") + 1] = str(trusted)
        result = run(*args)
        assert result.code == 0, result.err
        assert result.json()["categories"]["root"]["copied"] == 2
        for name in ("1.root.json", "2.root.json"):
            assert (dst / "meta" / name).read_bytes() == (qs.meta / name).read_bytes()
    (qs.meta / "1.root.json").write_bytes((qs.meta / "1.root.json").read_bytes().replace(b'"version"', b'"version" '))
    args = mirror_args(qs, tmp_path / "spaced")
    args[args.index("--root") + 1] = str(rotated)
    assert run(*args).code == 0  # whitespace only: the same signed root, byte for byte as stored
    doc = json.loads((qs.meta / "1.root.json").read_bytes())
    doc["signed"]["expires"] = "2099-01-01T00:00:00Z"  # no longer what its keys signed
    (qs.meta / "1.root.json").write_text(json.dumps(doc))
    assert_one_line_error(run(*args[:-4], "--to-metadata-url", str(tmp_path / "r2"), "--to-targets-url",
                              str(tmp_path / "r2t")), 1, "1.root.json")
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r2t").exists()


class FailingStorage(LocalStorage):
    """A destination whose ``fail_at``-th write (counted across both storages in ``writes``) fails, as if
    the run were killed there."""

    def __init__(self, root: Path, writes: list[str], fail_at: int) -> None:
        super().__init__(root)
        self.writes, self.fail_at = writes, fail_at

    def _count(self, name: str) -> None:
        self.writes.append(name)
        if len(self.writes) == self.fail_at:
            raise OSError(f"killed before {name}")

    def create(self, name: str, data: bytes) -> bool:
        self._count(name)
        return super().create(name, data)

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        self._count(name)
        super().swap(name, data, expected)

    def stage_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Any = None) -> Staged | None:
        self._count(name)
        return super().stage_stream(name, chunks, size, sent)


def test_a_run_stopped_at_any_write_leaves_the_previous_mirror_and_a_rerun_converges(run: Runner, qs: QS,
                                                                                    tmp_path: Path) -> None:
    source = Location(LocalStorage(qs.meta), LocalStorage(qs.targets))
    root = qs.root.read_bytes()
    old = tmp_path / "old"
    assert run("set-max-version", *qs.args("--max-version", "1.0.0")).code == 0  # 1.1.0 pulled: 1.0.0 offered
    mirror(source, Location(LocalStorage(old / "meta"), LocalStorage(old / "targets")), root, timestamp_now(),
           MirrorOptions(versions=parse_versions("1.0.0")))
    # Upstream moves on (1.1.0 offered again): new targets, snapshot and timestamp files.
    assert run("set-max-version", *qs.args("--max-version", "1.1.0")).code == 0
    new = len(set(listed_objects(qs)) - set(os.listdir(old / "targets")))  # 1.1.0's images, migration, manifest
    assert new == 5
    for fail_at in range(1, new + 4):  # at each new target, the targets and snapshot files, timestamp.json
        dst = tmp_path / f"at-{fail_at}"
        shutil.copytree(old, dst)
        writes: list[str] = []
        failing = Location(FailingStorage(dst / "meta", writes, fail_at), FailingStorage(dst / "targets", writes,
                                                                                          fail_at))
        with pytest.raises(OSError, match="killed before"):
            mirror(source, failing, root, timestamp_now())
        repo = load_repo(LocalStorage(dst / "meta"), root, timestamp_now())  # the previous mirror, as a node sees it
        assert repo.timestamp.raw == (old / "meta" / "timestamp.json").read_bytes()
        again = mirror(source, Location(LocalStorage(dst / "meta"), LocalStorage(dst / "targets")), root,
                       timestamp_now())
        # Stopped (not by a bad target) while staging: those staged before were kept whole; a rerun resumes.
        assert again.counts["targets"].copied == max(0, new - (fail_at - 1))
        assert set(os.listdir(dst / "targets")) == set(listed_objects(qs)) | set(os.listdir(old / "targets"))
        assert (dst / "meta" / "timestamp.json").read_bytes() == (qs.meta / "timestamp.json").read_bytes()
    assert writes[-1] == "timestamp.json"  # the last step tried was the last write


def test_latest_is_the_version_nodes_are_offered(qs: QS) -> None:
    doc = qs.manifest()
    assert chosen_versions(doc, "latest") == ["1.1.0"]
    for update in doc["updates"]:
        update["max_version"] = "1.0.0"  # 1.1.0 pulled: updog offers 1.0.0
    assert chosen_versions(doc, "latest") == ["1.0.0"]
    assert chosen_versions(doc, "all") == ["1.0.0", "1.1.0"]


def chosen_versions(doc: dict[str, Any], spec: str) -> list[str]:
    manifest = Manifest.from_bytes(json.dumps(doc))
    return sorted(str(u.version) for u in chosen_updates(manifest, parse_versions(spec)))


class Recorded(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def start(self, label: str, total: int) -> None:
        self.events.append((label, total))

    def advance(self, count: int) -> None:
        self.events.append(("advance", count))

    def stop(self) -> None:
        self.events.append(("stop", 0))


def test_progress_counts_the_target_bytes_copied(qs: QS, tmp_path: Path) -> None:
    progress = Recorded()
    source = Location(LocalStorage(qs.meta), LocalStorage(qs.targets))
    destination = Location(LocalStorage(tmp_path / "m"), LocalStorage(tmp_path / "t"))
    result = mirror(source, destination, qs.root.read_bytes(), timestamp_now(), MirrorOptions(progress=progress))
    total = result.counts["targets"].copied_bytes
    assert progress.events[0] == ("mirror", total) and progress.events[-1] == ("stop", 0)
    assert sum(count for label, count in progress.events[1:-1] if label == "advance") == total


def test_needed_steps_are_the_walks_from_every_lower_version() -> None:
    """The migration steps a chosen update needs: each walk to it from every lower version listed (the
    shortcut updog takes where there is one), in walk order, with their names."""
    from repo_tool.core.versionspec import needed_steps, needed_targets

    doc = {"updates": [{"variant": "v", "arch": "a", "version": version, "max_version": "1.3.0", "waves": {},
                        "images": {"boot": f"b{version}", "root": f"r{version}", "hash": f"h{version}"}}
                       for version in ("1.0.0", "1.1.0", "1.2.0", "1.3.0")],
           "migrations": {"(1.0.0, 1.1.0)": ["m1"], "(1.1.0, 1.2.0)": ["m2"], "(1.2.0, 1.3.0)": ["m3"],
                          "(1.1.0, 1.3.0)": ["shortcut"], "(0.9.0, 1.0.0)": ["old"]}}
    manifest = Manifest.from_bytes(json.dumps(doc).encode())
    newest = [u for u in manifest.updates if u.version == Version.parse("1.3.0")]
    steps = needed_steps(manifest, newest)
    key = Version.parse
    assert steps == {(key("1.0.0"), key("1.1.0")): ["m1"], (key("1.1.0"), key("1.3.0")): ["shortcut"],
                     (key("1.2.0"), key("1.3.0")): ["m3"]}
    assert needed_targets(manifest, newest) == ["manifest.json", "b1.3.0", "r1.3.0", "h1.3.0", "m1", "shortcut", "m3"]
