"""The audit's checks of the targets' bytes: every listed target (all, a sample or none) streamed
from storage and checked for length and SHA-256, the images and migrations the manifest names also
decoded as LZ4 frames as nodes decode them.

Bounded parallelism (a thread pool of ``jobs``) and bounded memory (``CHUNK``-sized reads).
Must not: trust an object it has not hashed, or download a target whole into memory.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor

from repo_tool.audit.findings import Report
from repo_tool.audit.options import AuditOptions
from repo_tool.audit.roleset import RoleSet
from repo_tool.core.lz4frames import ImageError
from repo_tool.core.manifest import MANIFEST_NAME
from repo_tool.errors import RepoToolError
from repo_tool.hashing import hash_chunks
from repo_tool.storage.base import Storage
from repo_tool.trust.verifier import Target

CHUNK = 1 << 20


def check_targets(report: Report, files: RoleSet, store: Storage, options: AuditOptions,
                  decoded: Collection[str] = ()) -> None:
    """Download targets (``options.targets``: all, a sample, or none; ``options.jobs`` at once) checking
    length and SHA-256; those in ``decoded`` (the images and migrations the manifest names) are also
    decoded as LZ4 frames, as nodes read them."""
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
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        for checked, size in pool.map(lambda n: _check_target(report, files, store, n, n in decoded), names):
            report.count_checked(checked, size)


def _check_target(report: Report, files: RoleSet, store: Storage, name: str, lz4: bool = False) -> tuple[int, int]:
    target: Target | None
    try:
        target = files.find(name)
    except RepoToolError as exc:
        report.add("error", "targets", name, exc.message)
        return 0, 0
    if target is None:
        return 0, 0
    *folders, object_name = files.object_name(target).split("/")  # foreign repos may use path-like names
    size = 0
    where = f"{store.url}{files.object_name(target)}"
    try:
        folder = store.child(*folders) if folders else store
        where = folder.describe(object_name)
        chunks: Iterator[bytes] | None = folder.stream(object_name, target.length, CHUNK)
        if chunks is None:
            report.add("error", "targets", where, f"target {name} is listed but its object is missing")
            return 1, 0
        try:
            size, sha256 = hash_chunks(chunks, f"target {name}" if lz4 else None)
        except ImageError as exc:
            # Not a good LZ4 frame.  Say first whether the object is what was signed (another sha256:
            # a bad copy or tampering in storage), else that the release itself is broken.
            size, sha256 = hash_chunks(folder.stream(object_name, target.length, CHUNK) or [], None)
            if (size, sha256) == (target.length, target.sha256):
                report.add("error", "targets", where, exc.message)
                return 1, size
    except RepoToolError as exc:
        message = exc.message if exc.message.startswith(f"target {name}") else f"target {name}: {exc.message}"
        report.add("error", "targets", where, message)
        return 1, size
    if size != target.length:
        report.add("error", "targets", where, f"target {name}: {size} bytes, {target.length} listed")
    elif sha256 != target.sha256:
        report.add("error", "targets", where, f"target {name}: sha256 {sha256} does not match the "
                   f"listed {target.sha256}")
    return 1, size
