"""A standard TUF client with the tuf-conformance client protocol (``repo-tool tuf-client``).

The three commands of the conformance suite's ``CLIENT-CLI.md`` over the project's one TUF
client (:mod:`repo_tool.trust.verifier`, the standard TUF policy):

* ``init``: copy the trusted root to ``METADATA_DIR/root.json`` (no checks, no requests);
* ``refresh``: the TUF client workflow from ``METADATA_DIR/root.json``: the root walk, then
  timestamp, snapshot and targets with rollback checks against what ``METADATA_DIR`` holds.
  Every file that verifies is kept there under its plain name (``root.json``,
  ``timestamp.json``, ``snapshot.json``, ``targets.json``, delegated roles as
  ``quote(role, '')`` + ``.json``);
* ``download``: refresh, look each target up (delegations walked on demand), and store it
  verified (length and every listed hash) in ``TARGET_DIR`` as ``quote(target_path, '')``,
  the file name python-tuf's ``Updater`` uses.  A file already there that matches the listing
  is kept and not downloaded again (python-tuf's ``find_cached_target``).

Metadata downloads are bounded by python-tuf's default limits; a target is read whole into memory,
at most its signed length.  ``now`` is read once by the caller, so a faked clock (libfaketime) is
honoured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from repo_tool.core.reader import Reader
from repo_tool.errors import IOFailedError, VerificationError
from repo_tool.localfs import write_atomic
from repo_tool.storage.directory import DirectoryStore
from repo_tool.storage.http import RemoteDir
from repo_tool.storage.transport import Transport
from repo_tool.trust.verifier import TUF, Limits, LoadOptions, Repo, TargetError, fetch_target, open_repo, stored_copy

ROOT = "root.json"
# python-tuf's UpdaterConfig defaults: the most downloaded per file, and root versions walked per refresh.
TUF_LIMITS = Limits(root=512_000, timestamp=16_384, snapshot=2_000_000, targets=5_000_000, max_root_updates=256)


class MetadataSource(RemoteDir):
    """Role files under the metadata URL: a :class:`RemoteDir` whose names are not quoted again.

    The verifier names them ready for a URL (``N.root.json``, ``V.snapshot.json``, delegated
    roles as ``V.`` + ``quote(role, '')`` + ``.json``), so an http(s) request carries the name as
    it is, as python-tuf sends it; under a ``file://`` URL (or a plain path) the name is the file's
    literal name (quoted into the URL as :class:`RemoteDir` does).
    """

    def location(self, name: str) -> str:
        return self.url + name if urlsplit(self.url).scheme in ("http", "https") else super().location(name)


@dataclass(frozen=True)
class Remote:
    """The repository a client follows: its metadata URL, and the directory of what it trusts."""

    metadata_url: str
    metadata_dir: Path


@dataclass(frozen=True)
class TargetPlace:
    """Where targets come from (their base URL) and where verified ones are kept."""

    base_url: str
    directory: Path


@dataclass(frozen=True)
class Downloaded:
    """One target of a ``download``: where it is, and whether it was already there."""

    name: str
    path: Path
    cached: bool


def init(metadata_dir: Path, trusted_root: Path) -> Path:
    """Copy ``trusted_root`` to ``metadata_dir/root.json`` (the directory is created)."""
    try:
        data = trusted_root.read_bytes()
    except OSError as exc:
        raise IOFailedError(f"{trusted_root}: cannot read the trusted root: {exc.strerror or exc}") from None
    target = metadata_dir / ROOT
    try:
        metadata_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data, mode=0o644)
    except OSError as exc:
        raise IOFailedError(f"{target}: cannot write: {exc.strerror or exc}") from None
    return target


def refresh(remote: Remote, now: int, transport: Transport) -> Repo:
    """The TUF client workflow against ``remote.metadata_url``, trusting what ``remote.metadata_dir`` holds."""
    state = DirectoryStore(remote.metadata_dir)
    if state.get(ROOT) is None:
        raise VerificationError(f"{remote.metadata_dir / ROOT}: no trusted root (run 'init' first)")
    options = LoadOptions(trusted_root_name=str(remote.metadata_dir / ROOT), limits=TUF_LIMITS, state=state)
    return open_repo(MetadataSource(remote.metadata_url, transport), None, now, TUF, options)


def download(remote: Remote, place: TargetPlace, target_names: Iterable[str], now: int,
             transport: Transport) -> list[Downloaded]:
    """Refresh, then fetch each named target verified into ``place.directory``; stops at the first failure."""
    names = list(target_names)
    if not names:
        raise VerificationError("no target name given")
    repo = refresh(remote, now, transport)
    targets = RemoteDir(place.base_url, transport)
    return [download_target(repo, targets, name, place.directory) for name in names]


def local_name(target_path: str) -> str:
    """The file name of a target in the target dir: python-tuf's ``quote(path, '')``."""
    return quote(target_path, safe="")


def download_target(repo: Repo, targets: Reader, name: str, target_dir: Path) -> Downloaded:
    target = repo.find(name)
    if target is None:
        raise TargetError(f"target {name!r} is not listed in the repository at {repo.meta.url}")
    if local_name(name) in ("", ".", ".."):
        raise TargetError(f"target {name!r} cannot be stored under its quoted name in {target_dir}")
    path = target_dir / local_name(name)
    if stored_copy(path, target, repo.policy) is not None:
        return Downloaded(name, path, cached=True)
    data = fetch_target(targets, target, repo.policy, repo.consistent)
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, mode=0o644)
    except OSError as exc:
        raise IOFailedError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return Downloaded(name, path, cached=False)
