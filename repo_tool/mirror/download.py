"""``download``: verified targets of one repository saved into a folder under their plain names.

The repository is loaded and verified as a node loads it (tough's rules, from a trusted root, every
delegated role); the targets are chosen by name, or as the three images of one release its
``manifest.json`` lists.  Each target is streamed into a temporary file beside its final name,
checked (length bound while it arrives, sha256 at the end) and renamed only when it matched: a target
that fails leaves nothing under its name (and an older file there unchanged).  A file already there
that holds the target is not downloaded again; one with other bytes is replaced only when asked.
Must not: buffer a whole target, or write anywhere but the output folder.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repo_tool.core.manifest import MANIFEST_NAME, Manifest, Update
from repo_tool.core.progress import NO_PROGRESS, Progress, counted
from repo_tool.core.selection import LATEST
from repo_tool.core.semver import Version
from repo_tool.errors import RepoToolError, UsageError, VerificationError
from repo_tool.hashing import hash_file
from repo_tool.localfs import stat_or_none, write_atomic
from repo_tool.storage.base import Storage, StorageError
from repo_tool.trust.verifier import (
    TOUGH,
    LoadOptions,
    Repo,
    Target,
    open_repo,
    read_manifest,
    stream_target,
)


@dataclass(frozen=True)
class DownloadRequest:
    """What to download: from the repository at ``metadata``/``targets`` (verified from the trusted
    root ``root``, the file ``root_name``) the targets ``names``, or the images of the release
    ``version`` (a version or ``latest``; ``variant``/``arch`` when the manifest has several), into
    ``outdir``; ``force`` replaces files there that hold other bytes."""

    metadata: Storage
    targets: Storage
    root: bytes
    root_name: str
    outdir: Path
    names: tuple[str, ...] = ()
    version: str | None = None
    variant: str | None = None
    arch: str | None = None
    force: bool = False


@dataclass(frozen=True)
class Saved:
    """One target in the output folder: its name (the file's), size and sha256, and whether an
    identical file was already there (``skipped``: nothing downloaded)."""

    name: str
    size: int
    sha256: str
    skipped: bool

    def to_json_obj(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256, "skipped": self.skipped}


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` did: the repository, the release chosen (if any) and each file."""

    metadata_url: str
    outdir: Path
    update: Update | None
    files: list[Saved]

    @property
    def downloaded_bytes(self) -> int:
        return sum(f.size for f in self.files if not f.skipped)

    def to_json_obj(self) -> dict[str, Any]:
        update = self.update
        return {
            "metadata_url": self.metadata_url,
            "outdir": str(self.outdir),
            "version": None if update is None else str(update.version),
            "variant": None if update is None else update.variant,
            "arch": None if update is None else update.arch,
            "files": [f.to_json_obj() for f in self.files],
            "downloaded_bytes": self.downloaded_bytes,
        }


def download(request: DownloadRequest, now: int, progress: Progress = NO_PROGRESS) -> DownloadResult:
    """Verify the repository, choose the targets, then save each into ``request.outdir`` (see the
    module).  Files already there are checked before anything is downloaded."""
    if bool(request.names) == (request.version is not None):
        raise UsageError("give --version or --target (one of them)")
    if request.names and (request.variant or request.arch):
        raise UsageError("--variant/--arch choose the release of --version; they do not go with --target")
    _check_outdir(request.outdir)
    repo = open_repo(request.metadata, request.root, now, TOUGH, LoadOptions(trusted_root_name=request.root_name))
    update = None
    if request.version is not None:
        update = choose_update(_manifest(repo, request.targets), request.version, request.variant, request.arch)
        chosen = [repo.require(name) for name in (update.images.boot, update.images.root, update.images.hash)]
    else:
        chosen = list({t.name: t for t in (_listed(repo, name) for name in request.names)}.values())
    for target in chosen:  # Bottlerocket's are basenames (a --target name is checked before it is looked up)
        if not _plain(target.name):
            raise VerificationError(f"{MANIFEST_NAME}: image {target.name!r} is not a plain file name; refusing "
                                    f"to save it in {request.outdir}")
    present = {t.name: _present(request.outdir / t.name, t, request.force) for t in chosen}
    todo = [t for t in chosen if not present[t.name]]
    _make_outdir(request.outdir)
    progress.start("download", sum(t.length for t in todo))
    try:
        for target in todo:
            repo.check_fresh()
            chunks = stream_target(repo, request.targets, target)
            _save(request.outdir / target.name, chunks, progress)
    finally:
        progress.stop()
    files = [Saved(t.name, t.length, t.sha256, present[t.name]) for t in chosen]
    return DownloadResult(request.metadata.url, request.outdir, update, files)


def choose_update(manifest: Manifest, version: str, variant: str | None, arch: str | None) -> Update:
    """The update of ``manifest`` for ``version`` (``latest``: the newest), among those of
    ``variant``/``arch`` (None: the manifest's only variant, arch)."""
    wanted = None if version == LATEST else _version(version)
    updates = [u for u in manifest.updates if variant in (None, u.variant) and arch in (None, u.arch)]
    pairs = sorted({(u.variant, u.arch) for u in updates})
    if not pairs:
        raise UsageError(f"{MANIFEST_NAME} has no update for {_pair(variant, arch)}; it has "
                         f"{_pairs(sorted({(u.variant, u.arch) for u in manifest.updates}))}")
    if len(pairs) > 1:
        raise UsageError(f"{MANIFEST_NAME} has updates for {_pairs(pairs)}: choose one with --variant and --arch")
    if wanted is None:
        return max(updates, key=lambda u: u.version)
    for update in updates:
        if update.version == wanted:
            return update
    versions = ", ".join(str(v) for v in sorted({u.version for u in updates}))
    raise UsageError(f"--version {version}: {MANIFEST_NAME} has no such update for {_pair(*pairs[0])} "
                     f"(it has {versions})")


def _version(text: str) -> Version:
    try:
        return Version.parse(text)
    except RepoToolError as exc:
        raise UsageError(f"--version: {exc.message} (or {LATEST})") from None


def _pair(variant: str | None, arch: str | None) -> str:
    return f"{variant or 'any variant'}/{arch or 'any arch'}"


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{v}/{a}" for v, a in pairs) or "none"


def _manifest(repo: Repo, targets: Storage) -> Manifest:
    manifest = read_manifest(repo, targets)
    if manifest is None:
        raise UsageError(f"--version: the repository at {repo.meta.url} lists no {MANIFEST_NAME}")
    return manifest


def _listed(repo: Repo, name: str) -> Target:
    if not _plain(name):
        raise UsageError(f"--target {name!r}: not a plain file name (OUTDIR holds files, not folders)")
    target = repo.find(name)
    if target is None:
        raise UsageError(f"--target {name}: not listed in the repository at {repo.meta.url}")
    return target


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _check_outdir(outdir: Path) -> None:
    found = stat_or_none(outdir, "OUTDIR ")
    if found is not None and not stat.S_ISDIR(found.st_mode):
        raise UsageError(f"OUTDIR {outdir}: not a directory")


def _make_outdir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{outdir}: cannot create: {exc.strerror or exc}") from None


def _present(path: Path, target: Target, force: bool) -> bool:
    """Whether ``path`` already holds ``target`` (its size, then its sha256); a file there with other
    bytes is refused unless ``force`` (it is replaced once the new one verified)."""
    found = stat_or_none(path, "OUTDIR ")
    if found is None:
        return False
    if not stat.S_ISREG(found.st_mode):
        raise UsageError(f"{path}: exists and is not a regular file")
    if found.st_size == target.length and hash_file(path).sha256 == target.sha256:
        return True
    if not force:
        raise UsageError(f"{path}: exists with other content than target {target.name}; --force replaces it")
    return False


def _save(path: Path, chunks: Iterator[bytes], progress: Progress) -> None:
    try:
        write_atomic(path, counted(chunks, progress), mode=0o644)
    except OSError as exc:
        raise StorageError(f"{path}: cannot write: {exc.strerror or exc}") from None

