"""The audit's checks of the targets' bytes: every listed target (all, a sample or none) streamed
from storage and checked for length and SHA-256, the images and migrations the manifest names also
decoded as LZ4 frames as nodes decode them.

Bounded parallelism (at most ``jobs`` streams at once, largest first, the decoding of the largest
shared out to the other threads: :func:`~repo_tool.hashing.hash_streams`, as the publisher hashes)
and bounded memory (reads of at most ``REMOTE_CHUNK`` bytes); the bytes are reported to
``options.progress``.
Must not: trust an object it has not hashed, or download a target whole into memory.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from repo_tool.audit.findings import Report
from repo_tool.audit.options import AuditOptions
from repo_tool.audit.roleset import RoleSet
from repo_tool.core.lz4frames import ImageError
from repo_tool.core.manifest import MANIFEST_NAME
from repo_tool.errors import RepoToolError
from repo_tool.hashing import Stream, StreamResult, hash_chunks, hash_streams
from repo_tool.storage.base import LocalStorage, Storage
from repo_tool.trust.verifier import Target

CHUNK = 1 << 20  # bytes per read of an object read again (after its LZ4 check failed)
REMOTE_CHUNK = 4 << 20  # bytes per read from storage that is not a local directory: fewer, larger socket
# reads (over HTTP from a local server, 1 GiB of images: 1097 ms against 1271 ms with 1 MiB reads).
# A local directory's files are read as the publisher reads them (hashing.Stream.path).


@dataclass(frozen=True)
class Named:
    """What the manifest says of the targets: those nodes decode as LZ4 frames (its images and
    migrations), and those nodes need now (``manifest.json``, the offered release's images and the
    migrations to it), which even a partial mirror must hold."""

    decoded: Collection[str] = ()
    required: Collection[str] = ()


def check_targets(report: Report, files: RoleSet, store: Storage, options: AuditOptions,
                  named: Named = Named()) -> None:
    """Download targets (``options.targets``: all, a sample, or none; ``options.jobs`` at once) checking
    length and SHA-256; those ``named.decoded`` are also decoded as LZ4 frames, as nodes read them.
    ``present`` (a partial mirror): every target whose object is there is checked; one that is missing
    is an error only if ``named.required``, else counted in one info."""
    mode = options.targets
    names = sorted({name for role in (files.targets, *files.delegated.values())
                    for name in (role.signed.get("targets") or {})})
    report.targets_listed = len(names)
    if mode == "none":
        return
    if isinstance(mode, int):
        step = max(1, len(names) // max(1, mode))
        chosen = names[::step][:mode]
        if MANIFEST_NAME in names and MANIFEST_NAME not in chosen:
            chosen = [MANIFEST_NAME, *chosen[: max(0, mode - 1)]]
        names = chosen
    checks = [check for name in names if (check := _prepare(report, files, store, name, name in named.decoded))]
    progress = options.progress
    progress.start("checking targets", sum(check.target.length for check in checks))
    try:
        results = hash_streams([check.stream for check in checks], _jobs(store, options.jobs), progress)
    finally:
        progress.stop()
    absent = 0
    for check, result in zip(checks, results):
        if result is None and mode == "present" and check.name not in named.required:
            absent += 1
            continue
        report.count_checked(1, _judge(report, check, result))
    if absent:
        report.add("info", "targets", store.url, f"{absent} of {len(names)} listed targets are not stored here "
                   "(--targets present: a partial mirror); every target there, and each one nodes need for the "
                   "release they are offered, was checked")


def _jobs(store: Storage, jobs: int) -> int:
    """Streams open at once: ``jobs``, but no more than there are cores for a local directory, where
    reading costs no waiting and more threads than cores only take the cores from each other (P6, a
    1 GiB release: 2 threads 1.02x ``openssl dgst``, 4 threads 0.96x, on 2 cores)."""
    return min(jobs, os.cpu_count() or 1) if isinstance(store, LocalStorage) else jobs


@dataclass(frozen=True)
class _Check:
    """One listed target to stream: where its object is, and the stream :func:`hash_streams` reads."""

    name: str
    target: Target
    folder: Storage
    object_name: str
    where: str
    stream: Stream


def _prepare(report: Report, files: RoleSet, store: Storage, name: str, lz4: bool) -> _Check | None:
    """The target ``name`` resolved, and its object located; None if it is not to be streamed (a
    target that cannot be resolved or located is a finding)."""
    try:
        target = files.find(name)
    except RepoToolError as exc:
        report.add("error", "targets", name, exc.message)
        return None
    if target is None:
        return None
    *folders, object_name = files.object_name(target).split("/")  # foreign repos may use path-like names
    where = f"{store.url}{files.object_name(target)}"
    try:
        folder = store.child(*folders) if folders else store
        where = folder.describe(object_name)
    except RepoToolError as exc:
        report.add("error", "targets", where, _about(name, exc))
        report.count_checked(1, 0)
        return None
    path = folder.root / object_name if isinstance(folder, LocalStorage) else None
    if path is not None and _file_size(path) != target.length:
        path = None  # read through the storage, which says what is wrong (too large, short, missing)
    stream = Stream(f"target {name}", target.length, lambda: folder.stream(object_name, target.length, REMOTE_CHUNK),
                    lz4, path)
    return _Check(name, target, folder, object_name, where, stream)


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _about(name: str, exc: RepoToolError) -> str:
    return exc.message if exc.message.startswith(f"target {name}") else f"target {name}: {exc.message}"


def _judge(report: Report, check: _Check, result: StreamResult) -> int:
    """The findings of one streamed target; the bytes checked."""
    name, target, where = check.name, check.target, check.where
    if result is None:
        report.add("error", "targets", where, f"target {name} is listed but its object is missing")
        return 0
    if isinstance(result, ImageError):
        # Not a good LZ4 frame.  Say first whether the object is what was signed (another sha256:
        # a bad copy or tampering in storage), else that the release itself is broken.
        undecodable = result
        try:
            result = hash_chunks(check.folder.stream(check.object_name, target.length, CHUNK) or [], None)
        except RepoToolError as exc:
            result = exc
        if result == (target.length, target.sha256):
            report.add("error", "targets", where, undecodable.message)
            return target.length
    if isinstance(result, RepoToolError):
        report.add("error", "targets", where, _about(name, result))
        return 0
    if isinstance(result, Exception):
        raise result
    size, sha256 = result
    if size != target.length:
        report.add("error", "targets", where, f"target {name}: {size} bytes, {target.length} listed")
    elif sha256 != target.sha256:
        report.add("error", "targets", where, f"target {name}: sha256 {sha256} does not match the "
                   f"listed {target.sha256}")
    return size
