"""``repo-tool mirror --resign`` (re-root) end to end: upstream (a quickstart served over HTTP) is
published into the operator's repository, signed by the operator's keys, with waves from the operator's
policy and start; the result audits clean, passes the tough rules, python-tuf, tuf-js and a node with
the operator's root, which is offered the update when the operator's waves say (not upstream's); later
upstream releases are added like ``publish`` adds one; rollout, set-max-version and check-expirations
work on it; a tampered upstream is refused with nothing of the operator's written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from repo_tool.cli.common import now_ns
from repo_tool.core.instant import NANOS_PER_HOUR, NANOS_PER_MINUTE, format_instant, format_whole_seconds, parse_instant
from repo_tool.core.manifest import Manifest
from repo_tool.core.readiness import update_ready
from repo_tool.core.selection import Host, select
from repo_tool.core.semver import Version
from repo_tool.core.waves import policy_to_waves
from repo_tool.publish.inputs import load_policy
from tests.clirun import Run, Runner, assert_one_line_error
from tests.faults.helpers import audit_clean, local_client_sees
from tests.repohelpers import (
    ARCH,
    QS,
    VARIANT,
    copy_quickstart,
    make_quickstart,
    roll_timestamp_forward,
    serve_directory,
    sign_file,
    signer,
    tough_rule_violations,
    tree_state,
)
from tests.s3helpers import bucket_objects, fault_proxy
from tests.test_mirror import BUCKET, Source, publish_other_arch, publish_release
from tests.test_node import Node
from tests.test_tufjs_interop import (
    Served,
    check,
    node,  # noqa: F401  (the session fixture: node and tuf-js installed)
)

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]


@dataclass
class Operator:
    """The operator's config, keys and root (a quickstart without its repository)."""

    qs: QS

    def args(self, *extra: str) -> list[str]:
        return ["--resign", "--config", str(self.qs.config), "--variant", VARIANT, "--arch", ARCH, *extra]

    def manifest(self) -> Manifest:
        return Manifest.from_bytes(json.dumps(self.qs.manifest()).encode())

    def update(self, version: str) -> Any:
        return next(u for u in self.operator_updates() if u.version == Version.parse(version))

    def operator_updates(self) -> list[Any]:
        return self.manifest().updates


@pytest.fixture
def operator(qs: QS, tmp_path: Path) -> Operator:
    """A second quickstart's keys, root and config, its repository removed (a re-root starts it)."""
    made = copy_quickstart(qs, tmp_path / "operator")
    shutil.rmtree(made.dir / "repo")
    return Operator(made)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Source]:
    """Upstream: its own quickstart (other keys than the operator's), served over HTTP."""
    upstream = make_quickstart(tmp_path / "upstream")
    with serve_directory(upstream.dir / "repo") as url:
        yield Source(upstream, url)


def reroot(run: Runner, source: Source, operator: Operator, *extra: str) -> Run:
    return run("mirror", *source.from_args(), *operator.args(*extra))


def rerooted(run: Runner, source: Source, operator: Operator, *extra: str) -> dict[str, Any]:
    result = reroot(run, source, operator, "--json", *extra)
    assert result.code == 0, result.err
    report: dict[str, Any] = result.json()
    return report


@pytest.fixture
def tufjs(node: str) -> str:  # noqa: F811  (the imported fixture, by name)
    """The node binary that runs tests/tufjs/check.mjs."""
    return node


def hours_ago(count: int) -> str:
    return format_instant(now_ns() - count * NANOS_PER_HOUR)


def test_reroot_is_signed_by_the_operator_and_read_by_every_client(run: Runner, source: Source, operator: Operator,
                                                                    tmp_path: Path, tufjs: str) -> None:
    start = hours_ago(4)
    report = rerooted(run, source, operator, "--init", "--wave-policy", "ohno", "--release-start-time", start)
    assert report["created"] and not report["planned_only"], report
    assert report["upstream"] == {"metadata_url": source.meta_url, "added": ["1.1.0"]}, report
    op, up = operator.qs, source.qs
    # Signed by the operator's root, not upstream's.
    assert (op.meta / "1.root.json").read_bytes() == op.root.read_bytes()
    assert not (op.meta / "2.root.json").exists()
    # Upstream's newest update, its images and the migration step to it from upstream's older release.
    upstream_manifest = up.manifest()
    newest = upstream_manifest["updates"][-1]
    mine = op.manifest()
    assert [(u["version"], u["images"]) for u in mine["updates"]] == [(newest["version"], newest["images"])]
    assert mine["migrations"] == {key: names for key, names in upstream_manifest["migrations"].items()
                                  if key.endswith(f"{newest['version']})")}
    # The operator's waves: ohno counted from the operator's start.
    policy = load_policy("ohno")[0]
    waves = {str(seed): format_instant(at) for seed, at in policy_to_waves(policy, parse_instant(start)).items()}
    assert mine["updates"][0]["waves"] == waves
    # The targets are upstream's bytes under upstream's object names.
    listed = op.newest("targets")["signed"]["targets"]
    upstream_listed = up.newest("targets")["signed"]["targets"]
    for name, entry in listed.items():
        stored = f"{entry['hashes']['sha256']}.{name}"
        if name != "manifest.json":
            assert entry == upstream_listed[name], name
            assert (op.targets / stored).read_bytes() == (up.targets / stored).read_bytes(), name
    # Every file passes the tough rules; the auditor, python-tuf, the node and tuf-js accept it.
    for path in op.meta.glob("*.json"):
        role = "timestamp" if path.name == "timestamp.json" else path.name.split(".")[1]
        assert tough_rule_violations(path.read_bytes(), role) == [], path.name
    assert audit_clean(run, "--root", str(op.root), "--metadata-url", str(op.meta), "--targets-url",
                       str(op.targets)) == []
    assert local_client_sees(run, tmp_path / "clients", op.root, op.meta, op.targets) == newest["version"]
    with serve_directory(op.meta) as meta_url, serve_directory(op.targets) as targets_url:
        served = Served({"root": str(op.root), "metadata_dir": str(op.meta), "targets_dir": str(op.targets)},
                        meta_url, targets_url)
        images = [newest["images"][kind] for kind in ("boot", "root", "hash")]
        result = check(tufjs, served, tmp_path / "tufjs", "manifest.json", *images)
        assert result.code == 0, result.stderr
        assert set(result.out["targets"]) == {"manifest.json", *images}


def _node(run: Runner, directory: Path, qs: QS, url: str, seed: int) -> Node:
    directory.mkdir()
    host = Node(directory, qs, url, [], run)
    made = run("node", "make-disk", str(host.disk), "--boot-size", "4MiB", "--root-size", "16MiB",
               "--hash-size", "1MiB", "--private-size", "1MiB")
    assert made.code == 0, made.err
    host.configure(seed=seed)
    return host


def test_a_node_with_the_operators_root_updates_on_the_operators_waves(run: Runner, source: Source,
                                                                       operator: Operator, tmp_path: Path) -> None:
    """Upstream's waves (default policy, published now) offer nothing to seed 2047 yet; the operator's
    (ohno, started 4 hours ago) offer it to every seed: the node on the operator's repository updates,
    the same node on upstream's does not."""
    rerooted(run, source, operator, "--init", "--wave-policy", "ohno", "--release-start-time", hours_ago(4))
    version = source.qs.manifest()["updates"][-1]["version"]
    upstream_node = _node(run, tmp_path / "upstream-node", source.qs, source.url, seed=2047)
    nothing = upstream_node("check-update")
    assert nothing.code == 1 and "No update available" in nothing.err, (nothing.code, nothing.out, nothing.err)
    with serve_directory(operator.qs.dir / "repo") as url:
        host = _node(run, tmp_path / "operator-node", operator.qs, url, seed=2047)
        offered = host("check-update")
        assert (offered.code, offered.out) == (0, f"{VARIANT} {version}\n"), offered.err
        done = host("update")
        assert (done.code, done.out) == (0, f"Update applied: {VARIANT} {version}\n"), done.err


def test_each_seed_is_offered_when_the_operators_policy_says(run: Runner, source: Source, operator: Operator) -> None:
    """updog's selection over the re-rooted manifest, seed by seed and instant by instant, is updog's
    readiness of the operator's policy counted from the operator's start (not upstream's waves)."""
    start = now_ns() + 2 * NANOS_PER_HOUR
    rerooted(run, source, operator, "--init", "--wave-policy", "ohno", "--release-start-time", format_instant(start))
    mine = operator.manifest()
    upstream = Manifest.from_bytes(json.dumps(source.qs.manifest()).encode())
    version = mine.updates[-1].version
    ohno = policy_to_waves(load_policy("ohno")[0], start)
    differs = 0
    for minutes in (-1, 29, 31, 61, 121, 151, 181, 60 * 30):
        at = start + minutes * NANOS_PER_MINUTE
        for seed in (0, 1, 101, 102, 103, 511, 512, 1023, 1024, 1842, 1843, 2047):
            got = select(mine, Host(VARIANT, ARCH, Version.parse("1.0.0"), seed), at).update
            expected = update_ready(ohno, seed, at)
            assert (got is not None and got.version == version) == expected, (seed, minutes)
            theirs = select(upstream, Host(VARIANT, ARCH, Version.parse("1.0.0"), seed), at).update
            differs += (theirs is not None) != expected
    assert differs > 0


def test_later_upstream_releases_are_added_like_publish(run: Runner, source: Source, operator: Operator,
                                                         tmp_path: Path) -> None:
    rerooted(run, source, operator, "--init")
    first = operator.update("1.1.0")
    again = reroot(run, source, operator)
    assert again.code == 0 and "already re-rooted; nothing to do" in again.err, again.err
    state = tree_state(operator.qs.dir / "repo")
    assert reroot(run, source, operator).code == 0
    assert tree_state(operator.qs.dir / "repo") == state
    publish_release(run, source.qs, tmp_path, "1.2.0")
    start = hours_ago(1)
    added = rerooted(run, source, operator, "--release-start-time", start, "--wave-policy", "accelerated")
    assert {t["name"] for t in added["targets_added"]} == {
        *(p.name for p in (tmp_path / "img-1.2.0").glob("bottlerocket-*")), "manifest.json"}
    kept = operator.update("1.1.0")  # the earlier update keeps its waves; max_version rises as publish raises it
    assert (kept.waves, kept.images, kept.max_version) == (first.waves, first.images, Version.parse("1.2.0"))
    new = operator.update("1.2.0")
    accelerated = policy_to_waves(load_policy("accelerated")[0], parse_instant(start))
    assert new.waves == accelerated and new.max_version == Version.parse("1.2.0")
    assert operator.manifest().migrations[(Version.parse("1.1.0"), Version.parse("1.2.0"))] == []
    op = operator.qs
    assert audit_clean(run, "--root", str(op.root), "--metadata-url", str(op.meta), "--targets-url",
                       str(op.targets)) == []
    assert local_client_sees(run, tmp_path / "clients", op.root, op.meta, op.targets) == "1.2.0"
    # The operator's own rollout tools work on it unchanged.
    for command in (["rollout", "pause", "--version", "1.2.0"], ["set-max-version", "--max-version", "1.1.0"]):
        done = run(*command, *op.args())
        assert done.code == 0, (command, done.err)
    assert operator.manifest().updates[-1].max_version == Version.parse("1.1.0")
    expirations = run("check-expirations", "--config", str(op.config), "--json")
    assert expirations.code == 0, expirations.err
    assert audit_clean(run, "--root", str(op.root), "--metadata-url", str(op.meta), "--targets-url",
                       str(op.targets)) == []


def test_plan_signs_and_writes_nothing(run: Runner, source: Source, operator: Operator) -> None:
    planned = rerooted(run, source, operator, "--init", "--plan")
    assert planned["planned_only"] and not planned["signed"] and planned["written"] == [], planned
    assert not (operator.qs.dir / "repo").exists()


def test_versions_all_rerooted_with_their_migrations(run: Runner, source: Source, operator: Operator,
                                                      tmp_path: Path) -> None:
    rerooted(run, source, operator, "--init", "--versions", "all")
    assert [str(u.version) for u in operator.operator_updates()] == ["1.0.0", "1.1.0"]
    assert operator.manifest().migrations == Manifest.from_bytes(
        json.dumps(source.qs.manifest()).encode()).migrations


def test_tampered_upstream_target_is_refused_with_nothing_of_it_written(run: Runner, source: Source,
                                                                        operator: Operator) -> None:
    rerooted(run, source, operator, "--init", "--versions", "1.0.0")
    before = tree_state(operator.qs.dir / "repo")
    update = source.qs.manifest()["updates"][-1]
    name = update["images"]["root"]
    entry = source.qs.newest("targets")["signed"]["targets"][name]
    stored = source.qs.targets / f"{entry['hashes']['sha256']}.{name}"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 1
    stored.write_bytes(bytes(data))
    result = reroot(run, source, operator)
    assert_one_line_error(result, 1, f"target {name}: ", "SHA-256 mismatch")
    # Nothing of it written: the targets stored before the bad one was met were staged and are dropped
    # with it (no temporary file left), the operator's metadata untouched.
    assert tree_state(operator.qs.dir / "repo") == before
    assert not [p for p in (operator.qs.dir / "repo").rglob("*") if p.name.startswith(".")]


def test_upstream_that_fails_verification_is_refused_before_any_write(run: Runner, source: Source,
                                                                      operator: Operator) -> None:
    timestamp = source.qs.meta / "timestamp.json"
    doc = json.loads(timestamp.read_bytes())
    doc["signed"]["version"] += 1
    timestamp.write_text(json.dumps(doc))
    result = reroot(run, source, operator, "--init")
    assert_one_line_error(result, 1, "timestamp.json")
    assert not (operator.qs.dir / "repo").exists()


def test_usage_errors(run: Runner, source: Source, operator: Operator) -> None:
    op = operator.qs
    cases = [
        (["--resign", "--variant", VARIANT, "--arch", ARCH], "--resign needs --config"),
        (["--resign", "--config", str(op.config), "--arch", ARCH], "--resign needs --variant"),
        ([*operator.args(), "--to-metadata-url", "x"], "--to-metadata-url: --resign publishes into the config's"),
        (["--to-metadata-url", "x", "--to-targets-url", "y", "--wave-policy", "ohno"],
         "--wave-policy goes with --resign"),
        (["--to-metadata-url", "x", "--to-targets-url", "y", "--init"], "--init goes with --resign"),
        (["--to-metadata-url", "x"], "missing option --to-targets-url"),
        ([*operator.args(), "--init", "--versions", "9.9.9"], "--versions 9.9.9: no aws-k8s-1.28/x86_64 update"),
        (["--resign", "--config", str(op.config), "--variant", "aws-dev", "--arch", ARCH, "--init"],
         "--variant aws-dev --arch x86_64: upstream's manifest.json"),
        ([*operator.args()], "pass --init to start a new repository"),
    ]
    for args, needle in cases:
        result = run("mirror", *source.from_args(), *args)
        code = 1 if "pass --init" in needle else 2
        assert_one_line_error(result, code, needle)
    assert not (op.dir / "repo").exists()


def test_reroot_into_s3_streams_upstream_targets(aws: MotoServer, run: Runner, source: Source,
                                                 operator: Operator, tmp_path: Path) -> None:
    """The operator's repository in the moto S3 server: upstream's images are streamed from HTTP into the
    bucket (each checked as it passes); it audits clean there; a rerun with nothing new writes nothing."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    config = yaml.safe_load(operator.qs.config.read_text())
    repo = config["repos"]["dev"]
    repo["metadata_url"], repo["targets_url"] = f"s3://{BUCKET}/metadata/", f"s3://{BUCKET}/targets/"
    operator.qs.config.write_text(yaml.safe_dump(config))
    with fault_proxy(aws.endpoint) as proxy:
        report = rerooted(run, source, operator, "--init", "--endpoint-url", proxy.url)
    written = [r.key.split("/", 2)[2] for r in proxy.writes()]
    assert written[-1] == f"metadata/{VARIANT}/{ARCH}/timestamp.json", written
    keys = bucket_objects(s3, BUCKET)
    listed = {t["object"] for t in report["targets_added"]}
    assert {k.removeprefix("targets/") for k in keys if k.startswith("targets/")} == listed
    for target in report["targets_added"]:
        if target["name"] != "manifest.json":
            body = s3.get_object(Bucket=BUCKET, Key=f"targets/{target['object']}")["Body"].read()
            assert body == (source.qs.targets / target["object"]).read_bytes(), target["name"]
    meta_url, targets_url = f"s3://{BUCKET}/metadata/{VARIANT}/{ARCH}/", f"s3://{BUCKET}/targets/"
    audit_clean(run, "--root", str(operator.qs.root), "--metadata-url", meta_url, "--targets-url", targets_url,
                "--endpoint-url", aws.endpoint)
    with fault_proxy(aws.endpoint) as proxy:
        again = reroot(run, source, operator, "--endpoint-url", proxy.url)
    assert again.code == 0 and "nothing to do" in again.err, again.err
    assert proxy.writes() == [] and bucket_objects(s3, BUCKET) == keys


def test_a_release_upstream_pulled_is_not_rerooted(run: Runner, source: Source, operator: Operator) -> None:
    """Upstream lowered max_version below its newest release (a pull): `all` takes the rest with a
    warning naming the pulled one; `latest` is the release upstream still offers."""
    pulled = run("set-max-version", *source.qs.args("--max-version", "1.0.0"))
    assert pulled.code == 0, pulled.err
    done = reroot(run, source, operator, "--init", "--versions", "all")
    assert done.code == 0, done.err
    assert "upstream pulled 1.1.0 (its max_version is 1.0.0); not re-rooted" in done.err
    assert [str(u.version) for u in operator.operator_updates()] == ["1.0.0"]
    assert reroot(run, source, operator, "--versions", "latest").code == 0
    assert [str(u.version) for u in operator.operator_updates()] == ["1.0.0"]
    nothing = reroot(run, source, operator, "--versions", "1.1.0")
    assert nothing.code == 0 and "upstream pulled every update chosen; nothing to do" in nothing.err, nothing.err
    assert "upstream pulled 1.1.0 (its max_version is 1.0.0); not re-rooted" in nothing.err


def test_upstream_pulling_a_release_the_operator_serves_is_named(run: Runner, source: Source,
                                                                 operator: Operator) -> None:
    rerooted(run, source, operator, "--init")
    assert run("set-max-version", *source.qs.args("--max-version", "1.0.0")).code == 0
    again = reroot(run, source, operator, "--json", "--versions", "1.1.0")
    assert again.code == 0 and again.json()["already_published"], again.out
    assert again.json()["warnings"] == [
        "upstream pulled 1.1.0 (its max_version is 1.0.0); not re-rooted",
        "upstream pulled 1.1.0 (its max_version is 1.0.0), which this repository serves; pull it here too with "
        "set-max-version or remove-update --version 1.1.0"]
    assert operator.update("1.1.0").max_version == Version.parse("1.1.0")  # the operator's call, not upstream's


def test_a_release_the_operator_pulled_is_not_offered_again(run: Runner, source: Source, operator: Operator,
                                                            tmp_path: Path) -> None:
    """Adding 1.2.0 raises max_version to it (publish's rule), which would offer the 1.1.0 the operator
    pulled again: refused until the operator removes it; then added."""
    rerooted(run, source, operator, "--init", "--versions", "all")
    assert run("set-max-version", *operator.qs.args("--max-version", "1.0.0")).code == 0
    publish_release(run, source.qs, tmp_path, "1.2.0")
    before = tree_state(operator.qs.dir / "repo")
    refused = reroot(run, source, operator)
    assert_one_line_error(refused, 2, "aws-k8s-1.28/x86_64: 1.1.0 is pulled here (max_version 1.0.0); adding "
                          "1.2.0 would raise max_version to 1.2.0 and offer 1.1.0 again")
    assert tree_state(operator.qs.dir / "repo") == before
    assert run("remove-update", *operator.qs.args("--version", "1.1.0")).code == 0
    rerooted(run, source, operator)
    assert [(str(u.version), str(u.max_version)) for u in operator.operator_updates()] == [
        ("1.0.0", "1.2.0"), ("1.2.0", "1.2.0")]


def test_many_variant_arch_repositories_rerooted_in_one_run(run: Runner, source: Source, operator: Operator,
                                                             tmp_path: Path) -> None:
    """{variant}/{arch} in the upstream URL and repeated --variant/--arch: each repository re-rooted into
    the config's repository for it (--init starts those that do not exist); one whose upstream fails is
    named (exit 1) and the others are still done."""
    other = publish_other_arch(run, source.qs, tmp_path)
    args = ["--root", str(source.qs.root), "--from-metadata-url", f"{source.url}/metadata/{{variant}}/{{arch}}/",
            "--from-targets-url", source.targets_url, "--resign", "--config", str(operator.qs.config),
            "--variant", VARIANT, "--arch", ARCH, "--arch", other]
    done = run("mirror", *args, "--init", "--json")
    assert done.code == 0, done.err
    report = done.json()
    assert report["ok"] and report["failed"] == [], report
    assert [(r["variant"], r["arch"], r["upstream"]["added"]) for r in report["repositories"]] == [
        (VARIANT, ARCH, ["1.1.0"]), (VARIANT, other, ["1.1.0"])]
    op = operator.qs
    for arch in (ARCH, other):
        meta = op.dir / "repo" / "metadata" / VARIANT / arch
        assert audit_clean(run, "--root", str(op.root), "--metadata-url", str(meta), "--targets-url",
                           str(op.targets)) == []
    again = run("mirror", *args, "--json")
    assert again.code == 0 and all(r["already_published"] for r in again.json()["repositories"]), again.out
    # A new release upstream for x86_64, and aarch64's upstream broken: x86_64 done, aarch64 named.
    publish_release(run, source.qs, tmp_path, "1.2.0")
    roll_timestamp_forward(source.qs.dir / "repo/metadata" / VARIANT / other)
    partial = run("mirror", *args)
    assert partial.code == 1, partial.err
    assert partial.err.strip().splitlines()[-1].startswith(
        f"repo-tool: error: 1 of 2 repositories failed (1 done): {VARIANT}/{other}: "), partial.err
    assert [str(u.version) for u in operator.operator_updates()] == ["1.1.0", "1.2.0"]
    several = run("mirror", "--root", str(source.qs.root), "--from-metadata-url", source.meta_url,
                  "--from-targets-url", source.targets_url, "--resign", "--config", str(op.config),
                  "--variant", VARIANT, "--arch", ARCH, "--arch", other)
    assert_one_line_error(several, 2, f"--from-metadata-url {source.meta_url}: has no {{variant}}")


def test_expired_upstream_is_refused_even_with_allow_expired(run: Runner, source: Source,
                                                             operator: Operator) -> None:
    """Upstream's timestamp.json, validly signed, expired an hour ago: refused, nothing written;
    --allow-expired is about the operator's own repository, never upstream."""
    qs = source.qs
    timestamp = qs.newest("timestamp")
    timestamp["signed"]["expires"] = format_whole_seconds(now_ns() - NANOS_PER_HOUR)
    (qs.meta / "timestamp.json").write_bytes(sign_file(timestamp["signed"], [signer(qs.dir / "keys" /
                                                                                    "timestamp.pem")]))
    for extra in ((), ("--allow-expired",)):
        refused = reroot(run, source, operator, "--init", *extra)
        assert_one_line_error(refused, 1, "timestamp", "expired")
    assert not (operator.qs.dir / "repo").exists()
