"""What changed between two snapshots of one repository's metadata, for signing off a publish: the pure diff.

:func:`diff` compares two loaded :class:`Side` s (:mod:`repo_tool.audit.diff_load` loads and
verifies them): role versions and expiries, the root chain (keys and thresholds per role for each
new root: key rotation), the targets list (length, sha256, custom data) and, when both manifests
were read, ``manifest.json`` (updates, waves, max_version, migrations).  :class:`AuditDiff` has a
stable JSON form here and a text form in :mod:`repo_tool.audit.diff_text`.

Must not: read storage or the clock (pure), or judge the snapshots (that is the audit's job).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import Manifest, Update, migration_key_text
from repo_tool.trust.model import TOP_ROLES, MetadataError, RoleFile, Root, target_file, targets_map
from repo_tool.trust.verifier import Repo

ROLE_ORDER = ("root", "timestamp", "snapshot", "targets")


@dataclass
class Side:
    """One loaded snapshot."""

    label: str  # "OLD" or "NEW"
    metadata_url: str
    anchor: str  # where the trusted root came from
    own_anchor: bool  # the snapshot's own 1.root.json, not an independent root
    repo: Repo
    manifest: Manifest | None  # None: not compared, or not listed (see manifest_note)
    manifest_note: str | None = None


# --- the diff ------------------------------------------------------------------------------


@dataclass
class RoleChange:
    role: str
    old_version: int | None
    new_version: int | None
    old_expires: int | None
    new_expires: int | None

    @property
    def changed(self) -> bool:
        return (self.old_version, self.old_expires) != (self.new_version, self.new_expires)

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role, "changed": self.changed,
                "old": _version_expiry(self.old_version, self.old_expires),
                "new": _version_expiry(self.new_version, self.new_expires)}


@dataclass
class RootChange:
    """A root version in NEW's chain but not OLD's, against the root before it."""

    version: int
    expires: int
    previous: int | None  # the version compared against (None: not loaded on either side)
    keys_added: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # role -> keys
    keys_removed: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    thresholds: dict[str, tuple[int, int]] = field(default_factory=dict)  # role -> (old, new), changed only

    @property
    def rotates(self) -> bool:
        return bool(self.keys_added or self.keys_removed or self.thresholds)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "expires": format_instant(self.expires),
            "compared_with": self.previous,
            "keys_added": self.keys_added,
            "keys_removed": self.keys_removed,
            "thresholds": {role: {"old": old, "new": new} for role, (old, new) in self.thresholds.items()},
        }


@dataclass(frozen=True)
class Listing:
    """A target as listed: what a client checks (length, sha256) and its signed ``custom`` data."""

    length: int | None
    sha256: str | None
    custom: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"length": self.length, "sha256": self.sha256, "custom": self.custom}


@dataclass
class ManifestDiff:
    updates_added: list[Update] = field(default_factory=list)
    updates_removed: list[Update] = field(default_factory=list)
    waves: list[tuple[Update, dict[int, int], dict[int, int]]] = field(default_factory=list)  # update, old, new
    max_versions: list[tuple[Update, str, str]] = field(default_factory=list)  # update (new), old, new
    migrations_added: dict[str, list[str]] = field(default_factory=dict)  # "(from, to)" -> targets
    migrations_removed: dict[str, list[str]] = field(default_factory=dict)
    migrations_changed: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any((self.updates_added, self.updates_removed, self.waves, self.max_versions, self.migrations_added,
                    self.migrations_removed, self.migrations_changed))

    def to_json(self) -> dict[str, Any]:
        return {
            "updates_added": [_update_id(u) for u in self.updates_added],
            "updates_removed": [_update_id(u) for u in self.updates_removed],
            "waves_changed": [{**_update_id(u), "old": _waves_json(old), "new": _waves_json(new)}
                              for u, old, new in self.waves],
            "max_version_changed": [{**_update_id(u), "old": old, "new": new} for u, old, new in self.max_versions],
            "migrations_added": self.migrations_added,
            "migrations_removed": self.migrations_removed,
            "migrations_changed": {k: {"old": old, "new": new} for k, (old, new) in self.migrations_changed.items()},
        }


@dataclass
class AuditDiff:
    old: Side
    new: Side
    roles: list[RoleChange]
    roots_added: list[RootChange]
    roots_removed: list[int]  # in OLD's chain, not NEW's
    roots_differ: list[int]  # same version, other bytes: not one repository (or a rewritten history)
    targets_added: dict[str, Listing]
    targets_removed: dict[str, Listing]
    targets_changed: dict[str, tuple[Listing, Listing]]
    manifest: ManifestDiff | None  # None: not compared

    @property
    def changed(self) -> bool:
        return bool(any(r.changed for r in self.roles) or self.roots_added or self.roots_removed or self.roots_differ
                    or self.targets_added or self.targets_removed or self.targets_changed
                    or (self.manifest is not None and self.manifest.changed))

    def to_json(self) -> dict[str, Any]:
        return {
            "old": _side_json(self.old),
            "new": _side_json(self.new),
            "changed": self.changed,
            "roles": [r.to_json() for r in self.roles],
            "roots": {
                "added": [r.to_json() for r in self.roots_added],
                "removed": self.roots_removed,
                "differ": self.roots_differ,
            },
            "targets": {
                "added": {name: entry.to_json() for name, entry in self.targets_added.items()},
                "removed": {name: entry.to_json() for name, entry in self.targets_removed.items()},
                "changed": {name: {"old": old.to_json(), "new": new.to_json()}
                            for name, (old, new) in self.targets_changed.items()},
            },
            "manifest": {
                "compared": self.manifest is not None,
                "old_note": self.old.manifest_note,
                "new_note": self.new.manifest_note,
                "changes": self.manifest.to_json() if self.manifest is not None else None,
            },
        }



def diff(old: Side, new: Side) -> AuditDiff:
    """Compare two loaded snapshots (pure)."""
    roles = [_role_change(name, _role_file(old.repo, name), _role_file(new.repo, name))
             for name in [*ROLE_ORDER, *sorted(set(old.repo.delegated) | set(new.repo.delegated))]]
    old_roots = {r.version: r for r in old.repo.roots}
    new_roots = {r.version: r for r in new.repo.roots}
    known = {**old_roots, **new_roots}
    added = [_root_change(root, known.get(version - 1))
             for version, root in sorted(new_roots.items()) if version not in old_roots]
    removed = sorted(set(old_roots) - set(new_roots))
    differ = sorted(v for v in set(old_roots) & set(new_roots) if old_roots[v].raw != new_roots[v].raw)

    old_targets, new_targets = _targets(old.repo), _targets(new.repo)
    targets_added = {n: new_targets[n] for n in sorted(set(new_targets) - set(old_targets))}
    targets_removed = {n: old_targets[n] for n in sorted(set(old_targets) - set(new_targets))}
    targets_changed = {n: (old_targets[n], new_targets[n]) for n in sorted(set(old_targets) & set(new_targets))
                       if old_targets[n] != new_targets[n]}

    manifest = None
    if old.manifest is not None or new.manifest is not None:
        manifest = diff_manifests(old.manifest or Manifest(), new.manifest or Manifest())
    return AuditDiff(old, new, roles, added, removed, differ, targets_added, targets_removed, targets_changed,
                     manifest)


def diff_manifests(old: Manifest, new: Manifest) -> ManifestDiff:
    """Updates by (variant, arch, version); waves and max_version of the updates in both; migrations."""
    result = ManifestDiff()
    old_updates, new_updates = _updates(old.updates), _updates(new.updates)
    result.updates_added = [u for key, u in new_updates.items() if key not in old_updates]
    result.updates_removed = [u for key, u in old_updates.items() if key not in new_updates]
    for key, update in new_updates.items():
        before = old_updates.get(key)
        if before is None:
            continue
        if before.waves != update.waves:
            result.waves.append((update, before.waves, update.waves))
        if before.max_version != update.max_version:
            result.max_versions.append((update, str(before.max_version), str(update.max_version)))
    old_migrations = {migration_key_text(k): v for k, v in sorted(old.migrations.items())}
    new_migrations = {migration_key_text(k): v for k, v in sorted(new.migrations.items())}
    result.migrations_added = {k: v for k, v in new_migrations.items() if k not in old_migrations}
    result.migrations_removed = {k: v for k, v in old_migrations.items() if k not in new_migrations}
    result.migrations_changed = {k: (old_migrations[k], v) for k, v in new_migrations.items()
                                 if k in old_migrations and old_migrations[k] != v}
    return result


def _updates(updates: Iterable[Update]) -> dict[tuple[str, str, str], Update]:
    """Keyed by (variant, arch, version); a repeated key (which upstream tolerates) keeps the first."""
    result: dict[tuple[str, str, str], Update] = {}
    for update in sorted(updates, key=lambda u: (u.variant, u.arch, u.version)):
        result.setdefault((update.variant, update.arch, str(update.version)), update)
    return result


def _role_file(repo: Repo, name: str) -> RoleFile | None:
    if name == "root":
        return repo.root
    if name in ("timestamp", "snapshot", "targets"):
        return getattr(repo, name)  # type: ignore[no-any-return]
    return repo.delegated.get(name)


def _role_change(name: str, old: RoleFile | None, new: RoleFile | None) -> RoleChange:
    return RoleChange(name, old.version if old else None, new.version if new else None,
                      old.expires if old else None, new.expires if new else None)


def _root_change(root: RoleFile, previous: RoleFile | None) -> RootChange:
    change = RootChange(root.version, root.expires, previous.version if previous is not None else None)
    if previous is None:
        return change
    old_root, new_root = _typed(previous), _typed(root)
    for role in sorted(TOP_ROLES, key=ROLE_ORDER.index):
        old_ids, new_ids = old_root.keyids(role), new_root.keyids(role)
        if new_ids - old_ids:
            change.keys_added[role] = [_key_info(new_root, k) for k in sorted(new_ids - old_ids)]
        if old_ids - new_ids:
            change.keys_removed[role] = [_key_info(old_root, k) for k in sorted(old_ids - new_ids)]
        old_threshold, new_threshold = old_root.roles[role].threshold, new_root.roles[role].threshold
        if old_threshold != new_threshold:
            change.thresholds[role] = (old_threshold, new_threshold)
    return change


def _typed(root: RoleFile) -> Root:
    """The typed view of a root of the chain (built, and its shape checked, when it was verified)."""
    return root.root(f"{root.version}.root.json")


def _key_info(root: Root, keyid: str) -> dict[str, str]:
    entry = {k.lower(): v for k, v in root.keys.items()}.get(keyid)
    if entry is None:
        return {"keyid": keyid, "keytype": "?", "scheme": "?"}
    return {"keyid": keyid, "keytype": str(entry.get("keytype")), "scheme": str(entry.get("scheme"))}


def _targets(repo: Repo) -> dict[str, Listing]:
    """Every listed target (top-level and delegated roles) as its length, sha256 and custom data."""
    result: dict[str, Listing] = {}
    for role_file in [repo.targets, *repo.delegated.values()]:
        for name, entry in targets_map(role_file).items():
            result.setdefault(name, _listing(entry))
    return result


def _listing(entry: Any) -> Listing:
    """One entry as the typed model reads it (:func:`~repo_tool.trust.model.target_file`).  An entry
    the model refuses can only be in a delegated role (the load types every top-level entry): what
    cannot be read of it is None."""
    try:
        typed = target_file(entry, False, "")
    except MetadataError:
        return Listing(None, None, entry.get("custom") if isinstance(entry, dict) else None)
    sha256 = typed.hashes.get("sha256")
    return Listing(typed.length, sha256.lower() if isinstance(sha256, str) else None, typed.custom)


# --- JSON ----------------------------------------------------------------------------------


def _version_expiry(version: int | None, expires: int | None) -> dict[str, Any] | None:
    if version is None or expires is None:
        return None
    return {"version": version, "expires": format_instant(expires)}


def _update_id(update: Update) -> dict[str, str]:
    return {"variant": update.variant, "arch": update.arch, "version": str(update.version)}


def _waves_json(waves: Mapping[int, int]) -> dict[str, str]:
    return {str(seed): format_instant(waves[seed]) for seed in sorted(waves)}


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "metadata_url": side.metadata_url,
        "anchor": side.anchor,
        "anchor_is_own_root": side.own_anchor,
        "root_versions": [r.version for r in side.repo.roots],
        "expired": sorted(set(side.repo.expired)),
    }
