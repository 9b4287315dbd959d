"""The TUF client (repo_tool.trust.verifier) against every upstream tough fixture and Bottlerocket's
production roots, read through the node's own transport (file:// URLs), with the outcome
fixtures/upstream/SOURCES.md states."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from repo_tool.core.instant import parse_instant
from repo_tool.errors import VerificationError
from repo_tool.storage.directory import DirectoryStore
from repo_tool.storage.http import RemoteDir
from repo_tool.storage.transport import Transport
from repo_tool.trust.model import MetadataError, ThresholdError, parse_role
from repo_tool.trust.policy import TOUGH as TOUGH_POLICY
from repo_tool.trust.trusted import check_tough_entries
from repo_tool.trust.verifier import (
    ExpiredError,
    Limits,
    Naming,
    RepoMissingError,
    load_repo,
    read_target,
    resolve_name,
    verify_trusted_root,
)
from tests.conftest import BOTTLEROCKET, UPSTREAM

TOUGH = UPSTREAM / "tough"
NOW = time.time_ns()


def _dir(path: Path) -> RemoteDir:
    return RemoteDir(path.as_uri() + "/", Transport())


def _load(name: str, meta: str = "metadata", root: str = "metadata/1.root.json", naming: Naming = "tough",
          **kwargs: object) -> tuple[object, RemoteDir]:
    base = TOUGH / name
    repo = load_repo(_dir(base / meta), (base / root).read_bytes(), NOW, naming=naming, **kwargs)  # type: ignore[arg-type]
    return repo, _dir(base / "targets")


@pytest.mark.parametrize("naming", ["tough", "tuf"])
def test_reference_impl_loads_with_delegations(naming: Naming) -> None:
    repo, targets = _load("tuf-reference-impl", naming=naming)
    assert read_target(repo, targets, "file1.txt") == b"This is an example target file."  # type: ignore[arg-type]
    assert read_target(repo, targets, "file2.txt") == b"This is an another example target file."  # type: ignore[arg-type]
    found = repo.find("file3.txt")  # type: ignore[attr-defined]
    assert found is not None and found.role == "role1"
    assert set(found.hashes) == {"sha256", "sha512"}


def test_reference_impl_loads_under_tight_limits() -> None:
    limits = Limits(root=1000, targets=2000, timestamp=3000, snapshot=4000, max_root_updates=1)
    repo, _ = _load("tuf-reference-impl", limits=limits)
    assert repo.root.version == 1  # type: ignore[attr-defined]


def test_consistent_snapshots_reads_hash_prefixed_targets() -> None:
    repo, targets = _load("consistent-snapshots")
    target = repo.require("data1.txt")  # type: ignore[attr-defined]
    assert repo.object_name(target) == f"{target.sha256}.data1.txt"  # type: ignore[attr-defined]
    assert read_target(repo, targets, "data1.txt") == b"123\n456\n789\n0\n"  # type: ignore[arg-type]
    assert read_target(repo, targets, "data2.txt") == b"abc\ndef\nhij\nk\n"  # type: ignore[arg-type]


def test_expired_repository_is_refused_safe_and_loads_unsafe() -> None:
    with pytest.raises(ExpiredError, match=r"timestamp\.json: timestamp metadata expired at 1999-01-01"):
        _load("expired-repository")
    repo, _ = _load("expired-repository", safe=False)
    assert "timestamp" in repo.expired  # type: ignore[attr-defined]
    assert repo.snapshot.version == 1589485578  # type: ignore[attr-defined]


def test_rotated_root_walks_to_version_2() -> None:
    repo, _ = _load("rotated-root", meta=".", root="1.root.json")
    assert [r.version for r in repo.roots] == [1, 2]  # type: ignore[attr-defined]


def test_safe_target_paths_resolve_like_tough() -> None:
    repo, targets = _load("safe-target-paths")
    assert resolve_name("foo/../bar/../baz/../data1.txt") == "data1.txt"
    for name in ("data1.txt", "foo/bar/data2.txt", "delegated/subdir/data3.txt"):
        data = read_target(repo, targets, name)  # type: ignore[arg-type]
        assert data is not None and len(data) == 14
    assert repo.require("delegated/subdir/data3.txt").role == "delegated"  # type: ignore[attr-defined]


def test_dubious_role_names_load_and_stay_inside_the_cache(tmp_path: Path) -> None:
    cache = DirectoryStore(tmp_path / "cache")
    repo, targets = _load("dubious-role-names", cache=cache)
    assert "../../path/like/dubious" in repo.delegated  # type: ignore[attr-defined]
    assert read_target(repo, targets, "1.txt") == b"1\n"  # type: ignore[arg-type]
    written = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert "..%2F..%2Fpath%2Flike%2Fdubious.json" in written
    assert all(p.parent == tmp_path / "cache" for p in (tmp_path / "cache").rglob("*"))


def test_sha512_only_is_refused_by_tough_rules() -> None:
    with pytest.raises(VerificationError, match="no sha256"):
        _load("tuf-sha512")
    repo, targets = _load("tuf-sha512", naming="tuf")  # a standard client checks sha512
    assert read_target(repo, targets, "1.txt") is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["simple-rsa", "pem-encoded-ecdsa-sig-keys", "ecdsa-new-type-sig-keys",
                                  "hex-encoded-ecdsa-sig-keys", "expired-root-json-signature"])
def test_single_roots_verify(name: str) -> None:
    root = verify_trusted_root((TOUGH / name / "root.json").read_bytes(), name)
    assert root.version >= 1


@pytest.mark.parametrize(("name", "needle"), [
    ("duplicate-keyid", "duplicate"),
    ("duplicate-sigs", "threshold not met"),
    ("duplicate-sig-keys", "threshold not met"),
    ("invalid-root-json-signature", "threshold not met"),
    ("mismatched-root-json-keyids", "threshold not met"),
    ("no-root-json-signatures", "threshold not met"),
])
def test_bad_roots_are_refused(name: str, needle: str) -> None:
    with pytest.raises(VerificationError, match=needle):
        verify_trusted_root((TOUGH / name / "root.json").read_bytes(), name)


def test_unsigned_cross_sign_input_fails_self_verification() -> None:
    with pytest.raises(ThresholdError):
        verify_trusted_root((TOUGH / "cross-sign-root" / "1.root.json").read_bytes(), "1.root.json")


def test_production_root_chain_1_to_2() -> None:
    prod = BOTTLEROCKET / "production-root"
    trusted = (prod / "1.root.json").read_bytes()
    with pytest.raises(ExpiredError, match=r"2\.root\.json: root metadata expired at 2021-09-22"):
        load_repo(_dir(prod), trusted, NOW)
    # Unsafe: the chain verifies to version 2; there is no timestamp, so the load ends there.
    with pytest.raises(RepoMissingError, match=r"timestamp\.json not found"):
        load_repo(_dir(prod), trusted, NOW, safe=False)
    before_v2 = parse_instant("2020-10-01T00:00:00Z")
    with pytest.raises(RepoMissingError):
        load_repo(_dir(prod), trusted, before_v2)  # v2 valid then: Safe walk passes, no timestamp


def test_migrator_root_is_expired_but_self_signed() -> None:
    root = (BOTTLEROCKET / "migrator" / "expired-root.json").read_bytes()
    assert verify_trusted_root(root, "expired-root.json").expires == 0


def test_a_bad_entry_whose_name_resolves_to_another_is_refused_like_tough() -> None:
    """tough parses every entry of targets.json, so one it cannot read fails the load even when its name
    (``./a``) resolves to another entry's (``a``).  Found in review: the check walked the entries by
    resolved name, where the good one hid the bad one."""
    good = {"length": 1, "hashes": {"sha256": "ab" * 32}}
    signed = {"_type": "targets", "spec_version": "1.0.0", "version": 1, "expires": "2030-01-01T00:00:00Z",
              "targets": {"./a": {"length": 1}, "a": good}}
    role_file = parse_role(json.dumps({"signatures": [], "signed": signed}).encode(), "targets", "targets.json")
    with pytest.raises(MetadataError, match=r"^targets\.json: target '\./a' has no valid hashes$"):
        check_tough_entries(role_file, TOUGH_POLICY, "targets.json")
