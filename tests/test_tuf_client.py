"""``repo-tool tuf-client`` (the tuf-conformance client protocol) against repositories written
with python-tuf's own metadata API, served over HTTP on 127.0.0.1 and read through file:// URLs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (  # type: ignore[attr-defined]  # re-exported without __all__
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)

from repo_tool.errors import VerificationError
from repo_tool.node.tuf_client import MetadataSource
from repo_tool.storage.directory import DirectoryStore
from repo_tool.storage.transport import Transport
from repo_tool.trust import signatures, trusted
from repo_tool.trust.tufjson import canonical
from repo_tool.trust.verifier import Limits, Naming, load_repo
from tests.clirun import Runner, assert_one_line_error
from tests.repohelpers import serve_directory

REPO_DIR = Path(__file__).resolve().parents[1]
T = TypeVar("T", Root, Timestamp, Snapshot, Targets)


def _expires(days: float = 30) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)


class _Role(Generic[T]):
    """One role's metadata and its signers."""

    def __init__(self, signed: T) -> None:
        self.md: Metadata[T] = Metadata(signed)
        self.signers: list[CryptoSigner] = []

    @property
    def signed(self) -> T:
        return self.md.signed

    def to_bytes(self, extra_signers: list[CryptoSigner] | None = None) -> bytes:
        self.md.signatures.clear()
        for signer in [*self.signers, *(extra_signers or [])]:
            self.md.sign(signer, append=True)
        # Keys in insertion order (python-tuf's serializer sorts them): a target's first listed hash is
        # then the first algorithm asked for, not the alphabetically first.
        return json.dumps(self.md.to_dict(), indent=1).encode()


class TufRepo:
    """A repository with consistent snapshots, published the way a TUF repository is: versioned
    roots, ``V.snapshot.json``/``V.targets.json``/``V.<role>.json`` and ``timestamp.json``; targets
    stored as ``<dir>/<first hash>.<name>``."""

    def __init__(self, base: Path, spec_version: str = "1.0.31", consistent: bool = True) -> None:
        self.base = base
        self.meta = base / "metadata"
        self.targets_dir = base / "targets"
        self.meta.mkdir(parents=True)
        self.targets_dir.mkdir(parents=True)
        self.consistent = consistent
        self.root: _Role[Root] = _Role(Root(spec_version=spec_version, expires=_expires(365),
                                            consistent_snapshot=consistent))
        self.timestamp: _Role[Timestamp] = _Role(Timestamp(spec_version=spec_version, expires=_expires(1)))
        self.snapshot: _Role[Snapshot] = _Role(Snapshot(spec_version=spec_version, expires=_expires(7)))
        self.targets: _Role[Targets] = _Role(Targets(spec_version=spec_version, expires=_expires(30)))
        self.delegated: dict[str, _Role[Targets]] = {}
        self.spec_version = spec_version
        for name in ("root", "timestamp", "snapshot", "targets"):
            self.set_keys(name)
        self.publish_root()
        self.publish()

    def role(self, name: str) -> _Role[Any]:
        top: dict[str, _Role[Any]] = {"root": self.root, "timestamp": self.timestamp, "snapshot": self.snapshot,
                                      "targets": self.targets}
        return top[name] if name in top else self.delegated[name]

    def set_keys(self, name: str) -> None:
        """Give a top-level role one new ed25519 key (replacing its old ones); publish_root makes it live."""
        root = self.root.signed
        for keyid in list(root.roles[name].keyids):
            root.revoke_key(keyid, name)
        signer = CryptoSigner.generate_ed25519()
        root.add_key(signer.public_key, name)
        self.role(name).signers = [signer]

    @property
    def root_bytes(self) -> bytes:
        return (self.meta / "1.root.json").read_bytes()

    def publish_root(self, old_signers: list[CryptoSigner] | None = None) -> bytes:
        """Write the current root as ``N.root.json``, signed by its own keys and ``old_signers``."""
        data = self.root.to_bytes(old_signers)
        (self.meta / f"{self.root.signed.version}.root.json").write_bytes(data)
        return data

    def rotate_root(self) -> None:
        """Root version N+1 with a new root key, signed by the old and the new key."""
        old = list(self.root.signers)
        self.root.signed.version += 1
        self.set_keys("root")
        self.publish_root(old)

    def add_target(self, path: str, data: bytes, role: str = "targets", algorithms: tuple[str, ...] = ("sha256",)
                   ) -> TargetFile:
        target = TargetFile.from_data(path, data, list(algorithms))
        self.role(role).signed.targets[path] = target
        head, _, tail = path.rpartition("/")
        prefix = f"{next(iter(target.hashes.values()))}." if self.consistent else ""
        stored = self.targets_dir / head / f"{prefix}{tail}"
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_bytes(data)
        return target

    def delegate(self, name: str, paths: list[str], parent: str = "targets", terminating: bool = False) -> None:
        signer = CryptoSigner.generate_ed25519()
        delegator: Targets = self.role(parent).signed
        if delegator.delegations is None:
            delegator.delegations = Delegations(keys={}, roles={})
        assert delegator.delegations.roles is not None
        delegator.delegations.roles[name] = DelegatedRole(name, [], 1, terminating, paths)
        delegator.add_key(signer.public_key, name)
        role: _Role[Targets] = _Role(Targets(spec_version=self.spec_version, expires=_expires(30)))
        role.signers = [signer]
        self.delegated[name] = role

    def delegate_bins(self, bit_length: int, prefix: str) -> SuccinctRoles:
        """Succinct hashed-bin delegation (TAP 15) from targets to 2**bit_length bins, one key for all."""
        signer = CryptoSigner.generate_ed25519()
        bins = SuccinctRoles([], 1, bit_length, prefix)
        self.targets.signed.delegations = Delegations({}, succinct_roles=bins)
        self.targets.signed.add_key(signer.public_key)
        for name in bins.get_roles():
            role: _Role[Targets] = _Role(Targets(spec_version=self.spec_version, expires=_expires(30)))
            role.signers = [signer]
            self.delegated[name] = role
        return bins

    def file_name(self, role: str, version: int) -> str:
        return f"{version}.{quote(role, safe='')}.json" if self.consistent else f"{quote(role, safe='')}.json"

    def publish(self, *, bump: bool = False, hashes: bool = False) -> None:
        """Write every targets role, the snapshot listing them and the timestamp (versions bumped first)."""
        roles: dict[str, _Role[Targets]] = {"targets": self.targets, **self.delegated}
        if bump:
            bumped: list[_Role[Any]] = [*roles.values(), self.snapshot, self.timestamp]
            for each in bumped:
                each.signed.version += 1
        for name, role in roles.items():
            data = role.to_bytes()
            (self.meta / self.file_name(name, role.signed.version)).write_bytes(data)
            self.snapshot.signed.meta[f"{name}.json"] = self._metafile(role.signed.version, data, hashes)
        self.publish_snapshot(hashes=hashes)

    def publish_snapshot(self, *, hashes: bool = False) -> None:
        data = self.snapshot.to_bytes()
        (self.meta / self.file_name("snapshot", self.snapshot.signed.version)).write_bytes(data)
        self.timestamp.signed.snapshot_meta = self._metafile(self.snapshot.signed.version, data, hashes)
        self.publish_timestamp()

    def publish_timestamp(self) -> bytes:
        data = self.timestamp.to_bytes()
        (self.meta / "timestamp.json").write_bytes(data)
        return data

    @staticmethod
    def _metafile(version: int, data: bytes, hashes: bool) -> MetaFile:
        if not hashes:
            return MetaFile(version)
        return MetaFile(version, len(data), {"sha256": hashlib.sha256(data).hexdigest()})


class Client:
    """The CLI as the conformance suite runs it: one metadata dir and one target dir per test."""

    def __init__(self, tmp: Path, run: Runner, repo: TufRepo, base_url: str) -> None:
        self.dir = tmp / "client" / "metadata"
        self.target_dir = tmp / "client" / "targets"
        self.run = run
        self.repo = repo
        self.metadata_url = f"{base_url}/metadata/"
        self.targets_url = f"{base_url}/targets/"
        self.trusted = tmp / "client" / "initial_root.json"
        self.trusted.parent.mkdir(parents=True)
        self.trusted.write_bytes(repo.root_bytes)

    def init(self) -> int:
        return self.run("tuf-client", "--metadata-dir", str(self.dir), "init", str(self.trusted)).code

    def refresh(self) -> int:
        return self.run("tuf-client", "--metadata-url", self.metadata_url, "--metadata-dir", str(self.dir),
                        "refresh").code

    def download(self, *names: str) -> int:
        flags = [arg for name in names for arg in ("--target-name", name)]
        return self.run("tuf-client", "--metadata-url", self.metadata_url, "--metadata-dir", str(self.dir),
                        *flags, "--target-dir", str(self.target_dir), "--target-base-url", self.targets_url,
                        "download").code

    def version(self, role: str) -> int:
        return int(json.loads((self.dir / f"{quote(role, safe='')}.json").read_bytes())["signed"]["version"])

    def files(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir())

    def downloaded(self) -> dict[str, bytes]:
        if not self.target_dir.exists():
            return {}
        return {p.name: p.read_bytes() for p in self.target_dir.iterdir()}


@pytest.fixture
def repo(tmp_path: Path) -> TufRepo:
    return TufRepo(tmp_path / "repo")


@pytest.fixture
def log() -> list[str]:
    return []


@pytest.fixture
def client(tmp_path: Path, run: Runner, repo: TufRepo, log: list[str]) -> Iterator[Client]:
    with serve_directory(repo.base, log) as url:
        yield Client(tmp_path, run, repo, url)


TOP = ["root.json", "snapshot.json", "targets.json", "timestamp.json"]


# --- the protocol's happy paths ---------------------------------------------------------------


def test_init_refresh_download(client: Client, repo: TufRepo, log: list[str]) -> None:
    target = repo.add_target("path/to/a/file.txt", b"target contents", algorithms=("sha512", "sha256"))
    repo.publish(bump=True)
    assert client.init() == 0
    assert client.files() == ["root.json"]
    assert log == []  # init makes no request
    assert client.refresh() == 0
    assert log == ["/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/2.snapshot.json",
                   "/metadata/2.targets.json"]
    assert client.files() == TOP
    assert (client.dir / "root.json").read_bytes() == repo.root_bytes

    log.clear()
    assert client.download("path/to/a/file.txt") == 0
    # the hash prefix of the first hash listed, on the last path segment; stored as quote(path, '')
    assert log[-1] == f"/targets/path/to/a/{target.hashes['sha512']}.file.txt"
    assert client.downloaded() == {"path%2Fto%2Fa%2Ffile.txt": b"target contents"}
    assert client.files() == TOP

    log.clear()  # a verified copy is not downloaded again; unchanged metadata is not fetched again
    assert client.download("path/to/a/file.txt") == 0
    assert log == ["/metadata/2.root.json", "/metadata/timestamp.json"]


def test_repository_without_consistent_snapshots(tmp_path: Path, run: Runner, log: list[str]) -> None:
    repo = TufRepo(tmp_path / "repo", consistent=False)
    repo.delegate("D", ["d/*"])
    repo.add_target("d/f.txt", b"plain names", role="D")
    repo.publish(bump=True)
    with serve_directory(repo.base, log) as url:
        client = Client(tmp_path, run, repo, url)
        assert client.init() == 0
        assert client.download("d/f.txt") == 0
    assert log == ["/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/snapshot.json",
                   "/metadata/targets.json", "/metadata/D.json", "/targets/d/f.txt"]
    assert client.downloaded() == {"d%2Ff.txt": b"plain names"}

def test_file_urls_and_unusual_role_names(tmp_path: Path, run: Runner, repo: TufRepo) -> None:
    repo.delegate("a/b?#", ["deleg/*"])
    repo.add_target("deleg/x.bin", b"delegated over file://", role="a/b?#")
    repo.add_target("top.txt", b"top")
    repo.publish(bump=True)
    client = Client(tmp_path, run, repo, repo.base.as_uri())
    assert client.init() == 0
    assert client.download("deleg/x.bin", "top.txt") == 0
    assert client.downloaded() == {"deleg%2Fx.bin": b"delegated over file://", "top.txt": b"top"}
    assert client.files() == sorted([*TOP, "a%2Fb%3F%23.json"])
    assert client.version("a/b?#") == 2


def test_unusual_role_names_are_quoted_once_in_requests_and_files(tmp_path: Path, run: Runner, repo: TufRepo
                                                                  ) -> None:
    roles = ["?", "#", "/delegatedrole", "../delegatedrole"]
    for role in roles:
        repo.delegate(role, ["*"])
    repo.add_target("last.txt", b"found in the last role", role="../delegatedrole")
    repo.publish(bump=True)
    log: list[str] = []
    with serve_directory(repo.base, log, verbatim_names=True) as url:
        client = Client(tmp_path, run, repo, url)
        assert client.init() == 0
        assert client.download("nonexistent target") == 1
        assert log[4:] == [f"/metadata/2.{quote(role, safe='')}.json" for role in roles]
        assert client.files() == sorted([*TOP, *(f"{quote(role, safe='')}.json" for role in roles)])
        assert client.download("last.txt") == 0
    assert client.downloaded() == {"last.txt": b"found in the last role"}

def test_target_in_delegated_roles(client: Client, repo: TufRepo, log: list[str]) -> None:
    repo.delegate("A", ["*.py"])
    repo.delegate("B", ["releases/*"])
    repo.delegate("C", ["releases/x*"], parent="B")
    repo.add_target("releases/x-1.img", b"x release by C", role="C")
    repo.publish(bump=True)
    assert client.init() == 0
    assert client.download("releases/x-1.img") == 0
    assert client.downloaded() == {"releases%2Fx-1.img": b"x release by C"}
    assert [p for p in log if p.startswith("/metadata/")][4:] == ["/metadata/2.B.json", "/metadata/2.C.json"]
    assert client.files() == sorted([*TOP, "B.json", "C.json"])

    log.clear()  # not delegated anywhere along the walk: exit 1, the walk stays terminating-free
    assert client.download("releases/y-1.img") == 1
    assert client.run("tuf-client", "--metadata-dir", str(client.dir), "--metadata-url", client.metadata_url,
                      "--target-name", "nowhere/at/all", "--target-dir", str(client.target_dir),
                      "--target-base-url", client.targets_url, "download").code == 1


def test_target_in_a_succinct_hash_bin(client: Client, repo: TufRepo, log: list[str]) -> None:
    bins = repo.delegate_bins(3, "bin")
    for path in ("a.txt", "dir/b.bin"):
        repo.add_target(path, f"{path} in its bin".encode(), role=bins.get_role_for_target(path))
    repo.publish(bump=True)
    assert client.init() == 0
    assert client.download("dir/b.bin") == 0
    assert client.downloaded() == {"dir%2Fb.bin": b"dir/b.bin in its bin"}
    expected = bins.get_role_for_target("dir/b.bin")
    assert [p for p in log if p.startswith("/metadata/")][4:] == [f"/metadata/2.{expected}.json"]
    assert client.files() == sorted([*TOP, f"{expected}.json"])
    assert client.download("a.txt") == 0
    assert client.download("not/there") == 1  # only its own bin is asked, and it does not list it

def test_second_refresh_follows_new_versions(client: Client, repo: TufRepo, log: list[str]) -> None:
    assert client.init() == 0
    assert client.refresh() == 0
    assert [client.version(r) for r in ("timestamp", "snapshot", "targets")] == [1, 1, 1]
    repo.add_target("new.txt", b"new")
    repo.publish(bump=True)
    log.clear()
    assert client.refresh() == 0
    assert [client.version(r) for r in ("timestamp", "snapshot", "targets")] == [2, 2, 2]
    assert log == ["/metadata/2.root.json", "/metadata/timestamp.json", "/metadata/2.snapshot.json",
                   "/metadata/2.targets.json"]

    repo.timestamp.signed.version += 1  # a timestamp-only update: the trusted snapshot is kept
    repo.publish_timestamp()
    log.clear()
    assert client.refresh() == 0
    assert log == ["/metadata/2.root.json", "/metadata/timestamp.json"]
    assert client.version("timestamp") == 3


def test_same_timestamp_version_keeps_the_trusted_one(client: Client, repo: TufRepo) -> None:
    assert client.init() == 0
    assert client.refresh() == 0
    trusted = (client.dir / "timestamp.json").read_bytes()
    repo.timestamp.signed.snapshot_meta = MetaFile(100)  # changed content, same version
    repo.publish_timestamp()
    assert client.refresh() == 0
    assert (client.dir / "timestamp.json").read_bytes() == trusted


# --- rollback and freeze ------------------------------------------------------------------------


def test_timestamp_rollback_refused(client: Client, repo: TufRepo, run: Runner) -> None:
    assert client.init() == 0
    old = repo.publish_timestamp()  # v1
    repo.timestamp.signed.version = 2
    repo.publish_timestamp()
    assert client.refresh() == 0
    assert client.version("timestamp") == 2
    (repo.meta / "timestamp.json").write_bytes(old)
    result = run("tuf-client", "--metadata-url", client.metadata_url, "--metadata-dir", str(client.dir), "refresh")
    assert_one_line_error(result, 1, "version 1 is older than the trusted version 2")
    assert client.version("timestamp") == 2


@pytest.mark.parametrize("hashes", [False, True], ids=["versions", "with-hashes"])
def test_snapshot_rollback_refused(client: Client, repo: TufRepo, hashes: bool) -> None:
    assert client.init() == 0
    repo.publish(bump=True, hashes=hashes)  # snapshot v2
    assert client.refresh() == 0
    assert client.version("snapshot") == 2
    repo.snapshot.signed.version = 1  # timestamp v3 lists snapshot v1
    repo.timestamp.signed.version += 1
    repo.publish_snapshot(hashes=hashes)
    assert client.refresh() == 1
    assert (client.version("timestamp"), client.version("snapshot")) == (2, 2)


# --- key rotations --------------------------------------------------------------------------------


def test_root_rotation_1_2_3_followed(client: Client, repo: TufRepo) -> None:
    assert client.init() == 0
    assert client.refresh() == 0
    repo.rotate_root()
    repo.rotate_root()
    v3 = (repo.meta / "3.root.json").read_bytes()
    assert client.refresh() == 0
    assert (client.dir / "root.json").read_bytes() == v3


def test_root_rotation_not_signed_by_old_root_refused(client: Client, repo: TufRepo) -> None:
    assert client.init() == 0
    repo.rotate_root()  # v2, fine
    v2 = (repo.meta / "2.root.json").read_bytes()
    repo.root.signed.version += 1
    repo.set_keys("root")
    repo.publish_root()  # v3 signed only by its own new key
    assert client.refresh() == 1
    assert (client.dir / "root.json").read_bytes() == v2


def test_timestamp_key_rotation_recovers_from_fast_forward(client: Client, repo: TufRepo) -> None:
    assert client.init() == 0
    repo.timestamp.signed.version = 99  # an attacker (or mistake) pushed the version far ahead
    repo.publish_timestamp()
    assert client.refresh() == 0
    assert client.version("timestamp") == 99

    repo.set_keys("timestamp")  # recovery: new timestamp key in root v2, timestamp back to v1
    repo.root.signed.version += 1
    repo.publish_root(old_signers=[])
    repo.timestamp.signed.version = 1
    repo.publish_timestamp()
    assert client.refresh() == 0
    assert (client.version("root"), client.version("timestamp")) == (2, 1)


# --- expiry -----------------------------------------------------------------------------------------


def test_expired_timestamp_refused(client: Client, repo: TufRepo) -> None:
    assert client.init() == 0
    assert client.refresh() == 0
    repo.timestamp.signed.expires = _expires(-1)
    repo.timestamp.signed.version += 1
    repo.publish_timestamp()
    assert client.refresh() == 1
    assert client.version("timestamp") == 1  # the expired one is not kept


def test_expired_final_root_is_kept_but_nothing_else_is_updated(client: Client, repo: TufRepo) -> None:
    """Spec 5.3.10: the freeze check comes after the new root is persisted; an expired intermediate
    root is fine."""
    assert client.init() == 0
    assert client.refresh() == 0
    repo.root.signed.expires = _expires(-1)
    repo.rotate_root()  # v2 expired
    repo.root.signed.expires = _expires(365)
    repo.rotate_root()  # v3 fine
    repo.publish(bump=True)
    assert client.refresh() == 0
    assert (client.version("root"), client.version("timestamp")) == (3, 2)

    repo.root.signed.expires = _expires(-1)
    repo.rotate_root()  # v4 expired: trusted, but the refresh stops there
    repo.publish(bump=True)
    assert client.refresh() == 1
    assert (client.version("root"), client.version("timestamp")) == (4, 2)

@pytest.mark.skipif(shutil.which("faketime") is None, reason="libfaketime (faketime) is not installed")
def test_faked_clock_expires_the_timestamp(tmp_path: Path, repo: TufRepo) -> None:
    """As the conformance suite runs a client under libfaketime: an offset (``-f +3d``) or a date."""
    def cli(*args: str, fake: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*(("faketime", *fake) if fake else ()), sys.executable, "-m", "repo_tool",
                               "tuf-client", *args], cwd=REPO_DIR, capture_output=True, text=True, timeout=120,
                              check=False)

    meta = tmp_path / "client"
    trusted = tmp_path / "root.json"
    trusted.write_bytes(repo.root_bytes)
    in_three_days = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    with serve_directory(repo.base) as url:
        common = ["--metadata-dir", str(meta), "--metadata-url", f"{url}/metadata"]
        assert cli("--metadata-dir", str(meta), "init", str(trusted)).returncode == 0
        assert cli(*common, "refresh").returncode == 0
        for fake in (("-f", "+3d"), (in_three_days,)):  # the timestamp expires after one day
            late = cli(*common, "refresh", fake=fake)
            assert late.returncode == 1, late.stderr
            assert late.stderr.count("\n") == 1 and "timestamp metadata expired" in late.stderr
            assert "Traceback" not in late.stderr
        assert cli(*common, "refresh").returncode == 0  # back in the present


# --- targets ----------------------------------------------------------------------------------------


def test_tampered_target_refused_and_not_stored(client: Client, repo: TufRepo, run: Runner) -> None:
    good = repo.add_target("a.txt", b"legitimate")
    other = repo.add_target("b.txt", b"other")
    repo.publish(bump=True)
    assert client.init() == 0
    assert client.download("a.txt") == 0
    for target in (good, other):  # the server's copies are replaced
        (repo.targets_dir / f"{target.hashes['sha256']}.{target.path}").write_bytes(b"malicious -----")
    assert client.download("a.txt") == 0  # the verified copy is kept, not re-downloaded
    result = run("tuf-client", "--metadata-url", client.metadata_url, "--metadata-dir", str(client.dir),
                 "--target-name", "b.txt", "--target-dir", str(client.target_dir), "--target-base-url",
                 client.targets_url, "download")
    assert_one_line_error(result, 1, "b.txt")
    assert client.downloaded() == {"a.txt": b"legitimate"}

    (client.target_dir / "a.txt").write_bytes(b"damaged")  # a damaged local copy is fetched again: refused
    assert client.download("a.txt") == 1
    assert client.downloaded()["a.txt"] == b"damaged"
    assert not [p for p in client.target_dir.iterdir() if p.name.startswith(".")]


def test_changed_target_is_stored_under_the_same_name(client: Client, repo: TufRepo) -> None:
    repo.add_target("dir/f.txt", b"one")
    repo.publish(bump=True)
    assert client.init() == 0
    assert client.download("dir/f.txt") == 0
    repo.add_target("dir/f.txt", b"two, longer")
    repo.publish(bump=True)
    assert client.download("dir/f.txt") == 0
    assert client.downloaded() == {"dir%2Ff.txt": b"two, longer"}


def test_unknown_target_fails_but_metadata_is_updated(client: Client, repo: TufRepo, run: Runner) -> None:
    assert client.init() == 0
    result = run("tuf-client", "--metadata-url", client.metadata_url, "--metadata-dir", str(client.dir),
                 "--target-name", "nonexistent artifact", "--target-dir", str(client.target_dir),
                 "--target-base-url", client.targets_url, "download")
    assert_one_line_error(result, 1, "'nonexistent artifact' is not listed")
    assert client.files() == TOP
    assert client.downloaded() == {}


@pytest.mark.parametrize("name", ["..", "."])
def test_target_named_dot_dot_is_not_written_outside_the_target_dir(client: Client, repo: TufRepo, run: Runner,
                                                                    name: str) -> None:
    repo.add_target(name, b"escape")
    repo.publish(bump=True)
    assert client.init() == 0
    result = run("tuf-client", "--metadata-url", client.metadata_url, "--metadata-dir", str(client.dir),
                 "--target-name", name, "--target-dir", str(client.target_dir), "--target-base-url",
                 client.targets_url, "download")
    assert_one_line_error(result, 1, "cannot be stored")
    assert sorted(p.name for p in client.target_dir.parent.iterdir()) == ["initial_root.json", "metadata"]

# --- the trusted root and the command line ------------------------------------------------------


def test_invalid_trusted_root_makes_no_request(client: Client, repo: TufRepo, log: list[str]) -> None:
    doc = json.loads(repo.root_bytes)
    doc["signatures"][0]["sig"] = "00" * 64
    client.trusted.write_text(json.dumps(doc))
    assert client.init() == 0  # no checks at init
    assert client.refresh() == 1
    assert log == []


@pytest.mark.parametrize("args", [
    [],
    ["refresh"],
    ["--metadata-dir", "{dir}"],
    ["--metadata-dir", "{dir}", "bogus"],
    ["--metadata-dir", "{dir}", "init"],
    ["--metadata-dir", "{dir}", "refresh"],
    ["--metadata-dir", "{dir}", "--metadata-url", "{url}", "download"],
    ["--metadata-dir", "{dir}", "--metadata-url", "{url}", "--target-name", "a", "download"],
    ["--metadata-dir", "{dir}", "--metadata-url", "{url}", "--bogus", "refresh"],
    ["--metadata-dir", "{dir}", "--metadata-url", "ftp://example.invalid/", "refresh"],
    ["--metadata-dir", "{dir}", "init", "{dir}/missing.json"],
], ids=["nothing", "no-dir", "no-command", "unknown-command", "init-no-root", "refresh-no-url",
        "download-no-target", "download-no-target-dir", "unknown-option", "bad-scheme", "missing-root"])
def test_bad_arguments_exit_1(client: Client, args: list[str]) -> None:
    assert client.init() == 0
    argv = [a.format(dir=client.dir, url=client.metadata_url) for a in args]
    result = client.run("tuf-client", *argv)
    assert_one_line_error(result, 1)
    assert not result.err[len("repo-tool: error: "):].startswith((" ", "("))  # says what is wrong


def test_refresh_without_init_fails(client: Client) -> None:
    result = client.run("tuf-client", "--metadata-dir", str(client.dir), "--metadata-url", client.metadata_url,
                        "refresh")
    assert_one_line_error(result, 1, "no trusted root")


def test_global_options_in_any_order_as_a_subprocess(tmp_path: Path, repo: TufRepo) -> None:
    repo.add_target("x/y.txt", b"over a real process")
    repo.publish(bump=True)
    trusted = tmp_path / "initial_root.json"
    trusted.write_bytes(repo.root_bytes)
    meta, targets = tmp_path / "meta", tmp_path / "targets"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "repo_tool", "tuf-client", *args], cwd=REPO_DIR,
                              capture_output=True, text=True, timeout=120, check=False)

    with serve_directory(repo.base) as url:
        assert cli("--metadata-dir", str(meta), "init", str(trusted)).returncode == 0
        done = cli("--target-base-url", f"{url}/targets", "--target-dir", str(targets), "--target-name", "x/y.txt",
                   "--metadata-dir", str(meta), "--metadata-url", f"{url}/metadata", "download")
        assert done.returncode == 0, done.stderr
        assert (targets / "x%2Fy.txt").read_bytes() == b"over a real process"
        missing = cli("--metadata-url", f"{url}/metadata", "--metadata-dir", str(meta), "--target-name", "nope",
                      "--target-dir", str(targets), "--target-base-url", f"{url}/targets", "download")
        assert missing.returncode == 1
        assert missing.stderr.startswith("repo-tool: error: ") and missing.stderr.count("\n") == 1


def test_any_spec_version_1x_is_accepted(tmp_path: Path, run: Runner) -> None:
    repo = TufRepo(tmp_path / "repo", spec_version="1.0.0")
    repo.add_target("f", b"old spec")
    repo.publish(bump=True)
    client = Client(tmp_path, run, repo, repo.base.as_uri())
    assert client.init() == 0
    assert client.download("f") == 0
    assert client.downloaded() == {"f": b"old spec"}


# --- the verifier's trusted state, as the conformance suite inspects it -----------------------------


def test_timestamp_is_kept_when_the_snapshot_then_fails(client: Client, repo: TufRepo) -> None:
    """Spec 5.4.5: the new timestamp is persisted once it verifies, before the snapshot is fetched."""
    assert client.init() == 0
    repo.snapshot.signed.version = 2  # 1.snapshot.json now holds version 2: not what the timestamp lists
    (repo.meta / "1.snapshot.json").write_bytes(repo.snapshot.to_bytes())
    assert client.refresh() == 1
    assert client.files() == ["root.json", "timestamp.json"]
    assert client.version("timestamp") == 1


@pytest.mark.parametrize("hashes", [False, True], ids=["versions", "with-hashes"])
def test_snapshot_listing_older_targets_is_refused_and_not_kept(client: Client, repo: TufRepo, hashes: bool) -> None:
    assert client.init() == 0
    repo.publish(bump=True, hashes=hashes)
    repo.publish(bump=True, hashes=hashes)  # targets v3, snapshot v3
    assert client.refresh() == 0
    repo.targets.signed.version = 2  # snapshot v4 lists targets v2
    repo.snapshot.signed.version = 4
    repo.timestamp.signed.version = 4
    repo.publish(hashes=hashes)
    assert client.refresh() == 1
    assert (client.version("snapshot"), client.version("targets")) == (3, 3)
    assert client.refresh() == 1  # and stays refused: the rolled-back snapshot was never trusted



@pytest.mark.parametrize("naming", ["tuf", "tough"])
def test_refused_snapshot_is_not_kept_in_the_state_in_either_naming(repo: TufRepo, naming: Naming) -> None:
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    state = DirectoryStore(repo.base / "state")
    state.put("root.json", repo.root_bytes)
    repo.publish(bump=True)
    assert load_repo(source, None, time.time_ns(), naming=naming, state=state).snapshot.version == 2
    repo.targets.signed.version = 1  # snapshot v3 lists targets v1
    repo.snapshot.signed.version = 3
    repo.timestamp.signed.version = 3
    repo.publish()
    for _ in range(2):
        with pytest.raises(VerificationError, match=r"lists targets\.json version 1, older than the trusted 2"):
            load_repo(source, None, time.time_ns(), naming=naming, state=state)
    assert json.loads(state.get("snapshot.json") or b"")["signed"]["version"] == 2

@pytest.mark.parametrize("naming", ["tuf", "tough"])
def test_root_walk_stops_after_max_root_updates_in_tuf_naming(repo: TufRepo, naming: Naming) -> None:
    """Spec 5.3.3: past the client's bound on root downloads, go on with the newest root so far (python-tuf
    does); tough fails the load instead."""
    for _ in range(3):
        repo.rotate_root()
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    limits = Limits(max_root_updates=2)
    if naming == "tough":
        with pytest.raises(VerificationError, match="more than 2 root updates"):
            load_repo(source, repo.root_bytes, time.time_ns(), naming="tough", limits=limits)
        return
    state = DirectoryStore(repo.base / "state")
    state.put("root.json", repo.root_bytes)
    loaded = load_repo(source, None, time.time_ns(), naming="tuf", limits=limits, state=state)
    assert [r.version for r in loaded.roots] == [1, 2, 3]
    loaded = load_repo(source, None, time.time_ns(), naming="tuf", limits=limits, state=state)
    assert [r.version for r in loaded.roots] == [3, 4]


# --- trust decisions the conformance suite checks (both clients) ------------------------------------


def _duplicate_first_signature(path: Path) -> str:
    """Append a copy of the file's first signature (same key ID, same bytes); return that key ID."""
    doc = json.loads(path.read_bytes())
    doc["signatures"].append(dict(doc["signatures"][0]))
    path.write_text(json.dumps(doc, indent=1))
    return str(doc["signatures"][0]["keyid"])


def test_duplicate_signature_key_ids_refused_by_the_standard_client(client: Client, repo: TufRepo) -> None:
    """The TUF specification: key IDs in ``signatures`` MUST be unique (python-tuf refuses the file).
    The snapshot is not trusted, and the error names the file and the key ID."""
    repo.publish(bump=True)  # the timestamp lists the snapshot by version only
    keyid = _duplicate_first_signature(repo.meta / "2.snapshot.json")
    assert client.init() == 0
    result = client.run("tuf-client", "--metadata-url", client.metadata_url, "--metadata-dir", str(client.dir),
                        "refresh")
    assert_one_line_error(result, 1, "2.snapshot.json", f"key ID {keyid} signs more than once")
    assert "snapshot.json" not in client.files()


@pytest.mark.parametrize("role", ["root", "timestamp", "targets"])
def test_duplicate_signature_key_ids_in_any_role_refused_in_tuf_naming_counted_once_in_tough(
        repo: TufRepo, role: str) -> None:
    """tough counts a key that signs twice once (SOURCES.md: duplicate-sigs): the repository loads, and a
    threshold of 2 is not met by one key signing twice.  A standard client refuses the file outright."""
    repo.publish(bump=True)
    name = {"root": "1.root.json", "timestamp": "timestamp.json", "targets": "2.targets.json"}[role]
    keyid = _duplicate_first_signature(repo.meta / name)
    trusted = (repo.meta / "1.root.json").read_bytes()
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    assert load_repo(source, trusted, time.time_ns(), naming="tough").snapshot.version == 2
    with pytest.raises(VerificationError, match=f"key ID {keyid} signs more than once"):
        load_repo(source, trusted, time.time_ns(), naming="tuf")


def test_one_key_signing_twice_does_not_meet_a_threshold_of_two_in_tough_naming(repo: TufRepo) -> None:
    repo.root.signed.roles["timestamp"].threshold = 2
    repo.root.signed.version += 1
    repo.publish_root(list(repo.root.signers))
    repo.publish(bump=True)
    _duplicate_first_signature(repo.meta / "timestamp.json")
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    with pytest.raises(VerificationError, match="threshold not met for role timestamp: 1 valid of 2"):
        load_repo(source, repo.root_bytes, time.time_ns(), naming="tough")


def _diamond(repo: TufRepo, b_signs: bool = False, a_paths: tuple[str, ...] = ("team-a/*",),
             b_paths: tuple[str, ...] = ("team-b/*",)) -> None:
    """The conformance suite's diamond: ``release`` delegated by ``parent-a`` (team-a/*) and by
    ``parent-b`` (team-b/*), each with a key of its own; the file is signed by parent-a's key only
    (and by parent-b's too with ``b_signs``)."""
    repo.delegate("parent-a", ["team-a/*"])
    repo.delegate("parent-b", ["team-b/*"])
    repo.delegate("release", list(a_paths), parent="parent-a")
    a_signers = repo.delegated["release"].signers
    repo.delegate("release", list(b_paths), parent="parent-b")  # a new role and parent-b's own key
    repo.delegated["release"].signers = [*a_signers, *(repo.delegated["release"].signers if b_signs else [])]
    repo.add_target("team-a/trusted_root.json", b"trusted A", role="release")
    repo.add_target("team-b/trusted_root.json", b"malicious B", role="release")
    repo.publish(bump=True)


def test_diamond_role_is_verified_against_the_delegator_of_each_path(client: Client, repo: TufRepo) -> None:
    """The standard client walks delegations on demand: ``release`` verified through parent-a must not
    be trusted when the lookup of a team-b target reaches it through parent-b, whose key did not sign it."""
    _diamond(repo)
    assert client.init() == 0
    result = client.run("tuf-client", "--metadata-url", client.metadata_url, "--metadata-dir", str(client.dir),
                        "--target-name", "team-a/trusted_root.json", "--target-name", "team-b/trusted_root.json",
                        "--target-dir", str(client.target_dir), "--target-base-url", client.targets_url, "download")
    assert_one_line_error(result, 1, "'release' as 'parent-b' delegates it", "0 valid of 1")
    assert client.downloaded() == {"team-a%2Ftrusted_root.json": b"trusted A"}
    # Not through the trusted state either: a new run with release.json kept from path A refuses again.
    assert client.download("team-b/trusted_root.json") == 1
    assert client.downloaded() == {"team-a%2Ftrusted_root.json": b"trusted A"}
    assert client.download("team-a/trusted_root.json") == 0


def test_diamond_in_tough_naming_is_refused_at_load(tmp_path: Path) -> None:
    """tough loads every delegation at load and verifies each against its own delegator: a path whose
    keys did not sign the role fails the whole load, as ``RepositoryLoader`` does (here both delegations
    cover every target, so only the signatures decide)."""
    repo = TufRepo(tmp_path / "repo")
    _diamond(repo, a_paths=("team-*",), b_paths=("team-*",))
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    with pytest.raises(VerificationError, match="'release' as 'parent-b' delegates it: 0 valid of 1"):
        load_repo(source, repo.root_bytes, time.time_ns(), naming="tough")


def test_diamond_of_the_conformance_suite_is_refused_at_load_in_tough_naming(repo: TufRepo) -> None:
    """The suite's exact shape cannot load in tough: release lists a team-b target outside the paths
    parent-a delegates (tough refuses a role listing a target its delegation does not cover)."""
    _diamond(repo)
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    with pytest.raises(VerificationError, match=r"'team-b/trusted_root\.json', outside the paths 'parent-a'"):
        load_repo(source, repo.root_bytes, time.time_ns(), naming="tough")


def test_diamond_in_tough_naming_checks_each_delegations_paths(tmp_path: Path) -> None:
    """Both parents signed it, but parent-b delegates only team-b/*: release lists a team-a target."""
    repo = TufRepo(tmp_path / "repo")
    _diamond(repo, b_signs=True, a_paths=("team-*",))
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    with pytest.raises(VerificationError, match=r"'team-a/trusted_root\.json', outside the paths 'parent-b'"):
        load_repo(source, repo.root_bytes, time.time_ns(), naming="tough")


def test_diamond_signed_and_covered_on_both_paths_loads_in_tough_naming(tmp_path: Path) -> None:
    repo = TufRepo(tmp_path / "repo")
    _diamond(repo, b_signs=True, a_paths=("team-*",), b_paths=("team-*",))
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    loaded = load_repo(source, repo.root_bytes, time.time_ns(), naming="tough")
    assert sorted(loaded.delegated) == ["parent-a", "parent-b", "release"]
    for name in ("team-a/trusted_root.json", "team-b/trusted_root.json"):
        assert loaded.require(name).role == "release"


@pytest.mark.parametrize("naming", ["tuf", "tough"])
def test_a_delegation_is_verified_once_per_load_however_many_lookups(tmp_path: Path, naming: Naming,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Lookups reuse the verdict for a (role, delegator) pair: an audit looking up every target of a
    large delegated role does not verify (and canonicalize) that role once per target."""
    repo = TufRepo(tmp_path / "repo")
    _diamond(repo, b_signs=True, a_paths=("team-*/*",), b_paths=("team-*/*",))
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    loaded = load_repo(source, repo.root_bytes, time.time_ns(), naming=naming)
    calls: list[str] = []
    real = signatures.check_signatures

    def counting(*args: Any) -> signatures.VerificationResult:
        calls.append(args[3])
        return real(*args)

    monkeypatch.setattr(trusted, "check_signatures", counting)
    for _ in range(50):
        for name in ("team-a/trusted_root.json", "team-b/trusted_root.json"):
            assert loaded.require(name).role == "release"
    # tough verified every delegation at load; the standard client verifies each of the four (parent-a,
    # parent-b, release as each delegates it) on its first use
    assert len(calls) == (0 if naming == "tough" else 4)


def test_a_duplicated_signature_on_a_walked_root_is_refused_in_tuf_naming(repo: TufRepo) -> None:
    repo.rotate_root()
    repo.publish(bump=True)
    keyid = _duplicate_first_signature(repo.meta / "2.root.json")
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    trusted = (repo.meta / "1.root.json").read_bytes()
    assert [r.version for r in load_repo(source, trusted, time.time_ns(), naming="tough").roots] == [1, 2]
    with pytest.raises(VerificationError, match=f"2.root.json: key ID {keyid} signs more than once"):
        load_repo(source, trusted, time.time_ns(), naming="tuf")


def _rewrite_targets(repo: TufRepo, edit: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``edit`` to the signed part of the published targets file and sign it again with the targets
    key (python-tuf's model refuses the shapes made here; the snapshot lists the file by version only)."""
    path = repo.meta / repo.file_name("targets", repo.targets.signed.version)
    doc = json.loads(path.read_bytes())
    edit(doc["signed"])
    signature = repo.targets.signers[0].sign(canonical(doc["signed"]))
    doc["signatures"] = [{"keyid": signature.keyid, "sig": signature.signature}]
    path.write_text(json.dumps(doc))


def _delegation(name: str, signer: CryptoSigner, paths: list[str]) -> dict[str, Any]:
    return {"name": name, "keyids": [signer.public_key.keyid], "threshold": 1, "terminating": False, "paths": paths}


@pytest.mark.parametrize("naming", ["tuf", "tough"])
def test_a_role_delegated_twice_by_one_delegator_is_refused(repo: TufRepo, naming: Naming) -> None:
    """tough (DelegatedRolesNotConsistent) and python-tuf refuse it: trusting the role through one
    entry for a lookup only the other covers would lend it the other one's authority."""
    repo.delegate("release", ["team-a/*"])  # signed by this first entry's key only
    repo.add_target("team-b/x", b"b", role="release")
    repo.publish(bump=True)
    other = CryptoSigner.generate_ed25519()

    def second_entry(signed: dict[str, Any]) -> None:
        signed["delegations"]["keys"][other.public_key.keyid] = other.public_key.to_dict()
        signed["delegations"]["roles"].append(_delegation("release", other, ["team-b/*"]))

    _rewrite_targets(repo, second_entry)
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    with pytest.raises(VerificationError, match="delegates 'release' more than once"):
        load_repo(source, repo.root_bytes, time.time_ns(), naming=naming).require("team-b/x")


@pytest.mark.parametrize("name", ["root", "timestamp", "snapshot", "targets", ""])
def test_a_delegated_role_with_a_top_level_name_is_refused_and_the_state_kept(repo: TufRepo, name: str) -> None:
    """Its file would stand where the client keeps that role (``root.json`` in the metadata dir)."""
    repo.publish(bump=True)
    signer = CryptoSigner.generate_ed25519()

    def delegate(signed: dict[str, Any]) -> None:
        signed["delegations"] = {"keys": {signer.public_key.keyid: signer.public_key.to_dict()},
                                 "roles": [_delegation(name, signer, ["*"])]}

    _rewrite_targets(repo, delegate)
    state = DirectoryStore(repo.base / "state")
    state.put("root.json", repo.root_bytes)
    source = MetadataSource(repo.base.as_uri() + "/metadata", Transport())
    loaded = load_repo(source, None, time.time_ns(), naming="tuf", state=state)
    with pytest.raises(VerificationError, match=f"a delegated role cannot be named {name!r}"):
        loaded.require("anything")
    assert state.get("root.json") == repo.root_bytes
    with pytest.raises(VerificationError, match=f"a delegated role cannot be named {name!r}"):
        load_repo(source, repo.root_bytes, time.time_ns(), naming="tough")
