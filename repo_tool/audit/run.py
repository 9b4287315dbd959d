"""Audit one variant/arch repository end to end and report every finding (issue: auditor).

The audit answers "is every byte here signed by the keys we trust, by enough of
them, and will nodes keep accepting it tomorrow?" for repositories written by
this tool or by Bottlerocket's pubsys/tuftool.  Unlike a client load it does not
stop at the first problem: each check records findings (error / warning /
info, with the file concerned) and the audit goes on with whatever can still
be checked.

Checks, in order: files an interrupted write left (here); the root chain from ``1.root.json``
(every version present, each signed by a threshold of the previous root and of itself, the
trusted root part of it: :mod:`~repo_tool.audit.stored`, the trust layer's walk); the client load as updog does it
(:mod:`repo_tool.trust.verifier`, Unsafe so that expiry becomes findings; when a node refuses the
repository the rest runs on the files as stored, :class:`~repo_tool.audit.roleset.RoleSet`); per
role the keys that signed and those that did not, signatures by keys not listed, key types and
sizes, every rule for which tough (so a node) refuses a file (SPEC §3.4), expiries inside a window
as warnings and past ones as errors (:mod:`~repo_tool.audit.role_checks`); ``manifest.json``
against the targets and the migration chain (:mod:`~repo_tool.audit.manifest_checks`); every
listed target (all, none or a sample) streamed and checked for length and sha256, the images and
migrations the manifest names also decoded as LZ4 frames (:mod:`~repo_tool.audit.target_checks`).

This module only orders the checks.  Must not: write to the repository, or stop at a finding.
"""

from __future__ import annotations

from repo_tool.audit import manifest_checks
from repo_tool.audit.findings import Report
from repo_tool.audit.options import AuditOptions, TrustedRoot
from repo_tool.audit.role_checks import (
    duplicate_signatures,
    expiries,
    key_rows,
    meta_completeness,
    role_row,
    tough_rules,
)
from repo_tool.audit.roleset import RoleSet
from repo_tool.audit.stored import read_as_stored, root_chain
from repo_tool.audit.target_checks import Named, check_targets
from repo_tool.core.manifest import MANIFEST_NAME, Manifest
from repo_tool.core.versionspec import required_targets
from repo_tool.errors import RepoToolError
from repo_tool.localfs import leftover_temp_files
from repo_tool.storage.base import LocalStorage, Storage
from repo_tool.trust.verifier import LoadOptions, open_repo, role_file_name


def audit(meta: Storage, targets: Storage, anchor: TrustedRoot, now: int, options: AuditOptions) -> Report:
    """Run every check at ``now``; the report holds the findings (``report.ok`` when there is no error)."""
    report = Report(meta.url, targets.url, now, options.window, options.window_text or f"{options.window} ns")
    _leftovers(report, meta, targets)
    chain = root_chain(meta, anchor.data, anchor.name, report)
    try:
        files = RoleSet.verified_by(meta, open_repo(meta, anchor.data, now, options=LoadOptions(
            safe=False, trusted_root_name=anchor.name)))
    except RepoToolError as exc:
        # Said once: a root problem the chain check already named is not repeated here.
        if not (".root.json" in exc.message and any(f.check == "root-chain" for f in report.findings)):
            report.add("error", "load", meta.url, f"a node refuses this repository: {exc.message}")
        fallback = read_as_stored(report, meta, chain)
        if fallback is None:
            for index, root_file in enumerate(chain):
                role_row(report, root_file, root_file, meta.describe(f"{root_file.version}.root.json"),
                         chain[index - 1] if index else None)
            if chain:
                key_rows(report, [(r, meta.describe(f"{r.version}.root.json")) for r in chain])
            return report
        files = fallback
        report.add("info", "load", meta.url, "the checks below ran on the metadata as stored, which nodes refuse")
    roots = chain if chain and chain[-1].version == files.root.version else files.roots
    for index, root_file in enumerate(roots):
        name = meta.describe(f"{root_file.version}.root.json")
        role_row(report, root_file, root_file, name, roots[index - 1] if index else None)
        tough_rules(report, root_file, name)
    root = files.root
    held_keys = [*(r for r in roots if r.version < root.version), root]  # every root's keys, the current last
    key_rows(report, [(r, meta.describe(f"{r.version}.root.json")) for r in held_keys])
    for role_file, name in files.role_files():
        role_row(report, role_file, root, meta.describe(name))
        tough_rules(report, role_file, meta.describe(name))
        meta_completeness(report, role_file, meta.describe(name))
    for role_name, role_file in files.delegated.items():
        report.add("info", "delegations", meta.url, f"delegated role {role_name!r} (version {role_file.version})")
        duplicate_signatures(report, role_file, meta.describe(role_file_name(role_name, role_file.version,
                                                                             files.consistent)))
    expiries(report, files, meta)
    manifest = None
    if options.check_manifest:
        manifest = manifest_checks.check_manifest(report, files, targets, options.targets != "none")
    decoded = set(manifest.target_names()) if manifest is not None else set()
    check_targets(report, files, targets, options, Named(decoded, _required(manifest)))
    return report


def _required(manifest: Manifest | None) -> list[str]:
    """The targets nodes need now (``manifest.json``, the offered release's images and the migrations to
    it): what even a partial mirror (``mirror --versions latest``) must hold."""
    return [MANIFEST_NAME] if manifest is None else required_targets(manifest)


def _leftovers(report: Report, *stores: Storage) -> None:
    """Temporary files a killed publisher left in a local repository: harmless (no client asks for
    them, a rerun writes under new names) but worth deleting, which only an operator can know is safe."""
    roots = {store.root: store for store in stores if isinstance(store, LocalStorage)}  # each directory once
    for store in roots.values():
        for name in leftover_temp_files(store.root):
            report.add("warning", "leftovers", store.describe(name),
                       "temporary file of an interrupted write (or of a publish still running); no client "
                       "reads it: delete it when no publisher is running")
