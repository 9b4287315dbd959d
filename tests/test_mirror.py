"""`repo-tool mirror` end to end: a quickstart source served over HTTP, mirrored to a path and to the
moto S3 server; the copy is upstream's metadata byte for byte, audits clean, and python-tuf and a node
(upstream's root) read it; reruns copy nothing, a new upstream release is picked up incrementally, and a
source that fails verification (tampered target, rolled-back or expired timestamp) is refused with
nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repo_tool.cli.common import now_ns
from repo_tool.core.instant import NANOS_PER_HOUR, format_whole_seconds
from repo_tool.errors import UsageError, VerificationError, some_failed
from tests.clirun import Run, Runner, assert_one_line_error
from tests.faults.helpers import audit_clean, local_client_sees
from tests.repohelpers import (
    ARCH,
    QS,
    VARIANT,
    make_quickstart,
    roll_timestamp_forward,
    serve_directory,
    sign_file,
    signer,
    tree_state,
    write_images,
    write_node_config,
)
from tests.s3helpers import bucket_objects, fault_proxy, node_view
from tests.test_node import Node, _rotate_timestamp_key

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

BUCKET = "private-mirror"


@dataclass
class Source:
    """The quickstart ``qs`` served over HTTP at ``url``."""

    qs: QS
    url: str

    @property
    def meta_url(self) -> str:
        return f"{self.url}/metadata/{VARIANT}/{ARCH}/"

    @property
    def targets_url(self) -> str:
        return f"{self.url}/targets/"

    def from_args(self) -> list[str]:
        return ["--root", str(self.qs.root), "--from-metadata-url", self.meta_url,
                "--from-targets-url", self.targets_url]


@dataclass
class Dest:
    """A destination on disk: ``dir/metadata/VARIANT/ARCH`` and ``dir/targets``."""

    dir: Path

    @property
    def meta(self) -> Path:
        return self.dir / "metadata" / VARIANT / ARCH

    @property
    def targets(self) -> Path:
        return self.dir / "targets"

    def to_args(self) -> list[str]:
        return ["--to-metadata-url", str(self.meta), "--to-targets-url", str(self.targets)]


@pytest.fixture
def source(qs: QS) -> Iterator[Source]:
    with serve_directory(qs.dir / "repo") as url:
        yield Source(qs, url)


@pytest.fixture
def dest(tmp_path: Path) -> Dest:
    return Dest(tmp_path / "mirror")


def mirror(run: Runner, source: Source, to: list[str], *extra: str) -> Run:
    return run("mirror", *source.from_args(), *to, *extra)


def mirrored(run: Runner, source: Source, to: list[str], *extra: str) -> dict[str, Any]:
    """A mirror run with ``--json`` that succeeds; its report."""
    result = mirror(run, source, to, "--json", *extra)
    assert result.code == 0, result.err
    report: dict[str, Any] = result.json()
    return report


def copied_bytes(report: dict[str, Any]) -> int:
    value: int = report["copied_bytes"]
    return value


def listed_targets(qs: QS) -> dict[str, dict[str, Any]]:
    listed: dict[str, dict[str, Any]] = qs.newest("targets")["signed"]["targets"]
    return listed


def publish_release(run: Runner, qs: QS, work: Path, version: str) -> None:
    done = run("publish", *qs.args("--version", version, *write_images(work / f"img-{version}", version)))
    assert done.code == 0, done.err


def publish_other_arch(run: Runner, qs: QS, work: Path, other: str = "aarch64") -> str:
    """A second repository of the quickstart: VARIANT on ``other`` (1.1.0, a new repository); its arch."""
    made = run("publish", "--config", str(qs.config), "--variant", VARIANT, "--arch", other, "--init",
               "--version", "1.1.0", *write_images(work / "arm", "1.1.0", arch=other, after=None))
    assert made.code == 0, made.err
    return other


def assert_same_repository(qs: QS, meta: dict[str, bytes], targets: dict[str, bytes]) -> None:
    """``meta`` (name: bytes) is the source's metadata byte for byte: every root, the snapshot and
    targets files the timestamp names, timestamp.json; ``targets`` holds each listed target under
    ``<sha256>.<name>`` with its bytes."""
    for name, data in meta.items():
        assert data == (qs.meta / name).read_bytes(), name
    roots = {p.name for p in qs.meta.glob("*.root.json")}
    snapshot_v = qs.newest("timestamp")["signed"]["meta"]["snapshot.json"]["version"]
    targets_v = qs.newest("snapshot")["signed"]["meta"]["targets.json"]["version"]
    assert roots | {f"{snapshot_v}.snapshot.json", f"{targets_v}.targets.json", "timestamp.json"} <= set(meta)
    for name, entry in listed_targets(qs).items():
        stored = f"{entry['hashes']['sha256']}.{name}"
        assert stored in targets, stored
        assert targets[stored] == (qs.targets / stored).read_bytes(), stored
        assert hashlib.sha256(targets[stored]).hexdigest() == entry["hashes"]["sha256"]


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")}


# --- to a path ---------------------------------------------------------------------------------


def test_mirror_to_a_path_is_upstream_byte_for_byte(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    report = mirrored(run, source, dest.to_args())
    assert copied_bytes(report) > 0
    assert_same_repository(source.qs, files(dest.meta), files(dest.targets))
    audit_clean(run, "--root", str(source.qs.root), "--metadata-url", str(dest.meta),
                "--targets-url", str(dest.targets))
    assert local_client_sees(run, tmp_path / "clients", source.qs.root, dest.meta, dest.targets) == "1.1.0"

    again = mirrored(run, source, dest.to_args())
    assert copied_bytes(again) == 0, again


def test_new_upstream_release_is_copied_incrementally(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    mirrored(run, source, dest.to_args())
    before = tree_state(dest.dir)
    publish_release(run, source.qs, tmp_path, "1.2.0")
    report = mirrored(run, source, dest.to_args())
    after = tree_state(dest.dir)
    assert {name: after[name] for name in before if name != f"metadata/{VARIANT}/{ARCH}/timestamp.json"} == {
        name: digest for name, digest in before.items() if name != f"metadata/{VARIANT}/{ARCH}/timestamp.json"}
    new_targets = {name for name in after if name.startswith("targets/")} - set(before)
    # Only 1.2.0's images and the new manifest.json: the older targets were not copied again.
    assert sorted(name.split(".", 1)[1] for name in new_targets) == sorted(
        ["manifest.json", *(f"bottlerocket-{VARIANT}-{ARCH}-1.2.0-0123abc-{s}"
                            for s in ("boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"))])
    new_target_bytes = sum((dest.dir / name).stat().st_size for name in new_targets)
    targets = report["categories"]["targets"]
    assert (targets["copied"], targets["copied_bytes"]) == (4, new_target_bytes), report
    assert targets["skipped"] == len(listed_targets(source.qs)) - 4, report
    # The new metadata files and the replaced timestamp.json: nothing else.
    new_bytes = sum((dest.dir / name).stat().st_size for name in set(after) - set(before))
    assert copied_bytes(report) == new_bytes + (dest.meta / "timestamp.json").stat().st_size, (report, new_bytes)
    assert_same_repository(source.qs, files(dest.meta), files(dest.targets))
    assert local_client_sees(run, tmp_path / "clients", source.qs.root, dest.meta, dest.targets) == "1.2.0"


def test_rerun_puts_back_what_the_destination_lost(run: Runner, source: Source, dest: Dest) -> None:
    """Same timestamp at the destination, but a target and the snapshot file gone: a rerun copies
    exactly those two back."""
    mirrored(run, source, dest.to_args())
    lost_target = next(p for p in dest.targets.iterdir() if p.name.endswith("-root.ext4.lz4"))
    snapshot_v = source.qs.newest("timestamp")["signed"]["meta"]["snapshot.json"]["version"]
    lost_meta = dest.meta / f"{snapshot_v}.snapshot.json"
    sizes = lost_target.stat().st_size + lost_meta.stat().st_size
    lost_target.unlink()
    lost_meta.unlink()
    again = mirrored(run, source, dest.to_args())
    assert (again["copied"], copied_bytes(again)) == (2, sizes), again
    assert_same_repository(source.qs, files(dest.meta), files(dest.targets))


def test_plan_writes_nothing(run: Runner, source: Source, dest: Dest) -> None:
    planned = mirror(run, source, dest.to_args(), "--plan", "--json")
    assert planned.code == 0, planned.err
    assert not dest.dir.exists() or tree_state(dest.dir) == {}
    done = mirrored(run, source, dest.to_args())
    assert copied_bytes(done) > 0
    plan = planned.json()
    assert (plan["plan"], done["plan"]) == (True, False)
    assert {k: plan[k] for k in ("copied", "copied_bytes", "categories", "versions")} == {
        k: done[k] for k in ("copied", "copied_bytes", "categories", "versions")}
    assert done["versions"] == ["1.0.0", "1.1.0"]
    text = mirror(run, source, dest.to_args(), "--plan")
    assert text.code == 0 and "would copy 0 objects" in text.out, text.out
    plain = mirror(run, source, dest.to_args())  # not a terminal: the summary, no progress
    assert (plain.code, plain.err) == (0, "") and "total: copied 0 objects, 0 bytes" in plain.out, plain.out


def test_versions_latest_copies_what_its_manifest_needs(run: Runner, source: Source, dest: Dest,
                                                        tmp_path: Path) -> None:
    """`--versions latest`: the newest release's images, manifest.json and the migrations it chains
    through; the metadata whole; a node updates from it; `--versions all` later adds only the rest."""
    report = mirrored(run, source, dest.to_args(), "--versions", "latest")
    assert report["versions"] == ["1.1.0"]
    listed = listed_targets(source.qs)
    update = next(u for u in source.qs.manifest()["updates"] if u["version"] == "1.1.0")
    wanted = {"manifest.json", *update["images"].values(), *source.qs.manifest()["migrations"]["(1.0.0, 1.1.0)"]}
    assert {p.name for p in dest.targets.iterdir()} == {f"{listed[n]['hashes']['sha256']}.{n}" for n in wanted}
    assert files(dest.meta) == {name: (source.qs.meta / name).read_bytes() for name in files(dest.meta)}
    assert local_client_sees(run, tmp_path / "clients", source.qs.root, dest.meta, dest.targets) == "1.1.0"
    # The auditor's view of a partial mirror: a full audit misses the older release's targets; --targets
    # present checks what is there and requires what nodes need now.
    where = ["--root", str(source.qs.root), "--metadata-url", str(dest.meta), "--targets-url", str(dest.targets)]
    assert run("audit", *where).code == 1
    infos = [f for f in json.loads(run("audit", *where, "--targets", "present", "--json").out)["findings"]
             if f["check"] == "targets"]
    assert [f["message"].split(" (")[0] for f in infos] == [
        f"{len(listed) - len(wanted)} of {len(listed)} listed targets are not stored here"]
    assert audit_clean(run, *where, "--targets", "present") == []
    image = update["images"]["root"]
    (dest.targets / f"{listed[image]['hashes']['sha256']}.{image}").rename(tmp_path / "held")
    missing = run("audit", *where, "--targets", "present", "--json")
    errors = [f["message"] for f in json.loads(missing.out)["findings"] if f["severity"] == "error"]
    assert missing.code == 1 and errors == [f"target {image} is listed but its object is missing"], errors
    (tmp_path / "held").rename(dest.targets / f"{listed[image]['hashes']['sha256']}.{image}")

    rest = mirrored(run, source, dest.to_args(), "--versions", "all")
    assert rest["versions"] == ["1.0.0", "1.1.0"]
    assert (rest["categories"]["targets"]["copied"], rest["copied"]) == (len(listed) - len(wanted),) * 2, rest
    assert_same_repository(source.qs, files(dest.meta), files(dest.targets))


def test_node_updates_from_the_mirror_over_http(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    mirrored(run, source, dest.to_args())
    host = tmp_path / "host"
    host.mkdir()
    with serve_directory(dest.dir) as url:
        write_node_config(host, f"{url}/metadata/{VARIANT}/{ARCH}/", f"{url}/targets/")
        made = run("node", "make-disk", str(host / "disk.img"), "--boot-size", "4MiB", "--root-size", "16MiB",
                   "--hash-size", "1MiB", "--private-size", "1MiB")
        assert made.code == 0, made.err
        node = ["node", "--config", str(host / "updog.toml"), "--trusted-root", str(source.qs.root),
                "--os-release", str(host / "os-release"), "--disk", str(host / "disk.img"),
                "--metadata-cache", str(host / "cache"), "--migrations-dir", str(host / "migrations"),
                "--reboot-command", "true", "--arch", ARCH]
        check = run(*node, "check-update", "-n")
        assert (check.code, check.out) == (0, f"{VARIANT} 1.1.0\n"), check.err
        done = run(*node, "update", "--ignore-waves")
        assert (done.code, done.out) == (0, f"Update applied: {VARIANT} 1.1.0\n"), done.err


def test_rotated_upstream_root_is_mirrored_whole(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    """Upstream's root 2 replaces the timestamp key: a rerun adds 2.root.json and the re-signed files;
    a node shipped with root 1 walks the chain on the mirror; mirroring from root 2 (the trusted root
    newer than 1) still copies 1.root.json (nodes ship either)."""
    mirrored(run, source, dest.to_args())
    new_root = _rotate_timestamp_key(Node(tmp_path, source.qs, source.url, [], run))
    rerun = mirrored(run, source, dest.to_args())
    assert rerun["categories"]["root"]["copied"] == 1, rerun
    assert (dest.meta / "2.root.json").read_bytes() == new_root.read_bytes()
    assert_same_repository(source.qs, files(dest.meta), files(dest.targets))
    assert local_client_sees(run, tmp_path / "clients", source.qs.root, dest.meta, dest.targets) == "1.1.0"

    fresh = Dest(tmp_path / "fresh")
    from_root_2 = run("mirror", "--root", str(new_root), "--from-metadata-url", source.meta_url,
                      "--from-targets-url", source.targets_url, *fresh.to_args())
    assert from_root_2.code == 0, from_root_2.err
    assert {"1.root.json", "2.root.json"} <= set(files(fresh.meta))
    assert_same_repository(source.qs, files(fresh.meta), files(fresh.targets))


# --- to S3 -------------------------------------------------------------------------------------


def test_mirror_to_s3_then_rerun_copies_nothing(aws: MotoServer, run: Runner, source: Source, tmp_path: Path) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    meta_url, targets_url = f"s3://{BUCKET}/metadata/{VARIANT}/{ARCH}/", f"s3://{BUCKET}/targets/"
    to = ["--to-metadata-url", meta_url, "--to-targets-url", targets_url, "--endpoint-url", aws.endpoint]
    with fault_proxy(aws.endpoint) as proxy:
        planned = mirrored(run, source, [*to[:-1], proxy.url], "--plan")
        assert proxy.writes() == [] and planned["copied"] > 0, planned
        report = mirrored(run, source, [*to[:-1], proxy.url])
    assert {k: planned[k] for k in ("copied", "copied_bytes")} == {k: report[k] for k in ("copied", "copied_bytes")}
    assert copied_bytes(report) > 0
    keys = bucket_objects(s3, BUCKET)
    # The upload order: targets, then the roots, the versioned files, timestamp.json last; the targets are
    # staged (every part sent) before the first one is shown (its multipart upload completed).
    steps = [r.step for r in proxy.writes()]
    assert max(i for i, step in enumerate(steps) if step == "UploadPart") < steps.index("CompleteMultipartUpload")
    written = [r.key.split("/", 2)[2] for r in proxy.writes() if r.step in ("PutObject", "CompleteMultipartUpload")]
    assert len(written) == len(set(written)) == len(keys), written
    kinds = ["targets" if w.startswith("targets/") else "root" if w.endswith(".root.json") else
             "timestamp" if w.endswith("/timestamp.json") else "versioned" for w in written]
    assert kinds == sorted(kinds, key=["targets", "root", "versioned", "timestamp"].index), written
    assert kinds[-1] == "timestamp", written

    def body(key: str) -> bytes:
        data: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return data

    meta_prefix = f"metadata/{VARIANT}/{ARCH}/"
    meta = {k.removeprefix(meta_prefix): body(k) for k in keys if k.startswith(meta_prefix)}
    targets = {k.removeprefix("targets/"): body(k) for k in keys if k.startswith("targets/")}
    assert set(keys) == {meta_prefix + k for k in meta} | {"targets/" + k for k in targets}
    assert_same_repository(source.qs, meta, targets)
    audit_clean(run, "--root", str(source.qs.root), "--metadata-url", meta_url, "--targets-url", targets_url,
                "--endpoint-url", aws.endpoint)
    view = node_view(s3, meta_url, targets_url, source.qs.root.read_bytes(), tmp_path / "ngclient", VARIANT, ARCH)
    assert view.latest == "1.1.0"

    with fault_proxy(aws.endpoint) as proxy:  # the rerun: no PUT, at most one HEAD per object
        again = mirrored(run, source, [*to[:-1], proxy.url])
    assert copied_bytes(again) == 0, again
    assert bucket_objects(s3, BUCKET) == keys  # same ETags: nothing rewritten
    methods = Counter(r.method for r in proxy.requests)
    assert set(methods) <= {"GET", "HEAD"} and methods["HEAD"] <= len(keys), methods

    # The bucket as a source (s3://), mirrored on to a path given as a file:// URL.
    onward = Dest(tmp_path / "onward")
    again_from_s3 = run("mirror", "--root", str(source.qs.root), "--from-metadata-url", meta_url,
                        "--from-targets-url", targets_url, "--to-metadata-url", onward.meta.as_uri(),
                        "--to-targets-url", onward.targets.as_uri(), "--endpoint-url", aws.endpoint)
    assert again_from_s3.code == 0, again_from_s3.err
    assert (files(onward.meta), files(onward.targets)) == (meta, targets)


# --- refusals: nothing written -----------------------------------------------------------------


def mirrored_then_released(run: Runner, source: Source, dest: Dest, work: Path, suffix: str) -> tuple[str, Path]:
    """``dest`` mirrored at 1.1.0, then 1.2.0 published upstream: the name of its image ending in
    ``suffix`` and where the source stores it."""
    mirrored(run, source, dest.to_args())
    publish_release(run, source.qs, work, "1.2.0")
    name = f"bottlerocket-{VARIANT}-{ARCH}-1.2.0-0123abc-{suffix}"
    return name, source.qs.targets / f"{listed_targets(source.qs)[name]['hashes']['sha256']}.{name}"


def metadata_state(state: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in state.items() if k.startswith("metadata/")}


TAMPERINGS = {
    "flipped": lambda data: data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0xFF]) + data[len(data) // 2 + 1:],
    "longer": lambda data: data + b"\0" * 4096,
    "shorter": lambda data: data[:-1],
}


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
def test_tampered_source_target_is_refused(run: Runner, source: Source, dest: Dest, tmp_path: Path, how: str) -> None:
    name, stored = mirrored_then_released(run, source, dest, tmp_path, "root.ext4.lz4")
    stored.write_bytes(TAMPERINGS[how](stored.read_bytes()))
    before = tree_state(dest.dir)
    refused = mirror(run, source, dest.to_args())
    assert_one_line_error(refused, 1, name)
    # Nothing of the new release written: the targets checked before the bad one were staged and are
    # discarded with it (no temporary file left), the metadata untouched.
    assert tree_state(dest.dir) == before
    assert not [p for p in dest.dir.rglob("*") if p.name.startswith(".")]


def test_tampered_source_metadata_is_refused_before_any_write(run: Runner, source: Source, dest: Dest) -> None:
    path = source.qs.meta / "2.targets.json"
    path.write_bytes(path.read_bytes().replace(b'"version":2', b'"version":3', 1))
    refused = mirror(run, source, dest.to_args())
    assert_one_line_error(refused, 1, "targets")
    assert not dest.dir.exists() or tree_state(dest.dir) == {}


def test_missing_source_target_is_refused(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    name, stored = mirrored_then_released(run, source, dest, tmp_path, "boot.ext4.lz4")
    stored.unlink()
    before = tree_state(dest.dir)
    refused = mirror(run, source, dest.to_args())
    assert_one_line_error(refused, 1, name)
    assert metadata_state(tree_state(dest.dir)) == metadata_state(before)
    assert local_client_sees(run, tmp_path / "clients", source.qs.root, dest.meta, dest.targets) == "1.1.0"


def test_a_destination_holding_another_repository_is_refused(run: Runner, source: Source, dest: Dest,
                                                             tmp_path: Path) -> None:
    """Another upstream (its own root) mirrored there first, at the same or a newer version than the
    source: refused, naming the file that differs, nothing written."""
    other = make_quickstart(tmp_path / "other")
    with serve_directory(other.dir / "repo") as url:
        mirrored(run, Source(other, url), dest.to_args())
    before = tree_state(dest.dir)
    assert_one_line_error(mirror(run, source, dest.to_args()), 1, "timestamp.json", "other bytes")
    publish_release(run, source.qs, tmp_path, "1.2.0")
    assert_one_line_error(mirror(run, source, dest.to_args()), 1, "1.root.json", "other bytes")
    assert tree_state(dest.dir) == before


def test_rolled_back_source_timestamp_is_refused(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    old = tmp_path / "old-repo"
    shutil.copytree(source.qs.dir / "repo", old)
    publish_release(run, source.qs, tmp_path, "1.2.0")
    mirrored(run, source, dest.to_args())
    before = tree_state(dest.dir)
    with serve_directory(old) as url:  # upstream replaced by its older copy
        rolled_back = Source(source.qs, url)
        refused = mirror(run, rolled_back, dest.to_args())
    assert_one_line_error(refused, 1, "timestamp")
    assert tree_state(dest.dir) == before


def test_expired_source_is_refused(run: Runner, source: Source, dest: Dest) -> None:
    """The source's timestamp.json, validly signed by its timestamp key, expired an hour ago."""
    qs = source.qs
    timestamp = qs.newest("timestamp")
    timestamp["signed"]["expires"] = format_whole_seconds(now_ns() - NANOS_PER_HOUR)
    key = signer(qs.dir / "keys" / "timestamp.pem")
    (qs.meta / "timestamp.json").write_bytes(sign_file(timestamp["signed"], [key]))
    refused = mirror(run, source, dest.to_args())
    assert_one_line_error(refused, 1, "timestamp", "expired")
    assert not dest.dir.exists() or tree_state(dest.dir) == {}


def test_usage_errors_exit_2(run: Runner, source: Source, dest: Dest, tmp_path: Path) -> None:
    missing = run("mirror", "--root", str(source.qs.root), "--from-metadata-url", source.meta_url, *dest.to_args())
    assert missing.code == 2, missing.err
    to_http = mirror(run, source, ["--to-metadata-url", source.meta_url, "--to-targets-url", source.targets_url])
    # names the flag (was "destination metadata URL: cannot be written")
    assert_one_line_error(to_http, 2, f"--to-metadata-url {source.meta_url}", "cannot be written")
    assert json.loads((source.qs.meta / "timestamp.json").read_bytes())  # the source untouched



# --- many variant/arch repositories in one run ---------------------------------------------------------


def test_many_variant_arch_repositories_in_one_run(run: Runner, source: Source, tmp_path: Path) -> None:
    """{variant}/{arch} in the URLs (updog's placeholders), every --variant with every --arch: each
    repository mirrored whole, the shared targets once; one whose source fails is named, the others done."""
    other = publish_other_arch(run, source.qs, tmp_path)
    dest = tmp_path / "many"
    args = ["--root", str(source.qs.root), "--from-metadata-url", f"{source.url}/metadata/{{variant}}/{{arch}}/",
            "--from-targets-url", source.targets_url, "--to-metadata-url", f"{dest}/metadata/{{variant}}/{{arch}}",
            "--to-targets-url", str(dest / "targets"), "--variant", VARIANT, "--arch", ARCH, "--arch", other]
    result = run("mirror", *args, "--json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["ok"] and report["failed"] == [], report
    assert [(r["variant"], r["arch"]) for r in report["repositories"]] == [(VARIANT, ARCH), (VARIANT, other)]
    for arch in (ARCH, other):
        meta = dest / "metadata" / VARIANT / arch
        assert (meta / "timestamp.json").read_bytes() == (source.qs.dir / "repo/metadata" / VARIANT / arch /
                                                          "timestamp.json").read_bytes()
    copied = files(dest / "targets")
    for arch in (ARCH, other):  # each repository's listed targets, upstream's bytes; nothing else
        meta = source.qs.dir / "repo/metadata" / VARIANT / arch
        snapshot_v = json.loads((meta / "timestamp.json").read_bytes())["signed"]["meta"]["snapshot.json"]["version"]
        snapshot = json.loads((meta / f"{snapshot_v}.snapshot.json").read_bytes())
        targets_v = snapshot["signed"]["meta"]["targets.json"]["version"]
        listed = json.loads((meta / f"{targets_v}.targets.json").read_bytes())["signed"]["targets"]
        for name, entry in listed.items():
            stored = f"{entry['hashes']['sha256']}.{name}"
            assert copied.pop(stored, None) == (source.qs.targets / stored).read_bytes(), (arch, name)
    assert copied == {}
    assert run("mirror", *args, "--json").json()["copied"] == 0
    # One source tampered: that one named (exit 1), the other still mirrored.
    publish_release(run, source.qs, tmp_path, "1.2.0")
    roll_timestamp_forward(source.qs.dir / "repo/metadata" / VARIANT / other)
    partial = run("mirror", *args)
    assert partial.code == 1, partial.err
    assert partial.err.strip().splitlines()[-1].startswith(
        f"repo-tool: error: 1 of 2 repositories failed (1 mirrored): {VARIANT}/{other}: "), partial.err
    assert f"{VARIANT}/{ARCH}:" in partial.out and f"{VARIANT}/{other}: FAILED" in partial.out, partial.out
    assert (dest / "metadata" / VARIANT / ARCH / "timestamp.json").read_bytes() == (
        source.qs.meta / "timestamp.json").read_bytes()


def test_placeholder_usage_errors(run: Runner, source: Source, tmp_path: Path) -> None:
    base = ["--root", str(source.qs.root), "--from-targets-url", source.targets_url, "--to-targets-url",
            str(tmp_path / "t")]
    templated = f"{source.url}/metadata/{{variant}}/{{arch}}/"
    cases = [
        (["--from-metadata-url", templated, "--to-metadata-url", str(tmp_path / "m")], "give --variant and --arch"),
        (["--from-metadata-url", templated, "--to-metadata-url", str(tmp_path / "m"), "--variant", VARIANT],
         "--arch: give both --variant and --arch"),
        (["--from-metadata-url", source.meta_url, "--to-metadata-url", str(tmp_path / "m"), "--variant", VARIANT,
          "--arch", ARCH], "--from-metadata-url " + source.meta_url + ": has no {variant}"),
        (["--from-metadata-url", templated, "--to-metadata-url", str(tmp_path / "m"), "--variant", VARIANT,
          "--arch", ARCH, "--arch", "aarch64"], "--to-metadata-url " + str(tmp_path / "m") + ": has no {variant}"),
    ]
    for args, needle in cases:
        assert_one_line_error(run("mirror", *base, *args), 2, needle)
    shared = run("mirror", *base[:-1], str(tmp_path / "{arch}"), "--from-metadata-url", templated,
                 "--to-metadata-url", str(tmp_path / "m" / "{variant}" / "{arch}"), "--variant", VARIANT,
                 "--arch", ARCH)
    assert_one_line_error(shared, 2, f"--to-targets-url {tmp_path}/{{arch}}: targets are shared by every variant")
    assert not (tmp_path / "m").exists() and not (tmp_path / "t").exists()


def test_a_run_over_many_fails_with_the_exit_code_of_a_failed_check() -> None:
    """A usage error in one repository and a failed verification in another: exit 1 (the repository is
    bad), both named; usage errors alone: exit 2."""
    usage, bad = UsageError("--versions 9: no update matches"), VerificationError("timestamp.json: expired")
    both = some_failed([("a/x86_64", usage), ("b/x86_64", bad)], 3, "mirrored")
    assert both is not None and both.exit_code == 1
    assert both.message == ("2 of 5 repositories failed (3 mirrored): a/x86_64: --versions 9: no update matches; "
                            "b/x86_64: timestamp.json: expired")
    alone = some_failed([("a/x86_64", usage)], 0, "mirrored")
    assert alone is not None and alone.exit_code == 2
    assert some_failed([], 4, "mirrored") is None
