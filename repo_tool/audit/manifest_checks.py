"""The audit's checks of ``manifest.json``: as updog reads it, against the targets and the migration chain.

Reads the manifest through the trust layer (listed, length and hashes checked), then names every
update whose images are not listed targets, duplicate updates, wave times that do not increase,
differing max_version values, migration keys and file names nodes refuse, and each break in the
migration chain (:mod:`repo_tool.core.chain`).  Must not: change the manifest, or judge the role
files (that is :mod:`repo_tool.audit.role_checks`).
"""

from __future__ import annotations

import itertools

from repo_tool.audit.findings import Report
from repo_tool.audit.roleset import RoleSet
from repo_tool.core.chain import breaks as chain_breaks
from repo_tool.core.manifest import MANIFEST_NAME, Manifest, check_migration_keys
from repo_tool.core.rollout import hold_of, is_held, pauses_of
from repo_tool.errors import RepoToolError
from repo_tool.storage.base import Storage
from repo_tool.trust.verifier import resolve_name


def check_manifest(report: Report, files: RoleSet, targets: Storage, targets_checked: bool) -> Manifest | None:
    """Check ``manifest.json`` as updog reads it; return it (None if it cannot be read)."""
    where = f"{MANIFEST_NAME} (target)"
    try:
        raw = files.read_target(targets, MANIFEST_NAME)
    except RepoToolError as exc:
        if not targets_checked:  # otherwise the target check names the object once
            report.add("error", "manifest", where, exc.message)
        return None
    if raw is None:
        report.add("error", "manifest", files.meta.url, "the repository lists no manifest.json target")
        return None
    try:
        manifest = Manifest.from_bytes(raw)
    except RepoToolError as exc:
        report.add("error", "manifest", where, f"updog cannot parse it: {exc.message}")
        return None
    _updates(report, files, manifest, where)
    _migrations(report, files, manifest, where)
    return manifest


def _updates(report: Report, files: RoleSet, manifest: Manifest, where: str) -> None:
    listed = files.find(MANIFEST_NAME)  # it was just read through the same lookup
    pauses = pauses_of(listed.custom) if listed is not None else {}
    seen: set[tuple[str, str, str]] = set()
    max_versions: dict[tuple[str, str], set[str]] = {}
    for update in manifest.updates:
        key = (update.variant, update.arch, str(update.version))
        if key in seen:
            report.add("error", "manifest", where, f"duplicate update {' '.join(key)}")
        seen.add(key)
        max_versions.setdefault((update.variant, update.arch), set()).add(str(update.max_version))
        for kind in ("boot", "root", "hash"):
            name = getattr(update.images, kind)
            if _listed(report, files, name, where) is False:
                report.add("error", "manifest", where, f"update {' '.join(key)}: {kind} image {name!r} is not a "
                           "listed target: nodes fail when they stage it")
        if update.version > update.max_version:
            report.add("info", "manifest", where, f"update {' '.join(key)} is above its max_version "
                       f"{update.max_version}: no node is offered it (a pulled release)")
        times = [update.waves[k] for k in sorted(update.waves)]
        if any(b <= a for a, b in itertools.pairwise(times)):
            report.add("error", "manifest", where, f"update {' '.join(key)}: wave times are not strictly "
                       "increasing")
        if any(map(is_held, update.waves.values())):
            hold = hold_of(pauses, " ".join(key))
            report.add("info", "rollout", where, f"update {' '.join(key)} is {hold}: hosts not offered it yet wait "
                       f"for 'repo-tool rollout {'resume' if hold.since else 'reschedule'}'")
    for (variant, arch), values in sorted(max_versions.items()):
        if len(values) > 1:
            report.add("warning", "manifest", where, f"{variant} {arch}: updates carry different max_version "
                       f"values ({', '.join(sorted(values))}); updata sets one for all")


def _migrations(report: Report, files: RoleSet, manifest: Manifest, where: str) -> None:
    try:
        check_migration_keys(manifest.migrations)
    except RepoToolError as exc:
        report.add("error", "manifest", where, f"{exc.message}: updog's migration walk cannot use it")
    for broken in chain_breaks(manifest):
        report.add("error", "manifest", where, broken.describe())
    for names in manifest.migrations.values():
        for name in names:
            try:  # nodes save a migration under its resolved name (``./m`` is ``m``)
                plain = resolve_name(name)
            except RepoToolError:
                plain = ""
            if "/" in plain or "\0" in plain or not plain:
                report.add("error", "manifest", where, f"migration {name!r} is not a plain file name (a path could "
                           "lead out of the migrations directory): nodes refuse it")
            elif _listed(report, files, name, where) is False:
                report.add("error", "manifest", where, f"migration {name!r} is not a listed target: updates that "
                           "need it fail")


def _listed(report: Report, files: RoleSet, name: str, where: str) -> bool | None:
    """Whether ``name`` is a listed target; None (and the reason as a finding) when the lookup fails."""
    try:
        return files.find(name) is not None
    except RepoToolError as exc:
        report.add("error", "manifest", where, exc.message)
        return None

