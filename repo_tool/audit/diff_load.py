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
from dataclasses import dataclass
from pathlib import Path

from repo_tool.audit.anchor import read_trusted_root
from repo_tool.audit.diff import AuditDiff, Side, diff
from repo_tool.audit.options import TrustedRoot
from repo_tool.aws import AwsSettings
from repo_tool.core.manifest import MANIFEST_NAME
from repo_tool.errors import RepoToolError, UsageError, mentions
from repo_tool.localfs import stat_or_none
from repo_tool.storage import open_storage
from repo_tool.storage.base import LocalStorage
from repo_tool.trust.model import MIB
from repo_tool.trust.verifier import LoadOptions, Source, open_repo, read_manifest

ANCHOR_FILE = "1.root.json"


@dataclass(frozen=True)
class DiffRequest:
    """What ``audit-diff`` compares: two metadata locations, the root both are anchored on (None:
    each its own ``1.root.json``), and where both read ``manifest.json`` (None: not compared)."""

    old_url: str
    new_url: str
    root: Path | None = None
    targets_url: str | None = None


def audit_diff(request: DiffRequest, now: int, aws: AwsSettings | None = None) -> AuditDiff:
    """Open, load and compare the two snapshots of ``request``."""
    anchor = None if request.root is None else read_trusted_root(request.root)
    targets = open_storage(request.targets_url, None, aws) if request.targets_url is not None else None
    metas = {label: open_storage(url, None, aws) for label, url in (("OLD", request.old_url),
                                                                     ("NEW", request.new_url))}
    for label, meta in metas.items():  # usage problems first, before anything is loaded
        if isinstance(meta, LocalStorage):
            found = stat_or_none(meta.root, f"{label} ")
            if found is None or not stat.S_ISDIR(found.st_mode):
                raise UsageError(f"{label} {meta.root}: not a directory")
    sides = [load_side(label, meta, anchor, targets, now) for label, meta in metas.items()]
    return diff(sides[0], sides[1])


def load_side(label: str, meta: Source, anchor: TrustedRoot | None, targets: Source | None, now: int) -> Side:
    """Load and verify one snapshot (Unsafe: expired metadata is loaded and reported) and,
    with ``targets``, its ``manifest.json``; ``anchor`` None: the snapshot's own ``1.root.json``.
    Errors name the side and its location."""
    own = anchor is None
    try:
        if anchor is None:
            own_root = meta.read(ANCHOR_FILE, MIB)
            if own_root is None:
                raise UsageError(f"no {ANCHOR_FILE} at {meta.describe(ANCHOR_FILE)} to anchor the chain; pass --root")
            anchor = TrustedRoot(own_root, meta.describe(ANCHOR_FILE))
        repo = open_repo(meta, anchor.data, now, options=LoadOptions(safe=False, trusted_root_name=anchor.name))
        manifest, note = None, None
        if targets is None:
            note = "not compared (no --targets-url)"
        else:
            manifest = read_manifest(repo, targets)
            if manifest is None:
                note = f"{MANIFEST_NAME} is not listed"
    except RepoToolError as exc:  # the side named, and its location once
        raise (exc.reworded(f"{label}: {exc.message}") if mentions(exc.message, meta.url)
               else exc.within(f"{label} {meta.url}")) from None
    return Side(label, meta.url, anchor.name, own, repo, manifest, note)
