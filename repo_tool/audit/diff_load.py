"""Load the two snapshots ``audit-diff`` compares: each fully verified, and its ``manifest.json``.

Both snapshots are loaded and fully verified (signatures, hashes, versions; expiry is
only reported, so an old, expired snapshot can still be compared).  The trust anchor is
the given root, or else each snapshot's own ``1.root.json`` (which proves the chain
is intact, not that it is the right repository; the result says so).  With a targets
location, each side's ``manifest.json`` is read through its verified targets.

Must not: compare (that is :func:`repo_tool.audit.diff.diff`, pure) or print.
"""

from __future__ import annotations

import stat
from pathlib import Path

from repo_tool.audit.diff import AuditDiff, Side, diff
from repo_tool.aws import AwsSettings
from repo_tool.core.manifest import MANIFEST_NAME, Manifest
from repo_tool.errors import ManifestError, RepoToolError, UsageError, VerificationError
from repo_tool.localfs import stat_or_none
from repo_tool.storage import open_storage
from repo_tool.storage.base import LocalStorage
from repo_tool.trust.metadata import MIB
from repo_tool.trust.verifier import Source, load_repo, read_target

ANCHOR_FILE = "1.root.json"


def audit_diff(old_url: str, new_url: str, now: int, root: Path | None = None, targets_url: str | None = None,
               aws: AwsSettings | None = None) -> AuditDiff:
    """Open, load and compare two snapshots (``root``: the trust anchor for both; ``targets_url``:
    where both read ``manifest.json``, else manifests are not compared)."""
    trusted, trusted_name = None, "trusted root"
    if root is not None:
        try:
            trusted, trusted_name = root.read_bytes(), str(root)
        except OSError as exc:
            raise UsageError(f"--root: cannot read {root}: {exc.strerror or exc}") from None
    targets = open_storage(targets_url, None, aws) if targets_url is not None else None
    metas = {label: open_storage(url, None, aws) for label, url in (("OLD", old_url), ("NEW", new_url))}
    for label, meta in metas.items():  # usage problems first, before anything is loaded
        if isinstance(meta, LocalStorage):
            found = stat_or_none(meta.root, f"{label} ")
            if found is None or not stat.S_ISDIR(found.st_mode):
                raise UsageError(f"{label} {meta.root}: not a directory")
    sides = [load_side(label, meta, trusted, trusted_name, targets, now) for label, meta in metas.items()]
    return diff(sides[0], sides[1])


def load_side(label: str, meta: Source, trusted_root: bytes | None, trusted_name: str, targets: Source | None,
              now: int) -> Side:
    """Load and verify one snapshot (Unsafe: expired metadata is loaded and reported) and,
    with ``targets``, its ``manifest.json``.  Errors name the side and its location."""
    own = trusted_root is None
    try:
        if trusted_root is None:
            trusted_name = meta.describe(ANCHOR_FILE)
            trusted_root = meta.read(ANCHOR_FILE, MIB)
            if trusted_root is None:
                raise UsageError(f"no {ANCHOR_FILE} at {trusted_name} to anchor the chain; pass --root")
        repo = load_repo(meta, trusted_root, now, safe=False, trusted_root_name=trusted_name)
        manifest, note = None, None
        if targets is None:
            note = "not compared (no --targets-url)"
        else:
            data = read_target(repo, targets, MANIFEST_NAME)
            if data is None:
                note = f"{MANIFEST_NAME} is not listed"
            else:
                try:
                    manifest = Manifest.from_bytes(data)
                except ManifestError as exc:  # it verified, so this is a published, broken file
                    raise VerificationError(f"{MANIFEST_NAME}: {exc.message}") from None
    except RepoToolError as exc:
        raise exc.within(f"{label} {meta.url}") from None
    return Side(label, meta.url, trusted_name, own, repo, manifest, note)
